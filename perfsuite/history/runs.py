"""report.json and compare.json as history records: the run's metadata, every variant's entry
as the report held it, and the figures change points are looked for in (typed points).

A file written before reports carried their own metadata still goes in: its commit and
versions come from its measurements, its time from the file, its id from its content.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from perfsuite.device.environment import PROVENANCE
from perfsuite.judge.latency import BUSY_SHARE  # a busy run is what the latency decision drops
from perfsuite.report.metadata import RUN_SCHEMA, non_finite, read_report_json, utc_iso

PORTABLE = "*"  # the scope of a figure any machine reproduces (work counts, portable quality)
TIMING = ("latency_ms", "tokens_per_s", "ratio")  # what a busy machine makes undecided

# metric -> (higher is worse, exact). Exact figures (work counts) change only when the code or
# the data did: any difference is a step. The rest are judged against their noise.
METRICS: dict[str, tuple[bool, bool]] = {
    "latency_ms": (True, False),
    "tokens_per_s": (False, False),
    "peak_mib": (True, False),  # device memory (torch.cuda.max_memory_allocated): judged
    "rss_mib": (True, False),  # a CPU's RSS increase: depends on what ran before, shown only
    "log_loss": (True, False),
    "accuracy": (False, False),
    "lm_log_loss": (True, False),
    "ref_max_abs_dp": (True, False),
    "processed_tokens": (True, True),
    "real_tokens": (False, True),
    "flops": (True, True),
    "weight_bytes": (True, True),
    "ratio": (True, False),  # a relative bound's interleaved variant / reference time
    "head_over_base": (True, False),  # compare --base: head / base time (1 / B/A)
    "run_factor": (True, False),  # a machine's run-wide latency factor (history.phase), derived
    "b_over_a": (True, False),  # compare with pins or another interpreter
}
SUPPORTED_SCHEMAS = (RUN_SCHEMA,)


@dataclass(frozen=True)
class Point:
    series: str
    metric: str
    scope: str
    value: float
    low: float | None = None
    high: float | None = None
    busy: bool = False  # timed while the machine was busy: drawn, not searched for change points


@dataclass(frozen=True)
class Result:
    series: str
    status: str
    entry: dict[str, Any]


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    kind: str
    time: str
    machine_key: str
    tier: str
    commit: str
    environment: dict[str, str]
    settings: dict[str, Any]
    source: str
    results: tuple[Result, ...] = ()
    points: tuple[Point, ...] = field(default_factory=tuple)


def _field(data: dict[str, Any], name: str, where: str, kind: type = str) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        got = "missing" if name not in data else f"a {type(value).__name__}"
        raise ValueError(f"{where}.{name} must be a {kind.__name__} ({got})")
    return value


def _dtype(variant: str) -> str:
    parts = variant.rsplit("-", 3)
    return parts[1] if len(parts) == 4 else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _figure(block: dict[str, Any], name: str, where: str, signed: bool = False) -> float | None:
    """A figure the history stores: absent or null is no figure; anything else must be a finite
    number (not a string, not true/false) and, unless `signed`, not negative - a ValueError
    naming the file and field, never a figure silently dropped or stored as -1000 ms."""
    value = block.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}.{name} must be a number ({json.dumps(value)[:40]}); the run was not added")
    if value < 0 and not signed:
        raise ValueError(f"{where}.{name} is {value}: it cannot be negative; the run was not added")
    return float(value)


def _block(parent: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = parent.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}.{name} must be an object; the run was not added")
    return value


def run_was_busy(entries: list[dict[str, Any]]) -> bool:
    """The busy signal of the run: another process took more than BUSY_SHARE of the CPU while a
    variant was timed, or the judge left latency undecided because the machine was busy."""
    for e in entries:
        lat = ((e.get("measurement") or {}).get("latency")) or {}
        share = _number(lat.get("other_cpu_share"))
        judged = (e.get("judged") or {}).get("latency")
        if (share is not None and share > BUSY_SHARE) or (isinstance(judged, str) and "machine busy" in judged):
            return True
    return False


def _scaled(value: float | None, factor: float) -> float | None:
    return value * factor if value else None  # 0 s or 0 bytes: not measured


def variant_points(
    entry: dict[str, Any], machine_key: str, portable_dtypes: list[str], busy: bool = False, where: str = "entry"
):
    """The figures of one report.json variant entry, each scoped where it is comparable; a
    figure of the wrong type is a ValueError naming `where` and the field."""
    m = entry.get("measurement")
    if m is None:
        return []
    if not isinstance(m, dict):
        raise ValueError(f"{where}.measurement must be an object; the run was not added")
    name = entry["variant"]
    w = f"{where}.measurement"
    quality_scope = PORTABLE if _dtype(name) in portable_dtypes else machine_key
    lat, work, quality, memory = (_block(m, k, w) for k in ("latency", "work", "quality", "memory"))
    reference = _block(quality, "reference", f"{w}.quality")
    memory_metric = "rss_mib" if "rss" in str(memory.get("kind", "")) else "peak_mib"
    figures = [
        ("latency_ms", _scaled(_figure(lat, "median_s", f"{w}.latency"), 1000), machine_key),
        ("tokens_per_s", _figure(lat, "tokens_per_s", f"{w}.latency"), machine_key),
        (memory_metric, _scaled(_figure(memory, "peak_bytes", f"{w}.memory", signed=True), 2**-20), machine_key),
        ("log_loss", _figure(quality, "log_loss", f"{w}.quality"), quality_scope),
        ("accuracy", _figure(quality, "accuracy", f"{w}.quality"), quality_scope),
        ("lm_log_loss", _figure(quality, "lm_log_loss", f"{w}.quality"), quality_scope),
        ("ref_max_abs_dp", _figure(reference, "max_abs_dp", f"{w}.quality.reference"), quality_scope),
        *(
            (k, _figure(work, k, f"{w}.work"), PORTABLE)
            for k in ("processed_tokens", "real_tokens", "flops", "weight_bytes")
        ),
    ]
    return [
        Point(name, metric, scope, value, busy=busy and metric in TIMING)
        for metric, value, scope in figures
        if value is not None
    ]


def from_report(data: dict[str, Any], source: str, fallback_time: str) -> RunRecord:
    """A report.json (run, rebaseline or a shard of either) as one run."""
    where = source
    if not isinstance(data.get("variants"), list):
        raise ValueError(f"{where}: not a perfsuite report.json (no 'variants' list)")
    if "merged_from" in data:
        raise ValueError(f"{where}: a merged report; add each shard's report.json instead")
    entries = data["variants"]
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ValueError(f"{where}: variants[{i}] is not an object")
        _field(e, "variant", f"{where}: variants[{i}]")
        _field(e, "status", f"{where}: variants[{i}]")
    measured = next((e["measurement"] for e in entries if isinstance(e.get("measurement"), dict)), {})
    run = _run_block(data, where)
    machine_key = _field(data, "machine_key", where)
    if run is None:  # a report.json from before reports carried their own metadata
        env = {k: v for k, v in (measured.get("environment") or {}).items() if k not in PROVENANCE}
        settings = dict(measured.get("settings") or {})
        run = {
            "kind": "run",
            "run_id": hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32],
            "time": fallback_time,
            "tier": str(settings.get("tier", "unknown")),
            "commit": str(env.get("commit", "unknown")),
            "environment": env,
            "portable_quality_dtypes": [],
        }
    portable = [str(d) for d in run.get("portable_quality_dtypes") or []]
    busy = run_was_busy(entries)
    points: list[Point] = []
    for i, e in enumerate(entries):
        points += variant_points(e, machine_key, portable, busy, f"{where}: variants[{i}]")
    for i, r in enumerate(data.get("relative") or []):
        if not isinstance(r, dict):
            raise ValueError(f"{where}: relative[{i}] is not an object")
        est = _block(r, "estimate", f"{where}: relative[{i}]")
        ratio = _figure(est, "ratio", f"{where}: relative[{i}].estimate")
        if ratio is not None:
            series = f"{_field(r, 'bound', f'{where}: relative[{i}]')}:{r['variant']}"
            low, high = (_figure(est, k, f"{where}: relative[{i}].estimate") for k in ("low", "high"))
            points.append(Point(series, "ratio", machine_key, ratio, low, high, busy))
    results = [Result(e["variant"], e["status"], {k: v for k, v in e.items() if k != "cells"}) for e in entries]
    results += [
        Result(f"{r['bound']}:{r['variant']}", str(r.get("status", "")), {k: v for k, v in r.items() if k != "cells"})
        for r in data.get("relative") or []
        if isinstance(r.get("bound"), str) and isinstance(r.get("variant"), str)
    ]
    return _record(run, run["kind"], machine_key, dict(measured.get("settings") or {}), source, results, points)


def from_compare(data: dict[str, Any], source: str) -> RunRecord:
    """A compare.json as one run: per variant, head / base (with `--base`, A is the base and B this
    checkout, so B/A is head / base) or B / A (pins, another interpreter)."""
    where = source
    run = _run_block(data, where)
    if run is None:
        raise ValueError(f"{where}: a compare.json without its run metadata (written before history existed)")
    sides = data.get("sides") if isinstance(data.get("sides"), dict) else {}
    base = str((sides.get("A") or {}).get("revision") or "")  # compare --base: A is the base revision
    metric = "head_over_base" if base else "b_over_a"
    points, results = [], []
    for i, e in enumerate(data["variants"]):
        if not isinstance(e, dict):
            raise ValueError(f"{where}: variants[{i}] is not an object")
        name = _field(e, "variant", f"{where}: variants[{i}]")
        results.append(Result(name, _field(e, "verdict", f"{where}: variants[{i}]"), e))
        est = e.get("estimate") if isinstance(e.get("estimate"), dict) else None
        ratio, low, high = (_number(est.get(k)) for k in ("ratio", "low", "high")) if est else (None, None, None)
        if ratio and low and high:
            points.append(Point(name, metric, PORTABLE, ratio, low, high))
    settings = {"compare": data.get("settings") or {}, "sides": sides, "base_commit": base}
    return _record(run, "compare", run["machine_key"], settings, source, results, points)


def _record(
    run: dict[str, Any], kind: str, machine_key: str, settings: dict[str, Any], source: str, results, points
) -> RunRecord:
    """The record of a checked run block, its results (each series once) and its points."""
    seen: set[str] = set()
    for r in results:
        if r.series in seen:
            raise ValueError(f"{source}: {r.series} appears twice")
        seen.add(r.series)
    environment = {k: str(v) for k, v in (run.get("environment") or {}).items()}
    return RunRecord(
        run["run_id"], kind, run["time"], machine_key, run["tier"], run["commit"], environment, settings, source,
        tuple(results), tuple(points),
    )  # fmt: skip


def _run_block(data: dict[str, Any], where: str) -> dict[str, Any] | None:
    run = data.get("run")
    if run is None:
        return None
    if not isinstance(run, dict):
        raise ValueError(f"{where}: field 'run' must be an object")
    if run.get("schema") not in SUPPORTED_SCHEMAS:
        raise ValueError(
            f"{where}: run.schema {run.get('schema')!r} is not one this perfsuite reads "
            f"({', '.join(SUPPORTED_SCHEMAS)}); a newer perfsuite wrote it?"
        )
    for name in ("run_id", "kind", "time", "tier", "commit", "machine_key"):
        _field(run, name, f"{where}: run")
    try:
        run["time"] = utc_iso(run["time"])  # stored in UTC: the history orders runs by this text
    except ValueError:
        raise ValueError(f"{where}: run.time {run['time']!r} is not an ISO 8601 time") from None
    if not isinstance(run.get("environment", {}), dict):
        raise ValueError(f"{where}: run.environment must be an object")
    return run


def read_run_file(path: Path) -> RunRecord:
    """One report.json or compare.json, checked field by field: ValueError naming the file and
    field otherwise (NaN figures included - the run is refused whole, never half-added)."""
    non_finite_tokens: list[str] = []

    def constant(token: str) -> float:  # NaN, Infinity, -Infinity: Python's json accepts them
        non_finite_tokens.append(token)
        return float(token)

    data = read_report_json(path, "report.json or compare.json", constant)
    bad = non_finite(data, "") if non_finite_tokens else None  # the walk only to name the field
    if bad:
        raise ValueError(f"{path}: field {bad.lstrip('.')} is NaN or Infinity; the run was not added")
    mtime = datetime.fromtimestamp(Path(path).stat().st_mtime, timezone.utc).isoformat(timespec="milliseconds")
    if "sides" in data:
        return from_compare(data, str(path))
    return from_report(data, str(path), mtime)
