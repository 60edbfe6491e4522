"""compare's blocks: fresh zygotes per block, the pooled t interval over blocks and its coverage,
variance components, the smallest detectable slowdown, the budget, and the selftest's tally."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from perfsuite.cli import main
from perfsuite.compare import calibration
from perfsuite.compare.harness import Comparison, decide
from perfsuite.compare.protocol import CompareSettings, VariantComparison, WorkerProcess
from perfsuite.compare.report import to_json
from perfsuite.compare.sides import checkout_env, python_side, this_side
from perfsuite.matrix.tier import load_matrix
from perfsuite.stats.intervals import RatioEstimate, block_ratio_interval, nested_ratio_interval, variance_components
from perfsuite.variant import Variant
from tests.conftest import write_matrix

VARIANT = Variant("tiny-llama3", "fp32", "sdpa", "sorted", "unit")


def _blocks(rng, n_blocks, pairs=3, passes=6, ratio=1.0, zygote=0.03, process=0.02, noise=0.02):
    """Synthetic timings with a bias per zygote block, per process pair and per pass."""
    blocks = []
    for _ in range(n_blocks):
        z = rng.normal(0, zygote)
        block = []
        for _ in range(pairs):
            p = rng.normal(0, process)
            a = 0.1 * np.exp(rng.normal(0, noise, passes))
            b = 0.1 * ratio * np.exp(z + p + rng.normal(0, noise, passes))
            block.append((list(a), list(b)))
        blocks.append(block)
    return blocks


def test_block_interval_is_a_t_interval_over_block_means():
    blocks = _blocks(np.random.default_rng(3), 4, ratio=1.10, zygote=0.08, process=0.001, noise=0.001)
    est = block_ratio_interval(blocks)
    means = [np.mean([np.median(np.log(np.array(b) / np.array(a))) for a, b in blk]) for blk in blocks]
    assert est.ratio == pytest.approx(math.exp(np.mean(means)))
    from scipy.stats import t

    half = t.ppf(0.975, 3) * np.std(means, ddof=1) / 2
    assert est.low == pytest.approx(math.exp(np.mean(means) - half))
    assert (est.blocks, est.pairs, est.df) == (4, 12, 3)


def test_blocks_that_agree_by_chance_do_not_narrow_the_interval_below_the_pairs_spread():
    """Three blocks with equal means but pairs spread +-10% within each: no zygote level shows,
    so both mean squares pool (8 degrees of freedom), and the interval is as wide as the pairs'
    spread says, not the zero width of the blocks' chance agreement."""
    spread = [-0.1, 0.0, 0.1]
    blocks = [[([0.1], [0.1 * math.exp(x)]) for x in spread] for _ in range(3)]
    est = block_ratio_interval(blocks)
    from scipy.stats import t

    half = t.ppf(0.975, 8) * math.sqrt(3 * 0.02 / 8 / 9)
    assert est.df == 8 and est.high == pytest.approx(math.exp(half))


def test_pairs_pool_with_blocks_when_no_zygote_bias_shows_and_not_when_one_does():
    """Blocks whose means differ less than their pairs imply pool every pair's degrees of
    freedom (3 blocks of 3 pairs: 8), which is what makes three blocks enough; blocks far
    apart beyond the pairs' spread (a zygote bias) leave only the blocks' 2."""

    def blocks(shifts):
        return [[([0.1], [0.1 * math.exp(z + x)]) for x in (-0.1, 0.0, 0.1)] for z in shifts]

    assert block_ratio_interval(blocks([0.0, 0.01, -0.01])).df == 8
    apart = block_ratio_interval(blocks([0.0, 0.3, -0.3]))
    means = [0.0, 0.3, -0.3]
    assert apart.df == 2 and apart.se_log == pytest.approx(np.std(means, ddof=1) / math.sqrt(3))


def test_one_block_decides_nothing():
    est = block_ratio_interval(_blocks(np.random.default_rng(0), 1))
    assert est.low == 0.0 and est.high == math.inf and est.detectable(0.02) == math.inf


def test_block_interval_covers_a_zygote_bias_the_two_level_bootstrap_misses():
    """400 simulated A/A comparisons, 4 blocks of 3 pairs each, a 3% bias per zygote: the t
    interval over blocks contains 1.0 about 95% of the time; the bootstrap over pairs and
    passes, which takes the pairs of one zygote as independent, far less often."""
    rng = np.random.default_rng(7)
    new = old = 0
    runs = 400
    for _ in range(runs):
        blocks = _blocks(rng, 4)
        e = block_ratio_interval(blocks)
        new += e.low <= 1.0 <= e.high
        flat = [pair for block in blocks for pair in block]
        o = nested_ratio_interval(flat, resamples=200, seed=int(rng.integers(1 << 30)))
        old += o.low <= 1.0 <= o.high
    assert new / runs >= 0.92
    assert old / runs < 0.85


