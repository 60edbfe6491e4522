"""Fine-tune the tiny miniatures as 3-class preference classifiers (seeded, CPU, minutes).

A randomly initialised classifier predicts near-uniform probabilities, so every variant
scores about ln 3 and a log-loss bound cannot tell a broken run from a correct one. The
generator's documented preference rule (perfsuite.data.sample.preference_score: refusals
lose, structure and length win, ties when close, noise on top) is learnable; each
miniature is trained on freshly generated rows and judged on a held-out split generated
with another seed. `scripts/train_tiny.py` writes the weights that ship in the package.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from perfsuite.data.formatting import EncodedRow, PairFormatter
from perfsuite.data.loader import load_arena_csv
from perfsuite.data.sample import generate_rows, render_csv
from perfsuite.data.tokenizer import TextTokenizer, load_tiny_tokenizer
from perfsuite.models.specs import ModelSpec

TRAINED_DIR = Path(__file__).with_name("trained")
WEIGHTS_FILE = "model.safetensors"
REPORT_FILE = "training.json"


@dataclass(frozen=True)
class Stage:
    """One phase of the curriculum: `epochs` passes over `rows` fresh rows each, truncated to
    `max_length`; `scale` shrinks the generated texts (see generate_rows)."""

    max_length: int
    epochs: int
    lr: float
    rows: int = 3000
    scale: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (with the spec and the library versions).

    A curriculum, because a 3-layer, 64-wide model trained on 1,000-token rows from the
    start stays at the class prior (measured: 1.092 after 3 epochs, prior 1.086). It first
    learns the rule on whole rows shrunk to fit (texts at 0.15x, then 0.35x length: refusal,
    list, code and the length difference all visible), then on real-length rows at 512
    and finally at the tier's 1024 tokens. Without the last stage the miniatures with RoPE
    theta 10,000 (Gemma-2, Mistral) meet rotation angles at positions 512-1024 they never
    saw (tiny-mistral scored 1.145 there after stopping at 512). Every epoch draws fresh
    rows (another seed), so the model cannot memorise them (a third pass over the same
    3,000 rows overfitted). What each piece was worth, and how much the epoch seeds alone
    move the result (as much as the recipe), is in docs/quality.md. One thread: the script
    trains models in parallel processes, and a 64-wide model gains little from a second.
    """

    heldout_rows: int = 400
    train_seed: int = 7
    heldout_seed: int = 8
    stages: tuple[Stage, ...] = (
        Stage(256, 2, 3e-3, scale=0.15),
        Stage(512, 1, 1e-3, scale=0.35),
        Stage(512, 2, 5e-4),
        Stage(1024, 1, 3e-4, rows=1500),
    )
    heldout_max_length: int = 1024
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_steps: int = 20
    seed: int = 0
    threads: int = 1

    def epoch_seed(self, epoch_index: int) -> int:
        """The generator seed of the `epoch_index`-th epoch overall (fresh rows every epoch)."""
        return self.train_seed * 1000 + epoch_index


