"""The chains chapter: :func:`calcas.select_cascade` on chains of M >= 2 models, its guarantee
checked over many random cal/test re-splits, beside cascades chosen on cal without a guarantee
(SPEC §3b).

Three steps, as every chapter (:mod:`calcas.chapters`):

- :func:`compute` runs :func:`calcas.chain_study.study_chain` on each chain and keeps what the
  page shows: per max_drop the share of re-splits whose certified cascade lost more than max_drop
  on test, with its Wilson interval and its verdict against delta; the baselines at the accuracy
  budget, each with its share of re-splits over budget and that share's verdict against delta;
  the first re-split's frontiers, models alone and selection grid; whether a middle stage pays;
  which models a certified configuration actually asks (a configuration that keeps every bin of
  one model is that model alone, and is named so);
- :func:`prose` phrases those facts, and says what the paper claims on each chain's data set: it
  cascades pairs of models and makes no claim about longer chains or certified guarantees;
- :func:`tables`, :func:`figures` and :func:`explorers` draw them (:mod:`calcas.render`).
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..certify import sub_chains, threshold_grid, zero_loss_p_value
from ..chain import check_delta, check_max_drop
from ..chain_study import CERTIFIERS, GRID_DELTAS, GRID_DROPS, METHODS, REFIT, ChainStudy, FrontierOnTest, GridPoint, \
    study_chain
from ..metrics import paired_difference_interval, proportion_interval
from ..records import Records, align
from ..render import interactive, plots
from .common import (Estimate, Facts, Verdict, dataset_label, decide, exercises_shown, fmt, load_record_sets,
                     names_list, paper_reference, pct, reference_dataset, signed)

__all__ = ["ChainFacts", "ChainsParameters", "SingleChainFacts", "LevelFacts", "BaselineFacts", "SingleFacts",
           "MethodCell", "ComparisonFacts", "FloorFacts", "ControlFacts", "PathFacts",
           "FrontierFacts", "GridPointFacts", "StageFacts", "ReachFacts", "ShortfallFacts", "MiddleFacts",
           "PaperContext", "METHOD_NAMES", "SHORT_NAMES", "SHORTFALL_MARGIN", "compute", "prose", "tables",
           "figures", "explorers"]

#: What each baseline is (the chapter's Markdown defines them in full).
METHOD_NAMES = {
    "certified": "certified (select_cascade at max_drop = budget)",
    "calibrated": "calibrated advantage, chosen on cal (no guarantee)",
    "uncalibrated": "uncalibrated advantage, chosen on cal",
    "thresholds": "per-stage thresholds (FrugalGPT-style)",
    "single threshold": "one threshold on the first model (RouteLLM-style)",
    "random": "random routing (no cascade)",
    "oracle": "oracle (knows test correctness)",
}

#: The tables' and the prose's names of the methods.
SHORT_NAMES = {"certified": "certified", "calibrated": "calibrated advantage",
               "uncalibrated": "uncalibrated advantage", "thresholds": "per-stage thresholds",
               "single threshold": "one threshold on the first model", "random": "random routing", "oracle": "oracle"}

#: How far (in accuracy) a pair's test frontier must lie above the whole chain's, at no more cost,
#: before the page points it out.
SHORTFALL_MARGIN = 0.005

#: The precision the tables show cost shares at; "cheaper" and "costs the same" are read at it.
COST_DIGITS = 3

# ---------------------------------------------------------------------------- facts


@dataclasses.dataclass(frozen=True)
class ChainsParameters(Facts):
    """The chapter's parameters, as the notebook received them (record sets as paths, or the
    display names of :class:`calcas.Records` given directly)."""

    chains: dict[str, list[str]]
    costs: dict[str, list[float]]
    max_drops: list[float]
    delta: float
    budget: float
    n_splits: int
    n_bins: int
    cal_fraction: float
    fit_fraction: float
    calibration: str
    seed: int
    method: str = "threshold"
    deltas: list[float] = dataclasses.field(default_factory=lambda: [0.05, 0.1])
    lambdas: int = 101
    n_refit: int = 100


@dataclasses.dataclass(frozen=True)
class LevelFacts(Facts):
    """The certified cascade at one max_drop, over the re-splits.

    ``violations``: the share of re-splits whose certified cascade loses more than max_drop on all
    rows of the data set (the distribution cal is drawn from), with its Wilson interval, decided
    against delta ("below": the guarantee held; "above": it failed; "within": these re-splits
    cannot tell the rate from delta); ``n_violations`` of them. ``test_violation_share``: the
    share that lost more than max_drop on the test half alone (noisier: a configuration that
    truly loses a little less than max_drop often shows more on half the rows).
    ``cost_saved_*``: 1 - test cost share (mean; the 97.5%, 50% and 2.5% quantiles of the cost
    share, as savings). ``lost_*``: test accuracy lost (mean; 2.5%, 50%, 97.5% quantiles).
    ``chosen_stages`` counts the stages each re-split's configuration calls; ``called_share`` per
    model the share of re-splits that call it. ``answered_by`` counts the models each
    configuration can send rows to (a model that keeps every bin stops the chain there), and
    ``answering_share`` per model the share of re-splits that send it rows; ``usual`` is the
    most frequent of those sets, ``usual_share`` its share, and ``usual_alone`` names its model
    where it is one cheaper model alone. ``last_alone_share``: nothing cheaper was certified;
    ``mostly_last_alone``: in more than half the re-splits. ``n_dearer_than_last``: re-splits
    whose certified cascade cost more than the last model on test. ``gained_on_average``: the
    mean accuracy lost, as the table shows it (3 decimals), is below zero.
    """

    max_drop: float
    violations: Verdict
    n_violations: int
    test_violation_share: float
    cost_saved_mean: float
    cost_saved_quantiles: list[float]
    lost_mean: float
    lost_quantiles: list[float]
    last_alone_share: float
    chosen_stages: dict[str, int]
    called_share: list[float]
    answered_by: dict[str, int]
    answering_share: list[float]
    usual: str
    usual_share: float
    usual_alone: str | None
    mostly_last_alone: bool
    n_dearer_than_last: int
    gained_on_average: bool


@dataclasses.dataclass(frozen=True)
class BaselineFacts(Facts):
    """One method at the accuracy budget, over the re-splits: its test cost share (mean, 2.5% and
    97.5% quantiles), mean accuracy lost, and the share of re-splits in which it lost more than
    the budget on test, with its Wilson interval decided against delta (``over_budget``;
    ``n_over`` of them). ``cheaper_than_certified``: its mean cost share, as the tables show it
    (3 decimals), is below the certified cascade's (None for the certified cascade itself)."""

    cost_share_mean: float
    cost_share_quantiles: list[float]
    lost_mean: float
    over_budget: Verdict
    n_over: int
    cheaper_than_certified: bool | None


@dataclasses.dataclass(frozen=True)
class SingleFacts(Facts):
    """One model alone on the first re-split's test rows (``model``: its index in the chain)."""

    model: int
    cost_share: float
    accuracy: float


