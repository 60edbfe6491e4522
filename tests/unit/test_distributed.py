"""Sharding across devices: balanced even/odd split, and a real 2-process run (gloo, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from perfsuite.measure.distributed import ScalingReport, shard_rows
from tests.conftest import write_matrix


def test_even_odd_split_of_the_length_sorted_rows():
    rows = [3, 9, 1, 7, 5, 8]
    assert shard_rows(rows, 0, 2, key=lambda r: r) == [9, 7, 3]
    assert shard_rows(rows, 1, 2, key=lambda r: r) == [8, 5, 1]


def test_shards_cover_every_row_once():
    rows = list(range(11))
    shards = [shard_rows(rows, r, 3, key=lambda x: x) for r in range(3)]
    assert sorted(x for s in shards for x in s) == rows


def test_rank_outside_world_is_an_error():
    with pytest.raises(ValueError, match="rank 2 outside world of 2"):
        shard_rows([1], 2, 2)


def test_scaling_report_arithmetic():
    report = ScalingReport("v", 2, 1.0, (0.55, 0.5), (4, 4))
    assert report.speedup == pytest.approx(1 / 0.55)
    assert report.efficiency == pytest.approx(1 / 1.1)
    assert "scaling efficiency 91%" in report.render()


GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


@pytest.mark.slow
def test_torchrun_two_processes_shard_one_variant(tmp_path):
    matrix = write_matrix(tmp_path, rows=4)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "perfsuite.cli", "shard", "--matrix", str(matrix), "-k", "tiny-llama3-fp32-sdpa-sorted",
        "--baselines", str(tmp_path / "b"),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0 and GLOO_TEARDOWN_ABORT in result.stderr:
        # Seen in a clean-clone CI run (2026-11-27), not reproduced in 6 direct runs: a rank dies in
        # gloo's C++ teardown (pytorch/pytorch#190489 shows the same message). One rerun; a
        # second abort, or any other failure, fails the test.
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "shard 0: 2 rows" in result.stdout and "shard 1: 2 rows" in result.stdout
    assert "scaling efficiency" in result.stdout


HANGING_RANK = """
import os, time
from types import SimpleNamespace
from perfsuite.measure.distributed import run_sharded

rank = int(os.environ["RANK"])
row = SimpleNamespace(input_ids=[1, 2, 3])
resolved = SimpleNamespace(encoded=SimpleNamespace(rows=[row, row], swapped=None))

def resolve(variant):
    if rank == 1:
        time.sleep(60)  # a rank that hangs while rank 0 waits at the next collective
    return resolved

session = SimpleNamespace(
    caps=SimpleNamespace(has_cuda=False),
    resolve=resolve,
    measure=lambda r, part, swapped: SimpleNamespace(latency_samples=[0.01]),
)
run_sharded(session, SimpleNamespace(id="tiny-llama3-fp32-sdpa-sorted"))
"""


@pytest.mark.slow
def test_a_hung_rank_times_out_the_collective_naming_variant_rank_and_step(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(HANGING_RANK)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    env = {**os.environ, "PERFSUITE_COLLECTIVE_TIMEOUT_S": "5"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert result.returncode != 0
    assert "tiny-llama3-fp32-sdpa-sorted: rank 0: collective" in result.stderr
    assert "limit 5 s, PERFSUITE_COLLECTIVE_TIMEOUT_S" in result.stderr
