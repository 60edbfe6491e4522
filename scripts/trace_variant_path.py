"""One variant's path through the code: the perfsuite modules `PerfSession.run` enters, and the
calls that turn back up to a higher layer (docs/architecture.md).

    python scripts/trace_variant_path.py                      # this checkout
    PYTHONPATH=/tmp/old python scripts/trace_variant_path.py  # another revision, flat modules included

A call "turns back up" when a function in one layer calls a function in a layer above it (the
layers of tests/unit/test_architecture.py; the flat modules of older revisions are placed in
the package they moved to; the old `matrix` module's vocabulary counts as the matrix layer).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # the layers are the architecture test's, not a copy
from tests.unit.test_architecture import LAYERS

# Where each flat module of the revisions before the package layout went (2026-12-01).
FLAT = {
    "stats": "stats", "metrics": "stats", "machine": "device", "hardware": "device", "probe": "device",
    "support": "device", "environment": "device", "names": "store", "records": "store", "baselines": "store",
    "declared": "models", "training": "models", "matrix": "matrix", "matrix_cases": "matrix_cases",
    "runner": "measure", "batching": "measure", "workload": "measure", "measurement": "measure",
    "distributed": "measure", "checks": "judge", "judge": "judge", "outcomes": "report", "report": "report",
    "plots": "report", "markdown": "report", "progress": "progress", "compare": "compare",
    "compare_envs": "compare", "compare_worker": "compare", "bisect": "compare",
}  # fmt: skip


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "perfsuite" or len(parts) < 2:
        return None
    unit = FLAT.get(parts[1], parts[1]) if len(parts) == 2 else parts[1]
    return LAYERS.index(unit) if unit in LAYERS else None


def main() -> None:
    import perfsuite

    try:
        from perfsuite.matrix.tier import load_matrix
    except ImportError:
        from perfsuite.matrix import load_matrix
    from perfsuite.session import PerfSession, SessionConfig

    root = Path(tempfile.mkdtemp())
    toml = Path(perfsuite.__file__).parent / "matrices" / "cpu.toml"
    matrix = load_matrix(str(toml))
    variant = next(v for v in matrix.variants if v.id == "tiny-llama3-fp32-sdpa-sorted")
    session = PerfSession(matrix, SessionConfig(baselines=root / "bl", workload={"rows": 4}))
    session.run(variant)  # warm: checkpoints and token tables cached, imports done

    entered: set[str] = set()
    upward: dict[tuple[str, str], int] = {}

    def profile(frame, event, _arg):
        if event != "call":
            return
        callee = frame.f_globals.get("__name__", "")
        if not callee.startswith("perfsuite."):
            return
        entered.add(callee)
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        lc, le = layer_of(caller), layer_of(callee)
        if lc is not None and le is not None and le > lc:
            upward[caller, callee] = upward.get((caller, callee), 0) + 1

    sys.setprofile(profile)
    try:
        session.run(variant)
    finally:
        sys.setprofile(None)
    print(f"perfsuite from {Path(perfsuite.__file__).parent}")
    print(f"modules entered by PerfSession.run: {len(entered)}")
    for name in sorted(entered):
        print(f"  {name}")
    print(
        f"calls back up to a higher layer: {len(upward)} caller -> callee module edges, "
        f"{sum(upward.values())} calls in all"
    )
    for (caller, callee), n in sorted(upward.items()):
        print(f"  {caller} -> {callee}: {n}")


if __name__ == "__main__":
    main()
