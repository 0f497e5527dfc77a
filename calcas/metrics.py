"""Calibration metrics (paper §2.1, SPEC §2): reliability table, ECE, MCE, NLL, Brier,
a bootstrap interval for ECE, and the monotonicity statistic; intervals for the proportions
the other sections report (accuracy, cleaning precision) and for paired accuracy differences.

``confidence`` is always the probability a model gives its own answer (in [0, 1]);
``correct`` is the verifier score of that answer (0/1, or in [0, 1]).
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import ndtr
from scipy.stats import norm, spearmanr

from ._validate import (check_binning, check_edges, check_level, check_n_bins, check_positive_int, check_seed,
                        confidence_array, correct_array, float_array, label_array, same_length)
from .binning import BINNINGS, _assign_bins, _bin_sums, _edges, _equal_count_edges_of_sorted

# A resample of n rows is drawn block by block: the block totals from one multinomial, then
# each block's counts from its own uniform draws. That is exactly a uniform draw of n rows
# with replacement, but no step holds more than one block's draws, where one bincount of n
# draws would hold two n-sized integer arrays; and a block's counts stay in cache.
_RESAMPLE_BLOCK = 1 << 14

# Weighted sums go through a buffer of this many float64, not np.dot: OpenBLAS threads its dot
# products, and on a busy machine each call then waits for a descheduled thread (the bootstrap
# makes dozens of calls a replicate; measured 5x slower than this on 2 shared cores).
_SUM_CHUNK = 1 << 16


def _checked(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    """The entry checks of every binned metric: confidences and verifier scores, same length."""
    c = confidence_array(confidence)
    v = correct_array(correct)
    same_length(confidence=c, correct=v)
    return c, v


def _checked_edges(c: np.ndarray, n_bins: int, binning: str, edges: Any | None) -> np.ndarray:
    """Edges given (checked) or fitted on the checked confidences ``c``."""
    if edges is not None:
        return check_edges(edges)
    check_binning(binning, BINNINGS)
    return _edges(c, check_n_bins(n_bins, len(c), binning), binning)


def _binned(c: np.ndarray, v: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin count, sum of confidence and sum of verifier score (unchecked)."""
    return _bin_sums(_assign_bins(c, e), len(e) - 1, c, v)


def _plugin_ece(count: np.ndarray, sum_c: np.ndarray, sum_v: np.ndarray) -> np.ndarray:
    """Plug-in ECE from per-bin sums on the last axis (leading axes broadcast; unchecked)."""
    return np.abs(sum_c - sum_v).sum(axis=-1) / count.sum(axis=-1)


def _ece(count: np.ndarray, sum_c: np.ndarray, sum_v: np.ndarray) -> float:
    return float(_plugin_ece(count, sum_c, sum_v))


def reliability_table(confidence: Any, correct: Any, n_bins: int = 15, binning: str = "equal_count",
                      *, edges: Any | None = None) -> pd.DataFrame:
    """Per-bin count, mean confidence and accuracy: the data of a reliability diagram.

    Parameters
    ----------
    confidence : array, shape (n,)
        Probabilities in [0, 1] of each sample's predicted answer.
    correct : array, shape (n,)
        Verifier score of that answer (bool, 0/1, or in [0, 1]).
    n_bins : int
        Number of bins asked for (ignored when ``edges`` is given).
    binning : {"equal_count", "equal_width"}
        "equal_count" never splits a run of tied confidences, so it can form fewer than
        ``n_bins`` bins (see :func:`calcas.equal_count_edges`).
    edges : array, shape (m + 1,), optional
        Edges fitted elsewhere (e.g. on cal) to reuse; see :mod:`calcas.binning`.

    Returns
    -------
    DataFrame with one row per bin (m rows: ``n_bins`` for "equal_width", the number of
    bins formed for "equal_count", ``len(edges) - 1`` for given edges): ``bin, count,
    mean_confidence, accuracy, gap, lower, upper``; empty bins (possible only with given
    edges or "equal_width") have count 0 and NaN means. ``lower``/``upper`` are the bin's
    edges clipped to [0, 1].
    """
    c, v = _checked(confidence, correct)
    e = _checked_edges(c, n_bins, binning, edges)
    count, sum_c, sum_v = _binned(c, v, e)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_c = np.where(count > 0, sum_c / np.maximum(count, 1), np.nan)
        acc = np.where(count > 0, sum_v / np.maximum(count, 1), np.nan)
    clipped = np.clip(e, 0.0, 1.0)
    return pd.DataFrame({
        "bin": np.arange(len(count)), "count": count, "mean_confidence": mean_c,
        "accuracy": acc, "gap": acc - mean_c, "lower": clipped[:-1], "upper": clipped[1:],
    })


ESTIMATORS = ("plugin", "debiased")


def _folded_normal_mean(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``E|mu + sigma Z|`` for standard normal Z, elementwise (``|mu|`` where sigma is 0)."""
    safe = np.where(sigma > 0, sigma, 1.0)
    z = mu / safe
    folded = safe * np.sqrt(2.0 / np.pi) * np.exp(-0.5 * z * z) + mu * (1.0 - 2.0 * ndtr(-z))  # ndtr: norm.cdf, less overhead
    return np.where(sigma > 0, folded, np.abs(mu))


def _debiased_ece(count: np.ndarray, sum_c: np.ndarray, sum_v: np.ndarray, sum_vv: np.ndarray) -> np.ndarray:
    """Debiased ECE from per-bin sums on the last axis (leading axes broadcast; unchecked).

    Per bin: ``2|g| - E|g + sigma Z|`` with ``g`` the bin's gap and ``sigma^2`` the variance of
    its verifier scores over its count; empty bins contribute 0.
    """
    n_b = np.maximum(count, 1)
    gap = (sum_v - sum_c) / n_b
    mean_v = sum_v / n_b
    sigma = np.sqrt(np.maximum(sum_vv / n_b - mean_v * mean_v, 0.0) / n_b)
    corrected = 2.0 * np.abs(gap) - _folded_normal_mean(gap, sigma)
    return (count * corrected).sum(axis=-1) / count.sum(axis=-1)


def _check_estimator(estimator: Any) -> str:
    """estimator must be one of :data:`ESTIMATORS`."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")
    return estimator


