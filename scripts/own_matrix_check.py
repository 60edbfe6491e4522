"""A user's own matrix recorded and run straight after, again and again: latency false alarms.

The scenario of the issue "Detection you can quote": two models declared by config.json
(Qwen2-0.5B's, shipped in examples/my-model, and a Llama-3-8B-shaped one written here),
8 rows, max_length 256, fp32, eager/sdpa, static/sorted padding: passes of 10-30 ms. Each
cycle runs `perfsuite rebaseline` and then `perfsuite run` in fresh processes, for every
`--processes` setting given (interleaved cycle by cycle, so load hits all alike), and counts
the variants whose latency failed or was left undecided (judge/latency.py). With `--slow
VARIANT`, the `run` of each cycle makes that variant 50% slower (the selftest's busy-wait
injection), to count catches instead.

    python scripts/own_matrix_check.py --cycles 10 --processes 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MATRIX = """
[tier]
name = "own"
rows = 8
max_length = 256

[[models]]
name = "my-qwen2"
config = "qwen2/config.json"

[[models]]
name = "my-llama"
config = "llama/config.json"

[axes]
dtype = ["fp32"]
attention = ["eager", "sdpa"]
padding = ["static", "sorted"]
"""

RUN_SLOW = """
import json, sys
from perfsuite.selftest import Scenario, install
install(Scenario("slow", float(sys.argv[1]), sys.argv[2]))
from perfsuite.cli import main
raise SystemExit(main(sys.argv[3:]))
"""


def write_matrix(folder: Path) -> Path:
    from transformers import LlamaConfig

    (folder / "qwen2").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "examples/my-model/qwen2-0.5b/config.json", folder / "qwen2/config.json")
    shape = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32}
    llama = LlamaConfig(**shape, num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0)
    (folder / "llama").mkdir(exist_ok=True)
    llama.to_json_file(str(folder / "llama/config.json"))
    path = folder / "own.toml"
    path.write_text(MATRIX, encoding="utf-8")
    return path


def latency_failures(report: Path) -> tuple[list[str], list[str]]:
    """(the variants whose latency failed, those left undecided), each with its figures."""
    data = json.loads(report.read_text(encoding="utf-8"))
    failed, undecided = [], []
    for v in data["variants"]:
        for c in v.get("checks", []):
            if c["kind"] == "latency" and not c["ok"]:
                failed.append(f"{v['variant']} {c['measured']} ({c['detail']})")
        why = (v.get("judged") or {}).get("latency")
        if isinstance(why, str) and why.startswith("undecided"):
            undecided.append(f"{v['variant']}: {why}")
    return failed, undecided


def cli(args: list[str], slow: tuple[float, str] | None = None) -> subprocess.CompletedProcess:
    head = [sys.executable, "-c", RUN_SLOW, str(slow[0]), slow[1]] if slow else [sys.executable, "-m", "perfsuite.cli"]
    return subprocess.run([*head, *args], capture_output=True, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--processes", default="3", help="settings of rebaseline --processes to interleave")
    parser.add_argument("--slow", default=None, help="make this variant 50%% slower in every run")
    parser.add_argument("--out", default="reports/own-matrix")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    matrix = write_matrix(out / "matrix")
    settings = [int(x) for x in args.processes.split(",")]
    results: dict[int, list[dict]] = {p: [] for p in settings}
    for cycle in range(args.cycles):
        for p in settings:
            base, rep = out / f"baselines-p{p}", out / f"p{p}-c{cycle}"
            t0 = time.perf_counter()
            rec = cli(["rebaseline", "--matrix", str(matrix), "--baselines", str(base), "--processes", str(p),
                       "--report-dir", str(rep / "record")])  # fmt: skip
            if rec.returncode != 0:
                print(rec.stdout[-2000:], rec.stderr[-2000:])
                return 3
            slow = (0.5, args.slow) if args.slow else None
            run_args = ["run", "--matrix", str(matrix), "--baselines", str(base), "--report-dir", str(rep / "run")]
            run = cli(run_args, slow)
            failures, undecided = latency_failures(rep / "run" / "report.json")
            results[p].append({"cycle": cycle, "exit": run.returncode, "latency_failed": failures,
                               "latency_undecided": undecided,
                               "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
            print(f"cycle {cycle + 1} processes={p}: exit {run.returncode}, latency failed {len(failures)}, "
                  f"undecided {len(undecided)}: {'; '.join(failures + undecided) or '-'} "
                  f"({results[p][-1]['seconds']} s)", flush=True)  # fmt: skip
    (out / "own-matrix.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    for p, rows in results.items():
        cycles_with = sum(bool(r["latency_failed"]) for r in rows)
        total = sum(len(r["latency_failed"]) for r in rows)
        undecided = sum(len(r["latency_undecided"]) for r in rows)
        print(f"processes={p}: {cycles_with} of {len(rows)} cycles with a latency failure ({total} variant "
              f"failures, {undecided} variant timings undecided)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
