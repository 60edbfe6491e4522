"""Report plots: the Pareto front, and that each PNG is written from a session's outcomes."""

from __future__ import annotations

import pytest

from perfsuite.judge.checks import Verdict
from perfsuite.matrix.tier import RelativeBound
from perfsuite.measure.measurement import LatencySummary, Measurement, MemorySummary, QualitySummary, WorkSummary
from perfsuite.report.outcomes import Outcome, PairOutcome
from perfsuite.report.plots import pareto_front, write_plots
from perfsuite.stats.intervals import RatioEstimate
from perfsuite.variant import Variant


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([(1, 3), (2, 2), (3, 1)], [0, 1, 2]),  # a trade-off: all on the front
        ([(1, 1), (2, 2), (3, 3)], [0]),  # one point beats both others
        ([(2, 1), (1, 1), (1, 2)], [1]),  # ties on one axis: strictly better on the other wins
    ],
)
def test_pareto_front(points, front):
    assert pareto_front(points) == front


def _outcome(model, dtype, padding, ms, ll, overhead):
    variant = Variant(model, dtype, "sdpa", padding)
    measurement = Measurement(
        variant.id,
        {},
        {},
        WorkSummary(16, 4, 100, int(100 * overhead), 90, overhead, 1, 1),
        LatencySummary(ms / 1000, 0.0, 0.0, (ms / 1000,)),
        QualitySummary(ll, 0.5, 0),
        MemorySummary(1, None, "test"),
    )
    return Outcome(variant, Verdict("pass"), measurement)


def test_write_plots_makes_the_three_pngs(tmp_path):
    outcomes = [
        _outcome(m, d, p, ms * (1.7 if p == "static" else 1.0), ll, 1.7 if p == "static" else 1.08)
        for m in ("tiny-llama3", "tiny-mistral")
        for d, ms, ll in (("fp32", 200, 0.70), ("bf16", 280, 0.71), ("nf4", 180, 0.74))
        for p in ("static", "sorted")
    ]
    outcomes.append(Outcome(Variant("tiny-gemma2", "fp32", "sdpa", "sorted"), Verdict("skip", reason="softcapping")))
    a, b = outcomes[1].variant, outcomes[0].variant
    pair = PairOutcome(
        RelativeBound("sorted-vs-static", a, b, None, 0.7, "", 0.25),
        Verdict("pass"),
        RatioEstimate(0.58, 0.55, 0.6, 9, 0.95),
        predicted_ratio=0.6,
    )
    predicted = {o.variant.id: o.measurement.latency.median_s * 1.1 for o in outcomes if o.measurement}
    made = write_plots(outcomes, [pair], tmp_path, predicted)
    assert [p.name for p in made] == ["latency_vs_logloss.png", "padding.png", "predicted_vs_measured.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 10_000 for p in made)


def test_nothing_measured_makes_no_plots(tmp_path):
    skipped = [Outcome(Variant("tiny-gemma2", "fp32", "sdpa", "sorted"), Verdict("skip", reason="x"))]
    assert write_plots(skipped, [], tmp_path) == []


def test_a_run_that_draws_no_plot_removes_the_last_runs_and_leaves_no_temporary(tmp_path):
    measured = [_outcome("tiny-llama3", "fp32", p, 200, 0.7, 1.1) for p in ("static", "sorted")]
    assert write_plots(measured, [], tmp_path)
    (tmp_path / "mine.png").write_bytes(b"not ours")
    skipped = [Outcome(Variant("tiny-gemma2", "fp32", "sdpa", "sorted"), Verdict("skip", reason="x"))]
    assert write_plots(skipped, [], tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.png"]  # stale plots gone, the user's file kept


def test_report_cells_are_text_and_report_json_is_strict(tmp_path):
    import json
    import math

    from perfsuite.judge.checks import BoundCheck
    from perfsuite.report.run_report import RunReport

    nasty = "[latency] [/bold] [red]x"
    outcome = _outcome("tiny-llama3", "fp32", "sorted", 200, math.nan, 1.1)
    outcome.verdict = Verdict("fail", [BoundCheck("latency", "median", False, nasty, "<= 1 ms")], reason=nasty)
    report = RunReport("cpu", "cpu-x-2c", [outcome])
    folder = report.write(tmp_path)  # written first; rendering comes after and cannot lose it
    text = report.render()
    assert "[latency]" in text and "[/bold]" in text
    data = json.loads((folder / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
    assert data["variants"][0]["measurement"]["quality"]["log_loss"] is None