@dataclasses.dataclass(frozen=True)
class FrontierFacts(Facts):
    """A frontier fitted on the first re-split's cal rows, one entry per configuration: test and
    cal cost share and accuracy, and the models each configuration can send rows to
    (``answering``, stage indices of the whole chain such as ``"1"`` or ``"0+2"``)."""

    cost_share: list[float]
    accuracy: list[float]
    cal_cost_share: list[float]
    cal_accuracy: list[float]
    answering: list[str]


@dataclasses.dataclass(frozen=True)
class PathFacts(Facts):
    """One sub-chain's threshold path on the first re-split's test rows: per threshold of the grid
    (high to low), the test cost share and accuracy of the configuration it gives."""

    threshold: list[float]
    cost_share: list[float]
    accuracy: list[float]


@dataclasses.dataclass(frozen=True)
class GridPointFacts(Facts, GridPoint):
    """What :func:`calcas.select_cascade` certifies on the first re-split at one (max_drop, delta)
    (the fields of :class:`calcas.chain_study.GridPoint`): the stages it calls and those it can
    send rows to, its test cost share, accuracy and accuracy lost."""


@dataclasses.dataclass(frozen=True)
class StageFacts(Facts):
    """A cheaper model of the chain (not the last), and whether it ever pays.

    ``never_answers``: at no max_drop tested does any re-split's certified configuration send it
    rows. ``dearer_than_last``: one call costs at least as much as the last model's.
    ``dominated_by``: a later cheaper model (not the last) that costs no more per call and is
    more accurate on the first re-split's test rows (``more_accurate``: the paired difference of
    its accuracy minus this one's, decided against zero, "above"); None where there is none.
    """

    model: str
    never_answers: bool
    dearer_than_last: bool
    dominated_by: str | None
    more_accurate: Verdict | None


@dataclasses.dataclass(frozen=True)
class ReachFacts(Facts):
    """The cheapest point of one test frontier whose test accuracy is within the target of the last
    model's: its cost share and the models it sends rows to (``alone``: the model's name where it
    is one model alone)."""

    cost_share: float
    answering: str
    alone: str | None


@dataclasses.dataclass(frozen=True)
class ShortfallFacts(Facts):
    """The pair's test frontier point that the whole chain's test frontier misses by most (more
    than :data:`SHORTFALL_MARGIN`): the pair, that point's cost share and accuracy, and the whole
    chain's best accuracy at no more cost."""

    pair: str
    cost_share: float
    accuracy: float
    chain_accuracy: float


@dataclasses.dataclass(frozen=True)
class MiddleFacts(Facts):
    """Whether a middle stage pays, on the first re-split's test rows (chains of three or more).

    ``target_drop``: the largest max_drop tested; ``reach``: per frontier (stages such as
    ``"0+1+2"``) the cheapest point within ``target_drop`` of the last model's test accuracy, or
    None where none is. ``whole_chain_cheaper``: the whole chain reaches the target strictly
    cheaper than every pair that reaches it (None where the whole chain or every pair misses it).
    """

    target_drop: float
    reach: dict[str, ReachFacts | None]
    whole_chain_cheaper: bool | None
    shortfall: ShortfallFacts | None


@dataclasses.dataclass(frozen=True)
class PaperContext(Facts):
    """What the paper says about a chain's data set (``paper_reference.json``): ``dataset`` as the
    record sets' manifest names it, ``paper_dataset`` the paper's key for it (None where the paper
    has no results on it), its name, the models the paper cascades on it, where (figure, section),
    and its cascading claims there, in words."""

    dataset: str | None
    paper_dataset: str | None
    name: str | None
    models: str | None
    source: str | None
    claims: list[str]


@dataclasses.dataclass(frozen=True)
class MethodCell(Facts):
    """One certification method at one (max_drop, delta), over the re-splits (``n_splits`` of them):
    ``violations`` (share losing more than max_drop on all rows, Wilson interval, decided against
    delta; ``n_violations``), cost saved on test against the last model (mean; the 2.5%, 50% and
    97.5% quantiles of the saving), ``ceiling_saved``: the mean saving of the cheapest
    configuration that loses at most max_drop on the test rows (first ``n_refit`` re-splits), and
    ``last_alone_share``: the share of re-splits in which nothing cheaper than the last model was
    certified."""

    method: str
    max_drop: float
    delta: float
    n_splits: int
    violations: Verdict
    n_violations: int
    cost_saved_mean: float
    cost_saved_quantiles: list[float]
    ceiling_saved: float
    last_alone_share: float = 0.0


@dataclasses.dataclass(frozen=True)
class FloorFacts(Facts):
    """At one max_drop, whether the chapter's method could certify anything with the certifying
    rows it has: ``floor_p``, the p-value of a configuration that answers as the last model on every
    one of the ``n_certify`` rows (the smallest p a configuration that never beats the last model
    gets), against ``level``, delta split over the ``n_tests`` sequences (sub-chains) tested;
    ``possible``: floor_p <= level."""

    max_drop: float
    n_certify: int
    floor_p: float
    level: float
    n_tests: int
    possible: bool


@dataclasses.dataclass(frozen=True)
class ComparisonFacts(Facts):
    """The two certification methods side by side (``cells``: every method x max_drop x delta), and
    ``refit``: the threshold method with its calibrators refitted on all of cal (the rows that
    certify fitted them too; its proof does not cover that) on the first ``n_refit`` re-splits.
    ``better``: the method whose mean saving, as the table shows it (whole percent), is at least the
    other's in every cell (None when neither is); ``worse_cells``: the cells (max_drop, delta) where
    the threshold method saves less, as shown. ``worst_upper``: the largest Wilson upper bound of
    the violation rate minus its delta, over every cell. ``frontier_first``: on the first
    re-split, the cost share and accuracy lost on the certifying rows of the frontier method's first
    tested configuration (None where it has none). ``refit_baseline``: the threshold method's
    cells on the same first ``n_refit`` re-splits as ``refit``, to set the two side by side."""

    cells: list[MethodCell]
    refit: list[MethodCell]
    n_refit: int
    better: str | None
    worse_cells: list[list[float]]
    worst_upper: float
    frontier_first: list[float] | None = None
    refit_baseline: list[MethodCell] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class ControlFacts(Facts):
    """Whether each control of the chain's explorer moves the certified configuration on the first
    re-split: ``delta_moves`` (some max_drop of the grid certifies a different configuration at
    another delta), ``drop_moves`` (some delta certifies a different configuration at another
    max_drop)."""

    delta_moves: bool
    drop_moves: bool


