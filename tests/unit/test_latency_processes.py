"""Latency records that know each variant's noise: a rebaseline times every variant in fresh
processes, the record keeps their medians, the tolerance comes from their spread (with a
floor), and a latency failure - or a pass above the variant's own-noise screen - is timed again
in three fresh processes, whose median decides (with three more where they disagree with the
first timing from above the screen); so is a timing the busy rule left undecided, until one
such re-timing is busy too. The fresh processes are stubbed through the session's
seam (``PerfSession.measure_fresh``) except in the last test."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from perfsuite.cli import main
from perfsuite.judge.checks import check_latency, latency_screen, latency_tolerance
from perfsuite.matrix.tier import load_matrix
from perfsuite.measure.fresh import FreshError, FreshRequest, measure_fresh, processes_count
from perfsuite.measure.measurement import LatencySummary
from perfsuite.session import PerfSession
from perfsuite.store.records import Latency, RecordError
from perfsuite.variant import Bounds
from tests.conftest import write_matrix

BOUNDS = Bounds(latency_ratio=0.5, latency_floor=0.2, latency_spread_z=3.0)


def _lat(median: float, n: int = 5) -> dict:
    samples = [median * (1 + 0.01 * (i - n // 2)) for i in range(n)]
    return {
        "median_s": statistics.median(samples),
        "iqr_s": 0.0,
        "spread": 0.02,
        "samples_s": samples,
        "probe_samples_s": [],
        "tokens_per_s": 1.0,
        "rows_per_s": 1.0,
        "other_cpu_share": 0.0,
    }


class FakeFresh:
    """Fresh processes that answer the given medians in turn (one per call) for every variant."""

    def __init__(self, medians):
        self.medians = iter(medians)
        self.calls: list[list[str]] = []

    def __call__(self, request: FreshRequest, variant_ids):
        self.calls.append(list(variant_ids))
        m = next(self.medians)
        if isinstance(m, Exception):
            raise m
        return {v: _lat(m) for v in variant_ids}


def test_a_latency_record_keeps_its_processes_medians_and_reads_back():
    lat = Latency.from_samples([0.1, 0.11, 0.12]).with_processes([0.10, 0.12, 0.11])
    assert lat.median_s == 0.11 and lat.processes_s == (0.10, 0.12, 0.11)
    assert lat.spread == pytest.approx(statistics.stdev([math.log(0.10), math.log(0.12), math.log(0.11)]))
    assert Latency.from_dict(lat.to_dict(), "x.json") == lat
    old = {"median_s": 0.1, "samples_s": [0.1], "probe_s": None}  # a record from before processes
    assert (
        Latency.from_dict(old, "x.json").spread is None and "processes_s" not in Latency.from_dict(old, "x").to_dict()
    )


def test_a_variants_own_spread_is_moderated_towards_the_pooled_one():
    """Three processes that agree by chance (2 degrees of freedom) do not make a tight tolerance."""
    lucky = Latency.from_samples([0.1]).with_processes([0.100, 0.101, 0.099], pooled_spread=0.20)
    own = lucky.spread
    assert own < 0.02
    assert lucky.noise == pytest.approx(math.sqrt((4 * 0.20**2 + 2 * own**2) / 6))
    assert Latency.from_samples([0.1]).with_processes([0.1, 0.12]).noise == pytest.approx(
        abs(math.log(0.1) - math.log(0.12)) / math.sqrt(2)
    )  # no pooled spread: its own


def test_a_rebaseline_pools_the_spread_of_all_its_variants(tmp_path):
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4, paddings=("static", "sorted"))))
    session = PerfSession(matrix, baseline_root=tmp_path / "bl", rebaseline=True, processes=2)
    calls = iter([0.010, 0.012])

    def fresh(request, variant_ids):  # the first variant moves 20%, the second 1% between processes
        m = next(calls)
        return {v: _lat(m if i == 0 else 0.02 * (1 + (m - 0.010))) for i, v in enumerate(variant_ids)}

    session.measure_fresh = fresh
    for variant in matrix.variants:
        session.run(variant)
    session.finish()
    records = [json.loads(p.read_text())["latency"] for p in (tmp_path / "bl").glob("cpu-*/unit/*.json")]
    spreads = sorted(Latency.from_dict(r, "r").spread for r in records)
    assert len(records) == 2 and all(r["pooled_spread"] == pytest.approx(statistics.median(spreads)) for r in records)


def test_a_bad_process_median_names_the_file_and_field():
    with pytest.raises(RecordError, match=r"rec.json.*latency.processes_s\[\]"):
        Latency.from_dict({"median_s": 0.1, "samples_s": [0.1], "processes_s": [0.1, -2]}, "rec.json")


@pytest.mark.parametrize(
    ("spread", "processes", "tolerance", "why"),
    [
        (None, 0, 0.5, "the record has one process"),
        (0.02, 3, 0.2, "floor 20%"),  # 3 x 2% x 1.15 = 7%: below the floor
        (0.10, 3, math.expm1(3 * 0.10 * math.sqrt(4 / 3)), "3 x 10.0% spread of 3 recorded processes"),
    ],
)
def test_the_latency_tolerance_comes_from_the_variants_own_spread_with_a_floor(spread, processes, tolerance, why):
    got, text = latency_tolerance(BOUNDS, spread, processes)
    assert got == pytest.approx(tolerance) and why in text


def test_a_quiet_variant_fails_at_a_slowdown_a_noisy_one_is_allowed():
    slow = [0.13] * 6  # 1.3x of a 0.1 s record
    base = [0.1] * 6
    quiet = check_latency(slow, 0.1, base, BOUNDS, spread=0.02, processes=3)
    noisy = check_latency(slow, 0.1, base, BOUNDS, spread=0.12, processes=3)
    assert not quiet.ok and noisy.ok
    assert "spread of 3 recorded processes" in noisy.detail


def _record(tmp_path, fresh, paddings=("sorted",)):
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4, paddings=paddings)))
    session = PerfSession(matrix, baseline_root=tmp_path / "bl", rebaseline=True, processes=3)
    session.measure_fresh = fresh
    for variant in matrix.variants:
        session.run(variant)
    note = session.finish()
    paths = sorted(p for p in (tmp_path / "bl").glob("*/unit/*.json") if p.parent.parent.name != "portable")
    return matrix, note, paths


def test_a_rebaseline_times_each_variant_in_fresh_processes_and_keeps_their_medians(tmp_path):
    fresh = FakeFresh([0.010, 0.012, 0.011])
    matrix, note, [path] = _record(tmp_path, fresh)
    latency = json.loads(path.read_text())["latency"]
    assert fresh.calls == [[matrix.variants[0].id]] * 3
    assert latency["processes_s"] == pytest.approx([0.010, 0.012, 0.011]) and latency["median_s"] == 0.011
    assert any("timed in 3 fresh processes each" in line and "spread median" in line for line in note)


def test_a_failed_fresh_process_leaves_the_record_of_this_run_and_says_so(tmp_path):
    fresh = FakeFresh([0.010, FreshError("tiny: fresh timing process: boom")])
    _, note, [path] = _record(tmp_path, fresh)
    assert "processes_s" not in json.loads(path.read_text())["latency"]
    assert any("this run's timing alone" in line and "boom" in line for line in note)


def _rescaled(
    tmp_path,
    read: float,
    processes: tuple[float, ...] = (1.0, 1.05, 0.95),
    pooled: float | None = None,
    paddings=("sorted",),
):
    """A recorded variant whose record is rewritten so that this process's timing reads `read`x
    of it (the record's median moved, its processes' medians around it as given). Its passes are
    set too, 1% apart: the ones really timed while recording spread as widely as the machine's load,
    and the Mann-Whitney test against passes spread past 1.5x could not call a 1.5x re-timing slower."""
    matrix, _, paths = _record(tmp_path, FakeFresh([0.010, 0.011, 0.012]), paddings)
    for path in paths:
        record = json.loads(path.read_text())
        lat = record["latency"]
        base = statistics.median(lat["samples_s"]) / read
        lat["samples_s"] = [base * (1 + 0.01 * (i - 2)) for i in range(5)]
        lat["median_s"], lat["processes_s"] = base, [base * p for p in processes]
        if pooled is not None:
            lat["pooled_spread"] = pooled
        path.write_text(json.dumps(record))
    return matrix, base


@pytest.mark.parametrize(("fresh_ratio", "status", "state"), [(8.0, "fail", "confirmed"), (1.0, "pass", "not")])
def test_a_latency_failure_is_confirmed_in_three_fresh_processes(tmp_path, monkeypatch, fresh_ratio, status, state):
    matrix, base = _rescaled(tmp_path, read=8.0)  # this process will read 8x its record
    monkeypatch.setattr("perfsuite.judge.verdict.busy_reason", lambda *a: None)  # quiet, whatever runs beside
    session = PerfSession(matrix, baseline_root=tmp_path / "bl")
    fresh = FakeFresh([base * fresh_ratio] * 3)
    session.measure_fresh = fresh
    outcome = session.run(matrix.variants[0])
    assert fresh.calls == [[matrix.variants[0].id]] * 3
    assert outcome.verdict.status == status
    medians = ", ".join([f"{base * fresh_ratio * 1000:.1f}"] * 3)  # each process's median, in the note
    assert f"re-measured in 3 fresh processes (their medians {medians} ms): {state}" in " ".join(outcome.notes)
    if status == "fail":
        latency = next(c for c in outcome.verdict.checks if c.kind == "latency")
        assert "for the median of 3 fresh processes" in latency.detail


def _fixed(seconds: float):
    """A sampler that reads `seconds` for every pass: this process's median, exactly."""

    def sample(fn, rounds, warmup_rounds, between=None):
        fn()
        return [seconds] * rounds

    return sample


