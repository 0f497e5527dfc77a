"""ECE estimators (calcas.metrics): debiased ECE against a Monte Carlo of Kumar et al.'s
procedure, min_detectable_ece against a simulation, default_n_bins' rule."""
from __future__ import annotations

import numpy as np
import pytest

import calcas
from calcas.binning import _assign_bins, _edges


def make_model(n, seed=0, amplitude=0.1):
    """Confidences ~ U(0.5, 1); P(correct | c) = c - amplitude * sin(pi c) (true ECE known)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 1.0, n)
    v = (rng.random(n) < np.clip(c - amplitude * np.sin(np.pi * c), 0, 1)).astype(float)
    return c, v


def kumar_resampled(c, v, n_bins, binning, resamples, seed):
    """Kumar, Liang & Ma (2019)'s debiased ECE for p = 1 as they compute it: each bin's label
    mean redrawn from N(acc, acc (1 - acc) / n_b), the ECE averaged over redraws,
    debiased = 2 * plug-in - mean of the redrawn ECEs."""
    bins = _assign_bins(c, _edges(c, n_bins, binning))
    groups = [b for b in range(bins.max() + 1) if np.any(bins == b)]
    size = np.array([np.sum(bins == b) for b in groups], dtype=float)
    acc = np.array([v[bins == b].mean() for b in groups])
    conf = np.array([c[bins == b].mean() for b in groups])
    weight = size / size.sum()
    plugin = float(weight @ np.abs(acc - conf))
    rng = np.random.default_rng(seed)
    redrawn = rng.normal(acc, np.sqrt(acc * (1 - acc) / size), size=(resamples, len(size)))
    return plugin, 2 * plugin - float(np.mean(np.abs(redrawn - conf) @ weight))


# ================================================================ debiased ECE


@pytest.mark.parametrize("n, n_bins, binning", [(300, 15, "equal_count"), (2000, 15, "equal_count"),
                                                (1000, 5, "equal_width"), (200, 30, "equal_count")])
def test_debiased_is_the_expectation_of_kumars_resampling(n, n_bins, binning):
    c, v = make_model(n, seed=n)
    plugin, kumar = kumar_resampled(c, v, n_bins, binning, resamples=400_000, seed=1)
    assert calcas.ece(c, v, n_bins, binning) == pytest.approx(plugin, abs=1e-12)
    # Monte Carlo error of Kumar's mean: sd of one redrawn ECE <= 0.1 / sqrt(400k) = 1.6e-4 / ...
    assert calcas.ece(c, v, n_bins, binning, estimator="debiased") == pytest.approx(kumar, abs=3e-4)


def test_debiased_equals_plugin_without_noise_and_takes_fractional_scores():
    # every bin all-right or all-wrong: zero variance, nothing to correct
    c = np.linspace(0.05, 0.95, 40)
    v = (c > 0.5).astype(float)
    assert calcas.ece(c, v, 4, "equal_width", estimator="debiased") == pytest.approx(calcas.ece(c, v, 4, "equal_width"))
    # fractional verifier scores: sigma^2 = the scores' variance / n_b, by hand for one bin
    c1, v1 = np.full(4, 0.6), np.array([0.0, 0.5, 1.0, 0.5])
    g, sigma = 0.5 - 0.6, np.sqrt(np.var(v1) / 4)
    z = g / sigma
    from scipy.stats import norm
    folded = sigma * np.sqrt(2 / np.pi) * np.exp(-z * z / 2) + g * (1 - 2 * norm.cdf(-z))
    assert calcas.ece(c1, v1, 1, estimator="debiased") == pytest.approx(2 * abs(g) - folded, abs=1e-12)


def test_debiased_removes_the_bias_of_a_clear_miscalibration():
    # gap 0.1 sin(pi c) > 0 on (0.5, 1), so binning cancels nothing and the binned true ECE is
    # E[0.1 sin(pi c)] for c ~ U(0.5, 1) = 0.1 * 2/pi; 300 data sets of n = 1000, 15 bins
    truth = 0.1 * 2 / np.pi
    plug, deb = [], []
    for seed in range(300):
        c, v = make_model(1000, seed=seed)
        plug.append(calcas.ece(c, v))
        deb.append(calcas.ece(c, v, estimator="debiased"))
    plug_bias, deb_bias = np.mean(plug) - truth, np.mean(deb) - truth
    se = np.std(plug) / np.sqrt(len(plug))
    assert plug_bias > 5 * se  # the plug-in's upward bias is plain ...
    # ... the debiased one is smaller; where a bin's gap is near its sigma it over-corrects
    # (E[2|g_hat|] - E|g + sqrt(2) sigma Z| < g there), so its bias can be of either sign
    assert abs(deb_bias) < plug_bias and abs(deb_bias) < 0.005


def test_debiased_stays_biased_for_a_perfectly_calibrated_model():
    # true ECE 0: the plug-in's bias is sigma sqrt(2/pi) per bin, the debiased (2 - sqrt 2) of that
    plug, deb = [], []
    for seed in range(300):
        c, v = make_model(1500, seed=seed, amplitude=0.0)
        plug.append(calcas.ece(c, v))
        deb.append(calcas.ece(c, v, estimator="debiased"))
    ratio = np.mean(deb) / np.mean(plug)
    assert 0 < np.mean(deb) < np.mean(plug)
    assert ratio == pytest.approx(2 - np.sqrt(2), abs=0.08)


def test_ece_estimator_bad_value():
    c, v = make_model(100)
    with pytest.raises(ValueError, match=r"estimator: expected one of \('plugin', 'debiased'\), got 'kumar'"):
        calcas.ece(c, v, estimator="kumar")


# ================================================================ min_detectable_ece


@pytest.mark.parametrize("n, n_bins, accuracy", [(3000, 15, 0.5), (2000, 10, 0.85), (600, 5, 0.7)])
def test_min_detectable_ece_has_the_stated_power_in_a_simulation(n, n_bins, accuracy):
    d = calcas.min_detectable_ece(n, n_bins, accuracy=accuracy)
    m = n // n_bins
    rng = np.random.default_rng(n)
    draws = 20_000
    # a bin of m samples at true accuracy `accuracy`; confidence accuracy (null) or accuracy - d
    acc_hat = rng.binomial(m, accuracy, size=(2, draws, n_bins)) / m
    null = np.abs(acc_hat[0] - accuracy).mean(axis=1)
    alt = np.abs(acc_hat[1] - (accuracy - d)).mean(axis=1)
    threshold = np.quantile(null, 0.95)
    # the normal approximation and the binomial's discreteness: within 0.05 of the stated 0.8
    assert np.mean(alt > threshold) == pytest.approx(0.8, abs=0.05)


def test_min_detectable_ece_falls_with_n_and_rises_with_bins():
    assert calcas.min_detectable_ece(20_000) < calcas.min_detectable_ece(2000) < calcas.min_detectable_ece(500)
    assert calcas.min_detectable_ece(2000, 5) < calcas.min_detectable_ece(2000, 15) < calcas.min_detectable_ece(2000, 30)
    # noise shrinks as accuracy leaves 0.5; a higher power needs a larger gap
    assert calcas.min_detectable_ece(2000, accuracy=0.9) < calcas.min_detectable_ece(2000)
    assert calcas.min_detectable_ece(2000, power=0.95) > calcas.min_detectable_ece(2000)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=10, n_bins=15), r"n_bins: 15 bins need at least as many samples, got 10"),
    (dict(n=0), r"n: must be >= 1, got 0"),
    (dict(n=2.5), r"n: expected an integer"),
    (dict(n=100, accuracy=1.0), r"accuracy: must be in \(0, 1\), got 1.0"),
    (dict(n=100, accuracy=0), r"accuracy: must be in \(0, 1\), got 0"),
    (dict(n=100, level=1.5), r"level: must be in \(0, 1\), got 1.5"),
    (dict(n=100, power=0.0), r"power: must be in \(0, 1\), got 0.0"),
    (dict(n=100, power=True), r"power: must be in \(0, 1\), got True"),
])
def test_min_detectable_ece_bad_inputs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        calcas.min_detectable_ece(**kwargs)


# ================================================================ default_n_bins


def test_default_n_bins_rule():
    ns = [1, 99, 100, 250, 500, 1000, 1499, 1500, 2000, 10**6]
    # the stated rule, and its consequences: 15 at the book's halves (n >= 2,000), fewer below
    assert [calcas.default_n_bins(n) for n in ns] == [min(15, max(1, n // 100)) for n in ns]
    assert all(calcas.default_n_bins(n) == 15 for n in range(2000, 30_000, 997))
    assert calcas.default_n_bins(500) == 5
    # always a valid n_bins for ece on n samples, with >= 100 per bin when n >= 100
    for n in [1, 7, 150, 1999]:
        k = calcas.default_n_bins(n)
        assert 1 <= k <= n
        assert n < 100 or n / k >= 100
    with pytest.raises(ValueError, match=r"n: must be >= 1, got 0"):
        calcas.default_n_bins(0)
