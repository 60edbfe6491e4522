"""The competition's recipes as matrix values (issue #37): softcapping switched off as a
declared model, judged against the capped model's reference; token-budget batches in the tier."""

from __future__ import annotations

import pytest

from perfsuite.matrix.tier import load_matrix
from perfsuite.models.specs import SPECS, get_spec
from perfsuite.models.training import trained_weights
from perfsuite.session import PerfSession, SessionConfig


def test_every_softcapping_model_has_a_nocap_twin_with_the_same_weights():
    capped = get_spec("tiny-gemma2")
    nocap = get_spec("tiny-gemma2-nocap")
    assert capped.softcapping and not nocap.softcapping
    assert nocap.config["final_logit_softcapping"] is None and nocap.softcap_of == "tiny-gemma2"
    assert {k: v for k, v in nocap.config.items() if "softcapping" not in k} == {
        k: v for k, v in capped.config.items() if "softcapping" not in k
    }
    assert "gemma2-9b-nocap" in SPECS and not any(s.softcapping for n, s in SPECS.items() if n.endswith("-nocap"))
    assert trained_weights(capped) is not None  # the twin loads these (factory.tiny_checkpoint)


def test_the_cpu_tier_lists_the_recipes_and_says_why_the_rest_skip():
    matrix = load_matrix("cpu")
    session = PerfSession(matrix)
    ids = {v.id: session.skip_reason(v) for v in matrix.variants}
    assert ids["tiny-llama3-fp32-sdpa-token_budget"] is None
    assert ids["tiny-gemma2-nocap-fp32-eager-sorted"] is None
    assert "softcapping off is a declared recipe" in ids["tiny-gemma2-nocap-bf16-eager-sorted"]
    assert "token_budget batches rows the same way in every dtype" in ids["tiny-llama3-bf16-sdpa-token_budget"]
    assert ids["tiny-llama3-fp32-eager-token_budget"] is not None  # sdpa is the path that runs
    # transformers 5.21+ refuse Gemma-2 + sdpa whatever its config (quoted, not hidden); 4.48-5.20
    # accept it, and the variant runs (its reference checks judge it against eager)
    reason = ids["tiny-gemma2-nocap-fp32-sdpa-sorted"]
    assert reason is None or "does not support" in reason


@pytest.mark.slow
def test_softcapping_off_is_judged_against_the_capped_models_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "busy")  # quality is under test, not latency
    matrix = load_matrix("cpu")
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", workload={"rows": 4, "max_length": 256}))
    (variant,) = [v for v in matrix.variants if v.id == "tiny-gemma2-nocap-fp32-eager-sorted"]
    outcome = session.run(variant)
    assert set(session._references) == {"tiny-gemma2"}  # the capped model's fp32 eager reference
    reference = outcome.measurement.quality.reference
    assert reference["max_abs_dp"] > 1e-4  # the cap binds in the miniature: switching it off moves predictions
    assert any(c.kind == "reference" for c in outcome.verdict.checks)


# -- packed sequences -----------------------------------------------------------------------------


def _packed_and_alone(spec_name: str, attention: str, lengths=(9, 6, 4)):
    """Logits of rows packed into one sequence, and of each row run alone, on a seeded model;
    each row ends in the pad id, as real rows end in an EOS that is the pad id (SmolLM2's)."""
    import torch

    from perfsuite.data.formatting import EncodedRow
    from perfsuite.device.probe import _probe_model
    from perfsuite.measure.batching import batch_rows
    from perfsuite.measure.runner import packed_logits

    model = _probe_model(get_spec(spec_name), attention)
    gen = torch.Generator().manual_seed(1)
    rows = [
        EncodedRow(str(i), (*torch.randint(3, 200, (n,), generator=gen).tolist(), 0), 0, 0)
        for i, n in enumerate(lengths)
    ]
    (batch,) = batch_rows(rows, 4, "packed", 16, 0)
    with torch.inference_mode():
        packed = packed_logits(model, batch, "cpu")
        alone = torch.cat([model(input_ids=torch.tensor([rows[i].input_ids])).logits for i in batch.row_index])
    return packed, alone


@pytest.mark.parametrize(
    ("model", "attention"),
    [("tiny-llama3", "sdpa"), ("tiny-llama3", "eager"), ("tiny-mistral", "sdpa"), ("tiny-gemma2", "eager")],
)
def test_packed_rows_score_as_each_row_does_alone(model, attention):
    import torch

    packed, alone = _packed_and_alone(model, attention)
    assert packed.shape == alone.shape == (3, 3)
    assert torch.allclose(packed, alone, atol=1e-5), (packed - alone).abs().max()