@dataclasses.dataclass(frozen=True)
class SingleChainFacts(Facts):
    """Everything the chapter shows of one chain (models in chain order, the last the reference).

    ``guarantee``: per max_drop (keys as ``f"{max_drop:g}"``). ``baselines``: per method of
    :data:`METHOD_NAMES`. ``uncalibrated_vs_calibrated``: routing on raw confidences costs
    "same", "more" or "less" than on calibrated ones, as the tables show them. ``singles``,
    ``frontiers`` and ``selection_grid``: the first re-split in detail. ``stages``: the cheaper
    models (chains of three or more); ``middle``: whether a middle stage pays (idem).
    """

    models: list[str]
    costs: list[float]
    cost_source: str
    n: int
    n_cal: int
    n_fit: int
    n_certify: int
    n_test: int
    guarantee: dict[str, LevelFacts]
    baselines: dict[str, BaselineFacts]
    uncalibrated_vs_calibrated: str
    singles: list[SingleFacts]
    frontiers: dict[str, FrontierFacts]
    selection_grid: list[GridPointFacts]
    stages: list[StageFacts]
    middle: MiddleFacts | None
    paper: PaperContext
    comparison: ComparisonFacts
    floors: list[FloorFacts]
    controls: ControlFacts
    paths: dict[str, PathFacts] = dataclasses.field(default_factory=dict)

    def calls(self, stages: str) -> str:
        """The models of ``stages`` ("0+2") by name, in chain order ("a → c")."""
        return " → ".join(self.models[int(j)] for j in stages.split("+"))


@dataclasses.dataclass(frozen=True)
class ChainFacts(Facts):
    """The chains chapter's ``results.json``: one :class:`SingleChainFacts` per chain (``order``: the
    chains in the order given; the file sorts its keys), and ``shown``, the notebook's
    ``only-if:<key>`` switches (``exercises``)."""

    parameters: ChainsParameters
    chains: dict[str, SingleChainFacts]
    order: list[str]
    shown: dict[str, bool]
    section: str = "10_chains"

    def in_order(self) -> dict[str, SingleChainFacts]:
        """The chains in the order given."""
        return {name: self.chains[name] for name in self.order}


# ---------------------------------------------------------------------------- compute


def _rate(successes: int, n: int, reference: float) -> Verdict:
    low, high = proportion_interval(successes, n)
    return decide(Estimate.of((successes / n, low, high), "proportion_interval"), reference)


def _shown(x: float) -> float:
    return round(float(x), COST_DIGITS)


def _alone(answering: str, models: Sequence[str]) -> str | None:
    return models[int(answering)] if "+" not in answering else None


def _level(runs: Any, models: list[str], delta: float) -> LevelFacts:
    m, s = len(models), len(runs.lost)
    chosen, answered = Counter(runs.stages), Counter(runs.answering)
    violations = int(np.sum(runs.lost_population > runs.max_drop + 1e-12))
    usual, usual_count = min(answered.items(), key=lambda kv: (-kv[1], kv[0]))
    last_alone = chosen.get(str(m - 1), 0) / s
    lost_mean = float(runs.lost.mean())
    return LevelFacts(
        max_drop=float(runs.max_drop), violations=_rate(violations, s, delta), n_violations=violations,
        test_violation_share=float(np.mean(runs.lost > runs.max_drop + 1e-12)), cost_saved_mean=float(1 - runs.cost_share.mean()),
        cost_saved_quantiles=[float(1 - q) for q in np.quantile(runs.cost_share, [0.975, 0.5, 0.025])],
        lost_mean=lost_mean, lost_quantiles=np.quantile(runs.lost, [0.025, 0.5, 0.975]).tolist(),
        last_alone_share=last_alone, chosen_stages=dict(chosen),
        called_share=[sum(k for st, k in chosen.items() if str(j) in st.split("+")) / s for j in range(m)],
        answered_by=dict(answered),
        answering_share=[sum(k for st, k in answered.items() if str(j) in st.split("+")) / s for j in range(m)],
        usual=usual, usual_share=usual_count / s,
        usual_alone=_alone(usual, models) if usual != str(m - 1) else None,
        mostly_last_alone=last_alone > 0.5, n_dearer_than_last=int(np.sum(runs.cost_share > 1 + 1e-12)),
        gained_on_average=_shown(lost_mean) < 0)


def _cell(runs: Any, ceiling: np.ndarray) -> MethodCell:
    s = len(runs.lost_population)
    violations = int(np.sum(runs.lost_population > runs.max_drop + 1e-12))
    last = max(runs.stages, key=len).split("+")[-1] if runs.stages else ""
    return MethodCell(runs.method, float(runs.max_drop), float(runs.delta), s, _rate(violations, s, runs.delta),
                      violations, float(1 - runs.cost_share.mean()),
                      [float(1 - q) for q in np.quantile(runs.cost_share, [0.975, 0.5, 0.025])],
                      float(1 - ceiling.mean()), float(np.mean([st == last for st in runs.stages])))


def _comparison(study: ChainStudy) -> ComparisonFacts:
    first = getattr(study.first, "frontier_first", None) if getattr(study, "first", None) else None
    cells = [_cell(r, study.ceiling[r.max_drop]) for r in study.comparison]
    refit = [_cell(r, study.ceiling[r.max_drop]) for r in study.refit]
    n_refit = len(next(iter(study.ceiling.values())))
    baseline = [_cell(dataclasses.replace(r, lost=r.lost[:n_refit], cost_share=r.cost_share[:n_refit],
                                          stages=r.stages[:n_refit], answering=r.answering[:n_refit],
                                          lost_population=r.lost_population[:n_refit]), study.ceiling[r.max_drop])
                for r in study.comparison if r.method == "threshold"]
    saved = {(c.method, c.max_drop, c.delta): round(100 * c.cost_saved_mean) for c in cells}
    levels = sorted({(c.max_drop, c.delta) for c in cells})
    worse = [[d, e] for d, e in levels if saved[("threshold", d, e)] < saved[("frontier", d, e)]]
    frontier_worse = [1 for d, e in levels if saved[("frontier", d, e)] < saved[("threshold", d, e)]]
    better = "threshold" if not worse else ("frontier" if not frontier_worse else None)
    worst = max(c.violations.estimate.high - c.delta for c in cells)
    return ComparisonFacts(cells, refit, n_refit, better, worse, float(worst), None if first is None else list(first),
                           baseline)


def _floors(study: ChainStudy, delta: float) -> list[FloorFacts]:
    """Per max_drop, whether study.method could certify anything with the study's certifying rows
    (the threshold method certifies on every cal row but those that fitted the calibrators)."""
    tests = len(sub_chains(len(study.costs))) if study.method == "threshold" else 1
    out = []
    for lv in study.levels:
        p = zero_loss_p_value(study.n_certify, lv.max_drop)
        out.append(FloorFacts(float(lv.max_drop), study.n_certify, p, delta / tests, tests, bool(p <= delta / tests)))
    return out


def _controls(grid: Sequence[GridPoint]) -> ControlFacts:
    """Whether the δ drop-down and the max_drop slider can move the certified point (the stages it
    calls and its test cost)."""
    point = {(g.max_drop, g.delta): (g.stages, round(g.cost_share, 6)) for g in grid}
    drops, deltas = sorted({g.max_drop for g in grid}), sorted({g.delta for g in grid})
    return ControlFacts(any(len({point[(d, e)] for e in deltas}) > 1 for d in drops),
                        any(len({point[(d, e)] for d in drops}) > 1 for e in deltas))


