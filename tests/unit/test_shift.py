"""Shift of the data (SPEC §3c): the confidence shift test, label-free accuracy estimates and the
recalibration curve, against scipy, hand computations and simulations with a known truth."""
from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import expit

import calcas
from calcas.datasets import public
from calcas.shift import AccuracyEstimate, ShiftTest, _platt_with_prior, confidence_shift_test, predict_accuracy, \
    recalibration_curve

# ================================================================ references


def hand_ks(s, t):
    """max over thresholds x of |F_s(x) - F_t(x)|, one threshold at a time (a plain loop)."""
    s, t = np.asarray(s, float), np.asarray(t, float)
    best = 0.0
    for x in np.unique(np.concatenate((s, t))):
        best = max(best, abs(np.sum(s <= x) / len(s) - np.sum(t <= x) / len(t)))
    return best


def ks_times_nm(s, t):
    """The KS statistic times n_s * n_t, in exact integers: max |#s<=x * n_t - #t<=x * n_s|."""
    x = np.unique(np.concatenate((s, t)))
    cs = (s[:, None] <= x[None, :]).sum(0).astype(np.int64)
    ct = (t[:, None] <= x[None, :]).sum(0).astype(np.int64)
    return int(np.abs(cs * len(t) - ct * len(s)).max())


def hand_tied_share(s, t):
    """Share of the pooled rows whose value appears more than once, by counting."""
    pooled = list(np.concatenate((s, t)))
    counts = Counter(pooled)
    return sum(counts[v] > 1 for v in pooled) / len(pooled)


def halves_fpr(sample, n_splits, seed, **kwargs):
    """Share of n_splits random halves of one sample that the shift test rejects at 0.05."""
    rng = np.random.default_rng(seed)
    h = len(sample) // 2
    rejected = 0
    for _ in range(n_splits):
        p = rng.permutation(len(sample))
        rejected += confidence_shift_test(sample[p[:h]], sample[p[h:]], **kwargs).p_value < 0.05
    return rejected / n_splits


def shift_cases():
    """(source, target) pairs: different sizes, continuous and tied (rounded to 2 decimals)."""
    rng = np.random.default_rng(11)
    return [
        (rng.beta(5, 2, 40), rng.beta(5, 2, 55)),
        (rng.beta(5, 2, 300), rng.beta(4, 2, 170)),
        (rng.random(1200), rng.beta(1.2, 1, 900)),
        (np.round(rng.beta(5, 2, 500), 2), np.round(rng.beta(5, 2.3, 650), 2)),
        (np.round(rng.beta(2, 2, 30), 2), np.round(rng.beta(2, 2, 25), 2)),
        (np.round(rng.beta(5, 2, 3000), 2), np.round(rng.beta(5, 2, 2500), 2)),
    ]


# ================================================================ confidence_shift_test


@pytest.mark.parametrize("case", range(6))
def test_ks_matches_scipy_ks_2samp(case):
    """method="ks": statistic and p-value equal scipy.stats.ks_2samp, with and without ties."""
    s, t = shift_cases()[case]
    result = confidence_shift_test(s, t, method="ks")
    ref = stats.ks_2samp(s, t)
    assert isinstance(result, ShiftTest)
    assert result.method == "ks"
    assert result.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-15)
    assert (result.n_source, result.n_target) == (len(s), len(t))


@pytest.mark.parametrize("case", range(6))
def test_statistic_equals_hand_loop_for_both_methods(case):
    """The KS statistic of both methods equals a hand loop over thresholds of |F_s - F_t|."""
    s, t = shift_cases()[case]
    expected = hand_ks(s, t)
    assert confidence_shift_test(s, t, method="ks").statistic == pytest.approx(expected, abs=1e-12)
    assert confidence_shift_test(s, t, method="permutation", n_permutations=5).statistic == \
        pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("case", range(6))
