"""The CPU tier: one case per tiny-model variant (work, latency and quality bounds against this
machine's baselines) and one per relative bound (an interleaved ratio, portable)."""

import pytest

from perfsuite.plugin import assert_outcome, assert_pair_outcome

PERFSUITE_MATRIX = "cpu"
pytestmark = pytest.mark.perf


def test_variant_within_bounds(perf_outcome):
    assert_outcome(perf_outcome)


def test_relative_bound(perf_pair_outcome):
    assert_pair_outcome(perf_pair_outcome)
