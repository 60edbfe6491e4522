"""Analytic work of a forward pass, from the model config and the batch shapes.

Counted as a dense implementation computes it: every linear layer (the 3-way score head
runs on every position in transformers' sequence classifiers) and, per layer and head, the
S x S score matrix and its product with V. Sliding windows and causal masking change which
of those a fused kernel may skip - a speed property, not work - so the count does not
depend on the attention implementation and is the same on every machine. (torch's
FlopCounterMode sees the same matmuls for eager attention; tests cross-check it there.)
"""

from __future__ import annotations

from collections.abc import Iterable

from .models.specs import ModelSpec


def linear_params_per_layer(spec: ModelSpec) -> int:
    """Weights of one decoder layer's matmuls: q, k, v, o and the gated MLP (gate, up, down)."""
    c = spec.config
    hidden, inter = c["hidden_size"], c["intermediate_size"]
    q = c["num_attention_heads"] * spec.head_dim
    kv = c["num_key_value_heads"] * spec.head_dim
    return hidden * q + 2 * hidden * kv + q * hidden + 3 * hidden * inter


def forward_flops(spec: ModelSpec, batch_shapes: Iterable[tuple[int, int]]) -> int:
    """FLOPs (2 per multiply-add) of one forward over batches of (batch, seq_len)."""
    c = spec.config
    layers = c["num_hidden_layers"]
    per_token = 2 * layers * linear_params_per_layer(spec) + 2 * c["hidden_size"] * spec.num_labels
    score_width = c["num_attention_heads"] * spec.head_dim
    total = 0
    for batch, seq in batch_shapes:
        attention = 2 * 2 * layers * score_width * seq * seq  # Q K^T and (scores) V
        total += batch * (seq * per_token + attention)
    return int(total)
