"""The test matrix: axes and settings from TOML, expansion into Variants, validity rules.

A matrix is data (``perfsuite/matrices/<tier>.toml``); this module turns it into
``Variant`` objects and decides, per machine, which can run. A variant that cannot run
is never dropped: it carries the reason it is skipped.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from perfsuite.device.emulation import emulation_note
from perfsuite.device.machine import DeviceCaps
from perfsuite.fileio import adapter_problem
from perfsuite.matrix.settings import MatrixError, tier_settings
from perfsuite.models.declared import ModelDeclaration
from perfsuite.models.modelspec import ModelSpec
from perfsuite.models.specs import SPECS, get_spec
from perfsuite.store.names import UnsafeName, safe_name
from perfsuite.variant import (
    ATTENTIONS,
    DTYPES,
    PADDINGS,
    Bounds,
    TierSettings,
    Variant,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MATRIX_DIR = Path(__file__).parents[1] / "matrices"


@dataclass(frozen=True)
class Exclusion:
    """A tier-level decision not to run some variants, with the reason shown as their skip."""

    match: str
    reason: str


@dataclass(frozen=True)
class RelativeBound:
    """A declared pair: `variant`'s pass time over `reference`'s, measured interleaved in one run.

    Machine drift hits both sides alike, so the ratio is portable where absolute times are
    not. It fails only when the whole confidence interval of the median ratio lies outside
    [min_ratio, max_ratio].
    """

    name: str
    variant: Variant
    reference: Variant
    min_ratio: float | None
    max_ratio: float | None
    reason: str
    predict_within: float | None = None  # also check the cost model's predicted ratio to this tolerance

    @property
    def id(self) -> str:
        return f"{self.name}:{self.variant.id}"

    def band(self) -> str:
        lo = f"{self.min_ratio:g}x" if self.min_ratio is not None else "0"
        hi = f"{self.max_ratio:g}x" if self.max_ratio is not None else "inf"
        return f"[{lo}, {hi}]"


@dataclass(frozen=True)
class Matrix:
    source: str
    settings: TierSettings
    variants: tuple[Variant, ...]
    exclusions: tuple[Exclusion, ...] = ()
    relative: tuple[RelativeBound, ...] = ()
    # A user matrix's [[models]]: name -> spec as this tier runs it (a CPU tier's miniature)
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    declarations: tuple[ModelDeclaration, ...] = ()

    def spec(self, model: str) -> ModelSpec:
        """The spec a variant's model name stands for here: declared in this matrix, or built in."""
        return self.models[model] if model in self.models else get_spec(model)

    @property
    def is_user_matrix(self) -> bool:
        return bool(self.declarations)

    @property
    def default_baselines(self) -> Path | None:
        """Where a user matrix keeps its baselines unless told: `baselines/` beside its TOML."""
        return Path(self.source).parent / "baselines" if self.is_user_matrix else None

    def excluded(self, variant: Variant) -> str | None:
        for ex in self.exclusions:
            if matches_any(variant.id, ex.match):
                return ex.reason
        return None

    def select(self, pattern: str | None) -> tuple[Variant, ...]:
        """Variants whose id matches any of the comma-separated globs (all if none given)."""
        if not pattern:
            return self.variants
        return tuple(v for v in self.variants if matches_any(v.id, pattern))

    def select_relative(self, pattern: str | None) -> tuple[RelativeBound, ...]:
        """Relative bounds whose variant or reference matches the globs (all if none given)."""
        if not pattern:
            return self.relative
        return tuple(
            r for r in self.relative if matches_any(r.variant.id, pattern) or matches_any(r.reference.id, pattern)
        )


def matches_any(variant_id: str, pattern: str) -> bool:
    """Does the id match any of the comma-separated globs?"""
    return any(fnmatch.fnmatch(variant_id, g.strip()) for g in pattern.split(",") if g.strip())


def _check_values(source: str, name: str, values: list[Any], allowed: tuple[str, ...]) -> list[str]:
    if not isinstance(values, list) or not values:
        raise MatrixError(f"{source}: {name} must be a non-empty list")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise MatrixError(f"{source}: {name} has unknown value(s) {bad}; allowed: {', '.join(allowed)}")
    return values


# The latency fields before the one decision (judge/latency.py): named in the error a matrix
# that still sets them gets.
_REPLACED = (
    "; latency_ratio, rank_alpha, latency_spread_z, latency_floor, latency_history_floor and "
    "latency_screen_z were replaced by latency_tolerance ([tier] latency_alpha and latency_budget_s; "
    "docs/bounds.md)"
)


