"""Padding strategies: exact token accounting, and sorting removes the padding waste."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from perfsuite.data.formatting import EncodedRow
from perfsuite.measure.batching import Padding, batch_rows, count_work


def _rows(lengths):
    return [EncodedRow(str(i), tuple(range(1, n + 1)), 0, 0) for i, n in enumerate(lengths)]


def _row_tokens(batch, r: int, n: int):
    """Row r's n tokens: its padded line, or its stretch of the packed sequence."""
    if batch.packed:
        end = batch.score_at[r]
        return batch.input_ids[0, end - n + 1 : end + 1]
    return batch.input_ids[r, :n]


def test_static_pads_every_batch_to_max_length():
    batches = batch_rows(_rows([3, 5, 2]), 2, Padding.STATIC, max_length=8, pad_id=0)
    assert [b.input_ids.shape[1] for b in batches] == [8, 8]
    w = count_work(batches)
    assert (w.real_tokens, w.processed_tokens) == (10, 24)


def test_dynamic_pads_to_longest_row_of_each_batch():
    w = count_work(batch_rows(_rows([3, 5, 2, 2]), 2, "dynamic", 8, 0))
    assert (w.real_tokens, w.processed_tokens, w.max_seq_len) == (12, 14, 5)


def test_sorted_groups_similar_lengths():
    rows = _rows([8, 1, 8, 1])
    dynamic = count_work(batch_rows(rows, 2, "dynamic", 8, 0))
    sorted_ = count_work(batch_rows(rows, 2, "sorted", 8, 0))
    assert dynamic.processed_tokens == 32 and sorted_.processed_tokens == 18
    assert sorted_.padding_overhead == 1.0


def test_left_padding_puts_tokens_at_the_end():
    (b,) = batch_rows(_rows([2, 4]), 2, "dynamic", 8, pad_id=0, padding_side="left")
    assert b.input_ids[0].tolist() == [0, 0, 1, 2]
    assert b.attention_mask[0].tolist() == [0, 0, 1, 1]


def test_row_longer_than_max_length_is_an_error_naming_the_row():
    with pytest.raises(ValueError, match="row 0 longer than max_length 4"):
        batch_rows(_rows([5]), 1, "static", 4, 0)


@given(st.lists(st.integers(1, 64), min_size=1, max_size=40), st.integers(1, 8))
def test_every_strategy_sees_every_row_once_with_the_same_real_tokens(lengths, batch_size):
    rows = _rows(lengths)
    works = {}
    for padding in Padding:
        batches = batch_rows(rows, batch_size, padding, 64, 0)
        assert sorted(i for b in batches for i in b.row_index) == list(range(len(rows)))
        for b in batches:
            for r, i in enumerate(b.row_index):
                assert torch.equal(_row_tokens(b, r, len(rows[i].input_ids)), torch.tensor(rows[i].input_ids))
        works[padding] = count_work(batches)
    assert len({w.real_tokens for w in works.values()}) == 1
    assert works[Padding.DYNAMIC].processed_tokens <= works[Padding.STATIC].processed_tokens
    assert works[Padding.SORTED].processed_tokens <= works[Padding.STATIC].processed_tokens
    assert works[Padding.PACKED].processed_tokens == works[Padding.PACKED].real_tokens  # no padding at all
    if len(lengths) % batch_size == 0:
        # With full batches, sorted order minimises the sum of batch maxima. (With a short last
        # batch, longest-first - the Kaggle recipe, so an OOM shows at once - can lose a little.)
        assert works[Padding.SORTED].processed_tokens <= works[Padding.DYNAMIC].processed_tokens


@given(st.lists(st.integers(1, 64), min_size=1, max_size=40), st.integers(1, 8), st.integers(64, 400))
def test_token_budget_batches_fit_the_budget_longest_first_and_keep_every_row(lengths, batch_size, budget):
    batches = batch_rows(_rows(lengths), batch_size, Padding.TOKEN_BUDGET, 64, 0, max_batch_tokens=budget)
    assert all(b.input_ids.numel() <= budget for b in batches)
    assert sorted(i for b in batches for i in b.row_index) == list(range(len(lengths)))
    widths = [b.input_ids.shape[1] for b in batches]
    assert widths == sorted(widths, reverse=True)  # longest rows first, in the smallest batches
    order = [i for b in batches for i in b.row_index]
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)
    w = count_work(batches)
    assert w.real_tokens == sum(lengths)


