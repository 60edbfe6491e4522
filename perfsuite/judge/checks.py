"""The bounds as checks, and the verdict they add up to.

Each check compares one measured figure with what is allowed and says both; a verdict also
says, per kind of bound, whether it was judged here and why not (``Coverage``), so a run
that could judge little never looks like a run that judged everything.

Latency is decided once the whole run has been timed (judge/latency.py); until then its
coverage is `Cause.PENDING`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from perfsuite.judge.latency import Decision, LatencyDecision
from perfsuite.matrix.tier import RelativeBound
from perfsuite.models.modelspec import ModelSpec
from perfsuite.models.specs import SPECS
from perfsuite.stats.intervals import RatioEstimate
from perfsuite.variant import Bounds, Variant, Word

# guard and reference need no stored record; work and quality need the tier's portable record
# (or, for machine-bound quality, this machine's); latency and memory this machine's.
BASELINE_FREE = ("guard", "reference")


@dataclass(frozen=True)
class BoundCheck:
    """One bound, evaluated: what was measured, what was allowed, and whether it held."""

    kind: str  # guard | reference | work | latency | memory | quality | relative | model
    name: str
    ok: bool
    measured: str
    allowed: str
    detail: str = ""
    ratio: float | None = None  # measured / baseline, where a kind has one (latency, memory): typed, not parsed

    def describe(self) -> str:
        state = "ok" if self.ok else "FAILED"
        extra = f" ({self.detail})" if self.detail else ""
        return f"[{self.kind}] {self.name} {state}: measured {self.measured}, allowed {self.allowed}{extra}"


class Status(Word):
    """A verdict's state. A str: report.json, tables and tests read it as its value."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    RECORDED = "recorded"


class Cause(Word):
    """Why a kind of bound was not judged, where code acts on it (the words are in `why`)."""

    NO_RECORD = "no record"
    NOT_ON_TIER = "not on this tier"
    PENDING = "pending"  # latency: decided once the run's variants are all timed
    UNDECIDED = "undecided"  # latency: judge/latency.Undecided says which way


@dataclass(frozen=True)
class Coverage:
    """Whether one kind of bound was judged for a variant here, and if not, why."""

    kind: str
    judged: bool
    why: str = ""
    cause: Cause | None = None

    def describe(self) -> str:
        return self.kind if self.judged else f"{self.kind}: not judged - {self.why}"


@dataclass(frozen=True)
class Verdict:
    """pass / fail / skip / recorded, with every bound checked, what was judged, and why."""

    status: Status
    checks: list[BoundCheck] = field(default_factory=list)
    reason: str = ""
    baseline_path: str | None = None
    environment_changes: list[str] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # "pass" given: Status.PASS kept

    @classmethod
    def of(
        cls,
        checks: list[BoundCheck],
        coverage: list[Coverage],
        reason: str = "",
        baseline_path: str | None = None,
        environment_changes: list[str] | None = None,
        strict: bool = False,
        nothing_judged: str = "",
    ) -> Verdict:
        """The status from what was checked and judged, built once: fail on a broken bound; pass
        where a stored-record bound judged; else skip saying `nothing_judged` (fail with `strict`:
        a CI gate that judged nothing stored must not look green)."""
        status, why = Status(status_of(checks)), reason
        if status is Status.PASS and not any(c.judged for c in coverage if c.kind not in BASELINE_FREE):
            status, why = Status.SKIP, nothing_judged
            if strict:
                status, why = Status.FAIL, f"strict: nothing judged beyond the guard ({nothing_judged})"
        return cls(status, checks, why, baseline_path, list(environment_changes or []), coverage)

    def with_latency(self, check: BoundCheck | None, coverage: Coverage, strict: bool = False) -> Verdict:
        """This verdict with its pending latency decided: `check` (pass or fail) or a coverage
        that says why it was not judged."""
        checks = [c for c in self.checks if c.kind != "latency"] + ([check] if check else [])
        cover = [coverage if c.kind == "latency" else c for c in self.coverage]
        nothing = self.reason if self.status is Status.SKIP else ""
        reason = "" if self.status is Status.SKIP else self.reason
        return Verdict.of(checks, cover, reason, self.baseline_path, self.environment_changes, strict, nothing)

    @property
    def latency_pending(self) -> bool:
        return any(c.kind == "latency" and c.cause is Cause.PENDING for c in self.coverage)

    @property
    def failed(self) -> list[BoundCheck]:
        return [c for c in self.checks if not c.ok]

    @property
    def not_judged(self) -> list[Coverage]:
        return [c for c in self.coverage if not c.judged]

    @property
    def judged_beyond_guard(self) -> bool:
        """Did any stored-record bound (work, quality, latency, memory) judge this variant?"""
        return any(c.judged for c in self.coverage if c.kind not in BASELINE_FREE)

    def judged_summary(self) -> str:
        """`guard reference work quality; latency: not judged - ...` for tables and reports."""
        judged = " ".join(c.kind for c in self.coverage if c.judged)
        return "; ".join(x for x in [judged, *(c.describe() for c in self.not_judged)] if x)

    def message(self, variant_id: str) -> str:
        lines = [f"{variant_id}: {self.status}" + (f" - {self.reason}" if self.reason else "")]
        lines += ["  " + c.describe() for c in self.failed]
        lines += ["  " + c.describe() for c in self.not_judged]
        if self.baseline_path:
            lines.append(f"  baseline: {self.baseline_path}")
        if self.environment_changes:
            lines.append("  environment changed since baseline: " + ", ".join(self.environment_changes))
        return "\n".join(lines)