def _bounds_for(variant_id: str, dtype: str, data: dict[str, Any], source: str) -> Bounds:
    """Defaults, then [bounds], then its `<field>_by_dtype` tables, then matching [[overrides]]."""
    raw = dict(data.get("bounds", {}))
    per_dtype = {k.removesuffix("_by_dtype"): raw.pop(k) for k in list(raw) if k.endswith("_by_dtype")}
    bounds = Bounds()
    try:
        bounds = replace(bounds, **raw)
        for field_name, table in per_dtype.items():
            if not isinstance(table, dict):
                raise MatrixError(f"{source}: bounds.{field_name}_by_dtype must be a table of dtype = value")
            if dtype in table:
                bounds = replace(bounds, **{field_name: float(table[dtype])})
        for override in data.get("overrides", []):
            override = dict(override)
            pattern = override.pop("match", None)
            if pattern is None:
                raise MatrixError(f"{source}: an [[overrides]] entry has no 'match'")
            if fnmatch.fnmatch(variant_id, pattern):
                bounds = replace(bounds, **override)
    except TypeError as exc:
        raise MatrixError(f"{source}: unknown bound field ({exc}){_REPLACED}") from None
    return bounds


MODEL_FIELDS = ("name", "config", "checkpoint", "adapter", "tokenizer")


def parse_models(entries: Any, source: str) -> tuple[ModelDeclaration, ...]:
    """`[[models]]` tables into declarations, paths relative to the matrix file's folder."""
    if not isinstance(entries, list):
        raise MatrixError(f"{source}: models must be [[models]] tables")
    base = Path(source).parent
    out: list[ModelDeclaration] = []
    for i, entry in enumerate(entries):
        where = f"{source}: [[models]] #{i + 1}"
        if not isinstance(entry, dict):
            raise MatrixError(f"{where}: must be a table")
        unknown = sorted(set(entry) - set(MODEL_FIELDS))
        if unknown:
            raise MatrixError(f"{where}: unknown field(s) {unknown}; allowed: {', '.join(MODEL_FIELDS)}")
        gguf = isinstance(entry.get("checkpoint"), str) and entry["checkpoint"].lower().endswith(".gguf")
        for key in ("name", "config") if not gguf else ("name",):  # a GGUF carries its own config
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise MatrixError(f"{where}: field {key}: required (a string)")
        name = entry["name"]
        where = f"{source}: [[models]] {name!r}"
        try:
            safe_name(name, "field name")
        except UnsafeName as exc:
            raise MatrixError(f"{where}: {exc}") from None
        if name in SPECS:
            raise MatrixError(f"{where}: field name: {name!r} is a built-in model; choose another name")
        if any(d.name == name for d in out):
            raise MatrixError(f"{where}: field name: declared twice")
        paths: dict[str, Path | None] = {}
        for key in MODEL_FIELDS[1:]:
            value = entry.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise MatrixError(f"{where}: field {key}: must be a path (a string)")
            paths[key] = base / value if value else None
        _check_model_paths(where, paths)
        out.append(ModelDeclaration(name, source=source, **paths))  # type: ignore[arg-type]
    return tuple(out)


def _check_model_paths(where: str, paths: dict[str, Path | None]) -> None:
    """Local files only, and an adapter only as safetensors (a pickle can run code when loaded)."""
    config, checkpoint, adapter, tokenizer = (paths[k] for k in MODEL_FIELDS[1:])
    if config is not None and not config.is_file():
        raise MatrixError(f"{where}: field config: {config} is not a file")
    if checkpoint is not None and checkpoint.suffix.lower() == ".gguf":
        from perfsuite.models.gguf import GgufError, check_supported

        try:
            check_supported(checkpoint)
        except GgufError as exc:
            raise MatrixError(f"{where}: field checkpoint: {exc}") from None
        if tokenizer is not None:
            raise MatrixError(f"{where}: field tokenizer: a GGUF checkpoint brings its own tokenizer; remove it")
    elif checkpoint is not None and not (checkpoint / "config.json").is_file():
        raise MatrixError(f"{where}: field checkpoint: {checkpoint} is not a folder with a config.json")
    if adapter is not None:
        if not (adapter / "adapter_config.json").is_file():
            raise MatrixError(f"{where}: field adapter: {adapter} is not a folder with an adapter_config.json")
        problem = adapter_problem(adapter)
        if problem:
            raise MatrixError(f"{where}: field adapter: {problem} in {adapter}")
    if tokenizer is not None and not tokenizer.is_file():
        raise MatrixError(f"{where}: field tokenizer: {tokenizer} is not a file (a tokenizer.json)")


