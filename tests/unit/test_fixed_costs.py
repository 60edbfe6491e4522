"""The fixed costs budget counts before the first row (#37 item 4): measured here as rates
(import, load per GB, quantising per GB), projected onto a model and a card, and resolved
against a flag or a recipe term by term. Real processes run in one slow test only; the rest
stub the child process, the probe and the machine key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.cost.budget import project
from perfsuite.cost.devices import get_device
from perfsuite.cost.explain import Setup
from perfsuite.cost.fixed import BUS_BYTES_PER_S, FixedCosts, Term, model_bytes, projected, resolve
from perfsuite.device.machine import KEY_ENV
from perfsuite.measure import fixed as fixed_mod
from perfsuite.measure.fixed import (
    FILE,
    FixedCostError,
    FixedCostRates,
    load_rates,
    measure,
    rates_from,
    save_rates,
)

GB = 1e9
BYTES = {"1": 1 * 10**9, "5": 3 * 10**9}  # 2 GB between the probes


def _rates(**overrides) -> FixedCostRates:
    samples = {
        "fp16@1": [2.0, 2.1, 1.9],
        "fp16@5": [3.0, 3.2, 2.9],  # 1 s more for 2 GB: 0.5 s/GB, intercept 1.5 s
        "nf4@1": [3.0],
        "nf4@5": [7.0],  # 2 s/GB, 1.5 of it quantising
        "int8@1": [2.0],
        "int8@5": [2.5],  # below the plain slope: quantising counted 0
    }
    rates = rates_from(samples, [4.0, 5.0, 4.5], BYTES, {}, 20e9, "cpu-test-2c", {"torch": "x"}, True, 3)
    return FixedCostRates(**{**rates.__dict__, **overrides})


def test_rates_are_the_slope_between_the_probe_sizes_and_quantising_the_difference():
    r = _rates()
    assert r.read_s_per_gb == pytest.approx(0.5) and r.load_overhead_s == pytest.approx(1.5)
    assert r.quantise_s_per_gb == {"nf4": pytest.approx(1.5), "int8": 0.0}
    assert r.import_s == 4.5  # the median over every process


def test_a_negative_intercept_is_clipped_not_refunded():
    samples = {"fp16@1": [0.1], "fp16@5": [2.1]}
    r = rates_from(samples, [1.0], BYTES, {"nf4": "x", "int8": "x"}, 1e9, "k", {}, True, 1)
    assert r.read_s_per_gb == pytest.approx(1.0) and r.load_overhead_s == 0.0


def _fake_probe(folder: Path, layers: int) -> int:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\0" * layers)
    return BYTES[str(layers)]


def test_measure_interleaves_modes_and_sizes_each_load_from_a_cold_cache(monkeypatch):
    calls: list[tuple[str, str]] = []
    dropped: list[str] = []
    monkeypatch.setattr(fixed_mod, "quantiser_missing", lambda: None)
    monkeypatch.setattr(fixed_mod, "copy_bandwidth", lambda: 10e9)
    monkeypatch.setattr(fixed_mod, "drop_from_page_cache", lambda path: dropped.append(path.parent.name) or True)

    def child(folder: Path, mode: str) -> dict[str, float]:
        calls.append((mode, folder.name))
        layers = int(folder.name.split("-")[1])
        return {"import_s": 3.0, "load_s": 1.0 + layers * {"fp16": 0.25, "nf4": 1.0, "int8": 0.5}[mode]}

    r = measure("cpu-test-2c", {}, repeats=2, child=child, build=_fake_probe)
    one_repeat = [(m, f"probe-{n}") for m in ("fp16", "nf4", "int8") for n in (1, 5)]
    assert calls == one_repeat * 2  # the same order in every repeat
    assert len(dropped) == 2 * len(calls)  # both probes evicted before every load
    assert r.cold_reads and r.repeats == 2 and r.import_s == 3.0
    assert r.read_s_per_gb == pytest.approx(0.5) and r.quantise_s_per_gb["nf4"] == pytest.approx(1.5)


def test_without_bitsandbytes_the_quantisers_are_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(fixed_mod, "quantiser_missing", lambda: "bitsandbytes is not installed")
    monkeypatch.setattr(fixed_mod, "copy_bandwidth", lambda: 10e9)
    monkeypatch.setattr(fixed_mod, "drop_from_page_cache", lambda path: False)
    modes = []
    r = measure("k", {}, 1, lambda f, m: modes.append(m) or {"import_s": 1, "load_s": 1}, _fake_probe)
    assert set(modes) == {"fp16"} and r.quantise_s_per_gb == {} and not r.cold_reads
    assert r.skipped == {"nf4": "bitsandbytes is not installed", "int8": "bitsandbytes is not installed"}
    f = projected(r, Setup("llama3-8b", "nf4", "sdpa").config(), get_device("t4"))
    assert f.quantise_s == 0 and "not measured on k (bitsandbytes is not installed)" in f.where(Term.QUANTISE)


def test_the_record_is_saved_whole_in_this_machines_folder_and_read_back(tmp_path):
    r = _rates()
    path = save_rates(tmp_path, r)
    assert path == tmp_path / "cpu-test-2c" / FILE and not list(path.parent.glob(".*tmp"))
    back, where = load_rates(tmp_path, "cpu-test-2c")
    assert back == r and where == str(path)
    none, why = load_rates(tmp_path, "cpu-other-2c")
    assert none is None and "no fixed-cost record" in why and "perfsuite fixed-costs --save" in why


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("read_s_per_gb"), "field read_s_per_gb: missing"),
        (lambda d: d.update(import_s=-1), "field import_s = -1: must be a number, at least 0"),
        (lambda d: d.update(quantise_s_per_gb={"nf4": "fast"}), "field quantise_s_per_gb.nf4 = 'fast'"),
        (lambda d: d.update(kind="costmodel"), "not a fixed-costs record (field kind)"),
    ],
)
def test_a_broken_record_names_the_file_and_field(tmp_path, edit, message):
    path = save_rates(tmp_path, _rates())
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(FixedCostError, match=str(path).replace(".", r"\.")) as caught:
        load_rates(tmp_path, "cpu-test-2c")
    assert message in str(caught.value)


def test_a_card_reads_the_checkpoint_moves_it_over_the_bus_and_quantises_at_its_bandwidth():
    r, t4 = _rates(), get_device("t4")
    cfg = Setup("llama3-8b", "nf4", "sdpa").config()
    moved = model_bytes(cfg)
    assert moved.checkpoint == moved.bus and moved.quantised < moved.checkpoint  # fp16 crosses, then quantised
    f = projected(r, cfg, t4)
    assert f.import_s == 4.5 and f.install_s == 0
    assert f.load_s == pytest.approx(1.5 + moved.checkpoint / GB * 0.5 + moved.bus / BUS_BYTES_PER_S)
    assert f.quantise_s == pytest.approx(moved.quantised / GB * 1.5 * 20e9 / t4.bandwidth)
    assert "copy bandwidth here / the card's: 20 / 320 GB/s" in f.where(Term.QUANTISE) and "PCIe" in f.where(Term.LOAD)
    cpu = as_cpu(get_device("t4"))
    on_cpu = projected(r, cfg, cpu)
    assert on_cpu.quantise_s == pytest.approx(moved.quantised / GB * 1.5)  # the rate as measured, no bus
    assert on_cpu.load_s == pytest.approx(1.5 + moved.checkpoint / GB * 0.5)


def as_cpu(device):
    from dataclasses import replace

    return replace(device, compute_capability=None, name="a CPU")


def test_fp32_crosses_the_bus_at_four_bytes_and_gptq8_reads_its_own_8bit_checkpoint():
    fp16 = model_bytes(Setup("llama3-8b", "fp16", "sdpa").config())
    fp32 = model_bytes(Setup("llama3-8b", "fp32", "sdpa").config())
    gptq = model_bytes(Setup("llama3-8b", "gptq8", "sdpa").config())
    assert fp32.checkpoint == fp16.checkpoint and fp32.bus == pytest.approx(2 * fp16.bus)
    assert gptq.quantised == 0 and 0.5 * fp16.checkpoint < gptq.checkpoint < 0.6 * fp16.checkpoint


def test_a_flag_beats_the_recipe_which_beats_the_measurement():
    measured = projected(_rates(), Setup("llama3-8b", "nf4", "sdpa").config(), get_device("t4"))
    f = resolve({Term.IMPORT: 7.0}, {Term.INSTALL: 200.0}, "the log", measured)
    assert (f.install_s, f.import_s, f.load_s, f.quantise_s) == (200.0, 7.0, measured.load_s, measured.quantise_s)
    assert (f.where(Term.INSTALL), f.where(Term.IMPORT)) == ("the log", "--import-s")
    assert f.where(Term.LOAD) == measured.where(Term.LOAD) and not f.quantise_in_load
    given = resolve({Term.LOAD: 60.0}, {}, "r", measured)
    assert given.quantise_s == 0 and given.quantise_in_load  # a given load figure includes quantising
    assert given.where(Term.QUANTISE) == "in the load figure (--load-s)"


def test_without_a_measurement_each_term_says_why_it_is_zero():
    f = resolve({}, {}, "r", None, "no fixed-cost record at x/fixedcosts.json")
    assert f.total(2) == 0 and f.source == FixedCosts().source
    assert f.where(Term.IMPORT) == "not given (--import-s); no fixed-cost record at x/fixedcosts.json"
    assert f.where(Term.INSTALL) == "not given (--install-s)"


def test_loading_and_quantising_are_paid_per_copy():
    f = FixedCosts(install_s=10, import_s=5, load_s=20, quantise_s=3)
    setup = Setup("llama3-8b", "nf4", "sdpa")
    lengths = [500, 1000] * 8
    bare = project(setup, get_device("t4"), lengths, 100, 2, False)
    two = project(setup, get_device("t4"), lengths, 100, 2, False, fixed=f)
    assert two.seconds - bare.seconds == pytest.approx(10 + 5 + 2 * (20 + 3))


def test_cli_budget_counts_this_machines_record_and_names_each_term(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, "cpu-test-2c")
    save_rates(tmp_path, _rates())
    args = ["budget", "llama3-8b", "--dtype", "nf4", "--device", "t4", "--baselines", str(tmp_path)]
    assert main(args) in (0, 1)
    out = capsys.readouterr().out
    assert "quantise x2" in out and "measured on cpu-test-2c" in out and "copy bandwidth here" in out
    monkeypatch.setenv(KEY_ENV, "cpu-elsewhere-2c")  # another machine's record is not this one's
    assert main(args) in (0, 1)
    out = capsys.readouterr().out
    assert "measured on" not in out and "no fixed-cost record" in out


def test_cli_budget_with_a_broken_record_is_exit_2_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, "cpu-test-2c")
    path = save_rates(tmp_path, _rates())
    path.write_text("{not json")
    assert main(["budget", "llama3-8b", "--dtype", "nf4", "--device", "t4", "--baselines", str(tmp_path)]) == 2
    assert f"perfsuite: {path}: cannot read it as JSON" in capsys.readouterr().err


@pytest.mark.slow
def test_the_probe_runs_in_fresh_processes_and_saves_a_record(tmp_path, monkeypatch, capsys):
    """The real child process on a small probe: imports, loads, and the record it gives."""
    monkeypatch.setenv(KEY_ENV, "cpu-test-2c")
    monkeypatch.setattr(fixed_mod, "PROBE", {**fixed_mod.PROBE, "hidden_size": 256, "intermediate_size": 512})
    monkeypatch.setattr(fixed_mod, "QUANTISERS", ("nf4",))
    assert main(["fixed-costs", "--repeats", "1", "--save", "--baselines", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rates, _ = load_rates(tmp_path, "cpu-test-2c")
    modes = ["fp16"] + ([] if fixed_mod.quantiser_missing() else ["nf4"])
    assert rates is not None and rates.import_s > 0
    assert set(rates.samples) == {f"{m}@{n}" for m in modes for n in (1, 5)}
    assert "import torch + transformers" in out and "gemma2-9b nf4 on a T4" in out
