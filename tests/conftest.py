"""Shared fixtures: small workloads and matrices so unit tests stay fast on 2 cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest_plugins = ["pytester"]

TINY_MATRIX = """
[tier]
name = "unit"
device = "cpu"
markers = ["cpu"]
rows = {rows}
batch_size = 2
max_length = {max_length}
warmup_rounds = 1
min_rounds = 5
max_rounds = 6
round_budget_s = 0.5
threads = 1
portable_quality_dtypes = ["fp32"]
# Millisecond passes of a tiny model spread 20-40% on a quiet machine (seen in CI, 2026-11-27):
# the spread rule would call that "busy" and leave latency undecided, so the unit tier flags
# only a larger spread; other processes' CPU share still marks a really busy machine.
busy_spread = 1.0

[axes]
model = {models}
dtype = {dtypes}
attention = {attentions}
padding = {paddings}

[bounds]
latency_ratio = {latency_ratio}
rank_alpha = 0.01
accuracy_abs = 0.0
work_rel = 0.0
log_loss_abs_by_dtype = {{ fp32 = 0.002 }}
"""


def write_matrix(
    folder: Path,
    rows: int = 4,
    models=("tiny-llama3",),
    dtypes=("fp32",),
    attentions=("sdpa",),
    paddings=("sorted",),
    max_length: int = 96,
    latency_ratio: float = 0.35,
    extra: str = "",
) -> Path:
    def toml_list(values):
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "unit.toml"
    path.write_text(
        TINY_MATRIX.format(
            rows=rows,
            max_length=max_length,
            latency_ratio=latency_ratio,
            models=toml_list(models),
            dtypes=toml_list(dtypes),
            attentions=toml_list(attentions),
            paddings=toml_list(paddings),
        )
        + extra
    )
    return path


@pytest.fixture
def tiny_matrix_path(tmp_path: Path) -> Path:
    return write_matrix(tmp_path)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Miniature checkpoints go to one per-test-session folder, never the user's cache."""
    monkeypatch.setenv("PERFSUITE_CACHE", str(tmp_path_factory.getbasetemp() / "perfsuite-cache"))
