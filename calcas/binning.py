"""Binning (paper §2.1, SPEC §2): equal-count (the default) and equal-width bins.

Edges are computed once (on cal) and reused on new data with :func:`assign_bins`, so cal
and test samples fall in the same bins. ``edges`` has ``m + 1`` entries for m bins; bin i
holds values ``edges[i] <= c < edges[i + 1]``; the outer edges are open, so every value
lands in some bin (values below edges[1] in bin 0, values >= edges[-2] in the last bin).
Equal-width binning always gives ``m = n_bins``; equal-count binning never splits a run of
equal values, so with ties it can give fewer bins (``1 <= m <= n_bins``), all non-empty on
the values they were fitted on: ``len(edges) - 1`` is the number of bins that exist.

The public functions check their inputs; the underscore functions below them are the
unchecked kernels the metrics, cascade and cleaning modules share once their own entry
points have checked everything.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ._validate import check_binning, check_edges, check_n_bins, confidence_array, float_array

BINNINGS = ("equal_count", "equal_width")


# ---------------------------------------------------------------- unchecked kernels


def _equal_count_edges_of_sorted(n: int, n_bins: int, value_at: Callable[[np.ndarray], np.ndarray],
                                 run_bounds: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The equal-count rule on a sorted sequence S of ``n`` values that is only read through
    ``value_at(positions) -> S[positions]`` and ``run_bounds(values) -> (first position of
    each value's run in S, one past its last)``, ``1 <= n_bins <= n`` (unchecked).

    The ideal group starts are the positions of ``np.array_split``; a start inside a run of
    equal values moves to the nearer end of the run (the lower end when both are as near), a
    start that lands on another's position or on an end of the sequence is dropped. Edges are
    midpoints between the last value of a group and the first of the next, as in
    :func:`equal_count_edges`. The accessors let the same rule run on a sorted array and on a
    bootstrap resample held as per-value counts (:mod:`calcas.metrics`).
    """
    base, extra = divmod(n, n_bins)
    # index of the first value of groups 1..n_bins-1 (the first n % n_bins groups get one more)
    starts = np.arange(1, n_bins) * base + np.minimum(np.arange(1, n_bins), extra)
    lo, hi = value_at(starts - 1), value_at(starts)
    tied = lo == hi
    if tied.any():  # starts inside a run of ties: move them to the nearer end of the run
        j = starts[tied]
        run_lo, run_hi = run_bounds(hi[tied])
        down_ok, up_ok = run_lo > 0, run_hi < n
        go_down = down_ok & (~up_ok | (j - run_lo <= run_hi - j))
        moved = np.where(go_down, run_lo, run_hi)
        keep = down_ok | up_ok  # neither: every value is equal, the start is dropped
        starts = starts.copy()
        starts[tied] = np.where(keep, moved, 0)
        starts = np.unique(starts[starts > 0])  # moved starts can coincide; sorted again
        lo, hi = value_at(starts - 1), value_at(starts)
    interior = lo / 2.0 + hi / 2.0  # halves first: no overflow to inf for huge scores
    interior = np.where(interior > lo, interior, hi)  # adjacent floats: midpoint rounds to lo
    return np.concatenate(([-np.inf], interior, [np.inf]))


def _equal_count_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-count edges of a finite float 1-D array, ``1 <= n_bins <= len(values)`` (unchecked);
    see :func:`equal_count_edges`."""
    s = np.sort(values)
    return _equal_count_edges_of_sorted(
        len(s), n_bins, s.__getitem__,
        lambda v: (np.searchsorted(s, v, side="left"), np.searchsorted(s, v, side="right")))


def _edges(values: np.ndarray, n_bins: int, binning: str) -> np.ndarray:
    """Edges for a checked ``binning``, ``n_bins`` and array of values (unchecked)."""
    if binning == "equal_count":
        return _equal_count_edges(values, n_bins)
    return np.linspace(0.0, 1.0, int(n_bins) + 1)


def _assign_bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of every value for checked edges (unchecked); see :func:`assign_bins`."""
    return np.searchsorted(edges[1:-1], values, side="right")


