"""Stored baseline records, typed, split by what each figure depends on.

- ``PortableRecord`` (``baselines/portable/<tier>/<variant>.json``): what code, data and
  library versions decide - the work counts and, for the dtypes whose quality was measured
  to hold across CPU kernels, log-loss and accuracy. Judged on every machine.
- ``MachineRecord`` (``baselines/<machine-key>/<tier>/<variant>.json``): what the machine
  decides - latency samples, the busy-probe time they were taken beside, peak memory, and
  the quality figures that differ between kernels. Judged only on that machine key.

Every read goes through ``from_dict`` (which validates and names the file on error) and every
write through ``to_dict``; ``SCHEMA`` is bumped whenever the layout changes, and
``migrate_v1`` turns the schema-1 layout (one record per machine) into this one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from perfsuite.store.names import UnsafeName, safe_name

SCHEMA = 2
PORTABLE = "portable"  # the folder beside the machine keys that holds the portable records
# Deterministic work of one pass, compared exactly: token counts, analytic FLOPs, weight bytes.
WORK_COUNTERS = ("rows", "batches", "real_tokens", "processed_tokens", "flops", "weight_bytes")


# Two runs' portable quality is "the same" within this: fp32 log-loss differed by at most 1.2e-7
# between the AMD EPYC and the Intel Xeon (docs/experiments/2026-11-27-latency-rules-history.md),
# far inside any bound judged on it.
QUALITY_SAME_ABS = 1e-6


class RecordError(ValueError):
    """A record that cannot be used; the message names the file and the field."""


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _need(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise RecordError(f"{where}: lacks {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise RecordError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _number(value: Any, where: str, name: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{where}: {name} must be a number, got {value!r}")
    if positive and not value > 0:
        raise RecordError(f"{where}: {name} must be positive, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Quality:
    """Log-loss and accuracy of one pass over the workload (None where not scored), and for real
    weights the backbone's next-token log-loss on the fixed text (measure/language.py)."""

    log_loss: float | None
    accuracy: float | None
    lm_log_loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"log_loss": self.log_loss, "accuracy": self.accuracy}
        if self.lm_log_loss is not None:  # only real-weights records have it; the others stay as they were
            data["lm_log_loss"] = self.lm_log_loss
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Quality | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            raise RecordError(f"{where}: quality must be an object")
        values = {k: data.get(k) for k in ("log_loss", "accuracy", "lm_log_loss")}
        for key, value in values.items():
            if value is not None:
                _number(value, where, f"quality.{key}")
        return cls(**values)


@dataclass(frozen=True)
class Latency:
    """Whole-pass times of one run, the busy probe's median beside them, and - from a rebaseline
    that timed the variant in fresh processes - each process's median: how far this variant
    moves between processes on this machine, which no single run can show (judge/latency.py)."""

    median_s: float  # the record's level: the geometric mean of processes_s where it has them
    samples_s: tuple[float, ...]
    probe_s: float | None = None  # the interference probe's median while these were taken
    processes_s: tuple[float, ...] = ()  # medians of fresh processes
    # the rebaseline those processes belong to: records with the same id were timed by the same
    # processes, in the same order (process j of one is process j of the others)
    processes_of: str = ""

    @classmethod
    def from_samples(cls, samples: list[float], probe_s: float | None = None) -> Latency:
        return cls(statistics.median(samples), tuple(round(s, 6) for s in samples), probe_s)

    def with_processes(self, medians: Sequence[float], processes_of: str = "") -> Latency:
        """This record timed again in fresh processes: the recording run's own median first, then
        theirs (each a process that timed the tier's variants in turn, as a run does), and their
        geometric mean as the record's level (the mean of logs the noise model compares);
        `processes_of` names the rebaseline they belong to."""
        medians_s = tuple(round(m, 6) for m in (self.median_s, *medians))
        return Latency(statistics.geometric_mean(medians_s), self.samples_s, self.probe_s, medians_s, processes_of)

    @property
    def spread(self) -> float | None:
        """Between-process standard deviation of log(median), from 2 or more processes; else None."""
        if len(self.processes_s) < 2:
            return None
        return statistics.stdev(math.log(m) for m in self.processes_s)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"median_s": self.median_s, "samples_s": list(self.samples_s), "probe_s": self.probe_s}
        if self.processes_s:  # a record of one process (--processes 0) has none
            data["processes_s"] = list(self.processes_s)
        if self.processes_of:
            data["processes_of"] = self.processes_of
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Latency:
        if not isinstance(data, dict):
            raise RecordError(f"{where}: latency must be an object")
        median = _number(data.get("median_s"), where, "latency.median_s", positive=True)
        samples = data.get("samples_s")
        if not isinstance(samples, list) or not samples:
            raise RecordError(f"{where}: latency.samples_s must be a non-empty list")
        values = tuple(_number(s, where, "latency.samples_s[]", positive=True) for s in samples)
        probe = data.get("probe_s")
        processes = data.get("processes_s", [])
        if not isinstance(processes, list):
            raise RecordError(f"{where}: latency.processes_s must be a list")
        medians = tuple(_number(m, where, "latency.processes_s[]", positive=True) for m in processes)
        probe_s = None if probe is None else _number(probe, where, "latency.probe_s", True)
        processes_of = data.get("processes_of", "")
        if not isinstance(processes_of, str):
            raise RecordError(f"{where}: latency.processes_of must be a string")
        return cls(median, values, probe_s, medians, processes_of)


