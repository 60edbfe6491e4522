"""Command line: `perfsuite run | rebaseline | matrix | shard | selftest`.

Same library as the pytest plugin; useful outside pytest (notebooks, scripts).
"""

from __future__ import annotations

import argparse
import sys

from .matrix import MatrixError, load_matrix
from .report import render_ratios, render_relative_table, render_table, write_reports
from .session import DEFAULT_BASELINES, WORKLOAD_FIELDS, PerfSession


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--matrix", default="cpu", help="tier name (cpu, gpu) or a matrix TOML path")
    parser.add_argument("-k", "--select", default=None, help="glob over variant ids, e.g. 'tiny-llama3-*-sorted'")
    parser.add_argument("--data", default=None, help="a Kaggle-format CSV (default: the bundled sample)")
    parser.add_argument("--baselines", default=str(DEFAULT_BASELINES), help="baseline root folder")
    parser.add_argument("--report-dir", default="reports/perfsuite", help="where report.json/report.md go")
    for field in WORKLOAD_FIELDS:
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=None, help=f"override the tier's {field}")
    parser.add_argument("--ratio", default=None, metavar="A:B", help="print model A / model B latency per cell")


def _workload(args: argparse.Namespace) -> dict[str, int]:
    return {field: getattr(args, field) for field in WORKLOAD_FIELDS}


def _run(args: argparse.Namespace, rebaseline: bool) -> int:
    matrix = load_matrix(args.matrix)
    session = PerfSession(matrix, args.baselines, args.data, rebaseline=rebaseline, workload=_workload(args))
    variants = matrix.select(args.select)
    if not variants:
        print(f"no variant of {matrix.source} matches {args.select!r}", file=sys.stderr)
        return 2
    for variant in variants:
        outcome = session.run(variant)
        print(f"{variant.id}: {outcome.verdict.status}", file=sys.stderr, flush=True)
    for bound in matrix.select_relative(args.select):
        pair = session.run_relative(bound)
        print(f"{bound.id}: {pair.verdict.status}", file=sys.stderr, flush=True)
    if session.load_report is not None:
        print(session.load_report.summary())
    print(render_table(session.outcomes, title=f"perfsuite {matrix.settings.name} on {session.store.machine_key}"))
    if session.pair_outcomes:
        print(render_relative_table(session.pair_outcomes, title=f"perfsuite {matrix.settings.name}: relative bounds"))
    if args.ratio:
        model_a, _, model_b = args.ratio.partition(":")
        print(render_ratios(session.outcomes, model_a, model_b))
    folder = write_reports(session.outcomes, session.store.machine_key, args.report_dir, session.pair_outcomes)
    print(f"reports: {folder.resolve()}")
    failed = [o.verdict for o in session.outcomes] + [p.verdict for p in session.pair_outcomes]
    return 1 if any(v.status == "fail" for v in failed) else 0


def _shard(args: argparse.Namespace) -> int:
    """One variant sharded over the processes of a torchrun launch (one per device)."""
    from .distributed import run_sharded

    matrix = load_matrix(args.matrix)
    variants = matrix.select(args.select)
    if len(variants) != 1:
        print(f"shard takes exactly one variant; {args.select!r} selects {len(variants)}", file=sys.stderr)
        return 2
    session = PerfSession(matrix, args.baselines, args.data, workload=_workload(args))
    reason = session.skip_reason(variants[0])
    if reason:
        print(f"{variants[0].id}: skip - {reason}")
        return 0
    report = run_sharded(session, variants[0])
    if report is not None:
        print(report.render())
    return 0


def _matrix(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    session = PerfSession(matrix, args.baselines)
    for variant in matrix.select(args.select):
        reason = session.skip_reason(variant)
        print(f"{variant.id:55s} {'skip: ' + reason if reason else 'runs'}")
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from .selftest import selftest

    sizes = tuple(float(x) for x in args.sizes.split(","))
    selftest(args.aa_runs, args.inject_runs, args.select, args.target, args.baselines, args.report_dir, sizes)
    return 0


def _selftest_parser(parser: argparse.ArgumentParser) -> None:
    from .selftest import DEFAULT_TARGET

    parser.add_argument("--aa-runs", type=int, default=10, help="unchanged runs, each its own process")
    parser.add_argument("--inject-runs", type=int, default=5, help="runs per injected regression")
    parser.add_argument("--sizes", default="0.10,0.25,0.50", help="slowdowns to inject, as fractions")
    parser.add_argument("--target", default=DEFAULT_TARGET, help="the variant made slower")
    parser.add_argument("-k", "--select", default=None, help="variants to run (default: those of the relative bounds)")
    parser.add_argument("--baselines", default=str(DEFAULT_BASELINES), help="baseline root folder")
    parser.add_argument("--report-dir", default="reports/selftest", help="where selftest.json goes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="perfsuite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "run variants against this machine's baselines"),
        ("rebaseline", "run variants and record this machine's baselines"),
        ("matrix", "list variants and whether they run here"),
        ("shard", "one variant over several devices; launch with torchrun --nproc_per_node N"),
    ):
        _common(sub.add_parser(name, help=help_text))
    _selftest_parser(sub.add_parser("selftest", help="measure the suite's false-alarm and detection rates here"))
    args = parser.parse_args(argv)
    try:
        if args.command == "selftest":
            return _selftest(args)
        if args.command == "matrix":
            return _matrix(args)
        if args.command == "shard":
            return _shard(args)
        return _run(args, rebaseline=args.command == "rebaseline")
    except (MatrixError, ValueError, FileNotFoundError) as exc:
        print(f"perfsuite: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
