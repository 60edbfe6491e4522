"""The support probe asks the installed libraries, quotes their refusals, and remembers per version."""

from __future__ import annotations

import json

import pytest
import transformers

from perfsuite.device.hardware import HARDWARE_RULES, hardware_reason
from perfsuite.device.machine import DeviceCaps
from perfsuite.device.probe import SupportProbe, library_versions, quote
from perfsuite.models.specs import get_spec

CPU = DeviceCaps("cpu", "Test CPU", cores=2, bitsandbytes_available=True)


def _gemma2_sdpa_refused() -> Exception | None:
    spec = get_spec("tiny-gemma2")
    try:
        spec.model_class()._from_config(spec.build_config(0), attn_implementation="sdpa")
    except ValueError as exc:
        return exc
    return None


def test_probe_quotes_and_attributes_the_library_refusal(tmp_path):
    answer = SupportProbe(tmp_path).attention(get_spec("tiny-gemma2"), "sdpa", "fp32")
    refusal = _gemma2_sdpa_refused()
    if refusal is None:
        assert answer is None  # this release accepts it: the variant runs and the reference judges it
    else:
        assert answer == f"transformers {transformers.__version__}: {quote(refusal)}"
        assert "Gemma2ForSequenceClassification does not support" in answer


def test_probe_accepts_what_the_library_builds(tmp_path):
    probe = SupportProbe(tmp_path)
    for attention in ("eager", "sdpa", "flex_attention"):
        assert probe.attention(get_spec("tiny-llama3"), attention, "bf16") is None
    assert probe.attention(get_spec("gemma2-9b"), "eager", "fp16") is None  # full size on meta: no memory


def test_probe_answers_are_cached_per_library_versions(tmp_path, monkeypatch):
    spec = get_spec("tiny-llama3")
    first = SupportProbe(tmp_path)
    assert first.attention(spec, "sdpa", "fp32") is None
    stored = json.loads(first.path.read_text())
    assert stored["versions"] == library_versions()

    def must_not_build(*args, **kwargs):
        raise AssertionError("asked again although cached")

    monkeypatch.setattr(type(spec), "model_class", lambda self: type("X", (), {"_from_config": must_not_build}))
    assert SupportProbe(tmp_path).attention(spec, "sdpa", "fp32") is None  # from the cache file
    other = SupportProbe(tmp_path, versions={**library_versions(), "transformers": "0.0.0+not-installed"})
    assert other.path != first.path
    assert "asked again although cached" in other.attention(spec, "sdpa", "fp32")  # other versions: asked


def test_an_unreadable_probe_cache_is_asked_again(tmp_path):
    probe = SupportProbe(tmp_path)
    probe.path.parent.mkdir(parents=True)
    probe.path.write_text("{not json")
    assert probe.attention(get_spec("tiny-llama3"), "eager", "fp32") is None
    assert json.loads(probe.path.read_text())["answers"]


def test_quantization_probe_runs_nf4_here(tmp_path):
    pytest.importorskip("bitsandbytes")
    probe = SupportProbe(tmp_path)
    assert probe.quantization("nf4", "fp32", "cpu") is None
    assert probe.quantization("fp32", "fp32", "cpu") is None  # not quantised: nothing to ask


def test_quote_keeps_the_first_sentence_and_marks_the_cut():
    assert quote(ValueError("First part. Second part.")) == "First part..."
    assert quote(ValueError("Only   one\nsentence.")) == "Only one sentence."
    assert quote(ValueError("x" * 500), limit=20).endswith("...")
    assert quote(ValueError("")) == "ValueError"


def test_every_hardware_rule_names_its_source():
    assert all(rule.source and rule.requirement for rule in HARDWARE_RULES)


def test_hardware_rules_answer_for_devices_this_machine_is_not():
    t4 = DeviceCaps("cuda", "Tesla T4", (7, 5), bitsandbytes_available=True, flash_attn_available=True)
    assert hardware_reason("fp16", "flash_attention_2", t4) == "flash_attention_2 needs sm80+; Tesla T4 is sm75"
    assert hardware_reason("fp16", "flash_attention_2", CPU) == "flash_attention_2 needs a CUDA GPU"
    assert hardware_reason("nf4", "sdpa", DeviceCaps("cpu", "x")) == "nf4 needs bitsandbytes, not installed"
    assert hardware_reason("fp16", "sdpa", t4) is None
