"""Fitting the cost model's efficiency factors, and the fits stored beside the baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfsuite.cost.devices import get_device, with_efficiency
from perfsuite.cost.fit import (
    FIT_FILE,
    Observation,
    device_key_for,
    fit,
    fit_and_save,
    fitted_device,
    load_fit,
    load_machine_fit,
    save_fit,
)
from perfsuite.cost.model import CostConfig, predict
from perfsuite.models.specs import get_spec
from perfsuite.variant import Variant

H100_KEY = "cuda-nvidia-h100-80gb-hbm3-sm90"
ROOT = Path(__file__).resolve().parents[2] / "baselines"


def _obs(device, model, dtype, attention, shapes):
    cfg = CostConfig.for_model(get_spec(model), dtype, attention, "fp16")
    return Observation(f"{model}-{dtype}-{attention}", cfg, tuple(shapes), predict(cfg, device, shapes).total)


def test_fit_recovers_known_factors_from_their_own_predictions():
    truth = with_efficiency(
        get_device("a100"), compute_eff=0.4, attention_eff=0.25, memory_eff=0.55, layer_overhead_s=5e-5
    )
    obs = [
        _obs(truth, m, d, a, [(b, s)] * 3)
        for m in ("llama3-8b", "gemma2-9b")
        for d, a in (("fp16", "eager"), ("fp16", "sdpa"), ("nf4", "sdpa"), ("bf16", "eager"))
        for b, s in ((1, 128), (4, 2048))
        if not (m == "gemma2-9b" and a == "sdpa")
    ]
    fitted, errors = fit(get_device("a100"), obs)
    assert max(abs(e - 1) for e in errors.values()) < 0.05
    assert fitted.compute_eff == pytest.approx(0.4, rel=0.25)


def test_fit_needs_enough_observations():
    with pytest.raises(ValueError, match="at least 4"):
        fit(get_device("t4"), [])


def test_stored_h100_fit_explains_the_h100_baselines_within_20_percent(tmp_path):
    """The committed fit reproduces from the committed baselines (no GPU needed)."""
    root = tmp_path / "baselines"
    (root / H100_KEY).mkdir(parents=True)
    for tier in ("gpu", "gpu-check"):
        (root / H100_KEY / tier).symlink_to(ROOT / H100_KEY / tier)
    _, errors, others, path = fit_and_save(root, H100_KEY, ["gpu", "gpu-check"])
    assert all(0.8 <= e <= 1.2 for e in errors.values()), errors
    assert set(others) == {"gpu/llama3-8b-int8-sdpa-sorted"}  # LLM.int8 is outside the model
    stored = json.loads((ROOT / H100_KEY / FIT_FILE).read_text())
    fresh = json.loads(path.read_text())
    for field in ("compute_eff", "attention_eff", "memory_eff"):
        assert fresh[field] == pytest.approx(stored[field], rel=0.01)


def test_saved_fit_round_trips_and_a_corrupt_one_names_its_file(tmp_path):
    device = with_efficiency(
        get_device("t4"), compute_eff=0.3, attention_eff=0.2, memory_eff=0.6, layer_overhead_s=1e-4
    )
    path = tmp_path / FIT_FILE
    save_fit(path, device, {"x": 1.0}, "test")
    back = load_fit(path, get_device("t4"))
    assert (back.compute_eff, back.memory_eff) == (0.3, 0.6)
    path.write_text("{ nope")
    with pytest.raises(ValueError, match=str(path)):
        load_fit(path, get_device("t4"))


def test_machine_without_a_fit_says_how_to_make_one(tmp_path):
    device, why = load_machine_fit(tmp_path, "cpu-some-cpu-2c")
    assert device is None and "perfsuite fit" in why


def test_gpus_without_their_own_fit_borrow_the_measured_gpus_factors():
    device, source = fitted_device("t4", ROOT)
    assert f"borrowed from the cost-model fit of {H100_KEY}" in source
    assert "times 1.40 for this card from the public 'Gemma-2 9b 4-bit QLoRA' notebook" in source
    assert device.matmul_flops == get_device("t4").matmul_flops
    l4, source = fitted_device("l4", ROOT)  # no public calibration: the H100's factors as they are
    h100, h100_source = fitted_device("h100", ROOT)
    assert "times" not in source and l4.compute_eff == h100.compute_eff
    assert device.compute_eff == pytest.approx(h100.compute_eff / 1.40)
    assert h100_source.startswith(f"cost-model fit of {H100_KEY} (")


@pytest.mark.parametrize(
    ("vid", "parts"),
    [
        ("tiny-llama3-fp32-flex_attention-sorted", ("tiny-llama3", "fp32", "flex_attention", "sorted")),
        ("gemma2-9b-nf4-flash_attention_2-static", ("gemma2-9b", "nf4", "flash_attention_2", "static")),
    ],
)
def test_variant_ids_split_back_into_axes(vid, parts):
    assert Variant.split_id(vid) == parts
    assert Variant(*parts).id == vid


@pytest.mark.parametrize(
    ("name", "key"), [(H100_KEY, "h100"), ("Tesla T4", "t4"), ("NVIDIA A10G", "a10g"), ("RTX 4090", None)]
)
def test_gpu_names_map_to_datasheets(name, key):
    assert device_key_for(name) == key
