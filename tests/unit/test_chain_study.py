"""calcas.chain_study and the public API calcas.chain gives it (ChainRows, StageBins, fit_frontier,
ChainFrontier.measure and .answering, CascadeSelector.choose, checked_costs), on synthetic chains
whose truth is known and against references that go through the public per-call functions
(calibrate_records, cascade_frontier, evaluate_frontier, select_cascade) one re-split at a time."""
import numpy as np
import pandas as pd
import pytest

import calcas
from calcas import chain_study
from calcas.chain import ChainRows, StageBins, checked_costs, fit_frontier


def _chain(n=3000, seed=0, flops=(1e9, 2e9, 8e9), skill=(0.55, 0.7, 0.85)):
    """Three record sets on the same ids; each model's confidence is calibrated by construction."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i:05d}" for i in range(n)]
    easy = rng.random(n)
    out = []
    for j, (f, a) in enumerate(zip(flops, skill)):
        conf = np.clip(a + 0.35 * (easy - 0.5) + 0.05 * rng.standard_normal(n), 0.02, 0.98)
        verified = (rng.random(n) < conf).astype(float)
        out.append(calcas.make_records(ids, np.zeros(n, dtype=int), verified=verified, confidence=conf,
                                       manifest={"model": f"m{j}", "flops_per_sample": f}))
    return out


def _logit_chain(n=1500, seed=4):
    """Three classifiers with logits (temperature scaling), better along the chain."""
    sets = calcas.make_synthetic(n, accuracy=(0.5, 0.7, 0.85), confidence_scale=(1.6, 1.2, 0.8), flip_rate=0.0,
                                 names=["a", "b", "c"], seed=seed)
    return [calcas.make_records(r.id, r.pred, label=r.label, logits=r.logits, manifest={**r.manifest, "cost": {
        "gflops_per_item": g}}) for r, g in zip(sets.values(), (1.0, 3.0, 9.0))]


# ---------------------------------------------------------------- the study against the per-call functions


def _reference(sets, costs, *, seed, n_cal, n_fit, levels, budget, n_bins, method="threshold"):
    """One re-split the slow way: every step through a public function that checks its inputs."""
    m, n = len(sets), sets[0].n
    rows = np.random.default_rng(seed).permutation(n)
    cal, test = rows[:n_cal], rows[n_cal:]
    mask = np.zeros(n, dtype=bool)
    mask[cal[:n_fit]] = True
    fitted = [calcas.calibrate_records(r, mask) for r in sets]
    conf, raw = np.stack([f.calibrated for f in fitted]), np.stack([f.raw for f in fitted])
    correct = np.stack([r.verified for r in sets])
    out = {}
    for d, delta in levels:
        sel = calcas.select_cascade(list(conf[:, cal]), list(correct[:, cal]), costs, max_drop=d, delta=delta,
                                    n_bins=n_bins, seed=seed, fit_rows=np.arange(n_fit), method=method, lambdas=21)
        if method == "frontier":
            t = calcas.evaluate_frontier(sel.frontier_, list(conf[:, test]), list(correct[:, test]),
                                         configurations=[sel.config_])
            out[d] = (t["cost"].iloc[0] / costs[-1], t["accuracy_lost"].iloc[0], sel.stages_)
        else:  # route the test rows through the fitted selector
            stage = sel.route(list(conf[:, test]))
            paid = np.cumsum(np.append(np.isfinite(sel.config_), True) * np.asarray(costs))
            lost = correct[-1, test].mean() - correct[stage, test].mean()
            out[d] = (paid[stage].mean() / costs[-1], lost, sel.stages_)

    def choice(c, stages, order):
        f = calcas.cascade_frontier(list(c[stages][:, cal]), list(correct[stages][:, cal]), costs[stages],
                                    n_bins=n_bins, order=order)
        row = int(np.flatnonzero(f.table["accuracy_lost"].to_numpy() <= budget + 1e-12)[0])
        t = calcas.evaluate_frontier(f, list(c[stages][:, test]), list(correct[stages][:, test]),
                                     configurations=[f.table["K"].iloc[row]])
        return t["cost"].iloc[0] / costs[-1], correct[-1, test].mean() - t["accuracy"].iloc[0]

    every = list(range(m))
    out["calibrated"] = choice(conf, every, "advantage")
    out["uncalibrated"] = choice(raw, every, "advantage")
    out["thresholds"] = choice(conf, every, "confidence")
    out["single threshold"] = choice(conf, [0, m - 1], "confidence")
    return out


@pytest.mark.parametrize("method", chain_study.CERTIFIERS)
@pytest.mark.parametrize("make", [_chain, _logit_chain], ids=["Platt", "temperature"])
def test_study_equals_the_per_call_functions_split_by_split(make, method):
    """The fast study gives exactly (==, not approximately) the numbers of one public call per step."""
    sets = make(n=1500) if make is _chain else make()
    costs = checked_costs(None, 3, records=sets)[0]
    study = chain_study.study_chain(sets, max_drops=(0.0, 0.02, 0.1), budget=0.02, delta=0.2, n_splits=3, n_bins=6,
                                    seed=7, method=method, lambdas=21, deltas=(0.2,), n_refit=1)
    assert study.n_cal == 750 and study.n_fit == 225 and study.n_certify == 525 and study.n_test == 750
    compared = {(lv.method, lv.max_drop): lv for lv in study.comparison}
    for r in range(3):
        ref = _reference(sets, costs, seed=7 + r, n_cal=750, n_fit=225, levels=[(0.0, 0.2), (0.02, 0.2), (0.1, 0.2)],
                         budget=0.02, n_bins=6, method=method)
        for level in study.levels:
            assert (level.cost_share[r], level.lost[r], level.stages[r]) == ref[level.max_drop]
            other = compared[(method, level.max_drop)]  # the comparison holds the same runs
            assert (other.cost_share[r], other.lost[r]) == (level.cost_share[r], level.lost[r])
        for level in study.levels:
            assert (level.cost_share[r], level.lost[r], level.stages[r]) == ref[level.max_drop]
        assert (study.methods["certified"].cost_share[r], study.methods["certified"].lost[r]) == ref[0.02][:2]
        for k in ("calibrated", "uncalibrated", "thresholds", "single threshold"):
            assert (study.methods[k].cost_share[r], study.methods[k].lost[r]) == ref[k], k
    assert {s for lv in study.levels for s in lv.stages} != {"2"}  # something cheaper was certified somewhere


def test_study_on_a_known_chain():
    sets = _chain()
    study = chain_study.study_chain(sets, n_splits=40, max_drops=(0.01, 0.03), delta=0.1, budget=0.01)
    assert study.cost_source == "GFLOPs per item (manifests)" and study.costs.tolist() == [1.0, 2.0, 8.0]
    assert study.n_cal + study.n_test == 3000 and study.n_fit + study.n_certify == study.n_cal
    assert study.n_splits == 40 and [lv.max_drop for lv in study.levels] == [0.01, 0.03]
    for lv in study.levels:
        rate = np.mean(lv.lost > lv.max_drop + 1e-12)
        assert rate <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / 40)  # the guarantee, with test noise on top
    # a looser max_drop never saves less on average (same splits, same frontier, a longer sequence)
    assert study.levels[1].cost_share.mean() <= study.levels[0].cost_share.mean() + 1e-12
    assert set(study.methods) == set(chain_study.METHODS)
    # the oracle knows test correctness: nothing that routes without it is cheaper at the budget
    oracle = study.methods["oracle"]
    assert all(oracle.cost_share.mean() <= v.cost_share.mean() + 1e-12 for v in study.methods.values())
    assert (oracle.lost <= 0.01 + 1e-12).all()
    first = study.first
    assert {"0+1+2", "0+2", "1+2"} == set(first.frontiers)
    assert len(first.grid) == len(chain_study.GRID_DROPS) * len(chain_study.GRID_DELTAS)
    zero = [g for g in first.grid if g.max_drop == 0]
    assert all(g.stages == "2" and g.answering == "2" and g.cost_share == 1 for g in zero)  # the last model alone
    assert first.accuracy.tolist() == first.test_correct.mean(axis=1).tolist()
    # a pair's frontier names its models by their place in the whole chain
    assert set(first.frontiers["1+2"].answering) <= {"1", "2", "1+2"}


def test_random_routing_and_oracle_by_hand():
    v = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=float)
    costs = np.array([1.0, 2.0, 10.0])
    rows = ChainRows(v, v, costs, "given")
    s = chain_study._Split(rows, rows, rows, rows, np.arange(2))
    # oracle, budget 0: samples 0, 2 -> model 0 (cost 1), 1 -> model 1 (2), 3 (nobody right) -> model 0 (1)
    assert chain_study._oracle(v, costs, 0.0) == pytest.approx((5 / 4 / 10, 0.0))
    # random routing: model 2 is right on 3/4; with budget 0 only a mix reaching 0.75 on cal qualifies
    cost, lost = chain_study._random_routing(s, costs, 0.0)
    assert cost == pytest.approx(1.0) and lost == pytest.approx(0.0)


@pytest.mark.parametrize("method, make", [("platt", _chain), ("temperature", _logit_chain), ("auto", _logit_chain),
                                          ("auto", _chain)])
def test_calibration_is_calibrate_records(method, make):
    """The study's calibration (inputs computed once per record set) gives calibrate_records' floats."""
    r = make(n=900)[1] if make is _chain else make(n=900)[1]
    fit = np.zeros(r.n, dtype=bool)
    fit[np.random.default_rng(2).permutation(r.n)[:300]] = True
    ref = calcas.calibrate_records(r, fit, method=method)
    ours = chain_study._Calibration.of(r, method)
    assert np.array_equal(ours.calibrated(np.flatnonzero(fit)), ref.calibrated) and np.array_equal(ours.raw, ref.raw)


def _bad(**kwargs):
    defaults = {"records": _chain(n=400), "n_splits": 2}
    args = {**defaults, **kwargs}
    return chain_study.study_chain(args.pop("records"), args.pop("costs", None), **args)


@pytest.mark.parametrize("kwargs, match", [
    ({"delta": 0}, r"delta: must be in \(0, 1\), got 0"), ({"delta": 1.5}, "delta: must be in"),
    ({"max_drops": (-0.01,)}, r"max_drop: must be >= 0 and < 1"), ({"max_drops": ()}, "give at least one max_drop"),
    ({"budget": -1.0}, "max_drop: must be >= 0"),
    ({"costs": [1.0, float("nan"), 2.0]}, r"costs: every cost must be a finite number > 0, got costs\[1\] = nan"),
    ({"costs": [1.0, 2.0]}, r"costs: expected one cost per model \(3\)"),
    ({"n_splits": 0}, "n_splits: must be >= 1"), ({"n_splits": 2.0}, "n_splits: expected an integer"),
    ({"cal_fraction": 1.0}, "cal_fraction: must be strictly between 0 and 1"),
    ({"fit_fraction": 0}, "fit_fraction: must be strictly between 0 and 1"),
    ({"calibration": "isotonic"}, "calibration: expected one of"), ({"seed": -1}, "seed: expected an integer >= 0"),
    ({"calibration": "temperature"}, "temperature scaling needs logits; 'm0' carries 'confidence'"),
    ({"fit_fraction": 0.001}, "each part needs at least one row"),
    ({"n_bins": 500}, "n_bins: 500 bins need at least as many samples"),
    ({"method": "bins"}, r"method: expected one of \('threshold', 'frontier'\), got 'bins'"),
    ({"deltas": ()}, "deltas: give at least one delta"), ({"deltas": (0.05, 1.0)}, r"delta: must be in \(0, 1\)"),
    ({"lambdas": []}, "lambdas: the grid is empty"), ({"lambdas": [0.5, 1.5]}, r"lambdas: thresholds are calibrated"),
    ({"n_refit": 0}, "n_refit: must be >= 1"),
])
def test_study_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _bad(**kwargs)


def test_study_needs_two_aligned_record_sets():
    sets = _chain(n=400)
    with pytest.raises(ValueError, match="records: a chain needs at least two record sets, got 1"):
        chain_study.study_chain(sets[:1], n_splits=2)
    with pytest.raises(ValueError, match="rows are not aligned by id"):
        chain_study.study_chain([sets[0], sets[1].take(np.arange(399, -1, -1))], n_splits=2)


# ---------------------------------------------------------------- the public API calcas.chain gives the study


def _rows(n=1200, seed=1):
    rng = np.random.default_rng(seed)
    conf = [rng.beta(2 + j, 1.5, n) for j in range(3)]
    correct = [(rng.random(n) < c).astype(float) for c in conf]
    return conf, correct, [1.0, 2.5, 9.0]


def test_chain_rows_check_once_and_cut_without_checking():
    conf, correct, costs = _rows()
    rows = ChainRows.of(conf, correct, costs)
    assert (rows.n_models, rows.n, rows.cost_source) == (3, 1200, "given")
    part = rows.take(np.arange(10, 20))
    assert np.array_equal(part.conf, np.stack(conf)[:, 10:20]) and np.array_equal(part.correct, np.stack(correct)[:, 10:20])
    mask = np.zeros(1200, dtype=bool)
    mask[[3, 5]] = True
    assert np.array_equal(rows.take(mask).conf, np.stack(conf)[:, [3, 5]])
    pair = rows.sub_chain([0, 2])
    assert pair.costs.tolist() == [1.0, 9.0] and np.array_equal(pair.conf, np.stack(conf)[[0, 2]])
    with pytest.raises(ValueError, match=r"stages: expected at least two increasing model indices in 0..2, got \[2, 0\]"):
        rows.sub_chain([2, 0])
    with pytest.raises(ValueError, match=r"conf\[1\]: values must be <= 1.0"):
        ChainRows.of([conf[0], conf[1] + 1, conf[2]], correct, costs)
    with pytest.raises(ValueError, match=r"costs: expected one cost per model \(3\)"):
        ChainRows.of(conf, correct, [1.0, 2.0])


def test_checked_costs():
    assert checked_costs([1, 2], 2)[0].tolist() == [1.0, 2.0] and checked_costs([1, 2], 2)[1] == "given"
    sets = _chain(n=50)
    assert checked_costs(None, 3, records=sets)[1] == "GFLOPs per item (manifests)"
    with pytest.raises(ValueError, match=r"costs: give one cost per model \(2\), or the record sets"):
        checked_costs(None, 2)
    with pytest.raises(ValueError, match=r"costs: every cost must be a finite number > 0, got costs\[0\] = 0"):
        checked_costs([0, 1], 2)


def test_fit_frontier_is_cascade_frontier_and_shares_bins():
    conf, correct, costs = _rows()
    rows = ChainRows.of(conf, correct, costs)
    bins = StageBins.of(rows, 7)
    # the bins are calcas.equal_count_edges and calcas.assign_bins, stage by stage
    for j in range(2):
        assert np.array_equal(bins.edges[j], calcas.equal_count_edges(conf[j], 7))
        assert np.array_equal(bins.index[j], calcas.assign_bins(conf[j], bins.edges[j]))
    for order in ("advantage", "confidence"):
        ref = calcas.cascade_frontier(conf, correct, costs, n_bins=7, order=order)
        for f in (fit_frontier(rows, n_bins=7, order=order), fit_frontier(rows, n_bins=7, order=order, bins=bins)):
            pd.testing.assert_frame_equal(f.table, ref.table)
            assert all(np.array_equal(a, b) for a, b in zip(f.order, ref.order))
    pair = fit_frontier(rows.sub_chain([1, 2]), n_bins=7, bins=bins.sub_chain([1, 2]))
    pd.testing.assert_frame_equal(pair.table, calcas.cascade_frontier(conf[1:], correct[1:], costs[1:], n_bins=7).table)
    with pytest.raises(ValueError, match="bins: fitted on 1200 rows of 3 models, not on these 600 rows of 3 models"):
        fit_frontier(rows.take(np.arange(600)), n_bins=7, bins=bins)
    with pytest.raises(ValueError, match="order: expected one of"):
        fit_frontier(rows, order="cost")


def test_measure_is_evaluate_frontier_with_or_without_the_bins():
    conf, correct, costs = _rows()
    rows = ChainRows.of(conf, correct, costs)
    cal, test = rows.take(np.arange(600)), rows.take(np.arange(600, 1200))
    bins = StageBins.of(cal, 6)
    f = fit_frontier(cal, n_bins=6, bins=bins)
    ref = calcas.evaluate_frontier(f, list(test.conf), list(test.correct))
    pd.testing.assert_frame_equal(f.measure(test).table, ref)
    pd.testing.assert_frame_equal(f.measure(test, index=bins.assign(test)).table, ref)
    some = [[0, 0], [3, 1]]
    pd.testing.assert_frame_equal(f.measure(test, some).table,
                                  calcas.evaluate_frontier(f, list(test.conf), list(test.correct), configurations=some))
    with pytest.raises(ValueError, match=r"index: expected shape \(2, 600\), got \(2, 5\)"):
        f.measure(test, index=np.zeros((2, 5), dtype=int))
    with pytest.raises(ValueError, match=r"configurations: expected integer rows of 2 bin counts"):
        f.measure(test, [[9, 9]])


def test_bin_index_is_assign_bins_on_edges_and_ties():
    from calcas.chain import _bin_index
    edges = np.array([-np.inf, 0.2, 0.5, 0.5000000000000001, 0.9, np.inf])
    values = np.array([0.0, 0.2, 0.19999999999999998, 0.5, 0.5000000000000001, 0.9, 1.0, 0.7])
    assert _bin_index(values, edges).tolist() == calcas.assign_bins(values, edges).tolist()
    many = np.concatenate(([-np.inf], np.linspace(0, 1, 300), [np.inf]))  # past the byte counter: binary search
    v = np.random.default_rng(0).random(500)
    assert _bin_index(v, many).tolist() == calcas.assign_bins(v, many).tolist()


def test_answering_by_hand():
    conf, correct, costs = _rows()
    f = calcas.cascade_frontier(conf, correct, costs, n_bins=4)
    m0, m1 = f.sizes
    assert f.answering((0, 0)) == "2"  # the last model alone
    assert f.answering((0, m1)) == "1"  # model 1 keeps every bin: model 1 alone, the last never asked
    assert f.answering((m0, 2)) == "0"
    assert f.answering((1, 2)) == "0+1+2" and f.answering((1, 0)) == "0+2" and f.answering((1, m1)) == "0+1"


def test_choose_is_select_cascade_at_each_level_and_leaves_the_fit_alone():
    conf, correct, costs = _rows(n=3000, seed=5)
    sel = calcas.select_cascade(conf, correct, costs, max_drop=0.05, delta=0.1, n_bins=6, seed=2, method="frontier")
    before = (sel.config_, sel.stages_, sel.expected_cost_, sel.tested_.copy())
    for d, delta in [(0.0, 0.1), (0.02, 0.3), (0.05, 0.1), (0.1, 0.05), (0.02, 0.01)]:
        chosen = sel.choose(max_drop=d, delta=delta)
        ref = calcas.select_cascade(conf, correct, costs, max_drop=d, delta=delta, n_bins=6, seed=2, method="frontier")
        assert (chosen.config, chosen.stages, chosen.expected_cost, chosen.bound, chosen.drop_certify) == \
            (ref.config_, ref.stages_, ref.expected_cost_, ref.bound_, ref.drop_certify_)
        assert np.array_equal(chosen.p_values, ref.tested_["p_value"].to_numpy(), equal_nan=True)
        assert chosen.answering == ref.answering_ == ref.frontier_.answering(ref.config_)
    assert (sel.config_, sel.stages_, sel.expected_cost_) == before[:3]
    pd.testing.assert_frame_equal(sel.tested_, before[3])
    # the chosen configuration's cost on the certifying rows is its row of tested_
    chosen_row = sel.tested_[sel.tested_["rejected"]].iloc[-1]
    assert sel.expected_cost_ == chosen_row["cost"] and sel.drop_certify_ == chosen_row["accuracy_lost"]
    with pytest.raises(ValueError, match=r"delta: must be in \(0, 1\)"):
        sel.choose(max_drop=0.01, delta=1)
    with pytest.raises(RuntimeError, match="CascadeSelector is not fitted"):
        calcas.CascadeSelector(max_drop=0.01, delta=0.1).choose(max_drop=0.01, delta=0.1)


def test_selector_fits_checked_rows_as_it_fits_lists():
    conf, correct, costs = _rows(n=2000, seed=6)
    a = calcas.CascadeSelector(max_drop=0.03, delta=0.1, n_bins=5, seed=3).fit(conf, correct, costs)
    b = calcas.CascadeSelector(max_drop=0.03, delta=0.1, n_bins=5, seed=3).fit(ChainRows.of(conf, correct, costs))
    pd.testing.assert_frame_equal(a.tested_, b.tested_)
    assert a.config_ == b.config_
    with pytest.raises(ValueError, match="ChainRows carry the scores and costs"):
        calcas.CascadeSelector(max_drop=0.03, delta=0.1).fit(ChainRows.of(conf, correct, costs), correct)
    with pytest.raises(ValueError, match="correct_cal: expected one array of 0/1 scores per model"):
        calcas.CascadeSelector(max_drop=0.03, delta=0.1).fit(conf)


def test_chain_api_refuses_rows_of_another_chain():
    rng = np.random.default_rng(0)
    rows = ChainRows.of([rng.random(200) for _ in range(3)], [np.ones(200)] * 3, [1.0, 2.0, 3.0])
    pair = rows.sub_chain([0, 2])
    with pytest.raises(ValueError, match="rows: expected 3 models as the bins, got 2"):
        StageBins.of(rows, 4).assign(pair)
    with pytest.raises(ValueError, match="rows: expected 3 models as in the frontier, got 2"):
        fit_frontier(rows, n_bins=4).measure(pair)
    with pytest.raises(ValueError, match=r"stages: a sub-chain of these bins ends in the last model \(2\), got \[0, 1\]"):
        StageBins.of(rows, 4).sub_chain([0, 1])


def test_study_chain_shift_without_a_shift_and_its_bad_inputs():
    """Certified on one half of a chain and run on the other half of the same population, the target
    behaves as the source (no shift); bad inputs are refused with their messages."""
    sets = _chain(n=3000)
    half = np.arange(1500)
    source, target = [r.take(half) for r in sets], [r.take(half + 1500) for r in sets]
    runs = chain_study.study_chain_shift(source, target, [1.0, 2.0, 8.0], max_drop=0.05, delta=0.2, n_splits=8,
                                         target_sizes=(300,))
    assert runs.n_source == runs.n_target == 1500 and len(runs.lost_target) == 8 == len(runs.answering)
    assert abs(runs.cost_target.mean() - runs.cost_source.mean()) < 0.05  # same population: about the same cost
    assert np.mean(runs.lost_target > 0.05 + 1e-12) <= 0.5 and set(runs.recertified) == {300}
    with pytest.raises(ValueError, match="source, target: expected the same chain of at least two models"):
        chain_study.study_chain_shift(source, target[:2], [1.0, 2.0, 8.0])
    with pytest.raises(ValueError, match=r"target_sizes: each must be below the 1500 target rows, got \[1500\]"):
        chain_study.study_chain_shift(source, target, [1.0, 2.0, 8.0], target_sizes=(1500,))
    with pytest.raises(ValueError, match="calibration: expected one of"):
        chain_study.study_chain_shift(source, target, [1.0, 2.0, 8.0], calibration="isotonic")
