"""Does it fit a T4? (#37 item 6): a GPU tier run as a T4 on a bigger card - memory capped at
the T4's, sm75's rules - with its own machine key. The cap itself is torch's and needs a card:
here it goes through the `cap_memory` seam, so the tests hold on any machine."""

from __future__ import annotations

import pytest

from perfsuite.device import emulation
from perfsuite.device.emulation import EMULATIONS, EmulationError, emulated
from perfsuite.device.hardware import hardware_reason
from perfsuite.device.machine import KEY_ENV, DeviceCaps
from perfsuite.device.support import skip_reason
from perfsuite.matrix.settings import MatrixError, tier_settings
from perfsuite.matrix.tier import load_matrix, variant_notes
from perfsuite.session import PerfSession, SessionConfig

GIB = 2**30
H100 = DeviceCaps("cuda", "NVIDIA H100 80GB HBM3", (9, 0), 80 * GIB, flash_attn_available=True)


def test_running_as_a_t4_caps_memory_and_applies_sm75s_rules(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    capped = []
    t4 = emulated(H100, "t4", lambda limit, total: capped.append((limit, total)))
    assert capped == [(15 * GIB, 80 * GIB)]  # the allocator capped at the T4's 15 GiB of the host's 80
    assert t4.compute_capability == (7, 5) and t4.total_memory_bytes == 15 * GIB and not t4.native_bf16
    assert "flash_attention_2 needs sm80+" in hardware_reason("fp16", "flash_attention_2", t4)
    assert hardware_reason("fp16", "flash_attention_2", H100) is None
    assert t4.machine_key() == "cuda-nvidia-t4-emulated-on-nvidia-h100-80gb-hbm3-sm75"  # never the host's records
    assert t4.machine_key() not in (H100.machine_key(), "cuda-nvidia-t4-sm75")


def test_a_runner_with_its_own_key_keeps_the_emulated_records_apart_too(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "gpu-runner-1")
    t4 = emulated(H100, "t4", lambda limit, total: None)
    assert (H100.machine_key(), t4.machine_key()) == ("gpu-runner-1", "gpu-runner-1-as-nvidia-t4")


def test_a_host_with_less_memory_than_the_target_is_refused_naming_both():
    small = DeviceCaps("cuda", "NVIDIA L4", (8, 9), 12 * GIB)
    with pytest.raises(EmulationError) as caught:
        emulated(small, "t4", lambda limit, total: None)
    assert "emulate = 't4': NVIDIA L4 has 12.0 GiB, not the 15 GiB of the NVIDIA T4" in str(caught.value)


def test_without_cuda_nothing_is_capped_and_the_tier_skips_saying_why():
    cpu = DeviceCaps("cpu", "some CPU", cores=2)
    assert emulated(cpu, "t4", lambda limit, total: pytest.fail("capped a CPU")) is cpu
    matrix = load_matrix("gpu-t4")
    reason = skip_reason(matrix.variants[0], matrix.settings, cpu)
    assert reason == "GPU tier: this machine has no CUDA device"


@pytest.mark.parametrize(
    ("tier", "message"),
    [
        ({"device": "cpu", "emulate": "t4"}, "emulate = 't4' runs a GPU tier as another card: needs device = 'cuda'"),
        ({"device": "cuda", "emulate": "p100"}, "[tier] emulate = 'p100': must be one of t4"),
    ],
)
def test_emulate_is_checked_with_the_rest_of_the_tier(tier, message):
    base = {"name": "x", "markers": ["gpu"], "rows": 4, "batch_size": 4, "max_length": 512}
    with pytest.raises(MatrixError, match=r"my\.toml") as caught:
        tier_settings({**base, **tier}, "my.toml")
    assert message in str(caught.value)


def test_every_variant_run_as_a_t4_says_its_times_are_the_hosts():
    t4 = emulated(H100, "t4", lambda limit, total: None)
    (variant,) = [v for v in load_matrix("gpu-t4").variants if v.id == "llama3-8b-nf4-sdpa-packed"]
    notes = variant_notes(variant, t4)
    assert notes[0] == (
        "run as a NVIDIA T4 on NVIDIA H100 80GB HBM3: memory capped at 15 GiB and sm75's kernel rules; "
        "times are the NVIDIA H100 80GB HBM3's, not a NVIDIA T4's"
    )
    assert variant_notes(variant, H100) == []


def test_the_t4_tier_runs_both_models_nf4_sorted_and_packed_as_a_t4(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    capped = []
    monkeypatch.setattr(emulation, "cap_torch_memory", lambda limit, total: capped.append(limit))
    matrix = load_matrix("gpu-t4")
    assert matrix.settings.emulate == "t4" and (matrix.settings.batch_size, matrix.settings.max_length) == (4, 2048)
    ids = {v.id for v in matrix.variants}
    assert {"gemma2-9b-nf4-eager-sorted", "gemma2-9b-nf4-eager-packed", "llama3-8b-nf4-sdpa-packed"} <= ids
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl"), caps=H100)
    assert capped == [EMULATIONS["t4"].memory_bytes] and session.caps.emulating == "NVIDIA T4"
    assert session.store.machine_key == "cuda-nvidia-t4-emulated-on-nvidia-h100-80gb-hbm3-sm75"
