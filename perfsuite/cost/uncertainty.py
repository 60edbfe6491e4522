"""How far a projection can be off: intervals from the cost model's measured errors.

Two kinds of evidence. In-sample: every stored fit's predicted/measured on the runs it was
fitted to (this CPU, the AMD CPU, the H100 - `<baselines>/*/costmodel.json`). Held out: public
reports of this workload on a T4, against the calibrated T4 projection (docs/validation.md);
they are few and they are the card the competition used, so for a T4 the interval spans all
of them. The interval is a range of measured/predicted ratios applied to the projected time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

# measured / predicted on public T4 runs held out from the T4's calibration: 2x T4, nf4, fp16
# compute, max_length 2048, batch 4, length-sorted, no TTA, 25,000 rows, lengths = Llama-3
# counts of the 1,803 real battles; predictions 2.70 h (Llama-3-8B, Mistral-7B) and 3.99 h
# (Gemma-2-9B), 2026-11-27. The seed thread gave no settings: these assume the common ones.
HELD_OUT_T4: tuple[tuple[str, float], ...] = (
    ("seed thread: Llama-3-8B, about 4 h", 4.0 / 2.70),
    ("seed thread: Gemma-2-9B, about 8 h", 8.0 / 3.99),
    ("4-bit team: Gemma-2-9B, 3-4 h (3.5)", 3.5 / 3.99),
    ("4-bit team: Mistral-7B, 3-4 h (3.5)", 3.5 / 2.70),
)


@dataclass(frozen=True)
class Interval:
    """measured/predicted bounds, and what they rest on."""

    low: float
    high: float
    basis: str

    def around(self, seconds: float) -> tuple[float, float]:
        return seconds * self.low, seconds * self.high


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def in_sample_ratios(root: Path) -> dict[str, list[float]]:
    """measured/predicted of every stored fit under `root`, by machine."""
    out: dict[str, list[float]] = {}
    for path in sorted(Path(root).glob("*/costmodel.json")):
        try:
            errors = json.loads(path.read_text(encoding="utf-8"))["predicted_over_measured"]
            out[path.parent.name] = [1.0 / float(v) for v in errors.values() if float(v) > 0]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


def interval_for(device_key: str, root: Path) -> Interval:
    """The range a projection on `device_key` is given: 10th-90th percentile of the in-sample
    errors, widened to every held-out public run for a T4."""
    by_machine = in_sample_ratios(root)
    ratios = [r for values in by_machine.values() for r in values]
    if ratios:
        low, high = _quantile(ratios, 0.1), _quantile(ratios, 0.9)
        basis = (
            f"10th-90th percentile of the cost model's error on {len(ratios)} measured runs "
            f"({len(by_machine)} machines)"
        )
    else:
        low, high, basis = 0.5, 1.5, "no measured runs found: +-50%"
    if device_key == "t4":
        held = [r for _, r in HELD_OUT_T4]
        low, high = min(low, *held), max(high, *held)
        basis += f", widened to all {len(held)} held-out public T4 runs (docs/validation.md)"
    return Interval(low, high, basis)
