"""A series out of the history - variant x metric x scope - as the search and the pages see it."""

from __future__ import annotations

from dataclasses import dataclass, field

from perfsuite.history.runs import PORTABLE
from perfsuite.history.store import StoredRun


@dataclass(frozen=True)
class SeriesKey:
    series: str
    metric: str
    scope: str

    def label(self) -> str:
        where = "any machine" if self.scope == PORTABLE else self.scope
        return f"{self.series} {self.metric} ({where})"


@dataclass
class Series:
    key: SeriesKey
    runs: list[StoredRun] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    lows: list[float | None] = field(default_factory=list)
    highs: list[float | None] = field(default_factory=list)
    busy: list[bool] = field(default_factory=list)

    def quiet(self) -> list[int]:
        """The indices of the runs timed on a quiet machine: those searched for change points
        (a busy run's latency was undecided; it is drawn, not searched)."""
        return [i for i, busy in enumerate(self.busy or [False] * len(self.runs)) if not busy]
