"""The calibration lab's sweeps: every slider position of the book's teaching explorers,
precomputed with calcas. Pure functions over arrays, inputs validated here, no drawing.

- :func:`temperature_sweep`: ``softmax(logits / T)`` on the test half for T on a log grid
  (:func:`log_grid`): reliability table, ECE, NLL and accuracy at each T, and the T that
  :func:`calcas.fit_temperature` fits on the cal half;
- :func:`sample_size_sweep`: the ECE of a perfectly calibrated model over repeated draws of n
  samples (:func:`log_sizes`; its true ECE is 0, so every estimate above 0 is bias and noise),
  per estimator, with :func:`min_detectable_curve` beside it;
- :func:`binning_sweep`: the reliability table and ECE for every bin count N, with
  equal-width and equal-count bins;
- :func:`expected_score` and :func:`scoring_rule_curves`: the expected score of reporting a
  probability q when the truth is p, under NLL, Brier and absolute error (a rule that is not
  proper);
- :func:`calibration_maps`: what temperature scaling and Platt scaling, fitted on the cal half,
  do to each confidence, over the cal half's reliability points.

Every number comes from :func:`calcas.reliability_table`, :func:`calcas.ece`,
:func:`calcas.temperature_nll`, :func:`calcas.max_prob_confidence` and
:func:`calcas.min_detectable_ece`. The lab chapter (:mod:`calcas.chapters.lab`) draws them.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._validate import (check_binning, check_positive_int, confidence_array, float_array, label_array,
                        same_length, to_numpy)
from .binning import BINNINGS, assign_bins, equal_count_edges
from .calibration import PlattScaling, TemperatureScaling, fit_temperature, temperature_nll
from .confidence import max_prob_confidence, top1_logit
from .metrics import ESTIMATORS, ece, min_detectable_ece, reliability_table

__all__ = ["TemperatureSweep", "log_grid", "log_sizes", "temperature_sweep", "sample_size_sweep",
           "min_detectable_curve", "binning_sweep", "SCORING_RULES", "expected_score", "scoring_rule_curves",
           "CalibrationMaps", "calibration_maps"]

#: The scoring rules of :func:`expected_score`: two strictly proper ones and one that is not.
SCORING_RULES = ("nll", "brier", "absolute")


def log_grid(low: float, high: float, *, steps_per_doubling: int = 8) -> np.ndarray:
    """Temperatures ``2 ** (k / steps_per_doubling)`` from ``low`` to ``high`` (both powers of two).

    Parameters
    ----------
    low, high : float
        Ends of the grid, powers of two with ``0 < low < high`` (e.g. 0.25 and 4).
    steps_per_doubling : int
        Grid points per doubling of T (8: T grows by 9% a step).

    Returns
    -------
    ndarray, shape (m,)
        The grid. ``np.log2`` of a point need not be ``k / steps_per_doubling`` to the last bit
        (``log2(2 ** -0.5)`` is -0.4999999999999999): match slider positions to it on rounded
        keys (:func:`calcas.render.interactive.grid_key`), never on the float.
    """
    steps = check_positive_int(steps_per_doubling, "steps_per_doubling")
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
        raise ValueError(f"low, high: expected 0 < low < high, got {low!r}, {high!r}")
    lo, hi = np.log2(low), np.log2(high)
    if lo != round(lo) or hi != round(hi):
        raise ValueError(f"low, high: expected powers of two, got {low!r}, {high!r}")
    return 2.0 ** (np.arange(round(lo) * steps, round(hi) * steps + 1) / steps)


def log_sizes(low: int, high: int, *, steps_per_decade: int = 8) -> np.ndarray:
    """Sample sizes ``round(10 ** (k / steps_per_decade))`` from ``low`` to ``high``.

    Parameters
    ----------
    low, high : int
        The smallest and largest n, ``1 <= low < high``; the grid keeps the points
        ``10 ** (k / steps_per_decade)`` that round into [low, high].
    steps_per_decade : int
        Grid points per factor of 10 in n (8: n grows by a third a step).

    Returns
    -------
    ndarray of int, shape (m,)
    """
    steps = check_positive_int(steps_per_decade, "steps_per_decade")
    low, high = check_positive_int(low, "low"), check_positive_int(high, "high")
    if low >= high:
        raise ValueError(f"low, high: expected low < high, got {low}, {high}")
    k = np.arange(np.floor(np.log10(low) * steps), np.ceil(np.log10(high) * steps) + 1)
    n = np.unique(np.round(10.0 ** (k / steps)).astype(np.int64))
    return n[(n >= low) & (n <= high)]


@dataclasses.dataclass(frozen=True)
class TemperatureSweep:
    """What :func:`temperature_sweep` returns (every metric on the test half).

    Attributes
    ----------
    curve : DataFrame
        One row per grid temperature: ``T, log2_T, ece, nll, accuracy``.
    bins : DataFrame
        The reliability table at every grid temperature (non-empty bins): ``log2_T, bin,
        count, mean_confidence, accuracy``.
    fitted : dict
        ``T`` (fitted on the cal half by :func:`calcas.fit_temperature`) and the test half's
        ``ece, nll, accuracy`` at that T.
    n_bins : int
    binning : str
    """

    curve: pd.DataFrame
    bins: pd.DataFrame
    fitted: dict[str, float]
    n_bins: int
    binning: str


def temperature_sweep(logits: Any, labels: Any, *, cal: Any, temperatures: Any | None = None,
                      n_bins: int = 15, binning: str = "equal_count") -> TemperatureSweep:
    """Reliability, ECE, NLL and accuracy of ``softmax(logits / T)`` for every T of a grid.

    Parameters
    ----------
    logits : array, shape (n, C)
        Raw logits (not probabilities) of a classifier.
    labels : int array, shape (n,)
        The labels; an answer is correct when its argmax equals its label.
    cal : bool array, shape (n,)
        True on the cal half (where T is fitted), False on the test half (where everything
        is measured). Both halves must be non-empty.
    temperatures : array, shape (m,), optional
        Temperatures > 0; default :func:`log_grid` from 0.25 to 4.
    n_bins : int
    binning : {"equal_count", "equal_width"}
        As in :func:`calcas.ece`; equal-count edges are fitted on each T's own test confidences.

    Returns
    -------
    TemperatureSweep
        Accuracy is the same at every T (T > 0 does not move the argmax); it is computed at
        each T all the same, so the read-out shows what the data says.
    """
    z = float_array(logits, "logits", ndim=2, keep_float32=True)  # fitted as given, as fit_temperature does
    y = label_array(labels, "labels", z.shape[1])
    mask = _mask(cal, "cal")
    same_length(logits=z, labels=y, cal=mask)
    if mask.all() or not mask.any():
        raise ValueError(f"cal: needs rows in both halves, got {int(mask.sum())} cal rows of {len(mask)}")
    check_binning(binning, BINNINGS)
    n_bins = check_positive_int(n_bins, "n_bins")
    grid = log_grid(0.25, 4.0) if temperatures is None else float_array(temperatures, "temperatures", ndim=1)
    if grid.min() <= 0:
        raise ValueError(f"temperatures: must be > 0, found {grid.min():.6g}")
    test_z, test_y = z[~mask], y[~mask]

    def measure(T: float) -> tuple[dict[str, float], pd.DataFrame]:
        conf, pred = max_prob_confidence(test_z, T)
        correct = (pred == test_y).astype(float)
        table = reliability_table(conf, correct, n_bins, binning)
        return ({"ece": ece(conf, correct, n_bins, binning), "nll": temperature_nll(test_z, test_y, T),
                 "accuracy": float(correct.mean())}, table[table["count"] > 0])

    rows, bins = [], []
    for T in grid.tolist():
        stats, table = measure(T)
        rows.append({"T": T, "log2_T": float(np.log2(T)), **stats})
        bins.append(table.assign(log2_T=float(np.log2(T))))
    T_fit = fit_temperature(z[mask], y[mask])
    bins = pd.concat(bins, ignore_index=True)[["log2_T", "bin", "count", "mean_confidence", "accuracy"]]
    return TemperatureSweep(curve=pd.DataFrame(rows), bins=bins, fitted={"T": T_fit, **measure(T_fit)[0]},
                            n_bins=n_bins, binning=binning)


def sample_size_sweep(confidence: Any, *, sizes: Any, draws: int = 500, n_bins: int = 15,
                      binning: str = "equal_count", estimators: Sequence[str] = ESTIMATORS,
                      percentiles: tuple[float, float] = (10.0, 90.0), seed: int = 0) -> pd.DataFrame:
    """The ECE of a perfectly calibrated model over repeated draws of n samples, per estimator.

    Each draw takes n confidences from ``confidence`` (with replacement) and decides each
    answer's correctness by a coin that lands "correct" with exactly that probability, so the
    model is perfectly calibrated by construction: its true ECE is 0, and the mean estimate
    at each n is the estimator's bias there. The same draws are scored by every estimator.

    Parameters
    ----------
    confidence : array, shape (m,)
        A pool of confidences (probabilities in [0, 1]), e.g. the top-1 confidences of a
        calibrated model; only their distribution matters.
    sizes : array of int, shape (k,)
        Sample sizes n, each >= ``n_bins``.
    draws : int
        Draws per sample size.
    n_bins : int
    binning : {"equal_count", "equal_width"}
    estimators : sequence of str
        ``estimator`` values of :func:`calcas.ece` ("plugin", "debiased").
    percentiles : (low, high)
        The spread reported, in percent (10, 90: the middle 80% of the draws).
    seed : int

    Returns
    -------
    DataFrame
        One row per (n, estimator): ``n, estimator, mean, low, high``.
    """
    pool = confidence_array(confidence)
    n_bins = check_positive_int(n_bins, "n_bins")
    check_binning(binning, BINNINGS)
    draws = check_positive_int(draws, "draws")
    sizes = to_numpy(sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(f"sizes: expected a 1-D array of integers, got {sizes!r}")
    if sizes.min() < n_bins:
        raise ValueError(f"sizes: each n must be >= n_bins ({n_bins}), found {sizes.min()}")
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown or not estimators:
        raise ValueError(f"estimators: expected some of {list(ESTIMATORS)}, got {list(estimators)}")
    low, high = percentiles
    if not 0 <= low < high <= 100:
        raise ValueError(f"percentiles: expected 0 <= low < high <= 100, got {percentiles!r}")
    rng = np.random.default_rng(seed)
    rows = []
    for n in sorted(set(sizes.tolist())):
        values = np.empty((len(estimators), draws))
        for d in range(draws):
            c = rng.choice(pool, n)
            correct = (rng.random(n) < c).astype(float)
            for i, est in enumerate(estimators):
                values[i, d] = ece(c, correct, n_bins, binning, estimator=est)
        for est, v in zip(estimators, values):
            lo, hi = np.percentile(v, [low, high])
            rows.append({"n": int(n), "estimator": est, "mean": float(v.mean()),
                         "low": float(lo), "high": float(hi)})
    return pd.DataFrame(rows)


def min_detectable_curve(sizes: Any, *, n_bins: int = 15, accuracy: float = 0.5) -> pd.DataFrame:
    """:func:`calcas.metrics.min_detectable_ece` at each sample size, drawn beside :func:`sample_size_sweep`.

    Parameters
    ----------
    sizes : array of int, shape (k,)
        Sample sizes n, each >= ``n_bins``.
    n_bins : int
    accuracy : float
        The model's accuracy, in (0, 1) (of a calibrated model: its mean confidence).

    Returns
    -------
    DataFrame
        ``n, min_detectable``.
    """
    sizes = to_numpy(sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(f"sizes: expected a 1-D array of integers, got {sizes!r}")
    return pd.DataFrame({"n": sizes.astype(int), "min_detectable": [
        min_detectable_ece(int(n), n_bins, accuracy=float(accuracy)) for n in sizes.tolist()]})


def binning_sweep(confidence: Any, correct: Any, *, n_bins: Iterable[int] = range(2, 31),
                  binnings: Sequence[str] = BINNINGS, sample: int | None = None,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reliability tables and ECE for every bin count N and binning.

    Parameters
    ----------
    confidence : array, shape (n,)
        Probabilities in [0, 1] of each answer.
    correct : array, shape (n,)
        Verifier score of each answer (0/1, or in [0, 1]).
    n_bins : iterable of int
        Bin counts, each in [1, n].
    binnings : sequence of {"equal_count", "equal_width"}
    sample : int, optional
        Use a seeded random subset of this many rows (drawn without replacement; all rows
        when it is None or at least n): a small sample shows how noisy a sparse bin is.
    seed : int
        Seed of the subset.

    Returns
    -------
    (bins, summary) : DataFrames
        ``bins``: the non-empty rows of :func:`calcas.reliability_table` with ``N, binning``;
        ``summary``: one row per (N, binning): ``N, binning, ece, smallest`` (fewest samples in
        a non-empty bin), ``empty`` (empty bins), ``bins`` (bins formed).
    """
    c = confidence_array(confidence)
    v = float_array(correct, "correct", ndim=1, low=0.0, high=1.0)
    same_length(confidence=c, correct=v)
    grid = sorted({int(n) for n in n_bins})
    for b in binnings:
        check_binning(b, BINNINGS)
    if not grid or not binnings:
        raise ValueError("n_bins, binnings: need at least one bin count and one binning")
    if sample is not None and check_positive_int(sample, "sample") < len(c):
        rows = np.sort(np.random.default_rng(seed).choice(len(c), sample, replace=False))
        c, v = c[rows], v[rows]
    if grid[0] < 1 or grid[-1] > len(c):
        raise ValueError(f"n_bins: bin counts must lie in [1, {len(c)}] (the samples), got {grid[0]}..{grid[-1]}")
    bins, summary = [], []
    for b in binnings:
        for N in grid:
            table = reliability_table(c, v, N, b)
            full = table[table["count"] > 0]
            bins.append(full.assign(N=N, binning=b))
            summary.append({"N": N, "binning": b, "ece": ece(c, v, N, b), "smallest": int(full["count"].min()),
                            "empty": int((table["count"] == 0).sum()), "bins": len(table)})
    bins = pd.concat(bins, ignore_index=True)[["N", "binning", "bin", "count", "mean_confidence", "accuracy"]]
    return bins, pd.DataFrame(summary)


