"""What a run pays before its first row, measured on this machine: `perfsuite fixed-costs`.

A Kaggle run spends minutes importing and loading before it scores anything, and `budget`
counts those seconds against the 9 hours. They are measured here as rates, so they scale to a
model this machine cannot hold (figures and a public log beside them:
docs/experiments/2026-12-07-fixed-costs.md):

- Two probe checkpoints of one real architecture (Llama, fp16 safetensors, the layout a
  published checkpoint has) differ only in decoder layers. Fresh processes (`fixedload.py`)
  import torch and transformers, then ``from_pretrained`` one probe: plain (every page of its
  weights then read, as moving them to a card reads them) or quantised on load (nf4, int8 - bitsandbytes,
  where installed). Modes and sizes run interleaved, each repeat in the same order, so a drift
  of the machine reaches every cell alike; each load starts from a cold page cache for its file
  (fsync, then ``posix_fadvise(DONTNEED)``), as a first load of a checkpoint does.
- Per mode and size the median of the repeats. The seconds per byte are the slope between the
  two sizes - what each further byte costs, which is what scales to 9B parameters - and the
  intercept what ``from_pretrained`` costs whatever the size. Quantising per byte is the
  quantised mode's slope less the plain mode's: both read the same bytes, the difference is the
  quantiser's. The import time is the median over every process.
- The host's copy bandwidth is recorded beside them: quantising is elementwise work over the
  weights, so `budget` scales it to a card by the ratio of bandwidths (`cost/fixed.py`).

The record lives at ``<baselines>/<machine>/fixedcosts.json`` and is written as a whole; it is
this machine's, like its cost-model fit.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from perfsuite.fileio import atomic_write_text

FILE = "fixedcosts.json"
CHILD = Path(__file__).with_name("fixedload.py")
PROBE = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
}
PROBE_LAYERS = (1, 5)
PLAIN = "fp16"
QUANTISERS = ("nf4", "int8")
GB = 1e9


class FixedCostError(ValueError):
    """A fixed-cost record that cannot be read: names the file and the field."""


@dataclass(frozen=True)
class FixedCostRates:
    """This machine's fixed costs as rates (seconds per GB of checkpoint), and what they rest on."""

    machine_key: str
    recorded_at: str
    environment: dict[str, str]
    import_s: float  # torch + transformers + a sequence-classification class, a fresh process
    load_overhead_s: float  # from_pretrained, whatever the size
    read_s_per_gb: float  # reading, building and copying each GB of an fp16 checkpoint
    quantise_s_per_gb: dict[str, float]  # per GB of fp16 linear weights quantised on load
    host_bandwidth: float  # bytes/s of a 256 MiB copy here
    cold_reads: bool  # each load began with its checkpoint out of the page cache
    repeats: int
    probe_bytes: dict[str, int]  # layers -> checkpoint bytes
    samples: dict[str, list[float]]  # "<mode>@<layers>" -> load seconds, in run order
    import_samples: list[float] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # mode -> why it was not measured

    def to_dict(self) -> dict:
        return {"kind": "fixed-costs", "schema": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, data: object, where: str) -> FixedCostRates:
        if not isinstance(data, dict) or data.get("kind") != "fixed-costs":
            raise FixedCostError(f"{where}: not a fixed-costs record (field kind)")

        def number(name: str, value: object) -> float:
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise FixedCostError(f"{where}: field {name} = {value!r}: must be a number, at least 0")
            return float(value)

        try:
            quantise = data["quantise_s_per_gb"]
            if not isinstance(quantise, dict):
                raise FixedCostError(f"{where}: field quantise_s_per_gb: must be a table of mode -> seconds")
            return cls(
                machine_key=str(data["machine_key"]),
                recorded_at=str(data["recorded_at"]),
                environment={str(k): str(v) for k, v in dict(data.get("environment", {})).items()},
                import_s=number("import_s", data["import_s"]),
                load_overhead_s=number("load_overhead_s", data["load_overhead_s"]),
                read_s_per_gb=number("read_s_per_gb", data["read_s_per_gb"]),
                quantise_s_per_gb={str(k): number(f"quantise_s_per_gb.{k}", v) for k, v in quantise.items()},
                host_bandwidth=number("host_bandwidth", data["host_bandwidth"]),
                cold_reads=bool(data["cold_reads"]),
                repeats=int(number("repeats", data["repeats"])),
                probe_bytes={str(k): int(number(f"probe_bytes.{k}", v)) for k, v in dict(data["probe_bytes"]).items()},
                samples={str(k): [number(f"samples.{k}", x) for x in v] for k, v in dict(data["samples"]).items()},
                import_samples=[number("import_samples", x) for x in data.get("import_samples", [])],
                skipped={str(k): str(v) for k, v in dict(data.get("skipped", {})).items()},
            )
        except KeyError as exc:
            raise FixedCostError(f"{where}: field {exc.args[0]}: missing") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, FixedCostError):
                raise
            raise FixedCostError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class Fitted:
    """Slope and intercept of load seconds against checkpoint bytes, per mode."""

    overhead_s: float
    s_per_gb: float


def cell(mode: str, layers: int) -> str:
    return f"{mode}@{layers}"


def fit_line(samples: dict[str, list[float]], probe_bytes: dict[str, int], mode: str) -> Fitted:
    """The median load time at each probe size, joined by a line: its slope per GB and the
    intercept at zero bytes (clipped at 0: a negative intercept is noise, not a refund)."""
    ordered = sorted(probe_bytes, key=probe_bytes.__getitem__)
    small, large = ordered[0], ordered[-1]
    t_small = statistics.median(samples[cell(mode, int(small))])
    t_large = statistics.median(samples[cell(mode, int(large))])
    slope = (t_large - t_small) / ((probe_bytes[large] - probe_bytes[small]) / GB)
    return Fitted(max(0.0, t_small - slope * probe_bytes[small] / GB), slope)


