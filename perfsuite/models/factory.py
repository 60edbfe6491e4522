"""Loading a model for a variant: dtype, attention implementation, quantisation.

Every model is loaded the way users load theirs - ``from_pretrained`` on a local
safetensors folder, ``trust_remote_code`` off, no hub access - so the code path under
test is the real one. Tiny miniatures are first materialised from their seeded config
into a cache folder (once per spec and transformers version).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from perfsuite.fileio import adapter_problem, atomic_folder, default_cache_dir, file_digest
from perfsuite.models.gguf import loading_problems
from perfsuite.models.specs import ModelSpec, get_spec
from perfsuite.variant import BITSANDBYTES, QUANTIZED, compute_dtype

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def tiny_checkpoint(spec: ModelSpec, pad_token_id: int, cache_dir: Path | None = None) -> Path:
    """A safetensors folder for a miniature, written once and reused.

    With trained weights shipped for it (perfsuite/models/trained/, made by
    scripts/train_tiny.py) those are used; otherwise the seeded random initialisation.
    """
    import transformers

    from perfsuite.models.training import trained_weights

    if not spec.tiny:
        raise ValueError(f"{spec.name} is full-size: give a local checkpoint folder instead")
    trained = trained_weights(get_spec(spec.softcap_of) if spec.softcap_of else spec)  # -nocap: the same weights
    kind = "trained-" + file_digest(trained)[:12] if trained else "seeded"
    cache_dir = cache_dir or default_cache_dir()
    name = f"{spec.name}-{spec.fingerprint()}-{kind}-pad{pad_token_id}-tf{transformers.__version__}"
    folder = cache_dir / "tiny" / name
    if (folder / "config.json").is_file():
        return folder
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" once per miniature buries the report
    config = spec.build_config(pad_token_id=pad_token_id)

    def build(tmp: Path) -> None:
        if trained is not None:
            config.save_pretrained(tmp)
            shutil.copyfile(trained, tmp / "model.safetensors")
        else:
            torch.manual_seed(spec.seed)
            model = spec.model_class()._from_config(config, dtype=torch.float32)
            model.save_pretrained(tmp, safe_serialization=True)

    return atomic_folder(folder, build)


def real_checkpoint(spec: ModelSpec, pad_token_id: int, cache_dir: Path | None = None) -> Path:
    """A real-weights model's classifier folder: its GGUF converted once, with its trained head
    (perfsuite/models/trained/<name>/score.safetensors, or beside a declared config) or a seeded one."""
    from perfsuite.models.gguf import HEAD_FILE, classifier, converted, head_for, source_digest
    from perfsuite.models.training import TRAINED_DIR

    if spec.gguf is None:
        raise ValueError(f"{spec.name} has no real weights")
    lm = converted(spec.gguf, cache_dir)
    digest = source_digest(lm)
    head = head_for((spec.trained_dir or TRAINED_DIR) / spec.name / HEAD_FILE, digest)
    return classifier(lm, spec.model_class(), spec.num_labels, pad_token_id, head, spec.seed)


def real_weights_notes(spec: ModelSpec, checkpoint: Path | None) -> list[str]:
    """The note beside a real-weights variant: which weights (by digest) and which score head."""
    if spec.gguf is None or checkpoint is None:
        return []
    from perfsuite.models.gguf import source_digest

    trained = checkpoint.name.startswith("classifier-head-")
    head = "trained score head" if trained else "seeded random score head (train: scripts/train_real_head.py)"
    return [f"real weights: {spec.gguf.describe()} sha256 {source_digest(checkpoint)[:12]}, {head}"]


def gptq_problem(checkpoint: Path) -> str | None:
    """Why `checkpoint` is not an 8-bit GPTQ checkpoint (its config.json's quantization_config), or None."""
    import json

    try:
        quant = json.loads((checkpoint / "config.json").read_text(encoding="utf-8")).get("quantization_config") or {}
    except (OSError, ValueError) as exc:
        return f"{checkpoint / 'config.json'}: cannot be read ({exc})"
    method, bits = quant.get("quant_method"), quant.get("bits")
    if method != "gptq" or bits != 8:
        held = f"quant_method {method!r}, bits {bits!r}" if quant else "no quantization_config"
        return (
            f"{checkpoint / 'config.json'} holds {held}: gptq8 loads an 8-bit GPTQ checkpoint "
            "(quantise once with GPTQModel, bits=8, and declare that folder as the model's checkpoint)"
        )
    return None


def quantization_config(dtype: str, compute_dtype: str):
    """bitsandbytes settings: nf4 as the competition recipe; the score head stays unquantised.
    None for gptq8: a GPTQ checkpoint carries its own quantization_config."""
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


class CheckpointError(ValueError):
    """A checkpoint that is not the model it claims to be: the variant fails, naming the folder."""


# Config fields that define a spec's computation; a checkpoint that differs in one is another model.
DEFINING_FIELDS = (
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "attn_logit_softcapping",
    "final_logit_softcapping",
    "sliding_window",
    "num_labels",
)


def check_checkpoint_config(spec: ModelSpec, checkpoint: Path) -> None:
    """The checkpoint's config.json against the spec's defining fields; CheckpointError naming each."""
    import json

    try:
        found = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint}/config.json: unreadable ({exc})") from None
    expected = spec.build_config(pad_token_id=0).to_dict()
    if "id2label" in found and "num_labels" not in found:
        found["num_labels"] = len(found["id2label"])
    expected["num_labels"] = spec.num_labels
    differ = [
        f"{k} {found[k]!r} (spec {expected.get(k)!r})"
        for k in DEFINING_FIELDS
        if k in found and k in expected and found[k] != expected[k]
    ]
    if differ:
        raise CheckpointError(f"{checkpoint}: config.json is not {spec.name}: " + ", ".join(differ))


