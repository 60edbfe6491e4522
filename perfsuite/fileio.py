"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def staged_file(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """A temporary file beside `path` (fd, name) with the mode a plain new file gets (0666 less
    the umask): mkstemp's 0600 would keep a report or a dashboard from the web server meant to
    serve it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def atomic_write_text(path: Path, text: str) -> Path:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = staged_file(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_folder(folder: Path, build: Callable[[Path], object], marker: str = "config.json") -> Path:
    """`folder`, built once: `build` fills a temporary sibling, which is renamed into place. A
    folder with `marker` is complete; a concurrent builder that wins the rename leaves an
    equivalent one, and the loser's copy is removed."""
    if (folder / marker).is_file():
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        os.replace(tmp, folder)
    except OSError:
        if not (folder / marker).is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def finite_or_none(value):
    """`value` with every NaN or infinity replaced by None, so JSON can be strict (RFC 8259)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def default_cache_dir() -> Path:
    """Where generated artefacts (miniature checkpoints, token-length tables) are cached."""
    root = os.environ.get("PERFSUITE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "perfsuite"
    )
    return Path(root)


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, computed once per content state in a process.

    Data files, tokenizers and shipped weights are hashed for cache keys and baselines on
    every variant; the cache key includes size and mtime, so an edited file is re-read.
    """
    stat = Path(path).stat()
    return _digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:  # streamed: a data file can be gigabytes
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(path: Path) -> str:
    """`name@digest12`: how records name the data file they were measured on."""
    return f"{path.name}@{file_digest(path)[:12]}"


FULL_DIGEST_LIMIT = 1 << 30  # weights above this are fingerprinted (size, head, tail), not hashed whole


def weights_identity(folder: Path) -> str:
    """`weights@<digest12>` of a checkpoint or adapter folder's safetensors files, by content.

    Not by path, so the same weights on another machine are the same identity; an 18 GB
    checkpoint is fingerprinted from each file's size and first and last MiB instead of read.
    """
    files = sorted(Path(folder).glob("*.safetensors"))
    digest = hashlib.sha256()
    whole = sum(f.stat().st_size for f in files) <= FULL_DIGEST_LIMIT
    for f in files:
        digest.update(f"{f.name}:{f.stat().st_size}".encode())
        if whole:
            digest.update(bytes.fromhex(file_digest(f)))
        else:
            with open(f, "rb") as handle:
                digest.update(handle.read(1 << 20))
                handle.seek(max(0, f.stat().st_size - (1 << 20)))
                digest.update(handle.read(1 << 20))
    return f"weights@{digest.hexdigest()[:12]}" + ("" if whole else "~")


def console_width(default: int = 200) -> int:
    """Columns for a rendered table: COLUMNS, else the terminal's, else `default` (a log file)."""
    import shutil

    return shutil.get_terminal_size((default, 24)).columns


def adapter_problem(folder: Path) -> str | None:
    """Why a LoRA adapter folder cannot be loaded safely, or None: only safetensors weights
    (an adapter_model.bin is a pickle, and loading a pickle can run code)."""
    if (folder / "adapter_model.safetensors").is_file():
        return None
    pickle = " (it has adapter_model.bin, a pickle: re-save it with safe_serialization=True)"
    return f"no adapter_model.safetensors{pickle if (folder / 'adapter_model.bin').is_file() else ''}"
