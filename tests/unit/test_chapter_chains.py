"""calcas.chapters.chains: facts that round-trip results.json, every verdict on synthetic cases whose
outcome is known, the prose built from facts only (a second, synthetic data set names nothing it
does not hold), and the checks of compute's inputs."""
from __future__ import annotations

import dataclasses
import json
import types

import numpy as np
import pytest

import calcas
from calcas.chain_study import METHODS, FrontierOnTest, LevelRuns, MethodRuns
from calcas.chapters import chains
from calcas.chapters.common import paper_reference
from calcas.params import write_results
from prose_checks import assert_names_from, assert_prose_numbers_from
from test_chain_study import _chain
from test_chapters_prose import ELSEWHERE, _second_set

MODELS = ["m0", "m1", "m2"]


@pytest.fixture(scope="module")
def facts():
    """A three-model chain where the certified cascade saves something, and a two-model one."""
    sets = _chain(n=3000)
    return chains.compute({"toy": sets, "pair": [sets[0], sets[2]]}, n_splits=6, max_drops=(0.01, 0.05), budget=0.02)


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval, written out."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


# ---------------------------------------------------------------- facts and results.json


def test_facts_round_trip_results_json(facts, tmp_path):
    written = json.loads(write_results(tmp_path, facts.to_dict()).read_text())
    back = chains.ChainFacts.from_dict(written)
    assert back.to_dict() == written
    assert back.order == ["toy", "pair"] and list(back.in_order()) == ["toy", "pair"]
    assert set(written) == {"section", "parameters", "chains", "order", "shown"}  # no "expectation" any more
    for name in ("guarantee", "methods", "refit", "baselines"):
        assert chains.tables(back)[name].equals(chains.tables(facts)[name])
    assert chains.prose(back).keys() == {"chains", "guarantee", "methods", "controls", "baselines", "middle", "paper"}


def test_every_point_estimate_comes_from_the_study(facts):
    """The facts are the study's numbers: recomputed here from the runs with numpy and a hand Wilson."""
    sets = _chain(n=3000)
    study = calcas.chain_study.study_chain(sets, n_splits=6, max_drops=(0.01, 0.05), budget=0.02)
    toy = facts.chains["toy"]
    for lv in study.levels:
        g = toy.guarantee[f"{lv.max_drop:g}"]
        k = int(np.sum(lv.lost_population > lv.max_drop + 1e-12))  # the guarantee is about all rows
        assert g.n_violations == k and g.violations.estimate.value == k / 6
        assert g.test_violation_share == np.mean(lv.lost > lv.max_drop + 1e-12)
        assert (g.violations.estimate.low, g.violations.estimate.high) == pytest.approx(_wilson(k, 6))
        assert g.cost_saved_mean == pytest.approx(1 - lv.cost_share.mean())
        assert g.lost_quantiles == pytest.approx(np.quantile(lv.lost, [0.025, 0.5, 0.975]))
    assert toy.baselines["oracle"].cost_share_mean == pytest.approx(study.methods["oracle"].cost_share.mean())
    cells = {(x.method, x.max_drop, x.delta): x for x in toy.comparison.cells}
    for lv in study.comparison:
        x = cells[(lv.method, lv.max_drop, lv.delta)]
        k = int(np.sum(lv.lost_population > lv.max_drop + 1e-12))
        assert x.n_violations == k and x.violations.reference == lv.delta
        assert (x.violations.estimate.low, x.violations.estimate.high) == pytest.approx(_wilson(k, 6))
        assert x.cost_saved_mean == pytest.approx(1 - lv.cost_share.mean())
        assert x.ceiling_saved == pytest.approx(1 - study.ceiling[lv.max_drop].mean())
    assert {(x.method, x.max_drop, x.delta) for x in toy.comparison.cells} == {
        (m, d, e) for m in ("threshold", "frontier") for d in (0.01, 0.05) for e in (0.05, 0.1)}
    assert [s.accuracy for s in toy.singles] == pytest.approx(study.first.accuracy)


# ---------------------------------------------------------------- verdicts


