"""Loader for the Kaggle "LMSYS - Chatbot Arena" train.csv/test.csv layout.

Real files hold JSON-encoded lists of strings with ``[null]``, ``[]``, ``[""]`` and lone
surrogates in them; a loader that crashes on row 40,000 of a 9-hour run costs the run, so
every problem in a row becomes either a repaired value (counted) or a skipped row (its
physical line, id and reason) - whatever the exception. What makes the whole file unusable
(missing columns, bytes that are not UTF-8, an unterminated quote) is one DataError naming
the file and the line. A UTF-8 byte-order mark is read as such.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TEXT_COLUMNS = ("prompt", "response_a", "response_b")
LABEL_COLUMNS = ("winner_model_a", "winner_model_b", "winner_tie")
LOADER_RULES = 2  # bump when what is repaired or skipped changes: cached tables keyed on it
SHOWN_SKIPS = 5  # skipped rows listed by line in the summary


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


@dataclass(frozen=True)
class SkippedRow:
    """A row left out: the physical line it starts on, its id, and why."""

    line: int
    row_id: str
    reason: str

    def describe(self) -> str:
        return f"line {self.line} (id {self.row_id}): {self.reason}"


@dataclass
class LoadReport:
    """What the loader read, skipped (with lines and reasons) and repaired."""

    path: str
    rows_read: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    repairs: Counter[str] = field(default_factory=Counter)
    rows_asked: int | None = None  # the limit a run asked for (the tier's rows)

    @property
    def short(self) -> bool:
        """The file ran out before the rows asked for: the run uses fewer, and says so."""
        return self.rows_asked is not None and self.rows_kept < self.rows_asked

    @property
    def rows_kept(self) -> int:
        return self.rows_read - len(self.skipped)

    @property
    def rows_repaired(self) -> int:
        return sum(self.repairs.values())

    def summary(self) -> str:
        lines = [
            f"{self.path}: {self.rows_read} rows read, {self.rows_kept} kept, "
            f"{self.rows_repaired} values repaired, {len(self.skipped)} skipped"
        ]
        if self.short:
            lines.append(
                f"  WARNING: rows {self.rows_asked} asked ([tier] rows or --rows), but the file has only "
                f"{self.rows_kept} usable rows: running {self.rows_kept}"
            )
        reasons = Counter(s.reason.split(":")[0] for s in self.skipped)
        lines += [f"  skipped ({count}): {reason}" for reason, count in reasons.most_common()]
        lines += [f"    {s.describe()}" for s in self.skipped[:SHOWN_SKIPS]]
        if len(self.skipped) > SHOWN_SKIPS:
            lines.append(f"    ... and {len(self.skipped) - SHOWN_SKIPS} more")
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
    except UnicodeEncodeError:  # a JSON "\ud83d" escape: half of a pair, valid JSON, not text
        report.repairs[f"{column}: lone surrogate replaced by U+FFFD"] += 1
        value = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


def _parse_turns(raw: str | None, column: str, report: LoadReport) -> tuple[str, ...]:
    if raw is None:
        raise ValueError(f"{column} is missing (the row has too few fields)")
    try:
        turns = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{column} is not JSON ({exc.msg})") from None
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
        values = [float(record[c]) for c in LABEL_COLUMNS]
    except ValueError:
        raise ValueError("label columns are not numbers") from None
    if sorted(values) != [0.0, 0.0, 1.0]:
        raise ValueError(f"labels {[record[c] for c in LABEL_COLUMNS]} are not one-hot")
    return values.index(1.0)


@contextlib.contextmanager
def _field_size_limit(limit: int) -> Iterator[None]:
    """Real rows exceed csv's 128 KiB field default; the process-wide limit is put back after."""
    old = csv.field_size_limit()
    csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _decoded_lines(raw, path: Path) -> Iterator[str]:
    """The file's physical lines as text, one at a time: a byte that is not UTF-8 names its line."""
    for number, line in enumerate(raw, start=1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}: line {number}: not UTF-8 (byte 0x{exc.object[exc.start]:02x}); re-save the file as UTF-8"
            ) from None


def _records(lines: Iterator[str], path: Path) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(physical line the record starts on, record) for each data row; DataError for the file."""
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"{path}: line 1: {_file_problem(exc)}") from None
    if header is None:
        raise DataError(f"{path}: empty file (no header line)")
    missing = [c for c in ("id", *TEXT_COLUMNS) if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {header}")
    end = reader.line_num
    while True:
        start = end + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}: line {start}: {_file_problem(exc)}") from None
        end = reader.line_num
        if not values:
            continue  # a blank line
        yield start, dict(zip(header, values + [None] * (len(header) - len(values)), strict=False))


def _file_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text or "EOF" in text:
        return "a quoted field is never closed (an unterminated quote would swallow the rest of the file)"
    return f"quoting breaks in the row starting here ({text}): an unbalanced quote swallows the rows after it"


def load_arena_csv(path: str | Path, limit: int | None = None) -> tuple[list[ArenaRow], LoadReport]:
    """Read a Kaggle-format CSV; raise DataError naming the file and line if it cannot be used at all."""
    path = Path(path)
    report = LoadReport(path=str(path), rows_asked=limit)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    rows: list[ArenaRow] = []
    first_line: dict[str, int] = {}
    with _field_size_limit(min(sys.maxsize, 2**31 - 1)), path.open("rb") as raw:
        for line, record in _records(_decoded_lines(raw, path), path):
            if limit is not None and len(rows) >= limit:
                break
            report.rows_read += 1
            row_id = str(record.get("id"))
            try:
                if row_id in first_line:
                    raise ValueError(f"duplicate id {row_id} (first at line {first_line[row_id]})")
                texts = [_parse_turns(record.get(c), c, report) for c in TEXT_COLUMNS]
                label = _parse_label(record)
            except Exception as exc:  # any problem in one row skips that row, never the file
                reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
                report.skipped.append(SkippedRow(line, row_id, reason))
                continue
            first_line[row_id] = line
            rows.append(ArenaRow(row_id, texts[0], texts[1], texts[2], label))
    return rows, report
