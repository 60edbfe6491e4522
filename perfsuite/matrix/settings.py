"""A tier's [tier] table into TierSettings, every field checked against its type; MatrixError,
which every part of the matrix package raises."""

from __future__ import annotations

import math
import typing
from typing import Any

from perfsuite.data.formatting import TRUNCATIONS
from perfsuite.device.emulation import EMULATIONS
from perfsuite.variant import TierSettings


class MatrixError(ValueError):
    """A matrix file that cannot be used; the message names the file and the field."""


# [tier] fields that must be whole numbers of at least this; the rest of the numbers must be positive.
_MIN_INT = {"warmup_rounds": 0, "lm_tokens": 0}
_FRACTIONS = ("relative_confidence", "latency_alpha")  # in (0, 1)
_NON_NEGATIVE = ("latency_budget_s",)  # 0: no extra fresh processes
_CHOICES = {
    "device": ("cpu", "cuda"),
    "padding_side": ("right", "left"),
    "nf4_compute_dtype": ("fp32", "bf16", "fp16"),
    "reference_dtype": ("fp32", "bf16", "fp16"),
    "truncation": TRUNCATIONS,
    "emulate": tuple(EMULATIONS),
}


def tier_settings(tier: dict[str, Any], source: str) -> TierSettings:
    """[tier] as TierSettings, each field checked against its type: MatrixError naming the field.

    A TOML says `rows = "16"` or `rows = -5` as easily as `rows = 16`; caught here, not as a
    TypeError mid-run or a complaint about the data file."""
    hints = typing.get_type_hints(TierSettings)
    unknown = sorted(set(tier) - set(hints))
    if unknown:
        raise MatrixError(f"{source}: unknown [tier] field(s) {', '.join(unknown)}; known: {', '.join(hints)}")
    for name, value in tier.items():
        kind, where = hints[name], f"{source}: [tier] {name} = {value!r}"
        if kind is bool:
            if not isinstance(value, bool):
                raise MatrixError(f"{where}: must be true or false")
        elif kind in (int, int | None):
            if value is None and kind is not int:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < _MIN_INT.get(name, 1):
                raise MatrixError(f"{where}: must be a whole number of at least {_MIN_INT.get(name, 1)}")
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MatrixError(f"{where}: must be a number")
            if value < 0 or (value == 0 and name not in _NON_NEGATIVE):
                raise MatrixError(f"{where}: must be {'at least 0' if name in _NON_NEGATIVE else 'a positive number'}")
            if name in _FRACTIONS and value >= 1:
                raise MatrixError(f"{where}: must lie between 0 and 1")
        elif kind in (str, str | None):
            if not isinstance(value, str):
                raise MatrixError(f"{where}: must be a string")
            if name in _CHOICES and value not in _CHOICES[name]:
                raise MatrixError(f"{where}: must be one of {', '.join(_CHOICES[name])}")
        elif not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise MatrixError(f"{where}: must be a list of strings")
    for name in ("name", "device", "markers", "rows", "batch_size", "max_length"):
        if name not in tier:
            raise MatrixError(f"{source}: [tier] lacks {name}")
    settings = TierSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in tier.items()})
    if settings.max_batch_tokens is not None and settings.max_batch_tokens < settings.max_length:
        raise MatrixError(
            f"{source}: [tier] max_batch_tokens {settings.max_batch_tokens} is below max_length "
            f"{settings.max_length}: a row of max_length tokens would fit no token_budget batch"
        )
    if settings.emulate is not None and settings.device != "cuda":
        raise MatrixError(
            f"{source}: [tier] emulate = {settings.emulate!r} runs a GPU tier as another card: needs device = 'cuda'"
        )
    if settings.max_rounds < settings.min_rounds:
        raise MatrixError(
            f"{source}: [tier] max_rounds {settings.max_rounds} is below min_rounds {settings.min_rounds}"
        )
    return settings
