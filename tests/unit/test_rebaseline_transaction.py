"""A rebaseline is a transaction: staged, committed together under the machine's lock, or not at all."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from perfsuite.matrix.tier import load_matrix
from perfsuite.session import PerfSession, SessionConfig
from perfsuite.store.baselines import BaselineError, BaselineStore, RebaselineLock, commit_files
from tests.conftest import write_matrix


def _matrix(tmp_path):
    return load_matrix(str(write_matrix(tmp_path, rows=4, paddings=("static", "sorted"))))


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*.json"))}


def test_records_are_written_together_at_the_end(tmp_path):
    matrix = _matrix(tmp_path)
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", rebaseline=True))
    for variant in matrix.variants:
        assert session.run(variant).verdict.status == "recorded"
        assert _snapshot(tmp_path / "bl") == {}  # staged, not written
    note = session.finish()
    assert len(_snapshot(tmp_path / "bl")) == 4  # two variants x (portable + machine)
    assert "committed together" in note[0]
    assert RebaselineLock.holder(tmp_path / "bl", session.store.machine_key) is None  # released


def test_an_interrupted_rebaseline_changes_no_record_and_says_what_it_would_have_recorded(tmp_path):
    matrix = _matrix(tmp_path)
    first = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", rebaseline=True))
    for variant in matrix.variants:
        first.run(variant)
    first.finish()
    before = _snapshot(tmp_path / "bl")
    second = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", rebaseline=True))
    second.run(matrix.variants[0])
    note = second.finish(interrupted=True)
    assert _snapshot(tmp_path / "bl") == before  # byte-identical
    # the machine record only: the portable record's values were confirmed, so it is left as it was
    assert note[0].startswith("interrupted: no baseline changed; this run would have recorded 1 files")
    assert matrix.variants[0].id in note[0]


HOLD = """
import sys, time
from perfsuite.store.baselines import RebaselineLock
lock = RebaselineLock(sys.argv[1], sys.argv[2]); lock.acquire()
print("held", flush=True); time.sleep(60)
"""


@pytest.fixture
def lock_held_elsewhere(tmp_path):
    from perfsuite.device.machine import detect

    key = detect("cpu").machine_key()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "bl"), key], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield key, proc.pid
    proc.kill()
    proc.wait()


def test_a_second_rebaseline_of_the_same_key_refuses_saying_who_holds_it(tmp_path, lock_held_elsewhere):
    key, pid = lock_held_elsewhere
    with pytest.raises(BaselineError, match=rf"another rebaseline of {key} is running \(pid {pid} since"):
        PerfSession(_matrix(tmp_path), SessionConfig(baselines=tmp_path / "bl", rebaseline=True))
    PerfSession(_matrix(tmp_path), SessionConfig(baselines=tmp_path / "bl"))  # checking needs no lock


def test_fit_refuses_while_a_rebaseline_is_running(tmp_path, lock_held_elsewhere, capsys):
    from perfsuite.cli import main

    key, pid = lock_held_elsewhere
    assert main(["fit", "--machine", key, "--baselines", str(tmp_path / "bl"), "--tiers", "unit"]) == 2
    assert f"a rebaseline of {key} is running (pid {pid}" in capsys.readouterr().err


def test_the_lock_is_released_when_its_process_dies(tmp_path, lock_held_elsewhere):
    key, pid = lock_held_elsewhere
    subprocess.run(["kill", "-9", str(pid)], check=True)
    for _ in range(50):
        if RebaselineLock.holder(tmp_path / "bl", key) is None:
            break
        time.sleep(0.1)
    session = PerfSession(_matrix(tmp_path), SessionConfig(baselines=tmp_path / "bl", rebaseline=True))
    session.finish(interrupted=True)


def test_a_failed_write_during_commit_leaves_every_record_as_it_was(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("old a")
    with pytest.raises(ValueError):
        commit_files([(a, {"x": 1}), (b, {"x": float("nan")})])  # strict JSON refuses NaN
    assert a.read_text() == "old a" and not b.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary left behind


def test_cli_rebaseline_interrupted_by_ctrl_c_exits_130_and_records_nothing(tmp_path, monkeypatch, capsys):
    from perfsuite import session as session_module
    from perfsuite.cli import main

    path = write_matrix(tmp_path, rows=4, paddings=("static", "sorted"))
    real_run, calls = session_module.PerfSession.run, []

    def run_then_interrupt(self, variant, *args, **kwargs):
        calls.append(variant.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(self, variant, *args, **kwargs)

    monkeypatch.setattr(session_module.PerfSession, "run", run_then_interrupt)
    argv = ["rebaseline", "--matrix", str(path), "--baselines", str(tmp_path / "bl")]
    assert main([*argv, "--report-dir", str(tmp_path / "rep")]) == 130
    out = capsys.readouterr().out
    assert "interrupted: no baseline changed; this run would have recorded 2 files" in out
    assert _snapshot(tmp_path / "bl") == {}
    assert (tmp_path / "rep" / "report.json").is_file()  # the report of what ran is still written


def test_store_stage_refuses_another_machines_record(tmp_path):
    from perfsuite.store.records import Latency, MachineRecord

    store = BaselineStore(tmp_path, "cpu-a-2c", "unit")
    store.begin()
    other = MachineRecord("v", "unit", "cpu-b-2c", Latency.from_samples([1.0], None), {}, None, {}, {}, {})
    with pytest.raises(ValueError, match="refusing to write cpu-b-2c's record"):
        store.stage(None, other)
    store.abort()
