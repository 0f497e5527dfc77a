"""The chain study: the guarantee of :func:`calcas.select_cascade` over many random cal/test
re-splits of one chain of record sets, its two methods side by side with the ceiling test allows,
and the baselines at a fixed accuracy budget (SPEC §3b).

Every re-split draws cal and test at random; cal is split again into the rows that fit the
calibrators (and, for the frontier method, the bins and the frontier) and the rows that certify.
Nothing of test is seen before a configuration is fixed. The guarantee is about the distribution
cal is drawn from: the study's is the data set's rows, so a certified configuration violates it
when it loses more than max_drop on all rows (``lost_population``); on the test half alone a
configuration that truly loses a little less than max_drop often shows more (``lost``). The
baselines choose their configuration on all of cal (the cheapest whose cal accuracy is within the
budget of the last model's) and are measured on test.

:func:`study_chain` checks its inputs once; the re-splits then run on checked arrays
(:class:`calcas.chain.ChainRows`): each re-split calibrates every model once, fits the certified
selector once and tests it at every level (:meth:`calcas.chain.CascadeSelector.choose`), and the
frontiers on the calibrated cal rows share their bins (:class:`calcas.chain.StageBins`) on cal and on
test.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
from scipy.special import expit

from ._validate import check_n_bins, check_positive_int
from .calibration import PlattScaling, TemperatureScaling
from .certify import ThresholdSelector, _first_stage, route_thresholds, sub_chains, threshold_grid
from .chain import (CascadeSelector, ChainFrontier, ChainPoints, ChainRows, Selection, StageBins, check_aligned,
                    check_delta, check_max_drop, checked_costs, fit_frontier)
from .records import Records

#: The selection grid of the first re-split (the chapter's explorer): max_drop x delta.
GRID_DROPS = tuple(round(0.005 * i, 3) for i in range(11))
GRID_DELTAS = (0.01, 0.05, 0.1, 0.2, 0.3)

#: The baselines, each choosing on cal the cheapest configuration within the accuracy budget.
METHODS = ("certified", "calibrated", "uncalibrated", "thresholds", "single threshold", "random", "oracle")

CALIBRATIONS = ("auto", "temperature", "platt")

#: The certification methods compared (:func:`calcas.select_cascade`'s ``method``), and the
#: threshold method with its calibrators refitted on all of cal, so that the rows that certify also
#: fitted them (its proof does not cover that; the study measures it on the first ``n_refit``
#: re-splits).
CERTIFIERS = ("threshold", "frontier")
REFIT = "threshold, calibrators refitted on all cal"


# ---------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class LevelRuns:
    """The certified cascade at one max_drop (and the study's delta), one entry per re-split.

    Attributes
    ----------
    max_drop : float
    lost : ndarray, shape (S,)
        Test accuracy of the last model minus the certified cascade's.
    cost_share : ndarray, shape (S,)
        Test cost per item as a share of the last model's.
    lost_population : ndarray, shape (S,)
        The same on all rows of the data set (the distribution cal is drawn from): the guarantee
        fails in a re-split where it exceeds max_drop.
    stages : list of str
        The stages each re-split's configuration calls (e.g. ``"0+2"``; ``"2"``: the last model alone).
    answering : list of str
        The stages it can send rows to (:meth:`calcas.chain.ChainFrontier.answering`): ``"1"``
        where model 1 keeps every bin, i.e. model 1 alone.
    """

    max_drop: float
    lost: np.ndarray
    cost_share: np.ndarray
    stages: list[str]
    answering: list[str]
    lost_population: np.ndarray
    method: str = "threshold"
    delta: float = 0.1


@dataclasses.dataclass(frozen=True)
class MethodRuns:
    """One baseline, one entry per re-split: its test cost share and accuracy lost (``cost_share``,
    ``lost``, shape (S,) each)."""

    cost_share: np.ndarray
    lost: np.ndarray


@dataclasses.dataclass(frozen=True)
class FrontierOnTest:
    """A frontier fitted on the first re-split's cal rows, measured on its test rows: one entry per
    configuration, cheapest on cal first (``cost_share``, ``accuracy`` on test; ``cal_cost_share``,
    ``cal_accuracy`` on cal; ``answering``: the stages each can send rows to)."""

    cost_share: np.ndarray
    accuracy: np.ndarray
    cal_cost_share: np.ndarray
    cal_accuracy: np.ndarray
    answering: list[str]


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """What :func:`calcas.select_cascade` certifies on the first re-split at one (max_drop, delta),
    measured on its test rows."""

    max_drop: float
    delta: float
    stages: str
    answering: str
    cost_share: float
    accuracy: float
    lost: float


@dataclasses.dataclass(frozen=True)
class FirstSplit:
    """The first re-split in detail.

    Attributes
    ----------
    accuracy : ndarray, shape (M,)
        Each model alone on test.
    test_correct : ndarray, shape (M, n_test)
        Each model's 0/1 scores on the test rows (for paired comparisons of the models).
    frontiers : dict stages -> FrontierOnTest
        The whole chain (``"0+1+2"``) and, for M > 2, each pair ending in the last model (``"0+2"``).
    grid : list of GridPoint
        One per (max_drop, delta) of :data:`GRID_DROPS` x :data:`GRID_DELTAS`.
    paths : dict stages -> (ndarray, ndarray, ndarray)
        The threshold method's configurations on test, per sub-chain (``"0+2"``): the grid's
        thresholds (high to low), and each one's test cost share and accuracy.
    frontier_first : tuple of float or None
        The frontier method's first tested configuration (the dearest one cheaper than the last
        model on the fitting rows): its cost share and accuracy lost on the certifying rows; None
        where it has none.
    """

    accuracy: np.ndarray
    test_correct: np.ndarray
    frontiers: dict[str, FrontierOnTest]
    grid: list[GridPoint]
    paths: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)
    frontier_first: tuple[float, float] | None = None


@dataclasses.dataclass(frozen=True)
class ChainStudy:
    """What :func:`study_chain` measured on one chain.

    Attributes
    ----------
    costs : ndarray, shape (M,)
    cost_source : str
        ``"given"`` or the manifest field the costs came from.
    n, n_cal, n_fit, n_certify, n_test : int
        Rows in all, in cal, in the part of cal that fits and the part that certifies, in test.
    method : str
        The certification method of ``levels``, the certified baseline and ``first.grid``.
    levels : list of LevelRuns
        The certified cascade (``method``) at each max_drop asked for, at delta, in that order.
    comparison : list of LevelRuns
        Each method of :data:`CERTIFIERS` at each max_drop x each of ``deltas``.
    refit : list of LevelRuns
        :data:`REFIT` at each max_drop x each of ``deltas``, on the first ``n_refit`` re-splits.
    ceiling : dict max_drop -> ndarray, shape (n_refit,)
        On the first ``n_refit`` re-splits: the test cost share of the cheapest configuration that
        loses at most max_drop on the test rows, among every threshold of every sub-chain and the
        frontier method's frontier (what a method that knew test could pick).
    methods : dict name -> MethodRuns
        Every name of :data:`METHODS`, at the accuracy budget; ``"certified"`` is
        :func:`calcas.select_cascade` (``method``) at max_drop = budget.
    first : FirstSplit
    """

    costs: np.ndarray
    cost_source: str
    n: int
    n_cal: int
    n_fit: int
    n_certify: int
    n_test: int
    method: str
    levels: list[LevelRuns]
    comparison: list[LevelRuns]
    refit: list[LevelRuns]
    ceiling: dict[float, np.ndarray]
    methods: dict[str, MethodRuns]
    first: FirstSplit

    @property
    def n_splits(self) -> int:
        """S, the number of re-splits."""
        return len(self.levels[0].lost)


# ---------------------------------------------------------------------------- one re-split


@dataclasses.dataclass(frozen=True)
class _Calibration:
    """One record set's calibration, with what does not change between re-splits computed once:
    the raw confidence and the Platt score (as :func:`calcas.calibrate_records` computes them)."""

    records: Records
    method: str
    raw: np.ndarray
    score: np.ndarray | None
    shifted: np.ndarray | None = None  # temperature: logits minus the row max, (n, C) float64

    @classmethod
    def of(cls, records: Records, method: str) -> "_Calibration":
        if method == "auto":
            method = "temperature" if records.logits is not None else "platt"
        if method == "temperature":
            if records.logits is None:
                raise ValueError(f"calibration: temperature scaling needs logits; {records.manifest.get('model')!r} "
                                 f"carries {records.source!r} (use 'platt')")
            z = records.logits.astype(np.float64)
            with np.errstate(over="ignore"):  # as calcas.softmax: a spread beyond the float range is -inf, exp 0
                shifted = z - z.max(axis=1, keepdims=True)
            return cls(records, method, records.raw_confidence(), None, shifted)
        score = records.platt_score()
        raw = records.raw_confidence() if records.score is None else expit(score)
        return cls(records, method, raw, score)

    def calibrated(self, fit: np.ndarray, on: "_Calibration | None" = None) -> np.ndarray:
        """Calibrated confidence of every row of ``on`` (by default these records), the calibrator
        fitted on the rows ``fit`` of these records (ascending indices: the rows a mask selects, in
        the same order)."""
        r, target = self.records, self if on is None else on
        if self.method == "temperature":
            # calcas.softmax's arithmetic, step for step, on the shift computed once: the same floats
            # as calibrate_records' probabilities[rows, pred] (tested), without the whole (n, C) matrix
            T = TemperatureScaling().fit(np.take(r.logits, fit, axis=0), np.take(r.label, fit)).temperature_
            weights = target.shifted / T
            np.exp(weights, out=weights)
            return weights[np.arange(target.records.n), target.records.pred] / weights.sum(axis=1)
        return PlattScaling().fit(np.take(self.score, fit), np.take(r.verified, fit)).transform(target.score)


@dataclasses.dataclass(frozen=True)
class _Split:
    """One re-split's rows: calibrated (and raw) confidences and scores on cal and on test, and
    the positions within cal of the rows that fit."""

    cal: ChainRows
    test: ChainRows
    raw_cal: ChainRows
    raw_test: ChainRows
    fit: np.ndarray
    population: ChainRows | None = None  # every row, calibrated as cal and test are
    rows: np.ndarray | None = None       # the permutation: cal first, then test


def _split(calibrations: Sequence[_Calibration], raw: ChainRows, seed: int, n_cal: int, n_fit: int) -> _Split:
    rows = np.random.default_rng(seed).permutation(raw.n)
    cal, test = rows[:n_cal], rows[n_cal:]
    fit = np.sort(cal[:n_fit])  # the calibrators see the rows in their order, as through a mask
    raw_cal, raw_test = raw.take(cal), raw.take(test)
    calibrated = np.stack([c.calibrated(fit) for c in calibrations])
    return _Split(dataclasses.replace(raw_cal, conf=np.take(calibrated, cal, axis=1)),
                  dataclasses.replace(raw_test, conf=np.take(calibrated, test, axis=1)), raw_cal, raw_test,
                  np.arange(n_fit), dataclasses.replace(raw, conf=calibrated), rows)


def _refitted(calibrations: Sequence[_Calibration], raw: ChainRows, s: _Split, n_cal: int) -> _Split:
    """The re-split ``s`` with every calibrator refitted on all of cal (no row left out)."""
    cal, test = s.rows[:n_cal], s.rows[n_cal:]
    calibrated = np.stack([c.calibrated(np.sort(cal)) for c in calibrations])
    return dataclasses.replace(s, cal=dataclasses.replace(s.cal, conf=np.take(calibrated, cal, axis=1)),
                               test=dataclasses.replace(s.test, conf=np.take(calibrated, test, axis=1)),
                               fit=np.arange(0), population=dataclasses.replace(raw, conf=calibrated))


def _cheapest_within(points: ChainPoints, budget: float) -> int:
    """Row of the cheapest configuration whose accuracy lost is within ``budget`` (the last
    model alone always is)."""
    return int(np.flatnonzero(points.accuracy_lost <= budget + 1e-12)[0])


def _frontier_choice(frontier: ChainFrontier, test: ChainRows, budget: float,
                     index: np.ndarray | None = None) -> tuple[float, float]:
    """Test cost share and accuracy lost of the cheapest cal configuration of ``frontier`` within
    budget (``index``: the test rows' bins under the frontier's edges, where known)."""
    row = _cheapest_within(frontier.points, budget)
    t = frontier.measure(test, frontier.points.K[row:row + 1], index=index)
    return float(t.cost[0] / frontier.costs[-1]), float(test.correct[-1].mean() - t.accuracy[0])


def _random_routing(s: _Split, costs: np.ndarray, budget: float) -> tuple[float, float]:
    """Send each sample to one model drawn at random (no cascade): the cheapest mix of two models, on
    a grid of weights, whose cal accuracy is within budget; its expected test cost and accuracy lost."""
    acc_cal, acc_test = s.cal.correct.mean(axis=1), s.test.correct.mean(axis=1)
    w = np.linspace(0.0, 1.0, 201)
    best = (1.0, 0.0)  # the last model alone
    for i in range(len(costs)):
        for k in range(len(costs)):
            ok = w * acc_cal[i] + (1 - w) * acc_cal[k] >= acc_cal[-1] - budget - 1e-12
            cost = (w * costs[i] + (1 - w) * costs[k]) / costs[-1]
            if ok.any() and cost[ok].min() < best[0]:
                x = w[ok][np.argmin(cost[ok])]
                best = (float(cost[ok].min()), float(acc_test[-1] - (x * acc_test[i] + (1 - x) * acc_test[k])))
    return best


def _oracle(test_correct: np.ndarray, costs: np.ndarray, budget: float) -> tuple[float, float]:
    """Knowing every answer's correctness on test (``test_correct``, (M, n)): each sample goes to the
    cheapest model that gets it right (the cheapest model when none does), then the largest savings
    are bought with the budget."""
    v = test_correct > 0.5
    n = v.shape[1]
    cheapest = int(np.argmin(costs))
    cost = np.where(v.any(axis=0), np.min(np.where(v, costs[:, None], np.inf), axis=0), costs[cheapest])
    right = v.any(axis=0).astype(float)
    spare = int(np.floor((right.mean() - v[-1].mean() + budget) * n + 1e-9))
    saving = np.where(right > 0, cost - costs[cheapest], 0.0)
    give_up = np.argsort(-saving)[:max(spare, 0)]
    give_up = give_up[saving[give_up] > 0]
    right[give_up] = v[cheapest, give_up]
    cost[give_up] = costs[cheapest]
    return float(cost.mean() / costs[-1]), float(v[-1].mean() - right.mean())


def _measured(selector: CascadeSelector | ThresholdSelector, chosen: Sequence[Selection],
              rows: ChainRows) -> tuple[np.ndarray, np.ndarray]:
    """Cost share and accuracy lost against the last model of each chosen configuration on ``rows``
    (each distinct configuration routed once)."""
    configurations = sorted({c.config for c in chosen})
    if isinstance(selector, CascadeSelector):
        t = selector.frontier_.measure(rows, configurations)
        measured = dict(zip(configurations, zip(t.cost_share, t.accuracy_lost)))
    else:
        measured, index, last = {}, np.arange(rows.n), float(rows.correct[-1].mean())
        for config in configurations:
            stage = route_thresholds(rows.conf, config)
            paid = np.cumsum(np.append(np.isfinite(config), True) * rows.costs)
            measured[config] = (paid[stage].mean() / rows.costs[-1], last - rows.correct[stage, index].mean())
    cost, lost = np.array([measured[c.config] for c in chosen]).T
    return cost, lost


def _certified(selector: CascadeSelector | ThresholdSelector, test: ChainRows,
               levels: Sequence[tuple[float, float]]) -> list[GridPoint]:
    """The fitted selector's choice at each (max_drop, delta) of ``levels``, measured on test: what
    the choice depends on but the level is computed once (``choose``)."""
    chosen = [selector.choose(max_drop=d, delta=delta) for d, delta in levels]
    cost, lost = _measured(selector, chosen, test)
    accuracy = float(test.correct[-1].mean()) - lost
    return [GridPoint(d, delta, c.stages, c.answering, float(k), float(a), float(x))
            for (d, delta), c, k, a, x in zip(levels, chosen, cost, accuracy, lost)]


def _ceiling(test: ChainRows, frontier: ChainFrontier, lambdas: np.ndarray, max_drops: Sequence[float]) -> list[float]:
    """Per max_drop, the test cost share of the cheapest configuration that loses at most max_drop on
    ``test``: every threshold of every sub-chain, and every point of ``frontier``."""
    last = float(test.correct[-1].mean())
    cost, lost = [np.ones(1)], [np.zeros(1)]  # the last model alone
    for _, share, accuracy in _paths(test, lambdas).values():
        cost.append(share)
        lost.append(last - accuracy)
    t = frontier.measure(test)
    cost, lost = np.concatenate([*cost, t.cost_share]), np.concatenate([*lost, t.accuracy_lost])
    return [float(cost[lost <= d + 1e-12].min()) for d in max_drops]


def _frontier_on_test(frontier: ChainFrontier, test: ChainRows, stages: Sequence[int],
                      index: np.ndarray) -> FrontierOnTest:
    """``frontier`` of the models ``stages`` of the chain, measured on ``test`` (those models' rows,
    binned: ``index``)."""
    t = frontier.measure(test, index=index)
    answering = ["+".join(str(stages[int(j)]) for j in frontier.answering(k).split("+")) for k in frontier.points.K]
    return FrontierOnTest(t.cost / frontier.costs[-1], t.accuracy, frontier.points.cost_share,
                          frontier.points.accuracy, answering)


# ---------------------------------------------------------------------------- the study


def _checked_fraction(x: float, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not 0.0 < x < 1.0:
        raise ValueError(f"{name}: must be strictly between 0 and 1, got {x!r}")
    return float(x)


def study_chain(records: Sequence[Records], costs: Sequence[float] | None = None, *,
                max_drops: Sequence[float] = (0.01, 0.02, 0.03), delta: float = 0.1, budget: float = 0.01,
                n_splits: int = 500, n_bins: int = 10, cal_fraction: float = 0.5, fit_fraction: float = 0.3,
                calibration: str = "auto", seed: int = 0, method: str = "threshold", lambdas: Any = 101,
                deltas: Sequence[float] = (0.05, 0.1), n_refit: int = 100) -> ChainStudy:
    """:func:`calcas.select_cascade` over ``n_splits`` random re-splits of one chain, and the
    baselines at the accuracy ``budget``.

    Parameters
    ----------
    records : list of M >= 2 Records, in chain order
        Rows aligned by id (:func:`calcas.align`); the last model is the reference.
    costs : sequence of M floats > 0, optional
        Cost per call of each model; by default read from the manifests
        (:func:`calcas.costs_from_records`), and the result says which.
    max_drops, delta
        The guarantees tested: accuracy lost at most max_drop with probability >= 1 - delta.
    budget : float
        The accuracy budget of the baselines (each method's cal choice within it).
    n_splits : int
        Random cal/test re-splits (seeds ``seed .. seed + n_splits - 1``).
    n_bins : int
        Equal-count bins per stage.
    cal_fraction, fit_fraction : float in (0, 1)
        Cal's share of the rows; the share of cal that fits the calibrators (and the frontier
        method's bins and frontier; the rest certifies, for both methods).
    calibration : {"auto", "temperature", "platt"}
        As in :func:`calcas.calibrate_records`.
    seed : int
        The first re-split's seed.
    method : {"threshold", "frontier"}
        The certification method of ``levels``, the certified baseline and the first re-split's grid.
    lambdas : int or sequence of floats in [0, 1]
        The threshold method's grid (:func:`calcas.threshold_grid`).
    deltas : sequence of floats in (0, 1)
        The levels at which every method of :data:`CERTIFIERS` is compared (``comparison``).
    n_refit : int
        The re-splits (the first ones) that also measure :data:`REFIT` and the ceiling.

    Returns
    -------
    ChainStudy
        Per re-split: the certified cascade at each max_drop and each baseline at the budget, with
        test cost share and accuracy lost; the first re-split in detail (frontiers on test, each
        model alone, the selection over :data:`GRID_DROPS` x :data:`GRID_DELTAS`).

    Raises
    ------
    ValueError
        On fewer than two record sets, rows not aligned, bad costs, a max_drop, budget or delta out
        of range, a fraction outside (0, 1), a cal split too small to fit, certify and bin, an
        unknown calibration or method, a bad grid, or a non-positive ``n_splits`` or ``n_refit``.
    """
    sets = list(records)
    if len(sets) < 2:
        raise ValueError(f"records: a chain needs at least two record sets, got {len(sets)}")
    check_aligned(sets)
    chain_costs, cost_source = checked_costs(None if costs is None else list(costs), len(sets), records=sets)
    max_drops = [check_max_drop(d) for d in max_drops]
    if not max_drops:
        raise ValueError("max_drops: give at least one max_drop")
    delta, budget = check_delta(delta), check_max_drop(budget)
    n_splits = check_positive_int(n_splits, "n_splits")
    cal_fraction, fit_fraction = _checked_fraction(cal_fraction, "cal_fraction"), \
        _checked_fraction(fit_fraction, "fit_fraction")
    if method not in CERTIFIERS:
        raise ValueError(f"method: expected one of {CERTIFIERS}, got {method!r}")
    grid = threshold_grid(lambdas)
    deltas = [check_delta(e) for e in deltas]
    if not deltas:
        raise ValueError("deltas: give at least one delta")
    n_refit = min(check_positive_int(n_refit, "n_refit"), n_splits)
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration: expected one of {CALIBRATIONS}, got {calibration!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    n = sets[0].n
    n_cal = int(round(cal_fraction * n))
    n_fit = int(round(fit_fraction * n_cal))
    if not 1 <= n_fit < n_cal < n:
        raise ValueError(f"cal_fraction, fit_fraction: {n} rows give {n_cal} to cal and {n_fit} of them to fit; "
                         "each part needs at least one row")
    check_n_bins(n_bins, n_fit)
    calibrations = [_Calibration.of(r, calibration) for r in sets]
    raw = ChainRows(np.stack([c.raw for c in calibrations]), np.stack([r.verified for r in sets]), chain_costs,
                    cost_source)
    m = len(sets)
    # every (max_drop, delta) any part of the study reads, each chosen once per method and re-split
    levels = list(dict.fromkeys([*((d, delta) for d in max_drops), (budget, delta),
                                 *((d, e) for d in max_drops for e in deltas)]))
    grid_levels = [(d, e) for d in GRID_DROPS for e in GRID_DELTAS]
    runs: dict[tuple[str, float, float], list[tuple]] = {}
    ceiling: list[list[float]] = []
    methods: dict[str, list[tuple[float, float]]] = {k: [] for k in METHODS}
    first = None
    for r in range(n_splits):
        s = _split(calibrations, raw, seed + r, n_cal, n_fit)
        selectors = {"frontier": CascadeSelector(max_drop=budget, delta=delta, n_bins=n_bins, seed=seed + r).fit(
                         s.cal, fit_rows=s.fit),
                     "threshold": ThresholdSelector(max_drop=budget, delta=delta, lambdas=grid, seed=seed + r)._fit(
                         s.cal, None, None, None, s.fit)}
        for name, selector in selectors.items():
            _record(runs, name, selector, s, levels)
        if r < n_refit:
            refit = _refitted(calibrations, raw, s, n_cal)
            _record(runs, REFIT, ThresholdSelector(max_drop=budget, delta=delta, lambdas=grid, seed=seed + r)._fit(
                refit.cal, None, None, None, None), refit, [(d, e) for d in max_drops for e in deltas])
            ceiling.append(_ceiling(s.test, selectors["frontier"].frontier_, grid, max_drops))
        # the frontiers on the calibrated cal rows share their bins, on cal and on test
        bins = StageBins.of(s.cal, n_bins)
        test_bins = bins.assign(s.test)
        advantage = fit_frontier(s.cal, n_bins=n_bins, order="advantage", bins=bins)
        thresholds = fit_frontier(s.cal, n_bins=n_bins, order="confidence", bins=bins)
        single = fit_frontier(s.cal.sub_chain([0, m - 1]), n_bins=n_bins, order="confidence",
                              bins=bins.sub_chain([0, m - 1]))
        methods["certified"].append(runs[(method, budget, delta)][-1][:2])
        methods["calibrated"].append(_frontier_choice(advantage, s.test, budget, test_bins))
        methods["uncalibrated"].append(_frontier_choice(fit_frontier(s.raw_cal, n_bins=n_bins), s.raw_test, budget))
        methods["thresholds"].append(_frontier_choice(thresholds, s.test, budget, test_bins))
        methods["single threshold"].append(_frontier_choice(single, s.test.sub_chain([0, m - 1]), budget,
                                                            test_bins[:1]))
        methods["random"].append(_random_routing(s, chain_costs, budget))
        methods["oracle"].append(_oracle(s.test.correct, chain_costs, budget))
        if r == 0:
            first = _first_split(s, advantage, bins, test_bins, selectors[method], grid_levels, n_bins)
            first = dataclasses.replace(first, paths=_paths(s.test, grid))
            tested = selectors["frontier"].tested_
            if len(tested):
                first = dataclasses.replace(first, frontier_first=(float(tested["cost_share"].iloc[0]),
                                                                   float(tested["accuracy_lost"].iloc[0])))

    def level_runs(name: str, d: float, e: float) -> LevelRuns:
        cost, lost, pop, stages, answering = zip(*runs[(name, d, e)])
        return LevelRuns(d, np.array(lost), np.array(cost), list(stages), list(answering), np.array(pop), name, e)

    return ChainStudy(chain_costs, cost_source, n, n_cal, n_fit, n_cal - n_fit, n - n_cal, method,
                      [level_runs(method, d, delta) for d in max_drops],
                      [level_runs(k, d, e) for k in CERTIFIERS for d in max_drops for e in deltas],
                      [level_runs(REFIT, d, e) for d in max_drops for e in deltas],
                      {d: np.array(c) for d, c in zip(max_drops, np.array(ceiling).T)},
                      {k: MethodRuns(*np.array(v).T) for k, v in methods.items()}, first)


def _record(runs: dict, name: str, selector: CascadeSelector | ThresholdSelector, s: _Split,
            levels: Sequence[tuple[float, float]]) -> None:
    """Append one re-split's choice of ``selector`` at each level to ``runs[(name, max_drop, delta)]``:
    test cost share, test accuracy lost, accuracy lost on every row, stages called, stages answering."""
    chosen = [selector.choose(max_drop=d, delta=e) for d, e in levels]
    cost, lost = _measured(selector, chosen, s.test)
    _, lost_population = _measured(selector, chosen, s.population)
    for (d, e), c, k, x, p in zip(levels, chosen, cost, lost, lost_population):
        runs.setdefault((name, d, e), []).append((float(k), float(x), float(p), c.stages, c.answering))


def _paths(test: ChainRows, lambdas: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every threshold of every sub-chain measured on ``test``: thresholds, cost share, accuracy."""
    out, index = {}, np.arange(test.n)
    for stages in sub_chains(test.n_models):
        stage = _first_stage(test.conf[list(stages)], lambdas)
        cost = np.cumsum(test.costs[list(stages)])[stage].mean(axis=1) / test.costs[-1]
        out["+".join(map(str, stages))] = (lambdas, cost, test.correct[list(stages)][stage, index].mean(axis=1))
    return out


def _first_split(s: _Split, advantage: ChainFrontier, bins: StageBins, test_bins: np.ndarray,
                 selector: CascadeSelector | ThresholdSelector, grid_levels: Sequence[tuple[float, float]], n_bins: int) -> FirstSplit:
    """The first re-split in detail: frontiers on test (the whole chain and every two-model sub-chain
    ending in the last model), each model alone, and the selection over the grid of max_drop x delta."""
    m = s.cal.n_models
    frontiers = {"+".join(map(str, range(m))): _frontier_on_test(advantage, s.test, range(m), test_bins)}
    for j in range(m - 1) if m > 2 else []:
        pair = fit_frontier(s.cal.sub_chain([j, m - 1]), n_bins=n_bins, bins=bins.sub_chain([j, m - 1]))
        frontiers[f"{j}+{m - 1}"] = _frontier_on_test(pair, s.test.sub_chain([j, m - 1]), [j, m - 1],
                                                      test_bins[j:j + 1])
    return FirstSplit(s.test.correct.mean(axis=1), s.test.correct, frontiers, _certified(selector, s.test, grid_levels))


# ---------------------------------------------------------------------------- the chain under a shift


@dataclasses.dataclass(frozen=True)
class ShiftRuns:
    """:func:`study_chain_shift`: a chain certified on source rows, run on target rows.

    Attributes
    ----------
    max_drop, delta : float
    lost_source, lost_target : ndarray, shape (S,)
        Per re-split, the certified configuration's accuracy lost against the last model on all
        source rows (where the guarantee is about) and on all target rows.
    cost_source, cost_target : ndarray, shape (S,)
        Its cost share on the source's test rows and on all target rows.
    stages, answering : list of str
        The stages each re-split's configuration calls, and those it can send rows to (``"1"``:
        model 1 answers every row).
    recertified : dict m -> (lost, cost, stages)
        Certified again on m labelled target rows (30% of them fit the calibrators, the rest
        certify; a model whose calibrator has no finite fit on so few rows, as when they are all
        right, keeps the source's), measured on the other target rows: accuracy lost and cost
        share (ndarray (S,)) and the stages called, per re-split.
    n_source, n_target : int
    """

    max_drop: float
    delta: float
    lost_source: np.ndarray
    lost_target: np.ndarray
    cost_source: np.ndarray
    cost_target: np.ndarray
    stages: list[str]
    recertified: dict[int, tuple[np.ndarray, np.ndarray, list[str]]]
    n_source: int
    n_target: int
    answering: list[str] = dataclasses.field(default_factory=list)


def _chosen_on(selector: ThresholdSelector, chosen: Selection, rows: ChainRows) -> tuple[float, float]:
    cost, lost = _measured(selector, [chosen], rows)
    return float(cost[0]), float(lost[0])


def study_chain_shift(source: Sequence[Records], target: Sequence[Records], costs: Sequence[float], *,
                      max_drop: float = 0.03, delta: float = 0.1, n_splits: int = 100, cal_fraction: float = 0.5,
                      fit_fraction: float = 0.3, target_sizes: Sequence[int] = (100, 200, 400, 800),
                      calibration: str = "auto", seed: int = 0) -> ShiftRuns:
    """The threshold method's guarantee when the rows move: certified on source, run on target.

    Each re-split draws cal from the source rows (``cal_fraction``), fits the calibrators on
    ``fit_fraction`` of cal and certifies on the rest (:class:`calcas.ThresholdSelector`), then
    measures the configuration on all source rows and on all target rows, calibrated by the same
    source calibrators. It also re-certifies on m labelled target rows for each m of
    ``target_sizes`` (calibrators refitted on 30% of them) and measures that on the other target
    rows.

    Parameters
    ----------
    source, target : list of M Records each, in chain order
        The chain's record sets on the source rows and on the target rows (each side aligned by id
        across models; the two sides need not share ids).
    costs : sequence of M floats > 0
    max_drop, delta, n_splits, cal_fraction, fit_fraction, calibration, seed
        As in :func:`study_chain`.
    target_sizes : sequence of int
        Labelled target rows for re-certification; each below the number of target rows.

    Returns
    -------
    ShiftRuns
    """
    src, tgt = list(source), list(target)
    if len(src) < 2 or len(src) != len(tgt):
        raise ValueError(f"source, target: expected the same chain of at least two models on each side, got "
                         f"{len(src)} and {len(tgt)} record sets")
    check_aligned(src)
    check_aligned(tgt)
    chain_costs, _ = checked_costs(list(costs), len(src))
    max_drop, delta = check_max_drop(max_drop), check_delta(delta)
    n_splits = check_positive_int(n_splits, "n_splits")
    cal_fraction, fit_fraction = _checked_fraction(cal_fraction, "cal_fraction"), \
        _checked_fraction(fit_fraction, "fit_fraction")
    sizes = [check_positive_int(m, "target_sizes") for m in target_sizes]
    n_s, n_t = src[0].n, tgt[0].n
    if sizes and max(sizes) >= n_t:
        raise ValueError(f"target_sizes: each must be below the {n_t} target rows, got {sizes}")
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration: expected one of {CALIBRATIONS}, got {calibration!r}")
    n_cal = int(round(cal_fraction * n_s))
    n_fit = int(round(fit_fraction * n_cal))
    if not 1 <= n_fit < n_cal:
        raise ValueError(f"cal_fraction, fit_fraction: {n_s} source rows give {n_cal} to cal and {n_fit} of them to "
                         "fit; each part needs at least one row")
    cal_s = [_Calibration.of(r, calibration) for r in src]
    cal_t = [_Calibration.of(r, calibration) for r in tgt]
    raw_s = ChainRows(np.stack([c.raw for c in cal_s]), np.stack([r.verified for r in src]), chain_costs, "given")
    raw_t = ChainRows(np.stack([c.raw for c in cal_t]), np.stack([r.verified for r in tgt]), chain_costs, "given")
    out: dict[str, list] = {k: [] for k in ("lost_s", "lost_t", "cost_s", "cost_t", "stages", "answering")}
    again: dict[int, list] = {m: [] for m in sizes}
    for r in range(n_splits):
        s = _split(cal_s, raw_s, seed + r, n_cal, n_fit)
        fit = np.sort(s.rows[:n_fit])
        selector = ThresholdSelector(max_drop=max_drop, delta=delta, seed=seed + r)._fit(s.cal, None, None, None, s.fit)
        chosen = selector.choose(max_drop=max_drop, delta=delta)
        on_target = dataclasses.replace(raw_t, conf=np.stack([c.calibrated(fit, on=t) for c, t in zip(cal_s, cal_t)]))
        cost_s, _ = _chosen_on(selector, chosen, s.test)
        _, lost_s = _chosen_on(selector, chosen, s.population)
        cost_t, lost_t = _chosen_on(selector, chosen, on_target)
        for key, value in zip(("lost_s", "lost_t", "cost_s", "cost_t", "stages", "answering"),
                              (lost_s, lost_t, cost_s, cost_t, chosen.stages, chosen.answering)):
            out[key].append(value)
        rng = np.random.default_rng(seed + r)
        for m in sizes:
            rows = rng.permutation(n_t)
            labelled, rest = rows[:m], rows[m:]
            k = max(1, int(round(0.3 * m)))
            refit = []
            for j, c in enumerate(cal_t):
                try:
                    refit.append(c.calibrated(np.sort(labelled[:k])))
                except ValueError:  # too few rows for a finite fit (all right, say): keep the source's
                    refit.append(on_target.conf[j])
            target = dataclasses.replace(raw_t, conf=np.stack(refit))
            again_selector = ThresholdSelector(max_drop=max_drop, delta=delta, seed=seed + r)._fit(
                target.take(labelled), None, None, None, np.arange(k))
            picked = again_selector.choose(max_drop=max_drop, delta=delta)
            cost, lost = _chosen_on(again_selector, picked, target.take(rest))
            again[m].append((lost, cost, picked.stages))
    return ShiftRuns(max_drop, delta, np.array(out["lost_s"]), np.array(out["lost_t"]), np.array(out["cost_s"]),
                     np.array(out["cost_t"]), out["stages"],
                     {m: (np.array([x[0] for x in v]), np.array([x[1] for x in v]), [x[2] for x in v])
                      for m, v in again.items()}, n_s, n_t, out["answering"])