def test_effect_sizes_and_tied_share(case):
    """mean_difference = mean(t) - mean(s), wasserstein = scipy's, tied_share by a hand count."""
    s, t = shift_cases()[case]
    for method in ("ks", "permutation"):
        result = confidence_shift_test(s, t, method=method, n_permutations=3)
        assert result.mean_difference == pytest.approx(np.mean(t) - np.mean(s), abs=1e-12)
        assert result.wasserstein == pytest.approx(stats.wasserstein_distance(s, t), abs=1e-12)
        assert result.tied_share == pytest.approx(hand_tied_share(s, t), abs=1e-15)
    if case in (3, 5):
        assert result.tied_share > 0.5  # 2-decimal confidences of hundreds of rows tie a lot


def test_tied_share_hand_example():
    """tied_share on a small example counted on paper: 0.5 appears 3 times, 0.2 twice, 0.9 once."""
    # pooled: 0.5 0.2 0.9 | 0.5 0.5 0.2 -> tied rows: 0.5 x3 and 0.2 x2 = 5 of 6
    result = confidence_shift_test([0.5, 0.2, 0.9], [0.5, 0.5, 0.2])
    assert result.tied_share == pytest.approx(5 / 6)
    assert result.statistic == pytest.approx(1 / 3)  # at x = 0.5: F_s = 2/3, F_t = 3/3
    assert result.mean_difference == pytest.approx(1.2 / 3 - 1.6 / 3)


@pytest.mark.parametrize("case, seed", [(0, 0), (4, 5), (3, 2)])
def test_permutation_p_value_recomputed_by_hand(case, seed):
    """p = (1 + #{D* >= D}) / (1 + n_permutations), D* recomputed in exact integers from the
    same seeded generator (np.random.default_rng(seed).permutation of the pooled rows)."""
    s, t = shift_cases()[case]
    n_perm = 300
    d = ks_times_nm(s, t)
    rng = np.random.default_rng(seed)
    pooled = np.concatenate((s, t))
    exceed = 0
    for _ in range(n_perm):
        shuffled = rng.permutation(pooled)
        exceed += ks_times_nm(shuffled[:len(s)], shuffled[len(s):]) >= d
    expected = (1 + exceed) / (1 + n_perm)
    result = confidence_shift_test(s, t, method="permutation", n_permutations=n_perm, seed=seed)
    assert result.p_value == pytest.approx(expected, abs=1e-15)
    assert 0 < result.p_value <= 1


def test_permutation_p_value_near_exact_enumeration():
    """On 8 + 7 tied rows the permutation p-value is within Monte Carlo error of the exact p
    from enumerating all C(15, 7) = 6435 splits (an implementation-free reference)."""
    rng = np.random.default_rng(3)
    s = np.round(rng.beta(5, 2, 8), 1)
    t = np.round(rng.beta(3, 2, 7), 1)
    pooled = np.concatenate((s, t))
    d = ks_times_nm(s, t)
    hits = total = 0
    for idx in itertools.combinations(range(15), 8):
        mask = np.zeros(15, bool)
        mask[list(idx)] = True
        hits += ks_times_nm(pooled[mask], pooled[~mask]) >= d
        total += 1
    exact = hits / total
    n_perm = 4000
    p = confidence_shift_test(s, t, method="permutation", n_permutations=n_perm, seed=1).p_value
    sd = np.sqrt(exact * (1 - exact) / n_perm)
    assert abs(p - exact) < 4 * sd + 1 / n_perm, (p, exact)


def test_permutation_seed_shift_and_null():
    """Same seed -> same p; a clear shift gets the smallest p 1/(1+n); no shift -> large p on average."""
    rng = np.random.default_rng(0)
    s, t = rng.beta(5, 2, 200), rng.beta(5, 2, 150)
    a = confidence_shift_test(s, t, method="permutation", n_permutations=199, seed=7)
    b = confidence_shift_test(s, t, method="permutation", n_permutations=199, seed=7)
    assert a == b
    shifted = confidence_shift_test(rng.beta(2, 5, 300), rng.beta(5, 2, 300), method="permutation",
                                    n_permutations=199, seed=0)
    assert shifted.p_value == pytest.approx(1 / 200)
    null_p = [confidence_shift_test(rng.beta(5, 2, 100), rng.beta(5, 2, 100), method="permutation",
                                    n_permutations=99, seed=k).p_value for k in range(20)]
    assert all(0 < p <= 1 for p in null_p)
    assert np.mean(null_p) > 0.3, null_p  # uniform under H0: mean 0.5


