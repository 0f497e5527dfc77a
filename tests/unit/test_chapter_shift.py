"""calcas.chapters.shift on synthetic shifts whose truth is known: facts that round-trip
results.json, numbers recomputed by independent means, verdicts and prose from the facts only."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

import calcas
from calcas.chapters import shift as chapter
from calcas.chapters.common import write_facts


def _records(conf, correct, name):
    n = len(conf)
    return calcas.make_records([f"r{i}" for i in range(n)], np.zeros(n, dtype=int), verified=correct, confidence=conf,
                               manifest={"model": name})


def _pair(seed, n=1500, shift=0.0, name="m"):
    """Source calibrated; target confidences moved by ``shift`` in logit, correctness calibrated
    on the source's map (so the source fit is off on the target by the move)."""
    rng = np.random.default_rng(seed)
    z_s, z_t = rng.normal(0.8, 1.2, n), rng.normal(0.8 + shift, 1.2, n)
    p_s, p_t = 1 / (1 + np.exp(-z_s)), 1 / (1 + np.exp(-z_t))
    v_s, v_t = (rng.random(n) < p_s).astype(float), (rng.random(n) < 1 / (1 + np.exp(-(z_t - shift)))).astype(float)
    return _records(np.clip(p_s, 1e-6, 1 - 1e-6), v_s, name), _records(np.clip(p_t, 1e-6, 1 - 1e-6), v_t, name)


@pytest.fixture(scope="module")
def facts():
    shifts = {"moved": {"a": _pair(0, shift=1.0, name="a"), "b": _pair(1, shift=1.0, name="b")},
              "still": {"a": _pair(2, name="a"), "b": _pair(3, name="b")}}
    info = {"moved": chapter.ShiftInfo("s", "t", ["a", "b"], False), "still": chapter.ShiftInfo("s", "t", ["a", "b"], True)}
    a, b = shifts["moved"]["a"], shifts["moved"]["b"]
    chains = {"a → b": ("moved", [a[0], b[0]], [a[1], b[1]], ["a", "b"], [1.0, 10.0])}
    return chapter.compute(shifts, info, chains=chains, n_boot=100, n_tests=40, power_rows=300, sizes=(25, 100, 400),
                           n_repeats=5, n_splits=10)


def test_facts_round_trip(facts, tmp_path):
    back = write_facts(facts, tmp_path)
    assert chapter.ShiftFacts.from_dict(json.loads((tmp_path / "results.json").read_text())).to_dict() == back.to_dict()
    assert set(chapter.prose(back)) == {"transfer", "tests", "accuracy", "curves", "cascades"}
    t = chapter.tables(back)
    assert set(t["transfer"]) == {"moved", "still"} and list(t["transfer"]["moved"].index) == ["a", "b"]


def test_shift_test_and_accuracy_by_independent_means(facts):
    shifts = {"a": _pair(0, shift=1.0, name="a")}
    src, tgt = shifts["a"]
    platt = calcas.PlattScaling().fit(src.platt_score(), src.verified)
    c_s, c_t = platt.transform(src.platt_score()), platt.transform(tgt.platt_score())
    test = next(t for t in facts.tests if t.shift == "moved" and t.model == "a")
    assert test.statistic == pytest.approx(stats.ks_2samp(c_s, c_t).statistic)
    assert test.mean_difference == pytest.approx(c_t.mean() - c_s.mean())
    acc = next(x for x in facts.accuracy if x.shift == "moved" and x.model == "a")
    assert acc.truth.value == pytest.approx(tgt.verified.mean())
    assert acc.estimates["ac"].value == pytest.approx(c_t.mean())
    threshold = np.quantile(c_s, 1 - src.verified.mean())
    assert acc.estimates["atc"].value == pytest.approx(np.mean(c_t > threshold))
    best = min(abs(e) for e in acc.errors.values())
    assert abs(acc.errors[acc.closest]) <= best + 1e-9
    assert acc.estimates["doc"].value == pytest.approx(acc.estimates["ac"].value)  # Platt on all source rows
    if abs(acc.errors["ac"]) <= best + 1e-9:
        assert acc.closest == "ac"  # a tie goes to the first method


def test_the_moved_shift_is_seen_and_the_still_one_is_not(facts):
    moved = [t for t in facts.tests if t.shift == "moved"]
    still = [t for t in facts.tests if t.shift == "still"]
    assert all(t.p_value < 1e-6 and t.power > 0.9 for t in moved)
    assert all(t.statistic < 0.08 for t in still)
    # the source fit is worse than a fit on the target where the confidences moved
    assert all(t.source_minus_target.outcome == "above" for t in facts.transfer if t.shift == "moved")


def test_curves_and_cascade_facts(facts):
    curve = next(c for c in facts.curves if c.shift == "moved" and c.model == "a")
    source = curve.ece_mean[curve.fit.index("source")]
    for fit, m in curve.beats_source_at.items():
        rows = [(mm, e) for f, mm, e in zip(curve.fit, curve.m, curve.ece_mean) if f == fit]
        below = [mm for mm, e in rows if e < source]
        assert m == (min(below) if below else None)
    c = facts.cascades[0]
    assert c.chain == "a → b" and [r.m for r in c.recertified] == [100, 200, 400, 800]
    assert 0 <= c.source_violations.estimate.value <= 1 and c.target_violations.reference == 0.1


def test_prose_names_only_what_the_facts_hold(facts):
    text = chapter.prose(facts)
    assert "**moved**" in text["transfer"] and "**still**" in text["transfer"]
    assert "2 of 2 models" in text["tests"] or "rejects one distribution at 0.05 for" in text["tests"]
    assert "**a → b**" in text["cascades"]
    assert "1 models" not in " ".join(text.values())  # numbers agree with their nouns
