"""Turn one variant's measurements and its stored baseline into a Verdict."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .baselines import BaselineError, BoundCheck, Verdict, check_latency, check_quality, check_work
from .environment import environment_changes
from .matrix import Bounds

COMPARABLE_SETTINGS = ("data", "rows", "batch_size", "max_length", "padding_side", "tta")


def guard_checks(measurement: dict[str, Any], bounds: Bounds) -> list[BoundCheck]:
    """Checks that need no baseline: non-finite logits (a count) and the in-run reference."""
    n = measurement["work"]["rows"]
    bad = measurement["quality"]["nonfinite_rows"]
    checks = [BoundCheck("guard", "finite logits", bad == 0, f"{bad} of {n} rows non-finite", "0 non-finite rows")]
    return checks + reference_checks(measurement["quality"].get("reference"), bounds)


def reference_checks(ref: dict[str, float] | None, bounds: Bounds) -> list[BoundCheck]:
    """The variant against the eager, unpadded, batch-1 reference of the same run (MLPerf-style margins)."""
    if ref is None:
        return []
    where = "vs the in-run eager batch-1 reference"
    checks = [
        BoundCheck(
            "reference",
            "argmax agreement",
            ref["argmax_agreement"] >= bounds.ref_argmax_agreement - 1e-12,
            f"{ref['argmax_agreement']:.3f}",
            f">= {bounds.ref_argmax_agreement}",
            where,
        ),
        BoundCheck(
            "reference",
            "max |dp|",
            ref["max_abs_dp"] <= bounds.ref_max_abs_dp,
            f"{ref['max_abs_dp']:.4f}",
            f"<= {bounds.ref_max_abs_dp}",
            where,
        ),
    ]
    if "log_loss_increase" in ref:
        checks.append(
            BoundCheck(
                "reference",
                "log-loss increase",
                ref["log_loss_increase"] <= bounds.ref_log_loss_increase,
                f"{ref['log_loss_increase']:+.4f} ({ref['log_loss']:.4f} vs {ref['reference_log_loss']:.4f})",
                f"<= +{bounds.ref_log_loss_increase}",
                where,
            )
        )
    return checks


def judge(
    measurement: dict[str, Any],
    record: dict[str, Any] | None,
    bounds: Bounds,
    baseline_path: str,
    load_error: BaselineError | None = None,
) -> Verdict:
    """pass/fail against the stored record; skip (saying how to record one) when there is none."""
    checks = guard_checks(measurement, bounds)
    if load_error is not None:
        return Verdict("fail", checks, reason=str(load_error), baseline_path=baseline_path)
    if record is None:
        status = "fail" if any(not c.ok for c in checks) else "skip"
        reason = f"no baseline at {baseline_path}; record one with `tox -e rebaseline`"
        return Verdict(status, checks, reason=reason, baseline_path=baseline_path)
    stored_settings = record.get("settings", {})
    differs = [
        f"{k} {stored_settings.get(k)!r} -> {measurement['settings'].get(k)!r}"
        for k in COMPARABLE_SETTINGS
        if k in stored_settings and stored_settings.get(k) != measurement["settings"].get(k)
    ]
    changes = environment_changes(record.get("environment", {}), measurement["environment"])
    if differs:
        status = "fail" if any(not c.ok for c in checks) else "skip"
        reason = "baseline was recorded for another workload (" + "; ".join(differs) + ")"
        return Verdict(status, checks, reason, baseline_path, changes)
    # The matrix's bounds decide (a tolerance change needs no rebaseline); the record keeps
    # the ones it was recorded with, and a difference is reported beside the verdict.
    recorded_tol, current_tol = record.get("tolerances"), asdict(bounds)
    if isinstance(recorded_tol, dict) and recorded_tol != current_tol:
        changed = sorted(k for k in recorded_tol if recorded_tol.get(k) != current_tol.get(k))
        changes = [*changes, "tolerances changed since baseline: " + ", ".join(changed)]
    checks += check_work(measurement["work"], record["work"], bounds.work_rel)
    checks.append(check_latency(measurement["latency"]["samples_s"], record["latency"], bounds))
    if measurement["quality"].get("log_loss") is not None:
        checks += check_quality(measurement["quality"], record["quality"], bounds)
    status = "fail" if any(not c.ok for c in checks) else "pass"
    return Verdict(status, checks, "", baseline_path, changes)