def test_ks_false_positive_rate_on_halves_of_one_sample():
    """200 random halves of one continuous sample (4,000 beta draws): KS rejects 2-8% at 0.05."""
    sample = np.random.default_rng(21).beta(5, 2, 4000)
    fpr = halves_fpr(sample, 200, seed=1, method="ks")
    assert 0.02 <= fpr <= 0.08, fpr


def test_false_positive_rate_on_heavily_tied_data():
    """Confidences rounded to 1 decimal: KS is conservative (FPR <= 0.08) and the permutation
    test (199 permutations, 100 splits) holds its level (FPR in [0.01, 0.10])."""
    rng = np.random.default_rng(22)
    sample = np.round(rng.beta(5, 2, 4000), 1)
    fpr_ks = halves_fpr(sample, 200, seed=2, method="ks")
    assert fpr_ks <= 0.08, fpr_ks
    small = np.round(rng.beta(5, 2, 1000), 1)
    fpr_perm = halves_fpr(small, 100, seed=3, method="permutation", n_permutations=199)
    assert 0.01 <= fpr_perm <= 0.10, fpr_perm


def test_power_against_a_small_mean_shift():
    """A shift of the mean confidence by 0.03 at 2,000 rows per side: KS detects it in most of 50 draws."""
    rng = np.random.default_rng(23)
    detected = 0
    for _ in range(50):
        s = rng.beta(2, 5, 2000)
        t = rng.beta(2, 5, 2000) + 0.03  # beta(2, 5) > 0.97 has probability ~1e-8: no clipping needed
        assert t.max() <= 1
        detected += confidence_shift_test(s, t).p_value < 0.05
    assert detected >= 40, f"detected in {detected} of 50 draws"


@pytest.mark.skipif(public.data_root() is None, reason="public data not available (set CALCAS_DATA)")
@pytest.mark.parametrize("model", ["Llama-70b", "Yi-34b", "gpt-4-turbo"])
def test_ks_false_positive_rate_on_real_mmlu_confidences(model):
    """On one LLM's 6,000 MMLU confidences (gpt-4-turbo: 63% tied rows), 200 random halves are
    rejected at 0.05 in 2-8% of splits."""
    assert model in public.plaut_models("mmlu")
    confidence = public.plaut_records("mmlu", model).raw_confidence()
    assert len(confidence) == 6000
    fpr = halves_fpr(confidence, 200, seed=4, method="ks")
    assert 0.02 <= fpr <= 0.08, fpr


