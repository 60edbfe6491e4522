"""`perfsuite budget`: does a configuration score N rows inside a time limit - the whole run, each
term named: installing, importing, loading (and quantising) each model copy, then scoring.

Two ways to use two cards (the competition's 2x T4):
- data parallel: one model copy per card, the rows dealt between them longest first (4th place
  ran two copies from two threads, one on the original rows and one on the A/B-swapped ones);
  wall time is the slower card's, and every copy is loaded.
- layer split: one copy whose decoder layers are spread over the cards (a public notebook ran
  unquantised fp16 Gemma-2-9B this way): each card holds 1/G of the weights, but a batch passes
  through the cards in turn, so scoring takes one card's time for every row, plus handing each
  batch's hidden states from card to card.

The cost model's interval applies to the scoring term; fixed costs are a flag's, a recipe's or
this machine's measurement projected onto the model and card (`cost/fixed.py`), and the output
names where each came from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from perfsuite.cost.devices import DeviceSpec
from perfsuite.cost.explain import ExplainError, Setup, check_setup, packs_for, shapes_for
from perfsuite.cost.fixed import FixedCosts, Term
from perfsuite.cost.model import ACT_BYTES, INT8_NOTE, memory_bytes, predict, weight_bytes
from perfsuite.fileio import console_width
from perfsuite.variant import BITSANDBYTES, Word

# The bus between two cards of one host: PCIe 3.0 x16, what a T4 has (about 12 GB/s in practice).
HANDOFF_BYTES_PER_S = 12e9
MEMORY_SHARE = 0.92  # of a card's memory a run may plan to use (the allocator and CUDA context keep the rest)


class Strategy(Word):
    DATA_PARALLEL = "data_parallel"
    LAYER_SPLIT = "layer_split"

    def copies(self, devices: int) -> int:
        """Model copies loaded: one per card, or one split over them all."""
        return devices if self is Strategy.DATA_PARALLEL else 1


@dataclass(frozen=True)
class Projection:
    setup: Setup
    rows: int
    devices: int
    tta: bool
    seconds: float  # wall time, every term
    peak_bytes: float  # on the fullest card
    fits_memory: bool
    strategy: Strategy = Strategy.DATA_PARALLEL
    scoring_s: float = 0.0  # the slowest card's (data parallel) or the pipeline's (layer split)
    handoff_s: float = 0.0  # layer split: hidden states from card to card
    fixed: FixedCosts = field(default_factory=FixedCosts)

    @property
    def copies(self) -> int:
        return self.strategy.copies(self.devices)

    def around(self, interval) -> tuple[float, float]:
        """The run's interval: the cost model's error on scoring; the other terms as given."""
        low, high = interval.around(self.scoring_s)
        rest = self.seconds - self.scoring_s
        return low + rest, high + rest

    def fits(self, limit_s: float) -> bool:
        return self.fits_memory and self.seconds <= limit_s


def tile(lengths: Sequence[int], rows: int) -> list[int]:
    """`rows` lengths drawn in turn from the measured distribution (deterministic)."""
    if not lengths:
        raise ExplainError("no row lengths to project from")
    return [lengths[i % len(lengths)] for i in range(rows)]


def project(
    setup: Setup,
    device: DeviceSpec,
    lengths: Sequence[int],
    rows: int,
    devices: int,
    tta: bool,
    strategy: Strategy = Strategy.DATA_PARALLEL,
    fixed: FixedCosts | None = None,
) -> Projection:
    check_setup(setup, device)
    fixed = fixed or FixedCosts()
    work = tile(lengths, rows) * (2 if tta else 1)  # TTA scores every row twice (A/B swapped)
    cfg = setup.config()
    if strategy is Strategy.DATA_PARALLEL:
        per_device = shapes_for(setup, work, devices)
        packs = packs_for(setup, work, devices)
        scoring = max(predict(cfg, device, shapes, p).total for shapes, p in zip(per_device, packs, strict=True))
        peak = max((memory_bytes(cfg, b, s) for shapes in per_device for b, s in shapes), default=0.0)
        handoff = 0.0
    else:
        (shapes,), (packs,) = shapes_for(setup, work, 1), packs_for(setup, work, 1)
        scoring = predict(cfg, device, shapes, packs).total
        hidden = ACT_BYTES[cfg.compute_dtype] * cfg.hidden
        handoff = sum(b * s * hidden for b, s in shapes) * (devices - 1) / HANDOFF_BYTES_PER_S
        shared = weight_bytes(cfg) * (1 - 1 / devices)  # the other cards hold these layers
        peak = max((memory_bytes(cfg, b, s) - shared for b, s in shapes), default=0.0)
    seconds = fixed.total(strategy.copies(devices)) + scoring + handoff
    fits = peak <= MEMORY_SHARE * device.memory_bytes
    return Projection(setup, rows, devices, tta, seconds, peak, fits, strategy, scoring, handoff, fixed)


# Single changes, cheapest first: free ones, then ones that cost memory, then quality.
CHANGES: tuple[tuple[str, str, object, str], ...] = (
    ("padding", "padding", "sorted", "free: same predictions"),
    ("padding", "padding", "token_budget", "free: same predictions; fewer, fuller batches of short rows"),
    (
        "padding",
        "padding",
        "packed",
        "free: same predictions, no padding; eager and sdpa compute each pack's whole square, flash only each row's",
    ),
    ("attention", "attention", "sdpa", "free where the model allows it"),
    ("attention", "attention", "flash_attention_2", "free on sm80+ with flash-attn (softcapping from 2.6)"),
    (
        "strategy",
        "strategy",
        Strategy.LAYER_SPLIT,
        "free in quality: each card holds 1/G of the weights; one card's speed",
    ),
    ("strategy", "strategy", Strategy.DATA_PARALLEL, "free in quality: every card scores, each holds a whole copy"),
    ("dtype", "dtype", "fp16", "more memory than 4-bit; fp16 may overflow (check the NaN guard)"),
    ("dtype", "dtype", "nf4", "4-bit weights shift probabilities (check log-loss)"),
    ("tta", "tta", False, "drops test-time augmentation: usually worse log-loss"),
    ("max_length", "max_length", 1536, "truncates long rows: worse log-loss"),
    ("max_length", "max_length", 1024, "truncates long rows: worse log-loss"),
)


def cheapest_fix(
    base: Projection,
    device: DeviceSpec,
    lengths: Sequence[int],
    fixed_for: Callable[[Setup], FixedCosts] | None = None,
) -> list[tuple[str, Projection | None, str]]:
    """Every single change to `base`'s setup with its projection (None: cannot run), cheapest
    first; the strategy stays as it is, and the fixed costs too unless `fixed_for` projects
    them for the changed setup (a measured load moves with the dtype)."""
    setup, rows, devices, tta = base.setup, base.rows, base.devices, base.tta
    out: list[tuple[str, Projection | None, str]] = []
    for _, name, value, cost in CHANGES:
        strategy = base.strategy
        if name == "tta":
            if not tta:
                continue
            label, alt, alt_tta = "TTA off", setup, False
        elif name == "strategy":
            if devices == 1 or value == strategy:
                continue
            label, alt, alt_tta, strategy = f"strategy {value}", setup, tta, Strategy(value)
        else:
            if getattr(setup, name) == value:
                continue
            label, alt, alt_tta = f"{name} {value}", replace(setup, **{name: value}), tta
        try:
            fixed = fixed_for(alt) if fixed_for else base.fixed
            out.append((label, project(alt, device, lengths, rows, devices, alt_tta, strategy, fixed), cost))
        except ExplainError as exc:
            out.append((label, None, str(exc)))
    return out


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def _strategy_words(p: Projection) -> str:
    if p.strategy is Strategy.LAYER_SPLIT:
        return f"one copy split by layers over {p.devices} cards"
    return f"one copy per card, {p.copies} copies, rows dealt between them"


def budget_verdict(p: Projection, interval, limit_s: float) -> str:
    """fits / does not fit / uncertain: where the limit lies against the projection's interval."""
    low, high = p.around(interval)
    if not p.fits_memory or low > limit_s:
        return "does not fit"
    return "fits" if high <= limit_s else "uncertain"