@dataclass(frozen=True)
class PortableRecord:
    """Work counts (and portable quality) of one variant on one tier, valid on any machine."""

    variant: str
    tier: str
    work: dict[str, int]
    quality: Quality | None
    settings: dict[str, Any]
    environment: dict[str, str]
    tolerances: dict[str, float]
    recorded_at: str = field(default_factory=now_utc)
    recorded_on: str = ""  # the machine key that measured it (information, not a key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "kind": "portable",
            "variant": self.variant,
            "tier": self.tier,
            "recorded_at": self.recorded_at,
            "recorded_on": self.recorded_on,
            "environment": dict(self.environment),
            "settings": dict(self.settings),
            "work": dict(self.work),
            "quality": self.quality.to_dict() if self.quality else None,
            "tolerances": dict(self.tolerances),
        }

    def same_values(self, other: PortableRecord) -> bool:
        """Equal in what is judged (work, quality, settings), whatever recorded them when."""
        return (self.work, self.quality, self.settings) == (other.work, other.quality, other.settings)

    def changes_from(self, stored: PortableRecord) -> list[str]:
        """What a new measurement changes in the stored record's values ([] : it confirms them).

        Work, settings and tolerances compare exactly; quality within QUALITY_SAME_ABS. Who
        recorded it, when, and with which versions are not values: a second runner that
        measures the same figures leaves the file alone instead of rewriting every record."""
        out = [
            f"{part}.{key} {old.get(key)!r} -> {new.get(key)!r}"
            for part, old, new in (
                ("work", stored.work, self.work),
                ("settings", stored.settings, self.settings),
                ("tolerances", stored.tolerances, self.tolerances),
            )
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]
        old_q, new_q = stored.quality, self.quality
        if (old_q is None) != (new_q is None):
            out.append(f"quality {old_q and old_q.to_dict()} -> {new_q and new_q.to_dict()}")
        elif old_q is not None and new_q is not None:
            for key in ("log_loss", "accuracy", "lm_log_loss"):
                a, b = getattr(old_q, key), getattr(new_q, key)
                if (a is None) != (b is None) or (a is not None and abs(a - b) > QUALITY_SAME_ABS):
                    out.append(f"quality.{key} {a!r} -> {b!r}")
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> PortableRecord:
        _check_header(data, where, "portable")
        work = _need(data, "work", dict, where)
        for key, value in work.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise RecordError(f"{where}: work.{key} must be an integer, got {value!r}")
        return cls(
            variant=_need(data, "variant", str, where),
            tier=_need(data, "tier", str, where),
            work=dict(work),
            quality=Quality.from_dict(data.get("quality"), where),
            settings=dict(_need(data, "settings", dict, where)),
            environment=dict(_need(data, "environment", dict, where)),
            tolerances=dict(_need(data, "tolerances", dict, where)),
            recorded_at=str(data.get("recorded_at", "")),
            recorded_on=str(data.get("recorded_on", "")),
        )


