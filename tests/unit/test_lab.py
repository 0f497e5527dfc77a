"""The calibration lab: calcas.lab's sweeps against direct calls and simulations with a known
truth; the chapter (calcas.chapters.lab): facts from the grids, prose from the facts, explorers
whose every slider position shows data; bad inputs with their messages."""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax as scipy_softmax

pytest.importorskip("altair")

import calcas  # noqa: E402
from calcas import lab  # noqa: E402
from calcas.chapters import lab as chapter  # noqa: E402
from calcas.params import write_results  # noqa: E402
from calcas.render.plots import annotated_reliability_diagram  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def over():
    """An over-confident synthetic model (logits x 2), no flipped labels."""
    m = calcas.make_synthetic(4_000, accuracy=(0.8,), confidence_scale=(2.0,), flip_rate=0.0, names=("o",),
                              seed=5)["o"]
    return m, m.cal_mask(seed=1)


@pytest.fixture(scope="module")
def sweep(over):
    m, cal = over
    return lab.temperature_sweep(m.logits, m.label, cal=cal, temperatures=lab.log_grid(0.25, 4, steps_per_doubling=2),
                                 n_bins=10)


@pytest.fixture(scope="module")
def models():
    return calcas.make_synthetic(2_000, accuracy=(0.8, 0.8, 0.8), confidence_scale=(2.0, 0.6, 1.0),
                                 names=chapter.MODEL_NAMES, flip_rate=0.0, seed=0)


@pytest.fixture(scope="module")
def grids(models):
    """The chapter's grids at the notebook's defaults but few draws and samples (about 1.5 s)."""
    return chapter.precompute(models, n_bins=15, draws=3, bins_sample=600, seed=0)


@pytest.fixture(scope="module")
def facts(grids):
    return chapter.compute(grids)


# ---------------------------------------------------------------- calcas.lab: grids against direct calls

def test_log_grid_and_log_sizes():
    grid = lab.log_grid(0.25, 4.0, steps_per_doubling=8)
    assert len(grid) == 33 and grid[0] == 0.25 and grid[-1] == 4.0 and 1.0 in grid
    np.testing.assert_allclose(np.diff(np.log2(grid)), 0.125, rtol=0, atol=1e-15)
    sizes = lab.log_sizes(100, 20_000, steps_per_decade=8)
    assert sizes[0] == 100 and sizes[-1] <= 20_000 and 1000 in sizes and 10_000 in sizes
    np.testing.assert_allclose(np.diff(np.log10(sizes)), 1 / 8, atol=2e-3)  # rounding n to integers


def test_temperature_grid_equals_direct_calls(over, sweep):
    m, cal = over
    z, y = m.logits[~cal].astype(np.float64), m.label[~cal]
    accuracy = float(np.mean(z.argmax(axis=1) == y))
    for row in sweep.curve.itertuples():
        p = scipy_softmax(z / row.T, axis=1)  # scipy, not calcas, for the probabilities
        conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
        assert row.ece == pytest.approx(calcas.ece(conf, correct, 10), abs=1e-12)
        assert row.nll == pytest.approx(-np.mean(np.log(p[np.arange(len(y)), y])), rel=1e-9)
        # T > 0 never moves the argmax: accuracy is the same at every T
        assert row.accuracy == accuracy
        table = calcas.reliability_table(conf, correct, 10)
        got = sweep.bins[sweep.bins["log2_T"] == row.log2_T]
        np.testing.assert_allclose(got["accuracy"], table["accuracy"], atol=1e-12)
        np.testing.assert_allclose(got["mean_confidence"], table["mean_confidence"], atol=1e-9)


def test_fitted_temperature_is_fit_temperature_on_cal(over, sweep):
    m, cal = over
    T = calcas.fit_temperature(m.logits[cal], m.label[cal])
    assert sweep.fitted["T"] == T
    # the model's logits were doubled: T recovers the scale (no label flips)
    assert 1.8 < T < 2.2
    p = scipy_softmax(m.logits[~cal].astype(np.float64) / T, axis=1)
    y = m.label[~cal]
    assert sweep.fitted["ece"] == pytest.approx(calcas.ece(p.max(axis=1), p.argmax(axis=1) == y, 10), abs=1e-12)
    # temperature scaling helps this model: lower ECE and NLL on test than the raw model (T = 1)
    raw = sweep.curve[sweep.curve["T"] == 1.0].iloc[0]
    assert sweep.fitted["ece"] < raw.ece / 3 and sweep.fitted["nll"] < raw.nll


