"""The one latency decision (judge/latency.py): the noise model, the interval against the
tolerance, the run's phase divided out, more fresh processes while undecided within the budget,
and busy timings dropped. Fresh processes are stubbed through the session's seam
(``PerfSession.measure_fresh``); nothing here reads the machine's own speed."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics

import numpy as np
import pytest

from perfsuite.judge.checks import Cause, Status, Verdict
from perfsuite.judge.latency import (
    BUSY_ENV,
    Budget,
    Decision,
    Knobs,
    Prior,
    RecordNoise,
    RunPhase,
    Spread,
    Timing,
    Undecided,
    busy_cause,
    decide,
    fit_prior,
    quantile,
    spreads,
)
from perfsuite.judge.latency_run import Candidate, decide_run
from perfsuite.judge.verdict import latency_coverage
from perfsuite.matrix.tier import MatrixError, load_matrix
from perfsuite.session import PerfSession, SessionConfig
from tests.conftest import write_matrix

KNOBS = Knobs(tolerance=0.25, alpha=0.05)
QUIET = Prior(0.05**2, math.inf)  # every variant 5% between processes, known exactly


def _record(median=0.1, processes=3, prior=QUIET) -> RecordNoise:
    return RecordNoise.of(median, [median] * processes, prior)


def _phase(ratios: dict[str, float], record: RecordNoise | None = None) -> RunPhase:
    record = record or _record()
    spread = record.variance * (1 / record.processes + 1)
    return RunPhase({v: math.log(r) for v, r in ratios.items()}, {v: spread for v in ratios})


# -- the noise model -------------------------------------------------------------------------------
def _fitted(spread_of_spreads: float, seed: int) -> Prior:
    """The prior of 90 variants of four processes each (3 degrees of freedom), whose true noise
    is 8% spread lognormally by `spread_of_spreads` across variants."""
    rng = np.random.default_rng(seed)
    truth = np.exp(rng.normal(math.log(0.08), spread_of_spreads, 90))
    return fit_prior([(s**2 * rng.chisquare(3) / 3, 3) for s in truth])


def test_the_prior_recovers_a_common_variance_and_borrows_most_where_variants_agree():
    """limma's moments: alike variants (one true 8%) give s0 near 8% and a large d0 (infinite in
    most draws); variants whose noise differs give a small d0, so each keeps more of its own."""
    alike = [_fitted(0.0, seed) for seed in range(30)]
    apart = [_fitted(0.8, seed) for seed in range(30)]
    assert statistics.median(math.sqrt(p.s0_sq) for p in alike) == pytest.approx(0.08, rel=0.1)
    assert statistics.median(p.d0 for p in alike) == math.inf
    assert statistics.median(p.d0 for p in apart) < 3


def test_too_few_variances_borrow_nothing():
    assert fit_prior([(0.01, 2)]) == Prior(0.01, 0.0)
    assert fit_prior([]) == Prior(0.0, 0.0)


def test_a_variants_variance_is_moderated_towards_the_tiers():
    own = [0.100, 0.101, 0.099]  # three processes that agree by chance
    noise = RecordNoise.of(0.1, own, Prior(0.08**2, 4.0))
    mine = statistics.variance(math.log(p) for p in own)
    assert noise.variance == pytest.approx((4 * 0.08**2 + 2 * mine) / 6) and noise.df == 6
    assert noise.level == pytest.approx(math.log(0.1)) and noise.processes == 3
    assert RecordNoise.of(0.1, own, Prior(0.08**2, math.inf)).variance == pytest.approx(0.08**2)
    assert RecordNoise.of(0.1, own, Prior(0.0, 0.0)).variance == pytest.approx(mine)  # nothing to borrow


def test_a_rebaseline_process_that_was_slow_for_every_variant_is_its_phase_not_their_noise():
    """One of four processes read every variant 1.5x: alone each record spreads ~20%; fitted
    together (the same processes timed them), the shared offset goes and what is left is each
    variant's own 1-2%, on (k - 1)(N - 1)/N degrees of freedom."""
    rng = np.random.default_rng(3)
    records = {
        f"v{i}": ("rebaseline-1", [0.1 * (i + 1) * f * math.exp(rng.normal(0, 0.01)) for f in (1, 1, 1, 1.5)])
        for i in range(6)
    }
    alone = spreads({v: ("", p) for v, (_, p) in records.items()})
    together = spreads(records)
    assert all(math.sqrt(alone[v].variance) > 0.15 for v in records)
    assert all(math.sqrt(together[v].variance) < 0.03 for v in records)
    assert together["v0"].df == pytest.approx(3 * 5 / 6) and alone["v0"].df == 3
    other = spreads({**records, "w": ("rebaseline-2", [0.1, 0.1, 0.1, 0.15])})
    assert other["w"] == Spread.own([0.1, 0.1, 0.1, 0.15])  # the only record of its processes: its own


