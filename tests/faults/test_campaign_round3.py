"""The fault campaign, round 3 (issue #38): the history, the plugin and the CLI under hostile
input. Each case is tried as a user meets it - through the CLI or pytest - and names what it
refuses: a wrong answer becomes exit 2 naming the option or field, a password never reaches a
terminal, a read command never creates or repairs a store, and nothing stored changes.

    pytest tests/faults -v        # the table in docs/reliability.md comes from this run
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.history.ingest import add_files
from perfsuite.history.store import HistoryStore
from tests.browser import browser_page, missing
from tests.conftest import write_matrix
from tests.faults.test_campaign_round2 import _usage_error
from tests.unit.history_data import report, write
from tests.unit.test_history_wiring import TEST_MODULE

V = "tiny-llama3-fp32-sdpa-sorted"
PASSWORD = "S3cretPW"


def _one_line_error(capsys, argv, *names, code: int = 2) -> str:
    assert main(argv) == code
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for name in names:
        assert name in err, (name, err)
    return err + captured.out


@pytest.fixture
def stepped(tmp_path) -> str:
    """A history whose latency steps +30% at run 10 (2026-11-01T10:00Z), unacknowledged."""
    db = str(tmp_path / "h.sqlite")
    docs = [report(i, {V: 100.0 * (1.3 if i >= 10 else 1.0) * (1 + 0.003 * (i % 3))}) for i in range(20)]
    with HistoryStore(db) as store:
        add_files(store, write(tmp_path / "runs", docs))
    return db


# -- 1. --since is a time, compared as a time ------------------------------------------------------
def test_since_that_is_not_a_date_is_exit_2_naming_since(stepped, capsys):
    _usage_error(capsys, ["history", "changes", "--history", stepped, "--since", "notadate"], "--since", "notadate")


@pytest.mark.parametrize(
    ("since", "listed"),
    [
        ("2026-11-01T19:00:00+09:00", True),  # 10:00Z: the change starts exactly then
        ("2026-11-01T19:30:00+09:00", False),  # 10:30Z
        ("2026-11-01 09:59", True),  # no offset: UTC
        ("2026-11-01 13:00", False),
        ("2026-11-01T10:00:00Z", True),
        ("2026-11-01", True),
    ],
)
def test_since_honours_the_offset_and_compares_times_not_text(stepped, since, listed, capsys):
    code = main(["history", "changes", "--history", stepped, "--since", since, "--json"])
    doc = json.loads(capsys.readouterr().out)
    latency = [c for c in doc["changes"] if c["metric"] == "latency_ms"]
    assert bool(latency) is listed, (since, doc["changes"])
    assert code == (1 if listed else 0)  # an alert is never turned into all clear by a bad filter


# -- 2. passwords masked, unserved schemes refused ----------------------------------------------
@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"PostgreSQL://postgres:{PASSWORD}@127.0.0.1:1/ph", "cannot connect"),
        (f"mysql://u:{PASSWORD}@127.0.0.1/db", "mysql:// scheme is not served"),
        (f"postgresql+asyncpg://u:{PASSWORD}@127.0.0.1/db", "postgresql+asyncpg:// scheme is not served"),
        (f"postgresql+psycopg2://u:{PASSWORD}@127.0.0.1/db", "postgresql+psycopg2:// scheme is not served"),
        (f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/db", "port 'notaport' is not a number"),
    ],
)
@pytest.mark.parametrize("command", ["changes", "add"])
def test_a_history_url_never_prints_its_password_and_unserved_schemes_are_exit_2(command, url, says, tmp_path, capsys):
    (path,) = write(tmp_path, [report(0, {V: 1.0})])
    argv = ["history", command, *([str(path)] if command == "add" else []), "--history", url]
    text = _one_line_error(capsys, argv, says)
    assert PASSWORD not in text and "***" in text


def test_run_refuses_an_unserved_history_before_the_first_variant_without_its_password(tmp_path, capsys):
    matrix = write_matrix(tmp_path, rows=4)
    argv = ["run", "--matrix", str(matrix), "--baselines", str(tmp_path / "bl"), "--report-dir", str(tmp_path / "r")]
    text = _one_line_error(capsys, [*argv, "--history", f"mysql://u:{PASSWORD}@h/db"], "not served")
    assert PASSWORD not in text and not (tmp_path / "r").exists()  # nothing ran


# -- 4. the plugin: checked before the first variant; a lost run fails the session ---------------
def _plugin_dir(pytester, monkeypatch):
    monkeypatch.setenv("PERFSUITE_BUSY_SIGNALS", "quiet")
    pytester.makeini("[pytest]\nmarkers =\n    cpu: cpu\n    perf: perf\n")
    matrix = write_matrix(pytester.path, rows=4)
    pytester.makepyfile(test_tier=TEST_MODULE.format(matrix=str(matrix)))
    return ["-p", "no:cacheprovider", "--perfsuite-baselines", str(pytester.path / "bl")]


@pytest.mark.parametrize("kind", ["under a file", "unserved scheme"])
def test_the_plugin_refuses_a_bad_history_before_the_first_variant_with_exit_4(kind, pytester, monkeypatch):
    args = _plugin_dir(pytester, monkeypatch)
    (pytester.path / "afile").write_text("x")
    target = (
        str(pytester.path / "afile" / "dir" / "x.sqlite") if kind == "under a file" else f"mysql://u:{PASSWORD}@h/d"
    )
    result = pytester.runpytest_subprocess(*args, "--perfsuite-history", target)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "--perfsuite-history" in text and PASSWORD not in text
    assert "PASSED" not in text and not (pytester.path / "reports").exists()  # nothing was timed


def test_a_run_the_history_refuses_at_the_end_fails_the_session_and_keeps_the_report(pytester, monkeypatch):
    args = _plugin_dir(pytester, monkeypatch)
    db = pytester.path / "h.sqlite"
    # The history is good when checked; the run's own conftest ruins it before the append.
    pytester.makeconftest(f"def pytest_runtest_teardown(item):\n    open({str(db)!r}, 'wb').write(b'garbage' * 200)\n")
    result = pytester.runpytest_subprocess(*args, "--perfsuite-history", str(db), "--perfsuite-rebaseline")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*perfsuite history:*not a usable SQLite database*was not added*"])
    assert list((pytester.path / "reports").rglob("report.json"))  # the run is not lost


# -- 5. read commands open existing, complete stores only ------------------------------------------
@pytest.mark.parametrize(
    "command", [["changes"], ["show", "-k", "*"], ["html", "SITE"], ["ack", "c1", "--reason", "x"]]
)
def test_a_read_command_on_a_missing_history_is_exit_2_and_creates_nothing(command, tmp_path, capsys):
    typo = tmp_path / "typo.sqlite"
    argv = ["history", *[str(tmp_path / "site") if a == "SITE" else a for a in command], "--history", str(typo)]
    _one_line_error(capsys, argv, "no history at", str(typo))
    assert not typo.exists() and not (tmp_path / "site").exists()


def test_a_history_missing_a_table_is_exit_2_naming_it_and_is_not_recreated(stepped, capsys):
    with sqlite3.connect(stepped) as conn:
        conn.execute("DROP TABLE perfsuite_points")
    for argv in (["changes"], ["show", "-k", "*"]):
        _one_line_error(capsys, ["history", *argv, "--history", stepped], "perfsuite_points is missing")
    with sqlite3.connect(stepped) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
    assert "perfsuite_points" not in tables


def test_a_postgresql_url_without_a_database_is_refused_before_connecting(capsys):
    text = _one_line_error(
        capsys, ["history", "changes", "--history", f"postgresql://u:{PASSWORD}@127.0.0.1:1"], "names no database"
    )
    assert PASSWORD not in text


def test_a_schema_version_that_is_not_a_number_is_named(stepped, capsys):
    with sqlite3.connect(stepped) as conn:
        conn.execute("update perfsuite_meta set value = 'abc' where key = 'schema_version'")
    _one_line_error(capsys, ["history", "changes", "--history", stepped], "schema_version 'abc' is not a whole number")


# -- 11. a valid history in a read-only folder is read ----------------------------------------------
def test_a_history_in_a_read_only_folder_is_read_not_written(stepped, tmp_path, capsys):
    source = Path(stepped).parent
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here ({done.stderr.strip()}); as root it is the only way")
    try:
        before = (source / "h.sqlite").read_bytes()
        assert main(["history", "changes", "--history", str(mount / "h.sqlite")]) == 1  # the step alerts
        assert "1 unacknowledged regressions" in capsys.readouterr().out
        assert main(["history", "html", str(tmp_path / "site"), "--history", str(mount / "h.sqlite")]) == 0
        assert (source / "h.sqlite").read_bytes() == before
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# -- 6. ids that would end the embedded script -------------------------------------------------
HOSTILE = "tiny-<!--<script>-fp32-sdpa-sorted"


@pytest.fixture
def hostile_site(tmp_path) -> Path:
    db = str(tmp_path / "h.sqlite")
    docs = [report(i, {HOSTILE: 100.0 * (1.3 if i >= 10 else 1.0) * (1 + 0.003 * (i % 3))}) for i in range(20)]
    for d in docs:
        d["run"]["tier"] = "cpu</script><!--"
    with HistoryStore(db) as store:
        add_files(store, write(tmp_path / "runs", docs))
    out = tmp_path / "site"
    assert main(["history", "html", str(out), "--history", db]) == 0
    return out


def test_embedded_json_escapes_every_character_that_could_end_the_script(hostile_site):
    from perfsuite.history.dashboard import embedded_json

    assert (
        embedded_json({"a": "<!--<script>&</script>"})
        == '{"a":"\\u003c!--\\u003cscript\\u003e\\u0026\\u003c/script\\u003e"}'
    )
    for page in hostile_site.glob("*.html"):
        payload = page.read_text().split('<script id="data" type="application/json">', 1)[1].split("</script>", 1)[0]
        assert "<" not in payload and ">" not in payload and "&" not in payload, page.name


@pytest.mark.skipif(missing() is not None, reason=missing() or "")
def test_a_hostile_variant_id_renders_in_chromium_with_its_regression_listed(hostile_site):
    errors: list[str] = []
    with browser_page(errors) as page:
        page.goto((hostile_site / "index.html").as_uri())
        page.wait_for_selector("body[data-rendered]")
        assert page.get_attribute("body", "data-rendered") == "done"
        assert HOSTILE in page.locator("li.alert").first.text_content()  # the regression list, id shown as text
        tier_page = next(p for p in hostile_site.glob("tier-*.html"))
        page.goto(tier_page.as_uri())
        page.wait_for_selector("body[data-rendered]")
        assert page.locator(".uplot").count() >= 1  # the latency step: drawn, with the id as text
        assert json.loads(page.text_content("#data"))["variants"][0]["id"] == HOSTILE
    assert errors == []


# -- 8. html's folder ----------------------------------------------------------------------------
def test_html_into_a_folder_that_is_not_a_dashboard_is_refused_and_left_alone(stepped, tmp_path, capsys):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "index.html").write_text("my own page")
    _one_line_error(capsys, ["history", "html", str(theirs), "--history", stepped], "not a perfsuite dashboard")
    assert (theirs / "index.html").read_text() == "my own page" and len(list(theirs.iterdir())) == 1


def test_html_over_an_earlier_dashboard_replaces_it_and_says_so(stepped, tmp_path, capsys):
    site = tmp_path / "site"
    assert main(["history", "html", str(site), "--history", stepped]) == 0
    assert "replaced" not in capsys.readouterr().out
    assert main(["history", "html", str(site), "--history", stepped]) == 0
    assert "replaced the earlier dashboard" in capsys.readouterr().out


@pytest.mark.parametrize("out", ["", "afile/site"])
def test_html_into_an_empty_or_unwritable_folder_is_exit_2(out, stepped, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    _one_line_error(capsys, ["history", "html", out, "--history", stepped], "dashboard")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "h.sqlite", "runs"]


def test_html_with_a_selection_that_matches_nothing_is_exit_2_like_show(stepped, tmp_path, capsys):
    for argv in (["html", str(tmp_path / "site")], ["show"]):
        _one_line_error(capsys, ["history", *argv, "-k", "nomatch", "--history", stepped], "no series matches")
    assert not (tmp_path / "site").exists()


# -- 9. history add: wrong types --------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "says"), [("fast", "must be a number"), (True, "must be a number"), (-1.0, "cannot be negative")]
)
def test_history_add_refuses_a_figure_of_the_wrong_type_naming_file_and_field(value, says, tmp_path, capsys):
    doc = report(0, {V: 100.0})
    doc["variants"][0]["measurement"]["latency"]["median_s"] = value
    (path,) = write(tmp_path, [doc])
    db = tmp_path / "h.sqlite"
    _one_line_error(
        capsys,
        ["history", "add", str(path), "--history", str(db)],
        str(path),
        "variants[0].measurement.latency.median_s",
        says,
    )
    with HistoryStore(str(db)) as store:
        assert store.runs() == []


# -- 10. Ctrl-C while the CLI is still starting ---------------------------------------------------
@pytest.mark.parametrize("delay", [0.15, 0.4, 0.9])
def test_an_interrupt_while_the_cli_starts_is_exit_130_without_a_traceback(delay):
    proc = subprocess.Popen(
        [sys.executable, "-m", "perfsuite.cli", "matrix"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip(f"the command finished within {delay} s, before the interrupt")
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]


# -- 13, 14. help text ---------------------------------------------------------------------------
def _parsers() -> dict[str, object]:
    """Every parser the CLI builds, by prog ("perfsuite history changes"), as main builds them."""
    import argparse

    captured: dict[str, argparse.ArgumentParser] = {}
    original = argparse.ArgumentParser.parse_args

    def collect(parser, *_a, **_k):
        def walk(p: argparse.ArgumentParser) -> None:
            captured[p.prog] = p
            for action in p._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for child in action.choices.values():
                        walk(child)

        walk(parser)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = collect
    try:
        with contextlib.suppress(SystemExit):
            main(["matrix"])
    finally:
        argparse.ArgumentParser.parse_args = original
    return captured


def _helps() -> dict[str, str]:
    return {prog: parser.format_help() for prog, parser in _parsers().items()}


def test_every_option_and_argument_of_every_command_has_help_text():
    missing = [
        f"{prog} {action.dest}"
        for prog, parser in _parsers().items()
        for action in parser._actions
        if action.dest != "help" and not action.help and not action.__class__.__name__.startswith("_SubParsers")
    ]
    assert missing == []


def test_no_help_shows_a_none_or_false_default_or_a_default_twice():
    helps = _helps()
    assert len(helps) > 15 and "perfsuite history changes" in helps
    for prog, text in helps.items():
        flat = " ".join(text.split())
        assert "(default: None)" not in flat and "(default: False)" not in flat, prog
        for option in flat.split("  --")[1:]:
            assert option.count("default") <= 1 or "(default:" not in option, (prog, option)
    assert "(default: the bundled sample)" in " ".join(helps["perfsuite run"].split())


def test_compare_help_says_a_is_the_base_as_the_code_does():
    text = " ".join(_helps()["perfsuite compare"].split())
    assert "--base GIT_REV A = that revision of this repository (a git worktree), B = this checkout" in text


def test_show_width_must_be_a_whole_number_of_at_least_8(stepped, capsys):
    _usage_error(capsys, ["history", "show", "-k", "*", "--width", "-5", "--history", stepped], "--width")


def test_a_folder_given_as_a_gguf_says_it_is_a_folder(tmp_path):
    from perfsuite.models.gguf import GgufError, check_header

    with pytest.raises(GgufError, match="a folder, not a GGUF file"):
        check_header(tmp_path)


# -- 16. files a user writes get the umask's mode ------------------------------------------------
def test_reports_and_the_dashboard_get_the_umasks_mode_not_0600(stepped, tmp_path):
    from perfsuite.fileio import atomic_write_text

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "r" / "report.json", "{}")
        assert main(["history", "html", str(tmp_path / "site"), "--history", stepped]) == 0
    finally:
        os.umask(old)
    for written in [path, *(tmp_path / "site").glob("*.html")]:
        assert stat.S_IMODE(written.stat().st_mode) == 0o644, written


# -- 17. a second ack ----------------------------------------------------------------------------
def test_a_second_ack_of_one_change_keeps_the_first_reason_unless_replace(stepped, capsys):
    main(["history", "changes", "--history", stepped, "--json"])
    (change,) = [c for c in json.loads(capsys.readouterr().out)["changes"] if c["metric"] == "latency_ms"]
    cid = change["change"]
    assert main(["history", "ack", cid, "--reason", "kernel change, intended", "--history", stepped]) == 0
    capsys.readouterr()
    _one_line_error(
        capsys,
        ["history", "ack", cid, "--reason", "other", "--history", stepped],
        "kernel change, intended",
        "--replace",
    )
    assert main(["history", "ack", cid, "--reason", "other", "--replace", "--history", stepped]) == 0
    assert "replaced the reason" in capsys.readouterr().out
    with HistoryStore(stepped) as store:
        assert [a.reason for a in store.acks()] == ["other"]


# -- 12. a series of busy runs only ---------------------------------------------------------------
def test_a_series_of_busy_runs_only_prints_no_numpy_warning(tmp_path, capsys):
    import warnings

    docs = [report(i, {V: 100.0 + i}) for i in range(6)]
    for d in docs:
        d["variants"][0]["measurement"]["latency"]["other_cpu_share"] = 0.9  # every run busy
    db = str(tmp_path / "h.sqlite")
    with HistoryStore(db) as store:
        add_files(store, write(tmp_path / "runs", docs))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "Mean of empty slice", "Degrees of freedom <= 0"
        assert main(["history", "changes", "--history", db]) == 0
        assert main(["history", "show", "-k", V, "--history", db]) == 0
    assert "Warning" not in capsys.readouterr().err
