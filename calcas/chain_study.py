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

SLIDER_DROPS = tuple(round(0.005 * i, 3) for i in range(11))
SLIDER_DELTAS = (0.01, 0.05, 0.1, 0.2, 0.3)


@dataclasses.dataclass
class _Split:
    """One re-split: calibrated (and raw) confidences of every model, the rows of each part."""
    calibrated: np.ndarray  # (M, n)
    raw: np.ndarray         # (M, n)
    correct: np.ndarray     # (M, n)
    cal: np.ndarray         # row indices
    fit: np.ndarray         # positions within cal
    test: np.ndarray        # row indices


def _split(sets: Sequence[Records], seed: int, cal_fraction: float, fit_fraction: float, calibration: str) -> _Split:
    n = sets[0].n
    rows = np.random.default_rng(seed).permutation(n)
    n_cal = int(round(cal_fraction * n))
    cal, test = rows[:n_cal], rows[n_cal:]
    fit = np.arange(int(round(fit_fraction * n_cal)))
    mask = np.zeros(n, dtype=bool)
    mask[cal[fit]] = True
    fitted = [calibrate_records(r, mask, method=calibration) for r in sets]
    return _Split(np.stack([f.calibrated for f in fitted]), np.stack([f.raw for f in fitted]),
                  np.stack([r.verified for r in sets]), cal, fit, test)


def _on(conf: np.ndarray, rows: np.ndarray, stages: Sequence[int] | None = None) -> list[np.ndarray]:
    picked = conf[:, rows] if stages is None else conf[list(stages)][:, rows]
    return list(picked)


def _cheapest_within(frontier_table: pd.DataFrame, budget: float) -> int:
    """Row of the cheapest cal configuration whose cal accuracy lost is within ``budget``."""
    ok = np.flatnonzero(frontier_table["accuracy_lost"].to_numpy() <= budget + 1e-12)
    return int(ok[0])


def _frontier_choice(s: _Split, conf: np.ndarray, costs: np.ndarray, stages: Sequence[int], order: str,
                     n_bins: int, budget: float) -> tuple[float, float]:
    """Test cost share and accuracy lost of the cheapest cal configuration within budget."""
    f = cascade_frontier(_on(conf, s.cal, stages), _on(s.correct, s.cal, stages), costs[list(stages)],
                         n_bins=n_bins, order=order)
    row = _cheapest_within(f.table, budget)
    t = evaluate_frontier(f, _on(conf, s.test, stages), _on(s.correct, s.test, stages),
                          configurations=[f.table["K"].iloc[row]])
    lost = float(s.correct[-1, s.test].mean() - t["accuracy"].iloc[0])
    return float(t["cost"].iloc[0] / costs[-1]), lost


def _random_routing(s: _Split, costs: np.ndarray, budget: float) -> tuple[float, float]:
    """Send each sample to one model drawn at random (no cascade): the cheapest mix of two models, on
    a grid of weights, whose cal accuracy is within budget; its expected test cost and accuracy lost."""
    acc_cal, acc_test = s.correct[:, s.cal].mean(axis=1), s.correct[:, s.test].mean(axis=1)
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
    v = s.correct[:, s.test] > 0.5
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


def _selected_on_test(sel: Any, s: _Split, costs: np.ndarray) -> tuple[float, float, float]:
    """Test cost share, accuracy and accuracy lost of a fitted selector's configuration."""
    t = evaluate_frontier(sel.frontier_, _on(s.calibrated, s.test), _on(s.correct, s.test),
                          configurations=[sel.config_])
    return float(t["cost"].iloc[0] / costs[-1]), float(t["accuracy"].iloc[0]), float(t["accuracy_lost"].iloc[0])


def _chain_study(sets: Sequence[Records], names: list[str], costs: np.ndarray, cost_source: str, *,
                 max_drops: Sequence[float], delta: float, budget: float, n_splits: int, n_bins: int,
                 cal_fraction: float, fit_fraction: float, calibration: str, seed: int) -> dict[str, Any]:
    m = len(sets)
    every, first_last = list(range(m)), [0, m - 1]
    runs: dict[str, list] = {f"{d:g}": [] for d in max_drops}
    chosen: dict[str, dict[str, int]] = {f"{d:g}": {} for d in max_drops}
    methods: dict[str, list] = {k: [] for k in ("certified", "calibrated", "uncalibrated", "thresholds",
                                                "single threshold", "random", "oracle")}
    for r in range(n_splits):
        s = _split(sets, seed + r, cal_fraction, fit_fraction, calibration)
        for d in max_drops:
            sel = select_cascade(_on(s.calibrated, s.cal), _on(s.correct, s.cal), costs, max_drop=d, delta=delta,
                                 n_bins=n_bins, seed=seed + r, fit_rows=s.fit)
            cost_share, _, lost = _selected_on_test(sel, s, costs)
            runs[f"{d:g}"].append((lost, cost_share))
            chosen[f"{d:g}"][sel.stages_] = chosen[f"{d:g}"].get(sel.stages_, 0) + 1
            if np.isclose(d, budget):
                methods["certified"].append(runs[f"{d:g}"][-1][::-1])
        methods["calibrated"].append(_frontier_choice(s, s.calibrated, costs, every, "advantage", n_bins, budget))
        methods["uncalibrated"].append(_frontier_choice(s, s.raw, costs, every, "advantage", n_bins, budget))
        methods["thresholds"].append(_frontier_choice(s, s.calibrated, costs, every, "confidence", n_bins, budget))
        methods["single threshold"].append(_frontier_choice(s, s.calibrated, costs, first_last, "confidence",
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
                        "last_alone_share": chosen[d].get(str(m - 1), 0) / len(a), "chosen_stages": chosen[d]}
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
            "n_test": sets[0].n - n_cal, "guarantee": guarantee, "baselines": baselines,
            **_book_split(sets, costs, seed=seed, n_bins=n_bins, cal_fraction=cal_fraction, fit_fraction=fit_fraction,
                          calibration=calibration)}


