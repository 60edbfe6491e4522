"""Names that become parts of paths (tier, machine key), checked before anything is written.

A matrix TOML's `[tier] name` or `perfsuite fit --machine` ends up as a folder under the
baselines or reports root; `../../x` or an absolute path would write records anywhere. A safe
name is one path part of letters, digits, '.', '_' and '-', not starting with '.', and every
write is also checked to resolve inside its root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class UnsafeName(ValueError):
    """A name that would leave its folder: exit 2 naming the field."""


def safe_name(value: object, field: str) -> str:
    """`value` if it is one safe path part, else UnsafeName naming `field`."""
    text = str(value)
    if not SAFE_NAME.fullmatch(text) or ".." in text:
        raise UnsafeName(
            f"{field} {text!r} is not a safe name: it becomes a folder name, so only letters, digits, '.', '_' "
            "and '-' (one path part, not starting with '.', no '..')"
        )
    return text


def inside(root: Path, path: Path, field: str = "path") -> Path:
    """`path` if it lies inside `root` once '..' parts are resolved, else UnsafeName.

    Lexical on purpose: a symlink a user placed under the root (a shared records folder)
    is their choice; a name that climbs out of the root is not.
    """
    target, base = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root))
    if target != base and not target.startswith(base + os.sep):
        raise UnsafeName(f"{field} {path} lies outside {root}")
    return path
