"""`perfsuite explain`: the cost model turned into an answer.

explain: why model A is slower than model B on a device, factor by factor. B's configuration
is carried to A's one property at a time (layers, width, heads x head_dim, sliding window,
softcapping, attention implementation, dtype); where properties interact a step's factor
depends on the order, so each step gets its Shapley value (its mean over every order) and
the factors multiply to the total whatever the order of the arguments.

budget (cost/budget.py) projects whole runs from the same predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from perfsuite.cost.devices import DeviceSpec
from perfsuite.cost.model import COMPONENT_NOTES, COMPONENTS, INT8_NOTE, CostConfig, Prediction, memory_bytes, predict
from perfsuite.device.support import implementation_reason, semantic_reason
from perfsuite.fileio import console_width
from perfsuite.measure.batching import pack_lengths, padded_shapes
from perfsuite.measure.distributed import shard_rows
from perfsuite.models.modelspec import ModelSpec
from perfsuite.models.specs import resolve_model
from perfsuite.variant import PADDINGS

STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("layers", ("layers",)),
    ("width (hidden, MLP)", ("hidden", "intermediate", "mlp_matrices")),
    ("heads x head_dim (attention term)", ("heads", "kv_heads", "head_dim")),
    ("sliding window", ("sliding_window", "sliding_share")),
    ("attention implementation", ("attention",)),
    ("softcapping (passes over eager scores)", ("softcapping",)),
    ("weights / compute dtype", ("dtype", "compute_dtype")),
    ("vocabulary (memory only)", ("vocab",)),
)


class ExplainError(ValueError):
    """A configuration the models or devices cannot run; the message says which and why."""


@dataclass(frozen=True)
class Setup:
    """One way of running a model: what explain and budget predict."""

    model: str
    dtype: str
    attention: str
    padding: str = "sorted"
    batch_size: int = 4
    max_length: int = 2048

    @property
    def spec(self) -> ModelSpec:
        """`model` is a built-in name or a config.json path (resolved once per path)."""
        return resolve_model(self.model)

    @property
    def name(self) -> str:
        return self.spec.name

    def config(self) -> CostConfig:
        return CostConfig.for_model(self.spec, self.dtype, self.attention, "fp16")

    def label(self) -> str:
        return f"{self.name} {self.dtype} {self.attention} {self.padding}"


def default_attention(model: str) -> str:
    """The attention a model name gets when the command line names none."""
    return resolve_model(model).default_attention


def check_setup(setup: Setup, device: DeviceSpec) -> None:
    """Hardware rules for `device` (FlashAttention-2 needs sm80+ ...) and what the installed transformers accepts."""
    reason = implementation_reason(setup.spec, setup.dtype, setup.attention, device.caps())
    reason = reason or semantic_reason(setup.spec, setup.attention)
    if reason:
        raise ExplainError(reason)


def _dealt(setup: Setup, lengths: Sequence[int], devices: int) -> list[list[int]]:
    """Each device's row lengths: longest first dealt round-robin (the Kaggle recipe), else file order."""
    lengths = [min(n, setup.max_length) for n in lengths]
    ordered = setup.padding in ("sorted", "token_budget", "packed")
    key = (lambda n: n) if ordered else None  # otherwise dealt in file order
    return [shard_rows(lengths, d, devices, key) for d in range(devices)]


def shapes_for(setup: Setup, lengths: Sequence[int], devices: int = 1) -> list[list[tuple[int, int]]]:
    """Batch shapes per device: rows dealt to the devices, then batched."""
    parts = _dealt(setup, lengths, devices)
    return [padded_shapes(part, setup.batch_size, setup.padding, setup.max_length) for part in parts]


def packs_for(setup: Setup, lengths: Sequence[int], devices: int = 1) -> list[list[tuple[int, ...]] | None]:
    """Per device, each packed sequence's row lengths in the order of `shapes_for` (None: not packed)."""
    if setup.padding != "packed":
        return [None] * devices
    parts = _dealt(setup, lengths, devices)
    return [pack_lengths(part, setup.batch_size, setup.max_length) for part in parts]


def predict_setup(setup: Setup, device: DeviceSpec, lengths: Sequence[int]) -> Prediction:
    check_setup(setup, device)
    return predict(setup.config(), device, shapes_for(setup, lengths)[0], packs_for(setup, lengths)[0])


