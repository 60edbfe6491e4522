"""Whether a pull request hears about its compare, and what it reads: one comment, kept up to date,
and only when something moved.

The compare step times the PR's merge commit against `pull_request.base.sha` (the PR's own
diff, nothing that landed on main since). Its verdicts already carry the thresholds
(`same`: the interval within --max-slowdown; `slower`/`faster`: wholly beyond --min-effect), so
the rule here is only: every variant `same` - silence (or, where an earlier run of this PR
commented, that comment says it moved back); anything else - one comment with compare.md,
created once and edited after, found by its marker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from perfsuite.variant import Word

MARKER = "<!-- perfsuite-compare -->"
QUIET = frozenset({"same"})  # verdicts a PR is not told about


class Action(Word):
    NONE = "none"
    CREATE = "create"
    UPDATE = "update"


@dataclass(frozen=True)
class Plan:
    """What the workflow does: nothing, create a comment, or update comment `comment_id`."""

    action: Action
    body: str = ""
    comment_id: int | None = None
    moved: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "action": str(self.action), "moved": list(self.moved)})


def moved(compare: Mapping[str, Any]) -> list[str]:
    """`variant: verdict` for every variant whose verdict is not quiet, in compare.json's order."""
    return [f"{v['variant']}: {v['verdict']}" for v in compare.get("variants", []) if v.get("verdict") not in QUIET]


def ours(comments: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The comment an earlier run of this PR left (the first carrying the marker), if any."""
    return next((c for c in comments if MARKER in str(c.get("body", ""))), None)


def plan(compare: Mapping[str, Any], markdown: str, comments: Sequence[Mapping[str, Any]]) -> Plan:
    """The comment this compare deserves, given the PR's existing comments (GitHub's issue
    comments API: objects with `id` and `body`)."""
    changed = moved(compare)
    earlier = ours(comments)
    if not changed:
        if earlier is None:
            return Plan(Action.NONE)
        body = f"{MARKER}\n**perfsuite compare: every variant `same` against the base now.**\n\n{markdown}"
        return Plan(Action.UPDATE, body, int(earlier["id"]))
    head = f"**perfsuite compare: {len(changed)} variant(s) moved against the base** - " + ", ".join(
        f"`{m}`" for m in changed
    )
    body = f"{MARKER}\n{head}\n\n{markdown}"
    if earlier is None:
        return Plan(Action.CREATE, body, None, tuple(changed))
    return Plan(Action.UPDATE, body, int(earlier["id"]), tuple(changed))
