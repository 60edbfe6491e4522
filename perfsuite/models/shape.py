"""ModelShape: what the work count and the cost model read from a spec, whatever its model type.

Read from the built transformers config (so aliases such as GPT-2's n_embd resolve) and from
the model itself, built on the meta device (no memory, no weights): the decoder layers'
weight matrices give the exact linear work per token - a gated MLP (Llama: gate, up, down),
a plain one (GPT-2: fc, proj), a fused qkv - without a rule per architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

from .modelspec import ModelSpec


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
    layer_matrix_params: int  # weights of one decoder layer's matrices, averaged over the layers
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


def shape_of(spec: ModelSpec) -> ModelShape:
    """The spec's shape, built once per process and spec fingerprint."""
    key = (spec.name, spec.fingerprint())
    if key not in _SHAPES:
        model, config = meta_model(spec)
        layers = int(config.num_hidden_layers)
        stack = decoder_layers(model, layers)
        matrices = sum(p.numel() for p in stack.parameters() if p.ndim == 2)
        heads = int(config.num_attention_heads)
        hidden = int(config.hidden_size)
        head_dim = built_head_dim(stack[0]) or getattr(config, "head_dim", None) or hidden // heads
        window = getattr(config, "sliding_window", None)
        if getattr(config, "use_sliding_window", True) is False:
            window = None
        softcap = getattr(config, "attn_logit_softcapping", None)
        types = getattr(config, "layer_types", None)
        share = sum(t == "sliding_attention" for t in types) / len(types) if window and types else 1.0
        _SHAPES[key] = ModelShape(
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
            layer_matrix_params=round(matrices / layers),
            sliding_share=share,
        )
    return _SHAPES[key]