def test_shift_test_bad_inputs():
    """Unknown method, too few rows, confidences outside [0, 1] or NaN, n_permutations=0 are refused."""
    ok = np.array([0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"method: expected one of .*'bootstrap'"):
        confidence_shift_test(ok, ok, method="bootstrap")
    with pytest.raises(ValueError, match=r"at least 2 rows each, got 1 and 3"):
        confidence_shift_test([0.5], ok)
    with pytest.raises(ValueError, match=r"at least 2 rows each, got 3 and 1"):
        confidence_shift_test(ok, [0.5])
    with pytest.raises(ValueError, match=r"conf_source: values must be <= 1"):
        confidence_shift_test([0.2, 1.2], ok)
    with pytest.raises(ValueError, match=r"conf_target: values must be >= 0"):
        confidence_shift_test(ok, [0.2, -0.1])
    with pytest.raises(ValueError, match=r"conf_source: contains 1 NaN"):
        confidence_shift_test([0.2, np.nan], ok)
    with pytest.raises(ValueError, match=r"conf_target: contains 1 NaN"):
        confidence_shift_test(ok, [np.nan, 0.3])
    with pytest.raises(ValueError, match=r"n_permutations: must be >= 1, got 0"):
        confidence_shift_test(ok, ok, method="permutation", n_permutations=0)


# ================================================================ predict_accuracy


def calibrated_population(rng, n):
    """Confidences beta(5, 2) (accuracy 5/7) and correctness Bernoulli(confidence): calibrated."""
    c = rng.beta(5, 2, n)
    return c, (rng.random(n) < c).astype(float)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_estimates_by_hand(seed):
    """ac = mean(ct); doc = mean(vs) + mean(ct) - mean(cs); atc: threshold = (1 - acc) quantile of
    cs, estimate = share of ct above it."""
    rng = np.random.default_rng(seed)
    cs, vs = calibrated_population(rng, 150 + 50 * seed)
    ct = rng.beta(4, 2, 120)
    if seed == 2:  # ties and graded correctness
        cs, ct, vs = np.round(cs, 1), np.round(ct, 1), rng.random(len(cs))
    ac = predict_accuracy(cs, vs, ct, method="ac", n_boot=20)
    doc = predict_accuracy(cs, vs, ct, method="doc", n_boot=20)
    atc = predict_accuracy(cs, vs, ct, method="atc", n_boot=20)
    assert isinstance(ac, AccuracyEstimate)
    assert ac.estimate == pytest.approx(np.mean(ct), abs=1e-12) and ac.threshold is None
    assert doc.estimate == pytest.approx(np.mean(vs) + np.mean(ct) - np.mean(cs), abs=1e-12) and doc.threshold is None
    threshold = np.quantile(cs, 1 - np.mean(vs))
    assert atc.threshold == pytest.approx(threshold, abs=1e-12)
    assert atc.estimate == pytest.approx(np.mean(ct > threshold), abs=1e-12)
    assert (ac.method, doc.method, atc.method) == ("ac", "doc", "atc")


def test_atc_hand_example():
    """ATC, AC and DOC worked on paper for five source and four target rows."""
    cs = [0.9, 0.8, 0.7, 0.6, 0.5]
    vs = [1, 1, 1, 0, 0]          # source accuracy 0.6
    ct = [0.95, 0.65, 0.7, 0.3]
    # threshold: the 0.4 quantile of sorted cs [0.5, 0.6, 0.7, 0.8, 0.9]: position 0.4 * 4 = 1.6,
    # 0.6 + 0.6 * (0.7 - 0.6) = 0.66 (3 of 5 source rows, 0.6 = the accuracy, lie above it);
    # target rows above 0.66: 0.95 and 0.7 -> 2 / 4 = 0.5
    atc = predict_accuracy(cs, vs, ct, method="atc", n_boot=10)
    assert atc.threshold == pytest.approx(0.66)
    assert atc.estimate == pytest.approx(0.5)
    # ac: (0.95 + 0.65 + 0.7 + 0.3) / 4 = 0.65; doc: 0.6 + 0.65 - 0.7 = 0.55
    assert predict_accuracy(cs, vs, ct, method="ac", n_boot=10).estimate == pytest.approx(0.65)
    assert predict_accuracy(cs, vs, ct, method="doc", n_boot=10).estimate == pytest.approx(0.55)


def test_estimates_accurate_without_shift():
    """Calibrated population, no shift: ac, doc and atc are within 0.02 of the true target accuracy."""
    rng = np.random.default_rng(30)
    cs, vs = calibrated_population(rng, 5000)
    ct, vt = calibrated_population(rng, 5000)
    for method in ("ac", "doc", "atc"):
        result = predict_accuracy(cs, vs, ct, method=method, n_boot=200)
        assert abs(result.estimate - 5 / 7) < 0.02, (method, result)
        assert abs(result.estimate - vt.mean()) < 0.02, (method, result, vt.mean())
        assert result.low <= result.high


def test_ac_interval_coverage():
    """The "ac" bootstrap interval contains the true target accuracy (5/7) in >= 85% of 40 seeds."""
    hits = 0
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        cs, vs = calibrated_population(rng, 800)
        ct, _ = calibrated_population(rng, 800)
        r = predict_accuracy(cs, vs, ct, method="ac", n_boot=300, seed=seed)
        hits += r.low <= 5 / 7 <= r.high
    assert hits / 40 >= 0.85, f"coverage {hits}/40"


def test_interval_width_matches_normal_theory():
    """The bootstrap interval of "ac" and "doc" is as wide as the normal-theory interval of its mean(s)."""
    rng = np.random.default_rng(31)
    cs, vs = calibrated_population(rng, 2000)
    ct, _ = calibrated_population(rng, 1500)
    z = stats.norm.ppf(0.95)
    se = {"ac": np.std(ct) / np.sqrt(len(ct)),
          "doc": np.sqrt(np.var(vs - cs) / len(cs) + np.var(ct) / len(ct))}
    for method, s in se.items():
        r = predict_accuracy(cs, vs, ct, method=method, n_boot=2000, level=0.9, seed=3)
        assert r.level == 0.9
        assert (r.high - r.low) == pytest.approx(2 * z * s, rel=0.12), method
        assert abs((r.high + r.low) / 2 - r.estimate) < 0.3 * s, method


def test_label_shift_blind_spot():
    """Confidences unchanged but correctness flipped with probability 0.2 on the target: all three
    estimates miss the true accuracy by more than 0.05."""
    rng = np.random.default_rng(32)
    cs, vs = calibrated_population(rng, 5000)
    ct, vt = calibrated_population(rng, 5000)
    flip = rng.random(len(vt)) < 0.2
    vt = np.where(flip, 1 - vt, vt)
    truth = vt.mean()  # about 0.8 * 5/7 + 0.2 * 2/7 = 0.629
    assert abs(truth - (0.8 * 5 / 7 + 0.2 * 2 / 7)) < 0.02
    # the shift test sees nothing either: the confidences have one distribution
    assert confidence_shift_test(cs, ct).statistic < 0.05
    for method in ("ac", "doc", "atc"):
        r = predict_accuracy(cs, vs, ct, method=method, n_boot=100)
        assert abs(r.estimate - truth) > 0.05, (method, r.estimate, truth)


def test_interval_order_and_seed():
    """low <= high for every method, and the same seed gives identical results (another seed differs)."""
    rng = np.random.default_rng(33)
    cs, vs = calibrated_population(rng, 60)
    ct = rng.beta(3, 2, 40)
    for method in ("ac", "doc", "atc"):
        a = predict_accuracy(cs, vs, ct, method=method, n_boot=300, seed=5)
        b = predict_accuracy(cs, vs, ct, method=method, n_boot=300, seed=5)
        c = predict_accuracy(cs, vs, ct, method=method, n_boot=300, seed=6)
        assert a == b
        assert a.low <= a.high
        assert (a.low, a.high) != (c.low, c.high)
        assert a.estimate == c.estimate


def test_predict_accuracy_bad_inputs():
    """Unknown method, mismatched lengths, level outside (0, 1), n_boot=0 and too few rows are refused."""
    cs, vs, ct = [0.9, 0.6, 0.7], [1, 0, 1], [0.8, 0.5]
    with pytest.raises(ValueError, match=r"method: expected one of .*'mean'"):
        predict_accuracy(cs, vs, ct, method="mean")
    with pytest.raises(ValueError, match=r"length mismatch: conf_source has 3, correct_source has 2 rows"):
        predict_accuracy(cs, vs[:2], ct)
    for level in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"level: must be in \(0, 1\)"):
            predict_accuracy(cs, vs, ct, level=level)
    with pytest.raises(ValueError, match=r"n_boot: must be >= 1, got 0"):
        predict_accuracy(cs, vs, ct, n_boot=0)
    with pytest.raises(ValueError, match=r"at least 2 rows each, got 1 and 2"):
        predict_accuracy([0.9], [1], ct)
    with pytest.raises(ValueError, match=r"at least 2 rows each, got 3 and 1"):
        predict_accuracy(cs, vs, [0.4])
    with pytest.raises(ValueError, match=r"conf_target: values must be <= 1"):
        predict_accuracy(cs, vs, [0.4, 1.5])
    with pytest.raises(ValueError, match=r"correct_source: values must be <= 1"):
        predict_accuracy(cs, [1, 2, 0], ct)


