"""Turn one variant's measurement and its stored records into a Verdict.

Each kind of bound is judged where its record is valid: guard and reference everywhere (no
record needed), work and portable quality wherever the tier's portable record exists, latency
(and machine-bound quality) only where this machine key has a record - and latency only when
the machine is quiet enough to judge it. The verdict says, per kind, which were judged and why
the others were not.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from perfsuite.device.environment import environment_changes
from perfsuite.judge.checks import (
    JUDGED_MEMORY,
    BoundCheck,
    Coverage,
    Verdict,
    check_latency,
    check_memory,
    check_quality,
    check_work,
    guard_checks,
    reference_checks,
    reference_diagnosis,
    status_of,
)
from perfsuite.measure.measurement import Measurement
from perfsuite.store.baselines import BaselineError
from perfsuite.store.records import MachineRecord, PortableRecord
from perfsuite.variant import Bounds, TierSettings

# The busy signals' seam: "quiet" judges latency whatever the load, "busy" never does. For
# tests (a unit test must pass beside other work) and benchmarks; unset in production.
BUSY_ENV = "PERFSUITE_BUSY_SIGNALS"
COMPARABLE_SETTINGS = ("data", "tokenizer", "rows", "batch_size", "max_length", "padding_side", "tta")
REBASELINE = "record one with `tox -e rebaseline`"


@dataclass(frozen=True)
class StoredRecords:
    """What the store holds for one variant on this machine, and where."""

    portable: PortableRecord | None
    machine: MachineRecord | None
    portable_path: str
    machine_path: str
    machine_key: str
    error: BaselineError | None = None


def settings_differ(stored: dict[str, Any], measured: dict[str, Any]) -> list[str]:
    return [
        f"{k} {stored.get(k)!r} -> {measured.get(k)!r}"
        for k in COMPARABLE_SETTINGS
        if k in stored and k in measured and stored.get(k) != measured.get(k)
    ]


def busy_reason(measurement: Measurement, machine: MachineRecord, settings: TierSettings) -> str | None:
    """Why this machine was too busy to judge latency, or None.

    Three signals, all taken while the variant was timed: the CPU time other processes took
    (runner.OtherLoad), the interference probe (a fixed torch-only workload run between
    passes) against its time beside the recorded passes, and the passes' own spread. A slower
    variant moves none of them; another process on the cores moves the first, and mostly the
    others.
    """
    stub = os.environ.get(BUSY_ENV, "")
    if stub == "quiet":
        return None
    if stub == "busy":
        return f"undecided: machine busy ({BUSY_ENV}=busy)"
    if stub:
        raise ValueError(f"{BUSY_ENV}={stub!r}: expected 'quiet' or 'busy' (or unset)")
    lat = measurement.latency
    if lat.other_cpu_share is not None and lat.other_cpu_share > settings.busy_other_cpu:
        return (
            f"undecided: machine busy (other processes took {lat.other_cpu_share:.0%} of the CPU time "
            f"while timing, limit {settings.busy_other_cpu:.0%})"
        )
    probes = lat.probe_samples_s
    if probes and machine.latency.probe_s:
        ratio = statistics.median(probes) / machine.latency.probe_s
        if ratio > settings.busy_probe_ratio:
            return f"undecided: machine busy (probe at {ratio:.1f}x its usual time, limit {settings.busy_probe_ratio}x)"
    spread = lat.spread
    if spread == spread and spread > settings.busy_spread:  # NaN (too few samples) says nothing
        return f"undecided: machine busy (passes spread {spread:.0%} of their median, limit {settings.busy_spread:.0%})"
    return None


def _memory(
    measurement: Measurement, machine: MachineRecord | None, bounds: Bounds, no_record: str
) -> tuple[list[BoundCheck], Coverage]:
    """Peak memory against this machine's record, where the measurement is the model's own."""
    if machine is None:
        return [], Coverage("memory", False, no_record)
    peak, kind = measurement.memory.peak_bytes, measurement.memory.kind
    stored, stored_kind = machine.memory.get("peak_bytes"), machine.memory.get("kind")
    if kind not in JUDGED_MEMORY:
        return [], Coverage("memory", False, f"{kind}: depends on what ran before in the process, shown, not judged")
    if not peak or not isinstance(stored, int) or stored <= 0:
        return [], Coverage("memory", False, "no peak memory measured or recorded")
    if stored_kind != kind:
        return [], Coverage("memory", False, f"measured as {kind}, recorded as {stored_kind}")
    return [check_memory(peak, stored, bounds)], Coverage("memory", True)


def _reference(measurement: Measurement, bounds: Bounds) -> tuple[list[BoundCheck], Coverage]:
    quality = measurement.quality
    if quality.reference is not None:
        return reference_checks(quality.reference, bounds), Coverage("reference", True)
    if quality.reference_error:
        return [], Coverage("reference", False, f"no in-run reference ({quality.reference_error})")
    return [], Coverage("reference", False, "not scored (shape-only weights)")


def judge(
    measurement: Measurement,
    stored: StoredRecords,
    bounds: Bounds,
    settings: TierSettings | None = None,
    strict: bool = False,
) -> Verdict:
    """pass/fail on every bound whose record is valid here; skip when nothing beyond the guard was
    (fail instead with `strict`: a CI gate that judged nothing stored must not look green)."""
    q, work = measurement.quality, measurement.work
    checks = guard_checks(work.rows, q.nonfinite_rows)
    ref_checks, ref_cov = _reference(measurement, bounds)
    checks += ref_checks
    coverage = [Coverage("guard", True), ref_cov]
    where = stored.machine_path if stored.machine is not None else stored.portable_path
    if stored.error is not None:
        coverage += [Coverage(k, False, "unusable baseline") for k in ("work", "quality", "latency", "memory")]
        return Verdict("fail", checks, str(stored.error), where, coverage=coverage)

    measured = measurement.settings
    portable, machine = stored.portable, stored.machine
    differs: list[str] = []
    if portable is not None and (d := settings_differ(portable.settings, measured)):
        differs += d
        portable = None
    if machine is not None and (d := settings_differ(machine.settings, measured)):
        differs += [x for x in d if x not in differs]
        machine = None
    other = "recorded for another workload (" + "; ".join(differs) + ")" if differs else ""

    if portable is not None:
        checks += check_work(work.counters(), portable.work, bounds.work_rel)
        coverage.append(Coverage("work", True))
    else:
        coverage.append(Coverage("work", False, other or f"no portable record at {stored.portable_path}; {REBASELINE}"))

    quality = portable.quality if portable is not None and portable.quality else None
    quality = quality or (machine.quality if machine is not None else None)
    if q.log_loss is None:
        coverage.append(Coverage("quality", False, "not scored (shape-only weights or non-finite rows)"))
    elif quality is None:
        why = other or f"no quality record for this dtype at {stored.portable_path} or {stored.machine_path}"
        coverage.append(Coverage("quality", False, why))
    else:
        checks += check_quality(q.log_loss, q.accuracy, quality.log_loss, quality.accuracy, bounds)
        coverage.append(Coverage("quality", True))

    busy = busy_reason(measurement, machine, settings) if machine is not None and settings is not None else None
    if machine is None:
        why = other or f"no baseline for machine {stored.machine_key}; {REBASELINE}"
        coverage.append(Coverage("latency", False, why))
    elif busy:
        coverage.append(Coverage("latency", False, busy))
    else:
        lat = machine.latency
        checks.append(check_latency(measurement.latency.samples_s, lat.median_s, lat.samples_s, bounds))
        coverage.append(Coverage("latency", True))

    memory_checks, memory_coverage = _memory(
        measurement, machine, bounds, other or f"no baseline for machine {stored.machine_key}"
    )
    checks += memory_checks
    coverage.append(memory_coverage)

    changes: list[str] = []
    source = machine or portable
    if source is not None:
        changes = environment_changes(source.environment, measurement.environment)
        # The matrix's bounds decide (a tolerance change needs no rebaseline); the record keeps
        # the ones it was recorded with, and a difference is reported beside the verdict.
        recorded, current = source.tolerances, asdict(bounds)
        changed = sorted(k for k in recorded if k in current and recorded[k] != current[k])
        if changed:
            changes.append("tolerances changed since baseline: " + ", ".join(changed))
    reference_dtype = settings.reference_dtype if settings is not None else "fp32"  # gpu.toml's is fp16
    reason = reference_diagnosis(measurement.variant, reference_dtype) if any(not c.ok for c in ref_checks) else ""
    verdict = Verdict(status_of(checks), checks, reason, where, changes, coverage)
    if verdict.status == "pass" and not verdict.judged_beyond_guard:
        verdict.status = "fail" if strict else "skip"
        verdict.reason = f"baseline {other}" if other else f"no baseline at {stored.portable_path}; {REBASELINE}"
        if strict:
            verdict.reason = f"strict: nothing judged beyond the guard ({verdict.reason})"
    return verdict
