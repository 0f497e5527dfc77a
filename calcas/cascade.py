"""Cascading with calibrated advantage routing (paper §2.2, Algorithm 1; SPEC §3).

The first model (usually the small one) answers a sample when its confidence falls in one
of the K bins where the second model's calibrated advantage is smallest; otherwise the
second model is run. Everything is fitted on cal and evaluated on test, rows aligned by id
before they reach this module.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._validate import check_k, check_n_bins, confidence_array, correct_array, same_length
from .binning import assign_bins, bin_means, equal_count_edges


def advantage_bins(conf_first: Any, conf_second: Any, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Steps 1-3 of Algorithm 1 on cal: bins on the first model's confidence, the advantage
    of the second model per bin, and the order in which bins are given to the first model.

    Parameters
    ----------
    conf_first, conf_second : array, shape (n,)
        Each model's (calibrated) confidence in its own answer, probabilities in [0, 1],
        rows aligned sample by sample.
    n_bins : int
        Number of equal-count bins on ``conf_first``.

    Returns
    -------
    dict with ``edges`` (n_bins + 1,), ``count``, ``mean_first``, ``mean_second``,
    ``advantage`` = mean_second - mean_first (n_bins,; NaN for empty bins) and ``order``
    (n_bins,): bin indices by ascending advantage, ties broken by higher ``mean_first``
    first; empty bins last.
    """
    cs = confidence_array(conf_first, "conf_first")
    cl = confidence_array(conf_second, "conf_second")
    same_length(conf_first=cs, conf_second=cl)
    n_bins = check_n_bins(n_bins, len(cs))
    edges = equal_count_edges(cs, n_bins)
    b = assign_bins(cs, edges)
    count, mean_first, mean_second = bin_means(b, n_bins, cs, cl)
    advantage = mean_second - mean_first
    # lexsort sorts by the last key first; NaN (empty bins) sorts last.
    order = np.lexsort((-np.nan_to_num(mean_first, nan=-np.inf), advantage))
    return {"edges": edges, "count": count, "mean_first": mean_first,
            "mean_second": mean_second, "advantage": advantage, "order": order}


class AdvantageRouter:
    """Algorithm 1 as an object: fit on cal confidences, route new samples for a given K.

    Parameters
    ----------
    n_bins : int
        Number of equal-count bins on the first model's confidence (paper: 15).

    Attributes
    ----------
    edges_, advantage_, mean_first_, mean_second_, count_, order_ : ndarray
        See :func:`advantage_bins`.
    """

    def __init__(self, n_bins: int = 15):
        self.n_bins = n_bins

    def fit(self, conf_first: Any, conf_second: Any) -> "AdvantageRouter":
        """Fit on cal: calibrated confidences (n,) of both models, rows aligned; returns self."""
        fitted = advantage_bins(conf_first, conf_second, self.n_bins)
        for key, value in fitted.items():
            setattr(self, key + "_", value)
        return self

    def kept_bins(self, K: int) -> np.ndarray:
        """Indices of the K bins the first model keeps."""
        if not hasattr(self, "order_"):
            raise RuntimeError("AdvantageRouter is not fitted; call fit(conf_first, conf_second) first")
        return self.order_[: check_k(K, self.n_bins)]

    def route(self, conf_first: Any, K: int) -> np.ndarray:
        """True where the first model answers (its confidence falls in a kept bin), shape (n,).

        Only the first model's confidence is needed: the second model runs only where False.
        """
        kept = np.zeros(self.n_bins, dtype=bool)
        kept[self.kept_bins(K)] = True
        return kept[assign_bins(confidence_array(conf_first, "conf_first"), self.edges_)]


def oracle_accuracy(correct_first: Any, correct_second: Any, p: Any) -> np.ndarray:
    """Best accuracy any router can reach when the first model answers a share ``p``.

    The best router gives the first model the samples only it gets right, then those both
    models get equally right, and only then samples only the second model gets right.

    Parameters
    ----------
    correct_first, correct_second : array, shape (n,)
        0/1 correctness of each model on the same samples.
    p : float or array
        Share(s) of samples answered by the first model, in [0, 1].

    Returns
    -------
    accuracy : ndarray, same shape as ``p``.
    """
    vs = correct_array(correct_first, "correct_first")
    vl = correct_array(correct_second, "correct_second")
    n = same_length(correct_first=vs, correct_second=vl)
    gain = vs - vl
    p_arr = np.asarray(p, dtype=np.float64)
    if np.any((p_arr < 0) | (p_arr > 1)):
        raise ValueError("p: shares must be in [0, 1]")
    # Sort the per-sample change in accuracy from handing a sample to the first model, best first.
    best_first = np.concatenate(([0.0], np.cumsum(np.sort(gain)[::-1])))
    m = p_arr * n
    lo = np.floor(m).astype(int)
    hi = np.minimum(lo + 1, n)
    frac = m - lo
    change = best_first[lo] * (1 - frac) + best_first[hi] * frac  # linear between integer budgets
    return (vl.sum() + change) / n


