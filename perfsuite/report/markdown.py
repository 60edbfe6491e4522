"""GitHub-flavoured Markdown tables, for report.md and compare.md (`$GITHUB_STEP_SUMMARY`).

GitHub renders a table only when the header, the delimiter row and every row have the same
number of cells: a bare `|` inside a header or cell (`max |dp|`) splits it in two and the
whole table falls back to plain text. Every cell is escaped here, headers included.
"""

from __future__ import annotations

from collections.abc import Sequence


def cell(text: object) -> str:
    """One cell's text: `|` escaped, line breaks as <br> (a newline would end the row)."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """The table's lines: header, delimiter, one line per row."""
    line = lambda cells: "| " + " | ".join(cell(c) for c in cells) + " |"  # noqa: E731
    return [line(headers), "|" + "---|" * len(headers), *(line(r) for r in rows)]
