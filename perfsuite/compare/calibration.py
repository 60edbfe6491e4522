"""How well `perfsuite compare` is calibrated, measured: rows of the compare selftest, the
coverage of its intervals in A/A runs, detection per injected slowdown, and the busy loops
an A/A run may be measured beside.

Coverage is what makes an interval quotable: over A/A comparisons (B is the same code,
started differently by nature) the 95% interval must contain 1.0 in about 95% of them. Each
row also carries what the two-level bootstrap used before 2026-12-01 (process pairs, then
passes; no zygote level) gives on the same timings, so the table shows both on one set of data.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from perfsuite.compare.protocol import VariantComparison
from perfsuite.fileio import finite_or_none
from perfsuite.stats.intervals import nested_ratio_interval

BUSY_LOOP = "while True: pass"


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[list[subprocess.Popen]]:
    """`count` processes that spin a core each while the block runs (one, beside a 2-core VM's
    two timed processes, is the issue's "beside one busy loop"); killed after, whatever happens."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def row(scenario: str, run: int, result: VariantComparison, touched: bool, busy: int) -> dict[str, Any]:
    """One comparison as the selftest keeps it: verdict, interval, its width in blocks and the
    old two-level bootstrap's interval on the same pairs, variance components, detectable size."""
    e = result.estimate
    finite = e is not None and math.isfinite(e.high)
    old = nested_ratio_interval(result.pairs) if len(result.pairs) >= 2 else None
    return {
        "scenario": scenario,
        "run": run,
        "variant": result.variant.id,
        "touched": touched,
        "busy_loops": busy,
        "verdict": result.verdict,
        "ratio": e.ratio if e else None,
        "low": e.low if finite else None,
        "high": e.high if finite else None,
        "covers_1": (e.low <= 1.0 <= e.high) if finite else None,
        "old_low": old.low if old else None,
        "old_high": old.high if old else None,
        "old_covers_1": (old.low <= 1.0 <= old.high) if old else None,
        "blocks": len(result.blocks),
        "pairs": len(result.pairs),
        "components": finite_or_none(result.components),
        "detectable": result.detectable if math.isfinite(result.detectable) else None,
        "stopped": result.stopped,
        "other_cpu": result.other_cpu_share,
        "seconds": round(result.seconds, 1),
        "timings": [[[list(a), list(b)] for a, b in block] for block in result.blocks],
    }


def coverage(rows: list[dict[str, Any]], key: str = "covers_1") -> tuple[int, int]:
    """(intervals containing 1.0, intervals) over the A/A rows (untouched variants in injected
    runs count too: B leaves them alone)."""
    judged = [r[key] for r in rows if not r["touched"] and r.get(key) is not None]
    return sum(judged), len(judged)


def render(rows: list[dict[str, Any]]) -> str:
    """Per scenario, variant and load: the verdicts, mean pairs, seconds and detectable size;
    then the coverage of both intervals."""
    groups: dict[tuple[str, str, bool, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["variant"], r["touched"], r["busy_loops"]), []).append(r)
    lines = [
        "scenario | variant | B changed | busy loops | runs | slower | same | faster | undecided | "
        "B/A read | pairs (mean) | s per run (max) | catches (median)"
    ]
    for (scenario, variant, touched, busy), rs in groups.items():
        n = len(rs)
        tally = {k: sum(r["verdict"] == k for r in rs) for k in ("slower", "same", "faster", "undecided")}
        ratios = [r["ratio"] for r in rs if r["ratio"]]
        read = f"{min(ratios):.3f}-{max(ratios):.3f}" if ratios else "-"
        catches = sorted(r["detectable"] for r in rs if r["detectable"] is not None)
        catch = f"{catches[len(catches) // 2]:.1%}" if catches else "-"
        seconds = [r["seconds"] for r in rs]
        lines.append(
            f"{scenario} | {variant} | {'yes' if touched else 'no'} | {busy} | {n} | {tally['slower']} | "
            f"{tally['same']} | {tally['faster']} | {tally['undecided']} | {read} | "
            f"{sum(r['pairs'] for r in rs) / n:.1f} | {sum(seconds) / n:.0f} ({max(seconds):.0f}) | {catch}"
        )
    covered, total = coverage(rows)
    old, old_total = coverage(rows, "old_covers_1")
    if total:
        lines.append(
            f"coverage: the 95% interval contains 1.0 in {covered} of {total} unchanged comparisons "
            f"({covered / total:.0%}); the two-level bootstrap (pairs, passes) on the same timings: "
            f"{old} of {old_total} ({old / max(old_total, 1):.0%})"
        )
    return "\n".join(lines)