def _book_split(sets: Sequence[Records], costs: np.ndarray, *, seed: int, n_bins: int, cal_fraction: float,
                fit_fraction: float, calibration: str) -> dict[str, Any]:
    """The first re-split in detail: frontiers on test (the whole chain and every two-model sub-chain
    ending in the last model), each model alone, and the selection over a grid of max_drop x delta."""
    s = _split(sets, seed, cal_fraction, fit_fraction, calibration)
    m = len(sets)
    acc_test = s.correct[:, s.test].mean(axis=1)
    singles = [{"model": j, "cost_share": float(costs[j] / costs[-1]), "accuracy": float(acc_test[j])}
               for j in range(m)]
    frontiers = {}
    for stages in [list(range(m))] + ([[j, m - 1] for j in range(m - 1)] if m > 2 else []):
        f = cascade_frontier(_on(s.calibrated, s.cal, stages), _on(s.correct, s.cal, stages), costs[stages],
                             n_bins=n_bins)
        t = evaluate_frontier(f, _on(s.calibrated, s.test, stages), _on(s.correct, s.test, stages))
        frontiers["+".join(map(str, stages))] = {"cost_share": (t["cost"] / costs[-1]).tolist(),
                                                 "accuracy": t["accuracy"].tolist(),
                                                 "cal_cost_share": f.table["cost_share"].tolist(),
                                                 "cal_accuracy": f.table["accuracy"].tolist()}
    grid = []
    for d in SLIDER_DROPS:
        for delta in SLIDER_DELTAS:
            sel = select_cascade(_on(s.calibrated, s.cal), _on(s.correct, s.cal), costs, max_drop=d, delta=delta,
                                 n_bins=n_bins, seed=seed, fit_rows=s.fit)
            cost_share, accuracy, lost = _selected_on_test(sel, s, costs)
            grid.append({"max_drop": d, "delta": delta, "stages": sel.stages_, "cost_share": cost_share,
                         "accuracy": accuracy, "lost": lost})
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
                "shown": {"exercises": self.exercises}}

    def guarantee_table(self) -> pd.DataFrame:
        """Per chain and max_drop: violation rate over re-splits (95% interval), cost saved, accuracy lost."""
        rows = []
        for name, c in self.chains.items():
            for g in c["guarantee"].values():
                v, q = g["violation_rate"], g["cost_saved_quantiles"]
                rows.append({"chain": name, "max_drop": g["max_drop"], "violations": v[0], "95% low": v[1],
                             "95% high": v[2], "cost saved (mean)": g["cost_saved_mean"],
                             "cost saved 2.5%": q[0], "cost saved 97.5%": q[2],
                             "accuracy lost (mean)": g["lost_mean"], "last model alone": g["last_alone_share"]})
        return pd.DataFrame(rows).set_index(["chain", "max_drop"])

    def baseline_table(self) -> pd.DataFrame:
        """Per chain and method: test cost (share of the last model's) of the configuration chosen on
        cal within the accuracy budget, the test accuracy lost, and how often it broke the budget."""
        rows = []
        for name, c in self.chains.items():
            for method, b in c["baselines"].items():
                rows.append({"chain": name, "method": METHOD_NAMES[method], "cost (mean)": b["cost_share_mean"],
                             "cost 2.5%": b["cost_share_quantiles"][0], "cost 97.5%": b["cost_share_quantiles"][1],
                             "accuracy lost (mean)": b["lost_mean"], "over budget on test": b["over_budget"][0]})
        return pd.DataFrame(rows).set_index(["chain", "method"])


METHOD_NAMES = {
    "certified": "certified (select_cascade at max_drop = budget)",
    "calibrated": "calibrated advantage, chosen on cal (no guarantee)",
    "uncalibrated": "uncalibrated advantage, chosen on cal",
    "thresholds": "per-stage thresholds (FrugalGPT-style)",
    "single threshold": "one threshold on the first model (RouteLLM-style)",
    "random": "random routing (no cascade)",
    "oracle": "oracle (knows test correctness)",
}


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
