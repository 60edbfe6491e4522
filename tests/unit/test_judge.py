"""Verdicts: no baseline is a skip that says how to record one; NaNs fail with a count."""

from __future__ import annotations

import statistics
from dataclasses import asdict, replace

from perfsuite.judge.verdict import StoredRecords, judge
from perfsuite.measure.measurement import LatencySummary, Measurement, MemorySummary, QualitySummary, WorkSummary
from perfsuite.store.baselines import BaselineError
from perfsuite.store.records import Latency, MachineRecord, PortableRecord, Quality
from perfsuite.variant import Bounds, TierSettings

ENV = {"python": "3.11", "torch": "2.13.0", "transformers": "5.24.0"}
KEY = "cpu-test-2c"
TOL = asdict(Bounds())
TIER = TierSettings("cpu", "cpu", ("cpu",), 4, 2, 96)


def _measurement(
    samples=(0.1, 0.1, 0.1, 0.1, 0.1), nonfinite=0, settings=None, probes=(0.005,) * 5, spread=0.0, rows=4, **quality
):
    return Measurement(
        "v",
        settings or {"data": "d@1", "rows": 4, "batch_size": 2, "max_length": 96},
        ENV,
        WorkSummary(rows, 2, 100, 120, 60, 1.2, 1000, 64),
        LatencySummary(statistics.median(samples), 0.0, spread, tuple(samples), tuple(probes)),
        QualitySummary(**{"log_loss": 1.0, "accuracy": 0.5, "nonfinite_rows": nonfinite, **quality}),
        MemorySummary(64, None, "test"),
    )


def _records(portable_quality=True, **env):
    m = _measurement()
    quality = Quality(1.0, 0.5)
    portable = PortableRecord(
        "v", "cpu", m.work.counters(), quality if portable_quality else None, m.settings, ENV, TOL
    )
    machine = MachineRecord(
        "v",
        "cpu",
        KEY,
        Latency.from_samples(list(m.latency.samples_s), 0.005),
        {},
        None if portable_quality else quality,
        m.settings,
        {**ENV, **env},
        TOL,
    )
    return portable, machine


def _stored(portable=None, machine=None, error=None):
    return StoredRecords(portable, machine, "bl/portable/cpu/v.json", f"bl/{KEY}/cpu/v.json", KEY, error)


def _both(**env):
    return _stored(*_records(**env))


def test_no_baseline_skips_and_says_how_to_record():
    v = judge(_measurement(), _stored(), Bounds())
    assert v.status == "skip" and "tox -e rebaseline" in v.reason and "bl/portable/cpu/v.json" in v.reason


def test_nonfinite_logits_fail_even_without_baseline():
    v = judge(_measurement(nonfinite=3), _stored(), Bounds())
    assert v.status == "fail"
    assert "3 of 4 rows non-finite" in v.failed[0].measured


def test_corrupt_baseline_fails_with_its_message():
    v = judge(_measurement(), _stored(error=BaselineError("p: unreadable baseline")), Bounds())
    assert v.status == "fail" and "unreadable" in v.reason


def test_matching_run_passes():
    assert judge(_measurement(), _both(), Bounds(), TIER).status == "pass"


def test_other_workload_is_a_skip_naming_the_difference():
    m = _measurement(settings={"data": "mine.csv@2", "rows": 4, "batch_size": 2, "max_length": 96})
    v = judge(m, _both(), Bounds(), TIER)
    assert v.status == "skip" and "data 'd@1' -> 'mine.csv@2'" in v.reason


def test_environment_change_is_reported_beside_the_verdict():
    v = judge(_measurement(), _both(transformers="5.23.0"), Bounds(), TIER)
    assert v.environment_changes == ["transformers 5.23.0 -> 5.24.0"]


def test_log_loss_drift_fails_the_quality_bound():
    m = _measurement(log_loss=1.01)
    v = judge(m, _both(), Bounds(log_loss_abs=0.002), TIER)
    assert v.status == "fail" and v.failed[0].name == "log-loss"


def test_matrix_bounds_decide_and_a_tolerance_change_is_reported():
    m = _measurement(log_loss=1.005)  # 0.005 from the record, recorded with log_loss_abs 0.002
    record = _both()
    strict = judge(m, record, Bounds(log_loss_abs=0.001), TIER)
    assert strict.status == "fail"
    assert any("tolerances changed since baseline: log_loss_abs" in c for c in strict.environment_changes)
    assert judge(m, record, Bounds(log_loss_abs=0.01), TIER).status == "pass"


def _with_reference(**ref):
    base = {"argmax_agreement": 1.0, "max_abs_dp": 0.001, "log_loss": 0.80, "reference_log_loss": 0.80}
    base.update(ref)
    base["log_loss_increase"] = base["log_loss"] - base["reference_log_loss"]
    return _measurement().with_reference(base)


