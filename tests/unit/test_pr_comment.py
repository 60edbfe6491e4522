"""The PR comment: silent when every variant is `same` against the base, one comment (created once,
then edited) when something moved. The decision is perfsuite.compare.comment; ci.yml's step runs
here end to end with a stand-in `gh` on PATH and fake event payloads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from perfsuite.compare.comment import MARKER, Action, plan

ROOT = Path(__file__).resolve().parents[2]
MD = "### perfsuite compare\n\n| variant | verdict |\n|---|---|\n"


def _compare(*verdicts: str) -> dict:
    return {"variants": [{"variant": f"v{i}", "verdict": v} for i, v in enumerate(verdicts)]}


def test_every_variant_same_is_silence():
    assert plan(_compare("same", "same"), MD, []).action is Action.NONE


@pytest.mark.parametrize("verdict", ["slower", "faster", "undecided", "changed", "fail"])
def test_anything_that_moved_gets_one_comment_naming_it(verdict):
    p = plan(_compare("same", verdict), MD, [{"id": 7, "body": "a human's comment"}])
    assert p.action is Action.CREATE and p.comment_id is None and p.moved == (f"v1: {verdict}",)
    assert p.body.startswith(MARKER) and f"`v1: {verdict}`" in p.body and MD in p.body


def test_a_later_run_edits_the_same_comment():
    earlier = [{"id": 1, "body": "looks good"}, {"id": 42, "body": f"{MARKER}\nold"}]
    moved = plan(_compare("slower"), MD, earlier)
    assert moved.action is Action.UPDATE and moved.comment_id == 42
    back = plan(_compare("same"), MD, earlier)  # the PR fixed it: the comment says so, no new one
    assert back.action is Action.UPDATE and back.comment_id == 42 and "every variant `same`" in back.body


def _step_script() -> str:
    steps = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())["jobs"]["cpu-perf"]["steps"]
    (step,) = [s for s in steps if str(s.get("name", "")).startswith("Tell the PR")]
    assert step["if"] == "github.event_name == 'pull_request' && always()"
    return step["run"]


GH_STUB = """#!/usr/bin/env bash
# A stand-in for the GitHub CLI: answers the comments listing, logs the calls that write.
echo "$*" >> "$GH_LOG"
case "$*" in
  *"--paginate --slurp"*) cat "$GH_COMMENTS" ;;
  *"-F body=@"*) body="${@: -1}"; cat "${body#body=@}" >> "$GH_LOG" ;;
esac
"""


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("bash") is None, reason="needs bash and jq")
@pytest.mark.parametrize(
    ("verdicts", "comments", "wrote"),
    [
        (("same", "same"), [[]], None),
        (("same", "slower"), [[{"id": 5, "body": "hi"}]], "issues/9/comments"),
        (("undecided",), [[{"id": 5, "body": f"{MARKER}\nold"}]], "-X PATCH repos/o/r/issues/comments/5"),
    ],
)
def test_the_workflow_step_comments_only_when_something_moved(tmp_path, verdicts, comments, wrote):
    """ci.yml's own step, run by bash on a fake pull_request payload: what it asks of `gh`."""
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(GH_STUB)
    (bin_dir / "gh").chmod(0o755)
    reports = work / "reports/perfsuite/compare"
    reports.mkdir(parents=True)
    (reports / "compare.json").write_text(json.dumps(_compare(*verdicts)))
    (reports / "compare.md").write_text(MD)
    shutil.copytree(ROOT / "scripts", work / "scripts")
    shutil.copytree(ROOT / "perfsuite", work / "perfsuite", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "existing.json").write_text(json.dumps(comments))  # what GitHub holds (RUNNER_TEMP gets a copy)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_REPOSITORY": "o/r",
        "PR": "9",
        "GH_LOG": str(tmp_path / "gh.log"),
        "GH_COMMENTS": str(tmp_path / "existing.json"),
    }
    result = subprocess.run(["bash", "-e", "-c", _step_script()], cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "gh.log").read_text().splitlines()
    writes = [c for c in calls if "body=@" in c]
    if wrote is None:
        assert writes == [] and "no comment" in result.stdout
    else:
        assert len(writes) == 1 and wrote in writes[0]
        assert MARKER in calls  # the body it sent carries the marker a later run finds


def test_the_script_says_nothing_to_do_without_a_compare_and_names_a_bad_file(tmp_path):
    script = ROOT / "scripts/pr_comment.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = lambda *a: subprocess.run(["python3", str(script), *map(str, a)], capture_output=True, text=True, env=env)  # noqa: E731
    missing = run(tmp_path / "none.json", tmp_path / "none.md", tmp_path / "c.json")
    assert missing.returncode == 0 and json.loads(missing.stdout)["action"] == "none"
    (tmp_path / "bad.json").write_text("{ nope")
    (tmp_path / "c.md").write_text(MD)
    bad = run(tmp_path / "bad.json", tmp_path / "c.md", tmp_path / "bad.json")
    assert bad.returncode == 2 and "bad.json" in bad.stderr and "Traceback" not in bad.stderr
