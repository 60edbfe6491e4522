"""Change points in one series (Apache Otava's recipe, reproduced): segment, then keep only the
boundaries a test between the neighbouring segments confirms.

1. Values are taken in log space (a step is a ratio) and a Hampel filter marks a point that
   stands alone far from its neighbours' median: segmentation sees it replaced by that median,
   the test leaves it out. One busy run is not a step.
2. ruptures' PELT over a linear kernel (the l2 cost, in C) proposes boundaries, at least
   `min_size` runs apart, with a BIC-like penalty on the robustly standardised series.
3. Each boundary must pass a t-test between its neighbouring segments at `p_value` and move
   the level by at least `min_magnitude`; the weakest failing boundary is dropped and the rest
   re-tested, until all pass (as Otava re-tests after merging). Given the series' `Noise` (a
   variance of log values on its degrees of freedom: latency series, from the noise model in
   `history.phase`), the test uses it for both sides; without, Welch's test with each side's
   variance at least the series' robust noise.
Acknowledged changes are fixed boundaries: segments are found within the pieces between them,
so after an acknowledged step later runs are judged against the new level.
Exact series (work counts) step wherever a value differs from the one before.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChangeSettings:
    p_value: float = 0.001
    min_magnitude: float = 0.03  # a level moved by less than 3% is not reported
    min_size: int = 3  # runs on each side of a boundary before it can be confirmed
    penalty: float = 3.0  # x log(n), on the series standardised by its robust noise
    outlier_sigmas: float = 4.0  # Hampel filter: a lone point this far from its neighbours' median
    confidence: float = 0.95


@dataclass(frozen=True)
class Noise:
    """The variance of a series' log values about its level, on `df` degrees of freedom."""

    variance: float
    df: float


@dataclass(frozen=True)
class Step:
    index: int  # the first run of the new level
    ratio: float  # new level / old level
    low: float
    high: float
    p_value: float
    fixed: bool = False  # an acknowledged boundary

    def __post_init__(self) -> None:  # plain Python numbers, not numpy scalars: they go into JSON
        for name, kind in (("index", int), ("ratio", float), ("low", float), ("high", float), ("p_value", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        object.__setattr__(self, "fixed", bool(self.fixed))


def noise_scale(y: np.ndarray) -> float:
    """The run-to-run noise, robust to steps and outliers: MAD of first differences / sqrt 2."""
    if len(y) < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(np.diff(y))) / math.sqrt(2))


