"""Automatic miniatures: a full-size config shrunk for the CPU tier by documented rules.

Like transformers' own ModelTester classes, a miniature keeps the model type and the
properties that decide speed and behaviour, and makes everything else small:

| field                      | rule                                                                  |
|----------------------------|-----------------------------------------------------------------------|
| hidden_size                | 64 (bitsandbytes' CPU 4-bit kernels need widths divisible by 64)       |
| num_hidden_layers          | layers / 10.5, rounded, at least 1 (42 -> 4, 32 -> 3: the layer ratio)  |
| num_key_value_heads        | 1                                                                     |
| num_attention_heads        | query : kv heads kept (16 : 8 -> 2 : 1, 32 : 8 -> 4 : 1)               |
| head_dim                   | head_dim / 4, even, at least 8 (256 -> 64, 128 -> 32: the ratio)       |
| intermediate_size          | MLP : hidden ratio kept, rounded up to a multiple of 64               |
| vocab_size                 | the tokenizer in use, rounded up to a multiple of 8                   |
| sliding_window             | window / full max_length kept at the tier's max_length (4096 at 2048 -> 2048 at 1024) |
| per-layer lists, max_window_layers | the first layers' entries, every kind kept; scaled with the layers |
| query_pre_attn_scalar      | scaled with head_dim                                                  |
| moe / shared expert widths | as intermediate_size; expert count and top-k kept             |
| first_k_dense_replace ...  | dense-layer counts scaled with the layers                             |
| *_token_id beyond vocab    | the tokenizer's end-of-sequence id                                    |
| everything else            | kept: softcapping values, rope theta and scaling, tied embeddings, activations, norms |

A model type that derives head_dim from hidden_size / heads (Phi-3, GPT-2 ...) gets head_dim
/ 4 rounded down to a power of two and 64 / head_dim query heads, kv heads by the same ratio.
The shipped tiny-gemma2 / tiny-llama3 / tiny-mistral predate these rules: applied to their
full-size configs the rules give the same shapes, except the vocabulary (theirs is 1/8 of the
real one) and tiny-gemma2's attention softcap, scaled to 5 so it binds after training (a
random miniature's logits stay far below 50; the ops, and so the speed, are the same).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from perfsuite.models.config_json import ModelConfigError, field_key, field_value
from perfsuite.models.modelspec import ModelSpec

HIDDEN = 64
LAYER_DIVISOR = 10.5
HEAD_DIM_DIVISOR = 4
MIN_HEAD_DIM = 8
# A miniature stays one: the largest real decoders (Llama-3.1-405B: 126 layers, 128 : 8 heads;
# Falcon-7B: 71 : 1) shrink well inside these. A config beyond them is refused before anything is
# built or written (a 100,000-layer config once built 9,524 layers and 3.3 GB of weights).
MAX_LAYERS = 24
MAX_QUERY_GROUP = 128
MAX_HEAD_DIM = 512
FULL_MAX_LENGTH = 2048  # the Kaggle recipe's (and the GPU tier's) max_length a full-size window is relative to


class ShrinkError(ModelConfigError):
    """A config the miniature rules cannot shrink; names the file and the field."""


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def _per_layer(values: list[Any], layers: int) -> list[Any]:
    """The first `layers` entries, with every kind of the full list still present (the last
    entries are replaced by any kind the prefix lacks, e.g. Gemma-3's one full-attention layer in six)."""
    out = list(values[:layers])
    missing = [v for v in dict.fromkeys(values) if v not in out]
    for i, kind in enumerate(missing[: len(out)]):
        out[len(out) - 1 - i] = kind
    return out


def _token_ids(value: Any, vocab: int, eos_id: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value < vocab else eos_id
    if isinstance(value, list):
        return [_token_ids(v, vocab, eos_id) for v in value]
    return value


def miniature(
    full: ModelSpec,
    *,
    vocab_size: int,
    max_length: int,
    eos_id: int,
    full_max_length: int = FULL_MAX_LENGTH,
) -> ModelSpec:
    """The CPU-tier miniature of a full-size spec (same name: the variant ids stay the user's)."""
    where = str(full.source or full.name)
    cls = full.config_class()
    data = dict(full.config)

    def key(name: str) -> str:
        return field_key(data, cls, name) or name

    def fail(name: str, why: str) -> ShrinkError:
        return ShrinkError(f"{where}: field {key(name)}: cannot be shrunk by the miniature rules: {why}")

    layers, hidden = int(field_value(data, cls, "num_hidden_layers")), int(field_value(data, cls, "hidden_size"))
    heads = int(field_value(data, cls, "num_attention_heads"))
    kv_heads = field_value(data, cls, "num_key_value_heads") or heads
    if not isinstance(kv_heads, int) or kv_heads <= 0 or heads % kv_heads:
        raise fail(
            "num_key_value_heads",
            f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads} "
            "(a miniature keeps query : kv heads)",
        )
    head_dim = field_value(data, cls, "head_dim")
    if head_dim is None:
        if hidden % heads:
            raise fail(
                "hidden_size",
                f"hidden_size {hidden} is not divisible by num_attention_heads {heads} and no head_dim is given",
            )
        head_dim = hidden // heads
    inter = field_value(data, cls, "intermediate_size")
    if inter is None and getattr(cls(), "intermediate_size", None) is not None:
        raise fail("intermediate_size", "missing (the miniature keeps the MLP : hidden ratio)")

    n = max(1, _round(layers / LAYER_DIVISOR))
    group = heads // kv_heads
    tiny_head_dim = max(MIN_HEAD_DIM, 2 * _round(head_dim / HEAD_DIM_DIVISOR / 2))
    for name, value, limit, made in (
        ("num_hidden_layers", n, MAX_LAYERS, f"{n} miniature layers"),
        ("num_attention_heads", group, MAX_QUERY_GROUP, f"{group} query heads per kv head"),
        ("head_dim", tiny_head_dim, MAX_HEAD_DIM, f"a miniature head_dim of {tiny_head_dim}"),
    ):
        if value > limit:
            raise fail(name, f"{made} (at most {limit}): no real decoder is that large; is the config right?")
    out = dict(data)
    out[key("hidden_size")] = HIDDEN
    out[key("num_hidden_layers")] = n
    out[key("num_attention_heads")] = group
    if field_key(data, cls, "num_key_value_heads"):
        out[key("num_key_value_heads")] = 1
    out["head_dim"] = tiny_head_dim
    if inter is not None:
        out[key("intermediate_size")] = max(HIDDEN, math.ceil(HIDDEN * inter / hidden / HIDDEN) * HIDDEN)
    for name in ("moe_intermediate_size", "shared_expert_intermediate_size"):  # experts: as the MLP
        if isinstance(data.get(name), int) and data[name] > 0:
            out[name] = max(HIDDEN, math.ceil(HIDDEN * data[name] / hidden / HIDDEN) * HIDDEN)
    if isinstance(data.get("first_k_dense_replace"), int) and data["first_k_dense_replace"] > 0:
        out["first_k_dense_replace"] = min(n, max(1, _round(data["first_k_dense_replace"] * n / layers)))
    if isinstance(data.get("mlp_only_layers"), list) and data["mlp_only_layers"]:
        out["mlp_only_layers"] = sorted({min(n - 1, int(i * n / layers)) for i in data["mlp_only_layers"]})
    out[key("vocab_size")] = math.ceil(vocab_size / 8) * 8
    window = data.get("sliding_window")
    if isinstance(window, int) and not isinstance(window, bool) and window > 0:
        out["sliding_window"] = max(1, _round(window * max_length / full_max_length))
    for name, value in data.items():
        if isinstance(value, list) and len(value) == layers and layers > 1:
            out[name] = _per_layer(value, n)
    if isinstance(data.get("max_window_layers"), int):
        out["max_window_layers"] = min(n, _round(data["max_window_layers"] * n / layers))
    if isinstance(data.get("query_pre_attn_scalar"), (int, float)):
        scaled = data["query_pre_attn_scalar"] * tiny_head_dim / head_dim
        out["query_pre_attn_scalar"] = int(scaled) if float(scaled).is_integer() else scaled
    for name in [k for k in out if k.endswith("_token_id")]:
        out[name] = _token_ids(out[name], out[key("vocab_size")], eos_id)

    tiny = replace(full, config=out, tiny=True, full_size_of=full.name, checkpoint=None, adapter=None)
    tiny = _fit_derived_head_dim(tiny, group, head_dim, fail)
    changed = {k: (data.get(k), v) for k, v in tiny.config.items() if data.get(k) != v}
    return replace(tiny, extra={**full.extra, "shrunk": changed})


def _fit_derived_head_dim(tiny: ModelSpec, group: int, head_dim: int, fail) -> ModelSpec:
    """Check the built miniature uses the head_dim the rules set; a model type that derives it
    from hidden_size / heads gets a power-of-two head_dim and 64 / head_dim query heads instead."""
    from perfsuite.models.shape import built_head_dim, decoder_layers, meta_model

    def built(spec: ModelSpec):
        try:
            model, config = meta_model(spec)
            return built_head_dim(decoder_layers(model, int(config.num_hidden_layers))[0])
        except Exception as exc:  # transformers' own validation of the shrunk config
            raise fail("model_type", f"transformers cannot build the miniature ({type(exc).__name__}: {exc})") from None

    found = built(tiny)
    want = tiny.config["head_dim"]
    if found is None or found == want:
        return tiny
    derived = max(MIN_HEAD_DIM, 2 ** int(math.log2(max(1, head_dim // HEAD_DIM_DIVISOR))))
    while HIDDEN % derived:
        derived //= 2
    q = HIDDEN // derived
    if q % group:
        raise fail(
            "num_attention_heads",
            f"this model type derives head_dim from hidden_size / heads, and {q} query heads of {derived} "
            f"cannot keep query : kv heads {group} : 1",
        )
    cls = tiny.config_class()
    config = {k: v for k, v in tiny.config.items() if k != "head_dim"}
    config[field_key(config, cls, "num_attention_heads") or "num_attention_heads"] = q
    if field_key(config, cls, "num_key_value_heads"):
        config[field_key(config, cls, "num_key_value_heads")] = q // group
    tiny = replace(tiny, config=config)
    if built(tiny) != derived:
        raise fail("head_dim", f"the built miniature does not use head_dim {derived}")
    return tiny