def _baselines(study: ChainStudy, budget: float, delta: float) -> dict[str, BaselineFacts]:
    certified = _shown(study.methods["certified"].cost_share.mean())
    out = {}
    for k in METHODS:
        runs = study.methods[k]
        over = int(np.sum(runs.lost > budget + 1e-12))
        mean = float(runs.cost_share.mean())
        out[k] = BaselineFacts(mean, np.quantile(runs.cost_share, [0.025, 0.975]).tolist(), float(runs.lost.mean()),
                               _rate(over, len(runs.lost), delta), over,
                               None if k == "certified" else _shown(mean) < certified)
    return out


def _compare_costs(uncalibrated: float, calibrated: float) -> str:
    u, k = _shown(uncalibrated), _shown(calibrated)
    return "same" if u == k else ("more" if u > k else "less")


def _stages(study: ChainStudy, models: list[str], levels: Sequence[LevelFacts], seed: int) -> list[StageFacts]:
    m, costs, correct = len(models), study.costs, study.first.test_correct
    out = []
    for j in range(m - 1):
        dominated, verdict = None, None
        for k in range(j + 1, m - 1):
            if costs[k] > costs[j]:
                continue
            v = decide(Estimate.of(paired_difference_interval(correct[k], correct[j], seed=seed),
                                   "paired_difference_interval"))
            if v.outcome == "above":
                dominated, verdict = models[k], v
                break
        out.append(StageFacts(models[j], all(g.answering_share[j] == 0 for g in levels),
                              bool(costs[j] >= costs[-1]), dominated, verdict))
    return out


def _reach(f: FrontierOnTest, target: float, models: Sequence[str]) -> ReachFacts | None:
    ok = np.flatnonzero(f.accuracy >= target - 1e-12)
    if not len(ok):
        return None
    i = int(ok[np.argmin(f.cost_share[ok])])
    return ReachFacts(float(f.cost_share[i]), f.answering[i], _alone(f.answering[i], models))


def _shortfall(frontiers: Mapping[str, FrontierOnTest], full: str) -> ShortfallFacts | None:
    chain, worst = frontiers[full], None
    for pair, f in frontiers.items():
        if pair == full:
            continue
        for cost, acc in zip(f.cost_share, f.accuracy):
            reach = chain.accuracy[chain.cost_share <= cost + 1e-12]
            if len(reach) and acc - reach.max() > SHORTFALL_MARGIN and \
                    (worst is None or acc - reach.max() > worst.accuracy - worst.chain_accuracy):
                worst = ShortfallFacts(pair, float(cost), float(acc), float(reach.max()))
    return worst


def _middle(study: ChainStudy, models: list[str], target_drop: float) -> MiddleFacts | None:
    m = len(models)
    if m < 3:
        return None
    full = "+".join(map(str, range(m)))
    target = float(study.first.accuracy[-1]) - target_drop
    reach = {k: _reach(f, target, models) for k, f in study.first.frontiers.items()}
    pairs = [r.cost_share for k, r in reach.items() if k != full and r is not None]
    cheaper = None if reach[full] is None or not pairs else bool(reach[full].cost_share < min(pairs) - 1e-9)
    return MiddleFacts(float(target_drop), reach, cheaper, _shortfall(study.first.frontiers, full))


def _paper(sets: Sequence[Records]) -> PaperContext:
    dataset = sets[0].manifest.get("dataset")
    key = reference_dataset(dataset)
    ref = paper_reference()
    entry = ref["datasets"].get(key) if key else None
    cascading = (entry or {}).get("cascading") or {}
    return PaperContext(dataset, key, (entry or {}).get("name"), cascading.get("models"), cascading.get("source"),
                        [ref["claims"][c] for c in cascading.get("claims", [])])


def _chain(study: ChainStudy, sets: Sequence[Records], models: list[str], *, delta: float, budget: float,
           seed: int) -> SingleChainFacts:
    levels = {f"{lv.max_drop:g}": _level(lv, models, delta) for lv in study.levels}
    baselines = _baselines(study, budget, delta)
    first, costs = study.first, study.costs
    frontiers = {k: FrontierFacts(f.cost_share.tolist(), f.accuracy.tolist(), f.cal_cost_share.tolist(),
                                  f.cal_accuracy.tolist(), list(f.answering)) for k, f in first.frontiers.items()}
    grid = [GridPointFacts(**dataclasses.asdict(g)) for g in first.grid]
    singles = [SingleFacts(j, float(costs[j] / costs[-1]), float(first.accuracy[j])) for j in range(len(models))]
    many = len(models) > 2
    return SingleChainFacts(
        models=models, costs=costs.tolist(), cost_source=study.cost_source, n=study.n, n_cal=study.n_cal,
        n_fit=study.n_fit, n_certify=study.n_certify, n_test=study.n_test, guarantee=levels, baselines=baselines,
        uncalibrated_vs_calibrated=_compare_costs(baselines["uncalibrated"].cost_share_mean,
                                                  baselines["calibrated"].cost_share_mean),
        singles=singles, frontiers=frontiers, selection_grid=grid,
        stages=_stages(study, models, list(levels.values()), seed) if many else [],
        middle=_middle(study, models, max(lv.max_drop for lv in study.levels)), paper=_paper(sets),
        comparison=_comparison(study), floors=_floors(study, delta), controls=_controls(first.grid),
        paths={k: PathFacts(*(np.asarray(x).tolist() for x in v)) for k, v in first.paths.items()})


def _checked_chains(chains: Any, costs: Any) -> dict[str, list[Any]]:
    if not isinstance(chains, Mapping) or not chains:
        raise ValueError(f"chains: expected a non-empty mapping name -> list of record sets, got {chains!r}")
    out = {}
    for name, sets in chains.items():
        if isinstance(sets, (str, bytes, os.PathLike, Records)) or not isinstance(sets, Sequence):
            raise ValueError(f"chains: {name!r} must be a list of record sets in chain order, got {sets!r}")
        if len(sets) < 2:
            raise ValueError(f"chains: {name!r} needs at least two record sets, got {len(sets)}")
        out[str(name)] = list(sets)
    unknown = sorted(set(costs or {}) - set(out))
    if unknown:
        raise ValueError(f"costs: {unknown} name no chain; the chains are {list(out)}")
    return out


