"""End to end on a tiny workload: probabilities are sane and padding does not change them."""

from __future__ import annotations

import numpy as np
import pytest

from perfsuite.matrix.tier import load_matrix
from perfsuite.session import PerfSession, SessionConfig
from tests.conftest import write_matrix


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runner")
    matrix = load_matrix(str(write_matrix(folder, rows=6, paddings=("static", "dynamic", "sorted"), max_length=1024)))
    session = PerfSession(matrix, SessionConfig(baselines=folder / "baselines"))
    return {v.padding: session.run(v) for v in matrix.variants}


def test_probabilities_are_finite_distributions(outcomes):
    m = outcomes["sorted"].measurement
    assert m.quality.nonfinite_rows == 0
    assert 0 < m.quality.log_loss < 5
    assert len(m.latency.samples_s) >= 5


def test_padding_strategy_does_not_change_predictions(outcomes):
    lls = [o.measurement.quality.log_loss for o in outcomes.values()]
    assert max(lls) - min(lls) < 1e-4


def test_sorted_processes_fewer_tokens_than_static(outcomes):
    static, sorted_ = (outcomes[p].measurement.work for p in ("static", "sorted"))
    assert sorted_.real_tokens == static.real_tokens
    assert sorted_.processed_tokens < static.processed_tokens


def test_no_baseline_is_a_skip(outcomes):
    assert {o.verdict.status for o in outcomes.values()} == {"skip"}


def test_probs_follow_row_order_not_batch_order(tmp_path):
    matrix = load_matrix(str(write_matrix(tmp_path, rows=5, paddings=("dynamic", "sorted"))))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "b"))
    from perfsuite.measure.runner import run_variant
    from perfsuite.models.factory import tiny_checkpoint
    from perfsuite.models.specs import get_spec

    tok, rows, _ = session.workload(matrix.variants[0])
    ckpt = tiny_checkpoint(get_spec("tiny-llama3"), tok.pad_id)
    dyn, srt = (run_variant(v, matrix.settings, rows, tok.pad_id, ckpt) for v in matrix.variants)
    np.testing.assert_allclose(dyn.probs, srt.probs, atol=1e-5)


def test_nf4_loads_through_bitsandbytes_and_stays_close_to_fp32(tmp_path):
    """The 4-bit path (bitsandbytes + accelerate's device_map) runs on CPU and barely moves log-loss."""
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4, dtypes=("fp32", "nf4"))))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "b"))
    fp32, nf4 = (session.run(v) for v in matrix.variants)
    assert nf4.verdict.status == "skip", nf4.verdict.reason  # ran; only the baseline is missing
    assert nf4.measurement.memory.weight_bytes < fp32.measurement.memory.weight_bytes
    assert abs(nf4.measurement.quality.log_loss - fp32.measurement.quality.log_loss) < 0.05


def test_tta_runs_both_orders_and_doubles_the_work(tmp_path):
    path = write_matrix(tmp_path, rows=4)
    path.write_text(path.read_text().replace("threads = 1", "threads = 1\ntta = true"))
    plain = PerfSession(
        load_matrix(str(write_matrix(tmp_path / "plain", rows=4))), SessionConfig(baselines=tmp_path / "b")
    )
    tta = PerfSession(load_matrix(str(path)), SessionConfig(baselines=tmp_path / "b"))
    a = plain.run(plain.matrix.variants[0]).measurement
    b = tta.run(tta.matrix.variants[0]).measurement
    assert b.work.real_tokens == 2 * a.work.real_tokens
    assert b.settings["tta"] is True
    assert b.quality.log_loss != a.quality.log_loss


def test_sorted_padding_silently_behaving_as_static_fails_the_work_bound(tmp_path, monkeypatch):
    """The regression the work bound exists for: caught exactly, on any machine."""
    import perfsuite.measure.runner as runner
    from perfsuite.measure.batching import Padding, batch_rows

    matrix = load_matrix(str(write_matrix(tmp_path, rows=6, max_length=1024)))
    recording = PerfSession(matrix, SessionConfig(baselines=tmp_path / "b", rebaseline=True))
    recording.run(matrix.variants[0])
    recording.finish()

    def broken(rows, batch_size, padding, *args, **kwargs):
        return batch_rows(rows, batch_size, Padding.STATIC, *args, **kwargs)

    monkeypatch.setattr(runner, "batch_rows", broken)
    outcome = PerfSession(matrix, SessionConfig(baselines=tmp_path / "b")).run(matrix.variants[0])
    failed = {c.name for c in outcome.verdict.failed if c.kind == "work"}
    assert outcome.verdict.status == "fail"
    assert {"processed_tokens", "flops"} <= failed