# ================================================================ recalibration_curve


def platt_population(rng, n, a, b):
    """Scores N(0.5, 1.5^2); correct ~ Bernoulli(sigmoid(a * score + b)): Platt-calibrated by (a, b)."""
    s = rng.normal(0.5, 1.5, n)
    return s, (rng.random(n) < expit(a * s + b)).astype(float)


@pytest.fixture(scope="module")
def shifted():
    """A source calibrated by sigmoid(s) and a target whose true map is sigmoid(0.5 s - 0.7)."""
    rng = np.random.default_rng(40)
    ss, vs = platt_population(rng, 4000, 1.0, 0.0)
    st, vt = platt_population(rng, 4000, 0.5, -0.7)
    return ss, vs, st, vt


def hand_fisher(scores, a, b):
    """Average per-row Fisher information of Platt's (a, b): mean of p(1-p) [[s^2, s], [s, 1]]."""
    info = np.zeros((2, 2))
    for s in scores:
        p = 1 / (1 + np.exp(-(a * s + b)))
        x = np.array([s, 1.0])
        info += p * (1 - p) * np.outer(x, x)
    return info / len(scores)


def map_reference(scores, correct, prior, precision):
    """argmin of summed binary NLL + 0.5 d' P d (d = theta - prior), by Nelder-Mead."""
    def objective(theta):
        z = theta[0] * scores + theta[1]
        nll = np.sum(np.where(correct > 0, np.log1p(np.exp(-z)), np.log1p(np.exp(z))))
        d = theta - prior
        return nll + 0.5 * d @ precision @ d
    res = optimize.minimize(objective, prior, method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000, "maxfev": 40000})
    res = optimize.minimize(objective, res.x, method="Nelder-Mead",  # restart: NM can stall
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000, "maxfev": 40000})
    return res.x


