"""A 3-class score head on a frozen real backbone: the competition's classifier, made offline.

The backbone (real weights, models/gguf.py) stays as pretrained; only `score` (no bias, as
LlamaForSequenceClassification has) is fitted, as a multinomial logistic regression on the
pooled hidden state the classifier itself computes (the last non-pad token). Features come
from the classifier with `score` swapped for an identity, in fp32 eager, so training sees
exactly what the tier's reference scores; they are cached per weights, data and max_length.

Rows [0, heldout) are held out: the tiers score the first rows of the bundled sample, so their
log-loss is a held-out figure. Seeded and deterministic on CPU.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from perfsuite.models.gguf import HEAD_FILE, source_digest
from perfsuite.models.modelspec import ModelSpec

REPORT_FILE = "head.json"


@dataclass(frozen=True)
class HeadConfig:
    """How a head is fitted: held-out rows, the L2 strengths tried by cross-validation, the seed."""

    heldout: int = 64
    max_length: int = 128
    l2_grid: tuple[float, ...] = (1e-2, 1e-1, 1.0, 10.0, 100.0)
    folds: int = 4
    seed: int = 1234
    batch_size: int = 8


def pooled_features(model, rows, pad_id: int, batch_size: int) -> np.ndarray:
    """The classifier's pooled hidden state per row (its `score` replaced by an identity)."""
    from perfsuite.measure.batching import batch_rows

    score, model.score = model.score, torch.nn.Identity()
    try:
        out = np.zeros((len(rows), model.config.hidden_size), dtype=np.float64)
        with torch.inference_mode():
            for b in batch_rows(rows, batch_size, "sorted", max(len(r.input_ids) for r in rows), pad_id, "right"):
                out[list(b.row_index)] = model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits.double()
    finally:
        model.score = score
    return out


def _fit(x: torch.Tensor, y: torch.Tensor, l2: float, classes: int) -> torch.Tensor:
    """Multinomial logistic regression without bias (mean cross-entropy + l2/2 |W|^2), by L-BFGS."""
    w = torch.zeros(classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w.T, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def _scores(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> tuple[float, float]:
    logits = x @ w.T
    loss = float(torch.nn.functional.cross_entropy(logits, y))
    return loss, float((logits.argmax(1) == y).double().mean())


def fit_head(features: np.ndarray, labels: list[int], config: HeadConfig, classes: int = 3):
    """(weight [classes, hidden], report): L2 chosen by k-fold CV on the training rows only."""
    x = torch.from_numpy(features)
    y = torch.tensor(labels)
    train = torch.arange(config.heldout, len(labels))
    held = torch.arange(0, config.heldout)
    # Features are scaled by one number (their RMS) for conditioning; the weight is scaled back.
    scale = float(x[train].pow(2).mean().sqrt())
    xs = x / scale
    generator = torch.Generator().manual_seed(config.seed)
    order = train[torch.randperm(len(train), generator=generator)]
    folds = order.chunk(config.folds)
    cv = {}
    for l2 in config.l2_grid:
        losses = []
        for k, fold in enumerate(folds):
            rest = torch.cat([f for j, f in enumerate(folds) if j != k])
            w = _fit(xs[rest], y[rest], l2, classes)
            losses.append(_scores(xs[fold], y[fold], w)[0])
        cv[l2] = sum(losses) / len(losses)
    best = min(cv, key=lambda k: cv[k])
    w = _fit(xs[train], y[train], best, classes)
    held_loss, held_acc = _scores(xs[held], y[held], w)
    train_loss, train_acc = _scores(xs[train], y[train], w)
    report = {
        "l2": best,
        "cv_log_loss": {str(k): round(v, 6) for k, v in cv.items()},
        "train_rows": len(train),
        "train_log_loss": round(train_loss, 6),
        "train_accuracy": round(train_acc, 4),
        "heldout_rows": len(held),
        "heldout_log_loss": round(held_loss, 6),
        "heldout_accuracy": round(held_acc, 4),
        "uniform_log_loss": round(math.log(classes), 6),
    }
    return (w / scale).float(), report


def train_head(spec: ModelSpec, data_path: Path, config: HeadConfig, cache_dir: Path | None = None, log=print):
    """Features from the frozen fp32 backbone (cached), then the head: (weight, report)."""
    from dataclasses import replace

    from perfsuite.fileio import file_digest, file_fingerprint
    from perfsuite.matrix.tier import load_matrix
    from perfsuite.measure.workload import Workload
    from perfsuite.models.factory import load_model

    start = time.perf_counter()
    settings = replace(load_matrix("real").settings, rows=10**9, max_length=config.max_length, lm_tokens=0)
    work = Workload(data_path, settings, cache_dir, lambda name: spec)
    encoded = work.encoded(spec)
    rows = encoded.rows
    lm_folder = work.converted(spec)
    digest = source_digest(lm_folder)
    key = f"features-{file_digest(data_path)[:12]}-len{config.max_length}.npy"
    cached = lm_folder / key
    if cached.is_file():
        features = np.load(cached)
    else:
        from perfsuite.models.gguf import classifier

        seeded = classifier(lm_folder, spec.model_class(), spec.num_labels, encoded.tokenizer.pad_id, None, spec.seed)
        model = load_model(spec, seeded, "fp32", "eager")
        log(f"{spec.name}: features of {len(rows)} rows at max_length {config.max_length} (fp32 eager)")
        features = pooled_features(model, rows, encoded.tokenizer.pad_id, config.batch_size)
        tmp = cached.with_name(cached.name + ".tmp.npy")
        np.save(tmp, features)
        tmp.replace(cached)
    labels = [r.label for r in rows]
    if any(y is None for y in labels):
        raise ValueError(f"{data_path}: every row needs a label to train a head")
    weight, report = fit_head(features, labels, config)  # type: ignore[arg-type]
    report.update(
        model=spec.name,
        gguf_sha256=digest,
        data=file_fingerprint(data_path),
        config=asdict(config),
        seconds=round(time.perf_counter() - start, 1),
        torch=torch.__version__,
    )
    return weight, report


def save_head(weight: torch.Tensor, report: dict, folder: Path) -> Path:
    """score.safetensors (metadata: the weights' digest) and head.json into `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"score.weight": weight.contiguous()}, str(folder / HEAD_FILE), {"gguf_sha256": report["gguf_sha256"]})
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return folder / HEAD_FILE
