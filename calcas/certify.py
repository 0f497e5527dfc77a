"""Certified chains by thresholds: Learn-then-Test along paths fixed before cal is seen, one per
sub-chain, and :func:`select_cascade`, which picks a chain's certified configuration by this
method or by the frontier method of :class:`calcas.chain.CascadeSelector` (SPEC §3b).

A sub-chain is a set of the early models 0..M-2 (at least one) followed by the last model; with M
models there are 2^(M-1) - 1 of them (M = 3: 0+2, 1+2, 0+1+2). Its path is one threshold lambda
shared by its early stages: a row is answered by the first of them whose calibrated confidence is
>= lambda, else by the last model. lambda walks a fixed grid from its top (nearly nothing answered
early) to its bottom, and each row's answering stage only moves earlier, so the cost per row never
rises along the path.

Validity (the argument is written out in SPEC §3b):

- Per sub-chain, the nulls "lambda loses more than max_drop" are tested in the grid's order by
  fixed-sequence testing, each with a valid p-value (:func:`calcas.betting_p_values` on the
  certifying rows): the order is fixed before the rows are seen, so the first false rejection can
  only happen at a test reached, and P(any false rejection in the sequence) <= the level.
- The level is delta / S for each of the S sub-chains (Bonferroni): with probability >= 1 - delta no
  true null of any sub-chain is rejected, so every rejected (sub-chain, lambda) at once loses at most
  max_drop, and choosing the cheapest of them on the certifying rows keeps the guarantee.
- The p-values are valid when the certifying rows are exchangeable with the rows the chain will
  see and the losses are a fixed function of each row: the calibrators must have been fitted on
  other rows (``fit_rows`` names them; they never certify). Calibrators fitted on the certifying
  rows make each row's loss depend on every other row: the guarantee is then not proved, and
  :mod:`calcas.chain_study` measures what it does.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._validate import confidence_array
from .chain import (CascadeSelector, Selection, _as_list, _betting_p, _running_moments, _test_blocks, check_delta,
                    check_max_drop, fit_input, set_fitted)

METHODS = ("threshold", "frontier")

#: The default grid: 101 thresholds 1.00, 0.99, ..., 0.00.
DEFAULT_LAMBDAS = 101


def threshold_grid(lambdas: Any = DEFAULT_LAMBDAS) -> np.ndarray:
    """The thresholds a path walks, highest first: ``lambdas`` evenly spaced points of [0, 1] (an
    int >= 2), or the given values in [0, 1], sorted from high to low, duplicates dropped.

    Raises
    ------
    ValueError
        On an empty grid, a value outside [0, 1] (or NaN), or an int below 2.
    """
    if isinstance(lambdas, (bool, np.bool_)):
        raise ValueError(f"lambdas: expected a number of grid points or the thresholds, got {lambdas!r}")
    if isinstance(lambdas, (int, np.integer)):
        if lambdas < 2:
            raise ValueError(f"lambdas: a grid of evenly spaced thresholds needs at least 2 points, got {lambdas}")
        return np.linspace(1.0, 0.0, int(lambdas))
    try:
        grid = np.asarray(lambdas, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"lambdas: expected numbers in [0, 1], got {lambdas!r}") from None
    if grid.size == 0:
        raise ValueError("lambdas: the grid is empty; give at least one threshold in [0, 1] "
                         f"(or a number of evenly spaced points, e.g. {DEFAULT_LAMBDAS})")
    bad = ~((grid >= 0) & (grid <= 1))
    if bad.any():
        raise ValueError(f"lambdas: thresholds are calibrated confidences, in [0, 1]; got {grid[bad][0]!r} "
                         f"({int(bad.sum())} of {grid.size} outside)")
    return np.unique(grid)[::-1].copy()


def sub_chains(n_models: int) -> list[tuple[int, ...]]:
    """Every sub-chain that ends in the last model and asks at least one other model first, fewest
    models first: ``[(0, 2), (1, 2), (0, 1, 2)]`` for three models (2^(M-1) - 1 of them)."""
    early = range(n_models - 1)
    return [(*s, n_models - 1) for k in range(1, n_models) for s in itertools.combinations(early, k)]


def zero_loss_p_value(n: int, max_drop: float, *, cap: float = 0.5) -> float:
    """The p-value :func:`calcas.betting_p_values` gives ``n`` rows that lose nothing (a
    configuration that answers as the last model on every row): the smallest a configuration that
    never beats the last model can get, so a level below it certifies nothing."""
    d = np.zeros((1, n))
    return float(_betting_p(d, _running_moments(d), max_drop, cap)[0])


def _first_stage(conf: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Per threshold and row, the position within the sub-chain of the stage that answers: the
    first early stage with conf >= lambda, else the last. ``conf`` (k + 1, n) is the sub-chain's
    rows; returns (G, n)."""
    k = len(conf) - 1
    stage = np.full((len(lambdas), conf.shape[1]), k, dtype=np.intp)
    for i in range(k - 1, -1, -1):  # the earliest stage that answers writes last
        np.copyto(stage, i, where=conf[i][None] >= lambdas[:, None])
    return stage


