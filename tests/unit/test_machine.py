"""Machine keys hold what changes speed, and nothing else."""

import pytest

from perfsuite.device.machine import KEY_ENV, DeviceCaps, detect
from perfsuite.store.names import UnsafeName


def test_gpu_key_has_name_and_compute_capability():
    caps = DeviceCaps("cuda", "Tesla T4", (7, 5))
    assert caps.detected_key() == "cuda-tesla-t4-sm75"
    assert not caps.native_bf16


def test_cpu_key_has_model_family_and_cores():
    caps = DeviceCaps("cpu", "AMD EPYC 9B14", cores=2, cpu_family_model="f25m17")
    assert caps.detected_key() == "cpu-amd-epyc-9b14-f25m17-2c"


def test_detect_on_this_machine_is_stable():
    a, b = detect("cpu"), detect("cpu")
    assert a.machine_key() == b.machine_key() and a.device_type == "cpu"


def test_the_key_override_replaces_the_detected_key(monkeypatch):
    caps = DeviceCaps("cpu", "AMD EPYC 9B14", cores=2, cpu_family_model="f25m17")
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert caps.machine_key() == caps.detected_key()
    monkeypatch.setenv(KEY_ENV, "cpu-runner-7-2c")
    assert caps.machine_key() == "cpu-runner-7-2c"


def test_an_unsafe_key_override_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "../../elsewhere")
    with pytest.raises(UnsafeName, match=KEY_ENV):
        DeviceCaps("cpu", "x").machine_key()
