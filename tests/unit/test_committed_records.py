"""The repository's committed portable records hold exactly what a rebaseline of their tier
writes for their settings and tolerances (issue #38, item 7): otherwise every runner's first
rebaseline rewrites them all, and two runners recording in parallel conflict on every file.
`scripts/sync_portable_tolerances.py` brings them in line when a tier's tolerances change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.matrix.tier import load_matrix
from perfsuite.session import PerfSession, SessionConfig

BASELINES = Path(__file__).parents[2] / "baselines"
TIERS = ("cpu", "real", "gpu", "gpu-check")


def _records(tier: str) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text())) for p in sorted((BASELINES / "portable" / tier).glob("*.json"))]


@pytest.mark.parametrize("tier", TIERS)
def test_every_committed_portable_record_has_the_tolerances_its_tier_writes(tier):
    variants = {v.id: v for v in load_matrix(tier).variants}
    records = _records(tier)
    assert records, f"no committed portable records of the {tier} tier"
    for path, doc in records:
        assert doc["variant"] in variants, f"{path}: {doc['variant']} is not in the {tier} tier"
        wanted = variants[doc["variant"]].bounds.portable()
        assert doc["tolerances"] == wanted, f"{path}: run scripts/sync_portable_tolerances.py"


def test_every_committed_cpu_portable_record_has_the_settings_the_tier_runs_under():
    session = PerfSession(load_matrix("cpu"), SessionConfig(baselines=BASELINES))
    expected = session.data.settings_record()
    for path, doc in _records("cpu"):
        settings = {k: v for k, v in doc["settings"].items() if k != "tokenizer"}
        assert settings == expected, f"{path}: settings {settings} but the tier runs under {expected}"


def test_a_rebaseline_on_a_machine_without_records_confirms_the_committed_portable_record(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PERFSUITE_MACHINE_KEY", "cpu-foreign-records-test-2c")
    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "quiet")
    variant = "tiny-llama3-fp32-sdpa-sorted"
    root = tmp_path / "baselines"
    shutil.copytree(BASELINES / "portable" / "cpu", root / "portable" / "cpu")
    before = (root / "portable" / "cpu" / f"{variant}.json").read_bytes()
    argv = ["rebaseline", "-k", variant, "--baselines", str(root), "--report-dir", str(tmp_path / "r")]
    assert main([*argv, "--processes", "0"]) == 0
    out = capsys.readouterr()
    assert "portable records: 0 changed, 0 new" in out.out + out.err
    assert (root / "portable" / "cpu" / f"{variant}.json").read_bytes() == before
