"""perfsuite compare and bisect: the protocol the harness and its workers share, the harness
(interleaved process pairs, the decision rule), its report, where side B comes from, the worker
run in the other environment, and the bisection over releases.
"""