# -- the decision ----------------------------------------------------------------------------------
def test_an_unchanged_variant_passes_and_a_doubled_one_fails():
    phase = _phase({"a": 1.0, "b": 1.0, "c": 1.0})
    record = _record()
    assert decide("a", [Timing(0.1)], record, phase, KNOBS).decision is Decision.PASS
    failed = decide("a", [Timing(0.2), Timing(0.2)], record, phase, KNOBS)
    assert failed.decision is Decision.FAIL and failed.ratio == pytest.approx(2.0)
    assert failed.low > 1.25 and "2.00x" in failed.describe()


def test_a_fail_that_rests_on_one_process_is_undecided_until_another_process_agrees():
    """A process now and then runs one variant slower in every pass: a fail must hold with any
    one timing left out, so one timing never fails and one slow process among quiet ones does not."""
    phase = _phase({"a": 1.0, "b": 1.0, "c": 1.0})
    one = decide("a", [Timing(0.3)], _record(), phase, KNOBS)
    assert one.decision is Decision.UNDECIDED and one.undecided is Undecided.ONE_PROCESS
    assert one.low > 1.25 and "the fail rests on one process: 300.0 ms" in one.describe()
    assert "could not tell" not in one.describe()  # it could: one process is what it rests on
    outlier = decide("a", [Timing(0.1), Timing(0.3)], _record(), phase, KNOBS)
    assert outlier.low > 1.25 and outlier.undecided is Undecided.ONE_PROCESS  # the mean alone would fail it
    assert decide("a", [Timing(0.1), Timing(0.3), Timing(0.3)], _record(), phase, KNOBS).decision is Decision.FAIL


def test_the_interval_is_the_t_quantile_times_the_stated_standard_error():
    """se^2 = s^2 (1/k + 1/m) + var(f), var(f) = pi/(2 (N-1)) x median s_u^2 (1/k_u + 1)."""
    record = _record()
    phase = _phase({"a": 1.0, "b": 1.0, "c": 1.0})
    d = decide("a", [Timing(0.11), Timing(0.12)], record, phase, KNOBS)
    var_f = math.pi / (2 * 2) * 0.05**2 * (1 / 3 + 1)
    se = math.sqrt(0.05**2 * (1 / 3 + 1 / 2) + var_f)
    mean = (math.log(0.11) + math.log(0.12)) / 2 - math.log(0.1)
    assert d.se == pytest.approx(se)
    assert d.ratio == pytest.approx(math.exp(mean))
    assert d.high == pytest.approx(math.exp(mean + quantile(0.05, math.inf) * se))


def test_the_runs_phase_is_divided_out():
    """Every variant 1.4x its record: the machine moved, not the code; one variant 2x among
    them is what changed."""
    phase = _phase({"a": 1.4, "b": 1.4, "c": 1.4, "d": 2.8})
    record = _record()
    assert decide("a", [Timing(0.14)], record, phase, KNOBS).decision is Decision.PASS
    moved = decide("d", [Timing(0.28)] * 2, record, phase, KNOBS)
    assert moved.decision is Decision.FAIL and moved.ratio == pytest.approx(2.0)


