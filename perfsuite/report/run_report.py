"""Reports: the terminal table (rich), a JSON file for machines, Markdown for PRs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfsuite.device.environment import PROVENANCE
from perfsuite.fileio import atomic_write_text, console_width, finite_or_none
from perfsuite.report import markdown
from perfsuite.report.metadata import non_finite, read_report_json, run_metadata
from perfsuite.report.outcomes import Outcome, PairOutcome

STATUS_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow", "recorded": "cyan"}
HEADERS = (
    "variant",
    "verdict",
    "median ms",
    "vs base",
    "tok/s",
    "proc/real",
    "log-loss",
    "acc",
    "peak MiB",
    "judged here",
    "why / notes",
)


def _ratio_to_baseline(outcome: Outcome) -> str:
    for check in outcome.verdict.checks:
        if check.kind == "latency" and check.ratio is not None:
            return f"{check.ratio:.2f}x"
    return "-"


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def row_cells(outcome: Outcome) -> list[str]:
    m = outcome.measurement
    v = outcome.verdict
    why = v.reason or "; ".join(c.describe() for c in v.failed)
    if outcome.previous is not None and m is not None:
        old = outcome.previous.latency.median_s
        why = f"was {old * 1000:.1f} ms, now {m.latency.median_s * 1000:.1f} ms"
    why = "; ".join(x for x in [why, *outcome.notes, *v.environment_changes] if x)
    judged = v.judged_summary() or "-"
    if m is None:
        return [outcome.variant.id, v.status, "-", "-", "-", "-", "-", "-", "-", judged, why]
    lat, work, q, mem = m.latency, m.work, m.quality, m.memory
    spread = f" ±{lat.spread * 50:.0f}%" if lat.spread and not math.isnan(lat.spread) else ""
    return [
        outcome.variant.id,
        v.status,
        f"{lat.median_s * 1000:.1f}{spread}",
        _ratio_to_baseline(outcome),
        _fmt(lat.tokens_per_s, ",.0f"),
        _fmt(work.padding_overhead, ".2f"),
        _fmt(q.log_loss, ".4f") + (f" (LM {q.lm_log_loss:.4f})" if q.lm_log_loss is not None else ""),
        _fmt(q.accuracy, ".3f"),
        _fmt(mem.peak_bytes / 2**20 if mem.peak_bytes is not None else None, ".0f"),
        judged,
        why,
    ]


def counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    out: dict[str, int] = {}
    for o in outcomes:
        out[o.verdict.status] = out.get(o.verdict.status, 0) + 1
    return out


def _rich_table(
    title: str, headers: Sequence[str], rows: Sequence[tuple[str, list[str]]], footer: Sequence[str], width: int | None
) -> str:
    """A table of (status, cells) rows as text; the verdict (second cell) coloured by status."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold", no_wrap=header == "variant")
    for status, cells in rows:
        style = STATUS_STYLE.get(status, "")
        # cells are text, not markup: "[latency]" labels and "[/...]" in messages stay as written
        text = [escape(c) for c in cells]
        table.add_row(text[0], f"[{style}]{text[1]}[/{style}]" if style else text[1], *text[2:])
    console = Console(width=width or console_width(), record=True, force_terminal=None)
    with console.capture() as cap:
        console.print(table)
        for line in footer:
            console.print(line, markup=False)
    return cap.get()


def _tally(outcomes: Sequence[Outcome]) -> str:
    counted = ", ".join(f"{n} {k}" for k, n in sorted(counts(outcomes).items()))
    return f"{len(outcomes)} variants: {counted}"


