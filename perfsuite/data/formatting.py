"""Pair formatting and fair-share truncation to max_length.

The public Kaggle recipe builds ``"<prompt>: " + p + "\\n\\n<response_a>: " + a +
"\\n\\n<response_b>: " + b`` and appends eos. Truncating the joined text cuts response B
first, so the model never sees B on long rows; we truncate each part instead, water-filling
the token budget so that a short part keeps all its tokens and the rest share what is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perfsuite.data.loader import ArenaRow
from perfsuite.data.tokenizer import TextTokenizer

PREFIXES = ("<prompt>: ", "\n\n<response_a>: ", "\n\n<response_b>: ")
FORMAT_VERSION = 1  # bump when formatting or truncation changes: cached token lengths are keyed on it


@dataclass(frozen=True)
class EncodedRow:
    """Token ids of one formatted row and what truncation removed."""

    row_id: str
    input_ids: tuple[int, ...]
    label: int | None
    truncated_tokens: int


def fair_share(lengths: Sequence[int], budget: int) -> list[int]:
    """Water-fill `budget` over parts: each keeps min(length, level), levels equal where cut."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    keep = [0] * len(lengths)
    remaining = budget
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for pos, i in enumerate(order):
        share = remaining // (len(lengths) - pos)
        keep[i] = min(lengths[i], share)
        remaining -= keep[i]
    # Hand out the rounding remainder to the parts still cut, in part order (prompt first).
    for i in range(len(lengths)):
        if remaining == 0:
            break
        extra = min(remaining, lengths[i] - keep[i])
        keep[i] += extra
        remaining -= extra
    return keep


class PairFormatter:
    """Formats an ArenaRow into token ids of at most `max_length`, eos included."""

    def __init__(self, tokenizer: TextTokenizer, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._prefix_ids = [tokenizer.encode(p) for p in PREFIXES]
        overhead = sum(map(len, self._prefix_ids)) + 1
        if max_length <= overhead:
            raise ValueError(f"max_length {max_length} leaves no room for text (template takes {overhead})")
        self._budget = max_length - overhead

    def encode(self, row: ArenaRow) -> EncodedRow:
        parts = ["\n".join(turns) for turns in (row.prompt, row.response_a, row.response_b)]
        ids = [self.tokenizer.encode(text) for text in parts]
        keep = fair_share([len(x) for x in ids], self._budget)
        out: list[int] = []
        for prefix, part, n in zip(self._prefix_ids, ids, keep, strict=True):
            out += prefix
            out += part[:n]
        out.append(self.tokenizer.eos_id)
        dropped = sum(len(x) for x in ids) - sum(keep)
        return EncodedRow(row.row_id, tuple(out), row.label, dropped)

    def encode_all(self, rows: Sequence[ArenaRow]) -> list[EncodedRow]:
        return [self.encode(row) for row in rows]
