"""Machine keys hold what changes speed, and nothing else."""

from perfsuite.machine import DeviceCaps, detect


def test_gpu_key_has_name_and_compute_capability():
    caps = DeviceCaps("cuda", "Tesla T4", (7, 5))
    assert caps.machine_key() == "cuda-tesla-t4-sm75"
    assert not caps.native_bf16


def test_cpu_key_has_model_family_and_cores():
    caps = DeviceCaps("cpu", "AMD EPYC 9B14", cores=2, cpu_family_model="f25m17")
    assert caps.machine_key() == "cpu-amd-epyc-9b14-f25m17-2c"


def test_detect_on_this_machine_is_stable():
    a, b = detect("cpu"), detect("cpu")
    assert a.machine_key() == b.machine_key() and a.device_type == "cpu"
