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
from datetime import timedelta
from typing import Any, TypeVar

from perfsuite.measure.batching import longest_first

T = TypeVar("T")


def shard_indices(lengths: Sequence[int], rank: int, world: int) -> list[int]:
    """Positions sorted longest first (as sorted padding orders them), every `world`-th from `rank`."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside world of {world}")
    return longest_first(lengths)[rank::world]


def shard_rows(rows: Sequence[T], rank: int, world: int, key=None) -> list[T]:
    """The rows at shard_indices; `key` gives a row's length (none: input order)."""
    lengths = [key(r) if key else 0 for r in rows]
    return [rows[i] for i in shard_indices(lengths, rank, world)]


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


def collective_timeout_s() -> float:
    """How long a rank waits at a collective (default 30 min: a full-size single-device pass)."""
    return float(os.environ.get("PERFSUITE_COLLECTIVE_TIMEOUT_S", "1800"))


def run_sharded(session, variant) -> ScalingReport | None:
    """Run inside a torchrun process group; returns the report on rank 0, None elsewhere."""
    import torch
    import torch.distributed as dist

    cuda = session.caps.has_cuda
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    # Rank 0's single-device measurement runs while the others wait at a barrier; a rank that
    # died must not leave them there for NCCL's default 10 minutes - or forever.
    dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=timedelta(seconds=collective_timeout_s()))
    rank = dist.get_rank()

    def collective(name: str, call, *args):
        try:
            return call(*args)
        except Exception as exc:  # a timeout or a dead peer: say which variant, rank and step
            raise RuntimeError(
                f"{variant.id}: rank {rank}: collective '{name}' failed or timed out "
                f"(limit {collective_timeout_s():.0f} s, PERFSUITE_COLLECTIVE_TIMEOUT_S): {exc}"
            ) from exc

    try:
        world = dist.get_world_size()
        if rank == 0:  # materialise a miniature's checkpoint once; the other ranks then reuse it
            session.resolve(variant)
        collective("barrier after the checkpoint", dist.barrier)
        resolved = session.resolve(variant)
        rows, swapped = resolved.encoded.rows, resolved.encoded.swapped

        def median_of(positions: Sequence[int]) -> float:
            part = [rows[i] for i in positions]
            part_swapped = [swapped[i] for i in positions] if swapped else None
            return statistics.median(session.measure(resolved, part, part_swapped).latency_samples)

        single = median_of(range(len(rows))) if rank == 0 else 0.0
        collective("barrier after rank 0's single-device measurement", dist.barrier)
        mine = shard_indices([len(r.input_ids) for r in rows], rank, world)
        shard_median = median_of(mine)
        gathered: list[Any] = [None] * world
        collective("all_gather of the shard medians", dist.all_gather_object, gathered, (len(mine), shard_median))
        # Every rank past its last collective before any tears its gloo pairs down: a rank that
        # destroyed its group while its peer's transfer was in flight once died in C++
        # ("terminate called without an active exception", clean-clone CI, 2026-11-27).
        collective("final barrier", dist.barrier)
    finally:
        dist.destroy_process_group()
    if rank != 0:
        return None
    return ScalingReport(variant.id, world, single, tuple(m for _, m in gathered), tuple(n for n, _ in gathered))
