"""Loading a model for a variant: dtype, attention implementation, quantisation.

Every model is loaded the way users load theirs - ``from_pretrained`` on a local
safetensors folder, ``trust_remote_code`` off, no hub access - so the code path under
test is the real one. Tiny miniatures are first materialised from their seeded config
into a cache folder (once per spec and transformers version).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from .specs import ModelSpec

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def default_cache_dir() -> Path:
    root = os.environ.get("PERFSUITE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "perfsuite"
    )
    return Path(root)


def tiny_checkpoint(spec: ModelSpec, pad_token_id: int, cache_dir: Path | None = None) -> Path:
    """A safetensors folder for a seeded miniature, written once and reused."""
    import transformers

    if not spec.tiny:
        raise ValueError(f"{spec.name} is full-size: give a local checkpoint folder instead")
    cache_dir = cache_dir or default_cache_dir()
    folder = cache_dir / "tiny" / f"{spec.name}-{spec.fingerprint()}-pad{pad_token_id}-tf{transformers.__version__}"
    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(spec.seed)
    config = spec.build_config(pad_token_id=pad_token_id)
    model = spec.model_class()._from_config(config, dtype=torch.float32)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # another process won the race; its folder is equivalent
        os.replace(tmp, folder)
    return folder


def quantization_config(dtype: str, compute_dtype: str):
    """bitsandbytes settings: nf4 as the competition recipe; the score head stays unquantised."""
    from transformers import BitsAndBytesConfig

    if dtype == "nf4":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=TORCH_DTYPES[compute_dtype],
            llm_int8_skip_modules=["score"],
        )
    if dtype == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["score"])
    return None


def load_model(
    spec: ModelSpec,
    checkpoint: Path,
    dtype: str,
    attention: str,
    device: str = "cpu",
    nf4_compute_dtype: str = "fp32",
):
    """Load `checkpoint` as `spec`'s sequence classifier for one variant, in eval mode."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per variant buries the report
    quant = quantization_config(dtype, nf4_compute_dtype)
    torch_dtype = TORCH_DTYPES[nf4_compute_dtype if quant is not None else dtype]
    kwargs = dict(
        dtype=torch_dtype,
        attn_implementation=attention,
        local_files_only=True,
        trust_remote_code=False,
        use_safetensors=True,
    )
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": device if device != "cuda" else 0}
    model = spec.model_class().from_pretrained(str(checkpoint), **kwargs)
    if quant is None:
        model.to(device)
    return model.eval()


def weight_bytes(model) -> int:
    """Bytes of parameters and buffers as stored (4-bit weights count their packed size)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    total += sum(b.numel() * b.element_size() for b in model.buffers())
    return int(total)