def with_defaults(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A user matrix (one with [[models]]) over the bundled tier of its device: it states only
    what differs. [tier], [axes] and [bounds] keys override; [[overrides]] and [[exclude]] add to
    the bundled ones; [[relative]] is the user's own (the bundled ones name the tiny models).
    The model axis defaults to the declared models, the tier name to the file's name."""
    tier = data.get("tier", {})
    if not isinstance(tier, dict):
        raise MatrixError(f"{source}: [tier] must be a table")
    device = tier.get("device", "cpu")
    if device not in ("cpu", "cuda"):
        raise MatrixError(f'{source}: tier.device must be "cpu" or "cuda", got {device!r}')
    base = _read_toml(MATRIX_DIR / ("cpu.toml" if device == "cpu" else "gpu.toml"))
    models = data.get("models")
    names = [m.get("name") for m in models if isinstance(m, dict)] if isinstance(models, list) else []
    merged = dict(data)
    merged["tier"] = {**base["tier"], "name": Path(source).stem, **tier}
    merged["axes"] = {**base["axes"], "model": names, **data.get("axes", {})}
    bounds = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.get("bounds", {}).items()}
    for key, value in data.get("bounds", {}).items():
        bounds[key] = (
            {**bounds[key], **value} if isinstance(value, dict) and isinstance(bounds.get(key), dict) else value
        )
    merged["bounds"] = bounds
    for key in ("overrides", "exclude"):
        merged[key] = list(base.get(key, [])) + list(data.get(key, []))
    merged["relative"] = list(data.get("relative", []))
    return merged


def parse_matrix(data: dict[str, Any], source: str) -> Matrix:
    declarations = parse_models(data["models"], source) if "models" in data else ()
    if declarations:
        data = with_defaults(data, source)
    try:
        tier = dict(data["tier"])
        axes = data["axes"]
    except KeyError as exc:
        raise MatrixError(f"{source}: missing section [{exc.args[0]}]") from None
    tier.setdefault("markers", [])
    settings = tier_settings(tier, source)
    if settings.portable_quality_dtypes:
        _check_values(source, "tier.portable_quality_dtypes", list(settings.portable_quality_dtypes), DTYPES)
    try:
        safe_name(settings.name, "[tier] name")
    except UnsafeName as exc:
        raise MatrixError(f"{source}: {exc}") from None
    declared = tuple(d.name for d in declarations)
    models = axes.get("model")
    if isinstance(models, list):
        unknown = [m for m in models if m not in SPECS and m not in declared]
        if unknown:
            raise MatrixError(
                f"{source}: axes.model names {', '.join(map(repr, unknown))}, which this matrix does not declare "
                f"in [[models]] (declared: {', '.join(declared) or 'none'}) and which is not built in "
                f"({', '.join(sorted(SPECS))})"
            )
    models = _check_values(source, "axes.model", models, tuple(SPECS) + declared)
    dtypes = _check_values(source, "axes.dtype", axes.get("dtype"), DTYPES)
    attns = _check_values(source, "axes.attention", axes.get("attention"), ATTENTIONS)
    paddings = _check_values(source, "axes.padding", axes.get("padding"), PADDINGS)
    variants = []
    for m in models:
        for d in dtypes:
            for a in attns:
                for p in paddings:
                    plain = Variant(m, d, a, p, settings.name)
                    variants.append(replace(plain, bounds=_bounds_for(plain.id, d, data, source)))
    exclusions = []
    for entry in data.get("exclude", []):
        if not isinstance(entry, dict) or not entry.get("match") or not entry.get("reason"):
            raise MatrixError(f"{source}: every [[exclude]] needs 'match' and a non-empty 'reason'")
        exclusions.append(Exclusion(str(entry["match"]), str(entry["reason"])))
    relative = _relative_bounds(data.get("relative", []), variants, source)
    return Matrix(source, settings, tuple(variants), tuple(exclusions), relative, declarations=declarations)


