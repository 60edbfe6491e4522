"""The PR-comment step of ci.yml: what to do with this PR's compare (perfsuite.compare.comment).

    python scripts/pr_comment.py COMPARE_JSON COMPARE_MD COMMENTS_JSON > plan.json

COMMENTS_JSON is `gh api repos/OWNER/REPO/issues/N/comments --paginate --slurp` (a list of pages
of comments, or one list). Prints the plan as one JSON line: action none / create / update, the
comment id to update and the body. A missing compare.json (the compare step did not run) is
action none; any other unreadable input is exit 2 naming the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from perfsuite.compare.comment import Action, Plan, plan


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"pr_comment: {path}: {exc}") from None


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    compare_json, compare_md, comments_json = (Path(a) for a in argv)
    if not compare_json.exists():
        print(Plan(Action.NONE).to_json())
        return 0
    try:
        compare = _read_json(compare_json)
        comments = _read_json(comments_json)
        markdown = compare_md.read_text(encoding="utf-8")
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pr_comment: {compare_md}: {exc}", file=sys.stderr)
        return 2
    if comments and all(isinstance(page, list) for page in comments):  # gh --paginate --slurp: pages
        comments = [c for page in comments for c in page]
    print(plan(compare, markdown, comments).to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
