"""The run's own metadata, written into report.json and compare.json: a file alone is a complete
history record (which run, when, on what machine, at which commit, under which versions)."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from perfsuite.device.environment import git_commit, package_versions

RUN_SCHEMA = "perfsuite-run/1"


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time as an aware datetime: a date is its midnight, a time without an
    offset is UTC (as the history stores them). ValueError where `text` is neither."""
    given = text.strip()
    try:
        value = datetime.fromisoformat(given[:-1] + "+00:00" if given.endswith(("Z", "z")) else given)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or time (e.g. 2026-11-01, 2026-11-01T13:00+09:00)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def utc_iso(text: str) -> str:
    """An ISO time of any offset as UTC to the millisecond, the form the history orders by."""
    return parse_time(text).astimezone(timezone.utc).isoformat(timespec="milliseconds")


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


def read_report_json(path: Path, what: str, parse_constant=None) -> dict[str, Any]:
    """A perfsuite report file as a dict with a 'variants' list; ValueError naming the file
    otherwise (`merge` reads shards, `history add` reads runs, through this one reader)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=parse_constant)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable {what} ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path}: not a perfsuite {what} (nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("variants"), list):
        raise ValueError(f"{path}: not a perfsuite {what} (no 'variants' list)")
    return data