def expected_score(p: Any, q: Any, rule: str) -> np.ndarray:
    """Expected loss of reporting probability ``q`` for a yes/no event that happens with
    probability ``p``: ``p * loss(q, 1) + (1 - p) * loss(q, 0)``.

    Parameters
    ----------
    p : float or array
        The true probability, in [0, 1].
    q : float or array
        The reported probability, in (0, 1) for ``"nll"`` (its loss is infinite at 0 and 1),
        in [0, 1] otherwise; broadcast against ``p``.
    rule : {"nll", "brier", "absolute"}
        ``"nll"``: the log loss ``-log q`` if the event happens, ``-log(1 - q)`` if not;
        ``"brier"``: ``(q - y) ** 2``; ``"absolute"``: ``|q - y|``. NLL and Brier are strictly
        proper (the expectation is smallest at ``q = p`` alone); the absolute error is not (it
        is smallest at 0 or 1, whichever is the likelier outcome).

    Returns
    -------
    ndarray
        The expected loss, lower is better, in the broadcast shape of ``p`` and ``q``.
    """
    if rule not in SCORING_RULES:
        raise ValueError(f"rule: expected one of {list(SCORING_RULES)}, got {rule!r}")
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    for name, x in (("p", p), ("q", q)):
        if not np.all((x >= 0) & (x <= 1)):
            raise ValueError(f"{name}: expected probabilities in [0, 1]")
    if rule == "nll":
        if np.any((q <= 0) | (q >= 1)):
            raise ValueError("q: the NLL of a report of exactly 0 or 1 is infinite; report q in (0, 1)")
        return -(p * np.log(q) + (1.0 - p) * np.log1p(-q))
    if rule == "brier":
        return p * (1.0 - q) ** 2 + (1.0 - p) * q ** 2
    return p * (1.0 - q) + (1.0 - p) * q