def ece(confidence: Any, correct: Any, n_bins: int = 15, binning: str = "equal_count",
        *, edges: Any | None = None, estimator: str = "plugin") -> float:
    """Expected calibration error ``sum_i |B_i|/n * |mean_conf_i - accuracy_i|``.

    Empty bins contribute 0. Inputs as in :func:`reliability_table` (confidence is a
    probability in [0, 1], not a logit); with "equal_count" binning the sum runs over the
    bins formed (all confidences equal: one bin, ``|confidence - accuracy|``).

    Parameters
    ----------
    confidence, correct, n_bins, binning, edges
        As in :func:`reliability_table`.
    estimator : {"plugin", "debiased"}, default "plugin"
        "plugin" is the formula above. "debiased" is the Gaussian bias correction of Kumar,
        Liang & Ma (2019, "Verified uncertainty calibration", p = 1): a bin's observed gap
        ``g`` is its true gap plus noise of standard deviation ``sigma = sqrt(var_i / n_i)``
        (``var_i`` the variance of the verifier scores in the bin, ``acc (1 - acc)`` for 0/1),
        which adds ``E|g + sigma Z| - |g|`` to the plug-in on average; that excess, in closed
        form, is subtracted bin by bin, giving ``sum_i |B_i|/n (2|g_i| - E|g_i + sigma_i Z|)``.
        It is the exact expectation of Kumar et al.'s resampling version (which draws the
        bin accuracies from that normal and averages), without its Monte Carlo noise.

    Notes
    -----
    The correction is exact when a bin's true gap is large against ``sigma`` and removes only
    part of the bias when it is small: the excess is evaluated at the noisy ``g``, not at the
    true gap. For a perfectly calibrated model (true gap 0) the plug-in is biased upward by
    ``sigma sqrt(2/pi)`` per bin and the debiased estimator still by ``(2 - sqrt(2))`` times
    that, about 59% of the plug-in's bias: in the estimator study (:mod:`calcas.estimator_study`,
    500 draws) 58% to 63% of it, e.g. 0.011 against 0.018 at n = 2,000 in 15 bins. Where a
    bin's true gap is comparable to its sigma the correction slightly over-shoots (bias a few
    thousandths below 0). A bin's debiased term can be negative, and so, rarely, can the total:
    it is an estimate of a non-negative quantity, not itself clipped.
    """
    _check_estimator(estimator)
    c, v = _checked(confidence, correct)
    return _ece_at_edges(c, v, _checked_edges(c, n_bins, binning, edges), estimator)


def _ece_at_edges(c: np.ndarray, v: np.ndarray, e: np.ndarray, estimator: str) -> float:
    """ECE of checked inputs in the bins of ``e`` by a checked ``estimator`` (unchecked)."""
    if estimator == "plugin":
        return _ece(*_binned(c, v, e))
    return float(_debiased_ece(*_bin_sums(_assign_bins(c, e), len(e) - 1, c, v, v * v)))


