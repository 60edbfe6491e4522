"""The Kaggle loader survives what real files contain and says what it skipped and why."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfsuite.data.loader import DataError, load_arena_csv
from perfsuite.data.sample import COLUMNS, render_csv


def _row(i, prompt='["hi"]', a='["a"]', b='["b"]', labels=("1", "0", "0")):
    return dict(zip(COLUMNS, [str(i), "m1", "m2", prompt, a, b, *labels], strict=True))


def _write(tmp_path: Path, rows) -> Path:
    path = tmp_path / "train.csv"
    path.write_text(render_csv(rows), encoding="utf-8")
    return path


def test_null_empty_and_blank_turns_are_repaired_and_counted(tmp_path):
    path = _write(tmp_path, [_row(1, a="[null]"), _row(2, b="[]"), _row(3, prompt='[""]')])
    rows, report = load_arena_csv(path)
    assert len(rows) == 3 and not report.skipped
    assert rows[0].response_a == ("",) and rows[1].response_b == ("",) and rows[2].prompt == ("",)
    assert sum(report.repairs.values()) == 2  # [""] is already valid text


def test_lone_surrogate_is_replaced_not_fatal(tmp_path):
    path = _write(tmp_path, [_row(1, prompt=json.dumps(["x \ud83d y"]))])
    rows, report = load_arena_csv(path)
    assert rows[0].prompt == ("x \ufffd y",)
    assert "lone surrogate" in report.summary()


def test_bad_rows_are_skipped_with_line_and_reason(tmp_path):
    path = _write(
        tmp_path,
        [_row(1), _row(2, a="not json"), _row(3, b='{"a": 1}'), _row(4, labels=("1", "1", "0")), _row(5)],
    )
    rows, report = load_arena_csv(path)
    assert [r.row_id for r in rows] == ["1", "5"]
    reasons = dict(report.skipped)
    assert "response_a is not JSON" in reasons[3] and "id 2" in reasons[3]
    assert "not a list" in reasons[4]
    assert "not one-hot" in reasons[5]
    assert "3 skipped" in report.summary()


def test_test_csv_without_labels_loads_with_no_label(tmp_path):
    path = tmp_path / "test.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "response_a", "response_b"])
        writer.writerow(["7", '["p"]', '["a"]', '["b"]'])
    rows, _ = load_arena_csv(path)
    assert rows[0].label is None


def test_missing_columns_name_the_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,prompt\n1,[]\n")
    with pytest.raises(DataError, match=r"bad\.csv: missing column\(s\) response_a, response_b"):
        load_arena_csv(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        load_arena_csv(tmp_path / "nope.csv")


def test_swapped_row_exchanges_responses_and_label():
    rows, _ = load_arena_csv(Path(__file__).parents[2] / "perfsuite" / "data" / "sample_arena.csv", limit=3)
    for row in rows:
        s = row.swapped()
        assert (s.response_a, s.response_b) == (row.response_b, row.response_a)
        assert s.label == {0: 1, 1: 0, 2: 2}[row.label]


turn = st.one_of(st.none(), st.text(alphabet=st.characters(codec=None), max_size=40))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(prompt=st.lists(turn, max_size=3), a=st.lists(turn, max_size=3), b=st.lists(turn, max_size=3))
def test_loader_survives_arbitrary_unicode_and_nulls(tmp_path, prompt, a, b):
    path = _write(tmp_path, [_row(1, json.dumps(prompt), json.dumps(a), json.dumps(b))])
    rows, report = load_arena_csv(path)
    assert report.rows_read == 1
    assert len(rows) + len(report.skipped) == 1
    for row in rows:
        for text in row.prompt + row.response_a + row.response_b:
            text.encode("utf-8")  # always encodable after repair
