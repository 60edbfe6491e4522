"""The baseline store: find, load and save records; nothing else.

Layout under the root (reviewed in PRs)::

    baselines/portable/<tier>/<variant>.json        work counts, portable quality: any machine
    baselines/<machine-key>/<tier>/<variant>.json   latency, memory, machine-bound quality

The tier level exists because two tiers can measure the same variant on different workloads
(the GPU check at max_length 512, the GPU tier at 2048). Writes are atomic (temp file in the
same folder, fsync, rename) and a store writes only its own machine's folder and the tier's
portable folder: another machine's records are never rewritten or deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from perfsuite.fileio import atomic_write_text, staged_file
from perfsuite.store.names import UnsafeName, inside, safe_name
from perfsuite.store.records import (
    PORTABLE,
    SCHEMA,
    Latency,
    MachineRecord,
    PortableRecord,
    RecordError,
    now_utc,
    split_v1,
)

DEFAULT_BASELINES = Path("baselines")
PROJECT_MARKERS = ("pyproject.toml", "tox.ini", "setup.cfg", ".git")


def find_baselines(start: Path | None = None) -> Path:
    """The project's baselines folder, found the way pytest finds its rootdir.

    Walk up from `start` (the working folder) to the first folder that holds a `baselines`
    folder or a project marker (pyproject.toml, tox.ini, setup.cfg, .git), and use its
    `baselines`. A command run from a subfolder or /tmp would otherwise read no records and
    no cost-model fit without a word. Nothing found: `baselines` under `start`.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "baselines").is_dir() or any((folder / m).exists() for m in PROJECT_MARKERS):
            return folder / "baselines"
    return here / "baselines"


def baselines_root(given: str | Path | None) -> Path:
    """`--baselines` as given, else the project's (`find_baselines`)."""
    return Path(given) if given else find_baselines()


R = TypeVar("R", PortableRecord, MachineRecord)


class BaselineError(ValueError):
    """A baseline file that cannot be used; the message names the file."""


def _read(path: Path, parse: Callable[[object, str], R], variant_id: str) -> R | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: unreadable baseline ({exc})") from None
    try:
        record = parse(data, str(path))
    except RecordError as exc:
        raise BaselineError(str(exc)) from None
    if record.variant != variant_id:
        raise BaselineError(f"{path}: holds variant {record.variant!r}, expected {variant_id!r}")
    return record


LOCK_FILE = ".rebaseline.lock"
_HELD: dict[Path, list] = {}  # lock path -> [fd, holders in this process]


def write_record(path: Path, data: dict) -> Path:
    """A record as stored: sorted keys, two-space indent, no NaN, written atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


class RebaselineLock:
    """One rebaseline at a time per machine key: an flock on `<root>/<key>/.rebaseline.lock`.

    Taken when a rebaseline starts, so a second one of the same key refuses at once (saying
    who holds it) instead of measuring for minutes and then overwriting; released on commit
    or abort, and by the kernel if the process dies. Sessions of one process share it.
    """

    def __init__(self, root: Path, machine_key: str) -> None:
        self.path = Path(root) / machine_key / LOCK_FILE
        self.machine_key = machine_key
        self.held = False

    def acquire(self) -> None:
        if self.held:
            return
        key = self.path.resolve() if self.path.exists() else self.path.absolute()
        if key in _HELD:
            _HELD[key][1] += 1
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise BaselineError(
                    f"another rebaseline of {self.machine_key} is running ({holder}; lock {self.path}): "
                    "wait for it to finish, or stop it"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} since {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC".encode())
            _HELD[key] = [fd, 1]
        self._key = key
        self.held = True

    def release(self) -> None:
        if not self.held:
            return
        entry = _HELD[self._key]
        entry[1] -= 1
        if entry[1] == 0:
            fcntl.flock(entry[0], fcntl.LOCK_UN)
            os.close(entry[0])
            del _HELD[self._key]
        self.held = False

    @staticmethod
    def holder(root: Path, machine_key: str) -> str | None:
        """Who holds the lock of `machine_key` in another process, or None."""
        path = Path(root) / machine_key / LOCK_FILE
        if not path.exists() or path.resolve() in _HELD:
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.read(fd, 200).decode(errors="replace").strip() or "another process"
        finally:
            os.close(fd)
        return None


def commit_files(files: list[tuple[Path, dict]]) -> list[Path]:
    """Write every record to a temporary file beside its target first, then rename them all.

    A failure while writing (disk full, a bad value) removes the temporaries and changes no
    stored record; the renames that follow are each atomic and take microseconds.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
            fd, tmp = staged_file(path, ".staged")
            staged.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    return [path for _, path in staged]


