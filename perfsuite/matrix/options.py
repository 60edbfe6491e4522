"""The run options the pytest plugin and the CLI share, defined and validated once.

pytest-benchmark's way: one function adds the options through whatever `add` it is given -
`parser.add_argument` for the CLI (`--rows`), `group.addoption` with the `--perfsuite-` prefix
for the plugin (`--perfsuite-rows`) - so the names, types, defaults and help cannot drift apart
(they once did: the plugin took `--perfsuite-rows 0` as a plain int and the session dropped it).
"""

from __future__ import annotations

from collections.abc import Callable

from perfsuite.variant import WORKLOAD_FIELDS, positive_int

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
