"""Whether a variant can run here, and if not, why: tier rules, hardware data, library probes.

Shared by the matrix run (the machine at hand: every rule and probe) and `perfsuite explain`
(a datasheet device: hardware rules and the attention probe, since only the installed
transformers can say what it accepts).
"""

from __future__ import annotations

import functools
import importlib.util

from perfsuite.device.hardware import hardware_reason
from perfsuite.device.machine import DeviceCaps
from perfsuite.device.probe import SupportProbe, default_probe
from perfsuite.models.modelspec import ModelSpec
from perfsuite.models.specs import get_spec
from perfsuite.variant import TierSettings, Variant


def implementation_reason(
    model: ModelSpec, dtype: str, attention: str, caps: DeviceCaps, probe: SupportProbe | None = None
) -> str | None:
    """Why this model cannot run in this dtype with this attention on `caps`, or None."""
    reason = hardware_reason(dtype, attention, caps)
    if reason:
        return reason
    if attention == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        # A datasheet device assumed to have flash-attn: transformers here cannot be asked
        # without it, so the hardware rules answer alone.
        return None
    return (probe or default_probe()).attention(model, attention, dtype)


# Attention kernels whose interface cannot express a model's attention-logit softcapping. A
# run needs no such rule (it runs and the in-run eager reference fails it); a projection
# cannot run, so `explain` and `budget` refuse to project - or suggest - another model's time.
NO_SOFTCAP_INPUT = {
    "sdpa": "torch.nn.functional.scaled_dot_product_attention has no softcap argument",
}


def semantic_reason(spec: ModelSpec, attention: str) -> str | None:
    """Why `attention` would compute a different model than `spec` (no run needed), or None."""
    if spec.softcapping and attention in NO_SOFTCAP_INPUT:
        return (
            f"{spec.name} caps attention logits at {spec.config['attn_logit_softcapping']:g} and "
            f"{NO_SOFTCAP_INPUT[attention]}: {attention} computes a different model "
            "(transformers 4.48-5.20 accept it and drop the softcapping silently)"
        )
    return None


def skip_reason(
    variant: Variant,
    settings: TierSettings,
    caps: DeviceCaps,
    probe: SupportProbe | None = None,
    spec: ModelSpec | None = None,
) -> str | None:
    """Why `variant` cannot run on this tier and machine, or None (`spec`: as the matrix declares it)."""
    spec = spec or get_spec(variant.model)
    if settings.device == "cuda" and not caps.has_cuda:
        return "GPU tier: this machine has no CUDA device"
    if settings.device == "cpu" and not spec.tiny and spec.gguf is None:
        return f"{spec.name} is full-size; the CPU tier runs tiny miniatures only"
    if spec.gguf is not None and (missing := real_weights_reason(spec)):
        return missing
    probe = probe or default_probe()
    reason = implementation_reason(spec, variant.dtype, variant.attention, caps, probe)
    if reason:
        return reason
    if variant.dtype == "gptq8" and (reason := gptq_reason(spec)):
        return reason
    if settings.device == "cuda" and not _cuda_here():
        return None  # caps describe a GPU this process does not have (tests, explain): no probe
    return probe.quantization(variant.dtype, settings.nf4_compute_dtype, settings.device)


def packing_reason(
    variant: Variant, settings: TierSettings, probe: SupportProbe | None = None, spec: ModelSpec | None = None
) -> str | None:
    """Why packed rows cannot be kept apart here, or None: asked only of a variant the tier will
    run (the probe runs a small model; flex_attention's compile takes half a minute once)."""
    if variant.padding != "packed":
        return None
    return (probe or default_probe()).packing(spec or get_spec(variant.model), variant.attention, settings.device)


def gptq_reason(spec: ModelSpec) -> str | None:
    """Why `spec` has no 8-bit GPTQ checkpoint to load, or None: GPTQ weights are a checkpoint's
    own (quantised once, with calibration rows), never random weights quantised at load."""
    from perfsuite.models.factory import checkpoint_env_var, checkpoint_for, gptq_problem

    built = spec.tiny or spec.gguf is not None  # a miniature, or GGUF weights converted here
    checkpoint = None if built else checkpoint_for(spec)
    if checkpoint is None:
        where = "it is built, not loaded" if built else f"set {checkpoint_env_var(spec)}"
        return f"gptq8 loads an 8-bit GPTQ checkpoint and {spec.name} has none ({where})"
    return gptq_problem(checkpoint)


def real_weights_reason(spec: ModelSpec) -> str | None:
    """Why a real-weights model's GGUF cannot be used here (not installed, another version's
    digest, a damaged file), or None. Checked once per file and process."""
    from perfsuite.models.gguf import GgufError

    try:
        _verified(spec.gguf)
    except GgufError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=16)
def _verified(weights) -> None:
    from perfsuite.models.gguf import verified

    verified(weights)


def _cuda_here() -> bool:
    import torch

    return torch.cuda.is_available()
