"""explain's factor chain and budget's projection (cost model only: fast, no torch run)."""

from __future__ import annotations

import contextlib
import math

import pytest

from perfsuite.cli import main
from perfsuite.cost.budget import cheapest_fix, parse_duration, project
from perfsuite.cost.devices import get_device
from perfsuite.cost.explain import (
    ExplainError,
    Setup,
    decompose,
    shapes_for,
    what_ifs,
)

LENGTHS = [300, 1800, 900, 2500, 650, 1200, 80, 1500] * 4
T4 = get_device("t4")


def test_factors_multiply_to_the_predicted_ratio():
    a, b = Setup("gemma2-9b", "nf4", "eager"), Setup("llama3-8b", "nf4", "sdpa")
    pa, pb, factors = decompose(a, b, T4, LENGTHS)
    assert math.prod(f.factor for f in factors) == pytest.approx(pa.total / pb.total)
    steps = {f.step: f.factor for f in factors}
    assert steps["layers"] > 1.25  # 42 vs 32 layers
    assert steps["attention implementation"] > 1.05  # eager's score traffic
    assert "weights / compute dtype" not in steps  # same dtype: no step


def test_a_model_against_itself_has_no_factors():
    a = Setup("llama3-8b", "fp16", "sdpa")
    pa, pb, factors = decompose(a, a, T4, LENGTHS)
    assert factors == [] and pa.total == pytest.approx(pb.total)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (Setup("gemma2-9b", "fp16", "sdpa"), r"transformers \S+: Gemma2ForSequenceClassification does not support"),
        (Setup("llama3-8b", "fp16", "flash_attention_2"), "sm80+"),
    ],
)
def test_configurations_that_cannot_run_are_named(setup, message):
    """Hardware rules from data; library refusals quoted from the installed transformers."""
    if setup.attention == "sdpa" and not _installed_refuses_gemma2_sdpa():
        message = "sdpa computes a different model"  # accepted here (4.48-5.20): refused as another model
    with pytest.raises(ExplainError, match=message):
        project(setup, T4, LENGTHS, 100, 1, False)


def _installed_refuses_gemma2_sdpa() -> bool:
    from perfsuite.models.specs import get_spec

    spec = get_spec("tiny-gemma2")
    try:
        spec.model_class()._from_config(spec.build_config(0), attn_implementation="sdpa")
    except ValueError:
        return True
    return False


def test_an_accepted_attention_that_drops_softcapping_is_not_projected(monkeypatch):
    """On a release that accepts Gemma-2 + sdpa, explain must not project (or suggest) it."""
    from perfsuite.cost import explain

    monkeypatch.setattr(explain, "implementation_reason", lambda *args: None)  # the library accepts it
    with pytest.raises(ExplainError, match=r"caps attention logits at 50 .* sdpa computes a different model"):
        project(Setup("gemma2-9b", "nf4", "sdpa"), T4, LENGTHS, 100, 1, False)
    fixes = cheapest_fix(
        project(Setup("gemma2-9b", "nf4", "eager", padding="static"), T4, LENGTHS, 25000, 2, True), T4, LENGTHS
    )
    assert next(p for label, p, _ in fixes if label == "attention sdpa") is None


def test_sorted_rows_are_dealt_round_robin_longest_first():
    per_gpu = shapes_for(Setup("llama3-8b", "fp16", "sdpa", batch_size=2), [5, 50, 20, 40], devices=2)
    assert per_gpu == [[(2, 50)], [(2, 40)]]  # 50 and 20 on one, 40 and 5 on the other


def test_projection_scales_with_rows_devices_and_tta():
    setup = Setup("llama3-8b", "nf4", "sdpa")
    one = project(setup, T4, LENGTHS, 1000, 1, False).seconds
    assert project(setup, T4, LENGTHS, 2000, 1, False).seconds == pytest.approx(2 * one, rel=0.02)
    assert project(setup, T4, LENGTHS, 1000, 2, False).seconds == pytest.approx(one / 2, rel=0.05)
    assert project(setup, T4, LENGTHS, 1000, 1, True).seconds == pytest.approx(2 * one, rel=0.02)


