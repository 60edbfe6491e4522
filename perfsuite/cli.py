"""Command line: `perfsuite run | rebaseline | matrix | shard | selftest | explain | budget | fit |
compare | bisect | merge | migrate-baselines`.

Same library as the pytest plugin; useful outside pytest (notebooks, scripts).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .baselines import baselines_root
from .matrix import (
    ATTENTIONS,
    DTYPES,
    PADDINGS,
    WORKLOAD_FIELDS,
    MatrixError,
    default_baselines,
    load_matrix,
    positive_int,
)

BASELINES_HELP = (
    "baseline root (default: baselines/ of the project around the working folder, found like pytest's rootdir)"
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


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--matrix", default="cpu", help="tier name (cpu, gpu) or a matrix TOML path")
    parser.add_argument("-k", "--select", default=None, help="glob over variant ids, e.g. 'tiny-llama3-*-sorted'")
    parser.add_argument("--data", default=None, help="a Kaggle-format CSV (default: the bundled sample)")
    parser.add_argument("--baselines", default=None, help=BASELINES_HELP)
    parser.add_argument("--report-dir", default="reports/perfsuite", help="where report.json/report.md go")
    for field in WORKLOAD_FIELDS:
        parser.add_argument(
            f"--{field.replace('_', '-')}", type=positive_int, default=None, help=f"override the tier's {field}"
        )
    parser.add_argument("--ratio", default=None, metavar="A:B", help="print model A / model B latency per cell")
    parser.add_argument(
        "--strict", action="store_true", help="fail a variant judged on nothing beyond the guard (no usable record)"
    )


def _workload(args: argparse.Namespace) -> dict[str, int]:
    return {field: getattr(args, field) for field in WORKLOAD_FIELDS}


def _run(args: argparse.Namespace, rebaseline: bool) -> int:
    from .progress import Progress
    from .report import render_ratios
    from .session import PerfSession

    matrix = load_matrix(args.matrix)
    variants = matrix.select(args.select)
    if not variants:
        print(f"no variant of {matrix.source} matches {args.select!r}", file=sys.stderr)
        return 2
    session = PerfSession(
        matrix,
        args.baselines,
        args.data,
        rebaseline=rebaseline,
        workload=_workload(args),
        strict=args.strict,
        rewrite_portable=getattr(args, "rewrite_portable", False),
    )
    try:
        session.data.rows()  # a file that cannot be used is one error (exit 2), not a failure per variant
    except ValueError:
        session.finish(interrupted=True)  # release a rebaseline's lock; nothing was staged
        raise
    print(session.load_report.summary(), file=sys.stderr, flush=True)
    interrupted = False
    try:
        # Relative bounds first, as in the tier: torch.compile's workers, busy after flex_attention
        # variants, once pulled an interleaved ratio from 1.2 to 0.9 (docs/bounds.md).
        bounds = matrix.select_relative(args.select)
        with Progress(len(bounds) + len(variants), "variants and bounds") as progress:
            for bound in bounds:
                pair = session.run_relative(bound)
                progress.advance(f"{bound.id}: {pair.verdict.status}")
            for variant in variants:
                outcome = session.run(variant)
                progress.advance(f"{variant.id}: {outcome.verdict.status}")
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted", file=sys.stderr, flush=True)
    except BaseException:
        session.finish(interrupted=True)  # a rebaseline that did not finish records nothing
        raise
    session.finish(interrupted=interrupted)  # a rebaseline commits all its records or none
    report = session.report()
    folder = report.write(args.report_dir)  # before rendering: a render error loses nothing
    print(report.render())
    if args.ratio:
        model_a, _, model_b = args.ratio.partition(":")
        print(render_ratios(report.outcomes, model_a, model_b))
    print(f"reports: {folder.resolve()}")
    for line in [*report.footer, *filter(None, [report.warning])]:
        print(line)
    if interrupted:
        return 130
    return 1 if report.failed else 0


def _shard(args: argparse.Namespace) -> int:
    """One variant sharded over the processes of a torchrun launch (one per device)."""
    from .distributed import run_sharded
    from .session import PerfSession

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
    from .session import PerfSession

    matrix = load_matrix(args.matrix)
    variants = matrix.select(args.select)
    if not variants:
        print(f"no variant of {matrix.source} matches {args.select!r}", file=sys.stderr)
        return 2
    session = PerfSession(matrix, args.baselines)
    for variant in variants:
        reason = session.skip_reason(variant)
        print(f"{variant.id:55s} {'skip: ' + reason if reason else 'runs'}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """A/B of this environment against another, interleaved on this machine (exit 1: B slower or changed)."""
    import contextlib

    from .compare import CompareSettings, Comparison, render, write_reports
    from .compare_envs import base_side, pinned_side, python_side, this_side

    matrix = load_matrix(args.matrix)
    variants = matrix.select(args.select)
    if not variants:
        raise MatrixError(f"no variant of {matrix.source} matches {args.select!r}")
    if args.max_pairs < args.min_pairs:
        raise ValueError(f"--max-pairs {args.max_pairs} is below --min-pairs {args.min_pairs}")
    settings = CompareSettings(
        max_slowdown=args.max_slowdown, passes=args.passes, min_pairs=args.min_pairs, max_pairs=args.max_pairs
    )
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    with contextlib.ExitStack() as stack:
        if args.python:
            b = python_side(args.python)
        elif args.pin:
            b = pinned_side(args.pin, say)
        else:
            b = stack.enter_context(base_side(args.base, say))
        a = this_side()
        comparison = Comparison(matrix, a, b, settings, args.data, _workload(args), say)
        comparison.check_sides()
        results = comparison.run(variants)
    print(render(results, (a, b), settings))
    folder = write_reports(results, (a, b), comparison.versions, settings, Path(args.report_dir))
    print(f"compare reports: {folder.resolve()}")
    return 1 if any(r.failed for r in results) else 0


def _bisect(args: argparse.Namespace) -> int:
    """First release of a package between GOOD and BAD at which a variant changed (exit 0 found, 1 none)."""
    import json

    from .bisect import BisectError, Bisection, index_versions, releases_between, render
    from .compare import CompareSettings
    from .compare_envs import venv_root, version_side
    from .fileio import atomic_write_text

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
        workload=_workload(args),
        progress=say,
    )
    result = bisection.run(args.good, args.bad, releases)
    print(render(result))
    path = Path(args.report_dir) / "bisect.json"
    atomic_write_text(path, json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    print(f"bisect report: {path.resolve()}")
    return 0 if result.first_changed else 1


def _merge(args: argparse.Namespace) -> int:
    """Join the report.json files of a sharded tier (exit 1 if any variant or bound failed)."""
    from .report import merge_reports

    text, folder, failed = merge_reports([Path(p) for p in args.reports], args.out)
    print(text)
    print(f"merged report: {folder.resolve()}")
    return 1 if failed else 0


def _migrate(args: argparse.Namespace) -> int:
    """Split schema-1 records (one per machine) into portable and machine records, in place."""
    from .baselines import migrate_v1

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
    from .selftest import compare_selftest, selftest

    sizes = tuple(float(x) for x in args.sizes.split(","))
    if args.compare:
        from .compare import CompareSettings

        settings = CompareSettings(passes=args.passes, min_pairs=args.min_pairs, max_pairs=args.max_pairs)
        compare_selftest(args.aa_runs, args.inject_runs, sizes, args.target, out_dir=args.report_dir, settings=settings)
        return 0
    selftest(args.aa_runs, args.inject_runs, args.select, args.target, args.baselines, args.report_dir, sizes)
    return 0


def _selftest_parser(parser: argparse.ArgumentParser) -> None:
    from .selftest import DEFAULT_TARGET

    parser.add_argument("--aa-runs", type=positive_int, default=10, help="unchanged runs, each its own process")
    parser.add_argument("--inject-runs", type=positive_int, default=5, help="runs per injected regression")
    parser.add_argument("--sizes", default="0.10,0.25,0.50", help="slowdowns to inject, as fractions")
    parser.add_argument("--target", default=DEFAULT_TARGET, help="the variant made slower")
    parser.add_argument("-k", "--select", default=None, help="variants to run (default: those of the relative bounds)")
    parser.add_argument("--baselines", default=None, help=BASELINES_HELP)
    parser.add_argument("--report-dir", default="reports/selftest", help="where selftest.json goes")
    parser.add_argument(
        "--compare", action="store_true", help="measure `perfsuite compare` instead (A/A and slowdowns of side B)"
    )
    parser.add_argument("--passes", type=positive_int, default=6, help="--compare: interleaved passes per process pair")
    parser.add_argument("--min-pairs", type=at_least(3), default=6, help="--compare: process pairs before deciding")
    parser.add_argument(
        "--max-pairs", type=positive_int, default=24, help="--compare: most process pairs while undecided"
    )


# Measured 2026-11-27 on the 1,803 real arena battles (docs/validation.md).
TINY_BPE_ON_REAL_TEXT = (
    "counted with the bundled tiny BPE, trained on generated text: on real arena battles it counts 3.1x the "
    "tokens Llama-3 does (p10-p90 2.6-3.6x; median 2,939 vs 935), so times come out far too long - "
    "use --tokenizer llama3 or your model's tokenizer.json"
)
GEMMA_WITH_LLAMA3_COUNTS = (
    "Gemma-2's rows are counted with Llama-3's tokenizer: Gemma-2's own (256k SentencePiece) is not available "
    "offline and its ratio to Llama-3's counts is not measured here; give its tokenizer.json for exact counts"
)


def _lengths(args: argparse.Namespace, max_length: int) -> tuple[list[int], str]:
    from .data.lengths import token_lengths
    from .data.sample import SAMPLE_PATH
    from .data.tokenizer import NAMED, load_tiny_tokenizer

    path = Path(args.data) if args.data else SAMPLE_PATH
    tokenizer: str | Path | None = None
    if args.tokenizer in NAMED:
        tokenizer = args.tokenizer
    elif args.tokenizer:
        tokenizer = Path(args.tokenizer)
        try:
            load_tiny_tokenizer(tokenizer)
        except Exception as exc:  # any way a file is not a tokenizer.json: name it, exit 2
            why = f"{type(exc).__name__}: {exc}"
            raise ValueError(
                f"--tokenizer {tokenizer}: not a usable tokenizer.json ({why}); or a name: {', '.join(NAMED)}"
            ) from None
    found = token_lengths(path, max_length, args.data_rows, tokenizer)
    if found.load_summary:
        print(found.load_summary, file=sys.stderr)
    if not found.kept:
        raise ValueError(f"{path}: no usable rows")
    q = found.quantiles()
    name = {None: "tiny BPE", "llama3": "Llama-3 BPE (quicktok)"}.get(tokenizer, getattr(tokenizer, "name", ""))
    source = f"{path.name} ({len(found.kept)} rows, {name}, median {q['median']}, p90 {q['p90']} tokens)"
    if tokenizer is None and path.resolve() != SAMPLE_PATH.resolve():
        source += f". WARNING: {TINY_BPE_ON_REAL_TEXT}"
    gemma = {getattr(args, "model", None), *(getattr(args, "models", None) or ())} & {"gemma2-9b", "gemma2-27b"}
    if tokenizer == "llama3" and gemma:
        source += f". Note: {GEMMA_WITH_LLAMA3_COUNTS}"
    return list(found.kept), source


def _device(args: argparse.Namespace):
    from .cost.fit import fitted_device

    return fitted_device(args.device, Path(args.baselines))


def _explain(args: argparse.Namespace) -> int:
    from .cost.explain import Setup, default_attention, fit_default_dtype, render_explain

    model_a, model_b = args.models
    common = dict(padding=args.padding, batch_size=args.batch_size, max_length=args.max_length)
    dtype_a, dtype_b = args.dtype_a or args.dtype or "fp16", args.dtype_b or args.dtype or "fp16"
    a = Setup(model_a, dtype=dtype_a, attention=args.attention_a or default_attention(model_a), **common)
    b = Setup(model_b, dtype=dtype_b, attention=args.attention_b or default_attention(model_b), **common)
    device, source = _device(args)
    lengths, lengths_source = _lengths(args, args.max_length)
    typed = args.dtype is not None
    (a, b), first_line = fit_default_dtype(
        [(a, not (typed or args.dtype_a)), (b, not (typed or args.dtype_b))], device, lengths
    )
    print(render_explain(a, b, device, source, lengths, lengths_source, first_line))
    return 0


def _budget(args: argparse.Namespace) -> int:
    from .cost.explain import Setup, default_attention, parse_duration, render_budget
    from .cost.uncertainty import interval_for

    setup = Setup(
        args.model,
        args.dtype or "fp16",
        args.attention or default_attention(args.model),
        args.padding,
        args.batch_size,
        args.max_length,
    )
    device, source = _device(args)
    lengths, lengths_source = _lengths(args, args.max_length)
    interval = interval_for(args.device, Path(args.baselines))
    limit = parse_duration(args.limit)
    text, verdict = render_budget(
        setup, device, source, lengths, lengths_source, args.rows, args.gpus, args.tta, limit, interval
    )
    print(text)
    return 0 if verdict == "fits" else 1  # "uncertain" is not a fit you can count on


def _fit(args: argparse.Namespace) -> int:
    from .cost.devices import EFFICIENCY_FIELDS
    from .cost.fit import FitRefused, fit_and_save
    from .machine import detect
    from .names import safe_name

    machine = safe_name(args.machine or detect("auto").machine_key(), "--machine")
    root = Path(args.baselines)
    if args.tiers:
        tiers = [safe_name(t, "--tiers") for t in args.tiers.split(",")]
    else:
        tiers = sorted(p.name for p in (root / machine).glob("*") if p.is_dir())
    if not tiers:
        raise FileNotFoundError(f"{root / machine}: no baselines to fit (record them with `tox -e rebaseline`)")
    try:
        device, errors, others, path = fit_and_save(root, machine, tiers, force=args.force)
    except FitRefused as exc:
        print(f"perfsuite fit: {exc}", file=sys.stderr)
        return 1
    print(f"{machine}: fitted on {len(errors)} variants of {', '.join(tiers)} -> {path}")
    factors = ", ".join(f"{f} {getattr(device, f):.4g}" for f in EFFICIENCY_FIELDS)
    print(f"  {factors}")
    for label, table in (("fitted", errors), ("not fitted (outside what the model covers)", others)):
        if table:
            values = sorted(table.values())
            print(f"  predicted/measured, {label}: {values[0]:.2f}-{values[-1]:.2f} over {len(values)} variants")
            for vid, r in sorted(table.items(), key=lambda x: x[1]):
                print(f"    {vid:45s} {r:.2f}")
    return 0


def _model_args(parser: argparse.ArgumentParser) -> None:
    from .cost.devices import DEVICES

    parser.add_argument("--device", default="t4", choices=["cpu", *DEVICES], help="datasheet GPU, or cpu (calibrated)")
    parser.add_argument(
        "--dtype",
        default=None,
        choices=DTYPES,
        help="weights (nf4/int8: fp16 compute); default fp16 - for explain, nf4 where fp16 does not fit the card",
    )
    parser.add_argument("--padding", default="sorted", choices=PADDINGS, help="padding strategy")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="rows per batch per device")
    parser.add_argument("--max-length", type=positive_int, default=2048, help="tokens kept per row")
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
}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown beside each option; the example and exit codes kept as written."""


