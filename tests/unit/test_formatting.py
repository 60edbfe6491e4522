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
