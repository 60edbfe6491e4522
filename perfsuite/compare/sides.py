"""Where side B of `perfsuite compare` comes from: an interpreter, a pinned venv, a base revision.

Pinned venvs are cached under ``<perfsuite cache>/venvs/<digest>/`` (``PERFSUITE_CACHE``,
default ``~/.cache/perfsuite``): a venv of this interpreter whose own site-packages hold only
the pins, in front of a ``.pth`` line that adds this environment's site-packages behind them -
so B is A with the pins, built in seconds, and pip resolves the pins' needs against what A has.
A venv is usable only once its ``complete`` marker exists; a failed build is removed whole.
A base revision (side A) is a temporary ``git worktree`` put first on A's PYTHONPATH (removed after).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from perfsuite.compare.protocol import CompareError, Side, worker_argv
from perfsuite.fileio import default_cache_dir

PIP_TIMEOUT_S = 3600  # a torch release with its CUDA libraries is several GB
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+$")


def checkout_env() -> dict[str, str]:
    """PYTHONPATH naming the checkout this perfsuite is imported from (none when it is installed).

    A `--base` side starts its worker with one PYTHONPATH entry, its worktree; this checkout's
    sides start the same way (the same variable, the same import order, the shell's own
    PYTHONPATH left out on both), so the two differ in the code alone wherever the tool decides.
    """
    import perfsuite

    root = Path(perfsuite.__file__).resolve().parent.parent
    return {"PYTHONPATH": str(root)} if (root / "pyproject.toml").is_file() else {}


def this_side() -> Side:
    return Side("A", worker_argv(sys.executable), checkout_env(), f"this checkout, {sys.executable}")


def check_imports_perfsuite(python: str) -> str:
    """The folder `python` imports perfsuite from; CompareError naming the interpreter otherwise."""
    try:
        proc = subprocess.run(
            [python, "-c", "import perfsuite, os; print(os.path.dirname(perfsuite.__file__))"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",  # `-c` puts the working folder first on sys.path: not this checkout's perfsuite
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CompareError(f"--python {python}: cannot run it ({exc})") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise CompareError(f"--python {python}: cannot import perfsuite ({last})")
    return proc.stdout.strip()


def python_side(python: str) -> Side:
    if os.sep in python:  # a path relative to where the user is, not to the checks' cwd
        python = os.path.abspath(python)
    where = check_imports_perfsuite(python)
    return Side("B", worker_argv(python), {}, f"{python} (perfsuite from {where})")


def venv_root() -> Path:
    return default_cache_dir() / "venvs"


def _digest(pins: Sequence[str]) -> str:
    key = json.dumps({"python": sys.version, "prefix": sys.prefix, "pins": sorted(pins)})
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def pinned_venv(pins: Sequence[str], progress=print) -> Path:
    """A cached venv of this interpreter with `pins` installed over this environment; its python."""
    bad = [p for p in pins if not PIN.match(p)]
    if bad:
        raise CompareError(f"--pin {bad[0]!r}: expected PACKAGE==VERSION")
    folder = venv_root() / _digest(pins)
    python = folder / "bin" / "python"
    if (folder / "complete").is_file():
        return python
    if folder.exists():  # an earlier build died half-way
        shutil.rmtree(folder)
    progress(f"building a venv with {' '.join(pins)} in {folder}")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, capture_output=True)
        purelib = Path(
            subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        # addsitedir (not a bare path line) so this environment's own .pth files - the editable
        # perfsuite install among them - are processed too.
        ours = dict.fromkeys([sysconfig.get_paths()["purelib"], *site.getsitepackages()])
        lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in ours)
        (purelib / "zz_perfsuite_base_env.pth").write_text(lines, encoding="utf-8")
        # The pins are the point: a constraints file of the calling environment (tox sets
        # PIP_CONSTRAINT to the CI pins) must not veto them.
        env = {k: v for k, v in os.environ.items() if k not in ("PIP_CONSTRAINT", "PIP_REQUIREMENT")}
        try:
            proc = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins],
                capture_output=True,
                text=True,
                env=env,
                timeout=PIP_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise CompareError(f"--pin {' '.join(pins)}: pip did not finish within {PIP_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise CompareError(f"--pin {' '.join(pins)}: could not install ({last})")
        check_imports_perfsuite(str(python))
        (folder / "complete").write_text(" ".join(pins) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return python


def pinned_side(pins: Sequence[str], progress=print) -> Side:
    python = pinned_venv(pins, progress)
    where = python.parent.parent
    return Side("B", worker_argv(str(python)), checkout_env(), f"this checkout with {' '.join(pins)} ({where})")


def folder_size(folder: Path) -> int:
    """Bytes of the files under `folder` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def installed_version(package: str) -> str | None:
    from perfsuite.device.environment import versions_of

    version = versions_of([package])[package]
    return None if version == "absent" else version


