"""Log-loss as Kaggle scores it, and latency statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfsuite.stats.metrics import LatencyStats, accuracy, log_loss, symmetrize_tta


def test_perfect_predictions_score_near_zero():
    assert log_loss(np.eye(3), [0, 1, 2]) == pytest.approx(0.0, abs=1e-12)


def test_uniform_predictions_score_ln3():
    assert log_loss(np.full((5, 3), 1 / 3), [0, 1, 2, 0, 1]) == pytest.approx(math.log(3))


def test_confidently_wrong_is_finite_thanks_to_clipping():
    value = log_loss(np.array([[1.0, 0.0, 0.0]]), [1])
    assert math.isfinite(value) and value == pytest.approx(-math.log(1e-15), rel=1e-6)


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.integers(0, 2)), min_size=1))
def test_log_loss_is_finite_and_non_negative(rows):
    probs = np.array([r[:3] for r in rows]) + 1e-9
    value = log_loss(probs, [r[3] for r in rows])
    assert math.isfinite(value) and value >= 0


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="2 predictions for 1 labels"):
        log_loss(np.full((2, 3), 1 / 3), [0])


def test_accuracy_counts_argmax_hits():
    assert accuracy(np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]]), [0, 1]) == 0.5


def test_latency_stats():
    s = LatencyStats((1.0, 2.0, 3.0, 4.0))
    assert s.median == 2.5 and s.iqr == pytest.approx(1.5) and s.spread == pytest.approx(0.6)


probs_strategy = st.lists(
    st.tuples(st.floats(0.01, 1), st.floats(0.01, 1), st.floats(0.01, 1)), min_size=1, max_size=8
).map(lambda rows: np.array([np.array(r) / sum(r) for r in rows]))


@given(probs_strategy, probs_strategy)
def test_tta_symmetrised_prediction_swaps_with_its_input(p, q):
    """Swapping A and B in the input swaps P(A) and P(B) of the symmetrised output."""
    n = min(len(p), len(q))
    p, q = p[:n], q[:n]
    forward = symmetrize_tta(p, q)  # original first, swapped second
    backward = symmetrize_tta(q, p)  # the swapped battle seen as the original
    np.testing.assert_allclose(backward, forward[:, [1, 0, 2]])
    np.testing.assert_allclose(forward.sum(axis=1), 1.0)
