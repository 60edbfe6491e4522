"""When a variant's latency is timed again, and what the second timing decides.

One process's median moves 0.6x-1.5x between processes on a shared 2-core VM, so one timing
neither convicts nor clears. A latency failure is timed again (a burst of load or a process's
own bias does not persist; a regression does). Where the record holds fresh processes'
medians, a median that passed but lies above the variant's own-noise screen is timed again
too: the floor keeps the verdict safe from a spread three processes underestimate, but it
also hid a 50% slowdown that the run's process read at 1.23x. The second timing is then the
median of several fresh processes' medians - the record's context, with less noise than one,
and one process that met a burst of load does not move it - and the tolerance for that
median decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfsuite.judge.checks import Verdict, latency_screen
from perfsuite.store.records import MachineRecord
from perfsuite.variant import Bounds

FAILED = "failed"
SCREENED = "screened"


def only_latency_failed(verdict: Verdict) -> bool:
    return verdict.status == "fail" and bool(verdict.failed) and all(c.kind == "latency" for c in verdict.failed)


def reason_to_confirm(verdict: Verdict, machine: MachineRecord | None, bounds: Bounds) -> str | None:
    """FAILED (only latency failed), SCREENED (passed, but above the screen), or None."""
    if only_latency_failed(verdict):
        return FAILED
    if verdict.status != "pass" or machine is None:
        return None
    screen = latency_screen(bounds, machine.latency.noise, len(machine.latency.processes_s))
    judged = [c for c in verdict.checks if c.kind == "latency" and c.ratio is not None]
    if screen is None or not judged:
        return None
    return SCREENED if judged[0].ratio > 1 + screen else None


@dataclass(frozen=True)
class Decision:
    """Which timing's verdict stands, and the note that says why."""

    second_stands: bool
    note: str


def decide(why: str, first: Verdict, first_ms: float, second: Verdict, where: str) -> Decision:
    """The second timing decides unless it could not judge latency (a busy machine): then the
    first, which was judged, stands."""
    if why == FAILED:
        head = f"latency failed at first (median {first_ms:.1f} ms)"
    else:
        ratio = next(c.ratio for c in first.checks if c.kind == "latency" and c.ratio is not None)
        head = f"latency at {ratio:.2f}x of its record passed at first but lies above its own-noise screen"
    if any(c.kind == "latency" and not c.judged for c in second.coverage):
        stands = "undecided (machine busy), so the first measurement stands"
        return Decision(False, f"{head}, re-measured {where}: {stands}")
    if second.status == "fail":
        state = "confirmed" if why == FAILED else "failed: their median is over its tolerance"
    else:
        state = "not confirmed: counted as transient load" if why == FAILED else "passed"
    return Decision(True, f"{head}, re-measured {where}: {state}")
