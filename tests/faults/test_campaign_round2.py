"""The fault campaign, round 2 (issue #24): files that wrote where they should not or crashed
instead of refusing, options accepted that should not be, sides that cannot run, interrupts,
and a second runner's rebaseline. Each is tried through the CLI as a user meets it: exit 2 with
one line naming the file, field or option (no traceback), and every stored baseline - the
project's and the case's own - byte-identical afterwards.

    pytest tests/faults -v        # the table in docs/reliability.md comes from this run
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perfsuite.cli import main
from tests.conftest import gfm_tables, write_matrix
from tests.faults.test_campaign import PROJECT_BASELINES, _tree_digest

VARIANT = "tiny-llama3-fp32-sdpa-sorted"


@pytest.fixture(scope="module", autouse=True)
def project_baselines_unchanged():
    before = _tree_digest(PROJECT_BASELINES)
    yield
    assert _tree_digest(PROJECT_BASELINES) == before, "the campaign changed a project baseline"


def _exit_2_naming(capsys, argv, *names) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for name in names:
        assert name in err, (name, err)
    return err


def _usage_error(capsys, argv, *names) -> str:
    """argparse's refusal: exit 2 before anything runs, naming the option."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for name in names:
        assert name in err, (name, err)
    return err


# -- migrate-baselines -------------------------------------------------------------------------
def _v1(variant=VARIANT, key="cpu-test-2c", **changes):
    record = {
        "schema": 1,
        "variant": variant,
        "machine_key": key,
        "recorded_at": "2026-11-27T00:00:00+00:00",
        "environment": {"torch": "2.13.0"},
        "settings": {"rows": 4, "tier": "cpu"},
        "work": {"rows": 4, "batches": 2, "real_tokens": 10, "processed_tokens": 12, "flops": 1, "weight_bytes": 8},
        "latency": {"median_s": 0.1, "samples_s": [0.1, 0.1]},
        "quality": {"log_loss": 1.0, "accuracy": 0.5},
        "tolerances": {"latency_ratio": 0.5},
    }
    for key_path, value in changes.items():
        part, _, field = key_path.partition("__")
        if field:
            record[part][field] = value
        else:
            record[part] = value
    return record


def _write_v1(root: Path, record: dict, key: str = "cpu-test-2c", name: str = VARIANT) -> Path:
    path = root / key / "cpu" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


MIGRATE_FAULTS = {
    "traversal in variant": ({"variant": "../../../../planted"}, "field 'variant'"),
    "work counter not a number": ({"work__rows": "many"}, "work.rows"),
    "variant not a string": ({"variant": ["a"]}, "'variant' has the wrong type"),
    "machine_key of another folder": ({"machine_key": "cpu-elsewhere-2c"}, "field 'machine_key'"),
}


@pytest.mark.parametrize("fault", list(MIGRATE_FAULTS))
def test_migrate_refuses_a_hostile_schema_1_record_naming_file_and_field(fault, tmp_path, capsys):
    changes, field = MIGRATE_FAULTS[fault]
    root = tmp_path / "deep" / "a" / "b" / "bl"
    good = _write_v1(root, _v1(), name="tiny-llama3-bf16-sdpa-sorted")
    bad = _write_v1(root, _v1(**changes))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    _exit_2_naming(capsys, ["migrate-baselines", "--baselines", str(root)], str(bad), field)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, "a refused migration wrote something"  # the good record was not half-migrated
    assert good in after


def test_migrate_of_a_folder_that_does_not_exist_says_so(tmp_path, capsys):
    _exit_2_naming(capsys, ["migrate-baselines", "--baselines", str(tmp_path / "typo")], "no such baselines folder")


# -- merge -------------------------------------------------------------------------------------
def _shard(tmp_path: Path, name: str, entry: dict | str, **top) -> Path:
    path = tmp_path / f"{name}.json"
    if isinstance(entry, str):
        path.write_text(entry)
        return path
    path.write_text(json.dumps({"machine_key": "cpu-a-2c", "variants": [entry], "relative": [], **top}))
    return path