def test_variance_components_find_each_level():
    comps = variance_components(_blocks(np.random.default_rng(5), 60, zygote=0.04, process=0.02, noise=0.01))
    assert comps["zygote_sd"] == pytest.approx(0.04, rel=0.3)
    assert comps["process_sd"] == pytest.approx(0.02, rel=0.35)
    assert comps["pass_sd"] == pytest.approx(0.01 * math.sqrt(2), rel=0.3)


def test_smallest_detectable_slowdown_grows_with_the_noise_and_the_threshold():
    tight = RatioEstimate(1.0, 0.99, 1.01, 12, 0.95, 4, 0.005, 3)
    loose = RatioEstimate(1.0, 0.95, 1.05, 12, 0.95, 4, 0.02, 3)
    assert 0.02 < tight.detectable(0.02) < loose.detectable(0.02)
    assert tight.detectable(0.0) < tight.detectable(0.02)
    assert RatioEstimate(1.0, 0.9, 1.1, 6, 0.95).detectable(0.02) == math.inf  # no t interval behind it


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (1.025, 1.08, "slower"),  # beyond the 2% floor, though inside the 5% band
        (1.01, 1.04, "same"),
        (1.01, 1.07, "undecided"),
        (0.93, 0.975, "faster"),
    ],
)
def test_slower_needs_the_interval_beyond_min_effect_and_same_within_max_slowdown(low, high, verdict):
    assert decide(RatioEstimate((low + high) / 2, low, high, 9, 0.95), 0.05, 0.02) == verdict


class _FakeWorker:
    def close(self) -> None:
        pass


def _fake_comparison(monkeypatch, settings, per_block_s, ratios):
    """A Comparison whose blocks are synthetic and whose clock advances per_block_s a block."""
    comparison = Comparison.__new__(Comparison)
    comparison.settings, comparison.progress = settings, lambda _t: None
    now = [0.0]
    comparison.clock = lambda: now[0]
    starts = []
    monkeypatch.setattr(comparison, "_start", lambda v: starts.append(1) or (_FakeWorker(), _FakeWorker()))
    it = iter(ratios)

    def block(workers, variant, result):
        now[0] += per_block_s
        r = next(it)
        result.blocks.append([([0.1] * 2, [0.1 * r * (1 + 0.001 * i)] * 2) for i in range(settings.block_pairs)])

    monkeypatch.setattr(comparison, "_block", block)
    return comparison, starts


def test_an_undecided_run_stops_before_the_block_that_would_overrun_the_budget(monkeypatch):
    settings = CompareSettings(block_pairs=2, min_pairs=6, max_pairs=40, budget_s=100)
    ratios = [1.0, 1.06, 0.95, 1.04, 0.97, 1.05, 0.96, 1.0, 1.0, 1.0]
    comparison, starts = _fake_comparison(monkeypatch, settings, 30.0, ratios)
    result = comparison.run_variant(VARIANT)
    assert len(result.blocks) == 3 and len(starts) == 3  # a 4th would end at 120 s
    assert result.verdict == "undecided" and result.stopped == "budget"
    assert "budget of 100 s reached" in result.reason and "would be caught 4 times in 5" in result.reason


def test_every_block_starts_fresh_zygotes_and_a_clear_change_stops_early(monkeypatch):
    settings = CompareSettings(block_pairs=2, min_pairs=6, max_pairs=40, budget_s=0)
    comparison, starts = _fake_comparison(monkeypatch, settings, 30.0, [1.30, 1.31, 1.29, 1.3, 1.3])
    result = comparison.run_variant(VARIANT)
    assert result.verdict == "slower" and result.stopped == "decided"
    assert len(result.blocks) == 3 and len(starts) == 3 and len(result.pairs) == 6


