"""The CPU tier: one case per relative bound (an interleaved ratio, portable), one per tiny-model
variant (work and quality bounds against the baselines) and, last, the run's latency decision
over every variant against this machine's records.

The relative bounds run first, in a fresh process: after the flex_attention variants,
torch.compile's background workers were seen to disturb timings (one in-tier
gemma2-vs-llama3 ratio read 0.91 where it reads 1.15-1.29 alone).
"""

import pytest

from perfsuite.plugin import assert_latency, assert_outcome, assert_pair_outcome

PERFSUITE_MATRIX = "cpu"
pytestmark = pytest.mark.perf


def test_relative_bound(perf_pair_outcome):
    assert_pair_outcome(perf_pair_outcome)


def test_variant_within_bounds(perf_outcome):
    assert_outcome(perf_outcome)


def test_latency_decision(perf_latency):
    """After the variants: each one's latency against its record, the run's phase divided out."""
    assert_latency(perf_latency)