def _checked_multiclass(probabilities: Any, label: Any, n_bins: int, binning: str,
                        estimator: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Entry checks of the multi-class ECEs: probabilities (n, C), labels in [0, C)."""
    _check_estimator(estimator)
    check_binning(binning, BINNINGS)
    p = float_array(probabilities, "probabilities", ndim=2, low=0.0, high=1.0)
    y = label_array(label, "label", p.shape[1])
    same_length(probabilities=p, label=y)
    return p, y, check_n_bins(n_bins, len(p))


def classwise_ece(probabilities: Any, label: Any, n_bins: int = 15, binning: str = "equal_count",
                  *, estimator: str = "plugin") -> float:
    """Class-wise ECE (Kull et al. 2019, "Beyond temperature scaling"): the mean over classes k
    of the ECE of ``p_k`` against ``1[label == k]`` over all samples.

    Parameters
    ----------
    probabilities : array, shape (n, C)
        Class probabilities (rows sum to 1), not logits: pass logits through
        :func:`calcas.softmax` first.
    label : array of int, shape (n,)
        True classes in [0, C).
    n_bins, binning, estimator
        As in :func:`ece`; the bins are fitted per class, on that class's probabilities.
    """
    p, y, n_bins = _checked_multiclass(probabilities, label, n_bins, binning, estimator)
    return float(np.mean([_ece_at_edges(p[:, k], (y == k).astype(np.float64), _edges(p[:, k], n_bins, binning),
                                        estimator) for k in range(p.shape[1])]))


def top_label_ece(probabilities: Any, label: Any, n_bins: int = 15, binning: str = "equal_count",
                  *, estimator: str = "plugin") -> float:
    """Top-label ECE (Gupta & Ramdas 2021, "Top-label calibration and multiclass-to-binary
    reductions"): for each predicted class, the ECE of the top probability against
    ``1[label == that class]`` among the samples predicted as that class, weighted by the
    class's share of the samples.

    Unlike the top-1 ECE (:func:`ece` of the top probability against correctness), it bins
    each predicted class on its own, so a model over-confident on one class and
    under-confident on another cannot cancel out within a bin.

    Parameters
    ----------
    probabilities : array, shape (n, C)
        Class probabilities (rows sum to 1), not logits: pass logits through
        :func:`calcas.softmax` first. The predicted class is the first argmax.
    label : array of int, shape (n,)
        True classes in [0, C).
    n_bins, binning, estimator
        As in :func:`ece`; a class predicted for fewer than ``n_bins`` samples gets one bin per
        sample at most.
    """
    p, y, n_bins = _checked_multiclass(probabilities, label, n_bins, binning, estimator)
    predicted = p.argmax(axis=1)
    top = p[np.arange(len(p)), predicted]
    total = 0.0
    for k in np.unique(predicted).tolist():
        rows = predicted == k
        c, v = top[rows], (y[rows] == k).astype(np.float64)
        total += len(c) * _ece_at_edges(c, v, _edges(c, min(n_bins, len(c)), binning), estimator)
    return total / len(p)


# The smooth ECE's discretisation, as relplot 1.0.3 (the reference implementation of Błasiok &
# Nakkiran) computes it, so that the two agree to 1e-6: each sample's weight is split linearly
# between the two nearest of M grid points on [0, 1] (M = max(2000, round(20 / sigma)) // 2 + 1),
# the reflected Gaussian kernel is cut at |t - t'| <= 1/2, the smoothed functions are read by
# linear interpolation at max(200, round(10 / sigma)) evaluation points, the density there gets a
# floor of 1e-4, and the fixed point sigma = smECE_sigma is bracketed by 10 halvings of [0, 1].
_SMOOTH_FLOOR = 1e-4
_SMOOTH_MIN_MESH = 200
_SMOOTH_HALVINGS = 10
_SMOOTH_MIN_SIGMA = 1e-3


def _smooth_grid_size(sigma: float) -> int:
    return max(2000, round(20.0 / sigma)) // 2 + 1


def _linear_binning(c: np.ndarray, residual: np.ndarray, size: int) -> np.ndarray:
    """``residual`` and a weight of 1 per sample split linearly onto ``size`` grid points of
    [0, 1], between the two points around each ``c``: shape (2, size)."""
    position = c * (size - 1)
    left = np.clip(position.astype(np.int64), 0, size - 2)
    right_share = np.subtract(position, left, out=position)
    right_residual = residual * right_share
    out = np.empty((2, size))
    out[0] = np.bincount(left, residual - right_residual, minlength=size)
    out[0, 1:] += np.bincount(left, right_residual, minlength=size - 1)
    out[1] = np.bincount(left, 1.0 - right_share, minlength=size)
    out[1, 1:] += np.bincount(left, right_share, minlength=size - 1)
    return out


def _reflected_smooth(grid: np.ndarray, sigma: float) -> np.ndarray:
    """Rows of ``grid`` (values at t_j = j / (M - 1), M odd) convolved with the Gaussian kernel of
    width ``sigma`` cut at |t - t_j| <= 1/2, the values mirrored about t = 0 and t = 1."""
    from scipy.signal import fftconvolve

    size = grid.shape[1]
    half = (size - 1) // 2
    offsets = np.arange(-half, half + 1) / (size - 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2) / (np.sqrt(2.0 * np.pi) * sigma)
    mirrored = np.concatenate([grid[:, :0:-1], grid, grid[:, -2::-1]], axis=1)
    return fftconvolve(mirrored, kernel[None, :], mode="valid", axes=1)[:, half:half + size]


def _smooth_ece_rows(c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """:func:`smooth_ece` of each row of checked ``c``, ``v`` (shape (m, n)), shape (m,).

    Every row bisects its own kernel width, as :func:`smooth_ece` does, but the rows are
    bisected together: rows at the same width (the bisection's widths are dyadic, so rows share
    them exactly) are smoothed by one FFT convolution of their stacked grids."""
    m = len(c)
    residual = c - v
    grids: list[dict] = [{} for _ in range(m)]
    cache: list[dict] = [{} for _ in range(m)]

    def at(rows: np.ndarray, sigma: float) -> np.ndarray:
        need = [r for r in rows.tolist() if sigma not in cache[r]]
        if need:
            size = _smooth_grid_size(sigma)
            for r in need:
                if size not in grids[r]:
                    grids[r][size] = _linear_binning(c[r], residual[r], size)
            smoothed = _reflected_smooth(np.concatenate([grids[r][size] for r in need]), sigma)
            for i, r in enumerate(need):
                cache[r][sigma] = _smooth_value(smoothed[2 * i:2 * i + 2], sigma)
        return np.array([cache[r][sigma] for r in rows.tolist()])

    def below_fixed_point(rows: np.ndarray, sigma: float) -> np.ndarray:
        if sigma < _SMOOTH_MIN_SIGMA:
            return np.ones(len(rows), dtype=bool)
        return sigma < at(rows, sigma)

    done = below_fixed_point(np.arange(m), 1.0)  # these rows' smooth ECE is the value at width 1
    high, low = np.ones(m), np.zeros(m)
    for _ in range(_SMOOTH_HALVINGS):
        mid = (high + low) / 2.0
        for sigma in np.unique(mid[~done]).tolist():
            rows = np.flatnonzero(~done & (mid == sigma))
            below = below_fixed_point(rows, sigma)
            low[rows[below]] = sigma
            high[rows[~below]] = sigma
    return np.array([cache[r][high[r]] for r in range(m)])  # every high was computed when it was set


def _smooth_value(smoothed: np.ndarray, sigma: float) -> float:
    """The smooth ECE at width ``sigma`` from the smoothed grid (residual row, density row)."""
    size = smoothed.shape[1]
    t = np.linspace(0.0, 1.0, max(round(10.0 / sigma), _SMOOTH_MIN_MESH))
    left = np.clip((t * (size - 1)).astype(np.int64), 0, size - 2)
    share = t * (size - 1) - left
    at_t = smoothed[:, left] * (1.0 - share) + smoothed[:, left + 1] * share
    # |smoothed residual / density| weighted by the density: the density cancels
    return float(np.abs(at_t[0]).sum() / (at_t[1] + _SMOOTH_FLOOR).sum())


def smooth_ece(confidence: Any, correct: Any) -> float:
    """Smooth ECE of Błasiok & Nakkiran (2023, "Smooth ECE: principled reliability diagrams via
    kernel smoothing").

    The residuals ``confidence - correct`` are kernel-smoothed over confidence with a Gaussian
    kernel of width sigma reflected at 0 and 1, giving a smoothed residual r(t) and density
    d(t); ``smECE_sigma = integral |r(t)| d(t) dt`` (the mean absolute smoothed residual), and
    the smooth ECE is ``smECE_sigma`` at the sigma with ``smECE_sigma = sigma`` (the fixed
    point, which exists as smECE_sigma falls with sigma). No bins: it is a continuous
    function of the data, and within a constant factor of the distance to the nearest
    perfectly calibrated predictor. It measures a smoothed quantity, not the binned ECE, and
    is biased upward at small n like every absolute-residual estimate.

    The discretisation (grid, kernel cut, density floor, 10 halvings to bracket sigma) is
    that of ``relplot.smECE`` 1.0.3, which this equals to 1e-6; the grid's binning is done
    once per grid size and the convolution by FFT, so it is much faster at large n.

    Parameters
    ----------
    confidence : array, shape (n,)
        Probabilities in [0, 1] of each sample's predicted answer (not logits).
    correct : array, shape (n,)
        Verifier score of that answer (bool, 0/1, or in [0, 1]).
    """
    c, v = _checked(confidence, correct)
    return float(_smooth_ece_rows(c[None, :], v[None, :])[0])


def mce(confidence: Any, correct: Any, n_bins: int = 15, binning: str = "equal_count",
        *, edges: Any | None = None) -> float:
    """Maximum calibration error: the largest ``|mean_conf_i - accuracy_i|`` over non-empty bins.

    Inputs as in :func:`reliability_table` (confidence: probabilities in [0, 1], shape (n,)).
    """
    c, v = _checked(confidence, correct)
    count, sum_c, sum_v = _binned(c, v, _checked_edges(c, n_bins, binning, edges))
    full = count > 0
    return float(np.max(np.abs(sum_c[full] - sum_v[full]) / count[full]))


def _prob_target(probabilities: Any, target: Any):
    p = float_array(probabilities, "probabilities", low=0.0, high=1.0)
    if p.ndim == 2:
        y = label_array(target, "labels", p.shape[1])
        same_length(probabilities=p, labels=y)
        return p, y
    if p.ndim == 1:
        v = correct_array(target, "correct")
        same_length(probabilities=p, correct=v)
        return p, v
    raise ValueError(f"probabilities: expected 1-D or 2-D, got shape {p.shape}")


def nll(probabilities: Any, target: Any, *, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood (natural log).

    Parameters
    ----------
    probabilities : array, shape (n, C) or (n,)
        Class probabilities (rows sum to 1) with integer ``target`` labels, or the probability
        that each answer is correct with ``target`` the 0/1 verifier score (binary NLL).
        Probabilities, not logits; they are clipped to [eps, 1 - eps].
    """
    p, t = _prob_target(probabilities, target)
    p = np.clip(p, eps, 1.0 - eps)
    if p.ndim == 2:
        return float(-np.log(p[np.arange(len(p)), t]).mean())
    return float(-(t * np.log(p) + (1.0 - t) * np.log1p(-p)).mean())


def brier(probabilities: Any, target: Any) -> float:
    """Brier score: mean squared error of probabilities against one-hot labels (summed over
    classes for shape (n, C); against the 0/1 verifier score for shape (n,))."""
    p, t = _prob_target(probabilities, target)
    if p.ndim == 2:
        onehot = np.zeros_like(p)
        onehot[np.arange(len(p)), t] = 1.0
        return float(((p - onehot) ** 2).sum(axis=1).mean())
    return float(((p - t) ** 2).mean())


# ---------------------------------------------------------------- bootstrap kernels (unchecked)


def _resample_counts(rng: np.random.Generator, n: int, counts: np.ndarray,
                     block: int = _RESAMPLE_BLOCK) -> np.ndarray:
    """Fill ``counts`` (float64, shape (n,)) with how often each of n rows is drawn in a
    resample of n rows with replacement; return the resample's rows per block of ``block``
    rows (int, shape (ceil(n / block),))."""
    starts = np.arange(0, n, block)
    sizes = np.diff(np.append(starts, n))
    totals = rng.multinomial(n, sizes / n)
    for start, size, total in zip(starts.tolist(), sizes.tolist(), totals.tolist()):
        counts[start:start + size] = np.bincount(rng.integers(0, size, total), minlength=size)
    return totals


def _resamples(n: int, n_boot: int, seed: Any, block: int = _RESAMPLE_BLOCK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``n_boot`` resamples of n rows as ``(counts, rows per block)`` (see :func:`_resample_counts`).

    One counts buffer is refilled for every resample: read it before asking for the next.
    """
    rng = np.random.default_rng(seed)
    counts = np.empty(n)
    for _ in range(n_boot):
        yield counts, _resample_counts(rng, n, counts, block)


class _CountedSorted:
    """A resample seen as the sorted sequence ``S = np.repeat(s, counts)`` without building it.

    ``s`` is sorted; ``counts`` and ``block_totals`` are one resample from :func:`_resamples`
    over the positions of ``s``. Gives :func:`calcas.binning._equal_count_edges_of_sorted` the
    two accessors it reads S through, each costing O(block) per position asked.
    """

    def __init__(self, s: np.ndarray, counts: np.ndarray, block_totals: np.ndarray,
                 block: int = _RESAMPLE_BLOCK):
        self.s, self.counts, self.block = s, counts, block
        self.rows_before_block = np.concatenate(([0], np.cumsum(block_totals)))

    def rows_before(self, index: np.ndarray) -> np.ndarray:
        """Rows of S that come from positions of ``s`` below each ``index`` (0..len(s))."""
        b = self.block
        return np.array([self.rows_before_block[i // b] + int(self.counts[i // b * b:i].sum())
                         for i in index.tolist()], dtype=np.int64)

    def value_at(self, positions: np.ndarray) -> np.ndarray:
        """``S[positions]`` (positions in [0, len(s)))."""
        b = self.block
        blocks = np.searchsorted(self.rows_before_block, positions, side="right") - 1
        out = np.empty(len(positions))
        for blk in np.unique(blocks).tolist():  # positions asked come in pairs (p - 1, p): one cumsum each
            here = blocks == blk
            rows_within = np.cumsum(self.counts[blk * b:(blk + 1) * b])
            offset = positions[here] - self.rows_before_block[blk]
            out[here] = self.s[blk * b + np.searchsorted(rows_within, offset, side="right")]
        return out

    def run_bounds(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First row of each value's run in S, and one past its last."""
        return (self.rows_before(np.searchsorted(self.s, values, side="left")),
                self.rows_before(np.searchsorted(self.s, values, side="right")))


def _weighted_sum(weights: np.ndarray, values: np.ndarray, buffer: np.ndarray) -> float:
    """``sum(weights * values)`` (same shape, 1-D), through ``buffer`` a chunk at a time."""
    total = 0.0
    for start in range(0, len(weights), len(buffer)):
        stop = min(len(weights), start + len(buffer))
        total += float(np.multiply(weights[start:stop], values[start:stop], out=buffer[:stop - start]).sum())
    return total


def _counted_ece(s: np.ndarray, v: np.ndarray, counts: np.ndarray, bounds: np.ndarray,
                 buffer: np.ndarray) -> float:
    """ECE of the rows of sorted confidences ``s`` and their scores ``v``, each row taken
    ``counts`` times, in the bins ``s[bounds[i - 1]:bounds[i]]`` (``bounds``: interior, sorted)."""
    gap = 0.0
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(s)]):
        w = counts[lo:hi]
        gap += abs(_weighted_sum(w, s[lo:hi], buffer) - _weighted_sum(w, v[lo:hi], buffer))
    return gap / counts.sum()


def _counted_debiased_ece(s: np.ndarray, v: np.ndarray, vv: np.ndarray, counts: np.ndarray, bounds: np.ndarray,
                          buffer: np.ndarray) -> float:
    """Debiased ECE (see :func:`_debiased_ece`) of the counted rows, bins as in :func:`_counted_ece`;
    ``vv`` is ``v * v``."""
    sums = np.empty((4, len(bounds) + 1))
    for b, (lo, hi) in enumerate(zip([0, *bounds.tolist()], [*bounds.tolist(), len(s)])):
        w = counts[lo:hi]
        sums[:, b] = (float(w.sum()), _weighted_sum(w, s[lo:hi], buffer), _weighted_sum(w, v[lo:hi], buffer),
                      _weighted_sum(w, vv[lo:hi], buffer))
    return float(_debiased_ece(*sums))


def _ece_replicates(c: np.ndarray, v: np.ndarray, n_bins: int, binning: str, n_boot: int,
                    seed: Any, block: int = _RESAMPLE_BLOCK, estimator: str = "plugin") -> np.ndarray:
    """ECE (by ``estimator``) of each of ``n_boot`` resamples of the checked ``c``, ``v``, shape (n_boot,).

    The rows are sorted once (stably) and each resample is held as counts over the sorted
    rows, in one buffer refilled per replicate, so a replicate costs O(n) time and no new
    memory: "equal_count" edges are re-fitted on the counts (the rule of
    :func:`calcas.equal_count_edges` on the resample, which is never materialised), and a bin
    is a slice of the sorted rows.
    """
    order = np.argsort(c, kind="stable")
    s, v_sorted = c[order], v[order]
    del order
    vv_sorted = v_sorted * v_sorted if estimator == "debiased" else None
    n = len(s)
    if binning == "equal_width":
        fixed_bounds = np.searchsorted(s, _edges(s, n_bins, binning)[1:-1], side="left")
    reps = np.empty(n_boot)
    buffer = np.empty(min(n, _SUM_CHUNK))
    for r, (counts, block_totals) in enumerate(_resamples(n, n_boot, seed, block)):
        if binning == "equal_width":
            bounds = fixed_bounds
        else:
            resample = _CountedSorted(s, counts, block_totals, block)
            edges = _equal_count_edges_of_sorted(n, n_bins, resample.value_at, resample.run_bounds)
            # a value equal to an edge goes to the upper bin, as in assign_bins
            bounds = np.searchsorted(s, edges[1:-1], side="left")
        if estimator == "plugin":
            reps[r] = _counted_ece(s, v_sorted, counts, bounds, buffer)
        else:
            reps[r] = _counted_debiased_ece(s, v_sorted, vv_sorted, counts, bounds, buffer)
    return reps


def _mean_replicates(d: np.ndarray, n_boot: int, seed: Any, block: int = _RESAMPLE_BLOCK) -> np.ndarray:
    """Mean of ``d`` (shape (n,)) over each of ``n_boot`` resamples of its rows, shape (n_boot,)."""
    buffer = np.empty(min(len(d), _SUM_CHUNK))
    return np.fromiter((_weighted_sum(counts, d, buffer) / len(d)
                        for counts, _ in _resamples(len(d), n_boot, seed, block)), dtype=np.float64, count=n_boot)


def _percentile_interval(reps: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)


# ---------------------------------------------------------------- bootstrap intervals


def ece_bootstrap(confidence: Any, correct: Any, n_bins: int = 15, binning: str = "equal_count",
                  *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """ECE with a percentile bootstrap confidence interval.

    Each replicate resamples the n samples with replacement and recomputes the whole
    statistic, bins included (equal-count edges are re-fitted on every resample; a resample
    repeats samples, and its bins never split a run of repeated values, so a replicate can
    have fewer bins than ``n_bins``). A replicate equals :func:`ece` on its resample, but the
    resample is never built: it is held as per-row counts over the rows sorted once, so
    memory is O(n + n_boot) and a replicate costs O(n).

    ECE is biased upward (sampling noise in a bin's accuracy only adds to |conf - acc|), and
    more so on resamples, which repeat samples: for a well-calibrated model the percentile
    interval can lie wholly above the point estimate. Read it as the spread of the statistic,
    not as an interval around the true calibration error.

    Parameters
    ----------
    confidence, correct, n_bins, binning
        As in :func:`reliability_table` (confidence: probabilities in [0, 1], shape (n,);
        correct: verifier scores in [0, 1], shape (n,)).
    n_boot : int, default 1000
        Number of resamples, >= 1.
    level : float, default 0.95
        Confidence level, in (0, 1).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``: the same seed gives the same interval.

    Returns
    -------
    (ece, low, high) : the ECE on the data and the ``level`` interval's bounds.
    """
    c, v = _checked(confidence, correct)
    level = check_level(level)
    n_boot = check_positive_int(n_boot, "n_boot")
    seed = check_seed(seed)
    e = _checked_edges(c, n_bins, binning, None)
    point = _ece(*_binned(c, v, e))
    return (point, *_percentile_interval(_ece_replicates(c, v, n_bins, binning, n_boot, seed), level))


def ece_interval(confidence: Any, correct: Any, n_bins: int = 15, binning: str = "equal_count",
                 *, estimator: str = "debiased", n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """ECE with a bootstrap interval for the true calibration error.

    :func:`ece_bootstrap`'s percentile interval is the spread of a biased statistic: at a
    small true ECE it lies wholly above the truth. This interval is built in two parts:

    - a bias-corrected basic bootstrap: the data's own plug-in ECE ``P`` is the true ECE of
      the world the resamples are drawn from, so ``E* - P`` (``E*`` the estimate on a
      resample) stands in for ``E - truth``, giving ``[E + P - q_high(E*), E + P - q_low(E*)]``;
      the resamples are :func:`ece_bootstrap`'s (bins re-fitted on each, O(n) per replicate);
    - a test of perfect calibration for the lower end: the scores are redrawn ``n_boot``
      times as Bernoulli(confidence), in the data's bins, and when ``E`` does not exceed the
      ``1 - (1 - level) / 2`` quantile of its values there the data are consistent with a
      calibrated model and the lower end is 0 (Bröcker & Smith's consistency resampling).

    The upper end is at least the ``1 - (1 - level) / 2`` quantile of ``E*``: where ``E`` is
    nearly unbiased (large n, gaps well above the noise) the bootstrap over-states its bias
    and the basic upper end alone fell below the truth in up to 8% of the study's draws.
    Both ends are clipped at 0. The test is what makes the interval cover at and near a true
    ECE of 0, where the estimator's bias is largest and the bootstrap misjudges it. The
    coverage, measured in :mod:`calcas.estimator_study`, was at least 92% in every
    configuration there (n from 500 to 20,000, 5 to 30 bins, true ECE 0 and 0.009).

    Parameters
    ----------
    confidence, correct, n_bins, binning, n_boot, level, seed
        As in :func:`ece_bootstrap` (confidence: probabilities in [0, 1], shape (n,);
        correct: verifier scores in [0, 1], shape (n,)); ``n_boot`` also counts the test's
        redraws.
    estimator : {"debiased", "plugin"}, default "debiased"
        The estimate ``E``, as in :func:`ece`.

    Returns
    -------
    (ece, low, high) : the estimate on the data (unclipped) and the interval's bounds.
    """
    _check_estimator(estimator)
    c, v = _checked(confidence, correct)
    level = check_level(level)
    n_boot = check_positive_int(n_boot, "n_boot")
    seed = check_seed(seed)
    e = _checked_edges(c, n_bins, binning, None)
    count, sum_c, sum_v, sum_vv = _bin_sums(_assign_bins(c, e), len(e) - 1, c, v, v * v)
    plugin = _ece(count, sum_c, sum_v)
    point = plugin if estimator == "plugin" else float(_debiased_ece(count, sum_c, sum_v, sum_vv))
    reps = _ece_replicates(c, v, n_bins, binning, n_boot, seed, estimator=estimator)
    null = _calibrated_replicates(c, e, n_boot, np.random.default_rng(seed).bit_generator.jumped(), estimator)
    low, high = _corrected_interval(point, plugin, reps, null, level)
    return point, float(low), float(high)


def ece_difference_interval(confidence_a: Any, confidence_b: Any, correct: Any, n_bins: int = 15,
                            binning: str = "equal_count", *, n_boot: int = 1000, level: float = 0.95,
                            seed: int = 0) -> tuple[float, float, float]:
    """The change in true ECE between two confidences of the same rows (before and after a
    calibration, say), with an interval: ``ECE(a) - ECE(b)``.

    Each confidence gets :func:`ece_interval` (debiased estimate, bias-corrected bootstrap,
    calibration test) on the same rows with the same seed, and the difference's interval is
    ``[low_a - high_b, high_a - low_b]``: whenever both intervals hold their true ECEs, it
    holds the true difference. Its coverage is measured in :mod:`calcas.estimator_study`
    (:func:`~calcas.estimator_study.deciding_coverage`), at least 97% in every configuration
    there. Bootstrap intervals of the difference itself cover far less (17-94% in the same
    simulation): the ECE's bias differs between a miscalibrated and a calibrated confidence and
    does not cancel in the difference. The price is width: a small true change (below about the
    sum of the two half-widths) reads as "within noise".

    Parameters
    ----------
    confidence_a, confidence_b : array, shape (n,)
        Two confidences (probabilities in [0, 1]) of the same n answers, e.g. raw and calibrated;
        each binned on its own (``n_bins`` equal-count bins by default).
    correct : array, shape (n,)
        Verifier scores in [0, 1] of those answers (shared: the answers are the same).
    n_bins, binning, n_boot, level, seed
        As in :func:`ece_interval`, for each of the two intervals.

    Returns
    -------
    (difference, low, high) : the difference of the debiased estimates and the interval's bounds.
    """
    a = ece_interval(confidence_a, correct, n_bins, binning, n_boot=n_boot, level=level, seed=seed)
    b = ece_interval(confidence_b, correct, n_bins, binning, n_boot=n_boot, level=level, seed=seed)
    return a[0] - b[0], a[1] - b[2], a[2] - b[1]


def _calibrated_replicates(c: np.ndarray, e: np.ndarray, n_boot: int, bit_generator: Any,
                           estimator: str) -> np.ndarray:
    """The estimate on ``n_boot`` redraws of the scores as Bernoulli(c), bins ``e`` kept: its
    distribution under perfect calibration, shape (n_boot,)."""
    rng = np.random.Generator(bit_generator)
    bins = _assign_bins(c, e)
    m = len(e) - 1
    count, sum_c = _bin_sums(bins, m, c)
    order = np.argsort(bins, kind="stable")
    c_sorted, starts = c[order], np.searchsorted(bins[order], np.arange(m))
    full = count > 0
    out = np.empty(n_boot)
    chunk = max(1, (1 << 20) // len(c))
    for lo in range(0, n_boot, chunk):
        hi = min(n_boot, lo + chunk)
        drawn = (rng.random((hi - lo, len(c))) < c_sorted).astype(np.float64)
        sum_v = np.zeros((hi - lo, m))
        sum_v[:, full] = np.add.reduceat(drawn, starts[full], axis=1)
        if estimator == "plugin":
            out[lo:hi] = _plugin_ece(count, sum_c, sum_v)
        else:
            out[lo:hi] = _debiased_ece(count, sum_c, sum_v, sum_v)  # 0/1 draws: v * v = v
    return out


def _corrected_interval(point: Any, plugin: Any, reps: np.ndarray, null: np.ndarray,
                        level: float) -> tuple[Any, Any]:
    """The interval of :func:`ece_interval` from the estimate, the plug-in, the bootstrap
    replicates and the replicates under perfect calibration (replicates on the last axis,
    leading axes broadcast)."""
    alpha = (1.0 - level) / 2.0
    q_low, q_high = np.quantile(reps, [alpha, 1.0 - alpha], axis=-1)
    calibrated = point <= np.quantile(null, 1.0 - alpha, axis=-1)
    low = np.where(calibrated, 0.0, np.maximum(point + plugin - q_high, 0.0))
    high = np.maximum(np.maximum(point + plugin - q_low, q_high), 0.0)
    return low, high


def proportion_interval(successes: Any, n: Any, *, level: float = 0.95) -> tuple[Any, Any]:
    """Wilson score interval for a binomial proportion (accuracy, cleaning precision).

    Parameters
    ----------
    successes, n : int or array of int
        Successes (correct answers, true label errors among the flagged) and trials; arrays
        broadcast.
    level : float, default 0.95

    Returns
    -------
    (low, high) : floats or arrays; NaN where ``n`` is 0.

    Notes
    -----
    Conditional on everything fitted on the cal split (bins, routing, flag thresholds): it
    covers the resampling of the test rows, not of the cal rows.
    """
    check_level(level)
    k = np.asarray(successes, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    if np.any(m < 0) or np.any(k < 0) or np.any(k > m):
        raise ValueError("successes: must satisfy 0 <= successes <= n")
    z = norm.ppf(0.5 + level / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / m
        centre = (p + z * z / (2 * m)) / (1 + z * z / m)
        half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
        low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def paired_difference_interval(correct_a: Any, correct_b: Any, *, level: float = 0.95, n_boot: int = 2000,
                               seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``correct_a - correct_b`` over the same rows, with a percentile bootstrap interval.

    Two accuracies measured on the same test rows are correlated, so the interval of their
    difference (e.g. a cascade against the better of its two models) is much narrower than two
    separate intervals suggest. Rows are resampled jointly; each resample is held as per-row
    counts, so memory is O(n + n_boot) whatever n_boot.

    Parameters
    ----------
    correct_a, correct_b : array, shape (n,)
        Verifier scores in [0, 1] (bool, 0/1, or in [0, 1]) of the same n rows.
    level : float, default 0.95
        Confidence level, in (0, 1).
    n_boot : int, default 2000
        Number of resamples, >= 1.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``: the same seed gives the same interval.

    Returns
    -------
    (difference, low, high)
    """
    a = correct_array(correct_a, "correct_a")
    b = correct_array(correct_b, "correct_b")
    same_length(correct_a=a, correct_b=b)
    level = check_level(level)
    n_boot = check_positive_int(n_boot, "n_boot")
    seed = check_seed(seed)
    d = a - b
    return (float(d.mean()), *_percentile_interval(_mean_replicates(d, n_boot, seed), level))


def monotonicity(confidence: Any, correct: Any, n_bins: int = 15, binning: str = "equal_count",
                 *, edges: Any | None = None) -> float:
    """Spearman correlation of bin accuracy against bin mean confidence (non-empty bins).

    1.0 means "higher confidence, higher accuracy" holds bin by bin (paper §2.1); NaN when
    fewer than two bins are non-empty (e.g. tied "equal_count" confidences forming one bin)
    or accuracy is constant across bins. Inputs as in :func:`reliability_table`
    (confidence: probabilities in [0, 1], shape (n,)).
    """
    table = reliability_table(confidence, correct, n_bins, binning, edges=edges)
    table = table[table["count"] > 0]
    if len(table) < 2 or table["accuracy"].nunique() < 2 or table["mean_confidence"].nunique() < 2:
        return float("nan")
    return float(spearmanr(table["mean_confidence"], table["accuracy"]).statistic)


# ---------------------------------------------------------------- how much ECE the data can see


def _unit_interval(x: Any, name: str) -> float:
    """A real number strictly between 0 and 1 (message naming ``name``)."""
    real = isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))
    if not (real and 0 < x < 1):
        raise ValueError(f"{name}: must be in (0, 1), got {x!r}")
    return float(x)


def min_detectable_ece(n: int, n_bins: int = 15, *, accuracy: float = 0.5, level: float = 0.95,
                       power: float = 0.8) -> float:
    """The smallest true ECE that the plug-in ECE on ``n`` samples detects.

    The alternative is a uniform gap ``d`` in every bin (true ECE ``d``); "detects" means the
    plug-in ECE on ``n`` samples in ``n_bins`` equal-count bins exceeds its ``level`` quantile
    under perfect calibration with probability ``power``. Each bin holds ``m = n / n_bins``
    samples whose accuracy is normal with standard deviation ``sigma = sqrt(accuracy (1 -
    accuracy) / m)``, so a bin's ``|gap|`` has the folded-normal mean ``E|d + sigma Z|`` and
    variance ``d^2 + sigma^2 - E|d + sigma Z|^2`` in closed form; the ECE, a mean over bins,
    is taken as normal. ``d`` solves ``power`` = P(ECE_d > q_level(ECE_0)) (scipy brentq).

    An ECE below this value is what a perfectly calibrated model could show on this many
    samples: report it beside every ECE. More bins mean fewer samples per bin and a larger
    value (the plug-in's noise floor grows as ``sqrt(n_bins / n)``).

    Parameters
    ----------
    n : int
        Number of samples, >= ``n_bins``.
    n_bins : int, default 15
        Number of equal-count bins, >= 1.
    accuracy : float, default 0.5
        Accuracy in each bin, in (0, 1); 0.5 is the noisiest (the most conservative).
    level : float, default 0.95
        One minus the false-alarm rate, in (0, 1).
    power : float, default 0.8
        Probability of detection, in (0, 1).

    Returns
    -------
    float : the detectable true ECE ``d`` (a probability gap, may exceed what ``accuracy``
    allows at tiny n).
    """
    n = check_positive_int(n, "n")
    n_bins = check_n_bins(n_bins, n)
    accuracy = _unit_interval(accuracy, "accuracy")
    level = check_level(level)
    power = _unit_interval(power, "power")
    sigma = np.sqrt(accuracy * (1.0 - accuracy) / (n / n_bins))
    sd_null = sigma * np.sqrt((1.0 - 2.0 / np.pi) / n_bins)
    threshold = sigma * np.sqrt(2.0 / np.pi) + norm.ppf(level) * sd_null
    z_power = norm.ppf(power)

    def margin(d: float) -> float:
        mean = float(_folded_normal_mean(np.float64(d), np.float64(sigma)))
        sd = np.sqrt(max(d * d + sigma * sigma - mean * mean, 0.0) / n_bins)
        return mean - z_power * sd - threshold

    high = threshold + (abs(z_power) + 1.0) * sigma + 1.0
    return float(brentq(margin, 0.0, high, xtol=1e-12))


# Samples per bin below which default_n_bins lowers the bin count.
_MIN_PER_BIN = 100


def default_n_bins(n: int) -> int:
    """The bin count for ``n`` samples: ``min(15, max(1, n // 100))``.

    Rule: the largest count up to the paper's 15 that keeps at least 100 samples per bin.
    The reason: the debiased ECE and :func:`min_detectable_ece` treat a bin's accuracy as
    normal, and the usual condition for that, ``m p (1 - p) >= 9``, holds at ``m = 100``
    samples for bin accuracies p in [0.1, 0.9] (a 90%-accurate model's); fewer samples per
    bin also raise the plug-in's noise floor, which grows as ``sqrt(n_bins / n)`` (see the
    estimator study). It gives 15 bins from n = 1,500 up (so at the book's halves, n >=
    2,000), 5 at n = 500, and 1 below n = 200.

    Parameters
    ----------
    n : int
        Number of samples, >= 1.
    """
    n = check_positive_int(n, "n")
    return min(15, max(1, n // _MIN_PER_BIN))