def test_source_and_none_rows_by_hand():
    """The "source" row is ece(sigmoid(a s + b)) on the test rows, (a, b) from PlattScaling on the
    source and the test rows the first round(test_fraction * n) of default_rng(seed).permutation(n);
    the "none" row is ece(sigmoid(s)) on the same rows."""
    rng = np.random.default_rng(41)
    ss, vs = platt_population(rng, 700, 1.3, 0.2)
    st, vt = platt_population(rng, 900, 0.6, -0.4)
    seed, fraction, n_bins = 17, 0.3, 12
    df = recalibration_curve(ss, vs, st, vt, sizes=(20, 100), n_repeats=4, test_fraction=fraction,
                             n_bins=n_bins, seed=seed)
    platt = calcas.PlattScaling().fit(ss, vs)
    test = np.random.default_rng(seed).permutation(len(st))[:round(fraction * len(st))]
    assert len(test) == 270
    source = calcas.ece(expit(platt.a_ * st[test] + platt.b_), vt[test], n_bins)
    none = calcas.ece(expit(st[test]), vt[test], n_bins)
    rows = df.set_index("fit")
    assert rows.loc["source", "ece_mean"] == pytest.approx(source, abs=1e-12)
    assert rows.loc["none", "ece_mean"] == pytest.approx(none, abs=1e-12)
    assert list(df.columns) == ["fit", "m", "ece_mean", "ece_low", "ece_high", "ece_sd", "fallbacks"]
    assert list(zip(df["fit"], df["m"])) == [("none", 0), ("source", 0), ("target", 20), ("source prior", 20),
                                             ("target", 100), ("source prior", 100)]


def test_target_fit_recovers_and_improves_with_m(shifted):
    """On a target miscalibrated by a known map, the target fit at the largest m beats the source
    fit, and the mean ECE of both refits decreases (up to noise 0.005) as m grows."""
    ss, vs, st, vt = shifted
    sizes = (25, 100, 400, 1600)
    df = recalibration_curve(ss, vs, st, vt, sizes=sizes, n_repeats=30, seed=3)
    source = df.loc[df.fit == "source", "ece_mean"].item()
    for fit in ("target", "source prior"):
        curve = df[df.fit == fit].set_index("m")["ece_mean"]
        assert list(curve.index) == list(sizes)
        assert curve[1600] < source - 0.05, (fit, curve.to_dict(), source)
        assert np.all(np.diff(curve.to_numpy()) <= 0.005), (fit, curve.to_dict())
        assert curve[1600] < curve[25]
    assert (df.loc[df.fit == "source prior", "fallbacks"] == 0).all()