def test_plugin_ece_of_a_calibrated_model_rises_as_n_falls():
    """A perfectly calibrated model (true ECE 0): the plug-in's mean over draws falls with n
    as the noise theory says, the debiased estimate is lower at every n."""
    pool = calcas.make_synthetic(20_000, accuracy=(0.8,), confidence_scale=(1.0,), flip_rate=0.0, names=("m",),
                                 seed=2)["m"].raw_confidence()
    sizes = np.array([150, 600, 2400, 9600])
    got = lab.sample_size_sweep(pool, sizes=sizes, draws=200, n_bins=15, seed=4)
    plugin = got[got["estimator"] == "plugin"].set_index("n")
    assert list(plugin.index) == sizes.tolist()
    assert np.all(np.diff(plugin["mean"]) < 0)
    # each quadrupling of n halves the noise in every bin: the plug-in's bias halves
    ratios = plugin["mean"].to_numpy()[1:] / plugin["mean"].to_numpy()[:-1]
    assert np.all((ratios > 0.4) & (ratios < 0.6)), ratios
    # the theory at n = 9600: E|gap| = sqrt(2/pi) sigma per bin, sigma^2 = p(1 - p) / m
    edges = calcas.equal_count_edges(pool, 15)
    bins = calcas.assign_bins(pool, edges)
    p = np.array([pool[bins == b].mean() for b in range(15)])
    theory = np.mean(np.sqrt(2 / np.pi) * np.sqrt(p * (1 - p) / (9600 / 15)))
    assert plugin.loc[9600, "mean"] == pytest.approx(theory, rel=0.15)
    assert np.all(plugin["low"] < plugin["mean"]) and np.all(plugin["mean"] < plugin["high"])
    debiased = got[got["estimator"] == "debiased"].set_index("n")
    assert np.all(debiased["mean"] < plugin["mean"])
    # at a true gap of 0 the correction leaves (2 - sqrt 2) of the bias (calcas.ece's Notes)
    assert debiased.loc[9600, "mean"] / plugin.loc[9600, "mean"] == pytest.approx(2 - np.sqrt(2), abs=0.08)


def test_binning_grid_equals_direct_calls(over):
    m, cal = over
    conf, correct = m.raw_confidence()[~cal], m.verified[~cal]
    bins, summary = lab.binning_sweep(conf, correct, n_bins=[5, 15], sample=1000, seed=3)
    rows = np.sort(np.random.default_rng(3).choice(len(conf), 1000, replace=False))
    for r in summary.itertuples():
        table = calcas.reliability_table(conf[rows], correct[rows], r.N, r.binning)
        assert r.ece == pytest.approx(calcas.ece(conf[rows], correct[rows], r.N, r.binning), abs=1e-15)
        assert r.smallest == table.loc[table["count"] > 0, "count"].min()
        assert r.empty == (table["count"] == 0).sum()
        got = bins[(bins["N"] == r.N) & (bins["binning"] == r.binning)]
        assert got["count"].sum() == 1000
    at15 = summary[summary["N"] == 15].set_index("binning")
    # an over-confident model: equal-width low bins nearly empty, equal-count bins all ~1000/15
    assert at15.loc["equal_width", "smallest"] < at15.loc["equal_count", "smallest"] / 3
    assert at15.loc["equal_count", "smallest"] >= 1000 // 15 - 1


def test_the_sweeps_module_draws_nothing():
    """calcas.lab is pure computation: no plotting library is imported there."""
    source = (ROOT / "calcas" / "lab.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+(altair|matplotlib)", source, re.M)
    assert not re.search(r"^\s*from\s+\.(render|chapters)", source, re.M)


# ---------------------------------------------------------------- the chapter: facts from the grids

