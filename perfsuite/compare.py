"""`perfsuite compare`: A/B of two environments on one machine, interleaved in one run.

Duet benchmarking (Bulej et al., ICPE 2020; Laaber et al., EMSE 2019): A is this checkout
with this interpreter, B another interpreter, a pinned venv or a base revision. Each side is
a worker process (``compare_worker``) holding the prepared variant; the harness alternates
single passes A B / B A in random order, so whatever else the machine does hits both.

Passes of one process share a bias of their own (5-10% here between two processes of the
same code), so the unit of randomisation is the process pair as well as the pass: each pair
of fresh processes (forked from a per-side zygote) runs ``passes`` interleaved rounds, and
the interval of the B/A time ratio comes from a two-level bootstrap (pairs, then passes).
An undecided verdict buys more pairs, up to ``max_pairs`` (Chromium Pinpoint's rule).

Besides time, the first pair's outputs are compared exactly: work counts, and predictions
row by row against the tier's margins for the variant's dtype.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import markdown
from .fileio import console_width
from .matrix import MATRIX_DIR, Matrix, Variant
from .metrics import log_loss
from .stats import RatioEstimate, nested_ratio_interval

WORKER = Path(__file__).with_name("compare_worker.py")


class CompareError(ValueError):
    """Bad input to compare (an interpreter, revision or pin that cannot be used): exit 2."""


class WorkerDied(RuntimeError):
    """A side's worker stopped answering or failed a request; the message names the side."""

    def __init__(self, message: str, side: str = "") -> None:
        super().__init__(message)
        self.side = side


@dataclass(frozen=True)
class Side:
    """How to start one side's worker: its command, extra environment, and what it is."""

    name: str  # "A" or "B"
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""


def worker_argv(python: str) -> tuple[str, ...]:
    return (python, str(WORKER))


@dataclass(frozen=True)
class CompareSettings:
    """How much evidence a verdict needs (defaults: the targets measured in docs/bounds.md)."""

    max_slowdown: float = 0.05
    passes: int = 6  # interleaved rounds per process pair
    min_pairs: int = 6
    step_pairs: int = 4  # pairs added while undecided
    max_pairs: int = 24
    confidence: float = 0.95
    timeout_s: float = 600.0  # longest wait for one answer of a worker
    seed: int = 0


@dataclass
class SideOutput:
    """What one side's first process computed: work counts and predictions."""

    work: dict[str, int]
    probs: np.ndarray
    labels: list[int | None]
    nonfinite_rows: int


@dataclass
class VariantComparison:
    """One variant's A/B result: the time ratio B/A, the verdict, work and prediction diffs."""

    variant: Variant
    verdict: str  # slower | faster | same | undecided | changed | skip | fail
    estimate: RatioEstimate | None = None
    pairs: list[tuple[list[float], list[float]]] = field(default_factory=list)
    work_diff: list[str] = field(default_factory=list)
    predictions: dict[str, float] = field(default_factory=dict)
    prediction_problems: list[str] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0
    time_verdict: str = ""  # slower | faster | same | undecided, before work or predictions override it
    side_status: dict[str, str] = field(default_factory=dict)  # runs | refused (...) | errors (...)

    @property
    def failed(self) -> bool:
        return self.verdict in ("slower", "changed", "fail")