def compute(chains: Mapping[str, Sequence[str | os.PathLike | Records]], *,
            costs: Mapping[str, Sequence[float]] | None = None, max_drops: Sequence[float] = (0.01, 0.02, 0.03),
            delta: float = 0.1, budget: float = 0.01, n_splits: int = 500, n_bins: int = 10,
            cal_fraction: float = 0.5, fit_fraction: float = 0.3, calibration: str = "auto",
            seed: int = 0, method: str = "threshold", deltas: Sequence[float] = (0.05, 0.1), lambdas: int = 101,
            n_refit: int = 100) -> ChainFacts:
    """The chains chapter: :func:`calcas.chain_study.study_chain` on every chain, summed up with
    its verdicts.

    Parameters
    ----------
    chains : mapping name -> list of M >= 2 paths or Records, in chain order
        Rows are aligned by id (rows missing from one set are dropped, with a warning); the last
        model is the reference.
    costs : mapping name -> list of M floats, optional
        Cost per call of each model; a chain without an entry takes its costs from the manifests
        (:func:`calcas.costs_from_records`), and the facts say which.
    max_drops, delta
        The guarantees tested: accuracy lost at most max_drop with probability >= 1 - delta.
    budget : float
        The accuracy budget of the baselines (each method's cal choice within it).
    n_splits : int
        Random cal/test re-splits per chain (seeds ``seed .. seed + n_splits - 1``).
    n_bins, cal_fraction, fit_fraction, calibration, seed
        Bins per stage; cal's share of the rows; the share of cal that fits the calibrators (and,
        for the frontier method, the bins and frontier; the rest certifies); the calibration
        method; the first seed.
    method : {"threshold", "frontier"}
        The certification method of the guarantee table, the certified baseline and the explorer.
    deltas : sequence of floats
        The deltas at which both methods are compared.
    lambdas : int
        Points of the threshold method's grid.
    n_refit : int
        Re-splits (the first) that also measure the refit variant and the ceiling.

    Returns
    -------
    ChainFacts

    Raises
    ------
    ValueError
        On an empty or malformed ``chains``, a chain of fewer than two record sets, costs naming
        no chain, and whatever :func:`calcas.chain_study.study_chain` refuses.
    """
    checked = _checked_chains(chains, costs)
    for d in max_drops:
        check_max_drop(d)
    check_delta(delta)
    check_max_drop(budget)
    out, every_set, shown_paths = {}, [], {}
    for name, paths in checked.items():
        loaded, models = load_record_sets(paths)
        sets = list(align(*loaded))
        every_set += sets
        study = study_chain(sets, (costs or {}).get(name) or None, max_drops=max_drops, delta=delta, budget=budget,
                            n_splits=n_splits, n_bins=n_bins, cal_fraction=cal_fraction, fit_fraction=fit_fraction,
                            calibration=calibration, seed=seed, method=method, lambdas=lambdas, deltas=deltas,
                            n_refit=n_refit)
        out[name] = _chain(study, sets, models, delta=float(delta), budget=float(budget), seed=int(seed))
        shown_paths[name] = [m if isinstance(p, Records) else str(p) for p, m in zip(paths, models)]
    parameters = ChainsParameters(shown_paths, {k: list(v) for k, v in (costs or {}).items()}, list(max_drops),
                                  delta, budget, n_splits, n_bins, cal_fraction, fit_fraction, calibration, seed,
                                  method, [float(e) for e in deltas], int(lambdas), int(min(n_refit, n_splits)))
    return ChainFacts(parameters, out, list(out), {"exercises": exercises_shown(every_set)})


# ---------------------------------------------------------------------------- prose

_VIOLATIONS = {"below": "below δ = {delta}: the guarantee held",
               "above": "**above δ = {delta}: the guarantee failed here**",
               "within": "the interval contains δ = {delta}: these re-splits cannot tell the rate from δ"}


def _share(x: float | None) -> str:
    """A share of re-splits, with one decimal: "3.0%"."""
    return "—" if x is None else f"{100 * x:.1f}%"


def _rate_text(v: Verdict) -> str:
    e = v.estimate
    return f"{_share(e.value)} [{_share(e.low)}, {_share(e.high)}]"


def _setup(name: str, c: SingleChainFacts) -> str:
    source = "as given in the chapter's parameters" if c.cost_source == "given" else f"from {c.cost_source}"
    alone = ", ".join(f"{c.models[s.model]} {fmt(s.accuracy)} (cost {c.costs[s.model]:g})" for s in c.singles)
    return (f"**{name}**: {c.n:,} rows; costs per call {source}. Test accuracy of each model alone on the first "
            f"re-split: {alone}. Each re-split gives {c.n_cal:,} rows to cal ({c.n_fit:,} fit the calibrators, and the "
            f"frontier method's bins and frontier; {c.n_certify:,} certify) and {c.n_test:,} to test.")


def _guarantee(name: str, c: SingleChainFacts, delta: float, n_splits: int, method: str) -> str:
    last, levels = c.models[-1], list(c.guarantee.values())
    listed = "; ".join(f"{_rate_text(g.violations)} at {g.max_drop:g}" for g in levels)
    outcomes = {g.violations.outcome for g in levels}
    if len(outcomes) == 1:
        verdict = "at every max_drop, " + _VIOLATIONS[outcomes.pop()].format(delta=pct(delta))
    else:
        verdict = "; ".join(f"at {g.max_drop:g}, " + _VIOLATIONS[g.violations.outcome].format(delta=pct(delta))
                            for g in levels)
    out = [f"**{name}**, {n_splits:,} re-splits. Share of them whose certified cascade lost more than max_drop of "
           f"{last}'s accuracy on all {c.n:,} rows, with its 95% Wilson interval: {listed}; {verdict}. On the test "
           "half alone, a noisier measure, the share was " + ", ".join(
               f"{_share(g.test_violation_share)} at {g.max_drop:g}" for g in levels) + ".",
           f"Cost saved against {last} alone, the mean and the range of the middle 95% of re-splits: " + "; ".join(
               f"{pct(g.cost_saved_mean)} ({pct(g.cost_saved_quantiles[0])} to {pct(g.cost_saved_quantiles[2])}) at "
               f"{g.max_drop:g}" for g in levels) + "."]
    alone = [g for g in levels if g.mostly_last_alone]
    if alone:
        out.append(f"Nothing cheaper than {last} could be certified in most re-splits at max_drop = "
                   + ", ".join(f"{g.max_drop:g} ({pct(g.last_alone_share)})" for g in alone) + ".")
        out.append(_floor_text(c, [f for f in c.floors if any(np.isclose(f.max_drop, g.max_drop) for g in alone)]))
    for g in levels:
        if g.usual_alone is not None:
            out.append(f"At max_drop = {g.max_drop:g} the certified configuration was {g.usual_alone} alone in "
                       f"{pct(g.usual_share)} of re-splits: it keeps every bin of {g.usual_alone}, so no row goes on "
                       f"to {last}; that saving is {g.usual_alone}'s own, not a cascade's.")
    gained = [g for g in levels if g.gained_on_average]
    if gained:
        drops = ", ".join(f"{g.max_drop:g}" for g in gained)
        lost = ", ".join(signed(g.lost_mean, 3) for g in gained)
        out.append(f"At max_drop = {drops} the certified cascade lost no accuracy on average against {last} alone "
                   f"(mean accuracy lost {lost}). The re-splits share their rows, so this mean has no interval: it "
                   "shows no loss, not that the cascade is more accurate. A cheaper model can be right where the "
                   "last one is not.")
    dearer = [g for g in levels if g.n_dearer_than_last]
    if dearer:
        out.append(f"The certified cascade cost more than {last} alone on test in "
                   + ", ".join(f"{g.n_dearer_than_last:,} re-splits at {g.max_drop:g}" for g in dearer)
                   + f" (of {n_splits:,}): a configuration is chosen only when it is cheaper on the rows "
                   + ("that certify" if method == "threshold" else "that fit the frontier")
                   + ", and on other rows the same configuration can send more of them to the dearer stages.")
    return " ".join(out)


