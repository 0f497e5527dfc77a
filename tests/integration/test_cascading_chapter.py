"""The cascading notebook run with papermill, on the MNIST-1D pairs and on the public ARC pairs of
``calcas.run.PUBLIC_STEPS``: the results.json it writes reads back into its facts, the prose on
the page is the prose of that file, and the runner's ``finish_chapter`` keeps the exercises only
where the facts show them.

Each run takes about 10 s; the record sets come from a full build (skipped without one unless
CALCAS_REQUIRE_BOOK is set)."""
from __future__ import annotations

from pathlib import Path

import nbformat

from calcas.chapters import cascading
from calcas.run import PUBLIC_STEPS
from test_cleaning_chapters import EXECUTED, PUBLIC, _need, _prose
from test_cleaning_chapters import _run as _run_notebook

MNIST = EXECUTED / "01_extract" / "records"


def _run(parameters: dict, folder: Path) -> tuple[nbformat.NotebookNode, dict]:
    return _run_notebook("03_cascading", parameters, folder)


def _check_page(nb: nbformat.NotebookNode, results: dict) -> cascading.CascadingFacts:
    facts = cascading.CascadingFacts.from_dict(results)
    assert facts.to_dict() == results
    text = cascading.prose(facts)
    assert _prose(nb) == [text["pairs"], text["beside_paper"]]
    exercises = any("{exercise}" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert exercises is facts.shown["exercises"]
    return facts


def test_cascading_on_mnist1d(tmp_path):
    paths = {"small-large": [MNIST / "mnist1d_mlp.parquet", MNIST / "mnist1d_cnn.parquet"],
             "large-large": [MNIST / "mnist1d_cnn.parquet", MNIST / "mnist1d_cnn_b.parquet"]}
    _need([p for pair in paths.values() for p in pair])
    nb, results = _run({"pairs": {k: [str(p) for p in v] for k, v in paths.items()}}, tmp_path)
    facts = _check_page(nb, results)
    assert facts.paper == [] and facts.without_claims == {"mnist1d": ["small-large", "large-large"]}
    assert facts.shown["exercises"]
    assert {p.cal_choice for p in facts.pairs.values()} <= set(cascading.CHOICES)


def test_cascading_on_public_arc(tmp_path):
    step = next(s for s in PUBLIC_STEPS if s.folder == "public/arc_cascading")
    pairs = {k: [str(PUBLIC / p.replace("../00_public_data/", "")) for p in v] for k, v in step.params["pairs"].items()}
    _need([Path(p) for pair in pairs.values() for p in pair])
    nb, results = _run({"pairs": pairs}, tmp_path)
    facts = _check_page(nb, results)
    assert [c.dataset for c in facts.paper] == ["arc"] and not facts.without_claims
    assert not facts.shown["exercises"]
    # the pairs whose cal-chosen K is 0 read as no cascade, not as a difference within noise
    alone = [name for name, p in facts.pairs.items() if p.cal_choice == "second_alone"]
    assert alone and all(f"no cascade chosen: {facts.pairs[n].second} alone" in _prose(nb)[0] for n in alone)