def test_facts_are_the_grids_numbers(models, grids, facts):
    curve, fitted = grids.temperature.curve, grids.temperature.fitted
    t = facts.temperature
    raw = curve[curve["T"] == 1.0].iloc[0]
    assert (t.at_1.ece, t.at_1.nll, t.at_1.accuracy) == (raw.ece, raw.nll, raw.accuracy)
    assert (t.fitted_T, t.at_fitted.ece, t.at_fitted.nll) == (fitted["T"], fitted["ece"], fitted["nll"])
    # fitted on the over-confident model's cal half, with the notebook's split
    over = models["over-confident"]
    cal = over.cal_mask(seed=0)
    assert t.fitted_T == calcas.fit_temperature(over.logits[cal], over.label[cal])
    # the test half's accuracy, by hand: T never moves the argmax
    accuracy = float(np.mean(over.logits[~cal].argmax(axis=1) == over.label[~cal]))
    assert t.accuracy_range == (accuracy, accuracy) and t.accuracy_constant
    assert t.fitted_raised_ece is bool(fitted["ece"] > raw.ece) and t.fitted_lowered_nll is bool(fitted["nll"] < raw.nll)

    s = facts.sample_size
    assert (s.small_n, s.large_n) == (100, 17_783)  # log_sizes(100, 20000): 10 ** (34 / 8) rounded
    table = grids.sample_size.set_index(["estimator", "n"])["mean"]
    for est in ("plugin", "debiased"):
        assert (s.mean_ece[est].small_n, s.mean_ece[est].large_n) == (table[est, 100], table[est, 17_783])
    assert s.debiased_share_of_plugin.large_n == table["debiased", 17_783] / table["plugin", 17_783]
    assert s.debiased_share_of_plugin.small_n == table["debiased", 100] / table["plugin", 100]

    b = facts.binning
    assert b.n_bins == 15 and b.answers_shown == 600  # bins_sample, fewer than the 1,000 test answers
    summary = grids.bin_summary.set_index(["binning", "N"])
    for key in ("equal_count", "equal_width"):
        row = summary.loc[(key, 15)]
        assert (getattr(b, key).ece, getattr(b, key).smallest, getattr(b, key).empty) == \
               (row["ece"], row["smallest"], row["empty"])
    # the reading guide's tables are those of the raw test halves
    under = models["under-confident"]
    expected = calcas.reliability_table(under.raw_confidence()[~cal], under.verified[~cal], 15)
    pd.testing.assert_frame_equal(grids.reading_tables["under-confident"], expected)


def test_results_json_round_trips_and_keeps_the_old_keys(tmp_path, facts):
    """results.json is facts.to_dict() as write_results writes it; from_dict reads it back, and
    every key the old lab_results wrote is still there, at the same place."""
    path = write_results(tmp_path, facts.to_dict())
    data = json.loads(path.read_text())
    again = chapter.LabFacts.from_dict(data)
    assert again.to_dict() == data
    assert again.temperature.fitted_T == round(facts.temperature.fitted_T, 6)
    assert again.sample_size.mean_ece["plugin"].large_n == round(facts.sample_size.mean_ece["plugin"].large_n, 6)
    old = {"temperature": {"fitted_T", "at_fitted", "at_1", "accuracy_range"},
           "sample_size": {"small_n", "large_n", "mean_ece"},
           "binning": {"n_bins", "equal_count", "equal_width"}}
    for section, keys in old.items():
        assert keys <= set(data[section]), (section, keys - set(data[section]))
    for at in ("at_1", "at_fitted"):
        assert set(data["temperature"][at]) == {"ece", "nll", "accuracy"}
    assert set(data["sample_size"]["mean_ece"]) == {"plugin", "debiased"}
    assert set(data["sample_size"]["mean_ece"]["plugin"]) == {"small_n", "large_n"}
    assert set(data["binning"]["equal_width"]) == {"ece", "smallest", "empty"}


def _replace_fitted(grids, **changes):
    temperature = grids.temperature
    return dataclasses.replace(grids, temperature=dataclasses.replace(
        temperature, fitted={**temperature.fitted, **changes}))


def test_the_ece_went_up_only_where_the_fitted_T_raised_it(grids, facts):
    raw = facts.temperature.at_1
    up = chapter.compute(_replace_fitted(grids, ece=raw.ece + 0.01, nll=raw.nll - 0.01))
    assert up.temperature.fitted_raised_ece and up.temperature.fitted_lowered_nll
    text = chapter.prose(up)["temperature"]
    assert "went **up**, not down" in text and "which needs no bins, fell." in text
    neither = chapter.compute(_replace_fitted(grids, ece=raw.ece + 0.01, nll=raw.nll + 0.01))
    assert "which needs no bins, did not fall either." in chapter.prose(neither)["temperature"]
    down = chapter.compute(_replace_fitted(grids, ece=raw.ece - 0.01))
    assert not down.temperature.fitted_raised_ece and "went **up**" not in chapter.prose(down)["temperature"]
    # equal is not "up"
    same = chapter.compute(_replace_fitted(grids, ece=raw.ece))
    assert not same.temperature.fitted_raised_ece


