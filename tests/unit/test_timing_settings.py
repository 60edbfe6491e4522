"""Record and check are timed alike: one timing state (measure.runner.timing, the collector off)
for every sampler, the relative bounds' interleaving and compare's worker; no timing flag on a
tox command line that one of them would lack."""

from __future__ import annotations

import configparser
import gc
from pathlib import Path
from types import SimpleNamespace

import pytest

from perfsuite.compare.worker import Worker
from perfsuite.measure.runner import perf_counter_sampler, time_interleaved, timing
from perfsuite.plugin import benchmark_sampler

ROOT = Path(__file__).parents[2]


def gc_states(record: list[bool]):
    return lambda: record.append(gc.isenabled())


@pytest.fixture(autouse=True)
def _collector_on():
    gc.enable()
    yield
    gc.enable()


def test_timing_turns_the_collector_off_and_restores_it():
    with timing():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    with timing():
        pass
    assert not gc.isenabled()  # a caller's own state is kept


def test_the_library_sampler_times_every_pass_with_the_collector_off():
    seen: list[bool] = []
    perf_counter_sampler(gc_states(seen), rounds=3, warmup_rounds=1)
    assert seen == [True, False, False, False] and gc.isenabled()  # the warm-up runs as the process is


def test_the_pytest_sampler_times_with_the_collector_off_whatever_the_command_line():
    seen: list[bool] = []

    class Benchmark:  # pytest-benchmark's pedantic, as far as the sampler uses it
        stats = None

        def pedantic(self, fn, setup, rounds, warmup_rounds, iterations):
            fn()

    benchmark_sampler(Benchmark())(gc_states(seen), rounds=2, warmup_rounds=0)
    assert seen and not any(seen) and gc.isenabled()


def test_interleaved_pairs_are_timed_with_the_collector_off():
    seen: list[bool] = []
    side = SimpleNamespace(one_pass=gc_states(seen))
    time_interleaved(side, side, rounds=2, warmup_rounds=1)
    assert seen == [True, True, False, False, False, False]


def test_compares_worker_times_a_pass_as_the_runner_does():
    seen: list[bool] = []
    worker = Worker.__new__(Worker)
    worker.prepared = SimpleNamespace(one_pass=gc_states(seen))
    answer = worker.one_pass({})
    assert seen == [False] and answer["seconds"] >= 0 and gc.isenabled()


def test_no_tox_command_sets_a_timing_flag_that_another_lacks():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    commands = " ".join(tox[s].get("commands", "") for s in tox.sections())
    assert "--benchmark-disable-gc" not in commands and "--benchmark-timer" not in commands
    assert "--perfsuite-rebaseline" in tox["testenv:rebaseline"]["commands"]
