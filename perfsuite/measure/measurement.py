"""What one run of a variant measured, as typed records (the report's, the judge's and the store's input).

``Measurement.from_run`` is the one place a runner result becomes figures; ``to_dict`` is what
report.json holds per variant, and ``from_dict`` reads it back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from perfsuite.stats.metrics import LatencyStats, accuracy, log_loss
from perfsuite.store.records import WORK_COUNTERS

if TYPE_CHECKING:
    from perfsuite.measure.runner import RunResult


@dataclass(frozen=True)
class WorkSummary:
    """Deterministic work of one pass (the counters of WORK_COUNTERS are judged exactly)."""

    rows: int
    batches: int
    real_tokens: int
    processed_tokens: int
    max_seq_len: int
    padding_overhead: float
    flops: int
    weight_bytes: int

    def counters(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in WORK_COUNTERS}


@dataclass(frozen=True)
class LatencySummary:
    """Whole-pass times and the interference probe timed between them."""

    median_s: float
    iqr_s: float
    spread: float
    samples_s: tuple[float, ...]
    probe_samples_s: tuple[float, ...] = ()
    tokens_per_s: float = math.nan
    rows_per_s: float = math.nan
    other_cpu_share: float | None = None  # of the machine's CPU time, taken by other processes while timing

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencySummary:
        lat = dict(data)
        lat["samples_s"] = tuple(lat["samples_s"])
        lat["probe_samples_s"] = tuple(lat.get("probe_samples_s", ()))
        lat.pop("processes_s", None)  # a report.json from before the one latency decision
        return cls(**lat)


@dataclass(frozen=True)
class QualitySummary:
    """Scored quality (None where not scored) and the comparison with the in-run reference."""

    log_loss: float | None
    accuracy: float | None
    nonfinite_rows: int
    reference: dict[str, float] | None = None
    reference_error: str | None = None
    lm_log_loss: float | None = None  # real weights: the backbone's next-token log-loss on the fixed text


@dataclass(frozen=True)
class MemorySummary:
    weight_bytes: int
    peak_bytes: int | None
    kind: str


@dataclass(frozen=True)
class Measurement:
    """One variant's run: settings and environment it ran under, and what it measured."""

    variant: str
    settings: dict[str, Any]
    environment: dict[str, str]
    work: WorkSummary
    latency: LatencySummary
    quality: QualitySummary
    memory: MemorySummary
    load_seconds: float = 0.0
    warmup_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_run(cls, result: RunResult, settings: dict[str, Any], environment: dict[str, str]) -> Measurement:
        lat = LatencyStats(tuple(result.latency_samples))
        labels = [y for y in result.labels if y is not None]
        scored = result.scored and len(labels) == len(result.labels) and result.nonfinite_rows == 0
        w = result.work
        return cls(
            variant=result.variant.id,
            settings=settings,
            # the threads the passes really used: fewer than the tier's where others held cores
            environment={**environment, **({"threads": str(result.threads)} if result.threads else {})},
            work=WorkSummary(
                w.rows,
                w.batches,
                w.real_tokens,
                w.processed_tokens,
                w.max_seq_len,
                round(w.padding_overhead, 4),
                result.flops,
                result.weight_bytes,
            ),
            latency=LatencySummary(
                lat.median,
                lat.iqr,
                lat.spread,
                tuple(result.latency_samples),
                tuple(result.probe_samples or ()),
                w.real_tokens / lat.median if lat.median else math.nan,
                w.rows / lat.median if lat.median else math.nan,
                result.other_cpu_share,
            ),
            quality=QualitySummary(
                log_loss(result.probs, labels) if scored else None,
                accuracy(result.probs, labels) if scored else None,
                result.nonfinite_rows,
                lm_log_loss=result.lm_log_loss,
            ),
            memory=MemorySummary(result.weight_bytes, result.peak_memory_bytes, result.memory_kind),
            load_seconds=result.load_seconds,
            warmup_seconds=result.warmup_seconds,
        )

    def with_reference(self, reference: dict[str, float] | None = None, error: str | None = None) -> Measurement:
        return replace(self, quality=replace(self.quality, reference=reference, reference_error=error))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency"]["samples_s"] = list(self.latency.samples_s)
        data["latency"]["probe_samples_s"] = list(self.latency.probe_samples_s)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(
            variant=data["variant"],
            settings=dict(data["settings"]),
            environment=dict(data["environment"]),
            work=WorkSummary(**data["work"]),
            latency=LatencySummary.from_dict(data["latency"]),
            quality=QualitySummary(**data["quality"]),
            memory=MemorySummary(**data["memory"]),
            load_seconds=data.get("load_seconds", 0.0),
            warmup_seconds=data.get("warmup_seconds", 0.0),
            extra=dict(data.get("extra", {})),
        )
