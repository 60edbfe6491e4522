"""Command line: `perfsuite run | rebaseline | matrix | shard | selftest | explain | budget | fit |
compare | bisect | merge | migrate-baselines | history` (also `python -m perfsuite`).

Same library as the pytest plugin; useful outside pytest (notebooks, scripts). One module per
command group registers its subcommands and their functions (asv's `commands/`); the options
they share are defined once in `options`.
"""

from __future__ import annotations

import argparse
import sys

from perfsuite.matrix.tier import MatrixError, default_baselines
from perfsuite.store.baselines import baselines_root

from . import compare, cost, history, run
from .options import EXAMPLES, EXIT_CODES, _Subcommands

__all__ = ["EXAMPLES", "main"]


def main(argv: list[str] | None = None) -> int:
    from perfsuite import __version__

    parser = argparse.ArgumentParser(
        prog="perfsuite",
        description=__doc__.split("\n\n")[0] + "\n\nSame library as the pytest plugin.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"perfsuite {__version__}")
    sub = _Subcommands(parser.add_subparsers(dest="command", required=True))
    for group in (run, cost, compare, history):
        group.register(sub)
    args = parser.parse_args(argv)
    if getattr(args, "baselines", "unset") is None:
        beside = default_baselines(args.matrix) if isinstance(getattr(args, "matrix", None), str) else None
        args.baselines = str(beside or baselines_root(None))  # a user matrix keeps its own beside it
    try:
        return args.func(args)
    except (MatrixError, ValueError, FileNotFoundError, KeyError) as exc:  # CompareError is a ValueError
        print(f"perfsuite: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # cleanup (worktrees, workers, locks) already ran on the way out
        print("perfsuite: interrupted", file=sys.stderr)
        return 130
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
