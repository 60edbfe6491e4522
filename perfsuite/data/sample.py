"""Seeded generator of the bundled Kaggle-format sample.

The competition data (CC BY-NC 4.0) may not be shipped, so perfsuite generates its own
rows: pseudo-English text with the length profile measured on real arena battles
(median about 4,300 characters per row, 90th percentile about 8,000, tail to about 30,000)
and a *learnable* preference rule, so that a trained tiny classifier can beat ln 3:

* a response that opens with a refusal ("Sorry, I cannot ...") tends to lose;
* a response with a bulleted list or a code block tends to win;
* longer responses tend to win (log-length, the best-known arena bias);
* when the two scores are close the battle is a tie; Gaussian label noise on top.

The rule lives in :func:`preference_score` and is documented there, so it can be tested.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

SAMPLE_PATH = Path(__file__).with_name("sample_arena.csv")
SAMPLE_SEED = 20240502
SAMPLE_ROWS = 256

COLUMNS = (
    "id",
    "model_a",
    "model_b",
    "prompt",
    "response_a",
    "response_b",
    "winner_model_a",
    "winner_model_b",
    "winner_tie",
)

_SYLLABLES = [
    "ka",
    "to",
    "re",
    "mi",
    "na",
    "su",
    "lo",
    "ve",
    "da",
    "pi",
    "ran",
    "tel",
    "mor",
    "kin",
    "sa",
    "bel",
    "do",
    "gra",
    "fen",
    "lu",
    "ter",
    "nis",
    "pol",
    "cha",
    "qu",
    "ent",
    "ar",
    "ism",
    "ing",
    "ed",
    "ly",
    "con",
    "pro",
    "tion",
    "ver",
    "al",
    "ic",
    "ma",
    "ti",
]
_MODELS = ("gpt-4-0613", "claude-3-opus", "llama-3-70b-instruct", "gemini-pro", "mixtral-8x7b")
_REFUSALS = ("Sorry, I cannot help with that.", "I'm sorry, but I can't assist with this request.")
_UNICODE_BITS = ("café", "naïve", "Zürich", "東京", "😀", "—", "½", "Ωmega")


@dataclass(frozen=True)
class Response:
    """A generated response and the cues the preference rule reads."""

    text: str
    refusal: bool
    structured: bool


def _lexicon(rng: random.Random, size: int = 2500) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 1, 2, 2, 2, 3)))))
    return sorted(words)


def _zipf_weights(n: int) -> list[float]:
    return [1.0 / (rank + 1) ** 1.05 for rank in range(n)]


class _TextMaker:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = _lexicon(rng)
        self.weights = _zipf_weights(len(self.words))

    def sentence(self) -> str:
        n = self.rng.randint(5, 22)
        words = self.rng.choices(self.words, weights=self.weights, k=n)
        if self.rng.random() < 0.08:
            words[self.rng.randrange(n)] = self.rng.choice(_UNICODE_BITS)
        if self.rng.random() < 0.1:
            words[self.rng.randrange(n)] = str(self.rng.randint(0, 5000))
        return " ".join(words).capitalize() + self.rng.choice((".", ".", ".", "?", "!", ":"))

    def prose(self, chars: int) -> str:
        parts: list[str] = []
        size = 0
        while size < chars:
            s = self.sentence()
            parts.append(s)
            size += len(s) + 1
            if self.rng.random() < 0.15:
                parts.append("\n\n")
        return " ".join(parts)[: max(chars, 1)]

    def bullets(self, chars: int) -> str:
        lines: list[str] = []
        size = 0
        while size < chars:
            line = f"- {self.sentence()}"
            lines.append(line)
            size += len(line) + 1
        return "\n".join(lines)

    def code(self, chars: int) -> str:
        lines = ["```python"]
        size = 0
        while size < chars:
            a, b = self.rng.sample(self.words[:400], 2)
            line = f"    {a} = {b}({self.rng.randint(0, 99)})  # {self.rng.choice(self.words)}"
            lines.append(line)
            size += len(line) + 1
        lines.append("```")
        return "\n".join(lines)


def _lognormal_length(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return int(min(high, max(low, math.exp(rng.gauss(math.log(median), sigma)))))


def _response(maker: _TextMaker, rng: random.Random, scale: float = 1.0) -> Response:
    length = _lognormal_length(
        rng, median=1750 * scale, sigma=0.75, low=max(1, int(20 * scale)), high=int(14000 * scale)
    )
    if rng.random() < 0.12:
        refusal = rng.choice(_REFUSALS)
        return Response(refusal + " " + maker.prose(min(length, int(400 * scale))), refusal=True, structured=False)
    kind = rng.random()
    if kind < 0.25:
        body = maker.prose(length // 3) + "\n\n" + maker.bullets(length - length // 3)
        return Response(body, refusal=False, structured=True)
    if kind < 0.4:
        body = maker.prose(length // 2) + "\n\n" + maker.code(length // 2)
        return Response(body, refusal=False, structured=True)
    return Response(maker.prose(length), refusal=False, structured=False)


def preference_score(response: Response) -> float:
    """The documented preference rule: refusal -2.0, structure +0.8, +0.6 per e-fold of length."""
    score = 0.6 * math.log(max(len(response.text), 1) / 1750.0)
    if response.refusal:
        score -= 2.0
    if response.structured:
        score += 0.8
    return score


def label_for(a: Response, b: Response, rng: random.Random, tie_margin: float = 0.45) -> int:
    """0 = A wins, 1 = B wins, 2 = tie: score difference plus N(0, 0.6) noise."""
    diff = preference_score(a) - preference_score(b) + rng.gauss(0.0, 0.6)
    if abs(diff) < tie_margin:
        return 2
    return 0 if diff > 0 else 1


def _json_turns(texts: list[str | None]) -> str:
    return json.dumps(texts, ensure_ascii=True)


def generate_rows(n_rows: int = SAMPLE_ROWS, seed: int = SAMPLE_SEED, scale: float = 1.0) -> list[dict[str, str]]:
    """Rows in the Kaggle train.csv layout; edge cases of the real files included on purpose.

    `scale` shrinks every text length (training shows the miniatures whole rows at short
    max_length); the preference rule reads length ratios, so labels follow the same rule.
    """
    rng = random.Random(seed)
    maker = _TextMaker(rng)
    rows: list[dict[str, str]] = []
    for i in range(n_rows):
        prompt_len = _lognormal_length(rng, median=160 * scale, sigma=1.5, low=8, high=int(16000 * scale))
        prompt_turns: list[str | None] = [maker.prose(prompt_len)]
        a, b = _response(maker, rng, scale), _response(maker, rng, scale)
        label = label_for(a, b, rng)
        a_turns: list[str | None] = [a.text]
        b_turns: list[str | None] = [b.text]
        if rng.random() < 0.1:  # multi-turn battle
            prompt_turns.append(maker.prose(_lognormal_length(rng, 120 * scale, 1.0, 8, int(3000 * scale))))
            a_turns.append(maker.prose(_lognormal_length(rng, 900 * scale, 0.7, 20, int(6000 * scale))))
            b_turns.append(maker.prose(_lognormal_length(rng, 900 * scale, 0.7, 20, int(6000 * scale))))
        # Edge cases seen in the competition files: [null], [], [""] and a lone surrogate.
        if i % 61 == 7:
            a_turns = [None]
        elif i % 67 == 11:
            b_turns = []
        elif i % 71 == 13:
            prompt_turns = [""]
        elif i % 97 == 5:
            prompt_turns = [str(prompt_turns[0]) + " \ud83d"]
        model_a, model_b = rng.sample(_MODELS, 2)
        rows.append(
            {
                "id": str(1000 + i),
                "model_a": model_a,
                "model_b": model_b,
                "prompt": _json_turns(prompt_turns),
                "response_a": _json_turns(a_turns),
                "response_b": _json_turns(b_turns),
                "winner_model_a": str(int(label == 0)),
                "winner_model_b": str(int(label == 1)),
                "winner_tie": str(int(label == 2)),
            }
        )
    return rows


def render_csv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_sample(path: Path = SAMPLE_PATH, n_rows: int = SAMPLE_ROWS, seed: int = SAMPLE_SEED) -> Path:
    path.write_text(render_csv(generate_rows(n_rows, seed)), encoding="utf-8")
    return path
