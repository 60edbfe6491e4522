"""Trained miniatures: reproducible training, shipped weights used, stale weights refused."""

from __future__ import annotations

import json
import math

import pytest
from safetensors.torch import load_file

from perfsuite.models.factory import tiny_checkpoint
from perfsuite.models.specs import SPECS, get_spec
from perfsuite.training import (
    REPORT_FILE,
    TRAINED_DIR,
    WEIGHTS_FILE,
    Stage,
    TrainConfig,
    save_trained,
    train,
    trained_weights,
)

TINY = [name for name, spec in SPECS.items() if spec.tiny]
QUICK = TrainConfig(train_rows=24, heldout_rows=12, stages=(Stage(64, 1, 3e-3),), batch_size=8, warmup_steps=1)


def test_same_seed_same_model():
    spec = get_spec("tiny-mistral")
    _, first = train(spec, QUICK, log=lambda *_: None)
    _, second = train(spec, QUICK, log=lambda *_: None)
    assert first["heldout"]["log_loss"] == pytest.approx(second["heldout"]["log_loss"], abs=1e-9)


@pytest.mark.parametrize("name", TINY)
def test_shipped_miniatures_are_trained_for_this_spec_and_predict_from_the_input(name):
    """Trained for the current spec, and no longer near-uniform: training moved the loss off ln 3
    (held-out numbers, good and bad, are in docs/quality.md)."""
    report = json.loads((TRAINED_DIR / name / REPORT_FILE).read_text())
    assert report["spec_fingerprint"] == get_spec(name).fingerprint()
    assert trained_weights(get_spec(name)) == TRAINED_DIR / name / WEIGHTS_FILE
    final_train_loss = report["history"][-1]["train_loss"]
    assert final_train_loss < math.log(3) - 0.1


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
