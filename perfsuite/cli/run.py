"""run / rebaseline / matrix / shard: a tier's variants here; merge and migrate-baselines: its
reports and records; selftest: the suite's own false-alarm and detection rates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perfsuite.matrix.tier import MatrixError, load_matrix
from perfsuite.measure.fresh import PROCESSES_HELP, default_processes, processes_count

from .options import BASELINES_HELP, common_options, compare_settings, compare_timing_options, positive_int, workload


def _run(args: argparse.Namespace, rebaseline: bool) -> int:
    from perfsuite.progress import Progress
    from perfsuite.report.run_report import render_ratios
    from perfsuite.session import PerfSession, SessionConfig

    matrix = load_matrix(args.matrix)
    variants = matrix.select(args.select)
    if not variants:
        print(f"no variant of {matrix.source} matches {args.select!r}", file=sys.stderr)
        return 2
    if args.history:  # a history that cannot take the run is exit 2 now, not after every variant ran
        from perfsuite.history.store import check_history

        check_history(args.history)
    session = PerfSession(
        matrix,
        SessionConfig(
            baselines=args.baselines,
            data=args.data,
            rebaseline=rebaseline,
            workload=workload(args),
            strict=args.strict,
            rewrite_portable=getattr(args, "rewrite_portable", False),
            processes=getattr(args, "processes", 0),
        ),
    )
    interrupted = False
    try:
        with session.transaction():  # a rebaseline commits all its records or, on any exception, none
            session.data.rows()  # a file that cannot be used is one error (exit 2), not a failure per variant
            print(session.load_report.summary(), file=sys.stderr, flush=True)
            # Relative bounds first, as in the tier: torch.compile's workers, busy after flex_attention
            # variants, once pulled an interleaved ratio from 1.2 to 0.9.
            bounds = matrix.select_relative(args.select)
            with Progress(len(bounds) + len(variants), "variants and bounds") as progress:
                for bound in bounds:
                    pair = session.run_relative(bound)
                    progress.advance(f"{bound.id}: {pair.verdict.status}")
                for variant in variants:
                    outcome = session.run(variant)
                    progress.advance(f"{variant.id}: {outcome.verdict.status}")
            session.decide_latency()  # once every variant is timed: the run's phase is theirs
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted", file=sys.stderr, flush=True)
    report = session.report()
    folder = report.write(args.report_dir)  # before rendering: a render error loses nothing
    print(report.render())
    if args.ratio:
        model_a, _, model_b = args.ratio.partition(":")
        print(render_ratios(report.outcomes, model_a, model_b))
    print(f"reports: {folder.resolve()}")
    for line in [*report.footer, *filter(None, [report.warning])]:
        print(line)
    if args.history and not interrupted:  # after the table: a history that refuses the run loses no report
        from perfsuite.history.ingest import append_run

        print(append_run(args.history, folder / "report.json"))
    if interrupted:
        return 130
    return 1 if report.failed else 0


def _shard(args: argparse.Namespace) -> int:
    """One variant sharded over the processes of a torchrun launch (one per device)."""
    from perfsuite.measure.distributed import run_sharded
    from perfsuite.session import PerfSession, SessionConfig

    matrix = load_matrix(args.matrix)
    variants = matrix.select(args.select)
    if len(variants) != 1:
        print(f"shard takes exactly one variant; {args.select!r} selects {len(variants)}", file=sys.stderr)
        return 2
    session = PerfSession(matrix, SessionConfig(baselines=args.baselines, data=args.data, workload=workload(args)))
    reason = session.skip_reason(variants[0])
    if reason:
        print(f"{variants[0].id}: skip - {reason}")
        return 0
    report = run_sharded(session, variants[0])
    if report is not None:
        print(report.render())
    return 0


def _matrix(args: argparse.Namespace) -> int:
    from perfsuite.session import PerfSession, SessionConfig

    matrix = load_matrix(args.matrix)
    variants = matrix.select(args.select)
    if not variants:
        print(f"no variant of {matrix.source} matches {args.select!r}", file=sys.stderr)
        return 2
    session = PerfSession(matrix, SessionConfig(baselines=args.baselines))
    for variant in variants:
        reason = session.skip_reason(variant)
        print(f"{variant.id:55s} {'skip: ' + reason if reason else 'runs'}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    """Join the report.json files of a sharded tier (exit 1 if any variant or bound failed)."""
    from perfsuite.report.run_report import merge_reports

    text, folder, failed = merge_reports([Path(p) for p in args.reports], args.out)
    print(text)
    print(f"merged report: {folder.resolve()}")
    return 1 if failed else 0


def _migrate(args: argparse.Namespace) -> int:
    """Split schema-1 records (one per machine) into portable and machine records, in place."""
    from perfsuite.store.baselines import migrate_v1

    tiers: dict[str, tuple[str, ...] | None] = {}

    def portable_quality(tier: str, variant_id: str) -> bool:
        if tier not in tiers:
            try:
                tiers[tier] = load_matrix(tier).settings.portable_quality_dtypes
            except MatrixError:
                tiers[tier] = None  # not a bundled tier: keep its quality with the machine
        dtypes = tiers[tier] or ()
        return any(f"-{d}-" in variant_id for d in dtypes)

    done = migrate_v1(Path(args.baselines), portable_quality)
    for line in done:
        print(line)
    print(f"migrated {len(done)} files" if done else f"{args.baselines}: nothing to migrate")
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from perfsuite.selftest import compare_selftest, selftest

    sizes = tuple(float(x) for x in args.sizes.split(","))
    if args.history:
        from perfsuite.selftest import history_selftest

        scale = None if args.no_scale else (args.scale_runs, args.scale_variants)
        real = (args.real_runs, args.inject_from)
        history_selftest(
            args.runs,
            args.report_dir,
            sizes[0],
            real_runs=real[0],
            inject_from=real[1],
            target=args.target,
            scale=scale,
            real_select=args.real_select,
        )
        return 0
    if args.compare:
        settings = compare_settings(args)
        runs = (args.aa_runs, args.inject_runs)
        compare_selftest(*runs, sizes, args.target, out_dir=args.report_dir, settings=settings, busy=args.busy)
        return 0
    selftest(
        args.aa_runs,
        args.inject_runs,
        args.select,
        args.target,
        args.baselines,
        args.report_dir,
        sizes,
        padding_runs=args.padding_runs,
    )
    return 0


def _selftest_parser(parser: argparse.ArgumentParser) -> None:
    from perfsuite.selftest import DEFAULT_TARGET

    parser.add_argument("--aa-runs", type=positive_int, default=10, help="unchanged runs, each its own process")
    parser.add_argument("--inject-runs", type=positive_int, default=5, help="runs per injected regression")
    parser.add_argument("--sizes", default="0.10,0.25,0.50", help="slowdowns to inject, as fractions")
    parser.add_argument(
        "--padding-runs",
        type=int,
        default=None,
        help="runs with sorted padding broken into static (default: --inject-runs; 0: none)",
    )
    parser.add_argument("--target", default=DEFAULT_TARGET, help="the variant made slower")
    parser.add_argument("-k", "--select", default=None, help="variants to run (default: those of the relative bounds)")
    parser.add_argument("--baselines", default=None, help=BASELINES_HELP)
    parser.add_argument("--report-dir", default="reports/selftest", help="where selftest.json goes")
    parser.add_argument(
        "--compare", action="store_true", help="measure `perfsuite compare` instead (A/A and slowdowns of side B)"
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="measure the history instead: change-point detection against the latency noise model's bounds, on "
        "histories built from --runs, a real injected history (--real-runs), the compare chain and the scale of "
        "add/changes/html (--sizes' first is the step)",
    )
    parser.add_argument("--runs", nargs="*", default=[], help="--history: folders of report.json files recorded here")
    parser.add_argument("--real-runs", type=int, default=0, help="--history: runs of a fully real history (0: none)")
    parser.add_argument("--inject-from", type=int, default=20, help="--history: the real run the slowdown starts at")
    parser.add_argument(
        "--real-select", default=None, help="--history: variants each real run times (default: --target alone)"
    )
    parser.add_argument("--scale-runs", type=positive_int, default=1000, help="--history: runs in the scale test")
    parser.add_argument("--scale-variants", type=positive_int, default=100, help="--history: variants per run there")
    parser.add_argument("--no-scale", action="store_true", help="--history: skip the scale test")
    parser.add_argument(
        "--busy", type=int, default=0, help="--compare: processes spinning a core each beside the A/A runs"
    )
    compare_timing_options(parser, "--compare: ")


def register(sub) -> None:
    """The subcommands of this module, each dispatched to its function by `func`."""
    for name, help_text in (
        ("run", "run variants against this machine's baselines"),
        ("rebaseline", "run variants and record this machine's baselines"),
        ("matrix", "list variants and whether they run here"),
        ("shard", "one variant over several devices; launch with torchrun --nproc_per_node N"),
    ):
        parsed = sub.add_parser(name, help=help_text)
        parsed.set_defaults(func=_run_command(name))
        common_options(parsed)
        if name == "rebaseline":
            parsed.add_argument(
                "--rewrite-portable",
                action="store_true",
                help="also rewrite portable records whose values this run confirms (default: only changed and new)",
            )
            parsed.add_argument("--processes", type=_processes, default=default_processes(), help=PROCESSES_HELP)
    selftest = sub.add_parser("selftest", help="measure the suite's false-alarm and detection rates here")
    _selftest_parser(selftest)
    selftest.set_defaults(func=_selftest)
    merge = sub.add_parser("merge", help="join the report.json files of a sharded run into one table")
    merge.add_argument("reports", nargs="+", help="report.json of each shard")
    merge.add_argument("--out", default="reports/perfsuite/merged", help="where the merged report goes")
    migrate = sub.add_parser("migrate-baselines", help="convert schema-1 baselines to portable + machine records")
    migrate.add_argument("--baselines", default=None, help=BASELINES_HELP)
    merge.set_defaults(func=_merge)
    migrate.set_defaults(func=_migrate)


def _processes(text: str) -> int:
    try:
        return processes_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_command(name: str):
    if name == "matrix":
        return _matrix
    if name == "shard":
        return _shard
    return lambda args: _run(args, rebaseline=name == "rebaseline")