@pytest.fixture
def cross_row_attention(monkeypatch):
    """The fault: transformers no longer reads packed rows from the positions, so every row
    attends to the rows before it (what an older release, or a kernel without the mask, does)."""
    from transformers import masking_utils

    monkeypatch.setattr(masking_utils, "find_packed_sequence_indices", lambda position_ids: None)


def test_cross_row_attention_moves_the_packed_scores(cross_row_attention):
    import torch

    packed, alone = _packed_and_alone("tiny-llama3", "sdpa")
    assert torch.allclose(packed[0], alone[0], atol=1e-5)  # the first row sees nothing before it
    assert not torch.allclose(packed[1:], alone[1:], atol=1e-3)


def test_the_probe_skips_packed_variants_whose_rows_would_see_each_other(cross_row_attention, tmp_path):
    from perfsuite.device.probe import SupportProbe

    reason = SupportProbe(tmp_path).packing(get_spec("tiny-llama3"), "sdpa")
    assert reason and "lets rows packed into one sequence attend to each other" in reason
    assert SupportProbe(tmp_path / "fresh").packing(get_spec("tiny-mistral"), "eager") is not None


def test_the_probe_admits_packing_where_the_installed_transformers_keeps_rows_apart(tmp_path):
    from perfsuite.device.probe import SupportProbe

    assert SupportProbe(tmp_path).packing(get_spec("tiny-llama3"), "sdpa") is None


@pytest.mark.slow
def test_the_in_run_reference_fails_a_packed_variant_whose_rows_saw_each_other(
    cross_row_attention, tmp_path, monkeypatch
):
    """The proof does not rest on the probe: with the probe told all is well, the packed
    variant's scores against the one-row-per-batch reference fail it."""
    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "busy")  # quality is under test, not latency
    matrix = load_matrix("cpu")
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", workload={"rows": 4, "max_length": 256}))
    monkeypatch.setattr(session.probe, "packing", lambda *args: None)
    (variant,) = [v for v in matrix.variants if v.id == "tiny-llama3-fp32-sdpa-packed"]
    outcome = session.run(variant)
    failed = {(c.kind, c.name) for c in outcome.verdict.failed}
    assert ("reference", "max |dp|") in failed, outcome.verdict.message(variant.id)
    assert outcome.measurement.work.processed_tokens == outcome.measurement.work.real_tokens


def test_the_cpu_tier_runs_one_packed_variant_and_says_why_the_others_skip():
    matrix = load_matrix("cpu")
    session = PerfSession(matrix)
    reasons = {v.id: session.skip_reason(v) for v in matrix.variants if v.padding == "packed"}
    assert [v for v, r in reasons.items() if r is None] == ["tiny-llama3-fp32-sdpa-packed"]
    assert "about 4x sorted's" in reasons["tiny-mistral-fp32-sdpa-packed"]
    assert {b.name for b in matrix.relative if b.variant.padding == "packed"} == {"packed-vs-sorted"}


def test_a_packed_batch_longer_than_the_models_positions_is_refused_naming_the_field(tmp_path, capsys):
    from perfsuite.cli import main
    from tests.conftest import write_matrix

    matrix = write_matrix(tmp_path, paddings=("packed",), tier_extra="max_batch_tokens = 5000\n")
    assert main(["matrix", "--matrix", str(matrix)]) == 2
    err = capsys.readouterr().err
    assert "max_batch_tokens: a packed batch of up to 5000 tokens is longer than tiny-llama3's" in err
    assert "max_position_embeddings 4096" in err and "Traceback" not in err
    fine = write_matrix(tmp_path / "sorted", paddings=("sorted",), tier_extra="max_batch_tokens = 5000\n")
    assert main(["matrix", "--matrix", str(fine)]) == 0  # the limit is a packed sequence's only


def test_a_run_override_that_makes_a_packed_batch_too_long_is_refused_before_any_model_is_built(tmp_path):
    from tests.conftest import write_matrix

    matrix = load_matrix(str(write_matrix(tmp_path, paddings=("packed",))))
    with pytest.raises(ValueError, match=r"max_position_embeddings 4096.*--batch-size"):
        PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", workload={"batch_size": 64}))
