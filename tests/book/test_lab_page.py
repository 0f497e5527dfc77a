"""The built lab page: in Chromium every control moves what it should, and the run saved the intro's figure."""
from __future__ import annotations

import os
import re

import pytest

PAGE = "book/executed/08_lab/08_lab.html"


READOUT = "root => Array.from(root.querySelectorAll('svg text')).map(t => t.textContent).join('\\n')"


# the x (page px) of a named mark's first item: Vega gives the group the class "<name>_<i>_marks"
MARK_X = """(root, name) => { const m = root.querySelector('[class*="' + name + '_"] > *');
  if (!m) return null; const r = m.getBoundingClientRect(); return r.x + r.width / 2; }"""


@pytest.fixture(scope="module")
def lab_page():
    from test_book_browser import served_page
    with served_page(PAGE, "lab") as page:
        yield page


def _explorer(page, label: str):
    return page.query_selector(f'.calcas-explorer[aria-label^="{label}"]')


def _set(page, root, index: int, value) -> str:
    """Set the explorer's ``index``-th range slider to ``value``; return the new read-out."""
    from test_book_browser import SET_SLIDER
    before = root.evaluate(READOUT)
    slider = root.query_selector_all("input[type=range]")[index]
    page.evaluate(SET_SLIDER, [slider, value])
    page.wait_for_function(f"([root, before]) => ({READOUT})(root) !== before", arg=[root, before], timeout=5_000)
    return root.evaluate(READOUT)


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return float(found.group(1).replace(",", ""))


def test_browser_temperature_slider_moves_ece_and_the_mark_not_accuracy(lab_page):
    root = _explorer(lab_page, "calcas temperature explorer")
    assert root is not None, "no temperature explorer on the lab page"
    start = root.evaluate(READOUT)
    x_start = root.evaluate(MARK_X, "current_T_ece")
    x_fitted = root.evaluate(MARK_X, "fitted_T_ece")
    cold = _set(lab_page, root, 0, -2)
    assert "T = 0.25" in cold and "log₂ T = -2" in cold
    x_cold = root.evaluate(MARK_X, "current_T_ece")
    hot = _set(lab_page, root, 0, 2)
    assert "T = 4.00" in hot
    x_hot = root.evaluate(MARK_X, "current_T_ece")
    eces = [_number(r"ECE = ([0-9.]+)", t) for t in (start, cold, hot)]
    assert len(set(eces)) == 3, eces
    accuracies = {_number(r"accuracy = ([0-9.]+)", t) for t in (start, cold, hot)}
    assert len(accuracies) == 1, f"accuracy moved with T: {accuracies}"
    # the marked T follows the slider: T = 0.25 < 1 < the fitted T (about 2 here) < 4
    assert x_cold < x_start < x_fitted < x_hot, (x_cold, x_start, x_fitted, x_hot)
    fitted = _number(r"fitted T = ([0-9.]+)", start)
    assert 1 < fitted < 4


def test_browser_temperature_slider_between_the_grids_floats(lab_page):
    """log2 T = -0.5 and 0.75: the grid holds -0.4999999999999999 and 0.7500000000000001 there
    (log2 of 2 ** (k / 8)); the rows are matched on rounded keys, so the diagram and the
    read-out still show that T."""
    root = _explorer(lab_page, "calcas temperature explorer")
    assert root is not None, "no temperature explorer on the lab page"
    for value, T in ((-0.5, "0.71"), (0.75, "1.68")):
        text = _set(lab_page, root, 0, value)
        assert f"T = {T} (log₂ T = {value:g})" in text, text
        assert root.evaluate(MARK_X, "temperature_diagram_points") is not None, f"no diagram at log2 T = {value}"
        assert root.evaluate(MARK_X, "current_T_ece") is not None, f"no current T marked at log2 T = {value}"


def test_browser_sample_size_slider_plugin_falls_with_n(lab_page):
    root = _explorer(lab_page, "calcas sample-size explorer")
    assert root is not None, "no sample-size explorer on the lab page"
    slider = root.query_selector("input[type=range]")
    low, high = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
    large = _set(lab_page, root, 0, high)
    small = _set(lab_page, root, 0, low)
    n_small, n_large = _number(r"n = ([0-9,]+)", small), _number(r"n = ([0-9,]+)", large)
    assert n_small < n_large
    plug_small = _number(r"plug-in ECE = ([0-9.]+)", small)
    plug_large = _number(r"plug-in ECE = ([0-9.]+)", large)
    assert plug_small > 3 * plug_large, (plug_small, plug_large)
    assert _number(r"debiased ECE = ([0-9.]+)", small) < plug_small
    # the smallest detectable ECE is read out beside the estimates, and shrinks with n
    detect = r"smallest detectable ECE = ([0-9.]+)"
    assert _number(detect, small) > _number(detect, large)


def test_browser_bins_slider_and_binning_toggle(lab_page):
    root = _explorer(lab_page, "calcas binning explorer")
    assert root is not None, "no binning explorer on the lab page"
    at30 = _set(lab_page, root, 0, 30)
    assert re.search(r"N = 30,\s+equal-count bins", at30), at30
    before = root.evaluate(READOUT)
    root.query_selector('input[type=radio][value="equal_width"]').check()
    lab_page.wait_for_function(f"([root, before]) => ({READOUT})(root) !== before", arg=[root, before],
                               timeout=5_000)
    width = root.evaluate(READOUT)
    assert re.search(r"N = 30,\s+equal-width bins", width), width
    fewest = r"fewest samples in a bin:\s+([0-9,]+)"
    assert _number(fewest, width) < _number(fewest, at30)
    assert _number(r"ECE = ([0-9.]+)", width) != _number(r"ECE = ([0-9.]+)", at30)


def test_executed_lab_saves_the_intros_annotated_diagram():
    """The lab's run writes the figure book/intro.md shows (executed/08_lab/annotated_reliability.svg)."""
    import xml.etree.ElementTree as ET
    from pathlib import Path
    folder = Path(__file__).resolve().parents[2] / "book" / "executed" / "08_lab"
    if not (folder / "results.json").is_file():
        message = f"the lab has not run: no {folder / 'results.json'}"
        if os.environ.get("CALCAS_REQUIRE_BOOK") == "1":
            pytest.fail(message + " (CALCAS_REQUIRE_BOOK=1)")
        pytest.skip(message)
    svg = folder / "annotated_reliability.svg"
    assert svg.is_file(), f"{svg} is missing"
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and float(root.get("width").removesuffix("pt")) > 300