def encoded_rows(
    n: int, seed: int, max_length: int, scale: float = 1.0, tokenizer: TextTokenizer | None = None
) -> list[EncodedRow]:
    """Generated rows, through the same loader and formatter a perf run uses (default: the tiny BPE)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.csv"
        path.write_text(render_csv(generate_rows(n, seed, scale)), encoding="utf-8")
        rows, _ = load_arena_csv(path)
    return PairFormatter(tokenizer or load_tiny_tokenizer(), max_length).encode_all(rows)


def _batches(rows: list[EncodedRow], batch_size: int, pad_id: int, rng: random.Random | None):
    """Length-sorted batches (little padding), in shuffled order when `rng` is given."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].input_ids))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(chunks)
    for idx in chunks:
        width = max(len(rows[i].input_ids) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            seq = rows[i].input_ids
            ids[r, : len(seq)] = torch.tensor(seq)
            mask[r, : len(seq)] = 1
        yield ids, mask, torch.tensor([rows[i].label for i in idx]), idx


def evaluate(model, rows: list[EncodedRow], pad_id: int, batch_size: int = 16) -> dict[str, float]:
    """Log-loss (Kaggle clipping) and accuracy of `model` on labelled rows."""
    from perfsuite.stats.metrics import accuracy, log_loss

    model.eval()
    probs = torch.zeros(len(rows), 3, dtype=torch.float64)
    with torch.inference_mode():
        for ids, mask, _, idx in _batches(rows, batch_size, pad_id, None):
            probs[list(idx)] = torch.softmax(model(input_ids=ids, attention_mask=mask).logits.double(), dim=-1)
    labels = [r.label for r in rows]
    return {"log_loss": log_loss(probs.numpy(), labels), "accuracy": accuracy(probs.numpy(), labels)}


def _warmup_cosine(warmup: int, steps: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return factor


def train(spec: ModelSpec, cfg: TrainConfig = TrainConfig(), log=print, tokenizer: TextTokenizer | None = None):
    """Train `spec`'s miniature from its seeded initialisation; returns (model, report).

    `tokenizer`: the one its rows are encoded with in a run (a declared tokenizer.json; default the tiny BPE)."""
    if not spec.tiny:
        raise ValueError(f"{spec.name} is full-size; only the tiny miniatures are trained here")
    torch.manual_seed(spec.seed)
    torch.set_num_threads(cfg.threads)
    tokenizer = tokenizer or load_tiny_tokenizer()
    heldout = encoded_rows(cfg.heldout_rows, cfg.heldout_seed, cfg.heldout_max_length, tokenizer=tokenizer)
    attention = spec.default_attention
    config = spec.build_config(pad_token_id=tokenizer.pad_id)
    model = spec.model_class()._from_config(config, dtype=torch.float32, attn_implementation=attention)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    start = time.perf_counter()
    history = []
    epoch_index = 0
    for number, stage in enumerate(cfg.stages, 1):
        opt = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=cfg.weight_decay)
        steps = stage.epochs * math.ceil(stage.rows / cfg.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(cfg.warmup_steps, steps))
        for epoch in range(stage.epochs):
            train_rows = encoded_rows(stage.rows, cfg.epoch_seed(epoch_index), stage.max_length, stage.scale, tokenizer)
            epoch_index += 1
            model.train()
            total, count = 0.0, 0
            for ids, mask, labels, _ in _batches(train_rows, cfg.batch_size, tokenizer.pad_id, rng):
                loss = torch.nn.functional.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, labels)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                total += loss.item() * len(labels)
                count += len(labels)
            entry = {
                "stage": number,
                "max_length": stage.max_length,
                "scale": stage.scale,
                "epoch": epoch + 1,
                "train_loss": total / count,
            }
            if epoch + 1 == stage.epochs:  # held-out scoring at 1,000 tokens costs as much as training: once a stage
                entry.update(evaluate(model, heldout, tokenizer.pad_id))
            history.append(entry)
            log(f"{spec.name} stage {number} (max_length {stage.max_length}) epoch {epoch + 1}: {entry}")
    model.eval()
    report = {
        "model": spec.name,
        "spec_fingerprint": spec.fingerprint(),
        "attention": attention,
        "config": asdict(cfg),
        "history": history,
        "heldout": history[-1],
        "seconds": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
    }
    return model, report


def save_trained(model, spec: ModelSpec, report: dict, folder: Path = TRAINED_DIR) -> Path:
    """The state dict as safetensors (metadata: spec fingerprint) and the training report
    (under a declared model's own trained/ folder, beside its config.json)."""
    from safetensors.torch import save_file

    target = (spec.trained_dir or folder) / spec.name
    target.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(target / WEIGHTS_FILE), metadata={"spec_fingerprint": spec.fingerprint()})
    (target / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return target


def trained_weights(spec: ModelSpec, folder: Path = TRAINED_DIR) -> Path | None:
    """The shipped trained weights of a miniature, None if it has none.

    Weights made for another version of the spec (other shapes) are an error naming the file.
    """
    path = (spec.trained_dir or folder) / spec.name / WEIGHTS_FILE
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        made_for = (handle.metadata() or {}).get("spec_fingerprint")
    if made_for != spec.fingerprint():
        raise ValueError(
            f"{path}: trained for spec {made_for}, but {spec.name} is now {spec.fingerprint()}; "
            "rerun scripts/train_tiny.py"
        )
    return path
