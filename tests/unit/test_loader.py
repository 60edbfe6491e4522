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
    reasons = {s.line: s for s in report.skipped}
    assert "response_a is not JSON" in reasons[3].reason and reasons[3].row_id == "2"
    assert "not a list" in reasons[4].reason
    assert "not one-hot" in reasons[5].reason
    assert "3 skipped" in report.summary()
    assert "    line 3 (id 2): response_a is not JSON" in report.summary()


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


def _raw(tmp_path: Path, text: str | bytes, name: str = "raw.csv") -> Path:
    path = tmp_path / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


HEADER = "id,model_a,model_b,prompt,response_a,response_b,winner_model_a,winner_model_b,winner_tie\n"


def _line(i, prompt='"[""hi""]"', labels="1,0,0"):
    return f'{i},m1,m2,{prompt},"[""a""]","[""b""]",{labels}\n'


def test_any_exception_in_a_row_skips_only_that_row_with_its_line_and_id(tmp_path):
    deep = '"' + "[" * 100_000 + "]" * 100_000 + '"'
    text = HEADER + _line(1) + _line(2, labels="1e999,0,0") + _line(3, prompt=deep) + _line(4)
    rows, report = load_arena_csv(_raw(tmp_path, text))
    assert [r.row_id for r in rows] == ["1", "4"]
    by_id = {s.row_id: s for s in report.skipped}
    assert by_id["2"].line == 3 and "not one-hot" in by_id["2"].reason
    assert by_id["3"].line == 4 and "RecursionError" in by_id["3"].reason


def test_reported_lines_are_physical_lines_of_the_file(tmp_path):
    multi = '"[""first"",\n""second"",\n""third""]"'  # one field over three physical lines
    text = HEADER + _line(1, prompt=multi) + _line(2, prompt='"not json"')
    rows, report = load_arena_csv(_raw(tmp_path, text))
    assert len(rows) == 1 and report.skipped[0].line == 5  # header 1, row 1 on 2-4, row 2 on 5


def test_a_byte_order_mark_is_read_as_such(tmp_path):
    rows, report = load_arena_csv(_raw(tmp_path, ("\ufeff" + HEADER + _line(1)).encode("utf-8")))
    assert [r.row_id for r in rows] == ["1"] and not report.skipped


def test_bytes_that_are_not_utf8_are_a_file_error_naming_the_line(tmp_path):
    data = (HEADER + _line(1)).encode() + _line(2).encode().replace(b"hi", b"h\xe9")
    with pytest.raises(DataError, match=r"raw\.csv: line 3: not UTF-8 \(byte 0xe9\)"):
        load_arena_csv(_raw(tmp_path, data))


def test_an_unterminated_quote_is_a_file_error_not_a_swallowed_file(tmp_path):
    stray = '2,m1,m2,"[""never closed,x,y,1,0,0\n'
    with pytest.raises(DataError, match=r"raw\.csv: line 3: a quoted field is never closed"):
        load_arena_csv(_raw(tmp_path, HEADER + _line(1) + stray))
    with pytest.raises(DataError, match=r"raw\.csv: line 3: quoting breaks in the row starting here"):
        load_arena_csv(_raw(tmp_path, HEADER + _line(1) + stray + _line(3) + _line(4)))


def test_duplicate_ids_are_skipped_naming_the_first(tmp_path):
    rows, report = load_arena_csv(_raw(tmp_path, HEADER + _line(7) + _line(8) + _line(7)))
    assert [r.row_id for r in rows] == ["7", "8"]
    assert report.skipped[0].describe() == "line 4 (id 7): duplicate id 7 (first at line 2)"


def test_short_rows_and_empty_files_are_named(tmp_path):
    rows, report = load_arena_csv(_raw(tmp_path, HEADER + "1,m1,m2\n" + _line(2)))
    assert [r.row_id for r in rows] == ["2"] and "prompt is missing" in report.skipped[0].reason
    with pytest.raises(DataError, match="empty file"):
        load_arena_csv(_raw(tmp_path, "", name="empty.csv"))


def test_the_csv_field_size_limit_is_restored(tmp_path):
    before = csv.field_size_limit()
    load_arena_csv(_raw(tmp_path, HEADER + _line(1)))
    assert csv.field_size_limit() == before


def test_the_summary_lists_the_first_skipped_lines(tmp_path):
    text = HEADER + "".join(_line(i, prompt='"nope"') for i in range(8)) + _line(99)
    _, report = load_arena_csv(_raw(tmp_path, text))
    summary = report.summary()
    assert "9 rows read, 1 kept, 0 values repaired, 8 skipped" in summary
    assert "line 2 (id 0): prompt is not JSON" in summary and "... and 3 more" in summary


def test_file_digest_streams_and_matches_sha256(tmp_path):
    import hashlib

    from perfsuite.fileio import file_digest

    path = _raw(tmp_path, b"x" * (3 << 20) + b"tail")
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