def _runs(lost, max_drop=0.02, answering=None, cost_share=None):
    lost = np.asarray(lost, dtype=float)
    answering = answering or ["0+2"] * len(lost)
    return LevelRuns(max_drop, lost, np.full(len(lost), 0.5) if cost_share is None else np.asarray(cost_share),
                     list(answering), list(answering), lost)


@pytest.mark.parametrize("lost, outcome", [
    ([0.0] * 200, "below"),                    # no violation in 200: the interval [0, 1.9%] lies below 10%
    ([0.05] * 100 + [0.0] * 100, "above"),     # half of them: the interval lies above 10%
    ([0.05] * 2 + [0.0] * 18, "within"),       # 2 of 20: [2.8%, 30.1%] contains 10%
])
def test_violation_verdict_against_delta(lost, outcome):
    g = chains._level(_runs(lost), MODELS, delta=0.1)
    assert g.violations.outcome == outcome and g.violations.reference == 0.1
    assert g.violations.estimate.interval == "proportion_interval"
    k = int(np.sum(np.array(lost) > 0.02))
    assert (g.violations.estimate.low, g.violations.estimate.high) == pytest.approx(_wilson(k, len(lost)))


def test_level_names_one_model_alone_and_counts():
    answering = ["1"] * 8 + ["0+1+2"] * 2
    stages = ["1+2"] * 8 + ["0+1+2"] * 2  # stage 1 keeps every bin: it calls 2 yet never reaches it
    runs = LevelRuns(0.03, np.zeros(10), np.array([0.2] * 8 + [1.1, 0.9]), stages, answering, np.zeros(10))
    g = chains._level(runs, MODELS, delta=0.1)
    assert (g.usual, g.usual_share, g.usual_alone) == ("1", 0.8, "m1")
    assert g.called_share == [0.2, 1.0, 1.0] and g.answering_share == [0.2, 1.0, 0.2]
    assert g.n_dearer_than_last == 1 and not g.mostly_last_alone and g.last_alone_share == 0
    last = chains._level(LevelRuns(0.03, np.zeros(4), np.ones(4), ["2"] * 3 + ["0+2"], ["2"] * 3 + ["0+2"],
                                   np.zeros(4)), MODELS, delta=0.1)
    assert last.usual == "2" and last.usual_alone is None and last.mostly_last_alone  # 3 of 4
    half = chains._level(LevelRuns(0.03, np.zeros(4), np.ones(4), ["2"] * 2 + ["0+2"] * 2, ["2"] * 2 + ["0+2"] * 2,
                                   np.zeros(4)), MODELS, delta=0.1)
    assert not half.mostly_last_alone  # half is not most


@pytest.mark.parametrize("lost_mean, gained", [(-0.0006, True), (-0.0004, False), (0.002, False)])
def test_gained_on_average_is_read_as_the_table_shows_it(lost_mean, gained):
    g = chains._level(_runs([lost_mean] * 4), MODELS, delta=0.1)
    assert g.gained_on_average is gained
    assert (f"{g.lost_mean + 0:+.3f}".replace("-0.000", "+0.000").startswith("-")) is gained


def _study(costs_by_method: dict[str, float], lost_by_method: dict[str, list[float]]):
    methods = {k: MethodRuns(np.full(len(lost_by_method[k]), costs_by_method[k]), np.array(lost_by_method[k]))
               for k in METHODS}
    return types.SimpleNamespace(methods=methods)


def test_baseline_verdicts_against_delta_and_cheaper_at_the_shown_precision():
    over = {"above": [0.05] * 100 + [0.0] * 100, "within": [0.05] * 2 + [0.0] * 18, "below": [0.0] * 200}
    lost = {"certified": over["below"], "calibrated": over["above"], "uncalibrated": over["within"],
            "thresholds": over["below"], "single threshold": over["below"], "random": over["above"],
            "oracle": over["below"]}
    cost = {"certified": 0.5, "calibrated": 0.3, "uncalibrated": 0.4999, "thresholds": 0.4996,
            "single threshold": 0.7, "random": 0.2, "oracle": 0.1}
    b = chains._baselines(_study(cost, lost), budget=0.01, delta=0.1)
    assert {k: v.over_budget.outcome for k, v in b.items()} == {
        "certified": "below", "calibrated": "above", "uncalibrated": "within", "thresholds": "below",
        "single threshold": "below", "random": "above", "oracle": "below"}
    # 0.4999 shows as 0.500, the certified cascade's cost: not cheaper; 0.4996 shows as 0.500 too
    assert {k: v.cheaper_than_certified for k, v in b.items()} == {
        "certified": None, "calibrated": True, "uncalibrated": False, "thresholds": False,
        "single threshold": False, "random": True, "oracle": True}
    assert b["calibrated"].n_over == 100 and b["calibrated"].over_budget.estimate.value == 0.5