def test_accuracy_is_said_constant_only_where_it_is(grids):
    curve = grids.temperature.curve.copy()
    curve.loc[0, "accuracy"] -= 0.01
    moved = chapter.compute(dataclasses.replace(grids, temperature=dataclasses.replace(grids.temperature,
                                                                                       curve=curve)))
    assert not moved.temperature.accuracy_constant
    low, high = moved.temperature.accuracy_range
    assert f"accuracy moves between {low:.4f} and {high:.4f}" in chapter.prose(moved)["temperature"]


def test_prose_phrases_the_facts_and_computes_nothing(facts):
    """Facts whose shares disagree with their means on purpose: the prose prints the shares it
    is given (it divides nothing), and every number it prints is a fact."""
    data = facts.to_dict()
    data["sample_size"]["mean_ece"] = {"plugin": {"small_n": 0.1, "large_n": 0.01},
                                       "debiased": {"small_n": 0.06, "large_n": 0.004}}
    data["sample_size"]["debiased_share_of_plugin"] = {"small_n": 0.123, "large_n": 0.456}
    data["temperature"].update(fitted_T=2.5, at_1={"ece": 0.1, "nll": 0.8, "accuracy": 0.8},
                               at_fitted={"ece": 0.02, "nll": 0.6, "accuracy": 0.8}, accuracy_range=[0.8, 0.8],
                               accuracy_constant=True, fitted_raised_ece=False, fitted_lowered_nll=True)
    data["binning"].update(n_bins=12, equal_count={"ece": 0.03, "smallest": 50, "empty": 0},
                           equal_width={"ece": 0.04, "smallest": 2, "empty": 3})
    text = chapter.prose(chapter.LabFacts.from_dict(data))
    assert text["temperature"] == ("Fitted on the cal half, **T = 2.50**. On the test half that T takes the ECE from "
                                   "0.1000 (T = 1, the raw model) to 0.0200, and the NLL from 0.8000 to 0.6000, while "
                                   "accuracy is 0.8000 at every T of the grid.")
    assert text["sample_size"] == ("For this perfectly calibrated model (true ECE 0), the plug-in ECE averages 0.1000 "
                                   "at n = 100 and 0.0100 at n = 17,783; the debiased ECE averages 0.0600 at n = 100 "
                                   "and 0.0040 at n = 17,783. At n = 17,783 the debiased estimate keeps 46% of the "
                                   "plug-in's bias; at n = 100 it keeps 12%.")
    assert text["binning"] == ("At N = 12, with equal-count bins the fewest samples in a bin is 50 and the ECE "
                               "0.0300; with equal-width bins the fewest samples in a bin is 2 (3 empty) and the "
                               "ECE 0.0400.")
    # one estimator alone: no share to state
    data["sample_size"]["mean_ece"] = {"plugin": data["sample_size"]["mean_ece"]["plugin"]}
    data["sample_size"]["debiased_share_of_plugin"] = None
    alone = chapter.prose(chapter.LabFacts.from_dict(data))["sample_size"]
    assert "debiased" not in alone and alone.endswith("0.0100 at n = 17,783.")


# ---------------------------------------------------------------- the explorers: every slider position shows data

def _js_round(x: float) -> int:
    return math.floor(x + 0.5)  # JavaScript's Math.round, which Vega's round() is


def _predicate(expression: str):
    """A Vega filter expression of the forms the explorers use (===, &&, datum.f, datum['f'],
    round) as a Python function of (datum, controls)."""
    python = re.sub(r"datum\.(\w+)", r"datum['\1']", expression)
    python = python.replace("===", "==").replace("&&", " and ").replace("||", " or ").replace("round(", "_round(")
    if re.search(r"[!?:]|\b(?!datum\b|_round\b|and\b|or\b)[A-Za-z_]\w*\s*\(", python):
        raise AssertionError(f"a filter form this test cannot read: {expression!r}")
    code = compile(python, "<vega filter>", "eval")
    return lambda datum, controls: eval(code, {"_round": _js_round, "datum": datum, **controls})


