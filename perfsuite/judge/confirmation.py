"""When a variant's latency is timed again, and what the second timing decides.

One process's median moves 0.6x-1.5x between processes on a shared 2-core VM, so one timing
neither convicts nor clears. A latency failure is timed again (a burst of load or a process's
own bias does not persist; a regression does). Where the record holds fresh processes'
medians, a median that passed but lies above the variant's own-noise screen is timed again
too: the floor keeps the verdict safe from a spread three processes underestimate, but it
also hid a 50% slowdown that the run's process read at 1.23x. The second timing is then the
median of several fresh processes' medians - the record's context, with less noise than one,
and one process that met a burst of load does not move it - and the tolerance for that
median decides. A timing the busy rule left undecided is timed again in fresh processes as
well, where the record holds their medians: a burst of load passes, and the median of three
decides what one busy process could not. Once such a re-timing is busy too, the machine is
(not the moment), and the rest of the run is not asked again: each costs its processes.
Where the re-timing contradicts the first timing from a median still above the screen (a
failure it did not confirm, a screened pass it failed), neither is clear: as many fresh
processes again are asked, once, and the median of all of theirs decides. Two of ten 50%
slowdowns the first timing failed were cleared this way by three processes at 1.33x and 1.39x.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perfsuite.judge.checks import Verdict, latency_screen
from perfsuite.judge.verdict import BUSY_WHY
from perfsuite.store.records import MachineRecord
from perfsuite.variant import Bounds

FAILED = "failed"
SCREENED = "screened"
BUSY = "busy"


def only_latency_failed(verdict: Verdict) -> bool:
    return verdict.status == "fail" and bool(verdict.failed) and all(c.kind == "latency" for c in verdict.failed)


def latency_busy(verdict: Verdict) -> bool:
    return any(c.kind == "latency" and not c.judged and c.why.startswith(BUSY_WHY) for c in verdict.coverage)


def reason_to_confirm(verdict: Verdict, machine: MachineRecord | None, bounds: Bounds, busy: bool = True) -> str | None:
    """FAILED (only latency failed), BUSY (passed the rest, latency left undecided by the busy
    rule, a record of fresh processes, and `busy` asked), SCREENED (passed, but above the
    screen), or None."""
    if only_latency_failed(verdict):
        return FAILED
    if verdict.status != "pass" or machine is None:
        return None
    if latency_busy(verdict):
        return BUSY if busy and len(machine.latency.processes_s) >= 2 else None
    return SCREENED if above_screen(verdict, machine, bounds) else None


def above_screen(verdict: Verdict, machine: MachineRecord, bounds: Bounds) -> bool:
    """Whether the verdict's judged latency ratio lies above the variant's own-noise screen (a
    record of one process has none)."""
    lat = machine.latency
    screen = latency_screen(bounds, lat.noise, len(lat.processes_s), lat.phase, lat.phase_runs)
    ratio = judged_ratio(verdict)
    return screen is not None and ratio is not None and ratio > 1 + screen


def judged_ratio(verdict: Verdict) -> float | None:
    """The judged latency check's median over the record's, None where latency was not judged."""
    return next((c.ratio for c in verdict.checks if c.kind == "latency" and c.ratio is not None), None)


def disagrees(why: str, second: Verdict, machine: MachineRecord | None, bounds: Bounds) -> bool:
    """Whether the re-timing contradicts the first timing from a median above the screen: a
    FAILED it passed, or a SCREENED it failed (only on latency). Busy or within the screen, the
    re-timing is clear and decides alone."""
    if machine is None or latency_busy(second):
        return False
    if why == SCREENED:
        return only_latency_failed(second)
    return why == FAILED and second.status == "pass" and above_screen(second, machine, bounds)


def fresh_where(medians_s: Sequence[float], added: int = 0) -> str:
    """Where a re-timing ran, with each fresh process's median; `added` of them were asked after
    the first ones disagreed with the first timing."""
    ms = ", ".join(f"{s * 1000:.1f}" for s in medians_s)
    if len(medians_s) == 1:
        return f"in a fresh process ({ms} ms)"
    more = f"{added} more after the first {len(medians_s) - added} disagreed; " if added else ""
    return f"in {len(medians_s)} fresh processes ({more}their medians {ms} ms)"


@dataclass(frozen=True)
class Decision:
    """Which timing's verdict stands, and the note that says why."""

    second_stands: bool
    note: str


def decide(why: str, first: Verdict, first_ms: float, second: Verdict, where: str) -> Decision:
    """The second timing decides unless it could not judge latency (a busy machine): then the
    first stands - judged, or for a BUSY first, undecided as it was."""
    if why == FAILED:
        head = f"latency failed at first (median {first_ms:.1f} ms)"
    elif why == BUSY:
        head = f"latency undecided at first (machine busy; median {first_ms:.1f} ms)"
    else:
        ratio = judged_ratio(first)
        head = f"latency at {ratio:.2f}x of its record passed at first but lies above its own-noise screen"
    if latency_busy(second):  # the record and the tier are the first timing's: only the busy rule leaves it undecided
        stands = "undecided (machine busy), so the first measurement stands"
        return Decision(False, f"{head}, re-measured {where}: {stands}")
    if second.status == "fail":
        state = "confirmed" if why == FAILED else "failed: their median is over its tolerance"
    else:
        state = "not confirmed: counted as transient load" if why == FAILED else "passed"
    return Decision(True, f"{head}, re-measured {where}: {state}")


@dataclass
class Retiming:
    """A run's re-timing policy: what to time again (`reason_to_confirm`), with the busy case
    asked until a re-timing of it is busy too."""

    enabled: bool
    busy: bool = True

    def reason(self, verdict: Verdict, machine: MachineRecord | None, bounds: Bounds) -> str | None:
        return reason_to_confirm(verdict, machine, bounds, self.busy) if self.enabled else None

    def settled(self, why: str, decision: Decision) -> None:
        if why == BUSY and not decision.second_stands:
            self.busy = False