@pytest.mark.parametrize("u, k, reads", [(0.3331, 0.3334, "same"), (0.5, 0.4, "more"), (0.4, 0.5, "less")])
def test_uncalibrated_against_calibrated(u, k, reads):
    assert chains._compare_costs(u, k) == reads


def test_a_stage_that_never_pays_and_why():
    rng = np.random.default_rng(0)
    n = 2000
    right = (rng.random(n) < 0.8).astype(float)
    worse = right * (rng.random(n) < 0.7)  # right only where the better model is, and less often
    correct = np.stack([worse, right, np.ones(n)])
    study = types.SimpleNamespace(costs=np.array([2.0, 2.0, 8.0]), first=types.SimpleNamespace(test_correct=correct))
    levels = [types.SimpleNamespace(answering_share=[0.0, 0.6, 1.0])]
    m0, m1 = chains._stages(study, MODELS, levels, seed=0)
    assert m0.never_answers and not m0.dearer_than_last and m0.dominated_by == "m1"
    assert m0.more_accurate.outcome == "above" and m0.more_accurate.estimate.interval == "paired_difference_interval"
    assert m0.more_accurate.estimate.value == pytest.approx(right.mean() - worse.mean())
    assert not m1.never_answers and m1.dominated_by is None
    # the same accuracy on every row: no verdict of "more accurate", so no reason given
    study.first.test_correct = np.stack([right, right, np.ones(n)])
    assert chains._stages(study, MODELS, levels, seed=0)[0].dominated_by is None
    # dearer than the last model
    study.costs = np.array([9.0, 2.0, 8.0])
    assert chains._stages(study, MODELS, levels, seed=0)[0].dearer_than_last


def _frontier(cost, acc, answering):
    return FrontierOnTest(np.array(cost), np.array(acc), np.array(cost), np.array(acc), answering)


def test_reach_shortfall_and_whether_the_whole_chain_pays_by_hand():
    frontiers = {"0+1+2": _frontier([0.2, 0.5, 1.0], [0.70, 0.86, 0.90], ["1", "0+1+2", "2"]),
                 "0+2": _frontier([0.1, 0.6, 1.0], [0.60, 0.88, 0.90], ["0", "0+2", "2"]),
                 "1+2": _frontier([0.2, 1.0], [0.70, 0.90], ["1", "2"])}
    study = types.SimpleNamespace(first=types.SimpleNamespace(frontiers=frontiers, accuracy=np.array([0.6, 0.7, 0.9])))
    mid = chains._middle(study, MODELS, target_drop=0.03)  # target accuracy 0.87
    assert mid.reach["0+1+2"] == chains.ReachFacts(1.0, "2", "m2")  # 0.86 misses 0.87
    assert mid.reach["0+2"] == chains.ReachFacts(0.6, "0+2", None)
    assert mid.whole_chain_cheaper is False
    # at cost 0.6 the pair reaches 0.88, the whole chain 0.86 at no more cost: 0.02 > 0.005
    assert mid.shortfall == chains.ShortfallFacts("0+2", 0.6, 0.88, 0.86)
    frontiers["0+1+2"] = _frontier([0.2, 0.5, 1.0], [0.70, 0.89, 0.90], ["1", "0+1+2", "2"])
    mid = chains._middle(study, MODELS, target_drop=0.03)
    assert mid.whole_chain_cheaper is True and mid.reach["0+1+2"].cost_share == 0.5 and mid.shortfall is None
    assert chains._middle(study, MODELS[:2], target_drop=0.03) is None  # two models: no middle stage


