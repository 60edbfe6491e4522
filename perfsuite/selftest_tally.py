"""The selftest's tallies and tables: per scenario, alarms on what was left alone and catches on
what was changed, per kind of bound, and the latency decision beside pytest-benchmark's gate."""

from __future__ import annotations

import statistics
from typing import Any

# The peer a user would pick instead: pytest-benchmark's gate as its docs suggest
# (`--benchmark-compare --benchmark-compare-fail=median:10%`), applied by its own code to the
# same timings (pytest_benchmark.utils.parse_compare_fail)
PEER_GATE = "median:10%"


def _touched(result: dict[str, Any], scenario: dict[str, Any]) -> bool:
    """Did the scenario's injection change what this result measured?"""
    ids = [result["id"], *result.get("involves", ())]
    if scenario["break_padding"]:  # every length-sorted variant is broken
        return any(i.endswith("-sorted") for i in ids)
    return scenario["target"] is not None and scenario["target"] in ids


def tally(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per scenario: alarm rates per bound kind (A/A, and on uninvolved checks) and catch rates."""
    out: dict[str, Any] = {}
    for run in runs:
        sc = run["scenario"]
        entry = out.setdefault(sc["name"], {"runs": 0, "checks": {}, "alarms": {}, "runs_with_alarm": {}, "caught": {}})
        entry["runs"] += 1
        hit = [r for r in run["results"] if _touched(r, sc)]
        alarmed: set[str] = set()
        for r in (r for r in run["results"] if not _touched(r, sc)):  # any failure here is a false alarm
            for kind in r["kinds"]:
                entry["checks"][kind] = entry["checks"].get(kind, 0) + 1
            for kind in r["failed"]:
                entry["alarms"][kind] = entry["alarms"].get(kind, 0) + 1
                alarmed.add(kind)
        for kind in alarmed:
            entry["runs_with_alarm"][kind] = entry["runs_with_alarm"].get(kind, 0) + 1
        caught_by = {k for r in hit for k in r["failed"]}
        for kind in caught_by | ({"any"} if caught_by else set()):
            entry["caught"][kind] = entry["caught"].get(kind, 0) + 1
        _tally_latency(entry, run, sc)
    return out


def _tally_latency(entry: dict[str, Any], run: dict[str, Any], sc: dict[str, Any]) -> None:
    """The latency decision's pass / fail / undecided on the changed variants and on the others,
    the smallest slowdown each undecided one could have failed, pytest-benchmark's gate on the
    same timings, and what the extra processes cost."""
    for r in run["results"]:
        if r.get("latency") is None:
            continue
        side = "changed" if _touched(r, sc) else "unchanged"
        counts = entry.setdefault("latency", {}).setdefault(side, {"pass": 0, "fail": 0, "undecided": 0})
        counts[r["latency"]] += 1
        if r["latency"] == "undecided" and r.get("detectable") is not None:
            entry.setdefault("detectable", {}).setdefault(side, []).append(r["detectable"])
        if r.get("peer_fail") is not None:
            peer = entry.setdefault("peer", {}).setdefault(side, {"fail": 0, "of": 0})
            peer["fail"] += bool(r["peer_fail"])
            peer["of"] += 1
    if run.get("budget"):
        entry.setdefault("budget_s", []).append(run["budget"]["seconds"])


def render_latency(summary: dict[str, Any]) -> str:
    """One line per scenario: the latency decision beside pytest-benchmark's gate."""
    lines = []
    for name, e in summary.items():
        lat, peer = e.get("latency", {}), e.get("peer", {})
        parts = []
        for side in ("changed", "unchanged"):
            if side in lat:
                c = lat[side]
                part = f"{side}: {c['fail']} fail / {c['undecided']} undecided / {c['pass']} pass"
                detectable = e.get("detectable", {}).get(side)
                if detectable:
                    part += f" (undecided could fail beyond {statistics.median(detectable):.0%}, median)"
                if side in peer:
                    part += f"; {PEER_GATE} gate fails {peer[side]['fail']}/{peer[side]['of']}"
                parts.append(part)
        spent = e.get("budget_s")
        if spent:
            parts.append(f"extra processes {statistics.median(spent):.0f} s median, {max(spent):.0f} s most")
        lines.append(f"latency, {name}: " + "; ".join(parts))
    return "\n".join(lines)


def render(summary: dict[str, Any], machine: str, select: str) -> str:
    from rich.console import Console
    from rich.table import Table

    from perfsuite.fileio import console_width

    table = Table(title=f"perfsuite selftest on {machine} ({select})", header_style="bold")
    for header in (
        "scenario",
        "runs",
        "caught (any bound)",
        "caught by",
        "false alarms on untouched variants and pairs",
    ):
        table.add_column(header, overflow="fold")
    for name, e in summary.items():
        runs = e["runs"]
        injected = name != "A/A"
        caught = f"{e['caught'].get('any', 0)}/{runs}" if injected else "-"
        by = ", ".join(f"{k} {n}/{runs}" for k, n in sorted(e["caught"].items()) if k != "any") or "-"
        alarms = ", ".join(
            f"{k} {e['alarms'].get(k, 0)}/{e['checks'][k]} ({e['runs_with_alarm'].get(k, 0)}/{runs} runs)"
            for k in sorted(e["checks"])
        )
        table.add_row(name, str(runs), caught, by if injected else "-", alarms)
    console = Console(width=console_width(160), record=True)
    with console.capture() as cap:
        console.print(table)
    return cap.get()
