"""What a rebaseline takes from the history: each variant's latency medians of its earlier runs
on this machine and tier, since its series' last change point.

Three fresh processes in one minute see one phase of a shared VM: on the AMD EPYC a 15-30 ms
variant's speed moved 1.5x over minutes, and a record made in a fast phase failed the run a
minute later. Earlier runs at other times span such phases; their spread is what a record
needs to know (store.records.Latency.phase). Only the level since the last change point counts
(an older level is another code's), busy runs are left out (their timing was undecided), and
only the latest `limit`: a machine's phases are its recent ones.
"""

from __future__ import annotations

from typing import Any

EARLIER_RUNS = 20  # the latest runs kept per variant
METRIC = "latency_ms"


def _since_last_change(series: Any, acks: list[Any]) -> list[float]:
    from perfsuite.history.series import series_changes

    changes = series_changes(series, acks)
    start = changes[-1].index if changes else 0  # the first run at the level runs are at now
    return [v for v, busy in zip(series.values[start:], series.busy[start:], strict=True) if not busy]


def earlier_runs(
    target: str | None, machine_key: str, tier: str, limit: int = EARLIER_RUNS
) -> dict[str, list[float]] | None:
    """Variant id -> its latest `limit` latency medians (seconds, oldest first) in the history at
    `target`: this machine's, this tier's, not busy, since the series' last change point; None
    without a history. HistoryError (naming the history) where it cannot be read. (Imported
    here: a session that reads no history loads no SQLAlchemy.)"""
    from perfsuite.history.series import Series, load_series
    from perfsuite.history.store import HistoryStore

    if target is None:
        return None
    with HistoryStore(target) as store:
        series, _ = load_series(store, metrics=[METRIC])
        acks = store.acks()
    out: dict[str, list[float]] = {}
    for s in series:
        if s.key.scope != machine_key:
            continue
        kept = [i for i, run in enumerate(s.runs) if run.tier == tier]
        if not kept:
            continue
        mine = Series(s.key, [s.runs[i] for i in kept], [s.values[i] for i in kept], busy=[s.busy[i] for i in kept])
        values = _since_last_change(mine, acks)[-limit:]
        if values:
            out[s.key.series] = [v / 1000 for v in values]
    return out