def _positions(param: dict) -> list:
    """Every value a reader can give ``param``: a range slider's min + i * step, both as
    JavaScript computes it in floats and as the browser's input computes it in decimals
    (Chromium's StepRange), up to max; a radio's or a drop-down's options."""
    bind = param["bind"]
    if bind.get("input") == "range":
        low, high, step = bind["min"], bind["max"], bind["step"]
        count = math.floor((high - low) / step + 1e-9)
        floats = [low + i * step for i in range(count + 1)]
        decimals = [float(Decimal(repr(low)) + i * Decimal(repr(step))) for i in range(count + 1)]
        assert floats[-1] == pytest.approx(high) and param["value"] in floats + decimals
        return sorted(set(floats + decimals))
    assert "options" in bind, bind
    return list(bind["options"])


def _filtered_layers(spec: dict):
    """(name or mark, rows, filter expressions) of every unit view whose data is filtered,
    data inherited from the enclosing view where it has none of its own."""
    def walk(view, inherited_data, inherited_filters):
        data = view.get("data", inherited_data)
        own = [t["filter"] for t in view.get("transform", []) if "filter" in t]
        filters = own + (inherited_filters if "data" not in view else [])
        if "mark" in view:
            if filters:
                mark = view["mark"]["type"] if isinstance(view["mark"], dict) else view["mark"]
                yield view.get("name", mark), spec["datasets"][data["name"]], filters
            return
        for key in ("vconcat", "hconcat", "layer"):
            for child in view.get(key, []):
                yield from walk(child, data, filters)
    yield from walk(spec, spec.get("data"), [])


def _check_every_position(spec: dict) -> int:
    """Assert that at every combination of the controls' positions every filtered layer sees
    rows; returns how many combinations were checked."""
    params = {p["name"]: p for p in spec["params"]}
    positions = {name: _positions(p) for name, p in params.items()}
    layers = list(_filtered_layers(spec))
    assert layers, "no filtered layer: nothing follows the controls"
    combinations = [dict(zip(positions, values)) for values in itertools.product(*positions.values())]
    for name, rows, filters in layers:
        for expression in filters:
            assert isinstance(expression, str), f"{name}: a filter this test cannot read: {expression!r}"
        predicates = [_predicate(e) for e in filters]
        for controls in combinations:
            seen = [r for r in rows if all(p(r, controls) for p in predicates)]
            assert seen, f"{name}: no rows at {controls} (filters {filters})"
    return len(combinations)


def _lines_at(spec: dict, controls: dict) -> str:
    """The read-out a reader sees at ``controls``: the text panel's rows that pass its filter."""
    for name, rows, filters in _filtered_layers(spec):
        if rows and "line" in rows[0]:
            predicates = [_predicate(e) for e in filters]
            seen = [r for r in rows if all(p(r, controls) for p in predicates)]
            return " ".join(r["line"] for r in sorted(seen, key=lambda r: r["y"]))
    raise AssertionError("no read-out panel")


def test_every_slider_position_of_every_lab_explorer_shows_data(grids, facts):
    """The temperature slider's 33 positions (the float log2 T of 10 of them differs from the
    slider's value in the last bit), the sample-size slider's and every (N, binning) pair:
    each filtered layer sees rows, and the read-out names the position the slider shows."""
    shown = chapter.explorers(grids, facts)
    assert set(shown) == {"temperature", "sample_size", "binning"}
    specs = {name: e.to_dict() for name, e in shown.items()}
    assert _check_every_position(specs["temperature"]) == 33
    for value in _positions(specs["temperature"]["params"][0]):
        assert f"log₂ T = {value:g}):" in _lines_at(specs["temperature"], {"log2_T": value})
        assert f"T = {2 ** value:.2f} " in _lines_at(specs["temperature"], {"log2_T": value})
    assert _check_every_position(specs["sample_size"]) == 19  # 100 .. 17,783: 2 to 4.25 in eighths
    for value in _positions(specs["sample_size"]["params"][0]):
        assert f"log₁₀ n ≈ {value:g}):" in _lines_at(specs["sample_size"], {"log10_n": value})
    assert _check_every_position(specs["binning"]) == 29 * 2  # N = 2..30, two binnings
    for N, binning in itertools.product(range(2, 31), ("equal_count", "equal_width")):
        label = chapter.BINNING_LABELS[binning]
        assert f"N = {N}, {label} bins:" in _lines_at(specs["binning"], {"N": N, "binning": binning})