def _floor_text(c: SingleChainFacts, floors: Sequence[FloorFacts]) -> str:
    """Why nothing was certified: too few certifying rows, or cheaper models that lose too much."""
    last, f0 = c.models[-1], floors[0]
    split = f"δ split over {f0.n_tests} sub-chains, {f0.level:.3g} each" if f0.n_tests > 1 else f"δ = {f0.level:.3g}"
    out = []
    short = [f for f in floors if not f.possible]
    if short:
        out.append(f"With {f0.n_certify:,} certifying rows, even a configuration that answers as {last} on every row "
                   "gets a p-value of " + ", ".join(f"{f.floor_p:.3g} at max_drop = {f.max_drop:g}" for f in short)
                   + f", above {split}: nothing can be certified there with this many rows, whatever the models.")
    enough = [f for f in floors if f.possible]
    if enough:
        out.append("Rows are not what stops it at max_drop = " + ", ".join(f"{f.max_drop:g}" for f in enough)
                   + f": a configuration that answers as {last} on every row would get p = "
                   + ", ".join(f"{f.floor_p:.2g}" for f in enough) + f", within {split}. What stops it is the accuracy "
                   f"the cheaper models lose against {last}, too much for these rows to tell from a loss above max_drop.")
    return " ".join(out)


def _methods_text(name: str, c: SingleChainFacts) -> str:
    """Three paragraphs at most: which method saves more, against the ceiling, with the violation
    verdicts; why the frontier method certified nothing where it did not; the refit variant."""
    cmp, last = c.comparison, c.models[-1]
    cells = {(x.method, x.max_drop, x.delta): x for x in cmp.cells}
    levels = sorted({(x.max_drop, x.delta) for x in cmp.cells})
    top = levels[-1]
    t, f = cells[("threshold", *top)], cells[("frontier", *top)]
    if cmp.better == "threshold":
        first = ("the threshold method saves at least as much as the frontier method at every max_drop and δ "
                 f"tested; at max_drop = {top[0]:g}, δ = {top[1]:g}, {pct(t.cost_saved_mean)} against "
                 f"{pct(f.cost_saved_mean)} of {last}'s cost.")
    else:
        worse = "; ".join(f"max_drop = {d:g}, δ = {e:g} ({pct(cells[('threshold', d, e)].cost_saved_mean)} against "
                          f"{pct(cells[('frontier', d, e)].cost_saved_mean)})" for d, e in cmp.worse_cells)
        first = (f"the frontier method saves more at {worse}; at max_drop = {top[0]:g}, δ = {top[1]:g} the threshold "
                 f"method saves {pct(t.cost_saved_mean)}, the frontier method {pct(f.cost_saved_mean)}.")
    out = [f"**{name}**: {first}",
           "The ceiling, the cheapest configuration of either family that loses at most max_drop on the test rows "
           "(known only after the fact), saves " + ", ".join(
               f"{pct(cells[('threshold', d, levels[-1][1])].ceiling_saved)} at {d:g}"
               for d in sorted({d for d, _ in levels})) + f" (mean of the first {cmp.n_refit:,} re-splits)."]
    outcomes = Counter(x.violations.outcome for x in cmp.cells)
    if outcomes.get("above"):
        bad = [x for x in cmp.cells if x.violations.outcome == "above"]
        out.append("**The violation rate lies above δ at " + "; ".join(
            f"{x.method}, max_drop = {x.max_drop:g}, δ = {x.delta:g} ({_rate_text(x.violations)})" for x in bad)
                   + ": the guarantee failed there.**")
    else:
        margin = (f"its upper end lies at least {fmt(-cmp.worst_upper)} below δ" if cmp.worst_upper < 0 else
                  f"its upper end exceeds δ by at most {fmt(cmp.worst_upper)}")
        out.append("In every cell the violation rate's 95% Wilson interval "
                   + ("lies below δ" if outcomes.keys() == {"below"} else "lies below δ or contains it")
                   + f"; {margin}.")
    paragraphs = [" ".join(out)]
    stuck = [(d, e) for d, e in levels if cells[("frontier", d, e)].last_alone_share > 0.5
             and cells[("threshold", d, e)].last_alone_share <= 0.5]
    if stuck:
        why = [f"At " + "; ".join(f"max_drop = {d:g}, δ = {e:g}" for d, e in stuck) + " the frontier method "
               f"certified nothing cheaper than {last} in most re-splits (" + ", ".join(
                   pct(cells[("frontier", d, e)].last_alone_share) for d, e in stuck) + ") where the threshold "
               "method did certify something."]
        if cmp.frontier_first is not None:
            share, lost = cmp.frontier_first
            why.append(f"Its configurations move whole bins of rows from one model to another: on the first re-split "
                       f"its first configuration cheaper than {last} (cost {fmt(share)} of {last}'s) already loses "
                       f"{fmt(lost)} of {last}'s accuracy on the certifying rows, so a test at a max_drop below that "
                       "fails at once and the sequence stops there. The threshold method's grid moves a few rows per "
                       "step, and tests each sub-chain on its own path.")
        paragraphs.append(" ".join(why))
    refit = {(x.max_drop, x.delta): x for x in cmp.refit}
    valid = {(x.max_drop, x.delta): x for x in cmp.refit_baseline}
    if refit and valid:
        r, v = refit[top], valid[top]
        paragraphs.append(
            f"Refitting the calibrators on all of cal, so that the certifying rows fitted them too (the proof does "
            f"not cover this), on the first {cmp.n_refit:,} re-splits: at max_drop = {top[0]:g}, δ = {top[1]:g} it "
            f"saves {pct(r.cost_saved_mean)} against {pct(v.cost_saved_mean)} for the threshold method on the same "
            f"re-splits, with violations in {_rate_text(r.violations)} of them against "
            f"{_rate_text(v.violations)}; over every cell its violation rate is at most "
            f"{_share(max(x.violations.estimate.value for x in cmp.refit))}, against "
            f"{_share(max(x.violations.estimate.value for x in cmp.refit_baseline))}.")
    return "\n\n".join(paragraphs)


def _controls_text(name: str, c: SingleChainFacts) -> str | None:
    drops = f"max_drop from {min(GRID_DROPS):g} to {max(GRID_DROPS):g}"
    deltas = f"δ from {min(GRID_DELTAS):g} to {max(GRID_DELTAS):g}"
    if not c.controls.delta_moves and not c.controls.drop_moves:
        return (f"**{name}**: neither control moves the certified configuration ({drops}, {deltas} all certify the "
                "same one), so its explorer shows the frontiers without controls.")
    if not c.controls.delta_moves:
        return (f"**{name}**: {deltas} certifies the same configuration at every max_drop, so its explorer has no δ "
                "control: the p-values that stop each sequence lie above the largest δ, or those before them below "
                "the smallest.")
    if not c.controls.drop_moves:
        return f"**{name}**: {drops} certifies the same configuration at every δ, so its explorer has no max_drop slider."
    return None


_OVER = {"above": "over budget on test in more than δ = {delta} of re-splits (the whole interval lies above δ)",
         "within": "over budget in a share of re-splits these re-splits cannot tell from δ = {delta}",
         "below": "over budget in fewer than δ = {delta} of re-splits here, with no guarantee that they stay so on "
                  "other data"}


