"""ModelShape: what the work count and the cost model read from a spec, whatever its model type.

Read from the built transformers config (so aliases such as GPT-2's n_embd resolve) and from
the model itself, built on the meta device (no memory, no weights): the decoder layers'
weight matrices give the exact linear work per token - a gated MLP (Llama: gate, up, down),
a plain one (GPT-2: fc, proj), a fused qkv - without a rule per architecture.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from perfsuite.models.modelspec import ModelSpec


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    attn_softcap: float | None
    sliding_window: int | None
    tied_embeddings: bool
    layer_matrix_params: int  # weights one token meets in a decoder layer (routed experts: top-k of them)
    stored_matrix_params: int = 0  # weights a decoder layer stores (every expert); = layer_matrix_params if dense
    sliding_share: float = 1.0  # share of the layers that use the sliding window (config.layer_types)

    @property
    def attention_params(self) -> int:
        """q, k, v and o projections of one layer."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return self.hidden * q + 2 * self.hidden * kv + q * self.hidden

    @property
    def mlp_matrices(self) -> float:
        """The rest of a layer's matrices in units of hidden x intermediate: 3 for a gated MLP, 2 for a plain one."""
        return (self.layer_matrix_params - self.attention_params) / (self.hidden * self.intermediate)


_SHAPES: dict[tuple[str, str], ModelShape] = {}


def decoder_layers(model, count: int):
    """The model's decoder layer list: the ModuleList with one entry per hidden layer."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise ValueError(f"{type(model).__name__}: no list of {count} decoder layers found")


EXPERT_COUNT_FIELDS = ("num_local_experts", "num_experts", "n_routed_experts")


def layer_matrices(stack, config) -> tuple[float, int]:
    """(weights a token meets, weights stored) over the decoder layers' matrices.

    A mixture of experts routes each token to `num_experts_per_tok` of its routed experts, so
    their weights (fused 3-D tensors or lists of linears under `experts`) count at top-k / experts
    per token; shared experts, routers and attention count in full. Dense layers of a sparse model
    (Qwen2-MoE's mlp_only_layers, DeepSeek's first dense layers) are counted as they are built."""
    experts = next((int(v) for f in EXPERT_COUNT_FIELDS if isinstance(v := getattr(config, f, None), int) and v > 1), 0)
    top_k = getattr(config, "num_experts_per_tok", None) or 1
    share = min(1.0, top_k / experts) if experts else 1.0
    active, stored = 0.0, 0
    for name, p in stack.named_parameters():
        if p.ndim < 2:
            continue  # norms and biases: not matrices
        routed = experts and ".experts." in f".{name}" and "shared_expert" not in name
        active += p.numel() * (share if routed else 1.0)
        stored += p.numel()
    return active, stored


def built_head_dim(layer) -> int | None:
    """The head_dim the model really uses (some model types derive it and ignore the config's)."""
    for module in layer.modules():
        value = getattr(module, "head_dim", None)
        if isinstance(value, int):
            return value
    return None


def meta_model(spec: ModelSpec):
    """The spec's sequence classifier on the meta device: shapes without memory."""
    import torch

    config = spec.build_config(pad_token_id=0)
    with torch.device("meta"):
        return spec.model_class()._from_config(config), config


SHAPE_FORMAT = 1  # bump when ModelShape's fields or how they are read change


def _cache_path(spec: ModelSpec) -> Path:
    """Where a spec's shape is kept between processes: it depends on the config and on the
    transformers release that builds the model (its classes decide which matrices exist)."""
    from importlib.metadata import version

    from perfsuite.fileio import default_cache_dir

    release = version("transformers")
    name = f"{spec.fingerprint()}-tf{release}-v{SHAPE_FORMAT}.json"
    return default_cache_dir() / "shapes" / name


def _cached(path: Path) -> ModelShape | None:
    try:
        return ModelShape(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):  # absent, unreadable or of another layout: build it again
        return None


def shape_of(spec: ModelSpec) -> ModelShape:
    """The spec's shape, built once per spec fingerprint and transformers release, then cached
    on disk: building on the meta device imports the model's transformers module and takes
    seconds, which `explain` and `budget` would otherwise pay on every call."""
    key = (spec.name, spec.fingerprint())
    if key not in _SHAPES:
        path = _cache_path(spec)
        cached = _cached(path)
        if cached is not None:
            _SHAPES[key] = cached
            return cached
        _SHAPES[key] = _read_shape(spec)
        with contextlib.suppress(OSError):  # a read-only cache costs time, not correctness
            from perfsuite.fileio import atomic_write_text

            atomic_write_text(path, json.dumps(asdict(_SHAPES[key]), sort_keys=True) + "\n")
    return _SHAPES[key]


def _read_shape(spec: ModelSpec) -> ModelShape:
    """The shape read from the model built on the meta device."""
    model, config = meta_model(spec)
    layers = int(config.num_hidden_layers)
    stack = decoder_layers(model, layers)
    active, stored = layer_matrices(stack, config)
    heads = int(config.num_attention_heads)
    hidden = int(config.hidden_size)
    head_dim = built_head_dim(stack[0]) or getattr(config, "head_dim", None) or hidden // heads
    window = getattr(config, "sliding_window", None)
    if getattr(config, "use_sliding_window", True) is False:
        window = None
    softcap = getattr(config, "attn_logit_softcapping", None)
    types = getattr(config, "layer_types", None)
    share = sum(t == "sliding_attention" for t in types) / len(types) if window and types else 1.0
    return ModelShape(
        layers=layers,
        hidden=hidden,
        intermediate=int(getattr(config, "intermediate_size", None) or 4 * hidden),
        heads=heads,
        kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
        head_dim=int(head_dim),
        vocab=int(config.vocab_size),
        attn_softcap=float(softcap) if softcap else None,
        sliding_window=int(window) if window else None,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        layer_matrix_params=round(active / layers),
        stored_matrix_params=round(stored / layers),
        sliding_share=share,
    )