def terms_table(p: Projection, interval):
    """Each term of the projected wall time, with where its figure comes from."""
    from rich.table import Table

    f = p.fixed
    t = Table(title="where the time goes", header_style="bold", caption=f"fixed costs: {f.source}")
    for h in ("term", "seconds", "from"):
        t.add_column(h, overflow="fold")
    t.add_row("install", f"{f.install_s:,.0f}", f.where(Term.INSTALL))
    t.add_row("import", f"{f.import_s:,.0f}", f.where(Term.IMPORT))
    quantised = p.setup.dtype in BITSANDBYTES
    load = f"load{' and quantise' if quantised and f.quantise_in_load else ''} x{p.copies}"
    t.add_row(load, f"{f.load_s * p.copies:,.0f}", f"{f.where(Term.LOAD)}; per copy")
    if quantised and not f.quantise_in_load:
        t.add_row(f"quantise x{p.copies}", f"{f.quantise_s * p.copies:,.0f}", f"{f.where(Term.QUANTISE)}; per copy")
    low, high = interval.around(p.scoring_s)
    t.add_row("score", f"{p.scoring_s:,.0f} ({low:,.0f}-{high:,.0f})", "the cost model (interval below)")
    if p.strategy is Strategy.LAYER_SPLIT:
        t.add_row("hand-off between cards", f"{p.handoff_s:,.0f}", "hidden states over PCIe 3.0 x16 (12 GB/s)")
    t.add_row("[bold]total[/bold]", f"{p.seconds:,.0f}", "")
    return t


