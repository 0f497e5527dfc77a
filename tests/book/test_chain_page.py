"""The built chain page in Chromium: the max_drop slider moves the certified cascade."""
from __future__ import annotations

import pytest

pytest.importorskip("altair")


PAGE = "book/executed/10_chains/10_chains.html"


@pytest.fixture(scope="module")
def chains_page():
    from test_book_browser import served_page
    with served_page(PAGE, "chain") as page:
        yield page


def test_browser_max_drop_slider_moves_the_certified_cascade(chains_page):
    from test_lab_page import READOUT, _number, _set
    root = chains_page.query_selector('.calcas-explorer[aria-label^="calcas chain explorer"]')
    assert root is not None, "no chain explorer on the chain page"
    strict = " ".join(_set(chains_page, root, 0, 0).split())  # the read-out's lines joined again
    assert "max_drop = 0.000" in strict and "alone: nothing certified cheaper" in strict, strict
    loose = " ".join(_set(chains_page, root, 0, 0.05).split())
    assert "max_drop = 0.050" in loose and loose != strict, loose
    # the last model alone costs 1 of its own; a looser max_drop never certifies a dearer cascade
    cost = _number(r"cost ([0-9.]+) of", loose) if "cost " in loose else 1.0
    assert cost <= 1.0, loose
    assert " ".join(root.evaluate(READOUT).split()) == loose