GOOD_ENTRY = {"variant": VARIANT, "status": "pass", "cells": [VARIANT, "pass", "1.0"]}
MERGE_FAULTS = {
    "variant id a list": ({**GOOD_ENTRY, "variant": ["x"]}, "variants[0].variant must be a string"),
    "missing variant": ({k: v for k, v in GOOD_ENTRY.items() if k != "variant"}, "variants[0].variant"),
    "cells not strings": ({**GOOD_ENTRY, "cells": [1, {"a": 2}]}, "variants[0].cells must be strings"),
    "NaN in a figure": ({**GOOD_ENTRY, "median_ms": float("nan")}, "variants[0].median_ms is NaN"),
    "nested 100,000 deep": ('{"variants": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
}


@pytest.mark.parametrize("fault", list(MERGE_FAULTS))
def test_merge_refuses_a_broken_shard_naming_file_and_field(fault, tmp_path, capsys):
    entry, field = MERGE_FAULTS[fault]
    good = _shard(tmp_path, "good", {**GOOD_ENTRY, "variant": "other", "cells": ["other", "pass"]})
    bad = _shard(tmp_path, "bad", entry)
    out = tmp_path / "merged"
    _exit_2_naming(capsys, ["merge", str(good), str(bad), "--out", str(out)], str(bad), field)
    assert not out.exists()


def test_merge_onto_an_existing_file_is_a_usage_error(tmp_path, capsys):
    shard = _shard(tmp_path, "s", GOOD_ENTRY)
    out = tmp_path / "taken.txt"
    out.write_text("mine")
    _exit_2_naming(capsys, ["merge", str(shard), "--out", str(out)], "--out", "a file, not a folder")
    assert out.read_text() == "mine"


def test_merged_report_is_strict_json_and_its_tables_render_on_github(tmp_path, capsys):
    a = _shard(tmp_path, "a", {**GOOD_ENTRY, "cells": [VARIANT, "pass", "a | b"]})
    b = _shard(tmp_path, "b", {"variant": "v2", "status": "fail", "cells": ["v2", "fail", "x"]})
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 1  # v2 failed
    text = (tmp_path / "m" / "report.json").read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in merged report.json"))
    (table,) = gfm_tables((tmp_path / "m" / "report.md").read_text())
    assert table[1][:3] == [VARIANT, "pass", "a | b"] and all(len(row) == len(table[0]) for row in table)


# -- a user matrix's [tier] and models -----------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "says"),
    [('"16"', "must be a whole number"), ("-5", "must be a whole number of at least 1"), ("true", "whole number")],
)
@pytest.mark.parametrize("command", ["run", "matrix"])
def test_a_bad_tier_rows_is_exit_2_naming_the_field(command, value, says, tmp_path, capsys):
    toml = write_matrix(tmp_path).read_text().replace("rows = 4", f"rows = {value}")
    matrix = tmp_path / "bad.toml"
    matrix.write_text(toml)
    _exit_2_naming(capsys, [command, "--matrix", str(matrix), "--baselines", str(tmp_path / "bl")], "[tier] rows", says)


def test_more_rows_than_the_file_has_runs_what_it_has_and_says_so(tmp_path, capsys):
    from tests.faults.test_campaign import HEADER, _line

    data = tmp_path / "three.csv"
    data.write_text(HEADER + "".join(_line(i) for i in range(1, 4)))
    matrix = write_matrix(tmp_path, rows=1_000_000_000)
    argv = ["run", "--matrix", str(matrix), "--data", str(data), "--baselines", str(tmp_path / "bl")]
    assert main([*argv, "--report-dir", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "WARNING: rows 1000000000 asked ([tier] rows or --rows), but the file has only 3 usable rows" in err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["variants"][0]["measurement"]["settings"]["rows"] == 3
    (table,) = gfm_tables((tmp_path / "r" / "report.md").read_text())  # renders on GitHub
    assert table[1][0] == VARIANT and all(len(row) == len(table[0]) for row in table)


def test_a_config_that_would_build_a_huge_miniature_is_refused_before_anything_is_built(tmp_path, capsys):
    import time

    from perfsuite.models.specs import get_spec

    config = {"model_type": "llama", **get_spec("llama3-8b").config, "num_hidden_layers": 100_000}
    (tmp_path / "config.json").write_text(json.dumps(config))
    matrix = tmp_path / "huge.toml"
    matrix.write_text(
        '[tier]\nrows = 4\n[[models]]\nname = "huge"\nconfig = "config.json"\n'
        '[axes]\ndtype = ["fp32"]\nattention = ["sdpa"]\npadding = ["sorted"]\n'
    )
    cache = Path(os.environ["PERFSUITE_CACHE"])
    before = sorted(cache.rglob("*")) if cache.exists() else []
    t0 = time.perf_counter()
    _exit_2_naming(capsys, ["run", "--matrix", str(matrix)], "num_hidden_layers", "9524 miniature layers (at most 24)")
    assert time.perf_counter() - t0 < 60
    assert (sorted(cache.rglob("*")) if cache.exists() else []) == before


# -- compare: options and sides ------------------------------------------------------------------
@pytest.fixture
def no_workers(monkeypatch):
    """Bad options must be refused before any worker starts."""

    def refuse(*_a, **_k):
        raise AssertionError("a worker was started")

    monkeypatch.setattr("perfsuite.compare.protocol.WorkerProcess.__init__", refuse)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-slowdown", "-1"),
        ("--max-slowdown", "nan"),
        ("--passes", "0"),
        ("--max-pairs", "0"),
        ("--min-pairs", "1"),
    ],
)
def test_a_bad_compare_option_is_refused_before_the_workers_start(option, value, no_workers, capsys):
    _usage_error(capsys, ["compare", "--python", sys.executable, "-k", VARIANT, option, value], option)


