"""`perfsuite compare`: A/B of two environments on one machine, interleaved in one run.

Duet benchmarking (Bulej et al., ICPE 2020; Laaber et al., EMSE 2019): B is what is tried -
another interpreter, a pinned venv, or this checkout against a base revision (then A is the
base; otherwise A is this checkout with this interpreter). Each side is
a worker process (``compare_worker``) holding the prepared variant; the harness alternates
single passes A B / B A in random order, so whatever else the machine does hits both.

Passes of one process share a bias of their own (5-10% here between two processes of the
same code), and processes forked from one zygote share its heap and import order (a few
percent more), so randomisation happens at three levels: each block starts fresh zygotes on
both sides, forks ``block_pairs`` pairs of processes from them, and each pair runs ``passes``
interleaved rounds. The interval of the B/A time ratio is the nested model's t interval
(`stats.intervals.block_ratio_interval`). Both sides' zygotes start side by side (imports and
tokenising are most of a block's set-up); model preparation and timed passes run one at a
time. An undecided verdict buys one more block, up to ``max_pairs`` or the per-variant
``budget_s`` (Chromium Pinpoint's rule).

Besides time, the first pair's outputs are compared exactly: work counts, and predictions
row by row against the tier's margins for the variant's dtype.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perfsuite.compare.protocol import (
    CompareError,
    CompareSettings,
    Side,
    SideOutput,
    VariantComparison,
    WorkerDied,
    WorkerProcess,
    ask_all,
    close_all,
)
from perfsuite.judge.checks import reference_checks
from perfsuite.matrix.tier import MATRIX_DIR, Matrix
from perfsuite.stats.intervals import RatioEstimate, block_ratio_interval, variance_components
from perfsuite.stats.metrics import compare_to_reference
from perfsuite.variant import Variant


def decide(estimate: RatioEstimate, max_slowdown: float, min_effect: float | None = None) -> str:
    """slower / faster / same / undecided from where the interval lies.

    slower: wholly above 1 + min_effect (B slower by more than that, at the interval's
    confidence); faster: wholly below 1 / (1 + min_effect); same: wholly within
    +-max_slowdown; undecided otherwise. min_effect below max_slowdown is what lets a run
    catch a slowdown of max_slowdown itself (with an interval of +-3% around 1.05, the low end
    clears 1.02, never 1.05). Without min_effect both thresholds are max_slowdown.
    """
    flag = max_slowdown if min_effect is None else min_effect
    if estimate.low > 1 + flag:
        return "slower"
    if estimate.high < 1 / (1 + flag):
        return "faster"
    if estimate.low >= 1 / (1 + max_slowdown) and estimate.high <= 1 + max_slowdown:
        return "same"
    return "undecided"


def undecided_reason(result: VariantComparison, settings: CompareSettings) -> str:
    """What an undecided run could and could not tell apart: the change it measured, and the
    smallest slowdown a run this precise would have flagged 4 times in 5."""
    e = result.estimate
    assert e is not None
    if result.stopped == "busy":
        return (
            f"machine busy: other processes took {result.other_cpu_share:.0%} of the CPU time while timing "
            f"(limit {settings.busy_other_cpu:.0%}); the interval is shown, not judged"
        )
    measured = abs(math.log(e.ratio))
    stop = {"budget": f"budget of {settings.budget_s:.0f} s", "max pairs": f"{settings.max_pairs} pairs"}
    told = f"could not tell {math.expm1(measured):.1%} from noise here" if measured else "measured no change"
    catch = f"a slowdown of {result.detectable:.1%} would be caught 4 times in 5"
    if not math.isfinite(result.detectable):
        catch = "too few blocks for an interval"
    return f"{told} ({stop.get(result.stopped, result.stopped)} reached); {catch}"


def compare_outputs(variant: Variant, a: SideOutput, b: SideOutput) -> tuple[list[str], dict[str, float], list[str]]:
    """Work counts exactly (those both sides count: an older revision may count fewer); predictions
    row by row against the variant's reference margins."""
    work_diff = [f"{k} {a.work[k]} -> {b.work[k]}" for k in a.work if k in b.work and a.work[k] != b.work[k]]
    if a.probs.shape != b.probs.shape:
        return work_diff, {}, [f"prediction shapes differ: {a.probs.shape} vs {b.probs.shape}"]
    # B against A with the in-run reference's own comparison and margins (one implementation:
    # a row non-finite on either side counts as disagreeing, |dp| = 1)
    labels = a.labels if all(y is not None for y in a.labels) else None
    ref = compare_to_reference(b.probs, a.probs, labels)
    stats = {"max_abs_dp": ref["max_abs_dp"], "argmax_agreement": ref["argmax_agreement"]}
    if "log_loss" in ref:
        stats["log_loss_a"], stats["log_loss_b"] = ref["reference_log_loss"], ref["log_loss"]
    problems: list[str] = []
    if not (np.isfinite(a.probs).all() and np.isfinite(b.probs).all()):
        problems.append(f"non-finite predictions: A {a.nonfinite_rows}, B {b.nonfinite_rows} rows")
    bounds = variant.bounds
    margins = [c for c in reference_checks(ref, bounds) if c.name in ("argmax agreement", "max |dp|")]
    problems += [f"{c.name} {c.measured}, allowed {c.allowed}" for c in margins if not c.ok]
    # either way: a release that changes the log-loss changed the model's predictions
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
        settings: CompareSettings | None = None,
        data: str | None = None,
        workload: dict[str, int] | None = None,
        progress=None,
    ) -> None:
        self.matrix = matrix
        self.sides = (a, b)
        self.settings = settings or CompareSettings()
        self.data = data
        self.workload = workload or {}
        self.rng = random.Random(self.settings.seed)
        self.progress = progress or (lambda text: print(text, file=sys.stderr, flush=True))
        self.versions: dict[str, dict[str, str]] = {}
        self.clock = time.perf_counter  # the budget's clock (a seam: tests stub it)

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
            self._hello(workers)
        except WorkerDied as exc:
            side = next((s for s in self.sides if s.name == exc.side), None)
            about = f"side {exc.side} ({side.description})" if side else "a side"
            raise CompareError(f"{about} cannot run the compare worker: {exc}") from None
        finally:
            close_all(workers)

    def _hello(self, workers: Sequence[WorkerProcess]) -> None:
        """Both sides load the matrix at once; each side's versions are kept for the report."""
        hellos = ask_all(workers, "hello", matrix=self.matrix_name(), data=self.data, workload=self.workload)
        for w, hello in zip(workers, hellos, strict=True):
            self.versions[w.side.name] = {**hello["versions"], "perfsuite_path": hello["perfsuite"]}

    def _start(self, variant: Variant) -> tuple[WorkerProcess, WorkerProcess] | dict[str, str]:
        """Both sides' workers, ready; or each side's status when one of them refuses the variant."""
        workers = tuple(WorkerProcess(side, self.settings.timeout_s) for side in self.sides)
        status: dict[str, str] = {}
        try:
            self._hello(workers)
            for w, tokenized in zip(workers, ask_all(workers, "tokenize", variant=variant.id), strict=True):
                status[w.side.name] = f"refused ({tokenized['skip']})" if "skip" in tokenized else "runs"
        except WorkerDied:
            for w in workers:
                w.kill()
            raise
        if any(s != "runs" for s in status.values()):
            close_all(workers)
            return status
        return workers  # type: ignore[return-value]

    def _pair(
        self, workers: tuple[WorkerProcess, WorkerProcess], variant: Variant, shares: list[float], score: bool = True
    ):
        """One pair of fresh processes: prepare both, then `passes` interleaved rounds (each
        pass's share of the CPU taken by other processes goes to `shares`). Only with `score`
        do the children compute the predictions and work counts that `compare_outputs` reads."""
        order = [0, 1]
        self.rng.shuffle(order)
        outputs: list[SideOutput | None] = [None, None]
        for i in order:
            workers[i].ask("fork")
        try:
            for i in order:  # one at a time: two children's OpenMP pools on 2 cores took 12x as long
                answer = workers[i].ask("prepare", variant=variant.id, score=score)
                outputs[i] = _output(answer) if score else None  # a worker from before 2026-12-02 scores anyway
            times: tuple[list[float], list[float]] = ([], [])
            for _ in range(self.settings.passes):
                self.rng.shuffle(order)
                for i in order:
                    answer = workers[i].ask("pass")
                    times[i].append(answer["seconds"])
                    if "other_cpu" in answer:  # a worker of a revision from before 2026-12-01 does not say
                        shares.append(float(answer["other_cpu"]))
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    with contextlib.suppress(WorkerDied):
                        w.ask("quit")  # the child exits; the zygote stays
        return times, outputs

    def _block(self, workers: tuple[WorkerProcess, WorkerProcess], variant: Variant, result: VariantComparison):
        """`block_pairs` process pairs from one pair of zygotes, which are closed after."""
        block: list[tuple[list[float], list[float]]] = []
        try:
            for _ in range(self.settings.block_pairs):
                first = not result.blocks and not block  # the first pair's outputs: work and predictions
                times, outputs = self._pair(workers, variant, result.other_cpu, score=first)
                if first:
                    result.work_diff, result.predictions, result.prediction_problems = compare_outputs(
                        variant, outputs[0], outputs[1]
                    )
                block.append(times)
        finally:
            close_all(workers)
        result.blocks.append(block)

    def _decide(self, variant: Variant, result: VariantComparison) -> None:
        s = self.settings
        result.estimate = block_ratio_interval(result.blocks, s.confidence)
        result.verdict = result.time_verdict = decide(result.estimate, s.max_slowdown, s.min_effect)
        result.components = variance_components(result.blocks)
        result.detectable = result.estimate.detectable(s.min_effect)
        if (result.other_cpu_share or 0.0) > s.busy_other_cpu:  # as the tier's latency: a busy machine decides nothing
            result.verdict = result.time_verdict = "undecided"
            result.stopped = "busy"
        self.progress(f"{variant.id}: {len(result.blocks)} blocks, B/A {result.estimate.describe()}: {result.verdict}")

    def run_variant(self, variant: Variant) -> VariantComparison:
        """Blocks of process pairs, each block from fresh zygotes on both sides, until the
        interval decides, `max_pairs` are run, or the next block would overrun `budget_s`."""
        t0 = self.clock()
        s = self.settings
        try:
            started = self._start(variant)
        except WorkerDied as exc:
            result = VariantComparison(variant, "fail", reason=str(exc), seconds=self.clock() - t0)
            result.side_status = {exc.side: f"errors ({exc})"} if exc.side else {}
            return result
        if isinstance(started, dict):
            why = "; ".join(f"side {name}: {status}" for name, status in started.items() if status != "runs")
            return VariantComparison(variant, "skip", reason=why, side_status=started)
        workers: tuple[WorkerProcess, WorkerProcess] | dict[str, str] = started
        result = VariantComparison(variant, "undecided", side_status={"A": "runs", "B": "runs"})
        try:
            while True:
                if isinstance(workers, dict):  # a side that ran the first block refuses a later one
                    raise WorkerDied(f"fresh workers refused the variant: {workers}")
                self._block(workers, variant, result)
                blocks, spent = len(result.blocks), self.clock() - t0
                if blocks < s.min_blocks:
                    workers = self._start(variant)
                    continue
                self._decide(variant, result)
                if result.stopped:  # busy
                    break
                if result.verdict != "undecided":
                    result.stopped = "decided"
                elif blocks >= s.max_blocks:
                    result.stopped = "max pairs"
                elif s.budget_s and spent + spent / blocks > s.budget_s:
                    result.stopped = "budget"
                if result.stopped:
                    break
                workers = self._start(variant)
        except WorkerDied as exc:
            result.verdict, result.reason = "fail", str(exc)
            if exc.side:
                result.side_status[exc.side] = f"errors ({exc})"
        if result.verdict == "undecided" and result.estimate is not None:
            result.reason = undecided_reason(result, s)
        if result.verdict != "fail" and (result.work_diff or result.prediction_problems):
            result.reason = "; ".join([*(f"work {d}" for d in result.work_diff), *result.prediction_problems])
            if result.verdict != "slower":  # slower says more; the reason names the change too
                result.verdict = "changed"
        result.seconds = self.clock() - t0
        return result

    def run(self, variants: Sequence[Variant]) -> list[VariantComparison]:
        from perfsuite.progress import Progress

        results = []
        with Progress(len(variants), "compare") as progress:
            for variant in variants:
                results.append(self.run_variant(variant))
                progress.advance(f"{variant.id}: {results[-1].verdict}")
        return results