def test_blocks_are_served_by_fresh_worker_processes(tmp_path, monkeypatch):
    """Real workers on the unit tier: two blocks, so two zygotes per side, none reused."""
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4)))
    started: list[int] = []
    real_init = WorkerProcess.__init__

    def spy(self, side, timeout_s):
        real_init(self, side, timeout_s)
        started.append(self.proc.pid)

    monkeypatch.setattr(WorkerProcess, "__init__", spy)
    settings = CompareSettings(passes=2, block_pairs=1, min_pairs=2, max_pairs=2)
    b = python_side(sys.executable)
    (result,) = Comparison(matrix, this_side(), b, settings, progress=lambda _t: None).run(matrix.variants)
    assert len(result.blocks) == 2 and [len(block) for block in result.blocks] == [1, 1]
    assert len(started) == 4 and len(set(started)) == 4
    assert result.work_diff == [] and result.prediction_problems == []
    data = json.loads(json.dumps(to_json([result], (this_side(), b), {}, settings), allow_nan=False))
    assert data["variants"][0]["blocks"] == [1, 1]


class _Recorder:
    """A worker that records when each request was sent and answered (the shared `log`)."""

    proc = type("P", (), {"poll": staticmethod(lambda: 0)})()  # its child has exited: no `quit`

    def __init__(self, name, log):
        self.side, self.log = type("S", (), {"name": name})(), log

    def send(self, op, **request):
        self.log.append(("send", self.side.name, op))

    def receive(self, op):
        self.log.append(("answer", self.side.name, op))
        answers = {
            "hello": {"versions": {}, "perfsuite": "x"},
            "pass": {"seconds": 0.1},
            "prepare": {"work": {}, "probs": [[0.3, 0.3, 0.4]], "labels": [0], "nonfinite_rows": 0},
        }
        return {"ok": True, **answers.get(op, {})}

    def ask(self, op, **request):
        self.send(op, **request)
        return self.receive(op)


def test_zygotes_start_side_by_side_and_children_prepare_one_at_a_time(monkeypatch):
    """Imports and tokenising of both sides overlap (both requests out before either answer);
    a child's model preparation and every timed pass run alone."""
    log: list[tuple[str, str, str]] = []
    workers = (_Recorder("A", log), _Recorder("B", log))
    monkeypatch.setattr("perfsuite.compare.harness.WorkerProcess", lambda side, timeout: workers[side.name == "B"])
    comparison = Comparison(load_matrix("cpu"), this_side(), this_side(), CompareSettings(passes=2))
    comparison.sides = (type("S", (), {"name": "A"})(), type("S", (), {"name": "B"})())
    comparison._start(VARIANT)
    assert [e[0] for e in log[:4]] == ["send", "send", "answer", "answer"]  # hello to both first
    assert [e[0] for e in log[4:8]] == ["send", "send", "answer", "answer"]  # then tokenize
    log.clear()
    comparison._pair(workers, VARIANT, [])
    prepares = [e[0] for e in log if e[2] == "prepare"]
    assert prepares == ["send", "answer", "send", "answer"]  # one side's answered before the other's is sent
    timed = [e for e in log if e[2] == "pass"]
    assert [e[0] for e in timed] == ["send", "answer"] * 4  # each pass answered before the next is sent


def test_this_checkout_starts_its_worker_as_a_base_side_does():
    env = checkout_env()
    import perfsuite

    assert env == {} or perfsuite.__file__.startswith(env["PYTHONPATH"])
    assert this_side().env == env


