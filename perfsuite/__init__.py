"""perfsuite: a performance and quality regression suite for LLM sequence-classification inference.

The library's entry points, imported on first use (``import perfsuite`` itself stays light:
`perfsuite compare` asks an interpreter for it before numpy or torch are known to be there):

    from perfsuite import PerfSession, SessionConfig, load_matrix
    session = PerfSession(load_matrix("cpu"), SessionConfig(baselines="baselines"))
    outcome = session.run(variant)
    session.decide_latency()  # once the run's variants are timed: latency is judged against the run
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["PerfSession", "SessionConfig", "Variant", "load_matrix"]

_EXPORTS = {
    "PerfSession": "perfsuite.session",
    "SessionConfig": "perfsuite.session",
    "load_matrix": "perfsuite.matrix.tier",
    "Variant": "perfsuite.variant",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'perfsuite' has no attribute {name!r}")
