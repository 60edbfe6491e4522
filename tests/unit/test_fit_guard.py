"""The fit is found from the project, named in every projection, and never silently replaced by a worse one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.cost.fit import FIT_FILE, describe_fit
from perfsuite.device.machine import KEY_ENV
from perfsuite.store.baselines import find_baselines

ROOT = Path(__file__).parents[2]
# A machine whose records and fit ship in baselines/: the tests below read it under its key
# (through the key's override), so they pass on any machine, one with no records included.
STORED_KEY = "cpu-intel-r-xeon-r-processor-f6m207-2c"


def test_the_baselines_are_found_from_a_subfolder_like_pytests_rootdir(tmp_path):
    (tmp_path / "proj" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text("")
    assert find_baselines(tmp_path / "proj" / "deep" / "er") == (tmp_path / "proj" / "baselines").resolve()
    assert find_baselines(ROOT / "perfsuite" / "cost") == ROOT / "baselines"


def test_explain_from_another_folder_uses_the_projects_fit_and_names_it(monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, STORED_KEY)
    monkeypatch.setattr("perfsuite.cost.devices.total_memory", lambda: 64 * 2**30)  # gemma2-9b fp32 needs ~35 GiB
    argv = ["explain", "gemma2-9b", "llama3-8b", "--device", "cpu", "--dtype", "fp32", "--max-length", "256"]
    monkeypatch.chdir(ROOT)
    assert main(argv) == 0
    at_root = capsys.readouterr().out
    monkeypatch.chdir(ROOT / "docs")
    assert main(argv) == 0
    from_docs = capsys.readouterr().out
    assert from_docs == at_root
    assert f"cost-model fit of {STORED_KEY}" in " ".join(from_docs.split())


def test_without_a_project_the_output_says_no_fit_was_found(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["budget", "llama3-8b", "--device", "t4", "--dtype", "nf4", "--rows", "100", "--limit", "9h"]
    assert main(argv) == 0
    assert "no cost-model fit found under" in " ".join(capsys.readouterr().out.split())


@pytest.fixture
def machine_records(tmp_path):
    shutil.copytree(ROOT / "baselines" / STORED_KEY / "cpu", tmp_path / "bl" / STORED_KEY / "cpu")
    return tmp_path / "bl", STORED_KEY


def test_a_worse_fit_is_refused_unless_forced(machine_records, capsys):
    root, key = machine_records
    argv = ["fit", "--machine", key, "--baselines", str(root), "--tiers", "cpu"]
    assert main(argv) == 0
    good = (root / key / FIT_FILE).read_bytes()
    assert "predicted/measured" in describe_fit(root / key / FIT_FILE)
    for path in sorted((root / key / "cpu").glob("*eager*.json"))[::2]:  # a busy machine's records
        record = json.loads(path.read_text())
        record["latency"]["median_s"] *= 3
        record["latency"]["samples_s"] = [s * 3 for s in record["latency"]["samples_s"]]
        path.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "not replaced - the new fit is worse" in err and "--force" in err
    assert (root / key / FIT_FILE).read_bytes() == good
    assert main([*argv, "--force"]) == 0
    assert (root / key / FIT_FILE).read_bytes() != good
