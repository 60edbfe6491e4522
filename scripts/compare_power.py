"""What `perfsuite compare`'s adaptive rule would do with more time, from blocks measured here.

`perfsuite selftest --compare` keeps every block's timings (compare-selftest.json). Blocks of
the unchanged comparisons are independent draws (fresh zygotes on both sides), so drawing them
with replacement - and scaling side B by an injected ratio - replays the adaptive rule
(first decision after `--min-pairs`, one block more while undecided, up to `--budget-s`) as
often as wanted: detection and false-flag rates per budget, at the measured block cost. The
blocks are centred first (B divided by their mean B/A), so an A/A draw has no difference of
its own. It is a resampling estimate, not a measurement; the selftest's own runs are the
measurement.

    python scripts/compare_power.py reports/selftest/compare-selftest.json --sizes 0,0.05,0.10 --budgets 90,300
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from perfsuite.compare.harness import decide
from perfsuite.compare.protocol import CompareSettings
from perfsuite.stats.intervals import block_ratio_interval, pair_log_ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="+", help="compare-selftest.json files")
    parser.add_argument("--sizes", default="0,0.05,0.10")
    parser.add_argument("--budgets", default="90,180,300")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--min-effect", type=float, default=CompareSettings().min_effect)
    args = parser.parse_args()
    blocks, seconds = [], []
    for path in args.report:
        for r in json.loads(Path(path).read_text(encoding="utf-8"))["runs"]:
            if r["touched"] or r.get("busy_loops"):
                continue
            blocks += [[(p[0], p[1]) for p in b] for b in r["timings"]]
            seconds.append(r["seconds"] / max(len(r["timings"]), 1))
    # centred: the sample's own mean B/A (about -1% today, within its standard error) would
    # otherwise be replayed as a true difference in every A/A draw
    shift = math.exp(float(np.mean([pair_log_ratio(a, b) for block in blocks for a, b in block])))
    blocks = [[(a, [x / shift for x in b]) for a, b in block] for block in blocks]
    per_block = float(np.mean(seconds))
    d = CompareSettings(min_effect=args.min_effect)
    rng = np.random.default_rng(0)
    print(f"{len(blocks)} measured blocks, {per_block:.1f} s each (mean), B/A centred from {shift:.4f}; "
          f"rule: first decision after {d.min_blocks} blocks, slower beyond {d.min_effect:.0%}, "
          f"same within {d.max_slowdown:.0%}")  # fmt: skip
    print("B slower by | budget s | slower | same | faster | undecided | blocks (mean)")
    for size in (float(x) for x in args.sizes.split(",")):
        for budget in (float(x) for x in args.budgets.split(",")):
            most = max(d.min_blocks, int(budget // per_block))
            tally = {"slower": 0, "same": 0, "faster": 0, "undecided": 0}
            used = 0
            for _ in range(args.trials):
                drawn = []
                while True:
                    block = blocks[int(rng.integers(len(blocks)))]
                    drawn.append([(a, [x * (1 + size) for x in b]) for a, b in block])
                    if len(drawn) < d.min_blocks:
                        continue
                    verdict = decide(block_ratio_interval(drawn), d.max_slowdown, d.min_effect)
                    if verdict != "undecided" or len(drawn) >= most:
                        break
                tally[verdict] += 1
                used += len(drawn)
            n = args.trials
            print(f"{size:.0%} | {budget:.0f} | " + " | ".join(f"{tally[k] / n:.1%}" for k in tally)
                  + f" | {used / n:.1f}")  # fmt: skip
    return 0 if math.isfinite(per_block) else 1


if __name__ == "__main__":
    raise SystemExit(main())
