"""The chain chapter's study: the guarantee of :func:`calcas.select_cascade` over many random
cal/test re-splits, and the baselines at a fixed accuracy budget (SPEC §3b).

Every re-split draws cal and test at random; cal is split again into the rows that fit the
calibrators, the bins and the frontier, and the rows that certify. Nothing of test is seen before
the configuration is fixed. The baselines choose their configuration on all of cal (the cheapest
whose cal accuracy is within the budget of the last model's) and are measured on test.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .calibration import calibrate_records
from .chain import (_checked_costs, check_aligned, check_delta, check_max_drop, evaluate_frontier,
                    cascade_frontier, select_cascade)
from .metrics import proportion_interval
from .records import Records, align
from .report import _load, exercises_shown

#: What this chapter was built to reach (its issue: a simple valid version of the method on a held-out
#: three-model LLM chain with real per-call prices); not the paper's, which cascades two models.
EXPECTATION = {"cost_saved": 0.4, "max_drop": 0.03, "delta": 0.1, "n_cal": 900, "models": 3}
SLIDER_DROPS = tuple(round(0.005 * i, 3) for i in range(11))
SLIDER_DELTAS = (0.01, 0.05, 0.1, 0.2, 0.3)


@dataclasses.dataclass
class _Split:
    """One re-split: calibrated (and raw) confidences and 0/1 scores of every model, shape (M, n_part),
    on cal and on test, and the positions within cal of the rows that fit."""
    cal: np.ndarray      # (3, M, n_cal): calibrated confidence, raw confidence, correct
    test: np.ndarray     # (3, M, n_test)
    fit: np.ndarray      # positions within cal

    @classmethod
    def of(cls, calibrated: np.ndarray, raw: np.ndarray, correct: np.ndarray, cal: np.ndarray, fit: np.ndarray,
           test: np.ndarray) -> "_Split":
        every = np.stack([calibrated, raw, correct])
        return cls(every[:, :, cal], every[:, :, test], fit)


CALIBRATED, RAW, CORRECT = 0, 1, 2


def _split(sets: Sequence[Records], seed: int, cal_fraction: float, fit_fraction: float, calibration: str) -> _Split:
    n = sets[0].n
    rows = np.random.default_rng(seed).permutation(n)
    n_cal = int(round(cal_fraction * n))
    cal, test = rows[:n_cal], rows[n_cal:]
    fit = np.arange(int(round(fit_fraction * n_cal)))
    mask = np.zeros(n, dtype=bool)
    mask[cal[fit]] = True
    fitted = [calibrate_records(r, mask, method=calibration) for r in sets]
    return _Split.of(np.stack([f.calibrated for f in fitted]), np.stack([f.raw for f in fitted]),
                     np.stack([r.verified for r in sets]), cal, fit, test)


def _cheapest_within(frontier_table: pd.DataFrame, budget: float) -> int:
    """Row of the cheapest cal configuration whose cal accuracy lost is within ``budget``."""
    ok = np.flatnonzero(frontier_table["accuracy_lost"].to_numpy() <= budget + 1e-12)
    return int(ok[0])


def _frontier_choice(s: _Split, scores: int, costs: np.ndarray, stages: Sequence[int], order: str,
                     n_bins: int, budget: float) -> tuple[float, float]:
    """Test cost share and accuracy lost of the cheapest cal configuration within budget, routing on
    ``scores`` (CALIBRATED or RAW confidences) of the models ``stages``."""
    cal, test = s.cal[:, list(stages)], s.test[:, list(stages)]
    f = cascade_frontier(list(cal[scores]), list(cal[CORRECT]), costs[list(stages)], n_bins=n_bins, order=order)
    row = _cheapest_within(f.table, budget)
    t = evaluate_frontier(f, list(test[scores]), list(test[CORRECT]), configurations=[f.table["K"].iloc[row]])
    lost = float(s.test[CORRECT, -1].mean() - t["accuracy"].iloc[0])
    return float(t["cost"].iloc[0] / costs[-1]), lost


def _random_routing(s: _Split, costs: np.ndarray, budget: float) -> tuple[float, float]:
    """Send each sample to one model drawn at random (no cascade): the cheapest mix of two models, on
    a grid of weights, whose cal accuracy is within budget; its expected test cost and accuracy lost."""
    acc_cal, acc_test = s.cal[CORRECT].mean(axis=1), s.test[CORRECT].mean(axis=1)
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


def _oracle(s: _Split, costs: np.ndarray, budget: float) -> tuple[float, float]:
    """Knowing every answer's correctness on test: each sample goes to the cheapest model that gets it
    right (the cheapest model when none does), then the largest savings are bought with the budget."""
    v = s.test[CORRECT] > 0.5
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


def _certified(s: _Split, costs: np.ndarray, levels: Sequence[tuple[float, float]], *, n_bins: int,
               seed: int) -> list[dict[str, Any]]:
    """:func:`calcas.select_cascade` on the split's cal (fit rows as given) at each (max_drop, delta) of
    ``levels``, and its choice measured on test: stages called, cost share, accuracy, accuracy lost.

    The frontier and the certifying rows' losses do not depend on the level, so they are fitted once
    and each level only re-runs the test (``CascadeSelector._choose``): the same choice as one
    ``select_cascade`` per level (tested)."""
    (d0, delta0) = levels[0]
    sel = select_cascade(list(s.cal[CALIBRATED]), list(s.cal[CORRECT]), costs, max_drop=d0, delta=delta0,
                         n_bins=n_bins, seed=seed, fit_rows=s.fit)
    chosen = []
    for i, (d, delta) in enumerate(levels):
        if i:
            sel._choose(d, delta)
        chosen.append((tuple(sel.config_), sel.stages_))
    configurations = sorted({k for k, _ in chosen})
    t = evaluate_frontier(sel.frontier_, list(s.test[CALIBRATED]), list(s.test[CORRECT]),
                          configurations=configurations).set_index("K")
    return [{"max_drop": d, "delta": delta, "stages": stages, "cost_share": float(t.at[k, "cost"] / costs[-1]),
             "accuracy": float(t.at[k, "accuracy"]), "lost": float(t.at[k, "accuracy_lost"])}
            for (d, delta), (k, stages) in zip(levels, chosen)]


def _chain_study(sets: Sequence[Records], names: list[str], costs: np.ndarray, cost_source: str, *,
                 max_drops: Sequence[float], delta: float, budget: float, n_splits: int, n_bins: int,
                 cal_fraction: float, fit_fraction: float, calibration: str, seed: int) -> dict[str, Any]:
    m = len(sets)
    every, first_last = list(range(m)), [0, m - 1]
    runs: dict[str, list] = {f"{d:g}": [] for d in max_drops}
    chosen: dict[str, dict[str, int]] = {f"{d:g}": {} for d in max_drops}
    methods: dict[str, list] = {k: [] for k in METHOD_NAMES}
    # the certified baseline is select_cascade at max_drop = budget, tested here when max_drops lacks it
    extra = [] if any(np.isclose(d, budget) for d in max_drops) else [budget]
    levels = [(d, delta) for d in [*max_drops, *extra]]
    book: dict[str, Any] = {}
    for r in range(n_splits):
        s = _split(sets, seed + r, cal_fraction, fit_fraction, calibration)
        if r == 0:  # the first re-split in detail: frontiers and the slider grid
            book = _book_split(s, costs, seed=seed, n_bins=n_bins)
        certified = _certified(s, costs, levels, n_bins=n_bins, seed=seed + r)
        for d, c in zip(max_drops, certified):
            runs[f"{d:g}"].append((c["lost"], c["cost_share"]))
            chosen[f"{d:g}"][c["stages"]] = chosen[f"{d:g}"].get(c["stages"], 0) + 1
        at_budget = next(c for (d, _), c in zip(levels, certified) if np.isclose(d, budget))
        methods["certified"].append((at_budget["cost_share"], at_budget["lost"]))
        methods["calibrated"].append(_frontier_choice(s, CALIBRATED, costs, every, "advantage", n_bins, budget))
        methods["uncalibrated"].append(_frontier_choice(s, RAW, costs, every, "advantage", n_bins, budget))
        methods["thresholds"].append(_frontier_choice(s, CALIBRATED, costs, every, "confidence", n_bins, budget))
        methods["single threshold"].append(_frontier_choice(s, CALIBRATED, costs, first_last, "confidence",
                                                            n_bins, budget))
        methods["random"].append(_random_routing(s, costs, budget))
        methods["oracle"].append(_oracle(s, costs, budget))
    guarantee = {}
    for d, values in runs.items():
        a = np.array(values)
        violations = int(np.sum(a[:, 0] > float(d) + 1e-12))
        low, high = proportion_interval(violations, len(a))
        guarantee[d] = {"max_drop": float(d), "violation_rate": [violations / len(a), low, high],
                        "cost_saved_mean": float(1 - a[:, 1].mean()),
                        "cost_saved_quantiles": [float(1 - q) for q in np.quantile(a[:, 1], [0.975, 0.5, 0.025])],
                        "lost_mean": float(a[:, 0].mean()), "lost_quantiles": np.quantile(a[:, 0], [0.025, 0.5, 0.975]).tolist(),
                        "last_alone_share": chosen[d].get(str(m - 1), 0) / len(a), "chosen_stages": chosen[d],
                        "called_share": [sum(k for st, k in chosen[d].items() if str(j) in st.split("+")) / len(a)
                                         for j in range(m)]}
    baselines = {}
    for k, values in methods.items():
        if not values:
            continue
        a = np.array(values)
        over = int(np.sum(a[:, 1] > budget + 1e-12))
        baselines[k] = {"cost_share_mean": float(a[:, 0].mean()),
                        "cost_share_quantiles": np.quantile(a[:, 0], [0.025, 0.975]).tolist(),
                        "lost_mean": float(a[:, 1].mean()), "over_budget": [over / len(a), *proportion_interval(over, len(a))]}
    n_cal = int(round(cal_fraction * sets[0].n))
    return {"models": names, "costs": costs.tolist(), "cost_source": cost_source, "n": sets[0].n, "n_cal": n_cal,
            "n_fit": int(round(fit_fraction * n_cal)), "n_certify": n_cal - int(round(fit_fraction * n_cal)),
            "n_test": sets[0].n - n_cal, "guarantee": guarantee, "baselines": baselines, **book}


def _book_split(s: _Split, costs: np.ndarray, *, seed: int, n_bins: int) -> dict[str, Any]:
    """The first re-split in detail: frontiers on test (the whole chain and every two-model sub-chain
    ending in the last model), each model alone, and the selection over a grid of max_drop x delta."""
    m = len(costs)
    acc_test = s.test[CORRECT].mean(axis=1)
    singles = [{"model": j, "cost_share": float(costs[j] / costs[-1]), "accuracy": float(acc_test[j])}
               for j in range(m)]
    frontiers = {}
    for stages in [list(range(m))] + ([[j, m - 1] for j in range(m - 1)] if m > 2 else []):
        cal, test = s.cal[:, stages], s.test[:, stages]
        f = cascade_frontier(list(cal[CALIBRATED]), list(cal[CORRECT]), costs[stages], n_bins=n_bins)
        t = evaluate_frontier(f, list(test[CALIBRATED]), list(test[CORRECT]))
        frontiers["+".join(map(str, stages))] = {"cost_share": (t["cost"] / costs[-1]).tolist(),
                                                 "accuracy": t["accuracy"].tolist(),
                                                 "cal_cost_share": f.table["cost_share"].tolist(),
                                                 "cal_accuracy": f.table["accuracy"].tolist()}
    grid = _certified(s, costs, [(d, delta) for d in SLIDER_DROPS for delta in SLIDER_DELTAS], n_bins=n_bins, seed=seed)
    return {"singles": singles, "frontiers": frontiers, "selection_grid": grid}


@dataclasses.dataclass
class ChainReport:
    """What the chain chapter shows: per chain, the guarantee over re-splits, the baselines at the
    accuracy budget, and the first re-split's frontiers and selection grid."""

    parameters: dict[str, Any]
    chains: dict[str, dict[str, Any]]
    exercises: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The section's ``results.json``."""
        return {"section": "10_chains", "parameters": self.parameters, "chains": self.chains,
                "order": list(self.chains), "expectation": EXPECTATION, "shown": {"exercises": self.exercises}}

    def guarantee_table(self) -> pd.DataFrame:
        """Per chain and max_drop: the share of re-splits whose test accuracy lost exceeded max_drop
        (95% Wilson interval), cost saved against the last model (mean, and the 2.5-97.5% range over
        re-splits), mean accuracy lost, and how often nothing cheaper than the last model was certified."""
        rows = []
        for name, c in self.chains.items():
            for g in c["guarantee"].values():
                v, q = g["violation_rate"], g["cost_saved_quantiles"]
                rows.append({"chain": name, "level": f"max_drop = {g['max_drop']:g}",
                             "violations [95%]": f"{v[0]:.1%} [{100 * v[1]:.1f}, {100 * v[2]:.1f}]",
                             "cost saved (2.5–97.5%)": f"{_percent(g['cost_saved_mean'])} ({_percent(q[0])} to "
                                                       f"{_percent(q[2])})",
                             "accuracy lost": f"{g['lost_mean'] + 0:+.3f}".replace("-0.000", "+0.000"),
                             "last model alone": _percent(g["last_alone_share"])})
        return pd.DataFrame(rows).set_index(["chain", "level"])

    def baseline_table(self) -> pd.DataFrame:
        """One row per method, one column per chain: the mean test cost, as a share of the last model's,
        of the configuration each method chose on cal within the accuracy budget, and (in brackets) the
        share of re-splits in which it lost more than the budget on test."""
        table = {}
        for name, c in self.chains.items():
            table[name] = {SHORT_NAMES[k]: f"{b['cost_share_mean']:.3f} ({_percent(b['over_budget'][0])})"
                           for k, b in c["baselines"].items()}
        return pd.DataFrame(table).reindex([SHORT_NAMES[k] for k in METHOD_NAMES])


