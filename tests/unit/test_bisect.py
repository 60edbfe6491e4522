"""`perfsuite bisect`: release lists from the index, the search, and what counts as a change."""

from __future__ import annotations

import pytest

from perfsuite.cli import main
from perfsuite.compare.bisection import BisectError, Step, parse_index_versions, releases_between, search, step_from
from perfsuite.compare.protocol import VariantComparison
from perfsuite.stats.intervals import RatioEstimate
from perfsuite.variant import Variant

INDEX = "transformers (5.24.0)\nAvailable versions: 5.24.0, 5.23.0, 5.22.0rc1, 5.21.0, 5.20.2, 5.20.1, 4.57.6\n"
VERSIONS = parse_index_versions(INDEX)


def test_index_versions_are_read_from_pip_index_output():
    assert VERSIONS == ["5.24.0", "5.23.0", "5.22.0rc1", "5.21.0", "5.20.2", "5.20.1", "4.57.6"]
    assert parse_index_versions("ERROR: No matching distribution found for nothing") == []


def test_releases_between_are_oldest_first_and_skip_prereleases_unless_asked():
    assert releases_between(VERSIONS, "5.20.1", "5.24.0", "transformers") == ["5.20.2", "5.21.0", "5.23.0", "5.24.0"]
    with_pre = releases_between(VERSIONS, "5.20.1", "5.24.0", "transformers", pre=True)
    assert with_pre == ["5.20.2", "5.21.0", "5.22.0rc1", "5.23.0", "5.24.0"]


@pytest.mark.parametrize(
    ("good", "bad", "message"),
    [
        ("5.24.0", "5.20.1", "GOOD 5.24.0 is not older than BAD 5.20.1"),
        ("5.21.0", "5.21.0", "not older"),
        ("5.19.9", "5.24.0", "GOOD 5.19.9: transformers 5.19.9 is not on the package index"),
        ("5.20.1", "6.0.0", "BAD 6.0.0"),
    ],
)
def test_bad_bounds_are_named(good, bad, message):
    with pytest.raises(BisectError, match=message):
        releases_between(VERSIONS, good, bad, "transformers")


def _fake(first_changed: str, skipped=()):
    order = ["5.20.2", "5.21.0", "5.21.1", "5.22.0", "5.23.0", "5.24.0"]
    tested = []

    def evaluate(version: str) -> Step:
        tested.append(version)
        if version in skipped:
            return Step(version, "skipped", "cannot install or import: pip failed")
        changed = order.index(version) >= order.index(first_changed)
        return Step(version, "changed" if changed else "same", "refused (x)" if changed else "runs")

    return order, evaluate, tested


@pytest.mark.parametrize("first", ["5.20.2", "5.21.0", "5.21.1", "5.22.0", "5.23.0", "5.24.0"])
def test_search_finds_the_first_changed_release_in_log_steps(first):
    order, evaluate, tested = _fake(first)
    found, candidates, _steps = search(order, evaluate, progress=lambda _: None)
    assert found == first and candidates == (first,)
    assert len(tested) <= 4 and tested[0] == "5.24.0"  # BAD first, then halving


def test_search_reports_no_change_when_bad_matches_good():
    order, _evaluate, _tested = _fake("9.9.9")
    evaluate_all = lambda v: Step(v, "same", "runs")  # noqa: E731
    found, _candidates, steps = search(order, evaluate_all, progress=lambda _: None)
    assert found is None and [s.version for s in steps] == ["5.24.0"]


def test_a_release_that_cannot_be_installed_is_searched_around():
    order, evaluate, tested = _fake("5.22.0", skipped=("5.21.1",))
    found, _candidates, _ = search(order, evaluate, progress=lambda _: None)
    assert found == "5.22.0" and "5.21.1" in tested


def test_skips_that_hide_the_change_leave_every_candidate_named():
    order, evaluate, _ = _fake("5.22.0", skipped=("5.21.1", "5.22.0"))
    found, candidates, _ = search(order, evaluate, progress=lambda _: None)
    assert found == "5.23.0" and candidates == ("5.21.1", "5.22.0", "5.23.0")


def test_an_untestable_bad_release_is_bad_input():
    order, evaluate, _ = _fake("5.22.0", skipped=("5.24.0",))
    with pytest.raises(BisectError, match=r"BAD 5\.24\.0 cannot be tested here"):
        search(order, evaluate, progress=lambda _: None)


