"""What a variant is: the axes, the tier's settings and the bounds one variant is judged by.

The matrix's vocabulary, shared by every layer above it; it imports nothing of perfsuite, so
the data, model, measuring and judging code can all depend on it without a cycle.
"""

from __future__ import annotations

from argparse import ArgumentTypeError
from dataclasses import dataclass, field
from enum import Enum


class Word(str, Enum):
    """A state named by one word: a str, so report.json, tables and messages read its value."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


DTYPES = ("fp32", "bf16", "fp16", "nf4", "int8")
ATTENTIONS = ("eager", "sdpa", "flex_attention", "flash_attention_2")
PADDINGS = ("static", "dynamic", "sorted", "token_budget")
QUANTIZED = ("nf4", "int8")


def compute_dtype(dtype: str, quantized_compute: str) -> str:
    """The dtype activations and matmuls run in: the quantised dtypes compute in `quantized_compute`
    (the tier's nf4_compute_dtype); the others in themselves. One rule for loading and the cost model."""
    return quantized_compute if dtype in QUANTIZED else dtype


WORKLOAD_FIELDS = ("rows", "batch_size", "max_length")  # tier settings a run may override


def positive_int(text: str) -> int:
    """argparse type: a whole number above zero (a usage error, exit 2, otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise ArgumentTypeError(f"{text!r} must be at least 1")
    return value


@dataclass(frozen=True)
class Bounds:
    """Tolerances applied to one variant (defaults, then matching overrides)."""

    # Latency (judge/latency.py): the slowdown against this machine's record that matters; the
    # run fails a variant whose interval of run / record (the run's phase divided out) lies wholly
    # above 1 + latency_tolerance
    latency_tolerance: float = 0.25
    log_loss_abs: float = 0.002
    accuracy_abs: float = 0.02
    work_rel: float = 0.0
    # Peak device memory may exceed this machine's record by this share (GPU max_memory_allocated:
    # the same code allocates the same tensors, so a change is a code or library change)
    memory_ratio: float = 0.10
    # Against the in-run reference (fp32, eager, one row per batch, no padding), MLPerf-style:
    ref_log_loss_increase: float = 0.005  # the variant's log-loss may exceed the reference's by this
    ref_argmax_agreement: float = 0.9  # share of rows whose predicted class matches the reference's
    ref_max_abs_dp: float = 0.05  # largest |p_variant - p_reference| over rows and classes
    # The language model's next-token log-loss on real text (real-weights tiers, lm_tokens > 0):
    lm_log_loss_abs: float = 0.01  # against the stored record
    ref_lm_log_loss_increase: float = 0.01  # over the in-run reference's

    def portable(self) -> dict[str, float]:
        """The tolerances a portable record keeps: those that judge what any machine reproduces
        (work, quality, the in-run reference). Latency and memory belong to a machine's record,
        so changing a latency knob rewrites no shared file."""
        return {name: getattr(self, name) for name in PORTABLE_BOUNDS}


PORTABLE_BOUNDS = (
    "work_rel",
    "log_loss_abs",
    "accuracy_abs",
    "lm_log_loss_abs",
    "ref_log_loss_increase",
    "ref_argmax_agreement",
    "ref_max_abs_dp",
    "ref_lm_log_loss_increase",
)


@dataclass(frozen=True)
class TierSettings:
    """How a tier measures: workload size, timing rounds, device."""

    name: str
    device: str
    markers: tuple[str, ...]
    rows: int
    batch_size: int
    max_length: int
    padding_side: str = "right"
    # which end of a too-long row is cut (data/formatting.py): fair (each part water-filled),
    # left (keep the end, as 3rd place did), right (keep the start: response B is cut first)
    truncation: str = "fair"
    # token_budget padding: the most tokens (rows x the batch's longest row) in one batch;
    # default batch_size x max_length, the same peak as a full static batch
    max_batch_tokens: int | None = None
    warmup_rounds: int = 1
    min_rounds: int = 5
    max_rounds: int = 15
    round_budget_s: float = 3.0
    threads: int | None = None
    # time the passes with the whole cores other processes leave free (at least 1, at most
    # `threads`), read just before them, so OpenMP threads never spin for a core they do not
    # get; a timing with fewer threads than its record is left undecided
    threads_from_free_cores: bool = False
    nf4_compute_dtype: str = "fp32"
    tta: bool = False  # also run every row with A and B swapped, and symmetrise
    reference_dtype: str = "fp32"  # of the in-run quality reference (a T4 cannot hold a 9B model in fp32)
    relative_rounds: int = 9  # interleaved A/B pass pairs per relative bound
    relative_confidence: float = 0.95  # of the bootstrap interval on the median ratio
    # dtypes whose log-loss/accuracy hold across CPU kernels (stored in the portable record,
    # judged on every machine); the others' quality is machine-bound (scripts/quality_portability.py)
    portable_quality_dtypes: tuple[str, ...] = ()
    # Latency against this machine's records (judge/latency.py): judged at all (false: measured
    # and shown, as on the real tier), the confidence of each decision (one-sided alpha), and the
    # run's seconds for extra fresh processes that time the variants left undecided by noise
    judge_latency: bool = True
    latency_alpha: float = 0.05
    latency_budget_s: float = 60.0
    # Real-weights models only (models/gguf.py): score the backbone's next-token log-loss on this
    # many tokens of a fixed real text (measure/language.py); 0 = off
    lm_tokens: int = 0

    def portable_quality(self, dtype: str) -> bool:
        return dtype in self.portable_quality_dtypes


@dataclass(frozen=True)
class Variant:
    """One cell of the matrix: model x dtype x attention x padding."""

    model: str
    dtype: str
    attention: str
    padding: str
    tier: str = "cpu"
    bounds: Bounds = field(default_factory=Bounds)

    @property
    def id(self) -> str:
        return f"{self.model}-{self.dtype}-{self.attention}-{self.padding}"

    @staticmethod
    def split_id(variant_id: str) -> tuple[str, str, str, str]:
        """(model, dtype, attention, padding) back from an id; the model name may hold dashes."""
        head, padding = variant_id.rsplit("-", 1)
        head, attention = head.rsplit("-", 1)
        model, dtype = head.rsplit("-", 1)
        return model, dtype, attention, padding
