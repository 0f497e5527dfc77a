"""The own-data report page opened from disk in Chromium, with no network."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from calcas.user_report import user_report
from test_book_reader import TABLES, table_problems  # noqa: E402
from test_user_report import CHROMIUM, HOSTILE, _as, _csv, _outputs, hostile_report  # noqa: E402


def test_the_page_draws_from_disk_with_no_network(tmp_path):
    """The page opened as a file: every chart draws, every slider redraws, no request leaves the
    folder; no table scrolls sideways at 1280 px, and every table shows values at 390 px."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    paths = [_csv(tmp_path, f"m{i}", _as("prob", _outputs(seed=i, skill=1 + i))) for i in range(3)]
    res = user_report(paths, tmp_path / "out", costs=[1, 4, 16], n_boot=20, progress=False)
    assert "chain" in res  # three files and costs: the certified chain's table is on the page too
    folder = (tmp_path / "out").as_uri() + "/"
    outside, errors, tables = [], [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        try:
            for width in (1280, 390):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.on("pageerror", lambda err: errors.append(str(err)))
                page.route("**/*", lambda r: r.continue_() if r.request.url.startswith((folder, "data:", "blob:"))
                           else (outside.append(r.request.url), r.abort()))
                page.goto(folder + "index.html", wait_until="networkidle")
                page.wait_for_function("() => Array.from(document.querySelectorAll('.calcas-explorer'))"
                                       ".every(d => d.querySelector('svg') !== null)", timeout=20_000)
                tables += table_problems(width, page.evaluate(TABLES))
                sliders = page.query_selector_all(".vega-bind input[type=range]")
                assert len(sliders) == 5  # one per model (3), the cascades (one explorer, a pair drop-down), cleaning
                for slider in sliders:
                    chart = slider.evaluate_handle("el => el.closest('.calcas-explorer')")
                    text = "c => Array.from(c.querySelectorAll('svg text')).map(t => t.textContent).join('|')"
                    before = chart.evaluate(text)
                    low = slider.get_attribute("min")
                    slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', "
                                    "{bubbles: true})); }", low)
                    page.wait_for_function(f"([c, b]) => ({text})(c) !== b", arg=[chart, before], timeout=5_000)
                if os.environ.get("CALCAS_SCREENSHOTS"):
                    page.screenshot(path=str(Path(os.environ["CALCAS_SCREENSHOTS"]) / f"user_report_{width}.png"),
                                    full_page=True)
                page.close()
        finally:
            browser.close()
    assert not outside, f"requests left the folder: {outside}"
    assert not errors, f"script errors: {errors}"
    assert not tables, "\n".join(tables)


def test_names_that_look_like_markup_run_nothing_in_the_browser(tmp_path):
    """Model names from file names such as ``<img src=x onerror=alert(1)>``: no dialog opens, no
    script error, every chart draws, and the names read as written (in the page's text and in
    the charts' SVG text, which Vega writes as text)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    folder = hostile_report(tmp_path).as_uri() + "/"
    dialogs, errors = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(folder + "index.html", wait_until="networkidle")
            page.wait_for_function("() => Array.from(document.querySelectorAll('.calcas-explorer'))"
                                   ".every(d => d.querySelector('svg') !== null)", timeout=20_000)
            page.mouse.move(300, 300)
            page.mouse.wheel(0, 4000)
            text = page.inner_text("body")
            svg = page.evaluate("() => Array.from(document.querySelectorAll('svg text'))"
                                ".map(t => t.textContent).join('|')")
        finally:
            browser.close()
    assert not dialogs, f"script from a model name ran: {dialogs}"
    assert not errors, f"script errors: {errors}"
    for name in HOSTILE:
        assert name in text, name
    assert any(name in svg for name in HOSTILE)
