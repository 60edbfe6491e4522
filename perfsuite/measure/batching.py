"""Padding strategies and token accounting.

* static: every batch padded to max_length (the naive notebook);
* dynamic: each batch padded to its longest row, rows in file order;
* sorted: rows sorted by length (longest first), then dynamic - the Kaggle recipe;
* token_budget: rows sorted longest first, each batch as many rows as fit a token budget
  (rows x the batch's longest row <= max_batch_tokens, default batch_size x max_length), so
  long rows go in small batches and short rows in large ones - how text-embeddings-inference
  batches classification requests;
* packed: rows sorted longest first and concatenated, no padding, into sequences of at most
  the same token budget; positions restart at each row (transformers builds a block-diagonal
  causal mask from them, so a row attends to itself only) and each row is scored where the
  classification head reads it in a padded batch: its last token that is not the pad id (a row
  ending in EOS, where EOS is the pad id, is read at the token before). Processed tokens equal
  real tokens; attention still computes the whole packed sequence's square wherever the kernel
  takes a dense mask (eager, sdpa), which the shapes (1, packed length) say to the cost model.

Real tokens are the rows' own; processed tokens are what the model computes on,
padding included. Their ratio is the padding waste that costs hours on a T4.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from perfsuite.data.formatting import EncodedRow

if TYPE_CHECKING:  # torch loads lazily: the cost model plans shapes without it
    import torch


class Padding(str, Enum):
    STATIC = "static"
    DYNAMIC = "dynamic"
    SORTED = "sorted"
    TOKEN_BUDGET = "token_budget"
    PACKED = "packed"


@dataclass(frozen=True)
class Batch:
    """A padded batch and the positions of its rows in the input order; or a packed one: one
    sequence, its positions restarting at each row and each row's last token."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    row_index: tuple[int, ...]
    position_ids: torch.Tensor | None = None  # packed only
    score_at: tuple[int, ...] = ()  # packed only: where each row of row_index is read in the sequence

    @property
    def packed(self) -> bool:
        return self.position_ids is not None

    @property
    def real_tokens(self) -> int:
        return int(self.attention_mask.sum())

    @property
    def processed_tokens(self) -> int:
        return int(self.input_ids.numel())


