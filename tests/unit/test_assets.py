"""Shipped assets reproduce from their generator, and the sample looks like real arena data."""

from __future__ import annotations

import statistics

import pytest

from perfsuite.data.loader import load_arena_csv
from perfsuite.data.sample import (
    SAMPLE_PATH,
    SAMPLE_ROWS,
    SAMPLE_SEED,
    Response,
    generate_rows,
    preference_score,
    render_csv,
)
from perfsuite.data.tokenizer import TOKENIZER_PATH, load_tiny_tokenizer, train_tiny_tokenizer


def test_sample_csv_reproduces_byte_for_byte():
    assert render_csv(generate_rows(SAMPLE_ROWS, SAMPLE_SEED)) == SAMPLE_PATH.read_text(encoding="utf-8")


def test_tokenizer_reproduces_from_the_sample():
    rows, _ = load_arena_csv(SAMPLE_PATH)
    corpus = ["\n".join(r.prompt + r.response_a + r.response_b) for r in rows]
    assert train_tiny_tokenizer(corpus).to_str() == load_tiny_tokenizer(TOKENIZER_PATH).backend.to_str()


def test_sample_has_the_real_length_profile():
    rows, report = load_arena_csv(SAMPLE_PATH)
    chars = sorted(sum(map(len, r.prompt + r.response_a + r.response_b)) for r in rows)
    assert 3500 <= statistics.median(chars) <= 5000  # real arena rows: about 4,300
    assert 15000 <= chars[-1] <= 32000  # long tail to about 30,000
    assert report.repairs, "the sample must exercise the loader's repairs"
    assert {r.label for r in rows} == {0, 1, 2}


def test_scaled_rows_are_shorter_and_the_rule_reads_length_ratios():
    """Training shrinks texts to show the miniatures whole rows: the rule compares log-lengths,
    so shrinking both responses alike leaves every score difference, and so the labels'
    distribution, as it was."""
    full, small = generate_rows(64, 3), generate_rows(64, 3, scale=0.15)
    size = [sum(len(r[c]) for c in ("prompt", "response_a", "response_b")) for r in full]
    small_size = [sum(len(r[c]) for c in ("prompt", "response_a", "response_b")) for r in small]
    assert statistics.median(small_size) < 0.3 * statistics.median(size)

    def diff(a: int, b: int, scale: float) -> float:
        resp = [Response("x" * int(n * scale), refusal=False, structured=True) for n in (a, b)]
        return preference_score(resp[0]) - preference_score(resp[1])

    assert diff(3000, 800, 0.15) == pytest.approx(diff(3000, 800, 1.0))


def test_every_data_file_of_the_package_is_declared_package_data():
    """A data file missing from [tool.setuptools.package-data] is absent from the wheel: the
    installed package (tox, users) would fail where the checkout works."""
    import fnmatch
    import sys
    from pathlib import Path

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["perfsuite"]
    package = root / "perfsuite"
    data = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    missing = [f for f in data if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert data and not missing, missing
