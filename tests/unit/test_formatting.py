"""Fair-share truncation keeps every part visible and never exceeds max_length."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from perfsuite.data.formatting import PairFormatter, fair_share
from perfsuite.data.loader import ArenaRow
from perfsuite.data.tokenizer import load_tiny_tokenizer


@given(st.lists(st.integers(0, 5000), min_size=1, max_size=5), st.integers(0, 6000))
def test_fair_share_is_water_filling(lengths, budget):
    keep = fair_share(lengths, budget)
    assert all(0 <= k <= n for k, n in zip(keep, lengths, strict=True))
    assert sum(keep) == min(budget, sum(lengths))
    cut = [k for k, n in zip(keep, lengths, strict=True) if k < n]
    if cut:  # parts that were cut got equal shares (within rounding), at least as much as any uncut part
        assert max(cut) - min(cut) <= 1
        # (an uncut part may hold one token more: the rounding remainder is handed out one by one)
        assert all(n <= max(cut) + 1 for k, n in zip(keep, lengths, strict=True) if k == n)


def test_short_parts_keep_everything_long_parts_share():
    assert fair_share([10, 1000, 1000], 310) == [10, 150, 150]


def test_formatter_respects_max_length_and_keeps_all_parts():
    tok = load_tiny_tokenizer()
    fmt = PairFormatter(tok, max_length=128)
    long = "word " * 2000
    row = ArenaRow("1", ("short prompt",), (long,), (long,), 0)
    enc = fmt.encode(row)
    assert len(enc.input_ids) == 128
    assert enc.input_ids[-1] == tok.eos_id
    text = tok.backend.decode(list(enc.input_ids))
    assert "short prompt" in text and "<response_a>:" in text and "<response_b>:" in text
    assert enc.truncated_tokens > 0


def test_short_row_is_not_padded_or_cut():
    tok = load_tiny_tokenizer()
    enc = PairFormatter(tok, max_length=512).encode(ArenaRow("1", ("p",), ("a",), ("b",), 2))
    assert enc.truncated_tokens == 0 and len(enc.input_ids) < 64


def _long_row() -> ArenaRow:
    return ArenaRow("1", ("the prompt opens here",), ("alpha " * 800 + "ENDA",), ("beta " * 800 + "ENDB",), 0)


def test_left_truncation_keeps_the_end_and_right_keeps_the_start():
    tok = load_tiny_tokenizer()
    left = tok.backend.decode(list(PairFormatter(tok, 128, "left").encode(_long_row()).input_ids))
    right = tok.backend.decode(list(PairFormatter(tok, 128, "right").encode(_long_row()).input_ids))
    assert "ENDB" in left and "the prompt" not in left and "<response_b>:" not in left  # 3rd place's side
    assert "the prompt" in right and "<response_b>:" not in right and "ENDB" not in right  # B is cut first


def test_every_truncation_side_keeps_the_same_tokens_per_row_and_short_rows_alike():
    tok = load_tiny_tokenizer()
    short = ArenaRow("2", ("hi",), ("a short answer",), ("another",), 1)
    encoded = {side: PairFormatter(tok, 128, side) for side in ("fair", "left", "right")}
    assert len({len(f.encode(_long_row()).input_ids) for f in encoded.values()}) == 1  # work counts equal
    assert len({f.encode(short).input_ids for f in encoded.values()}) == 1  # nothing to cut: the same ids
    assert {f.encode(_long_row()).input_ids[-1] for f in encoded.values()} == {tok.eos_id}


def test_an_unknown_truncation_side_is_refused_naming_the_field(tmp_path, capsys):
    import pytest

    from perfsuite.cli import main
    from tests.conftest import write_matrix

    matrix = write_matrix(tmp_path)
    text = matrix.read_text().replace("[tier]\n", '[tier]\ntruncation = "middle"\n', 1)
    matrix.write_text(text)
    assert main(["matrix", "--matrix", str(matrix)]) == 2
    err = capsys.readouterr().err
    assert "[tier] truncation = 'middle': must be one of fair, left, right" in err
    with pytest.raises(ValueError, match="truncation 'middle'"):
        PairFormatter(load_tiny_tokenizer(), 128, "middle")


def test_the_comparable_settings_check_names_the_truncation_side():
    from perfsuite.judge.verdict import settings_differ

    assert settings_differ({"rows": 16}, {"rows": 16, "truncation": "left"}) == ["truncation 'fair' -> 'left'"]
    assert settings_differ({"rows": 16}, {"rows": 16}) == []
