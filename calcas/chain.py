"""Cascades of any length: chains of M >= 2 models with a cost per call, their Pareto frontier on
cal, and a selection that certifies the accuracy it gives up (SPEC §3b).

A chain asks its models in order. Stage j < M - 1 answers a sample when the sample's calibrated
confidence falls in one of the stage's kept bins; otherwise the sample goes on to the next stage.
The last stage answers every sample that reaches it. A stage that keeps no bin is never called
and costs nothing, so every sub-chain that ends in the last model is a configuration, the last
model alone included. A sample answered at stage j costs the sum of the costs of the stages up to
j that were called.

Bins of stage j are equal-count on its cal confidences and are kept in the order of Algorithm 1
with the last model as the second model: by ascending calibrated advantage of the last model over
stage j (ties: higher mean confidence first). A configuration is then the number K_j of bins each
stage keeps, K_j in 0..m_j, and there are prod(m_j + 1) of them. With M = 2 the configurations
are the K of :func:`calcas.cascade_curve`.

The frontier is exact. The rows are counted once in a histogram over the tuples of bin ranks, and
its suffix sums give every configuration's cost and accuracy at once: O(n M + prod(m_j + 1) M)
instead of the O(n M prod(m_j + 1)) of evaluating each configuration on the rows. Configurations
beyond ``max_configurations`` are refused with a message that says how many bins fit.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._validate import check_n_bins, confidence_array, correct_array, same_length, to_numpy
from .binning import _assign_bins, _bin_stats, _equal_count_edges, _rank_bins

MAX_CONFIGURATIONS = 4_000_000
ORDERS = ("advantage", "confidence")


# ---------------------------------------------------------------------------- checks


def _real(x: Any, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a number, got {x!r}")
    return float(x)


def check_max_drop(max_drop: Any) -> float:
    """The accuracy the chain may lose against its last model: a number in [0, 1)."""
    value = _real(max_drop, "max_drop")
    if not 0 <= value < 1:
        raise ValueError(f"max_drop: must be >= 0 and < 1 (a share of accuracy), got {max_drop!r}")
    return value


def check_delta(delta: Any) -> float:
    """The probability the guarantee may fail: a number strictly between 0 and 1."""
    value = _real(delta, "delta")
    if not 0 < value < 1:
        raise ValueError(f"delta: must be in (0, 1), got {delta!r}")
    return value


def _model_name(r: Any, j: int) -> str:
    return str((getattr(r, "manifest", None) or {}).get("model", f"model {j}"))


def check_aligned(records: Sequence[Any]) -> None:
    """The record sets of a chain carry the same ids in the same row order; else one clear error."""
    first = np.asarray(records[0].id)
    for j, r in enumerate(records[1:], start=1):
        ids = np.asarray(r.id)
        if len(ids) != len(first) or not np.array_equal(ids, first):
            differ = len(first) if len(ids) != len(first) else int(np.sum(ids != first))
            raise ValueError(f"records: rows are not aligned by id: records[{j}] ({_model_name(r, j)!r}, "
                             f"{len(ids)} rows) differs from records[0] ({_model_name(records[0], 0)!r}, "
                             f"{len(first)} rows) at {differ} rows; align them first (calcas.align)")


def _manifest_cost(manifest: dict) -> dict[str, float]:
    """The costs a manifest carries, by source (see :func:`costs_from_records`)."""
    found = {}
    cost = manifest.get("cost") or {}
    flops = manifest.get("flops_per_sample", (manifest.get("extraction") or {}).get("flops_per_sample"))
    if cost.get("gflops_per_item"):
        found["GFLOPs per item"] = float(cost["gflops_per_item"])
    elif flops:
        found["GFLOPs per item"] = float(flops) / 1e9
    if cost.get("seconds_per_item"):
        found["seconds per item"] = float(cost["seconds_per_item"])
    return found


def costs_from_records(records: Sequence[Any]) -> tuple[np.ndarray, str]:
    """The cost per call of each model of a chain, read from the record sets' manifests.

    GFLOPs per item where every manifest has them (``cost.gflops_per_item`` written by the
    extraction jobs, or ``flops_per_sample``), else seconds per item (``cost.seconds_per_item``);
    one source for the whole chain, never a mix.

    Returns
    -------
    costs : ndarray, shape (M,)
    source : str
        ``"GFLOPs per item (manifests)"`` or ``"seconds per item (manifests)"``.
    """
    found = [_manifest_cost(getattr(r, "manifest", None) or {}) for r in records]
    for source in ("GFLOPs per item", "seconds per item"):
        if all(source in f for f in found):
            return np.array([f[source] for f in found]), f"{source} (manifests)"
    j = next(j for j, f in enumerate(found) if "GFLOPs per item" not in f)
    raise ValueError(f"costs: not given, and the manifests share no cost field (cost.gflops_per_item, "
                     f"flops_per_sample or cost.seconds_per_item): records[{j}] ({_model_name(records[j], j)!r}) "
                     f"has {sorted(found[j]) or 'none'}; pass costs=[...] (one per model)")


def _checked_costs(costs: Any, m: int, records: Sequence[Any] | None) -> tuple[np.ndarray, str]:
    if costs is None:
        if records is None:
            raise ValueError(f"costs: give one cost per model ({m}), or the record sets as records=[...] "
                             "to read them from their manifests")
        return costs_from_records(records)
    if isinstance(costs, (str, bytes)) or np.ndim(costs) != 1 or len(costs) != m:
        raise ValueError(f"costs: expected one cost per model ({m}), got {costs!r}")
    c = np.array([_real(x, f"costs[{j}]") for j, x in enumerate(costs)])
    bad = ~(np.isfinite(c) & (c > 0))
    if bad.any():
        j = int(np.argmax(bad))
        raise ValueError(f"costs: every cost must be a finite number > 0, got costs[{j}] = {costs[j]!r}")
    return c, "given"


def _as_list(x: Any, name: str) -> list:
    if isinstance(x, (list, tuple)):
        return list(x)
    a = to_numpy(x)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a list of arrays, one per model in chain order, got shape {a.shape}")
    return list(a)


@dataclasses.dataclass(frozen=True)
class _Chain:
    conf: np.ndarray     # (M, n) calibrated confidences
    correct: np.ndarray  # (M, n) 0/1 verifier scores
    costs: np.ndarray    # (M,)
    cost_source: str


def _checked_chain(conf: Any, correct: Any, costs: Any, records: Sequence[Any] | None,
                   names: tuple[str, str] = ("conf_cal", "correct_cal")) -> _Chain:
    """The entry checks of every chain function (validate once; the kernels below trust them)."""
    conf, correct = _as_list(conf, names[0]), _as_list(correct, names[1])
    m = len(conf)
    if m < 2:
        raise ValueError(f"{names[0]}: a chain needs at least two models, got {m}")
    if len(correct) != m:
        raise ValueError(f"{names[1]}: expected one array per model ({m}, as in {names[0]}), got {len(correct)}")
    if records is not None:
        if len(records) != m:
            raise ValueError(f"records: expected one record set per model ({m}), got {len(records)}")
        check_aligned(records)
    c = [confidence_array(x, f"{names[0]}[{j}]") for j, x in enumerate(conf)]
    v = [correct_array(x, f"{names[1]}[{j}]") for j, x in enumerate(correct)]
    same_length(**{f"{names[0]}[{j}]": x for j, x in enumerate(c)}, **{f"{names[1]}[{j}]": x for j, x in enumerate(v)})
    return _Chain(np.stack(c), np.stack(v), *_checked_costs(costs, m, records))


# ---------------------------------------------------------------------------- kernels


def _stage_bins(conf: np.ndarray, n_bins: int, order: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per stage j < M - 1: equal-count edges on its cal confidence and the order bins are kept in."""
    edges, orders = [], []
    for c in conf[:-1]:
        e = _equal_count_edges(c, n_bins)
        _, mean_stage, mean_last = _bin_stats(_assign_bins(c, e), len(e) - 1, c, conf[-1])
        primary = mean_last - mean_stage if order == "advantage" else -mean_stage
        edges.append(e)
        orders.append(_rank_bins(primary, mean_stage))
    return edges, orders


