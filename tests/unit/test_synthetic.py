"""Tests of calcas.make_synthetic: requested accuracy, flips, calibration, correlation.

Accuracy, ECE and temperatures are computed here with numpy / scipy, not with calcas.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize
from scipy.special import log_softmax, softmax

import calcas
from calcas import make_synthetic


def conf_and_pred(logits):
    p = softmax(np.asarray(logits, dtype=np.float64), axis=1)
    return p.max(axis=1), p.argmax(axis=1)


def ece_equal_count(conf, correct, n_bins=15):
    order = np.argsort(conf, kind="stable")
    total = 0.0
    for idx in np.array_split(order, n_bins):
        total += len(idx) / len(conf) * abs(conf[idx].mean() - correct[idx].mean())
    return total


@pytest.fixture(scope="module")
def big():
    # accuracy 0.9999 gives an "almost oracle" model whose argmax recovers the true label
    return make_synthetic(20_000, n_classes=10, accuracy=(0.7, 0.85, 0.9999), confidence_scale=(1.0, 2.0, 1.0),
                          correlation=0.3, flip_rate=0.1, seed=42)


def test_accuracy_against_true_labels(big):
    records = list(big.values())
    clean = ~records[0].is_noisy          # on these rows the given label is the true label
    for r, target in zip(records, (0.7, 0.85, 0.9999)):
        _, pred = conf_and_pred(r.logits)
        np.testing.assert_array_equal(pred, r.pred)
        acc = np.mean(pred[clean] == r.label[clean])
        assert abs(acc - target) < 0.02, (r.manifest["model"], acc, target)


def test_flip_rate_and_flipped_labels_differ_from_truth(big):
    records = list(big.values())
    noisy = records[0].is_noisy
    assert noisy.dtype == bool
    for r in records:
        np.testing.assert_array_equal(r.is_noisy, noisy)   # same labels for every model
        np.testing.assert_array_equal(r.label, records[0].label)
        np.testing.assert_array_equal(r.id, records[0].id)
    assert abs(noisy.mean() - 0.1) < 0.01
    # the almost-oracle predicts the true class: it matches the label on clean rows and
    # (nearly) never on flipped rows, so flipped labels differ from the truth
    oracle = records[2]
    agree = oracle.pred == oracle.label
    assert agree[~noisy].mean() > 0.999
    assert agree[noisy].mean() < 0.002
    # the flipped label is spread over the other classes
    wrong = oracle.label[noisy] != oracle.pred[noisy]
    offsets = (oracle.label[noisy][wrong] - oracle.pred[noisy][wrong]) % 10
    counts = np.bincount(offsets, minlength=10)
    assert counts[0] == 0
    assert counts[1:].min() > 0.7 * counts[1:].mean()
    # verified is pred == given label
    np.testing.assert_array_equal(oracle.verified, agree.astype(float))


def test_confidence_scale_sets_calibration():
    sets = make_synthetic(20_000, n_classes=10, accuracy=(0.75, 0.75, 0.75), confidence_scale=(1.0, 2.0, 0.5),
                          correlation=0.0, flip_rate=0.0, seed=1)
    out = {}
    for r, scale in zip(sets.values(), (1.0, 2.0, 0.5)):
        conf, pred = conf_and_pred(r.logits)
        correct = (pred == r.label).astype(float)
        out[scale] = (conf.mean(), correct.mean(), ece_equal_count(conf, correct))
    mean_conf, acc, ece = out[1.0]
    assert ece < 0.02
    assert abs(mean_conf - acc) < 0.01
    mean_conf, acc, ece = out[2.0]
    assert mean_conf > acc + 0.05 and ece > 0.05        # over-confident
    mean_conf, acc, ece = out[0.5]
    assert mean_conf < acc - 0.05 and ece > 0.05        # under-confident


def nll_at(z, y, T):
    return -log_softmax(z / T, axis=1)[np.arange(len(y)), y].mean()


def test_temperature_scaling_recovers_scale():
    r = make_synthetic(20_000, n_classes=10, accuracy=(0.8,), confidence_scale=(2.0,), correlation=0.0,
                       flip_rate=0.0, seed=7)["model_0"]
    z = r.logits.astype(np.float64)
    T = calcas.TemperatureScaling().fit(r.logits, r.label).temperature_
    assert abs(T - 2.0) / 2.0 < 0.05
    # independent check: scipy's bounded 1-D minimiser of the NLL finds the same T
    res = optimize.minimize_scalar(lambda t: nll_at(z, r.label, t), bounds=(0.2, 10.0), method="bounded",
                                   options={"xatol": 1e-8})
    assert abs(res.x - 2.0) / 2.0 < 0.05
    assert T == pytest.approx(res.x, rel=1e-4)


def test_correlation_makes_errors_coincide():
    shares = {}
    for rho in (0.0, 0.8):
        sets = make_synthetic(10_000, n_classes=10, accuracy=(0.8, 0.8), confidence_scale=(1.0, 1.0),
                              correlation=rho, flip_rate=0.0, seed=3)
        a, b = sets.values()
        wa, wb = a.pred != a.label, b.pred != b.label
        shares[rho] = (np.mean(wa & wb), wa.mean(), wb.mean())
    both0, ea, eb = shares[0.0]
    assert abs(both0 - ea * eb) < 0.01          # independent mistakes
    both8, ea8, eb8 = shares[0.8]
    assert abs(ea8 - 0.2) < 0.02 and abs(eb8 - 0.2) < 0.02   # accuracy unchanged by correlation
    assert both8 > both0 + 0.05


def test_same_seed_same_logits_other_seed_differs():
    kw = dict(n_classes=5, accuracy=(0.7, 0.9), confidence_scale=(1.5, 1.0), correlation=0.3, flip_rate=0.05)
    a = make_synthetic(500, seed=9, **kw)
    b = make_synthetic(500, seed=9, **kw)
    c = make_synthetic(500, seed=10, **kw)
    for name in a:
        np.testing.assert_array_equal(a[name].logits, b[name].logits)
        np.testing.assert_array_equal(a[name].label, b[name].label)
        np.testing.assert_array_equal(a[name].is_noisy, b[name].is_noisy)
        assert not np.array_equal(a[name].logits, c[name].logits)
    assert a["model_0"].logits.dtype == np.float32
    assert a["model_0"].logits.shape == (500, 5)


def test_names_and_manifest():
    sets = make_synthetic(50, n_classes=3, accuracy=(0.6, 0.8), confidence_scale=(1.0, 1.0), names=("s", "l"), seed=0)
    assert list(sets) == ["s", "l"]
    assert sets["s"].manifest["model"] == "s"
    assert sets["l"].manifest["dataset"] == "synthetic"
    assert sets["l"].manifest["parameters"]["accuracy"] == 0.8


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_classes=10, accuracy=(0.1,), confidence_scale=(1.0,)), "accuracy"),   # exactly chance
    (dict(n_classes=4, accuracy=(0.2,), confidence_scale=(1.0,)), "accuracy"),    # below chance
    (dict(accuracy=(0.7, 1.0), confidence_scale=(1.0, 1.0)), "accuracy"),
    (dict(accuracy=(0.7,), confidence_scale=(0.0,)), "confidence_scale"),
    (dict(accuracy=(0.7,), confidence_scale=(-1.0,)), "confidence_scale"),
    (dict(accuracy=(0.7, 0.8), confidence_scale=(1.0,)), "confidence_scale"),
    (dict(accuracy=(0.7,), confidence_scale=(1.0,), names=("a", "b")), "names"),
    (dict(correlation=1.0), "correlation"),
    (dict(correlation=-0.1), "correlation"),
    (dict(flip_rate=1.0), "flip_rate"),
    (dict(n_classes=1), "n_classes"),
])
def test_bad_parameters_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        make_synthetic(20, seed=0, **kwargs)
