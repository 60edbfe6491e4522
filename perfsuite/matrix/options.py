"""The run options the pytest plugin and the CLI share, defined and validated once.

pytest-benchmark's way: one function adds the options through whatever `add` it is given -
`parser.add_argument` for the CLI (`--rows`), `group.addoption` with the `--perfsuite-` prefix
for the plugin (`--perfsuite-rows`) - so the names, types, defaults and help cannot drift apart
(they once did: the plugin took `--perfsuite-rows 0` as a plain int and the session dropped it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from perfsuite.matrix.tier import Matrix, packed_length_problem
from perfsuite.variant import WORKLOAD_FIELDS, TierSettings, positive_int

DATA_HELP = "a Kaggle-format CSV to run on (default: the bundled sample)"


def add_data_option(add: Callable[..., object], prefix: str = "--") -> None:
    add(f"{prefix}data", default=None, help=DATA_HELP)


def add_workload_options(add: Callable[..., object], prefix: str = "--") -> None:
    """--rows / --batch-size / --max-length: whole numbers of at least 1 overriding the tier's."""
    for field in WORKLOAD_FIELDS:
        add(f"{prefix}{field.replace('_', '-')}", type=positive_int, default=None, help=f"override the tier's {field}")


def workload_of(get: Callable[[str], int | None]) -> dict[str, int | None]:
    """The overrides as the session takes them, read through `get(field)`."""
    return {field: get(field) for field in WORKLOAD_FIELDS}


def overrides_of(workload: Mapping[str, int | None]) -> dict[str, int]:
    """The fields a run overrides (None: the tier's own)."""
    return {k: v for k, v in workload.items() if v is not None}


def run_settings(matrix: Matrix, workload: Mapping[str, int | None]) -> TierSettings:
    """The tier's settings with a run's overrides (None: the tier's own), each checked - an
    unknown field, a value below 1, a packed batch the overrides make too long: ValueError."""
    unknown = set(workload) - set(WORKLOAD_FIELDS)
    if unknown:
        raise ValueError(f"cannot override {sorted(unknown)}; only {', '.join(WORKLOAD_FIELDS)}")
    overrides = overrides_of(workload)
    for key, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} override {value!r}: must be a whole number of at least 1")
    settings = replace(matrix.settings, **overrides)
    if overrides and (problem := packed_length_problem(matrix, settings)):
        flags = ", ".join("--" + key.replace("_", "-") for key in overrides)
        raise ValueError(f"{problem} (with this run's {flags})")
    return settings
