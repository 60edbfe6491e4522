"""A timing process starts with a warm process's allocator (measure/allocator.py): in a fresh
process, a block below glibc's dynamic mmap maximum comes from the heap, not fresh mmapped
pages - what a process that already ran one model would do."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "warm":
    from perfsuite.measure.allocator import warm_allocator
    warm_allocator()
block = bytearray(16 << 20)
print(libc.mallinfo2().hblkhd >> 20)  # MiB held in mmapped blocks
"""


def _mmapped_mib(state: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, state], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc >= 2.33 (mallinfo2)")
def test_a_warmed_process_serves_a_16_mib_block_from_the_heap_as_a_warm_process_does():
    assert _mmapped_mib("cold") >= 16  # a fresh process: fresh pages, faulted in on every pass
    assert _mmapped_mib("warm") == 0


def test_the_allocator_is_warmed_once_per_process(monkeypatch):
    from perfsuite.measure import allocator

    made: list[int] = []
    monkeypatch.setattr(allocator, "_warmed", False)
    monkeypatch.setattr(allocator, "bytearray", lambda n: made.append(n) or bytearray(1), raising=False)
    allocator.warm_allocator()
    allocator.warm_allocator()
    assert made == [allocator.WARM_BLOCK_BYTES]
