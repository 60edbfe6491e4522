"""Pair formatting and truncation to max_length, by one of three sides.

The public Kaggle recipe builds ``"<prompt>: " + p + "\\n\\n<response_a>: " + a +
"\\n\\n<response_b>: " + b`` and appends eos. Where a row is too long:

* ``fair`` (the default) truncates each part, water-filling the token budget so that a short
  part keeps all its tokens and the rest share what is left;
* ``right`` keeps the start of the joined text (the naive notebook: response B is cut first,
  and on long rows the model never sees it);
* ``left`` keeps its end (3rd place: the last max_length - 1 tokens and eos), so both
  responses' endings survive and the prompt goes first.

Every side keeps the same number of tokens per row, so work counts are equal; what the model
reads, and so the log-loss, differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perfsuite.data.loader import ArenaRow
from perfsuite.data.tokenizer import TextTokenizer

PREFIXES = ("<prompt>: ", "\n\n<response_a>: ", "\n\n<response_b>: ")
FORMAT_VERSION = 1  # bump when formatting or truncation changes: cached token lengths are keyed on it
TRUNCATIONS = ("fair", "left", "right")


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

    def __init__(self, tokenizer: TextTokenizer, max_length: int, truncation: str = "fair") -> None:
        if truncation not in TRUNCATIONS:
            raise ValueError(f"truncation {truncation!r}: expected one of {', '.join(TRUNCATIONS)}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation = truncation
        self._prefix_ids = [tokenizer.encode(p) for p in PREFIXES]
        overhead = sum(map(len, self._prefix_ids)) + 1
        if max_length <= overhead:
            raise ValueError(f"max_length {max_length} leaves no room for text (template takes {overhead})")
        self._budget = max_length - overhead

    def encode(self, row: ArenaRow) -> EncodedRow:
        parts = ["\n".join(turns) for turns in (row.prompt, row.response_a, row.response_b)]
        ids = [self.tokenizer.encode(text) for text in parts]
        if self.truncation != "fair":
            joined = [t for prefix, part in zip(self._prefix_ids, ids, strict=True) for t in (*prefix, *part)]
            room = self.max_length - 1  # eos
            kept = joined[-room:] if self.truncation == "left" else joined[:room]
            dropped = len(joined) - len(kept)
            return EncodedRow(row.row_id, (*kept, self.tokenizer.eos_id), row.label, dropped)
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
