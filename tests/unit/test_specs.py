"""Miniatures keep the shape ratios that drive speed; full-size configs are the real ones."""

from __future__ import annotations

import pytest
import torch

from perfsuite.models.shape import shape_of
from perfsuite.models.specs import SPECS, get_spec


def test_tiny_gemma2_vs_llama3_keeps_the_speed_relevant_ratios():
    tg, tl = get_spec("tiny-gemma2"), get_spec("tiny-llama3")
    fg, fl = get_spec("gemma2-9b"), get_spec("llama3-8b")
    assert shape_of(tg).head_dim / shape_of(tl).head_dim == shape_of(fg).head_dim / shape_of(fl).head_dim == 2

    def gqa(spec):
        return spec.config["num_attention_heads"] / spec.config["num_key_value_heads"]

    assert (gqa(tg), gqa(tl)) == (gqa(fg), gqa(fl))
    # Score work per layer (heads x head_dim) is equal in both pairs.
    assert (
        tg.config["num_attention_heads"] * shape_of(tg).head_dim
        == tl.config["num_attention_heads"] * shape_of(tl).head_dim
    )
    layer_ratio = tg.config["num_hidden_layers"] / tl.config["num_hidden_layers"]
    assert layer_ratio == pytest.approx(fg.config["num_hidden_layers"] / fl.config["num_hidden_layers"], rel=0.02)
    assert tg.config["vocab_size"] / tl.config["vocab_size"] == pytest.approx(
        fg.config["vocab_size"] / fl.config["vocab_size"], rel=0.001
    )


def test_tiny_gemma2_keeps_softcapping_and_alternating_sliding_window():
    cfg = get_spec("tiny-gemma2").build_config(pad_token_id=0)
    assert cfg.attn_logit_softcapping == 5.0 and cfg.final_logit_softcapping == 30.0  # 50 scaled to bind at width 64
    assert cfg.layer_types[:2] == ["sliding_attention", "full_attention"]
    assert cfg.sliding_window == 2 * 1024  # twice the CPU tier's max_length, as 4096 = 2 x 2048


@pytest.mark.parametrize(
    ("name", "billions"), [("llama3-8b", 8.03), ("mistral-7b", 7.24), ("qwen2-7b", 7.62), ("gemma2-9b", 9.24)]
)
def test_full_size_configs_have_the_published_parameter_counts(name, billions):
    """Built on the meta device: shapes only, no memory, no download."""
    spec = get_spec(name)
    with torch.device("meta"):
        model = spec.model_class()._from_config(spec.build_config(pad_token_id=0))
    # Sequence classifiers have a 3-way score head instead of the LM head.
    lm_head = 0 if spec.config.get("tie_word_embeddings") else spec.config["vocab_size"] * spec.config["hidden_size"]
    total = sum(p.numel() for p in model.parameters()) + lm_head
    assert total / 1e9 == pytest.approx(billions, abs=0.02)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(KeyError, match="tiny-llama3"):
        get_spec("llama-9000")


def test_every_tiny_spec_has_a_full_size_original():
    for spec in SPECS.values():
        if spec.tiny:
            assert spec.full_size_of in SPECS and not SPECS[spec.full_size_of].tiny


def test_default_attention_is_eager_only_where_softcapping_rules_out_sdpa():
    """-nocap twins too: the competition's code ran Gemma-2 eager, and transformers 5.21+ refuse
    Gemma-2 + sdpa whatever its config (a user asks for sdpa with --attention where it runs)."""
    gemma2 = ("gemma2-9b", "tiny-gemma2", "gemma2-9b-nocap", "tiny-gemma2-nocap")
    assert {name: spec.default_attention for name, spec in SPECS.items()} == {
        name: ("eager" if name in gemma2 else "sdpa") for name in SPECS
    }