def _ten_peers(**ratios: float) -> dict[str, float]:
    return {**{f"peer{i}": 1.0 for i in range(10)}, **ratios}


def test_a_straddling_interval_is_undecided_with_the_smallest_slowdown_it_could_fail():
    phase = _phase(_ten_peers(a=1.35))  # 5% noise: undecided between 1.33x and 1.38x with one timing
    d = decide("a", [Timing(0.135)], _record(), phase, KNOBS)
    assert d.decision is Decision.UNDECIDED and d.undecided is Undecided.NOISE
    q = quantile(0.05, math.inf)
    assert d.smallest_detectable == pytest.approx(1.25 * math.exp(q * d.se) - 1)
    assert f"could not tell a slowdown under {d.smallest_detectable:.0%} from noise" in d.describe()
    assert decide("a", [Timing(0.135)] * 6, _record(), phase, KNOBS).decision is Decision.FAIL  # more timings decide


def test_where_the_records_own_processes_limit_it_more_timings_are_not_asked():
    record = RecordNoise.of(0.1, [0.1] * 3, Prior(0.2**2, math.inf))
    timings = [Timing(0.125)] * 50
    d = decide("a", timings, record, _phase({"a": 1.25, "b": 1.0, "c": 1.0}, record), KNOBS)
    assert d.undecided is Undecided.RECORD and "re-record with more" in d.why


def test_busy_timings_are_dropped_and_all_busy_is_undecided():
    phase = _phase({"a": 1.0, "b": 1.0, "c": 1.0})
    busy = decide("a", [Timing(0.5, "other processes took 90%")], _record(), phase, KNOBS)
    assert busy.decision is Decision.UNDECIDED and busy.undecided is Undecided.BUSY and "90%" in busy.why
    kept = decide("a", [Timing(0.5, "busy"), Timing(0.1)], _record(), phase, KNOBS)
    assert kept.decision is Decision.PASS and kept.dropped == 1 and kept.timings == 1


def test_a_lone_variant_and_a_record_of_one_process_are_undecided_not_guessed():
    alone = decide("a", [Timing(0.3)], _record(), _phase({"a": 3.0}), KNOBS)
    assert alone.undecided is Undecided.LONE
    one = decide("a", [Timing(0.3)], _record(processes=1), _phase({"b": 1.0}), KNOBS)
    assert one.undecided is Undecided.FEW_PROCESSES and "tox -e rebaseline" in one.why


def test_the_busy_rule_and_its_seam(monkeypatch):
    assert busy_cause(0.1) is None
    assert "48% of the CPU time" in busy_cause(0.48)
    assert "timed with 1 threads" in busy_cause(0.0, "1", "2")
    assert busy_cause(0.0, "2", "2") is None
    monkeypatch.setenv(BUSY_ENV, "quiet")
    assert busy_cause(0.9, "1", "2") is None
    monkeypatch.setenv(BUSY_ENV, "busy")
    assert busy_cause(0.0) == f"{BUSY_ENV}=busy"
    monkeypatch.setenv(BUSY_ENV, "calm")
    with pytest.raises(ValueError, match="PERFSUITE_BUSY_SIGNALS='calm'"):
        busy_cause(0.0)


# -- more processes within the budget ----------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _candidates(first: dict[str, float], noise=0.05) -> list[Candidate]:
    return [
        Candidate(v, KNOBS, RecordNoise.of(0.1, [0.1] * 3, Prior(noise**2, math.inf)), [Timing(0.1 * r)], 2.0)
        for v, r in first.items()
    ]


def test_undecided_variants_get_fresh_processes_until_decided():
    clock, calls = Clock(), []

    def more(ids):
        calls.append(list(ids))
        clock.now += 5.0 + 2.0 * len(ids)
        return {v: Timing(0.1) for v in ids}  # the fresh processes read it unchanged

    run = decide_run(_candidates(_ten_peers(a=1.35)), Budget(100.0), more, clock)
    assert run.decisions["a"].decision is Decision.PASS and run.decisions["a"].timings > 1
    assert calls[0] == ["a"] and run.budget.processes == len(calls)
    assert run.budget.spent == clock.now <= 100.0


