"""The selftest's injections and its tally (the measured rates themselves are in docs/bounds.md)."""

from __future__ import annotations

import time

import pytest
import torch

from perfsuite import runner
from perfsuite.batching import batch_rows
from perfsuite.data.formatting import EncodedRow
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
def restore_runner(monkeypatch):
    """install() patches the runner module; put it back after the test."""
    monkeypatch.setattr(runner, "prepare_variant", runner.prepare_variant)
    monkeypatch.setattr(runner, "batch_rows", runner.batch_rows)


def test_slowdown_is_installed_on_the_target_variant_only(restore_runner, monkeypatch):
    class Prepared:
        def __init__(self):
            self.model = _Sleeper()

    monkeypatch.setattr(runner, "prepare_variant", lambda variant, *a, **k: Prepared())
    install(Scenario("slow", 0.5, "tiny-llama3-fp32-sdpa-sorted"))

    class V:
        def __init__(self, vid):
            self.id = vid

    target = runner.prepare_variant(V("tiny-llama3-fp32-sdpa-sorted"))
    other = runner.prepare_variant(V("tiny-llama3-fp32-sdpa-static"))
    assert len(target.model._forward_hooks) == 1 and len(target.model._forward_pre_hooks) == 1
    assert not other.model._forward_hooks


def test_padding_break_makes_sorted_batch_like_static(restore_runner):
    rows = [EncodedRow(str(i), tuple(range(1, n)), 0, 0) for i, n in enumerate([5, 40, 7, 38, 9, 36])]
    static = [b.input_ids.shape for b in batch_rows(rows, 2, "static", 64, 0, "right")]
    assert [b.input_ids.shape for b in runner.batch_rows(rows, 2, "sorted", 64, 0, "right")] != static
    install(Scenario("padding", break_padding=True))
    broken = runner.batch_rows(rows, 2, "sorted", 64, 0, "right")
    assert [b.input_ids.shape for b in broken] == static


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
