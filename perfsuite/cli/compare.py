"""compare: this environment against another, interleaved on this machine; bisect: the first
release of a package at which a variant changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perfsuite.matrix.options import add_data_option, add_workload_options
from perfsuite.matrix.tier import MatrixError, load_matrix

from .options import common_options, compare_settings, compare_timing_options, positive_fraction, workload


def _compare(args: argparse.Namespace) -> int:
    """A/B of this environment against another, interleaved on this machine (exit 1: B slower or changed)."""
    import contextlib

    from perfsuite.compare.harness import Comparison
    from perfsuite.compare.report import render, write_reports

    matrix = load_matrix(args.matrix)
    variants = matrix.select(args.select)
    if not variants:
        raise MatrixError(f"no variant of {matrix.source} matches {args.select!r}")
    settings = compare_settings(args)
    if args.history:  # refused now, not after every block was timed
        from perfsuite.history.store import check_history

        check_history(args.history)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    with contextlib.ExitStack() as stack:
        a, b = sides(args, stack, say)
        comparison = Comparison(matrix, a, b, settings, args.data, workload(args), say)
        comparison.check_sides()
        results = comparison.run(variants)
    print(render(results, (a, b), settings))
    from perfsuite.device.machine import detect
    from perfsuite.report.metadata import run_metadata

    run = run_metadata("compare", matrix.settings.name, detect().machine_key())
    folder = write_reports(results, (a, b), comparison.versions, settings, Path(args.report_dir), run)
    print(f"compare reports: {folder.resolve()}")
    if args.history:
        from perfsuite.history.ingest import append_run

        print(append_run(args.history, folder / "compare.json"))
    return 1 if any(r.failed for r in results) else 0


def sides(args: argparse.Namespace, stack, say):
    """(A, B): B is always what is being tried - the pins, the other interpreter, or this
    checkout against `--base` (then A is the base revision) - so "B slower" is the regression
    in every mode, and B/A reads head / base for a PR."""
    import dataclasses

    from perfsuite.compare.sides import base_side, pinned_side, python_side, this_side

    if args.python:
        return this_side(), python_side(args.python)
    if args.pin:
        return this_side(), pinned_side(args.pin, say)
    return stack.enter_context(base_side(args.base, say)), dataclasses.replace(this_side(), name="B")


def _bisect(args: argparse.Namespace) -> int:
    """First release of a package between GOOD and BAD at which a variant changed (exit 0 found, 1 none)."""
    import json

    from perfsuite.compare.bisection import BisectError, Bisection, index_versions, releases_between, render
    from perfsuite.compare.protocol import CompareSettings
    from perfsuite.compare.sides import venv_root, version_side
    from perfsuite.fileio import atomic_write_text

    matrix = load_matrix(args.matrix)
    variants = matrix.select(args.select)
    if len(variants) != 1:
        found = ", ".join(v.id for v in variants[:5]) or "none"
        raise BisectError(f"-k {args.select!r} must select one variant of {matrix.source}; it selects {found}")
    releases = releases_between(index_versions(args.package, args.pre), args.good, args.bad, args.package, args.pre)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    steps = 1 + (len(releases) - 1).bit_length()
    say(
        f"[bisect] {args.package}: {len(releases)} releases after {args.good} up to {args.bad}, about {steps} steps; "
        f"venvs cached in {venv_root()}"
    )
    settings = CompareSettings(max_slowdown=args.max_slowdown)
    bisection = Bisection(
        matrix,
        variants[0],
        args.package,
        lambda version: version_side(args.package, version, say),
        latency=not args.no_latency,
        settings=None if args.no_latency else settings,
        data=args.data,
        workload=workload(args),
        progress=say,
    )
    result = bisection.run(args.good, args.bad, releases)
    print(render(result))
    path = Path(args.report_dir) / "bisect.json"
    atomic_write_text(path, json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    print(f"bisect report: {path.resolve()}")
    return 0 if result.first_changed else 1


def register(sub) -> None:
    """The subcommands of this module, each dispatched to its function by `func`."""
    compare = sub.add_parser(
        "compare",
        help="A/B: this environment against another interpreter, pinned versions or a base revision, interleaved",
    )
    common_options(compare)
    compare.set_defaults(report_dir="reports/perfsuite/compare")
    side = compare.add_mutually_exclusive_group(required=True)
    side.add_argument("--python", help="B = this interpreter (another venv that can import perfsuite)")
    side.add_argument("--pin", action="append", metavar="PKG==VER", help="B = this environment with these pins")
    side.add_argument(
        "--base", metavar="GIT_REV", help="A = that revision of this repository (a git worktree), B = this checkout"
    )
    compare_timing_options(compare)
    bisect = sub.add_parser(
        "bisect",
        help="first release of a package between GOOD and BAD at which a variant changed (status, work, "
        "predictions, latency)",
    )
    bisect.add_argument("package", help="e.g. transformers, torch, bitsandbytes, peft")
    bisect.add_argument("good", help="a release on the package index where the variant was as wanted")
    bisect.add_argument("bad", help="a newer release where it is not")
    bisect.add_argument("-k", "--select", required=True, help="the one variant id (or a glob matching one)")
    bisect.add_argument("--matrix", default="cpu", help="tier name (cpu, gpu) or a matrix TOML path")
    add_data_option(bisect.add_argument)
    add_workload_options(bisect.add_argument)
    bisect.add_argument("--pre", action="store_true", help="include pre-releases")
    bisect.add_argument("--no-latency", action="store_true", help="judge status, work and predictions only (fast)")
    bisect.add_argument(
        "--max-slowdown", type=positive_fraction, default=0.05, help="a latency change beyond this fraction"
    )
    bisect.add_argument("--report-dir", default="reports/perfsuite/bisect", help="where bisect.json goes")
    compare.set_defaults(func=_compare)
    bisect.set_defaults(func=_bisect)
