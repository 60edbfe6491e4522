"""Verdicts: no baseline is a skip that says how to record one; NaNs fail with a count."""

from __future__ import annotations

from perfsuite.baselines import BaselineError, make_record
from perfsuite.judge import judge
from perfsuite.matrix import Bounds

ENV = {"python": "3.11", "torch": "2.13.0", "transformers": "5.24.0"}


def _measurement(samples=(0.1, 0.1, 0.1, 0.1, 0.1), nonfinite=0, settings=None):
    return {
        "settings": settings or {"data": "d@1", "rows": 4, "batch_size": 2, "max_length": 96},
        "environment": ENV,
        "work": {"rows": 4, "batches": 2, "real_tokens": 100, "processed_tokens": 120},
        "latency": {"samples_s": list(samples)},
        "quality": {"log_loss": 1.0, "accuracy": 0.5, "nonfinite_rows": nonfinite},
    }


def _record(**env):
    m = _measurement()
    return make_record(
        "v",
        "k",
        m["work"],
        m["latency"]["samples_s"],
        {"log_loss": 1.0, "accuracy": 0.5},
        Bounds(),
        {**ENV, **env},
        m["settings"],
    )


def test_no_baseline_skips_and_says_how_to_record():
    v = judge(_measurement(), None, Bounds(), "baselines/k/v.json")
    assert v.status == "skip" and "tox -e rebaseline" in v.reason and "baselines/k/v.json" in v.reason


def test_nonfinite_logits_fail_even_without_baseline():
    v = judge(_measurement(nonfinite=3), None, Bounds(), "p")
    assert v.status == "fail"
    assert "3 of 4 rows non-finite" in v.failed[0].measured


def test_corrupt_baseline_fails_with_its_message():
    v = judge(_measurement(), None, Bounds(), "p", BaselineError("p: unreadable baseline"))
    assert v.status == "fail" and "unreadable" in v.reason


def test_matching_run_passes():
    assert judge(_measurement(), _record(), Bounds(), "p").status == "pass"


def test_other_workload_is_a_skip_naming_the_difference():
    m = _measurement(settings={"data": "mine.csv@2", "rows": 4, "batch_size": 2, "max_length": 96})
    v = judge(m, _record(), Bounds(), "p")
    assert v.status == "skip" and "data 'd@1' -> 'mine.csv@2'" in v.reason


def test_environment_change_is_reported_beside_the_verdict():
    v = judge(_measurement(), _record(transformers="5.23.0"), Bounds(), "p")
    assert v.environment_changes == ["transformers 5.23.0 -> 5.24.0"]


def test_log_loss_drift_fails_the_quality_bound():
    m = _measurement()
    m["quality"]["log_loss"] = 1.01
    v = judge(m, _record(), Bounds(log_loss_abs=0.002), "p")
    assert v.status == "fail" and v.failed[0].name == "log-loss"


def test_matrix_bounds_decide_and_a_tolerance_change_is_reported():
    m = _measurement(samples=(0.13, 0.13, 0.13, 0.13, 0.13))  # 1.3x the baseline
    record = _record()
    strict = judge(m, record, Bounds(latency_ratio=0.2), "p")
    assert strict.status == "fail"
    assert any("tolerances changed since baseline: latency_ratio" in c for c in strict.environment_changes)
    assert judge(m, record, Bounds(latency_ratio=0.35), "p").status == "pass"


def _with_reference(**ref):
    m = _measurement()
    base = {"argmax_agreement": 1.0, "max_abs_dp": 0.001, "log_loss": 0.80, "reference_log_loss": 0.80}
    base.update(ref)
    base["log_loss_increase"] = base["log_loss"] - base["reference_log_loss"]
    m["quality"]["reference"] = base
    return m


def test_reference_bounds_fail_without_any_baseline():
    bounds = Bounds(ref_argmax_agreement=0.9, ref_max_abs_dp=0.05, ref_log_loss_increase=0.01)
    assert judge(_with_reference(), None, bounds, "p").status == "skip"
    broken = judge(_with_reference(argmax_agreement=0.75, max_abs_dp=0.3, log_loss=0.9), None, bounds, "p")
    assert broken.status == "fail"
    text = broken.message("tiny-gemma2-fp32-eager-sorted")
    assert "[reference] argmax agreement FAILED: measured 0.750, allowed >= 0.9" in text
    assert "[reference] max |dp| FAILED: measured 0.3000, allowed <= 0.05" in text
    assert "[reference] log-loss increase FAILED: measured +0.1000 (0.9000 vs 0.8000)" in text