@dataclass(frozen=True)
class Factor:
    step: str
    change: str
    factor: float


def decompose(
    a: Setup, b: Setup, device: DeviceSpec, lengths: Sequence[int]
) -> tuple[Prediction, Prediction, list[Factor]]:
    """Predictions for A and B and each step's share of A/B, independent of step order.

    Properties interact (a wider model makes eager's extra score passes cost more), so
    walking B to A one step at a time credits a step differently in each order. The share
    of a step here is its Shapley value over the steps, taken on log time: the mean of its
    factor over every order. The factors multiply to A/B exactly, and swapping A and B
    inverts each one.
    """
    import itertools
    import math

    check_setup(a, device)
    check_setup(b, device)
    if (a.padding, a.batch_size, a.max_length) != (b.padding, b.batch_size, b.max_length):
        raise ExplainError("explain compares two models on one workload: give both the same padding, batch and length")
    shapes, packs = shapes_for(a, lengths)[0], packs_for(a, lengths)[0]
    cfg_a, cfg_b = a.config(), b.config()
    steps = []
    for step, fields in STEPS:
        changed = {f: getattr(cfg_a, f) for f in fields if getattr(cfg_a, f) != getattr(cfg_b, f)}
        if changed:
            before = ", ".join(f"{f} {getattr(cfg_b, f)}" for f in changed)
            after = ", ".join(f"{f} {v}" for f, v in changed.items())
            steps.append((step, f"{before} -> {after}", changed))
    cache: dict[frozenset[int], float] = {}

    def log_time(applied: frozenset[int]) -> float:
        if applied not in cache:
            cfg = cfg_b
            for i in sorted(applied):
                cfg = replace(cfg, **steps[i][2])
            cache[applied] = math.log(predict(cfg, device, shapes, packs).total)
        return cache[applied]

    k = len(steps)
    factors = []
    for i, (step, change, _) in enumerate(steps):
        others = [j for j in range(k) if j != i]
        share = 0.0
        for size in range(k):
            weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            for subset in itertools.combinations(others, size):
                base = frozenset(subset)
                share += weight * (log_time(base | {i}) - log_time(base))
        factors.append(Factor(step, change, math.exp(share)))
    return predict(cfg_a, device, shapes, packs), predict(cfg_b, device, shapes, packs), factors


def peak_memory(setup: Setup, lengths: Sequence[int]) -> float:
    """Predicted peak bytes of `setup` at its largest batch."""
    shapes = shapes_for(setup, lengths)[0]
    return max((memory_bytes(setup.config(), b, s) for b, s in shapes), default=0.0)


def memory_problem(setup: Setup, device: DeviceSpec, lengths: Sequence[int]) -> str | None:
    """Why `setup` does not fit the device's memory at its largest batch, or None."""
    if device.memory_bytes <= 0:
        return None  # a device of unknown memory: nothing to check against
    peak = peak_memory(setup, lengths)
    if peak <= 0.92 * device.memory_bytes:
        return None
    return (
        f"{setup.name} {setup.dtype} needs ~{peak / 2**30:.1f} GiB at its largest batch on {device.name}, which has "
        f"{device.memory_bytes / 2**30:.0f} GiB: it does not fit, so there is no time to compare"
    )


# What the competition's teams ran on 16 GB T4s: 4-bit bitsandbytes weights, fp16 compute.
RECIPE_DTYPE = "nf4"


def fit_default_dtype(
    sides: Sequence[tuple[Setup, bool]], device: DeviceSpec, lengths: Sequence[int]
) -> tuple[list[Setup], str | None]:
    """Sides whose dtype was the default and does not fit the card get the competition recipe.

    `sides`: each setup and whether its dtype was defaulted (not typed). Returns the setups to
    explain and the line that says what was changed and why (None: nothing was)."""
    out, problems = [], []
    for setup, defaulted in sides:
        problem = memory_problem(setup, device, lengths) if defaulted and setup.dtype != RECIPE_DTYPE else None
        if problem:
            problems.append(problem.split(": it does not fit")[0])
            setup = replace(setup, dtype=RECIPE_DTYPE)
        out.append(setup)
    if not problems:
        return out, None
    note = (
        f"the default dtype does not fit ({'; '.join(problems)}), so this answers with the competition recipe: "
        f"{RECIPE_DTYPE} weights (4-bit bitsandbytes), fp16 compute - pass --dtype to choose"
    )
    return out, note


