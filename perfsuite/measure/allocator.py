"""A timing process's allocator, brought to the state a process reaches after its first model.

glibc's malloc serves a block above its mmap threshold with fresh pages, faulted in and zeroed
on every pass, and the threshold starts at 128 KiB, rising (to at most 32 MiB) only as such a
block is freed. So how much of a pass is page faults depends on what the process ran before.
Measured 2026-12-02 on the 2-core VM: a 25 ms variant read 37-59 ms timed alone in a fresh
process and 23-28 ms after seven other variants - the context of a record's processes and of
a tier run, which time the variants in turn. A re-timing that ran it alone failed it.

Fixing the thresholds (MALLOC_MMAP_THRESHOLD_) removed that, but also moved eager attention's
blocks above 32 MiB onto the heap and halved eager variants' time against every record and
run. Freeing one block just under the dynamic maximum instead raises the threshold as far as
any earlier model would have: the state of a warm process, whatever runs first. Other C
libraries take it as one allocation.
"""

from __future__ import annotations

WARM_BLOCK_BYTES = 31 << 20  # below glibc's DEFAULT_MMAP_THRESHOLD_MAX (32 MiB on 64-bit)

_warmed = False


def warm_allocator() -> None:
    """Allocate, touch and free one block of WARM_BLOCK_BYTES, once per process."""
    global _warmed
    if _warmed:
        return
    block = bytearray(WARM_BLOCK_BYTES)  # mmapped (above 128 KiB); freeing it lifts the threshold
    block[-1] = 1
    del block
    _warmed = True