def _ranks(conf: np.ndarray, edges: Sequence[np.ndarray], orders: Sequence[np.ndarray]) -> np.ndarray:
    """(M - 1, n): the position of each row's bin in its stage's keep order."""
    out = np.empty((len(edges), conf.shape[1]), dtype=np.int64)
    for j, (e, o) in enumerate(zip(edges, orders)):
        rank_of_bin = np.empty(len(o), dtype=np.int64)
        rank_of_bin[o] = np.arange(len(o))
        out[j] = rank_of_bin[_assign_bins(conf[j], e)]
    return out


def _suffix_sums(h: np.ndarray) -> np.ndarray:
    """S[k] = sum of h[r] over r >= k on every axis; one more entry (a zero) per axis."""
    for axis in range(h.ndim):
        h = np.flip(np.cumsum(np.flip(h, axis), axis=axis), axis)
        pad = [(0, 0)] * h.ndim
        pad[axis] = (0, 1)
        h = np.pad(h, pad)
    return h


def _grid(ranks: np.ndarray, correct: np.ndarray, costs: np.ndarray, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Cost and correct answers summed over the rows, and rows answered per stage, for every
    configuration K (an index into the grid of shape ``m_j + 1`` per stage)."""
    stages = len(costs)
    cell = np.ravel_multi_index(tuple(ranks), sizes)

    def suffix(weights: np.ndarray | None) -> np.ndarray:
        return _suffix_sums(np.bincount(cell, weights=weights, minlength=math.prod(sizes)).reshape(sizes))

    def at(table: np.ndarray, j: int) -> np.ndarray:  # table[K_0..K_{j-1}, 0, ..., 0], broadcastable
        return table[tuple(slice(None) if a < j else slice(0, 1) for a in range(len(sizes)))]

    count = suffix(None)
    shape = tuple(s + 1 for s in sizes)
    answered, right, cost = [], np.zeros(shape), np.zeros(shape)
    for j in range(stages):
        reach = at(count, j)
        if j < stages - 1:
            called = (np.arange(sizes[j] + 1) > 0).reshape([-1 if a == j else 1 for a in range(len(sizes))])
            t = suffix(correct[j])
            answered.append(np.broadcast_to(reach - at(count, j + 1), shape))
            right = right + at(t, j) - at(t, j + 1)
            cost = cost + costs[j] * called * reach
        else:
            answered.append(np.broadcast_to(count, shape))
            right = right + suffix(correct[j])
            cost = cost + costs[j] * count
    return {"cost": cost, "correct": right, "answered": np.stack(answered)}


def _pareto(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the Pareto-optimal points, cheapest first: each strictly more accurate than every
    cheaper or equally cheap point (ties in both: the lowest index)."""
    order = np.lexsort((np.arange(len(cost)), -accuracy, cost))
    acc = accuracy[order]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(acc)[:-1]))
    return order[acc > best_before]