# ---------------------------------------------------------------- prose


def test_prose_of_a_second_data_set_names_only_its_facts():
    sets = _second_set()
    facts = chains.compute({"alpha → beta → gamma": sets, "alpha → gamma": [sets[0], sets[2]]},
                           costs={"alpha → beta → gamma": [1.0, 2.0, 6.0], "alpha → gamma": [1.0, 6.0]}, n_splits=4)
    text = chains.prose(facts)
    data = facts.to_dict()
    # a saving of 40% is a number like any other here (the numbers check holds it to the facts); the
    # old page's target ("built to reach about 40% ... language models") is checked for by its words
    names = [n for n in ELSEWHERE if n != "40%"]
    for t in text.values():
        assert_names_from(t, data, names)
        assert_prose_numbers_from(t, data, paper_reference())
    assert "The paper has no results on second-set (alpha → beta → gamma and alpha → gamma)." in text["paper"]
    assert "makes no claim about chains of more models, nor about a guarantee" in text["paper"]
    every = " ".join(text.values())
    assert "built to reach" not in every and "language models" not in every


def test_prose_phrases_each_verdict(facts):
    toy = facts.chains["toy"]
    g = toy.guarantee["0.01"]
    other = toy.guarantee["0.05"]
    toy = dataclasses.replace(toy, guarantee={**toy.guarantee, "0.05": dataclasses.replace(
        other, violations=dataclasses.replace(other.violations, outcome="below"))})
    failed = dataclasses.replace(g, violations=dataclasses.replace(g.violations, outcome="above"))
    unsure = dataclasses.replace(g, violations=dataclasses.replace(g.violations, outcome="within"))
    alone = dataclasses.replace(g, usual="1", usual_alone="m1", usual_share=0.84)
    gained = dataclasses.replace(g, lost_mean=-0.001, gained_on_average=True)
    for level, sentence in [(failed, "at 0.01, **above δ = 10%: the guarantee failed here**"),
                            (gained, "At max_drop = 0.01 the certified cascade lost no accuracy on average against "
                                     "m2 alone (mean accuracy lost -0.001). The re-splits share their rows, so this "
                                     "mean has no interval: it shows no loss, not that the cascade is more accurate."),
                            (unsure, "at 0.01, the interval contains δ = 10%: these re-splits cannot tell the rate"),
                            (alone, "At max_drop = 0.01 the certified configuration was m1 alone in 84% of re-splits: "
                                    "it keeps every bin of m1, so no row goes on to m2")]:
        changed = dataclasses.replace(facts, chains={**facts.chains, "toy": dataclasses.replace(
            toy, guarantee={**toy.guarantee, "0.01": level})})
        assert sentence in chains.prose(changed)["guarantee"]
    held = dataclasses.replace(g, violations=dataclasses.replace(g.violations, outcome="below"))
    changed = dataclasses.replace(facts, chains={**facts.chains, "toy": dataclasses.replace(
        toy, guarantee={**toy.guarantee, "0.01": held})})
    assert "; at every max_drop, below δ = 10%: the guarantee held." in chains.prose(changed)["guarantee"]
    b = toy.baselines["certified"]
    broke = dataclasses.replace(b, over_budget=dataclasses.replace(b.over_budget, outcome="above"))
    changed = dataclasses.replace(facts, chains={**facts.chains, "toy": dataclasses.replace(
        toy, baselines={**toy.baselines, "certified": broke})})
    assert "over budget in more than δ = 10% of re-splits: its guarantee failed here" in \
        chains.prose(changed)["baselines"]


