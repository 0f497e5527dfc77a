"""Confidence functions (SPEC §1) checked against scipy and hand computations."""
from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.special
import torch

import calcas


def _logits(n=200, C=7, seed=0, scale=3.0):
    return np.random.default_rng(seed).normal(scale=scale, size=(n, C))


# ---------------------------------------------------------------- softmax / top-1 confidence


@pytest.mark.parametrize("T", [0.3, 1.0, 2.5])
def test_softmax_matches_scipy(T):
    z = _logits()
    expected = scipy.special.softmax(z / T, axis=1)
    got = calcas.softmax(z, temperature=T)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_softmax_hand_computed_small_case():
    # softmax([0, ln 2, ln 5]) = [1, 2, 5] / 8
    z = np.array([[0.0, math.log(2.0), math.log(5.0)]])
    np.testing.assert_allclose(calcas.softmax(z), [[1 / 8, 2 / 8, 5 / 8]], rtol=1e-14)
    # at T = 2 the weights are the square roots: [1, sqrt 2, sqrt 5] / (1 + sqrt 2 + sqrt 5)
    w = np.array([1.0, math.sqrt(2.0), math.sqrt(5.0)])
    np.testing.assert_allclose(calcas.softmax(z, temperature=2.0), [w / w.sum()], rtol=1e-14)


@pytest.mark.parametrize("T", [0.5, 1.0, 4.0])
def test_max_prob_confidence_matches_hand(T):
    z = _logits(seed=1)
    p = scipy.special.softmax(z / T, axis=1)
    conf, pred = calcas.max_prob_confidence(z, temperature=T)
    np.testing.assert_array_equal(pred, p.argmax(axis=1))
    np.testing.assert_allclose(conf, p.max(axis=1), rtol=1e-12)
    assert conf.shape == (len(z),) and np.all((conf > 0) & (conf <= 1))


def test_max_prob_confidence_extreme_logits_stay_finite():
    z = np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]])
    conf, pred = calcas.max_prob_confidence(z)
    assert np.all(np.isfinite(conf))
    np.testing.assert_allclose(conf, [1.0, 1.0 / 3.0], rtol=1e-14)
    assert pred[0] == 0