def test_reference_bounds_fail_without_any_baseline():
    bounds = Bounds(ref_argmax_agreement=0.9, ref_max_abs_dp=0.05, ref_log_loss_increase=0.01)
    assert judge(_with_reference(), _stored(), bounds).status == "skip"
    broken = judge(_with_reference(argmax_agreement=0.75, max_abs_dp=0.3, log_loss=0.9), _stored(), bounds)
    assert broken.status == "fail"
    text = broken.message("tiny-gemma2-fp32-eager-sorted")
    assert "[reference] argmax agreement FAILED: measured 0.750, allowed >= 0.9" in text
    assert "[reference] max |dp| FAILED: measured 0.3000, allowed <= 0.05" in text
    assert "[reference] log-loss increase FAILED: measured +0.1000 (0.9000 vs 0.8000)" in text


def test_portable_bounds_are_judged_on_a_machine_without_its_own_record():
    portable, _ = _records()
    v = judge(_measurement(), _stored(portable=portable), Bounds(), TIER)
    assert v.status == "pass"
    assert [c.kind for c in v.coverage if c.judged] == ["guard", "work", "quality"]
    assert "latency: not judged - no baseline for machine cpu-test-2c; record one with `tox -e rebaseline`" in (
        v.judged_summary()
    )


def test_portable_work_change_fails_on_any_machine():
    portable, _ = _records()
    m = _measurement()
    m = replace(m, work=replace(m.work, processed_tokens=160))
    v = judge(m, _stored(portable=portable), Bounds(), TIER)
    assert v.status == "fail" and v.failed[0].name == "processed_tokens"


def test_machine_bound_quality_is_judged_from_the_machine_record_only():
    portable, machine = _records(portable_quality=False)
    m = _measurement(log_loss=1.5)
    elsewhere = judge(m, _stored(portable=portable), Bounds(), TIER)
    assert elsewhere.status == "pass" and "quality: not judged - no quality record" in elsewhere.judged_summary()
    here = judge(m, _stored(portable, machine), Bounds(), TIER)
    assert here.status == "fail" and here.failed[0].name == "log-loss"


def test_strict_fails_a_variant_judged_on_nothing_stored():
    v = judge(_measurement(), _stored(), Bounds(), TIER, strict=True)
    assert v.status == "fail" and v.reason.startswith("strict: nothing judged beyond the guard")
    portable, _ = _records()
    assert judge(_measurement(), _stored(portable=portable), Bounds(), TIER, strict=True).status == "pass"


def test_verdict_message_lists_what_was_not_judged():
    portable, _ = _records()
    text = judge(_measurement(), _stored(portable=portable), Bounds(), TIER).message("v")
    assert "latency: not judged - no baseline for machine cpu-test-2c" in text


def test_other_workload_in_the_portable_record_only_leaves_latency_pending():
    portable, machine = _records()
    portable = replace(portable, settings={**portable.settings, "rows": 8})
    v = judge(_measurement(), _stored(portable, machine), Bounds(), TIER)
    assert v.status == "skip" and v.latency_pending  # nothing stored judged yet; latency decides after the run
    assert "work: not judged - recorded for another workload (rows 8 -> 4)" in v.judged_summary()


def test_latency_is_pending_until_the_run_decides_it():
    """judge() leaves latency to the run's decision (it needs every variant's first timing)."""
    from perfsuite.judge.checks import Cause

    v = judge(_measurement(samples=(0.5,) * 5), _both(), Bounds(), TIER)
    assert v.status == "pass" and v.latency_pending
    latency = next(c for c in v.coverage if c.kind == "latency")
    assert latency.cause is Cause.PENDING and "decided once the run's variants are timed" in latency.why
    assert not judge(_measurement(), _stored(*_records()[:1]), Bounds(), TIER).latency_pending  # no machine record


def test_reference_failure_in_the_reference_dtype_says_the_path_computes_another_model():
    from perfsuite.judge.checks import reference_diagnosis

    assert reference_diagnosis("tiny-gemma2-fp32-sdpa-sorted").startswith("sdpa computes a different model from eager")
    assert "caps attention logits at 5" in reference_diagnosis("tiny-gemma2-fp32-sdpa-sorted")
    assert "caps" not in reference_diagnosis("tiny-llama3-fp32-sdpa-sorted")
    assert reference_diagnosis("tiny-llama3-nf4-sdpa-sorted").startswith("predictions moved beyond the nf4 margins")
    assert reference_diagnosis("tiny-llama3-fp32-eager-static").startswith("predictions moved")
    assert reference_diagnosis("not-a-variant-id").startswith("predictions moved")


GPU_MEMORY = "cuda max_memory_allocated"


def _on_gpu(peak: int | None, recorded: dict):
    m = _measurement()
    m = replace(m, memory=MemorySummary(64, peak, GPU_MEMORY))
    portable, machine = _records()
    return m, _stored(portable, replace(machine, memory=recorded))


