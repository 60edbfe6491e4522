"""Series out of the store - variant x metric x scope (a machine key, or any machine for
portable figures), ordered by run time - and the change points found in them, each with the
run and commit it starts at and what else changed between that run and the one before.
Latency is searched over each run's phase, with the decision's noise model (`history.phase`);
each machine's run-wide factor is a series of its own."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from perfsuite.device.environment import PROVENANCE
from perfsuite.history.changes import ChangeSettings, Step, find_steps
from perfsuite.history.phase import METRIC, RUN_FACTOR, Searched, own_noise, run_factor_series, searched
from perfsuite.history.runs import METRICS, PORTABLE
from perfsuite.history.seriestypes import Series, SeriesKey
from perfsuite.history.store import Ack, HistoryStore, StoredRun
from perfsuite.matrix.tier import matches_any
from perfsuite.report.metadata import parse_time

__all__ = ["DETECTED", "Change", "Series", "SeriesKey", "changes_in", "find_changes", "load_series"]

# Looked for change points by default: the figures a user acts on (tokens/s mirrors latency,
# accuracy on a few rows moves in coarse steps, the compare chain is judged as creep).
DETECTED = (
    "latency_ms",
    "run_factor",
    "peak_mib",
    "log_loss",
    "lm_log_loss",
    "processed_tokens",
    "flops",
    "weight_bytes",
    "ratio",
)


@dataclass(frozen=True)
class Change:
    change_id: str
    key: SeriesKey
    run: StoredRun  # the first run at the new level
    previous: StoredRun
    index: int
    ratio: float
    low: float
    high: float
    p_value: float
    regression: bool
    acked: Ack | None
    what_changed: tuple[str, ...]
    latest: bool  # the last change of its series: the level runs are at now
    over_phase: bool = False  # a latency series searched over its runs' phase (history.phase)

    @property
    def alerting(self) -> bool:
        return self.regression and self.acked is None and self.latest

    def describe(self) -> str:
        interval = f"{self.ratio:.3f}x [{self.low:.3f}, {self.high:.3f}]"
        kind = "acknowledged" if self.acked else "regression" if self.regression else "improvement"
        changed = "; ".join(self.what_changed) or "nothing recorded changed"
        if self.key.metric == "run_factor":
            interval += ", every variant of the run alike: the machine or a shared library moved"
        elif self.over_phase:
            interval += " over its runs' phase"
        return (
            f"{self.change_id} {kind}: {self.key.label()} {interval}, p={self.p_value:.1e}, from run "
            f"{self.run.run_id[:12]} ({self.run.time[:19]}, commit {self.run.commit[:12]}) - {changed}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.change_id,
            "series": self.key.series,
            "metric": self.key.metric,
            "scope": self.key.scope,
            "run_id": self.run.run_id,
            "time": self.run.time,
            "commit": self.run.commit,
            "previous_run_id": self.previous.run_id,
            "previous_commit": self.previous.commit,
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "regression": self.regression,
            "acknowledged": self.acked.reason if self.acked else None,
            "latest": self.latest,
            "alerting": self.alerting,
            "what_changed": list(self.what_changed),
            "over_phase": self.over_phase,
        }


def change_id(key: SeriesKey, run_id: str) -> str:
    digest = hashlib.sha256(f"{key.series}|{key.metric}|{key.scope}|{run_id}".encode()).hexdigest()
    return "c" + digest[:10]


def load_series(
    store: HistoryStore, select: str | None = None, metrics: Sequence[str] | None = None
) -> tuple[list[Series], list[StoredRun]]:
    """Every series (matching the comma-separated globs `select`), its runs in time order, and
    each machine's run-wide latency factor (`run_factor`, from every latency series)."""
    runs = store.runs()  # ordered by time, then insertion
    wide = metrics is None or RUN_FACTOR in metrics
    every = _grouped(store, runs, None if metrics is None else [*metrics, *(["latency_ms"] if wide else [])])
    derived = run_factor_series(every) if wide else []
    shown = [
        s
        for s in [*every, *derived]
        if (not select or matches_any(s.key.series, select)) and (metrics is None or s.key.metric in metrics)
    ]
    return shown, runs


def _grouped(store: HistoryStore, runs: Sequence[StoredRun], metrics: Sequence[str] | None) -> list[Series]:
    order = {r.pk: i for i, r in enumerate(runs)}
    by_pk = {r.pk: r for r in runs}
    grouped: dict[SeriesKey, list[Any]] = defaultdict(list)
    for p in store.points(metrics):
        grouped[SeriesKey(p.series, p.metric, p.scope)].append(p)
    out = []
    for key in sorted(grouped, key=lambda k: (k.series, k.metric, k.scope)):
        pts = sorted(grouped[key], key=lambda p: order[p.run])
        out.append(
            Series(
                key,
                [by_pk[p.run] for p in pts],
                [p.value for p in pts],
                [p.low for p in pts],
                [p.high for p in pts],
                [bool(p.busy) for p in pts],
            )
        )
    return out