def _baselines_text(name: str, c: SingleChainFacts, budget: float, delta: float) -> str:
    b, last = c.baselines, c.models[-1]
    cert = b["certified"]
    out = [f"**{name}** (budget {budget:g} of {last}'s accuracy):"]
    cheaper = [k for k, v in b.items() if k not in ("certified", "oracle") and v.cheaper_than_certified]
    for outcome in ("above", "within", "below"):
        group = [k for k in cheaper if b[k].over_budget.outcome == outcome]
        if group:
            out.append("cheaper than the certified cascade and " + _OVER[outcome].format(delta=pct(delta)) + ": "
                       + ", ".join(f"{SHORT_NAMES[k]} ({fmt(b[k].cost_share_mean)}, over in "
                                   f"{pct(b[k].over_budget.estimate.value)})" for k in group) + ".")
    if not cheaper:
        out.append(f"no method that routes without knowing test correctness was cheaper than the certified cascade "
                   f"({fmt(cert.cost_share_mean)}).")
    own = {"above": f"**over budget in more than δ = {pct(delta)} of re-splits: its guarantee failed here**",
           "within": f"a share these re-splits cannot tell from δ = {pct(delta)}",
           "below": f"below δ = {pct(delta)}"}[cert.over_budget.outcome]
    out.append(f"The certified cascade: {fmt(cert.cost_share_mean)}, over budget in "
               f"{pct(cert.over_budget.estimate.value)} of re-splits ({own}).")
    out.append(f"The oracle needs {fmt(b['oracle'].cost_share_mean)}.")
    u, k = fmt(b["uncalibrated"].cost_share_mean), fmt(b["calibrated"].cost_share_mean)
    out.append({"same": f"Routing on uncalibrated confidences costs the same ({u}).",
                "more": f"Routing on uncalibrated confidences costs more ({u} against {k}).",
                "less": f"Routing on uncalibrated confidences costs less here ({u} against {k})."}
               [c.uncalibrated_vs_calibrated])
    # the first sentence continues the bold header after its colon
    sentences = [t[0].lower() + t[1:] if i == 0 else t[0].upper() + t[1:] for i, t in enumerate(out[1:])]
    return " ".join([out[0], *sentences])


def _never_pays(s: StageFacts, c: SingleChainFacts) -> str | None:
    last = c.models[-1]
    if not s.never_answers:
        return None
    j = c.models.index(s.model)
    if s.dearer_than_last:
        return (f"{s.model} never pays: one call costs at least as much as {last}'s ({c.costs[j]:g} against "
                f"{c.costs[-1]:g}), so no configuration that calls it is cheaper than {last} alone.")
    if s.dominated_by is not None:
        k = c.models.index(s.dominated_by)
        e = s.more_accurate.estimate
        return (f"{s.model} never pays: it costs at least as much as {s.dominated_by} ({c.costs[j]:g} against "
                f"{c.costs[k]:g}) and is right less often on the first re-split's test rows ({s.dominated_by} minus "
                f"{s.model}: {fmt(e.value)} [{fmt(e.low)}, {fmt(e.high)}], paired), so a configuration that calls "
                f"{s.dominated_by} instead does better for no more.")
    return None


def _middle_text(name: str, c: SingleChainFacts) -> str | None:
    mid = c.middle
    if mid is None:
        return None
    levels = list(c.guarantee.values())
    drops = ", ".join(f"{g.max_drop:g}" for g in levels)
    out = [f"**{name}**: share of re-splits whose certified configuration sends rows to each model, at max_drop = "
           f"{drops}: " + "; ".join(f"{model} " + ", ".join(pct(g.answering_share[j]) for g in levels)
                                    for j, model in enumerate(c.models)) + "."]
    out += [t for t in (_never_pays(s, c) for s in c.stages) if t]

    def point(key: str) -> str:
        r = mid.reach[key]
        if r is None:
            return f"{c.calls(key)} never"
        if r.alone:
            return f"{c.calls(key)} {fmt(r.cost_share)} ({r.alone} alone)"
        return f"{c.calls(key)} {fmt(r.cost_share)}" + (f" (asks {c.calls(r.answering)})" if r.answering != key else "")

    out.append(f"On the first re-split's test rows, the cheapest frontier point within {mid.target_drop:g} of "
               f"{c.models[-1]}'s accuracy costs: {', '.join(point(k) for k in mid.reach)}.")
    if mid.shortfall is not None:
        sf = mid.shortfall
        out.append(f"On test, the whole chain's frontier falls below {c.calls(sf.pair)}'s in places: at a cost of "
                   f"{fmt(sf.cost_share)}, {c.calls(sf.pair)} reaches {fmt(sf.accuracy)}, the whole chain "
                   f"{fmt(sf.chain_accuracy)} at no more cost. On cal the whole chain's frontier contains every "
                   "pair's, but it is chosen among far more configurations, and some that win on cal by a small "
                   "margin lose it on test.")
    m = len(c.models)
    if mid.whole_chain_cheaper is True:
        out.append(f"All {m} models together pay: the whole chain gets there cheaper than any pair.")
    elif mid.whole_chain_cheaper is False:
        out.append(f"All {m} models together do not pay here: a pair gets there as cheaply as the whole chain.")
    return " ".join(out)


def _paper_text(facts: ChainFacts) -> str:
    chains = facts.in_order()
    by_dataset: dict[str, list[str]] = {}
    for name, c in chains.items():
        by_dataset.setdefault(c.paper.paper_dataset or "", []).append(name)
    out = []
    for key, names in by_dataset.items():
        p = chains[names[0]].paper
        if key:
            claims = "; ".join(p.claims) if p.claims else "none"
            out.append(f"On {p.name} the paper cascades pairs of models, {p.models} ({p.source}): the first answers "
                       f"the K bins it keeps, the second the rest, with no guarantee on the accuracy lost. Its "
                       f"cascading claims there: {claims}. This page's chains there: {names_list(names)}.")
        else:
            dataset = dataset_label(p.dataset) if p.dataset else "these record sets' data"
            out.append(f"The paper has no results on {dataset} ({names_list(names)}).")
    out.append("The paper makes no claim about chains of more models, nor about a guarantee on the accuracy a "
               "cascade gives up: max_drop, δ and the test by betting are this book's (Specification §3b). Nothing "
               "on this page is set beside a number of the paper.")
    return "\n\n".join(out)


def prose(facts: ChainFacts) -> dict[str, str]:
    """The chapter's sentences, from its facts only.

    Returns
    -------
    dict with ``"chains"`` (rows, costs, each model alone), ``"guarantee"`` (violation rates and
    their verdicts against δ, cost saved, which model a certified configuration is where it is
    one model alone), ``"baselines"`` (each method's cost and its over-budget verdict against δ),
    ``"middle"`` (whether a middle stage pays), ``"methods"`` (the threshold and frontier methods
    side by side, the ceiling, the refit variant), ``"controls"`` (which explorer controls move
    nothing, and why they are left out) and ``"paper"`` (what the paper claims on each data set,
    and that it claims nothing about chains or guarantees).
    """
    p, chains = facts.parameters, facts.in_order()
    middle = [t for t in (_middle_text(n, c) for n, c in chains.items()) if t]
    controls = [t for t in (_controls_text(n, c) for n, c in chains.items()) if t]
    return {
        "methods": "\n\n".join(_methods_text(n, c) for n, c in chains.items()),
        "controls": "\n\n".join(controls) or "Both controls move the certified configuration on every chain here.",
        "chains": "\n\n".join(_setup(n, c) for n, c in chains.items()),
        "guarantee": "\n\n".join(_guarantee(n, c, p.delta, p.n_splits, p.method) for n, c in chains.items()),
        "baselines": "\n\n".join(_baselines_text(n, c, p.budget, p.delta) for n, c in chains.items()),
        "middle": "\n\n".join(middle) or "Every chain here has two models: there is no middle stage to weigh.",
        "paper": _paper_text(facts),
    }