def _route(ranks: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Stage answering each row: the first j with rank_j < K_j, else the last stage. K: (F, M - 1)
    -> (F, n); a (M - 1,) K -> (n,)."""
    K = np.asarray(K)
    kept = ranks[None] < K.reshape(-1, len(ranks))[:, :, None]
    stage = np.where(kept.any(axis=1), kept.argmax(axis=1), len(ranks))
    return stage if K.ndim == 2 else stage[0]


def _evaluate(ranks: np.ndarray, correct: np.ndarray, costs: np.ndarray, K: np.ndarray,
              chunk: int = 64) -> dict[str, np.ndarray]:
    """Accuracy, mean cost and share answered per stage of configurations K (F, M - 1) on rows."""
    stages, n = correct.shape
    called = np.concatenate((K > 0, np.ones((len(K), 1), dtype=bool)), axis=1)
    paid = np.cumsum(called * costs, axis=1)  # (F, M): a row answered at stage j pays paid[:, j]
    acc, cost, share = [np.zeros(0)], [np.zeros(0)], [np.zeros((0, stages))]  # no configuration: empty columns
    for lo in range(0, len(K), chunk):
        stage = _route(ranks, K[lo:lo + chunk])
        acc.append(correct[stage, np.arange(n)].mean(axis=1))
        cost.append(np.take_along_axis(paid[lo:lo + chunk], stage, axis=1).mean(axis=1))
        share.append(np.stack([(stage == j).mean(axis=1) for j in range(stages)], axis=1))
    return {"accuracy": np.concatenate(acc), "cost": np.concatenate(cost), "share": np.concatenate(share)}


def _table(K: np.ndarray, accuracy: np.ndarray, cost: np.ndarray, share: np.ndarray,
           costs: np.ndarray, accuracy_last: float) -> pd.DataFrame:
    called = np.concatenate((K > 0, np.ones((len(K), 1), dtype=bool)), axis=1)
    columns = {
        "K": [tuple(int(k) for k in row) for row in K],
        "stages": ["+".join(str(j) for j in np.flatnonzero(c)) for c in called],
        "cost": cost, "cost_share": cost / costs[-1], "accuracy": accuracy, "accuracy_lost": accuracy_last - accuracy,
        **{f"share_{j}": share[:, j] for j in range(share.shape[1])}}
    return pd.DataFrame(columns)


# ---------------------------------------------------------------------------- the frontier


@dataclasses.dataclass(frozen=True)
class ChainFrontier:
    """What :func:`cascade_frontier` returns.

    Attributes
    ----------
    table : DataFrame
        One row per Pareto-optimal configuration on cal, cheapest first: ``K`` (a tuple, bins kept
        per stage 0..M-2), ``stages`` (the stages called, e.g. ``"0+2"``), ``cost`` (expected cost
        per sample, in the unit of ``costs``), ``cost_share`` (cost / the last model's cost),
        ``accuracy``, ``accuracy_lost`` (the last model's accuracy minus the cascade's) and ``share_j``
        (share of samples answered by stage j).
    edges, order : tuple of ndarray, one per stage 0..M-2
        The stage's bin edges on cal and the order its bins are kept in.
    costs : ndarray, shape (M,)
    cost_source : str
        ``"given"`` or the manifest field the costs came from.
    n_configurations : int
        prod(m_j + 1): every configuration the frontier was chosen from.
    """

    table: pd.DataFrame
    edges: tuple[np.ndarray, ...]
    order: tuple[np.ndarray, ...]
    costs: np.ndarray
    cost_source: str
    n_configurations: int

    @property
    def n_models(self) -> int:
        return len(self.costs)


def _fit_frontier(chain: _Chain, n_bins: int, order: str, max_configurations: int) -> ChainFrontier:
    edges, orders = _stage_bins(chain.conf, n_bins, order)
    sizes = tuple(len(o) for o in orders)
    n_configurations = math.prod(s + 1 for s in sizes)
    if n_configurations > max_configurations:
        fits = round(max_configurations ** (1 / len(sizes)))
        fits = (fits if fits ** len(sizes) <= max_configurations else fits - 1) - 1  # float roots fall short
        raise ValueError(f"n_bins: {len(sizes) + 1} models with {n_bins} bins per stage make {n_configurations:,} "
                         f"configurations, more than max_configurations={max_configurations:,}; use n_bins <= {fits}")
    n = chain.conf.shape[1]
    grid = _grid(_ranks(chain.conf, edges, orders), chain.correct, chain.costs, sizes)
    accuracy, cost = grid["correct"].ravel() / n, grid["cost"].ravel() / n
    keep = _pareto(cost, accuracy)
    K = np.stack(np.unravel_index(keep, tuple(s + 1 for s in sizes)), axis=1)
    share = grid["answered"].reshape(len(chain.costs), -1)[:, keep].T / n
    table = _table(K, accuracy[keep], cost[keep], share, chain.costs, float(chain.correct[-1].mean()))
    return ChainFrontier(table, tuple(edges), tuple(orders), chain.costs, chain.cost_source, n_configurations)


def cascade_frontier(conf_cal: Any, correct_cal: Any, costs: Sequence[float] | None = None, *, n_bins: int = 15,
                     order: str = "advantage", records: Sequence[Any] | None = None,
                     max_configurations: int = MAX_CONFIGURATIONS) -> ChainFrontier:
    """Every Pareto-optimal configuration of a chain of M >= 2 models, with its cost and accuracy on cal.

    Parameters
    ----------
    conf_cal : list of M arrays, shape (n,) each
        Each model's calibrated confidence (a probability) in its own answer on cal, in chain
        order (cheapest usually first), rows aligned sample by sample.
    correct_cal : list of M arrays, shape (n,) each
        0/1 verifier scores of each model's answer on the same rows.
    costs : sequence of M floats > 0, optional
        Cost of one call of each model (FLOPs, seconds, price). When omitted, ``records`` must be
        given and the costs are read from their manifests (:func:`costs_from_records`); the
        result's ``cost_source`` says which field.
    n_bins : int
        Equal-count bins asked for on each stage's confidence (m_j <= n_bins are formed: tied
        confidences are never split).
    order : {"advantage", "confidence"}
        The order bins are kept in: Algorithm 1's calibrated advantage of the last model over the
        stage, or the stage's confidence alone (most confident first: per-stage thresholds, as in
        FrugalGPT).
    records : list of M record sets, optional
        The chain's record sets; their ids must be aligned row by row (one error otherwise) and
        they supply the costs when ``costs`` is omitted.
    max_configurations : int
        Refuse chains with more configurations prod(m_j + 1) than this (memory).

    Returns
    -------
    ChainFrontier
        With two models, the frontier's rows are those rows of :func:`calcas.cascade_curve` on cal
        that no cheaper row matches in accuracy.
    """
    if order not in ORDERS:
        raise ValueError(f"order: expected one of {ORDERS}, got {order!r}")
    chain = _checked_chain(conf_cal, correct_cal, costs, records)
    return _fit_frontier(chain, check_n_bins(n_bins, chain.conf.shape[1]), order, max_configurations)


def evaluate_frontier(frontier: ChainFrontier, conf: Any, correct: Any, *, configurations: Any = None) -> pd.DataFrame:
    """The frontier's configurations (bins fitted on cal) evaluated on other rows, such as test.

    Parameters
    ----------
    frontier : ChainFrontier
    conf, correct : list of M arrays, shape (n,) each
        Calibrated confidences (with the calibrators fitted on cal) and 0/1 verifier scores of
        every model on the rows to evaluate.
    configurations : array of shape (F, M - 1), optional
        Other configurations K to evaluate with the same bins (default: the frontier's own).

    Returns
    -------
    DataFrame with the columns of ``frontier.table``, measured on these rows; on test a
    configuration can come out dearer or less accurate than its neighbours (it was Pareto on cal).
    """
    if len(_as_list(conf, "conf")) != frontier.n_models:
        raise ValueError(f"conf: expected {frontier.n_models} models as in the frontier, got {len(_as_list(conf, 'conf'))}")
    chain = _checked_chain(conf, correct, frontier.costs, None, names=("conf", "correct"))
    K = np.array(list(frontier.table["K"]) if configurations is None else configurations)
    sizes = np.array([len(o) for o in frontier.order])
    if not np.issubdtype(K.dtype, np.integer) or K.ndim != 2 or K.shape[1] != len(sizes) \
            or (K < 0).any() or (K > sizes).any():
        raise ValueError(f"configurations: expected integer rows of {len(sizes)} bin counts K_j in 0..{sizes.tolist()}, "
                         f"got {np.asarray(configurations).tolist()!r}")
    ranks = _ranks(chain.conf, frontier.edges, frontier.order)
    out = _evaluate(ranks, chain.correct, chain.costs, K)
    return _table(K, out["accuracy"], out["cost"], out["share"], chain.costs, float(chain.correct[-1].mean()))


# ---------------------------------------------------------------------------- selection with a guarantee


def betting_p_values(difference: Any, max_drop: float, *, cap: float = 0.5) -> np.ndarray:
    """Valid p-values for H0: E[difference] >= max_drop, one per row of ``difference``.

    A test by betting (Waudby-Smith & Ramdas 2024): the wealth prod_t (1 + lambda_t (max_drop - d_t))
    is a non-negative supermartingale under H0, so by Ville's inequality p = min(1, 1 / max_t
    wealth_t) is a valid p-value. lambda_t is chosen from the rows before t only (aGRAPA: the
    growth-optimal bet for the running mean and variance, at most ``cap / (1 - max_drop)``), which
    makes the test variance-adaptive: a difference that is mostly 0 is certified with few rows.

    Parameters
    ----------
    difference : array, shape (F, n) or (n,)
        Per-sample accuracy lost, in [-1, 1]: the last model's 0/1 score minus the cascade's, rows
        in an order that does not depend on their values (exchangeable rows: any fixed order).
    max_drop : float
        The largest mean loss to certify, in [0, 1).

    Returns
    -------
    ndarray, shape (F,) (a float for a 1-D ``difference``).
    """
    d = np.atleast_2d(np.asarray(difference, dtype=np.float64))
    n = d.shape[1]
    t = np.arange(1, n + 1)
    # running mean and variance of the rows before t, shrunk towards 0 and 1/4 by one pseudo-row
    mean_before = np.concatenate((np.zeros((len(d), 1)), np.cumsum(d, axis=1)[:, :-1]), axis=1) / t
    spread = np.concatenate((np.zeros((len(d), 1)), np.cumsum((d - mean_before) ** 2, axis=1)[:, :-1]), axis=1)
    var_before = (0.25 + spread) / t
    gap = max_drop - mean_before
    bet = np.clip(gap / (var_before + gap ** 2), 0.0, cap / (1 - max_drop))
    log_wealth = np.cumsum(np.log1p(bet * (max_drop - d)), axis=1)
    p = np.minimum(1.0, np.exp(-np.maximum(log_wealth.max(axis=1), 0.0)))
    return p if np.ndim(difference) == 2 else float(p[0])


class CascadeSelector:
    """Choose a chain configuration that loses at most ``max_drop`` accuracy against the last model,
    with probability at least 1 - ``delta`` over the draw of cal (Learn-then-Test, Angelopoulos et al. 2021).

    ``fit`` splits cal at random: the bins and the Pareto frontier are fitted on a share
    ``fit_fraction`` of it, and the rest certifies. Along the frontier, from the most expensive
    configuration cheaper than the last model down to the cheapest, each configuration's null
    "it loses more than max_drop" is tested with :func:`betting_p_values` at level ``delta``
    (fixed-sequence testing: the order was fixed on the fit part, so no correction is needed);
    the first that cannot be rejected stops the sequence, and the cheapest rejected one is chosen.
    When none is rejected the chain is the last model alone, which loses nothing by definition.

    Assumption: cal and the rows the chain will see are exchangeable (drawn from one distribution,
    in no particular order). A shift of the inputs, a change of any model or of its calibrator, or
    calibrators fitted on the certifying rows break it.

    Parameters
    ----------
    max_drop : float in [0, 1)
    delta : float in (0, 1)
    n_bins : int
        Bins per stage, as in :func:`cascade_frontier`.
    fit_fraction : float in (0, 1)
        Share of cal that fits the bins and the frontier; the rest certifies.
    seed : int
        Seed of the split (and of the certifying rows' order).

    Attributes
    ----------
    frontier_ : ChainFrontier
        Fitted on the fit part.
    config_ : tuple of int
        Bins kept per stage 0..M-2 (all 0: the last model alone).
    stages_ : str
        The stages called, as in ``frontier_.table``.
    expected_cost_ : float
        Mean cost per sample on the certifying rows, in the unit of the costs.
    cost_share_ : float
        ``expected_cost_`` / the last model's cost.
    bound_ : float
        The accuracy drop certified at level 1 - delta (``max_drop``; 0 for the last model alone).
    drop_certify_ : float
        The chosen configuration's drop measured on the certifying rows.
    tested_ : DataFrame
        The candidates in testing order: the frontier's columns on the certifying rows and
        ``p_value``, ``rejected``; ``p_value`` is NaN after the first failure, where testing stops.
    cost_source_ : str
    n_fit_, n_certify_ : int
    """

    def __init__(self, *, max_drop: float, delta: float, n_bins: int = 15, fit_fraction: float = 0.5, seed: int = 0):
        self.max_drop = max_drop
        self.delta = delta
        self.n_bins = n_bins
        self.fit_fraction = fit_fraction
        self.seed = seed

    def fit(self, conf_cal: Any, correct_cal: Any, costs: Sequence[float] | None = None, *,
            records: Sequence[Any] | None = None, fit_rows: Any = None) -> "CascadeSelector":
        """Fit on cal: lists of M calibrated confidences and 0/1 scores (n,) in chain order; returns self.

        ``fit_rows`` (indices into cal) fixes which rows fit the bins and the frontier, e.g. the rows
        the calibrators were fitted on; the rest certify. By default a seeded random
        ``fit_fraction`` of cal."""
        max_drop, delta = check_max_drop(self.max_drop), check_delta(self.delta)
        fraction = _real(self.fit_fraction, "fit_fraction")
        if not 0 < fraction < 1:
            raise ValueError(f"fit_fraction: must be in (0, 1), got {self.fit_fraction!r}")
        chain = _checked_chain(conf_cal, correct_cal, costs, records)
        n = chain.conf.shape[1]
        n_fit = int(round(fraction * n))
        if not 1 <= n_fit < n:
            raise ValueError(f"fit_fraction: {fraction} of {n} cal rows leaves no rows to fit on or to certify")
        rows = np.random.default_rng(self.seed).permutation(n)
        if fit_rows is not None:
            chosen = np.zeros(n, dtype=bool)
            chosen[np.asarray(fit_rows, dtype=np.int64)] = True
            rows, n_fit = np.concatenate((np.flatnonzero(chosen), rows[~chosen[rows]])), int(chosen.sum())
            if not 1 <= n_fit < n:
                raise ValueError(f"fit_rows: must select at least one and fewer than all {n} cal rows, got {n_fit}")
        fit, certify = rows[:n_fit], rows[n_fit:]
        part = lambda r: dataclasses.replace(chain, conf=chain.conf[:, r], correct=chain.correct[:, r])  # noqa: E731
        self.frontier_ = _fit_frontier(part(fit), check_n_bins(self.n_bins, n_fit), "advantage", MAX_CONFIGURATIONS)
        self.n_fit_, self.n_certify_, self.cost_source_ = n_fit, len(certify), chain.cost_source
        self._candidates(part(certify))
        self._choose(max_drop, delta)
        return self

    def _candidates(self, certify: _Chain) -> None:
        """The configurations to test, in testing order, and what each loses per certifying row:
        everything of the certification that does not depend on max_drop or delta."""
        table = self.frontier_.table
        candidates = table[table["cost"] < self.frontier_.costs[-1]].iloc[::-1]
        K = np.array(list(candidates["K"]), dtype=np.int64).reshape(-1, self.frontier_.n_models - 1)
        ranks = _ranks(certify.conf, self.frontier_.edges, self.frontier_.order)
        n = certify.conf.shape[1]
        self._difference = certify.correct[-1][None] - certify.correct[_route(ranks, K), np.arange(n)]
        on_certify = _evaluate(ranks, certify.correct, certify.costs, K)
        self._on_certify = _table(K, on_certify["accuracy"], on_certify["cost"], on_certify["share"], certify.costs,
                                  float(certify.correct[-1].mean()))

    def _choose(self, max_drop: float, delta: float) -> None:
        """Test the candidates at (max_drop, delta) and set the fitted attributes. The chain study
        calls it again on a fitted selector for other levels: same frontier, same rows, same order."""
        # fixed sequence: stop at the first failure; configurations after it are never tested (p is NaN)
        p = np.full(len(self._difference), np.nan)
        for lo in range(0, len(p), 8):
            p[lo:lo + 8] = betting_p_values(self._difference[lo:lo + 8], max_drop)
            if (p[lo:lo + 8] > delta).any():
                break
        rejected = np.cumprod(np.nan_to_num(p, nan=1.0) <= delta).astype(bool)
        p[int(rejected.sum()) + 1:] = np.nan
        self.tested_ = self._on_certify.assign(p_value=p, rejected=rejected)
        if rejected.any():
            chosen = self.tested_.iloc[int(np.flatnonzero(rejected)[-1])]
            self.config_, self.bound_ = chosen["K"], max_drop
            self.stages_, self.expected_cost_, self.drop_certify_ = chosen["stages"], chosen["cost"], chosen["accuracy_lost"]
        else:
            self.config_, self.bound_ = (0,) * (self.frontier_.n_models - 1), 0.0
            self.stages_, self.expected_cost_, self.drop_certify_ = str(self.frontier_.n_models - 1), \
                float(self.frontier_.costs[-1]), 0.0
        self.expected_cost_ = float(self.expected_cost_)
        self.cost_share_ = self.expected_cost_ / float(self.frontier_.costs[-1])

    def route(self, conf: Any) -> np.ndarray:
        """Index of the stage whose answer is kept, per sample, shape (n,).

        ``conf`` is a list of the M models' calibrated confidences (n,) in chain order; only the
        stages the configuration calls are read (pass anything of the right length for the others).
        """
        if not hasattr(self, "config_"):
            raise RuntimeError("CascadeSelector is not fitted; call fit(conf_cal, correct_cal, costs) first")
        c = _as_list(conf, "conf")
        if len(c) != self.frontier_.n_models:
            raise ValueError(f"conf: expected {self.frontier_.n_models} models, got {len(c)}")
        checked = np.stack([confidence_array(x, f"conf[{j}]") for j, x in enumerate(c)])
        return _route(_ranks(checked, self.frontier_.edges, self.frontier_.order), np.array(self.config_))


def select_cascade(conf_cal: Any, correct_cal: Any, costs: Sequence[float] | None = None, *, max_drop: float,
                   delta: float, n_bins: int = 15, fit_fraction: float = 0.5, seed: int = 0,
                   records: Sequence[Any] | None = None, fit_rows: Any = None) -> CascadeSelector:
    """:class:`CascadeSelector` fitted on cal (see there): the cheapest frontier configuration
    certified to lose at most ``max_drop`` accuracy against the last model, with probability
    >= 1 - ``delta``."""
    return CascadeSelector(max_drop=max_drop, delta=delta, n_bins=n_bins, fit_fraction=fit_fraction,
                           seed=seed).fit(conf_cal, correct_cal, costs, records=records, fit_rows=fit_rows)
