"""The chapters run with papermill at bin counts outside the explorers' grid of 2..30: n_bins = 1
and 31 used to fail after the computation, in an explorer cell ("1 is not in the n_bins grid
2..30"). Each run takes about 10 s on the MNIST-1D record sets of a full build."""
from __future__ import annotations

import pytest

from test_cleaning_chapters import MNIST, _need
from test_cleaning_chapters import _run as _run_notebook

MLP, CNN, CNN_B = (str(p) for p in MNIST)
SECTIONS = {
    "02_calibration": lambda n_bins: {"records": [MLP, CNN]},
    "03_cascading": lambda n_bins: {"pairs": {"small-large": [MLP, CNN]}, "K": min(8, n_bins)},
    "04_cleaning": lambda n_bins: {"experts": [MLP, CNN, CNN_B], "K": min(12, n_bins)},
}


@pytest.mark.parametrize("n_bins", [1, 31])
@pytest.mark.parametrize("section", list(SECTIONS))
def test_a_chapter_runs_at_a_bin_count_outside_the_slider_grid(tmp_path, section, n_bins):
    _need(MNIST)
    nb, results = _run_notebook(section, {**SECTIONS[section](n_bins), "n_bins": n_bins}, tmp_path)
    assert results["parameters"]["n_bins"] == n_bins
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    if section == "02_calibration":  # the slider offers the page's own bin count
        assert f'"value":{n_bins}' in "".join(o.get("data", {}).get("text/html", "") for c in nb.cells
                                              if c.cell_type == "code" for o in c.get("outputs", [])).replace(" ", "")