def cascade_curve(conf_first_cal: Any, conf_second_cal: Any, conf_first_test: Any,
                  correct_first_test: Any, correct_second_test: Any, *, n_bins: int = 15,
                  cost_first: float | None = None, cost_second: float | None = None) -> pd.DataFrame:
    """Cascade accuracy on test for every K = 0..N, with the router fitted on cal.

    Parameters
    ----------
    conf_first_cal, conf_second_cal : array, shape (n_cal,)
        Confidences (probabilities) of each model's answer on cal, rows aligned.
    conf_first_test : array, shape (n_test,)
        The first model's confidence on test (the router needs nothing else).
    correct_first_test, correct_second_test : array, shape (n_test,)
        0/1 verifier scores of each model's answer on test.
    cost_first, cost_second : float, optional
        Cost per sample (FLOPs, latency) of each model; adds ``compute_saved`` =
        1 - (cost_first + (1 - p) cost_second) / cost_second (the first model always runs).

    Returns
    -------
    DataFrame, one row per K: ``K, p_small`` (share answered by the first model),
    ``accuracy``, ``large_calls_saved`` (number of second-model calls avoided), and
    ``compute_saved`` when costs are given. K=0 is the second model alone, K=N the first.
    """
    router = AdvantageRouter(n_bins).fit(conf_first_cal, conf_second_cal)
    cs = confidence_array(conf_first_test, "conf_first_test")
    vs = correct_array(correct_first_test, "correct_first_test")
    vl = correct_array(correct_second_test, "correct_second_test")
    n = same_length(conf_first_test=cs, correct_first_test=vs, correct_second_test=vl)
    b = assign_bins(cs, router.edges_)
    count = np.bincount(b, minlength=n_bins)[router.order_]
    gain = np.bincount(b, weights=vs - vl, minlength=n_bins)[router.order_]
    kept = np.concatenate(([0], np.cumsum(count)))
    accuracy = (vl.sum() + np.concatenate(([0.0], np.cumsum(gain)))) / n
    curve = pd.DataFrame({"K": np.arange(n_bins + 1), "p_small": kept / n, "accuracy": accuracy,
                          "large_calls_saved": kept})
    if cost_first is not None and cost_second is not None:
        if cost_first < 0 or cost_second <= 0:
            raise ValueError("cost_first, cost_second: costs must be >= 0 and > 0")
        curve["compute_saved"] = curve["p_small"] - cost_first / cost_second
    return curve


def cascade_curves(cal: dict[str, Any], test: dict[str, Any], *, n_bins: int = 15,
                   cost_first: float | None = None, cost_second: float | None = None) -> pd.DataFrame:
    """All four curves of the paper's Fig. 2/3: RC, UC, CC and the oracle, in one long table.

    Parameters
    ----------
    cal, test : dict of arrays, shape (n_cal,) / (n_test,), rows aligned across models
        Keys: ``raw_first``, ``raw_second`` (uncalibrated confidences, for UC),
        ``calibrated_first``, ``calibrated_second`` (for CC), and in ``test`` also
        ``correct_first``, ``correct_second``. Confidences are probabilities in [0, 1].

    Returns
    -------
    DataFrame with columns ``method`` (RC / UC / CC / oracle), ``K, p_small, accuracy,
    large_calls_saved`` (and ``compute_saved``). UC and CC are measured on test; RC is the
    line p·acc_first + (1 - p)·acc_second and the oracle the best router, both taken at
    CC's shares p.
    """
    vs, vl = test["correct_first"], test["correct_second"]
    costs = {"cost_first": cost_first, "cost_second": cost_second}
    curves = []
    for method, key in (("UC", "raw"), ("CC", "calibrated")):
        curve = cascade_curve(cal[f"{key}_first"], cal[f"{key}_second"], test[f"{key}_first"],
                              vs, vl, n_bins=n_bins, **costs)
        curves.append(curve.assign(method=method))
    cc = curves[-1]
    p = cc["p_small"].to_numpy()
    acc_first, acc_second = float(np.mean(vs)), float(np.mean(vl))
    curves.append(cc.assign(method="RC", accuracy=p * acc_first + (1 - p) * acc_second))
    curves.append(cc.assign(method="oracle", accuracy=oracle_accuracy(vs, vl, p)))
    out = pd.concat(curves, ignore_index=True)
    return out[["method"] + [c for c in out.columns if c != "method"]]
