"""Tokenizers: the shipped tiny byte-level BPE for the CPU tier, local HF tokenizers for GPU.

Nothing is downloaded: the tiny tokenizer is trained deterministically from the bundled
sample by ``scripts/build_assets.py`` and shipped as ``tokenizer.json``; a real checkpoint's
tokenizer is read from its local folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

TOKENIZER_PATH = Path(__file__).with_name("tokenizer.json")
TINY_VOCAB_SIZE = 4000
PAD, EOS, BOS = "<pad>", "<eos>", "<bos>"


class TextTokenizer(Protocol):
    """What the formatter needs: ids for text, and the pad and eos ids."""

    name: str
    pad_id: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...


@dataclass
class BpeTokenizer:
    """A `tokenizers.Tokenizer` seen through the TextTokenizer protocol."""

    name: str
    backend: object
    pad_id: int
    eos_id: int

    def encode(self, text: str) -> list[int]:
        return list(self.backend.encode(text, add_special_tokens=False).ids)  # type: ignore[attr-defined]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        return [list(e.ids) for e in self.backend.encode_batch(texts, add_special_tokens=False)]  # type: ignore[attr-defined]


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int = TINY_VOCAB_SIZE):
    """Train the byte-level BPE (deterministic for the same texts and vocab size)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS, BOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tiny_tokenizer(path: Path = TOKENIZER_PATH) -> BpeTokenizer:
    from tokenizers import Tokenizer

    if not path.is_file():
        raise FileNotFoundError(f"{path}: tiny tokenizer missing; run `python scripts/build_assets.py`")
    backend = Tokenizer.from_file(str(path))
    return BpeTokenizer("tiny-bpe", backend, backend.token_to_id(PAD), backend.token_to_id(EOS))


@dataclass
class HFTokenizer:
    """A local transformers tokenizer (GPU tier, real checkpoints)."""

    name: str
    backend: object
    pad_id: int
    eos_id: int

    def encode(self, text: str) -> list[int]:
        return list(self.backend(text, add_special_tokens=False)["input_ids"])  # type: ignore[operator]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        return [list(ids) for ids in self.backend(texts, add_special_tokens=False)["input_ids"]]  # type: ignore[operator]


def load_local_hf_tokenizer(folder: str | Path) -> HFTokenizer:
    """Load a tokenizer from a local checkpoint folder only (never the hub)."""
    from transformers import AutoTokenizer

    backend = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    eos = backend.eos_token_id
    pad = backend.pad_token_id if backend.pad_token_id is not None else eos
    return HFTokenizer(Path(folder).name, backend, int(pad), int(eos))


# Tokenizers known by name, counted offline: quicktok-v1 (MIT) ships Llama-3's vocabulary and
# produces Llama-3's ids (docs/validation.md: how it compares with Llama-3's own tokenizer.json).
NAMED = {"llama3": "llama3"}


@dataclass
class QuicktokTokenizer:
    """A quicktok encoding seen through the TextTokenizer protocol (counting only: pad = eos)."""

    name: str
    backend: object
    pad_id: int
    eos_id: int

    def encode(self, text: str) -> list[int]:
        return list(self.backend.encode_ordinary(text))  # type: ignore[attr-defined]


def load_named_tokenizer(name: str) -> QuicktokTokenizer:
    """`llama3`: Llama-3's BPE from quicktok-v1, no download."""
    if name not in NAMED:
        raise ValueError(f"--tokenizer {name!r}: known names are {', '.join(NAMED)}, or give a tokenizer.json path")
    import quicktok

    backend = quicktok.get_encoding(NAMED[name])
    eos = int(backend.eot_token)
    return QuicktokTokenizer(name, backend, eos, eos)


def tokenizer_identity(spec: str | Path | None) -> str:
    """What a token count depends on: a named tokenizer and its package's release, or a file's digest."""
    from importlib import metadata

    from perfsuite.fileio import file_digest

    if isinstance(spec, str) and spec in NAMED:
        return f"{spec}@quicktok-v1-{metadata.version('quicktok-v1')}"
    path = Path(spec) if spec else TOKENIZER_PATH
    return f"{path.name}@{file_digest(path)}:tokenizers-{metadata.version('tokenizers')}"


def load_counting_tokenizer(spec: str | Path | None) -> TextTokenizer:
    """The tokenizer `explain` / `budget` count with: a name (llama3), a tokenizer.json, or the tiny BPE."""
    if isinstance(spec, str) and spec in NAMED:
        return load_named_tokenizer(spec)
    return load_tiny_tokenizer(Path(spec) if spec else TOKENIZER_PATH)
