"""The matrix is data: expansion, overrides, exclusions, and device rules with faked caps."""

from __future__ import annotations

import pytest

from perfsuite.device.machine import DeviceCaps
from perfsuite.device.support import skip_reason
from perfsuite.matrix.tier import MatrixError, load_matrix, parse_matrix, variant_notes
from perfsuite.variant import Variant

CPU = DeviceCaps("cpu", "Test CPU", cores=2, bitsandbytes_available=True)
T4 = DeviceCaps("cuda", "Tesla T4", (7, 5), 16 * 2**30, bitsandbytes_available=True, flash_attn_available=True)
A100 = DeviceCaps("cuda", "NVIDIA A100", (8, 0), 80 * 2**30, bitsandbytes_available=True, flash_attn_available=True)
A100_NO_FA = DeviceCaps("cuda", "NVIDIA A100", (8, 0), 80 * 2**30, bitsandbytes_available=True)


def test_cpu_matrix_is_the_full_cross_product():
    m = load_matrix("cpu")
    assert len(m.variants) == 4 * 5 * 3 * 5  # models (tiny-gemma2-nocap too) x dtypes x attentions x paddings
    assert len({v.id for v in m.variants}) == len(m.variants)
    assert m.variants[0].id == "tiny-gemma2-fp32-eager-static"


def test_per_dtype_log_loss_tolerance_comes_from_the_matrix():
    m = load_matrix("cpu")
    by_dtype = {v.dtype: v.bounds.log_loss_abs for v in m.variants}
    assert by_dtype["fp32"] < by_dtype["fp16"] < by_dtype["nf4"]


def test_gemma2_sdpa_skip_quotes_the_installed_transformers_or_runs(tmp_path):
    """No written-in rule: the installed transformers decides, and its own words are the reason."""
    import transformers

    from perfsuite.device.probe import SupportProbe
    from perfsuite.models.specs import get_spec

    m = load_matrix("cpu")
    v = next(v for v in m.variants if v.id == "tiny-gemma2-fp32-sdpa-sorted")
    reason = skip_reason(v, m.settings, CPU, SupportProbe(tmp_path))
    spec = get_spec("tiny-gemma2")
    try:
        spec.model_class()._from_config(spec.build_config(0), attn_implementation="sdpa")
    except ValueError as exc:
        assert reason.startswith(f"transformers {transformers.__version__}: ")
        assert str(exc).split(".")[0] in reason
    else:
        assert reason is None  # accepted: it runs, and the in-run reference judges it


def test_excluded_variants_keep_their_reason():
    m = load_matrix("cpu")
    v = next(v for v in m.variants if v.id == "tiny-llama3-fp16-eager-static")
    assert "fp16" in m.excluded(v)
    assert m.excluded(next(v for v in m.variants if v.id == "tiny-llama3-fp16-sdpa-static")) is None


def test_gpu_tier_skips_on_a_cpu_machine():
    m = load_matrix("gpu")
    reasons = {skip_reason(v, m.settings, CPU) for v in m.variants}
    assert reasons == {"GPU tier: this machine has no CUDA device"}


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        (CPU, "no CUDA device"),
        (T4, "needs sm80+; Tesla T4 is sm75"),
        (A100_NO_FA, "flash-attn package"),
        (A100, None),
    ],
)
def test_flash_attention_rules(caps, expected):
    m = load_matrix("gpu")
    v = Variant("llama3-8b", "fp16", "flash_attention_2", "sorted", "gpu")
    reason = skip_reason(v, m.settings, caps)
    if expected is None:
        assert reason is None
    else:
        assert expected in reason


def test_flash_attention_refuses_fp32():
    m = load_matrix("gpu")
    v = Variant("llama3-8b", "fp32", "flash_attention_2", "sorted", "gpu")
    assert "fp16/bf16" in skip_reason(v, m.settings, A100)


def test_bf16_on_t4_runs_but_is_marked_emulated():
    m = load_matrix("gpu")
    v = Variant("llama3-8b", "bf16", "sdpa", "sorted", "gpu")
    assert skip_reason(v, m.settings, T4) is None
    assert any("emulated" in n for n in variant_notes(v, T4))
    assert not any("emulated" in n for n in variant_notes(v, A100))


