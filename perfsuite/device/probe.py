"""Ask the installed libraries whether they accept a setting, instead of assuming they do not.

Whether transformers accepts an attention implementation for an architecture changes from
release to release (Gemma-2 + sdpa: accepted in 4.42-4.44, eager forced in 4.45-4.47,
accepted again in 4.48-5.20 while silently dropping softcapping, refused from 5.21). A rule
written into perfsuite would be right for one release and silently wrong for the others, so
the answer comes from the stack at hand: the model is built on the meta device (no memory,
milliseconds) with the setting, and bitsandbytes quantises one small layer on the tier's
device. A refusal is quoted and attributed to the library that raised it. Answers are cached
per library versions in ``<perfsuite cache>/probes/<digest>.json``.

What no probe can see on this machine stays as data: `hardware.HARDWARE_RULES`.
"""

from __future__ import annotations

import hashlib
import json
import re
import traceback
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from perfsuite.device.environment import versions_of
from perfsuite.fileio import atomic_write_text, default_cache_dir
from perfsuite.models.specs import ModelSpec
from perfsuite.variant import BITSANDBYTES, compute_dtype

LIBRARIES = ("torch", "transformers", "bitsandbytes", "peft", "accelerate")
ANSWER_FORMAT = 2  # bump when the wording of cached answers changes, so old caches are not read
PACKED_TOLERANCE = 1e-4  # fp32: a row's state packed beside another vs alone (kernel order moves it ~1e-6)


class Refused(Exception):
    """A probe's own finding (not a library's exception): its text is the whole answer."""


def library_versions() -> dict[str, str]:
    """The versions a probe's answers hold for ('absent' for a library not installed)."""
    return versions_of(LIBRARIES)


def quote(exc: BaseException, limit: int = 240) -> str:
    """The library's own message, first sentence, whitespace collapsed ('...' when cut)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    cut = first if len(first) <= limit else first[: limit - 3].rstrip()
    return cut if cut == text else cut.rstrip(".") + "..."


def raised_by(exc: BaseException, versions: dict[str, str]) -> str:
    """'transformers 5.24.0': the tracked library whose code raised `exc` (innermost frame)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        parts = Path(frame.filename).parts
        for name in versions:
            if name in parts and "site-packages" in parts[: parts.index(name)]:
                return f"{name} {versions[name]}"
    return "the installed libraries"


class SupportProbe:
    """Asks the installed stack, once per library versions, and remembers the answers."""

    def __init__(self, cache_dir: Path | None = None, versions: dict[str, str] | None = None) -> None:
        self.versions = versions or library_versions()
        key = json.dumps([ANSWER_FORMAT, self.versions], sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.path = (cache_dir or default_cache_dir()) / "probes" / f"{digest}.json"
        self._answers: dict[str, str | None] | None = None

    def _load(self) -> dict[str, str | None]:
        if self._answers is None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                answers = data["answers"] if data.get("versions") == self.versions else {}
            except (OSError, ValueError, KeyError, TypeError):
                answers = {}  # no cache yet, or an unreadable one: ask again
            self._answers = {k: v for k, v in answers.items() if v is None or isinstance(v, str)}
        return self._answers

    def _ask(self, key: str, attempt: Callable[[], None]) -> str | None:
        answers = self._load()
        if key not in answers:
            try:
                attempt()
                answers[key] = None
            except Refused as exc:
                answers[key] = str(exc)
            except Exception as exc:  # any refusal is an answer; it is quoted, not hidden
                answers[key] = f"{raised_by(exc, self.versions)}: {quote(exc)}"
            data = {"versions": self.versions, "answers": answers}
            atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
        return answers[key]

    def attention(self, spec: ModelSpec, attention: str, dtype: str) -> str | None:
        """None if transformers builds `spec` with this attention and dtype, else its refusal."""

        def build() -> None:
            import torch

            from perfsuite.models.factory import TORCH_DTYPES

            config = spec.build_config(pad_token_id=0)
            torch_dtype = TORCH_DTYPES[compute_dtype(dtype, "fp32")]
            with torch.device("meta"):
                spec.model_class()._from_config(config, attn_implementation=attention, dtype=torch_dtype)

        key = f"attention|{spec.architecture}|{spec.fingerprint()}|{attention}|{dtype}"
        return self._ask(key, build)

    def packing(self, spec: ModelSpec, attention: str, device: str = "cpu") -> str | None:
        """None if the installed transformers keeps rows packed into one sequence apart with this
        attention: two short rows, packed with their positions restarting, must give each row's
        last hidden state as that row alone does. Otherwise why not - never a silent cross-row
        attention."""

        def check() -> None:
            import torch

            model = _probe_model(spec, attention).to(device)
            rows = [torch.arange(3, 10), torch.arange(12, 17)]
            backbone = model.base_model
            with torch.inference_mode():
                alone = [backbone(input_ids=r[None].to(device), use_cache=False).last_hidden_state[0, -1] for r in rows]
                packed = backbone(
                    input_ids=torch.cat(rows)[None].to(device),
                    position_ids=torch.cat([torch.arange(len(r)) for r in rows])[None].to(device),
                    use_cache=False,
                ).last_hidden_state[0]
            ends = [len(rows[0]) - 1, len(rows[0]) + len(rows[1]) - 1]
            moved = max(float((packed[e] - a).abs().max()) for e, a in zip(ends, alone, strict=True))
            scale = max(float(a.abs().max()) for a in alone)
            if not moved <= PACKED_TOLERANCE * max(scale, 1.0):
                raise Refused(
                    f"transformers {self.versions.get('transformers')} with {attention} lets rows packed into one "
                    f"sequence attend to each other ({spec.architecture}: a row's last hidden state moved by "
                    f"{moved:.2g} beside another row)"
                )

        key = f"packing|{spec.architecture}|{spec.fingerprint()}|{attention}|{device}"
        return self._ask(key, check)

    def quantization(self, dtype: str, compute: str, device: str) -> str | None:
        """None if bitsandbytes quantises and runs one small layer as `dtype` on `device` (gptq8
        is a checkpoint's own weights: `support.gptq_reason` asks the checkpoint)."""
        if dtype not in BITSANDBYTES:
            return None

        def quantize() -> None:
            import torch

            from perfsuite.models.factory import TORCH_DTYPES, quantize_linears

            layer = torch.nn.Sequential(torch.nn.Linear(64, 64))
            quantize_linears(layer, dtype, compute, device)
            with torch.no_grad():
                layer(torch.ones(2, 64, dtype=TORCH_DTYPES[compute], device=device))

        return self._ask(f"quantization|{dtype}|{compute}|{device}", quantize)


def _probe_model(spec: ModelSpec, attention: str):
    """A small seeded fp32 model of the spec's architecture: the spec itself when it is a
    miniature or real weights' (135M), else its miniature (the masking is the architecture's,
    not the size's)."""
    import torch

    from perfsuite.models.shrink import miniature

    small = spec if spec.tiny or spec.real else miniature(spec, vocab_size=256, max_length=64, eos_id=2)
    torch.manual_seed(0)
    model = small.model_class()._from_config(small.build_config(pad_token_id=0), attn_implementation=attention)
    return model.float().eval()


@lru_cache(maxsize=1)
def default_probe() -> SupportProbe:
    return SupportProbe()