def status_of(checks: Sequence[BoundCheck], otherwise: str = "pass") -> str:
    return "fail" if any(not c.ok for c in checks) else otherwise


def guard_checks(rows: int, nonfinite_rows: int) -> list[BoundCheck]:
    """Non-finite logits fail with a count, on every machine."""
    return [
        BoundCheck(
            "guard",
            "finite logits",
            nonfinite_rows == 0,
            f"{nonfinite_rows} of {rows} rows non-finite",
            "0 non-finite rows",
        )
    ]


def reference_checks(ref: Mapping[str, float], bounds: Bounds) -> list[BoundCheck]:
    """The variant against the eager, unpadded, batch-1 reference of the same run (MLPerf-style margins)."""
    where = "vs the in-run eager batch-1 reference"
    checks = [
        BoundCheck(
            "reference",
            "argmax agreement",
            ref["argmax_agreement"] >= bounds.ref_argmax_agreement - 1e-12,
            f"{ref['argmax_agreement']:.3f}",
            f">= {bounds.ref_argmax_agreement}",
            where,
        ),
        BoundCheck(
            "reference",
            "max |dp|",
            ref["max_abs_dp"] <= bounds.ref_max_abs_dp,
            f"{ref['max_abs_dp']:.4f}",
            f"<= {bounds.ref_max_abs_dp}",
            where,
        ),
    ]
    if "lm_log_loss_increase" in ref:
        checks.append(
            BoundCheck(
                "reference",
                "LM log-loss increase",
                ref["lm_log_loss_increase"] <= bounds.ref_lm_log_loss_increase,
                f"{ref['lm_log_loss_increase']:+.4f} ({ref['lm_log_loss']:.4f} vs {ref['reference_lm_log_loss']:.4f})",
                f"<= +{bounds.ref_lm_log_loss_increase}",
                where + ", next-token log-loss on the fixed text",
            )
        )
    if "log_loss_increase" in ref:
        checks.append(
            BoundCheck(
                "reference",
                "log-loss increase",
                ref["log_loss_increase"] <= bounds.ref_log_loss_increase,
                f"{ref['log_loss_increase']:+.4f} ({ref['log_loss']:.4f} vs {ref['reference_log_loss']:.4f})",
                f"<= +{bounds.ref_log_loss_increase}",
                where,
            )
        )
    return checks


def reference_diagnosis(variant_id: str, reference_dtype: str = "fp32", spec: ModelSpec | None = None) -> str:
    """What a failed reference check means, in words: a different model, or more rounding.

    In the reference's own dtype only the attention path differs from the reference, so a
    failure there is not rounding: the path computes another function (transformers 4.48-5.20
    accept Gemma-2 + sdpa and drop its attention softcapping without a word). Why, where the
    model says (`support.semantic_reason`, as `explain` words it; `spec`: the matrix's own, a
    declared Gemma-2 included).
    """
    from perfsuite.device.support import semantic_reason

    try:
        model, dtype, attention, _ = Variant.split_id(variant_id)
    except ValueError:
        return f"predictions moved beyond the margins from the {reference_dtype} eager reference"
    if dtype != reference_dtype or attention == "eager":
        return f"predictions moved beyond the {dtype} margins from the {reference_dtype} eager reference"
    text = (
        f"{attention} computes a different model from eager: in {dtype}, the reference's own dtype, "
        "the predictions differ beyond rounding, so its speed and predictions are not this model's"
    )
    spec = spec or SPECS.get(model)
    different = semantic_reason(spec, attention) if spec is not None else None
    return f"{text}; {different}" if different else text


def check_work(measured: Mapping[str, int], stored: Mapping[str, int], rel: float) -> list[BoundCheck]:
    checks = []
    for name, s in stored.items():
        m = measured.get(name)
        ok = m is not None and abs(m - s) <= rel * abs(s)
        allowed = f"{s}" if rel == 0 else f"{s} +/- {rel:.1%}"
        checks.append(BoundCheck("work", name, ok, str(m), allowed))
    return checks