def _ratio(entry: dict[str, Any], key: str, where: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise MatrixError(f"{where}: {key} must be a positive number, got {value!r}")
    return float(value)


def _relative_bounds(entries: list[Any], variants: list[Variant], source: str) -> tuple[RelativeBound, ...]:
    """Expand each [[relative]] entry: every variant matching `match`, against the variant
    that differs from it in the axes given by `against` (e.g. {padding = "static"})."""
    by_id = {v.id: v for v in variants}
    axes = {"model", "dtype", "attention", "padding"}
    out: list[RelativeBound] = []
    for i, entry in enumerate(entries):
        where = f"{source}: [[relative]] #{i + 1}"
        if not isinstance(entry, dict):
            raise MatrixError(f"{where}: must be a table")
        unknown = set(entry) - {"name", "match", "against", "min_ratio", "max_ratio", "reason", "predict_within"}
        if unknown:
            raise MatrixError(f"{where}: unknown field(s) {sorted(unknown)}")
        name, pattern, against = entry.get("name"), entry.get("match"), entry.get("against")
        if not name or not pattern or not isinstance(against, dict) or not against:
            raise MatrixError(f"{where}: needs 'name', 'match' and an 'against' table of axes")
        if set(against) - axes:
            raise MatrixError(f"{where}: 'against' may set only {sorted(axes)}, got {sorted(against)}")
        lo, hi = _ratio(entry, "min_ratio", where), _ratio(entry, "max_ratio", where)
        within = _ratio(entry, "predict_within", where)
        if lo is None and hi is None:
            raise MatrixError(f"{where}: needs min_ratio, max_ratio or both")
        if lo is not None and hi is not None and lo >= hi:
            raise MatrixError(f"{where}: min_ratio {lo} must be below max_ratio {hi}")
        matched = [v for v in variants if fnmatch.fnmatch(v.id, pattern)]
        if not matched:
            raise MatrixError(f"{where}: match {pattern!r} names no variant of this matrix")
        for v in matched:
            ref_id = replace(v, **against).id
            if ref_id not in by_id:
                raise MatrixError(f"{where}: reference {ref_id} of {v.id} is not in this matrix")
            if ref_id == v.id:
                raise MatrixError(f"{where}: {v.id} would be measured against itself")
            out.append(RelativeBound(str(name), v, by_id[ref_id], lo, hi, str(entry.get("reason", "")), within))
    return tuple(out)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MatrixError(f"{path}: no such matrix file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: invalid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise MatrixError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def matrix_path(name_or_path: str) -> Path:
    """A bundled tier's file for a bare name ("cpu", "gpu"), else the path as given."""
    path = Path(name_or_path)
    return MATRIX_DIR / f"{name_or_path}.toml" if not path.suffix else path


def load_matrix(name_or_path: str) -> Matrix:
    """Load a bundled matrix by tier name ("cpu", "gpu") or a TOML path; a user matrix's
    [[models]] are read here (config.json, tokenizer) into the specs this tier runs."""
    from perfsuite.models.config_json import ModelConfigError
    from perfsuite.models.declared import declared_spec

    path = matrix_path(name_or_path)
    matrix = parse_matrix(_read_toml(path), str(path))
    models = {}
    for declaration in matrix.declarations:
        try:
            models[declaration.name] = declared_spec(declaration, matrix.settings.device, matrix.settings.max_length)
        except ModelConfigError as exc:
            raise MatrixError(f"{path}: [[models]] {declaration.name!r}: {exc}") from None
    matrix = replace(matrix, models=models) if models else matrix
    if problem := packed_length_problem(matrix, matrix.settings):
        raise MatrixError(f"{path}: {problem}")
    return matrix


def packed_length_problem(matrix: Matrix, settings: TierSettings) -> str | None:
    """A packed batch may hold max_batch_tokens tokens (default batch_size x max_length): more
    than a model's max_position_embeddings is a sequence longer than the model was built for,
    whatever its positions say. Checked before anything is built; `settings` may carry a run's
    overrides of batch_size and max_length."""
    budget = settings.max_batch_tokens or settings.batch_size * settings.max_length
    for model in sorted({v.model for v in matrix.variants if v.padding == "packed" and not matrix.excluded(v)}):
        limit = matrix.spec(model).config.get("max_position_embeddings")
        if isinstance(limit, int) and budget > limit:
            return (
                f"[tier] max_batch_tokens: a packed batch of up to {budget} tokens is longer than {model}'s "
                f"max_position_embeddings {limit}; set max_batch_tokens to at most {limit}"
            )
    return None


def default_baselines(name_or_path: str) -> Path | None:
    """`baselines/` beside a user matrix's TOML (one with [[models]]), None for any other matrix."""
    path = matrix_path(name_or_path)
    try:
        data = _read_toml(path)
    except MatrixError:
        return None  # load_matrix reports it
    return path.parent / "baselines" if data.get("models") else None


def variant_notes(variant: Variant, caps: DeviceCaps) -> list[str]:
    """Facts the report shows beside a variant that runs (not reasons to skip)."""
    notes = [note] if (note := emulation_note(caps)) else []
    if variant.dtype == "bf16" and caps.has_cuda and not caps.native_bf16:
        notes.append(f"bf16 emulated: {caps.name} has no bf16 tensor cores (sm<80)")
    if variant.dtype == "fp16" and not caps.has_cuda:
        notes.append("fp16 on CPU has no fast kernels; not representative of a GPU")
    return notes
