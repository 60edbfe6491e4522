"""A run's latency decisions, made once every variant has been timed (judge/latency.py states the
rule): the run's phase from the variants' first timings, then fresh processes for the variants
left undecided by noise, while the run's budget lasts.

One fresh process times every variant it is given in turn, as a tier run does, so its start-up
is paid once per round, not once per variant.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perfsuite.judge.latency import (
    Budget,
    Decision,
    Knobs,
    LatencyDecision,
    RecordNoise,
    RunPhase,
    Timing,
    Undecided,
    busy_cause,
    decide,
    spreads,
    tier_prior,
)
from perfsuite.measure.measurement import Measurement
from perfsuite.store.records import MachineRecord
from perfsuite.variant import TierSettings, Variant

# Undecided for these reasons, a fresh process can still decide (a busy timing is dropped, and
# the next may be quiet; a fail that rests on one process needs another); for the others (the
# record's own noise, a lone variant, a record of one process) no timing of this run can.
RETRY = (Undecided.NOISE, Undecided.BUSY, Undecided.ONE_PROCESS)
# What a fresh process's start-up (interpreter, torch, the workload) is assumed to cost before
# the first one has been measured; afterwards the measured one is used.
FIRST_STARTUP_GUESS_S = 10.0

MoreTimings = Callable[[Sequence[str]], dict[str, Timing]]


@dataclass
class Candidate:
    """A variant whose latency the run decides: its record's noise, its timings so far, and what
    timing it once cost in the session (the estimate for a fresh process's share)."""

    variant: str
    knobs: Knobs
    record: RecordNoise
    timings: list[Timing] = field(default_factory=list)
    cost_s: float = 0.0


@dataclass
class RunDecisions:
    """Every candidate's decision, the run's phase, and what the extra processes cost."""

    decisions: dict[str, LatencyDecision]
    phase: RunPhase
    budget: Budget

    def summary(self, alpha: float) -> list[str]:
        """Lines for the report's footer: the run-wide factor and the budget."""
        lines = []
        tolerance = min((d.tolerance for d in self.decisions.values()), default=None)
        factor, interval = self.phase.factor, self.phase.interval(alpha)
        if factor is not None:
            n = len(self.phase.first)
            line = f"latency: run-wide factor {factor:.2f}x (median over {n} variants of run / record)"
            if interval is not None:
                line += f" [{interval[0]:.2f}, {interval[1]:.2f}]"
                if tolerance is not None and (interval[0] > 1 + tolerance or interval[1] < 1 / (1 + tolerance)):
                    line += (
                        " - every variant moved beyond the tolerance: the machine or a shared library moved; "
                        "variants are judged against the run's phase (`perfsuite compare` times two "
                        "environments side by side)"
                    )
            lines.append(line)
        counts = {d: sum(x.decision is d for x in self.decisions.values()) for d in Decision}
        if self.decisions:
            lines.append(
                f"latency: {counts[Decision.PASS]} pass, {counts[Decision.FAIL]} fail, "
                f"{counts[Decision.UNDECIDED]} undecided of {len(self.decisions)} judged"
            )
        lines.append(self.budget.describe())
        lines.extend(self.budget.notes)
        return lines


def first_phase(candidates: Sequence[Candidate]) -> RunPhase:
    """The run's phase from each candidate's first quiet timing (of records with a spread): the
    session's own where it was quiet, else the fresh process that first timed it quietly."""
    first, spread = {}, {}
    for c in candidates:
        quiet = next((t for t in c.timings if t.busy is None), None)
        if c.record.processes < 2 or quiet is None:
            continue
        first[c.variant] = math.log(quiet.median_s) - c.record.level
        spread[c.variant] = c.record.variance * (1 / c.record.processes + 1)
    return RunPhase(first, spread)


def decide_run(
    candidates: Sequence[Candidate],
    budget: Budget,
    more: MoreTimings,
    clock: Callable[[], float] = time.perf_counter,
) -> RunDecisions:
    """Decide every candidate; time the retryable undecided ones again in fresh processes (`more`,
    one call a process, the cheapest variants first) while the budget holds a whole process's
    estimated cost."""
    startup = FIRST_STARTUP_GUESS_S
    while True:
        phase = first_phase(candidates)
        decisions = {c.variant: decide(c.variant, c.timings, c.record, phase, c.knobs) for c in candidates}
        open_ = [c for c in candidates if decisions[c.variant].undecided in RETRY]
        take, cost = [], startup
        for c in sorted(open_, key=lambda c: c.cost_s):  # the cheapest first: the most decided per second
            if cost + c.cost_s <= budget.left:
                take.append(c)
                cost += c.cost_s
        if not take:
            if open_:
                need = startup + min(c.cost_s for c in open_)
                budget.notes.append(
                    f"latency: {len(open_)} variant(s) left undecided with the budget spent "
                    f"({budget.left:.0f} s left, a fresh process for one needs about {need:.0f} s)"
                )
            return RunDecisions(decisions, phase, budget)
        start = clock()
        try:
            answers = more([c.variant for c in take])
        except RuntimeError as exc:  # measure.fresh.FreshError: say it, keep what was decided
            budget.charge(clock() - start, 0)
            budget.notes.append(f"latency: a fresh process failed, no more timings asked: {exc}")
            return RunDecisions(decisions, phase, budget)
        spent = clock() - start
        budget.charge(spent, len(take))
        startup = max(spent - sum(c.cost_s for c in take), 0.0)
        for c in take:
            if c.variant in answers:
                c.timings.append(answers[c.variant])


def latency_candidates(
    timed: Sequence[tuple[Variant, Measurement]],
    records: Mapping[str, MachineRecord | None],
    settings: TierSettings,
    cost_s: Mapping[str, float],
) -> list[Candidate]:
    """Each timed variant with a machine record as a candidate: its record's noise, each recording
    process's phase taken out (judge.latency.spreads) and moderated by the tier's
    (judge.latency.tier_prior over these records), and its first timing (busy or not)."""
    measured = {v: (r.latency.processes_of, r.latency.processes_s) for v, r in records.items() if r is not None}
    spread = spreads(measured)
    prior = tier_prior(spread)
    out = []
    for variant, measurement in timed:
        record = records.get(variant.id)
        if record is None:
            continue
        lat = measurement.latency
        busy = busy_cause(
            lat.other_cpu_share, measurement.environment.get("threads"), record.environment.get("threads")
        )
        out.append(
            Candidate(
                variant.id,
                Knobs(variant.bounds.latency_tolerance, settings.latency_alpha),
                RecordNoise.of(record.latency.median_s, record.latency.processes_s, prior, spread[variant.id]),
                [Timing(lat.median_s, busy)],
                cost_s.get(variant.id, 0.0),
            )
        )
    return out


def fresh_timings(
    measure: Callable[[Sequence[str]], dict[str, dict[str, Any]]], records: Mapping[str, MachineRecord | None]
) -> MoreTimings:
    """`more` over fresh processes: one process (measure.fresh.measure_fresh's answers) times the
    variants; each answer a Timing, busy by the same rule as the first."""

    def more(ids: Sequence[str]) -> dict[str, Timing]:
        out = {}
        for variant, latency in measure(ids).items():
            record = records.get(variant)
            recorded = record.environment.get("threads") if record is not None else None
            busy = busy_cause(latency.get("other_cpu_share"), latency.get("threads"), recorded)
            out[variant] = Timing(statistics.median(latency["samples_s"]), busy)
        return out

    return more
