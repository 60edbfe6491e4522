"""Change points: a step is found where it starts, with its interval and what changed; one busy
run is not a step; insertion order does not matter; work counts step exactly; an acknowledged
step stops alerting and becomes the level later runs are judged against."""

from __future__ import annotations

import random

import numpy as np
import pytest

from perfsuite.cli import main
from perfsuite.history.changes import find_steps
from perfsuite.history.ingest import add_files
from perfsuite.history.series import find_changes
from perfsuite.history.store import HistoryStore
from tests.unit.history_data import report, write

V, W = "tiny-llama3-fp32-sdpa-sorted", "tiny-gemma2-fp32-eager-sorted"


def _noisy(n: int, seed: int, sd: float = 0.01) -> np.ndarray:
    return 100 * np.exp(np.random.default_rng(seed).normal(0, sd, n))


def test_a_ten_percent_step_is_found_at_its_run_with_an_interval_around_it():
    values = _noisy(30, 1)
    values[20:] *= 1.10
    (step,) = find_steps(values)
    assert step.index == 20 and step.low < 1.10 < step.high and step.p_value < 1e-3


def test_one_busy_run_is_not_a_step():
    for seed in range(20):
        values = _noisy(30, seed)
        values[seed % 30] *= 2.5
        assert find_steps(values) == [], seed


def test_a_flat_series_has_no_step():
    assert all(find_steps(_noisy(30, seed, 0.03)) == [] for seed in range(30))


def test_runs_timed_on_a_busy_machine_are_kept_but_not_searched(tmp_path):
    docs = [report(i, {V: 100.0 * (1 + 0.002 * (i % 3))}) for i in range(20)]
    for doc in docs[8:14]:  # six runs in a row with a busy loop beside them: 2-3x slower
        m = doc["variants"][0]["measurement"]["latency"]
        m["median_s"], m["other_cpu_share"] = 0.25, 0.45
    with HistoryStore(str(tmp_path / "h.sqlite")) as store:
        add_files(store, write(tmp_path, docs))
        changes, series = find_changes(store, V)
        (latency,) = [s for s in series if s.key.metric == "latency_ms"]
    assert sum(latency.busy) == 6 and len(latency.values) == 20
    assert [c for c in changes if c.key.metric == "latency_ms"] == []


def test_a_cpus_rss_increase_is_kept_apart_from_device_memory_and_not_searched(tmp_path):
    (path,) = write(tmp_path, [report(0, {V: 100.0})])
    with HistoryStore(str(tmp_path / "h.sqlite")) as store:
        add_files(store, [path])
        metrics = {p.metric for p in store.points()}
    assert "rss_mib" in metrics and "peak_mib" not in metrics
    from perfsuite.history.series import DETECTED

    assert "rss_mib" not in DETECTED


def test_an_acknowledged_step_with_one_run_on_each_side_is_reported_without_error():
    (step,) = find_steps([100.0, 150.0], fixed=[1])
    assert step.fixed and step.index == 1 and step.ratio == pytest.approx(1.5)
    (step,) = find_steps([100.0, 101.0, 150.0], fixed=[2])
    assert step.fixed and step.low < 1.5 < step.high


def test_work_counts_step_exactly_where_they_change():
    steps = find_steps([1000] * 5 + [1200] * 3, exact=True)
    assert [(s.index, s.ratio, s.p_value) for s in steps] == [(5, 1.2, 0.0)]


def _history(tmp_path, n=24, step_at=16, factor=1.10, shuffle=False):
    values = _noisy(n, 3)
    docs = []
    for i in range(n):
        env = {"transformers": "5.24.0" if i >= step_at else "5.23.0"}
        latency = values[i] * (factor if i >= step_at else 1.0)
        docs.append(report(i, {V: latency, W: 200.0 * values[i] / 100}, env=env))
    if shuffle:
        random.Random(0).shuffle(docs)
    store = HistoryStore(str(tmp_path / "h.sqlite"))
    add_files(store, write(tmp_path / "files", docs))
    return store