def test_quantised_dtypes_need_bitsandbytes():
    m = load_matrix("cpu")
    v = next(v for v in m.variants if v.dtype == "nf4")
    no_bnb = DeviceCaps("cpu", "Test CPU", cores=2)
    assert "bitsandbytes" in skip_reason(v, m.settings, no_bnb)


def test_gptq8_on_cpu_is_a_visible_skip_naming_the_packages_it_needs():
    m = load_matrix("cpu")
    shown = [v for v in m.variants if v.dtype == "gptq8" and m.excluded(v) is None]
    assert [v.id for v in shown] == [
        f"{model}-gptq8-sdpa-sorted" for model in dict.fromkeys(v.model for v in m.variants)
    ]
    for v in shown:
        assert "needs gptqmodel and optimum, not installed" in skip_reason(v, m.settings, CPU)
    assert all(m.excluded(v) for v in m.variants if v.dtype == "gptq8" and v not in shown)


def test_gptq8_with_its_packages_needs_an_8_bit_gptq_checkpoint(tmp_path, monkeypatch):
    import json

    from perfsuite.device.support import gptq_reason
    from perfsuite.models.specs import get_spec

    with_gptq = DeviceCaps("cpu", "Test CPU", cores=2, gptq_available=True)
    m = load_matrix("cpu")
    tiny = next(v for v in m.variants if v.id == "tiny-llama3-gptq8-sdpa-sorted")
    assert skip_reason(tiny, m.settings, with_gptq) == (
        "gptq8 loads an 8-bit GPTQ checkpoint and tiny-llama3 has none (it is built, not loaded)"
    )
    spec = get_spec("llama3-8b")
    monkeypatch.delenv("PERFSUITE_CHECKPOINT_LLAMA3_8B", raising=False)
    assert "set PERFSUITE_CHECKPOINT_LLAMA3_8B" in gptq_reason(spec)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    monkeypatch.setenv("PERFSUITE_CHECKPOINT_LLAMA3_8B", str(folder))
    for quant, says in (
        (None, "holds no quantization_config"),
        ({"quant_method": "gptq", "bits": 4}, "holds quant_method 'gptq', bits 4"),
        ({"quant_method": "bitsandbytes"}, "holds quant_method 'bitsandbytes', bits None"),
    ):
        (folder / "config.json").write_text(json.dumps({"quantization_config": quant} if quant else {}))
        reason = gptq_reason(spec)
        assert says in reason and str(folder / "config.json") in reason
    (folder / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "gptq", "bits": 8}}))
    assert gptq_reason(spec) is None


def test_unknown_axis_value_names_the_file_and_axis():
    data = {
        "tier": {"name": "x", "device": "cpu", "rows": 1, "batch_size": 1, "max_length": 8},
        "axes": {"model": ["tiny-llama3"], "dtype": ["fp64"], "attention": ["sdpa"], "padding": ["sorted"]},
    }
    with pytest.raises(MatrixError, match=r"my\.toml: axes\.dtype has unknown value\(s\) \['fp64'\]"):
        parse_matrix(data, "my.toml")


def test_overrides_apply_to_matching_variants_only():
    data = {
        "tier": {"name": "x", "device": "cpu", "rows": 1, "batch_size": 1, "max_length": 8},
        "axes": {"model": ["tiny-llama3"], "dtype": ["fp32"], "attention": ["sdpa", "eager"], "padding": ["sorted"]},
        "bounds": {"latency_tolerance": 0.3},
        "overrides": [{"match": "*-eager-*", "latency_tolerance": 0.5}],
    }
    m = parse_matrix(data, "x.toml")
    assert {v.attention: v.bounds.latency_tolerance for v in m.variants} == {"sdpa": 0.3, "eager": 0.5}


