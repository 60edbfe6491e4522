"""The time a forward pass predicts on a device (the work it counts: `models.flops`).

`predict` turns a config, a device and batch shapes into seconds per component (linear
matmuls, dequantisation, attention matmuls, eager's score matrices, fixed per-layer costs) so
`explain` can say why one config is slower and `budget` whether it fits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from perfsuite.models.shape import shape_of
from perfsuite.models.specs import ModelSpec
from perfsuite.variant import QUANTIZED, compute_dtype

# -- predicted time ----------------------------------------------------------------------
# Bytes a stored weight takes per parameter (nf4: 4 bits + one fp32 absmax per block of 64;
# gptq8: 8 bits + an fp16 scale and a packed 8-bit zero per group of 128).
WEIGHT_BYTES = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "int8": 1.0 + 4 / 64,
    "nf4": 0.5 + 4 / 64,
    "gptq8": 1.0 + 3 / 128,
}
ACT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
FUSED = ("sdpa", "flash_attention_2", "flex_attention")
COMPONENTS = ("linear", "dequant", "attention", "scores", "overhead")
COMPONENT_NOTES = {
    "linear": "q/k/v/o and MLP matmuls: FLOPs at the dtype's matmul peak, or their weight/activation traffic",
    "dequant": "4/8-bit weights expanded to the compute dtype each forward (write + read)",
    "attention": "Q K^T and scores x V matmuls (causal blocks skipped by flash/flex kernels)",
    "scores": "eager only: the S x S score matrices written and re-read (scale, softcap, mask, fp32 softmax)",
    "overhead": "fixed cost per decoder layer and batch (kernel launches, Python dispatch)",
}


# LLM.int8 (bitsandbytes, outlier threshold 6.0) quantises each activation row, splits off the
# outlier columns into an fp16 matmul and dequantises the int8 product: none of it is the 4-bit
# path's weight expansion. Measured once, on the H100 (2026-11-28, the GPU tier): llama3-8b
# int8-sdpa-sorted took 4.56 s a pass where the fitted model without this term predicts 2.23 s
# (nf4 of the same variant: 2.12 s measured, 2.23 s predicted). The term multiplies int8's linear
# and dequant time by the factor that closes that gap; it is not measured on a T4 or a CPU.
INT8_OUTLIER_FACTOR = 2.11
INT8_NOTE = (
    "LLM.int8's outlier path modelled as x2.11 on its matmul and dequant time, from one H100 measurement "
    "(llama3-8b-int8-sdpa-sorted: 4.56 s against 2.23 s without the term); not measured on a T4"
)


@dataclass(frozen=True)
class CostConfig:
    """What a prediction is for: the model's shape and how it runs."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    softcapping: bool
    sliding_window: int | None
    num_labels: int
    vocab: int
    dtype: str  # weights: fp32 | bf16 | fp16 | nf4 | int8
    attention: str
    compute_dtype: str  # what the matmuls run in (nf4/int8: the bitsandbytes compute dtype)
    sliding_share: float = 1.0  # share of the layers with the sliding window (Gemma-2: every other one)
    mlp_matrices: float = 3.0  # MLP weights in units of hidden x intermediate: 3 gated, 2 plain
    stored_ratio: float = 1.0  # weights stored / weights a token meets (a mixture of experts stores them all)

    @classmethod
    def for_model(cls, spec: ModelSpec, dtype: str, attention: str, quantized_compute: str = "fp16") -> CostConfig:
        shape = shape_of(spec)
        return cls(
            layers=shape.layers,
            hidden=shape.hidden,
            intermediate=shape.intermediate,
            heads=shape.heads,
            kv_heads=shape.kv_heads,
            head_dim=shape.head_dim,
            softcapping=shape.attn_softcap is not None,
            sliding_window=shape.sliding_window,
            num_labels=spec.num_labels,
            vocab=shape.vocab,
            dtype=dtype,
            attention=attention,
            compute_dtype=compute_dtype(dtype, quantized_compute),
            sliding_share=shape.sliding_share,
            mlp_matrices=shape.mlp_matrices,
            stored_ratio=round(shape.stored_matrix_params / shape.layer_matrix_params, 6),
        )

    @property
    def linear_params(self) -> int:
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        mlp = self.mlp_matrices * self.hidden * self.intermediate
        return round(self.hidden * q + 2 * self.hidden * kv + q * self.hidden + mlp)

    def windowed(self, layer: int) -> bool:
        """Whether `layer` has the sliding window: `sliding_share` of the layers, spread evenly."""
        share = self.sliding_share
        return math.floor((layer + 1) * share) > math.floor(layer * share)


SKIPS_MASKED = ("flash_attention_2", "flex_attention")  # kernels that compute only what the mask keeps


