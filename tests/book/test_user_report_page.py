"""The own-data report page opened from disk in Chromium, with no network."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from calcas.user_report import user_report
from test_user_report import CHROMIUM, _as, _csv, _outputs  # noqa: E402


def test_the_page_draws_from_disk_with_no_network(tmp_path):
    """The page opened as a file: every chart draws, every slider redraws, no request leaves the folder."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    paths = [_csv(tmp_path, f"m{i}", _as("prob", _outputs(seed=i, skill=1 + i))) for i in range(3)]
    user_report(paths, tmp_path / "out", n_boot=20, progress=False)
    folder = (tmp_path / "out").as_uri() + "/"
    outside, errors = [], []
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
                sliders = page.query_selector_all(".vega-bind input[type=range]")
                assert len(sliders) == 6
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
