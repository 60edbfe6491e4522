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
{tier_extra}

[axes]
model = {models}
dtype = {dtypes}
attention = {attentions}
padding = {paddings}

[bounds]
{bounds_extra}accuracy_abs = 0.0
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
    latency_tolerance: float | None = None,
    extra: str = "",
    tier_extra: str = "",
) -> Path:
    def toml_list(values):
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "unit.toml"
    path.write_text(
        TINY_MATRIX.format(
            rows=rows,
            max_length=max_length,
            # omitted by default: a revision from before the latency decision reads this matrix too
            bounds_extra="" if latency_tolerance is None else f"latency_tolerance = {latency_tolerance}\n",
            tier_extra=tier_extra,
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
def _isolated_cache(tmp_path_factory, monkeypatch, request):
    """Miniature checkpoints go to one per-test-session folder, never the user's cache; the busy
    signals' seam is set only by the tests that stub them (the machine key's override stays: a
    run under a foreign key is how the suite proves it passes on a machine with no records).
    Real-weights tests keep the configured cache: converting the GGUF takes 30-50 s, and its
    folder is keyed by the file's digest, so nothing stale can be read from it."""
    if request.node.get_closest_marker("real") is None:
        monkeypatch.setenv("PERFSUITE_CACHE", str(tmp_path_factory.getbasetemp() / "perfsuite-cache"))
    monkeypatch.delenv("PERFSUITE_BUSY_SIGNALS", raising=False)
    monkeypatch.delenv("PERFSUITE_HISTORY", raising=False)  # a developer's history never gets test runs
    monkeypatch.setenv("PERFSUITE_PROCESSES", "0")  # rebaselines here time no fresh processes unless a test asks


def gfm_tables(text: str) -> list[list[list[str]]]:
    """Every table in `text` as GitHub-flavoured Markdown renders it: rows of cell texts (header first).

    Parsed by a real GFM table parser (markdown-it-py's table rule): a table whose header and
    delimiter rows disagree renders as a paragraph, so it is simply not in the list."""
    from html.parser import HTMLParser

    from markdown_it import MarkdownIt

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tables: list[list[list[str]]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.tables[-1].append([])
            elif tag in ("th", "td"):
                self.cell = []
            elif tag == "br" and self.cell is not None:
                self.cell.append("\n")

        def handle_endtag(self, tag):
            if tag in ("th", "td") and self.cell is not None:
                self.tables[-1][-1].append("".join(self.cell))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Cells()
    parser.feed(MarkdownIt("commonmark").enable("table").render(text))
    return parser.tables
