"""The perf cases of `pytest --perfsuite-matrix PATH.toml`: a user matrix runs with no test module
of the user's own. The plugin adds this module to the collection and parametrises its two
tests from the matrix (one case per relative bound, one per variant), as tests/perf does for
the bundled tiers.
"""

import pytest

from perfsuite.plugin import USER_MATRIX, assert_latency, assert_outcome, assert_pair_outcome

PERFSUITE_MATRIX = USER_MATRIX  # the plugin reads the path from --perfsuite-matrix
pytestmark = pytest.mark.perf


def test_relative_bound(perf_pair_outcome):
    assert_pair_outcome(perf_pair_outcome)


def test_variant_within_bounds(perf_outcome):
    assert_outcome(perf_outcome)


def test_latency_decision(perf_latency):
    """After the variants: each one's latency against its record, the run's phase divided out."""
    assert_latency(perf_latency)
