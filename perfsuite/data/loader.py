"""Loader for the Kaggle "LMSYS - Chatbot Arena" train.csv/test.csv layout.

Real files hold JSON-encoded lists of strings with ``[null]``, ``[]``, ``[""]`` and lone
surrogates in them; a loader that crashes on row 40,000 of a 9-hour run costs the run, so
every problem becomes either a repaired value (counted) or a skipped row (with its reason).
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TEXT_COLUMNS = ("prompt", "response_a", "response_b")
LABEL_COLUMNS = ("winner_model_a", "winner_model_b", "winner_tie")


class DataError(ValueError):
    """A data file that cannot be used at all (missing, unreadable, wrong columns)."""


@dataclass(frozen=True)
class ArenaRow:
    """One battle: turns of prompt and responses, and the label if the file has one."""

    row_id: str
    prompt: tuple[str, ...]
    response_a: tuple[str, ...]
    response_b: tuple[str, ...]
    label: int | None  # 0 = A wins, 1 = B wins, 2 = tie

    def swapped(self) -> ArenaRow:
        """The same battle with A and B exchanged (for TTA and symmetry checks)."""
        label = {0: 1, 1: 0}.get(self.label, self.label) if self.label is not None else None
        return ArenaRow(self.row_id, self.prompt, self.response_b, self.response_a, label)


@dataclass
class LoadReport:
    """What the loader read, skipped (with reasons) and repaired."""

    path: str
    rows_read: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    repairs: Counter[str] = field(default_factory=Counter)

    @property
    def rows_kept(self) -> int:
        return self.rows_read - len(self.skipped)

    def summary(self) -> str:
        lines = [f"{self.path}: {self.rows_read} rows read, {self.rows_kept} kept, {len(self.skipped)} skipped"]
        reasons = Counter(reason.split(":")[0] for _, reason in self.skipped)
        lines += [f"  skipped ({count}): {reason}" for reason, count in reasons.most_common()]
        lines += [f"  repaired ({count}): {what}" for what, count in self.repairs.most_common()]
        return "\n".join(lines)


def _clean_text(value: object, report: LoadReport, column: str) -> str:
    if value is None:
        report.repairs[f"{column}: null turn read as empty text"] += 1
        return ""
    if not isinstance(value, str):
        report.repairs[f"{column}: non-string turn converted with str()"] += 1
        value = str(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        report.repairs[f"{column}: lone surrogate replaced by U+FFFD"] += 1
        value = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


def _parse_turns(raw: str, column: str, report: LoadReport) -> tuple[str, ...]:
    try:
        turns = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{column} is not JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(turns, list):
        raise ValueError(f"{column} is JSON but not a list of strings")
    if not turns:
        report.repairs[f"{column}: empty list read as one empty turn"] += 1
        return ("",)
    return tuple(_clean_text(turn, report, column) for turn in turns)


def _parse_label(record: dict[str, str]) -> int | None:
    present = [c for c in LABEL_COLUMNS if record.get(c) not in (None, "")]
    if not present:
        return None
    if len(present) != len(LABEL_COLUMNS):
        raise ValueError(f"label columns incomplete (have {present})")
    try:
        values = [int(float(record[c])) for c in LABEL_COLUMNS]
    except ValueError:
        raise ValueError("label columns are not numbers") from None
    if sorted(values) != [0, 0, 1]:
        raise ValueError(f"labels {values} are not one-hot")
    return values.index(1)


def load_arena_csv(path: str | Path, limit: int | None = None) -> tuple[list[ArenaRow], LoadReport]:
    """Read a Kaggle-format CSV; raise DataError naming the file if it cannot be used at all."""
    path = Path(path)
    report = LoadReport(path=str(path))
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    rows: list[ArenaRow] = []
    try:
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("id", *TEXT_COLUMNS) if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {reader.fieldnames}")
            for line_no, record in enumerate(reader, start=2):
                if limit is not None and len(rows) >= limit:
                    break
                report.rows_read += 1
                try:
                    texts = [_parse_turns(record[c], c, report) for c in TEXT_COLUMNS]
                    label = _parse_label(record)
                except ValueError as exc:
                    report.skipped.append((line_no, f"{exc}: line {line_no} (id {record.get('id')})"))
                    continue
                rows.append(ArenaRow(str(record["id"]), texts[0], texts[1], texts[2], label))
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    return rows, report
