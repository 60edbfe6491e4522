"""Device specs for the cost model: datasheet peaks for the GPUs, a calibration for this CPU.

Peaks are dense matmul rates per compute dtype and memory bandwidth; what a forward
reaches of them (the efficiency factors) is fitted to what the suite measured
(`perfsuite.cost.fit`). A dtype without hardware support on a card is listed in
`emulated` with the rate assumed for it, so a report can say so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import lru_cache

TFLOPS = 1e12
GBPS = 1e9
GIB = 2**30


@dataclass(frozen=True)
class DeviceSpec:
    """What bounds a forward on one device: matmul peaks, bandwidth, memory, fixed costs."""

    key: str
    name: str
    matmul_flops: dict[str, float]  # FLOP/s by compute dtype (fp32, fp16, bf16)
    bandwidth: float  # bytes/s
    memory_bytes: float
    compute_eff: float = 0.6  # share of the matmul peak the linear layers reach
    attention_eff: float = 0.3  # share of it the attention matmuls reach (small head_dim, batched)
    memory_eff: float = 0.75  # share of the bandwidth elementwise / attention traffic reaches
    layer_overhead_s: float = 40e-6  # fixed cost per decoder layer per batch (launches, dispatch)
    emulated: dict[str, str] = field(default_factory=dict)  # dtype -> why its rate is what it is
    compute_capability: tuple[int, int] | None = None  # None: a CPU
    source: str = ""
    # A card with no fit of its own: measured/predicted on a public run of the workload, applied
    # on top of factors borrowed from another card's fit (docs/validation.md says which runs).
    public_calibration: float = 1.0
    public_calibration_source: str = ""

    def rate(self, compute_dtype: str) -> float:
        return self.matmul_flops[compute_dtype]

    def caps(self):
        """The device as the matrix's rules see it, with flash-attn, bitsandbytes and GPTQ assumed installed."""
        from perfsuite.device.machine import DeviceCaps

        kind = "cuda" if self.compute_capability else "cpu"
        return DeviceCaps(
            kind,
            self.name,
            self.compute_capability,
            total_memory_bytes=int(self.memory_bytes),
            flash_attn_available=True,
            bitsandbytes_available=True,
            gptq_available=True,
        )


# Datasheet dense (non-sparse) tensor-core peaks; bf16 on sm75 has no tensor cores.
DEVICES: dict[str, DeviceSpec] = {
    d.key: d
    for d in (
        DeviceSpec(
            "t4",
            "NVIDIA T4 (sm75, 16 GB)",
            {"fp16": 65 * TFLOPS, "fp32": 8.1 * TFLOPS, "bf16": 4.05 * TFLOPS},
            320 * GBPS,
            16e9,
            emulated={
                "bf16": "no bf16 tensor cores on sm75: emulated, assumed at half the fp32 rate "
                "(sm75 has no bf16 units, so bf16 runs slower than fp32 even where torch.cuda.is_bf16_supported() "
                "says True; not measured on a T4 here)"
            },
            compute_capability=(7, 5),
            source="NVIDIA T4 datasheet: 65 TFLOPS fp16 tensor, 8.1 TFLOPS fp32, 320 GB/s",
            public_calibration=1.40,
            public_calibration_source=(
                "the public 'Gemma-2 9b 4-bit QLoRA' notebook: about 4 h for 25,000 rows on 2x T4 (nf4, fp16 "
                "compute, max_length 2048, batch 4, sorted) where the H100-fitted factors predict 2.85 h on the "
                "real battles' Llama-3 token counts (2026-11-27)"
            ),
        ),
        DeviceSpec(
            "p100",
            "NVIDIA P100 (sm60, 16 GB)",
            {"fp16": 18.7 * TFLOPS, "fp32": 9.3 * TFLOPS, "bf16": 4.65 * TFLOPS},
            732 * GBPS,
            16e9,
            emulated={
                "bf16": "no bf16 on sm60: emulated, assumed at half the fp32 rate (not measured here)",
                "fp16": "no tensor cores on sm60: fp16 at twice the fp32 rate (datasheet)",
            },
            compute_capability=(6, 0),
            source="NVIDIA Tesla P100 PCIe datasheet: 18.7 TFLOPS fp16, 9.3 TFLOPS fp32, 732 GB/s (Kaggle's other GPU)",
        ),
        DeviceSpec(
            "l4",
            "NVIDIA L4 (sm89, 24 GB)",
            {"fp16": 121 * TFLOPS, "bf16": 121 * TFLOPS, "fp32": 30.3 * TFLOPS},
            300 * GBPS,
            24e9,
            compute_capability=(8, 9),
            source="NVIDIA L4 datasheet: 242 TFLOPS fp16 with sparsity (121 dense), 300 GB/s",
        ),
        DeviceSpec(
            "a10g",
            "NVIDIA A10G (sm86, 24 GB)",
            {"fp16": 70 * TFLOPS, "bf16": 70 * TFLOPS, "fp32": 35 * TFLOPS},
            600 * GBPS,
            24e9,
            compute_capability=(8, 6),
            source="AWS G5 / A10G: ~70 TFLOPS fp16 tensor dense, 600 GB/s",
        ),
        DeviceSpec(
            "a100",
            "NVIDIA A100 80GB SXM (sm80)",
            {"fp16": 312 * TFLOPS, "bf16": 312 * TFLOPS, "fp32": 19.5 * TFLOPS},
            2039 * GBPS,
            80e9,
            compute_capability=(8, 0),
            source="NVIDIA A100 datasheet: 312 TFLOPS fp16/bf16 dense, 2,039 GB/s",
        ),
        DeviceSpec(
            "h100",
            "NVIDIA H100 80GB HBM3 SXM (sm90)",
            {"fp16": 989 * TFLOPS, "bf16": 989 * TFLOPS, "fp32": 67 * TFLOPS},
            3350 * GBPS,
            80e9,
            compute_capability=(9, 0),
            source="NVIDIA H100 SXM datasheet: 989 TFLOPS fp16/bf16 dense, 3.35 TB/s",
        ),
    )
}