def test_max_pairs_below_min_pairs_is_refused_before_the_workers_start(no_workers, capsys):
    argv = ["compare", "--python", sys.executable, "-k", VARIANT, "--min-pairs", "6", "--max-pairs", "4"]
    _exit_2_naming(capsys, argv, "--max-pairs 4 is below --min-pairs 6")


def test_a_side_that_imports_perfsuite_but_lacks_torch_is_bad_input_naming_the_side(tmp_path, capsys):
    import perfsuite

    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    only = tmp_path / "only-perfsuite"  # perfsuite alone on the path: no numpy, no torch
    only.mkdir()
    (only / "perfsuite").symlink_to(Path(perfsuite.__file__).parent)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "perfsuite-only.pth").write_text(f"{only}\n")
    matrix = write_matrix(tmp_path)
    argv = ["compare", "--python", str(venv / "bin" / "python"), "--matrix", str(matrix), "-k", VARIANT]
    err = _exit_2_naming(
        capsys, [*argv, "--report-dir", str(tmp_path / "r")], "side B", "cannot run the compare worker"
    )
    assert "No module named" in err


# -- interrupts ------------------------------------------------------------------------------------
def test_ctrl_c_in_compare_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    def interrupted(self, *_a):
        raise KeyboardInterrupt

    monkeypatch.setattr("perfsuite.compare.harness.Comparison.check_sides", interrupted)
    matrix = write_matrix(tmp_path)
    assert main(["compare", "--python", sys.executable, "--matrix", str(matrix), "-k", VARIANT]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["perfsuite: interrupted"]


def test_ctrl_c_in_bisect_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    def interrupted(*_a):
        raise KeyboardInterrupt

    monkeypatch.setattr("perfsuite.compare.bisection.index_versions", interrupted)
    matrix = write_matrix(tmp_path)
    assert main(["bisect", "transformers", "5.0.0", "5.1.0", "--matrix", str(matrix), "-k", VARIANT]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["perfsuite: interrupted"]


# -- a second runner's rebaseline ----------------------------------------------------------------
def test_a_second_machine_rebaseline_leaves_confirmed_portable_records_alone(tmp_path, monkeypatch, capsys):
    matrix = write_matrix(tmp_path, rows=4)
    argv = ["rebaseline", "--matrix", str(matrix), "--baselines", str(tmp_path / "bl"), "--report-dir", str(tmp_path)]
    monkeypatch.setenv("PERFSUITE_MACHINE_KEY", "cpu-first-runner-2c")
    assert main(argv) == 0
    portable = tmp_path / "bl" / "portable" / "unit" / f"{VARIANT}.json"
    stored = (portable.read_bytes(), portable.stat().st_mtime_ns)
    capsys.readouterr()

    monkeypatch.setenv("PERFSUITE_MACHINE_KEY", "cpu-second-runner-2c")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (portable.read_bytes(), portable.stat().st_mtime_ns) == stored
    assert "portable records: 0 changed, 0 new, 1 confirmed (left as they were)" in out
    assert (tmp_path / "bl" / "cpu-second-runner-2c" / "unit" / f"{VARIANT}.json").is_file()

    assert main([*argv, "--rewrite-portable"]) == 0
    assert "1 confirmed (rewritten as asked)" in capsys.readouterr().out
    assert portable.stat().st_mtime_ns != stored[1]


def test_a_rebaseline_that_changes_a_portable_value_rewrites_it_and_names_the_change(tmp_path, capsys):
    matrix = write_matrix(tmp_path, rows=4)
    argv = ["rebaseline", "--matrix", str(matrix), "--baselines", str(tmp_path / "bl"), "--report-dir", str(tmp_path)]
    assert main(argv) == 0
    portable = tmp_path / "bl" / "portable" / "unit" / f"{VARIANT}.json"
    record = json.loads(portable.read_text())
    record["work"]["flops"] += 1  # as if the code had changed the work
    portable.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "portable records: 1 changed, 0 new, 0 confirmed" in out
    assert f"changed: {VARIANT}: changed (work.flops {record['work']['flops']} -> {record['work']['flops'] - 1})" in out
    assert json.loads(portable.read_text())["work"]["flops"] == record["work"]["flops"] - 1
