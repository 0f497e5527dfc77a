"""Tests of calcas.cascade (SPEC §3, Algorithm 1).

Every number is checked against a reference written out here: a slow, loop-by-loop
implementation of Algorithm 1, hand-computed tiny cases, and a brute-force oracle.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax as scipy_softmax

import calcas
from calcas import AdvantageRouter, advantage_bins, cascade_curve, cascade_curves, oracle_accuracy


# ----------------------------------------------------------------------------------------
# Slow reference implementation of Algorithm 1 (SPEC §3), written independently of calcas.
# ----------------------------------------------------------------------------------------

def ref_edges(values, n_bins):
    """Equal-count bins: sort, np.array_split the sorted values; a split point between two
    equal values walks outwards, one index at a time, to the first index j (trying lower
    first) where s[j - 1] < s[j]; repeated split points count once; midpoints between groups."""
    s = np.sort(np.asarray(values, dtype=float))
    n = len(s)
    splits = []
    for j in np.cumsum([len(g) for g in np.array_split(s, n_bins)])[:-1]:
        for step in range(n):
            found = [i for i in (j - step, j + step) if 0 < i < n and s[i - 1] < s[i]]
            if found:
                if found[0] not in splits:
                    splits.append(found[0])
                break
    return [(s[i - 1] + s[i]) / 2.0 for i in sorted(splits)]


def ref_bin_of(value, interior):
    """Bin index of one value: the number of interior edges <= value (an edge goes upper)."""
    b = 0
    for e in interior:
        if value >= e:
            b += 1
    return b


def ref_fit(conf_first_cal, conf_second_cal, n_bins):
    """Steps 1-3: edges, per-bin advantage, and the bin order (ties: higher mean first)."""
    interior = ref_edges(conf_first_cal, n_bins)
    n_bins = len(interior) + 1  # the bins formed
    members = [[] for _ in range(n_bins)]
    for i, c in enumerate(conf_first_cal):
        members[ref_bin_of(c, interior)].append(i)
    mean_first, mean_second, advantage = [], [], []
    for b in range(n_bins):
        if members[b]:
            ms = sum(conf_first_cal[i] for i in members[b]) / len(members[b])
            ml = sum(conf_second_cal[i] for i in members[b]) / len(members[b])
            mean_first.append(ms)
            mean_second.append(ml)
            advantage.append(ml - ms)
        else:
            mean_first.append(None)
            mean_second.append(None)
            advantage.append(None)

    def key(b):
        if advantage[b] is None:  # empty bins go last
            return (1, 0.0, 0.0)
        return (0, advantage[b], -mean_first[b])

    order = sorted(range(n_bins), key=key)
    return interior, order, advantage, mean_first


def ref_route(conf_first_test, interior, order, K):
    kept = set(order[:K])  # K beyond the bins formed keeps them all
    return np.array([ref_bin_of(c, interior) in kept for c in conf_first_test])


def ref_cascade_accuracy(route, correct_first, correct_second):
    total = 0.0
    for r, a, b in zip(route, correct_first, correct_second):
        total += a if r else b
    return total / len(route)


def synthetic_pair(n=2000, seed=0, accuracy=(0.7, 0.9), scale=(1.5, 1.0), correlation=0.3):
    """Aligned first/second model confidences and correctness from make_synthetic, split in half."""
    sets = calcas.make_synthetic(n, n_classes=5, accuracy=accuracy, confidence_scale=scale,
                                 correlation=correlation, flip_rate=0.05, seed=seed)
    first, second = sets["model_0"], sets["model_1"]
    # confidences computed here with scipy, not with calcas
    conf_first = scipy_softmax(first.logits.astype(float), axis=1).max(axis=1)
    conf_second = scipy_softmax(second.logits.astype(float), axis=1).max(axis=1)
    correct_first = (first.logits.argmax(axis=1) == first.label).astype(float)
    correct_second = (second.logits.argmax(axis=1) == second.label).astype(float)
    rng = np.random.default_rng(seed + 100)
    cal = np.zeros(n, dtype=bool)
    cal[rng.permutation(n)[: n // 2]] = True
    return conf_first, conf_second, correct_first, correct_second, cal


# ----------------------------------------------------------------------------------------
# cascade_curve basics
# ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair():
    return synthetic_pair()


def test_curve_endpoints_are_the_single_models(pair):
    cf, cs, vf, vs, cal = pair
    n_bins = 15
    curve = cascade_curve(cf[cal], cs[cal], cf[~cal], vf[~cal], vs[~cal], n_bins=n_bins)
    assert list(curve["K"]) == list(range(n_bins + 1))
    acc_first = vf[~cal].sum() / (~cal).sum()
    acc_second = vs[~cal].sum() / (~cal).sum()
    assert curve["accuracy"].iloc[0] == pytest.approx(acc_second, abs=1e-12)   # K=0: second alone
    assert curve["accuracy"].iloc[-1] == pytest.approx(acc_first, abs=1e-12)   # K=N: first alone
    assert curve["p_small"].iloc[0] == 0.0
    assert curve["p_small"].iloc[-1] == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(curve["p_small"].to_numpy()) >= 0)
    assert acc_first != pytest.approx(acc_second)  # the endpoints really are different


def test_router_and_every_curve_row_match_slow_reference(pair):
    cf, cs, vf, vs, cal = pair
    for n_bins in (1, 4, 15):
        router = AdvantageRouter(n_bins).fit(cf[cal], cs[cal])
        interior, order, advantage, mean_first = ref_fit(cf[cal], cs[cal], n_bins)
        np.testing.assert_allclose(router.edges_[1:-1], interior, rtol=0, atol=1e-15)
        np.testing.assert_allclose(router.advantage_, advantage, rtol=0, atol=1e-12)
        np.testing.assert_allclose(router.mean_first_, mean_first, rtol=0, atol=1e-12)
        assert list(router.order_) == order
        curve = cascade_curve(cf[cal], cs[cal], cf[~cal], vf[~cal], vs[~cal], n_bins=n_bins)
        n_test = int((~cal).sum())
        for K in range(n_bins + 1):
            expected_route = ref_route(cf[~cal], interior, order, K)
            got_route = router.route(cf[~cal], K)
            np.testing.assert_array_equal(got_route, expected_route)
            row = curve.iloc[K]
            assert row["K"] == K
            assert row["large_calls_saved"] == expected_route.sum()
            assert row["p_small"] == pytest.approx(expected_route.sum() / n_test, abs=1e-12)
            assert row["accuracy"] == pytest.approx(
                ref_cascade_accuracy(expected_route, vf[~cal], vs[~cal]), abs=1e-12)


def test_reference_agreement_on_uniform_random_confidences():
    rng = np.random.default_rng(7)
    n_cal, n_test, n_bins = 301, 257, 7   # 301 is not a multiple of 7: unequal group sizes
    cf_cal, cs_cal = rng.random(n_cal), rng.random(n_cal)
    cf_test = rng.random(n_test)
    vf, vs = (rng.random(n_test) < 0.6).astype(float), (rng.random(n_test) < 0.8).astype(float)
    interior, order, _, _ = ref_fit(cf_cal, cs_cal, n_bins)
    curve = cascade_curve(cf_cal, cs_cal, cf_test, vf, vs, n_bins=n_bins)
    router = AdvantageRouter(n_bins).fit(cf_cal, cs_cal)
    # equal-count: sizes on cal differ by at most one (no ties in continuous data)
    assert router.count_.max() - router.count_.min() <= 1
    assert router.count_.sum() == n_cal
    for K in range(n_bins + 1):
        route = ref_route(cf_test, interior, order, K)
        np.testing.assert_array_equal(router.route(cf_test, K), route)
        assert curve["accuracy"].iloc[K] == pytest.approx(ref_cascade_accuracy(route, vf, vs), abs=1e-12)
        assert curve["large_calls_saved"].iloc[K] == route.sum()


def test_reference_agreement_with_tied_confidences():
    # confidences on a coarse grid: runs of ties straddle array_split boundaries; they are
    # not split, so fewer bins than asked for are formed, none empty
    rng = np.random.default_rng(12)
    cf_cal = rng.integers(0, 5, 200) / 4
    cs_cal = rng.integers(0, 9, 200) / 8
    cf_test = rng.integers(0, 5, 150) / 4
    vf, vs = rng.integers(0, 2, 150).astype(float), rng.integers(0, 2, 150).astype(float)
    n_bins = 8
    router = AdvantageRouter(n_bins).fit(cf_cal, cs_cal)
    interior, order, advantage, _ = ref_fit(cf_cal, cs_cal, n_bins)
    assert router.n_bins_ == len(interior) + 1 == 5    # one bin per grid value here
    assert len(router.edges_) == router.n_bins_ + 1
    for attr in ("count_", "mean_first_", "mean_second_", "advantage_", "order_"):
        assert len(getattr(router, attr)) == router.n_bins_
    assert (router.count_ > 0).all() and router.count_.sum() == 200
    np.testing.assert_allclose(router.edges_[1:-1], interior, rtol=0, atol=1e-15)
    np.testing.assert_allclose(router.advantage_, advantage, rtol=0, atol=1e-12)
    assert list(router.order_) == order
    curve = cascade_curve(cf_cal, cs_cal, cf_test, vf, vs, n_bins=n_bins)
    assert list(curve["K"]) == list(range(router.n_bins_ + 1))
    for K in range(n_bins + 1):   # K up to the n_bins asked for is accepted
        route = ref_route(cf_test, interior, order, K)
        np.testing.assert_array_equal(router.route(cf_test, K), route)
        assert len(router.kept_bins(K)) == min(K, router.n_bins_)
        row = curve.iloc[min(K, router.n_bins_)]
        assert row["accuracy"] == pytest.approx(ref_cascade_accuracy(route, vf, vs), abs=1e-12)
        assert row["large_calls_saved"] == route.sum()
    with pytest.raises(ValueError, match=r"^K: must be in \[0, 8\] \(the number of bins\), got 9"):
        router.route(cf_test, 9)


def llm_like_pair(n, seed):
    """First-model confidences 58% exactly 1.0, the rest continuous; a second model with fewer ties."""
    rng = np.random.default_rng(seed)
    cf = np.where(rng.random(n) < 0.58, 1.0, rng.beta(5, 2, n) * 0.999)
    cs = np.where(rng.random(n) < 0.2, 1.0, rng.random(n))
    vf = (rng.random(n) < np.where(cf == 1.0, 0.85, cf * 0.8)).astype(float)
    vs = (rng.random(n) < 0.8).astype(float)
    return cf, cs, vf, vs


def test_curve_rows_are_distinct_operating_points_under_heavy_ties():
    cf, cs, vf, vs = llm_like_pair(3000, seed=31)
    n_bins = 15
    router = AdvantageRouter(n_bins).fit(cf, cs)
    assert router.n_bins_ < n_bins
    # array_split boundaries at 200, 400, ... among the values below 1.0 stay; the others fall
    # in the run of 1.0 and all move to its start, which becomes one boundary
    boundaries = np.arange(1, n_bins) * 200
    below = int((cf < 1).sum())
    assert router.n_bins_ == 1 + np.sum(boundaries < below) + 1
    # on the fitting rows every bin is non-empty: each K adds samples, p_small strictly rises
    on_cal = cascade_curve(cf, cs, cf, vf, vs, n_bins=n_bins)
    assert len(on_cal) == router.n_bins_ + 1
    assert np.all(np.diff(on_cal["p_small"].to_numpy()) > 0)
    # on a fresh test set from the same distribution too (every bin is wide enough to be hit)
    tf, ts, tvf, tvs = llm_like_pair(3000, seed=32)
    curve = cascade_curve(cf, cs, tf, tvf, tvs, n_bins=n_bins)
    assert list(curve["K"]) == list(range(router.n_bins_ + 1))
    assert np.all(np.diff(curve["p_small"].to_numpy()) > 0)
    interior, order, _, _ = ref_fit(cf, cs, n_bins)
    for K in range(router.n_bins_ + 1):
        route = ref_route(tf, interior, order, K)
        assert curve["accuracy"][K] == pytest.approx(ref_cascade_accuracy(route, tvf, tvs), abs=1e-12)
    # the run of 1.0 is one bin: routed together at every K
    for K in range(n_bins + 1):
        assert len(set(router.route(tf[tf == 1.0], K))) == 1


def test_all_equal_first_confidences_give_one_bin_and_two_rows():
    rng = np.random.default_rng(5)
    cs_cal, vf, vs = rng.random(40), rng.integers(0, 2, 40).astype(float), rng.integers(0, 2, 40).astype(float)
    router = AdvantageRouter(6).fit(np.full(40, 1.0), cs_cal)
    assert router.n_bins_ == 1 and list(router.edges_) == [-np.inf, np.inf]
    curve = cascade_curve(np.full(40, 1.0), cs_cal, rng.random(40), vf, vs, n_bins=6)
    np.testing.assert_allclose(curve["p_small"], [0.0, 1.0])
    np.testing.assert_allclose(curve["accuracy"], [vs.mean(), vf.mean()])
    np.testing.assert_array_equal(router.route(np.array([0.0, 0.5, 1.0]), 6), [True] * 3)
    assert not router.route(np.array([0.5]), 0).any()


def test_cascade_curves_uc_and_cc_can_have_different_rows():
    cf, cs, vf, vs = llm_like_pair(4000, seed=41)
    rng = np.random.default_rng(42)
    # "calibrated": confidences without ties (the run of 1.0 spread over [0.95, 0.99)), so CC
    # has all n_bins bins while UC, on the raw confidences, has fewer
    cal_f = np.where(cf == 1.0, 0.95 + 0.04 * rng.random(len(cf)), cf * 0.95)
    cal = np.zeros(len(cf), dtype=bool)
    cal[rng.permutation(len(cf))[:2000]] = True
    n_bins = 12
    curves = cascade_curves(
        {"raw_first": cf[cal], "raw_second": cs[cal], "calibrated_first": cal_f[cal], "calibrated_second": cs[cal]},
        {"raw_first": cf[~cal], "raw_second": cs[~cal], "calibrated_first": cal_f[~cal],
         "calibrated_second": cs[~cal], "correct_first": vf[~cal], "correct_second": vs[~cal]}, n_bins=n_bins)
    rows = curves["method"].value_counts()
    m_uc = AdvantageRouter(n_bins).fit(cf[cal], cs[cal]).n_bins_
    m_cc = AdvantageRouter(n_bins).fit(cal_f[cal], cs[cal]).n_bins_
    assert m_uc < m_cc == n_bins
    assert rows["UC"] == m_uc + 1 and rows["CC"] == rows["RC"] == rows["oracle"] == m_cc + 1
    cc = curves[curves["method"] == "CC"].reset_index(drop=True)
    for method in ("RC", "oracle"):
        other = curves[curves["method"] == method].reset_index(drop=True)
        np.testing.assert_array_equal(other["K"], cc["K"])
        np.testing.assert_array_equal(other["p_small"], cc["p_small"])
    uc = curves[curves["method"] == "UC"].reset_index(drop=True)
    np.testing.assert_allclose(uc["accuracy"], cascade_curve(cf[cal], cs[cal], cf[~cal], vf[~cal], vs[~cal],
                                                             n_bins=n_bins)["accuracy"], rtol=0, atol=0)


# ----------------------------------------------------------------------------------------
# Hand-computed tiny cases
# ----------------------------------------------------------------------------------------

def test_hand_computed_tiny_case_keeps_high_confidence_bin():
    # 8 cal samples (shuffled), 2 bins. Sorted first-model confidences:
    #   bin 0 = {0.1, 0.2, 0.3, 0.4}, bin 1 = {0.6, 0.7, 0.8, 0.9}; edge = (0.4 + 0.6)/2 = 0.5.
    cf_cal = np.array([0.7, 0.1, 0.9, 0.3, 0.6, 0.2, 0.8, 0.4])
    # second-model confidences: 0.9/0.8 on bin-0 samples, 0.5/0.6 on bin-1 samples
    cs_cal = np.array([0.5, 0.9, 0.6, 0.8, 0.5, 0.9, 0.6, 0.8])
    # bin 0: mean first 0.25, mean second 0.85, advantage +0.60
    # bin 1: mean first 0.75, mean second 0.55, advantage -0.20  -> bin 1 comes first
    router = AdvantageRouter(n_bins=2).fit(cf_cal, cs_cal)
    np.testing.assert_allclose(router.edges_[1:-1], [0.5])
    np.testing.assert_allclose(router.mean_first_, [0.25, 0.75])
    np.testing.assert_allclose(router.mean_second_, [0.85, 0.55])
    np.testing.assert_allclose(router.advantage_, [0.60, -0.20])
    assert list(router.kept_bins(1)) == [1]
    assert sorted(router.kept_bins(2)) == [0, 1]
    assert list(router.kept_bins(0)) == []

    cf_test = np.array([0.05, 0.45, 0.5, 0.55, 0.95])  # 0.5 is on the edge -> upper bin
    np.testing.assert_array_equal(router.route(cf_test, 0), [False] * 5)
    np.testing.assert_array_equal(router.route(cf_test, 1), [False, False, True, True, True])
    np.testing.assert_array_equal(router.route(cf_test, 2), [True] * 5)

    vf = np.array([0, 0, 1, 1, 1.0])
    vs = np.array([1, 1, 0, 1, 0.0])
    curve = cascade_curve(cf_cal, cs_cal, cf_test, vf, vs, n_bins=2)
    # K=0: second model everywhere -> (1+1+0+1+0)/5 = 0.6
    # K=1: second on samples 0,1, first on 2,3,4 -> (1+1+1+1+1)/5 = 1.0
    # K=2: first everywhere -> (0+0+1+1+1)/5 = 0.6
    np.testing.assert_allclose(curve["accuracy"], [0.6, 1.0, 0.6])
    np.testing.assert_allclose(curve["p_small"], [0.0, 0.6, 1.0])
    np.testing.assert_array_equal(curve["large_calls_saved"], [0, 3, 5])


def test_hand_computed_tiny_case_keeps_low_confidence_bin():
    # Same bins, but now the second model is weak where the first is unsure:
    # bin 0: mean first 0.25, second 0.3 -> advantage +0.05; bin 1: 0.75 vs 0.95 -> +0.20.
    cf_cal = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    cs_cal = np.array([0.3, 0.3, 0.3, 0.3, 0.95, 0.95, 0.95, 0.95])
    router = AdvantageRouter(n_bins=2).fit(cf_cal, cs_cal)
    np.testing.assert_allclose(router.advantage_, [0.05, 0.20])
    assert list(router.kept_bins(1)) == [0]
    np.testing.assert_array_equal(router.route(np.array([0.2, 0.49, 0.51, 0.99]), 1),
                                  [True, True, False, False])


def test_tie_in_advantage_goes_to_higher_mean_first_confidence():
    # Dyadic numbers so the two advantages are exactly equal in floating point.
    cf_cal = np.array([0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0])
    cs_cal = cf_cal - 0.125
    # bin 0: mean first 0.3125, advantage -0.125; bin 1: mean first 0.8125, advantage -0.125.
    fitted = advantage_bins(cf_cal, cs_cal, n_bins=2)
    assert fitted["advantage"][0] == fitted["advantage"][1] == -0.125
    # tie -> the bin with the higher mean first-model confidence (bin 1) is kept first,
    # even though it has the larger index
    assert list(fitted["order"]) == [1, 0]
    router = AdvantageRouter(2).fit(cf_cal, cs_cal)
    np.testing.assert_array_equal(router.route(np.array([0.2, 0.9]), 1), [False, True])

    # 3 bins, tie between bins 0 and 2 (bin 1 has a larger advantage): 2 goes before 0
    cf3 = np.array([0.125, 0.25, 0.375, 0.5, 0.625, 0.75])
    cs3 = np.array([0.25, 0.375, 0.875, 0.875, 0.75, 0.875])
    # bin 0 {0.125,0.25}: mean first 0.1875, second 0.3125 -> adv 0.125
    # bin 1 {0.375,0.5}: mean first 0.4375, second 0.875 -> adv 0.4375
    # bin 2 {0.625,0.75}: mean first 0.6875, second 0.8125 -> adv 0.125
    f3 = advantage_bins(cf3, cs3, n_bins=3)
    np.testing.assert_array_equal(f3["advantage"], [0.125, 0.4375, 0.125])
    assert list(f3["order"]) == [2, 0, 1]
    assert ref_fit(cf3, cs3, 3)[1] == [2, 0, 1]


# ----------------------------------------------------------------------------------------
# cascade_curves: RC / UC / CC / oracle
# ----------------------------------------------------------------------------------------

def test_cascade_curves_rows_rc_line_and_oracle_bound():
    n = 2000
    sets = calcas.make_synthetic(n, n_classes=5, accuracy=(0.7, 0.9), confidence_scale=(2.0, 0.6),
                                 correlation=0.3, flip_rate=0.0, seed=3)
    a, b = sets["model_0"], sets["model_1"]
    cal = np.zeros(n, dtype=bool)
    cal[np.random.default_rng(3).permutation(n)[: n // 2]] = True
    raw_a = scipy_softmax(a.logits.astype(float), axis=1).max(axis=1)
    raw_b = scipy_softmax(b.logits.astype(float), axis=1).max(axis=1)
    # "calibrated" confidences: a different, rank-preserving temperature per model
    cal_a = scipy_softmax(a.logits.astype(float) / 2.0, axis=1).max(axis=1)
    cal_b = scipy_softmax(b.logits.astype(float) / 0.6, axis=1).max(axis=1)
    va = (a.logits.argmax(1) == a.label).astype(float)
    vb = (b.logits.argmax(1) == b.label).astype(float)
    n_bins = 10
    curves = cascade_curves(
        {"raw_first": raw_a[cal], "raw_second": raw_b[cal],
         "calibrated_first": cal_a[cal], "calibrated_second": cal_b[cal]},
        {"raw_first": raw_a[~cal], "raw_second": raw_b[~cal],
         "calibrated_first": cal_a[~cal], "calibrated_second": cal_b[~cal],
         "correct_first": va[~cal], "correct_second": vb[~cal]}, n_bins=n_bins)
    assert set(curves["method"]) == {"RC", "UC", "CC", "oracle"}
    for m in ("RC", "UC", "CC", "oracle"):
        assert (curves["method"] == m).sum() == n_bins + 1
    acc_a, acc_b = va[~cal].mean(), vb[~cal].mean()

    for method, ca, cb in (("UC", raw_a, raw_b), ("CC", cal_a, cal_b)):
        rows = curves[curves["method"] == method].reset_index(drop=True)
        interior, order, _, _ = ref_fit(ca[cal], cb[cal], n_bins)
        for K in range(n_bins + 1):
            route = ref_route(ca[~cal], interior, order, K)
            assert rows["accuracy"][K] == pytest.approx(ref_cascade_accuracy(route, va[~cal], vb[~cal]),
                                                        abs=1e-12)

    cc = curves[curves["method"] == "CC"].reset_index(drop=True)
    rc = curves[curves["method"] == "RC"].reset_index(drop=True)
    oracle = curves[curves["method"] == "oracle"].reset_index(drop=True)
    np.testing.assert_allclose(rc["p_small"], cc["p_small"])
    np.testing.assert_allclose(oracle["p_small"], cc["p_small"])
    # RC is the straight line between the two single-model accuracies
    p = cc["p_small"].to_numpy()
    np.testing.assert_allclose(rc["accuracy"], p * acc_a + (1 - p) * acc_b, atol=1e-12)
    slopes = np.diff(rc["accuracy"]) / np.diff(p)
    finite = np.isfinite(slopes)
    np.testing.assert_allclose(slopes[finite], acc_a - acc_b, atol=1e-9)
    # the oracle is an upper bound of any router with the same budget
    assert np.all(oracle["accuracy"].to_numpy() >= cc["accuracy"].to_numpy() - 1e-12)
    assert np.all(oracle["accuracy"].to_numpy() >= curves.loc[curves["method"] == "UC", "accuracy"].to_numpy() - 1e-12)
    # ... and at the endpoints the oracle has no choice
    assert oracle["accuracy"].iloc[0] == pytest.approx(acc_b)
    assert oracle["accuracy"].iloc[-1] == pytest.approx(acc_a)
    # oracle values equal a brute-force count: best m samples for the first model
    gain = va[~cal] - vb[~cal]
    n_test = len(gain)
    for K in range(n_bins + 1):
        m = int(cc["large_calls_saved"][K])
        best = vb[~cal].sum() + np.sort(gain)[::-1][:m].sum()
        assert oracle["accuracy"][K] == pytest.approx(best / n_test, abs=1e-12)


def brute_force_oracle(vf, vs, m):
    n = len(vf)
    best = -1.0
    for subset in itertools.combinations(range(n), m):
        chosen = set(subset)
        acc = sum(vf[i] if i in chosen else vs[i] for i in range(n)) / n
        best = max(best, acc)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_oracle_accuracy_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 9))  # n <= 8
    vf = rng.integers(0, 2, n).astype(float)
    vs = rng.integers(0, 2, n).astype(float)
    ms = np.arange(n + 1)
    got = oracle_accuracy(vf, vs, ms / n)
    for m in ms:
        assert got[m] == pytest.approx(brute_force_oracle(vf, vs, m), abs=1e-12)


def test_oracle_accuracy_hand_case():
    # first right only on 0; second right only on 1, 2; both right on 3; both wrong on 4.
    vf = np.array([1, 0, 0, 1, 0])
    vs = np.array([0, 1, 1, 1, 0])
    # m=0: 3/5; m=1: give sample 0 -> 4/5; m=2: add a tie sample (3 or 4) -> 4/5;
    # m=3: 4/5; m=4: must give 1 or 2 -> 3/5; m=5: first alone -> 2/5
    np.testing.assert_allclose(oracle_accuracy(vf, vs, np.arange(6) / 5), [0.6, 0.8, 0.8, 0.8, 0.6, 0.4])
    assert float(oracle_accuracy(vf, vs, 0.0)) == pytest.approx(0.6)


@pytest.mark.parametrize("p, match", [(np.nan, r"p: shares must be in \[0, 1\], found nan"),
                                      ([0.2, np.nan], "found nan"), (1.5, "found 1.5"), (-0.1, "found -0.1"),
                                      ("half", "expected a share")])
def test_oracle_accuracy_refuses_bad_shares(p, match):
    # NaN used to reach the kernel and raise an IndexError from the floor of NaN
    with pytest.raises(ValueError, match=match):
        oracle_accuracy([1, 0, 1], [0, 1, 1], p)


def test_compute_saved_with_costs(pair):
    cf, cs, vf, vs, cal = pair
    cost_first, cost_second = 1.0, 8.0
    curve = cascade_curve(cf[cal], cs[cal], cf[~cal], vf[~cal], vs[~cal], n_bins=6,
                          cost_first=cost_first, cost_second=cost_second)
    n_test = int((~cal).sum())
    for _, row in curve.iterrows():
        answered_first = row["large_calls_saved"]
        # the first model always runs; the second runs on the rest
        spent = n_test * cost_first + (n_test - answered_first) * cost_second
        baseline = n_test * cost_second
        assert row["compute_saved"] == pytest.approx(1 - spent / baseline, abs=1e-12)
    # K=0 costs more than the second model alone: saving is negative
    assert curve["compute_saved"].iloc[0] == pytest.approx(-1 / 8)
    assert curve["compute_saved"].iloc[-1] == pytest.approx(1 - 1 / 8)
    no_cost = cascade_curve(cf[cal], cs[cal], cf[~cal], vf[~cal], vs[~cal], n_bins=6)
    assert "compute_saved" not in no_cost.columns
    with pytest.raises(ValueError, match="cost"):
        cascade_curve(cf[cal], cs[cal], cf[~cal], vf[~cal], vs[~cal], n_bins=6,
                      cost_first=1.0, cost_second=0.0)


def test_bad_inputs_name_the_argument():
    rng = np.random.default_rng(0)
    c = rng.random(20)
    with pytest.raises(ValueError, match="conf_first"):
        advantage_bins(c * 2, c, 2)
    with pytest.raises(ValueError, match="length mismatch"):
        advantage_bins(c, c[:10], 2)
    with pytest.raises(ValueError, match="n_bins"):
        advantage_bins(c, c, 30)
    with pytest.raises(ValueError, match="K"):
        AdvantageRouter(4).fit(c, c).route(c, 5)
    with pytest.raises(RuntimeError, match="not fitted"):
        AdvantageRouter(4).route(c, 1)
    with pytest.raises(ValueError, match=r"length mismatch: conf_first_test has 20, correct_first_test has 19"):
        cascade_curve(c, c, c, c[:-1], c, n_bins=2)
    with pytest.raises(ValueError, match=r"^correct_second_test: values must be <= 1"):
        cascade_curve(c, c, c, c, c * 2, n_bins=2)


def test_cascade_curves_bad_inputs_name_the_key():
    c = np.random.default_rng(1).random(20)
    cal = {"raw_first": c, "raw_second": c, "calibrated_first": c, "calibrated_second": c}
    test = {**cal, "correct_first": c, "correct_second": c}
    with pytest.raises(ValueError, match=r"^test\['calibrated_first'\]: values must be <= 1"):
        cascade_curves(cal, {**test, "calibrated_first": c * 2})
    with pytest.raises(ValueError, match=r"length mismatch: .*cal\['raw_second'\] has 10"):
        cascade_curves({**cal, "raw_second": c[:10]}, test)
    with pytest.raises(ValueError, match=r"^test\['correct_second'\]: contains 1 NaN"):
        cascade_curves(cal, {**test, "correct_second": np.r_[c[:-1], np.nan]})
    with pytest.raises(ValueError, match=r"^n_bins: 21 bins need at least as many samples, got 20"):
        cascade_curves(cal, test, n_bins=21)
    with pytest.raises(ValueError, match="cost"):
        cascade_curves(cal, test, n_bins=2, cost_first=-1.0, cost_second=2.0)


# ----------------------------------------------------------------------------------------
# Large-large pair: two accurate models with different errors
# ----------------------------------------------------------------------------------------

def test_large_large_cascade_beats_both_models():
    n = 6000
    sets = calcas.make_synthetic(n, n_classes=10, accuracy=(0.8, 0.8), confidence_scale=(1.6, 0.7),
                                 correlation=0.0, flip_rate=0.0, seed=11)
    a, b = sets["model_0"], sets["model_1"]
    cal = calcas.cal_test_split(a.id, seed=0)
    conf = {}
    for name, r in (("a", a), ("b", b)):
        ts = calcas.TemperatureScaling().fit(r.logits[cal], r.label[cal])
        conf[name] = ts.transform(r.logits)
    va, vb = a.verified, b.verified
    acc_a, acc_b = va[~cal].mean(), vb[~cal].mean()
    assert abs(acc_a - 0.8) < 0.03 and abs(acc_b - 0.8) < 0.03
    # different errors: the share both get wrong is near the product of the error rates
    both_wrong = np.mean((va[~cal] == 0) & (vb[~cal] == 0))
    assert both_wrong < 0.06
    curve = cascade_curve(conf["a"][cal], conf["b"][cal], conf["a"][~cal], va[~cal], vb[~cal], n_bins=15)
    # check against the slow reference too
    interior, order, _, _ = ref_fit(conf["a"][cal], conf["b"][cal], 15)
    for K in range(16):
        route = ref_route(conf["a"][~cal], interior, order, K)
        assert curve["accuracy"][K] == pytest.approx(ref_cascade_accuracy(route, va[~cal], vb[~cal]), abs=1e-12)
    best = curve["accuracy"].max()
    assert best > max(acc_a, acc_b) + 0.02
    assert 0 < curve["K"][curve["accuracy"].idxmax()] < 15


def test_fitted_routers_give_the_same_curves_without_refitting(monkeypatch):
    rng = np.random.default_rng(5)
    n = 600
    cal = {k: rng.random(n) for k in ("raw_first", "raw_second", "calibrated_first", "calibrated_second")}
    test = {**{k: rng.random(n) for k in cal}, "correct_first": rng.random(n) < 0.6,
            "correct_second": rng.random(n) < 0.7}
    expected = cascade_curves(cal, test, n_bins=6, cost_first=1.0, cost_second=4.0)
    routers = {m: AdvantageRouter(6).fit(cal[f"{k}_first"], cal[f"{k}_second"])
               for m, k in (("UC", "raw"), ("CC", "calibrated"))}
    import calcas.cascade as cascade_module
    fits = []
    real = cascade_module._advantage_bins
    monkeypatch.setattr(cascade_module, "_advantage_bins", lambda *a: fits.append(1) or real(*a))
    got = cascade_curves(None, test, routers=routers, cost_first=1.0, cost_second=4.0)
    pd.testing.assert_frame_equal(got, expected)
    one = routers["CC"].curve(test["calibrated_first"], test["correct_first"], test["correct_second"])
    pd.testing.assert_frame_equal(one, cascade_curve(cal["calibrated_first"], cal["calibrated_second"],
                                                     test["calibrated_first"], test["correct_first"],
                                                     test["correct_second"], n_bins=6)[one.columns])
    assert fits == [1]  # only the cascade_curve reference above fitted a router
    with pytest.raises(ValueError, match=r"routers: expected fitted AdvantageRouters under 'UC' and 'CC'"):
        cascade_curves(None, test, routers={"CC": routers["CC"]})
    with pytest.raises(ValueError, match="cal: the cal confidences are needed"):
        cascade_curves(None, test)
    with pytest.raises(RuntimeError, match="not fitted"):
        AdvantageRouter(3).curve(test["calibrated_first"], test["correct_first"], test["correct_second"])
