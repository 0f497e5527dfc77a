"""Temperature and Platt scaling (SPEC §1) against scikit-learn, scipy and hand computations."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, logsumexp
from scipy.special import softmax as sp_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

import calcas

# ================================================================ references


class _StoredLogits(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose decision_function returns stored logits, looked up by the row
    index held in X[:, 0]. Wrapped in FrozenEstimator it lets CalibratedClassifierCV
    (method="temperature") calibrate arbitrary logits: sklearn's _TemperatureScaling
    consumes the decision_function output (n, C) as logits."""

    def __init__(self, logits=None):
        self.logits = logits

    def fit(self, X, y):  # never called through FrozenEstimator
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X):
        return self.logits[np.asarray(X)[:, 0].astype(np.int64)]

    def predict(self, X):
        return self.decision_function(X).argmax(axis=1)


def sklearn_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """T = 1 / beta_ from scikit-learn's CalibratedClassifierCV(..., method="temperature")."""
    est = _StoredLogits(logits)
    est.classes_ = np.arange(logits.shape[1])
    cal = CalibratedClassifierCV(FrozenEstimator(est), method="temperature")
    cal.fit(np.arange(len(logits))[:, None], labels)
    (calibrated,) = cal.calibrated_classifiers_
    (scaler,) = calibrated.calibrators
    return 1.0 / float(scaler.beta_)


