"""Baseline store and bounds: records per machine key, checks that turn a run into a verdict.

Files live at ``baselines/<machine-key>/<tier>/<variant-id>.json`` and are reviewed in PRs
(the tier level exists because two tiers can measure the same variant on different
workloads: the GPU check at max_length 512, the GPU tier at 2048).
Writes are atomic (temp file in the same folder, fsync, rename) and touch only the
running machine's folder: another machine's baselines are never rewritten or deleted.

A latency regression needs two things (asv's rule, adapted): the median over the
baseline median x (1 + latency_ratio), and a one-sided Mann-Whitney U test saying the
samples are slower at ``rank_alpha``. The stored ``median_s`` is authoritative: if a
reviewer edits it by hand, the stored samples are rescaled to that median before the
rank test, so an edit means what it says.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .fileio import atomic_write_text
from .matrix import Bounds

DEFAULT_BASELINES = Path("baselines")
SCHEMA = 1
# Deterministic work of one pass, compared exactly: token counts, analytic FLOPs, weight bytes.
WORK_COUNTERS = ("rows", "batches", "real_tokens", "processed_tokens", "flops", "weight_bytes")
REQUIRED = ("variant", "work", "latency", "quality", "tolerances", "environment")


class BaselineError(ValueError):
    """A baseline file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class BoundCheck:
    """One bound, evaluated: what was measured, what was allowed, and whether it held."""

    kind: str  # guard | reference | work | latency | quality | relative | model
    name: str
    ok: bool
    measured: str
    allowed: str
    detail: str = ""

    def describe(self) -> str:
        state = "ok" if self.ok else "FAILED"
        extra = f" ({self.detail})" if self.detail else ""
        return f"[{self.kind}] {self.name} {state}: measured {self.measured}, allowed {self.allowed}{extra}"


@dataclass
class Verdict:
    """pass / fail / skip / recorded, with every bound checked and why."""

    status: str
    checks: list[BoundCheck] = field(default_factory=list)
    reason: str = ""
    baseline_path: str | None = None
    environment_changes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[BoundCheck]:
        return [c for c in self.checks if not c.ok]

    def message(self, variant_id: str) -> str:
        lines = [f"{variant_id}: {self.status}" + (f" - {self.reason}" if self.reason else "")]
        lines += ["  " + c.describe() for c in self.failed]
        if self.baseline_path:
            lines.append(f"  baseline: {self.baseline_path}")
        if self.environment_changes:
            lines.append("  environment changed since baseline: " + ", ".join(self.environment_changes))
        return "\n".join(lines)


def _fmt_s(value: float) -> str:
    return f"{value * 1000:.1f} ms"


class BaselineStore:
    """Baselines of one machine key and tier under a root folder."""

    def __init__(self, root: str | Path, machine_key: str, tier: str) -> None:
        self.root = Path(root)
        self.machine_key = machine_key
        self.tier = tier

    @property
    def folder(self) -> Path:
        return self.root / self.machine_key / self.tier

    def path_for(self, variant_id: str) -> Path:
        return self.folder / f"{variant_id}.json"

    def load(self, variant_id: str) -> dict[str, Any] | None:
        """The stored record, None if absent; BaselineError naming the file if unusable."""
        path = self.path_for(variant_id)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BaselineError(f"{path}: unreadable baseline ({exc})") from None
        if not isinstance(record, dict):
            raise BaselineError(f"{path}: baseline is not a JSON object")
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            raise BaselineError(f"{path}: baseline lacks {', '.join(missing)}")
        if record["variant"] != variant_id:
            raise BaselineError(f"{path}: holds variant {record['variant']!r}, expected {variant_id!r}")
        try:
            median = float(record["latency"]["median_s"])
            samples = [float(s) for s in record["latency"]["samples_s"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"{path}: latency needs median_s and samples_s ({exc})") from None
        if not (median > 0 and math.isfinite(median)) or not samples:
            raise BaselineError(f"{path}: latency median_s must be a positive number with samples")
        return record

    def save(self, record: dict[str, Any]) -> Path:
        """Atomically write one variant's record into this machine's folder only."""
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
        return atomic_write_text(self.path_for(record["variant"]), text)


def make_record(
    variant_id: str,
    machine_key: str,
    work: dict[str, int],
    latency_samples: list[float],
    quality: dict[str, float],
    bounds: Bounds,
    environment: dict[str, str],
    settings: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "variant": variant_id,
        "machine_key": machine_key,
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment,
        "settings": settings,
        "work": work,
        "latency": {
            "median_s": statistics.median(latency_samples),
            "samples_s": [round(s, 6) for s in latency_samples],
        },
        "quality": quality,
        "tolerances": asdict(bounds),
        **(extra or {}),
    }


def mann_whitney_slower(current: list[float], baseline: list[float]) -> float:
    """One-sided p-value that `current` is stochastically greater (slower) than `baseline`."""
    from scipy.stats import mannwhitneyu

    if len(current) < 2 or len(baseline) < 2:
        return 1.0
    return float(mannwhitneyu(current, baseline, alternative="greater").pvalue)


def check_work(measured: dict[str, int], stored: dict[str, int], rel: float) -> list[BoundCheck]:
    checks = []
    for name in WORK_COUNTERS:
        m, s = measured.get(name), stored.get(name)
        if s is None:
            continue
        ok = m is not None and abs(m - s) <= rel * abs(s)
        allowed = f"{s}" if rel == 0 else f"{s} +/- {rel:.1%}"
        checks.append(BoundCheck("work", name, ok, str(m), allowed))
    return checks


def check_latency(samples: list[float], stored: dict[str, Any], bounds: Bounds) -> BoundCheck:
    base_median = float(stored["median_s"])
    base_samples = [float(s) for s in stored["samples_s"]]
    scale = base_median / statistics.median(base_samples)
    base_samples = [s * scale for s in base_samples]
    median = statistics.median(samples)
    ratio = median / base_median
    limit = base_median * (1 + bounds.latency_ratio)
    p = mann_whitney_slower(samples, base_samples)
    regressed = ratio > 1 + bounds.latency_ratio and p < bounds.rank_alpha
    detail = f"ratio {ratio:.2f}x of baseline {_fmt_s(base_median)}, Mann-Whitney p={p:.2g} (alpha {bounds.rank_alpha})"
    return BoundCheck("latency", "median pass time", not regressed, _fmt_s(median), f"<= {_fmt_s(limit)}", detail)


def check_quality(quality: dict[str, float], stored: dict[str, Any], bounds: Bounds) -> list[BoundCheck]:
    checks = []
    ll, base_ll = quality.get("log_loss"), stored.get("log_loss")
    if base_ll is not None and ll is not None and not math.isnan(base_ll):
        ok = math.isfinite(ll) and abs(ll - base_ll) <= bounds.log_loss_abs
        checks.append(BoundCheck("quality", "log-loss", ok, f"{ll:.4f}", f"{base_ll:.4f} +/- {bounds.log_loss_abs}"))
    acc, base_acc = quality.get("accuracy"), stored.get("accuracy")
    if base_acc is not None and acc is not None and not math.isnan(base_acc):
        ok = abs(acc - base_acc) <= bounds.accuracy_abs + 1e-12
        checks.append(BoundCheck("quality", "accuracy", ok, f"{acc:.3f}", f"{base_acc:.3f} +/- {bounds.accuracy_abs}"))
    return checks
