"""A model declared by its Hugging Face config.json: read, checked, turned into a ModelSpec.

One reader for the shipped full-size configs (``perfsuite/models/builtin/*.json``) and a
user's own. The architecture is the config's ``model_type``, and the installed transformers
decides what is supported: a decoder-only type with an AutoModelForSequenceClassification
mapping. No remote code is run (``auto_map`` is ignored), nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from perfsuite.models.modelspec import ModelSpec
from perfsuite.store.names import UnsafeName, safe_name


class ModelConfigError(ValueError):
    """A config.json perfsuite cannot use; the message names the file and the field."""


# Keys of a config.json that are not the architecture: provenance, the label head (perfsuite
# scores 3 classes), the stored dtype and quantisation (the matrix's dtype axis decides those).
NOT_ARCHITECTURE = frozenset(
    {
        "model_type",
        "architectures",
        "transformers_version",
        "torch_dtype",
        "dtype",
        "auto_map",
        "id2label",
        "label2id",
        "num_labels",
        "problem_type",
        "quantization_config",
    }
)
# What the work count and the miniature rules cannot do without (aliases such as GPT-2's
# n_embd are accepted through the config class's attribute_map).
REQUIRED_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def read_config_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; ModelConfigError naming the file otherwise."""
    if not path.is_file():
        raise ModelConfigError(f"{path}: no such config.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ModelConfigError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def supported_model_types() -> dict[str, str]:
    """model_type -> sequence-classification class, for the decoder-only types of the installed transformers."""
    from transformers.models.auto import modeling_auto as auto

    causal, masked = auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES
    return {
        mt: cls
        for mt, cls in auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.items()
        if mt in causal and mt not in masked
    }


def _release() -> str:
    import transformers

    return f"transformers {transformers.__version__}"


def check_model_type(path: Path, data: dict[str, Any]) -> str:
    """The config's model_type if this transformers can run it as a decoder sequence classifier."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    model_type = data.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ModelConfigError(f'{path}: field model_type: missing (it names the architecture, e.g. "llama")')
    if model_type not in CONFIG_MAPPING:
        remote = " (it has auto_map: perfsuite runs no remote code)" if "auto_map" in data else ""
        raise ModelConfigError(f"{path}: field model_type: {model_type!r} is not known to {_release()}{remote}")
    if model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        raise ModelConfigError(
            f"{path}: field model_type: {model_type!r} has no AutoModelForSequenceClassification class in {_release()}"
        )
    encoder_decoder = data.get("is_encoder_decoder", getattr(CONFIG_MAPPING[model_type](), "is_encoder_decoder", False))
    if model_type not in supported_model_types() or encoder_decoder:
        raise ModelConfigError(
            f"{path}: field model_type: {model_type!r} is not a decoder-only model "
            "(perfsuite scores decoder sequence classifiers: the last token's hidden state)"
        )
    return model_type


def field_key(data: dict[str, Any], config_class, name: str) -> str | None:
    """The key `name` is stored under in `data`: itself or its alias in the config class's attribute_map."""
    if name in data:
        return name
    alias = getattr(config_class, "attribute_map", {}).get(name)
    return alias if alias in data else None


def field_value(data: dict[str, Any], config_class, name: str) -> Any:
    key = field_key(data, config_class, name)
    return None if key is None else data[key]


def check_fields(path: Path, data: dict[str, Any], config_class) -> None:
    """Every required field present as a positive integer; ModelConfigError naming the first that is not."""
    for name in REQUIRED_FIELDS:
        key = field_key(data, config_class, name)
        if key is None:
            raise ModelConfigError(f"{path}: field {name}: missing (the work count and miniature rules need it)")
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ModelConfigError(f"{path}: field {key}: must be a positive integer, got {value!r}")


def default_name(path: Path) -> str:
    """`models/my-qwen/config.json` -> my-qwen; `my-qwen.json` -> my-qwen."""
    return path.parent.name if path.name == "config.json" else path.stem


def spec_from_config(
    path: Path,
    name: str | None = None,
    *,
    checkpoint: Path | None = None,
    adapter: Path | None = None,
    tokenizer: Path | None = None,
    notes: str = "",
    verify: bool = True,
) -> ModelSpec:
    """The full-size spec a config.json declares, checked against the installed transformers
    (model_type, required fields) unless `verify` is off: the shipped built-in configs are read
    at import without importing transformers, and their checks run in the tests."""
    return spec_from_data(
        read_config_json(path),
        path,
        name,
        checkpoint=checkpoint,
        adapter=adapter,
        tokenizer=tokenizer,
        notes=notes,
        verify=verify,
    )


def spec_from_data(
    data: dict[str, Any],
    path: Path,
    name: str | None = None,
    *,
    checkpoint: Path | None = None,
    adapter: Path | None = None,
    tokenizer: Path | None = None,
    notes: str = "",
    verify: bool = True,
) -> ModelSpec:
    """spec_from_config for config fields read from elsewhere (a GGUF's metadata); `path` names them."""
    model_type = data.get("model_type")
    if verify:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        model_type = check_model_type(path, data)
        check_fields(path, data, CONFIG_MAPPING[model_type])
    name = name or default_name(path)
    try:
        safe_name(name, "model name")
    except UnsafeName as exc:
        raise ModelConfigError(f"{path}: {exc}") from None
    config = {k: v for k, v in data.items() if k not in NOT_ARCHITECTURE and not k.startswith("_")}
    return ModelSpec(
        name,
        model_type,
        config,
        tiny=False,
        notes=notes or str(data.get("_comment", "")),
        source=path,
        checkpoint=checkpoint,
        adapter=adapter,
        tokenizer=tokenizer,
    )
