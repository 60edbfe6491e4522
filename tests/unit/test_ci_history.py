"""scripts/ci_history.sh keeps the history between CI runs on a branch: the second run finds the
first's, the step summary gets `history changes`, the dashboard is written, and the branch holds
one commit (the file alone), not a growing chain of binary versions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.history_data import report, write

SCRIPT = Path(__file__).parents[2] / "scripts" / "ci_history.sh"
V = "tiny-llama3-fp32-sdpa-sorted"


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_two_ci_runs_chain_their_history_through_a_branch(tmp_path):
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    clone = tmp_path / "clone"
    _git("init", "-q", str(clone), cwd=tmp_path)
    _git("remote", "add", "origin", str(remote), cwd=clone)
    perfsuite = f"{sys.executable} -m perfsuite"
    summary = tmp_path / "summary.md"
    env = {**os.environ, "PERFSUITE": perfsuite, "GITHUB_STEP_SUMMARY": str(summary)}
    first, second = write(tmp_path / "runs", [report(0, {V: 100.0}), report(1, {V: 101.0})])
    for path in (first, second):
        proc = subprocess.run(
            ["bash", str(SCRIPT), "perfsuite-history", "cpu/history.sqlite", str(tmp_path / "site"), str(path)],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 runs" not in proc.stdout  # changes prints change points, not a count of runs
    log = _git("log", "--format=%H", "perfsuite-history", cwd=remote).split()
    assert len(log) == 1  # replaced, not chained
    _git("fetch", "-q", "origin", "perfsuite-history", cwd=clone)
    blob = subprocess.run(
        ["git", "show", "FETCH_HEAD:cpu/history.sqlite"], cwd=clone, check=True, capture_output=True
    ).stdout
    (tmp_path / "h.sqlite").write_bytes(blob)
    from perfsuite.history.store import HistoryStore

    with HistoryStore(str(tmp_path / "h.sqlite")) as store:
        assert len(store.runs()) == 2
    assert "perfsuite history: change points" in summary.read_text()
    assert (tmp_path / "site" / "index.html").is_file()
