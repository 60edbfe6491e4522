"""The latency decision's noise model (`judge.latency`), applied to a history's latency series.

The model
---------
Let y_rv be the log latency of variant v in run r on one machine:

    y_rv = mu_v(r) + phi_r + e_rv,    e_rv ~ N(0, s_v^2)  between processes,
                                      phi_r               the run's phase, shared by its variants,

mu_v(r) the variant's level, constant between its change points - the steps looked for. A run's
phase (another VM on the host, the machine's clock, a shared library) moves every variant it
timed alike, so the search looks at each variant *over its run's phase*, as the decision does:

    z_rv = y_rv - phi_r^(-v),    phi_r^(-v) = median over the run's other variants u of
                                              (y_ru - level_u),   level_u = median_r y_ru

(leave one out, so a variant's own step never moves its phase). What is left varies by s_v^2
plus the variance of a median of the peers' draws - between processes only. A variant is
searched this way where every one of its runs timed at least MIN_PEERS other variants: the
median of three or more is unmoved by the one variant whose step is sought (the mean of two
would split the step between them); otherwise its raw series is searched, with its own noise.

The run-wide factor exp(median over a run's variants of (y_rv - level_v)) is a series of its
own per machine (`run_factor`): a step there moved every variant alike - the machine or a
shared library, reported once rather than as one change per variant. A change that moves more
than half a run's variants alike is read as the machine's by the median (its breakdown point).

The noise the test uses
-----------------------
Each adjusted series' variance about its levels is estimated from itself (`changes.own_noise`:
pooled about the segments the search proposes, lone outliers out, on points - segments degrees
of freedom) and moderated towards the machine's by the empirical-Bayes prior the decision
fits to its records (`judge.latency.fit_prior`, Smyth 2004): a short series borrows the
machine's noise, a long one keeps its own. The confirming t-test then uses that variance on
d0 + d_v degrees of freedom, and the smallest step it finds with 90% power between n1 runs
before and n2 after, the boundary known, is (`changes.detectable_step`)

    exp((t_{1 - p/2} + t_{0.9}) s sqrt(1/n1 + 1/n2)) - 1.

A search that must also find the boundary cannot reach that; `perfsuite selftest --history`
prints it beside the ideal search's bound and the detector's measured rates.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from perfsuite.history.changes import ChangeSettings, Noise, own_noise
from perfsuite.history.runs import PORTABLE
from perfsuite.history.seriestypes import Series, SeriesKey
from perfsuite.judge.latency import Prior, fit_prior, moderate
from perfsuite.report.metadata import parse_time

MIN_PEERS = 3  # the fewest other variants whose median is unmoved by one variant's step
METRIC = "latency_ms"
RUN_WIDE = "run-wide"  # the series name of a machine's run-wide factor
RUN_FACTOR = "run_factor"  # its metric


@dataclass(frozen=True)
class Searched:
    """How one latency series is searched: its values (quiet runs, in order), over its runs'
    phase or raw, and the noise the confirming test uses (None: Welch on its own spread)."""

    values: list[float]
    over_phase: bool
    noise: Noise | None


def _deviations(series: Sequence[Series]) -> dict[int, dict[str, float]]:
    """run pk -> variant -> log value minus the variant's level (quiet points only)."""
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for s in series:
        quiet = s.quiet()
        logs = [math.log(s.values[i]) for i in quiet if s.values[i] > 0]
        if len(logs) != len(quiet) or not logs:
            continue
        level = statistics.median(logs)
        for i, y in zip(quiet, logs, strict=True):
            out[s.runs[i].pk][s.key.series] = y - level
    return out


def machine_groups(series: Sequence[Series]) -> dict[str, list[Series]]:
    """The latency series of each machine (portable series have no machine phase)."""
    groups: dict[str, list[Series]] = defaultdict(list)
    for s in series:
        if s.key.metric == METRIC and s.key.scope != PORTABLE:
            groups[s.key.scope].append(s)
    return groups


def run_factor_series(series: Sequence[Series]) -> list[Series]:
    """Per machine, the run-wide factor of every quiet run that timed more than MIN_PEERS
    variants: exp(median over them of log value - level)."""
    out = []
    for scope, members in sorted(machine_groups(series).items()):
        dev = _deviations(members)
        runs = {r.pk: r for s in members for r in s.runs}
        wide = Series(SeriesKey(RUN_WIDE, RUN_FACTOR, scope))
        for pk in sorted(dev, key=lambda pk: (parse_time(runs[pk].time), pk)):
            if len(dev[pk]) > MIN_PEERS:
                wide.runs.append(runs[pk])
                wide.values.append(math.exp(statistics.median(dev[pk].values())))
                wide.lows.append(None)
                wide.highs.append(None)
                wide.busy.append(False)
        if wide.runs:
            out.append(wide)
    return out


def searched(series: Sequence[Series], settings: ChangeSettings | None = None) -> dict[SeriesKey, Searched]:
    """For every machine latency series of `series`: what the search looks at (module doc).
    `series` holds every latency series of the machines, so the phase never depends on which
    variants a user selected."""
    out: dict[SeriesKey, Searched] = {}
    for members in machine_groups(series).values():
        dev = _deviations(members)
        adjusted: dict[SeriesKey, list[float]] = {}
        for s in members:
            quiet = s.quiet()
            values = [s.values[i] for i in quiet]
            phases = []
            for i in quiet:
                peers = [d for v, d in dev.get(s.runs[i].pk, {}).items() if v != s.key.series]
                if len(peers) < MIN_PEERS:
                    break
                phases.append(statistics.median(peers))
            if quiet and len(phases) == len(quiet) and all(v > 0 for v in values):
                adjusted[s.key] = [v / math.exp(p) for v, p in zip(values, phases, strict=True)]
            else:
                out[s.key] = Searched(values, False, own_noise(values, settings))
        own = {k: own_noise(v, settings) for k, v in adjusted.items()}
        prior = fit_prior([(n.variance, n.df) for n in own.values() if n is not None])
        for key, values in adjusted.items():
            out[key] = Searched(values, True, moderated(own[key], prior.s0_sq, prior.d0))
    return out


def moderated(noise: Noise | None, s0_sq: float, d0: float) -> Noise | None:
    """The series' noise moderated by the machine's prior (`judge.latency.moderate`, the
    decision's own); the prior alone for a series with no estimate of its own."""
    if noise is None:
        return Noise(s0_sq, d0) if d0 > 0 and s0_sq > 0 else None
    if d0 <= 0:
        return noise
    return Noise(*moderate(noise.variance, noise.df, Prior(s0_sq, d0)))
