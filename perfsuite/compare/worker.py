"""One side of `perfsuite compare`: a long-lived process that serves single timed passes.

The harness starts it by file path with the side's interpreter (another venv, or this one
with a git worktree of the base revision first on PYTHONPATH), so it imports *that side's*
perfsuite and libraries, and uses only APIs older revisions have too: ``load_matrix``,
``PerfSession.prepare / workload``, ``PreparedVariant.one_pass``, ``score_once`` - found through
``SURFACE``, the one table of where each lives in old and new layouts.

It works as a zygote: it imports everything and tokenises the workload once, then forks a
fresh child per process pair (``fork``); the child loads the model, answers ``prepare`` and
``pass`` requests and exits on ``quit``. The process is the unit that carries a bias of its
own (memory layout, thread placement), so every pair gets new ones at the cost of a fork,
not of a Python start. The zygote runs no torch computation before forking (OpenMP's
thread pool does not survive a fork), except to build a miniature's checkpoint on a cold cache.

Protocol: one JSON object per line on stdin, one answer per line on the original stdout
(library prints go to stderr). Every answer has ``ok``; a failure carries ``error``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

# The small, stable surface this worker uses of its side's perfsuite, where each name lives,
# newest layout first: a side may be a revision from before a move (the flat modules before
# the package layout of 2026-12-01, `costmodel` before the cost package). A new move adds its
# path in front; nothing else here names a perfsuite module.
SURFACE: dict[str, tuple[str, ...]] = {
    "package_versions": ("perfsuite.device.environment", "perfsuite.environment"),
    "load_matrix": ("perfsuite.matrix.tier", "perfsuite.matrix"),
    "PerfSession": ("perfsuite.session",),
    "SessionConfig": ("perfsuite.session",),
    "get_spec": ("perfsuite.models.specs",),
    "score_once": ("perfsuite.measure.runner", "perfsuite.runner"),
    "count_work": ("perfsuite.measure.batching", "perfsuite.batching"),
    "forward_flops": ("perfsuite.models.flops", "perfsuite.cost.model", "perfsuite.costmodel"),
    "weight_bytes": ("perfsuite.models.factory",),
}


def surface(name: str) -> Any:
    """`name` from the first of its modules this side's perfsuite has; ImportError listing each try."""
    tried = []
    for module in SURFACE[name]:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            tried.append(f"{module}: {type(exc).__name__}: {exc}")
    raise ImportError(f"this side's perfsuite has no {name} ({'; '.join(tried)})")


def _answer(out, payload: dict[str, Any]) -> None:
    out.write(json.dumps(payload) + "\n")
    out.flush()


