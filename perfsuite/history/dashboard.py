"""`perfsuite history html OUT`: a static site that works offline - no CDN, no server. The data
is embedded in each page as JSON and drawn by uPlot (vendored, inlined) through dashboard.js:
one page per tier with every variant's series on a shared time axis (commit ticks, units, zoom
and pan together, hover with the run's details), change points as labelled annotations
(acknowledged ones grey), busy runs hollow, filters by model, dtype, attention and padding; a
series that never moved is one line of text, not a flat chart; and a page for the compare chain."""

from __future__ import annotations

import contextlib
import html
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from perfsuite.fileio import atomic_write_text
from perfsuite.history.creep import Creep
from perfsuite.history.series import Change, Series
from perfsuite.history.store import StoredRun

ASSETS = Path(__file__).with_name("assets")
UNITS = {  # the metrics a tier page shows, in this order, with the unit on their y axis
    "latency_ms": "ms",
    "tokens_per_s": "tokens/s",
    "peak_mib": "MiB",
    "rss_mib": "MiB",
    "log_loss": "nats/row",
    "lm_log_loss": "nats/token",
    "processed_tokens": "tokens",
    "ratio": "x",
    "run_factor": "x levels",
}
SHOWN = tuple(UNITS)
VERSIONS = ("torch", "transformers")  # named on the runs where they changed
STATUS = {"pass": "p", "fail": "f", "skip": "s", "recorded": "r", "slower": "f", "same": "p", "faster": "p"}


