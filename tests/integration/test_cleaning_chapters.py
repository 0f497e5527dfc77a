"""The cleaning notebook (MNIST-1D experts, and the public ImageNet experts of
``calcas.run.PUBLIC_STEPS``) and the MMLU-Redux notebook, run with papermill: the results.json
each writes reads back into its facts, the prose on the page is the prose of that file, and the
runner's ``finish_chapter`` keeps exactly the sections the facts have something for.

Each run takes 10-40 s; the record sets come from a full build (skipped without one unless
CALCAS_REQUIRE_BOOK is set)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from calcas.chapters import cleaning, redux
from calcas.run import PUBLIC_STEPS, finish_chapter

papermill = pytest.importorskip("papermill")
ROOT = Path(__file__).resolve().parents[2]
EXECUTED = ROOT / "book" / "executed"
MNIST = [EXECUTED / "01_extract" / "records" / f"mnist1d_{m}.parquet" for m in ("mlp", "cnn", "cnn_b")]
PUBLIC = EXECUTED / "public" / "00_public_data"


def _need(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        if os.environ.get("CALCAS_REQUIRE_BOOK") == "1":
            pytest.fail(f"missing record sets {missing}: `make book` should have produced them")
        pytest.skip("no record sets yet: run `make book` first")


def _public(name: str) -> dict:
    step = next(s for s in PUBLIC_STEPS if s.folder == f"public/{name}")
    return {k: ([str(PUBLIC / p.replace("../00_public_data/", "")) for p in v] if k == "experts" else v)
            for k, v in step.params.items()}


def _run(notebook: str, parameters: dict, folder: Path) -> tuple[nbformat.NotebookNode, dict]:
    out = folder / "out.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"), str(out),
                               parameters={**parameters, "output_dir": "."}, cwd=str(folder), kernel_name="python3",
                               progress_bar=False)
    results = json.loads((folder / "results.json").read_text())
    finish_chapter(out, None, results)
    return nbformat.read(out, as_version=4), results


def _prose(nb: nbformat.NotebookNode) -> list[str]:
    return [o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("metadata", {}).get("calcas") == "prose"]


def test_cleaning_on_mnist1d(tmp_path):
    _need(MNIST)
    nb, results = _run("04_cleaning", {"experts": [str(p) for p in MNIST]}, tmp_path)
    facts = cleaning.CleaningFacts.from_dict(results)
    text = cleaning.prose(facts)
    assert _prose(nb) == [text[k] for k in ("flags", "trend", "versus_cl", "table2", "paper")]
    assert facts.paper_dataset is None and "makes no cleaning claim about MNIST-1D" in text["paper"]
    assert facts.versus_cl is not None and facts.precision_falls is not None
    assert all(facts.shown.values())


def test_cleaning_on_public_imagenet(tmp_path):
    parameters = _public("imagenet_cleaning")
    _need([Path(p) for p in parameters["experts"]])
    nb, results = _run("04_cleaning", parameters, tmp_path)
    facts = cleaning.CleaningFacts.from_dict(results)
    text = cleaning.prose(facts)
    # top-1 confidences only: no Confident Learning, so its section is dropped from the page
    assert not facts.shown["table3"] and facts.versus_cl is None
    assert _prose(nb) == [text[k] for k in ("flags", "trend", "table2", "paper")]
    assert facts.paper_dataset == "imagenet" and facts.paper_claims["ours_above_cl"] == "not_measured"
    assert "90.116%" in text["paper"]


def test_mmlu_redux(tmp_path):
    table = PUBLIC / "records" / "mmlu_redux.parquet"
    _need([table])
    nb, results = _run("06_mmlu_redux", {"table": str(table)}, tmp_path)
    facts = redux.ReduxFacts.from_dict(results)
    text = redux.prose(facts)
    assert _prose(nb) == [text[k] for k in ("flags", "trend", "errors", "paper")]
    assert facts.paper_dataset == "mmlu" and len(facts.experts) == facts.k == 14