def scoring_rule_curves(p: float, *, steps: int = 999) -> pd.DataFrame:
    """:func:`expected_score` of every report q on a grid, for each rule of :data:`SCORING_RULES`.

    Parameters
    ----------
    p : float
        The true probability, in [0, 1].
    steps : int
        Grid points ``q = k / (steps + 1)``, k = 1..steps (0 and 1 excluded: the NLL is
        infinite there).

    Returns
    -------
    DataFrame
        ``rule, q, expected``, one row per rule and grid point.
    """
    steps = check_positive_int(steps, "steps")
    q = np.arange(1, steps + 1) / (steps + 1)
    return pd.concat([pd.DataFrame({"rule": rule, "q": q, "expected": expected_score(p, q, rule)})
                      for rule in SCORING_RULES], ignore_index=True)


@dataclasses.dataclass(frozen=True)
class CalibrationMaps:
    """What :func:`calibration_maps` returns: two calibrators, fitted on the cal half, as maps
    of the raw top-1 log-odds ``s = log(c / (1 - c))``.

    Attributes
    ----------
    reliability : DataFrame
        The cal half's equal-count bins of ``s``: ``count, mean_score, mean_confidence``
        (the raw confidence) and ``accuracy``; a calibrator should pass near these points.
    platt : DataFrame
        ``score, confidence``: ``sigmoid(a * s + b)`` on a grid of ``s``; an exact function of s.
    temperature : DataFrame
        ``score, confidence``: the mean temperature-scaled confidence in each of ``fine_bins``
        equal-count bins of ``s`` (with more than two classes it depends on every logit, not
        on ``s`` alone, so it is drawn as that mean).
    T, a, b : float
        The fitted temperature and Platt's slope and intercept.
    """

    reliability: pd.DataFrame
    platt: pd.DataFrame
    temperature: pd.DataFrame
    T: float
    a: float
    b: float


