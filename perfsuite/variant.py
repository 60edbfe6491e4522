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


DTYPES = ("fp32", "bf16", "fp16", "nf4", "int8", "gptq8")
ATTENTIONS = ("eager", "sdpa", "flex_attention", "flash_attention_2")
PADDINGS = ("static", "dynamic", "sorted", "token_budget", "packed")
QUANTIZED = ("nf4", "int8", "gptq8")
BITSANDBYTES = ("nf4", "int8")  # quantised at load by bitsandbytes; gptq8 is a checkpoint's own GPTQ weights


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
    """Tolerances applied to one variant (defaults, then matching overrides).

    Each field's docstring is its line in the generated matrix reference (docs)."""

    latency_tolerance: float = 0.25
    """The slowdown against this machine's record that matters (run / record, the run's phase divided out)."""
    log_loss_abs: float = 0.002
    """The log-loss may differ from the stored record by this much (nats per row)."""
    accuracy_abs: float = 0.02
    """The accuracy may differ from the stored record by this share of rows."""
    work_rel: float = 0.0
    """Processed tokens and FLOPs may differ from the record by this share (0: exact)."""
    memory_ratio: float = 0.10
    """Peak memory may exceed this machine's record by this share (the same code allocates the same tensors)."""
    ref_log_loss_increase: float = 0.005
    """The log-loss may exceed the in-run reference's (fp32, eager, one row per batch) by this much."""
    ref_argmax_agreement: float = 0.9
    """At least this share of rows must predict the in-run reference's class."""
    ref_max_abs_dp: float = 0.05
    """The largest |p_variant - p_reference| over rows and classes."""
    lm_log_loss_abs: float = 0.01
    """Real-weights tiers: the next-token log-loss on real text may differ from the record by this much."""
    ref_lm_log_loss_increase: float = 0.01
    """Real-weights tiers: the next-token log-loss may exceed the in-run reference's by this much."""

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
    """How a tier measures: workload size, timing rounds, device.

    Each field's docstring is its line in the generated matrix reference (docs)."""

    name: str
    """The tier's name: its baselines folder, report folder and pytest id."""
    device: str
    """Where it runs: cpu or cuda."""
    markers: tuple[str, ...]
    """pytest markers its cases carry (`-m cpu`, `-m gpu`)."""
    rows: int
    """The first rows of the data file that are scored."""
    batch_size: int
    """Rows per batch (static, dynamic and sorted padding)."""
    max_length: int
    """Tokens per row at most; longer rows are truncated by `truncation`."""
    padding_side: str = "right"
    """Which side pad tokens go: right (the Kaggle recipe) or left."""
    truncation: str = "fair"
    """Which end of a too-long row is cut: fair (parts water-filled), left (keep the end), right (keep the start)."""
    max_batch_tokens: int | None = None
    """token_budget padding: most tokens (rows x longest row) in a batch; unset: batch_size x max_length."""
    warmup_rounds: int = 1
    """Untimed passes first; the first is also the pass scored for quality."""
    min_rounds: int = 5
    """Timed passes at least."""
    max_rounds: int = 15
    """Timed passes at most."""
    round_budget_s: float = 3.0
    """Stop adding timed passes (past min_rounds) after about this many seconds."""
    threads: int | None = None
    """torch threads while timing; unset: torch's default."""
    threads_from_free_cores: bool = False
    """Time with the whole cores other processes leave free (1 to `threads`): no OpenMP thread waits for a core."""
    nf4_compute_dtype: str = "fp32"
    """The dtype nf4, int8 and gptq8 weights compute in (fp16 on a GPU tier)."""
    tta: bool = False
    """Also run every row with A and B swapped, and average the symmetrised probabilities."""
    reference_dtype: str = "fp32"
    """The dtype of the in-run quality reference (a T4 cannot hold a 9B model in fp32)."""
    relative_rounds: int = 9
    """Interleaved A/B pass pairs per relative bound."""
    relative_confidence: float = 0.95
    """Confidence of the bootstrap interval on a relative bound's median ratio."""
    portable_quality_dtypes: tuple[str, ...] = ()
    """Dtypes whose log-loss and accuracy hold across kernels: kept in the portable record, judged everywhere."""
    judge_latency: bool = True
    """Judge latency against this machine's records (false: measured and shown only)."""
    latency_alpha: float = 0.05
    """One-sided error rate of each latency decision."""
    latency_budget_s: float = 60.0
    """Seconds per run for extra fresh processes that time the variants noise left undecided."""
    lm_tokens: int = 0
    """Real-weights models: the backbone's next-token log-loss on this many tokens of a fixed text (0: off)."""
    emulate: str | None = None
    """GPU tiers: run as this card (t4) - its memory as a cap, its compute capability's rules; times stay the host's."""

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
