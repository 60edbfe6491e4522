"""The other processes' load on this machine: how much CPU they took while a variant was timed
(a busy signal), and how many cores they left free for the timed passes."""

from __future__ import annotations

import os
import time

import torch

from perfsuite.variant import TierSettings


class OtherLoad:
    """Share of the machine's CPU time that others took while the passes were timed.

    Read from /proc/stat (all CPUs' busy time, the hypervisor's steal included) less this
    process's own CPU time (its threads included; its children, such as torch.compile's
    workers, count as others). The probe can slip through a gap in the load - a few ms of
    matmul fit in one scheduler slice - while a pass of 150 ms+ shares the cores throughout;
    this counts the whole window. None where /proc/stat does not exist.
    """

    def __init__(self) -> None:
        self.share: float | None = None
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    @staticmethod
    def _stat() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = [int(x) for x in handle.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        user, nice, system, idle, iowait, irq, softirq, steal = fields
        busy = user + nice + system + irq + softirq + steal
        return busy, busy + idle + iowait

    def _own(self) -> float:
        t = os.times()
        return (t.user + t.system) * self._tick

    def __enter__(self) -> OtherLoad:
        self._start, self._own_start = self._stat(), self._own()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._stat()
        if self._start is None or end is None or end[1] <= self._start[1]:
            return
        busy, total = end[0] - self._start[0], end[1] - self._start[1]
        self.share = min(1.0, max(0.0, busy - (self._own() - self._own_start)) / total)


FREE_CORES_WINDOW_S = 0.05  # how long the other processes' load is read before the timed passes


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def free_threads(settings: TierSettings, window_s: float = FREE_CORES_WINDOW_S) -> int | None:
    """With `threads_from_free_cores`: the intra-op threads the timed passes use - the whole
    cores the other processes left idle over `window_s`, at least 1, at most the tier's
    `threads` - set on torch and returned. Otherwise None (the tier's threads stand)."""
    if not settings.threads_from_free_cores:
        return None
    wanted = torch.get_num_threads()
    with OtherLoad() as load:
        time.sleep(window_s)
    if load.share is not None:
        wanted = max(1, min(wanted, int(cores() * (1 - load.share) + 0.5)))
    torch.set_num_threads(wanted)
    return wanted
