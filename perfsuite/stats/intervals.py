"""Statistics used by the bounds and by `compare`, each computed in one place.

asv keeps its statistics in one module (``_stats.py``); so does perfsuite: the rank test of
the absolute latency bound, the bootstrap of an interleaved median ratio (relative bounds)
and the two-level bootstrap over process pairs and passes (`compare`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def mann_whitney_slower(current: Sequence[float], baseline: Sequence[float]) -> float:
    """One-sided p-value that `current` is stochastically greater (slower) than `baseline`."""
    from scipy.stats import mannwhitneyu

    if len(current) < 2 or len(baseline) < 2:
        return 1.0
    return float(mannwhitneyu(list(current), list(baseline), alternative="greater").pvalue)


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


def _check_positive(values: Sequence[float]) -> None:
    if any(not (x > 0 and math.isfinite(x)) for x in values):
        raise ValueError("pass times must be positive and finite")


def ratio_interval(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95, seed: int = 0, resamples: int = 2000
) -> RatioEstimate:
    """Bootstrap CI of the median of log(a_i / b_i), back on the ratio scale.

    Pairs are the interleaved rounds: a_i and b_i were timed next to each other.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"need equally many samples of both sides, got {len(a)} and {len(b)}")
    _check_positive([*a, *b])
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


def nested_ratio_interval(
    groups: Sequence[tuple[Sequence[float], Sequence[float]]],
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = 2000,
) -> RatioEstimate:
    """Interval of the B/A time ratio when passes are nested in process pairs.

    Each group is one pair of worker processes, (a passes, b passes) timed interleaved. A
    process carries a bias of its own (memory layout, thread placement: 5-10% here), so the
    process pair is the unit that is resampled first, then the passes within each drawn pair
    (the two-level bootstrap). The estimate is the mean over pairs of each pair's median
    log-ratio log(b/a): every process pair counts once, however many passes it ran.
    """
    if not groups:
        raise ValueError("need at least one process pair")
    logs = []
    for a, b in groups:
        if len(a) != len(b) or not a:
            raise ValueError(f"a process pair needs equally many passes per side, got {len(a)} and {len(b)}")
        _check_positive([*a, *b])
        logs.append(np.log(np.asarray(b, dtype=float) / np.asarray(a, dtype=float)))
    center = float(np.mean([np.median(x) for x in logs]))
    if len(logs) < 2:
        return RatioEstimate(math.exp(center), 0.0, math.inf, 1, confidence)
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    n = len(logs)
    for i in range(resamples):
        picked = rng.integers(0, n, n)
        stats[i] = np.mean([np.median(rng.choice(logs[j], len(logs[j]))) for j in picked])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return RatioEstimate(math.exp(center), math.exp(float(low)), math.exp(float(high)), n, confidence)
