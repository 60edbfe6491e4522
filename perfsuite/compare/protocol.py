"""What the compare harness and its workers share: the sides, the settings, the results and
the request/answer exchange with one worker process (its protocol is in `compare.worker`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perfsuite.stats.intervals import RatioEstimate
from perfsuite.variant import Variant

WORKER = Path(__file__).with_name("worker.py")  # run by path with each side's interpreter


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
    revision: str = ""  # the full commit of a `--base` side: compare.json names it, history chains it


def worker_argv(python: str) -> tuple[str, ...]:
    return (python, str(WORKER))


@dataclass(frozen=True)
class CompareSettings:
    """How much evidence a verdict needs (defaults: the targets measured in
    docs/experiments/2026-11-27-latency-rules-history.md)."""

    max_slowdown: float = 0.05  # an interval wholly within +-this is "same"
    min_effect: float = 0.01  # "slower" ("faster") needs the whole interval beyond +-this
    passes: int = 10  # interleaved rounds per process pair
    block_pairs: int = 3  # process pairs forked from one pair of fresh zygotes
    min_pairs: int = 9  # before the first decision: 3 blocks
    max_pairs: int = 60  # one block more while undecided, up to this ...
    budget_s: float = 300.0  # ... or until the next block would end past this many seconds (0: no limit)
    confidence: float = 0.95
    busy_other_cpu: float = 0.2  # undecided when other processes took more of the CPU while timing
    timeout_s: float = 600.0  # longest wait for one answer of a worker
    seed: int = 0

    @property
    def min_blocks(self) -> int:
        return max(1, -(-self.min_pairs // self.block_pairs))

    @property
    def max_blocks(self) -> int:
        return max(self.min_blocks, -(-self.max_pairs // self.block_pairs))


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
    blocks: list[list[tuple[list[float], list[float]]]] = field(default_factory=list)  # per fresh zygote pair
    work_diff: list[str] = field(default_factory=list)
    predictions: dict[str, float] = field(default_factory=dict)
    prediction_problems: list[str] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0
    time_verdict: str = ""  # slower | faster | same | undecided, before work or predictions override it
    side_status: dict[str, str] = field(default_factory=dict)  # runs | refused (...) | errors (...)
    components: dict[str, float] = field(default_factory=dict)  # zygote / process / pass sd (log scale)
    detectable: float = math.inf  # smallest slowdown this run's precision flags 4 times in 5
    stopped: str = ""  # why no more blocks were run: decided | max pairs | budget | busy
    other_cpu: list[float] = field(default_factory=list)  # per pass: the CPU share other processes took

    @property
    def other_cpu_share(self) -> float | None:
        """Mean share of the CPU other processes took while the passes ran (None: no worker said)."""
        return sum(self.other_cpu) / len(self.other_cpu) if self.other_cpu else None

    @property
    def pairs(self) -> list[tuple[list[float], list[float]]]:
        return [pair for block in self.blocks for pair in block]

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
        self.send(op, **request)
        return self.receive(op)

    def send(self, op: str, **request: Any) -> None:
        """Send a request without waiting: both sides then work on it at once (`ask_all`)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"op": op, **request}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerDied(f"side {self.side.name}: worker exited ({self._stderr_tail()})", self.side.name) from None

    def receive(self, op: str) -> dict[str, Any]:
        """The answer to the request `op` sent last."""
        assert self.proc.stdout is not None
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

    def quit(self) -> None:
        """Ask the zygote to exit, without waiting for it to be gone (`reap`)."""
        if self.proc.poll() is None:
            with contextlib.suppress(WorkerDied):
                self.ask("quit")

    def reap(self) -> None:
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def close_all(workers: Sequence[WorkerProcess]) -> None:
    """Every side's zygote told to quit, then each waited for: the exits overlap. A revision's
    worker from before 2026-12-02 tears its interpreter down on quit (1.4 s here with torch and
    transformers loaded); one after another that was 2.8 s of every block."""
    for w in workers:
        w.quit()
    for w in workers:
        w.reap()


def ask_all(workers: Sequence[WorkerProcess], op: str, **request: Any) -> list[dict[str, Any]]:
    """The same request to every side at once, their answers in order. For starting zygotes
    (imports, tokenising: 7.7 s for both instead of 13 s one after the other, 2026-12-02);
    never for torch work - two children preparing a model side by side on 2 cores took 7.8 s
    instead of 0.65 s each (OpenMP pools spinning against each other) - nor a timed pass."""
    for w in workers:
        w.send(op, **request)
    return [w.receive(op) for w in workers]