def test_source_prior_map_matches_nelder_mead():
    """The "source prior" fit minimises summed NLL + 0.5 d' P d with P = prior_rows x the average
    Fisher information at the source fit (all computed here): the private MAP helper agrees with
    Nelder-Mead, and so does the public curve's ECE of its one draw."""
    rng = np.random.default_rng(42)
    ss, vs = platt_population(rng, 600, 1.0, 0.0)
    st, vt = platt_population(rng, 400, 0.5, -0.7)
    seed, m, prior_rows, fraction, n_bins = 9, 40, 50.0, 0.5, 10
    platt = calcas.PlattScaling().fit(ss, vs)
    prior = np.array([platt.a_, platt.b_])
    precision = prior_rows * hand_fisher(ss, platt.a_, platt.b_)
    # the one drawn set of a curve with sizes=(m,), n_repeats=1: the split, then one choice from the pool
    gen = np.random.default_rng(seed)
    order = gen.permutation(len(st))
    n_test = round(fraction * len(st))
    test, pool = order[:n_test], order[n_test:]
    drawn = gen.choice(pool, size=m, replace=False)
    reference = map_reference(st[drawn], vt[drawn], prior, precision)
    got = _platt_with_prior(st[drawn], vt[drawn], prior, precision)
    assert got == pytest.approx(reference, abs=1e-5)
    assert np.abs(reference - prior).max() > 0.05  # the target rows did move the fit
    df = recalibration_curve(ss, vs, st, vt, sizes=(m,), n_repeats=1, prior_rows=prior_rows,
                             test_fraction=fraction, n_bins=n_bins, seed=seed)
    expected = calcas.ece(expit(reference[0] * st[test] + reference[1]), vt[test], n_bins)
    assert df.loc[df.fit == "source prior", "ece_mean"].item() == pytest.approx(expected, abs=1e-6)


def test_prior_rows_limits(shifted):
    """prior_rows = 1e6: the "source prior" ECE at small m is the source row's (within 1e-3);
    prior_rows = 1e-6: at the largest m it is the target fit's (within 1e-3, same draws)."""
    ss, vs, st, vt = shifted
    strong = recalibration_curve(ss, vs, st, vt, sizes=(25, 50), n_repeats=10, prior_rows=1e6, seed=4)
    source = strong.loc[strong.fit == "source", "ece_mean"].item()
    for m in (25, 50):
        value = strong.loc[(strong.fit == "source prior") & (strong.m == m), "ece_mean"].item()
        assert value == pytest.approx(source, abs=1e-3)
    weak = recalibration_curve(ss, vs, st, vt, sizes=(25, 1600), n_repeats=10, prior_rows=1e-6, seed=4)
    big = weak[weak.m == 1600].set_index("fit")
    assert big.loc["source prior", "ece_mean"] == pytest.approx(big.loc["target", "ece_mean"], abs=1e-3)
    assert big.loc["target", "fallbacks"] == 0
    assert abs(big.loc["target", "ece_mean"] - source) > 0.05  # the two limits are far apart


def test_interval_columns(shifted):
    """ece_low <= ece_mean <= ece_high and ece_sd > 0 on every refit row; the m = 0 rows have none."""
    ss, vs, st, vt = shifted
    df = recalibration_curve(ss, vs, st, vt, sizes=(30, 300), n_repeats=12, level=0.9, seed=5)
    refits = df[df.m > 0]
    assert len(refits) == 4
    assert (refits.ece_low <= refits.ece_mean).all() and (refits.ece_mean <= refits.ece_high).all()
    assert (refits.ece_sd > 0).all()
    # the half-width is the t-quantile times the standard error of the 12 draws
    half = stats.t.ppf(0.95, 11) * refits.ece_sd / np.sqrt(12)
    np.testing.assert_allclose(refits.ece_high - refits.ece_mean, half, rtol=1e-9)
    assert df[df.m == 0][["ece_low", "ece_high", "ece_sd"]].isna().all().all()


