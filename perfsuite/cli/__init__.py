"""Command line: `perfsuite run | rebaseline | matrix | shard | selftest | explain | budget | fit |
compare | bisect | merge | migrate-baselines | history` (also `python -m perfsuite`).

Same library as the pytest plugin; useful outside pytest (notebooks, scripts). One module per
command group registers its subcommands and their functions (asv's `commands/`); the options
they share are defined once in `options`.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["EXAMPLES", "build_parser", "main"]


def __getattr__(name: str):
    if name == "EXAMPLES":  # the option tables are imported with main's parsers, not before
        from .options import EXAMPLES

        return EXAMPLES
    raise AttributeError(f"module 'perfsuite.cli' has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Parse and run one command. Ctrl-C at any moment - while the parsers and their imports are
    still being built included - is exit 130 with one line, never a traceback."""
    try:
        args = _parse(argv)
    except KeyboardInterrupt:
        # Nothing ran yet, but an import (torch's) may be left half done, and the interpreter's
        # teardown of it can die by the same signal: leave at once, nothing needs cleaning up.
        print("perfsuite: interrupted", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:  # cleanup (worktrees, workers, locks) already ran on the way out
        print("perfsuite: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser: what `main` parses with and what the CLI reference is generated from."""
    from perfsuite import __version__

    from . import compare, cost, history, run
    from .options import EXIT_CODES, HelpFormatter, _Subcommands

    parser = argparse.ArgumentParser(
        prog="perfsuite",
        description=__doc__.split("\n\n")[0] + "\n\nSame library as the pytest plugin.",
        epilog=EXIT_CODES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"perfsuite {__version__}")
    sub = _Subcommands(parser.add_subparsers(dest="command", required=True))
    for group in (run, cost, compare, history):
        group.register(sub)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    from perfsuite.matrix.tier import default_baselines
    from perfsuite.store.baselines import baselines_root

    args = build_parser().parse_args(argv)
    if getattr(args, "baselines", "unset") is None:
        beside = default_baselines(args.matrix) if isinstance(getattr(args, "matrix", None), str) else None
        args.baselines = str(beside or baselines_root(None))  # a user matrix keeps its own beside it
    return args


def _dispatch(args: argparse.Namespace) -> int:
    from perfsuite.matrix.tier import MatrixError

    try:
        return args.func(args)
    except (MatrixError, ValueError, FileNotFoundError, KeyError) as exc:  # CompareError is a ValueError
        print(f"perfsuite: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: keep the traceback, print where
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="perfsuite-error-", suffix=".log")
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write("".join(traceback.format_exception(exc)))
    print(f"perfsuite: internal error: {type(exc).__name__}: {exc} (traceback in {path})", file=sys.stderr)
    return 3