def test_prose_says_what_the_paper_claims_on_its_data_set():
    sets = [calcas.make_records(r.id, r.pred, verified=r.verified, confidence=r.confidence,
                                manifest={**r.manifest, "dataset": "arc-challenge"}) for r in _chain(n=1500)[:2]]
    facts = chains.compute({"two": sets}, n_splits=2)
    p = facts.chains["two"].paper
    ref = paper_reference()["datasets"]["arc"]
    assert (p.paper_dataset, p.name, p.models, p.source) == ("arc", ref["name"], ref["cascading"]["models"],
                                                               ref["cascading"]["source"])
    text = chains.prose(facts)["paper"]
    assert f"On {ref['name']} the paper cascades pairs of models, {ref['cascading']['models']}" in text
    assert paper_reference()["claims"]["cc_above_random"] in text
    assert chains.prose(facts)["middle"] == "Every chain here has two models: there is no middle stage to weigh."


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize("chain_arg, kwargs, match", [
    ({}, {}, "chains: expected a non-empty mapping"),
    ({"one": "a.parquet"}, {}, "chains: 'one' must be a list of record sets"),
    ({"one": ["a.parquet"]}, {}, "chains: 'one' needs at least two record sets, got 1"),
    ({"toy": None}, {"costs": {"other": [1, 2, 3]}}, r"costs: \['other'\] name no chain"),
    ({"toy": None}, {"max_drops": (1.5,)}, "max_drop: must be >= 0 and < 1"),
    ({"toy": None}, {"delta": 0.0}, r"delta: must be in \(0, 1\)"),
    ({"toy": None}, {"budget": -0.1}, "max_drop: must be >= 0"),
])
def test_compute_bad_input(chain_arg, kwargs, match):
    chain_arg = {k: (_chain(n=300) if v is None else v) for k, v in chain_arg.items()}
    with pytest.raises(ValueError, match=match):
        chains.compute(chain_arg, n_splits=2, **kwargs)


def test_middle_prose_phrases_each_fact(facts):
    toy = facts.chains["toy"]
    dearer = chains.StageFacts("m0", True, True, None, None)
    estimate = calcas.chapters.common.Estimate(0.078, 0.074, 0.083, "paired_difference_interval")
    dominated = chains.StageFacts("m0", True, False, "m1", calcas.chapters.common.decide(estimate))
    reach = {"0+1+2": chains.ReachFacts(0.25, "1", "m1"), "0+2": chains.ReachFacts(0.5, "0+2", None),
             "1+2": None}
    cases = [
        ({"stages": [dearer, chains.StageFacts("m1", False, False, None, None)]},
         f"m0 never pays: one call costs at least as much as m2's ({toy.costs[0]:g} against {toy.costs[2]:g})"),
        ({"stages": [dominated, chains.StageFacts("m1", False, False, None, None)]},
         "m0 never pays: it costs at least as much as m1"),
        ({"stages": [dominated]}, "(m1 minus m0: 0.078 [0.074, 0.083], paired)"),
        ({"middle": chains.MiddleFacts(0.05, reach, True, None)},
         "costs: m0 → m1 → m2 0.250 (m1 alone), m0 → m2 0.500, m1 → m2 never."),
        ({"middle": chains.MiddleFacts(0.05, reach, True, None)}, "All 3 models together pay: the whole chain"),
        ({"middle": chains.MiddleFacts(0.05, reach, False, chains.ShortfallFacts("0+2", 0.4, 0.9, 0.88))},
         "at a cost of 0.400, m0 → m2 reaches 0.900, the whole chain 0.880 at no more cost"),
        ({"middle": chains.MiddleFacts(0.05, reach, False, None)}, "All 3 models together do not pay here"),
    ]
    for change, sentence in cases:
        changed = dataclasses.replace(facts, chains={**facts.chains, "toy": dataclasses.replace(toy, **change)})
        assert sentence in chains.prose(changed)["middle"], sentence
    # a cheaper model that is asked somewhere is never said not to pay
    asked = dataclasses.replace(dearer, never_answers=False)
    changed = dataclasses.replace(facts, chains={**facts.chains, "toy": dataclasses.replace(toy, stages=[asked])})
    assert "never pays" not in chains.prose(changed)["middle"]


