"""Records that span the machine's phases: a rebaseline given a history keeps each variant's
earlier runs there, and their spread beyond the processes' noise widens its latency tolerance."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from perfsuite.cli import main
from perfsuite.device.machine import detect
from perfsuite.history.earlier import earlier_runs
from perfsuite.history.ingest import add_files
from perfsuite.history.store import HistoryStore
from perfsuite.judge.checks import check_latency, latency_screen, latency_tolerance
from perfsuite.matrix.tier import load_matrix
from perfsuite.measure.fresh import spread_note
from perfsuite.session import PerfSession
from perfsuite.store.records import Latency, RecordError
from perfsuite.variant import Bounds
from tests.conftest import write_matrix
from tests.unit.history_data import KEY, report, write
from tests.unit.test_latency_processes import FakeFresh, _fixed, _rescaled

BOUNDS = Bounds(latency_ratio=0.5, latency_floor=0.2, latency_spread_z=3.0)
SWINGING = [0.010, 0.015, 0.011, 0.016, 0.010, 0.014]  # earlier runs: the machine's phases move it 1.5x


def _log_var(values) -> float:
    return statistics.variance(math.log(v) for v in values)


def test_the_phase_is_the_earlier_runs_spread_beyond_the_processes_noise():
    lat = Latency.from_samples([0.01]).with_processes([0.0100, 0.0102, 0.0099], earlier=SWINGING)
    assert lat.phase_runs == len(SWINGING)
    assert lat.phase == pytest.approx(math.sqrt(_log_var(SWINGING) - lat.noise**2))


def test_no_phase_from_fewer_than_four_earlier_runs_or_runs_within_the_noise():
    few = Latency.from_samples([0.01]).with_processes([0.010, 0.011, 0.012], earlier=SWINGING[:3])
    assert few.phase == 0.0 and few.phase_runs == 0
    calm = Latency.from_samples([0.01]).with_processes([0.010, 0.013, 0.008], earlier=[0.0100, 0.0101] * 3)
    assert calm.phase_runs == 6 and calm.phase == 0.0  # the processes already move more than the runs


def test_earlier_runs_read_back_and_a_bad_one_names_the_file_and_field():
    lat = Latency.from_samples([0.01]).with_processes([0.010, 0.011], earlier=SWINGING)
    assert Latency.from_dict(lat.to_dict(), "x.json") == lat and lat.to_dict()["earlier_s"] == SWINGING
    assert "earlier_s" not in Latency.from_samples([0.01]).with_processes([0.010, 0.011]).to_dict()
    with pytest.raises(RecordError, match=r"rec.json.*latency.earlier_s\[\]"):
        Latency.from_dict({"median_s": 0.1, "samples_s": [0.1], "earlier_s": [0.1, "x"]}, "rec.json")


def test_the_tolerance_adds_a_phase_on_each_side_of_the_comparison():
    phase = 0.15
    got, why = latency_tolerance(BOUNDS, 0.05, 3, 1, phase, 8)
    assert got == pytest.approx(math.expm1(3 * math.sqrt(0.05**2 * (1 + 1 / 3) + 2 * phase**2)))
    assert "15.0% phase from 8 earlier runs" in why
    assert latency_tolerance(BOUNDS, 0.05, 3)[0] == pytest.approx(0.2)  # without a phase: the floor, as before


def test_a_slowdown_within_the_machines_phases_passes_and_a_larger_one_fails():
    base = [0.01] * 6
    within = check_latency([0.016] * 6, 0.01, base, BOUNDS, 0.05, 3, phase=0.15, runs=8)
    beyond = check_latency([0.030] * 6, 0.01, base, BOUNDS, 0.05, 3, phase=0.15, runs=8)
    without = check_latency([0.016] * 6, 0.01, base, BOUNDS, 0.05, 3)
    assert within.ok and not beyond.ok and not without.ok


def test_the_screen_widens_with_the_phase():
    assert latency_screen(BOUNDS, 0.05, 3, 0.15) > latency_screen(BOUNDS, 0.05, 3)


def _docs(values, tier="unit", machine_key=KEY, start=0):
    docs = []
    for i, ms in enumerate(values):
        doc = report(start + i, {"tiny-llama3-fp32-sdpa-sorted": ms}, machine_key=machine_key)
        doc["run"]["tier"] = tier
        docs.append(doc)
    return docs


def test_earlier_runs_are_this_machines_and_tiers_not_busy_since_the_last_change(tmp_path):
    old_level = [20.0, 21.0, 19.5, 20.5, 20.0, 19.8]  # another code's level: a step of 2x after it
    new_level = [10.0, 10.5, 9.8, 10.2, 10.1, 9.9]
    docs = _docs(old_level + new_level)
    docs += _docs([50.0], machine_key="cpu-other-machine-2c", start=20) + _docs([70.0], tier="cpu", start=21)
    busy = _docs([90.0], start=22)
    busy[0]["variants"][0]["measurement"]["latency"]["other_cpu_share"] = 0.6
    history = tmp_path / "h.sqlite"
    with HistoryStore(str(history)) as store:
        add_files(store, write(tmp_path / "runs", docs + busy))
    got = earlier_runs(str(history), KEY, "unit")
    assert got == {"tiny-llama3-fp32-sdpa-sorted": pytest.approx([v / 1000 for v in new_level])}
    assert earlier_runs(str(history), KEY, "unit", limit=2)["tiny-llama3-fp32-sdpa-sorted"] == pytest.approx(
        [0.0101, 0.0099]
    )
    assert earlier_runs(None, KEY, "unit") is None


def _session(tmp_path, history=None, processes=3):
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4)))
    return matrix, PerfSession(matrix, tmp_path / "bl", rebaseline=True, processes=processes, history=history)


def test_a_rebaseline_given_a_history_keeps_each_variants_earlier_runs_and_says_how_many(tmp_path):
    key = detect("cpu").machine_key()
    history = tmp_path / "h.sqlite"
    with HistoryStore(str(history)) as store:
        add_files(store, write(tmp_path / "runs", _docs([v * 1000 for v in SWINGING], machine_key=key)))
    matrix, session = _session(tmp_path, str(history))
    session.measure_fresh = FakeFresh([0.010, 0.0102, 0.0099])
    session.run(matrix.variants[0])
    note = session.finish()
    [path] = [p for p in (tmp_path / "bl").glob("*/unit/*.json") if p.parent.parent.name != "portable"]
    latency = Latency.from_dict(json.loads(path.read_text())["latency"], str(path))
    assert latency.earlier_s == pytest.approx(tuple(SWINGING)) and latency.phase > 0.1
    assert any("earlier runs from the history: 6-6 per variant (1 of 1" in line for line in note)


def test_a_rebaseline_without_a_history_keeps_no_earlier_runs(tmp_path):
    matrix, session = _session(tmp_path)
    session.measure_fresh = FakeFresh([0.010, 0.0102, 0.0099])
    session.run(matrix.variants[0])
    note = session.finish()
    [path] = [p for p in (tmp_path / "bl").glob("*/unit/*.json") if p.parent.parent.name != "portable"]
    assert "earlier_s" not in json.loads(path.read_text())["latency"]
    assert not any("earlier runs" in line for line in note)


def test_an_unreadable_history_stops_a_rebaseline_before_anything_is_timed(tmp_path, capsys):
    bad = tmp_path / "h.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    matrix = write_matrix(tmp_path, rows=4)
    code = main(["rebaseline", "--matrix", str(matrix), "--baselines", str(tmp_path / "bl"), "--history", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and f"history {bad}" in err and "Traceback" not in err
    assert not (tmp_path / "bl").exists() or not list((tmp_path / "bl").rglob("*.json"))


@pytest.mark.parametrize(("earlier", "status", "asked"), [(SWINGING, "pass", 0), ((), "fail", 3)])
def test_a_run_within_the_machines_phases_passes_a_record_that_knows_them_and_fails_one_that_does_not(
    tmp_path, monkeypatch, earlier, status, asked
):
    """Through the session, the judge and the screen: the run's process and three fresh ones read
    1.45x. A record of one phase (floor 20%) fails it; a record whose earlier runs swung 1.5x
    neither fails it nor times it again."""
    matrix, base = _rescaled(tmp_path, read=1.0, processes=(0.95, 1.0, 1.05), pooled=0.05)
    for path in (tmp_path / "bl").glob("cpu-*/unit/*.json"):
        record = json.loads(path.read_text())
        record["latency"]["earlier_s"] = list(earlier)
        path.write_text(json.dumps(record))
    monkeypatch.setattr("perfsuite.judge.verdict.busy_reason", lambda *a: None)
    session = PerfSession(matrix, baseline_root=tmp_path / "bl")
    fresh = FakeFresh([base * 1.45] * 6)
    session.measure_fresh = fresh
    outcome = session.run(matrix.variants[0], sampler=_fixed(base * 1.45))
    assert outcome.verdict.status == status and len(fresh.calls) == asked
    latency = next(c for c in outcome.verdict.checks if c.kind == "latency")
    assert ("phase from 6 earlier runs" in latency.detail) == bool(earlier)


def test_spread_note_says_how_many_variants_have_enough_earlier_runs():
    line = spread_note({"a": 0.05, "b": 0.10}, 3, {"a": [0.01] * 5, "b": [0.01] * 2})
    assert "earlier runs from the history: 2-5 per variant (1 of 2 with the 4 a phase needs)" in line
    assert "earlier runs" not in spread_note({"a": 0.05}, 3)


def test_the_history_floor_applies_from_eight_earlier_runs():
    bounds = Bounds(latency_floor=0.4, latency_history_floor=0.3, latency_spread_z=3.0)
    assert latency_tolerance(bounds, 0.02, 3, 1, 0.0, 7)[0] == pytest.approx(0.4)
    tolerance, why = latency_tolerance(bounds, 0.02, 3, 1, 0.0, 8)
    assert tolerance == pytest.approx(0.3) and why.startswith("floor 30%")
    assert latency_screen(bounds, 0.02, 3, 0.0, 8) < latency_screen(bounds, 0.02, 3, 0.0, 7)
    unset = Bounds(latency_floor=0.4, latency_spread_z=3.0)  # no history floor: the floor, whatever the runs
    assert latency_tolerance(unset, 0.02, 3, 1, 0.0, 20)[0] == pytest.approx(0.4)


def test_the_cpu_tier_lowers_its_floor_with_history_but_not_for_flex_attention():
    matrix = load_matrix("cpu")
    by_attention = {v.attention: v.bounds for v in matrix.variants}
    assert by_attention["sdpa"].latency_floor == 0.4 and by_attention["sdpa"].latency_history_floor == 0.3
    assert by_attention["flex_attention"].latency_history_floor == 1.0
