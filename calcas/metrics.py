"""Calibration metrics (paper §2.1, SPEC §2): reliability table, ECE, MCE, NLL, Brier,
a bootstrap interval for ECE, and the monotonicity statistic; intervals for the proportions
the other sections report (accuracy, cleaning precision) and for paired accuracy differences.

``confidence`` is always the probability a model gives its own answer (in [0, 1]);
``correct`` is the verifier score of that answer (0/1, or in [0, 1]).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm, spearmanr

from ._validate import (check_binning, check_edges, check_n_bins, confidence_array, correct_array,
                        float_array, label_array, same_length)
from .binning import BINNINGS, _assign_bins, _bin_sums, _edges


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
    return _edges(c, check_n_bins(n_bins, len(c)), binning)


def _binned(c: np.ndarray, v: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin count, sum of confidence and sum of verifier score (unchecked)."""
    return _bin_sums(_assign_bins(c, e), len(e) - 1, c, v)


def _ece(count: np.ndarray, sum_c: np.ndarray, sum_v: np.ndarray) -> float:
    return float(np.abs(sum_c - sum_v).sum() / count.sum())


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


def ece(confidence: Any, correct: Any, n_bins: int = 15, binning: str = "equal_count",
        *, edges: Any | None = None) -> float:
    """Expected calibration error ``sum_i |B_i|/n * |mean_conf_i - accuracy_i|``.

    Empty bins contribute 0. Inputs as in :func:`reliability_table` (confidence is a
    probability in [0, 1], not a logit); with "equal_count" binning the sum runs over the
    bins formed (all confidences equal: one bin, ``|confidence - accuracy|``).
    """
    c, v = _checked(confidence, correct)
    return _ece(*_binned(c, v, _checked_edges(c, n_bins, binning, edges)))


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


def ece_bootstrap(confidence: Any, correct: Any, n_bins: int = 15, binning: str = "equal_count",
                  *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """ECE with a percentile bootstrap confidence interval.

    Each replicate resamples the n samples with replacement and recomputes the whole
    statistic, bins included (equal-count edges are re-fitted on every resample; a resample
    repeats samples, and its bins never split a run of repeated values, so a replicate can
    have fewer bins than ``n_bins``).

    ECE is biased upward (sampling noise in a bin's accuracy only adds to |conf - acc|), and
    more so on resamples, which repeat samples: for a well-calibrated model the percentile
    interval can lie wholly above the point estimate. Read it as the spread of the statistic,
    not as an interval around the true calibration error.

    Parameters
    ----------
    confidence, correct, n_bins, binning
        As in :func:`reliability_table` (confidence: probabilities in [0, 1], shape (n,)).
    n_boot : int, default 1000
    level : float, default 0.95
    seed : int, default 0

    Returns
    -------
    (ece, low, high) : the ECE on the data and the ``level`` interval's bounds.
    """
    c, v = _checked(confidence, correct)
    n = len(c)
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot: must be >= 1, got {n_boot}")
    e = _checked_edges(c, n_bins, binning, None)
    point = _ece(*_binned(c, v, e))
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    refit = binning == "equal_count"
    for r in range(n_boot):
        idx = rng.integers(0, n, n)
        ci, vi = c[idx], v[idx]
        reps[r] = _ece(*_binned(ci, vi, _edges(ci, n_bins, binning) if refit else e))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return point, float(low), float(high)


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
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
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
    separate intervals suggest. Rows are resampled jointly.

    Parameters
    ----------
    correct_a, correct_b : array, shape (n,)
        Verifier scores in [0, 1] of the same n rows.
    level : float, default 0.95
    n_boot : int, default 2000
    seed : int, default 0

    Returns
    -------
    (difference, low, high)
    """
    a = correct_array(correct_a, "correct_a")
    b = correct_array(correct_b, "correct_b")
    n = same_length(correct_a=a, correct_b=b)
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot: must be >= 1, got {n_boot}")
    d = a - b
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for start in range(0, n_boot, 256):  # 256 replicates at a time: bounded memory for large n
        stop = min(n_boot, start + 256)
        reps[start:stop] = d[rng.integers(0, n, (stop - start, n))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(d.mean()), float(low), float(high)


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
