"""Trained miniatures: reproducible training, shipped weights used, stale weights refused."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pytest
from safetensors.torch import load_file

from perfsuite.data.sample import SAMPLE_SEED
from perfsuite.data.tokenizer import load_tiny_tokenizer
from perfsuite.models.factory import load_model, tiny_checkpoint
from perfsuite.models.specs import SPECS, get_spec
from perfsuite.models.training import (
    REPORT_FILE,
    TRAINED_DIR,
    WEIGHTS_FILE,
    Stage,
    TrainConfig,
    encoded_rows,
    evaluate,
    save_trained,
    train,
    trained_weights,
)

TINY = [name for name, spec in SPECS.items() if spec.tiny and not spec.softcap_of]  # a -nocap twin loads its model's
QUICK = TrainConfig(heldout_rows=12, stages=(Stage(64, 1, 3e-3, rows=24),), batch_size=8, warmup_steps=1)


def test_same_seed_same_model():
    spec = get_spec("tiny-mistral")
    _, first = train(spec, QUICK, log=lambda *_: None)
    _, second = train(spec, QUICK, log=lambda *_: None)
    assert first["heldout"]["log_loss"] == pytest.approx(second["heldout"]["log_loss"], abs=1e-9)


@pytest.mark.parametrize("name", TINY)
def test_shipped_miniatures_are_trained_for_this_spec(name):
    report = json.loads((TRAINED_DIR / name / REPORT_FILE).read_text())
    assert report["spec_fingerprint"] == get_spec(name).fingerprint()
    assert trained_weights(get_spec(name)) == TRAINED_DIR / name / WEIGHTS_FILE
    assert report["config"]["stages"] == [asdict(stage) for stage in TrainConfig().stages]


@pytest.mark.parametrize("name", TINY)
def test_shipped_miniatures_beat_uniform_on_held_out_rows_at_the_tier_length(name, tmp_path):
    """Scored here, not read from training.json: the first 96 held-out rows (a seed training
    never draws) at the CPU tier's max_length must sit clearly below uniform's ln 3, so that
    a fault that flattens or scrambles predictions shows (all 400: docs/quality.md)."""
    cfg = TrainConfig()
    spec = get_spec(name)
    tokenizer = load_tiny_tokenizer()
    model = load_model(spec, tiny_checkpoint(spec, tokenizer.pad_id, tmp_path), "fp32", spec.default_attention)
    scores = evaluate(model, encoded_rows(96, cfg.heldout_seed, cfg.heldout_max_length), tokenizer.pad_id)
    assert scores["log_loss"] < math.log(3) - 0.1, (
        f"{name}: held-out log-loss {scores['log_loss']:.3f} (ln 3 = {math.log(3):.3f})"
    )


def test_training_never_draws_the_held_out_rows():
    cfg = TrainConfig()
    epochs = sum(stage.epochs for stage in cfg.stages)
    seeds = {cfg.epoch_seed(i) for i in range(epochs)}
    assert len(seeds) == epochs
    assert cfg.heldout_seed not in seeds
    assert SAMPLE_SEED not in seeds  # nor the bundled sample the CPU tier scores


def test_the_miniature_checkpoint_holds_the_trained_weights(tmp_path):
    spec = get_spec("tiny-llama3")
    folder = tiny_checkpoint(spec, 0, tmp_path)
    shipped, built = (
        load_file(str(TRAINED_DIR / spec.name / WEIGHTS_FILE)),
        load_file(str(folder / "model.safetensors")),
    )
    assert set(shipped) == set(built)
    assert all((shipped[k] == built[k]).all() for k in shipped)


def test_weights_trained_for_another_spec_are_refused_naming_the_file(tmp_path):
    llama, mistral = get_spec("tiny-llama3"), get_spec("tiny-mistral")
    model, report = train(mistral, QUICK, log=lambda *_: None)
    save_trained(model, mistral, report, tmp_path)
    (tmp_path / llama.name).mkdir()
    (tmp_path / mistral.name / WEIGHTS_FILE).rename(tmp_path / llama.name / WEIGHTS_FILE)
    with pytest.raises(
        ValueError, match=rf"{llama.name}/{WEIGHTS_FILE}: trained for spec .* rerun scripts/train_tiny.py"
    ):
        trained_weights(llama, tmp_path)
