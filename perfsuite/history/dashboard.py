"""`perfsuite history html OUT`: a static site that works offline - no CDN, no server. The data
is embedded in each page as JSON and drawn as SVG by a small bundled script (dashboard.js):
one page per tier with every variant's series, change points marked and labelled with what
changed, acknowledged ones grey, verdict colours, hover details, filters by model, dtype,
attention and padding; and a page for the compare chain."""

from __future__ import annotations

import contextlib
import html
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from perfsuite.fileio import atomic_write_text
from perfsuite.history.creep import Creep
from perfsuite.history.series import Change, Series
from perfsuite.history.store import StoredRun

ASSETS = Path(__file__).with_name("assets")
SHOWN = ("latency_ms", "tokens_per_s", "peak_mib", "rss_mib", "log_loss", "lm_log_loss", "processed_tokens", "ratio")
STATUS = {"pass": "p", "fail": "f", "skip": "s", "recorded": "r", "slower": "f", "same": "p", "faster": "p"}


def _round(value: float) -> float | int:
    """Four significant digits - a chart's pixel is coarser - and no ".0" on whole numbers."""
    rounded = float(f"{value:.4g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


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
    keep = [i for i, r in enumerate(s.runs) if r.pk in run_index]
    runs, values = [s.runs[i] for i in keep], [s.values[i] for i in keep]
    busy = [bool(s.busy[i]) if s.busy else False for i in keep]
    x = [run_index[r.pk] for r in runs]
    consecutive = x == list(range(x[0], x[0] + len(x)))  # most series: one value per run, [first, count]
    return {
        "metric": s.key.metric,
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
    mine = [r for r in runs if r.tier == tier and r.kind != "compare"]
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
        "runs": [[r.time[:19], r.commit[:12], r.machine_key, r.kind] for r in mine],
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
    css = (ASSETS / "dashboard.css").read_text(encoding="utf-8")
    js = (ASSETS / "dashboard.js").read_text(encoding="utf-8")
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
