"""The options several commands share, defined once: the matrix and workload options, the
projection options of explain/budget, argument types, and each subcommand's help (defaults,
an example, the exit codes) - as pytest-benchmark's option groups serve its plugin and CLI.
"""

from __future__ import annotations

import argparse

from perfsuite.matrix.options import add_data_option, add_workload_options, workload_of
from perfsuite.variant import DTYPES, PADDINGS, positive_int

BASELINES_HELP = (
    "baseline root (default: baselines/ of the project around the working folder, found like pytest's rootdir)"
)

HISTORY_HELP = (
    "history: a SQLite file or postgresql://user@host/db (default: $PERFSUITE_HISTORY, else "
    "~/.local/share/perfsuite/history.sqlite)"
)


def at_least(low: int):
    """argparse type: a whole number of at least `low`."""

    def check(text: str) -> int:
        value = positive_int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low}")
        return value

    return check


def positive_fraction(text: str) -> float:
    """argparse type: a finite number above zero (0.05 is 5%)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0 (a fraction: 0.05 is 5%)")
    return value


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--matrix", default="cpu", help="tier name (cpu, gpu) or a matrix TOML path")
    parser.add_argument("-k", "--select", default=None, help="glob over variant ids, e.g. 'tiny-llama3-*-sorted'")
    add_data_option(parser.add_argument)
    parser.add_argument("--baselines", default=None, help=BASELINES_HELP)
    parser.add_argument("--report-dir", default="reports/perfsuite", help="where report.json/report.md go")
    add_workload_options(parser.add_argument)
    parser.add_argument("--ratio", default=None, metavar="A:B", help="print model A / model B latency per cell")
    parser.add_argument(
        "--strict", action="store_true", help="fail a variant judged on nothing beyond the guard (no usable record)"
    )
    history_option(parser)


def history_option(parser: argparse.ArgumentParser) -> None:
    """--history: append this run to a history (also when $PERFSUITE_HISTORY is set)."""
    import os

    parser.add_argument(
        "--history",
        default=os.environ.get("PERFSUITE_HISTORY") or None,
        help="append this run to a history: a SQLite file or postgresql:// URL (default: $PERFSUITE_HISTORY; none)",
    )


def compare_timing_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """How much evidence a compare verdict gathers: one group for `compare` and `selftest
    --compare`, defaults from CompareSettings (`prefix` names the mode an option belongs to)."""
    from perfsuite.compare.protocol import CompareSettings

    d = CompareSettings()
    group = parser.add_argument_group("compare timing")
    group.add_argument(
        "--max-slowdown",
        type=positive_fraction,
        default=d.max_slowdown,
        help=f"{prefix}an interval wholly within +- this fraction is `same`; the run aims to catch this slowdown",
    )
    group.add_argument(
        "--min-effect",
        type=positive_fraction,
        default=d.min_effect,
        help=f"{prefix}`slower`/`faster` need the whole 95%% interval beyond +- this fraction",
    )
    group.add_argument(
        "--passes", type=positive_int, default=d.passes, help=f"{prefix}interleaved passes per process pair"
    )
    group.add_argument(
        "--block-pairs",
        type=positive_int,
        default=d.block_pairs,
        help=f"{prefix}process pairs forked from each pair of fresh zygotes (a block)",
    )
    group.add_argument(
        "--min-pairs",
        type=at_least(2),
        default=d.min_pairs,
        help=f"{prefix}process pairs before the first decision (whole blocks; an interval needs 2 blocks)",
    )
    group.add_argument(
        "--max-pairs", type=positive_int, default=d.max_pairs, help=f"{prefix}most process pairs while undecided"
    )
    group.add_argument(
        "--budget-s",
        type=float,
        default=d.budget_s,
        help=f"{prefix}no further block once it would end past this many seconds per variant (0: no limit)",
    )


def compare_settings(args: argparse.Namespace):
    """CompareSettings from compare_timing_options' values; ValueError (exit 2) when they contradict."""
    from perfsuite.compare.protocol import CompareSettings

    if args.max_pairs < args.min_pairs:
        raise ValueError(f"--max-pairs {args.max_pairs} is below --min-pairs {args.min_pairs}")
    if args.min_pairs < 2 * args.block_pairs:
        raise ValueError(
            f"--min-pairs {args.min_pairs} is less than two blocks of --block-pairs {args.block_pairs}: "
            "an interval over blocks needs two"
        )
    if not args.budget_s >= 0:
        raise ValueError(f"--budget-s {args.budget_s} must be 0 (no limit) or more")
    return CompareSettings(
        max_slowdown=args.max_slowdown,
        min_effect=args.min_effect,
        passes=args.passes,
        block_pairs=args.block_pairs,
        min_pairs=args.min_pairs,
        max_pairs=args.max_pairs,
        budget_s=args.budget_s,
    )


