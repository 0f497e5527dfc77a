"""Calibration metrics (SPEC §2) against torchmetrics, scikit-learn, scipy and hand computations."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax as sp_softmax
from scipy.stats import binom, chisquare, spearmanr
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

import calcas
from calcas.metrics import _ece_replicates, _mean_replicates, _resamples

TABLE_COLUMNS = ["bin", "count", "mean_confidence", "accuracy", "gap", "lower", "upper"]


def make_binary(n=3000, seed=0, power=1.5):
    """Confidences without ties; correctness drawn with P = c**power (over-confident)."""
    rng = np.random.default_rng(seed)
    c = rng.random(n)
    v = (rng.random(n) < c ** power).astype(float)
    return c, v


def hand_equal_count(c, v, k):
    """Sort by confidence, np.array_split into k groups: per-group count, means, and edges."""
    order = np.argsort(c, kind="stable")
    cg = np.array_split(c[order], k)
    vg = np.array_split(v[order], k)
    count = np.array([len(g) for g in cg])
    mean_c = np.array([g.mean() for g in cg])
    acc = np.array([g.mean() for g in vg])
    interior = np.array([(cg[i][-1] + cg[i + 1][0]) / 2 for i in range(k - 1)])
    return count, mean_c, acc, interior


def hand_ece(count, mean_c, acc):
    full = count > 0
    return float(np.sum(count[full] / count.sum() * np.abs(mean_c[full] - acc[full])))


# ================================================================ equal-width ECE vs torchmetrics


@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_equal_width_ece_matches_torchmetrics_binary(n_bins):
    c, v = make_binary()
    # confidences exactly 0.0 (right and wrong), exactly 1.0, and (for 5 bins) exactly on the
    # interior edges 0.2 and 0.4. torchmetrics puts c == 1.0 in an extra bin of its own while
    # calcas folds it into the last bin (SPEC §2); with v = 1 there the two agree, and the
    # placement itself is checked by hand below.
    extra_c = [0.0, 0.0, 0.0, 1.0, 1.0] + ([0.2, 0.2, 0.4, 0.4, 0.4] if n_bins == 5 else [])
    extra_v = [0.0, 1.0, 0.0, 1.0, 1.0] + ([1.0, 0.0, 0.0, 0.0, 1.0] if n_bins == 5 else [])
    c, v = np.r_[c, extra_c], np.r_[v, extra_v]
    ref_l1 = binary_calibration_error(torch.from_numpy(c), torch.from_numpy(v).long(), n_bins=n_bins,
                                      norm="l1").item()
    ref_max = binary_calibration_error(torch.from_numpy(c), torch.from_numpy(v).long(), n_bins=n_bins,
                                       norm="max").item()
    assert calcas.ece(c, v, n_bins, binning="equal_width") == pytest.approx(ref_l1, rel=1e-6, abs=1e-12)
    assert calcas.mce(c, v, n_bins, binning="equal_width") == pytest.approx(ref_max, rel=1e-6, abs=1e-12)
    # torch tensors in, same number out
    got_t = calcas.ece(torch.from_numpy(c), torch.from_numpy(v).bool(), n_bins, binning="equal_width")
    assert got_t == pytest.approx(ref_l1, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_equal_width_ece_matches_torchmetrics_multiclass(n_bins):
    rng = np.random.default_rng(1)
    n, C = 3000, 10
    z = rng.normal(scale=3.0, size=(n, C))
    y = (rng.random(n)[:, None] > np.cumsum(sp_softmax(z / 2.0, axis=1), axis=1)).sum(axis=1)
    y = np.minimum(y, C - 1)
    # torchmetrics works in float32: give both sides the same float32 probabilities
    probs = sp_softmax(z, axis=1).astype(np.float32)
    conf = probs.max(axis=1).astype(np.float64)
    correct = probs.argmax(axis=1) == y
    # torchmetrics' multiclass path takes max / argmax == target and then computes in float32
    # whatever the input dtype (`confidences.float()`), so its own rounding is ~1e-6 relative
    # here (measured 1.25e-6 at 5 bins). The same computation in float64 is torchmetrics'
    # binary function on those top-label confidences and hits (dtype kept): compare tightly
    # with that, and with the float32 multiclass number at the accuracy float32 allows.
    tm_conf = torch.from_numpy(probs).max(dim=1).values.double()
    tm_hit = (torch.from_numpy(probs).argmax(dim=1) == torch.from_numpy(y)).long()
    np.testing.assert_array_equal(tm_conf.numpy(), conf)
    ref64 = binary_calibration_error(tm_conf, tm_hit, n_bins=n_bins, norm="l1").item()
    ref64_max = binary_calibration_error(tm_conf, tm_hit, n_bins=n_bins, norm="max").item()
    ref32 = multiclass_calibration_error(torch.from_numpy(probs), torch.from_numpy(y), num_classes=C,
                                         n_bins=n_bins, norm="l1").item()
    ref32_max = multiclass_calibration_error(torch.from_numpy(probs), torch.from_numpy(y), num_classes=C,
                                             n_bins=n_bins, norm="max").item()
    got = calcas.ece(conf, correct, n_bins, binning="equal_width")
    got_max = calcas.mce(conf, correct, n_bins, binning="equal_width")
    assert got == pytest.approx(ref64, rel=1e-12)
    assert got_max == pytest.approx(ref64_max, rel=1e-12)
    assert got == pytest.approx(ref32, rel=1e-5)
    assert got_max == pytest.approx(ref32_max, rel=1e-5)


def test_equal_width_placement_of_0_1_and_edges_by_hand():
    c = np.array([0.0, 0.0, 0.2, 0.2, 0.5, 1.0, 1.0, 0.9])
    v = np.array([0, 1, 1, 0, 1, 0, 1, 1], dtype=float)
    # 5 bins: [0,.2) {0, 0} | [.2,.4) {.2, .2} | [.4,.6) {.5} | [.6,.8) {} | [.8,1] {.9, 1, 1}
    t = calcas.reliability_table(c, v, 5, binning="equal_width")
    assert list(t.columns) == TABLE_COLUMNS
    np.testing.assert_array_equal(t["bin"], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(t["count"], [2, 2, 1, 0, 3])
    np.testing.assert_allclose(t["mean_confidence"], [0.0, 0.2, 0.5, np.nan, 2.9 / 3], rtol=1e-14)
    np.testing.assert_allclose(t["accuracy"], [0.5, 0.5, 1.0, np.nan, 2 / 3], rtol=1e-14)
    np.testing.assert_allclose(t["gap"], [0.5, 0.3, 0.5, np.nan, 2 / 3 - 2.9 / 3], rtol=1e-13)
    np.testing.assert_allclose(t["lower"], [0.0, 0.2, 0.4, 0.6, 0.8], rtol=1e-15)
    np.testing.assert_allclose(t["upper"], [0.2, 0.4, 0.6, 0.8, 1.0], rtol=1e-15)
    # ECE: empty bin contributes 0
    expected = (2 * 0.5 + 2 * 0.3 + 1 * 0.5 + 3 * abs(2.9 / 3 - 2 / 3)) / 8
    assert calcas.ece(c, v, 5, binning="equal_width") == pytest.approx(expected, rel=1e-13)
    assert calcas.mce(c, v, 5, binning="equal_width") == pytest.approx(0.5, rel=1e-13)
    # torchmetrics gives 1.0 its own (sixth) bin, so it differs here: {.9} gap .1, {1, 1} gap .5
    tm_expected = (2 * 0.5 + 2 * 0.3 + 1 * 0.5 + 1 * 0.1 + 2 * 0.5) / 8
    tm = binary_calibration_error(torch.from_numpy(c), torch.from_numpy(v).long(), n_bins=5).item()
    assert tm == pytest.approx(tm_expected, rel=1e-12)


# ================================================================ equal count, by hand


@pytest.mark.parametrize("n, k", [(3000, 15), (1001, 10), (40, 40), (50, 1)])
def test_equal_count_ece_and_table_match_hand(n, k):
    c, v = make_binary(n=n, seed=n)
    count, mean_c, acc, interior = hand_equal_count(c, v, k)
    t = calcas.reliability_table(c, v, k)
    assert list(t.columns) == TABLE_COLUMNS
    np.testing.assert_array_equal(t["bin"], np.arange(k))
    np.testing.assert_array_equal(t["count"], count)
    np.testing.assert_allclose(t["mean_confidence"], mean_c, rtol=1e-12)
    np.testing.assert_allclose(t["accuracy"], acc, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(t["gap"], acc - mean_c, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(t["lower"], np.r_[0.0, interior], rtol=0, atol=0)
    np.testing.assert_allclose(t["upper"], np.r_[interior, 1.0], rtol=0, atol=0)
    assert calcas.ece(c, v, k) == pytest.approx(hand_ece(count, mean_c, acc), rel=1e-10, abs=1e-15)
    assert calcas.ece(c, v, k, binning="equal_count") == pytest.approx(hand_ece(count, mean_c, acc),
                                                                       rel=1e-10, abs=1e-15)
    assert calcas.mce(c, v, k) == pytest.approx(np.max(np.abs(mean_c - acc)), rel=1e-10, abs=1e-15)


def test_equal_count_ece_with_edges_fitted_on_cal():
    c_cal, v_cal = make_binary(n=2000, seed=3)
    c_test, v_test = make_binary(n=700, seed=4, power=1.2)
    k = 10
    *_, interior = hand_equal_count(c_cal, v_cal, k)
    edges = calcas.equal_count_edges(c_cal, k)
    # hand: bin = number of interior edges <= c
    b = np.array([sum(e <= x for e in interior) for x in c_test])
    count = np.array([np.sum(b == i) for i in range(k)])
    mean_c = np.array([c_test[b == i].mean() if count[i] else np.nan for i in range(k)])
    acc = np.array([v_test[b == i].mean() if count[i] else np.nan for i in range(k)])
    assert calcas.ece(c_test, v_test, edges=edges) == pytest.approx(hand_ece(count, mean_c, acc), rel=1e-10)
    t = calcas.reliability_table(c_test, v_test, edges=edges)
    np.testing.assert_array_equal(t["count"], count)
    np.testing.assert_allclose(t["accuracy"], acc, rtol=1e-12)


def test_perfectly_calibrated_bins_give_zero_ece():
    # each equal-count bin holds 4 samples at confidence q with exactly 4q correct
    qs = [0.25, 0.5, 0.75, 1.0]
    c = np.repeat(qs, 4)
    v = np.concatenate([[1] * int(4 * q) + [0] * (4 - int(4 * q)) for q in qs]).astype(float)
    assert calcas.ece(c, v, 4) == pytest.approx(0.0, abs=1e-15)
    assert calcas.ece(c, v, 4, binning="equal_width") == pytest.approx(0.0, abs=1e-15)
    assert calcas.mce(c, v, 4) == pytest.approx(0.0, abs=1e-15)


def test_equal_count_table_and_ece_with_ties_by_hand():
    # sorted confidences 0 0 0 | 0.2 | 0.4 0.6 | 1 1 1 1: 5 bins asked for, 4 formed (runs
    # of 0 and of 1 are not split; see test_binning)
    c = np.array([1.0, 0.0, 0.6, 1.0, 0.0, 0.2, 1.0, 0.4, 0.0, 1.0])
    v = np.array([1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0])
    t = calcas.reliability_table(c, v, 5)
    np.testing.assert_array_equal(t["bin"], [0, 1, 2, 3])
    np.testing.assert_array_equal(t["count"], [3, 1, 2, 4])
    np.testing.assert_allclose(t["mean_confidence"], [0.0, 0.2, 0.5, 1.0], rtol=1e-15)
    np.testing.assert_allclose(t["accuracy"], [1 / 3, 0.0, 1.0, 0.75], rtol=1e-15)
    np.testing.assert_allclose(t["lower"], [0.0, 0.1, 0.3, 0.8], rtol=1e-15)
    np.testing.assert_allclose(t["upper"], [0.1, 0.3, 0.8, 1.0], rtol=1e-15)
    # ECE = (3 |0 - 1/3| + 1 |0.2 - 0| + 2 |0.5 - 1| + 4 |1 - 0.75|) / 10 = 3.2 / 10
    assert calcas.ece(c, v, 5) == pytest.approx(0.32, rel=1e-13)
    assert calcas.mce(c, v, 5) == pytest.approx(0.5, rel=1e-13)
    # equal-width binning is unchanged by ties: always n_bins rows
    assert len(calcas.reliability_table(c, v, 5, "equal_width")) == 5


def test_equal_count_metrics_with_a_large_run_at_one():
    # like an LLM's confidences: 58% exactly 1.0; the run is one bin, the rest split as before
    rng = np.random.default_rng(21)
    n = 1000
    c = np.where(np.arange(n) < 580, 1.0, rng.random(n) * 0.99)
    v = (rng.random(n) < np.where(c == 1.0, 0.9, c)).astype(float)
    t = calcas.reliability_table(c, v, 15)
    # 1000 = 10 groups of 67 + 5 of 66: boundaries at 67, 134, ..., 402 fall among the 420
    # distinct values and stay; those at 469, ..., 934 fall in the run and move to its start
    assert len(t) == 8
    np.testing.assert_array_equal(t["count"], [67] * 6 + [18, 580])
    order = np.argsort(c, kind="stable")
    groups = np.split(order, [67, 134, 201, 268, 335, 402, 420])
    assert calcas.ece(c, v, 15) == pytest.approx(
        hand_ece(np.array([len(g) for g in groups]), np.array([c[g].mean() for g in groups]),
                 np.array([v[g].mean() for g in groups])), rel=1e-12)


# ================================================================ NLL and Brier


def _probs(n=500, C=6, seed=5):
    rng = np.random.default_rng(seed)
    p = sp_softmax(rng.normal(scale=2.0, size=(n, C)), axis=1)
    y = rng.integers(0, C, n)
    return p, y


def test_nll_multiclass_matches_sklearn():
    p, y = _probs()
    assert calcas.nll(p, y) == pytest.approx(log_loss(y, p, labels=np.arange(p.shape[1])), rel=1e-10)
    assert calcas.nll(torch.from_numpy(p), torch.from_numpy(y)) == pytest.approx(
        log_loss(y, p, labels=np.arange(p.shape[1])), rel=1e-10)


def test_nll_binary_matches_sklearn():
    rng = np.random.default_rng(6)
    p = rng.uniform(0.01, 0.99, 400)
    v = (rng.random(400) < p).astype(float)
    assert calcas.nll(p, v) == pytest.approx(log_loss(v, p), rel=1e-10)


def test_nll_hand_and_clipping():
    p = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    y = np.array([0, 1, 1])
    # the third sample's probability 0 is clipped to eps = 1e-12 (documented)
    expected = (math.log(2) - math.log(0.1) - math.log(1e-12)) / 3
    assert calcas.nll(p, y) == pytest.approx(expected, rel=1e-12)
    assert calcas.nll(np.array([0.8, 0.3]), np.array([1.0, 0.0])) == pytest.approx(
        -(math.log(0.8) + math.log(0.7)) / 2, rel=1e-12)


def test_brier_binary_matches_sklearn():
    rng = np.random.default_rng(7)
    p = rng.random(400)
    v = (rng.random(400) < p).astype(float)
    assert calcas.brier(p, v) == pytest.approx(brier_score_loss(v, p), rel=1e-12)
    assert calcas.brier(np.array([0.8, 0.3]), np.array([1, 0])) == pytest.approx((0.04 + 0.09) / 2)


def test_brier_multiclass_matches_hand_and_sklearn():
    p, y = _probs(seed=8)
    hand = np.mean([sum((p[i, j] - (j == y[i])) ** 2 for j in range(p.shape[1])) for i in range(len(p))])
    assert calcas.brier(p, y) == pytest.approx(hand, rel=1e-12)
    assert calcas.brier(p, y) == pytest.approx(brier_score_loss(y, p, labels=np.arange(p.shape[1])),
                                               rel=1e-10)
    # tiny hand case: [.2 .5 .3] with label 1 -> .04 + .25 + .09
    assert calcas.brier(np.array([[0.2, 0.5, 0.3]]), [1]) == pytest.approx(0.38, rel=1e-12)


# ================================================================ bootstrap and monotonicity


def test_ece_bootstrap_interval():
    c, v = make_binary(n=1500, seed=9)
    count, mean_c, acc, _ = hand_equal_count(c, v, 10)
    point, low, high = calcas.ece_bootstrap(c, v, 10, n_boot=200, seed=1)
    assert point == pytest.approx(hand_ece(count, mean_c, acc), rel=1e-10)
    assert low <= point <= high
    assert 0 <= low < high
    # deterministic for a seed; another seed gives another interval
    assert calcas.ece_bootstrap(c, v, 10, n_boot=200, seed=1) == (point, low, high)
    assert calcas.ece_bootstrap(c, v, 10, n_boot=200, seed=2) != (point, low, high)
    # narrower level, narrower interval (same replicates)
    _, low50, high50 = calcas.ece_bootstrap(c, v, 10, n_boot=200, seed=1, level=0.5)
    assert low <= low50 <= high50 <= high


def test_ece_bootstrap_narrows_with_more_data():
    widths = {}
    for n in (300, 6000):
        c, v = make_binary(n=n, seed=10)
        _, low, high = calcas.ece_bootstrap(c, v, 10, n_boot=150, seed=0)
        widths[n] = high - low
    # standard errors scale like 1/sqrt(n): 20x the data, about 4.5x narrower
    assert widths[6000] < widths[300] / 2


def test_ece_bootstrap_equal_width_point_matches_torchmetrics():
    c, v = make_binary(n=800, seed=11)
    point, low, high = calcas.ece_bootstrap(c, v, 10, "equal_width", n_boot=100, seed=0)
    ref = binary_calibration_error(torch.from_numpy(c), torch.from_numpy(v).long(), n_bins=10).item()
    assert point == pytest.approx(ref, rel=1e-6)
    assert low <= point <= high


def materialised_resamples(n, n_boot, seed, block, order=None):
    """The rows of each resample, rebuilt from the counts the bootstrap draws (counts are over
    ``order``, the rows as the bootstrap sorts them; identity when None)."""
    order = np.arange(n) if order is None else order
    return [np.repeat(order, counts.astype(np.int64)) for counts, _ in _resamples(n, n_boot, seed, block)]


def naive_ece_replicates(c, v, n_bins, binning, n_boot, seed, block):
    """ece() on each resample built in full: the computation the counts must reproduce."""
    rows = materialised_resamples(len(c), n_boot, seed, block, np.argsort(c, kind="stable"))
    return np.array([calcas.ece(c[r], v[r], n_bins, binning) for r in rows])


def confidences_of_kind(kind, n, rng):
    if kind == "distinct":
        return rng.random(n)
    if kind == "rounded":  # many runs of ties
        return np.round(rng.random(n), 1)
    if kind == "run_at_one":  # like an LLM's confidences: over half exactly 1.0
        return np.where(rng.random(n) < 0.6, 1.0, np.round(rng.random(n), 2))
    return np.full(n, 0.7)  # all equal: one bin


@pytest.mark.parametrize("binning", ["equal_count", "equal_width"])
@pytest.mark.parametrize("kind", ["distinct", "rounded", "run_at_one", "all_equal"])
@pytest.mark.parametrize("n, n_bins, block", [(97, 15, 8), (60, 60, 7), (300, 10, 1 << 14), (5, 1, 2)])
def test_ece_bootstrap_replicates_equal_ece_of_the_materialised_resample(binning, kind, n, n_bins, block):
    rng = np.random.default_rng(n + n_bins)
    c = confidences_of_kind(kind, n, rng)
    v = (rng.random(n) < c).astype(float)
    got = _ece_replicates(c, v, n_bins, binning, 30, 4, block)
    np.testing.assert_allclose(got, naive_ece_replicates(c, v, n_bins, binning, 30, 4, block), rtol=1e-12, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.5 + 2 ** -53, 0.9, 1.0]) | st.floats(0.0, 1.0),
                       min_size=1, max_size=80),
       data=st.data())
def test_ece_bootstrap_replicates_equal_ece_of_the_materialised_resample_with_any_ties(values, data):
    c = np.array(values)
    v = np.random.default_rng(len(c)).random(len(c))
    n_bins = data.draw(st.integers(1, len(c)))
    block = data.draw(st.integers(1, 90))
    got = _ece_replicates(c, v, n_bins, "equal_count", 8, 0, block)
    np.testing.assert_allclose(got, naive_ece_replicates(c, v, n_bins, "equal_count", 8, 0, block),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("binning", ["equal_count", "equal_width"])
def test_ece_bootstrap_interval_is_the_percentiles_of_the_materialised_replicates(binning):
    rng = np.random.default_rng(14)
    c = np.round(rng.random(400), 2)
    v = (rng.random(400) < c ** 1.3).astype(float)
    naive = naive_ece_replicates(c, v, 12, binning, 150, 8, 1 << 14)
    point, low, high = calcas.ece_bootstrap(c, v, 12, binning, n_boot=150, level=0.9, seed=8)
    assert point == calcas.ece(c, v, 12, binning)
    assert (low, high) == pytest.approx(tuple(np.quantile(naive, [0.05, 0.95])), rel=1e-12)


def test_resamples_are_uniform_draws_with_replacement():
    """Counts drawn block by block are a draw of n rows with replacement: every row's count
    is Binomial(n, 1/n) and two rows' counts have covariance -1/n (multinomial), in the same
    block or not; the last block is shorter than the others."""
    n, block, n_boot = 23, 5, 20_000
    counts = np.array([w.copy() for w, _ in _resamples(n, n_boot, 3, block)])
    np.testing.assert_array_equal(counts.sum(axis=1), n)
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    se_mean = math.sqrt((1 - 1 / n) / n_boot)
    assert np.abs(counts.mean(axis=0) - 1).max() < 4.5 * se_mean
    cov = np.cov(counts, rowvar=False)
    np.testing.assert_allclose(np.diag(cov), 1 - 1 / n, atol=0.05)
    same_block = np.arange(n)[:, None] // block == np.arange(n)[None, :] // block
    off_diagonal = ~np.eye(n, dtype=bool)
    for pairs in (same_block & off_diagonal, ~same_block):
        assert cov[pairs].mean() == pytest.approx(-1 / n, abs=0.004)
    # pooled over rows, the counts follow Binomial(n, 1/n)
    observed = np.bincount(counts.astype(np.int64).ravel(), minlength=5)[:5]
    expected = binom.pmf(np.arange(5), n, 1 / n) * counts.size
    expected *= observed.sum() / expected.sum()
    assert chisquare(observed, expected).pvalue > 1e-4


def test_paired_difference_replicates_equal_the_mean_of_the_materialised_resample():
    rng = np.random.default_rng(15)
    a, b = rng.random(70) < 0.8, rng.random(70) < 0.7
    d = a.astype(float) - b.astype(float)
    naive = np.array([d[rows].mean() for rows in materialised_resamples(70, 200, 6, 16)])
    np.testing.assert_allclose(_mean_replicates(d, 200, 6, 16), naive, rtol=1e-12, atol=1e-15)
    naive = np.array([d[rows].mean() for rows in materialised_resamples(70, 200, 6, 1 << 14)])
    diff, low, high = calcas.paired_difference_interval(a, b, n_boot=200, seed=6)
    assert diff == pytest.approx(d.mean(), abs=1e-15)
    assert (low, high) == pytest.approx(tuple(np.quantile(naive, [0.025, 0.975])), rel=1e-12, abs=1e-15)
    # same seed, same interval; another seed, another
    assert calcas.paired_difference_interval(a, b, n_boot=200, seed=6) == (diff, low, high)
    assert calcas.paired_difference_interval(a, b, n_boot=200, seed=7) != (diff, low, high)


def extra_peak_bytes(fn):
    """Peak bytes numpy allocates while fn runs (tracemalloc sees numpy's buffers)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("binning", ["equal_count", "equal_width"])
def test_bootstrap_memory_is_linear_in_n_and_does_not_grow_with_n_boot(binning):
    rng = np.random.default_rng(16)
    n = 400_000  # large enough that the fixed-size buffers (about 0.5 MiB) do not count
    c = rng.random(n)
    v = (rng.random(n) < c).astype(float)
    inputs = c.nbytes + v.nbytes
    few = extra_peak_bytes(lambda: calcas.ece_bootstrap(c, v, 15, binning, n_boot=2))
    many = extra_peak_bytes(lambda: calcas.ece_bootstrap(c, v, 15, binning, n_boot=40))
    assert few <= 2.0 * inputs  # sorted copies of both inputs plus one counts array (1.5x)
    assert many <= few + 64 * 1024
    few = extra_peak_bytes(lambda: calcas.paired_difference_interval(c, v, n_boot=2))
    many = extra_peak_bytes(lambda: calcas.paired_difference_interval(c, v, n_boot=300))
    assert few <= 1.25 * inputs  # the differences and one counts array (1x)
    assert many <= few + 64 * 1024


@pytest.mark.parametrize("seed", [12, 13])
def test_monotonicity_matches_scipy_spearman(seed):
    rng = np.random.default_rng(seed)
    c = rng.random(600)
    v = (rng.random(600) < 0.3 + 0.4 * c).astype(float)  # noisy: bins not perfectly ordered
    count, mean_c, acc, _ = hand_equal_count(c, v, 12)
    ref = spearmanr(mean_c, acc).statistic
    assert calcas.monotonicity(c, v, 12) == pytest.approx(ref, rel=1e-12)
    assert -1 <= ref <= 1


def test_monotonicity_perfect_case_and_undefined_case():
    # 5 bins of 10 samples, bin i at confidences ~ (i + .5) / 5, with i + 1 ... correct: accuracy rises
    c = np.concatenate([np.linspace(i / 5 + 0.01, (i + 1) / 5 - 0.01, 10) for i in range(5)])
    v = np.concatenate([[1.0] * (2 * i + 1) + [0.0] * (9 - 2 * i) for i in range(5)])
    # (scipy's Spearman of two identical rankings is 1 up to rounding: 0.9999999999999999)
    assert calcas.monotonicity(c, v, 5) == pytest.approx(1.0, abs=1e-12)
    assert calcas.monotonicity(c, v, 5, binning="equal_width") == pytest.approx(1.0, abs=1e-12)
    # accuracy falling with confidence: -1
    assert calcas.monotonicity(c, v[::-1].copy(), 5) == pytest.approx(-1.0, abs=1e-12)
    # constant accuracy: Spearman is undefined (documented NaN)
    assert math.isnan(calcas.monotonicity(c, np.ones_like(c), 5))


# ================================================================ bad input


@pytest.mark.parametrize("fn", [calcas.ece, calcas.mce, calcas.reliability_table, calcas.monotonicity,
                                calcas.ece_bootstrap])
def test_metric_bad_confidence(fn):
    c, v = make_binary(n=30)
    for bad, msg in [(np.nan, r"^confidence: contains 1 NaN or infinite"),
                     (np.inf, r"^confidence: contains 1 NaN or infinite"),
                     (1.5, r"^confidence: values must be <= 1"),
                     (-0.1, r"^confidence: values must be >= 0")]:
        with pytest.raises(ValueError, match=msg):
            fn(np.r_[c[:-1], bad], v, 3)
    with pytest.raises(ValueError, match=r"^correct: values must be <= 1"):
        fn(c, np.r_[v[:-1], 2.0], 3)
    with pytest.raises(ValueError, match=r"^correct: contains 1 NaN"):
        fn(c, np.r_[v[:-1], np.nan], 3)
    with pytest.raises(ValueError, match=r"length mismatch: confidence has 30, correct has 29"):
        fn(c, v[:-1], 3)
    with pytest.raises(ValueError, match=r"^confidence: is empty"):
        fn(np.array([]), np.array([]), 3)


@pytest.mark.parametrize("binning", ["equal_count", "equal_width"])
def test_metric_bad_n_bins(binning):
    c, v = make_binary(n=10)
    with pytest.raises(ValueError, match=r"^n_bins: must be >= 1"):
        calcas.ece(c, v, 0, binning)
    with pytest.raises(ValueError, match=r"^n_bins: expected an integer"):
        calcas.ece(c, v, 2.0, binning)
    if binning == "equal_count":
        with pytest.raises(ValueError, match=r"^n_bins: 11 bins need at least as many samples, got 10"):
            calcas.reliability_table(c, v, 11, binning)


def test_equal_width_ece_with_more_bins_than_samples():
    """Equal-width bins are fixed intervals of [0, 1]: on 4 rows, 10 bins leave 7 empty, which
    weigh 0 (by hand: 0.1 * 1/4 + 0.45 * 1/4 + 0.075 * 2/4 = 0.175; torchmetrics agrees)."""
    c, v = np.array([0.1, 0.55, 0.9, 0.95]), np.array([0, 1, 1, 1])
    assert calcas.ece(c, v, 10, binning="equal_width") == pytest.approx(0.175, abs=1e-12)
    ref = binary_calibration_error(torch.from_numpy(c), torch.from_numpy(v), n_bins=10, norm="l1").item()
    assert calcas.ece(c, v, 10, binning="equal_width") == pytest.approx(ref, rel=1e-6)
    assert (calcas.reliability_table(c, v, 10, binning="equal_width")["count"] > 0).sum() == 3


def test_metric_all_equal_confidences_form_one_bin_and_unknown_binning():
    # all 20 confidences equal: equal-count binning forms one bin (it used to be an error)
    c, v = np.full(20, 0.9), np.r_[np.ones(15), np.zeros(5)]
    t = calcas.reliability_table(c, v, 5)
    assert len(t) == 1 and t["count"].tolist() == [20]
    assert calcas.ece(c, v, 5) == pytest.approx(0.15, rel=1e-13)
    assert calcas.mce(c, v, 5) == pytest.approx(0.15, rel=1e-13)
    assert math.isnan(calcas.monotonicity(c, v, 5))
    point, low, high = calcas.ece_bootstrap(c, v, 5, n_boot=50)
    assert point == pytest.approx(0.15, rel=1e-13) and 0 <= low <= high <= 0.9
    with pytest.raises(ValueError, match=r"^binning: expected one of"):
        calcas.ece(*make_binary(n=20), 5, "uniform")


def test_nll_brier_bad_input():
    p, y = _probs(n=10, C=3)
    for fn in (calcas.nll, calcas.brier):
        with pytest.raises(ValueError, match=r"^labels: class indices must be < 3"):
            fn(p, np.r_[y[:-1], 3])
        with pytest.raises(ValueError, match=r"^labels: class indices must be >= 0"):
            fn(p, np.r_[y[:-1], -1])
        with pytest.raises(ValueError, match=r"length mismatch: probabilities has 10, labels has 9"):
            fn(p, y[:-1])
        with pytest.raises(ValueError, match=r"^probabilities: contains 1 NaN"):
            q = p.copy()
            q[0, 0] = np.nan
            fn(q, y)
        with pytest.raises(ValueError, match=r"^probabilities: values must be <= 1"):
            fn(p * 2, y)
        with pytest.raises(ValueError, match=r"^probabilities: is empty"):
            fn(np.empty((0, 3)), np.empty(0, dtype=int))
        with pytest.raises(ValueError, match=r"length mismatch: probabilities has 3, correct has 2"):
            fn(np.array([0.2, 0.5, 0.9]), np.array([0.0, 1.0]))


BOOTSTRAPS = [lambda c, v, **kw: calcas.ece_bootstrap(c, v, 3, **kw),
              lambda c, v, **kw: calcas.paired_difference_interval(c, v, **kw)]


@pytest.mark.parametrize("bootstrap", BOOTSTRAPS, ids=["ece_bootstrap", "paired_difference_interval"])
def test_bootstrap_bad_n_boot_and_level(bootstrap):
    c, v = make_binary(n=30)
    for n_boot, msg in [(10.5, r"^n_boot: expected an integer, got 10\.5$"),
                        (2.0, r"^n_boot: expected an integer, got 2\.0$"),
                        (True, r"^n_boot: expected an integer, got True$"),
                        ("100", r"^n_boot: expected an integer, got '100'$"),
                        (0, r"^n_boot: must be >= 1, got 0$"),
                        (-5, r"^n_boot: must be >= 1, got -5$")]:
        with pytest.raises(ValueError, match=msg):
            bootstrap(c, v, n_boot=n_boot)
    for level in (1.0, 0.0, -0.5, 1.5, float("nan"), True, "0.9", None):
        with pytest.raises(ValueError, match=r"^level: must be in \(0, 1\), got "):
            bootstrap(c, v, n_boot=5, level=level)
    # numpy scalars are fine
    assert bootstrap(c, v, n_boot=np.int64(5), level=np.float32(0.5)) == bootstrap(c, v, n_boot=5, level=0.5)


def test_the_books_worked_example():
    """book/intro.md works this ECE out by hand: 0.5 * |0.526 - 0.4| + 0.5 * |0.894 - 1.0| = 0.116."""
    import calcas
    conf = [0.35, 0.42, 0.55, 0.61, 0.70, 0.78, 0.85, 0.90, 0.95, 0.99]
    right = [0, 1, 0, 1, 0, 1, 1, 1, 1, 1]
    assert calcas.ece(conf, right, n_bins=2) == pytest.approx(0.5 * abs(0.526 - 0.4) + 0.5 * abs(0.894 - 1.0))
    assert calcas.equal_count_edges(conf, 2)[1] == pytest.approx(0.74)


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (512, 1000), (1, 1), (97, 3163)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_proportion_interval_matches_scipy_wilson(k, n, level):
    from scipy.stats import binomtest
    ref = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    low, high = calcas.proportion_interval(k, n, level=level)
    assert low == pytest.approx(ref.low, abs=1e-12) and high == pytest.approx(ref.high, abs=1e-12)


def test_proportion_interval_vectorised_and_bad_inputs():
    low, high = calcas.proportion_interval(np.array([1, 5, 0]), np.array([4, 5, 0]))
    assert low.shape == (3,) and np.isnan(low[2]) and high[1] == 1.0 and low[0] < 0.25 < high[0]
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        calcas.proportion_interval(6, 5)
    for level in (1.5, 0.0, True, "0.95"):
        with pytest.raises(ValueError, match=r"^level: must be in \(0, 1\), got "):
            calcas.proportion_interval(1, 5, level=level)


def test_paired_difference_interval_against_the_normal_approximation():
    """For large n the bootstrap percentile interval of a mean difference approaches
    mean ± z * sd / sqrt(n) of the paired differences (a hand computation)."""
    rng = np.random.default_rng(1)
    n = 20_000
    b = rng.random(n) < 0.80
    a = np.where(rng.random(n) < 0.9, b, rng.random(n) < 0.85)  # correlated with b, slightly better
    diff, low, high = calcas.paired_difference_interval(a, b, n_boot=2000, seed=3)
    d = a.astype(float) - b.astype(float)
    half = 1.959964 * d.std(ddof=1) / math.sqrt(n)
    assert diff == pytest.approx(d.mean(), abs=1e-15)
    assert low == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.15 * half)
    # the paired interval is much narrower than two separate Wilson intervals would suggest
    la, ha = calcas.proportion_interval(a.sum(), n)
    assert high - low < 0.5 * (ha - la) * 2
    assert calcas.paired_difference_interval(b, b, n_boot=50) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="correct_b"):
        calcas.paired_difference_interval(a, b[:-1])