class WorkerProcess:
    """A side's zygote process and the request/answer exchange with it."""

    def __init__(self, side: Side, timeout_s: float) -> None:
        self.side = side
        self.timeout_s = timeout_s
        env = {**os.environ, **side.env, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen(
            list(side.argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )
        self._stderr: list[str] = []

    def _stderr_tail(self) -> str:
        if self.proc.stderr is not None and self.proc.poll() is not None:
            self._stderr = self.proc.stderr.read().splitlines()[-5:]
        return " | ".join(line.strip() for line in self._stderr if line.strip())

    def ask(self, op: str, **request: Any) -> dict[str, Any]:
        """Send one request and wait for its answer; WorkerDied names the side when none comes."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps({"op": op, **request}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerDied(f"side {self.side.name}: worker exited ({self._stderr_tail()})", self.side.name) from None
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout_s)
        if not ready:
            self.kill()
            raise WorkerDied(
                f"side {self.side.name}: no answer to {op!r} within {self.timeout_s:.0f} s", self.side.name
            )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise WorkerDied(
                f"side {self.side.name}: worker exited ({self._stderr_tail() or 'no message'})", self.side.name
            )
        answer = json.loads(line)
        if not answer.get("ok"):
            raise WorkerDied(f"side {self.side.name}: {op} failed: {answer.get('error')}", self.side.name)
        return answer

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(WorkerDied):
                self.ask("quit")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def decide(estimate: RatioEstimate, max_slowdown: float) -> str:
    """slower / faster / same / undecided from where the interval lies against +-max_slowdown."""
    hi, lo = 1 + max_slowdown, 1 / (1 + max_slowdown)
    if estimate.low > hi:
        return "slower"
    if estimate.high < lo:
        return "faster"
    if estimate.low >= lo and estimate.high <= hi:
        return "same"
    return "undecided"


def compare_outputs(variant: Variant, a: SideOutput, b: SideOutput) -> tuple[list[str], dict[str, float], list[str]]:
    """Work counts exactly; predictions row by row against the variant's reference margins."""
    work_diff = [f"{k} {a.work.get(k)} -> {b.work.get(k)}" for k in a.work if a.work.get(k) != b.work.get(k)]
    stats: dict[str, float] = {}
    problems: list[str] = []
    if a.probs.shape != b.probs.shape:
        return work_diff, stats, [f"prediction shapes differ: {a.probs.shape} vs {b.probs.shape}"]
    finite = np.isfinite(a.probs).all(axis=1) & np.isfinite(b.probs).all(axis=1)
    if not finite.all():
        problems.append(f"non-finite predictions: A {a.nonfinite_rows}, B {b.nonfinite_rows} rows")
    if finite.any():
        stats["max_abs_dp"] = float(np.max(np.abs(a.probs[finite] - b.probs[finite])))
        stats["argmax_agreement"] = float(np.mean(a.probs[finite].argmax(1) == b.probs[finite].argmax(1)))
    labels = a.labels
    if finite.all() and all(y is not None for y in labels):
        stats["log_loss_a"] = log_loss(a.probs, labels)
        stats["log_loss_b"] = log_loss(b.probs, labels)
    bounds = variant.bounds
    if stats.get("max_abs_dp", 0.0) > bounds.ref_max_abs_dp:
        problems.append(f"max |dp| {stats['max_abs_dp']:.4f} > {bounds.ref_max_abs_dp}")
    if stats.get("argmax_agreement", 1.0) < bounds.ref_argmax_agreement - 1e-12:
        problems.append(f"argmax agreement {stats['argmax_agreement']:.3f} < {bounds.ref_argmax_agreement}")
    if "log_loss_a" in stats and abs(stats["log_loss_b"] - stats["log_loss_a"]) > bounds.log_loss_abs:
        problems.append(
            f"log-loss {stats['log_loss_a']:.4f} -> {stats['log_loss_b']:.4f} (more than {bounds.log_loss_abs})"
        )
    return work_diff, stats, problems


def _output(answer: dict[str, Any]) -> SideOutput:
    return SideOutput(
        answer["work"], np.asarray(answer["probs"], dtype=float), answer["labels"], answer["nonfinite_rows"]
    )


class Comparison:
    """Runs the selected variants of a matrix on sides A and B, interleaved."""

    def __init__(
        self,
        matrix: Matrix,
        a: Side,
        b: Side,
        settings: CompareSettings = CompareSettings(),
        data: str | None = None,
        workload: dict[str, int] | None = None,
        progress=None,
    ) -> None:
        self.matrix = matrix
        self.sides = (a, b)
        self.settings = settings
        self.data = data
        self.workload = workload or {}
        self.rng = random.Random(settings.seed)
        self.progress = progress or (lambda text: print(text, file=sys.stderr, flush=True))
        self.versions: dict[str, dict[str, str]] = {}

    def matrix_name(self) -> str:
        """A bundled tier by name, so each side reads its own copy (a base revision's may differ)."""
        source = Path(self.matrix.source)
        return source.stem if source.parent.resolve() == MATRIX_DIR.resolve() else str(source.resolve())

    def check_sides(self) -> None:
        """Each side's worker starts and answers `hello`, or CompareError (bad input, exit 2) says which
        side cannot run and why: an interpreter without numpy or torch, a revision too old for the worker.
        Without this such a side reads as a failed variant (exit 1), as if the code were slower."""
        workers = [WorkerProcess(side, self.settings.timeout_s) for side in self.sides]  # they start together
        try:
            for w in workers:
                try:
                    hello = w.ask("hello", matrix=self.matrix_name(), data=self.data, workload=self.workload)
                except WorkerDied as exc:
                    raise CompareError(
                        f"side {w.side.name} ({w.side.description}) cannot run the compare worker: {exc}"
                    ) from None
                self.versions[w.side.name] = {**hello["versions"], "perfsuite_path": hello["perfsuite"]}
        finally:
            for w in workers:
                w.close()

    def _start(self, variant: Variant) -> tuple[WorkerProcess, WorkerProcess] | dict[str, str]:
        """Both sides' workers, ready; or each side's status when one of them refuses the variant."""
        workers = tuple(WorkerProcess(side, self.settings.timeout_s) for side in self.sides)
        status: dict[str, str] = {}
        try:
            for w in workers:
                hello = w.ask("hello", matrix=self.matrix_name(), data=self.data, workload=self.workload)
                self.versions[w.side.name] = {**hello["versions"], "perfsuite_path": hello["perfsuite"]}
                tokenized = w.ask("tokenize", variant=variant.id)
                status[w.side.name] = f"refused ({tokenized['skip']})" if "skip" in tokenized else "runs"
        except WorkerDied:
            for w in workers:
                w.kill()
            raise
        if any(s != "runs" for s in status.values()):
            for w in workers:
                w.close()
            return status
        return workers  # type: ignore[return-value]

    def _pair(self, workers: tuple[WorkerProcess, WorkerProcess], variant: Variant):
        """One pair of fresh processes: prepare both, then `passes` interleaved rounds."""
        order = [0, 1]
        self.rng.shuffle(order)
        outputs: list[SideOutput | None] = [None, None]
        for i in order:
            workers[i].ask("fork")
        try:
            for i in order:
                outputs[i] = _output(workers[i].ask("prepare", variant=variant.id))
            times: tuple[list[float], list[float]] = ([], [])
            for _ in range(self.settings.passes):
                self.rng.shuffle(order)
                for i in order:
                    times[i].append(workers[i].ask("pass")["seconds"])
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    with contextlib.suppress(WorkerDied):
                        w.ask("quit")  # the child exits; the zygote stays
        return times, outputs

    def run_variant(self, variant: Variant) -> VariantComparison:
        t0 = time.perf_counter()
        s = self.settings
        try:
            started = self._start(variant)
        except WorkerDied as exc:
            result = VariantComparison(variant, "fail", reason=str(exc), seconds=time.perf_counter() - t0)
            result.side_status = {exc.side: f"errors ({exc})"} if exc.side else {}
            return result
        if isinstance(started, dict):
            why = "; ".join(f"side {name}: {status}" for name, status in started.items() if status != "runs")
            return VariantComparison(variant, "skip", reason=why, side_status=started)
        workers = started
        result = VariantComparison(variant, "undecided", side_status={"A": "runs", "B": "runs"})
        try:
            target = s.min_pairs
            while True:
                while len(result.pairs) < target:
                    times, outputs = self._pair(workers, variant)
                    if not result.pairs:
                        result.work_diff, result.predictions, result.prediction_problems = compare_outputs(
                            variant, outputs[0], outputs[1]
                        )
                    result.pairs.append(times)
                result.estimate = nested_ratio_interval(result.pairs, s.confidence, s.seed)
                result.verdict = result.time_verdict = decide(result.estimate, s.max_slowdown)
                pairs, estimate = len(result.pairs), result.estimate.describe()
                self.progress(f"{variant.id}: {pairs} process pairs, B/A {estimate}: {result.verdict}")
                if result.verdict != "undecided" or len(result.pairs) >= s.max_pairs:
                    break
                target = min(s.max_pairs, target + s.step_pairs)
        except WorkerDied as exc:
            result.verdict, result.reason = "fail", str(exc)
            if exc.side:
                result.side_status[exc.side] = f"errors ({exc})"
        finally:
            for w in workers:
                w.close()
        if result.verdict != "fail" and (result.work_diff or result.prediction_problems):
            result.reason = "; ".join([*(f"work {d}" for d in result.work_diff), *result.prediction_problems])
            if result.verdict != "slower":  # slower says more; the reason names the change too
                result.verdict = "changed"
        result.seconds = time.perf_counter() - t0
        return result

    def run(self, variants: Sequence[Variant]) -> list[VariantComparison]:
        from .progress import Progress

        results = []
        with Progress(len(variants), "compare") as progress:
            for variant in variants:
                results.append(self.run_variant(variant))
                progress.advance(f"{variant.id}: {results[-1].verdict}")
        return results


# -- report ---------------------------------------------------------------------------------
HEADERS = (
    "variant",
    "verdict",
    "B/A time [95% CI]",
    "pairs",
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
        str(len(c.pairs)),
        "same" if not c.work_diff and c.pairs else ("; ".join(c.work_diff) or "-"),
        f"{p['max_abs_dp']:.2e}" if "max_abs_dp" in p else "-",
        f"{p['argmax_agreement']:.3f}" if "argmax_agreement" in p else "-",
        ll,
        c.reason,
        f"{c.seconds:.0f}",
    ]


def to_json(results: Sequence[VariantComparison], sides: Sequence[Side], versions, settings: CompareSettings):
    return {
        "sides": {s.name: {"argv": list(s.argv), "description": s.description} for s in sides},
        "versions": versions,
        "settings": settings.__dict__,
        "variants": [
            {
                "variant": c.variant.id,
                "verdict": c.verdict,
                "reason": c.reason,
                "estimate": c.estimate.__dict__ if c.estimate and math.isfinite(c.estimate.high) else None,
                "pairs": [[list(a), list(b)] for a, b in c.pairs],
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
        f"B/A pass-time ratio, {settings.confidence:.0%} interval over process pairs and passes; "
        f"slower/faster beyond {settings.max_slowdown:.0%}.",
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


def write_reports(results, sides, versions, settings: CompareSettings, folder: Path) -> Path:
    from .fileio import atomic_write_text

    data = to_json(results, sides, versions, settings)
    atomic_write_text(folder / "compare.json", json.dumps(data, indent=2, allow_nan=False) + "\n")
    atomic_write_text(folder / "compare.md", to_markdown(results, sides, settings))
    return folder
