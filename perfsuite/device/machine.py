"""What this machine can run (DeviceCaps) and the machine key baselines are stored under.

The key holds only what changes speed: GPU name and compute capability, or CPU model,
family/model numbers and usable cores. Library versions are recorded beside each value,
not in the key, so a report can say "recorded with transformers X, now Y".

`PERFSUITE_MACHINE_KEY` replaces the detected key: a runner whose CPU string changes between
boots can keep one key, and the tests prove they pass on a machine whose key has no records.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
from dataclasses import dataclass

KEY_ENV = "PERFSUITE_MACHINE_KEY"


@dataclass(frozen=True)
class DeviceCaps:
    """Capabilities that decide which variants can run; fakeable for tests."""

    device_type: str  # "cpu" or "cuda"
    name: str
    compute_capability: tuple[int, int] | None = None
    total_memory_bytes: int | None = None
    cores: int = 1
    flash_attn_available: bool = False
    bitsandbytes_available: bool = False
    gptq_available: bool = False  # gptqmodel and optimum: transformers' GPTQ backend
    cpu_family_model: str = ""
    emulating: str = ""  # a card this one runs as (device/emulation.py): its memory cap and rules

    @property
    def has_cuda(self) -> bool:
        return self.device_type == "cuda"

    @property
    def native_bf16(self) -> bool:
        """bf16 tensor-core math exists from sm80 (Ampere); T4 (sm75) emulates it."""
        if self.device_type == "cuda":
            return self.compute_capability is not None and self.compute_capability >= (8, 0)
        return True

    def machine_key(self) -> str:
        """The folder this machine's records live in: `PERFSUITE_MACHINE_KEY`, else detected."""
        override = os.environ.get(KEY_ENV)
        if override:
            from perfsuite.store.names import safe_name

            key = safe_name(override, KEY_ENV)  # the host's key: a card it runs as keeps its records apart
            return f"{key}-as-{_slug(self.emulating)}" if self.emulating else key
        return self.detected_key()

    def detected_key(self) -> str:
        if self.device_type == "cuda":
            cc = "".join(map(str, self.compute_capability or (0, 0)))
            return f"cuda-{_slug(self.name)}-sm{cc}"
        fam = f"-{self.cpu_family_model}" if self.cpu_family_model else ""
        return f"cpu-{_slug(self.name)}{fam}-{self.cores}c"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def _cpu_identity() -> tuple[str, str]:
    name, family, model = platform.processor() or platform.machine(), "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and value:
                    name = value
                elif key == "cpu family" and not family:
                    family = value
                elif key == "model" and not model:
                    model = value
    except OSError:
        pass
    fm = f"f{family}m{model}" if family and model else ""
    return name, fm


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def detect(device: str = "auto") -> DeviceCaps:
    """Probe this machine. device: "auto" (CUDA if present), "cpu" or "cuda"."""
    import torch

    want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    flash = importlib.util.find_spec("flash_attn") is not None
    bnb = importlib.util.find_spec("bitsandbytes") is not None
    gptq = all(importlib.util.find_spec(name) is not None for name in ("gptqmodel", "optimum"))
    if want_cuda and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return DeviceCaps(
            "cuda",
            props.name,
            (props.major, props.minor),
            props.total_memory,
            cores=torch.cuda.device_count(),
            flash_attn_available=flash,
            bitsandbytes_available=bnb,
            gptq_available=gptq,
        )
    name, fm = _cpu_identity()
    return DeviceCaps(
        "cpu", name, cores=usable_cores(), bitsandbytes_available=bnb, gptq_available=gptq, cpu_family_model=fm
    )
