"""Latency records that know each variant's noise: a rebaseline times every variant in fresh
processes and the record keeps their medians (their geometric mean its level). The fresh
processes are stubbed through the session's seam (``PerfSession.measure_fresh``) except in the
last test; the decision that reads the records is tests/unit/test_latency_decision.py."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from perfsuite.cli import main
from perfsuite.matrix.tier import load_matrix
from perfsuite.measure.fresh import FreshError, FreshRequest, measure_fresh, processes_count
from perfsuite.session import PerfSession, SessionConfig
from perfsuite.store.records import Latency, RecordError
from tests.conftest import write_matrix


def _lat(median: float, n: int = 5) -> dict:
    samples = [median * (1 + 0.01 * (i - n // 2)) for i in range(n)]
    return {
        "median_s": statistics.median(samples),
        "iqr_s": 0.0,
        "spread": 0.02,
        "samples_s": samples,
        "probe_samples_s": [],
        "tokens_per_s": 1.0,
        "rows_per_s": 1.0,
        "other_cpu_share": 0.0,
    }


class FakeFresh:
    """Fresh processes that answer the given medians in turn (one per call) for every variant."""

    def __init__(self, medians):
        self.medians = iter(medians)
        self.calls: list[list[str]] = []

    def __call__(self, request: FreshRequest, variant_ids):
        self.calls.append(list(variant_ids))
        m = next(self.medians)
        if isinstance(m, Exception):
            raise m
        return {v: _lat(m) for v in variant_ids}


def test_a_latency_record_keeps_its_processes_medians_and_reads_back():
    lat = Latency.from_samples([0.1, 0.11, 0.12]).with_processes([0.10, 0.12, 0.11])
    assert lat.processes_s == (0.11, 0.10, 0.12, 0.11)  # the recording run's own median first
    assert lat.median_s == pytest.approx(statistics.geometric_mean([0.11, 0.10, 0.12, 0.11]))
    assert lat.spread == pytest.approx(statistics.stdev(math.log(m) for m in (0.11, 0.10, 0.12, 0.11)))
    assert Latency.from_dict(lat.to_dict(), "x.json") == lat
    tagged = Latency.from_samples([0.1]).with_processes([0.1, 0.12], "cpu-x/unit@t")
    assert Latency.from_dict(tagged.to_dict(), "x.json").processes_of == "cpu-x/unit@t"
    old = {"median_s": 0.1, "samples_s": [0.1], "probe_s": None}  # a record from before processes
    assert (
        Latency.from_dict(old, "x.json").spread is None and "processes_s" not in Latency.from_dict(old, "x").to_dict()
    )


def test_a_bad_process_median_names_the_file_and_field():
    with pytest.raises(RecordError, match=r"rec.json.*latency.processes_s\[\]"):
        Latency.from_dict({"median_s": 0.1, "samples_s": [0.1], "processes_s": [0.1, -2]}, "rec.json")


def _record(tmp_path, fresh, paddings=("sorted",)):
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4, paddings=paddings)))
    session = PerfSession(matrix, SessionConfig(baselines=tmp_path / "bl", rebaseline=True, processes=3))
    session.measure_fresh = fresh
    for variant in matrix.variants:
        session.run(variant)
    note = session.finish()
    paths = sorted(p for p in (tmp_path / "bl").glob("*/unit/*.json") if p.parent.parent.name != "portable")
    return matrix, note, paths


def test_a_rebaseline_times_each_variant_in_fresh_processes_and_keeps_their_medians(tmp_path):
    fresh = FakeFresh([0.010, 0.012, 0.011])
    matrix, note, [path] = _record(tmp_path, fresh)
    latency = json.loads(path.read_text())["latency"]
    assert fresh.calls == [[matrix.variants[0].id]] * 3
    own = round(statistics.median(latency["samples_s"]), 6)  # the recording run's own timing comes first
    assert latency["processes_s"] == pytest.approx([own, 0.010, 0.012, 0.011], abs=2e-6)
    assert latency["median_s"] == pytest.approx(statistics.geometric_mean(latency["processes_s"]))
    assert latency["processes_of"].startswith(path.parent.parent.name + "/unit@")  # the rebaseline they came from
    assert any("timed in 3 fresh processes each" in line and "spread median" in line for line in note)


def test_a_failed_fresh_process_leaves_the_record_of_this_run_and_says_so(tmp_path):
    fresh = FakeFresh([0.010, FreshError("tiny: fresh timing process: boom")])
    _, note, [path] = _record(tmp_path, fresh)
    assert "processes_s" not in json.loads(path.read_text())["latency"]
    assert any("this run's timing alone" in line and "boom" in line for line in note)


def test_processes_must_be_none_or_at_least_two(tmp_path, capsys):
    assert processes_count("0") == 0 and processes_count("3") == 3
    with pytest.raises(ValueError, match="at least 2"):
        processes_count("1")
    with pytest.raises(SystemExit) as refused:  # argparse's refusal, before anything runs
        main(["rebaseline", "--matrix", str(write_matrix(tmp_path, rows=4)), "--processes", "1"])
    err = capsys.readouterr().err
    assert refused.value.code == 2
    assert "--processes" in err and "Traceback" not in err


def test_a_fresh_process_times_the_variant_as_the_tier_does(tmp_path):
    """The real child (python -m perfsuite.cli.fresh) on the unit tier, and a variant it cannot know."""
    matrix = load_matrix(str(write_matrix(tmp_path, rows=4)))
    request = FreshRequest(str(matrix.source), str(tmp_path / "bl"))
    (variant,) = [v.id for v in matrix.variants[:1]]
    answers = measure_fresh(request, [variant])
    assert len(answers[variant]["samples_s"]) >= 1 and all(s > 0 for s in answers[variant]["samples_s"])
    with pytest.raises(FreshError, match="no-such-variant"):
        measure_fresh(request, ["no-such-variant"])
