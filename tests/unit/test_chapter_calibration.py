"""calcas.chapters.calibration: numbers against direct calls, every verdict on a case where the
right answer is known, facts that round-trip results.json, and prose that states only facts."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from calcas.chapters.common import signed_interval_text

import calcas
from calcas.chapters import calibration as chapter
from calcas.chapters.common import Estimate, paper_reference
from calcas.params import write_results
from prose_checks import assert_names_from, assert_prose_numbers_from

#: Names a calibration page could mention; a page may name only those its facts hold.
NAMES = ["EVA02-L-448 (m38m)", "LLaMA-3-8B-Instruct", "ImageNet-1k val", "MMLU", "ResNet-50", "ViT", "DINO",
         "SimCLR", "mnist1d", "logreg", "mlp", "cnn", "cnn_b", "Llama-3", "Table 1", "Figure 1"]


def _flipped(n: int = 3000, scales=(2.0, 0.5, 1.0), flip: float = 0.15, seed: int = 0,
             dataset: str = "toy") -> list[calcas.Records]:
    """Logit record sets whose given labels include flips, with the true labels kept
    (``valid_labels``): one model per scale (> 1 over-confident, < 1 under-confident)."""
    rng = np.random.default_rng(seed)
    C = 5
    true = rng.integers(0, C, n)
    flipped = rng.random(n) < flip
    label = np.where(flipped, (true + rng.integers(1, C, n)) % C, true)
    ids = [f"r{i:05d}" for i in range(n)]
    sets = []
    for j, scale in enumerate(scales):
        logits = scale * (2.0 * np.eye(C)[true] + rng.standard_normal((n, C)))
        sets.append(calcas.make_records(ids, logits.argmax(1), label=label, logits=logits,
                                        valid_labels=[[t] for t in true], is_noisy=flipped,
                                        manifest={"model": f"m{j}", "dataset": dataset}))
    return sets


def _calibrated(n: int = 6000, seed: int = 7) -> calcas.Records:
    """Confidences whose answers are right with exactly that probability: perfectly calibrated."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.4, 1.0, n)
    right = rng.random(n) < c
    return calcas.make_records([f"s{i:05d}" for i in range(n)], np.where(right, 1, 0), label=np.ones(n, int),
                               confidence=c, manifest={"model": "calibrated", "dataset": "toy"})


@pytest.fixture(scope="module")
def clean():
    """Clean labels: an over-confident model (logits x 2.5), an under-confident one (x 0.5), and
    confidence-only answers right with exactly their confidence."""
    sets = calcas.make_synthetic(6000, accuracy=(0.8, 0.8), confidence_scale=(2.5, 0.5), flip_rate=0.0,
                                 names=["over", "under"], seed=2, correlation=0.0)
    return [sets["over"], _calibrated(), sets["under"]]


@pytest.fixture(scope="module")
def clean_facts(clean):
    return chapter.compute(clean, n_boot=200)


@pytest.fixture(scope="module")
def flipped_facts():
    return chapter.compute(_flipped(), n_boot=200)


def test_numbers_match_direct_calls(clean, clean_facts):
    r = clean[0]
    cal = r.cal_mask()
    fit = calcas.calibrate_records(r, cal)
    m = clean_facts.models["over"]
    assert m.method == "temperature" and m.temperature == pytest.approx(fit.calibrator.temperature_)
    assert m.test.ece_before == pytest.approx(calcas.ece(fit.raw[~cal], r.verified[~cal]))
    assert m.test.ece_after == pytest.approx(calcas.ece(fit.calibrated[~cal], r.verified[~cal]))
    interval = calcas.ece_interval(fit.calibrated[~cal], r.verified[~cal], n_boot=200, seed=0)
    assert m.test.true_ece_after.as_list() == pytest.approx(list(interval))
    assert m.test.true_ece_after.interval == "ece_interval"
    before = calcas.ece_interval(fit.raw[~cal], r.verified[~cal], n_boot=200, seed=0)
    assert m.test.change.estimate.as_list() == pytest.approx(
        [before[0] - interval[0], before[1] - interval[2], before[2] - interval[1]])
    assert m.test.change.estimate.interval == "ece_difference_interval"
    assert m.carried_over.estimate.interval == "ece_halves_interval"
    assert m.n_cal + m.n_test == r.n and m.test.accuracy == pytest.approx(r.verified[~cal].mean())
    table = calcas.reliability_table(fit.raw[~cal], r.verified[~cal])
    assert m.test.reliability["uncalibrated"]["count"] == table["count"].tolist()
    assert m.cal.true_ece_before is None and m.cal.change is None  # the cal half decides only the carry-over


