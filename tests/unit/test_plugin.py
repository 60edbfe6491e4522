"""The pytest plugin end to end: skip without baseline, rebaseline, pass, and a halved baseline fails."""

from __future__ import annotations

import json

import pytest

from tests.conftest import write_matrix

TEST_MODULE = """
import pytest
from perfsuite.plugin import assert_latency, assert_outcome

PERFSUITE_MATRIX = {matrix!r}
pytestmark = pytest.mark.perf


def test_variant_within_bounds(perf_outcome):
    assert_outcome(perf_outcome)


def test_latency_decision(perf_latency):
    assert_latency(perf_latency)
"""
INI = """
[pytest]
markers =
    cpu: cpu tier
    gpu: gpu tier
    perf: perf case
    slow: slow
"""


@pytest.fixture
def tier(pytester, monkeypatch):
    # The plugin's mechanics, not the busy rules, are under test: latency is judged whatever
    # else runs on the machine (the subprocess inherits the seam).
    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "quiet")
    pytester.makeini(INI)
    # Millisecond-scale passes in fresh processes are noisier than the real tier's, so the
    # unit matrix allows 2.5x and the edited baseline is cut to a twentieth.
    matrix = write_matrix(pytester.path, rows=4, attentions=("sdpa", "eager"), latency_tolerance=1.5)
    pytester.makepyfile(test_tier=TEST_MODULE.format(matrix=str(matrix)))
    return pytester


def _run(pytester, *args):
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs", "--perfsuite-baselines", str(pytester.path / "bl"), *args
    )


def test_baseline_lifecycle(tier):
    first = _run(tier)
    first.assert_outcomes(skipped=3)  # two variants without records, and nothing for latency to decide
    first.stdout.fnmatch_lines(["*no baseline at*record one with `tox -e rebaseline`*"])

    recorded = _run(tier, "--perfsuite-rebaseline", "--perfsuite-processes", "2")
    recorded.assert_outcomes(passed=2, skipped=1)
    recorded.stdout.fnmatch_lines(["*recorded 2 baselines (4 files, committed together) under*"])
    files = sorted((tier.path / "bl").rglob("*.json"))
    names = ["tiny-llama3-fp32-eager-sorted.json", "tiny-llama3-fp32-sdpa-sorted.json"]
    assert sorted({f.parent.parent.name for f in files}) == sorted(["portable", _machine_key()])
    assert [f.name for f in files if f.parent.parent.name == "portable"] == names
    files = [f for f in files if f.parent.parent.name != "portable"]
    assert [f.name for f in files] == names

    again = _run(tier)
    again.assert_outcomes(passed=3)
    again.stdout.fnmatch_lines(["*perfsuite unit*", "*tiny-llama3-fp32-sdpa-sorted*pass*"])

    record = json.loads(files[1].read_text())
    record["latency"]["median_s"] /= 20
    files[1].write_text(json.dumps(record))
    edited = _run(tier)
    edited.assert_outcomes(passed=2, failed=1)  # the variants' own bounds hold; the run's latency decision fails
    edited.stdout.fnmatch_lines(
        [
            "*1 variant(s) slower than their latency tolerance:*",
            "*tiny-llama3-fp32-sdpa-sorted: [[]latency[]] pass time / record FAILED: measured *x [[]*, *[]], "
            "allowed <= 2.50x*",
        ]
    )
    report = json.loads((tier.path / "reports" / "perfsuite" / "unit" / "report.json").read_text())
    assert {v["variant"]: v["status"] for v in report["variants"]} == {
        "tiny-llama3-fp32-eager-sorted": "pass",
        "tiny-llama3-fp32-sdpa-sorted": "fail",
    }


def _machine_key() -> str:
    from perfsuite.device.machine import detect

    return detect("cpu").machine_key()


def test_another_machine_judges_the_portable_bounds_and_says_latency_was_not(tier):
    _run(tier, "--perfsuite-rebaseline").assert_outcomes(passed=2, skipped=1)
    (tier.path / "bl" / _machine_key()).rename(tier.path / "bl" / "cpu-other-machine-4c")
    result = _run(tier)
    result.assert_outcomes(passed=2, skipped=1)
    report = json.loads((tier.path / "reports" / "perfsuite" / "unit" / "report.json").read_text())
    judged = report["variants"][0]["judged"]
    assert judged["work"] is True and judged["quality"] is True and "no baseline for machine" in judged["latency"]