@pytest.mark.parametrize(
    ("fresh_ratio", "status", "state", "asked"),
    [(1.5, "fail", "failed: their median is over its tolerance", 6), (1.0, "pass", "passed", 3)],
)
def test_a_median_that_passed_above_its_screen_is_timed_again_and_the_fresh_median_decides(
    tmp_path, monkeypatch, fresh_ratio, status, state, asked
):
    """Floor 20% (as noise 5.3%), record noise 5%: one process may read up to 1.2x; the screen
    is 1.5 x 5.3% x sqrt(4/3), 1.10x. This process reads 1.16x: it passes, but three fresh
    processes are asked, and the median of theirs is judged (at the floor, 1.2x). Three that
    fail it contradict the first timing: three more are asked, and all six decide."""
    matrix, base = _rescaled(tmp_path, read=1.0, processes=(0.95, 1.0, 1.05), pooled=0.05)
    monkeypatch.setattr("perfsuite.judge.verdict.busy_reason", lambda *a: None)
    session = PerfSession(matrix, baseline_root=tmp_path / "bl")
    fresh = FakeFresh([base * fresh_ratio] * asked)
    session.measure_fresh = fresh
    outcome = session.run(matrix.variants[0], sampler=_fixed(base * 1.16))
    assert len(fresh.calls) == asked and outcome.verdict.status == status
    head = "1.16x of its record passed at first but lies above its own-noise screen, re-measured in"
    assert f"{head} {asked} fresh " in " ".join(outcome.notes)
    assert state in " ".join(outcome.notes)


