"""Turn one variant's measurement and its stored records into a Verdict.

Each kind of bound is judged where its record is valid: guard and reference everywhere (no
record needed), work and portable quality wherever the tier's portable record exists, latency
(and machine-bound quality) only where this machine key has a record - and latency once the
whole run is timed (judge/latency.py). The verdict says, per kind, which were judged and why
the others were not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from perfsuite.device.environment import environment_changes
from perfsuite.judge.checks import (
    JUDGED_MEMORY,
    BoundCheck,
    Cause,
    Coverage,
    Status,
    Verdict,
    check_memory,
    check_prediction,
    check_quality,
    check_relative,
    check_work,
    guard_checks,
    latency_check,
    reference_checks,
    reference_diagnosis,
    status_of,
)
from perfsuite.judge.latency import Decision, LatencyDecision
from perfsuite.matrix.tier import RelativeBound
from perfsuite.measure.measurement import Measurement
from perfsuite.models.modelspec import ModelSpec
from perfsuite.stats.intervals import RatioEstimate
from perfsuite.store.baselines import BaselineError
from perfsuite.store.records import MachineRecord, PortableRecord
from perfsuite.variant import Bounds, TierSettings

COMPARABLE_SETTINGS = (
    "data",
    "tokenizer",
    "rows",
    "batch_size",
    "max_length",
    "max_batch_tokens",
    "padding_side",
    "truncation",
    "tta",
)
SETTING_DEFAULTS = {"truncation": "fair"}  # a record from before the setting holds its default
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
    stored, measured = {**SETTING_DEFAULTS, **stored}, {**SETTING_DEFAULTS, **measured}
    return [
        f"{k} {stored.get(k)!r} -> {measured.get(k)!r}"
        for k in COMPARABLE_SETTINGS
        if k in stored and k in measured and stored.get(k) != measured.get(k)
    ]


@dataclass(frozen=True)
class Evidence:
    """What the judging table reads for one variant: its measurement and the records valid for it
    (a record recorded for another workload is set aside, and `other` says why)."""

    measurement: Measurement
    portable: PortableRecord | None
    machine: MachineRecord | None
    bounds: Bounds
    settings: TierSettings | None
    stored: StoredRecords
    other: str = ""

    def no_record(self, which: str) -> str:
        if self.other:
            return self.other
        if which == "machine":
            return f"no baseline for machine {self.stored.machine_key}; {REBASELINE}"
        return f"no portable record at {self.stored.portable_path}; {REBASELINE}"


Judgement = tuple[list[BoundCheck], Coverage]


@dataclass(frozen=True)
class BoundKind:
    """One row of the judging table: a kind of bound, what it needs, and how it judges.

    Adding a kind is adding a row (and its check in `checks`, its tolerance in `Bounds`); the
    verdict, the report's "judged here" column, report.json and `--perfsuite-strict` follow."""

    kind: str
    needs: str  # what must exist for it to judge, in words (docs/bounds.md)
    stored: bool  # needs a stored record (so an unusable baseline stops it)
    judge: Callable[[Evidence], Judgement]


def _guard(e: Evidence) -> Judgement:
    q = e.measurement.quality
    return guard_checks(e.measurement.work.rows, q.nonfinite_rows), Coverage("guard", True)


def _reference(e: Evidence) -> Judgement:
    quality = e.measurement.quality
    if quality.reference is not None:
        return reference_checks(quality.reference, e.bounds), Coverage("reference", True)
    if quality.reference_error:
        return [], Coverage("reference", False, f"no in-run reference ({quality.reference_error})")
    return [], Coverage("reference", False, "not scored (shape-only weights)")


def _work(e: Evidence) -> Judgement:
    if e.portable is None:
        return [], Coverage("work", False, e.no_record("portable"))
    return check_work(e.measurement.work.counters(), e.portable.work, e.bounds.work_rel), Coverage("work", True)


def _quality(e: Evidence) -> Judgement:
    q = e.measurement.quality
    quality = e.portable.quality if e.portable is not None and e.portable.quality else None
    quality = quality or (e.machine.quality if e.machine is not None else None)
    if q.log_loss is None:
        return [], Coverage("quality", False, "not scored (shape-only weights or non-finite rows)")
    if quality is None:
        why = e.other or f"no quality record for this dtype at {e.stored.portable_path} or {e.stored.machine_path}"
        return [], Coverage("quality", False, why)
    checks = check_quality(
        q.log_loss, q.accuracy, quality.log_loss, quality.accuracy, e.bounds, q.lm_log_loss, quality.lm_log_loss
    )
    return checks, Coverage("quality", True)


