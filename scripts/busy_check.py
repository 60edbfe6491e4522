"""Run part of the CPU tier while other processes keep the cores busy, and count false failures.

An unchanged checkout must not fail on a busy machine: latency should read "undecided:
machine busy" while work, quality, reference and relative bounds still judge. This starts
`--loops` busy-loop processes (pure Python spinning, as another job on a shared runner
would), runs `perfsuite run -k SELECT` beside them, stops them, and tallies report.json.

    python scripts/busy_check.py                       # 2 loops, fp32 llama/mistral variants
    python scripts/busy_check.py --loops 0             # the same, quiet, for comparison
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_SELECT = "tiny-llama3-fp32-*,tiny-mistral-fp32-*"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("-k", "--select", default=DEFAULT_SELECT)
    parser.add_argument("--report-dir", default="reports/busy")
    args = parser.parse_args()
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.loops)]
    t0 = time.perf_counter()
    try:
        cmd = [sys.executable, "-m", "perfsuite.cli", "run", "-k", args.select, "--report-dir", args.report_dir]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    elapsed = time.perf_counter() - t0
    report = json.loads((Path(args.report_dir) / "report.json").read_text(encoding="utf-8"))
    ran = [v for v in report["variants"] if v["status"] != "skip" or v["measurement"]]
    failed = [v for v in ran if v["status"] == "fail"]
    undecided = [v for v in ran if "undecided" in str(v["judged"].get("latency", ""))]
    judged = [v for v in ran if v["judged"].get("latency") is True]
    rel_failed = [r for r in report["relative"] if r["status"] == "fail"]
    print(f"busy loops: {args.loops}; {len(ran)} variants ran in {elapsed:.0f} s (exit {proc.returncode})")
    print(f"failed: {len(failed)} variants, {len(rel_failed)} of {len(report['relative'])} relative bounds")
    for v in failed:
        kinds = sorted({c["kind"] for c in v["checks"] if not c["ok"]}) or [v["reason"]]
        print(f"  {v['variant']}: {', '.join(kinds)}")
    for r in rel_failed:
        print(f"  {r['bound']}:{r['variant']}: {', '.join(c['kind'] for c in r['checks'] if not c['ok'])}")
    print(f"latency judged: {len(judged)}; undecided (machine busy): {len(undecided)}")
    for v in undecided:
        print(f"  {v['variant']}: {v['judged']['latency']}")
    medians = [v["measurement"]["latency"]["median_s"] for v in ran if v["measurement"]]
    print(f"median pass times: {min(medians) * 1000:.0f}-{max(medians) * 1000:.0f} ms" if medians else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