def what_changed(before: StoredRun, after: StoredRun, portable: bool) -> tuple[str, ...]:
    """Commit, versions and provenance, settings (data digest, workload), and - for a portable
    series - the machine, between two runs."""
    out = []
    if before.commit != after.commit:
        out.append(f"commit {before.commit[:12]} -> {after.commit[:12]}")
    for old, new in ((before.environment, after.environment), (before.settings, after.settings)):
        for k in sorted(set(old) | set(new)):
            # a variant's provenance is its own (_with_provenance), not the run's
            if k == "commit" or k in PROVENANCE or old.get(k) == new.get(k):
                continue
            out.append(f"{k} {old.get(k, 'absent')} -> {new.get(k, 'absent')}")
    if portable and before.machine_key != after.machine_key:
        out.append(f"machine {before.machine_key} -> {after.machine_key}")
    return tuple(out)


def series_changes(
    series: Series, acks: Sequence[Ack], settings: ChangeSettings | None = None, searched: Searched | None = None
) -> list[Change]:
    """The series' change points; `searched`: what its quiet runs are searched as (a latency
    series over its runs' phase, with the model's noise), default their values as they are."""
    higher_worse, exact = METRICS.get(series.key.metric, (True, False))
    kept = series.quiet()
    runs = [series.runs[i] for i in kept]
    index_of = {r.run_id: i for i, r in enumerate(runs)}
    key = series.key
    mine = [a for a in acks if (a.series, a.metric, a.scope) == (key.series, key.metric, key.scope)]
    fixed = [index_of[a.run_id] for a in mine if a.run_id in index_of]
    values = searched.values if searched else [series.values[i] for i in kept]
    noise = searched.noise if searched else None
    steps: list[Step] = find_steps(values, exact=exact, fixed=fixed, settings=settings, noise=noise)
    acked = {index_of[a.run_id]: a for a in mine if a.run_id in index_of}
    changes = []
    for n, s in enumerate(steps):
        run, previous = runs[s.index], runs[s.index - 1]
        ack = acked.get(s.index) or next((a for i, a in acked.items() if abs(i - s.index) <= 1), None)
        worse = bool(s.ratio > 1 if higher_worse else s.ratio < 1)
        changes.append(
            Change(
                change_id(series.key, run.run_id),
                series.key,
                run,
                previous,
                kept[s.index],  # in the series, busy runs included
                s.ratio,
                s.low,
                s.high,
                s.p_value,
                worse,
                ack,
                what_changed(previous, run, series.key.scope == PORTABLE),
                n == len(steps) - 1,
                bool(searched and searched.over_phase),
            )
        )
    return changes


def _with_provenance(store: HistoryStore, change: Change) -> Change:
    """Add what changed for this variant alone between the two runs: its checkpoint digest,
    adapter, threads and other provenance, as its own report entries recorded them."""
    before, after = (store.entry(r.pk, change.key.series) for r in (change.previous, change.run))
    envs = [((e or {}).get("measurement") or {}).get("environment") or {} for e in (before, after)]
    keys = sorted(k for k in set(envs[0]) | set(envs[1]) if k in PROVENANCE and envs[0].get(k) != envs[1].get(k))
    extra = tuple(f"{k} {envs[0].get(k, 'absent')} -> {envs[1].get(k, 'absent')}" for k in keys)
    return dataclasses.replace(change, what_changed=change.what_changed + extra) if extra else change


def changes_in(
    store: HistoryStore,
    series: Sequence[Series],
    since: datetime | None = None,
    settings: ChangeSettings | None = None,
) -> list[Change]:
    """Change points of `series` (those of DETECTED figures; others pass through unsearched);
    with `since` only those starting at or after that moment (each series is searched whole).
    Latency series are searched over their runs' phase, taken from every latency series of the
    store (`history.phase`), so a selection never changes a variant's result.
    Times are compared as times: run times of any offset, never their text."""
    acks = store.acks()
    wanted = [s for s in series if s.key.metric in DETECTED]
    how: dict[SeriesKey, Searched] = {}
    if any(s.key.metric == METRIC for s in wanted):
        how = searched(load_series(store, None, [METRIC])[0], settings)
    for s in wanted:
        if s.key.metric == RUN_FACTOR:  # one series per machine, no peers: its own noise
            how[s.key] = Searched(list(s.values), False, own_noise(s.values, settings))
    changes = [_with_provenance(store, c) for s in wanted for c in series_changes(s, acks, settings, how.get(s.key))]
    return [c for c in changes if parse_time(c.run.time) >= since] if since else changes


def find_changes(
    store: HistoryStore,
    select: str | None = None,
    since: datetime | None = None,
    metrics: Sequence[str] = DETECTED,
    settings: ChangeSettings | None = None,
) -> tuple[list[Change], list[Series]]:
    """Load the matching series of `metrics` and find their change points."""
    series, _ = load_series(store, select, metrics)
    return changes_in(store, series, since, settings), series
