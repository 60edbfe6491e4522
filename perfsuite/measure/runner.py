"""Timed inference of one variant: warm-up, sampled passes, outputs, memory.

One *pass* runs every batch of the workload once; latency samples are whole-pass wall
times (CUDA synchronised), so padding waste and per-batch overheads are all inside them.
The warm-up pass also yields the probabilities scored for quality, so quality costs no
extra forward.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from perfsuite.data.formatting import EncodedRow
from perfsuite.device.torch_ops import PeakMemory, empty_cache, synchronize
from perfsuite.measure.batching import Batch, WorkCounts, batch_rows, count_work
from perfsuite.measure.load import OtherLoad, free_threads
from perfsuite.models.factory import attach_adapter, load_model, shape_only_model, weight_bytes
from perfsuite.models.flops import forward_flops
from perfsuite.models.specs import ModelSpec, get_spec
from perfsuite.stats.metrics import symmetrize_tta
from perfsuite.variant import TierSettings, Variant


class Sampler(Protocol):
    """Times `fn` for `rounds` rounds after `warmup_rounds`; returns seconds per round.

    `between`, if given, runs untimed before every timed round (the interference probe).
    """

    def __call__(
        self, fn: Callable[[], object], rounds: int, warmup_rounds: int, between: Callable[[], object] | None = None
    ) -> list[float]: ...


@contextlib.contextmanager
def timing() -> Iterator[None]:
    """The state every timed pass runs in - recording (`rebaseline`) and checking (`tox -e perf`,
    `perfsuite run`) alike, so a record and its check are timed the same way: the garbage
    collector off (a collection landing inside one pass is the allocator's noise, not the
    code's; pyperf and pytest-benchmark's --benchmark-disable-gc do the same), restored after.
    `perfsuite compare`'s worker, which runs on other revisions' code, does the same in
    compare/worker.py (a test pins that the two agree)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def perf_counter_sampler(
    fn: Callable[[], object], rounds: int, warmup_rounds: int, between: Callable[[], object] | None = None
) -> list[float]:
    """The library's own sampler (the pytest plugin uses pytest-benchmark's instead)."""
    for _ in range(warmup_rounds):
        fn()
    samples = []
    with timing():
        for _ in range(rounds):
            if between is not None:
                between()
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    return samples


class InterferenceProbe:
    """A fixed torch-only workload timed between a variant's passes.

    Its time does not depend on the code under test, only on how much of the device this
    process gets: when another process takes the cores (or the GPU), the probe slows down
    with the passes, and the latency bound can say "machine busy" instead of blaming the
    code. It uses the same threads and device as the passes, so it feels the same contention.
    """

    def __init__(self, device: str, size: int = 256, repeats: int = 8) -> None:
        generator = torch.Generator().manual_seed(0)
        self.device = device
        self.a = torch.randn(size, size, generator=generator).to(device)
        self.out = torch.empty_like(self.a)
        self.repeats = repeats
        self.samples: list[float] = []

    def __call__(self) -> None:
        start = time.perf_counter()
        for _ in range(self.repeats):
            torch.mm(self.a, self.a, out=self.out)
        synchronize(self.device)
        self.samples.append(time.perf_counter() - start)


@dataclass
class RunResult:
    """Everything one variant's run measured."""

    variant: Variant
    work: WorkCounts
    latency_samples: list[float]
    probs: np.ndarray  # rows x 3, in workload order
    labels: list[int | None]
    nonfinite_rows: int
    weight_bytes: int
    peak_memory_bytes: int | None
    memory_kind: str
    load_seconds: float
    warmup_seconds: float = 0.0
    scored: bool = True  # False for shape-only weights: probabilities mean nothing
    flops: int = 0  # analytic, per pass (models.flops.forward_flops)
    adapter: Path | None = None  # the LoRA folder applied, if any
    probe_samples: list[float] | None = None  # the interference probe, timed between the passes
    other_cpu_share: float | None = None  # of the machine's CPU time, taken by others while timing
    lm_log_loss: float | None = None  # real weights: next-token log-loss on the fixed text (measure/language.py)
    threads: int | None = None  # torch's intra-op threads the passes were timed with


def packed_logits(model, batch: Batch, device: str) -> torch.Tensor:
    """A packed batch's logits, one row per packed row: the backbone over the whole sequence
    (positions restarting per row and no attention mask, so transformers confines attention to
    each row), the score head where the sequence-classification head reads each row in a padded
    batch (`Batch.score_at`). No cache: with one, transformers does not look for packed rows."""
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model  # a LoRA-wrapped model
    hidden = hf.base_model(
        input_ids=batch.input_ids.to(device), position_ids=batch.position_ids.to(device), use_cache=False
    ).last_hidden_state
    return hf.score(hidden[0, list(batch.score_at)])


