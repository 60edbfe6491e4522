"""Timing variants in fresh processes: what a latency record needs to know its own noise.

A variant's speed moves between processes (memory layout, thread placement, what ran before);
no timing inside one process can show that. So a rebaseline times each variant again in several
fresh processes (``process_medians``) and the record keeps their medians, and a run times the
variants its first timing left undecided in more fresh processes (``measure_fresh``, one
process for all of them), the context the record's medians came from (judge/latency.py).

Each process runs ``python -m perfsuite.cli.fresh REQUEST`` (the child needs the session, a
layer above this one) and answers one JSON line per variant on its stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

FRESH_CHILD = "perfsuite.cli.fresh"


def default_processes() -> str:
    """Fresh processes per variant in a rebaseline: 3, the fewest a spread is worth anything
    from; $PERFSUITE_PROCESSES overrides it (the unit tests set 0: they stub the processes)."""
    return os.environ.get("PERFSUITE_PROCESSES", "3")


PROCESSES_HELP = (
    "time each recorded variant again in this many fresh processes; the record keeps their medians, whose "
    "spread is the variant's noise in the latency decision (0: this run's timing alone, which latency "
    "cannot be judged against; default: $PERFSUITE_PROCESSES, else 3)"
)


def processes_count(text: str) -> int:
    """argparse/pytest type: 0 (off) or at least 2 fresh processes (one has no spread)."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--processes {text!r} is not a whole number") from None
    if value < 0 or value == 1:
        raise ValueError(f"--processes {value}: 0 (off) or at least 2 (a spread needs two processes)")
    return value


class FreshError(RuntimeError):
    """A fresh timing process failed; the message names the variant or the process."""


@dataclass(frozen=True)
class FreshRequest:
    """What a fresh process needs to time variants as the session would."""

    matrix: str  # a bundled tier's name or a TOML path
    baselines: str
    data: str | None = None
    workload: dict[str, int] = field(default_factory=dict)
    timeout_s: float = 1800.0


def measure_fresh(request: FreshRequest, variant_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One fresh process times each variant in turn, as the tier does: variant id -> its
    latency summary (samples, probe samples, other processes' CPU share). FreshError names
    what failed."""
    payload = json.dumps({**asdict(request), "variants": list(variant_ids)})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", FRESH_CHILD, payload],
            capture_output=True,
            text=True,
            env=env,
            timeout=request.timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise FreshError(f"a fresh timing process gave no answer within {request.timeout_s:.0f} s") from None
    answers: dict[str, dict[str, Any]] = {}
    for line in proc.stdout.splitlines():
        answer = json.loads(line)
        if "error" in answer:
            raise FreshError(f"{answer['variant']}: fresh timing process: {answer['error']}")
        answers[answer["variant"]] = answer["latency"]
    missing = [v for v in variant_ids if v not in answers]
    if proc.returncode != 0 or missing:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:]) or "no message"
        raise FreshError(f"fresh timing process exit {proc.returncode}, no timing of {', '.join(missing)} ({tail})")
    return answers


Measure = Callable[[FreshRequest, Sequence[str]], dict[str, dict[str, Any]]]


def process_medians(
    request: FreshRequest,
    variant_ids: Sequence[str],
    processes: int,
    measure: Measure = measure_fresh,
    progress: Callable[[str], None] = lambda _text: None,
) -> dict[str, list[float]]:
    """Each variant's median pass time in each of `processes` fresh processes (one process
    times all the variants, as a tier run does; each process is new)."""
    medians: dict[str, list[float]] = {v: [] for v in variant_ids}
    for k in range(processes):
        progress(f"fresh process {k + 1} of {processes}: timing {len(variant_ids)} variants")
        for variant, latency in measure(request, variant_ids).items():
            medians[variant].append(statistics.median(latency["samples_s"]))
    return medians


def spread_note(spreads: dict[str, float | None], processes: int) -> str:
    """One line for a rebaseline's footer: how far the recorded variants move between processes."""
    known = {v: s for v, s in spreads.items() if s is not None}
    if not known:
        return f"latency: {len(spreads)} variants timed in {processes} fresh processes each"
    worst = max(known, key=lambda v: known[v])
    return (
        f"latency: {len(spreads)} variants timed in {processes} fresh processes each; between-process spread "
        f"median {statistics.median(known.values()):.1%}, largest {known[worst]:.1%} ({worst})"
    )