def test_a_median_below_its_screen_is_not_timed_again(tmp_path, monkeypatch):
    matrix, base = _rescaled(tmp_path, read=1.0, processes=(0.95, 1.0, 1.05), pooled=0.05)
    monkeypatch.setattr("perfsuite.judge.verdict.busy_reason", lambda *a: None)
    session = PerfSession(matrix, baseline_root=tmp_path / "bl")
    fresh = FakeFresh([])
    session.measure_fresh = fresh
    outcome = session.run(matrix.variants[0], sampler=_fixed(base * 1.06))
    assert fresh.calls == [] and outcome.verdict.status == "pass"
    assert not any("re-measured" in n for n in outcome.notes)


@pytest.mark.parametrize(
    ("first", "three", "more", "status", "state"),
    [
        (1.5, 1.15, 1.5, "fail", "confirmed"),  # median of six: 1.325x
        (1.5, 1.15, 1.15, "pass", "not confirmed"),
        (1.16, 1.25, 1.0, "pass", "passed"),  # a screened pass the three failed: six say 1.125x
        (1.5, 1.15, FreshError("tiny: fresh timing process: boom"), "pass", "which failed: tiny: fresh timing"),
    ],
)
def test_a_re_timing_that_disagrees_above_the_screen_asks_as_many_processes_again_and_all_decide(
    tmp_path, monkeypatch, first, three, more, status, state
):
    """Floor 20%, screen 1.10x (as above). The first timing and three fresh processes disagree,
    the three from above the screen: three more are asked, and the median of all six decides."""
    matrix, base = _rescaled(tmp_path, read=1.0, processes=(0.95, 1.0, 1.05), pooled=0.05)
    monkeypatch.setattr("perfsuite.judge.verdict.busy_reason", lambda *a: None)
    session = PerfSession(matrix, baseline_root=tmp_path / "bl")
    again = [base * more] * 3 if isinstance(more, float) else [more]
    session.measure_fresh = fresh = FakeFresh([base * three] * 3 + again)
    outcome = session.run(matrix.variants[0], sampler=_fixed(base * first))
    assert len(fresh.calls) == 3 + len(again) and outcome.verdict.status == status
    notes = " ".join(outcome.notes)
    if isinstance(more, float):
        assert "re-measured in 6 fresh processes (3 more after the first 3 disagreed; their medians " in notes
        latency = next(c for c in outcome.verdict.checks if c.kind == "latency")
        assert "for the median of 6 fresh processes" in latency.detail
    else:  # the three more could not run: the first three decide, and the note says so
        assert "re-measured in 3 fresh processes (their medians " in notes
    assert state in notes