@dataclasses.dataclass
class _Path:
    """One sub-chain's path on the certifying rows: what does not depend on max_drop or delta,
    routed a block of thresholds at a time as the sequences reach it."""

    stages: tuple[int, ...]
    conf: np.ndarray      # (k + 1, n) the sub-chain's calibrated confidences
    correct: np.ndarray   # (k + 1, n)
    paid: np.ndarray      # (k + 1,) what a row answered at each position pays
    blocks: list = dataclasses.field(default_factory=list)  # (difference, moments, cost per threshold)
    p_values: dict = dataclasses.field(default_factory=dict)  # max_drop -> p per block tested

    def block(self, i: int, lambdas: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
        if i == len(self.blocks):
            stage = _first_stage(self.conf, lambdas)
            rows = np.arange(self.conf.shape[1])
            difference = self.correct[-1][None] - self.correct[stage, rows]
            self.blocks.append((difference, _running_moments(difference), self.paid[stage].mean(axis=1)))
        return self.blocks[i]


class ThresholdSelector:
    """Choose a chain configuration that loses at most ``max_drop`` accuracy against the last
    model, with probability at least 1 - ``delta`` over the draw of the certifying rows: per
    sub-chain one threshold on calibrated confidence, tested along a fixed grid (module docstring).

    Parameters
    ----------
    max_drop : float in [0, 1)
    delta : float in (0, 1)
        Split evenly over the 2^(M-1) - 1 sub-chains.
    lambdas : int or sequence of floats in [0, 1]
        The grid (:func:`threshold_grid`): 101 points 1.00 ... 0.00 by default.
    seed : int
        Seed of the certifying rows' order (the betting test reads them in order).

    Attributes
    ----------
    lambdas_ : ndarray, shape (G,)
        The grid, highest first.
    sub_chains_ : list of tuple of int
        The sub-chains tested (:func:`sub_chains`).
    config_ : tuple of float, shape (M - 1,)
        The threshold of each stage 0..M-2: a stage answers a row when its confidence is >= its
        threshold; ``inf`` for a stage the configuration never calls (all ``inf``: the last model
        alone).
    threshold_ : float or None
        The certified lambda (None: the last model alone).
    stages_, answering_ : str
        The stages called (e.g. ``"0+2"``) and those that can answer.
    expected_cost_, cost_share_, bound_, drop_certify_ : float
        As in :class:`calcas.chain.CascadeSelector`, on the certifying rows.
    tested_ : DataFrame
        One row per (sub-chain, lambda) tested: ``stages``, ``threshold``, ``cost_share``,
        ``accuracy_lost`` (on the certifying rows), ``p_value``, ``rejected``.
    cost_source_ : str
    n_fit_, n_certify_ : int
        Rows left out (``fit_rows``: they fitted the calibrators) and rows that certify.
    """

    method = "threshold"

    def __init__(self, *, max_drop: float, delta: float, lambdas: Any = DEFAULT_LAMBDAS, seed: int = 0):
        self.max_drop = max_drop
        self.delta = delta
        self.lambdas = lambdas
        self.seed = seed

    def fit(self, conf_cal: Any, correct_cal: Any = None, costs: Sequence[float] | None = None, *,
            records: Sequence[Any] | None = None, fit_rows: Any = None) -> "ThresholdSelector":
        """Certify on cal: lists of M calibrated confidences and 0/1 scores (n,) in chain order, or
        :class:`calcas.chain.ChainRows` (then without ``correct_cal``, ``costs``, ``records``);
        returns self.

        ``fit_rows`` (indices into cal) are the rows the calibrators were fitted on: they never
        certify. Without it every row certifies, which is valid only if the calibrators were
        fitted elsewhere.

        Raises
        ------
        ValueError
            Besides the chain's checks: when delta split over the sub-chains is below the p-value
            of a configuration that loses nothing on every certifying row, so that nothing could be
            certified, while a delta below 1 could; the message says which delta would do. (Where
            no delta could, as at max_drop = 0, the selection is the last model alone.)
        """
        max_drop, delta = check_max_drop(self.max_drop), check_delta(self.delta)
        self._fit(conf_cal, correct_cal, costs, records, fit_rows)
        floor = zero_loss_p_value(self.n_certify_, max_drop)
        need = math.ceil(floor * len(self.sub_chains_) * 1000) / 1000
        if floor > delta / len(self.sub_chains_) and need < 1:
            raise ValueError(
                f"delta: {delta:g} split over {len(self.sub_chains_)} sub-chains is {delta / len(self.sub_chains_):.3g} "
                f"each, but with {self.n_certify_:,} certifying rows at max_drop={max_drop:g} even a configuration "
                f"that answers as the last model on every row gets p = {floor:.3g}: nothing can be certified. "
                f"delta >= {need:g} would allow it (or more rows, or a larger max_drop)")
        self._set(self.choose(max_drop=max_drop, delta=delta))
        return self

    def _fit(self, conf_cal: Any, correct_cal: Any, costs: Any, records: Any, fit_rows: Any) -> "ThresholdSelector":
        """What :meth:`fit` does before testing (no check that delta can certify anything): the
        paths on the certifying rows. :mod:`calcas.chain_study` calls it on checked rows."""
        self.lambdas_ = threshold_grid(self.lambdas)
        chain = fit_input(conf_cal, correct_cal, costs, records)
        n = chain.n
        certify = np.ones(n, dtype=bool)
        if fit_rows is not None:
            index = np.asarray(fit_rows)
            if index.size == 0:
                index = index.astype(np.intp)  # [] reads as float64: no rows
            if index.dtype == bool or not np.issubdtype(index.dtype, np.integer) or index.ndim != 1 \
                    or (index.size and (index.min() < 0 or index.max() >= n)):
                raise ValueError(f"fit_rows: expected indices into the {n} cal rows, got {fit_rows!r}")
            certify[index] = False
        order = np.random.default_rng(self.seed).permutation(n)
        rows = chain.take(order[certify[order]])
        if rows.n == 0:
            raise ValueError(f"fit_rows: all {n} cal rows fitted the calibrators; none is left to certify")
        self.n_fit_, self.n_certify_, self.cost_source_ = n - rows.n, rows.n, chain.cost_source
        self.costs_ = chain.costs
        self.sub_chains_ = sub_chains(chain.n_models)
        self._paths = [_Path(s, rows.conf[list(s)], rows.correct[list(s)], np.cumsum(chain.costs[list(s)]))
                       for s in self.sub_chains_]
        self._last_accuracy = float(rows.correct[-1].mean())
        return self

    def _tested(self, path: _Path, max_drop: float, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-sequence testing along one path: p per threshold (NaN past the first failure)
        and the cost per threshold tested."""
        G = len(self.lambdas_)
        p, cost = np.full(G, np.nan), np.full(G, np.nan)
        chunks = path.p_values.setdefault(max_drop, [])
        for i, (lo, hi) in enumerate(_test_blocks(G)):
            difference, moments, block_cost = path.block(i, self.lambdas_[lo:hi])
            if i == len(chunks):
                chunks.append(_betting_p(difference, moments, max_drop))
            p[lo:hi], cost[lo:hi] = chunks[i], block_cost
            if (p[lo:hi] > level).any():
                break
        failed = np.flatnonzero(~(np.nan_to_num(p, nan=1.0) <= level))
        stop = int(failed[0]) if len(failed) else G
        p[stop + 1:], cost[stop + 1:] = np.nan, np.nan
        return p, cost

    def choose(self, *, max_drop: float, delta: float) -> Selection:
        """What the fitted selector certifies at another (max_drop, delta): the same certifying rows
        and paths tested at this level (the fitted attributes are left as they are).

        Returns
        -------
        Selection
            ``config`` holds the per-stage thresholds; ``p_values`` and ``rejected`` have shape
            (S, G): one row per sub-chain, NaN / False past its first failure.
        """
        if not hasattr(self, "_paths"):
            raise RuntimeError("ThresholdSelector is not fitted; call fit(conf_cal, correct_cal, costs) first")
        max_drop, delta = check_max_drop(max_drop), check_delta(delta)
        level = delta / len(self._paths)
        last_cost = float(self.costs_[-1])
        best = (last_cost, None, None)  # cost, path index, grid index
        p_all, rejected_all = [], []
        for s, path in enumerate(self._paths):
            p, cost = self._tested(path, max_drop, level)
            rejected = np.nan_to_num(p, nan=1.0) <= level
            p_all.append(p)
            rejected_all.append(rejected)
            if rejected.any():
                g = int(np.flatnonzero(rejected)[np.argmin(cost[rejected])])
                if cost[g] < best[0] - 1e-12:
                    best = (float(cost[g]), s, g)
        m = len(self.costs_)
        p_values, rejected = np.array(p_all), np.array(rejected_all)
        if best[1] is None:
            return Selection(max_drop, delta, (math.inf,) * (m - 1), str(m - 1), str(m - 1), last_cost, 1.0, 0.0, 0.0,
                             p_values, rejected)
        path, g = self._paths[best[1]], best[2]
        lam = float(self.lambdas_[g])
        config = tuple(lam if j in path.stages else math.inf for j in range(m - 1))
        difference = self._difference(path, g)
        return Selection(max_drop, delta, config, "+".join(map(str, path.stages)), _answering(config, m), best[0],
                         best[0] / last_cost, max_drop, float(difference.mean()), p_values, rejected)

    def _where(self, g: int) -> tuple[int, int]:
        """The block that holds threshold g of the grid, and g's row in it."""
        i, lo = next((i, lo) for i, (lo, hi) in enumerate(_test_blocks(len(self.lambdas_))) if lo <= g < hi)
        return i, g - lo

    def _difference(self, path: _Path, g: int) -> np.ndarray:
        i, row = self._where(g)
        return path.blocks[i][0][row]

    def _set(self, chosen: Selection) -> None:
        set_fitted(self, chosen)
        finite = [t for t in chosen.config if math.isfinite(t)]
        self.threshold_ = finite[0] if finite else None

    @property
    def tested_(self) -> pd.DataFrame:
        """One row per (sub-chain, lambda) tested at the fitted level (see the class's attributes)."""
        if not hasattr(self, "_chosen"):
            raise RuntimeError("ThresholdSelector is not fitted; call fit(conf_cal, correct_cal, costs) first")
        last_cost = float(self.costs_[-1])
        rows = []
        for path, p, rejected in zip(self._paths, self._chosen.p_values, self._chosen.rejected):
            for g in np.flatnonzero(~np.isnan(p)):
                i, row = self._where(g)
                difference, _, cost = path.blocks[i]
                rows.append({"stages": "+".join(map(str, path.stages)), "threshold": float(self.lambdas_[g]),
                             "cost_share": float(cost[row]) / last_cost,
                             "accuracy_lost": float(difference[row].mean()), "p_value": float(p[g]),
                             "rejected": bool(rejected[g])})
        return pd.DataFrame(rows, columns=["stages", "threshold", "cost_share", "accuracy_lost", "p_value", "rejected"])

    def route(self, conf: Any) -> np.ndarray:
        """Index of the stage whose answer is kept, per sample, shape (n,): the first stage whose
        calibrated confidence reaches its threshold, else the last. ``conf``: the M models'
        calibrated confidences (n,) in chain order."""
        if not hasattr(self, "config_"):
            raise RuntimeError("ThresholdSelector is not fitted; call fit(conf_cal, correct_cal, costs) first")
        c = _as_list(conf, "conf")
        if len(c) != len(self.costs_):
            raise ValueError(f"conf: expected {len(self.costs_)} models, got {len(c)}")
        checked = np.stack([confidence_array(x, f"conf[{j}]") for j, x in enumerate(c)])
        return route_thresholds(checked, self.config_)


def route_thresholds(conf: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """The stage answering each row under per-stage ``thresholds`` (M - 1,): the first stage j
    with conf[j] >= thresholds[j] (``inf``: never), else the last. ``conf``: checked, (M, n)."""
    stage = np.full(conf.shape[1], len(thresholds), dtype=np.intp)
    for j in range(len(thresholds) - 1, -1, -1):
        if math.isfinite(thresholds[j]):
            np.copyto(stage, j, where=conf[j] >= thresholds[j])
    return stage


def _answering(config: Sequence[float], m: int) -> str:
    """The stages that can answer under per-stage thresholds: each called stage, until one with
    threshold 0 answers every row (then the later ones never see a row)."""
    out = []
    for j, t in enumerate(config):
        if math.isfinite(t):
            out.append(j)
            if t <= 0:
                return "+".join(map(str, out))
    return "+".join(map(str, out + [m - 1]))


def select_cascade(conf_cal: Any, correct_cal: Any, costs: Sequence[float] | None = None, *, max_drop: float,
                   delta: float, method: str = "threshold", lambdas: Any = DEFAULT_LAMBDAS, n_bins: int = 15,
                   fit_fraction: float = 0.5, seed: int = 0, records: Sequence[Any] | None = None,
                   fit_rows: Any = None) -> ThresholdSelector | CascadeSelector:
    """The cheapest configuration of a chain certified to lose at most ``max_drop`` accuracy against
    its last model, with probability >= 1 - ``delta`` (Learn-then-Test).

    Parameters
    ----------
    conf_cal, correct_cal : list of M arrays, shape (n,) each
        Calibrated confidences (probabilities) and 0/1 verifier scores on cal, chain order.
    costs : sequence of M floats > 0, optional
        Cost per call; read from the manifests of ``records`` when omitted.
    max_drop : float in [0, 1)
    delta : float in (0, 1)
    method : {"threshold", "frontier"}
        ``"threshold"`` (default): :class:`ThresholdSelector`, one threshold per sub-chain on a
        fixed grid, every row not in ``fit_rows`` certifies. ``"frontier"``:
        :class:`calcas.chain.CascadeSelector`, bins and a Pareto frontier fitted on a share
        ``fit_fraction`` of cal (or ``fit_rows``), tested on the rest. The chains chapter's study
        compares them: the threshold method saved at least as much in every cell of every public chain.
    lambdas : int or sequence of floats in [0, 1]
        The threshold method's grid (:func:`threshold_grid`).
    n_bins, fit_fraction : the frontier method's bins per stage and fitting share.
    seed : int
    records : list of M record sets, optional
    fit_rows : indices into cal, optional
        The rows the calibrators were fitted on. The threshold method never certifies on them (its
        guarantee needs calibrators fitted on other rows than those that certify); the frontier
        method fits its bins and frontier on them.

    Returns
    -------
    ThresholdSelector or CascadeSelector, fitted.
    """
    if method == "threshold":
        return ThresholdSelector(max_drop=max_drop, delta=delta, lambdas=lambdas, seed=seed).fit(
            conf_cal, correct_cal, costs, records=records, fit_rows=fit_rows)
    if method == "frontier":
        return CascadeSelector(max_drop=max_drop, delta=delta, n_bins=n_bins, fit_fraction=fit_fraction,
                               seed=seed).fit(conf_cal, correct_cal, costs, records=records, fit_rows=fit_rows)
    raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
