"""Faults a quality bound must catch, against the in-run fp32 eager batch-1 reference.

Each fault is injected into one variant through the runner (as the selftest does) and must
fail that variant, naming it and the bound; the untouched variants of the run must pass.
"""

from __future__ import annotations

import pytest

from perfsuite.matrix.tier import load_matrix
from perfsuite.measure import runner
from perfsuite.session import PerfSession, SessionConfig
from tests.conftest import write_matrix


@pytest.fixture
def restore_runner(monkeypatch):
    monkeypatch.setattr(runner, "prepare_variant", runner.prepare_variant)
    monkeypatch.setattr(runner, "batch_rows", runner.batch_rows)


def _session(tmp_path, max_length=160, **kw):
    path = write_matrix(tmp_path, rows=6, max_length=max_length, **kw)
    matrix = load_matrix(str(path))
    return matrix, PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl"))


def _patch_model(target: str, change) -> None:
    original = runner.prepare_variant

    def prepare_variant(variant, *args, **kwargs):
        prepared = original(variant, *args, **kwargs)
        if variant.id == target:
            change(prepared.model)
        return prepared

    runner.prepare_variant = prepare_variant


def _failed(outcome) -> list[str]:
    return [f"[{c.kind}] {c.name}" for c in outcome.verdict.failed]


def test_swapped_padding_side_fails_the_padded_variant(tmp_path, restore_runner):
    matrix, session = _session(tmp_path, max_length=1024, paddings=("static", "sorted"))  # 3 of 6 rows are shorter
    original = runner.batch_rows

    def swapped_side(rows, batch_size, strategy, max_length, pad_id, side="right", budget=None):
        """Token ids padded on the left while the mask still says right: a side-handling bug."""
        batches = original(rows, batch_size, strategy, max_length, pad_id, side, budget)
        if strategy != "static":
            return batches
        flipped = original(rows, batch_size, strategy, max_length, pad_id, "left", budget)
        return [type(b)(f.input_ids, b.attention_mask, b.row_index) for b, f in zip(batches, flipped, strict=True)]

    runner.batch_rows = swapped_side
    static, sorted_ = (session.run(v) for v in matrix.variants)
    assert static.verdict.status == "fail"
    assert "[reference] argmax agreement" in _failed(static) or "[reference] max |dp|" in _failed(static)
    assert "tiny-llama3-fp32-sdpa-static: fail" in static.verdict.message(static.variant.id)
    assert sorted_.verdict.status == "skip"  # untouched: no baseline yet, every guard holds


def test_zeroed_softcapping_fails_the_gemma_variant(tmp_path, restore_runner):
    matrix, session = _session(tmp_path, models=("tiny-gemma2",), attentions=("eager",))

    def no_softcap(model):
        for module in model.modules():
            if hasattr(module, "attn_logit_softcapping"):
                module.attn_logit_softcapping = None
        model.config.attn_logit_softcapping = None

    _patch_model("tiny-gemma2-fp32-eager-sorted", no_softcap)
    (outcome,) = (session.run(v) for v in matrix.variants)
    assert outcome.verdict.status == "fail"
    assert any(f.startswith("[reference]") for f in _failed(outcome)), outcome.verdict.message(outcome.variant.id)


def test_a_dtype_that_overflows_fails_with_a_count(tmp_path):
    """Weights fine in fp32 (embeddings around 1e5) become inf when the variant casts them to fp16."""
    import shutil

    from safetensors.torch import load_file, save_file

    from perfsuite.models.specs import get_spec

    matrix, session = _session(tmp_path, dtypes=("fp16",))
    (variant,) = matrix.variants
    spec = get_spec(variant.model)
    source = session.data.checkpoint(spec, session.data.encoded(spec).tokenizer.pad_id)
    big = tmp_path / "big-embeddings"
    shutil.copytree(source, big)
    state = load_file(str(big / "model.safetensors"))
    state["model.embed_tokens.weight"] = state["model.embed_tokens.weight"] * 1e7
    save_file(state, str(big / "model.safetensors"), metadata={"format": "pt"})
    session.data.checkpoint = lambda spec, pad: big  # the variant and its fp32 reference both load it
    outcome = session.run(variant)
    message = outcome.verdict.message(variant.id)
    assert get_spec(variant.model).tiny and outcome.verdict.status == "fail"
    assert "tiny-llama3-fp16-sdpa-sorted: fail" in message
    assert "[guard] finite logits FAILED: measured 6 of 6 rows non-finite" in message


@pytest.fixture
def sdpa_dropping_softcapping(monkeypatch):
    """transformers 4.48-5.20, emulated on the installed release: Gemma-2 accepts sdpa, and the
    sdpa path drops the `softcap` argument without a word (newer releases refuse instead)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.gemma2 import modeling_gemma2

    sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def sdpa_without_softcap(*args, softcap=None, **kwargs):
        return sdpa(*args, **kwargs)

    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS, "sdpa", sdpa_without_softcap)
    monkeypatch.setattr(modeling_gemma2.Gemma2PreTrainedModel, "_supports_sdpa", True)


def test_accepted_attention_that_computes_another_model_fails_and_says_so(tmp_path, sdpa_dropping_softcapping):
    """Where a library accepts a combination, it runs, and the in-run eager fp32 reference must
    catch a path that computes a different model - with a verdict that says so in words."""
    path = write_matrix(tmp_path, rows=6, max_length=160, models=("tiny-gemma2",), attentions=("sdpa",))
    matrix = load_matrix(str(path))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", cache_dir=tmp_path / "cache"))
    (variant,) = matrix.variants
    assert session.skip_reason(variant) is None  # the probe asks the (patched) library: accepted
    outcome = session.run(variant)
    assert outcome.verdict.status == "fail"
    assert any(f.startswith("[reference]") for f in _failed(outcome))
    message = outcome.verdict.message(variant.id)
    assert "sdpa computes a different model from eager" in message
    assert "caps attention logits at 5" in message


def test_gemma2_sdpa_under_the_installed_transformers_is_refused_or_caught(tmp_path):
    """Not emulated: whichever way the installed release goes, the outcome is visible and right -
    its refusal quoted as the skip, or (4.48-5.20) a run that the in-run reference fails."""
    import transformers

    path = write_matrix(tmp_path, rows=6, max_length=160, models=("tiny-gemma2",), attentions=("sdpa",))
    matrix = load_matrix(str(path))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", cache_dir=tmp_path / "cache"))
    (variant,) = matrix.variants
    reason = session.skip_reason(variant)
    if reason is not None:
        assert reason.startswith(f"transformers {transformers.__version__}: Gemma2ForSequenceClassification")
        return
    outcome = session.run(variant)
    assert outcome.verdict.status == "fail", outcome.verdict.message(variant.id)
    assert "sdpa computes a different model from eager" in outcome.verdict.message(variant.id)
