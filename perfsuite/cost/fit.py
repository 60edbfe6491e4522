"""Fit a device's efficiency factors to what the suite measured.

The cost model's peaks come from datasheets (GPUs) or a calibration (CPU); how much of
them a real forward reaches is fitted here: compute efficiency, memory efficiency and a
fixed cost per layer and batch, by least squares on log(predicted / measured) over stored
baselines. The workload of each baseline is rebuilt from its recorded settings (the
bundled sample and the shipped tokenizer), so a fit needs no new run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from perfsuite.cost import devices
from perfsuite.cost.devices import DEVICES, EFFICIENCY_FIELDS, DeviceSpec, with_efficiency
from perfsuite.cost.model import CostConfig, predict
from perfsuite.measure.batching import pack_lengths, padded_shapes
from perfsuite.models.specs import SPECS, get_spec
from perfsuite.store.baselines import BaselineStore, RebaselineLock
from perfsuite.store.names import inside, safe_name
from perfsuite.variant import Variant

FIT_FILE = "costmodel.json"
PRIOR_WEIGHT = 0.3  # per unit of log-factor, against one variant's log error


@dataclass(frozen=True)
class Observation:
    """One measured variant: what ran, its batch shapes, its median pass time."""

    variant_id: str  # tier/variant: two tiers measure the same variant on different workloads
    config: CostConfig
    shapes: tuple[tuple[int, int], ...]
    measured_s: float
    packs: tuple[tuple[int, ...], ...] | None = None  # packed: each sequence's row lengths


def sample_lengths(max_length: int, rows: int) -> tuple[int, ...]:
    """Token lengths of the bundled sample's first `rows` rows, formatted and truncated as a run does."""
    from perfsuite.data.lengths import token_lengths
    from perfsuite.data.sample import SAMPLE_PATH

    return token_lengths(SAMPLE_PATH, max_length, rows).kept


# What the model covers per device type; the rest is predicted and reported, not fitted.
# CPU: flex_attention's speed depends on torch.compile state, fp16 and bf16 run through
# conversion-bound paths with no fast kernels here (the calibrated matmul rate does not
# describe them), LLM.int8's outlier decomposition is not modelled anywhere.
FITTED = {
    "cpu": {"dtypes": ("fp32",), "attentions": ("eager", "sdpa")},
    "cuda": {"dtypes": ("fp32", "fp16", "bf16", "nf4"), "attentions": ("eager", "sdpa", "flash_attention_2")},
}


def fitted_kinds(obs: Sequence[Observation], device_type: str) -> list[Observation]:
    rule = FITTED[device_type]
    return [o for o in obs if o.config.dtype in rule["dtypes"] and o.config.attention in rule["attentions"]]


def observations(store: BaselineStore, quantized_compute: str) -> tuple[list[Observation], list[str]]:
    """Observations from one machine's records of one tier (read through the store), and why any was left out."""
    from perfsuite.data.sample import SAMPLE_PATH
    from perfsuite.fileio import file_fingerprint

    sample = file_fingerprint(SAMPLE_PATH)
    out, skipped = [], []
    for record in store.machine_records():
        s = record.settings
        if s.get("data") != sample or s.get("tta"):
            skipped.append(f"{record.variant}.json: not the bundled sample without TTA ({s.get('data')})")
            continue
        model, dtype, attention, padding = Variant.split_id(record.variant)
        if model not in SPECS:
            skipped.append(f"{record.variant}.json: {model} is not a built-in model (a user matrix's own)")
            continue
        spec = get_spec(model)
        lengths = sample_lengths(s["max_length"], s["rows"])
        budget = s.get("max_batch_tokens")
        shapes = tuple(padded_shapes(lengths, s["batch_size"], padding, s["max_length"], budget))
        packs = tuple(pack_lengths(lengths, s["batch_size"], s["max_length"], budget)) if padding == "packed" else None
        cfg = CostConfig.for_model(spec, dtype, attention, quantized_compute)
        out.append(Observation(f"{store.tier}/{record.variant}", cfg, shapes, record.latency.median_s, packs))
    return out, skipped