def _check_loading_info(checkpoint: Path, info: dict) -> None:
    """Missing keys are randomly initialised (a missing `score` head scores noise); unexpected or
    mismatched keys mean another model. transformers only warns; a variant must fail."""
    problems = loading_problems(info)
    if problems:
        raise CheckpointError(f"{checkpoint}: weights do not match the model ({'; '.join(problems)})")


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
    torch_dtype = TORCH_DTYPES[compute_dtype(dtype, nf4_compute_dtype)]
    kwargs = dict(
        dtype=torch_dtype,
        attn_implementation=attention,
        local_files_only=True,
        trust_remote_code=False,
        use_safetensors=True,
    )
    if quant is not None:
        kwargs["quantization_config"] = quant
    if dtype in QUANTIZED:  # placed by the quantiser (gptq8: the checkpoint's own quantization_config)
        kwargs["device_map"] = {"": device if device != "cuda" else 0}
    check_checkpoint_config(spec, checkpoint)
    model, info = spec.model_class().from_pretrained(str(checkpoint), output_loading_info=True, **kwargs)
    _check_loading_info(checkpoint, info)
    if quant is None:
        model.to(device)
    return model.eval()


def weight_bytes(model) -> int:
    """Bytes of parameters and persistent buffers as stored (4-bit weights count their packed size).

    Non-persistent buffers (rotary frequencies, Gemma-2's embedding scale) are derived at load
    and differ between transformers releases (5.24 registers `embed_scale`, 5.0 does not), so
    counting them made a work count version-bound (docs/versions.md).

    Read from the modules, never through `state_dict()`: on bitsandbytes 0.50.2's CPU path,
    `state_dict()` of an nf4 model changes what its layers compute afterwards (SmolLM2's
    next-token log-loss went 3.09 -> 16.43 after one call; docs/quality.md).
    """
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    for module in model.modules():
        skip = getattr(module, "_non_persistent_buffers_set", set())
        total += sum(b.numel() * b.element_size() for n, b in module.named_buffers(recurse=False) if n not in skip)
    return int(total)


