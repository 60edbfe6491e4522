"""What a variant runs on: the data file read once, its rows encoded per tokenizer, the weights.

A variant is resolved here once (``Workload.resolve``) into a ``ResolvedVariant`` - its model
spec, its encoded rows, pad id, checkpoint and adapter - which the session passes down to the
runner, instead of each layer looking the spec and the weights up again by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfsuite.data.formatting import EncodedRow, PairFormatter
from perfsuite.data.loader import ArenaRow, LoadReport, load_arena_csv
from perfsuite.data.tokenizer import TextTokenizer, load_local_hf_tokenizer, load_tiny_tokenizer
from perfsuite.fileio import file_fingerprint
from perfsuite.models.factory import adapter_for, checkpoint_for, real_checkpoint, tiny_checkpoint
from perfsuite.models.specs import ModelSpec, get_spec
from perfsuite.variant import TierSettings, Variant

TINY_BPE = "tiny-bpe"


@dataclass(frozen=True)
class EncodedRows:
    """A data file's rows, formatted and truncated for one tokenizer (`swapped`: A/B exchanged, for TTA)."""

    tokenizer: TextTokenizer
    rows: list[EncodedRow]
    swapped: list[EncodedRow] | None


@dataclass(frozen=True)
class ResolvedVariant:
    """A variant with everything it runs on looked up once."""

    variant: Variant
    spec: ModelSpec
    tokenizer_key: str
    encoded: EncodedRows
    checkpoint: Path | None  # None: shape-only random weights (full-size model, no local checkpoint)
    adapter: Path | None
    lm_ids: tuple[int, ...] | None = None  # real weights: the text scored for next-token log-loss

    @property
    def pad_id(self) -> int:
        return self.encoded.tokenizer.pad_id