def test_a_step_names_its_run_commit_and_what_else_changed(tmp_path):
    with _history(tmp_path) as store:
        changes, _ = find_changes(store)
    (change,) = [c for c in changes if c.key.metric == "latency_ms"]
    assert change.key.series == V and change.regression and change.latest and change.alerting
    assert change.run.commit == f"{16:012x}" and change.previous.commit == f"{15:012x}"
    assert "transformers 5.23.0 -> 5.24.0" in change.what_changed
    assert f"commit {15:012x} -> {16:012x}" in change.what_changed


def test_a_step_names_the_variants_own_provenance_change(tmp_path):
    docs = [report(i, {V: 100.0 * (1.3 if i >= 8 else 1.0)}) for i in range(14)]
    for i, doc in enumerate(docs):
        doc["variants"][0]["measurement"]["environment"]["checkpoint"] = "weights@new" if i >= 8 else "weights@old"
    with HistoryStore(str(tmp_path / "h.sqlite")) as store:
        add_files(store, write(tmp_path, docs))
        (change,) = [c for c in find_changes(store)[0] if c.key.metric == "latency_ms"]
    assert "checkpoint weights@old -> weights@new" in change.what_changed


def test_runs_added_out_of_order_give_the_same_change(tmp_path):
    with _history(tmp_path / "a") as store:
        ordered = [(c.key, c.run.commit) for c in find_changes(store)[0]]
    with _history(tmp_path / "b", shuffle=True) as store:
        shuffled = [(c.key, c.run.commit) for c in find_changes(store)[0]]
    assert ordered == shuffled and ordered


def test_changes_exits_1_on_an_unacknowledged_regression_and_0_once_acknowledged(tmp_path, capsys):
    db = str(tmp_path / "h.sqlite")
    _history(tmp_path).close()
    assert main(["history", "changes", "--history", db]) == 1
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("ALERT")]
    change_id = line.split()[1]
    assert main(["history", "ack", change_id, "--reason", "new kernel, intended", "--history", db]) == 0
    assert main(["history", "changes", "--history", db]) == 0
    assert "acknowledged" in capsys.readouterr().out


def test_after_an_acknowledged_step_later_runs_are_judged_against_the_new_level(tmp_path):
    store = _history(tmp_path, n=24, step_at=10, factor=1.5)
    (change,) = [c for c in find_changes(store)[0] if c.key.metric == "latency_ms"]
    from perfsuite.history.store import Ack

    store.add_ack(Ack(change.change_id, V, "latency_ms", change.key.scope, change.run.run_id, "intended", "now"))
    more = [report(24 + i, {V: 150.0 * (1.2 if i >= 4 else 1.0), W: 200.0}) for i in range(10)]
    add_files(store, write(tmp_path / "more", more))
    changes = [c for c in find_changes(store)[0] if c.key.metric == "latency_ms" and c.key.series == V]
    assert [c.acked is not None for c in changes] == [True, False]
    assert changes[1].ratio == pytest.approx(1.2, rel=0.03) and changes[1].alerting
    store.close()


def test_changes_json_and_since_filter(tmp_path, capsys):
    import json

    db = str(tmp_path / "h.sqlite")
    _history(tmp_path).close()
    assert main(["history", "changes", "--json", "--since", "2026-12-01", "--history", db]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == []
    assert main(["history", "changes", "--json", "-k", V, "--history", db]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {c["series"] for c in doc["changes"]} == {V} and doc["alerting"]


def test_show_prints_a_sparkline_per_figure_and_marks_the_step(tmp_path, capsys):
    db = str(tmp_path / "h.sqlite")
    _history(tmp_path).close()
    assert main(["history", "show", "-k", V, "--history", db]) == 0
    out = capsys.readouterr().out
    latency = next(line for line in out.splitlines() if line.strip().startswith("latency_ms"))
    assert "|" in latency and "24 runs" in latency
    assert main(["history", "show", "-k", "nothing-*", "--history", db]) == 2