def fit(device: DeviceSpec, obs: Sequence[Observation]) -> tuple[DeviceSpec, dict[str, float]]:
    """Efficiency factors minimising the squared log error; returns the fitted device and the error per variant."""
    import numpy as np
    from scipy.optimize import least_squares

    if len(obs) < len(EFFICIENCY_FIELDS):
        raise ValueError(f"need at least {len(EFFICIENCY_FIELDS)} measured variants to fit, got {len(obs)}")

    def device_for(params) -> DeviceSpec:
        return with_efficiency(device, **dict(zip(EFFICIENCY_FIELDS, (float(x) for x in np.exp(params)), strict=True)))

    # The data often cannot tell the linear matmuls from the attention ones (both grow with
    # tokens), so each factor is pulled weakly towards its prior: the device's defaults
    # (a CPU's calibration). The data moves a factor far only when the fit needs it.
    prior = np.log([getattr(device, f) for f in EFFICIENCY_FIELDS])

    def residuals(params) -> np.ndarray:
        dev = device_for(params)
        data = [math.log(predict(o.config, dev, o.shapes, o.packs).total / o.measured_s) for o in obs]
        return np.array(data + list(PRIOR_WEIGHT * (params - prior)))

    # A datasheet peak cannot be beaten; a CPU's calibrated rate (one 512x512 matmul) can.
    ceiling = 2.0 if device.key == "cpu" else 1.0
    lower, upper = np.log([1e-3, 1e-3, 1e-3, 1e-8]), np.log([ceiling, ceiling, ceiling, 1.0])
    res = least_squares(residuals, np.clip(prior, lower + 1e-9, upper - 1e-9), bounds=(lower, upper))
    fitted = device_for(res.x)
    errors = {o.variant_id: float(math.exp(r)) for o, r in zip(obs, residuals(res.x)[: len(obs)], strict=True)}
    return fitted, errors


def save_fit(
    path: Path, device: DeviceSpec, errors: dict[str, float], source: str, left_out: Sequence[str] = ()
) -> None:
    """The fitted factors, the peaks they apply to, each fitted variant's error, and the records not used."""
    from perfsuite.fileio import atomic_write_text

    data = {
        "device": device.name,
        "matmul_flops": {k: float(f"{v:.4g}") for k, v in device.matmul_flops.items()},
        "bandwidth": float(f"{device.bandwidth:.4g}"),
        **{f: float(f"{getattr(device, f):.4g}") for f in EFFICIENCY_FIELDS},
        "fitted_on": source,
        "fitted_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "predicted_over_measured": {k: round(v, 4) for k, v in sorted(errors.items())},
        "left_out": list(left_out),
    }
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def load_fit(path: Path, device: DeviceSpec) -> DeviceSpec:
    """The device as fitted: the peaks the fit used (a CPU's calibration) and its factors."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        fitted = replace(
            device,
            matmul_flops={k: float(v) for k, v in data["matmul_flops"].items()},
            bandwidth=float(data["bandwidth"]),
        )
        return with_efficiency(fitted, **{f: float(data[f]) for f in EFFICIENCY_FIELDS})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: unusable cost-model fit ({exc})") from None


def device_key_for(name: str) -> str | None:
    """Which datasheet spec a CUDA device name is (None if none matches)."""
    lowered = name.lower()
    for key in ("h100", "a100", "a10g", "l4", "t4", "p100"):
        if key in lowered.replace(" ", ""):
            return key
    return None


class FitRefused(ValueError):
    """A new fit worse than the stored one (or pinned at a bound): not written without --force."""


def log_error(errors: dict[str, float]) -> float:
    """Root-mean-square of log(predicted / measured): a fit's error on the runs it was fitted to."""
    if not errors:
        return math.inf
    return math.sqrt(sum(math.log(r) ** 2 for r in errors.values()) / len(errors))


