"""The selftest's injections and its tally (the measured rates themselves are in docs/bounds.md)."""

from __future__ import annotations

import time

import pytest
import torch

from perfsuite.data.formatting import EncodedRow
from perfsuite.measure import runner
from perfsuite.measure.batching import batch_rows
from perfsuite.selftest import Scenario, _slow_hooks, install, scenarios, tally


class _Sleeper(torch.nn.Module):
    def forward(self, x):
        time.sleep(0.02)
        return x


def test_slow_hook_stretches_each_forward_by_the_fraction():
    model = _Sleeper()
    _slow_hooks(model, 0.5)
    start = time.perf_counter()
    model(torch.zeros(1))
    assert time.perf_counter() - start >= 0.02 * 1.5


@pytest.fixture
def empty_hooks(monkeypatch):
    """install() fills the runner's seam; give each test a fresh, empty one."""
    monkeypatch.setattr(runner, "HOOKS", runner.RunnerHooks())
    return runner.HOOKS


def _prepared(variant_id: str):
    from perfsuite.variant import Variant

    model, dtype, attention, padding = variant_id.rsplit("-", 3)
    return runner.PreparedVariant(Variant(model, dtype, attention, padding), _Sleeper(), "cpu", [], [], 0.0, True, None)


def test_production_runs_with_an_empty_seam():
    assert runner.HOOKS.padding is None and runner.HOOKS.after_prepare == []


def test_slowdown_is_installed_on_the_target_variant_only(empty_hooks):
    install(Scenario("slow", 0.5, "tiny-llama3-fp32-sdpa-sorted"))
    target, other = _prepared("tiny-llama3-fp32-sdpa-sorted"), _prepared("tiny-llama3-fp32-sdpa-static")
    for prepared in (target, other):
        for hook in empty_hooks.after_prepare:
            hook(prepared)
    assert len(target.model._forward_hooks) == 1 and len(target.model._forward_pre_hooks) == 1
    assert not other.model._forward_hooks


def test_padding_break_makes_the_runner_batch_sorted_like_static(empty_hooks):
    from perfsuite.variant import TierSettings, Variant

    rows = [EncodedRow(str(i), tuple(range(1, n)), 0, 0) for i, n in enumerate([5, 40, 7, 38, 9, 36])]
    static = [b.input_ids.shape for b in batch_rows(rows, 2, "static", 64, 0, "right")]
    settings = TierSettings("unit", "cpu", (), 6, 2, 64, threads=1)
    variant = Variant("tiny-llama3", "fp32", "sdpa", "sorted")
    checkpoint = None  # shape-only weights: batching is what this test looks at
    before = runner.prepare_variant(variant, settings, rows, 0, checkpoint)
    assert [b.input_ids.shape for b in before.batches] != static
    install(Scenario("padding", break_padding=True))
    broken = runner.prepare_variant(variant, settings, rows, 0, checkpoint)
    assert [b.input_ids.shape for b in broken.batches] == static


def test_scenarios_are_aa_then_sizes_then_padding():
    names = [s.name for s in scenarios("t", (0.1, 0.5))]
    assert names == ["A/A", "t +10%", "t +50%", "sorted padding behaves as static"]


def _result(rid, failed=(), kinds=("work", "latency"), involves=None):
    r = {"id": rid, "kinds": list(kinds), "failed": list(failed)}
    if involves:
        r["involves"] = involves
    return r


def test_tally_counts_false_alarms_and_catches_per_bound_kind():
    aa = Scenario("A/A").__dict__
    slow = Scenario("t-sorted +50%", 0.5, "t-sorted").__dict__
    runs = [
        {"scenario": aa, "results": [_result("t-sorted"), _result("u-static", failed=["latency"])]},
        {"scenario": aa, "results": [_result("t-sorted"), _result("u-static")]},
        {
            "scenario": slow,
            "results": [
                _result("t-sorted", failed=["latency"]),
                _result("pair", failed=["relative"], kinds=["relative"], involves=["t-sorted", "u-static"]),
                _result("u-static"),
            ],
        },
    ]
    summary = tally(runs)
    assert summary["A/A"]["runs"] == 2
    assert summary["A/A"]["alarms"] == {"latency": 1}
    assert summary["A/A"]["checks"] == {"work": 4, "latency": 4}
    assert summary["A/A"]["runs_with_alarm"] == {"latency": 1}
    assert summary["t-sorted +50%"]["caught"] == {"any": 1, "latency": 1, "relative": 1}
    assert summary["t-sorted +50%"]["alarms"] == {}  # u-static is untouched and quiet


def test_tally_treats_every_sorted_variant_as_touched_by_the_padding_break():
    pad = Scenario("pad", break_padding=True).__dict__
    runs = [{"scenario": pad, "results": [_result("a-sorted", failed=["work"]), _result("b-static")]}]
    summary = tally(runs)["pad"]
    assert summary["caught"] == {"any": 1, "work": 1}
    assert summary["checks"] == {"work": 1, "latency": 1}


def test_the_run_plan_counts_each_scenario_and_can_leave_broken_padding_out():
    from perfsuite.selftest import run_plan

    plan = {sc.name: n for sc, n in run_plan("t", (0.5,), 10, 6, padding_runs=2)}
    assert plan == {"A/A": 10, "t +50%": 6, "sorted padding behaves as static": 2}
    assert {sc.name: n for sc, n in run_plan("t", (0.5,), 3, 4)}["sorted padding behaves as static"] == 4
