"""`perfsuite compare`'s report: the terminal table, compare.json and compare.md (for `$GITHUB_STEP_SUMMARY`)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from perfsuite.compare.protocol import CompareSettings, Side, VariantComparison
from perfsuite.fileio import console_width, finite_or_none
from perfsuite.report import markdown

HEADERS = (
    "variant",
    "verdict",
    "B/A time [95% CI]",
    "pairs",
    "catches",
    "work",
    "max |dp|",
    "agree",
    "log-loss A -> B",
    "why",
    "s",
)


def cells(c: VariantComparison) -> list[str]:
    e = c.estimate
    ratio = f"{e.ratio:.3f}x [{e.low:.3f}, {e.high:.3f}]" if e and math.isfinite(e.high) else "-"
    p = c.predictions
    ll = f"{p['log_loss_a']:.4f} -> {p['log_loss_b']:.4f}" if "log_loss_a" in p else "-"
    return [
        c.variant.id,
        c.verdict,
        ratio,
        f"{len(c.pairs)} ({len(c.blocks)} blocks)" if c.blocks else "0",
        f"{c.detectable:.1%}" if math.isfinite(c.detectable) else "-",
        "same" if not c.work_diff and c.pairs else ("; ".join(c.work_diff) or "-"),
        f"{p['max_abs_dp']:.2e}" if "max_abs_dp" in p else "-",
        f"{p['argmax_agreement']:.3f}" if "argmax_agreement" in p else "-",
        ll,
        c.reason,
        f"{c.seconds:.0f}",
    ]


def to_json(results: Sequence[VariantComparison], sides: Sequence[Side], versions, settings: CompareSettings, run=None):
    """`run`: the run's metadata (report.metadata); with a `--base` side, `base_commit` names B."""
    return {
        **({"run": run} if run else {}),
        "sides": {s.name: {"argv": list(s.argv), "description": s.description, "revision": s.revision} for s in sides},
        "versions": versions,
        "settings": settings.__dict__,
        "variants": [
            {
                "variant": c.variant.id,
                "verdict": c.verdict,
                "reason": c.reason,
                "estimate": finite_or_none(c.estimate.__dict__) if c.estimate and c.estimate.high < math.inf else None,
                "pairs": [[list(a), list(b)] for a, b in c.pairs],
                "blocks": [len(block) for block in c.blocks],  # pairs per fresh-zygote block, in order
                "components": finite_or_none(c.components),
                "detectable": c.detectable if math.isfinite(c.detectable) else None,
                "stopped": c.stopped,
                "other_cpu": c.other_cpu_share,
                "work_diff": c.work_diff,
                "predictions": c.predictions,
                "prediction_problems": c.prediction_problems,
                "seconds": round(c.seconds, 1),
            }
            for c in results
        ],
    }


def to_markdown(results: Sequence[VariantComparison], sides: Sequence[Side], settings: CompareSettings) -> str:
    a, b = sides
    lines = [
        "### perfsuite compare",
        "",
        f"A: {a.description}  ",
        f"B: {b.description}  ",
        f"B/A pass-time ratio, {settings.confidence:.0%} t interval over blocks of process pairs (each block "
        f"from fresh zygotes); slower/faster: the whole interval beyond {settings.min_effect:.0%}, same: within "
        f"{settings.max_slowdown:.0%}; catches: the smallest slowdown this run flags 4 times in 5.",
        "",
        *markdown.table(HEADERS, [cells(c) for c in results]),
    ]
    return "\n".join(lines) + "\n"


def render(results: Sequence[VariantComparison], sides: Sequence[Side], settings: CompareSettings) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="perfsuite compare: B / A, interleaved", header_style="bold")
    for header in HEADERS:
        table.add_column(header, overflow="fold", no_wrap=header == "variant")
    for c in results:
        table.add_row(*(escape(x) for x in cells(c)))
    console = Console(width=console_width(), record=True)
    with console.capture() as cap:
        console.print(f"A: {escape(sides[0].description)}")
        console.print(f"B: {escape(sides[1].description)}")
        console.print(table)
    return cap.get()


def write_reports(results, sides, versions, settings: CompareSettings, folder: Path, run=None) -> Path:
    from perfsuite.fileio import atomic_write_text

    data = to_json(results, sides, versions, settings, run)
    atomic_write_text(folder / "compare.json", json.dumps(data, indent=2, allow_nan=False) + "\n")
    atomic_write_text(folder / "compare.md", to_markdown(results, sides, settings))
    return folder
