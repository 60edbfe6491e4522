"""Fit a device's efficiency factors to what the suite measured.

The cost model's peaks come from datasheets (GPUs) or a calibration (CPU); how much of
them a real forward reaches is fitted here: compute efficiency, memory efficiency and a
fixed cost per layer and batch, by least squares on log(predicted / measured) over stored
baselines. The workload of each baseline is rebuilt from its recorded settings (the
bundled sample and the shipped tokenizer), so a fit needs no new run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..baselines import BaselineStore, RebaselineLock
from ..batching import padded_shapes
from ..matrix import Variant
from ..models.specs import get_spec
from ..names import inside, safe_name
from .devices import DEVICES, EFFICIENCY_FIELDS, DeviceSpec, with_efficiency
from .model import CostConfig, predict

FIT_FILE = "costmodel.json"
PRIOR_WEIGHT = 0.3  # per unit of log-factor, against one variant's log error


@dataclass(frozen=True)
class Observation:
    """One measured variant: what ran, its batch shapes, its median pass time."""

    variant_id: str  # tier/variant: two tiers measure the same variant on different workloads
    config: CostConfig
    shapes: tuple[tuple[int, int], ...]
    measured_s: float


def sample_lengths(max_length: int, rows: int) -> tuple[int, ...]:
    """Token lengths of the bundled sample's first `rows` rows, formatted and truncated as a run does."""
    from ..data.lengths import token_lengths
    from ..data.sample import SAMPLE_PATH

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
    from ..data.sample import SAMPLE_PATH
    from ..fileio import file_fingerprint

    sample = file_fingerprint(SAMPLE_PATH)
    out, skipped = [], []
    for record in store.machine_records():
        s = record.settings
        if s.get("data") != sample or s.get("tta"):
            skipped.append(f"{record.variant}.json: not the bundled sample without TTA ({s.get('data')})")
            continue
        model, dtype, attention, padding = Variant.split_id(record.variant)
        spec = get_spec(model)
        lengths = sample_lengths(s["max_length"], s["rows"])
        shapes = tuple(padded_shapes(lengths, s["batch_size"], padding, s["max_length"]))
        cfg = CostConfig.for_model(spec, dtype, attention, quantized_compute)
        out.append(Observation(f"{store.tier}/{record.variant}", cfg, shapes, record.latency.median_s))
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
        data = [math.log(predict(o.config, dev, o.shapes).total / o.measured_s) for o in obs]
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
    from ..fileio import atomic_write_text

    data = {
        "device": device.name,
        "matmul_flops": {k: float(f"{v:.4g}") for k, v in device.matmul_flops.items()},
        "bandwidth": float(f"{device.bandwidth:.4g}"),
        **{f: float(f"{getattr(device, f):.4g}") for f in EFFICIENCY_FIELDS},
        "fitted_on": source,
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
    for key in ("h100", "a100", "a10g", "l4", "t4"):
        if key in lowered.replace(" ", ""):
            return key
    return None


def fit_and_save(
    root: Path, machine_key: str, tiers: Sequence[str]
) -> tuple[DeviceSpec, dict[str, float], dict[str, float], Path]:
    """Fit the machine's stored baselines of `tiers`; write <root>/<machine>/costmodel.json.

    Returns the fitted device, predicted/measured of the fitted variants, of the rest, and the file.
    """
    holder = RebaselineLock.holder(root, machine_key)
    if holder:
        raise ValueError(f"a rebaseline of {machine_key} is running ({holder}): fit after it commits its records")
    from ..matrix import load_matrix
    from .devices import get_device

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
    others = {o.variant_id: predict(o.config, fitted, o.shapes).total / o.measured_s for o in obs if o not in used}
    path = inside(root, root / safe_name(machine_key, "machine key") / FIT_FILE, "costmodel.json")
    save_fit(path, fitted, errors, f"{machine_key}: {', '.join(tiers)} ({len(used)} of {len(obs)} variants)", left_out)
    return fitted, errors, others, path


def load_machine_fit(root: Path, machine_key: str) -> tuple[DeviceSpec | None, str]:
    """A machine's fitted device from <root>/<machine>/costmodel.json, or None and why not.

    A CPU's fit holds the calibration it was fitted with, so no new calibration is needed
    (and none of its run-to-run noise enters a prediction).
    """
    from .devices import get_device

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
    return load_fit(path, base), f"fitted on {machine_key}"


def fitted_device(key: str, root: Path = Path("baselines")) -> tuple[DeviceSpec, str]:
    """The device spec with the best efficiency factors available, and where they came from.

    This CPU's own fit for "cpu"; for a GPU, the fit of a machine of that kind under `root`,
    else the factors fitted on another GPU (the card differs, the software stack does not),
    else the datasheet defaults.
    """
    from ..machine import detect
    from .devices import get_device

    if key == "cpu":
        device, source = load_machine_fit(root, detect("cpu").machine_key())
        return (device, source) if device else (get_device("cpu"), f"calibrated now, default efficiency ({source})")
    device = get_device(key)
    machines = sorted(p.parent.name for p in root.glob(f"cuda-*/{FIT_FILE}")) if root.is_dir() else []
    for machine in machines:
        if device_key_for(machine) == key:
            return load_machine_fit(root, machine)[0] or device, f"fitted on {machine}"
    for machine in machines:
        data = json.loads((root / machine / FIT_FILE).read_text(encoding="utf-8"))
        factors = {f: float(data[f]) for f in EFFICIENCY_FIELDS}
        return with_efficiency(device, **factors), f"datasheet peaks, efficiency factors borrowed from {machine}"
    return device, "datasheet peaks, default efficiency factors (no fit found)"
