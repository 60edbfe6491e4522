"""One-off migration (2026-11-27): stored `weight_bytes` counted non-persistent buffers; it no longer does.

Non-persistent buffers (rotary inverse frequencies, Gemma-2's embedding scale) are derived at
load, are not weights, and which exist changes between transformers releases: 5.24 registers
Gemma-2's `embed_scale` as a buffer, 5.0 does not, so the work bound failed a portable record
under transformers 5.0 by 4 bytes (docs/versions.md). `weight_bytes` now counts parameters and
persistent buffers only (`models.factory.weight_bytes`).

For every portable record this script subtracts the bytes of the non-persistent buffers that
the record's own transformers release builds for its model and compute dtype (a meta-device
build in a venv of that release: `compare_envs.version_side`), and rewrites the record. Run it
once (it is not idempotent); `--check` prints what it would change without writing.

    python scripts/migrate_weight_bytes.py --check
    python scripts/migrate_weight_bytes.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, torch
from perfsuite.models.specs import get_spec
from perfsuite.models.factory import TORCH_DTYPES
out = {}
for key in json.loads(sys.argv[1]):
    model, dtype = key.split("|")
    spec = get_spec(model)
    with torch.device("meta"):
        m = spec.model_class()._from_config(
            spec.build_config(0), dtype=TORCH_DTYPES[dtype], attn_implementation="eager"
        )
    keep = set(m.state_dict())
    out[key] = sum(b.numel() * b.element_size() for n, b in m.named_buffers() if n not in keep)
print(json.dumps(out))
"""


def main() -> int:
    from perfsuite.compare.sides import version_side
    from perfsuite.matrix.tier import load_matrix
    from perfsuite.store.baselines import write_record
    from perfsuite.variant import Variant, compute_dtype

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baselines", default=str(ROOT / "baselines"))
    parser.add_argument("--check", action="store_true", help="print the changes, write nothing")
    args = parser.parse_args()

    files = sorted(Path(args.baselines, "portable").glob("*/*.json"))
    plan: dict[str, dict[Path, str]] = defaultdict(dict)  # transformers version -> file -> model|dtype
    records = {}
    for path in files:
        record = json.loads(path.read_text(encoding="utf-8"))
        if "weight_bytes" not in record["work"]:
            continue  # recorded before weight_bytes was a work counter: nothing to change
        model, dtype, _, _ = Variant.split_id(record["variant"])
        nf4 = load_matrix(record["tier"]).settings.nf4_compute_dtype
        plan[record["environment"]["transformers"]][path] = f"{model}|{compute_dtype(dtype, nf4)}"
        records[path] = record
    changed = 0
    for version, entries in plan.items():
        side, where = version_side("transformers", version, progress=lambda s: print(s, file=sys.stderr))
        keys = sorted(set(entries.values()))
        proc = subprocess.run(
            [side.argv[0], "-c", CHILD, json.dumps(keys)], capture_output=True, text=True, cwd="/", check=True
        )
        extra = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"transformers {version} ({where}): non-persistent buffer bytes {extra}")
        for path, key in entries.items():
            record = records[path]
            old = record["work"]["weight_bytes"]
            record["work"]["weight_bytes"] = old - extra[key]
            changed += extra[key] != 0
            print(f"  {path.relative_to(args.baselines)}: {old} -> {old - extra[key]}")
    if not args.check:
        for path, record in records.items():
            write_record(path, record)
    print(f"{changed} of {len(records)} records {'would change' if args.check else 'changed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