def test_peak_memory_within_its_tolerance_passes_and_beyond_it_fails_naming_both():
    recorded = {"kind": GPU_MEMORY, "peak_bytes": 8 * 2**30, "weight_bytes": 64}
    m, stored = _on_gpu(int(8.5 * 2**30), recorded)  # +6%: within memory_ratio 0.10
    v = judge(m, stored, Bounds(), TIER)
    assert v.status == "pass" and "memory" in v.judged_summary().split(";")[0]
    m, stored = _on_gpu(10 * 2**30, recorded)  # +25%: a T4 run out of memory
    v = judge(m, stored, Bounds(), TIER)
    assert v.status == "fail" and v.failed[0].kind == "memory"
    assert v.failed[0].describe() == (
        "[memory] peak memory FAILED: measured 10.00 GiB, allowed <= 8.80 GiB (ratio 1.25x of baseline 8.00 GiB)"
    )
    assert judge(m, stored, Bounds(memory_ratio=0.3), TIER).status == "pass"  # the tier's tolerance decides


def test_a_cpu_rss_increase_is_shown_not_judged():
    recorded = {"kind": "cpu rss increase", "peak_bytes": 2**20, "weight_bytes": 64}
    m = replace(_measurement(), memory=MemorySummary(64, 50 * 2**20, "cpu rss increase"))
    portable, machine = _records()
    v = judge(m, _stored(portable, replace(machine, memory=recorded)), Bounds(), TIER)
    assert v.status == "pass"
    assert "memory: not judged - cpu rss increase is shown, not judged" in v.judged_summary()


def test_memory_measured_another_way_than_recorded_is_not_judged():
    m, stored = _on_gpu(10 * 2**30, {"kind": "cpu rss increase", "peak_bytes": 2**30})
    v = judge(m, stored, Bounds(), TIER)
    assert "memory: not judged - measured as cuda max_memory_allocated, recorded as cpu rss increase" in (
        v.judged_summary()
    )
    m, stored = _on_gpu(10 * 2**30, {})  # a record from before memory was kept
    assert (
        "memory: not judged - no peak memory measured or recorded" in judge(m, stored, Bounds(), TIER).judged_summary()
    )


def test_a_reference_failure_is_diagnosed_in_the_tiers_reference_dtype():
    """gpu.toml's reference runs in fp16: an fp16 sdpa variant failing it computes another model."""
    m = replace(_with_reference(argmax_agreement=0.5, max_abs_dp=0.4), variant="tiny-gemma2-fp16-sdpa-sorted")
    v = judge(m, _both(), Bounds(), replace(TIER, reference_dtype="fp16"))
    assert v.reason.startswith("sdpa computes a different model from eager: in fp16, the reference's own dtype")
    assert judge(m, _both(), Bounds(), TIER).reason.startswith("predictions moved beyond the fp16 margins")


def test_the_judging_table_decides_every_kind_in_its_order():
    from perfsuite.judge.verdict import JUDGING

    v = judge(_measurement(), _both(), Bounds(), TIER)
    assert [c.kind for c in v.coverage] == [row.kind for row in JUDGING]
    broken = judge(_measurement(), _stored(error=BaselineError("p: unreadable")), Bounds(), TIER)
    assert [c.kind for c in broken.coverage] == [row.kind for row in JUDGING]
    stored_kinds = {row.kind for row in JUDGING if row.stored}
    assert {c.why for c in broken.coverage if c.kind in stored_kinds} == {"unusable baseline"}


def test_a_kind_is_added_by_one_row_of_the_table(monkeypatch):
    """What the architecture promises: a new bound kind is a row, and the verdict, the judged
    summary and strict mode follow without another change."""
    from perfsuite.judge import verdict
    from perfsuite.judge.checks import BoundCheck, Coverage

    def rows(e):
        n = e.measurement.work.rows
        return [BoundCheck("rows", "row count", n >= 8, str(n), ">= 8")], Coverage("rows", True)

    monkeypatch.setattr(verdict, "JUDGING", (*verdict.JUDGING, verdict.BoundKind("rows", "nothing", False, rows)))
    v = judge(_measurement(), _stored(), Bounds(), TIER)
    assert v.status == "fail" and v.failed[0].describe() == "[rows] row count FAILED: measured 4, allowed >= 8"
    assert "rows" in v.judged_summary().split(";")[0]


def test_a_declared_gemma2_gets_the_softcapping_diagnosis_too():
    """The diagnosis read the built-in registry only: a user's own Gemma-2 got the generic text."""
    from perfsuite.judge.checks import reference_diagnosis
    from perfsuite.models.specs import get_spec

    mine = replace(get_spec("tiny-gemma2"), name="my-gemma")
    assert "caps attention logits at 5" not in reference_diagnosis("my-gemma-fp32-sdpa-sorted")
    text = reference_diagnosis("my-gemma-fp32-sdpa-sorted", "fp32", mine)
    assert "my-gemma caps attention logits at 5 and torch.nn.functional.scaled_dot_product_attention" in text
