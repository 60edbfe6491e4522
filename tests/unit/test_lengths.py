"""Token lengths of a data file, cached per content."""

from __future__ import annotations

from perfsuite.data.lengths import token_lengths
from perfsuite.data.sample import SAMPLE_PATH


def test_lengths_respect_max_length_and_count_truncation():
    found = token_lengths(SAMPLE_PATH, 512, rows=40)
    assert len(found.kept) == len(found.full) == 40
    assert max(found.kept) <= 512
    assert all(f >= k for k, f in zip(found.kept, found.full, strict=True))
    assert found.truncated_rows == sum(f > 512 for f in found.full) > 0
    q = found.quantiles()
    assert q["median"] <= q["p90"] <= q["max"] == max(found.full)


def test_second_call_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFSUITE_CACHE", str(tmp_path))
    first = token_lengths(SAMPLE_PATH, 256, rows=10)
    cached = list((tmp_path / "lengths").glob("*.json"))
    assert len(cached) == 1
    assert token_lengths(SAMPLE_PATH, 256, rows=10) == first
    cached[0].write_text("garbage")  # a damaged entry is rebuilt, not trusted
    assert token_lengths(SAMPLE_PATH, 256, rows=10) == first


def test_the_cache_key_moves_with_the_formatter_the_loader_rules_and_the_tokenizers_release(tmp_path, monkeypatch):
    from importlib import metadata

    from perfsuite.data import formatting, loader

    monkeypatch.setenv("PERFSUITE_CACHE", str(tmp_path))
    token_lengths(SAMPLE_PATH, 256, rows=10)
    monkeypatch.setattr(formatting, "FORMAT_VERSION", formatting.FORMAT_VERSION + 1)
    token_lengths(SAMPLE_PATH, 256, rows=10)
    monkeypatch.setattr(loader, "LOADER_RULES", loader.LOADER_RULES + 1)
    token_lengths(SAMPLE_PATH, 256, rows=10)
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "0.0.1" if name == "tokenizers" else real(name))
    token_lengths(SAMPLE_PATH, 256, rows=10)
    assert len(list((tmp_path / "lengths").glob("*.json"))) == 4  # each change: a new entry, none reused


def test_llama3_counts_offline_with_llama3_ids(tmp_path, monkeypatch):
    from perfsuite.data.tokenizer import load_named_tokenizer

    monkeypatch.setenv("PERFSUITE_CACHE", str(tmp_path))
    tok = load_named_tokenizer("llama3")
    assert tok.encode("hello world") == [15339, 1917] and tok.eos_id == 128001  # Llama-3's own ids
    llama3 = token_lengths(SAMPLE_PATH, 4096, rows=20, tokenizer="llama3")
    tiny = token_lengths(SAMPLE_PATH, 4096, rows=20)
    assert llama3.full != tiny.full and len(llama3.full) == len(tiny.full) == 20


def test_an_unknown_tokenizer_name_is_named():
    import pytest

    from perfsuite.data.tokenizer import load_named_tokenizer

    with pytest.raises(ValueError, match="known names are llama3"):
        load_named_tokenizer("gemma2")
