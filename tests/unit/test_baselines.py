"""Baseline store: portable and machine records, atomic, per machine, clear errors; latency: ratio AND rank test."""

from __future__ import annotations

import json

import pytest

from perfsuite.judge.checks import check_work
from perfsuite.store.baselines import BaselineError, BaselineStore, migrate_v1
from perfsuite.store.records import SCHEMA, Latency, MachineRecord, PortableRecord, Quality

SAMPLES = [0.100, 0.102, 0.098, 0.101, 0.099, 0.103, 0.100]
WORK = {"rows": 4, "batches": 2, "real_tokens": 100, "processed_tokens": 120}


def _portable(variant="v1"):
    return PortableRecord(variant, "cpu", WORK, Quality(1.0, 0.5), {"rows": 4}, {"torch": "2.13.0"}, {})


def _machine(variant="v1", key="cpu-test-2c", samples=SAMPLES):
    return MachineRecord(
        variant, "cpu", key, Latency.from_samples(samples, 0.005), {}, None, {"rows": 4}, {"torch": "2.13.0"}, {}
    )


def _save(store: BaselineStore, portable, machine) -> list:
    """A one-variant rebaseline: the store's only way to write (begin, stage, commit)."""
    store.begin()
    store.stage(portable, machine)
    return store.commit()


def test_save_then_load_round_trips_both_records(tmp_path):
    store = BaselineStore(tmp_path, "cpu-test-2c", "cpu")
    portable_path, machine_path = _save(store, _portable(), _machine())
    assert portable_path == tmp_path / "portable" / "cpu" / "v1.json"
    assert machine_path == tmp_path / "cpu-test-2c" / "cpu" / "v1.json"
    assert store.load_machine("v1").latency.samples_s == tuple(SAMPLES)
    assert store.load_machine("v1").latency.probe_s == 0.005
    loaded = store.load_portable("v1")
    assert (loaded.work, loaded.quality, loaded.settings) == (WORK, Quality(1.0, 0.5), {"rows": 4})
    assert not [p for p in machine_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_portable_records_are_read_from_any_machine_key(tmp_path):
    _save(BaselineStore(tmp_path, "cpu-test-2c", "cpu"), _portable(), _machine())
    other = BaselineStore(tmp_path, "cpu-intel-xeon-8370c-4c", "cpu")
    assert other.load_portable("v1").work == WORK
    assert other.load_machine("v1") is None


def test_save_never_touches_another_machines_folder(tmp_path):
    other = tmp_path / "cuda-tesla-t4-sm75"
    other.mkdir()
    (other / "v1.json").write_text('{"keep": true}')
    _save(BaselineStore(tmp_path, "cpu-test-2c", "cpu"), _portable(), _machine())
    assert json.loads((other / "v1.json").read_text()) == {"keep": True}


def test_a_store_refuses_to_write_another_machines_record(tmp_path):
    with pytest.raises(ValueError, match="refusing to write cuda-tesla-t4-sm75"):
        _save(BaselineStore(tmp_path, "cpu-test-2c", "cpu"), None, _machine(key="cuda-tesla-t4-sm75"))


def test_missing_baseline_is_none(tmp_path):
    store = BaselineStore(tmp_path, "k", "cpu")
    assert store.load_machine("nope") is None and store.load_portable("nope") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "unreadable baseline"),
        ("[1, 2]", "not a JSON object"),
        ('{"schema": 2, "kind": "machine", "variant": "v1"}', "lacks 'tier'"),
        ('{"schema": 1, "variant": "v1"}', "schema 1 record.*perfsuite migrate-baselines"),
        ('{"schema": 99}', "unknown schema 99"),
        ('{"schema": 2, "kind": "portable", "variant": "v1"}', "holds a 'portable' record where a 'machine'"),
    ],
)
def test_corrupt_baseline_names_the_file(tmp_path, content, message):
    store = BaselineStore(tmp_path, "k", "cpu")
    store.path_for("v1").parent.mkdir(parents=True)
    store.path_for("v1").write_text(content)
    with pytest.raises(BaselineError, match=message) as info:
        store.load_machine("v1")
    assert str(store.path_for("v1")) in str(info.value)


