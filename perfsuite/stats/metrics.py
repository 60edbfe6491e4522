"""Quality and latency statistics, each computed in one place."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KAGGLE_EPS = 1e-15  # sklearn's log_loss clipping, which Kaggle's scorer used


def log_loss(probs: np.ndarray, labels: Sequence[int], eps: float = KAGGLE_EPS) -> float:
    """3-class log-loss: clip to [eps, 1-eps], renormalise rows, mean of -log p(label)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    p = p / p.sum(axis=1, keepdims=True)
    y = np.asarray(labels, dtype=np.int64)
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"{p.shape[0]} predictions for {y.shape[0]} labels")
    if p.shape[0] == 0:
        return float("nan")
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def symmetrize_tta(probs: np.ndarray, swapped_probs: np.ndarray) -> np.ndarray:
    """Average a prediction with the A/B-swapped one, its A and B columns swapped back."""
    return (np.asarray(probs) + np.asarray(swapped_probs)[:, [1, 0, 2]]) / 2


def accuracy(probs: np.ndarray, labels: Sequence[int]) -> float:
    y = np.asarray(labels)
    return float(np.mean(np.argmax(probs, axis=1) == y)) if len(y) else float("nan")


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-pass wall times (seconds)."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def iqr(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        q = np.percentile(self.samples, [25, 75])
        return float(q[1] - q[0])

    @property
    def spread(self) -> float:
        """IQR relative to the median: the run's own noise level."""
        m = self.median
        return self.iqr / m if m and not math.isnan(m) else float("nan")


def compare_to_reference(
    probs: np.ndarray,
    reference: np.ndarray,
    labels: Sequence[int] | None,
    lm: float | None = None,
    reference_lm: float | None = None,
) -> dict[str, float]:
    """How far a variant's probabilities are from the reference run's, row by row (MLPerf-style),
    and with real weights its next-token log-loss from the reference's (`lm`, `reference_lm`).

    Rows where either side is not finite count as disagreeing and as |dp| = 1.
    """
    p, r = np.asarray(probs, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    finite = np.isfinite(p).all(axis=1) & np.isfinite(r).all(axis=1)
    agree = (np.argmax(np.nan_to_num(p), axis=1) == np.argmax(np.nan_to_num(r), axis=1)) & finite
    dp = np.where(finite[:, None], np.abs(np.nan_to_num(p) - np.nan_to_num(r)), 1.0)
    out = {"argmax_agreement": float(agree.mean()), "max_abs_dp": float(dp.max())}
    if labels is not None and finite.all():
        out["log_loss"], out["reference_log_loss"] = log_loss(p, labels), log_loss(r, labels)
        out["log_loss_increase"] = out["log_loss"] - out["reference_log_loss"]
    if lm is not None and reference_lm is not None:
        out.update(lm_log_loss=lm, reference_lm_log_loss=reference_lm, lm_log_loss_increase=lm - reference_lm)
    return out
