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

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .fileio import atomic_write_text
from .names import inside, safe_name
from .records import PORTABLE, SCHEMA, MachineRecord, PortableRecord, RecordError, split_v1

DEFAULT_BASELINES = Path("baselines")
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


def write_record(path: Path, data: dict) -> Path:
    """A record as stored: sorted keys, two-space indent, no NaN, written atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


class BaselineStore:
    """Records of one tier: the portable ones, and one machine key's."""

    def __init__(self, root: str | Path, machine_key: str, tier: str) -> None:
        if machine_key == PORTABLE:
            raise ValueError(f"{PORTABLE!r} is the portable records' folder, not a machine key")
        self.root = Path(root)
        self.machine_key = safe_name(machine_key, "machine key")
        self.tier = safe_name(tier, "tier name")

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

    def save(self, portable: PortableRecord | None, machine: MachineRecord | None) -> list[Path]:
        """Atomically write a variant's records: the portable one and this machine's only."""
        written = []
        if portable is not None:
            written.append(write_record(self.portable_path(portable.variant), portable.to_dict()))
        if machine is not None:
            if machine.machine_key != self.machine_key:
                raise ValueError(f"refusing to write {machine.machine_key}'s record from {self.machine_key}'s store")
            written.append(write_record(self.path_for(machine.variant), machine.to_dict()))
        return written


def migrate_v1(root: str | Path, portable_quality: Callable[[str, str], bool]) -> list[str]:
    """Convert every schema-1 record under `root` into a portable and a machine record.

    `portable_quality(tier, variant_id)` says whether the variant's quality figures belong
    in the portable record. Everything is read, split and cross-checked first (two machines
    that disagree on a variant's portable figures stop the migration, naming both files);
    only then is anything written. Returns what it did, one line per file.
    """
    root = Path(root)
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
            p, m = split_v1(data, str(path), tier, portable_quality(tier, data.get("variant", "")))
        except RecordError as exc:
            raise BaselineError(str(exc)) from None
        target = root / PORTABLE / tier / f"{p.variant}.json"
        if target in portable and not portable[target][0].same_values(p):
            raise BaselineError(
                f"{path} and {portable[target][1]} disagree on {p.variant}'s portable figures; "
                "re-record one machine before migrating"
            )
        existing = target.exists() and target not in portable
        if existing:
            current = PortableRecord.from_dict(json.loads(target.read_text(encoding="utf-8")), str(target))
            if not current.same_values(p):
                raise BaselineError(f"{path} disagrees with the stored {target}; re-record before migrating")
        else:
            portable.setdefault(target, (p, path))
        machine[path] = m
    done = []
    for target, (record, source) in portable.items():
        write_record(target, record.to_dict())
        done.append(f"{target}: portable half of {source}")
    for path, record in machine.items():
        write_record(path, record.to_dict())
        done.append(f"{path}: machine half, schema {SCHEMA}")
    return done