def test_the_budget_is_never_overrun_and_what_is_left_undecided_says_so():
    clock = Clock()

    def more(ids):
        clock.now += 30.0
        return {v: Timing(0.135) for v in ids}

    run = decide_run(_candidates(_ten_peers(a=1.35)), Budget(40.0), more, clock)
    assert run.decisions["a"].decision is Decision.UNDECIDED and run.budget.processes == 1
    assert run.budget.spent == 30.0  # a second process, estimated from the first at 30 s, did not fit
    assert any("left undecided with the budget spent" in n for n in run.budget.notes)
    assert decide_run(_candidates(_ten_peers(a=1.35)), Budget(0.0), more, clock).budget.processes == 0


def test_where_the_budget_holds_only_some_the_cheapest_undecided_are_timed():
    candidates = _candidates(_ten_peers(a=1.35, b=1.35, c=1.35))
    for c, cost in zip(candidates[-3:], (20.0, 3.0, 5.0), strict=True):  # a, b, c
        c.cost_s = cost
    calls = []

    def more(ids):
        calls.append(list(ids))
        return {v: Timing(0.1) for v in ids}

    decide_run(candidates, Budget(20.0), more, Clock())  # start-up guess 10 s: b and c fit, a does not
    assert calls[0] == ["b", "c"]


def test_a_failed_fresh_process_stops_asking_and_keeps_what_was_decided():
    def more(ids):
        raise RuntimeError("fresh timing process exit 1")

    run = decide_run(_candidates(_ten_peers(a=1.35)), Budget(100.0), more, Clock())
    assert run.decisions["peer0"].decision is Decision.PASS and run.decisions["a"].decision is Decision.UNDECIDED
    assert any("exit 1" in n for n in run.budget.notes)


def test_the_summary_names_a_run_wide_shift():
    run = decide_run(_candidates({"a": 1.6, "b": 1.6, "c": 1.6}, noise=0.02), Budget(0.0), lambda ids: {}, Clock())
    assert all(d.decision is Decision.PASS for d in run.decisions.values())
    line = run.summary(0.05)[0]
    assert line.startswith("latency: run-wide factor 1.60x") and "the machine or a shared library moved" in line


# -- verdicts ----------------------------------------------------------------------------------------
def test_a_decided_latency_completes_the_verdict_built_once():
    from perfsuite.judge.checks import Coverage

    pending = Verdict.of([], [Coverage("work", True), Coverage("latency", False, "later", Cause.PENDING)])
    assert pending.status is Status.PASS and pending.latency_pending
    phase = _phase({"a": 1.0, "b": 1.0})
    doubled = decide("a", [Timing(0.3)] * 2, _record(), phase, KNOBS)
    failed = pending.with_latency(*_one(latency_coverage(doubled)))
    assert failed.status is Status.FAIL and failed.failed[0].kind == "latency" and not failed.latency_pending
    assert failed.failed[0].ratio == pytest.approx(3.0)
    undecided = decide("a", [Timing(0.3, "busy")], _record(), phase, KNOBS)
    kept = pending.with_latency(*_one(latency_coverage(undecided)))
    assert kept.status is Status.PASS and "latency: not judged - undecided: busy" in kept.judged_summary()


def _one(judgement):
    checks, coverage = judgement
    return (checks[0] if checks else None), coverage


# -- in a session, end to end -------------------------------------------------------------------------
def _fixed(seconds: float):
    def sample(fn, rounds, warmup_rounds, between=None):
        fn()
        return [seconds] * rounds

    return sample


