"""Bring your own model: [[models]] declared by config.json, automatic miniatures, user matrices."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.matrix.tier import MatrixError, default_baselines, load_matrix
from perfsuite.models.config_json import ModelConfigError, spec_from_config
from perfsuite.models.shape import shape_of
from perfsuite.models.shrink import ShrinkError, miniature
from perfsuite.models.specs import BUILTIN_DIR, SPECS, get_spec, resolve_model

QWEN_05B = {
    "architectures": ["Qwen2ForCausalLM"],
    "bos_token_id": 151643,
    "eos_token_id": 151643,
    "hidden_act": "silu",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "max_position_embeddings": 32768,
    "max_window_layers": 24,
    "model_type": "qwen2",
    "num_attention_heads": 14,
    "num_hidden_layers": 24,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_sliding_window": False,
    "vocab_size": 151936,
}
MATRIX = """
[tier]
rows = 4

[[models]]
name = "my-qwen"
config = "qwen/config.json"

[axes]
dtype = ["fp32"]
attention = ["sdpa"]
padding = ["sorted"]
"""


def write_config(folder: Path, data: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_config(tmp_path / "qwen", QWEN_05B)
    (tmp_path / "my.toml").write_text(MATRIX, encoding="utf-8")
    return tmp_path


def shrink(spec, **kw):
    return miniature(spec, vocab_size=kw.pop("vocab_size", 4000), max_length=1024, eos_id=1, **kw)


# -- reading config.json --------------------------------------------------------------------
def test_builtin_full_size_configs_ship_as_config_json_and_pass_the_user_checks():
    for path in sorted(BUILTIN_DIR.glob("*.json")):
        checked = spec_from_config(path, path.stem)  # verify=True: the same checks as a user's
        assert checked.config == SPECS[path.stem].config
        assert checked.architecture == SPECS[path.stem].architecture
    shipped = sorted(n for n, s in SPECS.items() if not s.tiny and not s.softcap_of)  # -nocap twins are derived
    assert sorted(p.stem for p in BUILTIN_DIR.glob("*.json")) == shipped


def test_config_that_is_not_json_names_the_file(tmp_path):
    path = write_config(tmp_path / "m", "{not json")
    with pytest.raises(ModelConfigError, match=rf"{path}: not JSON \(.*line 1 column 2"):
        spec_from_config(path)


@pytest.mark.parametrize("field", ["hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size"])
def test_config_missing_a_required_field_names_the_file_and_field(tmp_path, field):
    data = {k: v for k, v in QWEN_05B.items() if k != field}
    path = write_config(tmp_path / "m", data)
    with pytest.raises(ModelConfigError, match=rf"{path}: field {field}: missing"):
        spec_from_config(path)


def test_aliased_fields_are_accepted_through_the_config_class_attribute_map(tmp_path):
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257, "n_positions": 1024}
    spec = spec_from_config(write_config(tmp_path / "gpt2", gpt2))
    shape = shape_of(spec)
    assert (shape.hidden, shape.layers, shape.heads, shape.head_dim) == (768, 12, 12, 64)
    assert shape.mlp_matrices == pytest.approx(2.0)  # GPT-2's plain MLP: fc and proj
    assert shape_of(get_spec("llama3-8b")).mlp_matrices == pytest.approx(3.0)  # gated: gate, up, down


@pytest.mark.parametrize(
    ("model_type", "why"),
    [
        ("not-a-model", "is not known to transformers"),
        ("bert", "is not a decoder-only model"),
        ("plbart", "is not a decoder-only model"),  # causal-LM and classifier classes, but encoder-decoder
        ("t5", "has no AutoModelForSequenceClassification|is not a decoder-only model"),
    ],
)
def test_unsupported_model_type_is_refused_naming_it(tmp_path, model_type, why):
    path = write_config(tmp_path / "m", {**QWEN_05B, "model_type": model_type})
    with pytest.raises(ModelConfigError, match=rf"{path}: field model_type: '{model_type}' ({why})"):
        spec_from_config(path)


def test_mixture_of_experts_counts_the_top_k_experts_a_token_meets(tmp_path):
    from perfsuite.cost.model import CostConfig
    from perfsuite.models.flops import forward_flops

    mixtral = {
        "model_type": "mixtral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "vocab_size": 32000,
    }
    spec = spec_from_config(write_config(tmp_path / "mixtral", mixtral))
    shape = shape_of(spec)
    attention = 4096 * 4096 * 2 + 2 * 4096 * 1024
    expert = 3 * 4096 * 14336
    assert shape.layer_matrix_params == attention + 8 * 4096 + 2 * expert  # router + 2 of 8 experts
    assert shape.stored_matrix_params == attention + 8 * 4096 + 8 * expert
    cost = CostConfig.for_model(spec, "fp16", "sdpa")
    assert cost.linear_params == shape.layer_matrix_params and cost.stored_ratio > 3
    dense = shape_of(get_spec("mistral-7b"))  # Mixtral is Mistral with 8 experts, 2 per token
    assert forward_flops(spec, [(1, 100)]) > forward_flops(get_spec("mistral-7b"), [(1, 100)])
    assert shape.layer_matrix_params < 2.1 * dense.layer_matrix_params
    tiny = shape_of(shrink(spec))
    assert tiny.stored_matrix_params > tiny.layer_matrix_params  # the miniature keeps 8 experts, top-2


def test_remote_code_only_model_type_says_no_remote_code_runs(tmp_path):
    data = {**QWEN_05B, "model_type": "my_custom", "auto_map": {"AutoConfig": "x.Config"}}
    with pytest.raises(ModelConfigError, match="runs no remote code"):
        spec_from_config(write_config(tmp_path / "m", data))


# -- miniature rules ------------------------------------------------------------------------
@pytest.mark.parametrize(("full", "tiny"), [("gemma2-9b", "tiny-gemma2"), ("llama3-8b", "tiny-llama3")])
def test_rules_reproduce_the_shipped_miniatures_shapes(full, tiny):
    auto, shipped = shape_of(shrink(get_spec(full))), shape_of(get_spec(tiny))
    for name in ("layers", "hidden", "intermediate", "heads", "kv_heads", "head_dim", "sliding_window"):
        assert getattr(auto, name) == getattr(shipped, name), name
    assert shrink(get_spec(full)).config.get("query_pre_attn_scalar") == get_spec(tiny).config.get(
        "query_pre_attn_scalar"
    )


def test_miniature_keeps_what_drives_speed_and_behaviour():
    gemma, llama = shrink(get_spec("gemma2-9b")), shrink(get_spec("llama3-8b"))
    g, lm = shape_of(gemma), shape_of(llama)
    full_g, full_l = shape_of(get_spec("gemma2-9b")), shape_of(get_spec("llama3-8b"))
    assert g.layers / lm.layers == pytest.approx(full_g.layers / full_l.layers, rel=0.05)  # layer ratio
    assert g.heads / g.kv_heads == full_g.heads / full_g.kv_heads  # query : kv heads
    assert g.head_dim / lm.head_dim == full_g.head_dim / full_l.head_dim  # head_dim ratio
    assert gemma.config["attn_logit_softcapping"] == 50.0 and gemma.config["final_logit_softcapping"] == 30.0
    assert g.sliding_window / 1024 == full_g.sliding_window / 2048  # window relative to max_length
    assert gemma.config["rope_theta"] == 10000.0 and llama.config["rope_theta"] == 500000.0
    assert g.tied_embeddings and not lm.tied_embeddings
    assert g.sliding_share == full_g.sliding_share == 0.5  # Gemma-2: every other layer
    assert shape_of(shrink(get_spec("llama3-8b"), vocab_size=1234)).vocab == 1240  # the tokenizer's, to /8


def test_miniature_rules_refuse_heads_that_do_not_divide(tmp_path):
    path = write_config(tmp_path / "m", {**QWEN_05B, "num_attention_heads": 14, "num_key_value_heads": 4})
    with pytest.raises(
        ShrinkError, match=rf"{path}: field num_key_value_heads: cannot be shrunk.*14 is not a multiple of .* 4"
    ):
        shrink(spec_from_config(path))


def test_miniature_rules_refuse_a_width_without_head_dim_that_does_not_divide(tmp_path):
    path = write_config(tmp_path / "m", {**QWEN_05B, "hidden_size": 900, "num_attention_heads": 14})
    with pytest.raises(ShrinkError, match=rf"{path}: field hidden_size: cannot be shrunk"):
        shrink(spec_from_config(path))


def test_model_type_that_derives_head_dim_gets_power_of_two_heads(tmp_path):
    gpt2 = {
        "model_type": "gpt2",
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "vocab_size": 50257,
        "eos_token_id": 50256,
    }
    tiny = shrink(spec_from_config(write_config(tmp_path / "gpt2", gpt2)))
    shape = shape_of(tiny)
    # GPT-2 computes head_dim = n_embd / n_head: 64 / 4 -> 16, so 64 / 16 = 4 heads (MHA kept)
    assert (shape.head_dim, shape.heads, shape.kv_heads, shape.hidden) == (16, 4, 4, 64)
    assert "head_dim" not in tiny.config and tiny.config["eos_token_id"] == 1  # beyond the vocabulary: the eos


def test_model_type_that_takes_head_dim_keeps_the_ratio(tmp_path):
    phi3 = {
        "model_type": "phi3",
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32064,
        "pad_token_id": 32000,
    }
    shape = shape_of(shrink(spec_from_config(write_config(tmp_path / "phi3", phi3))))
    assert (shape.head_dim, shape.heads, shape.kv_heads, shape.layers) == (24, 1, 1, 3)  # 96 / 4; 32 : 32 -> 1 : 1


def test_per_layer_lists_keep_every_kind_of_layer(tmp_path):
    types = (["sliding_attention"] * 5 + ["full_attention"]) * 7
    data = {
        "model_type": "gemma3_text",
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_hidden_layers": 42,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "vocab_size": 262208,
        "sliding_window": 1024,
        "layer_types": types,
    }
    tiny = shrink(spec_from_config(write_config(tmp_path / "g3", data)))
    assert tiny.config["layer_types"] == ["sliding_attention"] * 3 + ["full_attention"]
    assert shape_of(tiny).layers == 4


# -- user matrices --------------------------------------------------------------------------
def test_user_matrix_states_only_what_differs_from_the_cpu_tier(project):
    matrix = load_matrix(str(project / "my.toml"))
    bundled = load_matrix("cpu")
    assert matrix.settings.name == "my" and matrix.settings.rows == 4
    assert matrix.settings.max_rounds == bundled.settings.max_rounds
    assert matrix.settings.portable_quality_dtypes == bundled.settings.portable_quality_dtypes
    assert [v.id for v in matrix.variants] == ["my-qwen-fp32-sdpa-sorted"]
    assert matrix.variants[0].bounds == bundled.select("tiny-llama3-fp32-sdpa-sorted")[0].bounds
    assert matrix.exclusions == bundled.exclusions and matrix.relative == ()
    spec = matrix.spec("my-qwen")
    assert spec.tiny and spec.full_size_of == "my-qwen" and shape_of(spec).hidden == 64
    assert matrix.spec("tiny-llama3") is get_spec("tiny-llama3")
    assert matrix.default_baselines == project / "baselines" == default_baselines(str(project / "my.toml"))
    assert default_baselines("cpu") is None


def test_user_matrix_bounds_merge_key_by_key(project):
    (project / "my.toml").write_text(
        MATRIX + "\n[bounds]\nlatency_tolerance = 0.9\n[bounds.log_loss_abs_by_dtype]\nfp32 = 0.01\n"
    )
    variant = load_matrix(str(project / "my.toml")).variants[0]
    assert variant.bounds.latency_tolerance == 0.9 and variant.bounds.log_loss_abs == 0.01
    assert (
        variant.bounds.ref_max_abs_dp
        == load_matrix("cpu").select("tiny-llama3-fp32-sdpa-sorted")[0].bounds.ref_max_abs_dp
    )


def test_gpu_user_matrix_runs_the_config_at_full_size(project):
    (project / "my.toml").write_text('[tier]\ndevice = "cuda"\n' + MATRIX.replace("[tier]\nrows = 4\n", ""))
    matrix = load_matrix(str(project / "my.toml"))
    assert matrix.settings.device == "cuda" and matrix.settings.markers == ("gpu",)
    assert not matrix.spec("my-qwen").tiny and shape_of(matrix.spec("my-qwen")).hidden == 896


def test_matrix_naming_an_undeclared_model_is_a_clear_error(project):
    (project / "my.toml").write_text(
        MATRIX.replace('dtype = ["fp32"]', 'model = ["my-qwen", "my-llama"]\ndtype = ["fp32"]')
    )
    with pytest.raises(
        MatrixError, match=r"axes.model names 'my-llama', which this matrix does not declare.*declared: my-qwen"
    ):
        load_matrix(str(project / "my.toml"))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "x"', r"\[\[models\]\] #1: field config: required"),
        ('name = "gemma2-9b"\nconfig = "qwen/config.json"', r"field name: 'gemma2-9b' is a built-in model"),
        ('name = "../up"\nconfig = "qwen/config.json"', r"not a safe name"),
        ('name = "x"\nconfig = "nowhere.json"', r"field config: .*nowhere.json is not a file"),
        ('name = "x"\nconfig = "qwen/config.json"\nweights = "w"', r"unknown field\(s\) \['weights'\]"),
        (
            'name = "x"\nconfig = "qwen/config.json"\nadapter = "lora"',
            r"field adapter: no adapter_model.safetensors .*a pickle",
        ),
    ],
)
def test_bad_model_declaration_names_the_field(project, entry, message):
    (project / "lora").mkdir()
    (project / "lora" / "adapter_config.json").write_text("{}")
    (project / "lora" / "adapter_model.bin").write_bytes(b"pickle")
    (project / "bad.toml").write_text(f"[[models]]\n{entry}\n")
    with pytest.raises(MatrixError, match=message):
        load_matrix(str(project / "bad.toml"))


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("{oops", "not JSON"),
        (
            json.dumps({k: v for k, v in QWEN_05B.items() if k != "num_attention_heads"}),
            "field num_attention_heads: missing",
        ),
        (json.dumps({**QWEN_05B, "model_type": "bert"}), "field model_type: 'bert'"),
        (json.dumps({**QWEN_05B, "num_key_value_heads": 4}), "field num_key_value_heads: cannot be shrunk"),
    ],
)
def test_cli_exits_2_naming_the_file_and_field_of_a_bad_config(project, capsys, config, field):
    (project / "qwen" / "config.json").write_text(config)
    assert main(["matrix", "--matrix", str(project / "my.toml")]) == 2
    err = capsys.readouterr().err
    assert f"{project / 'qwen' / 'config.json'}" in err and field in err and "Traceback" not in err


def test_declared_tokenizer_sizes_the_vocabulary_and_encodes_the_rows(project):
    from perfsuite.data.tokenizer import train_tiny_tokenizer
    from perfsuite.session import PerfSession, SessionConfig

    tokenizer = train_tiny_tokenizer(["a b c d e f g hello world"] * 50, vocab_size=300)
    tokenizer.save(str(project / "tok.json"))
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    write_config(project / "qwen", {**QWEN_05B, "eos_token_id": 1, "pad_token_id": 0})
    (project / "my.toml").write_text(
        MATRIX.replace('config = "qwen/config.json"', 'config = "qwen/config.json"\ntokenizer = "tok.json"')
    )
    matrix = load_matrix(str(project / "my.toml"))
    assert shape_of(matrix.spec("my-qwen")).vocab == math.ceil(size / 8) * 8
    resolved = PerfSession(matrix, SessionConfig(baselines=project / "bl")).resolve(matrix.variants[0])
    assert resolved.tokenizer_key == str(project / "tok.json") and resolved.encoded.tokenizer.eos_id == 1
    assert max(max(r.input_ids) for r in resolved.encoded.rows) < size


def test_declared_tokenizer_needs_an_eos_id_it_has(project):
    from perfsuite.data.tokenizer import train_tiny_tokenizer

    train_tiny_tokenizer(["x y z"] * 10, vocab_size=280).save(str(project / "tok.json"))
    (project / "my.toml").write_text(
        MATRIX.replace('config = "qwen/config.json"', 'config = "qwen/config.json"\ntokenizer = "tok.json"')
    )
    with pytest.raises(MatrixError, match=r"field eos_token_id: 151643 is not an id of .*tok.json"):
        load_matrix(str(project / "my.toml"))


def test_cli_run_and_rebaseline_keep_a_user_matrix_baselines_beside_it(project, monkeypatch, capsys):
    elsewhere = project / "work"
    (elsewhere / "baselines").mkdir(parents=True)
    (elsewhere / "pyproject.toml").write_text("")  # a project around the working folder: not where they go
    monkeypatch.chdir(elsewhere)
    assert main(["rebaseline", "--matrix", str(project / "my.toml")]) == 0
    recorded = sorted(p.relative_to(project).as_posix() for p in (project / "baselines").rglob("*.json"))
    assert "baselines/portable/my/my-qwen-fp32-sdpa-sorted.json" in recorded
    assert not any((elsewhere / "baselines").iterdir())
    assert main(["run", "--matrix", str(project / "my.toml")]) == 0
    out = capsys.readouterr().out
    assert "my-qwen-fp32-sdpa-sorted" in out and "automatic miniature of" in out


def test_trained_weights_of_a_declared_miniature_are_found_beside_its_config(project):
    from perfsuite.models.factory import tiny_checkpoint
    from perfsuite.models.training import Stage, TrainConfig, save_trained, train

    spec = load_matrix(str(project / "my.toml")).spec("my-qwen")
    quick = TrainConfig(heldout_rows=8, stages=(Stage(64, 1, 1e-3, rows=16),), heldout_max_length=64, warmup_steps=1)
    model, report = train(spec, quick, log=lambda line: None)
    folder = save_trained(model, spec, report)
    assert folder == project / "qwen" / "trained" / "my-qwen"
    assert "-trained-" in tiny_checkpoint(spec, 0, project / "cache").name


def test_explain_and_budget_accept_a_config_json_path(project, capsys):
    path = str(project / "qwen" / "config.json")
    assert resolve_model(path).name == "qwen" and resolve_model("gemma2-9b") is SPECS["gemma2-9b"]
    assert main(["explain", path, "llama3-8b", "--device", "t4", "--dtype", "nf4"]) == 0
    assert "why qwen / llama3-8b" in capsys.readouterr().out
    assert main(["budget", path, "--device", "t4", "--dtype", "fp16"]) == 0
    assert "fits" in capsys.readouterr().out
    assert main(["budget", str(project / "nowhere.json"), "--device", "t4"]) == 2
    assert "nowhere.json: no such config.json" in capsys.readouterr().err


def test_pytest_perfsuite_matrix_runs_a_user_matrix_with_no_test_module(project, pytester):
    for item in project.iterdir():
        target = pytester.path / item.name
        shutil.copytree(item, target) if item.is_dir() else shutil.copy(item, target)
    pytester.makeini("[pytest]\nmarkers =\n    cpu: cpu\n    perf: perf\n")
    args = ("-p", "no:cacheprovider", "-rs", "--perfsuite-matrix", "my.toml")
    first = pytester.runpytest_subprocess(*args, "--perfsuite-rebaseline")
    first.assert_outcomes(passed=1, skipped=2)  # the variant; no relative bound declared and no latency to decide

    assert (pytester.path / "baselines" / "portable" / "my" / "my-qwen-fp32-sdpa-sorted.json").is_file()
    second = pytester.runpytest_subprocess(*args)
    second.assert_outcomes(passed=2, skipped=1)  # the variant and the latency decision (undecided: one process)
    second.stdout.fnmatch_lines(["*my-qwen-fp32-sdpa-sorted*pass*"])


def test_shipped_examples_load_and_the_trained_example_weights_fit_their_miniature():
    from perfsuite.models.training import trained_weights

    root = Path(__file__).resolve().parents[2] / "examples"
    cpu = load_matrix(str(root / "my-model" / "matrix.toml"))
    assert trained_weights(cpu.spec("my-qwen")) is not None  # fingerprint checked: not stale
    gpu = load_matrix(str(root / "gpu-models" / "matrix.toml"))
    assert {name: spec.architecture for name, spec in gpu.models.items()} == {
        "qwen2-0.5b": "qwen2",
        "phi3-mini": "phi3",
        "gemma2-2b": "gemma2",
    }
    assert not any(spec.tiny for spec in gpu.models.values())
    moe = load_matrix(str(root / "gpu-models" / "moe.toml")).spec("qwen1.5-moe")
    shape = shape_of(moe)  # Qwen1.5-MoE-A2.7B: 14.3B parameters, 2.7B active (embeddings included)
    embeddings = 2 * shape.vocab * shape.hidden
    assert (shape.layers * shape.stored_matrix_params + embeddings) / 1e9 == pytest.approx(14.3, abs=0.1)
    assert (shape.layers * shape.layer_matrix_params + embeddings) / 1e9 == pytest.approx(2.7, abs=0.1)


def test_compare_runs_a_declared_model_on_both_sides(project):
    import sys

    from perfsuite.compare.harness import Comparison
    from perfsuite.compare.protocol import CompareSettings
    from perfsuite.compare.sides import python_side, this_side

    matrix = load_matrix(str(project / "my.toml"))
    settings = CompareSettings(passes=2, block_pairs=1, min_pairs=2, max_pairs=2)
    comparison = Comparison(matrix, this_side(), python_side(sys.executable), settings, progress=lambda _t: None)
    (result,) = comparison.run(matrix.variants)
    assert result.variant.id == "my-qwen-fp32-sdpa-sorted" and len(result.pairs) == 2
    # the same model on both sides: the same predictions, up to one float's rounding (3.3e-8
    # seen under transformers 5.0 once the workers' heaps were warmed, 2026-12-02)
    assert result.work_diff == [] and result.predictions["max_abs_dp"] <= 1e-6


def test_train_script_names_a_model_the_matrix_does_not_declare(project, capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "train_tiny.py"
    module_spec = importlib.util.spec_from_file_location("train_tiny", path)
    script = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(script)
    assert script.main(["--matrix", str(project / "my.toml"), "--model", "nope"]) == 2
    assert "--model 'nope' is not declared in its [[models]] (my-qwen)" in capsys.readouterr().err
    write_config(project / "bad", "{")
    assert script.main(["--config", str(project / "bad" / "config.json")]) == 2
    assert "not JSON" in capsys.readouterr().err