def hand_nll(logits, labels, T: float) -> float:
    """Mean NLL of labels under softmax(z / T), in float64, with scipy's logsumexp."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    return float(np.mean(logsumexp(z / T, axis=1) - z[np.arange(len(z)), y] / T))


def scipy_temperature(logits, labels) -> tuple[float, float]:
    """Bounded 1-D search over T of the hand NLL; returns (T, NLL)."""
    r = minimize_scalar(lambda T: hand_nll(logits, labels, T), bounds=(0.02, 50.0), method="bounded",
                        options={"xatol": 1e-10})
    assert r.success
    return float(r.x), float(r.fun)


def make_logits(n=3000, C=10, T_true=2.5, seed=0):
    """Logits z; labels drawn from softmax(z / T_true), so the optimum T is near T_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=(n, C))
    p = sp_softmax(z / T_true, axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return z, np.minimum(y, C - 1)


def _as(container, a):
    return torch.from_numpy(np.ascontiguousarray(a)) if container == "torch" else a


# ================================================================ temperature scaling


@pytest.mark.parametrize("container", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_temperature_matches_sklearn_and_scipy(dtype, container):
    z, y = make_logits()
    z = z.astype(dtype)
    T = calcas.fit_temperature(_as(container, z), _as(container, y))
    nll_calcas = hand_nll(z, y, T)

    T_sk = sklearn_temperature(z, y)
    nll_sk = hand_nll(z, y, T_sk)
    T_sp, nll_sp = scipy_temperature(z, y)

    assert nll_calcas == pytest.approx(nll_sk, rel=1e-6)
    assert nll_calcas == pytest.approx(nll_sp, rel=1e-6)
    # a true optimum is not beaten by either reference (up to rounding)
    assert nll_calcas <= min(nll_sk, nll_sp) * (1 + 1e-9)
    # the optimum itself: Brent's bounded search locates T to ~sqrt(eps)
    assert T == pytest.approx(T_sp, rel=1e-5)
    assert 2.0 < T < 3.0  # labels were drawn at T_true = 2.5


@pytest.mark.parametrize("T_true, n, C", [(0.5, 2000, 4), (1.0, 1500, 2), (1.8, 10000, 5)])
def test_fit_temperature_matches_scipy_other_regimes(T_true, n, C):
    # under-confident (T < 1), binary, and a large n that takes calcas's row-sample start
    z, y = make_logits(n=n, C=C, T_true=T_true, seed=11)
    T = calcas.fit_temperature(z, y)
    T_sp, nll_sp = scipy_temperature(z, y)
    assert hand_nll(z, y, T) == pytest.approx(nll_sp, rel=1e-6)
    assert T == pytest.approx(T_sp, rel=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("factor", [1e-30, 1e-8, 1e8, 1e30])
@pytest.mark.parametrize("n", [3000, 10000])  # 10000 takes the row-sample start
def test_fit_temperature_is_scale_equivariant_at_extreme_scales(factor, dtype, n):
    # softmax(s z / (s T)) = softmax(z / T), so the fitted T must scale with the logits. At
    # 1e8 the fit used to report "every row is constant" (exp underflowed at beta = 1).
    z, y = make_logits(n=n)
    z = z.astype(dtype)
    T = calcas.fit_temperature(z, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        T_scaled = calcas.fit_temperature(z * dtype(factor), y)
    assert T_scaled / factor == pytest.approx(T, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("T", [0.25, 1.0, 3.7])
def test_temperature_nll_matches_hand(T, dtype):
    z, y = make_logits(n=500, C=6, seed=3)
    z = z.astype(dtype)
    assert calcas.temperature_nll(z, y, T) == pytest.approx(hand_nll(z, y, T), rel=1e-10)
    assert calcas.temperature_nll(torch.from_numpy(z), torch.from_numpy(y), T) == pytest.approx(
        hand_nll(z, y, T), rel=1e-10)


def test_temperature_nll_tiny_hand_case():
    # two samples, logits [0, ln 3] -> p = [1/4, 3/4]; labels 1 and 0
    z = np.array([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    expected = (-math.log(0.75) - math.log(0.25)) / 2
    assert calcas.temperature_nll(z, [1, 0], 1.0) == pytest.approx(expected, rel=1e-14)


def test_temperature_scaling_estimator():
    z, y = make_logits(n=2000, C=8, T_true=2.0, seed=5)
    z_test, _ = make_logits(n=300, C=8, seed=6)
    ts = calcas.TemperatureScaling()
    assert ts.fit(z, y) is ts
    assert isinstance(ts.temperature_, float) and ts.temperature_ > 0
    _, nll_sp = scipy_temperature(z, y)
    assert hand_nll(z, y, ts.temperature_) == pytest.approx(nll_sp, rel=1e-6)

    proba = ts.predict_proba(z_test)
    np.testing.assert_allclose(proba, sp_softmax(z_test / ts.temperature_, axis=1), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    conf = ts.transform(z_test)
    np.testing.assert_allclose(conf, proba.max(axis=1), rtol=1e-12)
    # torch input to the fitted object
    np.testing.assert_allclose(ts.transform(torch.from_numpy(z_test)), proba.max(axis=1), rtol=1e-12)


def test_unfitted_estimators_raise():
    with pytest.raises(RuntimeError, match="not fitted"):
        calcas.TemperatureScaling().predict_proba(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="not fitted"):
        calcas.TemperatureScaling().transform(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="not fitted"):
        calcas.PlattScaling().predict_proba(np.zeros(3))
    with pytest.raises(RuntimeError, match="not fitted"):
        calcas.PlattScaling().transform(np.zeros(3))


def test_multiclass_top1_ranking_can_change_with_temperature():
    """Why the ranking property below is stated per sample for C > 2: the ORDER OF SAMPLES
    by max softmax(z/T) is not invariant under T when C > 2 (SPEC §1 says 'never alter the
    ranking'; that holds for C = 2 and for the classes within a sample). Hand example."""
    a = np.array([3.0, 0.0, 0.0])    # one clear winner, two equal runners-up
    b = np.array([1.0, 0.0, -10.0])  # smaller margin, but one runner-up only
    conf = lambda z, T: 1.0 / np.exp((z - z.max()) / T).sum()  # noqa: E731
    assert conf(a, 1.0) > conf(b, 1.0)
    assert conf(a, 10.0) < conf(b, 10.0)
    got1 = calcas.max_prob_confidence(np.stack([a, b]), 1.0)[0]
    got10 = calcas.max_prob_confidence(np.stack([a, b]), 10.0)[0]
    np.testing.assert_allclose(got1, [conf(a, 1.0), conf(b, 1.0)], rtol=1e-12)
    np.testing.assert_allclose(got10, [conf(a, 10.0), conf(b, 10.0)], rtol=1e-12)


# ================================================================ Platt scaling


def make_scores(n=2000, a=1.3, b=-0.4, loc=0.0, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(loc, scale, size=n)
    v = (rng.random(n) < expit(a * s + b)).astype(float)
    return s, v


def sklearn_platt(s, v, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unconverged or deprecated fit must not pass silently
        lr = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=1000)
        lr.fit(np.asarray(s)[:, None], np.asarray(v).astype(int), sample_weight=sample_weight)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def scipy_platt(s, v):
    s, v = np.asarray(s, float), np.asarray(v, float)

    def f(w):
        t = w[0] * s + w[1]
        return np.mean(np.logaddexp(0.0, t) - v * t)

    def g(w):
        r = expit(w[0] * s + w[1]) - v
        return np.array([np.mean(r * s), np.mean(r)])

    def h(w):
        p = expit(w[0] * s + w[1])
        q = p * (1 - p)
        return np.array([[np.mean(q * s * s), np.mean(q * s)], [np.mean(q * s), np.mean(q)]])

    r = minimize(f, np.zeros(2), jac=g, hess=h, method="trust-exact", options={"gtol": 1e-10})
    # (trust-exact may report a stall once the gradient is at rounding level; check it directly)
    assert np.abs(g(r.x)).max() < 1e-8
    return float(r.x[0]), float(r.x[1])


@pytest.mark.parametrize("container", ["numpy", "torch"])
@pytest.mark.parametrize("a, b, loc, scale", [(1.3, -0.4, 0.0, 1.0), (0.8, -9.0, 12.0, 2.0),
                                              (-0.7, 0.5, 0.0, 3.0)])
def test_fit_platt_matches_sklearn_and_scipy(a, b, loc, scale, container):
    s, v = make_scores(a=a, b=b, loc=loc, scale=scale)
    a_c, b_c = calcas.fit_platt(_as(container, s), _as(container, v))
    a_sk, b_sk = sklearn_platt(s, v)
    a_sp, b_sp = scipy_platt(s, v)
    assert a_c == pytest.approx(a_sk, rel=1e-6) and b_c == pytest.approx(b_sk, rel=1e-6)
    assert a_c == pytest.approx(a_sp, rel=1e-6) and b_c == pytest.approx(b_sp, rel=1e-6)


@pytest.mark.parametrize("scale", [1e155, 1e-200, 1e300])
def test_fit_platt_at_any_score_scale(scale):
    """Scores at 1e155 made the old standardisation overflow (LinAlgError), at 1e-200 underflow
    ("did not converge"); temperature handles both, and so does Platt: the slope scales by
    1 / scale, the intercept stays, as scipy finds on the unscaled scores."""
    s, v = make_scores(a=1.3, b=-0.4, loc=0.0, scale=1.0)
    a_ref, b_ref = scipy_platt(s, v)
    a_c, b_c = calcas.fit_platt(s * scale, v)
    assert a_c * scale == pytest.approx(a_ref, rel=1e-6) and b_c == pytest.approx(b_ref, rel=1e-6, abs=1e-9)


def test_platt_fit_peaks_under_three_times_its_inputs():
    """Peak memory of the fit, as numpy allocates it, against the two input arrays (the target is
    at most 3x; the old loop reached 4.0x)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    s = rng.normal(size=400_000)
    v = (rng.random(s.size) < expit(1.3 * s + 0.2)).astype(np.float64)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        calcas.PlattScaling().fit(s, v)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 3 * (s.nbytes + v.nbytes), peak / (s.nbytes + v.nbytes)


def test_fit_platt_soft_verifier_scores_match_weighted_sklearn():
    # verified in [0, 1]: the NLL equals a logistic regression on duplicated rows with
    # label 1 weighted v and label 0 weighted 1 - v
    rng = np.random.default_rng(8)
    s = rng.normal(size=800)
    v = np.clip(expit(1.1 * s + 0.2) + rng.normal(0, 0.15, size=800), 0, 1)
    a_c, b_c = calcas.fit_platt(s, v)
    a_sk, b_sk = sklearn_platt(np.concatenate([s, s]), np.r_[np.ones(800), np.zeros(800)],
                               sample_weight=np.r_[v, 1 - v])
    assert a_c == pytest.approx(a_sk, rel=1e-6) and b_c == pytest.approx(b_sk, rel=1e-6)


def test_platt_scaling_estimator():
    s, v = make_scores(n=1500, seed=9)
    pl = calcas.PlattScaling()
    assert pl.fit(s, v) is pl
    a_sk, b_sk = sklearn_platt(s, v)
    assert pl.a_ == pytest.approx(a_sk, rel=1e-6) and pl.b_ == pytest.approx(b_sk, rel=1e-6)
    s_new = np.linspace(-4, 4, 17)
    np.testing.assert_allclose(pl.predict_proba(s_new), expit(a_sk * s_new + b_sk), rtol=1e-6)
    np.testing.assert_allclose(pl.transform(torch.from_numpy(s_new)), expit(a_sk * s_new + b_sk), rtol=1e-6)


def test_platt_on_classifier_top1_logit():
    # SPEC §1: for classifiers the Platt score is log(c / (1 - c)) of the top-1 confidence
    z, y = make_logits(n=1500, C=5, seed=12)
    c = sp_softmax(z, axis=1).max(axis=1)
    v = (z.argmax(axis=1) == y).astype(float)
    s = calcas.top1_logit(c)
    np.testing.assert_allclose(s, np.log(c / (1 - c)), rtol=1e-9)
    a_c, b_c = calcas.fit_platt(s, v)
    a_sk, b_sk = sklearn_platt(np.log(c / (1 - c)), v)
    assert a_c == pytest.approx(a_sk, rel=1e-6) and b_c == pytest.approx(b_sk, rel=1e-6)


# ================================================================ ranking (hypothesis)

_finite = dict(allow_nan=False, allow_infinity=False)


def _non_decreasing(values_in_key_order, tol=1e-12):
    """Ties allowed (and a few ulps of rounding)."""
    return bool(np.all(np.diff(values_in_key_order) >= -tol))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(z=hnp.arrays(np.float64, st.tuples(st.integers(4, 40), st.just(2)),
                    elements=st.floats(-20, 20, **_finite)),
       data=st.data())
def test_temperature_scaling_keeps_sample_ranking_binary(z, data):
    """C = 2: max softmax(z/T) = sigmoid(|z1 - z0| / T) is increasing in the margin for every
    T > 0, so the order of samples by confidence is unchanged."""
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(z), max_size=len(z))))
    try:
        ts = calcas.TemperatureScaling().fit(z, y)
    except ValueError:
        assume(False)  # no finite optimum (every label top-1, or uninformative logits)
    raw = sp_softmax(z, axis=1).max(axis=1)
    new = ts.transform(z)
    order = np.argsort(np.abs(z[:, 1] - z[:, 0]), kind="stable")  # exact key of raw confidence
    assert _non_decreasing(raw[order]) and _non_decreasing(new[order])
    # strict order where the raw confidences are clearly apart
    strict = np.diff(raw[order]) > 1e-9
    assert np.all(np.diff(new[order])[strict] >= 0)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(z=hnp.arrays(np.float64, st.tuples(st.integers(4, 30), st.integers(3, 6)),
                    elements=st.floats(-20, 20, **_finite)),
       data=st.data())
def test_temperature_scaling_keeps_class_ranking_multiclass(z, data):
    """C > 2: within every sample, the order of classes (hence the argmax) is unchanged."""
    y = np.array(data.draw(st.lists(st.integers(0, z.shape[1] - 1), min_size=len(z), max_size=len(z))))
    try:
        ts = calcas.TemperatureScaling().fit(z, y)
    except ValueError:
        assume(False)
    p = ts.predict_proba(z)
    for row_z, row_p in zip(z, p):
        order = np.argsort(row_z, kind="stable")
        assert _non_decreasing(row_p[order])
    conf, pred = calcas.max_prob_confidence(z, ts.temperature_)
    np.testing.assert_array_equal(pred, z.argmax(axis=1))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(s=hnp.arrays(np.float64, st.integers(4, 60), elements=st.floats(-30, 30, **_finite)),
       data=st.data())
def test_platt_scaling_is_monotone_in_the_score(s, data):
    """sigmoid(a s + b) is increasing in s when a > 0 (the usual case: higher score, more
    often correct) and decreasing when the scores are anti-informative (a < 0)."""
    v = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(s), max_size=len(s))), float)
    try:
        pl = calcas.PlattScaling().fit(s, v)
    except ValueError:
        assume(False)  # one outcome only, constant scores, or separated outcomes
    # the profile NLL in a is convex with slope -cov(s, v) at a = 0, so sign(a) = sign(cov)
    cov = float(np.mean((s - s.mean()) * (v - v.mean())))
    if abs(cov) > 1e-9 * (1 + np.abs(s).max()):
        assert np.sign(pl.a_) == np.sign(cov)
    p = pl.transform(s)
    order = np.argsort(s * np.sign(pl.a_), kind="stable")
    assert _non_decreasing(p[order])


# ================================================================ bad input


def test_temperature_fit_refuses_when_every_label_is_top1():
    z, _ = make_logits(n=50, C=4, seed=1)
    with pytest.raises(ValueError, match=r"^labels: every label is the model's top-1"):
        calcas.fit_temperature(z, z.argmax(axis=1))


def test_temperature_fit_refuses_uninformative_logits():
    # the label's logit equals its row's mean in every row: NLL'(beta = 0) = 0, optimum T = inf
    z = np.tile([1.0, 0.0, -1.0], (40, 1)) + np.random.default_rng(2).normal(size=(40, 1))
    with pytest.raises(ValueError, match=r"^labels: the logits rank the labels no better than uniform"):
        calcas.fit_temperature(z, np.ones(40, dtype=int))
    # labels always the argmin: worse than uniform
    z, _ = make_logits(n=60, C=3, seed=4)
    with pytest.raises(ValueError, match=r"^labels: the logits rank the labels no better"):
        calcas.fit_temperature(z, z.argmin(axis=1))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_temperature_fit_refuses_non_finite_logits(bad):
    z, y = make_logits(n=20, C=3)
    z[5, 2] = bad
    with pytest.raises(ValueError, match=r"^logits: contains 1 NaN or infinite"):
        calcas.fit_temperature(z, y)
    with pytest.raises(ValueError, match=r"^logits: contains 1 NaN or infinite"):
        calcas.TemperatureScaling().fit(torch.from_numpy(z).float(), torch.from_numpy(y))
    with pytest.raises(ValueError, match=r"^logits: contains 1 NaN or infinite"):
        calcas.temperature_nll(z, y, 1.0)


def test_temperature_fit_refuses_bad_labels():
    z, y = make_logits(n=20, C=3)
    with pytest.raises(ValueError, match=r"^labels: class indices must be >= 0"):
        calcas.fit_temperature(z, np.r_[y[:-1], -1])
    with pytest.raises(ValueError, match=r"^labels: class indices must be < 3"):
        calcas.fit_temperature(z, np.r_[y[:-1], 3])
    with pytest.raises(ValueError, match=r"^labels: class indices must be < 3"):
        calcas.temperature_nll(z, np.r_[y[:-1], 7], 1.0)
    with pytest.raises(ValueError, match=r"^labels: expected integer class indices"):
        calcas.fit_temperature(z, y + 0.5)
    with pytest.raises(ValueError, match=r"length mismatch: logits has 20, labels has 19"):
        calcas.fit_temperature(z, y[:-1])
    with pytest.raises(ValueError, match=r"length mismatch: logits has 20, labels has 21"):
        calcas.temperature_nll(z, np.r_[y, 0], 1.0)


def test_temperature_fit_refuses_empty():
    with pytest.raises(ValueError, match=r"^logits: is empty"):
        calcas.fit_temperature(np.empty((0, 3)), np.empty(0, dtype=int))
    with pytest.raises(ValueError, match=r"^labels: is empty"):
        calcas.fit_temperature(np.zeros((2, 3)) + [0, 1, 2], np.empty(0, dtype=int))


@pytest.mark.parametrize("T", [0.0, -1.5])
def test_temperature_nll_refuses_non_positive_temperature(T):
    z, y = make_logits(n=20, C=3)
    with pytest.raises(ValueError, match=r"^temperature:"):
        calcas.temperature_nll(z, y, T)


def test_platt_refuses_single_outcome():
    s = np.linspace(-1, 1, 10)
    with pytest.raises(ValueError, match=r"^verified: all values are 0"):
        calcas.fit_platt(s, np.zeros(10))
    with pytest.raises(ValueError, match=r"^verified: all values are 1"):
        calcas.PlattScaling().fit(s, np.ones(10))


def test_platt_refuses_constant_scores():
    with pytest.raises(ValueError, match=r"^scores: all values equal"):
        calcas.fit_platt(np.full(6, 2.0), [0, 1, 0, 1, 1, 0])


@pytest.mark.parametrize("s, v", [
    ([-2.0, -1.0, -0.5, 0.3, 1.0, 2.0], [0, 0, 0, 1, 1, 1]),   # small, separated
    ([-2.0, -1.0, -0.5, 0.3, 1.0, 2.0], [1, 1, 1, 0, 0, 0]),   # separated the other way
    ([-2.0, -1.0, 0.0, 0.0, 1.0, 2.0], [0, 0, 0, 1, 1, 1]),    # quasi-separated (tie at 0)
    ([-1.0, 0.0, 1.0, 2.0], [0, 0.3, 1, 1]),                   # soft label at the boundary only
])
def test_platt_refuses_perfect_separation(s, v):
    with pytest.raises(ValueError, match=r"^scores: they separate verified outcomes perfectly"):
        calcas.fit_platt(np.array(s), np.array(v, float))


def test_platt_refuses_perfect_separation_large():
    rng = np.random.default_rng(0)
    s = rng.normal(size=1000)
    with pytest.raises(ValueError, match=r"^scores: they separate verified outcomes perfectly"):
        calcas.fit_platt(s, (s > 0.1).astype(float))


def test_platt_bad_input():
    s, v = make_scores(n=10)
    with pytest.raises(ValueError, match=r"^scores: contains 1 NaN"):
        calcas.fit_platt(np.r_[s[:-1], np.nan], v)
    with pytest.raises(ValueError, match=r"^scores: contains 1 NaN or infinite"):
        calcas.fit_platt(np.r_[s[:-1], np.inf], v)
    with pytest.raises(ValueError, match=r"^verified: values must be <= 1"):
        calcas.fit_platt(s, np.r_[v[:-1], 2.0])
    with pytest.raises(ValueError, match=r"^verified: values must be >= 0"):
        calcas.fit_platt(s, np.r_[v[:-1], -1.0])
    with pytest.raises(ValueError, match=r"length mismatch: scores has 10, verified has 9"):
        calcas.fit_platt(s, v[:-1])
    with pytest.raises(ValueError, match=r"^scores: is empty"):
        calcas.fit_platt(np.empty(0), np.empty(0))


def test_fit_temperature_on_logits_of_subnormal_spread():
    """Hypothesis found it: logits ~2e-311 apart gave 1 / scale = inf and a NaN (a RuntimeWarning)."""
    z = np.array([[-2.22507386e-311, 0.0], [2.22507386e-311, -2.22507386e-311], [0.0, 0.0], [0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        T = calcas.fit_temperature(z, np.array([0, 0, 0, 0]))
    assert np.isfinite(T) and 0 < T < 1e-300


def test_temperature_fits_on_the_cal_rows_whose_label_is_known():
    """Unknown labels (-1, scored by verified) take no part in the temperature's likelihood; a
    row whose pred is unknown gets the largest calibrated probability, as its raw confidence is
    the largest raw one (pred -1 never indexes the last class)."""
    rng = np.random.default_rng(3)
    n, C = 600, 4
    z = rng.normal(size=(n, C)) * 2
    label = rng.integers(0, C, n)
    z[np.arange(n), label] += 1.5
    pred = z.argmax(1)
    verified = (pred == label).astype(float)
    label_seen, pred_seen = label.copy(), pred.copy()
    label_seen[:50] = -1
    pred_seen[50:60] = -1
    r = calcas.make_records([f"r{i}" for i in range(n)], pred_seen, label=label_seen, verified=verified, logits=z)
    cal = np.arange(n) % 2 == 0
    out = calcas.calibrate_records(r, cal)
    known = cal & (label_seen >= 0)
    expected = calcas.TemperatureScaling().fit(z[known], label[known])
    assert out.method == "temperature" and out.calibrator.temperature_ == pytest.approx(expected.temperature_)
    probabilities = expected.predict_proba(z)
    np.testing.assert_allclose(out.calibrated[50:60], probabilities[50:60].max(1))
    np.testing.assert_allclose(out.calibrated[60:], probabilities[np.arange(60, n), pred[60:]])
    nothing_known = calcas.make_records(r.id, pred, label=np.full(n, -1), verified=verified, logits=z)
    assert calcas.calibrate_records(nothing_known, cal).method == "platt"
    with pytest.raises(ValueError, match=r"temperature scaling needs known labels on the cal rows"):
        calcas.calibrate_records(nothing_known, cal, method="temperature")
