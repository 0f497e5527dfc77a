"""Binning (paper §2.1, SPEC §2): equal-count (the default) and equal-width bins.

Edges are computed once (on cal) and reused on new data with :func:`assign_bins`, so cal
and test samples fall in the same bins. ``edges`` always has ``n_bins + 1`` entries; bin i
holds values ``edges[i] <= c < edges[i + 1]``; the outer edges are open, so every value
lands in some bin (values below edges[1] in bin 0, values >= edges[-2] in the last bin).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import check_n_bins, confidence_array, float_array

BINNINGS = ("equal_count", "equal_width")


def equal_count_edges(confidence: Any, n_bins: int) -> np.ndarray:
    """Edges that split the sorted confidences into ``n_bins`` groups of near-equal size.

    Sizes differ by at most one (the first ``n % n_bins`` groups get the extra sample); each
    interior edge is the midpoint between the last value of one group and the first of the
    next. Tied values that straddle a boundary all go to the upper bin, so bin sizes on the
    fitting data are not guaranteed equal when there are ties: report them, do not assume.

    Parameters
    ----------
    confidence : array, shape (n,)
        Scores to bin (any real values: probabilities, or raw scores).
    n_bins : int
        1 <= n_bins <= n.

    Returns
    -------
    edges : ndarray, shape (n_bins + 1,); ``edges[0] = -inf`` and ``edges[-1] = +inf``.

    Raises
    ------
    ValueError
        If all values are equal and ``n_bins > 1`` (the bins would collapse into one).
    """
    c = float_array(confidence, "confidence", ndim=1)
    n_bins = check_n_bins(n_bins, len(c))
    s = np.sort(c)
    if n_bins > 1 and s[0] == s[-1]:
        raise ValueError(
            f"confidence: all {len(c)} values equal {s[0]:.6g}, so {n_bins} equal-count bins "
            "would collapse into one; use n_bins=1 or check the confidences")
    sizes = np.full(n_bins, len(s) // n_bins)
    sizes[: len(s) % n_bins] += 1
    starts = np.cumsum(sizes)[:-1]  # index of the first value of groups 1..n_bins-1
    lo, hi = s[starts - 1], s[starts]
    interior = lo / 2.0 + hi / 2.0  # halves first: no overflow to inf for huge scores
    interior = np.where(interior > lo, interior, hi)  # adjacent floats: midpoint rounds to lo
    return np.concatenate(([-np.inf], interior, [np.inf]))


def equal_width_edges(n_bins: int) -> np.ndarray:
    """Edges of ``n_bins`` equal intervals of [0, 1]: ``linspace(0, 1, n_bins + 1)``.

    With :func:`assign_bins`, confidence 0.0 lands in the first bin and 1.0 in the last.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins: expected an integer >= 1, got {n_bins!r}")
    return np.linspace(0.0, 1.0, int(n_bins) + 1)


def bin_edges(confidence: Any, n_bins: int, binning: str = "equal_count") -> np.ndarray:
    """Edges for ``binning`` in {"equal_count", "equal_width"} (see the two functions above)."""
    if binning == "equal_count":
        return equal_count_edges(confidence, n_bins)
    if binning == "equal_width":
        c = confidence_array(confidence)
        check_n_bins(n_bins, len(c))
        return equal_width_edges(n_bins)
    raise ValueError(f"binning: expected one of {BINNINGS}, got {binning!r}")


def assign_bins(confidence: Any, edges: Any) -> np.ndarray:
    """Bin index in ``[0, len(edges) - 2]`` of every value, using edges from a fit.

    A value equal to an interior edge goes to the upper bin; values outside the outer edges
    are clamped into the first / last bin.

    Parameters
    ----------
    confidence : array, shape (n,)
    edges : array, shape (n_bins + 1,), non-decreasing.

    Returns
    -------
    bins : int ndarray, shape (n,)
    """
    c = float_array(confidence, "confidence", ndim=1)
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2:
        raise ValueError(f"edges: expected a 1-D array of at least 2 edges, got shape {e.shape}")
    if np.any(np.diff(e) < 0) or np.isnan(e).any():
        raise ValueError("edges: must be non-decreasing and free of NaN")
    return np.searchsorted(e[1:-1], c, side="right")


def bin_counts(bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Number of samples in each of ``n_bins`` bins."""
    return np.bincount(bins, minlength=n_bins)


def bin_means(bins: np.ndarray, n_bins: int, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Count per bin, then the mean of each ``values`` array per bin (NaN for empty bins).

    Parameters
    ----------
    bins : int array, shape (n,)
        Bin index of every sample, from :func:`assign_bins`.
    n_bins : int
    *values : arrays, shape (n,)

    Returns
    -------
    (count, mean_1, mean_2, ...) : ndarrays of shape (n_bins,)
    """
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = tuple(np.bincount(bins, weights=v, minlength=n_bins) / count for v in values)
    return (count, *means)

