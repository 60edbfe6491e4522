"""pytest plugin (entry point `pytest11`): options, parametrisation, fixtures, session table.

Thin over PerfSession: a test module sets ``PERFSUITE_MATRIX = "cpu"`` and asks for the
``perf_outcome`` fixture; the plugin parametrises it with one case per variant, marks
the ones that cannot run here as skips with their reason, and prints the table at the end.
``perf_latency`` is one case per tier, after its variants: the run's latency decision
(judge/latency.py), which needs every variant's first timing; a module without it still gets
the decision at the end of the session, and a latency failure fails the session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perfsuite.judge.checks import Verdict
from perfsuite.matrix.options import add_data_option, add_workload_options, workload_of
from perfsuite.matrix.shards import parse_shard, shard_assignment
from perfsuite.matrix.tier import MatrixError, load_matrix
from perfsuite.measure.fresh import PROCESSES_HELP, default_processes, processes_count
from perfsuite.measure.runner import perf_counter_sampler, timing
from perfsuite.report.outcomes import Outcome, PairOutcome
from perfsuite.session import PerfSession, SessionConfig

_SESSIONS = pytest.StashKey[dict[str, PerfSession]]()
_HISTORY_LOST = pytest.StashKey[bool]()  # a run the history refused: the session fails


def add_data_options(group) -> None:
    group.addoption(
        "--perfsuite-matrix",
        default=None,
        metavar="PATH.toml",
        help="run this matrix (e.g. your own [[models]]) with the cases perfsuite supplies; no test module needed",
    )
    add_data_option(group.addoption, "--perfsuite-")
    group.addoption("--perfsuite-select", default=None, help="globs over variant ids, e.g. 'tiny-llama3-*,*-sorted'")
    group.addoption(
        "--perfsuite-shard",
        default=None,
        metavar="I/N",
        help="run only shard I of N (a relative bound's variants stay together); join with `perfsuite merge`",
    )
    add_workload_options(group.addoption, "--perfsuite-")


def add_baseline_options(group) -> None:
    group.addoption("--perfsuite-baselines", default=None, help="baseline root folder (default: <rootdir>/baselines)")
    group.addoption(
        "--perfsuite-rebaseline", action="store_true", help="record this machine's baselines instead of checking"
    )
    group.addoption(
        "--perfsuite-rewrite-portable",
        action="store_true",
        help="with --perfsuite-rebaseline: rewrite portable records whose values are confirmed too (default: "
        "only changed and new ones are written)",
    )
    group.addoption(
        "--perfsuite-processes",
        default=default_processes(),
        help=f"with --perfsuite-rebaseline: {PROCESSES_HELP}",
    )
    group.addoption(
        "--perfsuite-strict",
        action="store_true",
        help="fail a variant that ran with nothing judged beyond the guard (no usable portable or machine record)",
    )


def add_report_options(group) -> None:
    group.addoption("--perfsuite-report-dir", default=None, help="report folder (default: <rootdir>/reports/perfsuite)")
    group.addoption(
        "--perfsuite-history",
        default=os.environ.get("PERFSUITE_HISTORY") or None,
        metavar="PATH|URL",
        help="append each tier's run to this history: a SQLite file or postgresql:// URL (default: $PERFSUITE_HISTORY)",
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perfsuite", "perfsuite performance matrix")
    add_data_options(group)
    add_baseline_options(group)
    add_report_options(group)


USER_MATRIX = "--perfsuite-matrix"  # a test module's PERFSUITE_MATRIX: the path given on the command line
CASES_MODULE = Path(__file__).with_name("matrix_cases.py")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSIONS] = {}
    path = config.getoption("perfsuite_matrix")
    if path:
        if not Path(path).is_file():
            raise pytest.UsageError(f"--perfsuite-matrix {path}: no such matrix file")
        # The supplied cases join the collection; with no path on the command line they replace
        # the default (testpaths or the working folder): the user asked for this matrix only.
        if config.args_source != pytest.Config.ArgsSource.ARGS:
            config.args[:] = []
        config.args.append(str(CASES_MODULE))


def matrix_source(config: pytest.Config, matrix_name: str) -> str:
    """The matrix a test module names: a bundled tier, a TOML path, or the --perfsuite-matrix one."""
    if matrix_name != USER_MATRIX:
        return matrix_name
    path = config.getoption("perfsuite_matrix")
    if not path:
        raise pytest.UsageError(f"{CASES_MODULE.name} runs the matrix given by --perfsuite-matrix PATH.toml")
    return str(path)


def perf_session(config: pytest.Config, matrix_name: str) -> PerfSession:
    sessions = config.stash[_SESSIONS]
    if matrix_name not in sessions:
        try:
            matrix = load_matrix(matrix_source(config, matrix_name))
        except MatrixError as exc:
            raise pytest.UsageError(str(exc)) from None
        given = config.getoption("perfsuite_baselines")
        root = Path(given or matrix.default_baselines or Path(config.rootpath) / "baselines")
        try:
            processes = processes_count(config.getoption("perfsuite_processes"))
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        try:
            sessions[matrix_name] = PerfSession(
                matrix,
                SessionConfig(
                    baselines=root,
                    data=config.getoption("perfsuite_data"),
                    rebaseline=config.getoption("perfsuite_rebaseline") and not config.option.collectonly,
                    strict=config.getoption("perfsuite_strict"),
                    rewrite_portable=config.getoption("perfsuite_rewrite_portable"),
                    processes=processes,
                    workload=workload_of(lambda field: config.getoption(f"perfsuite_{field}")),
                ),
            )
        except ValueError as exc:  # BaselineError (another rebaseline holds the lock), a bad workload override
            raise pytest.UsageError(str(exc)) from None
    return sessions[matrix_name]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One case per selected variant (`perf_variant`) or relative bound (`perf_pair`);
    those that cannot run here are skips carrying their reason. `perf_tier`: one case for the
    tier (its latency decision, after its variants)."""
    name = getattr(metafunc.module, "PERFSUITE_MATRIX", "cpu")
    pattern = metafunc.config.getoption("perfsuite_select")
    if "perf_tier" in metafunc.fixturenames:
        session = perf_session(metafunc.config, name)
        marks = [getattr(pytest.mark, m) for m in session.settings.markers]
        metafunc.parametrize("perf_tier", [pytest.param(name, id=session.settings.name, marks=marks)])
    for fixture in ("perf_variant", "perf_pair"):
        if fixture not in metafunc.fixturenames:
            continue
        session = perf_session(metafunc.config, name)
        if fixture == "perf_variant":
            items, why = session.matrix.select(pattern), session.skip_reason
        else:
            items, why = session.matrix.select_relative(pattern), session.relative_skip_reason
        params = []
        for item in items:
            marks = [getattr(pytest.mark, m) for m in session.settings.markers]
            reason = why(item)
            if reason:
                marks.append(pytest.mark.skip(reason=f"{item.id}: {reason}"))
            params.append(pytest.param((name, item), id=item.id, marks=marks))
        metafunc.parametrize(fixture, params)