def test_no_record_at_all_ends_with_a_loud_line_and_strict_fails(tier):
    loose = _run(tier)
    loose.assert_outcomes(skipped=3)
    loose.stdout.fnmatch_lines(["WARNING: 2 of 2 variants ran with nothing judged beyond the guard*"])
    strict = _run(tier, "--perfsuite-strict")
    strict.assert_outcomes(failed=2, skipped=1)
    strict.stdout.fnmatch_lines(["*strict: nothing judged beyond the guard (no baseline at*"])
    assert strict.ret == 1


def test_corrupt_baseline_fails_naming_the_file(tier):
    _run(tier, "--perfsuite-rebaseline").assert_outcomes(passed=2, skipped=1)
    victim = next((tier.path / "bl" / _machine_key()).rglob("*sdpa*.json"))
    victim.write_text("{ truncated")
    result = _run(tier)
    result.assert_outcomes(passed=2, failed=1)  # the latency decision: the other variant alone, undecided
    result.stdout.fnmatch_lines([f"*{victim}: unreadable baseline*"])


def test_gpu_marker_collects_the_gpu_matrix_and_skips_it_here(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(test_gpu=TEST_MODULE.format(matrix="gpu"))
    result = pytester.runpytest_subprocess("-m", "gpu", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=4 * 5 * 3 * 5 + 1)  # models x dtypes (gptq8 too) x ..., and the latency decision
    result.stdout.fnmatch_lines(["*GPU tier: this machine has no CUDA device*"])
    assert result.ret == 0


PAIR_MODULE = """
import pytest
from perfsuite.plugin import assert_pair_outcome

PERFSUITE_MATRIX = {matrix!r}
pytestmark = pytest.mark.perf


def test_relative_bound(perf_pair_outcome):
    assert_pair_outcome(perf_pair_outcome)
"""
PAIRS = """
[[relative]]
name = "sorted-vs-static"
match = "*-sorted"
against = { padding = "static" }
max_ratio = 3.0

[[relative]]
name = "impossible"
match = "*-sorted"
against = { padding = "static" }
max_ratio = 0.01
reason = "a band no run can meet"
"""


def test_relative_bounds_run_as_cases_and_a_broken_band_fails_with_the_ratio(pytester):
    pytester.makeini(INI)
    matrix = write_matrix(pytester.path, rows=4, paddings=("static", "sorted"), extra=PAIRS)
    pytester.makepyfile(test_pairs=PAIR_MODULE.format(matrix=str(matrix)))
    result = _run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*impossible:tiny-llama3-fp32-sdpa-sorted: fail*",
            "*[[]relative[]] impossible FAILED: measured *x [[]*, *[]] (95% CI, 9 pairs), allowed [[]0, 0.01x[]]*",
            "*relative bounds*",
        ]
    )
    report = json.loads((pytester.path / "reports" / "perfsuite" / "unit" / "report.json").read_text())
    assert [r["status"] for r in report["relative"]] == ["pass", "fail"]


def test_a_rebaseline_interrupted_under_pytest_records_nothing(tier):
    """Ctrl-C in `tox -e rebaseline`: the variant that was measured is not written either."""
    tier.makeconftest(
        """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    if "eager" in item.name:
        raise KeyboardInterrupt
"""
    )
    result = _run(tier, "--perfsuite-rebaseline")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*interrupted: no baseline changed; this run would have recorded 4 files*"])
    result.stdout.fnmatch_lines(["*2 variants: 2 skip*"])  # measured, staged, not recorded
    assert not list((tier.path / "bl").rglob("*.json"))


def test_collect_only_leaves_the_last_reports_alone(tier):
    _run(tier)
    report = tier.path / "reports" / "perfsuite" / "unit" / "report.json"
    before = report.read_bytes()
    _run(tier, "--collect-only")
    assert report.read_bytes() == before
