"""The fields of a settings dataclass as the matrix TOML reference lists them: name, type,
default and the docstring written under the field (PEP 257's attribute docstring, which
mkdocstrings reads too)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str
    default: str  # as TOML would spell it; "required" where the field has none
    help: str


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if value is None:
        return "unset"
    return repr(value)


def _docstrings(cls: type) -> dict[str, str]:
    """Each annotated field's docstring: the string statement right after it in the class body."""
    (node,) = ast.parse(textwrap.dedent(inspect.getsource(cls))).body
    assert isinstance(node, ast.ClassDef)
    docs: dict[str, str] = {}
    for field_node, after in zip(node.body, node.body[1:], strict=False):
        if not (isinstance(field_node, ast.AnnAssign) and isinstance(field_node.target, ast.Name)):
            continue
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[field_node.target.id] = " ".join(after.value.value.split())
    return docs


def field_docs(cls: type) -> list[FieldDoc]:
    docs = _docstrings(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = _toml(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = _toml(f.default_factory())
        else:
            default = "required"
        out.append(FieldDoc(f.name, str(f.type), default, docs.get(f.name, "")))
    return out


def undocumented(cls: type) -> list[str]:
    """The fields a user would find no line for in the reference."""
    return [f"{cls.__name__}.{d.name}" for d in field_docs(cls) if not d.help]