def test_verdicts_on_models_whose_answer_is_known(clean_facts):
    over, calibrated, under = (clean_facts.models[n] for n in ("over", "calibrated", "under"))
    for m in (over, under):  # a temperature removes most of a too sharp or too soft model's error
        assert m.test.change.outcome == "above" and m.test.calibrated_before.outcome == "above"
        assert m.test.true_ece_after.high < m.test.true_ece_before.low
    assert calibrated.method == "platt"  # confidences only
    assert calibrated.test.calibrated_before.outcome == "within"  # nothing to fix
    assert calibrated.test.change.outcome == "within"
    assert "There was little to fix." in next(p for p in chapter.prose(clean_facts)["models"].split("\n\n")
                                                if p.startswith("**calibrated**"))
    for m in (over, calibrated, under):  # one population, two halves: the calibration carries over
        assert m.carried_over.outcome == "within"
        assert m.test.monotone_before


def test_change_and_carry_over_outcomes_from_known_intervals():
    assert chapter._change((0.05, 0.04, 0.06), (0.10, 0.09, 0.11)).outcome == "below"  # raised
    assert chapter._change((0.10, 0.09, 0.11), (0.05, 0.04, 0.06)).outcome == "above"  # lowered
    assert chapter._change((0.10, 0.07, 0.12), (0.09, 0.06, 0.11)).outcome == "within"


def test_flipped_labels_are_named_as_the_reason(flipped_facts):
    """Given labels with 15% flips cap accuracy: calibrating on them cannot reach the diagonal,
    while a temperature fitted on the true labels can (against them)."""
    f = flipped_facts
    assert f.shown["true_labels"] and f.lesson is not None
    for m in f.models.values():
        tl = m.true_labels
        assert tl.fit_true_change.estimate.interval == "ece_difference_interval"
        assert tl.labels_are_the_reason == (m.test.change.outcome != "above" and tl.given_vs_true.outcome == "above")
    reasons = [n for n, m in f.models.items() if m.true_labels.labels_are_the_reason]
    assert reasons, "no model whose calibration the flipped labels defeat"
    text = chapter.prose(f)["models"]
    for name in reasons:
        paragraph = next(p for p in text.split("\n\n") if p.startswith(f"**{name}**"))
        assert "The labels are the reason" in paragraph
    assert f.showcase.verifier == "true_labels"
    assert f.lesson.model == chapter.choose_lesson(f.models)


def test_showcase_is_chosen_by_the_results_not_the_names(clean_facts):
    f = clean_facts  # "calibrated" is the only real (not synthetic) model: it is shown, not the largest fall
    drops = {n: m.test.ece_before - m.test.ece_after for n, m in f.models.items()}
    assert max(drops, key=drops.get) != "calibrated"
    assert f.showcase.model == "calibrated" and f.showcase.verifier == "given_labels"
    synthetic_only = {n: m for n, m in f.models.items() if m.dataset == "synthetic"}
    assert chapter.choose_showcase(synthetic_only) == (max(synthetic_only, key=drops.get), "given_labels")
    assert f.showcase.ece_after == f.models[f.showcase.model].test.ece_after


def test_facts_round_trip_results_json(clean_facts, flipped_facts, tmp_path):
    for facts in (clean_facts, flipped_facts):
        written = json.loads(write_results(tmp_path, facts.to_dict()).read_text())
        again = chapter.CalibrationFacts.from_dict(written)
        assert again.to_dict() == written
        assert isinstance(again.models[again.order[0]].test.change.estimate, Estimate)
        assert chapter.prose(again) == chapter.prose(chapter.CalibrationFacts.from_dict(written))
        # results.json sorts its keys: the figures drawn from facts read back keep the series' order
        legend = [t.get_text() for t in chapter.showcase_figure(again).legends[0].get_texts()]
        assert legend == ["uncalibrated", "calibrated"]


