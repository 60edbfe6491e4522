"""`budget --recipe`: the public solutions' ways of running, as preset TOML files (the package's
`cost/recipes/*.toml`, or a path of your own), so "would 4th place's recipe fit with
Llama-3-8B?" is one command. A preset sets what its source states; a command-line flag given
beside it wins, and the rest falls back to budget's defaults."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path

from perfsuite.cost.budget import Strategy
from perfsuite.cost.explain import ExplainError
from perfsuite.cost.fixed import FixedCosts, Term, resolve
from perfsuite.data.formatting import TRUNCATIONS
from perfsuite.variant import ATTENTIONS, DTYPES, PADDINGS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESETS = Path(__file__).with_name("recipes")


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    dtype: str | None = None
    attention: str | None = None
    padding: str | None = None
    batch_size: int | None = None
    max_length: int | None = None
    truncation: str | None = None  # recorded for the reader: budget counts tokens, not which end is cut
    tta: bool = False
    softcapping: str = "on"  # "off": the model's -nocap twin, where it has softcapping
    strategy: Strategy = Strategy.DATA_PARALLEL
    install_s: float | None = None
    import_s: float | None = None
    load_s: float | None = None
    fixed_costs_source: str = ""

    def fixed(
        self,
        install_s: float | None,
        import_s: float | None,
        load_s: float | None,
        measured: FixedCosts | None = None,
        measured_missing: str = "",
    ) -> FixedCosts:
        """Each fixed cost from a flag that was given, else this recipe, else `measured` (this
        machine's rates projected onto the model and card), else 0 - each term says which."""
        return resolve(
            {Term.INSTALL: install_s, Term.IMPORT: import_s, Term.LOAD: load_s},
            {Term.INSTALL: self.install_s, Term.IMPORT: self.import_s, Term.LOAD: self.load_s},
            self.fixed_costs_source or f"recipe {self.name}",
            measured,
            measured_missing,
        )


CHOICES = {"dtype": DTYPES, "attention": ATTENTIONS, "padding": PADDINGS, "truncation": TRUNCATIONS}
CHOICES |= {"softcapping": ("on", "off"), "strategy": tuple(s.value for s in Strategy)}


def presets() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.toml"))


def load_recipe(name_or_path: str) -> Recipe:
    """A preset by name or a TOML path; ExplainError (exit 2) naming the file and field."""
    path = PRESETS / f"{name_or_path}.toml" if name_or_path in presets() else Path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExplainError(f"--recipe {name_or_path!r}: no such preset ({', '.join(presets())}) or file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ExplainError(f"{path}: cannot read it as TOML ({exc})") from None
    known = {f.name for f in fields(Recipe)} - {"name"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ExplainError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if not isinstance(data.get("description"), str):
        raise ExplainError(f"{path}: field description: required (a string)")
    for key, allowed in CHOICES.items():
        if key in data and data[key] not in allowed:
            raise ExplainError(f"{path}: field {key} = {data[key]!r}: must be one of {', '.join(allowed)}")
    for key in ("batch_size", "max_length"):
        if key in data and (isinstance(data[key], bool) or not isinstance(data[key], int) or data[key] < 1):
            raise ExplainError(f"{path}: field {key} = {data[key]!r}: must be a whole number of at least 1")
    for key in ("install_s", "import_s", "load_s"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ExplainError(f"{path}: field {key} = {value!r}: must be a number of seconds, at least 0")
    if "tta" in data and not isinstance(data["tta"], bool):
        raise ExplainError(f"{path}: field tta = {data['tta']!r}: must be true or false")
    if "strategy" in data:
        data["strategy"] = Strategy(data["strategy"])
    return Recipe(name=path.stem, **data)


def recipe_model(model: str, recipe: Recipe) -> tuple[str, str]:
    """The model a recipe runs, and a note: softcapping off means the model's -nocap twin, where
    the model caps its logits (built-in names only)."""
    from perfsuite.models.specs import SPECS, resolve_model

    if recipe.softcapping != "off":
        return model, ""
    spec = resolve_model(model)
    if not spec.softcapping:
        return model, f" ({spec.name} has no softcapping to turn off)"
    twin = f"{spec.name}-nocap"
    if twin not in SPECS:
        raise ExplainError(f"--recipe {recipe.name}: turns softcapping off, and {spec.name} has no -nocap twin")
    return twin, f" ({twin}: {spec.name} with its softcapping off)"
