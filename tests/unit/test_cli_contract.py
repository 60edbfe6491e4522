"""The CLI's contract: --version, --help with defaults, an example and the exit codes, and exit 3
with a logged traceback for an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfsuite import __version__
from perfsuite.cli import EXAMPLES, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"perfsuite {__version__}"


@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_every_subcommand_help_shows_defaults_an_example_and_the_exit_codes(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert f"example:\n  {EXAMPLES[command]}" in text
    assert "exit codes:" in text and "3  internal error" in text
    if command == "budget":
        assert "(default: 25000)" in text and "(default: 9h)" in text


def test_an_internal_error_is_exit_3_with_the_traceback_in_a_log(monkeypatch, capsys):
    from perfsuite.cli import run as cli

    def boom(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_merge", boom)
    assert main(["merge", "x.json"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("perfsuite: internal error: RuntimeError: a bug (traceback in ")
    log = err.rsplit("traceback in ", 1)[1].rstrip(")\n")
    assert "Traceback (most recent call last)" in Path(log).read_text(encoding="utf-8")


def test_the_workload_options_are_defined_once_for_the_plugin_and_the_cli(pytester, capsys):
    """`--perfsuite-rows 0` was a plain int the session silently dropped; now one definition serves both."""
    import argparse

    from perfsuite.matrix.options import add_workload_options

    parser = argparse.ArgumentParser()
    add_workload_options(parser.add_argument)
    assert [a.dest for a in parser._actions[1:]] == ["rows", "batch_size", "max_length"]
    with pytest.raises(SystemExit):
        main(["run", "--rows", "0"])
    assert "argument --rows: '0' must be at least 1" in capsys.readouterr().err
    result = pytester.runpytest_inprocess("--perfsuite-rows", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --perfsuite-rows: '0' must be at least 1*"])