def _latency(e: Evidence) -> Judgement:
    """Pending where this machine's record can judge it: the decision needs the whole run
    (judge/latency.py; PerfSession.decide_latency makes it)."""
    if e.settings is not None and not e.settings.judge_latency:
        return [], Coverage(
            "latency", False, "shown, not judged on this tier (judge_latency = false)", Cause.NOT_ON_TIER
        )
    if e.machine is None:
        return [], Coverage("latency", False, e.no_record("machine"), Cause.NO_RECORD)
    return [], Coverage("latency", False, "decided once the run's variants are timed", Cause.PENDING)


def latency_coverage(decision: LatencyDecision) -> Judgement:
    """A run's latency decision as the variant's latency check and coverage."""
    if decision.decision is Decision.UNDECIDED:
        why = f"undecided: {decision.undecided}: {decision.describe()}"
        return [], Coverage("latency", False, why, Cause.UNDECIDED)
    return [latency_check(decision)], Coverage("latency", True)


def _memory(e: Evidence) -> Judgement:
    """Peak memory against this machine's record, where the measurement is the model's own."""
    if e.machine is None:
        return [], Coverage("memory", False, e.no_record("machine"))
    peak, kind = e.measurement.memory.peak_bytes, e.measurement.memory.kind
    stored, stored_kind = e.machine.memory.get("peak_bytes"), e.machine.memory.get("kind")
    if kind not in JUDGED_MEMORY:
        # a CPU's RSS increase depends on what ran before in the process: shown, not judged
        return [], Coverage("memory", False, f"{kind} is shown, not judged")
    if not peak or not isinstance(stored, int) or stored <= 0:
        return [], Coverage("memory", False, "no peak memory measured or recorded")
    if stored_kind != kind:
        return [], Coverage("memory", False, f"measured as {kind}, recorded as {stored_kind}")
    return [check_memory(peak, stored, e.bounds)], Coverage("memory", True)


# The judging table, in the order the report lists the kinds.
JUDGING: tuple[BoundKind, ...] = (
    BoundKind("guard", "nothing: every logit finite", False, _guard),
    BoundKind("reference", "the in-run fp32 eager batch-1 reference of the same model", False, _reference),
    BoundKind("work", "the tier's portable record", True, _work),
    BoundKind("quality", "the portable record (this machine's for machine-bound dtypes)", True, _quality),
    BoundKind("latency", "this machine's record and a quiet machine", True, _latency),
    BoundKind("memory", "this machine's record and a device allocator's peak", True, _memory),
)


def judge(
    measurement: Measurement,
    stored: StoredRecords,
    bounds: Bounds,
    settings: TierSettings | None = None,
    strict: bool = False,
    spec: ModelSpec | None = None,
) -> Verdict:
    """pass/fail on every bound whose record is valid here; skip when nothing beyond the guard was
    (fail instead with `strict`: a CI gate that judged nothing stored must not look green).
    `spec`: the variant's model as the matrix declares it (for the reference diagnosis)."""
    where = stored.machine_path if stored.machine is not None else stored.portable_path
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
    evidence = Evidence(measurement, portable, machine, bounds, settings, stored, other)

    checks: list[BoundCheck] = []
    coverage: list[Coverage] = []
    for row in JUDGING:
        if row.stored and stored.error is not None:
            coverage.append(Coverage(row.kind, False, "unusable baseline"))
            continue
        found, covered = row.judge(evidence)
        checks += found
        coverage.append(covered)
    if stored.error is not None:
        return Verdict(Status.FAIL, checks, str(stored.error), where, coverage=coverage)

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
    failed_reference = any(c.kind == "reference" and not c.ok for c in checks)
    reason = reference_diagnosis(measurement.variant, reference_dtype, spec) if failed_reference else ""
    nothing = f"baseline {other}" if other else f"no baseline at {stored.portable_path}; {REBASELINE}"
    return Verdict.of(checks, coverage, reason, where, changes, strict, nothing)


# -- pairs: the relative bounds ----------------------------------------------------------------
@dataclass(frozen=True)
class PairEvidence:
    """A relative bound's interleaved estimate and, where it asks, the cost model's prediction."""

    bound: RelativeBound
    estimate: RatioEstimate
    predicted: float | None = None
    source: str = ""


PAIR_JUDGING: tuple[tuple[str, Callable[[PairEvidence], list[BoundCheck]]], ...] = (
    ("relative", lambda e: [check_relative(e.bound, e.estimate)]),
    (
        "model",
        lambda e: [check_prediction(e.bound, e.estimate, e.predicted, e.source)] if e.predicted is not None else [],
    ),
)


def judge_pair(evidence: PairEvidence) -> Verdict:
    """A relative bound's verdict from the pair rows of the judging table."""
    checks = [check for _, judge_one in PAIR_JUDGING for check in judge_one(evidence)]
    return Verdict(status_of(checks), checks)