def quantize_linears(model, dtype: str, compute_dtype: str, device: str) -> None:
    """Swap every nn.Linear but the score head for bitsandbytes nf4/int8, quantising in place.

    Used for shape-only full-size models, whose random weights never exist as a checkpoint.
    """
    import bitsandbytes as bnb

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, torch.nn.Linear) or name == "score":
                continue
            bias = child.bias is not None
            if dtype == "nf4":
                q = bnb.nn.Linear4bit(
                    child.in_features,
                    child.out_features,
                    bias,
                    TORCH_DTYPES[compute_dtype],
                    quant_type="nf4",
                    device="meta",
                )
                q.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4", module=q).to(
                    device
                )
            elif dtype == "int8":
                q = bnb.nn.Linear8bitLt(
                    child.in_features, child.out_features, bias, has_fp16_weights=False, threshold=6.0, device="meta"
                )
                q.weight = bnb.nn.Int8Params(child.weight.data.cpu(), requires_grad=False, has_fp16_weights=False).to(
                    device
                )
            else:
                raise ValueError(f"not a quantised dtype: {dtype}")
            if bias:
                q.bias = torch.nn.Parameter(
                    child.bias.data.to(device, TORCH_DTYPES[compute_dtype]), requires_grad=False
                )
            setattr(parent, name, q)
            del child


def shape_only_model(
    spec: ModelSpec,
    dtype: str,
    attention: str,
    pad_token_id: int,
    device: str = "cuda",
    nf4_compute_dtype: str = "fp16",
):
    """A full-size model with random weights created directly on `device` in the target dtype.

    Speed and memory do not depend on weight values, so the GPU tier needs no 18 GB
    checkpoint and no CPU copy; quality needs a real checkpoint (see checkpoint_for).
    """
    config = spec.build_config(pad_token_id=pad_token_id)
    torch.manual_seed(spec.seed)
    with torch.device(device):
        model = spec.model_class()._from_config(
            config, dtype=TORCH_DTYPES[compute_dtype(dtype, nf4_compute_dtype)], attn_implementation=attention
        )
    if dtype == "gptq8":
        raise ValueError(f"{spec.name} gptq8: GPTQ weights come from a quantised checkpoint, not random ones")
    if dtype in BITSANDBYTES:
        quantize_linears(model, dtype, nf4_compute_dtype, device)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return model.eval()


def _env_var(prefix: str, spec: ModelSpec) -> str:
    return prefix + "".join(c if c.isalnum() else "_" for c in spec.name.upper())


def checkpoint_env_var(spec: ModelSpec) -> str:
    """PERFSUITE_CHECKPOINT_GEMMA2_9B and the like: a local folder with a fine-tuned classifier."""
    return _env_var("PERFSUITE_CHECKPOINT_", spec)


def adapter_env_var(spec: ModelSpec) -> str:
    """PERFSUITE_ADAPTER_GEMMA2_9B and the like: a local PEFT LoRA adapter folder."""
    return _env_var("PERFSUITE_ADAPTER_", spec)


def _configured_folder(variable: str, required_file: str) -> Path | None:
    value = os.environ.get(variable)
    if not value:
        return None
    folder = Path(value)
    if not (folder / required_file).is_file():
        raise FileNotFoundError(f"{variable}={value}: no {required_file} in that folder")
    return folder


def checkpoint_for(spec: ModelSpec) -> Path | None:
    """The user's local checkpoint folder for a full-size model: declared in its [[models]], else
    from the environment variable (never the hub)."""
    return spec.checkpoint or _configured_folder(checkpoint_env_var(spec), "config.json")


def adapter_for(spec: ModelSpec) -> Path | None:
    """The user's local LoRA adapter folder for a model, if configured: safetensors weights only
    (an adapter_model.bin is a pickle, and loading a pickle can run code)."""
    folder = spec.adapter or _configured_folder(adapter_env_var(spec), "adapter_config.json")
    problem = adapter_problem(folder) if folder is not None else None
    if problem:
        where = f"{adapter_env_var(spec)}={folder}" if spec.adapter is None else f"{spec.name} adapter {folder}"
        raise FileNotFoundError(f"{where}: {problem}")
    return folder


def attach_adapter(model, folder: Path):
    """Wrap `model` with an unmerged LoRA adapter, as the competition notebooks ran it."""
    try:
        from peft import PeftModel
    except ImportError:
        raise ImportError(f"LoRA adapter {folder} needs peft: pip install 'perfsuite[lora]'") from None
    return PeftModel.from_pretrained(model, str(folder), is_trainable=False).eval()  # safetensors first