def test_recalibration_bad_inputs():
    """Sizes beyond the pool (message gives the rows left), empty sizes, test_fraction 0 or 1,
    prior_rows <= 0, n_bins over the test rows and mismatched lengths are refused."""
    rng = np.random.default_rng(43)
    ss, vs = platt_population(rng, 200, 1.0, 0.0)
    st, vt = platt_population(rng, 100, 0.5, 0.0)
    with pytest.raises(ValueError, match=r"sizes: each m must be at most the 50 target rows left"):
        recalibration_curve(ss, vs, st, vt, sizes=(10, 51))
    with pytest.raises(ValueError, match=r"at most the 70 target rows left"):
        recalibration_curve(ss, vs, st, vt, sizes=(71,), test_fraction=0.3)
    with pytest.raises(ValueError, match=r"sizes: each m must be at most"):
        recalibration_curve(ss, vs, st, vt, sizes=())
    with pytest.raises(ValueError, match=r"sizes: must be >= 1, got 0"):
        recalibration_curve(ss, vs, st, vt, sizes=(0, 10))
    for fraction in (0, 1, 0.0, 1.0, -0.2):
        with pytest.raises(ValueError, match=r"test_fraction: must be a number in \(0, 1\)"):
            recalibration_curve(ss, vs, st, vt, sizes=(10,), test_fraction=fraction)
    for prior_rows in (0, 0.0, -5.0):
        with pytest.raises(ValueError, match=r"prior_rows: must be a finite number > 0"):
            recalibration_curve(ss, vs, st, vt, sizes=(10,), prior_rows=prior_rows)
    with pytest.raises(ValueError, match=r"test_fraction: 0.5 of 100 target rows leaves 50 test rows, fewer than the 60 bins"):
        recalibration_curve(ss, vs, st, vt, sizes=(10,), n_bins=60)
    with pytest.raises(ValueError, match=r"length mismatch: score_source has 200, correct_source has 199 rows"):
        recalibration_curve(ss, vs[:-1], st, vt, sizes=(10,))
    with pytest.raises(ValueError, match=r"length mismatch: score_target has 100, correct_target has 99 rows"):
        recalibration_curve(ss, vs, st, vt[:-1], sizes=(10,))
    with pytest.raises(ValueError, match=r"n_repeats: must be >= 1"):
        recalibration_curve(ss, vs, st, vt, sizes=(10,), n_repeats=0)


def test_recalibration_edge_inputs_named():
    """numpy numbers are numbers; inf, True and a string are not; a one-outcome source and a test split
    smaller than the bins are named."""
    rng = np.random.default_rng(3)
    s = rng.normal(size=400)
    v = (rng.random(400) < 1 / (1 + np.exp(-s))).astype(float)
    calcas.shift.recalibration_curve(s, v, s, v, sizes=(25,), n_repeats=2, prior_rows=np.int64(5))
    for bad in (float("inf"), True, "5"):
        with pytest.raises(ValueError, match="prior_rows: must be a finite number > 0"):
            calcas.shift.recalibration_curve(s, v, s, v, sizes=(25,), n_repeats=2, prior_rows=bad)
    with pytest.raises(ValueError, match="test_fraction: must be a number in"):
        calcas.shift.recalibration_curve(s, v, s, v, sizes=(25,), test_fraction="half")
    with pytest.raises(ValueError, match="test_fraction: 0.001 of 400 target rows leaves 0 test rows"):
        calcas.shift.recalibration_curve(s, v, s, v, sizes=(25,), test_fraction=0.001)
    with pytest.raises(ValueError, match="score_source, correct_source: no Platt fit"):
        calcas.shift.recalibration_curve(s, np.ones(400), s, v, sizes=(25,))