def rates_from(
    samples: dict[str, list[float]],
    import_samples: Sequence[float],
    probe_bytes: dict[str, int],
    skipped: dict[str, str],
    host_bandwidth: float,
    machine_key: str,
    environment: dict[str, str],
    cold_reads: bool,
    repeats: int,
) -> FixedCostRates:
    """The record from the raw timings (the method at the top). A quantiser whose per-byte time
    comes out below the plain load's is recorded as 0: it cost nothing this probe could see."""
    plain = fit_line(samples, probe_bytes, PLAIN)
    quantise = {}
    for mode in QUANTISERS:
        if mode in skipped:
            continue
        quantise[mode] = max(0.0, fit_line(samples, probe_bytes, mode).s_per_gb - plain.s_per_gb)
    return FixedCostRates(
        machine_key=machine_key,
        recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        environment=environment,
        import_s=statistics.median(import_samples),
        load_overhead_s=plain.overhead_s,
        read_s_per_gb=max(0.0, plain.s_per_gb),
        quantise_s_per_gb=quantise,
        host_bandwidth=host_bandwidth,
        cold_reads=cold_reads,
        repeats=repeats,
        probe_bytes=probe_bytes,
        samples=samples,
        import_samples=list(import_samples),
        skipped=skipped,
    )


# -- running the probe --------------------------------------------------------------------------


def drop_from_page_cache(path: Path) -> bool:
    """Evict `path`'s pages (fsync first: dirty pages stay). False where the OS cannot."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def run_child(folder: Path, mode: str) -> dict[str, float]:
    """One fresh process loading `folder` in `mode`: {"import_s", "load_s"}."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, str(CHILD), str(folder), mode], capture_output=True, text=True, env=env, check=False
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"fixed-cost probe ({mode}, {folder.name}) failed: {tail}")
    return json.loads(lines[-1])


def build_probe(folder: Path, layers: int) -> int:
    """An fp16 safetensors checkpoint of the probe architecture with `layers` decoder layers; its bytes."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification
    from transformers.utils import logging

    logging.disable_progress_bar()
    config = LlamaConfig(**PROBE, num_hidden_layers=layers, num_labels=3, pad_token_id=0)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification._from_config(config, dtype=torch.float16)
    model.save_pretrained(folder, safe_serialization=True)
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def copy_bandwidth() -> float:
    """Bytes/s of a 256 MiB tensor copy (read + write), best of 5: past the caches, as quantising a
    layer's weights is (16 MiB fits a server CPU's last-level cache)."""
    import torch

    src = torch.ones(256 * 2**20 // 4)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() * 4 / best


def quantiser_missing() -> str | None:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return "bitsandbytes is not installed"
    return None


def measure(
    machine_key: str,
    environment: dict[str, str],
    repeats: int = 3,
    child: Callable[[Path, str], dict[str, float]] = run_child,
    build: Callable[[Path, int], int] = build_probe,
    report: Callable[[str], None] = lambda line: None,
) -> FixedCostRates:
    """Build the probes, run every (mode, size) once per repeat in the same order, and fit."""
    missing = quantiser_missing()
    skipped = {mode: missing for mode in QUANTISERS} if missing else {}
    modes = [PLAIN, *(m for m in QUANTISERS if m not in skipped)]
    samples: dict[str, list[float]] = {cell(m, n): [] for m in modes for n in PROBE_LAYERS}
    imports: list[float] = []
    with tempfile.TemporaryDirectory(prefix="perfsuite-fixed-") as tmp:
        folders = {n: Path(tmp) / f"probe-{n}" for n in PROBE_LAYERS}
        probe_bytes = {str(n): build(folders[n], n) for n in PROBE_LAYERS}
        report(f"probes: {', '.join(f'{n} layers {probe_bytes[str(n)] / GB:.2f} GB' for n in PROBE_LAYERS)}")
        cold = True
        for r in range(repeats):
            for mode in modes:
                for n in PROBE_LAYERS:
                    for path in Path(tmp).glob("probe-*/*.safetensors"):  # both: no write-back under way
                        cold = drop_from_page_cache(path) and cold
                    got = child(folders[n], mode)
                    samples[cell(mode, n)].append(float(got["load_s"]))
                    imports.append(float(got["import_s"]))
                    report(f"repeat {r + 1}/{repeats} {mode:5s} {n} layers: load {got['load_s']:.2f} s")
    return rates_from(samples, imports, probe_bytes, skipped, copy_bandwidth(), machine_key, environment, cold, repeats)


# -- the stored record --------------------------------------------------------------------------


def record_path(root: Path, machine_key: str) -> Path:
    return root / machine_key / FILE


def save_rates(root: Path, rates: FixedCostRates) -> Path:
    """Written as a whole (a reader sees the old record or the new one), in this machine's folder only."""
    return atomic_write_text(record_path(root, rates.machine_key), json.dumps(rates.to_dict(), indent=1) + "\n")


def load_rates(root: Path, machine_key: str) -> tuple[FixedCostRates | None, str]:
    """This machine's record, or None and why there is none. A broken one raises FixedCostError."""
    path = record_path(root, machine_key)
    if not path.is_file():
        return None, f"no fixed-cost record at {path} (`perfsuite fixed-costs --save`)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FixedCostError(f"{path}: cannot read it as JSON ({exc})") from None
    return FixedCostRates.from_dict(data, str(path)), str(path)
