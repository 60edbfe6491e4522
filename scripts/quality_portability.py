"""Which quality figures hold across CPU kernels, or library versions? Score variants under each.

The same CPU runs torch's kernels for several instruction sets (`ATEN_CPU_CAPABILITY=default |
avx2 | avx512`, with oneDNN's `ONEDNN_MAX_CPU_ISA` lowered alongside); a figure that changes
between them is a property of the kernels, so of the machine, not of code, data and library
versions. For every selected variant this scores one
pass of the tier's workload in a child process per capability and prints, per dtype, the
largest log-loss and |dp| difference between capabilities against the tier's log_loss_abs.

    python scripts/quality_portability.py                 # eager/sdpa, static and sorted
    python scripts/quality_portability.py -k 'tiny-llama3-*' --out reports/portability.json
    python scripts/quality_portability.py --pythons venv-a/bin/python venv-b/bin/python  # versions
    python scripts/quality_portability.py --matrix real -k '*-sorted'   # real weights, LM log-loss too

With ``--pythons`` the axis is the interpreters' library versions instead of the kernels
(each child imports its own transformers / torch / bitsandbytes; docs/versions.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

# (ATen's dispatch, oneDNN's highest ISA): the oneDNN matmuls (bf16 above all) pick their own
# kernels, so both are lowered together, from the CPU's best down to the plainest.
CAPABILITIES = {"default": ("default", "SSE41"), "avx2": ("avx2", "AVX2"), "avx512": ("avx512", "ALL")}
DEFAULT_SELECT = "tiny-*-eager-static,tiny-*-eager-sorted,tiny-*-sdpa-static,tiny-*-sdpa-sorted"


def child(select: str, out: str, matrix: str = "cpu") -> None:
    """Score each selected variant once (untimed) and write its probabilities and log-loss."""
    import torch

    from perfsuite.matrix.tier import load_matrix
    from perfsuite.measure import runner
    from perfsuite.session import PerfSession
    from perfsuite.stats.metrics import log_loss

    session = PerfSession(load_matrix(matrix))
    import transformers

    label = (
        f"{torch.backends.cpu.get_cpu_capability()} torch {torch.__version__} transformers {transformers.__version__}"
    )
    result = {"capability": label, "variants": {}}
    for variant in session.matrix.select(select):
        if session.skip_reason(variant):
            continue
        prepared = session.prepare(variant)
        rows = session.workload(variant)[1]
        probs, bad = runner.score_once(prepared, len(rows))
        labels = [r.label for r in rows]
        result["variants"][variant.id] = {
            "dtype": variant.dtype,
            "log_loss": log_loss(probs, labels) if not bad else None,
            "lm_log_loss": prepared.lm_log_loss(session.resolve(variant).lm_ids),
            "probs": probs.tolist(),
        }
        print(f"{result['capability']}: {variant.id}", file=sys.stderr, flush=True)
    Path(out).write_text(json.dumps(result), encoding="utf-8")


def main() -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", "--select", default=DEFAULT_SELECT)
    parser.add_argument("--matrix", default="cpu", help="tier name or matrix TOML (default: cpu)")
    parser.add_argument("--out", default="reports/quality_portability.json")
    parser.add_argument("--pythons", nargs="+", default=None, help="compare these interpreters, not kernels")
    args = parser.parse_args()
    runs = {}
    axis = {f"python{i}": python for i, python in enumerate(args.pythons)} if args.pythons else CAPABILITIES
    for cap in axis:
        out = Path(args.out).with_suffix(f".{cap}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        python = sys.executable
        if args.pythons:
            python = axis[cap]
        else:
            aten, onednn = CAPABILITIES[cap]
            env.update(ATEN_CPU_CAPABILITY=aten, ONEDNN_MAX_CPU_ISA=onednn)
        subprocess.run([python, __file__, "--child", args.select, str(out), args.matrix], env=env, check=True)
        runs[cap] = json.loads(out.read_text(encoding="utf-8"))
    from perfsuite.matrix.tier import load_matrix

    bounds = {v.id: v.bounds for v in load_matrix(args.matrix).variants}
    per_dtype: dict[str, dict[str, float]] = {}
    first = runs[next(iter(axis))]["variants"]
    for vid, entry in first.items():
        present = [c for c in axis if vid in runs[c]["variants"]]  # a variant refused by one side is left out
        lls = [runs[c]["variants"][vid]["log_loss"] for c in present]
        probs = [np.asarray(runs[c]["variants"][vid]["probs"]) for c in present]
        d_ll = max(lls) - min(lls) if None not in lls else float("inf")
        d_p = max(float(np.max(np.abs(p - probs[0]))) for p in probs)
        row = per_dtype.setdefault(entry["dtype"], {"variants": 0, "max_dll": 0.0, "max_dp": 0.0, "max_dlm": 0.0})
        lms = [runs[c]["variants"][vid].get("lm_log_loss") for c in present]
        if None not in lms:
            row["max_dlm"] = max(row["max_dlm"], max(lms) - min(lms))
            row["lm_tolerance"] = bounds[vid].lm_log_loss_abs
        row["variants"] += 1
        row["max_dll"] = max(row["max_dll"], d_ll)
        row["max_dp"] = max(row["max_dp"], d_p)
        row["tolerance"] = bounds[vid].log_loss_abs
    print("runs: " + "; ".join(runs[c]["capability"] for c in axis))
    print(
        f"{'dtype':6s} {'variants':>8s} {'max dlog-loss':>14s} {'max |dp|':>10s} {'log_loss_abs':>12s} "
        f"{'max dLM':>10s} {'lm_log_loss_abs':>15s}  verdict"
    )
    for dtype, row in per_dtype.items():
        portable = row["max_dll"] <= row["tolerance"] / 4
        if "lm_tolerance" in row:
            portable = portable and row["max_dlm"] <= row["lm_tolerance"] / 4
        verdict = "portable" if portable else "machine-bound"
        print(
            f"{dtype:6s} {row['variants']:8d} {row['max_dll']:14.2e} {row['max_dp']:10.2e} "
            f"{row['tolerance']:12.3g} {row['max_dlm']:10.2e} {row.get('lm_tolerance', float('nan')):15.3g}  {verdict}"
        )
    Path(args.out).write_text(json.dumps(per_dtype, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], *sys.argv[4:5])
        sys.exit(0)
    sys.exit(main())
