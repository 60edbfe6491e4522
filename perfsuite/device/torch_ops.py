"""The one place the measuring code asks torch about the device: waiting for it, freeing what a
variant held, and a variant's peak memory - a path per device in one class, as
optimum-benchmark's `trackers/memory.py` has it.

A GPU has an allocator counter (`torch.cuda.max_memory_allocated`): the model's own peak. A CPU
has none; the resident set's increase while the passes run is sampled instead, and depends on
what ran before in the process (freed memory is reused), so the memory bound judges the first
kind only (`judge.checks.JUDGED_MEMORY`).
"""

from __future__ import annotations

import gc
import os
import threading

import torch

CUDA_PEAK = "cuda max_memory_allocated"
CPU_PEAK = "cpu rss increase"


def synchronize(device: str) -> None:
    """Wait for the device's queued work (a CPU's is done when the call returns)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def empty_cache(device: str) -> None:
    """Return CUDA's cached blocks (nothing to do on a CPU): before a variant loads."""
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


def release_memory(device: str) -> None:
    """Free what the previous variant held (after an OOM above all): collect, then empty the cache."""
    gc.collect()
    empty_cache(device)


class PeakMemory:
    """Peak memory of what runs inside the block, and how it was measured (`kind`)."""

    def __init__(self, device: str, interval_s: float = 0.002) -> None:
        self.cuda = device.startswith("cuda")
        self.kind = CUDA_PEAK if self.cuda else CPU_PEAK
        self.peak = 0
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._high = 0
        self._base = 0

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm", encoding="ascii") as handle:
                return int(handle.read().split()[1]) * self._page
        except OSError:
            return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._high = max(self._high, self._rss())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            self._base = self._rss()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            self.peak = torch.cuda.max_memory_allocated()
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self._high, self._rss()) - self._base