class BaselineStore:
    """Records of one tier: the portable ones, and one machine key's."""

    def __init__(self, root: str | Path, machine_key: str, tier: str) -> None:
        if machine_key == PORTABLE:
            raise ValueError(f"{PORTABLE!r} is the portable records' folder, not a machine key")
        self.root = Path(root)
        self.machine_key = safe_name(machine_key, "machine key")
        self.tier = safe_name(tier, "tier name")
        self.lock = RebaselineLock(self.root, self.machine_key)
        self.staged: list[tuple[Path, dict]] = []

    @property
    def folder(self) -> Path:
        """This machine's folder for the tier."""
        return self.root / self.machine_key / self.tier

    @property
    def portable_folder(self) -> Path:
        return self.root / PORTABLE / self.tier

    def path_for(self, variant_id: str) -> Path:
        """This machine's record of a variant."""
        return inside(self.root, self.folder / f"{safe_name(variant_id, 'variant id')}.json", "record")

    def portable_path(self, variant_id: str) -> Path:
        return inside(self.root, self.portable_folder / f"{safe_name(variant_id, 'variant id')}.json", "record")

    def load_machine(self, variant_id: str) -> MachineRecord | None:
        """This machine's record, None if absent; BaselineError naming the file if unusable."""
        return _read(self.path_for(variant_id), MachineRecord.from_dict, variant_id)

    def load_portable(self, variant_id: str) -> PortableRecord | None:
        """The tier's portable record, None if absent; BaselineError naming the file if unusable."""
        return _read(self.portable_path(variant_id), PortableRecord.from_dict, variant_id)

    def machine_records(self) -> list[MachineRecord]:
        """Every record of this machine and tier (the cost-model fit reads these)."""
        records = []
        for path in sorted(self.folder.glob("*.json")):
            record = self.load_machine(path.stem)
            if record is not None:
                records.append(record)
        return records

    def begin(self) -> None:
        """Start a rebaseline: take this machine's lock; records are staged until `commit`."""
        self.lock.acquire()
        self.staged = []

    def stage(self, portable: PortableRecord | None, machine: MachineRecord | None) -> None:
        """Keep a variant's records for the commit at the end (nothing is written yet)."""
        if machine is not None and machine.machine_key != self.machine_key:
            raise ValueError(f"refusing to write {machine.machine_key}'s record from {self.machine_key}'s store")
        if portable is not None:
            self.staged.append((self.portable_path(portable.variant), portable.to_dict()))
        if machine is not None:
            self.staged.append((self.path_for(machine.variant), machine.to_dict()))

    def with_processes(self, medians: dict[str, list[float]]) -> dict[str, float | None]:
        """Staged machine records of these variants keep fresh processes' medians
        (Latency.with_processes), all under one id: the same processes timed them all, in order;
        each variant's own spread."""
        spreads: dict[str, float | None] = {}
        processes_of = f"{self.machine_key}/{self.tier}@{now_utc()}"
        for i, (path, data) in enumerate(self.staged):
            if "machine_key" not in data or data.get("variant") not in medians:
                continue
            latency = Latency.from_dict(data["latency"], str(path)).with_processes(
                medians[data["variant"]], processes_of
            )
            self.staged[i] = (path, {**data, "latency": latency.to_dict()})
            spreads[data["variant"]] = latency.spread
        return spreads

    def commit(self) -> list[Path]:
        """Write every staged record together, then release the lock."""
        try:
            return commit_files(self.staged)
        finally:
            self.staged = []
            self.lock.release()

    def abort(self) -> list[str]:
        """Drop the staged records (an interrupted rebaseline); what would have been recorded."""
        would = sorted({str(path) for path, _ in self.staged})
        self.staged = []
        self.lock.release()
        return would


def migrate_v1(root: str | Path, portable_quality: Callable[[str, str], bool]) -> list[str]:
    """Convert every schema-1 record under `root` into a portable and a machine record.

    `portable_quality(tier, variant_id)` says whether the variant's quality figures belong
    in the portable record. Everything is read, split and cross-checked first (two machines
    that disagree on a variant's portable figures stop the migration, naming both files);
    only then is anything written. Returns what it did, one line per file.
    """
    root = Path(root)
    if not root.is_dir():
        raise BaselineError(f"{root}: no such baselines folder")
    portable: dict[Path, tuple[PortableRecord, Path]] = {}
    machine: dict[Path, MachineRecord] = {}
    for path in sorted(root.glob("*/*/*.json")):
        key, tier = path.parent.parent.name, path.parent.name
        if key == PORTABLE:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BaselineError(f"{path}: unreadable baseline ({exc})") from None
        if not isinstance(data, dict) or data.get("schema") == SCHEMA:
            continue
        try:
            p, m = split_v1(data, str(path), tier, portable_quality(tier, str(data.get("variant", ""))))
            if m.machine_key != key:  # the machine half is written back in place: never another machine's
                raise RecordError(f"{path}: field 'machine_key' {m.machine_key!r} is not its folder's key {key!r}")
            target = inside(root, root / PORTABLE / safe_name(tier, f"{path}: tier folder") / f"{p.variant}.json")
        except (RecordError, UnsafeName) as exc:
            raise BaselineError(str(exc)) from None
        if target in portable and not portable[target][0].same_values(p):
            raise BaselineError(
                f"{path} and {portable[target][1]} disagree on {p.variant}'s portable figures; "
                "re-record one machine before migrating"
            )
        existing = target.exists() and target not in portable
        if existing:
            current = _read(target, PortableRecord.from_dict, p.variant)
            if current is not None and not current.same_values(p):
                raise BaselineError(f"{path} disagrees with the stored {target}; re-record before migrating")
        else:
            portable.setdefault(target, (p, path))
        machine[path] = m
    files = [(target, record.to_dict()) for target, (record, _) in portable.items()]
    files += [(path, record.to_dict()) for path, record in machine.items()]
    commit_files(files)  # staged beside their targets first: a failure changes no record
    done = [f"{target}: portable half of {source}" for target, (_, source) in portable.items()]
    return done + [f"{path}: machine half, schema {SCHEMA}" for path in machine]
