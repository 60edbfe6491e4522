"""Property tests on a real miniature: a row's probabilities do not depend on how it is batched.

Batch composition, batch order, padding strategy and padding side must not change any row's
prediction beyond float noise (fp32); a broken pooled-token index or attention mask shows
here first. And the symmetrised TTA prediction swaps P(A) and P(B) when A and B swap.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from perfsuite.data.formatting import PairFormatter
from perfsuite.data.loader import load_arena_csv
from perfsuite.data.sample import SAMPLE_PATH
from perfsuite.data.tokenizer import load_tiny_tokenizer
from perfsuite.measure.batching import batch_rows
from perfsuite.models.factory import load_model, tiny_checkpoint
from perfsuite.models.specs import get_spec
from perfsuite.stats.metrics import symmetrize_tta

N_ROWS = 6


@pytest.fixture(scope="module", params=[("tiny-llama3", "sdpa"), ("tiny-gemma2", "eager")], ids=lambda p: p[0])
def setup(request, tmp_path_factory):
    name, attention = request.param
    tokenizer = load_tiny_tokenizer()
    rows, _ = load_arena_csv(SAMPLE_PATH, limit=N_ROWS)
    formatter = PairFormatter(tokenizer, 160)
    encoded, swapped = formatter.encode_all(rows), formatter.encode_all([r.swapped() for r in rows])
    torch.set_num_threads(1)
    folder = tiny_checkpoint(get_spec(name), tokenizer.pad_id, tmp_path_factory.mktemp("ckpt"))
    model = load_model(get_spec(name), folder, "fp32", attention)
    alone = _probs(model, encoded, list(range(N_ROWS)), 1, "dynamic", "right", tokenizer.pad_id)
    return model, encoded, swapped, tokenizer.pad_id, alone


def _probs(model, encoded, order, batch_size, padding, side, pad_id) -> np.ndarray:
    rows = [encoded[i] for i in order]
    out = np.zeros((len(encoded), 3))
    with torch.inference_mode():
        for b in batch_rows(rows, batch_size, padding, 160, pad_id, side):
            p = torch.softmax(model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits.double(), -1)
            for k, pos in enumerate(b.row_index):
                out[order[pos]] = p[k].numpy()
    return out


@settings(max_examples=8, deadline=None)
@given(
    order=st.permutations(list(range(N_ROWS))),
    batch_size=st.integers(1, 4),
    padding=st.sampled_from(["static", "dynamic", "sorted"]),
    side=st.sampled_from(["right", "left"]),
)
def test_row_probabilities_ignore_batching(setup, order, batch_size, padding, side):
    model, encoded, _, pad_id, alone = setup
    batched = _probs(model, encoded, order, batch_size, padding, side, pad_id)
    np.testing.assert_allclose(batched, alone, atol=2e-5)


def test_tta_prediction_swaps_a_and_b_when_the_responses_swap(setup):
    model, _, swapped, pad_id, alone = setup
    order = list(range(N_ROWS))
    swapped_probs = _probs(model, swapped, order, 2, "sorted", "right", pad_id)
    forward = symmetrize_tta(alone, swapped_probs)
    backward = symmetrize_tta(swapped_probs, alone)
    np.testing.assert_allclose(backward, forward[:, [1, 0, 2]], atol=1e-12)