def _time_best(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@lru_cache(maxsize=4)
def calibrate_cpu(threads: int | None = None) -> DeviceSpec:
    """This CPU, measured once per process: matmul rate per dtype, copy bandwidth, op overhead.

    The rates are what torch reaches here, so the efficiency factors start at 1.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    n = 512
    rates = {}
    for dtype, tdtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        a, b = torch.randn(n, n).to(tdtype), torch.randn(n, n).to(tdtype)
        seconds = _time_best(lambda a=a, b=b: torch.mm(a, b), repeats=3)
        rates[dtype] = 2 * n**3 / seconds
    src = torch.empty(16 * 2**20 // 4)  # 16 MiB, past the caches
    dst = torch.empty_like(src)
    copy_s = _time_best(lambda: dst.copy_(src))
    bandwidth = 2 * src.numel() * 4 / copy_s
    small = torch.randn(8, 64)
    weight = torch.randn(64, 64)
    op_s = _time_best(lambda: torch.nn.functional.linear(small, weight), repeats=50)
    from perfsuite.device.machine import detect

    return DeviceSpec(
        "cpu",
        detect("cpu").name,
        rates,
        bandwidth,
        float(total_memory()),
        compute_eff=1.0,
        attention_eff=1.0,
        memory_eff=1.0,
        layer_overhead_s=25 * op_s,  # an eager decoder layer dispatches ~25 small ops
        emulated={"fp16": "no fp16 matmul kernels on this CPU: calibrated rate"}
        if rates["fp16"] < rates["fp32"] / 2
        else {},
        source=f"calibrated here: {n}x{n} matmul, 16 MiB copy, small-op dispatch",
    )


def total_memory() -> int:
    """This machine's memory in bytes (0 where unknown): what explain and budget check a CPU side against.

    The seam tests stub, so a projection's memory check does not depend on the machine it runs on."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            return int(handle.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def get_device(key: str, threads: int | None = None) -> DeviceSpec:
    """A datasheet GPU by key (t4, l4, a10g, a100, h100), or "cpu" calibrated now."""
    if key == "cpu":
        return calibrate_cpu(threads)
    try:
        return DEVICES[key]
    except KeyError:
        raise KeyError(f"unknown device {key!r}; known: cpu, {', '.join(DEVICES)}") from None


EFFICIENCY_FIELDS = ("compute_eff", "attention_eff", "memory_eff", "layer_overhead_s")


def with_efficiency(device: DeviceSpec, **factors: float) -> DeviceSpec:
    unknown = set(factors) - set(EFFICIENCY_FIELDS)
    if unknown:
        raise ValueError(f"unknown efficiency factor(s) {sorted(unknown)}")
    return replace(device, **factors)
