"""A user matrix's `[[models]]`: declarations read into specs - full size on GPU tiers,
shrunk to automatic miniatures on CPU tiers (models/shrink.py).

Kept apart from matrix.py (which only parses): this reads config.json and tokenizer files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from perfsuite.data.tokenizer import BpeTokenizer, load_tiny_tokenizer
from perfsuite.models.config_json import ModelConfigError, spec_from_config
from perfsuite.models.modelspec import ModelSpec

TRAINED_SUBDIR = "trained"  # beside a declared config.json: scripts/train_tiny.py writes <name>/ here


@dataclass(frozen=True)
class ModelDeclaration:
    """One `[[models]]` table: paths already resolved against the matrix file's folder."""

    name: str
    config: Path | None  # None only beside a GGUF checkpoint, whose metadata holds the config
    checkpoint: Path | None = None
    adapter: Path | None = None
    tokenizer: Path | None = None
    source: str = ""  # the matrix file, for messages


def first_token_id(value: object) -> int | None:
    """A config's eos_token_id may be one id or a list (Llama-3.1); the first one ends a row."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def declared_tokenizer(spec: ModelSpec, path: Path) -> BpeTokenizer:
    """A declared tokenizer.json, read once, with its eos and pad ids from the config.json
    (checked to be ids of that tokenizer)."""
    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises its own Exception type for a malformed file
        raise ModelConfigError(f"{path}: not a tokenizer.json ({exc})") from None
    size = backend.get_vocab_size(with_added_tokens=True)
    eos = first_token_id(spec.config.get("eos_token_id"))
    where = spec.source or spec.name
    if eos is None or not 0 <= eos < size:
        raise ModelConfigError(
            f"{where}: field eos_token_id: {spec.config.get('eos_token_id')!r} is not an id of {path} "
            f"({size} tokens); every row ends with it"
        )
    pad = first_token_id(spec.config.get("pad_token_id"))
    return BpeTokenizer(path.name, backend, pad if pad is not None and 0 <= pad < size else eos, eos)


def is_gguf(declaration: ModelDeclaration) -> bool:
    return declaration.checkpoint is not None and declaration.checkpoint.suffix.lower() == ".gguf"


def real_weights_spec(declaration: ModelDeclaration) -> ModelSpec:
    """A declared GGUF: its real weights at full size on every tier (CPU included, no miniature),
    its config from the declared config.json or else from the GGUF's own metadata."""
    from perfsuite.models.config_json import spec_from_data
    from perfsuite.models.gguf import GgufError, GgufWeights, gguf_config

    path = declaration.checkpoint
    assert path is not None
    if declaration.config is not None:
        spec = spec_from_config(declaration.config, declaration.name, adapter=declaration.adapter)
    else:
        try:
            data = gguf_config(path)
        except GgufError as exc:
            raise ModelConfigError(str(exc)) from None
        spec = spec_from_data(data, path, declaration.name, adapter=declaration.adapter)
    folder = (declaration.config or path).parent
    return replace(spec, gguf=GgufWeights(file=path), trained_dir=folder / TRAINED_SUBDIR)


def declared_spec(declaration: ModelDeclaration, device: str, max_length: int) -> ModelSpec:
    """The spec a tier runs: a GGUF's real weights at full size; otherwise the config at full size
    on a GPU tier, its miniature on a CPU tier."""
    if is_gguf(declaration):
        return real_weights_spec(declaration)
    assert declaration.config is not None
    full = spec_from_config(
        declaration.config,
        declaration.name,
        checkpoint=declaration.checkpoint,
        adapter=declaration.adapter,
        tokenizer=declaration.tokenizer,
    )
    full = replace(full, trained_dir=declaration.config.parent / TRAINED_SUBDIR)
    if device != "cpu":
        return full
    from perfsuite.models.shrink import miniature

    if declaration.tokenizer is not None:
        tokenizer = declared_tokenizer(full, declaration.tokenizer)
    else:
        tokenizer = load_tiny_tokenizer()
    vocab, eos = tokenizer.backend.get_vocab_size(with_added_tokens=True), tokenizer.eos_id  # type: ignore[attr-defined]
    tiny = miniature(full, vocab_size=vocab, max_length=max_length, eos_id=eos)
    unused = [f"{k} {v}" for k, v in (("checkpoint", full.checkpoint), ("adapter", full.adapter)) if v is not None]
    return replace(tiny, extra={**tiny.extra, "unused_on_cpu": unused})


def miniature_notes(spec: ModelSpec) -> list[str]:
    """The short note beside a declared model's variant on a CPU tier (details: miniature_summary)."""
    if not spec.tiny or spec.source is None:
        return []
    from perfsuite.models.training import trained_weights

    notes = [f"automatic miniature, {'trained' if trained_weights(spec) else 'seeded random'} weights"]
    unused = spec.extra.get("unused_on_cpu", ())
    notes += [f"{u}: used on GPU tiers only, the miniature has other shapes" for u in unused]
    return notes


def miniature_summary(spec: ModelSpec) -> str | None:
    """One line per declared model, before the table: what the rules changed and which weights it ran."""
    if not spec.tiny or spec.source is None:
        return None
    from perfsuite.models.training import trained_weights

    trained = trained_weights(spec)
    weights = f"trained weights {trained}" if trained else "seeded random weights (train: scripts/train_tiny.py)"
    shrunk = ", ".join(f"{k} {a}->{b}" for k, (a, b) in spec.extra.get("shrunk", {}).items() if not k.endswith("_id"))
    return f"{spec.name}: automatic miniature of {spec.source} (docs/models.md): {shrunk}; {weights}"
