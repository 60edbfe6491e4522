"""A run's fixed costs for `budget` - installing, importing, loading each model copy and
quantising it - each term with where its figure came from.

Projected from this machine's measured rates (`measure/fixed.py`) onto a model and a device:
- import: as measured here - the host imports, not the card;
- load, per copy: ``from_pretrained``'s overhead, plus the checkpoint's bytes at the seconds per
  GB measured here, plus - on a card - the bytes the weights cross the bus as, over PCIe 3.0 x16
  (12 GB/s, what a T4 has);
- quantise, per copy (nf4 and int8: bitsandbytes quantises on load, on the device): the fp16
  linear weights' GB at the seconds per GB measured here, times this host's copy bandwidth over
  the device's - quantising is elementwise work over the weights, memory-bound on either.
A checkpoint is read as published: 2 bytes a parameter (bf16/fp16), a GPTQ checkpoint its own
8-bit bytes. Installing is never measured: a recipe's or a flag's figure, else 0, and said so.

Precedence, per term: a flag, then the recipe's source, then the measurement, then nothing. A
load figure that is given (a flag or a recipe's log) includes quantising: that term is then 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perfsuite.cost.devices import DeviceSpec
from perfsuite.cost.model import ACT_BYTES, WEIGHT_BYTES, CostConfig
from perfsuite.measure.fixed import FixedCostRates
from perfsuite.variant import BITSANDBYTES, Word

BUS_BYTES_PER_S = 12e9  # PCIe 3.0 x16 in practice: host to a T4 (budget's hand-off uses the same bus)
CHECKPOINT_BYTES = 2.0  # per parameter: a published bf16/fp16 checkpoint
NOT_GIVEN = "not given"
NONE_GIVEN = "none given (--install-s, --import-s, --load-s)"


class Origin(Word):
    """Where a term's figure came from, in order of precedence."""

    FLAG = "flag"
    RECIPE = "recipe"
    MEASURED = "measured"
    NONE = "none"


class Term(Word):
    INSTALL = "install"
    IMPORT = "import"
    LOAD = "load"
    QUANTISE = "quantise"


@dataclass(frozen=True)
class FixedCosts:
    """Seconds before the first row: installing wheels, importing, and - per model copy -
    loading it and quantising it where bitsandbytes quantises on load."""

    install_s: float = 0.0
    import_s: float = 0.0
    load_s: float = 0.0  # per copy
    quantise_s: float = 0.0  # per copy
    source: str = NONE_GIVEN
    sources: dict[str, str] = field(default_factory=dict)  # term -> where its figure came from
    quantise_in_load: bool = False  # a given load figure (a log, a flag) that includes quantising

    def total(self, copies: int) -> float:
        return self.install_s + self.import_s + (self.load_s + self.quantise_s) * copies

    def where(self, term: Term) -> str:
        return self.sources.get(term.value, self.source)


@dataclass(frozen=True)
class Bytes:
    """What one copy of a model moves before it scores."""

    checkpoint: float  # read from disk
    bus: float  # host to device, as the weights cross (bitsandbytes quantises after the copy)
    quantised: float  # fp16 bytes of the linear weights bitsandbytes quantises (0: none)


def model_bytes(cfg: CostConfig) -> Bytes:
    linear = cfg.layers * cfg.linear_params * cfg.stored_ratio
    embeddings = cfg.vocab * cfg.hidden
    if cfg.dtype == "gptq8":  # the checkpoint holds the quantised weights: read and moved as they are
        stored = linear * WEIGHT_BYTES["gptq8"] + embeddings * CHECKPOINT_BYTES
        return Bytes(stored, stored, 0.0)
    checkpoint = (linear + embeddings) * CHECKPOINT_BYTES
    if cfg.dtype in BITSANDBYTES:
        return Bytes(checkpoint, checkpoint, linear * CHECKPOINT_BYTES)
    return Bytes(checkpoint, (linear + embeddings) * ACT_BYTES[cfg.compute_dtype], 0.0)


def projected(rates: FixedCostRates, cfg: CostConfig, device: DeviceSpec) -> FixedCosts:
    """This machine's measured `rates` projected onto `cfg` on `device`, each term said."""
    gb = 1e9
    moved = model_bytes(cfg)
    card = device.compute_capability is not None
    here = f"measured on {rates.machine_key} ({rates.recorded_at[:10]})"
    read_s = moved.checkpoint / gb * rates.read_s_per_gb
    bus_s = moved.bus / BUS_BYTES_PER_S if card else 0.0
    load_words = (
        f"{here}: {rates.load_overhead_s:.1f} s + {moved.checkpoint / gb:.1f} GB read at "
        f"{rates.read_s_per_gb:.2f} s/GB" + (f" + {moved.bus / gb:.1f} GB over PCIe 3.0 x16 (12 GB/s)" if card else "")
    )
    sources = {
        Term.IMPORT.value: f"{here}: torch + transformers, a fresh process",
        Term.LOAD.value: load_words,
    }
    quantise_s = 0.0
    if cfg.dtype in BITSANDBYTES:
        per_gb = rates.quantise_s_per_gb.get(cfg.dtype)
        if per_gb is None:
            why = rates.skipped.get(cfg.dtype, "not in the record")
            sources[Term.QUANTISE.value] = f"not measured on {rates.machine_key} ({why}): 0 counted"
        else:
            scale = rates.host_bandwidth / device.bandwidth if card else 1.0
            quantise_s = moved.quantised / gb * per_gb * scale
            ratio = (
                f" x {scale:.3f} (copy bandwidth here / the card's: "
                f"{rates.host_bandwidth / gb:.0f} / {device.bandwidth / gb:.0f} GB/s)"
            )
            per_copy = f"{here}: {moved.quantised / gb:.1f} GB at {per_gb:.2f} s/GB"
            sources[Term.QUANTISE.value] = per_copy + (ratio if card else "")
    return FixedCosts(
        0.0, rates.import_s, rates.load_overhead_s + read_s + bus_s, quantise_s, f"{here}, projected", sources
    )