def _percent(x: float) -> str:
    return f"{round(100 * x)}%"  # never "-0%"


METHOD_NAMES = {
    "certified": "certified (select_cascade at max_drop = budget)",
    "calibrated": "calibrated advantage, chosen on cal (no guarantee)",
    "uncalibrated": "uncalibrated advantage, chosen on cal",
    "thresholds": "per-stage thresholds (FrugalGPT-style)",
    "single threshold": "one threshold on the first model (RouteLLM-style)",
    "random": "random routing (no cascade)",
    "oracle": "oracle (knows test correctness)",
}


#: The tables' names of the methods (the chapter defines each).
SHORT_NAMES = {"certified": "certified", "calibrated": "calibrated advantage", "uncalibrated": "uncalibrated advantage",
               "thresholds": "per-stage thresholds", "single threshold": "one threshold on the first model",
               "random": "random routing", "oracle": "oracle"}


def chain_report(chains: Mapping[str, Sequence[Any]], *, costs: Mapping[str, Sequence[float]] | None = None,
                 max_drops: Sequence[float] = (0.01, 0.02, 0.03), delta: float = 0.1, budget: float = 0.01,
                 n_splits: int = 500, n_bins: int = 10, cal_fraction: float = 0.5, fit_fraction: float = 0.3,
                 calibration: str = "auto", seed: int = 0) -> ChainReport:
    """The chain chapter: :func:`calcas.select_cascade` over ``n_splits`` random re-splits per chain,
    and the baselines at the accuracy ``budget``.

    Parameters
    ----------
    chains : mapping name -> list of M >= 2 paths or Records, in chain order
        Rows are aligned by id (rows missing from one set are dropped, with a warning).
    costs : mapping name -> list of M floats, optional
        Cost per call of each model; a chain without an entry takes its costs from the manifests
        (:func:`calcas.costs_from_records`), and the results say which.
    max_drops, delta
        The guarantees tested: accuracy lost at most max_drop with probability >= 1 - delta.
    budget : float
        The accuracy budget of the baseline table (each method's cal choice within it).
    n_splits : int
        Random cal/test re-splits (seeds ``seed .. seed + n_splits - 1``).
    n_bins, cal_fraction, fit_fraction, calibration, seed
        Bins per stage; cal's share of the rows; the share of cal that fits the calibrators, bins and
        frontier (the rest certifies); the calibration method; the first seed.
    """
    for d in max_drops:
        check_max_drop(d)
    check_delta(delta)
    check_max_drop(budget)
    out, every_set = {}, []
    for name, paths in chains.items():
        if len(paths) < 2:
            raise ValueError(f"chains: {name!r} needs at least two record sets, got {len(paths)}")
        sets, names = _load(paths)
        sets = list(align(*sets))
        check_aligned(sets)
        every_set += sets
        chain_costs, source = _checked_costs((costs or {}).get(name) or None, len(sets), sets)
        out[name] = _chain_study(sets, names, chain_costs, source, max_drops=max_drops, delta=delta, budget=budget,
                                 n_splits=n_splits, n_bins=n_bins, cal_fraction=cal_fraction,
                                 fit_fraction=fit_fraction, calibration=calibration, seed=seed)
    params = {"chains": {k: [str(p) for p in v] for k, v in chains.items()}, "costs": dict(costs or {}),
              "max_drops": list(max_drops), "delta": delta, "budget": budget, "n_splits": n_splits, "n_bins": n_bins,
              "cal_fraction": cal_fraction, "fit_fraction": fit_fraction, "calibration": calibration, "seed": seed}
    return ChainReport(params, out, exercises_shown(every_set))
