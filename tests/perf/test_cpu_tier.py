"""The CPU tier: one case per tiny-model variant, asserting work, latency and quality bounds."""

import pytest

from perfsuite.plugin import assert_outcome

PERFSUITE_MATRIX = "cpu"
pytestmark = pytest.mark.perf


def test_variant_within_bounds(perf_outcome):
    assert_outcome(perf_outcome)
