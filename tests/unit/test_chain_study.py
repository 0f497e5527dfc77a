"""calcas.chain_study: the chain chapter's re-split study on synthetic chains whose truth is known."""
import numpy as np
import pytest

import calcas
from calcas import chain_study


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


def test_chain_report_on_a_known_chain():
    sets = _chain()
    rep = chain_study.chain_report({"toy": sets}, n_splits=40, max_drops=(0.01, 0.03), delta=0.1, budget=0.01)
    c = rep.chains["toy"]
    assert c["cost_source"] == "GFLOPs per item (manifests)" and c["costs"] == [1.0, 2.0, 8.0]
    assert c["n_cal"] + c["n_test"] == 3000 and c["n_fit"] + c["n_certify"] == c["n_cal"]
    for g in c["guarantee"].values():
        rate, low, high = g["violation_rate"]
        assert 0 <= low <= rate <= high <= 1
        assert rate <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / 40)  # the guarantee, with test noise on top
        assert 0 <= g["cost_saved_mean"] < 1
    # a looser budget never saves less on average (same splits, same frontier, a longer sequence)
    assert c["guarantee"]["0.03"]["cost_saved_mean"] >= c["guarantee"]["0.01"]["cost_saved_mean"] - 1e-12
    b = c["baselines"]
    assert set(b) == set(chain_study.METHOD_NAMES)
    # the oracle knows test correctness: nothing that routes without it is cheaper at the budget
    assert all(b["oracle"]["cost_share_mean"] <= v["cost_share_mean"] + 1e-12 for v in b.values())
    assert b["oracle"]["over_budget"][0] == 0
    table = rep.baseline_table()
    assert table.shape == (len(b), 1) and list(table.index) == list(chain_study.SHORT_NAMES.values())
    over = round(100 * b["oracle"]["over_budget"][0])
    assert table.loc["oracle", "toy"] == f"{b['oracle']['cost_share_mean']:.3f} ({over}%)"
    g = rep.guarantee_table()
    assert len(g) == 2
    rate = c["guarantee"]["0.01"]["violation_rate"]
    assert g.loc[("toy", "max_drop = 0.01"), "violations [95%]"] == f"{rate[0]:.1%} [{100 * rate[1]:.1f}, {100 * rate[2]:.1f}]"
    assert g.loc[("toy", "max_drop = 0.01"), "accuracy lost"] == f"{c['guarantee']['0.01']['lost_mean']:+.3f}"
    # how often each stage is called: the last always, the others as the certified choices say
    for d, entry in c["guarantee"].items():
        called = entry["called_share"]
        assert called[-1] == 1.0 and len(called) == 3
        by_hand = sum(k for st, k in entry["chosen_stages"].items() if "0" in st.split("+")) / 40
        assert called[0] == pytest.approx(by_hand)
    assert {"0+1+2", "0+2", "1+2"} <= set(c["frontiers"])
    assert len(c["selection_grid"]) == len(chain_study.SLIDER_DROPS) * len(chain_study.SLIDER_DELTAS)
    zero = [g for g in c["selection_grid"] if g["max_drop"] == 0]
    assert all(g["stages"] == "2" and g["cost_share"] == 1 for g in zero)  # max_drop 0: the last model alone


def test_random_routing_and_oracle_by_hand():
    v = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=float)
    s = chain_study._Split.of(v, v, v, cal=np.arange(4), fit=np.arange(2), test=np.arange(4))
    costs = np.array([1.0, 2.0, 10.0])
    # oracle, budget 0: samples 0, 2 -> model 0 (cost 1), 1 -> model 1 (2), 3 (nobody right) -> model 0 (1)
    assert chain_study._oracle(s, costs, 0.0) == pytest.approx((5 / 4 / 10, 0.0))
    # random routing: model 2 is right on 3/4; with budget 0 only a mix reaching 0.75 on cal qualifies
    cost, lost = chain_study._random_routing(s, costs, 0.0)
    assert cost == pytest.approx(1.0) and lost == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"delta": 0}, "delta"), ({"delta": 1.5}, "delta"), ({"max_drops": (-0.01,)}, "max_drop"),
    ({"budget": -1.0}, "max_drop"), ({"costs": {"toy": [1.0, float("nan"), 2.0]}}, "costs"),
    ({"costs": {"toy": [1.0, 2.0]}}, "costs"),
])
def test_chain_report_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        chain_study.chain_report({"toy": _chain(n=400)}, n_splits=2, **kwargs)


def test_chain_report_needs_two_models():
    with pytest.raises(ValueError, match="chains: 'one' needs at least two"):
        chain_study.chain_report({"one": _chain(n=400)[:1]}, n_splits=2)


def test_select_cascade_when_no_configuration_is_cheaper_than_the_last_model():
    """The first model costs more than the last: nothing to test, the last model alone, and tested_ empty."""
    rng = np.random.default_rng(1)
    conf = [rng.random(600), rng.random(600)]
    correct = [(rng.random(600) < c).astype(float) for c in conf]
    sel = calcas.select_cascade(conf, correct, [5.0, 1.0], max_drop=0.05, delta=0.1, n_bins=5)
    assert sel.config_ == (0,) and sel.cost_share_ == 1.0 and sel.bound_ == 0.0 and len(sel.tested_) == 0
    assert (sel.route(conf) == 1).all()


