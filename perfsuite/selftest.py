"""`perfsuite selftest`: how often the suite's bounds cry wolf, and how often they catch a regression.

It runs the CPU tier (a chosen set of variants and the relative bounds over them) again and
again, each run in its own process as CI would: first unchanged (A/A), then with one
variant made 10%, 25%, 50% slower, then with length-sorted padding silently behaving as
static. Per kind of bound it counts alarms in the A/A runs and catches in the injected ones.

The injections live only here and are installed only in the selftest's child processes,
through the runner's documented seam (``runner.HOOKS``), which is empty in production.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perfsuite.selftest_tally import PEER_GATE, render, render_latency, tally

DEFAULT_TARGET = "tiny-llama3-fp32-sdpa-sorted"
SCENARIO_ENV = "PERFSUITE_SELFTEST_SCENARIO"  # set only in the selftest's children


@dataclass(frozen=True)
class Scenario:
    """What one selftest run changes: nothing (A/A), a slowdown of `target`, or broken padding."""

    name: str
    slowdown: float = 0.0  # extra fraction of each forward's own time, spent busy inside it
    target: str | None = None
    break_padding: bool = False

    @property
    def injected(self) -> bool:
        return self.slowdown > 0 or self.break_padding


def scenarios(target: str, sizes: Sequence[float] = (0.10, 0.25, 0.50)) -> list[Scenario]:
    return [
        Scenario("A/A"),
        *(Scenario(f"{target} +{s:.0%}", s, target) for s in sizes),
        Scenario("sorted padding behaves as static", break_padding=True),
    ]


def run_plan(
    target: str, sizes: Sequence[float], aa_runs: int, inject_runs: int, padding_runs: int | None = None
) -> list[tuple[Scenario, int]]:
    """Each scenario with its number of runs (`padding_runs` for broken padding, default `inject_runs`)."""

    def runs_of(sc: Scenario) -> int:
        if not sc.injected:
            return aa_runs
        return inject_runs if not sc.break_padding or padding_runs is None else padding_runs

    return [(sc, runs_of(sc)) for sc in scenarios(target, sizes)]


# -- injection (child process only) -------------------------------------------------------
def _slow_hooks(model: Any, fraction: float) -> None:
    """Make every forward of `model` take (1 + fraction) x its own time, by spinning at its end."""
    started: list[float] = []

    def before(_module: Any, _args: Any) -> None:
        started.append(time.perf_counter())

    def after(_module: Any, _args: Any, _output: Any) -> None:
        begin = started.pop()
        end = time.perf_counter() + fraction * (time.perf_counter() - begin)
        while time.perf_counter() < end:  # work, not sleep: the core stays busy as real compute would
            pass

    model.register_forward_pre_hook(before)
    model.register_forward_hook(after)


def install(scenario: Scenario) -> None:
    """Fill the runner's fault-injection seam (runner.HOOKS) with the scenario's regression.

    Called only in the selftest's child processes and compare workers.
    """
    from perfsuite.measure.runner import HOOKS

    if scenario.slowdown > 0:

        def slow_target(prepared) -> None:
            if prepared.variant.id == scenario.target:
                _slow_hooks(prepared.model, scenario.slowdown)

        HOOKS.after_prepare.append(slow_target)
    if scenario.break_padding:
        HOOKS.padding = lambda strategy: "static" if strategy == "sorted" else strategy


def _kinds(verdict) -> dict[str, list[str]]:
    """The bound kinds a verdict checked and those that failed ("run" when the run itself broke)."""
    failed = {c.kind for c in verdict.failed} or ({"run"} if verdict.status == "fail" else set())
    return {"kinds": sorted({c.kind for c in verdict.checks}), "failed": sorted(failed)}


def run_child(scenario: Scenario, select: str, baselines: str, out: Path) -> None:
    """One selftest run: the selected variants and their relative bounds, results to `out`."""
    from pytest_benchmark.utils import parse_compare_fail

    from perfsuite.matrix.tier import load_matrix
    from perfsuite.session import PerfSession, SessionConfig

    install(scenario)
    # a fresh process that times an undecided variant again runs the same injected code (cli/fresh.py)
    os.environ[SCENARIO_ENV] = json.dumps(asdict(scenario))
    matrix = load_matrix("cpu")
    session = PerfSession(matrix, SessionConfig(baselines=baselines))
    gate = parse_compare_fail(PEER_GATE)
    for variant in matrix.select(select):
        session.run(variant)
    run = session.decide_latency()  # the run's decision, once its variants are timed (judge/latency.py)
    results: list[dict[str, Any]] = []
    for o in session.outcomes:
        if o.verdict.status == "skip" or o.measurement is None:
            continue
        median = o.measurement.latency.median_s
        decision = run.decisions.get(o.variant.id) if run is not None else None
        machine = session.stored(o.variant).machine
        saved = statistics.median(machine.latency.samples_s) if machine is not None else None
        results.append(
            {
                "id": o.variant.id,
                **_kinds(o.verdict),
                "median_s": median,
                "latency": str(decision.decision) if decision else None,
                "latency_ratio": decision.ratio if decision else None,
                "detectable": decision.smallest_detectable if decision else None,
                "timings": decision.timings if decision else 0,
                # pytest-benchmark's own gate on the same timing: this run's median against the one
                # its --benchmark-save kept of the recording run (the record's in-session passes)
                "peer_fail": bool(gate.fails({"median": median}, {"median": saved})) if saved else None,
            }
        )
    budget = run.budget if run is not None else None
    for bound in matrix.select_relative(select):
        p = session.run_relative(bound)
        if p.verdict.status == "skip":
            continue
        involved = [bound.variant.id, bound.reference.id]
        est = p.estimate.ratio if p.estimate else None
        results.append(
            {"id": bound.id, "involves": involved, **_kinds(p.verdict), "ratio": est, "predicted": p.predicted_ratio}
        )
    spent = {"seconds": budget.spent, "processes": budget.processes} if budget else None
    out.write_text(json.dumps({"scenario": asdict(scenario), "results": results, "budget": spent}), encoding="utf-8")


# -- the parent: runs, tallies, table ------------------------------------------------------
def selftest(
    aa_runs: int = 10,
    inject_runs: int = 5,
    select: str | None = None,
    target: str = DEFAULT_TARGET,
    baselines: str = "baselines",
    out_dir: str | Path = "reports/selftest",
    sizes: Sequence[float] = (0.10, 0.25, 0.50),
    child_timeout_s: float = 1800.0,
    padding_runs: int | None = None,
) -> dict[str, Any]:
    """Run every scenario in fresh processes; write selftest.json and print the table.

    A child that hangs is killed after `child_timeout_s` and counted as a failed run, named.
    `padding_runs`: runs of the broken-padding scenario (default `inject_runs`; 0 leaves it out).
    """
    from perfsuite.device.machine import detect
    from perfsuite.matrix.tier import load_matrix

    matrix = load_matrix("cpu")
    if select is None:  # the target and what its relative bounds compare it with
        pairs = [r for r in matrix.relative if target in (r.variant.id, r.reference.id)]
        select = ",".join(sorted({target} | {v.id for r in pairs for v in (r.variant, r.reference)}))
    if target not in {v.id for v in matrix.select(select)}:
        raise ValueError(f"selftest target {target} is not among the selected variants ({select})")
    out_dir = Path(out_dir)
    run_dir = out_dir / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    failures: list[str] = []

    plan = run_plan(target, sizes, aa_runs, inject_runs, padding_runs)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    from perfsuite.progress import Progress

    todo = [(sc, i) for sc, count in plan for i in range(count)]
    with Progress(len(todo), "selftest runs") as progress:
        for n, (sc, i) in enumerate(todo):
            result = run_dir / f"{n:03d}.json"  # kept as it comes: an interrupted selftest loses nothing
            cmd = [sys.executable, "-m", "perfsuite.selftest", json.dumps(asdict(sc)), select, baselines, str(result)]
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=child_timeout_s)
            except subprocess.TimeoutExpired:
                failures.append(
                    f"{sc.name} #{i + 1} ({target}): no result within {child_timeout_s:.0f} s, child killed"
                )
                progress.advance(f"{sc.name} run {i + 1}: TIMED OUT after {child_timeout_s:.0f} s")
                continue
            if proc.returncode != 0 or not result.exists():
                failures.append(f"{sc.name} #{i + 1}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
                progress.advance(f"{sc.name} run {i + 1}: FAILED (exit {proc.returncode})")
                continue
            runs.append(json.loads(result.read_text(encoding="utf-8")))
            progress.advance(f"{sc.name} run {i + 1}: {time.perf_counter() - t0:.0f} s")
    summary = tally(runs)
    machine = detect("cpu").machine_key()
    report = {
        "machine": machine,
        "select": select,
        "target": target,
        "summary": summary,
        "failed_runs": failures,
        "runs": runs,
    }
    from perfsuite.fileio import atomic_write_text

    atomic_write_text(out_dir / "selftest.json", json.dumps(report, indent=2) + "\n")
    print(render(summary, machine, select))
    print(render_latency(summary))
    for failure in failures:
        print(f"failed run (not counted): {failure}")
    print(f"selftest report: {(out_dir / 'selftest.json').resolve()}")
    return report


# -- compare: A/A and injected slowdowns of side B -------------------------------------------
def compare_selftest(
    aa_runs: int = 10,
    inject_runs: int = 10,
    sizes: Sequence[float] = (0.05, 0.10),
    target: str = DEFAULT_TARGET,
    untouched: str = "tiny-mistral-fp32-sdpa-sorted",
    out_dir: str | Path = "reports/selftest",
    settings: Any = None,
    busy: int = 0,
) -> dict[str, Any]:
    """`perfsuite compare` against itself: the coverage of its intervals over A/A runs, how often
    it flags an unchanged B, and how often it catches a slower one.

    Side B is this checkout started differently (``-m perfsuite.selftest compare-worker``, which
    installs the scenario: a busy-wait in `target`'s forward); every injected run also compares
    `untouched`, which B leaves alone. `busy`: spinning processes beside the A/A runs.
    """
    from perfsuite.compare import calibration
    from perfsuite.compare.harness import Comparison
    from perfsuite.compare.protocol import CompareSettings, Side
    from perfsuite.compare.sides import checkout_env, this_side
    from perfsuite.fileio import atomic_write_text
    from perfsuite.matrix.tier import load_matrix

    settings = settings or CompareSettings()
    matrix = load_matrix("cpu")
    by_id = {v.id: v for v in matrix.variants}
    plan = [(Scenario("A/A"), aa_runs)] + [(Scenario(f"{target} +{x:.0%}", x, target), inject_runs) for x in sizes]
    rows: list[dict[str, Any]] = []
    out = Path(out_dir) / "compare-selftest.json"
    for sc, count in plan:
        for i in range(count):
            argv = (sys.executable, "-m", "perfsuite.selftest", "compare-worker", json.dumps(asdict(sc)))
            b = Side("B", argv, checkout_env(), f"this checkout, scenario {sc.name}")
            comparison = Comparison(matrix, this_side(), b, settings, progress=lambda _text: None)
            variants = [by_id[target]] + ([by_id[untouched]] if sc.injected else [])
            loops = 0 if sc.injected else busy
            with calibration.busy_loops(loops):
                results = comparison.run(variants)
            for result in results:
                touched = result.variant.id == target and sc.injected
                rows.append(calibration.row(sc.name, i + 1, result, touched, loops))
                r = rows[-1]
                print(
                    f"{sc.name} run {i + 1} {r['variant']}: {r['verdict']} B/A {r['ratio'] or 0:.3f} "
                    f"[{r['low'] or 0:.3f}, {r['high'] or 0:.3f}] {r['pairs']} pairs {r['seconds']} s",
                    file=sys.stderr,
                    flush=True,
                )
            # kept as it comes: an interrupted selftest loses nothing
            atomic_write_text(out, json.dumps({"settings": asdict(settings), "runs": rows}, indent=2) + "\n")
    print(calibration.render(rows))
    print(f"compare selftest report: {out.resolve()}")
    return {"settings": asdict(settings), "runs": rows}


# -- history: detection on histories built from real runs, one real injected history, scale --
def history_child(scenario: Scenario, select: str, baselines: str, out: Path) -> None:
    """One run of a real history: the selected variants (no relative bounds) with the
    scenario's regression installed, its report.json (with run metadata) written to `out`."""
    from perfsuite.matrix.tier import load_matrix
    from perfsuite.session import PerfSession, SessionConfig

    install(scenario)
    matrix = load_matrix("cpu")
    session = PerfSession(matrix, SessionConfig(baselines=baselines))
    for variant in matrix.select(select):
        session.run(variant)
    session.report().write(out)


def real_history(runs: int, inject_from: int, target: str, slowdown: float, select: str, baselines: str, out: Path):
    """`runs` fresh processes in a row, the target made `slowdown` slower from run `inject_from`
    on (0-based): the report.json files of a fully real history."""
    from perfsuite.progress import Progress

    paths = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with Progress(runs, "real history runs") as progress:
        for i in range(runs):
            sc = Scenario(f"{target} +{slowdown:.0%}", slowdown, target) if i >= inject_from else Scenario("A/A")
            folder = out / f"run-{i:03d}"
            cmd = [sys.executable, "-m", "perfsuite.selftest", "history-child", json.dumps(asdict(sc)), select]
            proc = subprocess.run([*cmd, baselines, str(folder)], env=env, capture_output=True, text=True)
            if proc.returncode != 0 or not (folder / "report.json").exists():
                raise RuntimeError(f"history run {i}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
            paths.append(folder / "report.json")
            progress.advance(f"run {i}: {sc.name}")
    return paths


def history_selftest(
    runs: Sequence[str] = (),
    out_dir: str | Path = "reports/selftest",
    step: float = 0.05,
    histories: int = 10,
    flat: int = 300,
    real_runs: int = 0,
    inject_from: int = 20,
    target: str = DEFAULT_TARGET,
    scale: tuple[int, int] | None = (1000, 100),
    baselines: str = "baselines",
    model_histories: int = 100,
    model_flat: int = 1000,
    real_select: str | None = None,
) -> dict[str, Any]:
    """The history's targets measured here: detection on histories drawn from the latency noise
    model against the bounds it computes, on histories built from `runs` (folders
    of report.json files recorded on this machine), one fully real history, the compare chain,
    and the scale of add / changes / html. Writes history-selftest.json and prints the figures."""
    from perfsuite.device.machine import detect
    from perfsuite.fileio import atomic_write_text
    from perfsuite.history import bench, model_bench
    from perfsuite.history.changes import find_steps
    from perfsuite.history.ingest import expand
    from perfsuite.history.series import find_changes
    from perfsuite.history.store import HistoryStore

    out = Path(out_dir)
    settings = {"step": step, "histories": histories, "flat": flat, "length": 30, "after": 5}
    doc: dict[str, Any] = {"machine": detect("cpu").machine_key(), "settings": settings}
    # the latency model's histories (history.phase): the bounds it computes, the detector's rates
    doc["model"] = model_bench.model_table(model_histories, model_flat)
    if runs:
        pool = bench.load_pool([p for p in expand(runs) if p.name == "report.json"])
        doc["pool_runs"] = pool.runs
        doc["detection"] = bench.detection_table(pool, step, histories, flat, 30, 5)
        # the same noise shape at 1% per run (a quiet dedicated runner): what the detector itself can do
        doc["detection_at_1pct"] = bench.detection_table(bench.scaled(pool, 0.01), step, histories, flat, 30, 5)
    if real_runs:
        select = real_select or target
        paths = real_history(real_runs, inject_from, target, step, select, baselines, out / "real-history")
        with HistoryStore(str(out / "real-history" / "history.sqlite")) as store:
            from perfsuite.history.ingest import add_files

            add_files(store, paths)
            changes, series = find_changes(store, metrics=["latency_ms", "run_factor"])
        doc["real"] = {"runs": real_runs, "inject_from": inject_from, "target": target, "slowdown": step}
        doc["real"]["select"] = select
        doc["real"]["changes"] = [
            f"{c.key.series} run {c.index}: {c.ratio:.3f}x [{c.low:.3f}, {c.high:.3f}] p={c.p_value:.1e}"
            + (" over its runs' phase" if c.over_phase else "")
            for c in changes
        ]
        # the target's raw series searched as before the model: Welch on its own spread
        (raw,) = [s for s in series if s.key.series == target and s.key.metric == "latency_ms"]
        doc["real"]["raw"] = [
            f"run {st.index}: {st.ratio:.3f}x [{st.low:.3f}, {st.high:.3f}] p={st.p_value:.1e}"
            for st in find_steps([v for v, b in zip(raw.values, raw.busy, strict=True) if not b])
        ]
    doc["chain"] = [bench.chained(10, 1.02, 0.03, seed) for seed in range(3)] + [
        bench.chained(10, 1.0, 0.03, seed) for seed in range(3)
    ]
    if scale:
        doc["scale"] = bench.scale(*scale, render=bench.chromium_render_s)
    atomic_write_text(out / "history-selftest.json", json.dumps(doc, indent=2, default=str) + "\n")
    print(f"perfsuite history selftest on {doc['machine']}")
    print(bench.render(doc))
    print(f"history selftest report: {(out / 'history-selftest.json').resolve()}")
    return doc


if __name__ == "__main__":
    if sys.argv[1] == "history-child":  # python -m perfsuite.selftest history-child SC SELECT BASELINES OUT
        history_child(Scenario(**json.loads(sys.argv[2])), sys.argv[3], sys.argv[4], Path(sys.argv[5]))
    elif (
        sys.argv[1] == "compare-worker"
    ):  # side B of the compare selftest: python -m perfsuite.selftest compare-worker SC
        install(Scenario(**json.loads(sys.argv[2])))
        from perfsuite.compare.worker import main as _serve

        _serve()
    else:  # the child process: python -m perfsuite.selftest SCENARIO SELECT BASELINES OUT
        _scenario, _select, _baselines, _out = sys.argv[1:5]
        run_child(Scenario(**json.loads(_scenario)), _select, _baselines, Path(_out))
