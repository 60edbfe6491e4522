"""Creep on hosted runners: the PR-vs-base `compare` ratios chained merge by merge.

Each compare says head / base with a 95% interval; ten merges each 2% slower read `same` one by
one (5% is the per-PR threshold), yet cost 22% together. The chain multiplies the ratios (sums
their logs) and adds their variances - each interval's half-width in log space / 1.96 is its
standard error, the runs are independent - and flags a cumulative slowdown whose whole
interval lies beyond `threshold`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from perfsuite.history.series import Series, SeriesKey, change_id
from perfsuite.history.store import Ack

Z95 = 1.959964


@dataclass(frozen=True)
class ChainLink:
    run_id: str
    time: str
    commit: str
    base_commit: str
    ratio: float
    low: float
    high: float
    cumulative: float
    cumulative_low: float
    cumulative_high: float


@dataclass
class Creep:
    series: str
    links: list[ChainLink] = field(default_factory=list)
    threshold: float = 0.05

    @property
    def last(self) -> ChainLink | None:
        return self.links[-1] if self.links else None

    @property
    def flagged(self) -> bool:
        """The cumulative interval lies wholly beyond the threshold, though no single link did."""
        last = self.last
        return last is not None and last.cumulative_low > 1 + self.threshold

    @property
    def single_flagged(self) -> bool:
        return any(link.low > 1 + self.threshold for link in self.links)

    @property
    def change_id(self) -> str:
        """What `history ack` takes: the chain restarts after its last link."""
        last = self.last
        return change_id(SeriesKey(self.series, "head_over_base", "*"), last.run_id if last else "")

    def describe(self) -> str:
        last = self.last
        if last is None:
            return f"{self.series}: no compare runs"
        verdict = "CREEP" if self.flagged else "no creep"
        single = " (a single merge was already slower on its own)" if self.single_flagged else ""
        return (
            f"{self.change_id} {self.series}: {verdict} over {len(self.links)} merges: head/base chained "
            f"{last.cumulative:.3f}x [{last.cumulative_low:.3f}, {last.cumulative_high:.3f}]{single}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.change_id,
            "series": self.series,
            "flagged": self.flagged,
            "links": [link.__dict__ for link in self.links],
        }


def chain(series: Series, threshold: float = 0.05, start_after: str | None = None) -> Creep:
    """The compare series of one variant (metric head_over_base), merge by merge, from the run
    after `start_after` (the last link of an acknowledged chain) on."""
    out = Creep(series.key.series, threshold=threshold)
    total, variance = 0.0, 0.0
    links = list(zip(series.runs, series.values, series.lows, series.highs, strict=False))
    ids = [run.run_id for run, *_ in links]
    if start_after in ids:
        links = links[ids.index(start_after) + 1 :]
    for run, ratio, low, high in links:
        if not (ratio > 0 and low and high and low > 0 and high > 0):
            continue
        se = (math.log(high) - math.log(low)) / (2 * Z95)
        total += math.log(ratio)
        variance += se * se
        half = Z95 * math.sqrt(variance)
        out.links.append(
            ChainLink(
                run.run_id,
                run.time,
                run.commit,
                str(run.settings.get("base_commit", "")),
                ratio,
                low,
                high,
                math.exp(total),
                math.exp(total - half),
                math.exp(total + half),
            )
        )
    return out


def creep(series: Sequence[Series], acks: Sequence[Ack] = (), threshold: float = 0.05) -> list[Creep]:
    """Every variant's chain; an acknowledged chain starts again after the run it was acked at."""
    restart = {a.series: a.run_id for a in sorted(acks, key=lambda a: a.at) if a.metric == "head_over_base"}
    return [chain(s, threshold, restart.get(s.key.series)) for s in series if s.key.metric == "head_over_base"]
