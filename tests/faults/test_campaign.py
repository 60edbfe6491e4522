"""The fault campaign: every bad input and fault of issue #16, tried through the CLI as a user
would meet it; each must be contained with a clear message, and every stored baseline - the
campaign's own and the project's - must be byte-identical afterwards.

    pytest tests/faults -v        # the table in docs/reliability.md comes from this run
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from perfsuite.cli import main
from tests.conftest import write_matrix

PROJECT_BASELINES = Path(__file__).parents[2] / "baselines"
HEADER = "id,model_a,model_b,prompt,response_a,response_b,winner_model_a,winner_model_b,winner_tie\n"


def _line(i, prompt='"[""hi there""]"', labels="1,0,0"):
    return f'{i},m1,m2,{prompt},"[""a""]","[""b""]",{labels}\n'


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.json"))}


@pytest.fixture(scope="module")
def project_baselines_before():
    before = _tree_digest(PROJECT_BASELINES)
    yield before
    assert _tree_digest(PROJECT_BASELINES) == before, "the campaign changed a project baseline"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, project_baselines_before):
    """A tiny tier with its baselines recorded once; every case runs against a copy of them."""
    root = tmp_path_factory.mktemp("campaign")
    # Faults, not speed, are under test: the other variants must run and be judged, and a
    # 10 ms pass in a process that has run other cases moved 1.43x once (CI, 2026-11-28), so
    # latency gets the plugin tests' 2.5x allowance here (it is still judged).
    matrix = write_matrix(root, rows=4, paddings=("static", "sorted"), latency_tolerance=1.5)
    argv = ["rebaseline", "--matrix", str(matrix), "--baselines", str(root / "bl"), "--report-dir", str(root / "r")]
    assert main(argv) == 0
    return matrix, root / "bl"


@pytest.fixture
def tier(recorded, tmp_path):
    import shutil

    matrix, baselines = recorded
    copy = tmp_path / "bl"
    shutil.copytree(baselines, copy)
    before = _tree_digest(copy)
    yield matrix, copy
    assert _tree_digest(copy) == before, "a stored baseline changed"


def _run(matrix, baselines, tmp_path, *extra) -> list[str]:
    return ["run", "--matrix", str(matrix), "--baselines", str(baselines), "--report-dir", str(tmp_path / "r"), *extra]


# -- malformed rows: each skipped with its line, id and reason; the run goes on ----------------
ROW_FAULTS = {
    "not JSON": (_line(2, prompt='"not json"'), "prompt is not JSON"),
    "JSON but not a list": (_line(2, prompt='"{""a"": 1}"'), "not a list of strings"),
    "labels not one-hot": (_line(2, labels="1,1,0"), "not one-hot"),
    "labels not numbers": (_line(2, labels="x,0,0"), "label columns are not numbers"),
    "labels incomplete": (_line(2, labels="1,,"), "label columns incomplete"),
    "label 1e999": (_line(2, labels="1e999,0,0"), "not one-hot"),
    "JSON nested 100,000 deep": (_line(2, prompt='"' + "[" * 100_000 + "]" * 100_000 + '"'), "RecursionError"),
    "too few fields": ("2,m1,m2\n", "prompt is missing"),
    "duplicate id": (_line(1), "duplicate id 1 (first at line 2)"),
}


@pytest.mark.parametrize("fault", list(ROW_FAULTS))
def test_a_malformed_row_is_skipped_with_its_line_and_the_run_goes_on(fault, tier, tmp_path, capsys):
    matrix, baselines = tier
    bad, reason = ROW_FAULTS[fault]
    data = tmp_path / "data.csv"
    data.write_text(HEADER + _line(1) + bad + "".join(_line(i) for i in range(3, 7)))
    code = main(_run(matrix, baselines, tmp_path, "--data", str(data)))
    err = capsys.readouterr().err
    assert code in (0, 1)  # the variants ran (judged against records of other data: skipped or passed)
    assert "line 3 (id" in err and reason in err, err


# -- file-level problems: one error naming the file and the line, exit 2 ------------------------
FILE_FAULTS = {
    "missing file": (None, "no such data file"),
    "empty file": (b"", "empty file"),
    "missing columns": (b"id,prompt\n1,[]\n", "missing column(s) response_a, response_b"),
    "not UTF-8": ((HEADER + _line(1)).encode() + b'2,m1,m2,"[""h\xe9""]","[]","[]",1,0,0\n', "line 3: not UTF-8"),
    "unterminated quote": ((HEADER + _line(1) + '2,m1,m2,"[""open,x,y,1,0,0\n').encode(), "line 3: a quoted field"),
    "no usable row": ((HEADER + _line(1, prompt='"nope"')).encode(), "no usable rows"),
}


@pytest.mark.parametrize("fault", list(FILE_FAULTS))
def test_a_file_that_cannot_be_used_is_one_error_exit_2(fault, tier, tmp_path, capsys):
    matrix, baselines = tier
    content, message = FILE_FAULTS[fault]
    data = tmp_path / "data.csv"
    if content is not None:
        data.write_bytes(content)
    assert main(_run(matrix, baselines, tmp_path, "--data", str(data))) == 2
    err = capsys.readouterr().err
    assert err.startswith("perfsuite: ") and "data.csv" in err and message in err and "Traceback" not in err


def test_a_byte_order_mark_is_no_fault(tier, tmp_path, capsys):
    matrix, baselines = tier
    data = tmp_path / "data.csv"
    data.write_bytes(("\ufeff" + HEADER + "".join(_line(i) for i in range(1, 6))).encode())
    assert main(_run(matrix, baselines, tmp_path, "--data", str(data))) in (0, 1)
    assert "4 rows read, 4 kept, 0 values repaired, 0 skipped" in capsys.readouterr().err  # the tier reads 4


# -- stored records that cannot be used: that variant fails naming the file; nothing rewritten --
def _damage(path: Path, how: str) -> None:
    if how == "corrupt":
        path.write_text("{ not json")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif how == "foreign schema":
        path.write_text(json.dumps({"schema": 99, "variant": path.stem, "kind": "portable"}))


@pytest.mark.parametrize("how", ["corrupt", "truncated", "foreign schema"])
def test_an_unusable_baseline_fails_its_variant_naming_the_file(how, recorded, tmp_path, capsys):
    import shutil

    matrix, baselines = recorded
    copy = tmp_path / "bl"
    shutil.copytree(baselines, copy)
    victim = sorted((copy / "portable").rglob("*.json"))[0]
    _damage(victim, how)
    before = _tree_digest(copy)
    assert main(_run(matrix, copy, tmp_path)) == 1
    rows = {v["variant"]: v for v in json.loads((tmp_path / "r" / "report.json").read_text())["variants"]}
    assert rows[victim.stem]["status"] == "fail" and str(victim) in rows[victim.stem]["reason"], rows[victim.stem]
    others = [v for name, v in rows.items() if name != victim.stem]
    assert others and all(v["status"] == "pass" for v in others)  # the rest judged as usual
    assert _tree_digest(copy) == before  # the damaged file is reported, not "repaired" or replaced


# -- names that would write outside their folder ------------------------------------------------
def test_a_traversal_tier_name_is_exit_2_and_writes_nothing(tmp_path, capsys):
    matrix = write_matrix(tmp_path / "m")
    matrix.write_text(matrix.read_text().replace('name = "unit"', 'name = "../../escaped"'))
    assert main(["run", "--matrix", str(matrix), "--baselines", str(tmp_path / "bl")]) == 2
    assert "[tier] name '../../escaped' is not a safe name" in capsys.readouterr().err
    assert not list(tmp_path.rglob("escaped*"))


def test_a_traversal_machine_for_fit_is_exit_2(tmp_path, capsys):
    assert main(["fit", "--machine", "../../x", "--baselines", str(tmp_path / "bl")]) == 2
    assert "--machine '../../x' is not a safe name" in capsys.readouterr().err


# -- interrupted and concurrent rebaselines ---------------------------------------------------
def test_an_interrupted_rebaseline_changes_no_record(tier, tmp_path, monkeypatch, capsys):
    from perfsuite import session as session_module

    matrix, baselines = tier
    real, calls = session_module.PerfSession.run, []

    def interrupt_second(self, variant, *args, **kwargs):
        calls.append(variant)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, variant, *args, **kwargs)

    monkeypatch.setattr(session_module.PerfSession, "run", interrupt_second)
    argv = ["rebaseline", "--matrix", str(matrix), "--baselines", str(baselines), "--report-dir", str(tmp_path / "r")]
    assert main(argv) == 130
    assert "interrupted: no baseline changed" in capsys.readouterr().out


def test_a_concurrent_rebaseline_of_the_same_machine_refuses(tier, tmp_path, capsys):
    from perfsuite.device.machine import detect

    matrix, baselines = tier
    hold = "import sys,time\nfrom perfsuite.store.baselines import RebaselineLock\n"
    hold += "RebaselineLock(sys.argv[1], sys.argv[2]).acquire(); print('held', flush=True); time.sleep(60)\n"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(baselines), detect("cpu").machine_key()], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        argv = ["rebaseline", "--matrix", str(matrix), "--baselines", str(baselines)]
        assert main([*argv, "--report-dir", str(tmp_path / "r")]) == 2
        assert f"another rebaseline of {detect('cpu').machine_key()} is running (pid {holder.pid}" in (
            capsys.readouterr().err
        )
    finally:
        holder.kill()
        holder.wait()


# -- faults inside a run: contained to their variant ------------------------------------------
def test_an_out_of_memory_fails_its_variant_with_the_shape_and_the_others_run(tier, tmp_path, monkeypatch, capsys):
    import torch

    from perfsuite.measure import runner

    matrix, baselines = tier

    def oom_on_static(prepared):
        if prepared.variant.padding == "static":

            def forward(*args, **kwargs):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (emulated)")

            prepared.model.forward = forward

    monkeypatch.setattr(runner.HOOKS, "after_prepare", [oom_on_static])
    assert main(_run(matrix, baselines, tmp_path)) == 1
    rows = {v["variant"]: v for v in json.loads((tmp_path / "r" / "report.json").read_text())["variants"]}
    static = rows["tiny-llama3-fp32-sdpa-static"]
    assert static["status"] == "fail", static
    assert "run failed: MemoryError: out of memory at batch shape 2x96 (batch x seq_len)" in static["reason"]
    assert rows["tiny-llama3-fp32-sdpa-sorted"]["status"] == "pass"  # the other variant ran and was judged


def test_a_nan_producing_dtype_fails_the_guard_with_a_count(tier, tmp_path, monkeypatch, capsys):
    from perfsuite.measure import runner

    matrix, baselines = tier
    real = runner._forward_pass

    def nan_logits(model, batches, device):
        return [out * float("nan") for out in real(model, batches, device)]

    monkeypatch.setattr(runner, "_forward_pass", nan_logits)
    assert main(_run(matrix, baselines, tmp_path)) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "non-finite" in out


def test_a_hung_selftest_child_is_killed_and_named(tmp_path, monkeypatch):
    from perfsuite import selftest

    real = subprocess.run

    def hang(cmd, **kwargs):
        if "perfsuite.selftest" in cmd:  # the selftest's child, not other subprocesses (uname ...)
            raise subprocess.TimeoutExpired(cmd, kwargs.get("timeout"))
        return real(cmd, **kwargs)

    monkeypatch.setattr(selftest.subprocess, "run", hang)
    report = selftest.selftest(1, 0, out_dir=tmp_path, child_timeout_s=1)
    assert report["failed_runs"] and "no result within 1 s, child killed" in report["failed_runs"][0]
