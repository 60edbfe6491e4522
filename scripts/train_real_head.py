"""Train the 3-class score head of a real-weights model on the bundled sample, backbone frozen.

Seeded and CPU-only (perfsuite/measure/heads.py): features from the fp32 backbone (cached beside
the converted GGUF), an L2 logistic regression chosen by 4-fold cross-validation on rows 64+,
scored on the held-out rows 0-63 (the tiers run the first rows). Writes
perfsuite/models/trained/<name>/score.safetensors and head.json. `--check` refits without
writing and compares the held-out log-loss with the shipped head.json (to 1e-4).

Usage: python scripts/train_real_head.py [--check] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import json
import sys

from perfsuite.data.sample import SAMPLE_PATH
from perfsuite.measure.heads import REPORT_FILE, HeadConfig, save_head, train_head
from perfsuite.models.specs import get_spec
from perfsuite.models.training import TRAINED_DIR


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--check", action="store_true", help="refit and compare with the shipped head.json")
    args = parser.parse_args()
    spec = get_spec(args.model)
    weight, report = train_head(spec, SAMPLE_PATH, HeadConfig())
    print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=1))
    folder = TRAINED_DIR / spec.name
    if args.check:
        shipped = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
        diff = abs(shipped["heldout_log_loss"] - report["heldout_log_loss"])
        new, old = report["heldout_log_loss"], shipped["heldout_log_loss"]
        print(f"held-out log-loss {new} vs shipped {old} (diff {diff:.2g})")
        return 0 if diff <= 1e-4 else 1
    print(f"wrote {save_head(weight, report, folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
