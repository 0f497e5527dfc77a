"""The built HTML book in a real browser: every page loads with no request leaving the book,
and every explorer (calcas.render.interactive) draws, and redraws when its slider moves.

The book is read from ``_build/html`` (or ``$CALCAS_BOOK_HTML``), served over http.server
on 127.0.0.1, and opened in the system's Chromium (``/usr/bin/chromium``, or
``$CALCAS_CHROMIUM``) through Playwright; Playwright never downloads a browser here. Any
request to another origin is aborted and reported (``data:`` and ``blob:`` are fine).
Without a built book the tests skip ("run make book first"), or fail when
``CALCAS_REQUIRE_BOOK=1``. ``CALCAS_SHOTS=<folder>`` saves a screenshot of each page that
has an explorer.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("CALCAS_BOOK_HTML", ROOT / "_build" / "html"))
CHROMIUM = Path(os.environ.get("CALCAS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOT_PAGES = ("_static", "_sources", "_images", "_downloads")

# The visible text of an explorer: every <text> of its SVG, and the slider's own read-out.
CHART_TEXT = """root => Array.from(root.querySelectorAll('svg text')).map(t => t.textContent).join('\\n')"""
SET_SLIDER = """([input, value]) => {
  input.value = String(value);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new Event('change', {bubbles: true}));
}"""
ALL_DRAWN = """() => Array.from(document.querySelectorAll('.calcas-explorer'))
  .every(d => d.querySelector('svg') !== null || d.textContent.startsWith('[interactive chart'))"""


def _book() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (set CALCAS_CHROMIUM): the browser checks need one")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not (HTML / "index.html").is_file():
        message = f"no built book in {HTML}: run make book first"
        if os.environ.get("CALCAS_REQUIRE_BOOK") == "1":
            pytest.fail(message + " (CALCAS_REQUIRE_BOOK=1)")
        pytest.skip(message)
    return HTML


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output readable
        pass


@contextlib.contextmanager
def served_page(relative: str, what: str):
    """One page of the built book, served locally and open in Chromium with every explorer drawn
    (nothing outside the book is fetched). Skips without a built page, fails under CALCAS_REQUIRE_BOOK=1."""
    html = _book()
    if not (html / relative).is_file():
        message = f"no {what} page {html / relative}: build the book first"
        if os.environ.get("CALCAS_REQUIRE_BOOK") == "1":
            pytest.fail(message + " (CALCAS_REQUIRE_BOOK=1)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_port}/"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(origin) else r.abort())
            page.goto(origin + relative, wait_until="networkidle")
            page.wait_for_function(ALL_DRAWN, timeout=20_000)
            yield page
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def _visit(page, url: str, origin: str, shots: Path | None) -> dict:
    """Open one page; move every slider; return what happened."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    out = {"outside": [], "broken": [], "errors": [], "explorers": 0, "undrawn": [], "sliders": []}
    page.on("response", lambda r: out["broken"].append(f"{r.status} {r.url}")
            if r.status >= 400 and r.url.startswith(origin) and not r.url.endswith("/favicon.ico") else None)
    page.on("pageerror", lambda err: out["errors"].append(str(err)))

    def route(r):
        target = r.request.url
        if target.startswith(origin) or urlsplit(target).scheme in ("data", "blob"):
            return r.continue_()
        out["outside"].append(target)
        return r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="networkidle")
    explorers = page.query_selector_all(".calcas-explorer")
    out["explorers"] = len(explorers)
    if explorers:
        try:
            page.wait_for_function(ALL_DRAWN, timeout=20_000)
        except PlaywrightTimeout:  # reported below, explorer by explorer
            pass
        out["undrawn"] = [d.inner_text()[:200] for d in explorers if d.query_selector("svg") is None]
    for i, slider in enumerate(page.query_selector_all(".vega-bind input[type=range]")):
        root = slider.evaluate_handle("el => el.closest('.calcas-explorer') || el.closest('.vega-embed')")
        low, high = (float(slider.get_attribute(a) or "nan") for a in ("min", "max"))
        now = float(slider.evaluate("el => el.value"))  # Vega sets the property, not the attribute
        end = low if now != low else high
        target = int(end) if end.is_integer() else end
        before = root.evaluate(CHART_TEXT)
        page.evaluate(SET_SLIDER, [slider, target])
        try:
            page.wait_for_function(f"([root, before]) => ({CHART_TEXT})(root) !== before",
                                   arg=[root, before], timeout=5_000)
        except PlaywrightTimeout:  # reported by the test as "did not change"
            pass
        after = root.evaluate(CHART_TEXT)
        out["sliders"].append({"index": i, "target": target, "changed": after != before,
                               # the explorers' read-outs: "ECE = ... with N = n ..." / "K = k: ...", the
                               # lab's log-scale sliders: "T = 0.25 (log₂ T = -2)" / "n = 100 (log₁₀ n ≈ 2)",
                               # and the chain explorer's "max_drop = 0.050, δ = ...: ..."
                               "mentions_target": re.search(rf"\bN = {target}\b|\bK = {target}\b|log₂ T = {target}\b"
                                                            rf"|log₁₀ n ≈ {target}\b|max_drop = {target:.3f}\b",
                                                            after) is not None,
                               "before": before[-300:], "after": after[-300:]})
    if shots is not None and explorers:
        shots.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9]+", "_", url.split("/", 3)[-1]).strip("_")
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    return out


@pytest.fixture(scope="module")
def visits() -> dict[str, dict]:
    html = _book()
    from playwright.sync_api import sync_playwright

    pages = sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                   if p.relative_to(html).parts[0] not in NOT_PAGES)
    handler = functools.partial(_Quiet, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_port}/"
    shots = Path(os.environ["CALCAS_SHOTS"]) if os.environ.get("CALCAS_SHOTS") else None
    results = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
                for rel in pages:
                    page = context.new_page()
                    try:
                        results[rel] = _visit(page, origin + rel, origin, shots)
                    finally:
                        page.close()
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return results


def test_every_page_stays_inside_the_book(visits):
    assert visits, "the built book has no pages"
    outside = {page: v["outside"] for page, v in visits.items() if v["outside"]}
    assert not outside, f"requests left the book: {outside}"
    broken = {page: v["broken"] for page, v in visits.items() if v["broken"]}
    assert not broken, f"local files missing from the build: {broken}"


def test_every_page_runs_without_script_errors(visits):
    errors = {page: v["errors"] for page, v in visits.items() if v["errors"]}
    assert not errors, f"script errors: {errors}"


def test_every_explorer_draws(visits):
    undrawn = {page: v["undrawn"] for page, v in visits.items() if v["undrawn"]}
    assert not undrawn, f"explorers that did not draw: {undrawn}"


def test_every_slider_changes_its_chart(visits):
    sliders = [(page, s) for page, v in visits.items() for s in v["sliders"]]
    if not sliders:
        pytest.skip("no page of this book has an explorer slider")
    stuck = [(page, s) for page, s in sliders if not (s["changed"] and s["mentions_target"])]
    assert not stuck, "sliders that did not change their chart's read-out:\n" + "\n".join(
        f"{page} slider {s['index']} -> {s['target']}: before {s['before']!r} after {s['after']!r}"
        for page, s in stuck)
