"""Latency histories on the decision's noise model: a variant is searched over its runs' phase,
a shift of every variant is one run-wide change, a selection never changes a variant's result,
and the bounds the selftest prints are the model's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfsuite.history import model_bench
from perfsuite.history.changes import Noise, detectable_step, find_steps, own_noise
from perfsuite.history.ingest import add_files
from perfsuite.history.phase import MIN_PEERS, RUN_FACTOR, RUN_WIDE, moderated
from perfsuite.history.series import find_changes
from perfsuite.history.store import HistoryStore
from tests.unit.history_data import report, write

NAMES = [f"tiny-m{i}-fp32-sdpa-sorted" for i in range(6)]
TARGET = NAMES[0]


def _machine_history(tmp_path, n=30, step_at=20, target_step=1.0, machine_step=1.0, phase_sd=0.10, names=NAMES):
    """Every variant shares each run's phase (sd `phase_sd`) beside 1% noise of its own."""
    rng = np.random.default_rng(7)
    docs = []
    for i in range(n):
        phase = math.exp(rng.normal(0, phase_sd)) * (machine_step if i >= step_at else 1.0)
        lat = {v: 100.0 * (k + 1) * phase * math.exp(rng.normal(0, 0.01)) for k, v in enumerate(names)}
        if i >= step_at:
            lat[TARGET] *= target_step
        docs.append(report(i, lat))
    store = HistoryStore(str(tmp_path / "h.sqlite"))
    add_files(store, write(tmp_path / "files", docs))
    return store


def _latency(changes):
    return [c for c in changes if c.key.metric in ("latency_ms", RUN_FACTOR)]


def test_a_variants_step_is_found_over_its_runs_phase_where_its_raw_series_hides_it(tmp_path):
    with _machine_history(tmp_path, target_step=1.08) as store:
        changes, series = find_changes(store)
    (change,) = _latency(changes)
    assert change.key.series == TARGET and change.over_phase and change.run.commit == f"{20:012x}"
    assert change.low < 1.08 < change.high and "over its runs' phase" in change.describe()
    (raw,) = [s for s in series if s.key.series == TARGET and s.key.metric == "latency_ms"]
    assert find_steps(raw.values) == []  # 10% phases between runs hide 8% from the series alone


def test_every_variant_moving_alike_is_one_run_wide_change_not_one_per_variant(tmp_path):
    with _machine_history(tmp_path, machine_step=1.3, phase_sd=0.01) as store:
        changes, series = find_changes(store)
    (change,) = _latency(changes)
    assert (
        change.key.series == RUN_WIDE
        and change.key.metric == RUN_FACTOR
        and change.ratio == pytest.approx(1.3, rel=0.03)
    )
    assert "the machine or a shared library moved" in change.describe()
    assert any(s.key.metric == RUN_FACTOR for s in series)  # drawn on the dashboard and in `show`


def test_a_selection_does_not_change_a_variants_result(tmp_path):
    with _machine_history(tmp_path, target_step=1.08) as store:
        (whole,) = _latency(find_changes(store)[0])
        (selected,) = _latency(find_changes(store, TARGET)[0])
    assert (selected.change_id, selected.ratio, selected.over_phase) == (whole.change_id, whole.ratio, True)


def test_a_variant_with_fewer_peers_than_the_median_needs_is_searched_raw(tmp_path):
    few = NAMES[:MIN_PEERS]  # MIN_PEERS - 1 peers each: their median would move with the target's step
    with _machine_history(tmp_path, target_step=1.5, phase_sd=0.01, names=few) as store:
        changes, series = find_changes(store)
    (change,) = _latency(changes)
    assert change.key.series == TARGET and not change.over_phase
    assert not [s for s in series if s.key.metric == RUN_FACTOR]


def test_a_series_own_noise_is_not_inflated_by_its_step():
    rng = np.random.default_rng(0)
    values = 100 * np.exp(rng.normal(0, 0.02, 40))
    values[20:] *= 1.5
    noise = own_noise(values)
    assert noise is not None and 0.01 < math.sqrt(noise.variance) < 0.03 and noise.df == 38


def test_moderation_pulls_a_short_series_towards_the_machines_noise():
    short = Noise(0.01, 2)
    assert moderated(short, 0.04, 38).variance == pytest.approx((38 * 0.04 + 2 * 0.01) / 40)
    assert moderated(short, 0.04, math.inf) == Noise(0.04, math.inf)
    assert moderated(short, 0.04, 0) is short


def test_the_bound_with_the_boundary_known_is_the_two_sample_power_formula():
    # (z_0.9995 + z_0.9) x 4% x sqrt(1/20 + 1/10) = 4.572 x 0.01549
    assert detectable_step(Noise(0.04**2, math.inf), 20, 10) == pytest.approx(math.expm1(0.0708), rel=0.01)
    assert detectable_step(Noise(0.04**2, 10), 20, 10) > detectable_step(Noise(0.04**2, math.inf), 20, 10)


def test_an_ideal_search_needs_a_larger_step_than_a_test_that_knows_the_boundary():
    known = math.log1p(detectable_step(Noise(1.0, math.inf), 20, 10))  # in units of the sd
    searching = model_bench.scan_bound(20, 10, draws=1000)
    assert known < searching < 1.6 * known


def test_the_selftest_renders_the_model_table_beside_its_bounds():
    sc = model_bench.ModelScenario("small", 6, 0.02, 0.05, before=10, after=6)
    row = model_bench.model_detection(sc, 0.2, histories=5, seed=1)
    assert 0 <= row["found"] <= 5 and set(row) >= {"raw_found", "false", "raw_false"}
    text = "\n".join(
        model_bench.render_model(
            [
                {
                    "scenario": sc.name,
                    "searched_sd": sc.searched_sd,
                    "known_split_bound": 0.07,
                    "scan_bound": 0.1,
                    "at_known": row,
                    "at_scan": row,
                    "flat": {**row, "histories": 5},
                }
            ]
        )
    )
    assert "small" in text and "+7.0%" in text and "+10.0%" in text
    assert model_bench.wilson(9, 10)[0] == pytest.approx(0.596, abs=0.01)
