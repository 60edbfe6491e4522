"""Does it fit a T4? Answered on a bigger card by running as one (`[tier] emulate = "t4"`).

A T4 is never lent; an H100 or H200 is, sometimes. Running the T4's workload there with the
T4's limits answers what the cost model can only estimate - whether a configuration fits and
what it peaks at:
- the process's device memory is capped at the T4's (torch.cuda.set_per_process_memory_fraction:
  an allocation past the cap fails as an out-of-memory error, as it would on the card);
- the device is described with the T4's compute capability, so sm75's rules apply as they do on
  a T4: no FlashAttention-2 (sm80+), bf16 noted as emulated (no bf16 tensor cores).
Speed is not emulated: times are the host card's, and each variant's notes say so. The cap binds
torch's caching allocator; the CUDA context and library workspaces lie outside it on either
card, so a configuration within a few hundred MiB of the cap is close, not safe.

The emulated device has its own machine key ("<target> emulated on <host>"), so its records
never mix with the host card's or a real T4's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from perfsuite.device.machine import DeviceCaps


@dataclass(frozen=True)
class Target:
    """A card to run as: what it is called, its compute capability and its memory."""

    name: str
    compute_capability: tuple[int, int]
    memory_bytes: int
    source: str


EMULATIONS = {
    "t4": Target("NVIDIA T4", (7, 5), 15 * 2**30, "nvidia-smi on a T4: 15360MiB total; Turing, sm75"),
}


class EmulationError(ValueError):
    """The host card cannot stand in for the target (it has less memory than the cap)."""


def cap_torch_memory(limit_bytes: int, total_bytes: int) -> None:
    """Cap this process's CUDA caching allocator on device 0 at `limit_bytes`."""
    import torch

    torch.cuda.set_per_process_memory_fraction(limit_bytes / total_bytes, 0)


def emulated(caps: DeviceCaps, key: str | None, cap_memory: Callable[[int, int], None] | None = None) -> DeviceCaps:
    """`caps` running as the target `key` (None: as they are). Without CUDA nothing is capped:
    a GPU tier's variants skip on such a machine, each saying why. `cap_memory`: the seam tests
    stub (default: torch's allocator cap)."""
    if not key or not caps.has_cuda:
        return caps
    target = EMULATIONS[key]
    total = caps.total_memory_bytes
    if total is None or total < target.memory_bytes:
        have = "unknown memory" if total is None else f"{total / 2**30:.1f} GiB"
        raise EmulationError(
            f"[tier] emulate = {key!r}: {caps.name} has {have}, not the {target.memory_bytes / 2**30:.0f} GiB "
            f"of the {target.name} it would run as"
        )
    (cap_memory or cap_torch_memory)(target.memory_bytes, total)
    host_cc = caps.compute_capability or target.compute_capability
    return replace(
        caps,
        name=f"{target.name} emulated on {caps.name}",
        compute_capability=min(host_cc, target.compute_capability),
        total_memory_bytes=target.memory_bytes,
        emulating=target.name,
    )


def emulation_note(caps: DeviceCaps) -> str | None:
    """What an emulated run's figures mean, for every variant's notes (None: not emulated)."""
    if not caps.emulating:
        return None
    host = caps.name.split(" emulated on ", 1)[-1]
    return (
        f"run as a {caps.emulating} on {host}: memory capped at {(caps.total_memory_bytes or 0) / 2**30:.0f} GiB "
        f"and sm{''.join(map(str, caps.compute_capability or ()))}'s kernel rules; times are the {host}'s, not a "
        f"{caps.emulating}'s"
    )