def test_workload_overrides_replace_tier_settings(tmp_path):
    matrix = load_matrix(str(write_matrix(tmp_path, rows=6)))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "b", workload={"rows": 2, "max_length": 64}))
    assert (session.settings.rows, session.settings.max_length, session.settings.batch_size) == (2, 64, 2)
    with pytest.raises(ValueError, match="cannot override"):
        PerfSession(matrix, SessionConfig(workload={"threads": 4}))


def test_other_load_counts_another_process_and_not_this_one(monkeypatch):
    """The arithmetic on /proc/stat, stubbed: the machine's busy ticks less this process's own.
    (On a real machine beside a spinning process: scripts/busy_check.py.)"""
    from perfsuite.measure.runner import OtherLoad

    machine = iter([(1000, 4000), (1150, 4200)])  # (busy, total) ticks before and after
    own = iter([500.0, 550.0])  # this process's CPU ticks before and after
    monkeypatch.setattr(OtherLoad, "_stat", staticmethod(lambda: next(machine)))
    monkeypatch.setattr(OtherLoad, "_own", lambda self: next(own))
    with OtherLoad() as load:
        pass
    assert load.share == 0.5  # (150 busy - 50 own) of 200 ticks

    machine, own = iter([(1000, 4000), (1100, 4200)]), iter([500.0, 600.0])
    with OtherLoad() as alone:  # all the busy time was this process's own
        pass
    assert alone.share == 0.0


def test_other_load_says_nothing_without_proc_stat(monkeypatch):
    from perfsuite.measure.runner import OtherLoad

    monkeypatch.setattr(OtherLoad, "_stat", staticmethod(lambda: None))
    with OtherLoad() as load:
        pass
    assert load.share is None


def test_weight_bytes_leaves_out_non_persistent_buffers():
    """Derived buffers (rotary frequencies, Gemma-2's embed_scale) come and go between
    transformers releases; the work count must not move with them."""
    import torch

    from perfsuite.models.factory import shape_only_model, weight_bytes
    from perfsuite.models.specs import get_spec

    model = shape_only_model(get_spec("tiny-gemma2"), "fp32", "eager", 0, device="cpu")
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    assert weight_bytes(model) == params  # every buffer of this model is derived
    model.register_buffer("derived", torch.zeros(1000), persistent=False)
    assert weight_bytes(model) == params
    model.register_buffer("stored", torch.zeros(10), persistent=True)
    assert weight_bytes(model) == params + 40


def test_peak_memory_on_the_cpu_is_the_rss_increase_and_says_so(monkeypatch):
    """The process's RSS through its seam (`_rss`): a real allocation may be served from memory
    earlier tests left resident, so the real reading belongs to benchmarks, not here."""
    import time

    from perfsuite.device.torch_ops import CPU_PEAK, PeakMemory

    mib = 2**20
    rss = {"now": 100 * mib}
    monkeypatch.setattr(PeakMemory, "_rss", lambda self: rss["now"])
    with PeakMemory("cpu", interval_s=0.001) as memory:
        rss["now"] = 164 * mib  # a 64 MiB block, then freed before the block ends
        deadline = time.monotonic() + 10
        while memory._high < 164 * mib and time.monotonic() < deadline:  # the sampler saw it (slow under load)
            time.sleep(0.001)
        rss["now"] = 110 * mib
    assert memory.kind == CPU_PEAK
    assert memory.peak == 64 * mib  # the peak over the baseline, not what is left at the end


def _load_share(monkeypatch, share: float, cores: int = 2) -> None:
    """OtherLoad through its /proc/stat seam: others took `share` of the window's ticks."""
    from perfsuite.measure import load

    ticks = iter([(0, 0), (int(share * 1000), 1000)])
    monkeypatch.setattr(load.OtherLoad, "_stat", staticmethod(lambda: next(ticks)))
    monkeypatch.setattr(load.OtherLoad, "_own", lambda self: 0.0)
    monkeypatch.setattr(load, "cores", lambda: cores)


@pytest.mark.parametrize(("share", "threads"), [(0.02, 2), (0.33, 1), (0.5, 1), (0.95, 1), (0.2, 2)])
def test_free_threads_times_the_passes_on_the_cores_others_leave_idle(share, threads, monkeypatch):
    import dataclasses

    import torch

    from perfsuite.matrix.tier import load_matrix
    from perfsuite.measure.load import free_threads

    settings = dataclasses.replace(load_matrix("cpu").settings, threads_from_free_cores=True)
    _load_share(monkeypatch, share)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert free_threads(settings, window_s=0) == threads
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_free_threads_leaves_the_tiers_threads_alone_unless_asked(monkeypatch):
    import dataclasses

    from perfsuite.matrix.tier import load_matrix
    from perfsuite.measure.load import free_threads

    settings = dataclasses.replace(load_matrix("cpu").settings, threads_from_free_cores=False)
    _load_share(monkeypatch, 0.9)
    assert free_threads(settings, window_s=0) is None
