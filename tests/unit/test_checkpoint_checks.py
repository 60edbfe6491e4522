"""Checkpoints are checked on load, adapters are safetensors only, and records say what produced them."""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from perfsuite.device.environment import environment_changes
from perfsuite.fileio import weights_identity
from perfsuite.models.factory import CheckpointError, adapter_env_var, adapter_for, load_model, tiny_checkpoint
from perfsuite.models.specs import get_spec

SPEC = get_spec("tiny-llama3")


@pytest.fixture
def checkpoint(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint(SPEC, 0), folder)
    return folder


def test_the_unchanged_checkpoint_loads(checkpoint):
    assert load_model(SPEC, checkpoint, "fp32", "sdpa") is not None


def test_a_checkpoint_without_its_score_head_fails_instead_of_scoring_noise(checkpoint):
    weights = load_file(checkpoint / "model.safetensors")
    del weights["score.weight"]
    save_file(weights, checkpoint / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"weights do not match the model \(missing keys \(1\): score\.weight"):
        load_model(SPEC, checkpoint, "fp32", "sdpa")


def test_unexpected_weights_fail_the_load(checkpoint):
    weights = load_file(checkpoint / "model.safetensors")
    weights["model.extra_head.weight"] = weights["score.weight"].clone()
    save_file(weights, checkpoint / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): model\.extra_head\.weight"):
        load_model(SPEC, checkpoint, "fp32", "sdpa")


def test_a_config_that_is_not_the_spec_fails_naming_the_fields(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    config["num_hidden_layers"] = 5
    config["attn_logit_softcapping"] = 50.0
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"config\.json is not tiny-llama3: num_hidden_layers 5 \(spec 3\)"):
        load_model(SPEC, checkpoint, "fp32", "sdpa")


def test_adapters_must_be_safetensors(tmp_path, monkeypatch):
    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.bin").write_bytes(b"pickle")
    monkeypatch.setenv(adapter_env_var(SPEC), str(folder))
    with pytest.raises(FileNotFoundError, match=r"no adapter_model\.safetensors \(it has adapter_model\.bin, a pickle"):
        adapter_for(SPEC)


def test_weights_identity_is_by_content_not_path(checkpoint, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(checkpoint, copy)
    assert weights_identity(copy) == weights_identity(checkpoint)
    weights = load_file(copy / "model.safetensors")
    weights["score.weight"] = weights["score.weight"] + 1
    save_file(weights, copy / "model.safetensors")
    assert weights_identity(copy) != weights_identity(checkpoint)


def test_a_different_checkpoint_or_setting_is_reported_like_a_version_change():
    recorded = {"transformers": "5.24.0", "checkpoint": "weights@aaa", "threads": "2", "nf4_compute_dtype": "fp32"}
    current = {"transformers": "5.24.0", "checkpoint": "weights@bbb", "threads": "2", "nf4_compute_dtype": "fp16"}
    assert environment_changes(recorded, current) == [
        "checkpoint weights@aaa -> weights@bbb",
        "nf4_compute_dtype fp32 -> fp16",
    ]
    assert environment_changes({"transformers": "5.24.0"}, current) == []  # an older record: nothing known
    assert environment_changes({"torch": "2.13.0"}, {"torch": "2.13.0", "peft": "0.21.2"}) == []  # no "peft ? ->"


def test_records_store_what_produced_them(tmp_path):
    from perfsuite.matrix.tier import load_matrix
    from perfsuite.session import PerfSession, SessionConfig
    from tests.conftest import write_matrix

    matrix = load_matrix(str(write_matrix(tmp_path, rows=4)))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", rebaseline=True))
    session.run(matrix.variants[0])
    session.finish()
    record = json.loads(next((tmp_path / "bl" / "portable").rglob("*.json")).read_text())
    env = record["environment"]
    assert env["checkpoint"].startswith("weights@") and env["adapter"] == "none"
    assert env["threads"] == "1" and env["nf4_compute_dtype"] and env["reference_dtype"] == "fp32"
