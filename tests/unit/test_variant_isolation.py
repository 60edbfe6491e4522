"""Nothing leaks from one variant into the next: process state, and the previous model's memory."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from perfsuite.matrix.tier import load_matrix
from perfsuite.measure import runner
from perfsuite.session import PerfSession, SessionConfig
from tests.conftest import write_matrix


def test_a_variant_leaves_threads_and_the_global_rng_as_it_found_them(tmp_path):
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4)))  # the tier sets threads = 1
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl"))
    torch.set_num_threads(2)
    torch.manual_seed(1234)
    expected_draw = torch.rand(3)
    torch.manual_seed(1234)
    session.run(matrix.variants[0])
    assert torch.get_num_threads() == 2
    assert torch.equal(torch.rand(3), expected_draw)  # the factory's manual_seed did not leak


def test_dynamo_recompile_limits_are_restored_after_a_flex_variant():
    import torch._dynamo as dynamo

    from perfsuite.variant import TierSettings

    before = (dynamo.config.recompile_limit, dynamo.config.accumulated_recompile_limit)
    settings = TierSettings(name="x", device="cpu", markers=(), rows=1, batch_size=1, max_length=8, threads=1)
    with runner.preserved_process_state():
        runner._prepare_torch(settings, "flex_attention")
        assert dynamo.config.recompile_limit == 512
    assert (dynamo.config.recompile_limit, dynamo.config.accumulated_recompile_limit) == before


def test_the_previous_variants_model_is_gone_before_the_next_one_loads(tmp_path, monkeypatch):
    """A model held only by a reference cycle - bitsandbytes' Params4bit point back at their
    modules, so an nf4 model can be one (seen with load_model here) - is freed only by the
    collector; the session collects before each variant, so the next peak memory is its own."""
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4, dtypes=("bf16", "fp32"))))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl"))
    models: list[weakref.ref] = []
    alive_at_prepare: list[int] = []
    original = runner.prepare_variant

    def prepare_variant(*args, **kwargs):
        alive_at_prepare.append(sum(ref() is not None for ref in models))  # before any loading code runs
        prepared = original(*args, **kwargs)
        object.__setattr__(prepared.model, "_cycle", [prepared.model])  # as a Params4bit -> module link does
        models.append(weakref.ref(prepared.model))
        return prepared

    monkeypatch.setattr(runner, "prepare_variant", prepare_variant)
    gc.disable()  # the collector must not get there by chance: the session has to do it
    try:
        for variant in matrix.variants:
            assert session.run(variant).verdict.status in ("pass", "skip")
    finally:
        gc.enable()
    # [bf16 variant, its fp32 reference (loaded while the bf16 model is in use), fp32 variant]
    assert alive_at_prepare[0] == 0 and alive_at_prepare[-1] == 0, alive_at_prepare


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_memory_returns_to_its_level_after_a_variant(tmp_path):
    matrix = load_matrix("gpu-check")
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl"))
    variant = next(v for v in matrix.variants if v.dtype == "nf4" and session.skip_reason(v) is None)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    session.run(variant)
    gc.collect()
    torch.cuda.empty_cache()
    assert torch.cuda.memory_allocated() <= before + (1 << 20)
