"""calcas.chapters.estimators: the facts round-trip results.json, the verdict-like facts follow
the study's numbers, and the prose states them."""
from __future__ import annotations

import json

import pytest

from calcas.chapters import estimators
from calcas.chapters.common import DECIDING_INTERVALS
from calcas.params import write_results


@pytest.fixture(scope="module")
def facts():
    return estimators.compute(draws=4, n_boot=20, seed=1)


def test_facts_round_trip_results_json(facts, tmp_path):
    written = json.loads(write_results(tmp_path, facts.to_dict()).read_text())
    again = estimators.EstimatorsFacts.from_dict(written)
    assert again.to_dict() == written
    assert isinstance(again.deciding_summary[0], estimators.DecidingInterval)
    assert isinstance(again.interval_summary.worst, tuple)


def test_deciding_summary_is_the_worst_row_of_each_interval(facts):
    import pandas as pd
    table = pd.DataFrame(facts.deciding)
    for s in facts.deciding_summary:
        rows = table[table["interval"] == s.interval]
        assert s.worst == rows["coverage"].min() and s.best == rows["coverage"].max() and s.rows == len(rows)
        assert s.covers == (s.worst >= estimators.COVERAGE_FLOOR)
    assert [s.interval for s in facts.deciding_summary] == list(DECIDING_INTERVALS)
    assert facts.all_deciding_covered == all(s.covers for s in facts.deciding_summary)


def test_bias_facts_follow_the_target(facts):
    import pandas as pd
    est = pd.DataFrame(facts.estimates)
    for b in facts.bias:
        debiased = est[(est.amplitude == b.amplitude) & (est.estimator == "debiased")]
        over = debiased[debiased["bias"].abs() > estimators.BIAS_TARGET]
        assert b.misses_at == [(r.n, r.n_bins) for r in over.itertuples()]
        assert b.meets_target == (abs(b.debiased) <= estimators.BIAS_TARGET)
        assert b.plugin_share == pytest.approx(b.plugin / b.target)


def test_prose_states_the_facts(facts):
    text = estimators.prose(facts)
    assert set(text) == {"model", "bias", "calibrated", "intervals", "deciding", "check", "detectable"}
    for s in facts.deciding_summary:
        assert f"`{s.interval}` {s.worst:.1%} to {s.best:.1%} over {s.rows} cases" in text["deciding"]
    covered = "Each holds its truth in at least 90%"
    assert (covered in text["deciding"]) == facts.all_deciding_covered
    failing = estimators.EstimatorsFacts.from_dict({**facts.to_dict(), "all_deciding_covered": False})
    assert "falls below 90% somewhere" in estimators.prose(failing)["deciding"]
    assert "No verdict in this book rests on it." in text["intervals"]
    assert all("nan" not in t for t in text.values())


def test_tables_and_figure(facts):
    tables = estimators.tables(facts)
    assert list(tables["deciding"].index) == list(DECIDING_INTERVALS)
    # the detectable-ECE table in the order a reader reads bin counts, n as its rows
    detectable = tables["detectable"]
    bins = [c for c in detectable.columns if c.startswith("N = ")]
    assert bins == sorted(bins, key=lambda c: int(c[4:])) and detectable.index[0].startswith("n = ")
    assert list(detectable.columns[-2:]) == ["default N", "at default N"]
    assert tables["bias"].index[0].startswith("a = ") and ", n = " in tables["bias"].index[0]  # one label a row
    assert list(tables["bias"].columns) == list(estimators.study.ESTIMATOR_NAMES.values())
    fig = estimators.figures(facts)
    assert len(fig.axes) == len(facts.truth)
