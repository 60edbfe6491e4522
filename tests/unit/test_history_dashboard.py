"""The dashboard: static pages that need no network, rendered in real headless Chromium with
every chart drawn, no JavaScript error, change points marked (acknowledged ones grey), the
filters and the hover working."""

from __future__ import annotations

import contextlib
import json
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


@contextlib.contextmanager
def tier_page(site):
    """The cpu tier page drawn in headless chromium; no JavaScript or console error by the end."""
    errors: list[str] = []
    with browser_page(errors) as page:
        page.goto((site / "tier-cpu.html").as_uri())
        page.wait_for_selector("body[data-rendered]")
        yield page
    assert errors == []


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
    # a latency that never moved is one line: its value and how many of this tier's runs hold it
    assert '"folded":{"value":100,"since":"2026-11-01T00:00:00","runs":3}' in pages["tier-cpu.html"]
    assert '"folded":{"value":5,"since":"2026-11-01T03:00:00","runs":1}' in pages["tier-unit.html"]


def tier_data_of(tmp_path, docs) -> dict:
    """The cpu tier page's embedded data, for a history of these report documents."""
    db = str(tmp_path / "h.sqlite")
    with HistoryStore(db) as store:
        add_files(store, write(tmp_path / "runs", docs))
    assert main(["history", "html", str(tmp_path / "site"), "--history", db]) == 0
    text = (tmp_path / "site" / "tier-cpu.html").read_text()
    return json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text).group(1))


def test_a_series_that_never_moved_is_one_line_of_text_and_one_that_moved_is_a_chart(tmp_path):
    docs = [report(i, {V: 100.0 + i}) for i in range(4)]
    docs += [report(4 + i, {V: 104.0 + i}, processed={V: 1000 if i < 2 else 1200}) for i in range(4)]
    data = tier_data_of(tmp_path, docs)
    charts = {c["metric"]: c for c in data["variants"][0]["charts"]}
    assert charts["log_loss"]["folded"] == {"value": 0.9, "since": "2026-11-01T00:00:00", "runs": 8}
    assert "folded" not in charts["processed_tokens"] and charts["processed_tokens"]["unit"] == "tokens"
    assert charts["latency_ms"]["unit"] == "ms" and "folded" not in charts["latency_ms"]


def test_runs_stored_out_of_time_order_are_drawn_in_time_order(tmp_path):
    docs = [report(i, {V: 100.0 + i}) for i in (3, 0, 2, 1)]
    data = tier_data_of(tmp_path, docs)
    times = [r[4] for r in data["runs"]]
    assert times == sorted(times) and times[1] - times[0] == 3600
    (latency,) = [c for c in data["variants"][0]["charts"] if c["metric"] == "latency_ms"]
    assert latency["y"] == [100, 101, 102, 103]


@pytest.mark.skipif(missing() is not None, reason=missing() or "")
def test_every_chart_renders_in_headless_chromium_with_no_javascript_error(site):
    errors: list[str] = []
    with browser_page(errors) as page:
        for name in ("index.html", "tier-cpu.html", "compare.html"):
            page.goto((site / name).as_uri())
            page.wait_for_selector("body[data-rendered]")
            assert page.get_attribute("body", "data-rendered") == "done", name
        page.goto((site / "tier-cpu.html").as_uri())
        page.wait_for_selector("body[data-rendered]")
        data = json.loads(page.text_content("#data"))
        charts = [c for v in data["variants"] for c in v["charts"]]
        moved = sum(1 for c in charts if "folded" not in c)
        # 2 variants x latency, tok/s, rss, log-loss, processed tokens; W's tokens moved, the rest did not
        assert len(charts) == 10 and moved == 5
        assert int(page.get_attribute("body", "data-charts")) == moved == page.locator(".uplot").count()
        assert int(page.get_attribute("body", "data-folded")) == 5 == page.locator(".folded").count()
        assert page.locator(".cp-note.acked").count() >= 1  # the acknowledged latency step, grey
        assert page.locator(".cp-note.regression").count() >= 1  # W's latency and processed tokens
        page.select_option("select[data-facet=padding]", "static")
        assert page.locator(".variant:not(.hidden)").count() == 1
        page.locator(".variant:not(.hidden) .u-over").first.hover()
        tip = page.text_content("#tooltip")
        assert W in tip and " ms" in tip and "commit" in tip
        page.select_option("select[data-facet=padding]", "")
        assert page.locator(".variant:not(.hidden)").count() == 2
        assert page.locator(".uplot").count() == moved
        assert errors == []


@pytest.mark.skipif(missing() is not None, reason=missing() or "")
def test_the_charts_share_a_time_axis_with_commit_ticks_zoom_and_pan(site):
    with tier_page(site) as page:
        data = json.loads(page.text_content("#data"))
        first, last = data["runs"][0][4], data["runs"][-1][4]
        scales = "window.perfsuitePlots.map(u => [u.scales.x.min, u.scales.x.max])"
        full = page.evaluate(scales)
        assert len({tuple(s) for s in full}) == 1 and full[0][0] <= first and full[0][1] >= last
        ticks = page.evaluate("window.perfsuitePlots[0].tickLabels")
        assert ticks and all("\n" in t for t in ticks)
        assert any(t.split("\n")[1] == run[1][:7] for t in ticks for run in data["runs"])  # a commit under its time
        over = page.locator(".u-over").first
        over.hover()
        page.mouse.wheel(0, -400)  # zoom in around the cursor: every chart follows
        zoomed = page.evaluate(scales)
        assert len({tuple(s) for s in zoomed}) == 1 and zoomed[0][1] - zoomed[0][0] < full[0][1] - full[0][0]
        page.keyboard.down("Shift")
        page.mouse.wheel(0, -200)  # pan: the same width, earlier
        page.keyboard.up("Shift")
        panned = page.evaluate(scales)
        assert panned[0][0] < zoomed[0][0] and abs((panned[0][1] - panned[0][0]) - (zoomed[0][1] - zoomed[0][0])) < 1
        box = over.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + 20)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + 20, steps=5)
        page.mouse.up()  # drag: zoom to the selection
        dragged = page.evaluate(scales)
        assert dragged[0][1] - dragged[0][0] < panned[0][1] - panned[0][0]
        over.dblclick()
        assert page.evaluate(scales) == full


@pytest.mark.skipif(missing() is not None, reason=missing() or "")
def test_change_point_labels_stay_inside_their_chart_at_every_zoom(site):
    with tier_page(site) as page:
        boxes = "window.perfsuitePlots.map(u => [u.width, u.height, u.cpBoxes])"
        for _ in range(3):
            drawn = page.evaluate(boxes)
            labels = [(w, h, b) for w, h, bs in drawn for b in bs]
            assert {b["cls"] for _, _, b in labels} >= {"regression", "acked"}
            for width, height, b in labels:
                assert 0 <= b["left"] < b["right"] <= width and 0 <= b["top"] < b["bottom"] <= height, b
            over = page.locator(".u-over").first
            over.hover(position={"x": over.bounding_box()["width"] * 0.9, "y": 30})
            page.mouse.wheel(0, -300)  # zoom towards the right edge, where the last change points are