class Worker:
    """The state one side holds: its session and, in a child, the prepared variant."""

    def __init__(self) -> None:
        self.session: Any = None
        self.variant: Any = None
        self.prepared: Any = None

    def hello(self, request: dict[str, Any]) -> dict[str, Any]:
        import perfsuite

        package_versions, load_matrix = surface("package_versions"), surface("load_matrix")
        PerfSession = surface("PerfSession")

        matrix = load_matrix(request["matrix"])
        workload = {k: v for k, v in (request.get("workload") or {}).items() if v}
        baselines, data = request.get("baselines") or "baselines", request.get("data")
        try:  # a side from after the one latency decision takes a SessionConfig
            config = surface("SessionConfig")(baselines=baselines, data=data, workload=workload)
        except ImportError:
            self.session = PerfSession(matrix, baselines, data, workload=workload)
        else:
            self.session = PerfSession(matrix, config)
        return {"versions": package_versions(), "perfsuite": os.path.dirname(perfsuite.__file__)}

    def spec_of(self, model: str) -> Any:
        """The matrix's own spec for a model name (declared models); a revision from before
        [[models]] knows only the built-in ones."""
        return getattr(self.session.matrix, "spec", surface("get_spec"))(model)

    def variant_for(self, variant_id: str) -> Any:
        for variant in self.session.matrix.variants:
            if variant.id == variant_id:
                return variant
        raise KeyError(f"variant {variant_id} is not in this side's matrix")

    def tokenize(self, request: dict[str, Any]) -> dict[str, Any]:
        """Read and encode the rows in the zygote, resolve the weights and import the model's
        modules (transformers imports them lazily, ~3 s), so each child starts with them."""
        variant = self.variant_for(request["variant"])
        reason = self.session.skip_reason(variant)
        if reason:
            return {"skip": reason}
        tokenizer = self.session.workload(variant)[0]
        self.session.checkpoint(variant, tokenizer.pad_id)
        self.spec_of(variant.model).model_class()
        for module in ("transformers.modeling_utils", "transformers.integrations.sdpa_attention", "safetensors.torch"):
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
        return {}

    def prepare(self, request: dict[str, Any]) -> dict[str, Any]:
        """The variant built and warmed up; with `score` (the default) also its predictions and
        work, which the harness compares for the run's first process pair only (a later child
        skips them: one untimed pass less, 0.2 s here)."""
        self.variant = self.variant_for(request["variant"])
        self.prepared = self.session.prepare(self.variant)
        answer = self.outputs() if request.get("score", True) else {}
        self.prepared.one_pass()  # warm-up (flex_attention compiles here)
        return answer

    def outputs(self) -> dict[str, Any]:
        """One untimed pass's predictions in row order, and the prepared variant's work counts."""
        score_once, count_work, forward_flops = (surface(n) for n in ("score_once", "count_work", "forward_flops"))
        rows = self.session.workload(self.variant)[1]
        probs, bad = score_once(self.prepared, len(rows))
        batches = self.prepared.all_batches
        work = count_work(batches)
        shapes = [tuple(b.input_ids.shape) for b in batches]
        return {
            "work": {
                "rows": work.rows,
                "batches": work.batches,
                "real_tokens": work.real_tokens,
                "processed_tokens": work.processed_tokens,
                "flops": forward_flops(self.spec_of(self.variant.model), shapes),
                **self.weight_bytes(),
            },
            "probs": probs.tolist(),
            "labels": [r.label for r in rows],
            "nonfinite_rows": bad,
        }

    def weight_bytes(self) -> dict[str, int]:
        """The loaded weights' bytes, as the tier's work counters have them (none from a side too old to count them)."""
        try:
            count = surface("weight_bytes")
        except ImportError:
            return {}
        return {"weight_bytes": int(count(self.prepared.model))}

    def one_pass(self, _request: dict[str, Any]) -> dict[str, Any]:
        """One timed pass in the state measure.runner.timing sets (the collector off), and the
        share of the machine's CPU time others took meanwhile (measure.load.OtherLoad's rule:
        while this child times a pass, the other side and the harness wait, so whatever else ran
        was foreign load). Both written out here: this file runs on revisions that may lack them."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            before, own = _machine_busy(), os.times()
            start = time.perf_counter()
            self.prepared.one_pass()
            seconds = time.perf_counter() - start
            after, own_end = _machine_busy(), os.times()
        finally:
            if enabled:
                gc.enable()
        answer: dict[str, Any] = {"seconds": seconds}
        if before and after and after[1] > before[1]:
            tick = os.sysconf("SC_CLK_TCK")
            mine = (own_end.user + own_end.system - own.user - own.system) * tick
            answer["other_cpu"] = min(1.0, max(0.0, after[0] - before[0] - mine) / (after[1] - before[1]))
        return answer


def _machine_busy() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat (steal counts as busy); None without it."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in handle.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def serve(stdin=None, out=None) -> None:
    """Answer requests until `quit` or end of input."""
    stdin = stdin or sys.stdin
    if out is None:
        out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
        sys.stdout = sys.stderr  # nothing a library prints may reach the protocol stream
    worker = Worker()
    handlers = {"hello": worker.hello, "tokenize": worker.tokenize, "prepare": worker.prepare, "pass": worker.one_pass}
    in_child = False
    while True:
        line = stdin.readline()
        if not line:
            if in_child:
                os._exit(0)
            return
        request = json.loads(line)
        op = request.get("op")
        if op == "quit":
            _answer(out, {"ok": True})
            if in_child:
                os._exit(0)
            return
        if op == "fork":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                in_child = True
                _answer(out, {"ok": True, "pid": os.getpid()})
                continue
            _, status = os.waitpid(pid, 0)
            if status != 0:  # the child died mid-request: answer for it, so the harness is not left waiting
                _answer(out, {"ok": False, "error": f"worker process died ({_describe_status(status)})"})
            continue
        try:
            payload = handlers[op](request)
            _answer(out, {"ok": True, **payload})
        except Exception as exc:  # answered, not raised: the harness decides what a failure means
            traceback.print_exc(file=sys.stderr)
            _answer(out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenizers' threads do not survive a fork
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    serve()
    # Every answer is out and nothing is left to write: skip the interpreter's teardown of torch
    # and transformers (1.4 s here), which the harness waited for before each next block.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)  # run by path: this folder's modules must not shadow top-level names
    main()
