"""Train the tiny miniatures as 3-class preference classifiers and write the shipped weights.

Seeded and CPU-only: the same seed and library versions give the same weights and held-out
log-loss. `--check` retrains without writing and compares with the shipped training.json
(to 1e-3). Each model trains in its own single-threaded process, `--jobs` at a time
(default 2: tiny-gemma2, the slowest at about 25 minutes, beside the other two).
Usage: python scripts/train_tiny.py [--check] [--jobs N] [tiny-llama3 tiny-gemma2 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor

from perfsuite.models.specs import SPECS
from perfsuite.training import REPORT_FILE, TRAINED_DIR, TrainConfig, save_trained, train


def train_one(name: str, check: bool) -> dict:
    """Train one miniature (in a worker process); write its weights unless checking."""
    model, report = train(SPECS[name], TrainConfig(), log=lambda line: print(line, flush=True))
    if not check:
        folder = save_trained(model, SPECS[name], report)
        print(f"{name}: held-out {report['heldout']} in {report['seconds']} s -> {folder}", flush=True)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="miniatures to train (default: all tiny ones)")
    parser.add_argument("--check", action="store_true", help="retrain and compare with the shipped report")
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once, one process each")
    args = parser.parse_args(argv)
    tiny = [n for n, s in SPECS.items() if s.tiny]
    unknown = sorted(set(args.models) - set(tiny))
    if unknown:
        parser.error(f"not tiny miniatures: {', '.join(unknown)}; choose from {', '.join(tiny)}")
    # Slowest first, so that the others share the second worker.
    names = sorted(args.models or tiny, key=lambda n: n != "tiny-gemma2")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        reports = dict(zip(names, pool.map(train_one, names, [args.check] * len(names)), strict=True))
    failed = 0
    if args.check:
        for name, report in reports.items():
            shipped = json.loads((TRAINED_DIR / name / REPORT_FILE).read_text(encoding="utf-8"))["heldout"]["log_loss"]
            now = report["heldout"]["log_loss"]
            same = abs(now - shipped) <= 1e-3
            failed += not same
            print(f"{name}: held-out log-loss {now:.6f}, shipped {shipped:.6f}: {'reproduced' if same else 'DIFFERS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