def test_compare_json_holds_no_nan_for_components_that_could_not_be_estimated():
    result = VariantComparison(VARIANT, "undecided", estimate=RatioEstimate(1.0, 0.9, 1.1, 2, 0.95, 2, 0.01, 1))
    result.blocks = [[([0.1], [0.1])], [([0.1], [0.11])]]
    result.components = {"zygote_sd": math.nan, "process_sd": math.nan, "pass_sd": 0.0}
    data = to_json([result], (this_side(), this_side()), {}, CompareSettings())
    json.dumps(data, allow_nan=False)
    assert data["variants"][0]["components"]["zygote_sd"] is None and data["variants"][0]["detectable"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--min-pairs", "4", "--block-pairs", "3"], "--min-pairs 4 is less than two blocks of --block-pairs 3"),
        (["--budget-s", "-1"], "--budget-s -1.0 must be 0"),
    ],
)
def test_compare_timing_that_cannot_give_an_interval_is_refused(argv, message, capsys):
    code = main(["compare", "--python", "/no/such/python", "-k", "tiny-llama3-fp32-sdpa-sorted", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def _row(result, touched=False):
    return calibration.row("A/A", 1, result, touched, 0)


def test_selftest_coverage_counts_unchanged_comparisons_and_shows_the_old_interval_beside():
    rng = np.random.default_rng(11)
    rows = []
    for ratio, touched in [(1.0, False), (1.0, False), (1.2, True)]:
        result = VariantComparison(VARIANT, "same")
        result.blocks = _blocks(rng, 3, ratio=ratio)
        result.estimate = block_ratio_interval(result.blocks)
        rows.append(_row(result, touched))
    covered, total = calibration.coverage(rows)
    assert total == 2 and covered == sum(r["low"] <= 1.0 <= r["high"] for r in rows[:2])
    text = calibration.render(rows)
    assert f"contains 1.0 in {covered} of 2 unchanged comparisons" in text and "two-level bootstrap" in text
    assert rows[0]["old_low"] is not None and len(rows[0]["timings"]) == 3


def test_busy_loops_are_gone_after_the_block_even_when_it_fails():
    with pytest.raises(RuntimeError), calibration.busy_loops(1) as procs:
        assert procs[0].poll() is None
        raise RuntimeError("boom")
    assert procs[0].poll() is not None


def test_a_busy_machine_leaves_compare_undecided_and_says_why(monkeypatch):
    settings = CompareSettings(block_pairs=2, min_pairs=6, max_pairs=40, budget_s=0)
    comparison, starts = _fake_comparison(monkeypatch, settings, 30.0, [1.30, 1.31, 1.29, 1.3])
    block = comparison._block

    def busy_block(workers, variant, result):
        block(workers, variant, result)
        result.other_cpu += [0.45, 0.55]  # another job took half the machine while these passes ran

    monkeypatch.setattr(comparison, "_block", busy_block)
    result = comparison.run_variant(VARIANT)
    assert result.verdict == "undecided" and result.stopped == "busy" and len(starts) == 3
    assert "machine busy: other processes took 50% of the CPU time while timing (limit 20%)" in result.reason


def test_a_worker_pass_says_how_much_of_the_cpu_others_took():
    from perfsuite.compare.worker import Worker

    class Prepared:
        def one_pass(self) -> None:  # long enough for /proc/stat's 10 ms ticks to move
            import time

            end = time.perf_counter() + 0.1
            while time.perf_counter() < end:
                pass

    worker = Worker()
    worker.prepared = Prepared()
    answer = worker.one_pass({})
    assert answer["seconds"] > 0
    assert 0.0 <= answer["other_cpu"] <= 1.0


def test_close_all_tells_every_zygote_to_quit_before_waiting_for_any():
    """Their exits overlap: a side whose worker tears its interpreter down (a revision from
    before 2026-12-02) no longer makes the other side's wait for it."""
    from perfsuite.compare.protocol import close_all

    log: list[tuple[str, str]] = []

    class Zygote:
        def __init__(self, name: str) -> None:
            self.name = name

        def quit(self) -> None:
            log.append(("quit", self.name))

        def reap(self) -> None:
            log.append(("reap", self.name))

    close_all([Zygote("A"), Zygote("B")])
    assert log == [("quit", "A"), ("quit", "B"), ("reap", "A"), ("reap", "B")]


def test_a_zygote_leaves_at_once_after_its_last_answer(monkeypatch):
    """After `quit` the worker flushes and exits without the interpreter's teardown."""
    from perfsuite.compare import worker

    served, exits = [], []
    monkeypatch.setattr(worker, "serve", lambda: served.append(True))

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(worker.os, "_exit", fake_exit)
    with pytest.raises(SystemExit):
        worker.main()
    assert served == [True] and exits == [0]


def test_only_the_first_process_pair_of_a_run_scores_its_predictions(monkeypatch):
    """The work and predictions are compared once, from the first pair; later children only warm up."""
    asked: list[bool] = []

    class Scoring(_Recorder):
        def ask(self, op, **request):
            if op == "prepare":
                asked.append(request["score"])
            return super().ask(op, **request)

        def quit(self) -> None:
            pass

        def reap(self) -> None:
            pass

    log: list[tuple[str, str, str]] = []
    settings = CompareSettings(passes=2, block_pairs=2, min_pairs=4, max_pairs=4)
    comparison = Comparison(load_matrix("cpu"), this_side(), this_side(), settings)
    monkeypatch.setattr(comparison, "_start", lambda v: (Scoring("A", log), Scoring("B", log)))
    result = comparison.run_variant(VARIANT)
    assert len(result.blocks) == 2 and result.work_diff == [] and result.prediction_problems == []
    assert asked == [True, True] + [False] * 6  # both children of the first pair, then 3 pairs more
