"""The lab's scoring-rule demonstration and calibrator maps (calcas.lab.expected_score,
scoring_rule_curves, calibration_maps; calcas.chapters.lab's facts and prose of them), checked
against scikit-learn's log_loss and brier_score_loss, closed forms and direct fits."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

pytest.importorskip("altair")
sklearn_metrics = pytest.importorskip("sklearn.metrics")

import calcas  # noqa: E402
from calcas import lab  # noqa: E402
from calcas.chapters import lab as chapter  # noqa: E402


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.7, 1.0])
@pytest.mark.parametrize("q", [0.01, 0.3, 0.7, 0.99])
def test_expected_score_is_sklearns_loss_on_a_weighted_pair_of_outcomes(p, q):
    """The expectation over y ~ Bernoulli(p) is the sample-weighted mean over y = 1 (weight p)
    and y = 0 (weight 1 - p), which scikit-learn computes independently."""
    y, w = [1, 0], [p, 1 - p]
    probs = [q] * len(y)
    ll = sklearn_metrics.log_loss(y, probs, sample_weight=w, labels=[0, 1])
    bs = sklearn_metrics.brier_score_loss(y, probs, sample_weight=w)
    assert lab.expected_score(p, q, "nll") == pytest.approx(ll, rel=1e-9)
    assert lab.expected_score(p, q, "brier") == pytest.approx(bs, rel=1e-9)
    assert lab.expected_score(p, q, "absolute") == pytest.approx(p * (1 - q) + (1 - p) * q)


@pytest.mark.parametrize("p", [0.1, 0.35, 0.7, 0.9])
def test_proper_rules_are_lowest_at_the_truth_and_absolute_error_is_not(p):
    curves = lab.scoring_rule_curves(p, steps=999)
    best = {r: float(g.loc[g["expected"].idxmin(), "q"]) for r, g in curves.groupby("rule")}
    assert best["nll"] == pytest.approx(p) and best["brier"] == pytest.approx(p)
    assert best["absolute"] == (0.999 if p > 0.5 else 0.001)
    # strictly proper: every other report is strictly worse
    for rule in ("nll", "brier"):
        g = curves[curves["rule"] == rule]
        at_p = g.loc[np.isclose(g["q"], p), "expected"].iloc[0]
        assert (g.loc[~np.isclose(g["q"], p), "expected"] > at_p).all()


def test_expected_score_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="rule: expected one of"):
        lab.expected_score(0.5, 0.5, "ece")
    with pytest.raises(ValueError, match="q: the NLL of a report of exactly 0 or 1 is infinite"):
        lab.expected_score(0.5, 1.0, "nll")
    with pytest.raises(ValueError, match="p: expected probabilities"):
        lab.expected_score(1.5, 0.5, "brier")


@pytest.fixture(scope="module")
def over():
    m = calcas.make_synthetic(4_000, accuracy=(0.8,), confidence_scale=(2.0,), flip_rate=0.0, names=("o",),
                              seed=5)["o"]
    return m, m.cal_mask(seed=1)


def test_calibration_maps_are_the_calibrators_fitted_directly(over):
    m, cal = over
    maps = lab.calibration_maps(m.logits, m.label, cal=cal, n_bins=10, fine_bins=20, points=50)
    conf, pred = calcas.max_prob_confidence(m.logits[cal])
    right = (pred == m.label[cal]).astype(float)
    s = np.log(conf / (1 - conf))
    a, b = calcas.fit_platt(s, right)
    assert (maps.a, maps.b) == pytest.approx((a, b))
    assert maps.T == pytest.approx(calcas.fit_temperature(m.logits[cal], m.label[cal]))
    assert np.allclose(maps.platt["confidence"], expit(a * maps.platt["score"] + b))
    # the points: the reliability table of the raw confidence, its mean confidence's log-odds order kept
    table = calcas.reliability_table(conf, right, 10)
    assert np.allclose(maps.reliability["accuracy"], table["accuracy"])
    assert np.allclose(maps.reliability["mean_confidence"], table["mean_confidence"])
    assert maps.reliability["count"].sum() == cal.sum() and maps.temperature["score"].is_monotonic_increasing
    # the temperature line: mean of softmax(z / T)'s top-1 over rows sorted by s, 20 near-equal groups
    scaled = calcas.max_prob_confidence(m.logits[cal], maps.T)[0]
    order = np.argsort(conf, kind="stable")
    means = [scaled[g].mean() for g in np.array_split(order, 20)]
    assert np.allclose(maps.temperature["confidence"], means, atol=0.02)


def test_facts_and_prose_of_the_scoring_and_platt_sections(over):
    m, cal = over
    models = calcas.make_synthetic(2_000, accuracy=(0.8, 0.8, 0.8), confidence_scale=(2.0, 0.6, 1.0),
                                   names=chapter.MODEL_NAMES, flip_rate=0.0, seed=0)
    grids = chapter.precompute(models, n_bins=15, draws=3, bins_sample=600, seed=0)
    facts = chapter.compute(grids)
    sc = facts.scoring
    assert sc.best_report == {"nll": pytest.approx(0.7), "brier": pytest.approx(0.7), "absolute": pytest.approx(0.999)}
    assert sc.constant.ece == pytest.approx(0.0, abs=1e-12)  # the base rate is perfectly calibrated
    test = ~models["over-confident"].cal_mask(seed=0)
    right = models["over-confident"].verified[test]
    assert sc.base_rate == pytest.approx(right.mean())
    const = np.full(len(right), right.mean())
    assert sc.constant.nll == pytest.approx(sklearn_metrics.log_loss(right, const, labels=[0, 1]))
    assert sc.constant.brier == pytest.approx(sklearn_metrics.brier_score_loss(right, const))
    assert sc.proper_prefer_model and sc.ece_prefers_constant
    text = chapter.prose(facts)
    assert "the NLL (log loss) at q = 0.700; the Brier score at q = 0.700; the absolute error |q − y| at q = 0.999" \
        in text["scoring"]
    # the order is the rules', whatever order results.json keeps the keys in
    data = facts.to_dict()
    data["scoring"]["best_report"] = dict(reversed(list(data["scoring"]["best_report"].items())))
    assert chapter.prose(chapter.LabFacts.from_dict(data))["scoring"] == text["scoring"]
    assert "The ECE ranks the constant" in text["scoring"]
    flipped = chapter.LabFacts.from_dict({**facts.to_dict(), "scoring": {**facts.to_dict()["scoring"],
                                                                          "ece_prefers_constant": False}})
    assert "The ECE ranks the constant" not in chapter.prose(flipped)["scoring"]
    p = facts.platt
    assert f"σ({p.a:.2f} s − {abs(p.b):.2f})" in text["platt"] and f"T = {p.T:.2f}" in text["platt"]
