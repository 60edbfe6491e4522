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
