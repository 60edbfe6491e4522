"""perfsuite compare: the decision rule, the two-level interval, output diffs, workers and bad input."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from perfsuite.cli import main
from perfsuite.compare.harness import Comparison, compare_outputs, decide
from perfsuite.compare.protocol import CompareError, CompareSettings, Side, SideOutput
from perfsuite.compare.report import to_markdown
from perfsuite.compare.sides import base_side, pinned_venv, python_side, this_side, venv_root
from perfsuite.matrix.tier import load_matrix
from perfsuite.stats.intervals import RatioEstimate, nested_ratio_interval
from perfsuite.variant import Bounds, Variant
from tests.conftest import write_matrix

VARIANT = Variant("tiny-llama3", "fp32", "sdpa", "sorted", "unit", Bounds(ref_max_abs_dp=0.01))


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (1.06, 1.20, "slower"),
        (0.80, 0.94, "faster"),
        (0.97, 1.04, "same"),
        (0.99, 1.08, "undecided"),
        (0.90, 1.00, "undecided"),
    ],
)
def test_verdict_follows_where_the_interval_lies(low, high, verdict):
    assert decide(RatioEstimate((low + high) / 2, low, high, 8, 0.95), 0.05) == verdict


def test_nested_interval_centres_on_the_ratio_and_resamples_process_pairs():
    rng = np.random.default_rng(1)
    groups = []
    for _ in range(12):
        bias = rng.normal(0, 0.03)  # each process pair has a bias of its own
        a = list(0.1 * np.exp(rng.normal(0, 0.01, 6)))
        groups.append((a, [x * 1.10 * np.exp(bias) for x in a]))
    est = nested_ratio_interval(groups)
    assert est.low < 1.10 < est.high and est.pairs == 12
    assert 1.05 < est.ratio < 1.15


def test_one_process_pair_decides_nothing():
    est = nested_ratio_interval([([0.1, 0.1], [0.2, 0.2])])
    assert est.low == 0.0 and est.high == float("inf")


def _out(probs, work=None):
    work = work or {"rows": 2, "real_tokens": 10, "processed_tokens": 12}
    return SideOutput(work, np.asarray(probs, dtype=float), [0, 1], 0)


def test_outputs_compare_work_exactly_and_predictions_against_the_margins():
    a = _out([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1]])
    same_work, stats, problems = compare_outputs(VARIANT, a, _out(a.probs))
    assert same_work == [] and problems == [] and stats["max_abs_dp"] == 0.0
    moved = _out([[0.2, 0.6, 0.2], [0.2, 0.7, 0.1]], {"rows": 2, "real_tokens": 10, "processed_tokens": 20})
    work, stats, problems = compare_outputs(VARIANT, a, moved)
    assert work == ["processed_tokens 12 -> 20"]
    assert "max |dp| 0.3000, allowed <= 0.01" in problems  # the reference's own margins and wording
    assert "argmax agreement 0.500, allowed >= 0.9" in problems


def test_a_non_finite_row_counts_as_a_disagreement_as_the_reference_counts_it():
    a = _out([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1]])
    nan = _out([[0.5, 0.3, 0.2], [float("nan")] * 3])
    _, stats, problems = compare_outputs(VARIANT, a, nan)
    assert stats["max_abs_dp"] == 1.0 and stats["argmax_agreement"] == 0.5
    assert problems[0].startswith("non-finite predictions")


@pytest.fixture
def unit_matrix(tmp_path):
    return load_matrix(str(write_matrix(tmp_path, rows=4)))


def test_two_workers_of_the_same_code_agree_on_work_and_predictions(unit_matrix):
    settings = CompareSettings(passes=2, block_pairs=1, min_pairs=2, max_pairs=2)
    b = python_side(sys.executable)
    (result,) = Comparison(unit_matrix, this_side(), b, settings, progress=lambda _t: None).run(unit_matrix.variants)
    assert result.verdict in ("same", "undecided", "faster", "slower")
    assert len(result.pairs) == 2 and all(len(a) == len(b) == 2 for a, b in result.pairs)
    assert result.work_diff == [] and result.prediction_problems == []
    # Two processes' heaps place the same tensors differently (measure/allocator.py warms them):
    # a kernel may round one float differently, 3.3e-8 seen under transformers 5.0 on 2026-12-02
    assert result.predictions["max_abs_dp"] <= 1e-6
    text = to_markdown([result], (this_side(), b), settings)
    assert "tiny-llama3-fp32-sdpa-sorted" in text and "B/A" in text


def test_a_worker_that_dies_fails_that_variant_naming_the_side(unit_matrix):
    dead = Side("B", (sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"), {}, "dies")
    settings = CompareSettings(passes=1, block_pairs=1, min_pairs=1, max_pairs=1, timeout_s=60)
    comparison = Comparison(unit_matrix, this_side(), dead, settings, progress=lambda _t: None)
    (result,) = comparison.run(unit_matrix.variants)
    assert result.verdict == "fail" and result.failed
    assert result.reason.startswith("side B: worker exited") and "boom" in result.reason


def test_an_interpreter_that_cannot_import_perfsuite_is_a_usage_error(tmp_path):
    with pytest.raises(CompareError, match="--python /no/such/python: cannot run it"):
        python_side("/no/such/python")


def test_an_unknown_revision_is_a_usage_error():
    with (
        pytest.raises(CompareError, match="--base no-such-revision-xyz: not a revision"),
        base_side("no-such-revision-xyz"),
    ):
        pass


def test_base_revision_runs_from_a_worktree_that_is_removed_afterwards():
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True).stdout.strip()
    if not root:
        pytest.skip("not inside a git checkout")
    with base_side("HEAD") as side:
        folder = side.env["PYTHONPATH"]
        listed = subprocess.run(["git", "worktree", "list"], capture_output=True, text=True, cwd=root).stdout
        assert folder in listed and side.name == "A"  # the base is A; B is this checkout
        porcelain = subprocess.run(["git", "worktree", "list", "--porcelain"], capture_output=True, text=True, cwd=root)
        block = next(b for b in porcelain.stdout.split("\n\n") if f"worktree {folder}" in b)
        assert f"locked perfsuite compare pid {os.getpid()}" in block  # a later run's prune keeps it
    listed = subprocess.run(["git", "worktree", "list"], capture_output=True, text=True, cwd=root).stdout
    assert folder not in listed


def test_a_pin_that_cannot_be_installed_leaves_no_venv(monkeypatch, tmp_path):
    monkeypatch.setenv("PERFSUITE_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: the install fails at once
    with pytest.raises(CompareError, match="could not install"):
        pinned_venv(["no-such-package-perfsuite==0.0.1"], progress=lambda _t: None)
    assert not any(venv_root().iterdir())


def test_a_malformed_pin_is_a_usage_error():
    with pytest.raises(CompareError, match="expected PACKAGE==VERSION"):
        pinned_venv(["transformers>=5"], progress=lambda _t: None)


def test_cli_bad_side_exits_2_with_one_line(capsys):
    assert main(["compare", "--python", "/no/such/python", "-k", "tiny-llama3-fp32-sdpa-sorted"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot run it" in err[0]


def test_a_relative_python_path_is_taken_from_the_working_folder(tmp_path, monkeypatch):
    import os
    import sys

    from perfsuite.compare.sides import python_side

    link = tmp_path / "bin" / "python"
    link.parent.mkdir()
    link.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # this venv's python, elsewhere
    link.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    side = python_side(os.path.join("bin", "python"))
    assert side.argv[0] == str(link)


def _revision_before_the_package_layout() -> str | None:
    """The last commit with the flat modules (perfsuite/runner.py): the move commit's parent."""
    moved = subprocess.run(
        ["git", "rev-list", "-1", "HEAD", "--", "perfsuite/runner.py"], capture_output=True, text=True
    ).stdout.strip()
    return f"{moved}^" if moved else None


def test_compare_against_a_revision_from_before_the_package_layout(unit_matrix):
    """The worker finds each name it uses in the old flat modules too (compare.worker.SURFACE)."""
    revision = _revision_before_the_package_layout()
    if revision is None:
        pytest.skip("no git history with the flat layout here (a shallow clone?)")
    settings = CompareSettings(passes=1, block_pairs=1, min_pairs=1, max_pairs=1)
    with base_side(revision, progress=lambda _t: None) as a:
        b = dataclasses.replace(this_side(), name="B")
        comparison = Comparison(unit_matrix, a, b, settings, progress=lambda _t: None)
        comparison.check_sides()
        (result,) = comparison.run(unit_matrix.variants)
    assert comparison.versions["A"]["perfsuite_path"].endswith("perfsuite")
    assert result.side_status == {"A": "runs", "B": "runs"}, result.reason
    assert result.work_diff == [] and result.prediction_problems == []