def _recorded(tmp_path, ratios: dict[str, float]):
    """The unit tier's two variants recorded with 3 fresh processes 5% apart, each record rewritten
    so that a run reading 10 ms reads `ratios[padding]`x of it."""
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4, paddings=("static", "sorted"))))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", rebaseline=True, processes=3))
    spread = iter([1.0, 1.05, 0.95])
    session.measure_fresh = lambda request, ids: (m := next(spread)) and {v: _lat(0.01 * m) for v in ids}
    for variant in matrix.variants:
        session.run(variant)
    session.finish()
    for path in (tmp_path / "bl").glob("cpu-*/unit/*.json"):
        record = json.loads(path.read_text())
        base = 0.01 / ratios[record["variant"].rsplit("-", 1)[1]]
        record["latency"]["processes_s"] = [base * p for p in (1.0, 1.05, 0.95)]
        record["latency"]["median_s"] = statistics.geometric_mean(record["latency"]["processes_s"])
        path.write_text(json.dumps(record))
    return matrix


def _lat(median: float) -> dict:
    return {"median_s": median, "samples_s": [median] * 5, "other_cpu_share": 0.0}


def test_a_session_fails_the_variant_that_moved_against_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv(BUSY_ENV, "quiet")
    matrix = _recorded(tmp_path, {"static": 1.0, "sorted": 3.0})
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl"))
    for variant in matrix.variants:
        assert session.run(variant, sampler=_fixed(0.01)).verdict.latency_pending
    calls = []  # one fresh process confirms the fail (it rested on one process); none is started
    session.measure_fresh = lambda request, ids: calls.append(list(ids)) or {v: _lat(0.01) for v in ids}
    session.decide_latency()
    assert calls and all(ids == [matrix.variants[-1].id] for ids in calls)
    verdicts = {o.variant.padding: o.verdict for o in session.outcomes}
    assert verdicts["sorted"].status is Status.FAIL and verdicts["sorted"].failed[0].kind == "latency"
    assert verdicts["static"].status is Status.PASS
    assert any(line.startswith("latency: run-wide factor") for line in session.report().footer)


def test_a_session_whose_every_variant_moved_alike_passes_and_says_the_machine_moved(tmp_path, monkeypatch):
    monkeypatch.setenv(BUSY_ENV, "quiet")
    matrix = _recorded(tmp_path, {"static": 1.6, "sorted": 1.6})
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl"))
    for variant in matrix.variants:
        session.run(variant, sampler=_fixed(0.01))
    run = session.decide_latency()
    assert all(o.verdict.status is Status.PASS for o in session.outcomes)
    assert "run-wide factor 1.60x" in run.summary(0.05)[0]


def test_a_busy_session_times_again_in_fresh_processes_within_its_budget(tmp_path, monkeypatch):
    """The session's own timings were taken beside foreign load: dropped; one fresh process
    times both variants quietly, and those timings decide (the phase theirs)."""
    matrix = _recorded(tmp_path, {"static": 1.0, "sorted": 1.0})
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl"))
    for variant in matrix.variants:
        session.run(variant, sampler=_fixed(0.01))
    fresh = -1.0  # the marker of a fresh process's answer below: quiet; the session's own: busy
    monkeypatch.setattr(
        "perfsuite.judge.latency_run.busy_cause", lambda share, *a: None if share == fresh else "foreign load"
    )
    calls = []
    answer = {"median_s": 0.01, "samples_s": [0.01] * 5, "other_cpu_share": fresh}
    session.measure_fresh = lambda request, ids: calls.append(list(ids)) or {v: answer for v in ids}
    session.settings = dataclasses.replace(session.settings, latency_budget_s=300.0)
    run = session.decide_latency()
    assert len(calls) == 1 and sorted(calls[0]) == sorted(v.id for v in matrix.variants)  # one process for both
    assert all(d.dropped == 1 and d.timings == 1 for d in run.decisions.values())
    assert all(o.verdict.status is Status.PASS for o in session.outcomes)
    assert all(c.judged for o in session.outcomes for c in o.verdict.coverage if c.kind == "latency")


def test_an_old_latency_field_in_a_matrix_is_named_with_its_replacement(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(write_matrix(tmp_path).read_text() + "\n[[overrides]]\nmatch = '*'\nlatency_floor = 0.4\n")
    with pytest.raises(MatrixError, match="replaced by latency_tolerance"):
        load_matrix(str(path))
