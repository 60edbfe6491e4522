"""Every run goes in: `perfsuite run --history`, `rebaseline` and the plugin's
--perfsuite-history append the report they wrote; report.json and compare.json carry their own
run metadata, so a file alone is a complete history record."""

from __future__ import annotations

import json

from perfsuite.cli import main
from perfsuite.history.runs import from_compare
from perfsuite.history.store import HistoryStore
from tests.conftest import write_matrix


def test_run_and_rebaseline_append_to_the_history_with_their_metadata(tmp_path, monkeypatch, capsys):
    # what goes into the history is under test, not the latency bound: under load latency stays undecided
    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "busy")
    matrix = write_matrix(tmp_path, rows=4)
    db = tmp_path / "h.sqlite"
    common = ["--matrix", str(matrix), "--baselines", str(tmp_path / "bl"), "--report-dir", str(tmp_path / "r")]
    assert main(["rebaseline", *common, "--history", str(db)]) == 0
    monkeypatch.setenv("PERFSUITE_HISTORY", str(db))  # the environment configures it too
    assert main(["run", *common, "--history", str(db)]) == 0
    assert "added to" in capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    run = report["run"]
    assert run["schema"] == "perfsuite-run/1" and run["kind"] == "run" and run["tier"] == "unit"
    assert run["environment"]["torch"] and run["portable_quality_dtypes"] == ["fp32"]
    with HistoryStore(str(db)) as store:
        runs = store.runs()
        metrics = {p.metric for p in store.points()}
    assert [r.kind for r in runs] == ["rebaseline", "run"] and runs[1].run_id == run["run_id"]
    assert {"latency_ms", "processed_tokens", "log_loss", "flops"} <= metrics
    with HistoryStore(str(db)) as store:  # the judge left the run's latency undecided as busy: drawn, not searched
        busy = {p.run: p.busy for p in store.points(["latency_ms"])}
        assert busy[runs[1].pk] and not any(p.busy for p in store.points(["flops"]))


def test_a_history_that_cannot_take_the_run_is_exit_2_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "quiet")
    matrix = write_matrix(tmp_path, rows=4)
    bad = tmp_path / "h.sqlite"
    bad.write_bytes(b"garbage" * 200)
    argv = ["run", "--matrix", str(matrix), "--baselines", str(tmp_path / "bl"), "--report-dir", str(tmp_path / "r")]
    assert main([*argv, "--history", str(bad)]) == 2
    assert "not a usable SQLite database" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before the first variant, not after all of them


def test_a_history_that_refuses_the_run_at_the_end_is_exit_2_and_the_report_stays(tmp_path, monkeypatch, capsys):
    from perfsuite.history import ingest
    from perfsuite.history.store import HistoryError

    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "quiet")
    matrix = write_matrix(tmp_path, rows=4)

    def refuse(target, report_file):
        raise HistoryError(f"history {target}: the server went away")

    monkeypatch.setattr(ingest, "append_run", refuse)
    argv = ["run", "--matrix", str(matrix), "--baselines", str(tmp_path / "bl"), "--report-dir", str(tmp_path / "r")]
    assert main([*argv, "--history", str(tmp_path / "h.sqlite")]) == 2
    assert "the server went away" in capsys.readouterr().err
    assert (tmp_path / "r" / "report.json").is_file()


TEST_MODULE = """
import pytest
from perfsuite.plugin import assert_outcome

PERFSUITE_MATRIX = {matrix!r}
pytestmark = pytest.mark.perf


def test_variant(perf_outcome):
    assert_outcome(perf_outcome)
"""


def test_the_plugin_appends_with_perfsuite_history(pytester, monkeypatch):
    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "quiet")
    pytester.makeini("[pytest]\nmarkers =\n    cpu: cpu\n    perf: perf\n")
    matrix = write_matrix(pytester.path, rows=4)
    pytester.makepyfile(test_tier=TEST_MODULE.format(matrix=str(matrix)))
    db = pytester.path / "h.sqlite"
    args = [
        "-p",
        "no:cacheprovider",
        "--perfsuite-baselines",
        str(pytester.path / "bl"),
        "--perfsuite-history",
        str(db),
    ]
    result = pytester.runpytest_subprocess(*args, "--perfsuite-rebaseline")
    result.stdout.fnmatch_lines(["*history: run * figures) added to*"])
    with HistoryStore(str(db)) as store:
        assert [r.kind for r in store.runs()] == ["rebaseline"]


def test_compare_json_carries_the_base_commit_and_reads_as_head_over_base(tmp_path):
    from perfsuite.compare.protocol import CompareSettings, Side, VariantComparison
    from perfsuite.compare.report import write_reports
    from perfsuite.report.metadata import run_metadata
    from perfsuite.stats.intervals import RatioEstimate
    from perfsuite.variant import Variant

    result = VariantComparison(Variant("tiny-llama3", "fp32", "sdpa", "sorted"), "slower")
    result.estimate = RatioEstimate(1.25, 1.2, 1.3, 6, 0.95)
    sides = (Side("A", ("python",), {}, "revision main", "f" * 40), Side("B", ("python",), {}, "this checkout"))
    run = run_metadata("compare", "cpu", "cpu-test-2c")
    write_reports([result], sides, {}, CompareSettings(), tmp_path, run)
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["run"]["kind"] == "compare" and data["sides"]["A"]["revision"] == "f" * 40
    (point,) = from_compare(data, "compare.json").points
    assert point.metric == "head_over_base"
    assert (point.value, point.low, point.high) == (1.25, 1.2, 1.3)


def test_compare_base_puts_the_base_on_side_a_so_b_slower_is_a_regression_of_head(tmp_path):
    import argparse
    import contextlib

    from perfsuite.cli.compare import sides

    args = argparse.Namespace(python=None, pin=None, base="HEAD")
    with contextlib.ExitStack() as stack:
        a, b = sides(args, stack, lambda _text: None)
        assert a.name == "A" and len(a.revision) == 40 and a.env["PYTHONPATH"]
        assert b.name == "B" and b.description.startswith("this checkout") and not b.revision
