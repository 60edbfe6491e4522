"""What a run produced, per variant and per relative bound: the report's rows.

The session fills these in; the report, the plots, the plugin and the CLI only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfsuite.judge.checks import Verdict
from perfsuite.matrix.tier import RelativeBound
from perfsuite.measure.measurement import Measurement
from perfsuite.stats.intervals import RatioEstimate
from perfsuite.variant import Variant


@dataclass
class Outcome:
    """One variant's row in the report: what ran (or why not) and the verdict."""

    variant: Variant
    verdict: Verdict
    measurement: Measurement | None = None
    previous: Any = None  # the MachineRecord a rebaseline replaced
    notes: list[str] = field(default_factory=list)


@dataclass
class PairOutcome:
    """One relative bound's row: the interleaved samples, the ratio estimate, the verdict."""

    bound: RelativeBound
    verdict: Verdict
    estimate: RatioEstimate | None = None
    samples_s: tuple[list[float], list[float]] | None = None
    notes: list[str] = field(default_factory=list)
    predicted_ratio: float | None = None  # the cost model's, where the bound asks for it


def reference_notes(measurement: Measurement | None, softcap_of: str | None = None) -> list[str]:
    """What the in-run reference says beside the verdict: why there was none, or - for a model
    with its softcapping switched off on purpose - what that costs against the capped model."""
    quality = measurement.quality if measurement is not None else None
    if quality is None:
        return []
    if quality.reference_error:
        return [f"no in-run quality reference ({quality.reference_error})"]
    ref = quality.reference or {}
    if softcap_of and "log_loss_increase" in ref:
        return [
            f"softcapping off: log-loss {ref['log_loss_increase']:+.4f}, max |dp| {ref['max_abs_dp']:.3f}, "
            f"argmax agreement {ref['argmax_agreement']:.3f} against {softcap_of}'s fp32 eager reference"
        ]
    return []
