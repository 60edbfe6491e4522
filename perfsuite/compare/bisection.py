"""`perfsuite bisect PACKAGE GOOD BAD -k VARIANT`: the first release at which a variant changed.

The releases between GOOD and BAD come from the package index (`pip index versions`,
pre-releases only with ``--pre``). Each tested release gets a cached venv (``compare_envs``:
built once, removed whole if its build fails) and is compared with GOOD by `perfsuite
compare` - both sides on this machine, interleaved - for the variant's status (runs /
refused / errors), its work counts, its predictions row by row and, unless ``--no-latency``,
its time (an A/B interval). A release that cannot be installed or imported is reported and
searched around, like ``git bisect skip``.

The search assumes one change point, as git bisect does: a release is "changed" when it
differs from GOOD, and the first changed release after the last unchanged one is the answer.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from perfsuite.compare.harness import Comparison
from perfsuite.compare.protocol import CompareError, CompareSettings, Side, VariantComparison
from perfsuite.matrix.tier import Matrix
from perfsuite.variant import Variant


class BisectError(ValueError):
    """Bad input to bisect (package, versions, variant): exit 2."""


@dataclass(frozen=True)
class Step:
    """One tested release against GOOD: what it did, and whether that differs."""

    version: str
    verdict: str  # changed | same | skipped
    status: str  # runs | refused (...) | errors (...) | the reason it was skipped
    changes: tuple[str, ...] = ()
    seconds: float = 0.0
    venv: str = ""

    def describe(self) -> str:
        return f"{self.version}: {self.verdict} - " + ("; ".join(self.changes) or self.status)


@dataclass
class BisectResult:
    package: str
    good: str
    bad: str
    variant: str
    good_status: str = ""
    first_changed: str | None = None
    candidates: tuple[str, ...] = ()  # when skipped releases leave the answer among several
    steps: list[Step] = field(default_factory=list)

    def summary(self) -> str:
        by_version = {s.version: s for s in self.steps}
        if self.first_changed is None:
            return f"no change in {self.package} between {self.good} and {self.bad} for {self.variant}"
        step = by_version[self.first_changed]
        change = "; ".join(step.changes) or step.status
        if len(self.candidates) > 1:
            others = ", ".join(v for v in self.candidates if v != self.first_changed)
            return (
                f"first changed in {self.package} {self.first_changed} or earlier among {others} "
                f"(not installable here): {change}"
            )
        return f"first changed in {self.package} {self.first_changed}: {change}"

    def to_json(self) -> dict:
        return {
            "package": self.package,
            "good": self.good,
            "bad": self.bad,
            "variant": self.variant,
            "good_status": self.good_status,
            "first_changed": self.first_changed,
            "candidates": list(self.candidates),
            "steps": [s.__dict__ | {"changes": list(s.changes)} for s in self.steps],
            "summary": self.summary(),
        }


# -- the index ------------------------------------------------------------------------------
def parse_index_versions(text: str) -> list[str]:
    """The versions `pip index versions` printed ('Available versions: 5.24.0, 5.23.0, ...')."""
    for line in text.splitlines():
        if line.strip().startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    return []


def index_versions(package: str, pre: bool = False) -> list[str]:
    """Every release of `package` on the configured index; BisectError if it is not there."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", package):
        raise BisectError(f"{package!r} is not a package name")
    argv = [sys.executable, "-m", "pip", "index", "versions", package, "--disable-pip-version-check"]
    proc = subprocess.run(argv + (["--pre"] if pre else []), capture_output=True, text=True, timeout=300)
    versions = parse_index_versions(proc.stdout)
    if proc.returncode != 0 or not versions:
        last = (proc.stderr.strip().splitlines() or ["no versions listed"])[-1]
        raise BisectError(f"{package}: not found on the package index ({last})")
    return versions


def releases_between(versions: Sequence[str], good: str, bad: str, package: str, pre: bool = False) -> list[str]:
    """The releases after GOOD up to BAD, oldest first; BisectError names a bad bound."""
    parsed = {}
    for v in versions:
        try:
            parsed[v] = Version(v)
        except InvalidVersion:
            continue
    for name, bound in (("GOOD", good), ("BAD", bad)):
        if bound not in parsed:
            near = ", ".join(sorted(parsed, key=parsed.get, reverse=True)[:5])
            raise BisectError(f"{name} {bound}: {package} {bound} is not on the package index (newest: {near})")
    if parsed[good] >= parsed[bad]:
        raise BisectError(f"GOOD {good} is not older than BAD {bad}")
    inside = [v for v in parsed if parsed[good] < parsed[v] <= parsed[bad]]
    if not pre:
        inside = [v for v in inside if not parsed[v].is_prerelease or v == bad]
    return sorted(inside, key=parsed.get)


