"""What the hardware requires, as data with sources: the part no probe on this machine can see.

A library probe (`probe.py`) answers for the installed stack; whether a datasheet T4 has
bf16 tensor cores or can run FlashAttention-2 is not something this CPU can try, so those
rules are written here, each with where it comes from, and `perfsuite explain` uses them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from perfsuite.device.machine import DeviceCaps
from perfsuite.variant import BITSANDBYTES


@dataclass(frozen=True)
class HardwareRule:
    """A requirement of the hardware that no probe on this machine can see, with its source."""

    attention: str | None  # None: any attention
    dtypes: tuple[str, ...] | None  # None: any dtype
    requirement: str
    holds: Callable[[DeviceCaps], bool]
    source: str

    def applies(self, dtype: str, attention: str) -> bool:
        return (self.attention in (None, attention)) and (self.dtypes is None or dtype in self.dtypes)


def _sm(caps: DeviceCaps) -> str:
    return "sm" + "".join(map(str, caps.compute_capability or ()))


HARDWARE_RULES: tuple[HardwareRule, ...] = (
    HardwareRule(
        "flash_attention_2",
        None,
        "flash_attention_2 needs a CUDA GPU",
        lambda caps: caps.has_cuda,
        "flash-attn README: CUDA (and ROCm) kernels only",
    ),
    HardwareRule(
        "flash_attention_2",
        None,
        "flash_attention_2 needs sm80+",
        lambda caps: caps.compute_capability is not None and caps.compute_capability >= (8, 0),
        "flash-attn README: FlashAttention-2 supports Ampere, Ada and Hopper; Turing (T4, sm75): FlashAttention 1.x",
    ),
    HardwareRule(
        "flash_attention_2",
        None,
        "flash_attention_2 needs the flash-attn package, not installed",
        lambda caps: caps.flash_attn_available,
        "transformers imports flash_attn for this implementation",
    ),
    HardwareRule(
        "flash_attention_2",
        ("fp32",),
        "flash_attention_2 runs only in fp16/bf16",
        lambda caps: False,
        "flash-attn README: datatype fp16 and bf16 (bf16 requires Ampere or newer)",
    ),
    HardwareRule(
        None,
        BITSANDBYTES,
        "needs bitsandbytes, not installed",
        lambda caps: caps.bitsandbytes_available,
        "transformers' BitsAndBytesConfig loads through bitsandbytes",
    ),
    HardwareRule(
        None,
        ("gptq8",),
        "needs gptqmodel and optimum, not installed (gptqmodel 7.x requires torch >= 2.14)",
        lambda caps: caps.gptq_available,
        "transformers' GPTQ quantizer (quantizer_gptq.validate_environment) loads through optimum and gptqmodel",
    ),
)


def hardware_reason(dtype: str, attention: str, caps: DeviceCaps) -> str | None:
    """The first hardware rule `caps` does not meet for this dtype and attention, or None."""
    for rule in HARDWARE_RULES:
        if rule.applies(dtype, attention) and not rule.holds(caps):
            text = rule.requirement
            if "sm80" in text and caps.has_cuda:
                text += f"; {caps.name} is {_sm(caps)}"
            return f"{dtype} {text}" if rule.attention is None else text
    return None