def render_budget(
    setup: Setup,
    device: DeviceSpec,
    device_source: str,
    lengths: Sequence[int],
    lengths_source: str,
    rows: int,
    devices: int,
    tta: bool,
    limit_s: float,
    interval=None,
    strategy: Strategy = Strategy.DATA_PARALLEL,
    fixed: FixedCosts | None = None,
    recipe_line: str | None = None,
    fixed_for: Callable[[Setup], FixedCosts] | None = None,
) -> tuple[str, str]:
    """The budget report and its verdict (fits / does not fit / uncertain); `recipe_line` (the
    preset that set it up) leads it; `fixed_for` re-projects the fixed costs for a single change."""
    from rich.console import Console
    from rich.table import Table

    from perfsuite.cost.uncertainty import Interval

    interval = interval or Interval(1.0, 1.0, "no interval")
    p = project(setup, device, lengths, rows, devices, tta, strategy, fixed)
    verdict = budget_verdict(p, interval, limit_s)
    low, high = p.around(interval)
    console = Console(width=console_width(140), record=True)
    with console.capture() as cap:
        if recipe_line:
            console.print(f"[bold]{recipe_line}[/bold]")
        console.print(
            f"[bold]{setup.label()}[/bold], {rows:,} rows{' x2 (TTA)' if tta else ''} on {devices}x {device.name} "
            f"({_strategy_words(p)}), "
            f"max_length {setup.max_length}, batch {setup.batch_size}; lengths from {lengths_source}; {device_source}"
        )
        memory = f"peak ~{p.peak_bytes / 2**30:.1f} GiB of {device.memory_bytes / 2**30:.1f} GiB"
        style = {"fits": "green", "does not fit": "bold red", "uncertain": "bold yellow"}[verdict]
        console.print(
            f"projected {_hours(p.seconds)} ({low / 3600:.1f}-{high / 3600:.1f} h) against {_hours(limit_s)}: "
            f"[{style}]{verdict}[/{style}]; {memory}{'' if p.fits_memory else ' - OUT OF MEMORY'}"
        )
        console.print(terms_table(p, interval))
        console.print(f"interval (scoring): {interval.basis}")
        if setup.dtype == "int8":
            console.print(f"note: {INT8_NOTE}")
        t = Table(title="single changes, cheapest first", header_style="bold")
        for h in ("change", "projected", "verdict", "cost"):
            t.add_column(h, overflow="fold")
        first = None
        for label, proj, cost in cheapest_fix(p, device, lengths, fixed_for):
            alt = "cannot run" if proj is None else budget_verdict(proj, interval, limit_s)
            if alt == "fits" and first is None and verdict != "fits":
                first = label
            if proj is None:
                shown = "cannot run"
            else:
                lo, hi = proj.around(interval)
                shown = f"{_hours(proj.seconds)} ({lo / 3600:.1f}-{hi / 3600:.1f})" + (
                    "" if proj.fits_memory else " (OOM)"
                )
            t.add_row(label, shown, alt, cost)
        console.print(t)
        if verdict != "fits":
            console.print(
                f"cheapest change that fits with confidence: [bold]{first}[/bold]"
                if first
                else "no single change fits with confidence"
            )
    return cap.get(), verdict


def parse_duration(text: str) -> float:
    """'9h', '540m', '9h30m', '32400s' -> seconds. A unit is required: a bare '9' read as seconds
    once made a 9-hour limit a 9-second one."""
    import re

    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    text = text.strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not text or "".join(n + u for n, u in parts) != text:
        if text and text[-1] not in units and re.fullmatch(r"[\d.]+", text):
            raise ExplainError(f"--limit {text!r}: give a unit (e.g. 9h, 540m, 9h30m, 32400s)")
        if text.startswith("-") or "inf" in text:
            raise ExplainError(f"--limit {text!r}: must be a positive, finite duration")
        raise ExplainError(f"--limit {text!r}: cannot read it as a duration (e.g. 9h, 540m, 9h30m, 32400s)")
    seconds = sum(float(n) * units[u] for n, u in parts)
    if not seconds > 0:
        raise ExplainError(f"--limit {text!r}: must be a positive, finite duration")
    return seconds
