"""Relative bounds: the median ratio of two variants timed interleaved in one process.

Between processes this machine's pass times drift by a quarter or more, but that drift
hits two variants timed A B B A ... in the same minutes alike, so their ratio is stable and
means the same on every machine. The interval is a bootstrap of the median of the paired
log-ratios (scipy), which makes no normality assumption and stays symmetric in A and B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .baselines import BoundCheck
from .matrix import RelativeBound


@dataclass(frozen=True)
class RatioEstimate:
    """Median of the paired ratios a_i / b_i with a confidence interval."""

    ratio: float
    low: float
    high: float
    pairs: int
    confidence: float

    def describe(self) -> str:
        return f"{self.ratio:.3f}x [{self.low:.3f}, {self.high:.3f}] ({self.confidence:.0%} CI, {self.pairs} pairs)"


def ratio_interval(
    a: list[float], b: list[float], confidence: float = 0.95, seed: int = 0, resamples: int = 2000
) -> RatioEstimate:
    """Bootstrap CI of the median of log(a_i / b_i), back on the ratio scale.

    Pairs are the interleaved rounds: a_i and b_i were timed next to each other.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"need equally many samples of both sides, got {len(a)} and {len(b)}")
    if any(not (x > 0 and math.isfinite(x)) for x in [*a, *b]):
        raise ValueError("pass times must be positive and finite")
    logs = np.log(np.asarray(a, dtype=float) / np.asarray(b, dtype=float))
    center = float(np.median(logs))
    if len(logs) < 3 or float(np.ptp(logs)) == 0.0:
        low = high = center  # nothing to resample: the interval is the point
    else:
        from scipy.stats import bootstrap

        res = bootstrap(
            (logs,),
            np.median,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return RatioEstimate(math.exp(center), math.exp(low), math.exp(high), len(logs), confidence)


def check_relative(bound: RelativeBound, estimate: RatioEstimate) -> BoundCheck:
    """Fails only when the whole interval lies outside the band: a confident violation."""
    too_slow = bound.max_ratio is not None and estimate.low > bound.max_ratio
    too_fast = bound.min_ratio is not None and estimate.high < bound.min_ratio
    detail = f"{bound.variant.id} / {bound.reference.id}, interleaved"
    if bound.reason:
        detail += f"; bound because {bound.reason}"
    return BoundCheck(
        "relative",
        bound.name,
        not (too_slow or too_fast),
        estimate.describe(),
        bound.band(),
        detail,
    )


def check_prediction(bound: RelativeBound, estimate: RatioEstimate, predicted: float, source: str) -> BoundCheck:
    """The cost model's predicted ratio must lie within `predict_within` of the measured one."""
    tolerance = bound.predict_within or 0.0
    error = predicted / estimate.ratio - 1
    return BoundCheck(
        "model",
        f"{bound.name} predicted",
        abs(error) <= tolerance,
        f"{estimate.ratio:.3f}x",
        f"predicted {predicted:.3f}x +/- {tolerance:.0%}",
        f"cost model off by {error:+.1%}; {source}",
    )
