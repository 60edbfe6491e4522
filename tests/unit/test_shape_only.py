"""Shape-only construction for the GPU tier, checked on CPU (meta device and tiny models)."""

from __future__ import annotations

import pytest
import torch

from perfsuite.data.formatting import EncodedRow
from perfsuite.measure.batching import batch_rows
from perfsuite.measure.runner import _forward_pass
from perfsuite.models.factory import checkpoint_env_var, checkpoint_for, shape_only_model
from perfsuite.models.specs import get_spec


def _batch():
    rows = [EncodedRow("1", tuple(range(5, 40)), 0, 0), EncodedRow("2", tuple(range(5, 20)), 1, 0)]
    return batch_rows(rows, 2, "dynamic", 64, pad_id=0)


def test_full_size_model_builds_on_meta_without_memory():
    model = shape_only_model(get_spec("gemma2-9b"), "fp16", "eager", pad_token_id=0, device="meta")
    params = sum(p.numel() for p in model.parameters())
    assert params / 1e9 == pytest.approx(9.24, abs=0.02)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert {p.dtype for p in model.parameters()} == {torch.float16}


def test_tiny_shape_only_model_runs_a_batch_on_cpu():
    model = shape_only_model(get_spec("tiny-llama3"), "fp32", "sdpa", pad_token_id=0, device="cpu")
    (logits,) = _forward_pass(model, _batch(), "cpu")
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_nf4_quantises_every_linear_but_the_score_head():
    import bitsandbytes as bnb

    model = shape_only_model(get_spec("tiny-llama3"), "nf4", "sdpa", 0, device="cpu", nf4_compute_dtype="fp32")
    linears = {n: type(m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert linears.pop("score") is torch.nn.Linear
    assert linears and set(linears.values()) == {bnb.nn.Linear4bit}
    (logits,) = _forward_pass(model, _batch(), "cpu")
    assert torch.isfinite(logits).all()


def test_out_of_memory_names_the_batch_shape():
    class Exploding(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(MemoryError, match=r"batch shape 2x35"):
        _forward_pass(Exploding(), _batch(), "cpu")


def test_checkpoint_variable_and_missing_folder(monkeypatch, tmp_path):
    spec = get_spec("gemma2-9b")
    assert checkpoint_env_var(spec) == "PERFSUITE_CHECKPOINT_GEMMA2_9B"
    monkeypatch.delenv("PERFSUITE_CHECKPOINT_GEMMA2_9B", raising=False)
    assert checkpoint_for(spec) is None
    monkeypatch.setenv("PERFSUITE_CHECKPOINT_GEMMA2_9B", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"PERFSUITE_CHECKPOINT_GEMMA2_9B=.*no config\.json"):
        checkpoint_for(spec)


def test_lora_adapter_is_applied_unmerged(tmp_path, monkeypatch):
    """A local PEFT adapter (PERFSUITE_ADAPTER_<MODEL>) wraps the model and changes its outputs."""
    from peft import LoraConfig, get_peft_model

    from perfsuite.matrix.tier import load_matrix
    from perfsuite.models.factory import adapter_env_var
    from perfsuite.session import PerfSession, SessionConfig
    from tests.conftest import write_matrix

    spec = get_spec("tiny-llama3")
    torch.manual_seed(0)
    base = shape_only_model(spec, "fp32", "sdpa", 0, device="cpu")
    lora = LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")

    matrix = load_matrix(str(write_matrix(tmp_path, rows=4)))
    plain = PerfSession(matrix, SessionConfig(baselines=tmp_path / "b")).run(matrix.variants[0])
    monkeypatch.setenv(adapter_env_var(spec), str(tmp_path / "adapter"))
    adapted = PerfSession(matrix, SessionConfig(baselines=tmp_path / "b")).run(matrix.variants[0])
    assert adapted.measurement is not None, adapted.verdict.reason
    assert any("LoRA adapter" in n for n in adapted.notes)
    assert adapted.measurement.quality.log_loss != plain.measurement.quality.log_loss
