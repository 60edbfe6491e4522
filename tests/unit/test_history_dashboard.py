"""The dashboard: static pages that need no network, rendered in real headless Chromium with
every chart drawn, no JavaScript error, change points marked (acknowledged ones grey), the
filters and the hover working."""

from __future__ import annotations

import re

import pytest

from perfsuite.cli import main
from perfsuite.history.ingest import add_files
from perfsuite.history.series import find_changes
from perfsuite.history.store import Ack, HistoryStore
from tests.browser import browser_page, missing
from tests.unit.history_data import compare_doc, report, write

V, W = "tiny-llama3-fp32-sdpa-sorted", "tiny-gemma2-fp32-eager-static"


@pytest.fixture
def site(tmp_path):
    db = str(tmp_path / "h.sqlite")
    docs = [
        report(i, {V: 100.0 * (1.3 if i >= 10 else 1.0) * (1 + 0.002 * (i % 4)), W: 50.0 * (1 + 0.002 * (i % 3))})
        for i in range(20)
    ]
    docs.append(report(20, {V: 130.0, W: 50.0 * 1.4}, processed={W: 1500}))
    docs += [report(21 + i, {V: 130.0, W: 70.0 + i * 0.1}, processed={W: 1500}) for i in range(4)]
    with HistoryStore(db) as store:
        add_files(store, write(tmp_path / "runs", docs))
        add_files(store, write(tmp_path / "cmp", [compare_doc(i, V, 1.02) for i in range(10)], "compare.json"))
        (step,) = [c for c in find_changes(store, V)[0] if c.key.metric == "latency_ms"]
        store.add_ack(Ack(step.change_id, V, "latency_ms", step.key.scope, step.run.run_id, "intended", "now"))
    out = tmp_path / "site"
    assert main(["history", "html", str(out), "--history", db]) == 0
    return out


def test_the_pages_load_nothing_from_the_network(site):
    for page in site.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), page.name
        assert "<script src" not in text


def test_a_variant_id_in_two_tiers_is_drawn_on_each_tiers_page_with_its_own_runs(tmp_path):
    docs = [report(i, {V: 100.0}) for i in range(3)] + [report(3, {V: 5.0})]
    docs[3]["run"]["tier"] = "unit"
    db = str(tmp_path / "h.sqlite")
    with HistoryStore(db) as store:
        add_files(store, write(tmp_path / "runs", docs))
    assert main(["history", "html", str(tmp_path / "site"), "--history", db]) == 0
    pages = {p.name: p.read_text() for p in (tmp_path / "site").glob("tier-*.html")}
    assert set(pages) == {"tier-cpu.html", "tier-unit.html"}
    assert '"y":[100,100,100]' in pages["tier-cpu.html"] and '"y":[5]' in pages["tier-unit.html"]


@pytest.mark.skipif(missing() is not None, reason=missing() or "")
def test_every_chart_renders_in_headless_chromium_with_no_javascript_error(site):
    import json

    errors: list[str] = []
    with browser_page(errors) as page:
        for name in ("index.html", "tier-cpu.html", "compare.html"):
            page.goto((site / name).as_uri())
            page.wait_for_selector("body[data-rendered]")
            assert page.get_attribute("body", "data-rendered") == "done", name
        page.goto((site / "tier-cpu.html").as_uri())
        page.wait_for_selector("body[data-rendered]")
        data = json.loads(page.text_content("#data"))
        expected = sum(len(v["charts"]) for v in data["variants"])
        assert (
            int(page.get_attribute("body", "data-charts")) == expected == 10
        )  # 2 variants x latency, tok/s, peak, log-loss, processed tokens
        assert page.locator("svg.chart").count() == expected
        assert page.locator("line.cp.acked").count() >= 1  # the acknowledged latency step, grey
        assert page.locator("line.cp.regression").count() >= 1  # W's latency and processed tokens
        page.select_option("select[data-facet=padding]", "static")
        assert page.locator(".variant:not(.hidden)").count() == 1
        page.locator(".variant:not(.hidden) svg.chart").first.hover()
        assert W in page.text_content("#tooltip")
        page.goto((site / "compare.html").as_uri())
        page.wait_for_selector("body[data-rendered]")
        assert "creep flagged" in page.text_content("#charts")
    assert errors == []