def workload(args: argparse.Namespace) -> dict[str, int | None]:
    return workload_of(lambda field: getattr(args, field))


def model_options(parser: argparse.ArgumentParser, recipe: bool = False) -> None:
    """The setup options explain and budget share; `recipe`: budget's, whose preset fills what
    the command line leaves unset (so these default to None and say their fallback)."""
    from perfsuite.cost.devices import DEVICES

    def fallback(value, words: str = ""):
        return (None, f" (default: {words or value}, or the recipe's)") if recipe else (value, "")

    parser.add_argument("--device", default="t4", choices=["cpu", *DEVICES], help="datasheet GPU, or cpu (calibrated)")
    parser.add_argument(
        "--dtype",
        default=None,
        choices=DTYPES,
        help="weights (nf4/int8: fp16 compute); default fp16 - for explain, nf4 where fp16 does not fit the card",
    )
    padding, batch, length = fallback("sorted"), fallback(4), fallback(2048)
    parser.add_argument("--padding", default=padding[0], choices=PADDINGS, help="padding strategy" + padding[1])
    parser.add_argument(
        "--batch-size", type=positive_int, default=batch[0], help="rows per batch per device" + batch[1]
    )
    parser.add_argument("--max-length", type=positive_int, default=length[0], help="tokens kept per row" + length[1])
    parser.add_argument("--data", default=None, help="Kaggle-format CSV whose length distribution to use")
    parser.add_argument("--data-rows", type=positive_int, default=None, help="only the first N rows of --data")
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="llama3 (Llama-3's BPE, offline via quicktok-v1) or a local tokenizer.json (your model's); the "
        "default, the shipped tiny BPE, counts about 3.1x Llama-3's tokens on real arena text",
    )
    parser.add_argument("--baselines", default=None, help=BASELINES_HELP)


EXIT_CODES = """exit codes:
  0  passed / fits / found
  1  a bound failed / does not fit or uncertain / no change found / a fit refused
  2  usage or input error (one line naming the argument, file or field)
  3  internal error (the traceback goes to a log file whose path is printed)
  130 interrupted (a rebaseline records nothing)"""


EXAMPLES = {
    "run": "perfsuite run -k 'tiny-llama3-*-sorted'",
    "rebaseline": "perfsuite rebaseline -k 'tiny-*-fp32-*'",
    "matrix": "perfsuite matrix --matrix gpu",
    "shard": "torchrun --nproc_per_node 2 -m perfsuite.cli shard --matrix gpu -k gemma2-9b-nf4-eager-sorted",
    "selftest": "perfsuite selftest --aa-runs 3 --inject-runs 3",
    "explain": "perfsuite explain gemma2-9b llama3-8b --device t4 --dtype nf4 --tokenizer llama3 --data train.csv",
    "budget": "perfsuite budget gemma2-9b --dtype nf4 --gpus 2 --limit 9h --tokenizer llama3 --data train.csv",
    "compare": "perfsuite compare --base origin/main -k 'tiny-llama3-fp32-sdpa-sorted'",
    "bisect": "perfsuite bisect transformers 5.19.0 5.24.0 -k tiny-gemma2-fp32-sdpa-dynamic --no-latency",
    "merge": "perfsuite merge shard0/report.json shard1/report.json",
    "migrate-baselines": "perfsuite migrate-baselines",
    "fit": "perfsuite fit --tiers cpu",
    "fixed-costs": "perfsuite fixed-costs --save   # then budget counts this machine's import and load",
    "history": "perfsuite history changes --history reports/history.sqlite",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every command's help: the example and exit codes kept as written, and an option's default
    shown once - not where its help already says it, and never a `None`, `False` or empty one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        quiet = default is None or default is False or default == [] or default is argparse.SUPPRESS
        if quiet or "default" in text or not action.option_strings or action.nargs == 0:
            return text
        return f"{text} (default: %(default)s)"


def iso_time(text: str):
    """argparse type: an ISO date or time (`history changes --since`), an aware datetime."""
    from perfsuite.report.metadata import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Subcommands:
    """`add_parser` with the example, the exit codes and the defaults in every subcommand's --help."""

    def __init__(self, action) -> None:
        self.action = action

    def add_parser(self, name: str, **kwargs):
        epilog = f"example:\n  {EXAMPLES[name]}\n\n{EXIT_CODES}"
        return self.action.add_parser(name, epilog=epilog, formatter_class=HelpFormatter, **kwargs)
