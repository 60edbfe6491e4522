"""The run's own metadata, written into report.json and compare.json: a file alone is a complete
history record (which run, when, on what machine, at which commit, under which versions)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from perfsuite.device.environment import git_commit, package_versions

RUN_SCHEMA = "perfsuite-run/1"


def now_iso() -> str:
    """UTC, to the millisecond: runs of one machine a second apart still order."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def run_metadata(
    kind: str,
    tier: str,
    machine_key: str,
    environment: dict[str, str] | None = None,
    portable_quality_dtypes: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """`kind` is run, rebaseline or compare; `environment` the versions the run measured under
    (this process's when none is given)."""
    env = dict(environment) if environment else {**package_versions(), "commit": git_commit()}
    return {
        "schema": RUN_SCHEMA,
        "kind": kind,
        "run_id": uuid.uuid4().hex,
        "time": now_iso(),
        "tier": tier,
        "machine_key": machine_key,
        "commit": env.get("commit") or git_commit(),
        "environment": env,
        "portable_quality_dtypes": list(portable_quality_dtypes),
        **extra,
    }


def non_finite(value: Any, where: str) -> str | None:
    """The first field under `value` holding NaN or +-Infinity (not strict JSON), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = non_finite(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}")
        if found:
            return found
    return None
