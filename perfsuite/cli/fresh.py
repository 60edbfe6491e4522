"""The child of ``measure.fresh``: time variants in this new process and answer one JSON line each.

Run as ``python -m perfsuite.cli.fresh REQUEST``; the protocol stream is the original stdout,
everything a library prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main(argv: list[str]) -> int:
    from perfsuite.matrix.tier import load_matrix
    from perfsuite.measure import runner
    from perfsuite.measure.measurement import Measurement
    from perfsuite.selftest import SCENARIO_ENV, Scenario, install
    from perfsuite.session import PerfSession, SessionConfig

    if os.environ.get(SCENARIO_ENV):  # a selftest child's confirmation: the same injected regression
        install(Scenario(**json.loads(os.environ[SCENARIO_ENV])))
    request: dict[str, Any] = json.loads(argv[0])
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr
    matrix = load_matrix(request["matrix"])
    session = PerfSession(
        matrix,
        SessionConfig(baselines=request["baselines"], data=request.get("data"), workload=request.get("workload") or {}),
    )
    by_id = {v.id: v for v in matrix.variants}
    for variant_id in request["variants"]:
        answer: dict[str, Any] = {"variant": variant_id}
        try:
            with runner.preserved_process_state():
                result = session.measure(session.resolve(by_id[variant_id]))
            answer["latency"] = Measurement.from_run(result, {}, {}).to_dict()["latency"]
            if result.threads:  # the busy rule compares it with the record's (judge/latency.busy_cause)
                answer["latency"]["threads"] = str(result.threads)
        except Exception as exc:  # answered: the parent names the variant
            answer["error"] = f"{type(exc).__name__}: {exc}"
        out.write(json.dumps(answer) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
