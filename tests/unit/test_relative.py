"""Relative bounds: interleaved timing, the ratio's interval, the band check, matrix entries."""

from __future__ import annotations

import numpy as np
import pytest

from perfsuite.judge.checks import check_relative
from perfsuite.matrix.tier import MatrixError, RelativeBound, load_matrix
from perfsuite.measure.runner import time_interleaved
from perfsuite.session import PerfSession, SessionConfig
from perfsuite.stats.intervals import RatioEstimate, ratio_interval
from perfsuite.variant import Variant
from tests.conftest import write_matrix

RELATIVE = """
[[relative]]
name = "sorted-vs-static"
match = "*-sorted"
against = {{ padding = "static" }}
max_ratio = {max_ratio}
reason = "sorting removes padding"
"""


def _bound(lo=None, hi=None) -> RelativeBound:
    a, b = Variant("tiny-llama3", "fp32", "sdpa", "sorted"), Variant("tiny-llama3", "fp32", "sdpa", "static")
    return RelativeBound("sorted-vs-static", a, b, lo, hi, "why")


def test_ratio_interval_recovers_a_known_ratio_under_shared_drift():
    rng = np.random.default_rng(1)
    drift = rng.uniform(0.6, 1.6, 15)  # the machine's speed moves between rounds, both sides alike
    b = list(0.2 * drift * rng.normal(1, 0.02, 15))
    a = list(0.2 * 0.5 * drift * rng.normal(1, 0.02, 15))
    est = ratio_interval(a, b)
    assert est.low <= 0.5 <= est.high
    assert est.high / est.low < 1.1  # drift cancels: the interval stays narrow
    assert est.pairs == 15


def test_ratio_interval_of_identical_sides_is_one():
    est = ratio_interval([0.3, 0.31, 0.29], [0.3, 0.31, 0.29])
    assert est.ratio == est.low == est.high == 1.0


@pytest.mark.parametrize(
    ("a", "b"), [([1.0], [1.0, 2.0]), ([], []), ([1.0, -1.0], [1.0, 1.0]), ([1.0], [float("nan")])]
)
def test_ratio_interval_rejects_unusable_samples(a, b):
    with pytest.raises(ValueError):
        ratio_interval(a, b)


@pytest.mark.parametrize(
    ("low", "high", "ok"),
    [(0.5, 0.65, True), (0.65, 0.75, True), (0.71, 0.8, False)],
)
def test_relative_bound_fails_only_when_the_whole_interval_is_above(low, high, ok):
    check = check_relative(_bound(hi=0.7), RatioEstimate((low + high) / 2, low, high, 9, 0.95))
    assert check.ok is ok
    assert check.kind == "relative"
    assert "tiny-llama3-fp32-sdpa-sorted / tiny-llama3-fp32-sdpa-static" in check.detail


def test_relative_bound_with_a_band_fails_below_it():
    check = check_relative(_bound(lo=0.9, hi=2.0), RatioEstimate(0.8, 0.75, 0.85, 9, 0.95))
    assert not check.ok
    assert check.allowed == "[0.9x, 2x]"
    assert "0.800x [0.750, 0.850]" in check.describe()


class _Fake:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def one_pass(self):
        self.log.append(self.name)


def test_interleaving_alternates_the_order_of_each_pair():
    log: list[str] = []
    a_times, b_times = time_interleaved(_Fake("A", log), _Fake("B", log), rounds=4, warmup_rounds=1)
    assert log == ["A", "B", "A", "B", "B", "A", "A", "B", "B", "A"]
    assert len(a_times) == len(b_times) == 4


