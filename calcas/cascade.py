"""Cascading with calibrated advantage routing (paper §2.2, Algorithm 1; SPEC §3).

The first model (usually the small one) answers a sample when its confidence falls in one
of the K bins where the second model's calibrated advantage is smallest; otherwise the
second model is run. Everything is fitted on cal and evaluated on test, rows aligned by id
before they reach this module.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ._validate import check_k, check_n_bins, confidence_array, correct_array, same_length
from .binning import _assign_bins, _bin_stats, _bin_sums, _equal_count_edges, _rank_bins


def _checked_cal(conf_first: Any, conf_second: Any, n_bins: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """The entry checks of a router fit: both models' cal confidences, same length, and n_bins."""
    cs = confidence_array(conf_first, "conf_first")
    cl = confidence_array(conf_second, "conf_second")
    same_length(conf_first=cs, conf_second=cl)
    return cs, cl, check_n_bins(n_bins, len(cs))


def _advantage_bins(cs: np.ndarray, cl: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """:func:`advantage_bins` on checked inputs (unchecked kernel)."""
    edges = _equal_count_edges(cs, n_bins)
    count, mean_first, mean_second = _bin_stats(_assign_bins(cs, edges), len(edges) - 1, cs, cl)
    advantage = mean_second - mean_first
    return {"edges": edges, "count": count, "mean_first": mean_first,
            "mean_second": mean_second, "advantage": advantage, "order": _rank_bins(advantage, mean_first)}


def advantage_bins(conf_first: Any, conf_second: Any, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Steps 1-3 of Algorithm 1 on cal: bins on the first model's confidence, the advantage
    of the second model per bin, and the order in which bins are given to the first model.

    Parameters
    ----------
    conf_first, conf_second : array, shape (n,)
        Each model's (calibrated) confidence in its own answer, probabilities in [0, 1],
        rows aligned sample by sample.
    n_bins : int
        Number of equal-count bins asked for on ``conf_first``; tied confidences are never
        split, so m <= n_bins bins are formed (see :func:`calcas.equal_count_edges`).

    Returns
    -------
    dict with ``edges`` (m + 1,), ``count``, ``mean_first``, ``mean_second``,
    ``advantage`` = mean_second - mean_first (m,; every bin is non-empty on cal) and
    ``order`` (m,): bin indices by ascending advantage, ties broken by higher
    ``mean_first`` first.
    """
    return _advantage_bins(*_checked_cal(conf_first, conf_second, n_bins))


class AdvantageRouter:
    """Algorithm 1 as an object: fit on cal confidences, route new samples for a given K.

    Parameters
    ----------
    n_bins : int
        Number of equal-count bins asked for on the first model's confidence (paper: 15).

    Attributes
    ----------
    n_bins_ : int
        Number of bins formed on cal, ``1 <= n_bins_ <= n_bins`` (fewer than ``n_bins`` when
        tied confidences would have been split; see :func:`calcas.equal_count_edges`).
    edges_ : ndarray, shape (n_bins_ + 1,)
    advantage_, mean_first_, mean_second_, count_, order_ : ndarray, shape (n_bins_,)
        See :func:`advantage_bins`.
    """

    def __init__(self, n_bins: int = 15):
        self.n_bins = n_bins

    def fit(self, conf_first: Any, conf_second: Any) -> "AdvantageRouter":
        """Fit on cal: calibrated confidences (n,) of both models, rows aligned; returns self."""
        return self._set_bins(_advantage_bins(*_checked_cal(conf_first, conf_second, self.n_bins)))

    def _check_fitted(self) -> None:
        if not hasattr(self, "order_"):
            raise RuntimeError("AdvantageRouter is not fitted; call fit(conf_first, conf_second) first")

    def _set_bins(self, fitted: dict[str, np.ndarray]) -> "AdvantageRouter":
        for key, value in fitted.items():
            setattr(self, key + "_", value)
        self.n_bins_ = len(self.order_)
        return self

    def kept_bins(self, K: int) -> np.ndarray:
        """Indices of the bins the first model keeps: the first ``min(K, n_bins_)`` of ``order_``.

        ``K`` is a count of bins asked for, ``0 <= K <= n_bins``; a K beyond ``n_bins_`` (the
        bins that exist) keeps them all.
        """
        self._check_fitted()
        return self.order_[: min(check_k(K, self.n_bins), self.n_bins_)]

    def route(self, conf_first: Any, K: int) -> np.ndarray:
        """True where the first model answers (its confidence falls in a kept bin), shape (n,).

        ``conf_first`` (shape (n,)) is the first model's confidence, a probability; ``K`` as in
        :meth:`kept_bins`. Only the first model's confidence is needed: the second model runs
        only where False.
        """
        keep = self.kept_bins(K)
        kept = np.zeros(self.n_bins_, dtype=bool)
        kept[keep] = True
        return kept[_assign_bins(confidence_array(conf_first, "conf_first"), self.edges_)]

    def curve(self, conf_first: Any, correct_first: Any, correct_second: Any, *,
              cost_first: float | None = None, cost_second: float | None = None) -> pd.DataFrame:
        """The cascade's accuracy at every K = 0..n_bins_ on the given rows (test, or cal itself).

        Parameters
        ----------
        conf_first : array, shape (n,)
            The first model's confidence (a probability) on the rows to evaluate.
        correct_first, correct_second : array, shape (n,)
            0/1 verifier scores of each model's answer on those rows.
        cost_first, cost_second : float, optional
            As in :func:`cascade_curve`.

        Returns
        -------
        DataFrame as :func:`cascade_curve` returns, without fitting again.
        """
        self._check_fitted()
        rows = _checked_test(conf_first, correct_first, correct_second,
                             ("conf_first", "correct_first", "correct_second"))
        _check_costs(cost_first, cost_second)
        return _cascade_curve(self.edges_, self.order_, *rows, cost_first, cost_second)


def _oracle_accuracy(vs: np.ndarray, vl: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:func:`oracle_accuracy` on checked inputs (unchecked kernel)."""
    n = len(vs)
    # Sort the per-sample change in accuracy from handing a sample to the first model, best first.
    best_first = np.concatenate(([0.0], np.cumsum(np.sort(vs - vl)[::-1])))
    m = p * n
    lo = np.floor(m).astype(int)
    hi = np.minimum(lo + 1, n)
    frac = m - lo
    change = best_first[lo] * (1 - frac) + best_first[hi] * frac  # linear between integer budgets
    return (vl.sum() + change) / n


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
    same_length(correct_first=vs, correct_second=vl)
    try:
        p_arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"p: expected a share or an array of shares in [0, 1], got {p!r}") from None
    outside = ~((p_arr >= 0) & (p_arr <= 1))  # NaN is outside too
    if outside.any():
        raise ValueError(f"p: shares must be in [0, 1], found {float(p_arr[outside].flat[0])}")
    return _oracle_accuracy(vs, vl, p_arr)


def _check_costs(cost_first: float | None, cost_second: float | None) -> None:
    if cost_first is not None and cost_second is not None and (cost_first < 0 or cost_second <= 0):
        raise ValueError("cost_first, cost_second: costs must be >= 0 and > 0")


def _checked_test(conf_first_test: Any, correct_first_test: Any, correct_second_test: Any,
                  names: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cs = confidence_array(conf_first_test, names[0])
    vs = correct_array(correct_first_test, names[1])
    vl = correct_array(correct_second_test, names[2])
    same_length(**dict(zip(names, (cs, vs, vl))))
    return cs, vs, vl


def _cascade_curve(edges: np.ndarray, order: np.ndarray, cs: np.ndarray, vs: np.ndarray, vl: np.ndarray,
                   cost_first: float | None, cost_second: float | None) -> pd.DataFrame:
    """The curve of a fitted router (its ``edges`` and bin ``order``) on checked rows (unchecked kernel)."""
    m = len(order)
    n = len(cs)
    count, gain = _bin_sums(_assign_bins(cs, edges), m, vs - vl)
    kept = np.concatenate(([0], np.cumsum(count[order])))
    accuracy = (vl.sum() + np.concatenate(([0.0], np.cumsum(gain[order])))) / n
    curve = pd.DataFrame({"K": np.arange(m + 1), "p_small": kept / n, "accuracy": accuracy,
                          "large_calls_saved": kept})
    if cost_first is not None and cost_second is not None:
        curve["compute_saved"] = curve["p_small"] - cost_first / cost_second
    return curve


def cascade_curve(conf_first_cal: Any, conf_second_cal: Any, conf_first_test: Any,
                  correct_first_test: Any, correct_second_test: Any, *, n_bins: int = 15,
                  cost_first: float | None = None, cost_second: float | None = None) -> pd.DataFrame:
    """Cascade accuracy on test for every distinct K = 0..m, with the router fitted on cal.

    Parameters
    ----------
    conf_first_cal, conf_second_cal : array, shape (n_cal,)
        Confidences (probabilities) of each model's answer on cal, rows aligned.
    conf_first_test : array, shape (n_test,)
        The first model's confidence on test (the router needs nothing else).
    correct_first_test, correct_second_test : array, shape (n_test,)
        0/1 verifier scores of each model's answer on test.
    n_bins : int
        Equal-count bins asked for on ``conf_first_cal``; m <= n_bins are formed
        (``AdvantageRouter(n_bins).fit(...).n_bins_``: fewer when ties would be split).
    cost_first, cost_second : float, optional
        Cost per sample (FLOPs, latency) of each model; adds ``compute_saved`` =
        1 - (cost_first + (1 - p) cost_second) / cost_second (the first model always runs).

    Returns
    -------
    DataFrame, one row per K = 0..m (m + 1 rows, one per operating point; a K > m would
    repeat the row K = m): ``K, p_small`` (share answered by the first model),
    ``accuracy``, ``large_calls_saved`` (number of second-model calls avoided), and
    ``compute_saved`` when costs are given. K=0 is the second model alone, K=m the first.
    Every bin is non-empty on cal, so on cal the rows' ``p_small`` strictly increase; on
    test a bin can be empty, and two rows then share a ``p_small``.
    """
    cs_cal, cl_cal, n_bins = _checked_cal(conf_first_cal, conf_second_cal, n_bins)
    test = _checked_test(conf_first_test, correct_first_test, correct_second_test,
                         ("conf_first_test", "correct_first_test", "correct_second_test"))
    _check_costs(cost_first, cost_second)
    fitted = _advantage_bins(cs_cal, cl_cal, n_bins)
    return _cascade_curve(fitted["edges"], fitted["order"], *test, cost_first, cost_second)


def cascade_curves(cal: dict[str, Any] | None, test: dict[str, Any], *, n_bins: int = 15,
                   cost_first: float | None = None, cost_second: float | None = None,
                   routers: Mapping[str, AdvantageRouter] | None = None) -> pd.DataFrame:
    """All four curves of the paper's Fig. 2/3: RC, UC, CC and the oracle, in one long table.

    Parameters
    ----------
    cal, test : dict of arrays, shape (n_cal,) / (n_test,), rows aligned across models
        Keys: ``raw_first``, ``raw_second`` (uncalibrated confidences, for UC),
        ``calibrated_first``, ``calibrated_second`` (for CC), and in ``test`` also
        ``correct_first``, ``correct_second``. Confidences are probabilities in [0, 1].
    n_bins, cost_first, cost_second
        As in :func:`cascade_curve`.
    routers : mapping, optional
        ``{"UC": router, "CC": router}``, :class:`AdvantageRouter` objects already fitted on the
        raw and on the calibrated cal confidences, so that a caller who also routes rows with
        them fits each once; ``cal`` and ``n_bins`` are then not used (pass ``cal=None``).

    Returns
    -------
    DataFrame with columns ``method`` (RC / UC / CC / oracle), ``K, p_small, accuracy,
    large_calls_saved`` (and ``compute_saved``). UC and CC are measured on test, each with
    one row per K = 0..m of its own router (m can differ between the two: each has its own
    ties); RC is the line p·acc_first + (1 - p)·acc_second and the oracle the best router,
    both taken at CC's rows (CC's K and shares p).
    """
    conf = {f"test['{key}_{model}']": confidence_array(test[f"{key}_{model}"], f"test['{key}_{model}']")
            for key in ("raw", "calibrated") for model in ("first", "second")}
    vs = correct_array(test["correct_first"], "test['correct_first']")
    vl = correct_array(test["correct_second"], "test['correct_second']")
    same_length(**conf, **{"test['correct_first']": vs, "test['correct_second']": vl})
    _check_costs(cost_first, cost_second)
    if routers is None:
        if cal is None:
            raise ValueError("cal: the cal confidences are needed unless fitted routers are given")
        on_cal = {f"cal['{key}']": confidence_array(cal[key], f"cal['{key}']")
                  for key in ("raw_first", "raw_second", "calibrated_first", "calibrated_second")}
        n_bins = check_n_bins(n_bins, same_length(**on_cal))
        routers = {method: AdvantageRouter(n_bins)._set_bins(
                       _advantage_bins(on_cal[f"cal['{key}_first']"], on_cal[f"cal['{key}_second']"], n_bins))
                   for method, key in (("UC", "raw"), ("CC", "calibrated"))}
    elif set(routers) != {"UC", "CC"} or not all(hasattr(r, "order_") for r in routers.values()):
        raise ValueError(f"routers: expected fitted AdvantageRouters under 'UC' and 'CC', got {sorted(routers)}")
    curves = [_cascade_curve(routers[method].edges_, routers[method].order_, conf[f"test['{key}_first']"], vs, vl,
                             cost_first, cost_second).assign(method=method)
              for method, key in (("UC", "raw"), ("CC", "calibrated"))]
    cc = curves[-1]
    p = cc["p_small"].to_numpy()
    acc_first, acc_second = float(np.mean(vs)), float(np.mean(vl))
    curves.append(cc.assign(method="RC", accuracy=p * acc_first + (1 - p) * acc_second))
    curves.append(cc.assign(method="oracle", accuracy=_oracle_accuracy(vs, vl, p)))
    out = pd.concat(curves, ignore_index=True)
    return out[["method"] + [c for c in out.columns if c != "method"]]