class Workload:
    """The rows of one data file under one tier's settings, encoded once per tokenizer."""

    def __init__(
        self,
        data_path: Path,
        settings: TierSettings,
        cache_dir: Path | None = None,
        specs: Callable[[str], ModelSpec] = get_spec,
    ) -> None:
        """`specs`: model name -> spec, the matrix's own (declared models first, then built-in)."""
        self.data_path = data_path
        self.specs = specs
        self.settings = settings
        self.cache_dir = cache_dir
        self.load_report: LoadReport | None = None
        self._encoded: dict[str, EncodedRows] = {}
        self._resolved: dict[str, ResolvedVariant] = {}
        self._fingerprint: str | None = None
        self._rows: list[ArenaRow] | None = None

    def rows(self) -> list[ArenaRow]:
        """The file's usable rows, read once; DataError (file-level) or ValueError (none usable)."""
        if self._rows is None:
            rows, report = load_arena_csv(self.data_path, limit=self.settings.rows)
            self.load_report = report
            if not rows:
                raise ValueError(f"{self.data_path}: no usable rows\n{report.summary()}")
            self._rows = rows
        return self._rows

    @property
    def fingerprint(self) -> str:
        """`name@digest`, hashed once per session, not per variant."""
        if self._fingerprint is None:
            self._fingerprint = file_fingerprint(self.data_path)
        return self._fingerprint

    def tokenizer_key(self, spec: ModelSpec) -> str:
        """Which tokenizer encodes a model's rows: a GGUF's own (`gguf@<digest>`, the same on every
        machine), a local checkpoint's own, else a declared tokenizer.json (which also sized a
        miniature's vocabulary), else the shipped tiny BPE."""
        if spec.gguf is not None:
            from perfsuite.models.gguf import source_digest

            return f"gguf@{source_digest(self.converted(spec))[:12]}"
        folder = None if spec.tiny else checkpoint_for(spec)
        if folder:
            return str(folder)
        return str(spec.tokenizer) if spec.tokenizer else TINY_BPE

    def converted(self, spec: ModelSpec) -> Path:
        """A real-weights model's converted folder (models/gguf.py), made once per cache."""
        from perfsuite.models.gguf import converted

        assert spec.gguf is not None
        return converted(spec.gguf, self.cache_dir)

    def load_tokenizer(self, key: str, spec: ModelSpec) -> TextTokenizer:
        if spec.gguf is not None:
            return load_local_hf_tokenizer(self.converted(spec))
        if key == TINY_BPE:
            return load_tiny_tokenizer()
        if spec.tokenizer is not None and key == str(spec.tokenizer):
            from perfsuite.models.declared import declared_tokenizer

            return declared_tokenizer(spec, spec.tokenizer)
        return load_local_hf_tokenizer(Path(key))

    def encoded(self, spec: ModelSpec) -> EncodedRows:
        """Tokenised, truncated rows for the spec's tokenizer (prepared once per tokenizer).

        The shipped tiny BPE's ids fit every built-in vocabulary and every automatic miniature's.
        """
        key = self.tokenizer_key(spec)
        if key not in self._encoded:
            tokenizer = self.load_tokenizer(key, spec)
            rows = self.rows()
            formatter = PairFormatter(tokenizer, self.settings.max_length, self.settings.truncation)
            swapped = formatter.encode_all([r.swapped() for r in rows]) if self.settings.tta else None
            self._encoded[key] = EncodedRows(tokenizer, formatter.encode_all(rows), swapped)
        return self._encoded[key]

    def checkpoint(self, spec: ModelSpec, pad_id: int) -> Path | None:
        """Tiny: the seeded miniature; real weights: the converted GGUF as a classifier; full-size:
        the user's local folder, or None (shape-only)."""
        if spec.gguf is not None:
            return real_checkpoint(spec, pad_id, self.cache_dir)
        return tiny_checkpoint(spec, pad_id, self.cache_dir) if spec.tiny else checkpoint_for(spec)

    def resolve(self, variant: Variant) -> ResolvedVariant:
        """The variant's spec, rows and weights (a miniature's checkpoint is made here if not cached)."""
        if variant.id not in self._resolved:
            spec = self.specs(variant.model)
            encoded = self.encoded(spec)
            checkpoint = self.checkpoint(spec, encoded.tokenizer.pad_id)
            adapter = adapter_for(spec)
            lm_ids = None
            if spec.gguf is not None and self.settings.lm_tokens:
                from perfsuite.measure.language import lm_token_ids

                lm_ids = lm_token_ids(encoded.tokenizer, self.settings.lm_tokens)
            self._resolved[variant.id] = ResolvedVariant(
                variant, spec, self.tokenizer_key(spec), encoded, checkpoint, adapter, lm_ids
            )
        return self._resolved[variant.id]

    def settings_record(self, resolved: ResolvedVariant | None = None) -> dict[str, Any]:
        """The settings a measurement is comparable under (stored beside every record)."""
        s = self.settings
        return {
            "data": self.fingerprint,
            "rows": len(self.rows()),  # what ran: fewer than asked where the file is shorter (its summary says so)
            "batch_size": s.batch_size,
            "max_length": s.max_length,
            "padding_side": s.padding_side,
            **({"truncation": s.truncation} if s.truncation != "fair" else {}),  # absent: fair, as before
            **({"max_batch_tokens": s.max_batch_tokens} if s.max_batch_tokens else {}),
            "tta": s.tta,
            **({"lm_tokens": s.lm_tokens} if resolved is not None and resolved.lm_ids else {}),
            "tier": s.name,
            **({"tokenizer": resolved.tokenizer_key} if resolved is not None else {}),
        }

    def length_summary(self) -> list[str]:
        """Per tokenizer used: the token-length distribution of the rows and how many were truncated."""
        from perfsuite.data.lengths import TokenLengths

        lines = []
        for key, encoded in self._encoded.items():
            rows = encoded.rows
            kept = tuple(len(r.input_ids) for r in rows)
            found = TokenLengths(
                str(self.data_path),
                self.settings.max_length,
                kept,
                tuple(k + r.truncated_tokens for k, r in zip(kept, rows, strict=True)),
            )
            q = found.quantiles()
            lines.append(
                f"tokens ({key}): {len(rows)} rows, median {q['median']}, p90 {q['p90']}, max {q['max']}; "
                f"{found.truncated_rows} rows truncated to max_length {self.settings.max_length}"
            )
        return lines