def benchmark_sampler(benchmark):
    """pytest-benchmark does the sampling (its table and --benchmark-* options apply), in the
    runner's timing state (the collector off: runner.timing), whatever the command line says."""

    def sample(fn, rounds: int, warmup_rounds: int, between=None) -> list[float]:
        setup = (lambda: between() and None) if between is not None else None  # pedantic wants None back
        with timing():
            benchmark.pedantic(fn, setup=setup, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
        stats = getattr(benchmark, "stats", None)
        if stats is None:  # --benchmark-disable: pedantic ran fn once without timing
            return perf_counter_sampler(fn, rounds, 0, between)
        return list(stats.stats.data)

    return sample


@pytest.fixture
def perf_outcome(perf_variant, request: pytest.FixtureRequest) -> Outcome:
    """Run one variant and judge it against this machine's baseline."""
    name, variant = perf_variant
    session = perf_session(request.config, name)
    benchmark = request.getfixturevalue("benchmark")
    return session.run(variant, sampler=benchmark_sampler(benchmark))


@pytest.fixture
def perf_pair_outcome(perf_pair, request: pytest.FixtureRequest) -> PairOutcome:
    """Time one relative bound's two variants interleaved and check the ratio."""
    name, bound = perf_pair
    return perf_session(request.config, name).run_relative(bound)


@pytest.fixture
def perf_latency(perf_tier, request: pytest.FixtureRequest) -> PerfSession:
    """The tier's latency decided over every variant this session timed (judge/latency.py)."""
    session = perf_session(request.config, perf_tier)
    session.decide_latency()
    return session


def assert_latency(session: PerfSession) -> None:
    """Fail naming every variant whose latency failed; skip where nothing was decided."""
    if session.latency is None:
        pytest.skip(
            f"{session.settings.name}: no variant's latency was pending here (no machine record, "
            "a rebaseline, judge_latency = false, or no variant ran)"
        )
    failed = [o for o in session.outcomes if any(c.kind == "latency" and not c.ok for c in o.verdict.checks)]
    if failed:
        lines = [f"{len(failed)} variant(s) slower than their latency tolerance:"]
        lines += [f"  {o.variant.id}: {c.describe()}" for o in failed for c in o.verdict.failed if c.kind == "latency"]
        pytest.fail("\n".join([*lines, *session.latency.summary(session.settings.latency_alpha)]), pytrace=False)


def _assert_verdict(verdict: Verdict, case_id: str) -> None:
    if verdict.status == "fail":
        pytest.fail(verdict.message(case_id), pytrace=False)
    if verdict.status == "skip":
        pytest.skip(verdict.message(case_id))


def assert_pair_outcome(outcome: PairOutcome) -> None:
    """Fail naming the relative bound, its interval and band; skip when a side cannot run here."""
    _assert_verdict(outcome.verdict, outcome.bound.id)


def assert_outcome(outcome: Outcome) -> None:
    """Fail with every broken bound named; skip (with how to fix) when there is no baseline."""
    _assert_verdict(outcome.verdict, outcome.variant.id)


def _case_variant(item: pytest.Item) -> tuple[str, str] | None:
    """(matrix name, a variant id) of a perf case, or None for other tests."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if isinstance(params.get("perf_variant"), tuple):
        return params["perf_variant"][0], params["perf_variant"][1].id
    if isinstance(params.get("perf_pair"), tuple):  # not NOTSET: a matrix with no relative bound
        return params["perf_pair"][0], params["perf_pair"][1].variant.id
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --perfsuite-shard i/n, deselect the perf cases of the other shards."""
    text = config.getoption("perfsuite_shard")
    if not text:
        return
    try:
        index, count = parse_shard(text)
    except MatrixError as exc:
        raise pytest.UsageError(str(exc)) from None
    keep, drop = [], []
    assignments: dict[str, dict[str, int]] = {}  # per matrix, computed once
    for item in items:
        case = _case_variant(item)
        if case is None:
            keep.append(item)
            continue
        name, variant_id = case
        if name not in assignments:
            assignments[name] = shard_assignment(perf_session(config, name).matrix, count)
        (keep if assignments[name][variant_id] == index else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    """Put collected-but-skipped variants into the table, so nothing is silently dropped; and
    check --perfsuite-history before the first variant runs (a usage error, exit 4)."""
    _check_history(session)
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or item.get_closest_marker("skip") is None:
            continue
        if isinstance(callspec.params.get("perf_variant"), tuple):
            name, variant = callspec.params["perf_variant"]
            perf_session(session.config, name).add_skipped(variant)
        if isinstance(callspec.params.get("perf_pair"), tuple):  # not NOTSET (no relative bound)
            name, bound = callspec.params["perf_pair"]
            perf_session(session.config, name).add_skipped_pair(bound)


def _check_history(session: pytest.Session) -> None:
    """A history that cannot take the run is said before anything is timed, not after."""
    target = session.config.getoption("perfsuite_history")
    if not target or session.config.option.collectonly or not session.config.stash.get(_SESSIONS, {}):
        return
    if not any(_case_variant(item) for item in session.items):
        return
    from perfsuite.history.store import HistoryError, check_history

    try:
        check_history(target)
    except HistoryError as exc:
        raise pytest.UsageError(f"--perfsuite-history: {exc}") from None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Latency still pending is decided here (a test module may leave out test_latency_decision),
    and a latency failure fails the session. A rebaseline commits its records together here -
    or, interrupted, none of them. Then (the terminal summary writes the reports and appends the
    run) a run the history refused fails the session: the red line alone would leave CI green
    with the run lost."""
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    failed_latency = False
    for perf in session.config.stash.get(_SESSIONS, {}).values():
        if perf.latency is None and not interrupted:  # a test module without test_latency_decision
            perf.decide_latency()
        failed_latency |= any(c.kind == "latency" for o in perf.outcomes for c in o.verdict.failed)
        perf.finish(interrupted=interrupted)
    result = yield
    lost = session.config.stash.get(_HISTORY_LOST, False)
    if (lost or failed_latency) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return result


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if config.option.collectonly:
        return  # nothing ran: the last run's reports stay as they are
    for session in config.stash.get(_SESSIONS, {}).values():
        if not session.outcomes and not session.pair_outcomes and not session.finish_note:
            continue
        report = session.report(config.getoption("perfsuite_shard"))
        root = Path(config.getoption("perfsuite_report_dir") or Path(config.rootpath) / "reports" / "perfsuite")
        folder = report.write(root / report.tier)  # written before rendering: a render error loses nothing
        terminalreporter.section(f"perfsuite {report.tier} tier on {report.machine_key}")
        terminalreporter.write(report.render())
        terminalreporter.write_line(f"perfsuite reports: {folder.resolve()}")
        for line in report.footer:
            terminalreporter.write_line(line)
        if report.warning:
            terminalreporter.write_line(report.warning, yellow=True, bold=True)
        _append_history(terminalreporter, config, folder / "report.json")


def _append_history(terminalreporter, config: pytest.Config, report_file: Path) -> None:
    """With --perfsuite-history: the run goes into the history; a history that refuses it is a
    red line naming it and a failed session (the report stays where it was written, for
    `perfsuite history add`)."""
    target = config.getoption("perfsuite_history")
    if not target:
        return
    from perfsuite.history.ingest import append_run

    try:
        terminalreporter.write_line(append_run(target, report_file))
    except ValueError as exc:
        config.stash[_HISTORY_LOST] = True
        terminalreporter.write_line(f"perfsuite history: {exc} - {report_file} was not added", red=True, bold=True)
