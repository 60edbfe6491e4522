"""ModelSpec: one named model - its architecture (a transformers model_type), its config fields,
and where its weights, adapter and tokenizer come from.

The architecture is resolved through transformers' own auto mappings, so any decoder-only
model type the installed release can build as a sequence classifier works, not a list
written here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfsuite.models.gguf import GgufWeights


@dataclass(frozen=True)
class ModelSpec:
    """A named model: its architecture, its config fields, and whether it is a miniature."""

    name: str
    architecture: str  # the config's model_type: gemma2, llama, qwen2, phi3 ...
    config: dict[str, Any]
    tiny: bool
    full_size_of: str | None = None  # for a miniature: the full-size spec it scales down
    notes: str = ""
    num_labels: int = 3
    seed: int = 1234
    extra: dict[str, Any] = field(default_factory=dict)
    # Declared in a matrix's [[models]] (None for the built-in ones, which use environment variables):
    source: Path | None = None  # the config.json it was read from
    checkpoint: Path | None = None  # a local fine-tuned classifier folder (GPU tiers)
    adapter: Path | None = None  # a local PEFT LoRA folder, safetensors only
    tokenizer: Path | None = None  # a tokenizer.json: encodes the rows and sizes a miniature's vocabulary
    trained_dir: Path | None = None  # where trained miniature weights live (None: the shipped ones)
    gguf: GgufWeights | None = None  # real pretrained weights (models/gguf.py): run at full size, on CPU too
    # A declared recipe: this spec is `softcap_of` with its logit softcapping switched off (3rd and
    # 4th place did) - the same weights, its quality judged against that model's fp32 reference
    softcap_of: str | None = None

    @property
    def real(self) -> bool:
        """Real pretrained weights from a GGUF: a CPU tier runs the model itself, not a miniature."""
        return self.gguf is not None

    @property
    def softcapping(self) -> bool:
        return bool(self.config.get("attn_logit_softcapping"))

    @property
    def default_attention(self) -> str:
        """What the competition's code ran (and training uses): eager for Gemma-2, whose
        softcapping sdpa cannot do (its -nocap twin too: transformers 5.21+ refuse Gemma-2 +
        sdpa whatever the config), sdpa otherwise."""
        return "eager" if self.softcapping or self.softcap_of else "sdpa"

    def config_class(self):
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        return CONFIG_MAPPING[self.architecture]

    def build_config(self, pad_token_id: int | None = None):
        """The transformers config object of the spec's model_type (real config class)."""
        fields = dict(self.config)
        fields["num_labels"] = self.num_labels
        if pad_token_id is not None:
            fields["pad_token_id"] = pad_token_id
        return self.config_class()(**fields)

    def model_class(self):
        """The model_type's AutoModelForSequenceClassification class in the installed transformers."""
        import transformers
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

        return getattr(transformers, MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES[self.architecture])

    def fingerprint(self) -> str:
        """Stable hash of what defines the weights of a seeded miniature."""
        blob = json.dumps([self.architecture, self.config, self.num_labels, self.seed], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]