def unjudged(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Variants that ran but had nothing judged beyond the guard and the in-run reference."""
    return [
        o
        for o in outcomes
        if o.measurement is not None and o.verdict.status != "recorded" and not o.verdict.judged_beyond_guard
    ]


def coverage_line(outcomes: Sequence[Outcome], machine_key: str) -> str | None:
    """The one loud line a run ends with when some variant was judged on nothing stored."""
    bare = unjudged(outcomes)
    if not bare:
        return None
    return (
        f"WARNING: {len(bare)} of {len(outcomes)} variants ran with nothing judged beyond the guard "
        f"(no portable or machine record usable on {machine_key}, e.g. {bare[0].variant.id}); "
        "--perfsuite-strict makes this a failure"
    )


def render_table(
    outcomes: Sequence[Outcome], title: str = "perfsuite", width: int | None = None, machine_key: str = "this machine"
) -> str:
    """The session table as text (rich renders colours when the terminal supports them)."""
    footer = (
        _tally(outcomes),
        *filter(None, [coverage_line(outcomes, machine_key)]),
        "proc/real = processed tokens (padding included) / real tokens; 1.00 means no padding computed. "
        "vs base = median / this machine's baseline median.",
    )
    return _rich_table(title, HEADERS, [(o.verdict.status, row_cells(o)) for o in outcomes], footer, width)


RELATIVE_HEADERS = (
    "relative bound",
    "verdict",
    "variant / reference",
    "median ratio [CI]",
    "band",
    "cost model",
    "why",
)


def relative_cells(outcome: PairOutcome) -> list[str]:
    b, v, e = outcome.bound, outcome.verdict, outcome.estimate
    ratio = f"{e.ratio:.3f}x [{e.low:.3f}, {e.high:.3f}]" if e else "-"
    predicted = "-"
    if outcome.predicted_ratio is not None and e is not None:
        predicted = f"{outcome.predicted_ratio:.3f}x ({outcome.predicted_ratio / e.ratio - 1:+.1%})"
    why = v.reason or "; ".join(c.describe() for c in v.failed) or b.reason
    why = "; ".join(x for x in [why, *outcome.notes] if x)
    return [b.name, v.status, f"{b.variant.id} / {b.reference.id}", ratio, b.band(), predicted, why]


def render_relative_table(
    outcomes: Sequence[PairOutcome], title: str = "relative bounds", width: int | None = None
) -> str:
    """Relative bounds as text: each pair's interleaved median ratio and its interval."""
    footer = (
        "ratio = variant / reference pass time, timed interleaved in this run; "
        "a bound fails only when its whole interval lies outside the band.",
    )
    rows = [(o.verdict.status, relative_cells(o)) for o in outcomes]
    return _rich_table(title, RELATIVE_HEADERS, rows, footer, width)


def relative_json(outcomes: Sequence[PairOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "bound": o.bound.name,
            "variant": o.bound.variant.id,
            "reference": o.bound.reference.id,
            "band": [o.bound.min_ratio, o.bound.max_ratio],
            "status": o.verdict.status,
            "reason": o.verdict.reason,
            "estimate": o.estimate.__dict__ if o.estimate else None,
            "checks": [c.__dict__ for c in o.verdict.checks],
            "notes": o.notes,
            "predicted_ratio": o.predicted_ratio,
            "samples_s": o.samples_s,
            "cells": relative_cells(o),
        }
        for o in outcomes
    ]


def to_json(
    outcomes: Sequence[Outcome], machine_key: str, relative: Sequence[PairOutcome] = (), shard: str | None = None
) -> dict[str, Any]:
    return {
        "machine_key": machine_key,
        "shard": shard,
        "counts": counts(outcomes),
        "unjudged": [o.variant.id for o in unjudged(outcomes)],
        "relative": relative_json(relative),
        "variants": [
            {
                "variant": o.variant.id,
                "status": o.verdict.status,
                "reason": o.verdict.reason,
                "checks": [c.__dict__ for c in o.verdict.checks],
                "judged": {c.kind: (True if c.judged else c.why) for c in o.verdict.coverage},
                "baseline": o.verdict.baseline_path,
                "environment_changes": o.verdict.environment_changes,
                "notes": o.notes,
                "measurement": o.measurement.to_dict() if o.measurement else None,
                "cells": row_cells(o),
            }
            for o in outcomes
        ],
    }


def to_markdown(outcomes: Sequence[Outcome], machine_key: str, relative: Sequence[PairOutcome] = ()) -> str:
    lines = [f"### perfsuite on `{machine_key}`", "", *markdown.table(HEADERS, [row_cells(o) for o in outcomes])]
    lines += ["", _tally(outcomes)]
    warning = coverage_line(outcomes, machine_key)
    if warning:
        lines += ["", f"**{warning}**"]
    if relative:
        lines += ["", "#### Relative bounds (interleaved in this run)", ""]
        lines += markdown.table(RELATIVE_HEADERS, [relative_cells(o) for o in relative])
    return "\n".join(lines) + "\n"


def write_reports(
    outcomes: Sequence[Outcome],
    machine_key: str,
    folder: str | Path,
    relative: Sequence[PairOutcome] = (),
    predicted_s: dict[str, float] | None = None,
    shard: str | None = None,
    run: dict[str, Any] | None = None,
) -> Path:
    """report.json, report.md and the PNG plots into `folder`; returns the folder. `run` is the
    run's own metadata (report.metadata), so the file alone is a history record."""
    from perfsuite.report.plots import write_plots

    folder = Path(folder)
    data = {**({"run": run} if run else {}), **to_json(outcomes, machine_key, relative, shard)}
    data["plots"] = [p.name for p in write_plots(outcomes, relative, folder, predicted_s)]
    data["predicted_s"] = predicted_s or {}
    # strict JSON: NaN/inf (a median of no samples) become null, not tokens other parsers reject
    text = json.dumps(finite_or_none(data), indent=2, default=str, allow_nan=False)
    atomic_write_text(folder / "report.json", text + "\n")
    atomic_write_text(folder / "report.md", to_markdown(outcomes, machine_key, relative))
    return folder


@dataclass
class RunReport:
    """One tier run as the plugin and the CLI both show and keep it: render, then write."""

    tier: str
    machine_key: str
    outcomes: list[Outcome]
    pairs: list[PairOutcome] = field(default_factory=list)
    preamble: list[str] = field(default_factory=list)  # what was read, token lengths
    predicted_s: dict[str, float] = field(default_factory=dict)
    shard: str | None = None
    footer: list[str] = field(default_factory=list)  # e.g. where a rebaseline wrote
    kind: str = "run"  # or rebaseline
    portable_quality_dtypes: tuple[str, ...] = ()
    run: dict[str, Any] = field(default_factory=dict)  # the metadata `write` put into report.json

    @property
    def failed(self) -> bool:
        return any(v.status == "fail" for v in [*(o.verdict for o in self.outcomes), *(p.verdict for p in self.pairs)])

    @property
    def warning(self) -> str | None:
        return coverage_line(self.outcomes, self.machine_key)

    def render(self, width: int | None = None) -> str:
        parts = [line + "\n" for line in self.preamble]
        if self.outcomes:
            title = f"perfsuite {self.tier} on {self.machine_key}"
            parts.append(render_table(self.outcomes, title, width, machine_key=self.machine_key))
        if self.pairs:
            parts.append(render_relative_table(self.pairs, f"perfsuite {self.tier}: relative bounds", width))
        return "".join(parts)

    def write(self, folder: str | Path) -> Path:
        measured = next((o.measurement for o in self.outcomes if o.measurement is not None), None)
        # the run's versions and commit; a variant's own provenance (checkpoint, threads) stays in its entry
        env = {k: v for k, v in measured.environment.items() if k not in PROVENANCE} if measured else None
        pqd = self.portable_quality_dtypes
        self.run = self.run or run_metadata(self.kind, self.tier, self.machine_key, env, pqd, shard=self.shard)
        return write_reports(
            self.outcomes, self.machine_key, folder, self.pairs, self.predicted_s, self.shard, self.run
        )


def model_ratios(outcomes: Sequence[Outcome], model_a: str, model_b: str) -> list[tuple[str, float, float, float]]:
    """(dtype-attention-padding, median ms of A, of B, A/B) for each cell both models ran."""
    medians: dict[tuple[str, str], float] = {}
    for o in outcomes:
        if o.measurement is not None:
            v = o.variant
            medians[(v.model, f"{v.dtype}-{v.attention}-{v.padding}")] = o.measurement.latency.median_s
    rows = []
    for (model, cell), a in medians.items():
        b = medians.get((model_b, cell))
        if model == model_a and b:
            rows.append((cell, a * 1000, b * 1000, a / b))
    return rows


def render_ratios(outcomes: Sequence[Outcome], model_a: str, model_b: str) -> str:
    rows = model_ratios(outcomes, model_a, model_b)
    if not rows:
        return f"no cell where both {model_a} and {model_b} ran"
    lines = [f"{model_a} / {model_b} latency (same dtype, attention, padding):"]
    lines += [f"  {cell:32s} {a:9.1f} ms / {b:9.1f} ms = {r:.2f}x" for cell, a, b, r in rows]
    return "\n".join(lines)


def _read_report(path: Path) -> dict[str, Any]:
    """A shard's report.json, checked field by field: ValueError naming the file and field otherwise."""
    data = read_report_json(path, "report.json")
    if not isinstance(data.get("relative", []), list):
        raise ValueError(f"{path}: field 'relative' must be a list")
    if not isinstance(data.get("machine_key", ""), str):
        raise ValueError(f"{path}: field 'machine_key' must be a string")
    entries = [("variants", i, e) for i, e in enumerate(data["variants"])]
    entries += [("relative", i, e) for i, e in enumerate(data.get("relative", []))]
    for table, i, entry in entries:
        where = f"{path}: {table}[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("cells"), list):
            raise ValueError(f"{where} has no 'cells' (written by a perfsuite before merge existed)")
        for name in ("variant", "status", *(("bound",) if table == "relative" else ())):
            if not isinstance(entry.get(name), str):
                got = "missing" if name not in entry else f"a {type(entry[name]).__name__}"
                raise ValueError(f"{where}.{name} must be a string ({got})")
        if not all(isinstance(cell, str) for cell in entry["cells"]):
            raise ValueError(f"{where}.cells must be strings")
        bad = non_finite(entry, f"{table}[{i}]")
        if bad:
            raise ValueError(f"{path}: field {bad} is NaN or Infinity, which report.json never holds (strict JSON)")
    return data


def merge_reports(paths: Sequence[Path], folder: str | Path) -> tuple[str, Path, bool]:
    """Join shards' report.json files into one table, report.json and report.md.

    Returns the rendered text, the folder, and whether any variant or bound failed. A variant
    or bound reported by two shards is an error naming both files.
    """
    variants: dict[str, tuple[dict[str, Any], str, Path]] = {}
    relative: dict[str, tuple[dict[str, Any], str, Path]] = {}
    for path in paths:
        data = _read_report(path)
        key = str(data.get("machine_key", "?"))
        for table, entries, name in (
            (variants, data["variants"], "variant"),
            (relative, data.get("relative", []), "bound"),
        ):
            for entry in entries:
                ident = entry["variant"] if name == "variant" else f"{entry['bound']}:{entry['variant']}"
                if ident in table:
                    raise ValueError(f"{name} {ident} is in both {table[ident][2]} and {path}")
                table[ident] = (entry, key, Path(path))
    headers = (*HEADERS, "machine")
    rows = [(e["status"], [*e["cells"], key]) for e, key, _ in variants.values()]
    rel_rows = [(e["status"], [*e["cells"], key]) for e, key, _ in relative.values()]
    tally: dict[str, int] = {}
    for status, _ in rows:
        tally[status] = tally.get(status, 0) + 1
    summary = f"{len(rows)} variants from {len(paths)} shards: " + ", ".join(
        f"{n} {k}" for k, n in sorted(tally.items())
    )
    text = _rich_table("perfsuite merged", headers, rows, (summary,), None)
    if rel_rows:
        text += _rich_table("relative bounds", (*RELATIVE_HEADERS, "machine"), rel_rows, (), None)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder}: a file, not a folder (the merged report.json and report.md go in it)")
    merged = {
        "merged_from": [str(p) for p in paths],
        "counts": tally,
        "variants": [{**e, "machine_key": key} for e, key, _ in variants.values()],
        "relative": [{**e, "machine_key": key} for e, key, _ in relative.values()],
    }
    atomic_write_text(folder / "report.json", json.dumps(merged, indent=2, allow_nan=False) + "\n")
    md = ["### perfsuite (merged shards)", "", *markdown.table(headers, [c for _, c in rows]), "", summary]
    if rel_rows:
        md += ["", "#### Relative bounds (interleaved, each on its shard's machine)", ""]
        md += markdown.table((*RELATIVE_HEADERS, "machine"), [c for _, c in rel_rows])
    atomic_write_text(folder / "report.md", "\n".join(md) + "\n")
    failed = any(status == "fail" for status, _ in [*rows, *rel_rows])
    return text, folder, failed