def test_matrix_expands_relative_entries_against_the_named_axis(tmp_path):
    path = write_matrix(tmp_path, paddings=("static", "sorted"), extra=RELATIVE.format(max_ratio=0.7))
    (bound,) = load_matrix(str(path)).relative
    assert (bound.variant.id, bound.reference.id) == ("tiny-llama3-fp32-sdpa-sorted", "tiny-llama3-fp32-sdpa-static")
    assert bound.max_ratio == 0.7 and bound.min_ratio is None
    assert bound.id == "sorted-vs-static:tiny-llama3-fp32-sdpa-sorted"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "x"\nmatch = "*-sorted"\nagainst = { padding = "dynamic" }\nmax_ratio = 1', "is not in this matrix"),
        ('name = "x"\nmatch = "*-sorted"\nagainst = { padding = "static" }', "needs min_ratio, max_ratio"),
        ('name = "x"\nmatch = "*-sorted"\nagainst = { size = "big" }\nmax_ratio = 1', "'against' may set only"),
        ('name = "x"\nmatch = "nothing-*"\nagainst = { padding = "static" }\nmax_ratio = 1', "names no variant"),
        ('name = "x"\nmatch = "*-sorted"\nagainst = { padding = "static" }\nmin_ratio = 2\nmax_ratio = 1', "below"),
        ('name = "x"\nmatch = "*-sorted"\nagainst = { padding = "static" }\nmax_ratio = -1', "positive"),
        ('name = "x"\nmatch = "*-sorted"\nagainst = { padding = "sorted" }\nmax_ratio = 1', "against itself"),
    ],
)
def test_bad_relative_entries_name_the_file_and_entry(tmp_path, entry, message):
    path = write_matrix(tmp_path, paddings=("static", "sorted"), extra="\n[[relative]]\n" + entry + "\n")
    with pytest.raises(MatrixError, match=r"unit\.toml: \[\[relative\]\] #1") as info:
        load_matrix(str(path))
    assert message in str(info.value)


def test_session_measures_a_pair_interleaved_and_judges_the_band(tmp_path):
    extra = RELATIVE.format(max_ratio=3) + RELATIVE.format(max_ratio=0.01).replace("sorted-vs-static", "absurd")
    path = write_matrix(tmp_path, rows=6, paddings=("static", "sorted"), max_length=256, extra=extra)
    matrix = load_matrix(str(path))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl"))
    real, absurd = (session.run_relative(b) for b in matrix.relative)
    assert len(real.samples_s[0]) == len(real.samples_s[1]) == matrix.settings.relative_rounds
    assert real.verdict.status == "pass", real.verdict.message(real.bound.id)
    assert real.estimate.low <= real.estimate.ratio <= real.estimate.high
    assert absurd.verdict.status == "fail"
    assert "[relative] absurd FAILED" in absurd.verdict.message(absurd.bound.id)
    assert session.pair_outcomes == [real, absurd]


def test_a_pair_with_a_side_that_cannot_run_is_a_visible_skip(tmp_path):
    extra = (
        '\n[[relative]]\nname = "fa2-vs-eager"\nmatch = "*-flash_attention_2-*"\nagainst = { attention = "eager" }\n'
        "max_ratio = 1\n"
    )
    path = write_matrix(tmp_path, models=("tiny-gemma2",), attentions=("flash_attention_2", "eager"), extra=extra)
    matrix = load_matrix(str(path))
    outcome = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl")).run_relative(matrix.relative[0])
    assert outcome.verdict.status == "skip"
    assert "tiny-gemma2-fp32-flash_attention_2-sorted does not run here" in outcome.verdict.reason
    assert "flash_attention_2 needs a CUDA GPU" in outcome.verdict.reason


def test_on_other_data_a_pair_is_measured_and_shown_not_judged(tmp_path):
    import shutil

    from perfsuite.data.sample import SAMPLE_PATH

    data = shutil.copy(SAMPLE_PATH, tmp_path / "mine.csv")
    extra = RELATIVE.format(max_ratio=0.01)
    path = write_matrix(tmp_path, rows=4, paddings=("static", "sorted"), extra=extra)
    matrix = load_matrix(str(path))
    outcome = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", data=data)).run_relative(matrix.relative[0])
    assert outcome.verdict.status == "skip"
    assert "bands are set for the bundled sample, not mine.csv" in outcome.verdict.reason
    assert outcome.estimate is not None and "measured" in outcome.verdict.reason


def test_report_row_shows_the_predicted_ratio_and_its_error():
    from perfsuite.judge.checks import Verdict
    from perfsuite.report.outcomes import PairOutcome
    from perfsuite.report.run_report import relative_cells, to_markdown

    outcome = PairOutcome(
        _bound(hi=0.7), Verdict("pass"), RatioEstimate(0.55, 0.52, 0.57, 9, 0.95), predicted_ratio=0.484
    )
    cells = relative_cells(outcome)
    assert cells[3] == "0.550x [0.520, 0.570]" and cells[5] == "0.484x (-12.0%)"
    assert "| sorted-vs-static | pass |" in to_markdown([], "k", [outcome])
