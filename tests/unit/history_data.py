"""Report and compare files as perfsuite writes them, built with chosen figures, for the history tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from perfsuite.report.metadata import RUN_SCHEMA

KEY = "cpu-test-machine-2c"
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def when(i: int) -> str:
    return (T0 + timedelta(hours=i)).isoformat(timespec="milliseconds")


def variant_entry(name: str, latency_ms: float, processed: int = 1000, status: str = "pass", log_loss: float = 0.9):
    return {
        "variant": name,
        "status": status,
        "reason": "",
        "checks": [],
        "judged": {"work": True},
        "measurement": {
            "variant": name,
            "settings": {"data": "sample.csv@abc", "rows": 16, "tier": "cpu"},
            "environment": {"transformers": "5.24.0"},
            "work": {
                "rows": 16,
                "batches": 4,
                "real_tokens": 900,
                "processed_tokens": processed,
                "max_seq_len": 128,
                "padding_overhead": processed / 900,
                "flops": 10 * processed,
                "weight_bytes": 5000,
            },
            "latency": {
                "median_s": latency_ms / 1000,
                "samples_s": [latency_ms / 1000] * 3,
                "tokens_per_s": 9e5 / latency_ms,
            },
            "quality": {"log_loss": log_loss, "accuracy": 0.5, "nonfinite_rows": 0, "reference": {"max_abs_dp": 1e-7}},
            "memory": {"weight_bytes": 5000, "peak_bytes": 50 * 2**20, "kind": "cpu rss increase"},
        },
        "cells": ["x"],
    }


def report(
    i: int,
    latencies: dict[str, float],
    commit: str | None = None,
    env: dict[str, str] | None = None,
    processed: dict[str, int] | None = None,
    machine_key: str = KEY,
    run_id: str | None = None,
) -> dict[str, Any]:
    environment = {"python": "3.11.7", "torch": "2.13.0", "transformers": "5.24.0", **(env or {})}
    return {
        "run": {
            "schema": RUN_SCHEMA,
            "kind": "run",
            "run_id": run_id or uuid.uuid4().hex,
            "time": when(i),
            "tier": "cpu",
            "machine_key": machine_key,
            "commit": commit or f"{i:012x}",
            "environment": environment,
            "portable_quality_dtypes": ["fp32"],
        },
        "machine_key": machine_key,
        "variants": [variant_entry(n, ms, (processed or {}).get(n, 1000)) for n, ms in latencies.items()],
        "relative": [],
    }


def compare_doc(i: int, variant: str, head_over_base: float, half_width: float = 0.03, base: str = "b" * 40):
    """compare --base as perfsuite writes it: A is the base revision, B this checkout (head)."""
    return {
        "run": {
            "schema": RUN_SCHEMA,
            "kind": "compare",
            "run_id": uuid.uuid4().hex,
            "time": when(i),
            "tier": "cpu",
            "machine_key": "cpu-hosted-runner-4c",
            "commit": f"{i:012x}",
            "environment": {"transformers": "5.24.0"},
        },
        "sides": {"A": {"description": "base", "revision": base}, "B": {"description": "this checkout"}},
        "settings": {"max_slowdown": 0.05},
        "variants": [
            {
                "variant": variant,
                "verdict": "same",
                "estimate": {
                    "ratio": head_over_base,
                    "low": head_over_base * (1 - half_width),
                    "high": head_over_base * (1 + half_width),
                },
            }
        ],
    }


def write(folder: Path, docs: Sequence[dict[str, Any]], name: str = "report.json") -> list[Path]:
    paths = []
    for n, doc in enumerate(docs):
        path = folder / f"{n:04d}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc), encoding="utf-8")
        paths.append(path)
    return paths
