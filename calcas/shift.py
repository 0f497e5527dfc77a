"""When the data moves: does a model's calibration survive a shift of its inputs, and what can be
said about the target without its labels (SPEC §3c).

Functions over arrays, validated once at the entry point:

- :func:`confidence_shift_test`: a label-free two-sample test of the source and target confidence
  distributions, with effect sizes a reader can judge (at thousands of rows every shift is
  significant).
- :func:`predict_accuracy`: the target's accuracy estimated from its confidences alone, by average
  confidence (AC), average thresholded confidence (ATC, Garg et al. 2022) or difference of
  confidences (DOC, Guillory et al. 2021), with a bootstrap interval.
- :func:`recalibration_curve`: the target's ECE after refitting Platt scaling on m labelled
  target rows, alone or starting from the source fit.

What none of them can see: a shift that leaves the confidence distribution unchanged but changes
how often the model is right at each confidence (concept shift). The test then finds nothing and
the label-free estimates are as wrong as the change.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit

from ._validate import check_level, check_positive_int, check_seed, confidence_array, correct_array, float_array, \
    same_length
from .calibration import fit_platt
from .metrics import ece

SHIFT_TESTS = ("ks", "permutation")
ACCURACY_METHODS = ("ac", "atc", "doc")
RECALIBRATIONS = ("target", "source prior")


# ---------------------------------------------------------------------------- the shift test


@dataclasses.dataclass(frozen=True)
class ShiftTest:
    """What :func:`confidence_shift_test` found.

    Attributes
    ----------
    method : str
        ``"ks"`` or ``"permutation"``.
    statistic : float
        The two-sample Kolmogorov-Smirnov statistic D: the largest gap between the two empirical
        CDFs of the confidences, in [0, 1]. It is itself an effect size: the largest difference,
        over thresholds t, between the shares of source and target rows with confidence <= t.
    p_value : float
        Of H0 "source and target confidences have one distribution".
    mean_difference : float
        Mean target confidence minus mean source confidence (in confidence units).
    wasserstein : float
        The earth mover's distance between the two confidence distributions (confidence units:
        how far, on average, the mass must move).
    n_source, n_target : int
    tied_share : float
        Share of the rows whose confidence equals another row's (pooled): the asymptotic KS p-value
        assumes continuous data, and with ties it is conservative (too large).
    """

    method: str
    statistic: float
    p_value: float
    mean_difference: float
    wasserstein: float
    n_source: int
    n_target: int
    tied_share: float


def _ks_statistic(source: np.ndarray, target: np.ndarray) -> float:
    grid = np.concatenate((source, target))
    cdf_s = np.searchsorted(np.sort(source), grid, side="right") / len(source)
    cdf_t = np.searchsorted(np.sort(target), grid, side="right") / len(target)
    return float(np.abs(cdf_s - cdf_t).max())


def confidence_shift_test(conf_source: Any, conf_target: Any, *, method: str = "ks", n_permutations: int = 2000,
                          seed: int = 0) -> ShiftTest:
    """Do the source and target confidences come from one distribution? A label-free test.

    Parameters
    ----------
    conf_source : array, shape (n_s,)
        Confidences (probabilities in [0, 1], calibrated or not: the same function on both sides)
        of the model on the source rows.
    conf_target : array, shape (n_t,)
        The same on the target rows.
    method : {"ks", "permutation"}
        ``"ks"``: :func:`scipy.stats.ks_2samp` (exact for small samples, asymptotic otherwise; it
        assumes continuous confidences, and ties make it conservative). ``"permutation"``: the same
        statistic, its p-value from ``n_permutations`` random reassignments of the pooled rows to
        the two sides, exact at any number of ties ((1 + #{D* >= D}) / (1 + n_permutations)).
    n_permutations, seed : int
        For ``"permutation"``.

    Returns
    -------
    ShiftTest

    Notes
    -----
    Assumes the rows of each side are independent draws (exchangeable). It compares distributions
    of confidence only: a shift that changes accuracy at each confidence but not the
    confidences themselves passes unseen. A tiny p-value at thousands of rows says the
    distributions differ, not that the difference matters: read ``statistic``,
    ``mean_difference`` and ``wasserstein``.
    """
    s = confidence_array(conf_source, "conf_source")
    t = confidence_array(conf_target, "conf_target")
    if len(s) < 2 or len(t) < 2:
        raise ValueError(f"conf_source, conf_target: need at least 2 rows each, got {len(s)} and {len(t)}")
    if method not in SHIFT_TESTS:
        raise ValueError(f"method: expected one of {SHIFT_TESTS}, got {method!r}")
    pooled = np.concatenate((s, t))
    _, inverse, counts = np.unique(pooled, return_inverse=True, return_counts=True)
    tied = float(np.mean(counts[inverse] > 1))
    if method == "ks":
        result = stats.ks_2samp(s, t)
        statistic, p = float(result.statistic), float(result.pvalue)
    else:
        n_permutations = check_positive_int(n_permutations, "n_permutations")
        rng = np.random.default_rng(check_seed(seed))
        statistic = _ks_statistic(s, t)
        exceed = 0
        for _ in range(n_permutations):
            shuffled = rng.permutation(pooled)
            exceed += _ks_statistic(shuffled[:len(s)], shuffled[len(s):]) >= statistic - 1e-12
        p = (1 + exceed) / (1 + n_permutations)
    return ShiftTest(method, statistic, p, float(t.mean() - s.mean()), float(stats.wasserstein_distance(s, t)),
                     len(s), len(t), tied)


# ---------------------------------------------------------------------------- accuracy without labels


@dataclasses.dataclass(frozen=True)
class AccuracyEstimate:
    """What :func:`predict_accuracy` estimated: ``estimate`` of the target's accuracy, its
    percentile bootstrap interval ``[low, high]`` at ``level``, the ``method``, and for ATC the
    source ``threshold``."""

    method: str
    estimate: float
    low: float
    high: float
    level: float
    threshold: float | None


def _estimate(method: str, conf_s: np.ndarray, correct_s: np.ndarray, conf_t: np.ndarray) -> tuple[float, float | None]:
    if method == "ac":
        return float(conf_t.mean()), None
    if method == "doc":
        return float(correct_s.mean() + conf_t.mean() - conf_s.mean()), None
    threshold = float(np.quantile(conf_s, 1.0 - correct_s.mean()))
    return float(np.mean(conf_t > threshold)), threshold


def predict_accuracy(conf_source: Any, correct_source: Any, conf_target: Any, *, method: str = "atc",
                     n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> AccuracyEstimate:
    """The target's accuracy, from labelled source rows and unlabelled target rows.

    Parameters
    ----------
    conf_source : array, shape (n_s,)
        The model's confidence (a probability; calibrated on source rows for AC and DOC to make
        sense) on the source rows.
    correct_source : array, shape (n_s,)
        0/1 (or graded in [0, 1]) correctness on the source rows.
    conf_target : array, shape (n_t,)
        The same confidence function on the target rows (no labels needed).
    method : {"ac", "atc", "doc"}
        ``"ac"``: the mean target confidence. ``"atc"`` (Garg et al. 2022): the threshold t at
        which the share of source confidences above it equals the source accuracy: the
        (1 - accuracy) quantile of the source confidences, linearly interpolated (with confidences
        tied at t the share strictly above it can fall short); the estimate is the share of target
        confidences strictly above t. ``"doc"`` (Guillory et al. 2021): source accuracy
        plus the change in mean confidence from source to target.
    n_boot : int
        Bootstrap replicates: source rows (confidence and correctness together) and target rows
        resampled independently.
    level : float in (0, 1)
    seed : int

    Returns
    -------
    AccuracyEstimate

    Notes
    -----
    Each method assumes that what links confidence to correctness on the source holds on the
    target; a shift that changes accuracy at fixed confidence fools all three.
    """
    cs = confidence_array(conf_source, "conf_source")
    vs = correct_array(correct_source, "correct_source")
    same_length(conf_source=cs, correct_source=vs)
    ct = confidence_array(conf_target, "conf_target")
    if len(cs) < 2 or len(ct) < 2:
        raise ValueError(f"conf_source, conf_target: need at least 2 rows each, got {len(cs)} and {len(ct)}")
    if method not in ACCURACY_METHODS:
        raise ValueError(f"method: expected one of {ACCURACY_METHODS}, got {method!r}")
    n_boot, level = check_positive_int(n_boot, "n_boot"), check_level(level)
    rng = np.random.default_rng(check_seed(seed))
    value, threshold = _estimate(method, cs, vs, ct)
    boot = np.empty(n_boot)
    for b in range(n_boot):
        i, j = rng.integers(0, len(cs), len(cs)), rng.integers(0, len(ct), len(ct))
        boot[b] = _estimate(method, cs[i], vs[i], ct[j])[0]
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return AccuracyEstimate(method, value, float(low), float(high), level, threshold)


# ---------------------------------------------------------------------------- recalibration


def _platt_with_prior(scores: np.ndarray, correct: np.ndarray, prior: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(a, b) minimising the summed binary NLL of ``correct`` under sigmoid(a s + b) plus the
    Gaussian penalty (theta - prior)' precision (theta - prior) / 2: a MAP fit that starts from
    the source parameters and moves as far as the target rows ask."""
    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * scores + theta[1]
        p = expit(z)
        nll = float(np.sum(np.logaddexp(0.0, z) - correct * z))
        d = theta - prior
        g = np.array([np.dot(p - correct, scores), np.sum(p - correct)]) + precision @ d
        return nll + 0.5 * float(d @ precision @ d), g
    return optimize.minimize(objective, prior, jac=True, method="BFGS").x


def _fisher(scores: np.ndarray, a: float, b: float) -> np.ndarray:
    """The Fisher information of one row, averaged over ``scores``, of Platt's (a, b) at (a, b)."""
    p = expit(a * scores + b)
    w = p * (1 - p)
    return np.array([[np.mean(w * scores * scores), np.mean(w * scores)], [np.mean(w * scores), np.mean(w)]])


def recalibration_curve(score_source: Any, correct_source: Any, score_target: Any, correct_target: Any, *,
                        sizes: Sequence[int] = (25, 50, 100, 200, 400, 800), n_repeats: int = 50,
                        prior_rows: float = 100.0, test_fraction: float = 0.5, n_bins: int = 15, level: float = 0.95,
                        seed: int = 0) -> pd.DataFrame:
    """The target's ECE after refitting Platt scaling on m labelled target rows: how many labels
    a shifted deployment needs.

    The target rows are split once (seeded): ``test_fraction`` of them measure ECE, the rest is the
    pool the m labelled rows are drawn from (``n_repeats`` draws per m). Two fits per draw:

    - ``"target"``: Platt scaling on the m rows alone (where it has no finite optimum, as when the
      m rows are all right, the draw keeps the source fit and is counted in ``fallbacks``);
    - ``"source prior"``: a MAP fit whose Gaussian prior is centred on the source fit, with the
      precision of ``prior_rows`` source rows (their average Fisher information times
      ``prior_rows``): at small m it stays near the source fit, at large m the target rows win.

    Parameters
    ----------
    score_source, score_target : array, shape (n_s,), (n_t,)
        Real-valued scores Platt scaling maps (e.g. :func:`calcas.confidence.top1_logit` of a
        top-1 probability), on the source and target rows.
    correct_source, correct_target : array
        0/1 correctness on the same rows.
    sizes : sequence of int
        The m values; each at most the pool's size.
    n_repeats : int
    prior_rows : float > 0
    test_fraction : float in (0, 1)
    n_bins : int
        Equal-count bins of the ECE.
    level : float
        Of the interval of each mean: mean ± t-quantile × standard error over the draws, which
        covers the expected ECE of a fit on m random pool rows, the test rows held fixed.
    seed : int

    Returns
    -------
    DataFrame
        One row per (fit, m): ``fit``, ``m``, ``ece_mean``, ``ece_low``, ``ece_high``, ``ece_sd``
        (over the draws), ``fallbacks``; plus rows ``fit = "source"`` and ``fit = "none"`` (m = 0):
        the source fit and the raw scores through a sigmoid, on the same test rows.
    """
    ss = float_array(score_source, "score_source", ndim=1)
    vs = correct_array(correct_source, "correct_source")
    same_length(score_source=ss, correct_source=vs)
    st = float_array(score_target, "score_target", ndim=1)
    vt = correct_array(correct_target, "correct_target")
    same_length(score_target=st, correct_target=vt)
    real = (int, float, np.integer, np.floating)
    if isinstance(test_fraction, (bool, np.bool_)) or not isinstance(test_fraction, real) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: must be a number in (0, 1), got {test_fraction!r}")
    if isinstance(prior_rows, (bool, np.bool_)) or not isinstance(prior_rows, real) or not 0 < prior_rows < np.inf:
        raise ValueError(f"prior_rows: must be a finite number > 0, got {prior_rows!r}")
    n_repeats, level = check_positive_int(n_repeats, "n_repeats"), check_level(level)
    rng = np.random.default_rng(check_seed(seed))
    order = rng.permutation(len(st))
    n_test = int(round(test_fraction * len(st)))
    test, pool = order[:n_test], order[n_test:]
    if n_test < check_positive_int(n_bins, "n_bins"):
        raise ValueError(f"test_fraction: {test_fraction} of {len(st)} target rows leaves {n_test} test rows, fewer "
                         f"than the {n_bins} bins of the ECE")
    sizes = [check_positive_int(m, "sizes") for m in sizes]
    if not sizes or max(sizes) > len(pool):
        raise ValueError(f"sizes: each m must be at most the {len(pool)} target rows left after the test rows, "
                         f"got {list(sizes)}")
    try:
        a_s, b_s = fit_platt(ss, vs)
    except ValueError as err:  # name the argument the caller gave
        raise ValueError(f"score_source, correct_source: no Platt fit on the source rows: {err}") from None
    precision = prior_rows * _fisher(ss, a_s, b_s)

    def test_ece(a: float, b: float) -> float:
        return ece(expit(a * st[test] + b), vt[test], n_bins=n_bins)

    rows = [{"fit": "none", "m": 0, "ece_mean": ece(expit(st[test]), vt[test], n_bins=n_bins)},
            {"fit": "source", "m": 0, "ece_mean": test_ece(a_s, b_s)}]
    for m in sizes:
        values = {"target": [], "source prior": []}
        fallbacks = 0
        for _ in range(n_repeats):
            drawn = rng.choice(pool, size=m, replace=False)
            try:
                a, b = fit_platt(st[drawn], vt[drawn])
            except ValueError:  # one outcome only, or separated: no finite optimum
                a, b, fallbacks = a_s, b_s, fallbacks + 1
            values["target"].append(test_ece(a, b))
            values["source prior"].append(test_ece(*_platt_with_prior(st[drawn], vt[drawn], np.array([a_s, b_s]),
                                                                      precision)))
        for fit, v in values.items():
            v = np.asarray(v)
            half = stats.t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
            rows.append({"fit": fit, "m": m, "ece_mean": float(v.mean()), "ece_low": float(v.mean() - half),
                         "ece_high": float(v.mean() + half), "ece_sd": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
                         "fallbacks": fallbacks if fit == "target" else 0})
    return pd.DataFrame(rows, columns=["fit", "m", "ece_mean", "ece_low", "ece_high", "ece_sd", "fallbacks"])
