"""Data-parallel sharding across devices, as the Kaggle notebooks ran 2x T4 (one shard per card).

Launched with torchrun, one process per device (``torchrun --nproc_per_node 2 -m
perfsuite.cli shard -k VARIANT``). Rows are sorted by length and dealt out in turn
(even/odd for two cards, the public recipe), so the shards carry balanced work. Rank 0 first
measures the whole workload alone (T1); then every rank measures its shard at once. A pass
of the sharded job lasts as long as its slowest shard, so speedup = T1 / max(shard medians)
and scaling efficiency = speedup / world size.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .data.formatting import EncodedRow

T = TypeVar("T")


def shard_rows(rows: Sequence[T], rank: int, world: int, key=None) -> list[T]:
    """Rows sorted longest first, every `world`-th one from position `rank`."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside world of {world}")
    order = sorted(range(len(rows)), key=lambda i: (-(key(rows[i]) if key else 0), i))
    return [rows[i] for i in order[rank::world]]


@dataclass(frozen=True)
class ScalingReport:
    """What the sharded run measured, from rank 0's point of view."""

    variant: str
    world: int
    single_median_s: float
    shard_medians_s: tuple[float, ...]
    shard_rows: tuple[int, ...]

    @property
    def sharded_median_s(self) -> float:
        return max(self.shard_medians_s)

    @property
    def speedup(self) -> float:
        return self.single_median_s / self.sharded_median_s

    @property
    def efficiency(self) -> float:
        return self.speedup / self.world

    def render(self) -> str:
        lines = [f"{self.variant}: {self.world} shards"]
        lines += [
            f"  shard {r}: {n} rows, median {m * 1000:.1f} ms"
            for r, (n, m) in enumerate(zip(self.shard_rows, self.shard_medians_s, strict=True))
        ]
        lines.append(
            f"  one device: {self.single_median_s * 1000:.1f} ms; sharded: {self.sharded_median_s * 1000:.1f} ms; "
            f"speedup {self.speedup:.2f}x; scaling efficiency {self.efficiency:.0%}"
        )
        return "\n".join(lines)


def run_sharded(session, variant) -> ScalingReport | None:
    """Run inside a torchrun process group; returns the report on rank 0, None elsewhere."""
    import torch
    import torch.distributed as dist

    from .runner import run_variant

    cuda = session.caps.has_cuda
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        tokenizer, rows, _ = session.workload(variant)
        # Rank 0 materialises a miniature's checkpoint first; the others then reuse it.
        checkpoint = session.checkpoint(variant, tokenizer.pad_id) if rank == 0 else None
        dist.barrier()
        if rank != 0:
            checkpoint = session.checkpoint(variant, tokenizer.pad_id)

        def median_of(part: Sequence[EncodedRow]) -> float:
            result = run_variant(variant, session.settings, part, tokenizer.pad_id, checkpoint)
            return statistics.median(result.latency_samples)

        single = median_of(rows) if rank == 0 else 0.0
        dist.barrier()
        mine = shard_rows(rows, rank, world, key=lambda r: len(r.input_ids))
        shard_median = median_of(mine)
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, (len(mine), shard_median))
    finally:
        dist.destroy_process_group()
    if rank != 0:
        return None
    return ScalingReport(variant.id, world, single, tuple(m for _, m in gathered), tuple(n for n, _ in gathered))