def at_bound(values: dict[str, float], cpu: bool) -> dict[str, str]:
    """Factors the optimiser left at a bound, with the bound: the model could not explain the data there."""
    ceiling = 2.0 if cpu else 1.0
    limits = {f: (1e-3, ceiling) for f in EFFICIENCY_FIELDS[:3]} | {EFFICIENCY_FIELDS[3]: (1e-8, 1.0)}
    out = {}
    for f, (lo, hi) in limits.items():
        value = values[f]
        if value <= lo * 1.001 or value >= hi * 0.999:
            out[f] = f"{f} {value:.4g} (bound {lo if value <= lo * 1.001 else hi:g})"
    return out


def refusal(path: Path, fitted: DeviceSpec, errors: dict[str, float]) -> str | None:
    """Why the new fit must not replace the stored one at `path`, or None.

    Worse means a higher error on its runs than the stored fit had on its own, or a factor
    newly pinned at its bound (on this CPU two factors sit at the 2x ceiling in a good fit:
    its one-matmul calibration underrates the CPU; a third joining them is what a busy
    machine's records did, 2026-11-27: 2, 2, 2 and predicted/measured 1.37-3.06).
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        old = {k: float(v) for k, v in data["predicted_over_measured"].items()}
        old_values = {f: float(data[f]) for f in EFFICIENCY_FIELDS}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # an unreadable stored fit is no standard to keep
    cpu = fitted.key == "cpu"
    pinned = at_bound({f: getattr(fitted, f) for f in EFFICIENCY_FIELDS}, cpu)
    newly = [text for f, text in pinned.items() if f not in at_bound(old_values, cpu)]
    if newly:
        return f"factors newly at their bounds: {', '.join(newly)} (a busy or unusual machine's records?)"
    new_error, old_error = log_error(errors), log_error(old)
    if new_error > old_error * 1.05:
        lo, hi = min(errors.values()), max(errors.values())
        return (
            f"its error on its runs, {new_error:.3f} (RMS log predicted/measured; {lo:.2f}-{hi:.2f}), is higher than "
            f"the stored fit's {old_error:.3f} ({min(old.values()):.2f}-{max(old.values()):.2f})"
        )
    return None


def fit_and_save(
    root: Path, machine_key: str, tiers: Sequence[str], force: bool = False
) -> tuple[DeviceSpec, dict[str, float], dict[str, float], Path]:
    """Fit the machine's stored baselines of `tiers`; write <root>/<machine>/costmodel.json.

    A fit worse than the stored one, or with a factor at its bound, is refused (FitRefused)
    unless `force`. Returns the fitted device, predicted/measured of the fitted variants, of
    the rest, and the file.
    """
    holder = RebaselineLock.holder(root, machine_key)
    if holder:
        raise ValueError(f"a rebaseline of {machine_key} is running ({holder}): fit after it commits its records")
    from perfsuite.cost.devices import get_device
    from perfsuite.matrix.tier import load_matrix

    cuda = machine_key.startswith("cuda-")
    obs: list[Observation] = []
    left_out: list[str] = []
    for tier in tiers:
        folder = root / machine_key / tier
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no baselines to fit (record them with `tox -e rebaseline`)")
        store = BaselineStore(root, machine_key, tier)
        found, skipped = observations(store, load_matrix(tier).settings.nf4_compute_dtype)
        obs += found
        left_out += [f"{tier}/{why}" for why in skipped]
    if cuda:
        key = device_key_for(machine_key)
        if key is None:
            raise ValueError(f"{machine_key}: no datasheet spec for this GPU (known: {', '.join(DEVICES)})")
        base = get_device(key)
    else:
        base = get_device("cpu", load_matrix(tiers[0]).settings.threads)
    used = fitted_kinds(obs, "cuda" if cuda else "cpu")
    fitted, errors = fit(base, used)
    others = {
        o.variant_id: predict(o.config, fitted, o.shapes, o.packs).total / o.measured_s for o in obs if o not in used
    }
    path = inside(root, root / safe_name(machine_key, "machine key") / FIT_FILE, "costmodel.json")
    why = None if force else refusal(path, fitted, errors)
    if why:
        raise FitRefused(f"{path}: not replaced - the new fit is worse: {why}; `perfsuite fit --force` to write it")
    save_fit(path, fitted, errors, f"{machine_key}: {', '.join(tiers)} ({len(used)} of {len(obs)} variants)", left_out)
    return fitted, errors, others, path


def load_machine_fit(root: Path, machine_key: str) -> tuple[DeviceSpec | None, str]:
    """A machine's fitted device from <root>/<machine>/costmodel.json, or None and why not.

    A CPU's fit holds the calibration it was fitted with, so no new calibration is needed
    (and none of its run-to-run noise enters a prediction).
    """
    from perfsuite.cost.devices import get_device

    path = root / machine_key / FIT_FILE
    if not path.is_file():
        return None, f"no cost-model fit at {path} (`perfsuite fit` after a rebaseline)"
    if machine_key.startswith("cuda-"):
        key = device_key_for(machine_key)
        if key is None:
            return None, f"no datasheet spec for {machine_key}"
        base = get_device(key)
    else:
        base = DeviceSpec("cpu", machine_key, {}, 0.0, 0.0)
    return load_fit(path, base), describe_fit(path)


def describe_fit(path: Path) -> str:
    """Which fit a prediction used: machine, date, error on its runs, and the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        errors = {k: float(v) for k, v in data["predicted_over_measured"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"cost-model fit {path}"
    when = data.get("fitted_at", "date not recorded")
    spread = f"predicted/measured {min(errors.values()):.2f}-{max(errors.values()):.2f}" if errors else "no runs"
    return f"cost-model fit of {path.parent.name} ({when}; {spread} over {len(errors)} runs; {path})"


def fitted_device(key: str, root: Path = Path("baselines")) -> tuple[DeviceSpec, str]:
    """The device spec with the best efficiency factors available, and where they came from.

    This CPU's own fit for "cpu"; for a GPU, the fit of a machine of that kind under `root`,
    else the factors fitted on another GPU (the card differs, the software stack does not),
    else the datasheet defaults.
    """
    from perfsuite.cost.devices import get_device
    from perfsuite.device.machine import detect

    if key == "cpu":
        device, source = load_machine_fit(root, detect("cpu").machine_key())
        if device:  # the fit holds speeds, not this machine's memory: the same check as uncalibrated
            return replace(device, memory_bytes=float(devices.total_memory())), source
        return get_device("cpu"), f"calibrated now, default efficiency factors: {source}"
    device = get_device(key)
    machines = sorted(p.parent.name for p in root.glob(f"cuda-*/{FIT_FILE}")) if root.is_dir() else []
    for machine in machines:
        if device_key_for(machine) == key:
            fitted, source = load_machine_fit(root, machine)
            return fitted or device, source
    for machine in machines:
        data = json.loads((root / machine / FIT_FILE).read_text(encoding="utf-8"))
        factors = {f: float(data[f]) for f in EFFICIENCY_FIELDS}
        source = f"datasheet peaks, efficiency factors borrowed from the {describe_fit(root / machine / FIT_FILE)}"
        c = device.public_calibration
        if c != 1.0:  # the card's own evidence: a public run of this workload
            factors = {f: v / c for f, v in factors.items() if f != "layer_overhead_s"} | {
                "layer_overhead_s": factors["layer_overhead_s"] * c
            }
            source += f", times {c:.2f} for this card from {device.public_calibration_source}"
        return with_efficiency(device, **factors), source
    return device, f"datasheet peaks, default efficiency factors: no cost-model fit found under {root}"