class _Subcommands:
    """`add_parser` with the example, the exit codes and the defaults in every subcommand's --help."""

    def __init__(self, action) -> None:
        self.action = action

    def add_parser(self, name: str, **kwargs):
        epilog = f"example:\n  {EXAMPLES[name]}\n\n{EXIT_CODES}"
        return self.action.add_parser(name, epilog=epilog, formatter_class=_Formatter, **kwargs)


def main(argv: list[str] | None = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="perfsuite", description=__doc__, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"perfsuite {__version__}")
    sub = _Subcommands(parser.add_subparsers(dest="command", required=True))
    for name, help_text in (
        ("run", "run variants against this machine's baselines"),
        ("rebaseline", "run variants and record this machine's baselines"),
        ("matrix", "list variants and whether they run here"),
        ("shard", "one variant over several devices; launch with torchrun --nproc_per_node N"),
    ):
        parsed = sub.add_parser(name, help=help_text)
        _common(parsed)
        if name == "rebaseline":
            parsed.add_argument(
                "--rewrite-portable",
                action="store_true",
                help="also rewrite portable records whose values this run confirms (default: only changed and new)",
            )
    _selftest_parser(sub.add_parser("selftest", help="measure the suite's false-alarm and detection rates here"))
    explain = sub.add_parser("explain", help="why model A is slower than B on a device, factor by factor")
    explain.add_argument(
        "models", nargs=2, metavar="MODEL", help="a built-in name or a config.json path, e.g. gemma2-9b llama3-8b"
    )
    explain.add_argument(
        "--attention-a", default=None, choices=ATTENTIONS, help="default: eager for Gemma-2 (softcapping), else sdpa"
    )
    explain.add_argument("--attention-b", default=None, choices=ATTENTIONS, help="as --attention-a, for B")
    explain.add_argument("--dtype-a", default=None, choices=DTYPES, help="A's dtype (default: --dtype)")
    explain.add_argument("--dtype-b", default=None, choices=DTYPES, help="B's dtype (default: --dtype)")
    _model_args(explain)
    budget = sub.add_parser("budget", help="does a config score N rows on G devices within a time limit")
    budget.add_argument("model", help="a built-in name (gemma2-9b ...) or a config.json path")
    budget.add_argument(
        "--attention", default=None, choices=ATTENTIONS, help="default: eager for Gemma-2 (softcapping), else sdpa"
    )
    budget.add_argument("--rows", type=positive_int, default=25000, help="rows to score (Kaggle's hidden test)")
    budget.add_argument("--gpus", type=positive_int, default=2, help="devices, one model copy each")
    budget.add_argument("--limit", default="9h", help="with a unit: 9h, 540m, 9h30m, 32400s")
    budget.add_argument("--tta", action="store_true", help="score every row twice (A/B swapped)")
    _model_args(budget)
    compare = sub.add_parser(
        "compare",
        help="A/B: this environment against another interpreter, pinned versions or a base revision, interleaved",
    )
    _common(compare)
    compare.set_defaults(report_dir="reports/perfsuite/compare")
    side = compare.add_mutually_exclusive_group(required=True)
    side.add_argument("--python", help="B = this interpreter (another venv that can import perfsuite)")
    side.add_argument("--pin", action="append", metavar="PKG==VER", help="B = this environment with these pins")
    side.add_argument("--base", metavar="GIT_REV", help="B = that revision of this repository (a git worktree)")
    compare.add_argument(
        "--max-slowdown", type=positive_fraction, default=0.05, help="B slower than this fraction fails"
    )
    compare.add_argument("--passes", type=positive_int, default=6, help="interleaved passes per process pair")
    compare.add_argument(
        "--min-pairs", type=at_least(3), default=6, help="process pairs before the first decision (an interval needs 3)"
    )
    compare.add_argument("--max-pairs", type=positive_int, default=24, help="most process pairs while undecided")
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
    bisect.add_argument("--data", default=None, help="a Kaggle-format CSV (default: the bundled sample)")
    for field in WORKLOAD_FIELDS:
        bisect.add_argument(
            f"--{field.replace('_', '-')}", type=positive_int, default=None, help=f"override the tier's {field}"
        )
    bisect.add_argument("--pre", action="store_true", help="include pre-releases")
    bisect.add_argument("--no-latency", action="store_true", help="judge status, work and predictions only (fast)")
    bisect.add_argument(
        "--max-slowdown", type=positive_fraction, default=0.05, help="a latency change beyond this fraction"
    )
    bisect.add_argument("--report-dir", default="reports/perfsuite/bisect", help="where bisect.json goes")
    merge = sub.add_parser("merge", help="join the report.json files of a sharded run into one table")
    merge.add_argument("reports", nargs="+", help="report.json of each shard")
    merge.add_argument("--out", default="reports/perfsuite/merged", help="where the merged report goes")
    migrate = sub.add_parser("migrate-baselines", help="convert schema-1 baselines to portable + machine records")
    migrate.add_argument("--baselines", default=None, help=BASELINES_HELP)
    fit = sub.add_parser("fit", help="fit the cost model's efficiency factors to this machine's baselines")
    fit.add_argument("--machine", default=None, help="machine key (default: this machine)")
    fit.add_argument("--tiers", default=None, help="comma-separated tiers (default: all recorded)")
    fit.add_argument("--baselines", default=None, help=BASELINES_HELP)
    fit.add_argument("--force", action="store_true", help="write the fit even if it is worse than the stored one")
    args = parser.parse_args(argv)
    if getattr(args, "baselines", "unset") is None:
        beside = default_baselines(args.matrix) if isinstance(getattr(args, "matrix", None), str) else None
        args.baselines = str(beside or baselines_root(None))  # a user matrix keeps its own beside it
    try:
        if args.command in ("explain", "budget", "fit"):
            return {"explain": _explain, "budget": _budget, "fit": _fit}[args.command](args)
        if args.command == "merge":
            return _merge(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "bisect":
            return _bisect(args)
        if args.command == "migrate-baselines":
            return _migrate(args)
        if args.command == "selftest":
            return _selftest(args)
        if args.command == "matrix":
            return _matrix(args)
        if args.command == "shard":
            return _shard(args)
        return _run(args, rebaseline=args.command == "rebaseline")
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


if __name__ == "__main__":
    sys.exit(main())