def resolve(
    flags: dict[Term, float | None],
    recipe: dict[Term, float | None],
    recipe_source: str,
    measured: FixedCosts | None,
    measured_missing: str = "",
) -> FixedCosts:
    """Each term from a flag, else the recipe, else the measurement, else 0 (the precedence above).
    `measured_missing`: why there is no measurement, said beside each term it would have given."""
    values: dict[Term, float] = {}
    origins: dict[Term, Origin] = {}
    sources: dict[str, str] = {}
    for term in (Term.INSTALL, Term.IMPORT, Term.LOAD):
        flag, preset = flags.get(term), recipe.get(term)
        if flag is not None:
            values[term], origins[term], sources[term.value] = flag, Origin.FLAG, f"--{term.value}-s"
        elif preset is not None:
            values[term], origins[term], sources[term.value] = preset, Origin.RECIPE, recipe_source
        elif measured is not None and term is not Term.INSTALL:
            values[term], origins[term] = getattr(measured, f"{term.value}_s"), Origin.MEASURED
            sources[term.value] = measured.where(term)
        else:
            values[term], origins[term] = 0.0, Origin.NONE
            missing = f"; {measured_missing}" if measured_missing and term is not Term.INSTALL else ""
            sources[term.value] = f"{NOT_GIVEN} (--{term.value}-s){missing}"
    quantise = 0.0
    if origins[Term.LOAD] is Origin.MEASURED and measured is not None:
        quantise = measured.quantise_s
        if Term.QUANTISE.value in measured.sources:
            sources[Term.QUANTISE.value] = measured.where(Term.QUANTISE)
    in_load = origins[Term.LOAD] in (Origin.FLAG, Origin.RECIPE)
    if in_load:
        sources[Term.QUANTISE.value] = f"in the load figure ({sources[Term.LOAD.value]})"
    short = {Origin.RECIPE: recipe_source, Origin.MEASURED: measured.source if measured else ""}
    terms = (Term.INSTALL, Term.IMPORT, Term.LOAD)
    given = [short.get(origins[t], sources[t.value]) for t in terms if origins[t] is not Origin.NONE]
    caption = "; ".join(dict.fromkeys(given)) if given else NONE_GIVEN
    load = values[Term.LOAD]
    return FixedCosts(values[Term.INSTALL], values[Term.IMPORT], load, quantise, caption, sources, in_load)


def render_rates(rates: FixedCostRates, projections: list[tuple[str, FixedCosts]]) -> str:
    """The measured rates, the medians they rest on, and what they project for `projections`."""
    lines = [
        f"fixed costs on {rates.machine_key} ({rates.recorded_at}; {rates.repeats} repeats, "
        f"{'cold' if rates.cold_reads else 'warm (the OS cannot evict a file)'} page cache per load)",
        f"  import torch + transformers   {rates.import_s:6.2f} s  (median of {len(rates.import_samples)} processes, "
        f"{min(rates.import_samples, default=0):.2f}-{max(rates.import_samples, default=0):.2f})",
        f"  from_pretrained overhead      {rates.load_overhead_s:6.2f} s",
        f"  read + build + copy           {rates.read_s_per_gb:6.2f} s per GB of fp16 checkpoint",
    ]
    for mode, per_gb in sorted(rates.quantise_s_per_gb.items()):
        lines.append(f"  quantise {mode:5s} on load       {per_gb:6.2f} s per GB of fp16 linear weights")
    for mode, why in sorted(rates.skipped.items()):
        lines.append(f"  quantise {mode:5s} on load       not measured: {why}")
    lines.append(f"  host copy bandwidth           {rates.host_bandwidth / 1e9:6.1f} GB/s")
    sizes = ", ".join(f"{layers} layers {n / 1e9:.2f} GB" for layers, n in sorted(rates.probe_bytes.items()))
    lines.append(f"load seconds, median of the repeats (probes: {sizes}):")
    for name, values in sorted(rates.samples.items()):
        ordered = sorted(values)
        lines.append(f"  {name:10s} {ordered[len(ordered) // 2]:6.2f}  ({', '.join(f'{v:.2f}' for v in values)})")
    if projections:
        lines.append("projected per copy (install is never measured):")
        for label, f in projections:
            lines.append(
                f"  {label:28s} import {f.import_s:5.1f} s, load {f.load_s:6.1f} s, quantise {f.quantise_s:5.1f} s"
            )
    return "\n".join(lines)
