"""`perfsuite history show`: a variant's series in the terminal - one sparkline per figure with
its change points marked, and its latest runs as a table."""

from __future__ import annotations

import math
from collections.abc import Sequence

from perfsuite.history.runs import PORTABLE
from perfsuite.history.series import Change, Series

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], marks: Sequence[int] = ()) -> str:
    """One bar per value, scaled between the series' min and max; `marks` (indices) become '|'
    before the bar, where a change point starts."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    out = []
    for i, v in enumerate(values):
        if i in marks:
            out.append("|")
        level = 0 if hi == lo or not math.isfinite(v) else round((v - lo) / (hi - lo) * (len(BARS) - 1))
        out.append(BARS[level])
    return "".join(out)


def _fmt(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def render_series(series: Sequence[Series], changes: Sequence[Change], width: int = 60) -> str:
    lines = []
    for variant in sorted({s.key.series for s in series}):
        lines.append(variant)
        for s in (s for s in series if s.key.series == variant):
            start = max(0, len(s.values) - width)
            mine = [c for c in changes if c.key == s.key]
            marks = [c.index - start for c in mine if c.index >= start]
            where = "any machine" if s.key.scope == PORTABLE else s.key.scope
            lines.append(
                f"  {s.key.metric:16s} {sparkline(s.values[start:], marks):{width + len(marks)}s} "
                f"last {_fmt(s.values[-1])}  ({len(s.values)} runs, {where})"
            )
            for c in mine:
                lines.append(f"    {c.describe()}")
        latest = [s for s in series if s.key.series == variant and s.key.metric in ("latency_ms", "ratio")]
        if latest:
            s = latest[0]
            lines.append(f"  latest runs ({s.key.metric}):")
            for run, value in list(zip(s.runs, s.values, strict=False))[-8:]:
                lines.append(f"    {run.time[:19]}  {run.commit[:12]:12s}  {run.kind:10s}  {_fmt(value)}")
    return "\n".join(lines)
