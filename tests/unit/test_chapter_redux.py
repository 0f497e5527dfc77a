"""The MMLU-Redux chapter (calcas.chapters.redux): the sweep against a hand loop and scipy's
Wilson interval, every verdict's outcome on designed tables, facts that round-trip
results.json, prose that names only what its facts hold, bad inputs refused with a message."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from calcas.chapters import redux
from calcas.chapters.common import interval_text, paper_reference, table_interval
from calcas.params import write_results
from test_chapter_cleaning import FOREIGN, assert_numbers_from, wilson


def _table(groups: list[tuple[int, int, str]], m: int = 4) -> pd.DataFrame:
    """A Redux-shaped table from ``(rows, experts disagreeing, error_type)`` groups: each row's
    given answer is 0; the first ``d`` experts answer 1, the others 0."""
    rows = [(d, kind) for count, d, kind in groups for _ in range(count)]
    table = pd.DataFrame({"answer": np.zeros(len(rows), int), "error_type": [kind for _, kind in rows]})
    for j in range(m):
        table[f"e{j}"] = [int(j < d) for d, _ in rows]
    return table


EXPERTS = [f"e{j}" for j in range(4)]


def test_sweep_against_a_hand_loop_and_scipy():
    rng = np.random.default_rng(0)
    n = 800
    table = pd.DataFrame({"answer": rng.integers(0, 4, n),
                          "error_type": rng.choice(["ok", "wrong_groundtruth", "bad_question_clarity"], n,
                                                   p=[0.8, 0.1, 0.1])})
    for j in range(5):
        table[f"m{j}"] = np.where(rng.random(n) < 0.7, table["answer"], rng.integers(-1, 4, n))
    models = [f"m{j}" for j in range(5)]
    facts = redux.compute(table, k=3, models=models, dataset="toy audit")
    disagree = (table[models].to_numpy() != table["answer"].to_numpy()[:, None]).sum(axis=1)
    for truth, problem in (("any_problem", table["error_type"] != "ok"),
                           ("wrong_truth", table["error_type"] == "wrong_groundtruth")):
        s = facts.sweeps[truth]
        assert s.k == [5, 4, 3, 2, 1]
        for i, k in enumerate(s.k):
            flagged = disagree >= k
            found = int((flagged & problem).sum())
            assert s.n_flagged[i] == flagged.sum() and s.n_found[i] == found
            assert s.detection_rate[i] == pytest.approx(flagged.mean())
            assert s.precision[i] == pytest.approx(found / flagged.sum())
            assert (s.precision_low[i], s.precision_high[i]) == pytest.approx(wilson(found, flagged.sum()))
            assert s.recall[i] == pytest.approx(found / problem.sum())
            assert (s.recall_low[i], s.recall_high[i]) == pytest.approx(wilson(found, problem.sum()))
        assert facts.base_rate[truth] == pytest.approx(problem.mean())
    at = facts.at_k
    i = facts.sweeps["any_problem"].at(3)
    assert at.k == 3 and at.n_flagged == facts.sweeps["any_problem"].n_flagged[i]
    assert at.precision["wrong_truth"].value == facts.sweeps["wrong_truth"].precision[i]
    assert facts.method_1.k == 5 and not facts.k_is_method_1
    flagged = disagree >= 3
    for kind, e in facts.found_at_k.items():
        of_kind = (table["error_type"] == kind).to_numpy()
        assert (e.questions, e.flagged) == (of_kind.sum(), (flagged & of_kind).sum())
        assert (e.share_flagged.low, e.share_flagged.high) == pytest.approx(wilson(e.flagged, e.questions))


def test_bad_k_and_the_flags_per_error_type():
    table = pd.DataFrame({"answer": [0, 1], "error_type": ["ok", "wrong_groundtruth"], "a": [0, 0], "b": [1, 0]})
    with pytest.raises(ValueError, match=r"k: must be in \[1, 2\] \(the number of experts\), got 3"):
        redux.compute(table, models=["a", "b"], k=3)
    with pytest.raises(ValueError, match=r"k: must be in \[1, 2\] \(the number of experts\), got 0"):
        redux.compute(table, models=["a", "b"], k=0)
    facts = redux.compute(table, models=["a", "b"], k=2)
    found = facts.found_at_k["wrong_groundtruth"]
    assert (found.questions, found.flagged, found.share_flagged.value) == (1, 1, 1.0)
    assert facts.k_is_method_1


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop(columns="error_type"), r"table: missing column\(s\) \['error_type'\]"),
    (lambda t: t.assign(error_type=[None, "ok"]), r"error_type: 1 question\(s\) carry no annotation"),
])
def test_bad_tables_are_refused_with_a_message(change, message):
    table = pd.DataFrame({"answer": [0, 1], "error_type": ["ok", "wrong_groundtruth"], "a": [0, 0], "b": [1, 0]})
    with pytest.raises(ValueError, match=message):
        redux.compute(change(table), models=["a", "b"], k=1)


def test_bad_models_and_table_types_are_refused_with_a_message():
    table = pd.DataFrame({"answer": [0], "error_type": ["ok"], "a": [0]})
    with pytest.raises(ValueError, match=r"models: no column for \['zz'\] in the table"):
        redux.compute(table, models=["a", "zz"], k=1)
    with pytest.raises(ValueError, match=r"models: no expert's answers in the table"):
        redux.compute(table, k=1)  # none of REDUX_MODELS is a column
    with pytest.raises(ValueError, match=r"table: expected a path or a pandas DataFrame, got list"):
        redux.compute([1, 2], k=1)
    with pytest.raises(ValueError, match=r"k: expected an integer"):
        redux.compute(table, models=["a"], k=1.0)


# ---------------------------------------------------------------------------- verdicts on designed tables

def test_precision_falls_every_outcome():
    # above: the questions every expert rejects are the wrong ones; those one expert rejects are fine
    falls = redux.compute(_table([(60, 4, "wrong_groundtruth"), (300, 1, "ok"), (640, 0, "ok")]), models=EXPERTS, k=4)
    assert {v.outcome for v in falls.precision_falls.values()} == {"above"}
    rises = redux.compute(_table([(60, 4, "ok"), (300, 1, "wrong_groundtruth"), (640, 0, "ok")]), models=EXPERTS, k=4)
    assert {v.outcome for v in rises.precision_falls.values()} == {"below"}
    same = redux.compute(_table([(50, 4, "wrong_groundtruth"), (50, 4, "ok"), (150, 1, "wrong_groundtruth"),
                                 (150, 1, "ok"), (600, 0, "ok")]), models=EXPERTS, k=4)
    assert {v.outcome for v in same.precision_falls.values()} == {"within"}
    v = falls.precision_falls["wrong_truth"]
    s = falls.sweeps["wrong_truth"]
    assert v.estimate.interval == "proportion_difference_interval"
    most, least = 0, -1  # k = m (the fewest flags) and k = 1
    assert v.estimate.as_list() == pytest.approx([s.precision[most] - s.precision[least],
                                                  s.precision_low[most] - s.precision_high[least],
                                                  s.precision_high[most] - s.precision_low[least]])
    assert falls.paper_claims == {"precision_falls_with_detection_rate": "agrees"}
    assert rises.paper_claims == {"precision_falls_with_detection_rate": "disagrees"}
    assert same.paper_claims == {"precision_falls_with_detection_rate": "cannot_tell"}
    assert "**rises**" in redux.prose(rises)["trend"] and "the opposite holds" in redux.prose(rises)["paper"]
    one = redux.compute(_table([(10, 1, "ok"), (10, 0, "wrong_groundtruth")], m=1), models=["e0"], k=1)
    assert one.precision_falls is None and one.paper_claims == {"precision_falls_with_detection_rate": "not_measured"}


def test_above_base_rate_every_outcome():
    # flagged questions: all wrong (above the 10% base rate), all fine (below), or 10% wrong (within)
    above = redux.compute(_table([(100, 4, "wrong_groundtruth"), (900, 0, "ok")]), models=EXPERTS, k=4)
    assert above.at_k.above_base_rate["wrong_truth"].outcome == "above"
    assert above.at_k.above_base_rate["wrong_truth"].reference == pytest.approx(0.1)
    below = redux.compute(_table([(100, 4, "ok"), (100, 0, "wrong_groundtruth"), (800, 0, "ok")]), models=EXPERTS,
                          k=4)
    assert below.at_k.above_base_rate["wrong_truth"].outcome == "below"
    within = redux.compute(_table([(10, 4, "wrong_groundtruth"), (90, 4, "ok"), (90, 0, "wrong_groundtruth"),
                                   (810, 0, "ok")]), models=EXPERTS, k=4)
    assert within.at_k.above_base_rate["wrong_truth"].outcome == "within"
    text = redux.prose(below)["flags"]
    assert "less often than a question drawn from the whole set" in text


# ---------------------------------------------------------------------------- results.json and prose

@pytest.fixture(scope="module")
def mixed() -> redux.ReduxFacts:
    return redux.compute(_table([(40, 4, "wrong_groundtruth"), (30, 4, "ok"), (20, 3, "bad_question_clarity"),
                                 (80, 2, "ok"), (30, 1, "wrong_groundtruth"), (800, 0, "ok")]), models=EXPERTS, k=3)


def test_facts_round_trip_through_results_json(mixed, tmp_path):
    written = json.loads(write_results(tmp_path, mixed.to_dict()).read_text())
    back = redux.ReduxFacts.from_dict(written)
    assert json.loads(json.dumps(back.to_dict())) == written
    assert redux.prose(back) == redux.prose(mixed)
    for name, table in redux.tables(mixed).items():
        pd.testing.assert_frame_equal(redux.tables(back)[name], table, check_exact=False, atol=1e-6)


def test_every_number_in_the_prose_comes_from_the_facts(mixed, tmp_path):
    written = json.loads(write_results(tmp_path, mixed.to_dict()).read_text())
    for text in redux.prose(mixed).values():
        assert_numbers_from(text, written, paper_reference())


def test_prose_of_another_audited_data_set_names_only_what_its_facts_hold():
    facts = redux.compute(_table([(40, 4, "wrong_groundtruth"), (300, 1, "ok"), (660, 0, "ok")]), models=EXPERTS,
                          k=4, dataset="toy audit")
    assert facts.paper_dataset is None and facts.paper_claims == {}
    text = " ".join(redux.prose(facts).values())
    for name in FOREIGN:
        assert not re.search(rf"\b{re.escape(name)}\b", text, re.I), name
    assert "makes no cleaning claim about toy audit" in text and "toy audit's annotators" in text


def test_tables_and_figure_draw_from_facts(mixed):
    import matplotlib.pyplot as plt
    shown = redux.tables(mixed)
    sweep = shown["sweep_wrong_truth"]
    p = mixed.at_k.precision["wrong_truth"]
    assert sweep.loc["k = 3", "precision [95%]"] == table_interval(p)  # one cell per estimate
    assert sweep.loc["k = 3", "precision [95%]"].replace("\u00a0", " ") == interval_text(p)  # as the prose reads it
    found = shown["found_at_k"]
    assert "wrong_groundtruth" not in found.index and "wrong ground truth" in found.index  # words, not keys
    assert list(shown["found_at_k"]["questions"]) == sorted(shown["found_at_k"]["questions"], reverse=True)
    fig = redux.figures(mixed)["sweep"]
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()] == list(redux.TRUTHS.values())
    np.testing.assert_allclose(right.get_lines()[1].get_xdata(), mixed.sweeps["wrong_truth"].recall)
    plt.close(fig)


def test_threshold_sweep_figure_refuses_bad_tables():
    from calcas.render import plots
    with pytest.raises(ValueError, match=r"sweeps: no series to draw"):
        plots.threshold_sweep_figure({}, threshold="k", threshold_label="k")
    with pytest.raises(ValueError, match=r"sweeps: 'a' lacks columns \['recall'\]"):
        plots.threshold_sweep_figure({"a": pd.DataFrame({"k": [1], "precision": [0.5]})}, threshold="k",
                                     threshold_label="k")