def what_ifs(a: Setup, device: DeviceSpec, lengths: Sequence[int]) -> list[tuple[str, float | None, str]]:
    """A's predicted time under one change each, as a ratio to A as given (None: cannot run)."""
    base = predict_setup(a, device, lengths).total
    rows: list[tuple[str, float | None, str]] = []
    options = [("padding", p) for p in PADDINGS]
    options += [("dtype", d) for d in ("fp16", "bf16", "nf4", "int8", "fp32")]
    options += [("attention", t) for t in ("eager", "sdpa", "flash_attention_2")]
    for field, value in options:
        if getattr(a, field) == value:
            continue
        alt = replace(a, **{field: value})
        try:
            ratio: float | None = predict_setup(alt, device, lengths).total / base
            note = device.emulated.get(value, "")
            if value == "int8":
                note = INT8_NOTE
        except ExplainError as exc:
            ratio, note = None, str(exc)
        else:
            problem = memory_problem(alt, device, lengths)
            if problem:
                note = f"DOES NOT FIT: {problem.split(': it does not fit')[0]}" + (f"; {note}" if note else "")
        rows.append((f"{field} {value}", ratio, note))
    return rows


def render_explain(
    a: Setup,
    b: Setup,
    device: DeviceSpec,
    device_source: str,
    lengths: Sequence[int],
    lengths_source: str,
    first_line: str | None = None,
) -> str:
    """The explanation; `first_line` (what was chosen for the user, e.g. the recipe that fits) leads it."""
    from rich.console import Console
    from rich.table import Table

    for side in (a, b):
        problem = memory_problem(side, device, lengths)
        if problem:
            raise ExplainError(problem)
    pred_a, pred_b, factors = decompose(a, b, device, lengths)
    per_k = 1000 / len(lengths)
    notes = [f"{s.name} {s.dtype}: {device.emulated[s.dtype]}" for s in (a, b) if s.dtype in device.emulated]
    notes += [f"{s.name} int8: {INT8_NOTE}" for s in (a, b) if s.dtype == "int8"]
    console = Console(width=console_width(140), record=True)
    with console.capture() as cap:
        if first_line:
            console.print(f"[bold]{first_line}[/bold]")
        console.print(
            f"[bold]{a.label()}[/bold] vs [bold]{b.label()}[/bold] on {device.name}: "
            f"max_length {a.max_length}, batch {a.batch_size}; rows from {lengths_source}; {device_source}"
        )
        t = Table(title="predicted seconds per 1,000 rows, by component", header_style="bold")
        for h in ("component", a.name, b.name, "what it is"):
            t.add_column(h, overflow="fold")
        for c in COMPONENTS:
            t.add_row(c, f"{pred_a.seconds[c] * per_k:,.1f}", f"{pred_b.seconds[c] * per_k:,.1f}", COMPONENT_NOTES[c])
        t.add_row("[bold]total[/bold]", f"{pred_a.total * per_k:,.1f}", f"{pred_b.total * per_k:,.1f}", "")
        console.print(t)
        for note in dict.fromkeys(notes):
            console.print(f"note: {note}")
        f = Table(
            title=f"why {a.name} / {b.name} = {pred_a.total / pred_b.total:.2f}x "
            "(each step's share over every order of the steps - Shapley values; the factors multiply to the total)"
        )
        for h in ("step", "change", "factor"):
            f.add_column(h, overflow="fold")
        for factor in factors:
            f.add_row(factor.step, factor.change, f"{factor.factor:.3f}x")
        console.print(f)
        w = Table(title=f"what-ifs for {a.label()} (ratio to it)")
        for h in ("change", "predicted ratio", "note"):
            w.add_column(h, overflow="fold")
        for label, ratio, note in what_ifs(a, device, lengths):
            oom = " (OOM)" if note.startswith("DOES NOT FIT") else ""
            w.add_row(label, "cannot run" if ratio is None else f"{ratio:.2f}x{oom}", note)
        console.print(w)
    return cap.get()
