"""`compare --base` worktrees: removed however the run ends, and stale ones from killed runs pruned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from perfsuite.compare.sides import _interrupts_deferred, prune_stale_worktrees, remove_worktree


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    _git("init", "-q", cwd=root)
    (root / "f").write_text("x")
    _git("add", "f", cwd=root)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one", cwd=root)
    return root


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _worktrees(root) -> set[str]:
    return {
        line.split(" ", 1)[1]
        for line in _git("worktree", "list", "--porcelain", cwd=root).splitlines()
        if line.startswith("worktree ")
    }


def test_stale_base_worktrees_are_pruned_and_a_running_compares_is_kept(repo, tmp_path):
    trees = {
        name: tmp_path / name for name in ("perfsuite-base-dead", "perfsuite-base-live", "perfsuite-base-old", "mine")
    }
    for name, pid in (("perfsuite-base-dead", _dead_pid()), ("perfsuite-base-live", os.getpid())):
        reason = f"perfsuite compare pid {pid}"
        _git("worktree", "add", "--detach", "--lock", "--reason", reason, str(trees[name]), cwd=repo)
    _git("worktree", "add", "--detach", str(trees["perfsuite-base-old"]), cwd=repo)  # a perfsuite before the lock
    _git("worktree", "add", "--detach", str(trees["mine"]), cwd=repo)  # the user's own: never touched

    removed = prune_stale_worktrees(repo)
    assert sorted(removed) == sorted(str(trees[n]) for n in ("perfsuite-base-dead", "perfsuite-base-old"))
    left = _worktrees(repo)
    assert str(trees["perfsuite-base-live"]) in left and str(trees["mine"]) in left
    assert not trees["perfsuite-base-dead"].exists() and not trees["perfsuite-base-old"].exists()


def test_removing_a_locked_base_worktree_needs_no_second_try(repo, tmp_path):
    tree = tmp_path / "perfsuite-base-x"
    _git("worktree", "add", "--detach", "--lock", "--reason", "perfsuite compare pid 1", str(tree), cwd=repo)
    remove_worktree(repo, tree)
    assert str(tree) not in _worktrees(repo) and not tree.exists()


def test_ctrl_c_during_cleanup_waits_for_the_cleanup_then_interrupts():
    # Python's own handler, whatever this process inherited: a shell's background job starts
    # with SIGINT ignored (seen 2026-12-02: CI launched as `(cmd &)` failed here)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        done = []
        with pytest.raises(KeyboardInterrupt), _interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)  # pressed while the worktree is being removed
            done.append("cleanup finished")
        assert done == ["cleanup finished"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)
