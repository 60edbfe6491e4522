"""The history's benchmark pieces: the pool of recorded runs split by their busy signal,
detection counted within one run of the step, the compare chain's flags, and the scale run."""

from __future__ import annotations

import json

import numpy as np

from perfsuite.history import bench
from tests.unit.history_data import report, write

V = "tiny-llama3-fp32-sdpa-sorted"


def _pool(tmp_path, sd: float, runs: int = 40):
    rng = np.random.default_rng(0)
    docs = [report(i, {V: float(100 * np.exp(rng.normal(0, sd)))}) for i in range(runs)]
    docs[3]["variants"][0]["measurement"]["latency"]["other_cpu_share"] = 0.5  # a busy run
    docs[3]["variants"][0]["measurement"]["latency"]["median_s"] = 0.25
    return bench.load_pool(write(tmp_path, docs))


def test_the_pool_splits_runs_by_their_own_busy_signal(tmp_path):
    pool = _pool(tmp_path, 0.01)
    assert len(pool.quiet[V]) == 39 and pool.busy[V] == [250.0]


def test_a_step_well_above_the_noise_is_found_and_flat_histories_stay_quiet(tmp_path):
    pool = _pool(tmp_path, 0.005)
    found = bench.detection(pool, V, 0.10, 10)
    flat = bench.detection(pool, V, 0.0, 20)
    assert found["found"] >= 9 and flat["found"] == 0 and flat["false"] <= 1


def test_a_step_within_the_noise_is_not_claimed(tmp_path):
    pool = _pool(tmp_path, 0.10)
    assert bench.detection(pool, V, 0.05, 10)["found"] <= 3
    assert bench.smallest_detectable(pool, V) != 0.05


def test_the_chain_flags_ten_two_percent_merges_and_not_ten_a_a():
    assert bench.chained(10, 1.02, 0.03)["flagged"] and not bench.chained(10, 1.0, 0.03)["flagged"]
    assert bench.chained(10, 1.02, 0.03)["single_merges_flagged"] == 0


def test_the_scale_run_adds_finds_and_draws(tmp_path):
    result = bench.scale(runs=30, variants=4)
    # every variant steps 30% at 80% of the runs: the machine's run-wide factor, one change point
    assert result["change_points"] == 1
    assert result["html_bytes"] > 0 and result["render_s"] is None
    doc = {
        "settings": {"step": 0.05, "length": 30, "after": 5},
        "scale": result,
        "chain": [bench.chained(10, 1.02, 0.03)],
    }
    text = bench.render(doc)
    assert "30 runs x 4 variants" in text and "flagged" in text
    json.dumps(doc)