def _bin_sums(bins: np.ndarray, m: int, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Count per bin, then the sum of each ``values`` array per bin, all of shape (m,) (unchecked)."""
    count = np.bincount(bins, minlength=m)
    return (count, *(np.bincount(bins, weights=v, minlength=m) for v in values))


def _bin_stats(bins: np.ndarray, m: int, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Count per bin, then the mean of each ``values`` array per bin (NaN where empty; unchecked)."""
    count, *sums = _bin_sums(bins, m, *values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (count, *(s / count for s in sums))


def _rank_bins(primary: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Bin indices by ascending ``primary``, ties by descending ``tiebreak``, NaN (empty bins) last.

    The ordering shared by the cascade (primary = advantage, tiebreak = mean confidence) and
    cleaning (primary = -accuracy, tiebreak = mean confidence).
    """
    # lexsort sorts by the last key first; NaN sorts last.
    return np.lexsort((-np.nan_to_num(tiebreak, nan=-np.inf), primary))


# ---------------------------------------------------------------- public


def equal_count_edges(confidence: Any, n_bins: int) -> np.ndarray:
    """Edges that split the sorted values into at most ``n_bins`` groups of near-equal size,
    never splitting a run of equal values.

    Without ties the groups are those of ``np.array_split`` on the sorted values: sizes
    differ by at most one (the first ``n % n_bins`` groups get the extra sample). With ties,
    a group boundary that would fall inside a run of equal values moves to the nearer end of
    the run (the lower end when both are as near, so the run joins the upper group), and
    boundaries that then coincide, or that would leave a group empty, are dropped. So the
    result has ``m + 1`` edges for ``1 <= m <= n_bins`` bins, each non-empty on ``confidence``
    (all values equal: one bin). Each interior edge is the midpoint between the last value of
    one group and the first of the next (the upper value where the two are adjacent floats).

    Parameters
    ----------
    confidence : array, shape (n,)
        Scores to bin (any finite real values: probabilities, or raw scores).
    n_bins : int
        Number of bins asked for, 1 <= n_bins <= n.

    Returns
    -------
    edges : ndarray, shape (m + 1,) with 1 <= m <= n_bins
        ``edges[0] = -inf``, ``edges[-1] = +inf``, strictly increasing; ``m = len(edges) - 1``
        is the number of bins formed (``n_bins`` unless ties forced fewer).
    """
    c = float_array(confidence, "confidence", ndim=1)
    return _equal_count_edges(c, check_n_bins(n_bins, len(c)))


def equal_width_edges(n_bins: int) -> np.ndarray:
    """Edges of ``n_bins`` equal intervals of [0, 1]: ``linspace(0, 1, n_bins + 1)``.

    With :func:`assign_bins`, confidence 0.0 lands in the first bin and 1.0 in the last.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins: expected an integer >= 1, got {n_bins!r}")
    return np.linspace(0.0, 1.0, int(n_bins) + 1)


def bin_edges(confidence: Any, n_bins: int, binning: str = "equal_count") -> np.ndarray:
    """Edges for ``binning`` in {"equal_count", "equal_width"} (see the two functions above).

    ``confidence`` (shape (n,)) is any finite scores for "equal_count" and probabilities in
    [0, 1] for "equal_width"; the result has ``m + 1`` entries, ``m <= n_bins`` (``m < n_bins``
    only for "equal_count" with ties).
    """
    check_binning(binning, BINNINGS)
    if binning == "equal_count":
        c = float_array(confidence, "confidence", ndim=1)
    else:
        c = confidence_array(confidence)
    return _edges(c, check_n_bins(n_bins, len(c), binning), binning)


def assign_bins(confidence: Any, edges: Any) -> np.ndarray:
    """Bin index in ``[0, len(edges) - 2]`` of every value, using edges from a fit.

    A value equal to an interior edge goes to the upper bin; values outside the outer edges
    are clamped into the first / last bin.

    Parameters
    ----------
    confidence : array, shape (n,)
    edges : array, shape (m + 1,), non-decreasing.

    Returns
    -------
    bins : int ndarray, shape (n,)
    """
    c = float_array(confidence, "confidence", ndim=1)
    return _assign_bins(c, check_edges(edges))


def bin_counts(bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Number of samples in each of ``n_bins`` bins (``bins``: int array, shape (n,))."""
    return _bin_sums(np.asarray(bins), n_bins)[0]


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
    return _bin_stats(np.asarray(bins), n_bins, *values)