def latency_check(decision: LatencyDecision) -> BoundCheck:
    """A decided latency (pass or fail) as a check: the interval of run / record against the tolerance."""
    return BoundCheck(
        "latency",
        "pass time / record",
        decision.decision is not Decision.FAIL,
        f"{decision.ratio:.2f}x [{decision.low:.2f}, {decision.high:.2f}]",
        f"<= {1 + decision.tolerance:.2f}x",
        decision.describe(),
        decision.ratio,
    )


def _fmt_bytes(value: float) -> str:
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.1f} MiB"


# Only a device allocator's peak is the model's own: a CPU's RSS increase depends on what ran
# before in the process (freed memory is reused), so it is shown, not judged.
JUDGED_MEMORY = ("cuda max_memory_allocated",)


def check_memory(peak_bytes: int, stored_bytes: int, bounds: Bounds) -> BoundCheck:
    """Peak memory against this machine's record: T4 users run out of memory before they run out of time."""
    limit = stored_bytes * (1 + bounds.memory_ratio)
    detail = f"ratio {peak_bytes / stored_bytes:.2f}x of baseline {_fmt_bytes(stored_bytes)}"
    ratio = peak_bytes / stored_bytes
    measured, allowed = _fmt_bytes(peak_bytes), f"<= {_fmt_bytes(limit)}"
    return BoundCheck("memory", "peak memory", peak_bytes <= limit, measured, allowed, detail, ratio)


def _against_record(value: float, base: float, margin: float) -> tuple[str, str]:
    """(measured, allowed) with as many digits as the margin needs: a 5e-05 margin printed as
    "2.7828 +/- 5e-05" beside "2.7828" would not show the shift that failed it."""
    digits = max(4, 1 - math.floor(math.log10(margin))) if margin > 0 else 4
    shift = f" ({value - base:+.1e})" if digits > 4 and math.isfinite(value) else ""
    return f"{value:.{digits}f}{shift}", f"{base:.{digits}f} +/- {margin:g}"


def check_quality(
    log_loss: float | None,
    acc: float | None,
    base_ll: float | None,
    base_acc: float | None,
    bounds: Bounds,
    lm: float | None = None,
    base_lm: float | None = None,
) -> list[BoundCheck]:
    """Log-loss and accuracy against the stored record; with real weights, the next-token log-loss too."""
    checks = []
    if base_lm is not None and lm is not None:
        ok = math.isfinite(lm) and abs(lm - base_lm) <= bounds.lm_log_loss_abs
        measured, allowed = _against_record(lm, base_lm, bounds.lm_log_loss_abs)
        checks.append(BoundCheck("quality", "LM log-loss", ok, measured, allowed))
    if base_ll is not None and log_loss is not None and not math.isnan(base_ll):
        ok = math.isfinite(log_loss) and abs(log_loss - base_ll) <= bounds.log_loss_abs
        measured, allowed = _against_record(log_loss, base_ll, bounds.log_loss_abs)
        checks.append(BoundCheck("quality", "log-loss", ok, measured, allowed))
    if base_acc is not None and acc is not None and not math.isnan(base_acc):
        ok = abs(acc - base_acc) <= bounds.accuracy_abs + 1e-12
        checks.append(BoundCheck("quality", "accuracy", ok, f"{acc:.3f}", f"{base_acc:.3f} +/- {bounds.accuracy_abs}"))
    return checks


def check_relative(bound: RelativeBound, estimate: RatioEstimate) -> BoundCheck:
    """Fails only when the whole interval lies outside the band: a confident violation."""
    too_slow = bound.max_ratio is not None and estimate.low > bound.max_ratio
    too_fast = bound.min_ratio is not None and estimate.high < bound.min_ratio
    detail = f"{bound.variant.id} / {bound.reference.id}, interleaved"
    if bound.reason:
        detail += f"; bound because {bound.reason}"
    return BoundCheck("relative", bound.name, not (too_slow or too_fast), estimate.describe(), bound.band(), detail)


def check_prediction(bound: RelativeBound, estimate: RatioEstimate, predicted: float, source: str) -> BoundCheck:
    """The cost model's predicted ratio must lie within `predict_within` of the measured interval.

    Judged on the interval, like the relative bound itself: on a busy machine the point
    estimate wanders while the interval widens to hold the truth, and a prediction that
    fits anywhere in it is not contradicted by this run.
    """
    tolerance = bound.predict_within or 0.0
    error = predicted / estimate.ratio - 1
    low, high = estimate.low * (1 - tolerance), estimate.high * (1 + tolerance)
    return BoundCheck(
        "model",
        f"{bound.name} predicted",
        low <= predicted <= high,
        f"{estimate.ratio:.3f}x [{estimate.low:.3f}, {estimate.high:.3f}]",
        f"predicted {predicted:.3f}x within {tolerance:.0%} of the interval",
        f"cost model off the point estimate by {error:+.1%}; {source}",
    )
