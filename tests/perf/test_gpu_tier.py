"""The GPU tier: full-size models on a CUDA runner (`pytest -m gpu`); skipped elsewhere with a reason."""

import pytest

from perfsuite.plugin import assert_latency, assert_outcome

PERFSUITE_MATRIX = "gpu"
pytestmark = pytest.mark.perf


def test_variant_within_bounds(perf_outcome):
    assert_outcome(perf_outcome)


def test_latency_decision(perf_latency):
    """After the variants: each one's latency against its record, the run's phase divided out."""
    assert_latency(perf_latency)