def test_prose_states_only_facts(clean_facts, flipped_facts):
    for facts in (clean_facts, flipped_facts):
        data = facts.to_dict()
        for text in chapter.prose(facts).values():
            assert_prose_numbers_from(text, data)
            assert_names_from(text, data, NAMES)
            assert "nan" not in text


def test_paper_is_quoted_only_for_its_own_data_set(tmp_path):
    """A chapter on a data set of the paper compares with the paper's Table 1 row for it; one on
    another data set says the paper has none."""
    toy = chapter.compute(_flipped(n=1200, dataset="toy"), n_boot=50)
    assert toy.paper == [] and toy.datasets_without_claims == ["toy"]
    assert "reports no calibration result on toy" in chapter.prose(toy)["paper"]
    imagenet = chapter.compute(_flipped(n=1200, dataset="imagenet-1k-val"), n_boot=50)
    claim = imagenet.paper[0]
    ref = paper_reference()["datasets"]["imagenet"]["calibration"]
    assert (claim.dataset, claim.ece_before, claim.ece_after) == ("imagenet", ref["test"]["ece_before"],
                                                                  ref["test"]["ece_after"])
    assert sorted(claim.lowered + claim.raised + claim.within) == sorted(imagenet.order)
    text = chapter.prose(imagenet)["paper"]
    assert "EVA02-L-448 (m38m) on ImageNet-1k val" in text and claim.agreement in text
    assert "MMLU" not in text


def test_tables_figures_and_explorer(clean_facts):
    t = chapter.tables(clean_facts)
    assert list(t["table1"].index.get_level_values(0).unique()) == clean_facts.order
    assert "change [95%]" in t["true_ece"].columns and t["true_labels"].empty
    # one cell per estimate, the digits the prose gives it: the test half's change reads as the verdict does
    m = clean_facts.models[clean_facts.order[0]]
    cell = t["true_ece"].loc[(m.name, "test"), "change [95%]"].replace("\u00a0", " ")
    assert cell == signed_interval_text(m.test.change.estimate, 3)
    assert t["true_ece"].loc[(m.name, "cal"), "true ECE before [95%]"] == "—"  # not computed on cal
    assert chapter.lesson_figure(clean_facts) is None
    assert len(chapter.reliability_figure(clean_facts).axes) == 2 * len(clean_facts.order)
    spec = chapter.explorer(clean_facts).to_dict()
    assert spec["params"][0]["value"] == clean_facts.parameters["n_bins"]


def test_bad_inputs_are_named(clean):
    with pytest.raises(ValueError, match=r"method: expected 'auto', 'temperature' or 'platt'"):
        chapter.compute(clean[:1], calibration="isotonic", n_boot=10)
    with pytest.raises(ValueError, match=r"models: no models to choose from"):
        chapter.choose_showcase({})


def test_only_the_showcased_model_points_at_the_bin_slider(clean_facts):
    """The bin slider shows the showcased model alone: a flat ECE is said to be expected 'under the
    bin slider' only in that model's paragraph, whichever models have every bin over-confident."""
    f = clean_facts
    models = {n: dataclasses.replace(m, test=dataclasses.replace(m.test, every_bin_overconfident=True))
              for n, m in f.models.items()}
    paragraphs = chapter.prose(dataclasses.replace(f, models=models))["models"].split("\n\n")
    for name in f.order:
        (text,) = [p for p in paragraphs if p.startswith(f"**{name}**")]
        assert "whatever the number of bins" in text
        assert ("under the bin slider" in text) == (name == f.showcase.model)


def test_the_spearman_correlation_is_linked_once_and_only_for_the_book(clean_facts):
    """The book's prose links the first stated Spearman correlation to the glossary; the
    own-data report (markdown-it, no Sphinx) gets the same sentences without the role."""
    book = chapter.prose(clean_facts)["models"]
    plain = chapter.prose(clean_facts, terms=False)
    role = "{term}`Spearman correlation <Spearman monotonicity>`"
    assert book.count(role) == 1 and book.index(role) < book.index("Spearman correlation of")
    assert all("{term}" not in text for text in plain.values())
    assert plain["models"] == book.replace(role, "Spearman correlation")
