"""The software environment recorded beside every baseline value (not part of the key)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

TRACKED = ("torch", "transformers", "bitsandbytes", "tokenizers", "peft", "perfsuite")
# What else produced a record, per variant: the weights (a digest, not a path, so a record
# holds on another machine), the adapter, threads, the 4-bit compute dtype, the reference dtype.
PROVENANCE = ("checkpoint", "adapter", "threads", "nf4_compute_dtype", "reference_dtype")


def versions_of(names) -> dict[str, str]:
    """Installed version of each distribution ('absent' where it is not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def package_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **versions_of(TRACKED)}


def git_commit(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def environment_changes(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """Human-readable differences, e.g. 'transformers 5.23.0 -> 5.24.0', of what both sides know:
    a record from before a key was kept (peft, the provenance keys) says nothing about it."""
    keys = [k for k in ("python", *TRACKED, *PROVENANCE) if k != "perfsuite"]
    return [
        f"{k} {recorded[k]} -> {current[k]}"
        for k in keys
        if k in recorded and k in current and recorded[k] != current[k]
    ]