def calibration_maps(logits: Any, labels: Any, *, cal: Any, n_bins: int = 15, fine_bins: int = 50,
                     points: int = 200) -> CalibrationMaps:
    """Temperature scaling and Platt scaling fitted on the cal half, drawn as maps from the raw
    top-1 log-odds to the calibrated confidence, over the cal half's reliability points.

    Platt is fitted on ``s = log(c / (1 - c))`` of the raw top-1 confidence against whether the
    argmax is right (as :func:`calcas.calibrate_records` does without a score column);
    temperature scaling on the logits against the labels.

    Parameters
    ----------
    logits : array, shape (n, C)
    labels : int array, shape (n,)
    cal : bool array, shape (n,)
        True on the cal half, where both are fitted and the points are binned.
    n_bins : int
        Equal-count bins of the reliability points.
    fine_bins : int
        Equal-count bins of the temperature map's means.
    points : int
        Grid points of the Platt curve, over the cal half's range of ``s``.

    Returns
    -------
    CalibrationMaps
    """
    z = float_array(logits, "logits", ndim=2, keep_float32=True)
    y = label_array(labels, "labels", z.shape[1])
    mask = _mask(cal, "cal")
    same_length(logits=z, labels=y, cal=mask)
    if not mask.any():
        raise ValueError("cal: no cal rows")
    n_bins, fine_bins = check_positive_int(n_bins, "n_bins"), check_positive_int(fine_bins, "fine_bins")
    points = check_positive_int(points, "points")
    conf, pred = max_prob_confidence(z[mask], 1.0)
    right = (pred == y[mask]).astype(float)
    s = top1_logit(conf)
    platt = PlattScaling().fit(s, right)
    scaling = TemperatureScaling().fit(z[mask], y[mask])
    scaled = scaling.transform(z[mask])

    def binned(k: int) -> pd.DataFrame:
        # equal-count bins of the confidence are equal-count bins of s, which increases with it
        which = assign_bins(conf, equal_count_edges(conf, k))
        frame = pd.DataFrame({"bin": which, "s": s, "c": conf, "t": scaled, "v": right}).groupby("bin")
        return pd.DataFrame({"count": frame.size(), "mean_score": frame["s"].mean(), "mean_confidence": frame["c"].mean(),
                             "temperature": frame["t"].mean(), "accuracy": frame["v"].mean()}).reset_index(drop=True)

    points_table = binned(n_bins)
    fine = binned(fine_bins)
    grid = np.linspace(s.min(), s.max(), points)
    return CalibrationMaps(
        reliability=points_table[["count", "mean_score", "mean_confidence", "accuracy"]],
        platt=pd.DataFrame({"score": grid, "confidence": platt.transform(grid)}),
        temperature=pd.DataFrame({"score": fine["mean_score"], "confidence": fine["temperature"]}),
        T=float(scaling.temperature_), a=float(platt.a_), b=float(platt.b_))


def _mask(x: Any, name: str) -> np.ndarray:
    a = to_numpy(x)
    if a.ndim != 1 or a.dtype != bool:
        raise ValueError(f"{name}: expected a 1-D boolean mask, got dtype {a.dtype} and shape {a.shape}")
    return a
