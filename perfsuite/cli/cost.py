"""explain / budget: the cost model's answer to "why is A slower than B" and "does it fit the
limit"; fit: its efficiency factors fitted to this machine's records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perfsuite.variant import ATTENTIONS, DTYPES

from .options import BASELINES_HELP, model_options, positive_int

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
    from perfsuite.data.lengths import token_lengths
    from perfsuite.data.sample import SAMPLE_PATH
    from perfsuite.data.tokenizer import NAMED, load_tiny_tokenizer

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
    from perfsuite.cost.fit import fitted_device

    return fitted_device(args.device, Path(args.baselines))


def _explain(args: argparse.Namespace) -> int:
    from perfsuite.cost.explain import Setup, default_attention, fit_default_dtype, render_explain

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


def _fixed_rates(args: argparse.Namespace):
    """This machine's measured fixed-cost rates (None and why not): the host that would run the
    notebook is unknown, so the machine budget runs on stands in for it, and says so."""
    from perfsuite.device.machine import detect
    from perfsuite.measure.fixed import load_rates

    return load_rates(Path(args.baselines), detect("cpu").machine_key())


def _budget(args: argparse.Namespace) -> int:
    from perfsuite.cost.budget import Strategy, parse_duration, render_budget
    from perfsuite.cost.explain import Setup, default_attention
    from perfsuite.cost.fixed import FixedCosts, projected
    from perfsuite.cost.recipes import Recipe, load_recipe, recipe_model
    from perfsuite.cost.uncertainty import interval_for

    recipe = load_recipe(args.recipe) if args.recipe else Recipe("none", "")
    model, model_note = recipe_model(args.model, recipe)
    setup = Setup(
        model,
        args.dtype or recipe.dtype or "fp16",
        args.attention or recipe.attention or default_attention(model),
        args.padding or recipe.padding or "sorted",
        args.batch_size or recipe.batch_size or 4,
        args.max_length or recipe.max_length or 2048,
    )
    device, source = _device(args)
    lengths, lengths_source = _lengths(args, setup.max_length)
    interval = interval_for(args.device, Path(args.baselines))
    limit = parse_duration(args.limit)
    tta = recipe.tta if args.tta is None else args.tta
    strategy = Strategy(args.strategy) if args.strategy else recipe.strategy
    rates, missing = _fixed_rates(args)

    def fixed_for(alt: Setup) -> FixedCosts:
        measured = projected(rates, alt.config(), device) if rates else None
        return recipe.fixed(args.install_s, args.import_s, args.load_s, measured, missing)

    fixed = fixed_for(setup)
    line = f"recipe {recipe.name}: {recipe.description}{model_note}" if args.recipe else None
    text, verdict = render_budget(
        setup,
        device,
        source,
        lengths,
        lengths_source,
        args.rows,
        args.gpus,
        tta,
        limit,
        interval,
        strategy,
        fixed,
        line,
        fixed_for,
    )
    print(text)
    return 0 if verdict == "fits" else 1  # "uncertain" is not a fit you can count on


def _fixed_costs(args: argparse.Namespace) -> int:
    from perfsuite.cost.devices import get_device
    from perfsuite.cost.explain import Setup
    from perfsuite.cost.fixed import projected, render_rates
    from perfsuite.device.environment import package_versions
    from perfsuite.device.machine import detect
    from perfsuite.measure.fixed import measure, save_rates

    key = detect("cpu").machine_key()
    rates = measure(key, package_versions(), args.repeats, report=lambda line: print(line, file=sys.stderr))
    t4 = get_device("t4")
    shown = [
        (f"{model} {dtype} on a T4", projected(rates, Setup(model, dtype, "sdpa").config(), t4))
        for model in ("gemma2-9b", "llama3-8b")
        for dtype in ("fp16", "nf4", "int8")
    ]
    print(render_rates(rates, shown))
    if args.save:
        print(f"saved: {save_rates(Path(args.baselines), rates)}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from perfsuite.cost.devices import EFFICIENCY_FIELDS
    from perfsuite.cost.fit import FitRefused, fit_and_save
    from perfsuite.device.machine import detect
    from perfsuite.store.names import safe_name

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


def register(sub) -> None:
    """The subcommands of this module, each dispatched to its function by `func`."""
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
    model_options(explain)
    budget = sub.add_parser("budget", help="does a config score N rows on G devices within a time limit")
    budget.add_argument("model", help="a built-in name (gemma2-9b ...) or a config.json path")
    budget.add_argument(
        "--attention", default=None, choices=ATTENTIONS, help="default: eager for Gemma-2 (softcapping), else sdpa"
    )
    budget.add_argument("--rows", type=positive_int, default=25000, help="rows to score (Kaggle's hidden test)")
    budget.add_argument("--gpus", type=positive_int, default=2, help="devices, one model copy each")
    budget.add_argument("--limit", default="9h", help="with a unit: 9h, 540m, 9h30m, 32400s")
    budget.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score every row twice, A and B swapped (default: off, or the recipe's)",
    )
    budget.add_argument(
        "--strategy",
        default=None,
        choices=["data_parallel", "layer_split"],
        help="two or more cards: a copy per card, rows dealt between them; or one copy split by layers "
        "(default: data_parallel, or the recipe's)",
    )
    budget.add_argument(
        "--recipe",
        default=None,
        metavar="NAME|TOML",
        help="a public solution's settings: 3rd-place, 4th-place, fp16-layer-split, or a TOML of your own; "
        "a flag given beside it wins",
    )
    for term, words in (
        ("install", "installing wheels"),
        ("import", "importing"),
        ("load", "loading one model copy, quantising included"),
    ):
        budget.add_argument(
            f"--{term}-s",
            type=float,
            default=None,
            metavar="S",
            help=f"seconds {words} before the first row (default: the recipe's, else this machine's "
            "`perfsuite fixed-costs` record projected, else 0)",
        )
    model_options(budget, recipe=True)
    fixed = sub.add_parser(
        "fixed-costs",
        help="measure this machine's import, load and quantise-on-load times (what budget counts before the first row)",
    )
    fixed.add_argument("--repeats", type=positive_int, default=3, help="fresh processes per mode and probe size")
    fixed.add_argument("--save", action="store_true", help="write <baselines>/<machine>/fixedcosts.json (whole)")
    fixed.add_argument("--baselines", default=None, help=BASELINES_HELP)
    fixed.set_defaults(func=_fixed_costs)
    fit = sub.add_parser("fit", help="fit the cost model's efficiency factors to this machine's baselines")
    fit.add_argument("--machine", default=None, help="machine key (default: this machine)")
    fit.add_argument("--tiers", default=None, help="comma-separated tiers (default: all recorded)")
    fit.add_argument("--baselines", default=None, help=BASELINES_HELP)
    fit.add_argument("--force", action="store_true", help="write the fit even if it is worse than the stored one")
    explain.set_defaults(func=_explain)
    budget.set_defaults(func=_budget)
    fit.set_defaults(func=_fit)
