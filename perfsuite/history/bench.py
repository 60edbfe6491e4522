"""The history's own benchmarks (`perfsuite selftest --history`): detection and false-alarm
rates on histories built from runs recorded on this machine, the compare chain, and scale.

Noise comes from real report.json files, not from a formula: every run's per-variant median
(latency_ms) and relative-bound ratio is a draw, split into quiet and busy runs by the run's own
busy signal (the share of CPU other processes took while it was timed). A semi-synthetic
history of `length` runs draws quiet runs at random, puts one busy run at a random place, and
multiplies the last `after` runs by (1 + step); detection means a change point within one run of
where the step starts, found with only those `after` runs behind it.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from perfsuite.history.changes import ChangeSettings, find_steps, noise_scale
from perfsuite.history.runs import BUSY_SHARE

# Headless Chromium on a closed network: without the background-networking flags it keeps
# trying to reach Google's hosts. The dashboard's browser test starts it the same way.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_render_s(page: Path) -> float | None:
    """Seconds from navigation until the dashboard says every chart is drawn, in Debian's
    headless chromium driven by Playwright; None where either is missing."""
    import importlib.util
    import shutil

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None or importlib.util.find_spec("playwright") is None:
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=list(CHROMIUM_ARGS), headless=True)
        try:
            tab = browser.new_page()
            t0 = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_selector("body[data-rendered]", timeout=120_000)
            return time.perf_counter() - t0
        finally:
            browser.close()


@dataclass
class Pool:
    """Per series, the values of quiet and of busy runs."""

    quiet: dict[str, list[float]]
    busy: dict[str, list[float]]
    runs: int


def load_pool(paths: Sequence[Path]) -> Pool:
    quiet: dict[str, list[float]] = {}
    busy: dict[str, list[float]] = {}
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        measured = [v["measurement"] for v in data.get("variants", []) if v.get("measurement")]
        shares = [m["latency"].get("other_cpu_share") for m in measured]
        run_busy = any(s is not None and s > BUSY_SHARE for s in shares)
        values = {m["variant"]: m["latency"]["median_s"] * 1000 for m in measured}
        for r in data.get("relative", []):
            if r.get("estimate"):
                values[f"{r['bound']}:{r['variant']}"] = r["estimate"]["ratio"]
        for name, value in values.items():
            (busy if run_busy else quiet).setdefault(name, []).append(value)
    return Pool(quiet, busy, len(paths))


def _history(rng, quiet: list[float], busy: list[float], length: int, step: float, after: int) -> np.ndarray:
    values = np.array([quiet[i] for i in rng.integers(0, len(quiet), length)], dtype=float)
    if busy:
        values[rng.integers(0, length)] = busy[rng.integers(0, len(busy))]
    if step:
        values[length - after :] *= 1 + step
    return values


def detection(
    pool: Pool,
    series: str,
    step: float,
    histories: int,
    length: int = 30,
    after: int = 5,
    seed: int = 0,
    settings: ChangeSettings | None = None,
) -> dict[str, Any]:
    """Found within +-1 run / histories, and change points elsewhere (false)."""
    rng = np.random.default_rng(seed)
    quiet, busy = pool.quiet[series], pool.busy.get(series, [])
    start = length - after
    found = false = 0
    for _ in range(histories):
        steps = find_steps(_history(rng, quiet, busy, length, step, after), settings=settings)
        hit = [s for s in steps if abs(s.index - start) <= 1] if step else []
        found += bool(hit)
        false += len(steps) - len(hit[:1])
    return {"series": series, "step": step, "histories": histories, "found": found, "false": false}


def noise(pool: Pool) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(pool.quiet):
        y = np.log(pool.quiet[name])
        b = pool.busy.get(name, [])
        busy_ratio = float(np.median(b) / np.median(pool.quiet[name])) if b else None
        rows.append(
            {
                "series": name,
                "quiet_runs": len(y),
                "busy_runs": len(b),
                "sd": float(np.std(y, ddof=1)) if len(y) > 1 else math.nan,
                "robust_sd": noise_scale(y),
                "busy_median_ratio": busy_ratio,
            }
        )
    return rows


def smallest_detectable(pool: Pool, series: str, histories: int = 10, sizes=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0)):
    """The smallest step found in >= 9 of 10 histories within 5 runs, or None."""
    for size in sizes:
        if detection(pool, series, size, histories, seed=7)["found"] >= math.ceil(0.9 * histories):
            return size
    return None


def chained(merges: int, each: float, half_width: float, seed: int = 0) -> dict[str, Any]:
    """`merges` compare results head/base = each x noise, interval +-half_width, chained."""
    from perfsuite.history.creep import Z95

    rng = np.random.default_rng(seed)
    se = math.log1p(half_width) / Z95
    logs = np.log(each) + rng.normal(0, se * 0.7, merges)  # each merge's own estimate scatters within its interval
    total, half = float(logs.sum()), Z95 * se * math.sqrt(merges)
    singles = sum(math.exp(x - Z95 * se) > 1.05 for x in logs)
    return {
        "merges": merges,
        "each": each,
        "cumulative": math.exp(total),
        "low": math.exp(total - half),
        "high": math.exp(total + half),
        "flagged": math.exp(total - half) > 1.05,
        "single_merges_flagged": int(singles),
    }


def synthetic_reports(folder: Path, runs: int, variants: int, seed: int = 0) -> list[Path]:
    """`runs` report.json files of `variants` variants each, as perfsuite writes them."""
    from perfsuite.report.metadata import RUN_SCHEMA

    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    names = [
        f"model{m}-{d}-{a}-{p}"
        for m in range(5)
        for d in ("fp32", "bf16")
        for a in ("eager", "sdpa")
        for p in ("static", "dynamic", "sorted", "x", "y")
    ]
    names = names[:variants]
    base = rng.uniform(50, 500, len(names))
    paths = []
    for i in range(runs):
        level = base * (1.3 if i >= runs * 0.8 else 1.0) * np.exp(rng.normal(0, 0.01, len(names)))
        entries = []
        for name, ms in zip(names, level, strict=True):
            entries.append(
                {
                    "variant": name,
                    "status": "pass",
                    "reason": "",
                    "checks": [{"kind": "latency", "name": "median", "ok": True, "measured": f"{ms:.1f}"}],
                    "judged": {"latency": True, "work": True},
                    "measurement": {
                        "variant": name,
                        "settings": {"data": "sample.csv@abc", "rows": 16, "tier": "bench"},
                        "environment": {"transformers": "5.24.0"},
                        "work": {
                            "processed_tokens": 16384,
                            "real_tokens": 9442,
                            "flops": 44029706240,
                            "weight_bytes": 9376768,
                        },
                        "latency": {"median_s": ms / 1000, "samples_s": [ms / 1000] * 5, "tokens_per_s": 9442e3 / ms},
                        "quality": {"log_loss": 0.94, "accuracy": 0.5, "nonfinite_rows": 0},
                        "memory": {"weight_bytes": 9376768, "peak_bytes": 86106112, "kind": "cpu rss increase"},
                    },
                }
            )
        doc = {
            "run": {
                "schema": RUN_SCHEMA,
                "kind": "run",
                "run_id": uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i).hex,
                "time": (start + timedelta(hours=i)).isoformat(timespec="milliseconds"),
                "tier": "bench",
                "machine_key": "cpu-bench-2c",
                "commit": f"{i:012x}",
                "environment": {"transformers": "5.24.0"},
                "portable_quality_dtypes": ["fp32"],
            },
            "machine_key": "cpu-bench-2c",
            "variants": entries,
            "relative": [],
        }
        path = folder / f"{i:05d}" / "report.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(doc), encoding="utf-8")
        paths.append(path)
    return paths


def scale(runs: int = 1000, variants: int = 100, render=None) -> dict[str, Any]:
    """Seconds to add `runs` x `variants` into a new SQLite history, to find its change points,
    to write its dashboard, the dashboard's size, and (given `render`, a callable taking the
    page and returning seconds) how long headless Chromium takes to draw it."""
    from perfsuite.history.creep import creep
    from perfsuite.history.dashboard import write_dashboard
    from perfsuite.history.ingest import add_files
    from perfsuite.history.series import find_changes, load_series
    from perfsuite.history.store import HistoryStore

    with tempfile.TemporaryDirectory(prefix="perfsuite-history-bench-") as tmp:
        folder = Path(tmp)
        paths = synthetic_reports(folder / "reports", runs, variants)
        t0 = time.perf_counter()
        with HistoryStore(str(folder / "h.sqlite")) as store:
            add_files(store, paths)
        t_add = time.perf_counter() - t0
        t0 = time.perf_counter()
        with HistoryStore(str(folder / "h.sqlite")) as store:
            changes, _ = find_changes(store)
        t_changes = time.perf_counter() - t0
        t0 = time.perf_counter()
        with HistoryStore(str(folder / "h.sqlite")) as store:
            shown, all_runs = load_series(store)
            pages = write_dashboard(folder / "site", all_runs, shown, changes, creep([]), store.statuses())
        t_html = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in pages)
        tier_page = next(p for p in pages if p.name.startswith("tier-"))
        render_s = render(tier_page) if render else None
        return {
            "runs": runs,
            "variants": variants,
            "add_s": t_add,
            "changes_s": t_changes,
            "change_points": len(changes),
            "html_s": t_html,
            "html_bytes": size,
            "render_s": render_s,
            "db_bytes": (folder / "h.sqlite").stat().st_size,
        }


def scaled(pool: Pool, target_sd: float) -> Pool:
    """The pool with each series' log deviations from its quiet median scaled to a robust sd of
    `target_sd`: the same shape of noise (busy runs included) as a quieter machine would show."""
    quiet, busy = {}, {}
    for name, values in pool.quiet.items():
        y = np.log(values)
        centre, sd = float(np.median(y)), noise_scale(y) or float(np.std(y)) or 1.0
        f = target_sd / sd
        quiet[name] = [float(np.exp(centre + (v - centre) * f)) for v in y]
        busy[name] = [float(np.exp(centre + (np.log(v) - centre) * f)) for v in pool.busy.get(name, [])]
    return Pool(quiet, busy, pool.runs)


def detection_table(
    pool: Pool, step: float, histories: int, flat: int, length: int, after: int
) -> list[dict[str, Any]]:
    """Per series of the pool: its noise, the step found (of `histories`), false change points in
    `flat` flat histories, and the smallest step found in 9 of 10."""
    rows = []
    for n in noise(pool):
        if n["quiet_runs"] < 5:
            continue
        name = n["series"]
        hit = detection(pool, name, step, histories, length, after, seed=1)
        clean = detection(pool, name, 0.0, flat, length, after, seed=2)
        rows.append(
            {
                **n,
                "found": hit["found"],
                "histories": histories,
                "false": clean["false"],
                "flat": flat,
                "smallest_9_of_10": smallest_detectable(pool, name),
            }
        )
    return rows


def render(doc: dict[str, Any]) -> str:
    from perfsuite.history.model_bench import render_model

    lines = render_model(doc["model"]) if doc.get("model") else []
    s = doc["settings"]
    if doc.get("detection"):
        lines.append(
            f"semi-synthetic histories of {s['length']} runs from {doc['pool_runs']} recorded runs (one busy run "
            f"in each): a {s['step']:.0%} step {s['after']} runs before the end, found within +-1 run; "
            "flat histories: false change points"
        )
        lines.append("series | quiet runs | busy runs | run-to-run sd | found | false / flat | smallest found 9/10")
        scaled_rows = ({**r, "series": f"{r['series']} (noise scaled to 1%)"} for r in doc.get("detection_at_1pct", []))
        for r in [*doc["detection"], *scaled_rows]:
            small = f"{r['smallest_9_of_10']:.0%}" if r["smallest_9_of_10"] else "> 100%"
            lines.append(
                f"{r['series']} | {r['quiet_runs']} | {r['busy_runs']} | {r['robust_sd']:.1%} | "
                f"{r['found']}/{r['histories']} | {r['false']}/{r['flat']} | {small}"
            )
    if doc.get("real"):
        r = doc["real"]
        lines.append(
            f"real history: {r['runs']} runs of {r.get('select', r['target'])}, {r['target']} +{r['slowdown']:.0%} "
            f"from run {r['inject_from']}: " + ("; ".join(r["changes"]) or "no change point")
        )
        if "raw" in r:
            lines.append(f"  its raw series, Welch as before the model: {'; '.join(r['raw']) or 'no change point'}")
    for c in doc.get("chain", []):
        lines.append(
            f"compare chain: {c['merges']} merges x {c['each']:.2f}: cumulative {c['cumulative']:.3f} "
            f"[{c['low']:.3f}, {c['high']:.3f}] -> {'flagged' if c['flagged'] else 'not flagged'} "
            f"({c['single_merges_flagged']} merges slower on their own)"
        )
    if doc.get("scale"):
        c = doc["scale"]
        render_s = f"{c['render_s']:.2f} s" if c["render_s"] is not None else "not measured (no chromium/playwright)"
        lines.append(
            f"scale: {c['runs']} runs x {c['variants']} variants: add {c['add_s']:.1f} s, "
            f"changes {c['changes_s']:.1f} s ({c['change_points']} change points), "
            f"html {c['html_s']:.1f} s, {c['html_bytes'] / 1e6:.2f} MB, "
            f"rendered in {render_s}; SQLite {c['db_bytes'] / 1e6:.0f} MB"
        )
    return "\n".join(lines)
