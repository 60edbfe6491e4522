"""Train the tiny miniatures as 3-class preference classifiers and write the shipped weights.

Seeded and CPU-only: the same seed and library versions give the same weights and held-out
log-loss. `--check` retrains without writing and compares with the shipped training.json
(to 1e-3). A few minutes per model on 2 cores.
Usage: python scripts/train_tiny.py [--check] [tiny-llama3 tiny-gemma2 ...]
"""

from __future__ import annotations

import json
import sys

from perfsuite.models.specs import SPECS
from perfsuite.training import REPORT_FILE, TRAINED_DIR, TrainConfig, save_trained, train


def main(args: list[str]) -> int:
    check = "--check" in args
    names = [a for a in args if a != "--check"] or [n for n, s in SPECS.items() if s.tiny]
    failed = 0
    for name in names:
        model, report = train(SPECS[name], TrainConfig())
        if check:
            shipped = json.loads((TRAINED_DIR / name / REPORT_FILE).read_text(encoding="utf-8"))["heldout"]["log_loss"]
            now = report["heldout"]["log_loss"]
            same = abs(now - shipped) <= 1e-3
            failed += not same
            print(f"{name}: held-out log-loss {now:.6f}, shipped {shipped:.6f}: {'reproduced' if same else 'DIFFERS'}")
        else:
            folder = save_trained(model, SPECS[name], report)
            print(f"{name}: held-out {report['heldout']} in {report['seconds']} s -> {folder}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