def test_a_re_timing_clear_of_the_screen_is_not_asked_again(tmp_path, monkeypatch):
    """A failure three fresh processes put within the screen (1.05x) was transient: no more."""
    matrix, base = _rescaled(tmp_path, read=1.0, processes=(0.95, 1.0, 1.05), pooled=0.05)
    monkeypatch.setattr("perfsuite.judge.verdict.busy_reason", lambda *a: None)
    session = PerfSession(matrix, baseline_root=tmp_path / "bl")
    session.measure_fresh = fresh = FakeFresh([base * 1.05] * 3)
    outcome = session.run(matrix.variants[0], sampler=_fixed(base * 1.5))
    assert len(fresh.calls) == 3 and outcome.verdict.status == "pass"
    assert "re-measured in 3 fresh processes (their medians " in " ".join(outcome.notes)


BUSY_HERE = "undecided: machine busy (passes spread 40% of their median, limit 25%)"


@pytest.mark.parametrize(
    ("fresh_ratio", "status", "state"),
    [(1.5, "fail", "failed: their median is over its tolerance"), (1.0, "pass", "passed")],
)
def test_a_timing_left_undecided_as_busy_is_timed_again_in_fresh_processes(
    tmp_path, monkeypatch, fresh_ratio, status, state
):
    """This process was busy; three fresh ones are not (the busy stub answers for this process's
    summary only): the median of theirs decides what this one could not."""
    matrix, base = _rescaled(tmp_path, read=1.0, processes=(0.95, 1.0, 1.05), pooled=0.05)
    monkeypatch.setattr(
        "perfsuite.judge.verdict.busy_reason", lambda m, *a: None if m.latency.processes_s else BUSY_HERE
    )
    session = PerfSession(matrix, baseline_root=tmp_path / "bl")
    fresh = FakeFresh([base * fresh_ratio] * 3)
    session.measure_fresh = fresh
    outcome = session.run(matrix.variants[0], sampler=_fixed(base * 1.02))
    assert len(fresh.calls) == 3 and outcome.verdict.status == status
    notes = " ".join(outcome.notes)
    assert "latency undecided at first (machine busy; median " in notes
    assert f"re-measured in 3 fresh processes (their medians {base * fresh_ratio * 1000:.1f}, " in notes
    assert f" ms): {state}" in notes


def test_once_a_busy_re_timing_is_busy_too_the_run_stops_re_timing_busy_variants(tmp_path, monkeypatch):
    """The machine, not the moment, is busy: the first stands, and the next busy variant costs no
    processes. The busy rule's own answer (through its environment seam) is what is recognised."""
    matrix, base = _rescaled(tmp_path, read=1.0, pooled=0.05, paddings=("static", "sorted"))
    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "busy")
    session = PerfSession(matrix, baseline_root=tmp_path / "bl")
    fresh = FakeFresh([base] * 3)
    session.measure_fresh = fresh
    first, second = (session.run(v, sampler=_fixed(base)) for v in matrix.variants)
    assert len(fresh.calls) == 3 and first.verdict.status == second.verdict.status == "pass"
    assert "undecided (machine busy), so the first measurement stands" in " ".join(first.notes)
    assert not any("re-measured" in n for n in second.notes)
    assert all(c.judged is False for o in (first, second) for c in o.verdict.coverage if c.kind == "latency")