def test_cheapest_fix_lists_free_changes_first():
    setup = Setup("gemma2-9b", "nf4", "eager", padding="static")
    static = project(setup, T4, LENGTHS, 25000, 2, True)
    sorted_ = project(Setup("gemma2-9b", "nf4", "eager"), T4, LENGTHS, 25000, 2, True)
    limit = (static.seconds + sorted_.seconds) / 2  # only removing padding waste makes it fit
    assert not static.fits(limit)
    fixes = cheapest_fix(static, T4, LENGTHS)
    first = next(label for label, proj, _ in fixes if proj is not None and proj.fits(limit))
    assert first == "padding sorted"
    assert next((label, p) for label, p, _ in fixes if label == "attention sdpa") == ("attention sdpa", None)


def test_what_ifs_flag_emulated_bf16_on_a_t4():
    rows = {label: (ratio, note) for label, ratio, note in what_ifs(Setup("llama3-8b", "fp16", "sdpa"), T4, LENGTHS)}
    assert rows["dtype bf16"][0] > 3 and "emulated" in rows["dtype bf16"][1]
    assert rows["padding static"][0] > 1


@pytest.mark.parametrize(
    ("text", "seconds"), [("9h", 32400), ("90m", 5400), ("30s", 30), ("1.5H", 5400), ("9h30m", 34200), ("1h1m1s", 3661)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9 hours", "cannot read"),
        ("9", "give a unit"),
        ("-9h", "positive"),
        ("0s", "positive"),
        ("infh", "positive"),
        ("9h30", "cannot read"),
    ],
)
def test_bad_duration_is_a_clear_error(text, message):
    with pytest.raises(ExplainError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["budget", "llama3-8b", "--rows", "-5"], "--rows: '-5' must be at least 1"),
        (["budget", "llama3-8b", "--gpus", "0"], "--gpus: '0' must be at least 1"),
        (["budget", "llama3-8b", "--batch-size", "0"], "--batch-size: '0' must be at least 1"),
        (["budget", "llama3-8b", "--attention", "foo"], "--attention: invalid choice: 'foo'"),
        (["explain", "gemma2-9b", "llama3-8b", "--attention-a", "foo"], "invalid choice: 'foo'"),
        (["run", "--rows", "0"], "--rows: '0' must be at least 1"),
    ],
)
def test_bad_numbers_and_names_are_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_bad_limit_or_tokenizer_is_exit_2_without_a_traceback(tmp_path, capsys):
    assert main(["budget", "llama3-8b", "--limit", "9", "--baselines", str(tmp_path)]) == 2
    assert "--limit '9': give a unit" in capsys.readouterr().err
    junk = tmp_path / "junk.txt"
    junk.write_text("not a tokenizer")
    assert main(["budget", "llama3-8b", "--tokenizer", str(junk), "--baselines", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--tokenizer {junk}: not a usable tokenizer.json" in err and "Traceback" not in err


def test_cli_explain_prints_the_decomposition(capsys, tmp_path):
    assert (
        main(["explain", "gemma2-9b", "llama3-8b", "--device", "t4", "--dtype", "nf4", "--baselines", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "why gemma2-9b / llama3-8b" in out and "attention implementation" in out and "default efficiency" in out


def test_cli_budget_exit_code_says_whether_it_fits(capsys, tmp_path):
    args = ["budget", "llama3-8b", "--dtype", "nf4", "--device", "t4", "--baselines", str(tmp_path)]
    assert main([*args, "--limit", "100h"]) == 0
    assert "against 100.00 h: fits" in capsys.readouterr().out
    assert main([*args, "--limit", "1m"]) == 1
    assert "does not fit" in capsys.readouterr().out


def test_tiny_bpe_on_other_data_warns_and_llama3_on_gemma_says_what_it_is(tmp_path, capsys):
    import shutil

    from perfsuite.data.sample import SAMPLE_PATH

    data = shutil.copy(SAMPLE_PATH, tmp_path / "mine.csv")
    argv = ["budget", "gemma2-9b", "--dtype", "nf4", "--rows", "100", "--limit", "9h", "--data", str(data)]
    assert main([*argv, "--baselines", str(tmp_path)]) in (0, 1)
    out = " ".join(capsys.readouterr().out.split())
    assert "WARNING: counted with the bundled tiny BPE" in out and "3.1x" in out
    assert main([*argv, "--tokenizer", "llama3", "--baselines", str(tmp_path)]) in (0, 1)
    out = " ".join(capsys.readouterr().out.split())
    assert "Llama-3 BPE (quicktok)" in out and "Gemma-2's rows are counted with Llama-3's tokenizer" in out
    assert "WARNING: counted with the bundled tiny BPE" not in out


def test_the_attribution_does_not_depend_on_which_model_comes_first():
    import math

    a, b = Setup("gemma2-9b", "nf4", "eager"), Setup("llama3-8b", "nf4", "sdpa")
    pa, pb, forward = decompose(a, b, T4, LENGTHS)
    _, _, backward = decompose(b, a, T4, LENGTHS)
    assert math.prod(f.factor for f in forward) == pytest.approx(pa.total / pb.total)
    by_step = {f.step: f.factor for f in backward}
    for f in forward:  # swapping A and B inverts each step's factor exactly
        assert f.factor == pytest.approx(1 / by_step[f.step])


def test_explain_refuses_to_rank_a_model_that_does_not_fit_the_card(capsys):
    argv = ["explain", "gemma2-9b", "llama3-8b", "--device", "t4", "--dtype", "fp32", "--max-length", "512"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "gemma2-9b fp32 needs ~" in err and "it does not fit, so there is no time to compare" in err


def test_explain_takes_dtype_per_side_and_notes_emulated_bf16(capsys):
    argv = ["explain", "tiny-gemma2", "tiny-llama3", "--device", "t4", "--dtype-a", "nf4", "--dtype-b", "bf16"]
    assert main([*argv, "--max-length", "512"]) == 0  # miniatures: an 8B model in bf16 does not fit a T4
    out = " ".join(capsys.readouterr().out.split())
    assert "tiny-gemma2 nf4" in out and "tiny-llama3 bf16" in out
    assert "note: tiny-llama3 bf16: no bf16 tensor cores" in out
    assert "Shapley values" in out


def test_intervals_come_from_stored_fit_errors_and_for_a_t4_the_held_out_public_runs(tmp_path):
    import json

    from perfsuite.cost.uncertainty import HELD_OUT_T4, interval_for

    for name, errors in (("cpu-a-2c", [0.8, 1.0, 1.25]), ("cuda-x-sm90", [0.9, 1.1])):
        (tmp_path / name).mkdir()
        ratios = {f"v{i}": e for i, e in enumerate(errors)}
        (tmp_path / name / "costmodel.json").write_text(json.dumps({"predicted_over_measured": ratios}))
    h100 = interval_for("h100", tmp_path)
    assert 0.8 < h100.low < 1.0 < h100.high < 1.25 and "5 measured runs (2 machines)" in h100.basis
    t4 = interval_for("t4", tmp_path)
    assert t4.high == pytest.approx(max(r for _, r in HELD_OUT_T4)) and "held-out public T4 runs" in t4.basis
    assert interval_for("t4", tmp_path / "none").basis.startswith("no measured runs found")


def test_budget_verdict_is_three_way():
    from perfsuite.cost.budget import Projection, budget_verdict
    from perfsuite.cost.uncertainty import Interval

    p = Projection(Setup("llama3-8b", "nf4", "sdpa"), 100, 1, False, 3600.0, 1.0, True, scoring_s=3600.0)
    interval = Interval(0.9, 2.0, "test")
    assert budget_verdict(p, interval, 7300) == "fits"
    assert budget_verdict(p, interval, 5000) == "uncertain"
    assert budget_verdict(p, interval, 3000) == "does not fit"
    assert budget_verdict(Projection(p.setup, 100, 1, False, 3600.0, 1.0, False, scoring_s=3600.0), interval, 9e9) == (
        "does not fit"
    )


def test_cli_budget_inside_the_interval_is_uncertain_and_exit_1(capsys):
    argv = ["budget", "gemma2-9b", "--dtype", "nf4", "--device", "t4", "--rows", "25000"]
    assert main([*argv, "--limit", "100h"]) == 0
    capsys.readouterr()
    out_text = ""
    for limit in ("2h", "3h", "4h", "5h", "6h"):
        code = main([*argv, "--limit", limit])
        out_text = " ".join(capsys.readouterr().out.split())
        if "uncertain" in out_text.split("interval:")[0]:
            assert code == 1 and "fits with confidence" in out_text  # the change, or that none does
            break
    else:
        pytest.fail(f"no limit between 2 and 6 h fell inside the interval: {out_text[:400]}")


def test_the_seed_question_as_typed_answers_with_the_recipe_that_fits_and_says_so(capsys):
    """`explain gemma2-9b llama3-8b --device t4`: fp16 (the default) does not fit a 16 GB T4."""
    assert main(["explain", "gemma2-9b", "llama3-8b", "--device", "t4"]) == 0
    out = capsys.readouterr().out
    first = " ".join(out.split("\n\n")[0].split())
    assert first.startswith("the default dtype does not fit (gemma2-9b fp16 needs ~")
    assert "competition recipe: nf4 weights (4-bit bitsandbytes), fp16 compute" in first
    assert "gemma2-9b nf4 eager sorted vs llama3-8b nf4 sdpa sorted" in " ".join(out.split())


def test_a_typed_dtype_that_does_not_fit_is_still_refused_not_replaced(capsys):
    assert main(["explain", "gemma2-9b", "llama3-8b", "--device", "t4", "--dtype", "fp16"]) == 2
    assert "does not fit" in capsys.readouterr().err


def test_what_ifs_mark_the_options_that_do_not_fit_memory():
    rows = {label: (ratio, note) for label, ratio, note in what_ifs(Setup("gemma2-9b", "nf4", "eager"), T4, LENGTHS)}
    assert rows["dtype fp16"][1].startswith("DOES NOT FIT: gemma2-9b fp16 needs ~")
    assert not rows["padding static"][1].startswith("DOES NOT FIT")


def test_int8_is_projected_apart_from_nf4_and_says_how(capsys):
    from perfsuite.cost.model import INT8_OUTLIER_FACTOR

    hours = {}
    for dtype in ("nf4", "int8"):
        assert main(["budget", "gemma2-9b", "--dtype", dtype, "--device", "t4", "--limit", "99h"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        hours[dtype] = float(out.split("projected ")[1].split(" h")[0])
    assert hours["int8"] > 1.5 * hours["nf4"] and INT8_OUTLIER_FACTOR > 1
    assert "LLM.int8's outlier path modelled as x2.11" in out


def test_no_output_cites_a_document_users_do_not_have(capsys):
    for argv in (["explain", "tiny-gemma2", "tiny-llama3", "--device", "t4", "--dtype", "bf16"], ["budget", "--help"]):
        with contextlib.suppress(SystemExit):
            main(argv)
        captured = capsys.readouterr()
        assert "REFERENCE" not in captured.out + captured.err


def test_a_models_shape_is_read_once_then_from_the_cache(monkeypatch, tmp_path):
    from perfsuite.models import shape
    from perfsuite.models.specs import get_spec

    monkeypatch.setenv("PERFSUITE_CACHE", str(tmp_path))
    monkeypatch.setattr(shape, "_SHAPES", {})
    first = shape.shape_of(get_spec("llama3-8b"))
    monkeypatch.setattr(shape, "_SHAPES", {})  # a new process: only the disk cache is left

    def no_build(spec):
        raise AssertionError("built again")

    monkeypatch.setattr(shape, "meta_model", no_build)
    assert shape.shape_of(get_spec("llama3-8b")) == first
    assert len(list((tmp_path / "shapes").glob("*.json"))) == 1