def test_exclusion_without_reason_is_rejected():
    data = {
        "tier": {"name": "x", "device": "cpu", "rows": 1, "batch_size": 1, "max_length": 8},
        "axes": {"model": ["tiny-llama3"], "dtype": ["fp32"], "attention": ["sdpa"], "padding": ["sorted"]},
        "exclude": [{"match": "*"}],
    }
    with pytest.raises(MatrixError, match="reason"):
        parse_matrix(data, "x.toml")


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[tier\n")
    with pytest.raises(MatrixError, match=r"broken\.toml: invalid TOML"):
        load_matrix(str(path))


def test_select_takes_comma_separated_globs():
    m = load_matrix("cpu")
    ids = [v.id for v in m.select("tiny-llama3-fp32-sdpa-*, tiny-gemma2-nf4-eager-static")]
    assert ids == [
        "tiny-gemma2-nf4-eager-static",
        "tiny-llama3-fp32-sdpa-static",
        "tiny-llama3-fp32-sdpa-dynamic",
        "tiny-llama3-fp32-sdpa-sorted",
        "tiny-llama3-fp32-sdpa-token_budget",
        "tiny-llama3-fp32-sdpa-packed",
    ]


def test_cpu_tier_widens_the_latency_bound_for_compiled_flex_attention_only():
    m = load_matrix("cpu")
    ratios = {v.attention: v.bounds.latency_tolerance for v in m.variants}
    assert ratios == {"eager": 0.25, "sdpa": 0.25, "flex_attention": 1.0}


def test_every_bound_can_be_set_per_dtype():
    m = load_matrix("cpu")
    by_dtype = {v.dtype: v.bounds for v in m.variants if v.model == "tiny-llama3" and v.attention == "sdpa"}
    assert by_dtype["fp32"].ref_max_abs_dp < by_dtype["bf16"].ref_max_abs_dp < by_dtype["nf4"].ref_max_abs_dp
    assert by_dtype["fp32"].ref_argmax_agreement == 1.0
    assert by_dtype["nf4"].log_loss_abs == 0.05


def test_a_per_dtype_bound_that_is_not_a_table_names_the_field():
    data = {
        "tier": {"name": "t", "device": "cpu", "rows": 1, "batch_size": 1, "max_length": 8},
        "axes": {"model": ["tiny-llama3"], "dtype": ["fp32"], "attention": ["sdpa"], "padding": ["sorted"]},
        "bounds": {"ref_max_abs_dp_by_dtype": 0.1},
    }
    with pytest.raises(MatrixError, match=r"bounds\.ref_max_abs_dp_by_dtype must be a table"):
        parse_matrix(data, "x.toml")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('rows = "16"', "[tier] rows = '16': must be a whole number of at least 1"),
        ("rows = 0", "[tier] rows = 0: must be a whole number"),
        ("batch_size = 2.5", "[tier] batch_size = 2.5: must be a whole number"),
        ('markers = "cpu"', "[tier] markers = 'cpu': must be a list of strings"),
        ("latency_alpha = 1.5", "[tier] latency_alpha = 1.5: must lie between 0 and 1"),
        ("latency_budget_s = -1", "[tier] latency_budget_s = -1: must be at least 0"),
        ('device = "tpu"', "[tier] device = 'tpu': must be one of cpu, cuda"),
        ("judge_latency = 1", "[tier] judge_latency = 1: must be true or false"),
        ("colour = 3", "unknown [tier] field(s) colour"),
        ("max_rounds = 2", "[tier] max_rounds 2 is below min_rounds 5"),
    ],
)
def test_every_tier_field_is_checked_against_its_type_naming_it(tmp_path, line, says):
    from tests.conftest import write_matrix

    path = write_matrix(tmp_path)
    key = line.split(" =")[0]
    lines = [x for x in path.read_text().splitlines() if not x.startswith(f"{key} =")]
    lines.insert(lines.index("[tier]") + 1, line)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MatrixError) as exc:
        load_matrix(str(path))
    assert says in str(exc.value) and str(path) in str(exc.value)


def test_a_workload_override_of_zero_is_refused_not_dropped(tmp_path):
    from perfsuite.session import PerfSession, SessionConfig
    from tests.conftest import write_matrix

    matrix = load_matrix(str(write_matrix(tmp_path)))
    with pytest.raises(ValueError, match="rows override 0: must be a whole number of at least 1"):
        PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", workload={"rows": 0}))