VARIANT = Variant("tiny-gemma2", "fp32", "sdpa", "dynamic", "cpu")


def test_a_status_change_is_a_change_and_says_from_what_to_what():
    refused = "refused (transformers 5.21.0: Gemma2ForSequenceClassification does not support ...)"
    comparison = VariantComparison(VARIANT, "skip", side_status={"A": "runs", "B": refused})
    step = step_from("5.21.0", comparison, latency=True, seconds=1.0, venv="")
    assert step.verdict == "changed"
    assert step.changes == (
        "ran -> refused (transformers 5.21.0: Gemma2ForSequenceClassification does not support ...)",
    )


def test_work_predictions_and_latency_changes_are_each_a_change():
    same = VariantComparison(VARIANT, "same", side_status={"A": "runs", "B": "runs"}, time_verdict="same")
    same.estimate = RatioEstimate(1.01, 0.98, 1.03, 6, 0.95)
    assert step_from("5.21.0", same, True, 0, "").verdict == "same"
    work = VariantComparison(VARIANT, "changed", side_status={"A": "runs", "B": "runs"}, work_diff=["flops 1 -> 2"])
    assert step_from("5.21.0", work, True, 0, "").changes == ("work flops 1 -> 2",)
    slower = VariantComparison(VARIANT, "slower", side_status={"A": "runs", "B": "runs"}, time_verdict="slower")
    slower.estimate = RatioEstimate(1.5, 1.4, 1.6, 6, 0.95)
    assert step_from("5.21.0", slower, True, 0, "").changes[0].startswith("latency slower")
    assert step_from("5.21.0", slower, False, 0, "").verdict == "same"  # --no-latency


def test_both_refusing_is_no_change():
    both = VariantComparison(VARIANT, "skip", side_status={"A": "refused (a)", "B": "refused (b)"})
    assert step_from("5.22.0", both, True, 0, "").verdict == "same"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-k", "no-such-variant"], "must select one variant"),
        (["-k", "tiny-llama3-fp32-*"], "must select one variant"),
    ],
)
def test_bisect_cli_bad_variant_is_exit_2(argv, message, capsys):
    assert main(["bisect", "transformers", "5.20.2", "5.24.0", *argv]) == 2
    assert message in capsys.readouterr().err


def _fake_pip(monkeypatch, returncode: int, stdout: str = "", stderr: str = ""):
    import subprocess

    from perfsuite.compare import bisection as bisect

    def run(argv, **kwargs):
        return subprocess.CompletedProcess(argv, returncode, stdout, stderr)

    monkeypatch.setattr(bisect.subprocess, "run", run)


def test_an_unknown_package_is_exit_2(monkeypatch, capsys):
    _fake_pip(monkeypatch, 1, stderr="ERROR: No matching distribution found for nosuchpkg")
    assert main(["bisect", "nosuchpkg", "1.0", "2.0", "-k", "tiny-llama3-fp32-sdpa-sorted"]) == 2
    assert "nosuchpkg: not found on the package index (ERROR: No matching distribution" in capsys.readouterr().err


def test_a_version_not_on_the_index_is_exit_2(monkeypatch, capsys):
    _fake_pip(monkeypatch, 0, stdout=INDEX)
    assert main(["bisect", "transformers", "5.20.1", "5.99.0", "-k", "tiny-llama3-fp32-sdpa-sorted"]) == 2
    assert "BAD 5.99.0: transformers 5.99.0 is not on the package index" in capsys.readouterr().err


def test_a_failed_venv_build_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    """pip fails half-way: the release is reported as not installable and its folder is gone."""
    import subprocess

    from perfsuite.compare import sides as compare_envs
    from perfsuite.compare.protocol import CompareError

    monkeypatch.setenv("PERFSUITE_CACHE", str(tmp_path))
    real_run = subprocess.run

    def run(argv, **kwargs):
        if "pip" in argv and "install" in argv:
            return subprocess.CompletedProcess(argv, 1, "", "ERROR: No matching distribution found for x==9")
        return real_run(argv, **kwargs)

    monkeypatch.setattr(compare_envs.subprocess, "run", run)
    with pytest.raises(CompareError, match="could not install"):
        compare_envs.version_side("transformers", "0.0.1", progress=lambda _: None)
    assert list((tmp_path / "venvs").iterdir()) == []
