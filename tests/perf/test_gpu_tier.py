"""The GPU tier: full-size models on a CUDA runner (`pytest -m gpu`); skipped elsewhere with a reason."""

import pytest

from perfsuite.plugin import assert_outcome

PERFSUITE_MATRIX = "gpu"
pytestmark = pytest.mark.perf


def test_variant_within_bounds(perf_outcome):
    assert_outcome(perf_outcome)