def hampel(y: np.ndarray, sigma: float, sigmas: float, half_window: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(`y` with every lone outlier replaced by the median of its window, which points were)."""
    out = y.copy()
    flagged = np.zeros(len(y), dtype=bool)
    if sigma <= 0 or len(y) < 3:
        return out, flagged
    w = 2 * half_window + 1
    medians = np.empty(len(y))
    ends = range(len(y))  # windows cut short by an end of the series, one by one
    if len(y) >= w:  # the full windows at once
        medians[half_window : len(y) - half_window] = np.median(np.lib.stride_tricks.sliding_window_view(y, w), axis=1)
        ends = [*range(half_window), *range(len(y) - half_window, len(y))]
    for i in ends:
        medians[i] = np.median(y[max(0, i - half_window) : i + half_window + 1])
    flagged = np.abs(y - medians) > sigmas * sigma
    out[flagged] = medians[flagged]
    return out, flagged


def _test(
    left: np.ndarray, right: np.ndarray, confidence: float, floor: float = 0.0
) -> tuple[float, float, float, float]:
    """(difference of means, low, high, two-sided Welch p) of right - left. Each side's variance
    is at least `floor` (the series' robust noise squared): three runs that happen to agree
    closely do not make a segment's level look exact."""
    from scipy import stats

    if len(left) == 0 or len(right) == 0:  # an acknowledged boundary with nothing on one side yet
        return 0.0, 0.0, 0.0, 1.0
    d = float(right.mean() - left.mean())
    vl = max(left.var(ddof=1) if len(left) > 1 else 0.0, floor) / len(left)
    vr = max(right.var(ddof=1) if len(right) > 1 else 0.0, floor) / len(right)
    se = math.sqrt(vl + vr)
    if se == 0:
        return d, d, d, 0.0 if d != 0 else 1.0
    parts = (vl**2 / (len(left) - 1) if len(left) > 1 else 0.0) + (vr**2 / (len(right) - 1) if len(right) > 1 else 0.0)
    dof = (vl + vr) ** 2 / parts if parts > 0 else 1.0  # one run a side: the widest t there is
    t = d / se
    p = float(2 * stats.t.sf(abs(t), dof))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
    return d, d - half, d + half, p


def _pooled_test(
    left: np.ndarray, right: np.ndarray, confidence: float, noise: Noise
) -> tuple[float, float, float, float]:
    """(difference of means, low, high, two-sided p) of right - left, both sides' variance the
    series' `noise` (Student's t on its degrees of freedom; the normal where they are infinite)."""
    from scipy import stats

    if len(left) == 0 or len(right) == 0:
        return 0.0, 0.0, 0.0, 1.0
    d = float(right.mean() - left.mean())
    se = math.sqrt(noise.variance * (1 / len(left) + 1 / len(right)))
    if se == 0:
        return d, d, d, 0.0 if d != 0 else 1.0
    dist = stats.norm if math.isinf(noise.df) else stats.t(noise.df)
    p = float(2 * dist.sf(abs(d) / se))
    half = float(dist.ppf(0.5 + confidence / 2)) * se
    return d, d - half, d + half, p


def detectable_step(noise: Noise, before: int, after: int, p_value: float = 0.001, power: float = 0.9) -> float:
    """The smallest step (new level / old - 1) the confirming test finds with `power` between
    `before` and `after` runs at `p_value`, the boundary known: exp((t_{1-p/2} + t_power) x
    s sqrt(1/before + 1/after)) - 1. The search for the boundary can only lose power to it."""
    from scipy import stats

    dist = stats.norm if math.isinf(noise.df) or noise.df <= 0 else stats.t(noise.df)
    q = float(dist.ppf(1 - p_value / 2)) + float(dist.ppf(power))
    return math.expm1(q * math.sqrt(noise.variance * (1 / before + 1 / after)))


def _candidates(y: np.ndarray, settings: ChangeSettings) -> list[int]:
    import ruptures as rpt

    n = len(y)
    if n < 2 * settings.min_size:
        return []
    algo = rpt.KernelCPD(kernel="linear", min_size=settings.min_size, jump=1).fit(y.reshape(-1, 1))
    return [b for b in algo.predict(pen=settings.penalty * math.log(n)) if b < n]


def _exact_steps(values: np.ndarray, fixed: Sequence[int]) -> list[Step]:
    steps = []
    for i in range(1, len(values)):
        if values[i] != values[i - 1]:
            r = values[i] / values[i - 1] if values[i - 1] else math.inf
            steps.append(Step(i, r, r, r, 0.0, i in fixed))
    return steps


@dataclass(frozen=True)
class _Prepared:
    """A series as the search sees it: log values (where all are positive), the lone outliers
    flagged and replaced by their neighbours' median, the noise's sd (the model's, or robust)."""

    y: np.ndarray
    clean: np.ndarray
    outlier: np.ndarray
    sigma: float
    logged: bool


def _prepare(raw: np.ndarray, settings: ChangeSettings, noise: Noise | None = None) -> _Prepared:
    """`noise`, where a model gives it, is the scale outliers are measured in."""
    logged = bool(np.all(raw > 0))
    y = np.log(raw) if logged else raw
    sigma = math.sqrt(noise.variance) if noise is not None and noise.variance > 0 else noise_scale(y)
    clean, outlier = hampel(y, sigma, settings.outlier_sigmas)
    return _Prepared(y, clean, outlier, sigma, logged)


def _proposed(prep: _Prepared, fixed: Sequence[int], settings: ChangeSettings, scale: float) -> list[int]:
    """PELT's boundaries within each piece between acknowledged ones, on the standardised series."""
    bounds = [0, *fixed, len(prep.y)]
    proposed: set[int] = set()
    for lo, hi in itertools.pairwise(bounds):
        piece = prep.clean[lo:hi]
        proposed |= {lo + b for b in _candidates((piece - piece.mean()) / scale, settings)}
    return sorted(proposed)


def own_noise(values: Sequence[float], settings: ChangeSettings | None = None) -> Noise | None:
    """A series' noise from itself: the pooled variance of its log values about the levels of the
    segments the search proposes (acknowledged or not, lone outliers left out), on (points -
    segments) degrees of freedom. A step the search proposes does not inflate it; one it misses
    does, which only makes the test stricter. None for fewer than three usable points or values
    that are not all positive."""
    settings = settings or ChangeSettings()
    raw = np.asarray(values, dtype=float)
    if raw.size < 3 or not np.all(raw > 0):
        return None
    prep = _prepare(raw, settings)
    scale = prep.sigma if prep.sigma > 0 else (float(np.std(prep.clean)) or 1.0)
    edges = [0, *_proposed(prep, (), settings, scale), len(prep.y)]
    squares, points = 0.0, 0
    for lo, hi in itertools.pairwise(edges):
        kept = prep.y[lo:hi][~prep.outlier[lo:hi]]
        squares += float(((kept - kept.mean()) ** 2).sum()) if len(kept) else 0.0
        points += len(kept)
    df = points - (len(edges) - 1)
    return Noise(squares / df, float(df)) if df > 0 else None


def find_steps(
    values: Sequence[float],
    exact: bool = False,
    fixed: Sequence[int] = (),
    settings: ChangeSettings | None = None,
    noise: Noise | None = None,
) -> list[Step]:
    """Confirmed steps of a series in run order; `fixed` are acknowledged boundaries (indices);
    `noise`, the variance of its log values where a model gives it (module doc)."""
    settings = settings or ChangeSettings()
    raw = np.asarray(values, dtype=float)
    if raw.size < 2:  # nothing to split (a series of busy runs only): no step, and no numpy warning
        return []
    if exact:
        return _exact_steps(raw, fixed)
    if noise is not None and not np.all(raw > 0):
        noise = None  # a variance of log values says nothing of a series with zeros
    prep = _prepare(raw, settings, noise)
    y, clean, outlier, logged = prep.y, prep.clean, prep.outlier, prep.logged
    floor = prep.sigma * prep.sigma

    def test(lo: int, i: int, hi: int) -> tuple[float, float, float, float]:
        """Between y[lo:i] and y[i:hi], the outliers left out (not replaced: a replaced point
        would shrink its segment's variance)."""
        left, right = y[lo:i][~outlier[lo:i]], y[i:hi][~outlier[i:hi]]
        if noise is not None:
            return _pooled_test(left, right, settings.confidence, noise)
        return _test(left, right, settings.confidence, floor)

    if noise is not None and noise.variance > 0:
        scale = math.sqrt(noise.variance)
    else:
        scale = prep.sigma if prep.sigma > 0 else (float(np.std(clean)) or 1.0)
    fixed = sorted({i for i in fixed if 0 < i < len(y)})
    kept = _proposed(prep, fixed, settings, scale)
    while True:
        edges = sorted({0, *kept, *fixed, len(y)})
        verdicts = {}
        for i in kept:
            k = edges.index(i)
            d, low, high, p = test(edges[k - 1], i, edges[k + 1])
            magnitude = (
                math.expm1(abs(d)) if logged else abs(d) / max(abs(float(np.median(clean[edges[k - 1] : i]))), 1e-12)
            )
            verdicts[i] = (d, low, high, p, p < settings.p_value and magnitude >= settings.min_magnitude)
        failing = [i for i in kept if not verdicts[i][4]]
        if not failing:
            break
        kept.remove(max(failing, key=lambda i: verdicts[i][3]))
    steps = []
    for i in sorted({*kept, *fixed}):
        if i in verdicts and i in kept:
            d, low, high, p, _ = verdicts[i]
        else:
            edges = sorted({0, *kept, *fixed, len(y)})
            k = edges.index(i)
            d, low, high, p = test(edges[k - 1], i, edges[k + 1])
        if logged:
            steps.append(Step(i, math.exp(d), math.exp(low), math.exp(high), p, i in fixed))
        else:
            base = float(np.mean(clean[max(0, i - settings.min_size) : i])) or 1e-12
            steps.append(Step(i, 1 + d / base, 1 + low / base, 1 + high / base, p, i in fixed))
    return steps