def test_certified_levels_equal_one_select_cascade_each():
    """_certified fits the frontier once and re-tests it per level: the same choices as one
    select_cascade per (max_drop, delta), measured on test by evaluate_frontier."""
    sets = _chain(n=2000, seed=3)
    s = chain_study._split(sets, 5, 0.5, 0.3, "auto")
    costs = np.array([1.0, 2.0, 8.0])
    levels = [(0.0, 0.1), (0.02, 0.05), (0.05, 0.3), (0.03, 0.1)]
    got = chain_study._certified(s, costs, levels, n_bins=8, seed=5)
    cal, test = s.cal, s.test
    for (d, delta), g in zip(levels, got):
        sel = calcas.select_cascade(list(cal[0]), list(cal[2]), costs, max_drop=d, delta=delta, n_bins=8, seed=5,
                                    fit_rows=s.fit)
        t = calcas.evaluate_frontier(sel.frontier_, list(test[0]), list(test[2]), configurations=[sel.config_])
        assert g["stages"] == sel.stages_
        assert g["cost_share"] == pytest.approx(t["cost"].iloc[0] / 8.0)
        assert g["lost"] == pytest.approx(test[2, -1].mean() - t["accuracy"].iloc[0])
    assert len({g["stages"] for g in got}) > 1  # the levels really chose differently


def test_chain_prose_numbers_and_verdicts():
    from calcas import prose
    from calcas.params import _rounded
    from test_report import assert_prose_numbers_from
    # the first model costs as much as the second and is less accurate: it can never pay
    sets = _chain(n=3000, flops=(2e9, 2e9, 8e9), skill=(0.5, 0.75, 0.85))
    res = _rounded(chain_study.chain_report({"toy": sets}, n_splits=30, max_drops=(0.01, 0.03)).to_dict())
    text = prose.chain_prose(res)
    assert list(text) == ["chains", "guarantee", "baselines", "middle", "expectations"]
    for part in text.values():
        assert_prose_numbers_from(part, res)
    g = res["chains"]["toy"]["guarantee"]
    assert all(entry["called_share"][0] == 0 for entry in g.values())
    assert "m0 never pays: it costs at least as much as m1 (2 against 2)" in text["middle"]
    saved = g["0.03"]["cost_saved_mean"]
    q = g["0.03"]["cost_saved_quantiles"]
    assert f"{round(100 * saved)}% ({round(100 * q[0])}% to {round(100 * q[2])}%) at 0.03" in text["guarantee"]
    verdict = "reaches it" if saved >= 0.4 else "falls short"
    assert f"**toy** saves {round(100 * saved)}% at max_drop = 0.03: it {verdict}" in text["expectations"]


def test_budget_outside_max_drops_still_has_a_certified_baseline():
    """The certified baseline is select_cascade at max_drop = budget, even when max_drops lacks it; and the
    expectation (max_drop 0.03) is not compared when the run did not test it."""
    from calcas import prose
    from calcas.params import _rounded
    sets = _chain(n=1500)
    res = _rounded(chain_study.chain_report({"toy": sets}, n_splits=3, max_drops=(0.05,), budget=0.02).to_dict())
    c = res["chains"]["toy"]
    assert list(c["guarantee"]) == ["0.05"] and "certified" in c["baselines"]
    text = prose.chain_prose(res)
    assert "The certified cascade" in text["baselines"] or "than the certified cascade" in text["baselines"]
    assert "did not test max_drop = 0.03" in text["expectations"] and "**toy** saves" not in text["expectations"]


@pytest.mark.parametrize("rate, verdict", [
    ([0.02, 0.01, 0.04], "within δ = 10%"), ([0.08, 0.05, 0.12], "though the interval reaches above it"),
    ([0.12, 0.08, 0.16], "above δ = 10%, though within noise"), ([0.2, 0.15, 0.25], "the guarantee failed here"),
])
def test_violation_verdicts(rate, verdict):
    from calcas import prose
    assert verdict in prose._rate_verdict(rate, 0.1)


def test_a_stage_dearer_than_the_last_model_never_pays():
    from calcas import prose
    c = {"models": ["a", "b", "z"], "costs": [1.0, 5.0, 4.0],
         "singles": [{"model": 0, "cost_share": 0.25, "accuracy": 0.6}, {"model": 1, "cost_share": 1.25, "accuracy": 0.8},
                     {"model": 2, "cost_share": 1.0, "accuracy": 0.9}],
         "guarantee": {"0.03": {"max_drop": 0.03, "called_share": [0.5, 0.0, 1.0]}},
         "frontiers": {"0+1+2": {"cost_share": [0.25, 1.0], "accuracy": [0.6, 0.9]},
                       "0+2": {"cost_share": [0.25, 1.0], "accuracy": [0.6, 0.9]},
                       "1+2": {"cost_share": [1.0], "accuracy": [0.9]}}}
    text = prose._chain_middle("toy", c)
    assert "b never pays: one call costs at least as much as z's (5 against 4)" in text
    assert "a never pays" not in text  # a is called in half the re-splits
