"""PNG plots for a session's report folder (matplotlib, headless).

latency_vs_logloss.png: per model, each variant's median pass time against its log-loss,
with the Pareto front (no other variant is both faster and better).
padding.png: processed / real tokens and median time per padding strategy.
predicted_vs_measured.png: the cost model against the run: per variant (with this
machine's fit) and per relative bound that asks for a prediction.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from perfsuite.report.outcomes import Outcome, PairOutcome
from perfsuite.variant import PADDINGS

PADDING_ORDER = PADDINGS  # waste shown from most to least


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both (lower is better on both axes)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _measured(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.measurement is not None]


def plot_latency_vs_logloss(outcomes: Sequence[Outcome], path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    scored = [o for o in _measured(outcomes) if o.measurement.quality.log_loss is not None]
    if not scored:
        return None
    models = sorted({o.variant.model for o in scored})
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        mine = [o for o in scored if o.variant.model == model]
        pts = [(o.measurement.latency.median_s * 1000, o.measurement.quality.log_loss) for o in mine]
        for dtype in sorted({o.variant.dtype for o in mine}):
            xs = [p for p, o in zip(pts, mine, strict=True) if o.variant.dtype == dtype]
            ax.scatter([x for x, _ in xs], [y for _, y in xs], label=dtype, s=28, alpha=0.8)
        front = pareto_front(pts)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1, label="Pareto front")
        for i in front:
            ax.annotate(
                mine[i].variant.id.removeprefix(model + "-"),
                pts[i],
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_xlabel("median pass time (ms, log)")
        ax.set_ylabel("log-loss")
        ax.set_title(model)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("latency vs log-loss: lower-left is better")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def plot_padding(outcomes: Sequence[Outcome], path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    measured = _measured(outcomes)
    present = [p for p in PADDING_ORDER if any(o.variant.padding == p for o in measured)]
    if not present:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    overhead = {p: [o.measurement.work.padding_overhead for o in measured if o.variant.padding == p] for p in present}
    left.bar(present, [max(overhead[p]) for p in present], color=["#d62728", "#ff7f0e", "#2ca02c"][: len(present)])
    for i, p in enumerate(present):
        left.text(i, max(overhead[p]), f"{max(overhead[p]):.2f}x", ha="center", va="bottom")
    left.axhline(1.0, color="k", lw=0.8)
    left.set_ylabel("processed / real tokens")
    left.set_title("padding waste per strategy")
    groups = sorted({(o.variant.model, o.variant.dtype, o.variant.attention) for o in measured})
    for model, dtype, attention in groups:
        ys = []
        for p in present:
            hit = [
                o
                for o in measured
                if (o.variant.model, o.variant.dtype, o.variant.attention, o.variant.padding)
                == (model, dtype, attention, p)
            ]
            ys.append(hit[0].measurement.latency.median_s * 1000 if hit else float("nan"))
        right.plot(present, ys, marker="o", lw=1, alpha=0.6)
    right.set_yscale("log")
    right.set_ylabel("median pass time (ms, log)")
    right.set_title(f"time per strategy ({len(groups)} model/dtype/attention lines)")
    right.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def plot_predicted(
    outcomes: Sequence[Outcome], pairs: Sequence[PairOutcome], predicted_s: dict[str, float], path: Path
) -> Path | None:
    import matplotlib.pyplot as plt

    with_pred = [o for o in _measured(outcomes) if o.variant.id in predicted_s]
    ratio_pairs = [p for p in pairs if p.predicted_ratio is not None and p.estimate is not None]
    if not with_pred and not ratio_pairs:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    if with_pred:
        xs = [predicted_s[o.variant.id] * 1000 for o in with_pred]
        ys = [o.measurement.latency.median_s * 1000 for o in with_pred]
        for key in sorted({(o.variant.dtype, o.variant.attention == "flex_attention") for o in with_pred}):
            pts = [
                (x, y)
                for x, y, o in zip(xs, ys, with_pred, strict=True)
                if (o.variant.dtype, o.variant.attention == "flex_attention") == key
            ]
            label = key[0] + (" flex" if key[1] else "")
            left.scatter([x for x, _ in pts], [y for _, y in pts], s=18, label=label, marker="x" if key[1] else "o")
        lo, hi = min(xs + ys) * 0.8, max(xs + ys) * 1.25
        left.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        left.fill_between(
            [lo, hi], [lo / 1.25, hi / 1.25], [lo * 1.25, hi * 1.25], color="grey", alpha=0.2, label="+/-25%"
        )
        left.set_xscale("log")
        left.set_yscale("log")
        left.legend(fontsize=8)
    left.set_xlabel("predicted pass time (ms)")
    left.set_ylabel("measured median (ms)")
    left.set_title("per variant (fit on fp32 eager/sdpa; the rest is outside the model)", fontsize=10)
    for i, p in enumerate(ratio_pairs):
        e = p.estimate
        right.errorbar([i], [e.ratio], yerr=[[e.ratio - e.low], [e.high - e.ratio]], fmt="o", color="C0", capsize=3)
        right.plot([i - 0.3, i + 0.3], [p.predicted_ratio] * 2, color="C3", lw=2)
        right.fill_between(
            [i - 0.3, i + 0.3], p.predicted_ratio / 1.25, p.predicted_ratio * 1.25, color="C3", alpha=0.15
        )
    labels = [f"{p.bound.name}\n{p.bound.variant.model}" for p in ratio_pairs]
    right.set_xticks(range(len(ratio_pairs)), labels, fontsize=7)
    right.set_ylabel("ratio: measured (blue, 95% CI) / predicted (red, +/-25%)")
    right.set_title("relative bounds")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


PLOT_NAMES = ("latency_vs_logloss.png", "padding.png", "predicted_vs_measured.png")


def _save(fig, path: Path) -> None:
    """Render to a temporary file beside `path`, then rename: a reader never sees half a PNG."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_plots(
    outcomes: Sequence[Outcome], pairs: Sequence[PairOutcome], folder: Path, predicted_s: dict[str, float] | None = None
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    made = [
        plot_latency_vs_logloss(outcomes, folder / PLOT_NAMES[0]),
        plot_padding(outcomes, folder / PLOT_NAMES[1]),
        plot_predicted(outcomes, pairs, predicted_s or {}, folder / PLOT_NAMES[2]),
    ]
    written = [p for p in made if p is not None]
    for name in PLOT_NAMES:  # a plot this run did not draw is an older run's: remove it
        if folder / name not in written:
            (folder / name).unlink(missing_ok=True)
    return written