def test_the_position_check_catches_float_equality():
    """The check above fails on a filter that compares floats (today's lab before the keys):
    log2(2 ** (-4 / 8)) is -0.4999999999999999, the slider's -2 + 12 * 0.125 is -0.5."""
    rows = [{"log2_T": float(np.log2(t))} for t in lab.log_grid(0.25, 4)]
    spec = {"params": [{"name": "log2_T", "value": 0.0,
                        "bind": {"input": "range", "min": -2.0, "max": 2.0, "step": 0.125}}],
            "datasets": {"d": rows}, "data": {"name": "d"},
            "layer": [{"mark": "point", "transform": [{"filter": "(datum.log2_T === log2_T)"}]}]}
    with pytest.raises(AssertionError, match=r"point: no rows at \{'log2_T': -0.5\}"):
        _check_every_position(spec)


def test_temperature_explorer_reads_out_the_grid(sweep):
    spec = chapter.temperature_explorer(sweep).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["log2_T"]["value"] == 0.0  # starts at T = 1, the raw model
    bind = params["log2_T"]["bind"]
    assert (bind["min"], bind["max"], bind["step"]) == (-2.0, 2.0, 0.5)
    for row in sweep.curve.itertuples():
        text = _lines_at(spec, {"log2_T": row.log2_T})
        assert f"T = {row.T:.2f}" in text and f"ECE = {row.ece:.4f}" in text and f"NLL = {row.nll:.4f}" in text
        assert f"accuracy = {row.accuracy:.4f}" in text
    marks = [rows for rows in spec["datasets"].values() if rows and "label" in rows[0]]
    assert marks and marks[0][0]["T"] == sweep.fitted["T"]
    # the marks the browser tests find by name (altair numbers a layer's name: "current_T_ece_2")
    names = {re.sub(r"_\d+$", "", name) for name, _, _ in _filtered_layers(spec)}
    assert {"current_T_ece", "current_T_nll", "temperature_diagram_points", "temperature_diagram_gaps"} <= names


def test_binning_explorer_filters_by_both_controls(over):
    m, cal = over
    bins, summary = lab.binning_sweep(m.raw_confidence()[~cal], m.verified[~cal], n_bins=range(2, 21))
    spec = chapter.binning_explorer(bins, summary, default=15).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["N"]["bind"]["input"] == "range" and params["binning"]["bind"]["input"] == "radio"
    assert params["binning"]["bind"]["options"] == ["equal_count", "equal_width"]
    for r in summary.itertuples():
        text = _lines_at(spec, {"N": r.N, "binning": r.binning})
        assert f"ECE = {r.ece:.4f}" in text and f"fewest samples in a bin: {r.smallest:,}" in text
    # the diagram at N = 7, equal-width: exactly that table's non-empty bins
    points = next(rows_ for name, rows_, _ in _filtered_layers(spec) if name.startswith("binning_diagram_points"))
    at7 = [r for r in points if r["N"] == 7 and r["binning"] == "equal_width"]
    table = calcas.reliability_table(m.raw_confidence()[~cal], m.verified[~cal], 7, "equal_width")
    assert sorted(r["count"] for r in at7) == sorted(table.loc[table["count"] > 0, "count"])


def test_annotated_diagram_marks_a_bins_gap(over):
    import matplotlib
    matplotlib.use("Agg")
    m, cal = over
    under = calcas.make_synthetic(4_000, accuracy=(0.8,), confidence_scale=(0.6,), flip_rate=0.0, names=("u",),
                                  seed=5)["u"]
    t_over = calcas.reliability_table(m.raw_confidence()[~cal], m.verified[~cal])
    t_under = calcas.reliability_table(under.raw_confidence()[~cal], under.verified[~cal])
    ax = annotated_reliability_diagram(t_over, t_under)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "over-confident" in texts and "accuracy below confidence" in texts and "under-confident" in texts
    row = t_over.iloc[int(np.argmin(np.abs(t_over["mean_confidence"] - 0.75)))]
    assert f"= {abs(row['gap']):.3f}" in texts and "ECE" in texts
    # what the figure teaches holds for its data: the over-confident curve lies below the diagonal
    # (bins near confidence 1 sit on it for both: a model sure of an answer is right)
    assert (t_over.loc[t_over["mean_confidence"] < 0.9, "gap"] < 0).all()
    assert (t_under.loc[t_under["mean_confidence"] < 0.9, "gap"] > 0).all()
    import matplotlib.pyplot as plt
    plt.close("all")


