"""Tests of calcas.certify (SPEC §3b): the threshold method of select_cascade against references
written here.

The reference is plain Python: the sub-chains enumerated by hand, each certifying row routed by a
loop for each lambda of the grid (highest first), the accuracy it loses against the last model and
its cost per row summed in loops, the public calcas.betting_p_values (tested in test_chain.py) per
lambda, fixed-sequence stopping at the first p > delta / S, and the cheapest rejected
configuration picked by a loop. Nothing below calls a certify kernel to check another.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import calcas
from calcas import betting_p_values, select_cascade, threshold_grid
from calcas.certify import ThresholdSelector, route_thresholds, sub_chains, zero_loss_p_value
from test_chain import chain_data, sigmoid  # the same synthetic chains

INF = math.inf


# ---------------------------------------------------------------------------- plain-Python reference


def ref_sub_chains(M):
    """Every non-empty subset of the early models 0..M-2 (fewest first, then in lexicographic
    order), followed by the last model."""
    subsets = []
    for mask in range(1, 2 ** (M - 1)):
        subsets.append(tuple(j for j in range(M - 1) if mask >> j & 1))
    subsets.sort(key=lambda s: (len(s), s))
    return [s + (M - 1,) for s in subsets]


def ref_certifying_rows(n, seed, fit_rows):
    left_out = set(int(i) for i in (fit_rows if fit_rows is not None else []))
    return [int(i) for i in np.random.default_rng(seed).permutation(n) if int(i) not in left_out]


def ref_route_row(conf_row, stages, lam):
    """Position within ``stages`` of the stage that answers one row."""
    for pos, j in enumerate(stages[:-1]):
        if conf_row[j] >= lam:
            return pos
    return len(stages) - 1


def ref_select(conf, correct, costs, *, max_drop, delta, grid, seed=0, fit_rows=None):
    """The threshold method in loops. ``grid`` is the thresholds, in any order (sorted here)."""
    M, n = len(costs), len(conf[0])
    grid = sorted(set(float(x) for x in grid), reverse=True)
    rows = ref_certifying_rows(n, seed, fit_rows)
    conf_rows = [[float(conf[j][i]) for j in range(M)] for i in rows]
    correct_rows = [[float(correct[j][i]) for j in range(M)] for i in rows]
    subs = ref_sub_chains(M)
    level = delta / len(subs)
    best = {"cost": float(costs[-1]), "sub": None, "lam": None}
    p_table, tested = [], []
    for sub in subs:
        paid = [math.fsum(float(costs[j]) for j in sub[:pos + 1]) for pos in range(len(sub))]
        p_row = [math.nan] * len(grid)
        for g, lam in enumerate(grid):
            difference, cost = [], []
            for c, v in zip(conf_rows, correct_rows):
                pos = ref_route_row(c, sub, lam)
                difference.append(v[M - 1] - v[sub[pos]])
                cost.append(paid[pos])
            p = betting_p_values(np.array(difference), max_drop)
            p_row[g] = p
            mean_cost = math.fsum(cost) / len(rows)
            rejected = p <= level
            tested.append({"stages": "+".join(map(str, sub)), "threshold": lam,
                           "cost_share": mean_cost / costs[-1], "accuracy_lost": math.fsum(difference) / len(rows),
                           "p_value": p, "rejected": rejected})
            if not rejected:
                break  # fixed sequence: the first failure ends this sub-chain's tests
            if mean_cost < best["cost"] - 1e-12:
                best = {"cost": mean_cost, "sub": sub, "lam": lam, "drop": math.fsum(difference) / len(rows)}
        p_table.append(p_row)
    out = {"p_values": np.array(p_table), "tested": tested, "n_certify": len(rows), "level": level}
    if best["sub"] is None:
        out.update(config=(INF,) * (M - 1), stages=str(M - 1), answering=str(M - 1), expected_cost=float(costs[-1]),
                   cost_share=1.0, threshold=None, bound=0.0, drop=0.0)
    else:
        sub, lam = best["sub"], best["lam"]
        early = sub[:-1]
        answering = str(early[0]) if lam <= 0 else "+".join(map(str, sub))  # lambda 0: the first answers all
        out.update(config=tuple(lam if j in early else INF for j in range(M - 1)), stages="+".join(map(str, sub)),
                   answering=answering, expected_cost=best["cost"], cost_share=best["cost"] / costs[-1],
                   threshold=lam, bound=max_drop, drop=best["drop"])
    return out


def same_p(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.array_equal(np.isnan(a), np.isnan(b)) \
        and np.allclose(np.nan_to_num(a, nan=-1), np.nan_to_num(b, nan=-1), rtol=1e-10, atol=1e-15)


def assert_matches(sel, ref, *, check_tested=True):
    assert sel.config_ == pytest.approx(ref["config"]) and len(sel.config_) == len(ref["config"])
    assert [math.isinf(t) for t in sel.config_] == [math.isinf(t) for t in ref["config"]]
    assert sel.stages_ == ref["stages"]
    assert sel.answering_ == ref["answering"]
    assert sel.expected_cost_ == pytest.approx(ref["expected_cost"], rel=1e-12)
    assert sel.cost_share_ == pytest.approx(ref["cost_share"], rel=1e-12)
    assert sel.threshold_ == (None if ref["threshold"] is None else pytest.approx(ref["threshold"], abs=0))
    assert sel.bound_ == ref["bound"]
    assert sel.drop_certify_ == pytest.approx(ref["drop"], abs=1e-12)
    assert sel.n_certify_ == ref["n_certify"]
    assert same_p(sel._chosen.p_values, ref["p_values"])
    assert np.array_equal(sel._chosen.rejected, np.nan_to_num(ref["p_values"], nan=2.0) <= ref["level"])
    if check_tested:
        t = sel.tested_
        assert len(t) == len(ref["tested"])
        for (_, row), r in zip(t.iterrows(), ref["tested"]):
            assert row["stages"] == r["stages"] and row["threshold"] == r["threshold"]
            assert row["rejected"] == r["rejected"]
            assert row["cost_share"] == pytest.approx(r["cost_share"], rel=1e-12)
            assert row["accuracy_lost"] == pytest.approx(r["accuracy_lost"], abs=1e-12)
            assert row["p_value"] == pytest.approx(r["p_value"], rel=1e-10, abs=1e-15)


# ---------------------------------------------------------------------------- 1. against the reference


GRID21 = [round(1 - k / 20, 2) for k in range(21)]  # 1.00, 0.95, ..., 0.00: exact decimals, as conf rounds to


@pytest.mark.parametrize("M,n,costs,max_drop,delta,seed,kind", [
    (2, 400, [1.0, 5.0], 0.05, 0.1, 0, "plain"),
    (2, 1000, [1.0, 2.0], 0.02, 0.2, 1, "ties"),
    (3, 800, [1.0, 3.0, 10.0], 0.05, 0.1, 2, "plain"),
    (3, 1200, [2.0, 1.0, 6.0], 0.03, 0.05, 3, "ties"),          # a dearer first model than the second
    (3, 1000, [1.0, 3.0, 10.0], 0.08, 0.3, 4, "fractional"),    # scores in [0, 1]
    (4, 1500, [1.0, 2.0, 4.0, 8.0], 0.04, 0.1, 5, "plain"),
    (4, 2000, [1.0, 1.5, 2.0, 3.0], 0.02, 0.1, 6, "ties"),      # cheap stages: little to save
    (4, 600, [0.5, 1.0, 7.0, 8.0], 0.1, 0.2, 7, "plain"),
])
@pytest.mark.parametrize("with_fit_rows", [False, True], ids=["all rows certify", "fit_rows"])
def test_threshold_method_matches_reference(M, n, costs, max_drop, delta, seed, kind, with_fit_rows):
    rng = np.random.default_rng(100 + seed)
    conf, correct = chain_data(rng, n, M, decimals=2 if kind == "ties" else None, fractional=kind == "fractional")
    fit_rows = np.sort(rng.choice(n, size=n // 3, replace=False)) if with_fit_rows else None
    grid = list(rng.permutation(GRID21)) + [0.5, 0.25]  # any order, duplicates: the grid sorts and dedups
    sel = select_cascade(conf, correct, costs, max_drop=max_drop, delta=delta, method="threshold", lambdas=grid,
                         seed=seed, fit_rows=fit_rows)
    ref = ref_select(conf, correct, costs, max_drop=max_drop, delta=delta, grid=grid, seed=seed, fit_rows=fit_rows)
    assert isinstance(sel, ThresholdSelector)
    assert_matches(sel, ref)
    assert sel.n_fit_ == (n // 3 if with_fit_rows else 0)
    assert sel.lambdas_.tolist() == sorted(set(GRID21), reverse=True)
    assert sel.sub_chains_ == ref_sub_chains(M)


def test_reference_cases_certify_something():
    """The parametrized cases above are not all 'last model alone' (they would test little)."""
    chosen = []
    for M, n, costs, max_drop, delta, seed in [(2, 400, [1.0, 5.0], 0.05, 0.1, 0),
                                               (3, 800, [1.0, 3.0, 10.0], 0.05, 0.1, 2),
                                               (4, 1500, [1.0, 2.0, 4.0, 8.0], 0.04, 0.1, 5)]:
        conf, correct = chain_data(np.random.default_rng(100 + seed), n, M)
        chosen.append(select_cascade(conf, correct, costs, max_drop=max_drop, delta=delta, lambdas=21,
                                     seed=seed).cost_share_)
    assert all(share < 1 for share in chosen)


def test_default_int_grid_matches_reference():
    rng = np.random.default_rng(11)
    conf, correct = chain_data(rng, 1000, 3)
    sel = select_cascade(conf, correct, [1.0, 3.0, 10.0], max_drop=0.05, delta=0.1, lambdas=21, seed=3)
    ref = ref_select(conf, correct, [1.0, 3.0, 10.0], max_drop=0.05, delta=0.1, grid=np.linspace(1.0, 0.0, 21),
                     seed=3)
    assert_matches(sel, ref)
    assert sel.cost_share_ < 1


def test_lambda_zero_answers_everything_at_the_first_stage():
    """An early model as good as the last: lambda reaches 0 and the cheapest configuration is
    model 0 alone (answering "0"), at its own cost."""
    rng = np.random.default_rng(12)
    n = 1500
    conf0 = rng.random(n)
    correct_last = (rng.random(n) < 0.9).astype(float)
    conf = [conf0, rng.random(n), rng.random(n)]
    correct = [correct_last, correct_last, correct_last]  # no model ever loses against the last
    sel = select_cascade(conf, correct, [1.0, 2.0, 10.0], max_drop=0.01, delta=0.1, lambdas=GRID21)
    ref = ref_select(conf, correct, [1.0, 2.0, 10.0], max_drop=0.01, delta=0.1, grid=GRID21)
    assert_matches(sel, ref)
    assert sel.config_ == (0.0, INF) and sel.stages_ == "0+2" and sel.answering_ == "0"
    assert sel.expected_cost_ == 1.0 and sel.threshold_ == 0.0
    assert (sel.route(conf) == 0).all()


def test_nothing_certified_gives_the_last_model_alone():
    """Early models always wrong: nothing cheaper than the last model is certified."""
    rng = np.random.default_rng(13)
    n = 800
    conf = [np.ones(n), rng.random(n), rng.random(n)]  # model 0 claims 1.0 and is always wrong
    correct = [np.zeros(n), np.zeros(n), np.ones(n)]
    sel = select_cascade(conf, correct, [1.0, 2.0, 10.0], max_drop=0.05, delta=0.1, lambdas=GRID21)
    ref = ref_select(conf, correct, [1.0, 2.0, 10.0], max_drop=0.05, delta=0.1, grid=GRID21)
    assert_matches(sel, ref)
    assert sel.config_ == (INF, INF) and sel.stages_ == "2" and sel.answering_ == "2"
    assert sel.cost_share_ == 1.0 and sel.expected_cost_ == 10.0 and sel.threshold_ is None
    assert sel.bound_ == 0.0 and sel.drop_certify_ == 0.0
    assert (sel.route(conf) == 2).all()


def test_seed_orders_the_certifying_rows():
    rng = np.random.default_rng(14)
    conf, correct = chain_data(rng, 600, 3)
    for seed in (0, 7):
        sel = select_cascade(conf, correct, [1, 3, 10], max_drop=0.05, delta=0.1, lambdas=GRID21, seed=seed)
        assert_matches(sel, ref_select(conf, correct, [1, 3, 10], max_drop=0.05, delta=0.1, grid=GRID21, seed=seed))


# ---------------------------------------------------------------------------- 2. choose at other levels


def snapshot(sel):
    return (sel.config_, sel.stages_, sel.answering_, sel.expected_cost_, sel.cost_share_, sel.bound_,
            sel.drop_certify_, sel.threshold_, sel._chosen.p_values.copy(), sel._chosen.rejected.copy(),
            sel.tested_.copy())


def same_selection(a, b):
    return (a.config == b.config and a.stages == b.stages and a.answering == b.answering
            and a.expected_cost == b.expected_cost and a.cost_share == b.cost_share and a.bound == b.bound
            and a.drop_certify == b.drop_certify and a.max_drop == b.max_drop and a.delta == b.delta
            and same_p(a.p_values, b.p_values) and np.array_equal(a.rejected, b.rejected))


@pytest.mark.parametrize("M", [3, 4])
def test_choose_equals_a_fresh_fit_and_leaves_the_fit_alone(M):
    rng = np.random.default_rng(20 + M)
    conf, correct = chain_data(rng, 1500, M)
    costs = [float(2 ** j) for j in range(M)]
    fit_rows = np.arange(0, 1500, 4)
    sel = select_cascade(conf, correct, costs, max_drop=0.03, delta=0.05, lambdas=GRID21, seed=2, fit_rows=fit_rows)
    before = snapshot(sel)
    # smaller and larger levels, in an order that needs blocks already cached and blocks not yet routed
    levels = [(0.03, 0.5), (0.01, 0.05), (0.1, 0.1), (0.03, 0.01), (0.1, 0.9), (0.05, 0.2), (0.03, 0.05)]
    for max_drop, delta in levels:
        got = sel.choose(max_drop=max_drop, delta=delta)
        fresh = ThresholdSelector(max_drop=max_drop, delta=delta, lambdas=GRID21, seed=2)
        try:
            fresh.fit(conf, correct, costs, fit_rows=fit_rows)
        except ValueError:  # delta too small to certify anything: choose says the last model alone
            assert got.stages == str(M - 1) and got.cost_share == 1.0
            continue
        assert same_selection(got, fresh._chosen), (max_drop, delta)
        ref = ref_select(conf, correct, costs, max_drop=max_drop, delta=delta, grid=GRID21, seed=2,
                         fit_rows=fit_rows)
        assert got.stages == ref["stages"] and got.expected_cost == pytest.approx(ref["expected_cost"], rel=1e-12)
        assert same_p(got.p_values, ref["p_values"])
    after = snapshot(sel)
    for a, b in zip(before[:8], after[:8]):
        assert a == b
    assert same_p(before[8], after[8]) and np.array_equal(before[9], after[9])
    assert before[10].equals(after[10])
    assert sel.max_drop == 0.03 and sel.delta == 0.05


def test_choose_before_fit_and_bad_levels():
    with pytest.raises(RuntimeError, match="not fitted"):
        ThresholdSelector(max_drop=0.05, delta=0.1).choose(max_drop=0.05, delta=0.1)
    conf, correct = chain_data(np.random.default_rng(3), 600, 3)
    sel = select_cascade(conf, correct, [1, 3, 10], max_drop=0.05, delta=0.1, lambdas=GRID21)
    with pytest.raises(ValueError, match="max_drop"):
        sel.choose(max_drop=1.0, delta=0.1)
    with pytest.raises(ValueError, match="delta"):
        sel.choose(max_drop=0.05, delta=0.0)


# ---------------------------------------------------------------------------- 3. routing


def hand_route(conf, thresholds):
    M, n = len(conf), len(conf[0])
    out = []
    for i in range(n):
        stage = M - 1
        for j, t in enumerate(thresholds):
            if t != INF and conf[j][i] >= t:
                stage = j
                break
        out.append(stage)
    return out


def test_route_equals_a_hand_loop():
    rng = np.random.default_rng(30)
    conf, correct = chain_data(rng, 1500, 4, decimals=2)
    sel = select_cascade(conf, correct, [1, 2, 4, 8], max_drop=0.05, delta=0.1, lambdas=GRID21)
    assert any(math.isfinite(t) for t in sel.config_)
    new = [np.round(rng.random(500), 2) for _ in range(4)]
    assert sel.route(new).tolist() == hand_route(new, sel.config_)
    assert sel.route(np.array(new)).tolist() == hand_route(new, sel.config_)  # an (M, n) array works too
    with pytest.raises(ValueError, match="conf: expected 4 models"):
        sel.route(new[:3])
    with pytest.raises(RuntimeError, match="not fitted"):
        ThresholdSelector(max_drop=0.05, delta=0.1).route(new)


@pytest.mark.parametrize("thresholds", [
    (INF, 0.5, INF), (0.3, INF, 0.7), (INF, INF, INF), (0.0, 0.5, 0.5), (INF, INF, 1.0), (0.6, 0.6, 0.6),
])
def test_route_thresholds_with_inf_stages(thresholds):
    rng = np.random.default_rng(31)
    conf = np.round(rng.random((4, 300)), 1)  # ties with the thresholds: >= answers
    assert route_thresholds(conf, thresholds).tolist() == hand_route(conf, thresholds)


def test_route_thresholds_small_case():
    conf = np.array([[0.9, 0.2, 0.5, 0.1],
                     [0.1, 0.8, 0.2, 0.3],
                     [0.0, 0.0, 0.0, 0.0]])
    assert route_thresholds(conf, (0.5, 0.8)).tolist() == [0, 1, 0, 2]
    assert route_thresholds(conf, (INF, 0.3)).tolist() == [2, 1, 2, 1]
    assert route_thresholds(conf, (INF, INF)).tolist() == [2, 2, 2, 2]


# ---------------------------------------------------------------------------- 4. grid and sub-chains


def test_sub_chains():
    assert sub_chains(2) == [(0, 1)]
    assert sub_chains(3) == [(0, 2), (1, 2), (0, 1, 2)]
    assert len(sub_chains(5)) == 15
    for M in range(2, 7):
        assert sub_chains(M) == ref_sub_chains(M)
        assert len(sub_chains(M)) == 2 ** (M - 1) - 1 == len(set(sub_chains(M)))


def test_threshold_grid_default():
    grid = threshold_grid()
    assert len(grid) == 101 and grid[0] == 1.0 and grid[-1] == 0.0
    assert np.allclose(grid, [1 - k / 100 for k in range(101)], rtol=0, atol=1e-12)
    assert (np.diff(grid) < 0).all()
    assert threshold_grid(2).tolist() == [1.0, 0.0]
    assert np.allclose(threshold_grid(np.int64(5)), [1, 0.75, 0.5, 0.25, 0])


@pytest.mark.parametrize("values", [[0.2, 0.9, 0.5], [0.5, 0.5, 0.1, 1.0, 0.0, 0.1], [0.3], (0.7, 0.2),
                                    np.array([0.25, 0.75, 0.25])])
def test_threshold_grid_given_values(values):
    grid = threshold_grid(values)
    assert grid.tolist() == sorted(set(float(v) for v in values), reverse=True)


@pytest.mark.parametrize("lambdas,match", [
    ([], "empty"), (np.array([]), "empty"), ([0.5, 1.2], "outside"), ([-0.1, 0.5], "outside"),
    ([0.5, float("nan")], "outside"), (1, "at least 2"), (0, "at least 2"), (-3, "at least 2"),
    (True, "lambdas"), (["a", "b"], "lambdas"), (1.5, "outside"),
])
def test_threshold_grid_bad(lambdas, match):
    with pytest.raises(ValueError, match=match):
        threshold_grid(lambdas)


# ---------------------------------------------------------------------------- 5. the guarantee


def population(rng, n):
    """Three calibrated models (correct ~ Bernoulli(conf), independent given the confidences)."""
    z = rng.normal(size=n)
    return [sigmoid(a + 1.4 * z + rng.normal(scale=0.7, size=n)) for a in (1.1, 1.4, 1.8)]


def answered_by(conf, config):
    """The stage answering each row under per-stage thresholds, routed here with numpy: the first
    early stage j with conf[j] >= config[j] (inf: never), else the last."""
    conf = np.asarray(conf)
    stage = np.full(conf.shape[1], len(conf) - 1)
    for j in range(len(config) - 1, -1, -1):
        if config[j] != INF:
            stage[conf[j] >= config[j]] = j
    return stage


def true_drop(truth, config):
    """Expected accuracy lost against the last model: expected correctness = confidence, so the
    drop is the mean confidence lost."""
    truth = np.asarray(truth)
    stage = answered_by(truth, config)
    return float(np.mean(truth[-1] - truth[stage, np.arange(truth.shape[1])]))


def plug_in(conf, correct, costs, max_drop, grid):
    """For contrast: the cheapest (sub-chain, lambda) of the whole grid whose drop on the rows is at
    most max_drop, with no test."""
    conf, correct, rows = np.asarray(conf), np.asarray(correct), np.arange(len(conf[0]))
    best, chosen = costs[-1], (INF,) * (len(costs) - 1)
    for sub in ref_sub_chains(len(costs)):
        for lam in grid:
            config = tuple(lam if j in sub else INF for j in range(len(costs) - 1))
            stage = answered_by(conf, config)
            paid = np.array([sum(costs[k] for k in sub if k <= j) for j in range(len(costs))])
            cost = paid[stage].mean()
            if np.mean(correct[-1] - correct[stage, rows]) <= max_drop and cost < best:
                best, chosen = cost, config
    return chosen


def test_threshold_guarantee_over_seeds():
    max_drop, delta, runs = 0.02, 0.1, 200
    # the population: confidences drawn once, large; expected correctness = confidence, so the true
    # drop of a configuration is its mean confidence lost, with no Bernoulli noise
    truth = population(np.random.default_rng(10_000), 400_000)
    failures, cheaper, plug_in_failures = 0, 0, 0
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        conf = population(rng, 2000)
        correct = [(rng.random(len(c)) < c).astype(float) for c in conf]
        sel = select_cascade(conf, correct, [1, 3, 10], max_drop=max_drop, delta=delta, seed=seed)
        if seed < 40:
            plug_in_failures += true_drop(truth, plug_in(conf, correct, [1, 3, 10], max_drop, sel.lambdas_)) > max_drop
        if sel.stages_ == "2":
            continue
        cheaper += 1
        failures += true_drop(truth, sel.config_) > max_drop
    # the guarantee is not met by never leaving the last model (it leaves it in every run); the
    # plug-in choice without a test fails in most runs: the population does expose a failure
    assert cheaper > runs / 2
    assert plug_in_failures > 40 / 4
    assert failures / runs <= delta + 3 * math.sqrt(delta * (1 - delta) / runs)


def test_true_drop_reference():
    truth = [np.array([0.9, 0.2, 0.6]), np.array([0.5, 0.5, 0.5]), np.array([1.0, 0.8, 0.7])]
    assert true_drop(truth, (0.6, INF)) == pytest.approx(((1.0 - 0.9) + 0 + (0.7 - 0.6)) / 3)
    assert true_drop(truth, (INF, 0.5)) == pytest.approx(((1.0 - 0.5) + (0.8 - 0.5) + (0.7 - 0.5)) / 3)
    assert true_drop(truth, (INF, INF)) == 0.0


# ---------------------------------------------------------------------------- 6. bad input


def small_chain(M=3, n=600, seed=0):
    return chain_data(np.random.default_rng(seed), n, M)


@pytest.mark.parametrize("lambdas,match", [
    ([], "lambdas: the grid is empty"), ([0.5, 1.2], r"lambdas: .*in \[0, 1\].*1\.2"),
    ([-0.1, 0.5], r"lambdas: .*in \[0, 1\].*-0\.1"), ([float("nan")], r"lambdas: .*in \[0, 1\].*nan"),
    (1, "lambdas: .*at least 2 points, got 1"),
])
def test_bad_lambdas(lambdas, match):
    conf, correct = small_chain()
    with pytest.raises(ValueError, match=match):
        select_cascade(conf, correct, [1, 2, 4], max_drop=0.05, delta=0.1, method="threshold", lambdas=lambdas)


def test_bad_method():
    conf, correct = small_chain()
    with pytest.raises(ValueError, match=r"method: expected one of \('threshold', 'frontier'\), got 'bogus'"):
        select_cascade(conf, correct, [1, 2, 4], max_drop=0.05, delta=0.1, method="bogus")


def test_fit_rows_covering_every_row():
    conf, correct = small_chain(n=600)
    with pytest.raises(ValueError, match="fit_rows: all 600 cal rows .*none is left to certify"):
        select_cascade(conf, correct, [1, 2, 4], max_drop=0.05, delta=0.1, fit_rows=np.arange(600))
    with pytest.raises(ValueError, match="fit_rows: all 600"):  # duplicates and any order
        select_cascade(conf, correct, [1, 2, 4], max_drop=0.05, delta=0.1,
                       fit_rows=np.concatenate((np.arange(600)[::-1], [0, 1])))


@pytest.mark.parametrize("fit_rows", [[600], [-1], np.ones(600, dtype=bool), [0.5, 1.0], [[0, 1]]],
                         ids=["past the end", "negative", "bool mask", "floats", "2-D"])
def test_bad_fit_rows(fit_rows):
    conf, correct = small_chain(n=600)
    with pytest.raises(ValueError, match="fit_rows: expected indices into the 600 cal rows"):
        select_cascade(conf, correct, [1, 2, 4], max_drop=0.05, delta=0.1, fit_rows=fit_rows)


def smallest_delta(n_certify, max_drop, S):
    """The smallest delta on a 0.001 grid at which a configuration losing nothing on every row gets
    p <= delta / S, searched by a loop (None if no delta below 1 does)."""
    p0 = betting_p_values(np.zeros(n_certify), max_drop)
    for k in range(1, 1000):
        if p0 <= (k / 1000) / S:
            return k / 1000
    return None


def test_delta_too_small_for_the_sub_chains_says_which_delta_would_do():
    conf, correct = small_chain(M=3, n=400)
    fit_rows = np.arange(100)  # 300 certifying rows
    with pytest.raises(ValueError, match="sub-chains") as err:
        select_cascade(conf, correct, [1, 2, 4], max_drop=0.01, delta=0.01, fit_rows=fit_rows)
    message = str(err.value)
    assert message.startswith("delta:") and "3 sub-chains" in message and "300 certifying rows" in message
    assert "delta >= " in message
    advised = float(message.split("delta >= ", 1)[1].split()[0])
    expected = smallest_delta(300, 0.01, 3)
    assert expected is not None and advised == expected
    sel = select_cascade(conf, correct, [1, 2, 4], max_drop=0.01, delta=advised, fit_rows=fit_rows)
    assert sel.n_certify_ == 300
    with pytest.raises(ValueError, match="sub-chains"):
        select_cascade(conf, correct, [1, 2, 4], max_drop=0.01, delta=round(advised - 0.001, 3), fit_rows=fit_rows)


@pytest.mark.parametrize("n_certify,max_drop,M", [(300, 0.01, 3), (200, 0.02, 4), (500, 0.005, 2), (150, 0.05, 5)])
def test_advised_delta_is_the_smallest_that_fits(n_certify, max_drop, M):
    conf, correct = small_chain(M=M, n=n_certify)
    costs = [float(2 ** j) for j in range(M)]
    expected = smallest_delta(n_certify, max_drop, 2 ** (M - 1) - 1)
    assert expected is not None and expected > 0.001
    with pytest.raises(ValueError, match=f"{2 ** (M - 1) - 1} sub-chains") as err:
        select_cascade(conf, correct, costs, max_drop=max_drop, delta=0.001)
    advised = float(str(err.value).split("delta >= ", 1)[1].split()[0])
    assert advised == expected
    select_cascade(conf, correct, costs, max_drop=max_drop, delta=advised)  # does not raise
    with pytest.raises(ValueError, match="sub-chains"):
        select_cascade(conf, correct, costs, max_drop=max_drop, delta=round(advised - 0.001, 3))


@pytest.mark.parametrize("n,max_drop,M", [(30, 0.01, 5), (120, 0.03, 5), (2000, 0.0, 3)])
def test_no_delta_would_do_gives_the_last_model_alone(n, max_drop, M):
    """Where no delta below 1 could certify anything (few rows, or max_drop = 0), the selection is
    the last model alone, without an error."""
    assert smallest_delta(n, max_drop, 2 ** (M - 1) - 1) is None
    conf, correct = small_chain(M=M, n=n)
    sel = select_cascade(conf, correct, [float(2 ** j) for j in range(M)], max_drop=max_drop, delta=0.5)
    assert sel.stages_ == str(M - 1) and sel.cost_share_ == 1.0 and sel.config_ == (INF,) * (M - 1)
    assert sel.threshold_ is None and sel.bound_ == 0.0


@pytest.mark.parametrize("case,match", [
    ("max_drop 1", "max_drop"), ("delta 0", "delta"), ("conf above 1", r"conf_cal\[1\]"), ("no correct", "correct_cal"),
])
def test_chain_checks_still_apply(case, match):
    """The threshold method's own entry checks (the chain's checks, which it shares with
    cascade_frontier, are tested through both in test_chain.py::test_bad_chain_input)."""
    conf, correct = small_chain()
    costs, kw = [1.0, 2.0, 4.0], {"max_drop": 0.05, "delta": 0.1}
    if case == "max_drop 1":
        kw["max_drop"] = 1.0
    elif case == "delta 0":
        kw["delta"] = 0
    elif case == "conf above 1":
        conf = [conf[0], conf[1] + 1.0, conf[2]]
    if case == "no correct":
        with pytest.raises(ValueError, match=match):
            ThresholdSelector(**kw).fit(conf, None, costs)
        return
    with pytest.raises(ValueError, match=match):
        select_cascade(conf, correct, costs, method="threshold", **kw)


def test_chain_rows_input():
    conf, correct = small_chain()
    rows = calcas.chain.ChainRows.of(conf, correct, [1.0, 2.0, 4.0])
    a = ThresholdSelector(max_drop=0.05, delta=0.1, lambdas=GRID21).fit(rows)
    b = select_cascade(conf, correct, [1.0, 2.0, 4.0], max_drop=0.05, delta=0.1, lambdas=GRID21)
    assert same_selection(a._chosen, b._chosen)
    with pytest.raises(ValueError, match="ChainRows carry the scores"):
        ThresholdSelector(max_drop=0.05, delta=0.1).fit(rows, correct)


# ---------------------------------------------------------------------------- 7. the zero-loss p-value


@pytest.mark.parametrize("n", [1, 10, 300, 2000])
@pytest.mark.parametrize("max_drop", [0.0, 0.005, 0.02, 0.1, 0.5])
def test_zero_loss_p_value(n, max_drop):
    assert zero_loss_p_value(n, max_drop) == pytest.approx(betting_p_values(np.zeros(n), max_drop), rel=1e-12)


def test_empty_fit_rows_list_and_tested_before_fit():
    rng = np.random.default_rng(11)
    conf = [rng.beta(2 + j, 1, 600) for j in range(3)]
    correct = [(rng.random(600) < c).astype(float) for c in conf]
    a = calcas.select_cascade(conf, correct, [1, 2, 4], max_drop=0.05, delta=0.1, fit_rows=[])
    b = calcas.select_cascade(conf, correct, [1, 2, 4], max_drop=0.05, delta=0.1, fit_rows=np.array([], dtype=int))
    assert a.n_fit_ == b.n_fit_ == 0 and a.config_ == b.config_
    with pytest.raises(RuntimeError, match="ThresholdSelector is not fitted"):
        calcas.ThresholdSelector(max_drop=0.05, delta=0.1).tested_
