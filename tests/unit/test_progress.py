"""Progress lines: count, share, elapsed and ETA, one per step where there is no terminal."""

from __future__ import annotations

import io

from perfsuite.progress import Progress


def test_without_a_terminal_each_step_is_a_line_with_count_and_eta():
    out = io.StringIO()
    with Progress(4, "variants", stream=out, bar=False) as progress:
        for name in ("a", "b", "c", "d"):
            progress.advance(f"{name}: pass")
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("[1/4 25%, ") and "ETA" in lines[0] and lines[0].endswith("] a: pass")
    assert lines[-1].startswith("[4/4 100%, ") and "ETA" not in lines[-1]


def test_on_a_terminal_a_rich_bar_runs_and_stops():
    out = io.StringIO()
    with Progress(2, "runs", stream=out, bar=True) as progress:
        progress.advance("one")
        progress.advance("two")
    assert "[2/2 100%" in out.getvalue()


def test_the_cli_run_prints_progress_lines(tmp_path, capsys):
    from perfsuite.cli import main
    from tests.conftest import write_matrix

    matrix = write_matrix(tmp_path, rows=4, paddings=("static", "sorted"))
    argv = ["run", "--matrix", str(matrix), "--baselines", str(tmp_path / "bl"), "--report-dir", str(tmp_path / "r")]
    main(argv)
    err = capsys.readouterr().err
    assert "[1/2 50%, " in err and "[2/2 100%, " in err and "tiny-llama3-fp32-sdpa-sorted: skip" in err