def _attended_pairs(cfg: CostConfig, seq: int, window: int | None) -> float:
    """Query-key pairs the kernel computes per head: all S^2 unless it skips masked blocks."""
    if cfg.attention not in SKIPS_MASKED:
        return float(seq * seq)
    if window is not None and window < seq:
        return seq * window - window * window / 2
    return seq * (seq + 1) / 2


def weight_bytes(cfg: CostConfig) -> float:
    """The model's weights on the device: its linear layers as stored, the embeddings in the compute dtype."""
    stored = cfg.layers * cfg.linear_params * cfg.stored_ratio
    return stored * WEIGHT_BYTES[cfg.dtype] + cfg.vocab * cfg.hidden * ACT_BYTES[cfg.compute_dtype]


def memory_bytes(cfg: CostConfig, batch: int, seq: int) -> float:
    """Rough peak device memory of a forward: weights, embeddings in the compute dtype, the
    largest transient (eager's fp32 score matrices of one layer, twice; or the MLP activations)."""
    a = ACT_BYTES[cfg.compute_dtype]
    weights = weight_bytes(cfg)
    scores = 2 * batch * cfg.heads * seq * seq * 4 if cfg.attention == "eager" else 0
    mlp = batch * seq * (cfg.mlp_matrices * cfg.intermediate + 4 * cfg.hidden) * a
    return weights + max(scores, mlp)


@lru_cache(maxsize=65536)
def component_work(cfg: CostConfig, batch: int, seq: int, rows: tuple[int, ...] = ()) -> dict[str, tuple[float, float]]:
    """(FLOPs, bytes moved) of one forward of a (batch, seq) batch, per component. `rows`: a packed
    sequence's row lengths, for a kernel that attends within each row only (SKIPS_MASKED); eager
    and sdpa compute the pack's whole square under its block-diagonal mask."""
    a = ACT_BYTES[cfg.compute_dtype]
    tokens = batch * seq
    weights = cfg.layers * cfg.linear_params
    linear_flops = 2 * tokens * (weights + cfg.hidden * cfg.num_labels)
    stored = weights * cfg.stored_ratio  # a batch's tokens reach (nearly) every expert: all are read
    linear_bytes = stored * WEIGHT_BYTES[cfg.dtype] + tokens * cfg.layers * (10 * cfg.hidden + 4 * cfg.intermediate) * a
    dequant_bytes = stored * 2 * a if cfg.dtype in QUANTIZED else 0.0
    attn_flops = score_bytes = qkvo_bytes = 0.0
    q_width = cfg.heads * cfg.head_dim
    for layer in range(cfg.layers):
        # Mistral: a sliding window on every layer; Gemma-2 on every other one
        window = cfg.sliding_window if cfg.sliding_window and cfg.windowed(layer) else None
        pairs = sum(_attended_pairs(cfg, n, window) for n in rows) if rows else _attended_pairs(cfg, seq, window)
        attn_flops += 4 * batch * q_width * pairs
        qkvo_bytes += tokens * (2 * q_width + 2 * cfg.kv_heads * cfg.head_dim) * a
        if cfg.attention == "eager":
            per_score = 7 * a + 8 + (4 * a if cfg.softcapping else 0)  # see COMPONENT_NOTES["scores"]
            score_bytes += batch * cfg.heads * seq * seq * per_score
    return {
        "linear": (linear_flops, linear_bytes),
        "dequant": (0.0, dequant_bytes),
        "attention": (attn_flops, qkvo_bytes),
        "scores": (0.0, score_bytes),
    }


@dataclass(frozen=True)
class Prediction:
    """Predicted seconds for a workload, split by component."""

    seconds: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def predict(
    cfg: CostConfig,
    device,
    shapes: Iterable[tuple[int, int]],
    packs: Sequence[tuple[int, ...]] | None = None,
) -> Prediction:
    """Per batch and component, the larger of compute and memory time; plus fixed per-layer costs.

    `device` is a devices.DeviceSpec; its efficiency factors scale the peaks. `packs`: with packed
    batches, each one's row lengths (batching.pack_lengths), in the order of `shapes`.
    """
    peak = device.rate(cfg.compute_dtype)
    rate = {"attention": peak * device.attention_eff}
    bandwidth = device.bandwidth * device.memory_eff
    seconds = dict.fromkeys(COMPONENTS, 0.0)
    within_rows = packs is not None and cfg.attention in SKIPS_MASKED
    for i, (batch, seq) in enumerate(shapes):
        rows = tuple(packs[i]) if within_rows else ()
        for name, (flops, nbytes) in component_work(cfg, batch, seq, rows).items():
            seconds[name] += max(flops / rate.get(name, peak * device.compute_eff), nbytes / bandwidth)
        seconds["overhead"] += cfg.layers * device.layer_overhead_s
    if cfg.dtype == "int8":
        for name in ("linear", "dequant"):
            seconds[name] *= INT8_OUTLIER_FACTOR
    return Prediction(seconds)