@pytest.mark.parametrize("z, T, expected", [
    ([[1e308, 0.0]], 0.1, [1.0, 0.0]),                 # z / T overflows to inf
    ([[1e308, -1e308]], 0.1, [1.0, 0.0]),              # z - max overflows to -inf
    ([[-1e308, 1e308, 1e308]], 0.5, [0.0, 0.5, 0.5]),
    ([[3.0, 1.0]], 1e-300, [1.0, 0.0]),                # tiny temperature
])
def test_huge_logits_and_temperatures_give_the_limit_not_nan(z, T, expected):
    """Shifting by the row max leaves the answer unchanged (softmax is shift-invariant) and keeps
    every exp finite; the limits here are exact in float64."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning escapes either
        np.testing.assert_array_equal(calcas.softmax(z, T), [expected])
        conf, pred = calcas.max_prob_confidence(z, T)
        np.testing.assert_array_equal(conf, [max(expected)])
        np.testing.assert_array_equal(pred, [int(np.argmax(expected))])
        for k in range(len(expected)):
            np.testing.assert_array_equal(calcas.class_confidence(z, [k], T), [expected[k]])
        np.testing.assert_array_equal(calcas.restricted_confidence(z, np.arange(len(expected)), T), [expected])


def test_shifted_softmax_matches_scipy_on_large_but_representable_logits():
    # z / T stays finite here, so scipy's own softmax is a valid reference
    z = _logits(n=50, C=6, seed=8, scale=1e306)
    for T in (1.0, 7.0):
        np.testing.assert_allclose(calcas.softmax(z, T), scipy.special.softmax(z / T, axis=1), rtol=1e-12, atol=0)
        np.testing.assert_allclose(calcas.max_prob_confidence(z, T)[0],
                                   scipy.special.softmax(z / T, axis=1).max(axis=1), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_max_prob_confidence_chunks_match_scipy_for_every_float_dtype(dtype, monkeypatch):
    # 7 elements per chunk with 3 classes: 2 rows a chunk, the last chunk has 1 row
    monkeypatch.setattr(calcas.confidence, "_CHUNK_ELEMENTS", 7)
    z = _logits(n=11, C=3, seed=9).astype(dtype)
    p = scipy.special.softmax(z.astype(np.float64) / 1.3, axis=1)
    conf, pred = calcas.max_prob_confidence(z, 1.3)
    np.testing.assert_allclose(conf, p.max(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(pred, p.argmax(axis=1))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_max_prob_confidence_peak_memory_is_under_twice_the_logits(dtype):
    z = _logits(n=4000, C=300, seed=10).astype(dtype)
    tracemalloc.start()
    try:
        calcas.max_prob_confidence(z, 1.5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert z.nbytes + peak <= 2 * z.nbytes


@pytest.mark.parametrize("T", [0.7, 1.0, 3.0])
def test_class_confidence_matches_scipy(T):
    z = _logits(seed=2)
    y = np.random.default_rng(3).integers(0, z.shape[1], len(z))
    expected = scipy.special.softmax(z / T, axis=1)[np.arange(len(z)), y]
    np.testing.assert_allclose(calcas.class_confidence(z, y, temperature=T), expected, rtol=1e-12)


def test_class_confidence_rejects_bad_classes():
    z = _logits(n=4, C=3)
    with pytest.raises(ValueError, match=r"^classes:"):
        calcas.class_confidence(z, [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"^classes:"):
        calcas.class_confidence(z, [0, -1, 2, 1])
    with pytest.raises(ValueError, match=r"^classes:"):
        calcas.class_confidence(z, [0, 1, 2])
    # fractional or boolean indices are refused, not truncated
    with pytest.raises(ValueError, match=r"^classes: expected integer class indices, got dtype float64$"):
        calcas.class_confidence(z[:2], [1.7, 0.2])
    with pytest.raises(ValueError, match=r"^classes: expected integer class indices, got dtype bool$"):
        calcas.class_confidence(z[:2], [True, False])
    with pytest.raises(ValueError, match=r"^classes: expected a 1-D array, got shape \(2, 1\)$"):
        calcas.class_confidence(z[:2], [[1], [0]])
    # integer-valued floats are class indices
    np.testing.assert_array_equal(calcas.class_confidence(z[:2], [1.0, 0.0]), calcas.class_confidence(z[:2], [1, 0]))


def test_restricted_confidence_renormalises_over_option_ids():
    rng = np.random.default_rng(4)
    V = 50
    z = rng.normal(scale=4.0, size=(30, V))
    ids = np.array([7, 3, 42, 11])  # option order A, B, C, D (deliberately not sorted)
    got = calcas.restricted_confidence(z, ids)
    # hand: exp of the chosen logits, divided by their sum (row by row)
    expected = np.empty((len(z), len(ids)))
    for i in range(len(z)):
        w = np.array([math.exp(z[i, j]) for j in ids])
        expected[i] = w / w.sum()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # the rest of the vocabulary does not matter
    z2 = z.copy()
    others = np.setdiff1d(np.arange(V), ids)
    z2[:, others] += 100.0
    np.testing.assert_allclose(calcas.restricted_confidence(z2, ids), expected, rtol=1e-12)
    # with a temperature
    T = 2.0
    np.testing.assert_allclose(calcas.restricted_confidence(z, ids, temperature=T),
                               scipy.special.softmax(z[:, ids] / T, axis=1), rtol=1e-12)


def test_restricted_confidence_rejects_bad_ids():
    z = _logits(n=3, C=10)
    with pytest.raises(ValueError, match=r"^option_token_ids:"):
        calcas.restricted_confidence(z, [1, 10])
    with pytest.raises(ValueError, match=r"^option_token_ids:"):
        calcas.restricted_confidence(z, [2, 2, 3])
    with pytest.raises(ValueError, match=r"^option_token_ids:"):
        calcas.restricted_confidence(z, [4])
    with pytest.raises(ValueError, match=r"^option_token_ids: expected integer class indices, got dtype float64$"):
        calcas.restricted_confidence(z, [1.5, 3.0])


# ---------------------------------------------------------------- sequences


def _padded_logprobs():
    rng = np.random.default_rng(5)
    lengths = [3, 1, 5, 2]
    L = max(lengths)
    lp = np.full((len(lengths), L), np.nan)
    mask = np.zeros((len(lengths), L), dtype=bool)
    for i, k in enumerate(lengths):
        lp[i, :k] = -rng.exponential(0.5, size=k)
        mask[i, :k] = True
    return lp, mask, lengths


def test_sequence_likelihood_with_mask_and_nan_padding():
    lp, mask, lengths = _padded_logprobs()
    expected = [math.exp(sum(lp[i, :k])) for i, k in enumerate(lengths)]
    got = calcas.sequence_likelihood(lp, mask)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.all((got > 0) & (got <= 1))


def test_sequence_likelihood_without_mask_is_product_of_probabilities():
    p = np.array([[0.5, 0.5, 0.8], [1.0, 0.9, 0.1]])
    np.testing.assert_allclose(calcas.sequence_likelihood(np.log(p)), [0.2, 0.09], rtol=1e-12)


def test_sequence_likelihood_rejects_positive_logprobs_and_bad_mask():
    with pytest.raises(ValueError, match=r"^token_logprobs:"):
        calcas.sequence_likelihood(np.array([[-0.1, 0.3]]))
    with pytest.raises(ValueError, match=r"^mask:"):
        calcas.sequence_likelihood(np.array([[-0.1, -0.3]]), np.array([[True]]))
    with pytest.raises(ValueError, match=r"^mask:"):
        calcas.sequence_likelihood(np.array([[-0.1, -0.3]]), np.array([[False, False]]))
    # NaN inside the sequence without a mask is refused
    with pytest.raises(ValueError, match=r"^token_logprobs:.*NaN"):
        calcas.sequence_likelihood(np.array([[-0.1, np.nan]]))


def test_mean_token_logit_with_mask():
    z = np.array([[2.0, 4.0, np.nan, np.nan], [1.0, -1.0, 3.0, 5.0], [7.5, np.nan, np.nan, np.nan]])
    mask = ~np.isnan(z)
    np.testing.assert_allclose(calcas.mean_token_logit(z, mask), [3.0, 2.0, 7.5], rtol=1e-14)
    # a mask may also hide real values (not only NaN padding)
    m2 = mask.copy()
    m2[1, 3] = False
    np.testing.assert_allclose(calcas.mean_token_logit(z, m2), [3.0, 1.0, 7.5], rtol=1e-14)
    # without a mask, every column counts
    np.testing.assert_allclose(calcas.mean_token_logit(np.array([[1.0, 2.0, 6.0]])), [3.0])


def test_top1_logit_matches_hand_and_clips():
    c = np.array([0.5, 0.9, 0.1, 0.75])
    expected = [math.log(x / (1 - x)) for x in c]
    np.testing.assert_allclose(calcas.top1_logit(c), expected, rtol=1e-12, atol=1e-15)
    ends = calcas.top1_logit(np.array([0.0, 1.0]))
    assert np.all(np.isfinite(ends))
    # documented clip to [1e-12, 1 - 1e-12] (as doubles; 1 - 1e-12 is not exact in binary)
    lo, hi = 1e-12, 1.0 - 1e-12
    np.testing.assert_allclose(ends, [math.log(lo / (1 - lo)), math.log(hi / (1 - hi))], rtol=1e-9)
    # clipping keeps the order: 0 is below every interior value, 1 above
    inner = calcas.top1_logit(np.array([1e-9, 1 - 1e-9]))
    assert ends[0] < inner[0] and inner[1] < ends[1]


# ---------------------------------------------------------------- torch inputs


def test_torch_inputs_accepted():
    z = _logits(n=20, C=5, seed=6)
    y = np.random.default_rng(7).integers(0, 5, 20)
    zt = torch.from_numpy(z).requires_grad_(True)  # a tensor that needs grad is detached
    p = scipy.special.softmax(z / 1.7, axis=1)
    np.testing.assert_allclose(calcas.softmax(zt, 1.7), p, rtol=1e-12)
    conf, pred = calcas.max_prob_confidence(zt.float(), 1.7)
    np.testing.assert_allclose(conf, p.max(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(pred, p.argmax(axis=1))
    np.testing.assert_allclose(calcas.class_confidence(zt, torch.from_numpy(y), 1.7),
                               p[np.arange(20), y], rtol=1e-12)
    np.testing.assert_allclose(calcas.restricted_confidence(zt, torch.tensor([4, 0])),
                               scipy.special.softmax(z[:, [4, 0]], axis=1), rtol=1e-12)
    lp, mask, lengths = _padded_logprobs()
    np.testing.assert_allclose(calcas.sequence_likelihood(torch.from_numpy(lp), torch.from_numpy(mask)),
                               [math.exp(sum(lp[i, :k])) for i, k in enumerate(lengths)], rtol=1e-12)
    np.testing.assert_allclose(calcas.mean_token_logit(torch.from_numpy(lp), torch.from_numpy(mask)),
                               [np.mean(lp[i, :k]) for i, k in enumerate(lengths)], rtol=1e-12)
    np.testing.assert_allclose(calcas.top1_logit(torch.tensor([0.25, 0.8], dtype=torch.float64)),
                               [math.log(1 / 3), math.log(4)], rtol=1e-12)


def test_bfloat16_tensors_are_read_as_float32():
    """numpy has no bfloat16: a bf16 tensor becomes float32, which holds every bf16 value exactly."""
    zt = torch.from_numpy(_logits(n=30, C=5, seed=11)).to(torch.bfloat16).requires_grad_(True)
    z32 = zt.detach().float().numpy()
    assert z32.dtype == np.float32 and np.array_equal(z32.astype(np.float64), zt.detach().double().numpy())
    from calcas._validate import to_numpy
    assert to_numpy(zt).dtype == np.float32 and np.array_equal(to_numpy(zt), z32)
    p = scipy.special.softmax(z32.astype(np.float64) / 1.4, axis=1)
    np.testing.assert_allclose(calcas.softmax(zt, 1.4), p, rtol=1e-12)
    conf, pred = calcas.max_prob_confidence(zt, 1.4)
    np.testing.assert_allclose(conf, p.max(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(pred, p.argmax(axis=1))
    y = torch.arange(30) % 5
    np.testing.assert_allclose(calcas.class_confidence(zt, y, 1.4), p[np.arange(30), y.numpy()], rtol=1e-12)
    # the metrics read bf16 confidences and scores the same way
    c = torch.from_numpy(p.max(axis=1)).to(torch.bfloat16)
    v = torch.from_numpy(p.argmax(axis=1) == y.numpy()).to(torch.bfloat16)
    assert calcas.ece(c, v, 4) == calcas.ece(c.float().numpy(), v.float().numpy(), 4)
    assert calcas.ece_bootstrap(c, v, 4, n_boot=20) == calcas.ece_bootstrap(c.float().numpy(), v.float().numpy(), 4,
                                                                            n_boot=20)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_refused(bad):
    z = _logits(n=4, C=3)
    z[2, 1] = bad
    for call in (lambda: calcas.softmax(z), lambda: calcas.max_prob_confidence(z),
                 lambda: calcas.class_confidence(z, [0, 1, 2, 0])):
        with pytest.raises(ValueError, match=r"^logits: contains 1 NaN or infinite"):
            call()
    with pytest.raises(ValueError, match=r"^token_logits: contains 1 NaN or infinite"):
        calcas.restricted_confidence(z, [0, 1])


@pytest.mark.parametrize("T", [0.0, -1.0, np.inf, np.nan])
def test_bad_temperature_refused(T):
    z = _logits(n=4, C=3)
    for call in (lambda: calcas.softmax(z, T), lambda: calcas.max_prob_confidence(z, T),
                 lambda: calcas.class_confidence(z, [0, 1, 2, 0], T),
                 lambda: calcas.restricted_confidence(z, [0, 2], T)):
        with pytest.raises(ValueError, match=r"^temperature: must be a finite number > 0"):
            call()


def test_logits_shape_and_empty_refused():
    with pytest.raises(ValueError, match=r"^logits: expected a 2-D array"):
        calcas.softmax(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"^logits: is empty"):
        calcas.softmax(np.empty((0, 3)))
    with pytest.raises(ValueError, match=r"^logits: expected a numeric array"):
        calcas.softmax(np.array([["a", "b"]]))


@pytest.mark.parametrize("c", [[0.5, 1.2], [-0.1, 0.5], [0.5, np.nan], [np.inf, 0.5]])
def test_top1_logit_refuses_bad_confidence(c):
    with pytest.raises(ValueError, match=r"^confidence:"):
        calcas.top1_logit(np.array(c))
