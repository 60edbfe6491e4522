"""Sharding a tier over CI runners and merging the shards' reports."""

from __future__ import annotations

import json

import pytest

from perfsuite.cli import main
from perfsuite.judge.checks import Coverage, Verdict
from perfsuite.matrix.shards import parse_shard, shard_assignment
from perfsuite.matrix.tier import MatrixError, load_matrix
from perfsuite.report.outcomes import Outcome
from perfsuite.report.run_report import merge_reports, to_json
from perfsuite.variant import Variant
from tests.conftest import write_matrix


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_variant_lands_in_exactly_one_shard_and_pairs_stay_together(count):
    matrix = load_matrix("cpu")
    assignment = shard_assignment(matrix, count)
    assert set(assignment) == {v.id for v in matrix.variants}
    assert set(assignment.values()) <= set(range(1, count + 1))
    for bound in matrix.relative:
        assert assignment[bound.variant.id] == assignment[bound.reference.id], bound.id
    loads = [list(assignment.values()).count(i) for i in range(1, count + 1)]
    assert max(loads) - min(loads) <= 10  # balanced up to the largest pair group
    assert shard_assignment(matrix, count) == assignment  # deterministic


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "2"])
def test_bad_shard_names_the_value(text):
    with pytest.raises(MatrixError, match="--perfsuite-shard"):
        parse_shard(text)


def _report(tmp_path, name, variants, key, status="pass"):
    outcomes = [
        Outcome(
            Variant("tiny-llama3", "fp32", "sdpa", p),
            Verdict(status, coverage=[Coverage("guard", True), Coverage("latency", False, "no baseline")]),
        )
        for p in variants
    ]
    path = tmp_path / name / "report.json"
    path.parent.mkdir()
    path.write_text(json.dumps(to_json(outcomes, key, shard=name)))
    return path


def test_merge_joins_shards_into_one_table(tmp_path):
    a = _report(tmp_path, "1of2", ["static", "dynamic"], "cpu-a-2c")
    b = _report(tmp_path, "2of2", ["sorted"], "cpu-b-4c", status="fail")
    text, folder, failed = merge_reports([a, b], tmp_path / "merged")
    assert failed and "3 variants from 2 shards: 1 fail, 2 pass" in text
    merged = json.loads((folder / "report.json").read_text())
    assert [v["variant"] for v in merged["variants"]] == [
        "tiny-llama3-fp32-sdpa-static",
        "tiny-llama3-fp32-sdpa-dynamic",
        "tiny-llama3-fp32-sdpa-sorted",
    ]
    assert merged["variants"][2]["machine_key"] == "cpu-b-4c"
    assert "cpu-b-4c" in (folder / "report.md").read_text()


def test_merge_refuses_a_variant_reported_twice(tmp_path):
    a = _report(tmp_path, "1of2", ["static"], "cpu-a-2c")
    b = _report(tmp_path, "2of2", ["static"], "cpu-b-2c")
    with pytest.raises(ValueError, match=r"variant tiny-llama3-fp32-sdpa-static is in both .*1of2.* and .*2of2"):
        merge_reports([a, b], tmp_path / "merged")


def test_merge_cli_exit_codes(tmp_path, capsys):
    a = _report(tmp_path, "1of2", ["static"], "cpu-a-2c")
    assert main(["merge", str(a), "--out", str(tmp_path / "m")]) == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{ no")
    assert main(["merge", str(a), str(broken), "--out", str(tmp_path / "m")]) == 2
    assert "broken.json: not a readable report.json" in capsys.readouterr().err


def test_plugin_shards_partition_the_cases(pytester):
    from tests.unit.test_plugin import INI, TEST_MODULE

    pytester.makeini(INI)
    matrix = write_matrix(pytester.path, rows=4, attentions=("sdpa", "eager"), paddings=("static", "sorted"))
    pytester.makepyfile(test_tier=TEST_MODULE.format(matrix=str(matrix)))
    seen = []
    for shard in ("1/2", "2/2"):
        result = pytester.runpytest_subprocess(
            "--collect-only", "-q", "-p", "no:cacheprovider", f"--perfsuite-shard={shard}"
        )
        seen.append({line.split("[")[1].rstrip("]") for line in result.outlines if "::" in line})
    tier = {"unit"}  # the tier's latency decision: in every shard, over that shard's variants
    assert seen[0] > tier and seen[1] > tier and seen[0] & seen[1] == tier
    assert len(seen[0] | seen[1]) == 4 + 1
    bad = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", "--perfsuite-shard=3/2")
    assert bad.ret == 4 and "i must be within 1..n" in bad.stderr.str()