def _round(value: float) -> float | int:
    """Four significant digits - a chart's pixel is coarser - and no ".0" on whole numbers."""
    rounded = float(f"{value:.4g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def _epoch(time: str) -> float:
    """A run's time as Unix seconds, the charts' x (a time without a zone is UTC)."""
    try:
        moment = datetime.fromisoformat(time.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp(), 3)


def _versions(run: StoredRun) -> str:
    return " ".join(f"{name} {run.environment[name]}" for name in VERSIONS if run.environment.get(name))


def _variant_of(series: str) -> str:
    return series.split(":", 1)[1] if ":" in series else series


def _facets(variant: str) -> dict[str, str]:
    parts = variant.rsplit("-", 3)
    if len(parts) != 4:
        return {"model": variant, "dtype": "", "attention": "", "padding": ""}
    return dict(zip(("model", "dtype", "attention", "padding"), parts, strict=False))


def _chart(s: Series, run_index: dict[int, int], statuses: dict[tuple[int, str], str], changes: list[Change]):
    """One chart of this page's tier: the points of runs of other tiers (the same variant id in
    two matrices) are left to their own page."""
    keep = sorted((i for i, r in enumerate(s.runs) if r.pk in run_index), key=lambda i: run_index[s.runs[i].pk])
    runs, values = [s.runs[i] for i in keep], [s.values[i] for i in keep]
    busy = [bool(s.busy[i]) if s.busy else False for i in keep]
    x = [run_index[r.pk] for r in runs]  # ascending: the time axis needs its x in order
    if len({f"{v:.9g}" for v in values}) == 1 and not any(c.run.pk in run_index for c in changes):
        # Deterministic series (work counts, fp32 log-loss) would draw a flat line that takes
        # the page: one line of text says the same, until the value moves.
        return {
            "metric": s.key.metric,
            "unit": UNITS[s.key.metric],
            "scope": s.key.scope,
            "folded": {"value": _round(values[0]), "since": runs[0].time[:19], "runs": len(runs)},
        }
    consecutive = x == list(range(x[0], x[0] + len(x)))  # most series: one value per run, [first, count]
    return {
        "metric": s.key.metric,
        "unit": UNITS[s.key.metric],
        "scope": s.key.scope,
        "x": [x[0], len(x)] if consecutive else x,
        "xr": consecutive,
        "y": [_round(v) for v in values],
        "s": "".join(
            "b" if b else STATUS.get(statuses.get((r.pk, s.key.series), ""), "u")
            for r, b in zip(runs, busy, strict=True)
        ),
        "changes": [
            {
                "i": run_index[c.run.pk],
                "id": c.change_id,
                "ratio": round(c.ratio, 4),
                "ci": [round(c.low, 4), round(c.high, 4)],
                "p": float(f"{c.p_value:.2g}"),
                "regression": c.regression,
                "acked": c.acked.reason if c.acked else None,
                "label": "; ".join(c.what_changed[:3]) or "nothing recorded changed",
            }
            for c in changes
            if c.run.pk in run_index
        ],
    }


def tier_data(
    tier: str,
    runs: Sequence[StoredRun],
    series: Sequence[Series],
    changes: Sequence[Change],
    statuses: dict[tuple[int, str], str],
) -> dict[str, Any]:
    mine = sorted((r for r in runs if r.tier == tier and r.kind != "compare"), key=lambda r: (_epoch(r.time), r.pk))
    run_index = {r.pk: i for i, r in enumerate(mine)}
    by_key: dict[Any, list[Change]] = defaultdict(list)
    for c in changes:
        by_key[c.key].append(c)
    variants: dict[str, dict[str, Any]] = {}
    for s in series:
        if s.key.metric not in SHOWN or not any(r.pk in run_index for r in s.runs):
            continue
        entry = variants.setdefault(
            s.key.series, {"id": s.key.series, **_facets(_variant_of(s.key.series)), "charts": []}
        )
        entry["charts"].append(_chart(s, run_index, statuses, by_key[s.key]))
    for v in variants.values():
        v["charts"].sort(key=lambda c: (SHOWN.index(c["metric"]), c["scope"]))
    return {
        "tier": tier,
        "runs": [[r.time[:19], r.commit[:12], r.machine_key, r.kind, _epoch(r.time), _versions(r)] for r in mine],
        "variants": [variants[k] for k in sorted(variants, key=lambda k: (":" in k, k))],  # bounds last
    }


GENERATOR = "perfsuite history html"
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def embedded_json(data: Any) -> str:
    """JSON that stays data inside <script type="application/json">: with <, > and & escaped no
    text (`</script>`, `<!--<script>`) can end or reopen the element, and JSON.parse reads the
    same values back."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).translate(_SCRIPT_SAFE)


def _page(title: str, kind: str, data: dict[str, Any], nav: str) -> str:
    payload = embedded_json(data)
    css = "\n".join((ASSETS / name).read_text(encoding="utf-8") for name in ("vendor/uPlot.min.css", "dashboard.css"))
    js = "\n".join((ASSETS / name).read_text(encoding="utf-8") for name in ("vendor/uPlot.iife.min.js", "dashboard.js"))
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="{GENERATOR}">'
        f"<title>{html.escape(title)}</title>"
        f'<style>{css}</style></head>\n<body data-page="{kind}">\n<nav>{nav}</nav>\n'
        f'<h1>{html.escape(title)}</h1>\n<div id="filters"></div><div id="summary"></div><div id="charts"></div>'
        f'<div id="tooltip" hidden></div>\n<script id="data" type="application/json">{payload}</script>\n'
        f"<script>{js}</script>\n</body></html>\n"
    )


def is_dashboard(folder: Path) -> bool:
    index = folder / "index.html"
    try:
        head = index.read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return False
    return f'content="{GENERATOR}"' in head or "<title>perfsuite history</title>" in head


def check_out(out: Path) -> None:
    if not str(out).strip():
        raise ValueError("the dashboard's folder is empty text: name a folder, e.g. reports/history-site")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: a file, not a folder (the dashboard's pages go in it)")
    if out.is_dir() and any(out.iterdir()) and not is_dashboard(out):
        raise ValueError(
            f"{out}: holds other files and is not a perfsuite dashboard; name a new or empty folder "
            "(an earlier dashboard is replaced)"
        )


@contextlib.contextmanager
def _writing(out: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise ValueError(f"{out}: cannot write the dashboard there ({exc.strerror or exc})") from None


def write_dashboard(
    out: Path,
    runs: Sequence[StoredRun],
    series: Sequence[Series],
    changes: Sequence[Change],
    creeps: Sequence[Creep],
    statuses: dict[tuple[int, str], str],
) -> list[Path]:
    """index.html (tiers, alerts), one page per tier, compare.html; returns the pages written.
    `out` is a new or empty folder, or an earlier dashboard (replaced); any other folder is
    refused (ValueError), so a typo never overwrites someone's index.html."""
    out = Path(out)
    check_out(out)
    with _writing(out):
        tiers = sorted({r.tier for r in runs if r.kind != "compare"})
        pages = {t: f"tier-{''.join(ch if ch.isalnum() or ch in '-_' else '_' for ch in t)}.html" for t in tiers}
        nav = " | ".join(
            [
                '<a href="index.html">overview</a>',
                *(f'<a href="{p}">{html.escape(t)}</a>' for t, p in pages.items()),
                '<a href="compare.html">compare chain</a>',
            ]
        )
        written = []
        for tier, page in pages.items():
            data = tier_data(tier, runs, series, changes, statuses)
            written.append(atomic_write_text(out / page, _page(f"perfsuite history: {tier} tier", "tier", data, nav)))
        chain = {
            "chains": [c.to_json() for c in creeps],
            "threshold": creeps[0].threshold if creeps else 0.05,
        }
        written.append(
            atomic_write_text(out / "compare.html", _page("perfsuite history: compare chain", "chain", chain, nav))
        )
        overview = {
            "tiers": [
                {
                    "tier": t,
                    "page": pages[t],
                    "runs": sum(1 for r in runs if r.tier == t and r.kind != "compare"),
                    "last": max((r.time for r in runs if r.tier == t), default=""),
                }
                for t in tiers
            ],
            "alerts": [c.to_json() for c in changes if c.alerting],
            "creep": [c.describe() for c in creeps if c.flagged],
            "pages": pages,
        }
        written.append(atomic_write_text(out / "index.html", _page("perfsuite history", "index", overview, nav)))
        return written