def test_the_chapters_figure_is_the_reading_guide_of_its_tables(grids):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure = chapter.figures(grids)["annotated_reliability"]
    over = grids.reading_tables["over-confident"]
    row = over.iloc[int(np.argmin(np.abs(over["mean_confidence"] - 0.75)))]
    texts = " ".join(t.get_text() for t in figure.axes[0].texts)
    assert f"= {abs(row['gap']):.3f}" in texts
    plt.close(figure)


# ---------------------------------------------------------------- bad inputs

def test_bad_inputs_are_refused_with_their_names(over, sweep, models, grids):
    m, cal = over
    z, y = m.logits, m.label
    no_logits = {**models, "over-confident": dataclasses.replace(models["over-confident"], logits=None,
                                                                 confidence=models["over-confident"].raw_confidence())}
    no_one = dataclasses.replace(grids, temperature=dataclasses.replace(
        grids.temperature, curve=grids.temperature.curve[grids.temperature.curve["T"] != 1.0]))
    no_n_bins = dataclasses.replace(grids, n_bins=31)
    cases = [
        (lambda: lab.temperature_sweep(z, y, cal=cal.astype(int)), r"cal: expected a 1-D boolean mask"),
        (lambda: lab.temperature_sweep(z, y, cal=np.ones(len(y), bool)), r"cal: needs rows in both halves"),
        (lambda: lab.temperature_sweep(z, y, cal=cal[:-1]), r"length mismatch"),
        (lambda: lab.temperature_sweep(z, y, cal=cal, temperatures=[0.5, 0.0]), r"temperatures: must be > 0"),
        (lambda: lab.temperature_sweep(z, y, cal=cal, binning="quantile"), r"binning: expected one of"),
        (lambda: lab.temperature_sweep(np.where(z > 5, np.nan, z), y, cal=cal), r"logits: contains \d+ NaN"),
        (lambda: lab.log_grid(0.3, 4), r"low, high: expected powers of two"),
        (lambda: lab.log_grid(4, 0.25), r"low, high: expected 0 < low < high"),
        (lambda: lab.log_sizes(500, 100), r"low, high: expected low < high"),
        (lambda: lab.sample_size_sweep([0.5, 0.9], sizes=[10], n_bins=15), r"sizes: each n must be >= n_bins"),
        (lambda: lab.sample_size_sweep([0.5, 0.9], sizes=[100.0]), r"sizes: expected a 1-D array of integers"),
        (lambda: lab.sample_size_sweep([0.5, 1.2], sizes=[100]), r"confidence: values must be <= 1"),
        (lambda: lab.sample_size_sweep([0.5, 0.9], sizes=[100], estimators=("smooth",)), r"estimators: expected"),
        (lambda: lab.sample_size_sweep([0.5, 0.9], sizes=[100], percentiles=(90, 10)), r"percentiles: expected"),
        (lambda: lab.sample_size_sweep([0.5, 0.9], sizes=[100], draws=0), r"draws: must be >= 1"),
        (lambda: lab.min_detectable_curve([100.5]), r"sizes: expected a 1-D array of integers"),
        (lambda: lab.binning_sweep([0.5, 0.9], [1, 0], n_bins=[3]), r"n_bins: bin counts must lie in \[1, 2\]"),
        (lambda: lab.binning_sweep([0.5, 0.9], [1, 0, 1]), r"length mismatch"),
        (lambda: lab.binning_sweep([0.5, 0.9], [1, 0], n_bins=[1], binnings=("kmeans",)), r"binning: expected"),
        (lambda: annotated_reliability_diagram(pd.DataFrame({"count": [1]}), pd.DataFrame()),
         r"over: expected a reliability table, missing columns \['accuracy', 'mean_confidence'\]"),
        (lambda: chapter.precompute({k: v for k, v in models.items() if k != "calibrated"}),
         r"models: expected record sets named \['over-confident', 'under-confident', 'calibrated'\], "
         r"missing \['calibrated'\]"),
        (lambda: chapter.precompute(no_logits), r"models: the over-confident record set has no logits"),
        (lambda: chapter.precompute(models, n_bins=0), r"n_bins: must be >= 1"),
        (lambda: chapter.compute(no_one), r"grids: T = 1 is not on the temperature grid"),
        (lambda: chapter.compute(no_n_bins), r"grids: the binning sweep has no row for N = 31 with equal_count bins"),
        (lambda: chapter.LabFacts.from_dict({"temperature": {}, "lab": 1}), r"LabFacts: unknown keys \['lab'\]"),
        (lambda: chapter.temperature_view(sweep, -1.0), r"T: must be a finite number > 0"),
        (lambda: chapter.sample_size_view(grids.sample_size, 0), r"n: must be >= 1"),
        (lambda: chapter.binning_view(grids.bins, grids.bin_summary, 99, "equal_count"),
         r"N: 99 is not among the sweep's bin counts"),
        (lambda: chapter.binning_view(grids.bins, grids.bin_summary, 15, "quantile"), r"binning: expected one of"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_explorers_refuse_grids_a_slider_cannot_offer(sweep):
    uneven = dataclasses.replace(sweep, curve=sweep.curve.iloc[[0, 1, 3]].reset_index(drop=True))
    with pytest.raises(ValueError, match=r"sweep: the temperatures must be an evenly spaced grid in log2 T"):
        chapter.temperature_explorer(uneven)
    size = pd.DataFrame({"n": [100, 1000], "estimator": "plugin", "mean": 0.1, "low": 0.0, "high": 0.2})
    with pytest.raises(ValueError, match=r"sweep: the sizes must be one step of 1/8 decade apart"):
        chapter.sample_size_explorer(size)
    with pytest.raises(ValueError, match=r"sweep: missing columns \['high'\]"):
        chapter.sample_size_explorer(size.drop(columns="high"))
    bins, summary = lab.binning_sweep(np.linspace(0.3, 1, 200), np.ones(200), n_bins=[5, 10])
    with pytest.raises(ValueError, match=r"default: 15 is not among the sweep's bin counts 5..10"):
        chapter.binning_explorer(bins, summary, default=15)
    bins, summary = lab.binning_sweep(np.linspace(0.3, 1, 200), np.ones(200), n_bins=[5, 10, 20])
    with pytest.raises(ValueError, match=r"summary: the bin counts must be evenly spaced"):
        chapter.binning_explorer(bins, summary, default=5)


# ---------------------------------------------------------------- the notebook's live cells

def test_the_live_widget_cells_are_not_run_by_papermill_and_run_in_process(grids):
    """ipywidgets' interact can hang a papermill run (papermill #723, nbclient #312; seen here
    twice), so every notebook cell that uses ipywidgets carries nbclient's skip-execution tag:
    the book never runs them (they are remove-output anyway) and JupyterLab readers run them
    live. Their code still has to work: the lab's cells run here, in-process, on small grids."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and ("ipywidgets" in source or "interact(" in source):
                assert "skip-execution" in cell["metadata"].get("tags", []), f"{path.name}: {source[:60]!r}"
    namespace = {"lab": chapter, "grids": grids, "n_bins": grids.n_bins}
    cells = [c for c in json.loads((ROOT / "notebooks" / "08_lab.ipynb").read_text())["cells"]
             if "skip-execution" in c["metadata"].get("tags", [])]
    assert len(cells) == 3
    plt.close("all")
    # interact draws each view once, at its start value; it logs an exception in the view rather
    # than raising it, so the test looks for the figure each view draws
    titles = [r"^T = 1\.00: ECE = 0\.\d{4}, NLL = ", r"^n = [\d,]+: plug-in ECE = 0\.\d{4}, debiased ECE",
              r"^N = 15, equal-count bins: ECE = 0\.\d{4},\nfewest samples in a bin: [\d,]+$"]
    for cell, title in zip(cells, titles):
        before = set(plt.get_fignums())
        exec("".join(cell["source"]), namespace)
        drawn = sorted(set(plt.get_fignums()) - before)
        assert len(drawn) == 1, f"the cell drew {len(drawn)} figures: {cell['source'][:2]}"
        assert re.search(title, plt.figure(drawn[0]).axes[0].get_title()), plt.figure(drawn[0]).axes[0].get_title()
    plt.close("all")
