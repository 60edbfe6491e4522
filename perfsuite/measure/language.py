"""The language model's own next-token log-loss on a fixed real English text.

A 3-class head trained on a small sample can hide a numerical regression in the backbone (its
argmax rarely moves); the backbone's next-token loss on real text cannot: every position of
every layer feeds it. The text is the Apache License 2.0 (perfsuite/data/texts/, which any
project may ship), tokenised by the model's own tokenizer, first `tokens` tokens.

The classifier under test is scored as it was loaded - its dtype, attention and quantisation -
with the output projection the language model uses: the tied input embedding (bitsandbytes
leaves embeddings unquantised, so nf4/int8 variants use theirs as loaded) or, for an untied
model, the LM head kept beside the converted backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from perfsuite.models.gguf import LM_HEAD_FILE

TEXTS_DIR = Path(__file__).parents[1] / "data" / "texts"
LM_TEXT = TEXTS_DIR / "apache-2.0.txt"


def lm_token_ids(tokenizer, tokens: int, path: Path = LM_TEXT) -> tuple[int, ...]:
    """The first `tokens` ids of the text under `tokenizer`; ValueError if the text is shorter."""
    ids = tokenizer.encode(path.read_text(encoding="utf-8"))
    if len(ids) < tokens:
        raise ValueError(f"{path}: {len(ids)} tokens under this tokenizer, fewer than lm_tokens = {tokens}")
    return tuple(ids[:tokens])


def output_projection(model, checkpoint: Path | None) -> torch.Tensor:
    """The [vocab, hidden] matrix that turns hidden states into next-token logits."""
    for folder in (checkpoint, checkpoint.parent) if checkpoint is not None else ():
        if (folder / LM_HEAD_FILE).is_file():
            from safetensors.torch import load_file

            return load_file(str(folder / LM_HEAD_FILE))["weight"]
    if not getattr(model.config, "tie_word_embeddings", False):
        raise ValueError(f"{checkpoint}: untied model without {LM_HEAD_FILE}: no LM head to score the text with")
    return model.get_input_embeddings().weight


def lm_log_loss(model, ids: Sequence[int], device: str, checkpoint: Path | None) -> float:
    """Mean next-token negative log-likelihood (nats) of `ids` under the classifier's backbone."""
    base = model.base_model  # LlamaModel under LlamaForSequenceClassification: hidden states after the final norm
    inputs = torch.tensor([list(ids)], device=device)
    with torch.inference_mode():
        hidden = base(input_ids=inputs).last_hidden_state[0, :-1]
        weight = output_projection(model, checkpoint).to(device=device, dtype=hidden.dtype)
        logits = (hidden @ weight.T).float()
        loss = torch.nn.functional.cross_entropy(logits, inputs[0, 1:], reduction="mean")
    return float(loss)