# ---------------------------------------------------------------------------- tables, figures, explorers

_READS = {"below": "below δ", "above": "above δ: failed", "within": "cannot tell from δ"}


def _guarantee_table(facts: ChainFacts) -> pd.DataFrame:
    rows = []
    for name, c in facts.in_order().items():
        for g in c.guarantee.values():
            v, q = g.violations.estimate, g.cost_saved_quantiles
            usual = "last model alone" if g.usual == str(len(c.models) - 1) else \
                (f"{g.usual_alone} alone" if g.usual_alone else c.calls(g.usual))
            rows.append({"chain": name, "level": f"max_drop = {g.max_drop:g}",
                         "violations, all rows [95%]": _rate_cell(g.violations),
                         "reads": _READS[g.violations.outcome],
                         "cost saved (2.5–97.5%)": f"{pct(g.cost_saved_mean)} ({pct(q[0])} to {pct(q[2])})",
                         "accuracy lost": signed(g.lost_mean, 3),
                         "last model alone": pct(g.last_alone_share),
                         "most often": f"{usual} ({pct(g.usual_share)})"})
    return pd.DataFrame(rows).set_index(["chain", "level"])


def _rate_cell(v: Verdict) -> str:
    """:func:`_rate_text` for a table cell: the space in the bracket does not break."""
    return _rate_text(v).replace(", ", ",\u00a0")


def _saved_cell(cell: MethodCell) -> str:
    q = cell.cost_saved_quantiles
    return f"{pct(cell.cost_saved_mean)} ({pct(q[0])} to\u00a0{pct(q[2])})"


def _methods_table(facts: ChainFacts) -> pd.DataFrame:
    rows = []
    for name, c in facts.in_order().items():
        cells = {(x.method, x.max_drop, x.delta): x for x in c.comparison.cells}
        for d, e in sorted({(x.max_drop, x.delta) for x in c.comparison.cells}):
            t, f = cells[("threshold", d, e)], cells[("frontier", d, e)]
            rows.append({"chain": name, "level": f"max_drop = {d:g}, δ = {e:g}",
                         "threshold: violations [95%]": _rate_cell(t.violations),
                         "threshold: cost saved (2.5–97.5%)": _saved_cell(t),
                         "frontier: violations [95%]": _rate_cell(f.violations),
                         "frontier: cost saved (2.5–97.5%)": _saved_cell(f),
                         "ceiling on test": pct(t.ceiling_saved)})
    return pd.DataFrame(rows).set_index(["chain", "level"])


def _refit_table(facts: ChainFacts) -> pd.DataFrame:
    rows = []
    for name, c in facts.in_order().items():
        valid = {(x.max_drop, x.delta): x for x in c.comparison.refit_baseline}
        for x in c.comparison.refit:
            v = valid[(x.max_drop, x.delta)]
            rows.append({"chain": name, "level": f"max_drop = {x.max_drop:g}, δ = {x.delta:g}",
                         "refitted: violations [95%]": _rate_cell(x.violations),
                         "refitted: cost saved (2.5–97.5%)": _saved_cell(x),
                         "calibrators left out: violations [95%]": _rate_cell(v.violations),
                         "calibrators left out: cost saved (2.5–97.5%)": _saved_cell(v)})
    return pd.DataFrame(rows).set_index(["chain", "level"])


def _baseline_table(facts: ChainFacts) -> pd.DataFrame:
    rows = [{"chain": name, "method": SHORT_NAMES[k], "mean cost share": f"{c.baselines[k].cost_share_mean:.3f}",
             "over budget (share of re-splits)": pct(c.baselines[k].over_budget.estimate.value)}
            for name, c in facts.in_order().items() for k in METHOD_NAMES if k in c.baselines]
    return pd.DataFrame(rows).set_index(["chain", "method"])


def tables(facts: ChainFacts) -> dict[str, pd.DataFrame]:
    """The chapter's tables, from its facts.

    Returns
    -------
    dict of DataFrames
        ``"guarantee"``: per chain and max_drop, the share of re-splits whose accuracy lost on all
        rows exceeded max_drop (95% Wilson interval), what it reads against δ, cost saved against
        the last model (mean, and the 2.5-97.5% range over re-splits), mean accuracy lost, how
        often nothing cheaper than the last model was certified, and the models the certified
        configuration asked most often. ``"methods"``: per chain and (max_drop, δ), both
        certification methods' violation rates and savings and the ceiling on test. ``"refit"``:
        the threshold method with its calibrators refitted on all of cal, beside the threshold
        method on the same re-splits. ``"baselines"``: one row per chain and method: the
        mean test cost, as a share of the last model's, of the configuration the method chose on
        cal within the budget, and the share of re-splits in which it lost more than the budget
        on test.
    """
    return {"guarantee": _guarantee_table(facts), "methods": _methods_table(facts), "refit": _refit_table(facts),
            "baselines": _baseline_table(facts)}


def _drawn(facts: ChainFacts) -> dict[str, dict[str, Any]]:
    return {name: c.to_dict() for name, c in facts.in_order().items()}


def figures(facts: ChainFacts) -> Any:
    """The test frontiers of each chain of three or more models (of every chain where all have
    two) and of its pairs ending in the last model, each model alone marked
    (:func:`calcas.render.plots.chain_frontier_grid`); returns the matplotlib Figure."""
    drawn = _drawn(facts)
    return plots.chain_frontier_grid({n: c for n, c in drawn.items() if len(c["models"]) > 2} or drawn)


def explorers(facts: ChainFacts) -> dict[str, interactive.Explorer]:
    """One kernel-free explorer per chain (:func:`calcas.render.interactive.chain_explorer`): the
    configurations of the chapter's method on test (the threshold paths of every sub-chain, or the
    frontiers) and the certified configuration at a max_drop slider and a δ drop-down,
    starting at the largest max_drop tested and the chapter's δ; a control that moves nothing on a
    chain (:class:`ControlFacts`) is left out, and the prose says so."""
    p = facts.parameters
    chains = facts.in_order()
    return {name: interactive.chain_explorer(
        c, title=name, max_drop=max(p.max_drops), delta=p.delta,
        controls=tuple(k for k, moves in (("max_drop", chains[name].controls.drop_moves),
                                          ("delta", chains[name].controls.delta_moves)) if moves),
        curves="paths" if p.method == "threshold" and c.get("paths") else "frontiers")
            for name, c in _drawn(facts).items()}
