"""The built book's prose is what its results.json says: every paragraph a chapter page shows is
one its chapter module writes from the facts read back from the page's results.json, and every
number in it is one of those facts or one of the paper's (calcas/data/paper_reference.json)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from calcas.chapters import calibration, cascading, chains, cleaning, estimators, lab, redux, summary
from calcas.chapters.common import paper_reference
from prose_checks import assert_prose_numbers_from

ROOT = Path(__file__).resolve().parents[2]
EXECUTED = ROOT / "book" / "executed"
#: notebook -> (chapter module, its facts class)
CHAPTERS = {"02_calibration": (calibration, calibration.CalibrationFacts),
            "03_cascading": (cascading, cascading.CascadingFacts),
            "04_cleaning": (cleaning, cleaning.CleaningFacts),
            "05_results": (summary, summary.SummaryFacts), "07_public_summary": (summary, summary.SummaryFacts),
            "06_mmlu_redux": (redux, redux.ReduxFacts), "08_lab": (lab, lab.LabFacts),
            "09_ece_estimators": (estimators, estimators.EstimatorsFacts), "10_chains": (chains, chains.ChainFacts)}


def _shown_prose(nb) -> list[str]:
    return [o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("metadata", {}).get("calcas") == "prose"]


def test_every_chapter_pages_prose_is_what_its_results_say():
    notebooks = [p for p in EXECUTED.rglob("*.ipynb") if p.stem in CHAPTERS] if EXECUTED.exists() else []
    if not notebooks:
        if os.environ.get("CALCAS_REQUIRE_BOOK"):
            pytest.fail("no executed chapters under book/executed: run `make book` first")
        pytest.skip("the book is not built")
    checked = 0
    for path in notebooks:
        results = json.loads((path.parent / "results.json").read_text())
        if results.get("data") == "missing":
            continue
        module, kind = CHAPTERS[path.stem]
        written = set(module.prose(kind.from_dict(results)).values())
        shown = _shown_prose(nbformat.read(path, as_version=4))
        assert shown, f"{path}: no generated prose"
        for text in shown:
            assert text in written, f"{path}: a paragraph on the page is not what its results.json says: {text[:200]}"
            assert_prose_numbers_from(text, results, paper_reference())  # the paper's numbers come from its file
        checked += 1
    assert checked
