"""Baseline store: atomic, per machine, clear errors; latency needs ratio AND rank test."""

from __future__ import annotations

import json

import pytest

from perfsuite.baselines import BaselineError, BaselineStore, check_latency, check_work, make_record
from perfsuite.matrix import Bounds

SAMPLES = [0.100, 0.102, 0.098, 0.101, 0.099, 0.103, 0.100]


def _record(variant="v1", samples=SAMPLES):
    return make_record(
        variant,
        "cpu-test-2c",
        {"rows": 4, "batches": 2, "real_tokens": 100, "processed_tokens": 120},
        samples,
        {"log_loss": 1.0, "accuracy": 0.5},
        Bounds(),
        {"torch": "2.13.0"},
        {"rows": 4},
    )


def test_save_then_load_round_trips(tmp_path):
    store = BaselineStore(tmp_path, "cpu-test-2c", "cpu")
    path = store.save(_record())
    assert path == tmp_path / "cpu-test-2c" / "cpu" / "v1.json"
    assert store.load("v1")["latency"]["samples_s"] == SAMPLES
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_save_never_touches_another_machines_folder(tmp_path):
    other = tmp_path / "cuda-tesla-t4-sm75"
    other.mkdir()
    (other / "v1.json").write_text('{"keep": true}')
    BaselineStore(tmp_path, "cpu-test-2c", "cpu").save(_record())
    assert json.loads((other / "v1.json").read_text()) == {"keep": True}


def test_missing_baseline_is_none(tmp_path):
    assert BaselineStore(tmp_path, "k", "cpu").load("nope") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "unreadable baseline"),
        ("[1, 2]", "not a JSON object"),
        ('{"variant": "v1"}', "baseline lacks"),
    ],
)
def test_corrupt_baseline_names_the_file(tmp_path, content, message):
    store = BaselineStore(tmp_path, "k", "cpu")
    store.path_for("v1").parent.mkdir(parents=True)
    store.path_for("v1").write_text(content)
    with pytest.raises(BaselineError, match=message) as info:
        store.load("v1")
    assert str(store.path_for("v1")) in str(info.value)


def test_baseline_for_another_variant_is_rejected(tmp_path):
    store = BaselineStore(tmp_path, "k", "cpu")
    store.save(_record("v2"))
    store.path_for("v2").rename(store.path_for("v1"))
    with pytest.raises(BaselineError, match="holds variant 'v2'"):
        store.load("v1")


def test_same_speed_passes():
    assert check_latency(SAMPLES, _record()["latency"], Bounds()).ok


def test_twice_as_slow_fails_with_ratio_and_p_value():
    check = check_latency([s * 2 for s in SAMPLES], _record()["latency"], Bounds())
    assert not check.ok
    assert "ratio 2.00x" in check.detail and "Mann-Whitney" in check.detail


def test_hand_halved_median_is_honoured():
    record = _record()
    record["latency"]["median_s"] /= 2
    assert not check_latency(SAMPLES, record["latency"], Bounds()).ok


def test_ratio_over_tolerance_without_significance_passes():
    """Two very noisy samples: the median is 40% higher but ranks overlap - not a regression."""
    base = {"median_s": 0.1, "samples_s": [0.05, 0.1, 0.3, 0.06, 0.25]}
    check = check_latency([0.14, 0.04, 0.31, 0.07, 0.2], base, Bounds(latency_ratio=0.35))
    assert check.ok


def test_work_counts_must_match_exactly():
    stored = {"rows": 4, "real_tokens": 100, "processed_tokens": 120}
    checks = check_work({"rows": 4, "real_tokens": 100, "processed_tokens": 200}, stored, 0.0)
    assert [c.name for c in checks if not c.ok] == ["processed_tokens"]