def test_a_busy_timing_against_a_record_of_one_process_is_not_timed_again(tmp_path, monkeypatch):
    matrix, _, [path] = _record(tmp_path, FakeFresh([0.010, FreshError("boom")]))
    assert "processes_s" not in json.loads(path.read_text())["latency"]  # the record keeps one process
    monkeypatch.setattr("perfsuite.judge.verdict.busy_reason", lambda *a: BUSY_HERE)
    session = PerfSession(matrix, baseline_root=tmp_path / "bl")
    session.measure_fresh = fresh = FakeFresh([])
    outcome = session.run(matrix.variants[0])
    assert fresh.calls == [] and outcome.verdict.status == "pass"
    assert not any("re-measured" in n for n in outcome.notes)


def test_a_median_of_fresh_processes_gets_its_own_tolerance_but_never_below_the_floor():
    one, _ = latency_tolerance(BOUNDS, 0.02, 3)
    three, why = latency_tolerance(BOUNDS, 0.02, 3, measured=3)
    least = math.log(1.2) / (3 * math.sqrt(4 / 3))  # the floor as the screen's least noise
    assert one == three == pytest.approx(0.2)  # the record's median is no better known for more processes now
    assert "floor 20%" in why and "for the median of 3 fresh processes" in why
    noisy, _ = latency_tolerance(BOUNDS, 0.10, 3, measured=3)  # above the floor: its own noise
    assert noisy == pytest.approx(math.expm1(3 * 0.10 * math.sqrt(0.4487 + 1 / 3)))
    assert latency_screen(BOUNDS, 0.10, 3) == pytest.approx(math.expm1(1.5 * 0.10 * math.sqrt(4 / 3)))
    assert latency_screen(BOUNDS, 0.02, 3) == pytest.approx(math.expm1(1.5 * least * math.sqrt(4 / 3)))
    assert latency_screen(BOUNDS, None, 0) is None  # a record of one process: no screen


def test_the_median_of_fresh_processes_medians_is_judged_so_one_busy_process_does_not_fail_it():
    base = [0.1] * 6
    check = check_latency([0.15] * 9, 0.1, base, BOUNDS, spread=0.02, processes=3, measured_s=(0.1, 0.25, 0.105))
    assert check.ratio == pytest.approx(1.05) and check.ok


def test_fresh_processes_timings_become_one_summary_with_each_process_median():
    answers = [_lat(0.010), _lat(0.012), {**_lat(0.011), "spread": 0.30, "other_cpu_share": 0.4}]
    summary = LatencySummary.of_processes(answers)
    assert summary.processes_s == pytest.approx((0.010, 0.012, 0.011)) and len(summary.samples_s) == 15
    # the busy signals: the median process's; one busy process of three does not make it undecided
    assert summary.spread == 0.02 and summary.other_cpu_share == 0.0
    busier = LatencySummary.of_processes([*answers[1:], {**_lat(0.01), "other_cpu_share": 0.5}])
    assert busier.other_cpu_share == 0.4
    assert LatencySummary.from_dict({**_lat(0.01), "processes_s": [0.01, 0.02]}).processes_s == (0.01, 0.02)


def test_processes_must_be_none_or_at_least_two(tmp_path, capsys):
    assert processes_count("0") == 0 and processes_count("3") == 3
    with pytest.raises(ValueError, match="at least 2"):
        processes_count("1")
    with pytest.raises(SystemExit) as refused:  # argparse's refusal, before anything runs
        main(["rebaseline", "--matrix", str(write_matrix(tmp_path, rows=4)), "--processes", "1"])
    err = capsys.readouterr().err
    assert refused.value.code == 2
    assert "--processes" in err and "Traceback" not in err


def test_a_fresh_process_times_the_variant_as_the_tier_does(tmp_path):
    """The real child (python -m perfsuite.cli.fresh) on the unit tier, and a variant it cannot know."""
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4)))
    request = FreshRequest(str(matrix.source), str(tmp_path / "bl"))
    (variant,) = [v.id for v in matrix.variants[:1]]
    answers = measure_fresh(request, [variant])
    assert len(answers[variant]["samples_s"]) >= 1 and all(s > 0 for s in answers[variant]["samples_s"])
    with pytest.raises(FreshError, match="no-such-variant"):
        measure_fresh(request, ["no-such-variant"])