# -- the search -----------------------------------------------------------------------------
def search(
    releases: Sequence[str], evaluate: Callable[[str], Step], progress: Callable[[str], None] = print
) -> tuple[str | None, tuple[str, ...], list[Step]]:
    """Binary search for the first changed release (the last of `releases` is BAD).

    Returns (first changed, the releases it may be among when skips hide it, steps). BAD
    unchanged means no change (None). A skipped release is searched around; if skips leave
    several candidates, all are returned with the earliest changed-or-unknown first.
    """
    steps: list[Step] = []
    verdicts: dict[int, str] = {}
    expected = 1 + (len(releases) - 1).bit_length()  # BAD, then halving
    start = time.perf_counter()

    def test(i: int) -> str:
        step = evaluate(releases[i])
        steps.append(step)
        verdicts[i] = step.verdict
        total, elapsed = max(expected, len(steps)), time.perf_counter() - start
        eta = f", ETA {elapsed / len(steps) * (total - len(steps)):.0f} s" if total > len(steps) else ""
        progress(f"[bisect] step {len(steps)} (about {total}; {elapsed:.0f} s{eta}): {step.describe()}")
        return step.verdict

    last = len(releases) - 1
    first = test(last)
    if first == "skipped":
        raise BisectError(f"BAD {releases[last]} cannot be tested here: {steps[-1].status}")
    if first != "changed":
        return None, (), steps
    lo, hi = -1, last  # releases[lo] unchanged (GOOD), releases[hi] changed
    while True:
        open_ = [i for i in range(lo + 1, hi) if i not in verdicts]
        if not open_:
            break
        middle = (lo + hi) / 2
        i = min(open_, key=lambda j: (abs(j - middle), j))
        verdict = test(i)
        if verdict == "changed":
            hi = i
        elif verdict == "same":
            lo = i
    skipped = tuple(releases[i] for i in range(lo + 1, hi) if verdicts.get(i) == "skipped")
    return releases[hi], (*skipped, releases[hi]), steps


# -- one release against GOOD -------------------------------------------------------------
def status_of(comparison: VariantComparison, side: str) -> str:
    """runs / refused (reason) / errors (message) for one side of a comparison."""
    return comparison.side_status.get(side, "runs")


def _state(status: str) -> str:
    return status.split(" ", 1)[0]


def step_from(version: str, comparison: VariantComparison, latency: bool, seconds: float, venv: str) -> Step:
    """Whether `version` (side B) differs from GOOD (side A), and how."""
    a, b = status_of(comparison, "A"), status_of(comparison, "B")
    if _state(a) != _state(b):
        return Step(version, "changed", b, (f"{_verb(a)} -> {_verb(b)}",), seconds, venv)
    if _state(b) != "runs":
        return Step(version, "same", b, (), seconds, venv)
    changes = [f"work {d}" for d in comparison.work_diff]
    changes += [f"predictions {p}" for p in comparison.prediction_problems]
    e = comparison.estimate
    if latency and e is not None and comparison.time_verdict in ("slower", "faster"):
        changes.append(f"latency {comparison.time_verdict}: {e.describe()} of {version} / GOOD")
    timing = f", B/A {e.describe()} ({comparison.time_verdict})" if latency and e is not None else ""
    return Step(version, "changed" if changes else "same", "runs" + timing, tuple(changes), seconds, venv)


def _verb(status: str) -> str:
    state, _, rest = status.partition(" ")
    word = {"runs": "ran", "refused": "refused", "errors": "errored"}.get(state, state)
    return f"{word} {rest}".strip()


class Bisection:
    """Wires the search to real venvs and `perfsuite compare` for one variant."""

    def __init__(
        self,
        matrix: Matrix,
        variant: Variant,
        package: str,
        make_side: Callable[[str], tuple[Side, str]],
        latency: bool = True,
        settings: CompareSettings | None = None,
        data: str | None = None,
        workload: dict[str, int] | None = None,
        progress: Callable[[str], None] = print,
    ) -> None:
        self.matrix, self.variant, self.package = matrix, variant, package
        self.make_side = make_side  # version -> (side, where its venv is and how big)
        self.latency = latency
        # Without latency one pair of one pass is enough to read status, work and predictions.
        self.settings = settings or (
            CompareSettings() if latency else CompareSettings(passes=1, block_pairs=1, min_pairs=1, max_pairs=1)
        )
        self.data, self.workload, self.progress = data, workload, progress
        self._good: Side | None = None
        self.good_status = ""

    def good_side(self, good: str) -> Side:
        if self._good is None:
            side, where = self.make_side(good)
            self.progress(f"[bisect] GOOD {self.package} {good}: {where}")
            self._good = Side("A", side.argv, side.env, f"{self.package} {good} ({where})")
        return self._good

    def evaluate(self, good: str, version: str) -> Step:
        t0 = time.perf_counter()
        try:
            side, where = self.make_side(version)
        except CompareError as exc:
            return Step(version, "skipped", f"cannot install or import: {exc}", seconds=time.perf_counter() - t0)
        self.progress(f"[bisect] {self.package} {version}: {where}; comparing with GOOD {good} ...")
        b = Side("B", side.argv, side.env, f"{self.package} {version} ({where})")
        comparison = Comparison(
            self.matrix, self.good_side(good), b, self.settings, self.data, self.workload, progress=self.progress
        )
        result = comparison.run_variant(self.variant)
        self.good_status = result.side_status.get("A", self.good_status)
        if "A" in result.side_status and _state(result.side_status["A"]) == "errors":
            return Step(version, "skipped", f"GOOD side failed: {result.side_status['A']}", seconds=result.seconds)
        return step_from(version, result, self.latency, time.perf_counter() - t0, where)

    def run(self, good: str, bad: str, releases: Sequence[str]) -> BisectResult:
        result = BisectResult(self.package, good, bad, self.variant.id)
        first, candidates, steps = search(releases, lambda v: self.evaluate(good, v), self.progress)
        result.first_changed, result.candidates, result.steps = first, candidates, steps
        result.good_status = self.good_status
        return result


def render(result: BisectResult) -> str:
    lines = [f"perfsuite bisect {result.package} {result.good}..{result.bad} -k {result.variant}"]
    lines.append(f"  {result.good} (GOOD): {result.good_status or 'not run'}")
    for step in sorted(result.steps, key=lambda s: Version(s.version)):
        lines.append(f"  {step.describe()}  [{step.seconds:.0f} s]")
    lines.append(result.summary())
    return "\n".join(lines)