def test_tables_figures_and_explorers_from_the_facts(facts):
    t = chains.tables(facts)
    toy = facts.chains["toy"]
    g = toy.guarantee["0.05"]
    row = t["guarantee"].loc[("toy", "max_drop = 0.05")]
    v = g.violations.estimate
    assert row["violations, all rows [95%]"] == f"{v.value:.1%} [{v.low:.1%},\u00a0{v.high:.1%}]"
    cells = {(x.method, x.max_drop, x.delta): x for x in toy.comparison.cells}
    shown = t["methods"].loc[("toy", "max_drop = 0.05, δ = 0.1")]
    for method in ("threshold", "frontier"):
        x = cells[(method, 0.05, 0.1)]
        q = x.cost_saved_quantiles
        assert shown[f"{method}: cost saved (2.5–97.5%)"] == \
            f"{round(100 * x.cost_saved_mean)}% ({round(100 * q[0])}% to\u00a0{round(100 * q[2])}%)"
        e = x.violations.estimate
        assert shown[f"{method}: violations [95%]"] == f"{e.value:.1%} [{e.low:.1%},\u00a0{e.high:.1%}]"
    assert shown["ceiling on test"] == f"{round(100 * cells[('threshold', 0.05, 0.1)].ceiling_saved)}%"
    assert len(t["refit"]) == 2 * 2 * 2  # two chains, two max_drops, two deltas
    assert row["reads"] == {"below": "below δ", "above": "above δ: failed", "within": "cannot tell from δ"}[
        g.violations.outcome]
    b = toy.baselines["oracle"]
    assert list(t["baselines"].loc[("toy", "oracle")]) == [f"{b.cost_share_mean:.3f}",
                                                          f"{round(100 * b.over_budget.estimate.value)}%"]
    assert list(t["baselines"].index) == [(c, m) for c in ("toy", "pair") for m in chains.SHORT_NAMES.values()]
    fig = chains.figures(facts)
    assert len([ax for ax in fig.axes if ax.lines]) == 1  # the three-model chain only
    explorers = chains.explorers(facts)
    assert list(explorers) == ["toy", "pair"] and explorers["toy"].name.startswith("calcas chain explorer")


# ---------------------------------------------------------------- the two methods, floors, controls


def _comparison_study(saved: dict, violations: dict | None = None):
    """A stand-in study whose comparison runs give the savings ``saved[(method, d, e)]``."""
    violations = violations or {}
    runs = []
    for (method, d, e), x in saved.items():
        k = violations.get((method, d, e), 0)
        runs.append(LevelRuns(d, np.zeros(100), np.full(100, 1 - x), ["2"] * 100, ["2"] * 100,
                              np.r_[np.full(k, d + 0.01), np.zeros(100 - k)], method, e))
    return types.SimpleNamespace(comparison=runs, refit=[], ceiling={0.01: np.full(10, 0.8), 0.03: np.full(10, 0.6)})


def test_comparison_names_the_better_method_at_the_shown_precision():
    levels = [(0.01, 0.05), (0.03, 0.1)]
    same = {("threshold", d, e): 0.3 for d, e in levels} | {("frontier", d, e): 0.296 for d, e in levels}
    c = chains._comparison(_comparison_study(same))  # 30% against 30% as shown: not worse anywhere
    assert c.better == "threshold" and c.worse_cells == [] and c.n_refit == 10
    # the refit variant is set beside the threshold method on the same first n_refit re-splits
    assert len(c.refit_baseline) == 2 and all(x.n_splits == 10 and x.method == "threshold" for x in c.refit_baseline)
    k = chains._comparison(_comparison_study(same, {("threshold", 0.01, 0.05): 4})).refit_baseline[0]
    assert k.n_violations == 4 and k.violations.estimate.value == 0.4  # the 4 violations are among the first 10
    mixed = dict(same) | {("frontier", 0.03, 0.1): 0.4, ("threshold", 0.01, 0.05): 0.35}  # each ahead once
    c = chains._comparison(_comparison_study(mixed))
    assert c.better is None and c.worse_cells == [[0.03, 0.1]]
    behind = {k: (0.1 if k[0] == "threshold" else 0.2) for k in same}
    assert chains._comparison(_comparison_study(behind)).better == "frontier"
    # worst_upper: the largest Wilson upper end minus its delta (12 of 100 at delta 0.05)
    c = chains._comparison(_comparison_study(same, {("frontier", 0.01, 0.05): 12}))
    assert c.worst_upper == pytest.approx(_wilson(12, 100)[1] - 0.05)
    assert [x.ceiling_saved for x in c.cells if x.max_drop == 0.03] == pytest.approx([0.4, 0.4])


