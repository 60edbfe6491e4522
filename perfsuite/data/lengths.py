"""Token lengths of a Kaggle-format file, as a run would format and truncate its rows.

The cost model's workloads (`explain`, `budget`) and the data report need only lengths,
not tensors. They are cached per file content, tokenizer and max_length, so a second
`perfsuite explain` answers without tokenising again.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from perfsuite.fileio import atomic_write_text, default_cache_dir, file_digest

PROGRESS_ROWS = 5000  # rows per progress step when counting a large file


@dataclass(frozen=True)
class TokenLengths:
    """Per row: tokens kept after truncation and tokens before it."""

    source: str
    max_length: int
    kept: tuple[int, ...]
    full: tuple[int, ...]
    load_summary: str = ""  # what the loader read, kept, repaired and skipped

    @property
    def truncated_rows(self) -> int:
        return sum(f > k for k, f in zip(self.kept, self.full, strict=True))

    def quantiles(self) -> dict[str, int]:
        """Median, p90, max of the untruncated lengths."""
        if not self.full:
            return {"median": 0, "p90": 0, "max": 0}
        ordered = sorted(self.full)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        return {"median": int(statistics.median(ordered)), "p90": p90, "max": ordered[-1]}


def token_lengths(
    path: Path, max_length: int, rows: int | None = None, tokenizer: str | Path | None = None
) -> TokenLengths:
    """Lengths of the file's usable rows with the shipped tiny BPE, a named tokenizer (`llama3`)
    or a local tokenizer.json."""
    from perfsuite.data.formatting import FORMAT_VERSION
    from perfsuite.data.loader import LOADER_RULES
    from perfsuite.data.tokenizer import tokenizer_identity

    # Every input that shapes the lengths: the data, the tokenizer (file or name, and the
    # library that applies it), the formatter's and the loader's rules, the limits.
    shaping = f"{max_length}:{rows}:fmt{FORMAT_VERSION}:loader{LOADER_RULES}:{tokenizer_identity(tokenizer)}"
    digest = hashlib.sha256()
    for part in (file_digest(Path(path)), hashlib.sha256(shaping.encode()).hexdigest()):
        digest.update(bytes.fromhex(part))
    cache = default_cache_dir() / "lengths" / f"{digest.hexdigest()[:24]}.json"
    if cache.is_file():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            return TokenLengths(
                str(path), max_length, tuple(data["kept"]), tuple(data["full"]), data.get("load_summary", "")
            )
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is rebuilt below
    from perfsuite.data.formatting import PairFormatter
    from perfsuite.data.loader import load_arena_csv
    from perfsuite.data.tokenizer import load_counting_tokenizer

    loaded, report = load_arena_csv(Path(path), limit=rows)
    formatter = PairFormatter(load_counting_tokenizer(tokenizer), max_length)
    if len(loaded) <= PROGRESS_ROWS:
        encoded = formatter.encode_all(loaded)
    else:  # Kaggle's 57k-row train.csv takes a while with some tokenizers: show it
        from perfsuite.progress import Progress

        encoded = []
        chunks = range(0, len(loaded), PROGRESS_ROWS)
        with Progress(len(chunks), f"counting tokens of {Path(path).name}") as progress:
            for start in chunks:
                encoded += formatter.encode_all(loaded[start : start + PROGRESS_ROWS])
                progress.advance(f"{min(start + PROGRESS_ROWS, len(loaded)):,} of {len(loaded):,} rows")
    kept = tuple(len(r.input_ids) for r in encoded)
    full = tuple(len(r.input_ids) + r.truncated_tokens for r in encoded)
    summary = report.summary()
    atomic_write_text(cache, json.dumps({"kept": kept, "full": full, "load_summary": summary}))
    return TokenLengths(str(path), max_length, kept, full, summary)