def test_bad_latency_field_names_the_field(tmp_path):
    store = BaselineStore(tmp_path, "k", "cpu")
    _save(store, None, _machine(key="k"))
    data = json.loads(store.path_for("v1").read_text())
    data["latency"]["median_s"] = "fast"
    store.path_for("v1").write_text(json.dumps(data))
    with pytest.raises(BaselineError, match=r"latency\.median_s must be a number"):
        store.load_machine("v1")


def test_baseline_for_another_variant_is_rejected(tmp_path):
    store = BaselineStore(tmp_path, "k", "cpu")
    _save(store, None, _machine("v2", key="k"))
    store.path_for("v2").rename(store.path_for("v1"))
    with pytest.raises(BaselineError, match="holds variant 'v2'"):
        store.load_machine("v1")


def _v1_record(variant="tiny-llama3-fp32-sdpa-sorted", key="cpu-test-2c", flops=10):
    return {
        "schema": 1,
        "variant": variant,
        "machine_key": key,
        "recorded_at": "2026-11-27T00:00:00+00:00",
        "environment": {"torch": "2.13.0", "device": "AMD EPYC"},
        "settings": {"rows": 4, "tier": "cpu"},
        "work": {**WORK, "flops": flops, "weight_bytes": 8},
        "latency": {"median_s": 0.1, "samples_s": SAMPLES},
        "quality": {"log_loss": 1.0, "accuracy": 0.5},
        "memory": {"peak_bytes": 1},
        "tolerances": {"latency_ratio": 0.5},
    }


def _write_v1(root, record):
    path = root / record["machine_key"] / "cpu" / f"{record['variant']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_migration_splits_schema_1_into_portable_and_machine_records(tmp_path):
    _write_v1(tmp_path, _v1_record())
    _write_v1(tmp_path, _v1_record("tiny-llama3-bf16-sdpa-sorted"))
    done = migrate_v1(tmp_path, lambda tier, vid: "-fp32-" in vid)
    assert len(done) == 4
    store = BaselineStore(tmp_path, "cpu-test-2c", "cpu")
    fp32, bf16 = "tiny-llama3-fp32-sdpa-sorted", "tiny-llama3-bf16-sdpa-sorted"
    assert store.load_portable(fp32).quality == Quality(1.0, 0.5)
    assert store.load_machine(fp32).quality is None
    assert store.load_portable(bf16).quality is None  # machine-bound dtype: quality stays with the machine
    assert store.load_machine(bf16).quality == Quality(1.0, 0.5)
    assert store.load_portable(fp32).work["flops"] == 10
    assert "device" not in store.load_portable(fp32).environment
    assert json.loads(store.path_for(fp32).read_text())["schema"] == SCHEMA
    assert migrate_v1(tmp_path, lambda tier, vid: True) == []  # idempotent


def test_migration_stops_before_writing_when_two_machines_disagree(tmp_path):
    a = _write_v1(tmp_path, _v1_record(key="cpu-a-2c"))
    b = _write_v1(tmp_path, _v1_record(key="cpu-b-2c", flops=11))
    before = {p: p.read_bytes() for p in (a, b)}
    with pytest.raises(BaselineError, match="disagree on tiny-llama3-fp32-sdpa-sorted's portable figures"):
        migrate_v1(tmp_path, lambda tier, vid: True)
    assert {p: p.read_bytes() for p in (a, b)} == before
    assert not (tmp_path / "portable").exists()


def test_work_counts_must_match_exactly():
    stored = {"rows": 4, "real_tokens": 100, "processed_tokens": 120}
    checks = check_work({"rows": 4, "real_tokens": 100, "processed_tokens": 200}, stored, 0.0)
    assert [c.name for c in checks if not c.ok] == ["processed_tokens"]