def test_precision_interval_ignores_unrated_rows():
    flags = np.array([1, 1, 1, 1, 0, 1], bool)
    is_error = np.array([1.0, 0.0, np.nan, 1.0, 1.0, 1.0])
    p, low, high = calcas.precision_interval(flags, is_error)
    assert p == pytest.approx(3 / 4)
    assert (low, high) == pytest.approx(calcas.proportion_interval(3, 4))
    assert all(math.isnan(x) for x in calcas.precision_interval(np.zeros(3, bool), np.ones(3)))


def test_equal_width_puts_one_in_the_last_bin_where_torchmetrics_gives_it_its_own():
    """The README's and the Specification's claim: calcas folds c = 1.0 into the last bin;
    torchmetrics bins it alone, so the two differ exactly when rows at 1.0 are wrong."""
    c = np.array([0.95, 0.95, 1.0, 1.0])
    v = np.array([1.0, 1.0, 0.0, 0.0])
    # calcas, 2 equal-width bins: the bin [0.5, 1.0] holds all four rows, |0.975 - 0.5|
    assert calcas.ece(c, v, 2, binning="equal_width") == pytest.approx(0.475)
    ref = binary_calibration_error(torch.from_numpy(c), torch.from_numpy(v).long(), n_bins=2, norm="l1").item()
    assert ref == pytest.approx(0.5 * 0.05 + 0.5 * 1.0, rel=1e-6)  # [0.5, 1.0) and {1.0} apart: 0.525
    assert calcas.ece(c[:2], v[:2], 2, binning="equal_width") == pytest.approx(
        binary_calibration_error(torch.from_numpy(c[:2]), torch.from_numpy(v[:2]).long(), n_bins=2).item())
