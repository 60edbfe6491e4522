"""Bring the committed portable records' tolerances in line with their tiers (issue #38, item 7).

A portable record is shared by every runner, so it must hold exactly what a rebaseline of its
tier writes today; otherwise every runner's first rebaseline rewrites it and two runners
recording in parallel conflict on every file. A rebaseline writes `Bounds.portable()`: the
work, quality and in-run-reference tolerances of the variant (latency and memory live in each
machine's own record). This rewrites each committed portable record's `tolerances` to that,
changing nothing else, all files of a tier together (`store.baselines.commit_files`).
Idempotent; `tests/unit/test_committed_records.py` fails when a record drifts again.

    python scripts/sync_portable_tolerances.py --check   # exit 1 and list what differs
    python scripts/sync_portable_tolerances.py           # rewrite
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from perfsuite.matrix.tier import load_matrix
from perfsuite.store.baselines import commit_files

ROOT = Path(__file__).resolve().parents[1]
TIERS = ("cpu", "real", "gpu", "gpu-check")


def drift(root: Path = ROOT / "baselines") -> dict[Path, tuple[dict, dict]]:
    """Committed portable record -> (its document, the tolerances its tier writes), where they differ."""
    out: dict[Path, tuple[dict, dict]] = {}
    for tier in TIERS:
        variants = {v.id: v for v in load_matrix(tier).variants}
        for path in sorted((root / "portable" / tier).glob("*.json")):
            doc = json.loads(path.read_text(encoding="utf-8"))
            variant = variants.get(doc["variant"])
            if variant is None:
                raise SystemExit(f"{path}: variant {doc['variant']} is not in the {tier} tier")
            wanted = variant.bounds.portable()
            if doc.get("tolerances") != wanted:
                out[path] = (doc, wanted)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list the records that differ (exit 1), write nothing")
    args = parser.parse_args()
    found = drift()
    for path, (doc, wanted) in found.items():
        before = doc.get("tolerances") or {}
        diff = sorted(k for k in set(before) | set(wanted) if before.get(k) != wanted.get(k))
        print(f"{path.relative_to(ROOT)}: {', '.join(diff)}")
    if args.check or not found:
        print(f"{len(found)} portable records differ from their tiers")
        return 1 if found else 0
    commit_files([(path, {**doc, "tolerances": wanted}) for path, (doc, wanted) in found.items()])
    print(f"rewrote the tolerances of {len(found)} portable records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
