"""Statistics used by the bounds and by `compare`, each computed in one place.

asv keeps its statistics in one module (``_stats.py``); so does perfsuite: the rank test of
the absolute latency bound, the bootstrap of an interleaved median ratio (relative bounds),
the interval over zygote blocks, process pairs and passes (`compare`, nested ANOVA with
pooling) - and the two-level bootstrap it replaced, kept so the selftest can show what that
one covered on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatioEstimate:
    """Median of the paired ratios a_i / b_i with a confidence interval."""

    ratio: float
    low: float
    high: float
    pairs: int
    confidence: float
    blocks: int = 0  # compare: blocks of process pairs, each from fresh zygotes (0: not blocked)
    se_log: float = math.nan  # standard error of log(ratio), where the interval is a t interval
    df: int = 0  # its degrees of freedom

    def describe(self) -> str:
        unit = f"{self.pairs} pairs in {self.blocks} blocks" if self.blocks else f"{self.pairs} pairs"
        return f"{self.ratio:.3f}x [{self.low:.3f}, {self.high:.3f}] ({self.confidence:.0%} CI, {unit})"

    def detectable(self, threshold: float, power: float = 0.8) -> float:
        """The smallest slowdown (a fraction) a run this precise flags `power` of the time, when
        "slower" needs the interval's low end above 1 + threshold; inf without an interval."""
        if not (self.df > 0 and math.isfinite(self.se_log)):
            return math.inf
        from scipy.stats import t

        reach = (t.ppf(0.5 + self.confidence / 2, self.df) + t.ppf(power, self.df)) * self.se_log
        return math.expm1(math.log1p(threshold) + reach)


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


Pair = tuple[Sequence[float], Sequence[float]]


def pair_log_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """One process pair's median of log(b_i / a_i) over its interleaved passes."""
    if len(a) != len(b) or not a:
        raise ValueError(f"a process pair needs equally many passes per side, got {len(a)} and {len(b)}")
    _check_positive([*a, *b])
    return float(np.median(np.log(np.asarray(b, dtype=float) / np.asarray(a, dtype=float))))


POOL_ALPHA = 0.5  # pool the zygote level unless its F exceeds the median of F (Bancroft's preliminary test)


def block_ratio_interval(blocks: Sequence[Sequence[Pair]], confidence: float = 0.95) -> RatioEstimate:
    """Interval of the B/A time ratio when passes nest in process pairs, and pairs in blocks.

    A block is what one pair of fresh zygotes served; each of its process pairs was forked from
    them and ran interleaved passes. Every level can carry a bias of its own: a pass (load), a
    process (memory layout, thread placement) and a zygote (its children share its heap and
    import order), so only the block is an independent draw of all three. The estimate is the
    mean over blocks of the mean over pairs of each pair's median pass log-ratio.

    The interval is Student's t from the nested (mixed) model, with the "sometimes pool" rule
    of nested ANOVA (Bancroft 1964): when the blocks' mean square is not larger than the pairs'
    within blocks by more than chance (F below its median), the zygote level adds
    nothing detectable, and both mean squares are pooled - every pair's degrees of freedom
    count; otherwise only the blocks' mean square counts, with blocks - 1 degrees of freedom.
    Three blocks with t on 2 df made the interval twice as wide as the data need when the
    zygote level is nil, as measured here (2026-12-01); blocks agreeing by chance cannot narrow
    it below what the pairs' spread says either (the busy-machine miss of the first version).
    Simulated: 94-97% coverage from no zygote bias up to 5% per zygote
    (docs/experiments/2026-11-27-latency-rules-history.md); pooling at
    F's 75th percentile gave 92-93% with a 3% zygote bias.
    """
    kept = [block for block in blocks if block]
    if not kept:
        raise ValueError("need at least one block of process pairs")
    d = [np.asarray([pair_log_ratio(a, b) for a, b in block]) for block in kept]
    means = np.asarray([float(x.mean()) for x in d])
    pairs = sum(len(x) for x in d)
    center = float(means.mean())
    n = len(means)
    if n < 2:
        return RatioEstimate(math.exp(center), 0.0, math.inf, pairs, confidence, n)
    from scipy.stats import f, t

    between_df, within_df = n - 1, pairs - n
    between_ss = pairs / n * float(((means - center) ** 2).sum())  # per pair, at the mean block size
    within_ss = sum(float(((x - x.mean()) ** 2).sum()) for x in d)
    var, df = between_ss / between_df, between_df  # a pair's variance as the block means imply it
    if within_df and (within_ss == 0 or var / (within_ss / within_df) <= f.ppf(1 - POOL_ALPHA, between_df, within_df)):
        var, df = (between_ss + within_ss) / (between_df + within_df), between_df + within_df
    se = math.sqrt(var / pairs)
    half = float(t.ppf(0.5 + confidence / 2, df)) * se
    return RatioEstimate(
        math.exp(center), math.exp(center - half), math.exp(center + half), pairs, confidence, n, se, df
    )


def variance_components(blocks: Sequence[Sequence[Pair]]) -> dict[str, float]:
    """Standard deviations (log scale) of the bias each level adds: zygote, process, pass.

    Method of moments on the nested design: the pass level from the spread of the pass
    log-ratios around their pair's median (MAD x 1.4826), the process level from the spread
    of pair medians within blocks less what the passes explain, the zygote level from the
    spread of block means less what the pairs explain; a level that explains nothing is 0.
    """
    pass_var, pair_within, block_means, sizes, passes = [], [], [], [], []
    for block in blocks:
        d = []
        for a, b in block:
            logs = np.log(np.asarray(b, dtype=float) / np.asarray(a, dtype=float))
            d.append(float(np.median(logs)))
            passes.append(len(logs))
            pass_var.append(float(1.4826 * np.median(np.abs(logs - d[-1]))) ** 2)
        if len(d) > 1:
            pair_within.append(float(np.var(d, ddof=1)))
        if d:
            block_means.append(float(np.mean(d)))
            sizes.append(len(d))
    nan = math.nan
    s_pass = math.sqrt(float(np.mean(pass_var))) if pass_var else nan
    # a median of k passes varies about (pi/2)/k times a pass's variance
    pass_share = (s_pass**2) * (math.pi / 2) / float(np.mean(passes)) if passes else nan
    within = float(np.mean(pair_within)) if pair_within else nan
    s_process = math.sqrt(max(within - pass_share, 0.0)) if pair_within else nan
    s_zygote = nan
    if len(block_means) > 1 and pair_within:
        s_zygote = math.sqrt(max(float(np.var(block_means, ddof=1)) - within / float(np.mean(sizes)), 0.0))
    return {"zygote_sd": s_zygote, "process_sd": s_process, "pass_sd": s_pass}