def test_token_budget_puts_long_rows_in_small_batches_and_short_rows_in_large_ones():
    batches = batch_rows(_rows([64, 60, 10, 9, 8, 8, 7, 6]), 2, "token_budget", 64, 0, max_batch_tokens=128)
    assert [len(b.row_index) for b in batches] == [2, 6]  # 2 x 64, then 6 x 10 <= 128
    from perfsuite.measure.batching import padded_shapes

    assert padded_shapes([64, 60, 10, 9, 8, 8, 7, 6], 2, "token_budget", 64, 128) == [(2, 64), (6, 10)]


def test_token_budget_defaults_to_batch_size_times_max_length():
    from perfsuite.measure.batching import padded_shapes

    assert padded_shapes([8] * 10, 2, "token_budget", 16) == [(4, 8), (4, 8), (2, 8)]


def test_a_token_budget_smaller_than_a_row_is_refused():
    with pytest.raises(ValueError, match="max_batch_tokens 10 is smaller than a 12-token row"):
        batch_rows(_rows([12]), 1, "token_budget", 16, 0, max_batch_tokens=10)


def test_a_tier_token_budget_below_max_length_is_refused_naming_the_field(tmp_path, capsys):
    from perfsuite.cli import main
    from tests.conftest import write_matrix

    matrix = write_matrix(tmp_path)
    text = matrix.read_text()
    matrix.write_text(text.replace("[tier]\n", "[tier]\nmax_batch_tokens = 10\n", 1))
    assert main(["matrix", "--matrix", str(matrix)]) == 2
    assert "[tier] max_batch_tokens 10 is below max_length" in capsys.readouterr().err


@given(st.lists(st.integers(1, 64), min_size=1, max_size=40), st.integers(64, 400))
def test_packed_sequences_fit_the_budget_positions_restart_and_each_row_is_read_at_its_end(lengths, budget):
    rows = _rows(lengths)
    batches = batch_rows(rows, 4, Padding.PACKED, 64, 0, max_batch_tokens=budget)
    assert all(b.packed and b.input_ids.shape == (1, b.score_at[-1] + 1) <= (1, budget) for b in batches)
    assert sorted(i for b in batches for i in b.row_index) == list(range(len(lengths)))
    for b in batches:
        starts = [0, *(e + 1 for e in b.score_at[:-1])]
        expected = torch.cat([torch.arange(e - s + 1) for s, e in zip(starts, b.score_at, strict=True)])
        assert torch.equal(b.position_ids[0], expected)  # each row counts from 0: the mask keeps rows apart
        assert [e - s + 1 for s, e in zip(starts, b.score_at, strict=True)] == [lengths[i] for i in b.row_index]
    order = [i for b in batches for i in b.row_index]
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)
    w = count_work(batches)
    assert w.processed_tokens == w.real_tokens == sum(lengths)


def test_packed_batches_are_one_sequence_each_for_the_cost_model():
    from perfsuite.measure.batching import padded_shapes

    assert padded_shapes([64, 60, 10, 9, 8], 2, "packed", 64, 128) == [(1, 124), (1, 27)]
    assert padded_shapes([8] * 5, 2, "packed", 16) == [(1, 32), (1, 8)]  # budget 2 x 16


def test_a_packed_budget_smaller_than_a_row_is_refused():
    with pytest.raises(ValueError, match="max_batch_tokens 10 is smaller than a 12-token row"):
        batch_rows(_rows([12]), 1, "packed", 16, 0, max_batch_tokens=10)


def test_a_packed_row_ending_in_the_pad_id_is_read_where_the_head_reads_it_padded():
    """transformers' classification head reads the rightmost token that is not the pad id; a
    row that ends in EOS, where EOS is the pad id (SmolLM2), is read at the token before it."""
    rows = [EncodedRow("a", (5, 6, 7, 2), 0, 0), EncodedRow("b", (8, 2, 9), 0, 0), EncodedRow("c", (2, 2), 0, 0)]
    (batch,) = batch_rows(rows, 4, "packed", 8, pad_id=2)
    assert batch.row_index == (0, 1, 2)
    assert batch.score_at == (2, 6, 8)  # 7 (before the trailing 2), 9 (its last), and an all-pad row's last