def version_side(package: str, version: str, progress=print) -> tuple[Side, str]:
    """A side with `package`==`version`: this environment if it has that release, else a cached
    venv (built once); and where it is, with its size, for the progress line."""
    if installed_version(package) == version:
        return this_side(), f"this environment ({sys.prefix})"
    python = pinned_venv([f"{package}=={version}"], progress)
    folder = python.parent.parent
    side = Side("B", worker_argv(str(python)), {}, f"this checkout with {package}=={version}")
    return side, f"venv {folder} ({folder_size(folder) / 2**20:.0f} MiB over this environment)"


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # Its own session: a Ctrl-C at the terminal reaches perfsuite, not a `git worktree remove`
    # half-way through (that once left a worktree behind).
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, start_new_session=True)


WORKTREE_PREFIX = "perfsuite-base-"
LOCK_REASON = re.compile(r"perfsuite compare pid (\d+)")


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C waits until the block is done, then interrupts as usual (cleanup is not cut short)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_worktree(root: Path, folder: Path) -> None:
    """Remove one base worktree and its folder, whatever the keyboard does meanwhile."""
    with _interrupts_deferred():
        _git("worktree", "remove", "--force", "--force", str(folder), cwd=root)  # twice: it is locked
        shutil.rmtree(folder, ignore_errors=True)
        _git("worktree", "prune", cwd=root)


def prune_stale_worktrees(root: Path) -> list[str]:
    """Remove base worktrees that earlier compares left behind (killed, or interrupted twice).

    A compare locks its worktree with its pid; one whose process is gone, or an unlocked one
    (left by a perfsuite from before the lock), is stale. A running compare's is kept."""
    listing = _git("worktree", "list", "--porcelain", cwd=root)
    removed = []
    for block in listing.stdout.split("\n\n"):
        fields = dict(line.partition(" ")[::2] for line in block.splitlines() if line)
        path = Path(fields.get("worktree", ""))
        if not path.name.startswith(WORKTREE_PREFIX):
            continue
        owner = LOCK_REASON.fullmatch(fields.get("locked", ""))
        if owner and _alive(int(owner.group(1))):
            continue
        remove_worktree(root, path)
        removed.append(str(path))
    return removed


def repository_root(start: Path | None = None) -> Path:
    proc = _git("rev-parse", "--show-toplevel", cwd=start or Path.cwd())
    if proc.returncode != 0:
        raise CompareError("--base needs a git checkout of perfsuite (run it inside the repository)")
    return Path(proc.stdout.strip())


def _pins(constraints: Path) -> list[str]:
    if not constraints.is_file():
        return []
    lines = (line.split("#")[0].strip() for line in constraints.read_text(encoding="utf-8").splitlines())
    return sorted(line for line in lines if line)


@contextlib.contextmanager
def base_side(revision: str, progress=print) -> Iterator[Side]:
    """A = `revision` of this repository (the base) in a temporary worktree (removed on exit).

    It runs with this interpreter unless the revision's constraints/ci.txt pins other
    versions, in which case with a cached venv of those pins.
    """
    root = repository_root()
    proc = _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", cwd=root)
    if proc.returncode != 0:
        raise CompareError(f"--base {revision}: not a revision of {root}")
    sha = proc.stdout.strip()
    for stale in prune_stale_worktrees(root):
        progress(f"[compare] removed a stale base worktree an earlier compare left: {stale}")
    folder = Path(tempfile.mkdtemp(prefix=f"{WORKTREE_PREFIX}{sha[:10]}-"))
    reason = f"perfsuite compare pid {os.getpid()}"
    try:  # from here on the folder is removed however this ends (a failed add, an error, Ctrl-C)
        added = _git("worktree", "add", "--detach", "--lock", "--reason", reason, str(folder), sha, cwd=root)
        if added.returncode != 0:
            raise CompareError(f"--base {revision}: git worktree add failed ({added.stderr.strip()})")
        base_pins, our_pins = _pins(folder / "constraints" / "ci.txt"), _pins(root / "constraints" / "ci.txt")
        python = sys.executable
        if base_pins != our_pins and base_pins:
            python = str(pinned_venv(base_pins, progress))
        env = {"PYTHONPATH": str(folder)}
        check = subprocess.run(
            [python, "-c", "import perfsuite, os; print(os.path.dirname(perfsuite.__file__))"],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=folder,
        )
        if check.returncode != 0 or not check.stdout.strip().startswith(str(folder)):
            raise CompareError(f"--base {revision}: its perfsuite does not import from the worktree ({check.stderr})")
        yield Side("A", worker_argv(python), env, f"revision {revision} ({sha[:12]}), {python}", sha)
    finally:
        remove_worktree(root, folder)