@dataclass(frozen=True)
class MachineRecord:
    """Latency, memory (and machine-bound quality) of one variant on one machine key."""

    variant: str
    tier: str
    machine_key: str
    latency: Latency
    memory: dict[str, Any]
    quality: Quality | None
    settings: dict[str, Any]
    environment: dict[str, str]
    tolerances: dict[str, float]
    recorded_at: str = field(default_factory=now_utc)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "kind": "machine",
            "variant": self.variant,
            "tier": self.tier,
            "machine_key": self.machine_key,
            "recorded_at": self.recorded_at,
            "environment": dict(self.environment),
            "settings": dict(self.settings),
            "latency": self.latency.to_dict(),
            "memory": dict(self.memory),
            "quality": self.quality.to_dict() if self.quality else None,
            "tolerances": dict(self.tolerances),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> MachineRecord:
        _check_header(data, where, "machine")
        return cls(
            variant=_need(data, "variant", str, where),
            tier=_need(data, "tier", str, where),
            machine_key=_need(data, "machine_key", str, where),
            latency=Latency.from_dict(data.get("latency"), where),
            memory=dict(data.get("memory") or {}),
            quality=Quality.from_dict(data.get("quality"), where),
            settings=dict(_need(data, "settings", dict, where)),
            environment=dict(_need(data, "environment", dict, where)),
            tolerances=dict(_need(data, "tolerances", dict, where)),
            recorded_at=str(data.get("recorded_at", "")),
        )


def _check_header(data: Any, where: str, kind: str) -> None:
    if not isinstance(data, dict):
        raise RecordError(f"{where}: baseline is not a JSON object")
    schema = data.get("schema")
    if schema == 1:
        raise RecordError(
            f"{where}: schema 1 record (one file per machine, before the portable/machine split); "
            "convert the folder with `perfsuite migrate-baselines`"
        )
    if schema != SCHEMA:
        raise RecordError(f"{where}: unknown schema {schema!r} (this perfsuite reads schema {SCHEMA})")
    if data.get("kind") != kind:
        raise RecordError(f"{where}: holds a {data.get('kind')!r} record where a {kind!r} one belongs")


def split_v1(
    data: Mapping[str, Any], where: str, tier: str, portable_quality: bool
) -> tuple[PortableRecord, MachineRecord]:
    """One schema-1 record as its portable and machine halves (quality goes where the tier says)."""
    if data.get("schema") != 1:
        raise RecordError(f"{where}: not a schema-1 record (schema {data.get('schema')!r})")
    missing = [k for k in ("variant", "machine_key", "work", "latency", "quality", "settings") if k not in data]
    if missing:
        raise RecordError(f"{where}: schema-1 record lacks {', '.join(missing)}")
    for name in ("variant", "machine_key"):  # both become file and folder names
        try:
            safe_name(_need(data, name, str, where), f"{where}: field {name!r}:")
        except UnsafeName as exc:
            raise RecordError(str(exc)) from None
    quality = Quality.from_dict(data["quality"], where)
    env = dict(_need(data, "environment", dict, where)) if "environment" in data else {}
    settings = dict(_need(data, "settings", dict, where))
    tolerances = dict(_need(data, "tolerances", dict, where)) if "tolerances" in data else {}
    stamp = str(data.get("recorded_at", ""))
    counters = _need(data, "work", dict, where)
    work = {}
    for key in WORK_COUNTERS:
        if key in counters:
            value = counters[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise RecordError(f"{where}: work.{key} must be an integer, got {value!r}")
            work[key] = value
    portable_env = {k: v for k, v in env.items() if k != "device"}
    portable = PortableRecord(
        data["variant"],
        tier,
        work,
        quality if portable_quality else None,
        settings,
        portable_env,
        tolerances,
        stamp,
        data["machine_key"],
    )
    machine = MachineRecord(
        data["variant"],
        tier,
        data["machine_key"],
        Latency.from_dict(data["latency"], where),
        dict(data.get("memory") or {}),
        None if portable_quality else quality,
        settings,
        env,
        tolerances,
        stamp,
    )
    return portable, machine
