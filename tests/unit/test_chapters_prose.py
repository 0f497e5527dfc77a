"""Every chapter's prose, built from the facts of a second, synthetic data set, names only what
those facts hold: no model, data set, figure or table of another page (the book's MNIST-1D
models, the public models and data sets, the paper's figures) unless the facts carry it.

The synthetic models are called alpha, beta and gamma, on a data set called "second-set", of
which the paper says nothing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import calcas
from calcas.chapters import calibration, cascading, cleaning, estimators, lab, redux, summary
from calcas.params import write_results
from prose_checks import assert_names_from, assert_prose_numbers_from

#: Everything a page of this book could name that does not belong to the second data set.
ELSEWHERE = ["logreg", "mlp", "cnn", "cnn_b", "MNIST-1D", "mnist1d", "ResNet-50", "ResNet50", "ViT", "DINO", "SimCLR",
             "EVA02-L-448 (m38m)", "EVA02", "LLaMA-3-8B-Instruct", "Llama-3", "Llama-2", "Qwen-32B", "GPT-4", "Yi",
             "Falcon", "Mixtral", "ImageNet", "ImageNet-1k val", "MMLU", "ARC-Challenge", "ARC", "GSM8K", "MBPP",
             "BigCodeBench", "MMLU-Redux", "ReaL", "Table 1", "Table 2", "Table 3", "Figure 1", "Figure 2", "Figure 3",
             "Figure 4", "Fig. 1", "Fig. 2", "Fig. 3", "Fig. 4", "40%"]
NAMES = ("alpha", "beta", "gamma")


def _second_set(n: int = 2400) -> list[calcas.Records]:
    sets = calcas.make_synthetic(n, accuracy=(0.55, 0.75, 0.8), confidence_scale=(1.8, 1.3, 0.7), flip_rate=0.06,
                                 names=list(NAMES), seed=11)
    return [calcas.make_records(r.id, r.pred, label=r.label, logits=r.logits, is_noisy=r.is_noisy,
                                manifest={**r.manifest, "dataset": "second-set"}) for r in sets.values()]


@pytest.fixture(scope="module")
def sets():
    return _second_set()


def _check(text: dict[str, str], facts: dict) -> None:
    assert text and all(isinstance(t, str) for t in text.values())
    for t in text.values():
        assert_names_from(t, facts, ELSEWHERE)
        assert_prose_numbers_from(t, facts)


def test_calibration(sets):
    facts = calibration.compute(sets, n_boot=50)
    _check(calibration.prose(facts), facts.to_dict())
    assert "reports no calibration result on second-set" in calibration.prose(facts)["paper"]


def test_cascading(sets):
    facts = cascading.compute({"alpha → beta": sets[:2], "large-large: beta + gamma": sets[1:]}, n_boot=100)
    _check(cascading.prose(facts), facts.to_dict())


def test_cleaning(sets):
    facts = cleaning.compute(sets)
    _check(cleaning.prose(facts), facts.to_dict())


def test_redux():
    rng = np.random.default_rng(3)
    n = 600
    answer = rng.integers(0, 4, n)
    error = np.where(rng.random(n) < 0.1, "wrong_groundtruth", "ok")
    experts = {f"expert_{i}": np.where((error == "ok") & (rng.random(n) < 0.7), answer, rng.integers(0, 4, n))
               for i in range(5)}
    table = pd.DataFrame({"answer": answer, "error_type": error, **experts})
    facts = redux.compute(table, k=4, models=list(experts), dataset="second-set")
    _check(redux.prose(facts), facts.to_dict())


def test_summary(sets, tmp_path):
    write_results(tmp_path / "cal", calibration.compute(sets, n_boot=50).to_dict())
    write_results(tmp_path / "cas", cascading.compute({"alpha → beta": sets[:2]}, n_boot=100).to_dict())
    write_results(tmp_path / "clean", cleaning.compute(sets).to_dict())
    facts = summary.compute(tmp_path, ["cal", "cas", "clean"], section="05_results")
    _check(summary.prose(facts), facts.to_dict())


def test_lab():
    models = calcas.make_synthetic(3000, accuracy=(0.8, 0.8, 0.8), confidence_scale=(2.0, 0.6, 1.0),
                                   names=("over-confident", "under-confident", "calibrated"), flip_rate=0.0, seed=5)
    facts = lab.compute(lab.precompute(models, draws=20, bins_sample=500))
    _check(lab.prose(facts), facts.to_dict())


def test_estimators():
    facts = estimators.compute(draws=4, n_boot=20)
    _check(estimators.prose(facts), facts.to_dict())