@dataclass(frozen=True)
class WorkCounts:
    """Deterministic work of one pass: exact on every machine."""

    rows: int
    batches: int
    real_tokens: int
    processed_tokens: int
    max_seq_len: int

    @property
    def padding_overhead(self) -> float:
        """processed / real: 1.0 means no padding was computed."""
        return self.processed_tokens / self.real_tokens if self.real_tokens else float("nan")


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Positions ordered by length, longest first, ties in input order (the Kaggle recipe)."""
    return sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))


def plan_batches(
    lengths: Sequence[int],
    batch_size: int,
    padding: Padding | str,
    max_length: int,
    max_batch_tokens: int | None = None,
) -> list[tuple[list[int], int]]:
    """(row positions, padded width) of each batch a strategy builds from rows of these lengths:
    the one plan both the batches and the cost model's shapes follow."""
    padding = Padding(padding)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ordered = padding in (Padding.SORTED, Padding.TOKEN_BUDGET, Padding.PACKED)
    order = longest_first(lengths) if ordered else list(range(len(lengths)))
    budget = max_batch_tokens or batch_size * max_length
    if padding is Padding.PACKED:  # width: the packed sequence's length
        packs: list[tuple[list[int], int]] = []
        for i in order:
            n = min(max_length, lengths[i])
            if n > budget:
                raise ValueError(f"max_batch_tokens {budget} is smaller than a {n}-token row")
            if packs and packs[-1][1] + n <= budget:
                packs[-1] = (packs[-1][0] + [i], packs[-1][1] + n)
            else:
                packs.append(([i], n))
        return packs
    if padding is Padding.TOKEN_BUDGET:
        plan, start = [], 0
        while start < len(order):
            width = min(max_length, lengths[order[start]])  # longest first: the batch's first row sets it
            if width > budget:
                raise ValueError(f"max_batch_tokens {budget} is smaller than a {width}-token row")
            take = max(1, budget // max(1, width))
            idx = order[start : start + take]
            plan.append((idx, width))
            start += len(idx)
        return plan
    plan = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max_length if padding is Padding.STATIC else min(max_length, max(lengths[i] for i in idx))
        plan.append((idx, width))
    return plan


def padded_shapes(
    lengths: Sequence[int],
    batch_size: int,
    padding: Padding | str,
    max_length: int,
    max_batch_tokens: int | None = None,
) -> list[tuple[int, int]]:
    """(batch, seq_len) of each batch `batch_rows` would build from rows of these lengths.

    The cost model's view of a workload: shapes without tensors, for 25,000 rows in a blink.
    """
    packed = Padding(padding) is Padding.PACKED  # one sequence per batch
    return [
        (1 if packed else len(idx), width)
        for idx, width in plan_batches(lengths, batch_size, padding, max_length, max_batch_tokens)
    ]


def pack_lengths(
    lengths: Sequence[int], batch_size: int, max_length: int, max_batch_tokens: int | None = None
) -> list[tuple[int, ...]]:
    """The row lengths inside each packed sequence `padded_shapes` gives as (1, width): what a
    kernel that attends within rows only (flash-attn's variable-length path) computes over."""
    return [
        tuple(min(max_length, lengths[i]) for i in idx)
        for idx, _ in plan_batches(lengths, batch_size, Padding.PACKED, max_length, max_batch_tokens)
    ]


def batch_rows(
    rows: Sequence[EncodedRow],
    batch_size: int,
    padding: Padding | str,
    max_length: int,
    pad_id: int,
    padding_side: str = "right",
    max_batch_tokens: int | None = None,
) -> list[Batch]:
    """Split rows into padded batches following the padding strategy."""
    import torch

    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    lengths = [len(r.input_ids) for r in rows]
    for i, n in enumerate(lengths):
        if n > max_length:
            raise ValueError(f"row {rows[i].row_id} longer than max_length {max_length}")
    batches = []
    plan = plan_batches(lengths, batch_size, padding, max_length, max_batch_tokens)
    if Padding(padding) is Padding.PACKED:
        return [_packed(rows, idx, pad_id) for idx, _ in plan]
    for idx, width in plan:
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            seq = torch.tensor(rows[i].input_ids, dtype=torch.long)
            if padding_side == "right":
                ids[r, : len(seq)] = seq
                mask[r, : len(seq)] = 1
            else:
                ids[r, width - len(seq) :] = seq
                mask[r, width - len(seq) :] = 1
        batches.append(Batch(ids, mask, tuple(idx)))
    return batches


def _packed(rows: Sequence[EncodedRow], idx: Sequence[int], pad_id: int) -> Batch:
    import torch

    ids = [list(rows[i].input_ids) for i in idx]
    starts = [sum(len(x) for x in ids[:k]) for k in range(len(ids))]
    # the head's own rule (transformers' sequence classification): the rightmost non-pad token
    read = [next((j for j in range(len(x) - 1, -1, -1) if x[j] != pad_id), len(x) - 1) for x in ids]
    total = starts[-1] + len(ids[-1])
    return Batch(
        input_ids=torch.tensor([t for x in ids for t in x], dtype=torch.long)[None],
        attention_mask=torch.ones((1, total), dtype=torch.long),  # counts tokens; never passed
        row_index=tuple(idx),
        position_ids=torch.cat([torch.arange(len(x)) for x in ids])[None],
        score_at=tuple(s + r for s, r in zip(starts, read, strict=True)),
    )


def count_work(batches: Sequence[Batch]) -> WorkCounts:
    return WorkCounts(
        rows=sum(len(b.row_index) for b in batches),
        batches=len(batches),
        real_tokens=sum(b.real_tokens for b in batches),
        processed_tokens=sum(b.processed_tokens for b in batches),
        max_seq_len=max((b.input_ids.shape[1] for b in batches), default=0),
    )
