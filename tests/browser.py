"""Headless Chromium for the dashboard tests: Debian's chromium driven by Playwright with
`executable_path` (Playwright's own browser download does not work offline). `missing()` says
why a test must skip; `.ci/run` installs both so CI runs them."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
from collections.abc import Iterator

from perfsuite.history.bench import CHROMIUM_ARGS as ARGS  # one way to start it, for the test and the benchmark


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    if chromium_path() is None:
        return "no chromium on PATH (Debian package chromium; .ci/run installs it)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright (in the dev extra) is not installed"
    return None


@contextlib.contextmanager
def browser_page(errors: list[str]) -> Iterator[object]:
    """A page whose JavaScript errors and console errors are appended to `errors`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=list(ARGS), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            yield page
        finally:
            browser.close()
