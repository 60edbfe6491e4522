"""Analytic work of a forward pass: a work bound, exact and implementation-independent,
compared to the baselines on every machine.

Counted as a dense implementation computes it: every linear layer (the 3-way score head
runs on every position in transformers' sequence classifiers) and, per layer and head, the
S x S score matrix and its product with V. Sliding windows and causal masking change which
of those a fused kernel may skip - a speed property, not work - so the count does not
depend on the attention implementation and is the same on every machine. (torch's
FlopCounterMode sees the same matmuls for eager attention; tests cross-check it there.)
"""

from __future__ import annotations

from collections.abc import Iterable

from perfsuite.models.modelspec import ModelSpec
from perfsuite.models.shape import shape_of


def linear_params_per_layer(spec: ModelSpec) -> int:
    """Weights of one decoder layer's matrices (q, k, v, o and the MLP), read from the built model."""
    return shape_of(spec).layer_matrix_params


def forward_flops(spec: ModelSpec, batch_shapes: Iterable[tuple[int, int]]) -> int:
    """FLOPs (2 per multiply-add) of one forward over batches of (batch, seq_len)."""
    shape = shape_of(spec)
    layers = shape.layers
    per_token = 2 * layers * shape.layer_matrix_params + 2 * shape.hidden * spec.num_labels
    score_width = shape.heads * shape.head_dim
    total = 0
    for batch, seq in batch_shapes:
        attention = 2 * 2 * layers * score_width * seq * seq  # Q K^T and (scores) V
        total += batch * (seq * per_token + attention)
    return int(total)