def _forward_pass(model, batches: Sequence[Batch], device: str) -> list[torch.Tensor]:
    outputs = []
    with torch.inference_mode():
        for b in batches:
            try:
                if b.packed:
                    outputs.append(packed_logits(model, b, device))
                    continue
                out = model(input_ids=b.input_ids.to(device), attention_mask=b.attention_mask.to(device))
            except torch.OutOfMemoryError as exc:
                shape = "x".join(map(str, b.input_ids.shape))
                raise MemoryError(f"out of memory at batch shape {shape} (batch x seq_len)") from exc
            outputs.append(out.logits)
    synchronize(device)
    return outputs


def _probs_in_row_order(batches: Sequence[Batch], logits: Sequence[torch.Tensor], n_rows: int):
    probs = np.full((n_rows, 3), np.nan, dtype=np.float64)
    nonfinite = 0
    for b, lg in zip(batches, logits, strict=True):
        lg = lg.detach().float().cpu()
        finite = torch.isfinite(lg).all(dim=1)
        nonfinite += int((~finite).sum())
        p = torch.softmax(lg.double(), dim=1).numpy()
        probs[list(b.row_index)] = p
    return probs, nonfinite


def _scored(prepared: PreparedVariant, logits: Sequence[torch.Tensor], n_rows: int) -> tuple[np.ndarray, int]:
    """Probabilities in row order (TTA: symmetrised with the swapped rows) and non-finite rows."""
    n = len(prepared.batches)
    probs, nonfinite = _probs_in_row_order(prepared.batches, logits[:n], n_rows)
    if prepared.tta_batches:
        swapped, swapped_bad = _probs_in_row_order(prepared.tta_batches, logits[n:], n_rows)
        probs, nonfinite = symmetrize_tta(probs, swapped), max(nonfinite, swapped_bad)
    return probs, nonfinite


def score_once(prepared: PreparedVariant, n_rows: int) -> tuple[np.ndarray, int]:
    """One untimed pass: probabilities in row order and the count of non-finite rows."""
    return _scored(prepared, prepared.one_pass(), n_rows)


