"""The compare chain: ten merges each 2% slower (each `same` on its own) are flagged together;
ten A/A merges are not; an acknowledged chain starts again."""

from __future__ import annotations

import numpy as np

from perfsuite.cli import main
from perfsuite.history.creep import creep
from perfsuite.history.ingest import add_files
from perfsuite.history.series import load_series
from perfsuite.history.store import HistoryStore
from tests.unit.history_data import compare_doc, write

V = "tiny-llama3-fp32-sdpa-sorted"


def _chain(tmp_path, head_over_base):
    docs = [compare_doc(i, V, r) for i, r in enumerate(head_over_base)]
    store = HistoryStore(str(tmp_path / "h.sqlite"))
    add_files(store, write(tmp_path, docs, "compare.json"))
    series, _ = load_series(store, metrics=["head_over_base"])
    return store, creep(series, store.acks())


def test_ten_merges_each_two_percent_slower_are_flagged_though_none_is_alone(tmp_path):
    store, (chain,) = _chain(tmp_path, [1.02] * 10)
    assert not chain.single_flagged and chain.flagged
    assert abs(chain.last.cumulative - 1.02**10) < 1e-6 and chain.last.cumulative_low > 1.05
    store.close()


def test_ten_a_a_merges_are_not_flagged(tmp_path):
    noise = np.exp(np.random.default_rng(0).normal(0, 0.01, 10))
    store, (chain,) = _chain(tmp_path, list(noise))
    assert not chain.flagged and chain.last.cumulative_low < 1 < chain.last.cumulative_high
    store.close()


def test_a_compare_against_a_base_reads_as_head_over_base(tmp_path):
    store, (chain,) = _chain(tmp_path, [1.25])
    assert abs(chain.links[0].ratio - 1.25) < 1e-9 and chain.links[0].base_commit == "b" * 40
    store.close()


def test_an_acknowledged_chain_starts_again_and_stops_alerting(tmp_path, capsys):
    store, (chain,) = _chain(tmp_path, [1.02] * 10)
    store.close()
    db = str(tmp_path / "h.sqlite")
    assert main(["history", "changes", "--history", db]) == 1
    assert chain.change_id in capsys.readouterr().out
    assert main(["history", "ack", chain.change_id, "--reason", "accepted", "--history", db]) == 0
    assert main(["history", "changes", "--history", db]) == 0
