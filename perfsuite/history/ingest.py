"""Putting runs in: report.json / compare.json files (CI artifacts, old runs) or the run that
just wrote one. Every file is read and checked before anything is written; then all go in one
transaction, so a bad or duplicate file leaves the history as it was."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from perfsuite.history.runs import RunRecord, read_run_file
from perfsuite.history.store import HistoryStore


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given; a folder stands for every report.json and compare.json under it."""
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted([*path.rglob("report.json"), *path.rglob("compare.json")])
            if not found:
                raise ValueError(f"{path}: no report.json or compare.json under this folder")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise ValueError(f"{path}: no such file")
    return out


def add_files(store: HistoryStore, paths: Sequence[str | Path]) -> list[RunRecord]:
    records = [read_run_file(p) for p in expand(paths)]
    store.add(records)
    return records


def append_run(target: str, report_file: Path) -> str:
    """After a run wrote `report_file`: append it to the history at `target`; the line to print."""
    with HistoryStore(target) as store:
        (record,) = add_files(store, [report_file])
    return f"history: run {record.run_id[:12]} ({len(record.points)} figures) added to {store.where}"