def test_floors_are_the_zero_loss_p_value_against_delta_over_the_sub_chains():
    study = types.SimpleNamespace(costs=np.array([1.0, 2.0, 8.0]), method="threshold", n_certify=400,
                                  levels=[types.SimpleNamespace(max_drop=d) for d in (0.01, 0.03)])
    floors = chains._floors(study, delta=0.1)
    for f, d in zip(floors, (0.01, 0.03)):
        assert f.floor_p == pytest.approx(calcas.betting_p_values(np.zeros(400), d))
        assert f.level == pytest.approx(0.1 / 3) and f.n_tests == 3 and f.possible == (f.floor_p <= 0.1 / 3)
    assert [f.possible for f in floors] == [False, True]  # 400 rows cannot certify 0.01 at 0.033
    study.method = "frontier"
    assert chains._floors(study, delta=0.1)[0].n_tests == 1


def test_floor_prose_says_rows_or_models_stop_it():
    c = types.SimpleNamespace(models=["a", "b", "c"])
    few = chains.FloorFacts(0.01, 400, 0.05, 0.1 / 3, 3, False)
    text = chains._floor_text(c, [few])
    assert "400 certifying rows" in text and "0.05 at max_drop = 0.01" in text and "0.0333 each" in text
    assert "whatever the models" in text
    enough = chains.FloorFacts(0.03, 400, 1e-4, 0.1 / 3, 3, True)
    text = chains._floor_text(c, [enough])
    assert "Rows are not what stops it at max_drop = 0.03" in text and "the cheaper models lose" in text


def _grid(points):
    return [chains.GridPoint(d, e, st, st, cost, 0.9, 0.0) for (d, e), (st, cost) in points.items()]


def test_controls_move_or_not_by_hand():
    fixed = {(d, e): ("0+2", 0.4) for d in (0.0, 0.01) for e in (0.05, 0.1)}
    assert chains._controls(_grid(fixed)) == chains.ControlFacts(False, False)
    by_drop = fixed | {(0.01, 0.05): ("0+2", 0.3), (0.01, 0.1): ("0+2", 0.3)}
    assert chains._controls(_grid(by_drop)) == chains.ControlFacts(False, True)
    by_delta = fixed | {(0.01, 0.1): ("1+2", 0.4)}
    assert chains._controls(_grid(by_delta)) == chains.ControlFacts(True, True)


def test_methods_prose_and_controls_prose(facts):
    text = chains.prose(facts)
    for name, c in facts.in_order().items():
        assert f"**{name}**" in text["methods"]
        assert "ceiling" in text["methods"] and "Refitting the calibrators" in text["methods"]
    c = facts.chains["toy"]
    quiet = dataclasses.replace(c, controls=chains.ControlFacts(False, True))
    assert "no δ control" in chains._controls_text("toy", quiet)
    assert chains._controls_text("toy", dataclasses.replace(c, controls=chains.ControlFacts(True, True))) is None
    none = chains._controls_text("toy", dataclasses.replace(c, controls=chains.ControlFacts(False, False)))
    assert "without controls" in none


def test_methods_prose_says_why_the_frontier_method_certified_nothing(facts):
    c = facts.chains["toy"]
    cells = [dataclasses.replace(x, last_alone_share=0.9 if x.method == "frontier" else 0.1)
             for x in c.comparison.cells]
    stuck = dataclasses.replace(c, comparison=dataclasses.replace(c.comparison, cells=cells,
                                                                  frontier_first=[0.893, 0.027]))
    text = chains._methods_text("toy", stuck)
    assert "the frontier method certified nothing cheaper than m2 in most re-splits (90%" in text
    assert "(cost 0.893 of m2's) already loses 0.027 of m2's accuracy" in text
    assert text.count("\n\n") == 2  # the comparison, why, the refit variant
    calm = chains._methods_text("toy", dataclasses.replace(c, comparison=dataclasses.replace(
        c.comparison, cells=[dataclasses.replace(x, last_alone_share=0.1) for x in c.comparison.cells])))
    assert "certified nothing" not in calm
