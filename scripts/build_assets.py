"""Regenerate the shipped assets: the bundled sample CSV and the tiny BPE tokenizer.

Both are deterministic: running this twice gives byte-identical files (a test checks it).
Usage: python scripts/build_assets.py
"""

from __future__ import annotations

from perfsuite.data.loader import load_arena_csv
from perfsuite.data.sample import SAMPLE_PATH, write_sample
from perfsuite.data.tokenizer import TOKENIZER_PATH, train_tiny_tokenizer


def tokenizer_corpus() -> list[str]:
    rows, _ = load_arena_csv(SAMPLE_PATH)
    return ["\n".join(r.prompt + r.response_a + r.response_b) for r in rows]


def main() -> None:
    write_sample()
    train_tiny_tokenizer(tokenizer_corpus()).save(str(TOKENIZER_PATH))
    print(f"wrote {SAMPLE_PATH} and {TOKENIZER_PATH}")


if __name__ == "__main__":
    main()
