"""The dashboard's screenshot for the docs (docs/img/history-dashboard.png), drawn by Debian's
headless chromium through Playwright.

Without `--history` it draws a history built for the picture: `history.bench.synthetic_reports`
(30 hourly runs of four variants, a 30% step from run 24), one run marked busy, and the first
variant's step acknowledged - so every kind of mark is on the page. With `--history H` it
draws that history instead (its first tier page).

    python scripts/dashboard_screenshot.py docs/img/history-dashboard.png
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

from perfsuite.history.bench import CHROMIUM_ARGS, synthetic_reports
from perfsuite.history.ingest import add_files
from perfsuite.history.series import find_changes
from perfsuite.history.store import Ack, HistoryStore


def demo_history(folder: Path) -> str:
    paths = synthetic_reports(folder / "reports", runs=30, variants=4, seed=3)
    for path in paths:  # commits that look like git's, so the ticks read as they will in CI
        doc = json.loads(path.read_text())
        doc["run"]["commit"] = hashlib.sha1(doc["run"]["commit"].encode()).hexdigest()
        path.write_text(json.dumps(doc))
    busy = json.loads(paths[12].read_text())
    for entry in busy["variants"]:  # another process took 60% of the CPU: slower, and drawn hollow
        entry["measurement"]["latency"]["median_s"] *= 1.4
        entry["measurement"]["latency"]["other_cpu_share"] = 0.6
    paths[12].write_text(json.dumps(busy))
    db = str(folder / "h.sqlite")
    with HistoryStore(db) as store:
        add_files(store, paths)
        changes, _ = find_changes(store)
        latency = [c for c in changes if c.key.metric == "latency_ms"]
        first = min(latency, key=lambda c: c.key.series)
        store.add_ack(
            Ack(first.change_id, first.key.series, "latency_ms", first.key.scope, first.run.run_id, "intended", "now")
        )
    return db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--history", help="a history to draw (default: one built for the picture)")
    parser.add_argument("--height", type=int, default=760, help="pixels of the page to keep")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("no chromium on PATH (Debian package chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from perfsuite.cli import main as perfsuite

    with tempfile.TemporaryDirectory(prefix="perfsuite-shot-") as tmp:
        history = args.history or demo_history(Path(tmp))
        site = Path(tmp) / "site"
        if perfsuite(["history", "html", str(site), "--history", history]) != 0:
            return 1
        page_path = sorted(site.glob("tier-*.html"))[0]
        with sync_playwright() as p:
            chrome = p.chromium.launch(executable_path=browser, args=list(CHROMIUM_ARGS), headless=True)
            try:
                page = chrome.new_page(viewport={"width": 1240, "height": args.height})
                page.goto(page_path.as_uri())
                page.wait_for_selector("body[data-rendered]")
                over = page.locator(".u-over").first
                box = over.bounding_box()
                page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)  # a tooltip in view
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
            finally:
                chrome.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
