"""The lab notebook under papermill with odd parameters."""
from __future__ import annotations

import pytest

pytest.importorskip("altair")
pytest.importorskip("papermill")

from calcas.chapters.lab import LabFacts  # noqa: E402


def test_the_lab_runs_with_a_bin_count_outside_the_slider_and_few_samples(tmp_path):
    """n_bins = 1 and 40 lie outside the default 2..30 sweep; the sweep and sliders widen to hold
    them, and a small n gives an honest temperature verdict rather than an error."""
    import json
    from pathlib import Path

    import papermill
    root = Path(__file__).resolve().parents[2]
    for n_bins in (1, 40):
        out = tmp_path / f"lab_{n_bins}"
        out.mkdir()
        papermill.execute_notebook(str(root / "notebooks" / "08_lab.ipynb"), str(out / "lab.ipynb"),
                                   parameters={"n": 500, "n_bins": n_bins, "draws": 2, "bins_sample": 100,
                                               "output_dir": str(out)},
                                   kernel_name="python3", progress_bar=False, cwd=str(out))
        facts = LabFacts.from_dict(json.loads((out / "results.json").read_text()))
        assert facts.binning.n_bins == n_bins and facts.binning.answers_shown == 100
        assert (out / "annotated_reliability.svg").is_file()
