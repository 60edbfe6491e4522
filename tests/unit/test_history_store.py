"""The history store on SQLite: whole runs or nothing, duplicates refused, corrupt, foreign and
newer files one clear error, migrations in one transaction, concurrent writers lose nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.history import schema
from perfsuite.history.ingest import add_files
from perfsuite.history.store import HistoryError, HistoryStore
from tests.unit.history_data import report, write

V = "tiny-llama3-fp32-sdpa-sorted"


def _count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("select count(*) from perfsuite_runs").fetchone()[0]


def test_a_report_goes_in_whole_with_every_figure_and_its_entry(tmp_path):
    (path,) = write(tmp_path, [report(0, {V: 100.0})])
    with HistoryStore(str(tmp_path / "h.sqlite")) as store:
        (record,) = add_files(store, [path])
        points = {(p.metric, p.scope): p.value for p in store.points()}
        (run,) = store.runs()
        ((_, status, entry),) = store.results(V)
    assert points[("latency_ms", "cpu-test-machine-2c")] == pytest.approx(100.0)
    assert points[("processed_tokens", "*")] == 1000  # work counts hold on any machine
    assert points[("log_loss", "*")] == pytest.approx(0.9)  # fp32 quality is portable in this tier
    assert run.run_id == record.run_id and run.environment["transformers"] == "5.24.0"
    assert status == "pass" and entry["measurement"]["latency"]["samples_s"] == [0.1] * 3
    assert "cells" not in entry


def test_a_duplicate_run_is_refused_and_nothing_of_that_call_is_written(tmp_path):
    docs = [report(0, {V: 100.0}), report(1, {V: 100.0})]
    paths = write(tmp_path, docs)
    db = tmp_path / "h.sqlite"
    assert main(["history", "add", str(paths[0]), "--history", str(db)]) == 0
    assert main(["history", "add", str(paths[1]), str(paths[0]), "--history", str(db)]) == 2
    assert _count(db) == 1  # the new run of the refused call did not go in either


def test_a_corrupt_sqlite_file_is_exit_2_naming_it_and_stays_as_it_was(tmp_path, capsys):
    db = tmp_path / "h.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    (path,) = write(tmp_path, [report(0, {V: 1.0})])
    assert main(["history", "add", str(path), "--history", str(db)]) == 2
    err = capsys.readouterr().err
    assert str(db) in err and "not a usable SQLite database" in err and "Traceback" not in err
    assert db.read_bytes() == b"this is not a database" * 100


def test_a_history_path_under_a_file_is_exit_2_naming_it(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    (path,) = write(tmp_path, [report(0, {V: 1.0})])
    assert main(["history", "add", str(path), "--history", str(tmp_path / "afile" / "h.sqlite")]) == 2
    assert "cannot create its folder" in capsys.readouterr().err
    assert main(["history", "changes", "--history", str(tmp_path / "afile" / "h.sqlite")]) == 2
    assert "no history at" in capsys.readouterr().err


def test_a_foreign_sqlite_database_is_refused(tmp_path):
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table customers (id integer)")
    with pytest.raises(HistoryError, match="not a perfsuite history"):
        HistoryStore(str(db))


def test_a_history_from_a_newer_schema_is_refused(tmp_path):
    db = tmp_path / "h.sqlite"
    HistoryStore(str(db)).close()
    with sqlite3.connect(db) as conn:
        conn.execute("update perfsuite_meta set value = '99' where key = 'schema_version'")
    with pytest.raises(HistoryError, match="schema 99 was written by a newer perfsuite"):
        HistoryStore(str(db))


def test_an_older_schema_is_migrated_in_one_transaction(tmp_path, monkeypatch):
    db = tmp_path / "h.sqlite"
    HistoryStore(str(db)).close()
    calls = []

    def step(conn) -> None:
        from sqlalchemy import text

        conn.execute(text("create table perfsuite_extra (x integer)"))
        calls.append(1)

    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(schema.MIGRATIONS, 1, step)
    with HistoryStore(str(db)) as store:
        assert store.schema_version() == 2 and calls == [1]

    def broken(conn) -> None:
        from sqlalchemy import text

        conn.execute(text("create table perfsuite_half (x integer)"))
        raise RuntimeError("migration failed half-way")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    monkeypatch.setitem(schema.MIGRATIONS, 2, broken)
    with pytest.raises(RuntimeError):
        HistoryStore(str(db))
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master")}
        version = conn.execute("select value from perfsuite_meta where key='schema_version'").fetchone()[0]
    assert "perfsuite_half" not in tables and version == "2"  # rolled back whole


def test_a_report_with_a_nan_figure_is_refused_naming_the_field(tmp_path, capsys):
    doc = report(0, {V: 100.0})
    text = json.dumps(doc).replace('"log_loss": 0.9', '"log_loss": NaN')
    path = tmp_path / "report.json"
    path.write_text(text)
    assert main(["history", "add", str(path), "--history", str(tmp_path / "h.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "variants[0].measurement.quality.log_loss is NaN" in err and str(path) in err


def test_a_report_of_another_schema_is_refused_naming_it(tmp_path, capsys):
    doc = report(0, {V: 100.0})
    doc["run"]["schema"] = "perfsuite-run/7"
    (path,) = write(tmp_path, [doc])
    assert main(["history", "add", str(path), "--history", str(tmp_path / "h.sqlite")]) == 2
    assert "run.schema 'perfsuite-run/7' is not one this perfsuite reads" in capsys.readouterr().err


def test_a_report_without_run_metadata_still_goes_in_keyed_by_its_content(tmp_path):
    doc = report(0, {V: 100.0})
    del doc["run"]
    (path,) = write(tmp_path, [doc])
    with HistoryStore(str(tmp_path / "h.sqlite")) as store:
        (record,) = add_files(store, [path])
        with pytest.raises(HistoryError, match="already in history"):
            add_files(store, [path])  # the same file twice is the same run
    assert record.commit == "unknown" and record.tier == "cpu"


_WRITER = """
import sys, time
from perfsuite.history.ingest import add_files
from perfsuite.history.store import HistoryStore
store = HistoryStore(sys.argv[1])
for path in sys.argv[2:]:
    add_files(store, [path])
"""


def test_two_concurrent_writers_lose_nothing(tmp_path):
    docs = [report(i, {V: 100.0 + i}) for i in range(30)]
    paths = [str(p) for p in write(tmp_path, docs)]
    db = tmp_path / "h.sqlite"
    HistoryStore(str(db)).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(db), *half]) for half in (paths[0::2], paths[1::2])]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert _count(db) == 30


_KILLED = """
import sys, time
import perfsuite.history.store as store_module
from perfsuite.history.ingest import add_files
bulk = store_module._bulk
def slow_bulk(conn, table, rows):
    bulk(conn, table, rows)
    if table.name == "perfsuite_points":  # runs, results and points are in, not yet committed
        print("points written", flush=True)
        time.sleep(60)
store_module._bulk = slow_bulk
add_files(store_module.HistoryStore(sys.argv[1]), sys.argv[2:])
"""


def test_killing_a_writer_mid_run_leaves_the_history_as_it_was(tmp_path):
    db = tmp_path / "h.sqlite"
    first, *rest = write(tmp_path, [report(i, {V: 100.0}) for i in range(4)])
    with HistoryStore(str(db)) as store:
        add_files(store, [first])
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(db), *map(str, rest)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "points written"  # runs, results and points inserted, not committed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.1)
    assert _count(db) == 1
    with HistoryStore(str(db)) as store:  # and the history is still usable
        add_files(store, rest)
    assert _count(db) == 4