def choose_rounds(probe_s: float, settings: TierSettings) -> int:
    """As many rounds as fit the budget, within [min_rounds, max_rounds]."""
    if probe_s <= 0 or math.isnan(probe_s):
        return settings.max_rounds
    return int(min(settings.max_rounds, max(settings.min_rounds, settings.round_budget_s // probe_s)))


@contextlib.contextmanager
def preserved_process_state() -> Iterator[None]:
    """What a variant changes in the process - torch's thread count, dynamo's recompile limits,
    torch's global RNG - put back afterwards, so the next variant starts from the same state."""
    import torch._dynamo as dynamo

    threads = torch.get_num_threads()
    limits = (dynamo.config.recompile_limit, dynamo.config.accumulated_recompile_limit)
    rng = torch.random.get_rng_state()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        dynamo.config.recompile_limit, dynamo.config.accumulated_recompile_limit = limits
        torch.random.set_rng_state(rng)


def _prepare_torch(settings: TierSettings, attention: str) -> None:
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if attention == "flex_attention":
        # Each dtype/model/shape compiles flex's kernel; the default limit of 8 recompiles
        # would silently fall back to the slow unfused path part-way through the matrix.
        import torch._dynamo as dynamo

        dynamo.config.recompile_limit = 512
        dynamo.config.accumulated_recompile_limit = 4096


@dataclass
class RunnerHooks:
    """The one seam through which `perfsuite selftest` injects faults; empty in production.

    The runner consults it where a regression would enter: which padding strategy a variant's
    batches are built with, and what happens to a variant once it is prepared (a busy-wait
    hook on its forward). Only selftest child processes and compare-selftest workers fill it.
    """

    padding: Callable[[str], str] | None = None
    after_prepare: list[Callable[[PreparedVariant], None]] = field(default_factory=list)


@dataclass
class PreparedVariant:
    """A variant's model on its device with its batches built: ready to time passes."""

    variant: Variant
    model: torch.nn.Module
    device: str
    batches: list[Batch]
    tta_batches: list[Batch]
    load_seconds: float
    scored: bool
    adapter: Path | None
    spec: ModelSpec | None = None
    checkpoint: Path | None = None

    def lm_log_loss(self, ids: Sequence[int] | None) -> float | None:
        """The backbone's next-token log-loss on `ids` (None without text or with an adapter)."""
        if not ids or self.adapter is not None or not self.scored:
            return None
        from perfsuite.measure.language import lm_log_loss

        return lm_log_loss(self.model, ids, self.device, self.checkpoint)

    @property
    def all_batches(self) -> list[Batch]:
        return [*self.batches, *self.tta_batches]

    def one_pass(self) -> list[torch.Tensor]:
        """Every batch once (TTA's swapped rows included): the unit a latency sample times."""
        return _forward_pass(self.model, self.all_batches, self.device)


HOOKS = RunnerHooks()


def prepare_variant(
    variant: Variant,
    settings: TierSettings,
    rows: Sequence[EncodedRow],
    pad_id: int,
    checkpoint: Path | None,
    swapped_rows: Sequence[EncodedRow] | None = None,
    adapter: Path | None = None,
    spec: ModelSpec | None = None,
) -> PreparedVariant:
    """Load the model (shape-only random weights on the device without a checkpoint) and batch the rows.

    `spec`: the model as the matrix declares it (default: the built-in model of that name)."""
    spec = spec or get_spec(variant.model)
    device = "cuda" if settings.device == "cuda" else "cpu"
    _prepare_torch(settings, variant.attention)
    empty_cache(device)  # the previous variant's model is garbage by now (the session collected it)
    t0 = time.perf_counter()
    if checkpoint is None:
        model = shape_only_model(spec, variant.dtype, variant.attention, pad_id, device, settings.nf4_compute_dtype)
    else:
        model = load_model(spec, checkpoint, variant.dtype, variant.attention, device, settings.nf4_compute_dtype)
    if adapter is not None:
        model = attach_adapter(model, adapter)
    load_s = time.perf_counter() - t0

    padding = HOOKS.padding(variant.padding) if HOOKS.padding else variant.padding

    def make_batches(encoded: Sequence[EncodedRow]) -> list[Batch]:
        return batch_rows(
            encoded,
            settings.batch_size,
            padding,
            settings.max_length,
            pad_id,
            settings.padding_side,
            settings.max_batch_tokens,
        )

    prepared = PreparedVariant(
        variant,
        model,
        device,
        make_batches(rows),
        make_batches(swapped_rows) if swapped_rows else [],
        load_s,
        scored=checkpoint is not None,
        adapter=adapter,
        spec=spec,
        checkpoint=checkpoint,
    )
    for hook in HOOKS.after_prepare:
        hook(prepared)
    return prepared


def run_variant(
    variant: Variant,
    settings: TierSettings,
    rows: Sequence[EncodedRow],
    pad_id: int,
    checkpoint: Path | None,
    sampler: Sampler = perf_counter_sampler,
    swapped_rows: Sequence[EncodedRow] | None = None,
    adapter: Path | None = None,
    spec: ModelSpec | None = None,
    lm_ids: Sequence[int] | None = None,
) -> RunResult:
    """Load the variant's model, warm up, sample pass times, and collect outputs.

    Without a checkpoint a full-size
    model gets shape-only random weights on the device: timings and memory are real,
    probabilities are not scored. `swapped_rows` (A and B exchanged) turns on test-time
    augmentation: both are run in every pass and the predictions symmetrised. `adapter`
    is a local LoRA folder applied unmerged on top of the weights. `lm_ids` (real weights): the
    text scored for the backbone's next-token log-loss, untimed, after the passes.
    """
    prepared = prepare_variant(variant, settings, rows, pad_id, checkpoint, swapped_rows, adapter, spec)
    device, all_batches = prepared.device, prepared.all_batches
    work = count_work(all_batches)
    one_pass = prepared.one_pass

    t_warm = time.perf_counter()
    with PeakMemory(device) as memory:
        logits = None
        for _ in range(max(1, settings.warmup_rounds)):
            logits = one_pass()
    peak, memory_kind = memory.peak, memory.kind
    warm_s = time.perf_counter() - t_warm
    probs, nonfinite = _scored(prepared, logits, len(rows))
    # The warm-up time (compile included) over-estimates a pass: slow variants get the
    # minimum rounds, which is what they would get anyway.
    probe = InterferenceProbe(device)
    probe()  # its own warm-up
    probe.samples.clear()
    rounds = choose_rounds(warm_s / max(1, settings.warmup_rounds), settings)
    threads = free_threads(settings)
    with OtherLoad() as load:
        samples = sampler(one_pass, rounds=rounds, warmup_rounds=0, between=probe)
    wbytes = weight_bytes(prepared.model)
    lm_loss = prepared.lm_log_loss(lm_ids)
    return RunResult(
        variant=variant,
        work=work,
        latency_samples=list(samples),
        probs=probs,
        labels=[r.label for r in rows],
        nonfinite_rows=nonfinite,
        weight_bytes=wbytes,
        peak_memory_bytes=int(peak),
        memory_kind=memory_kind,
        load_seconds=prepared.load_seconds,
        warmup_seconds=warm_s,
        scored=prepared.scored,
        flops=forward_flops(prepared.spec or get_spec(variant.model), [tuple(b.input_ids.shape) for b in all_batches]),
        adapter=adapter,
        probe_samples=list(probe.samples),
        other_cpu_share=load.share,
        lm_log_loss=lm_loss,
        threads=threads,
    )


def time_interleaved(
    a: PreparedVariant, b: PreparedVariant, rounds: int, warmup_rounds: int = 1
) -> tuple[list[float], list[float]]:
    """Pass times of `a` and `b` taken in pairs, A B then B A alternately.

    Each round's two passes run back to back, so whatever the machine is doing then slows
    both; alternating the order cancels a first-or-second effect.
    """
    for _ in range(max(1, warmup_rounds)):  # flex_attention compiles here
        a.one_pass()
        b.one_pass()
    times: tuple[list[float], list[float]] = ([], [])
    with timing():
        for i in range(rounds):
            for side in (0, 1) if i % 2 == 0 else (1, 0):
                start = time.perf_counter()
                (a, b)[side].one_pass()
                times[side].append(time.perf_counter() - start)
    return times
