"""calcas.lab: the lab's grids against direct calls and simulations with a known truth, its bad
inputs, and the built lab page in Chromium (every control moves what it should)."""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax as scipy_softmax

pytest.importorskip("altair")

import calcas  # noqa: E402
from calcas import lab  # noqa: E402


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


# ---------------------------------------------------------------- grids against direct calls

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


def test_temperature_explorer_reads_out_the_grid(sweep):
    spec = lab.temperature_explorer(sweep).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["log2_T"]["value"] == 0.0  # starts at T = 1, the raw model
    bind = params["log2_T"]["bind"]
    assert (bind["min"], bind["max"], bind["step"]) == (-2.0, 2.0, 0.5)
    lines = pd.concat(pd.DataFrame(rows) for rows in spec["datasets"].values() if rows and "line" in rows[0])
    for row in sweep.curve.itertuples():
        text = " ".join(lines.loc[lines["log2_T"] == row.log2_T].sort_values("y")["line"])
        assert f"T = {row.T:.2f}" in text and f"ECE = {row.ece:.4f}" in text and f"NLL = {row.nll:.4f}" in text
        assert f"accuracy = {row.accuracy:.4f}" in text
    marks = [rows for rows in spec["datasets"].values() if rows and "label" in rows[0]]
    assert marks and marks[0][0]["T"] == sweep.fitted["T"]


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


def test_binning_explorer_filters_by_both_controls(over):
    m, cal = over
    bins, summary = lab.binning_sweep(m.raw_confidence()[~cal], m.verified[~cal], n_bins=range(2, 21))
    spec = lab.binning_explorer(bins, summary, default=15).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["N"]["bind"]["input"] == "range" and params["binning"]["bind"]["input"] == "radio"
    assert params["binning"]["bind"]["options"] == ["equal_count", "equal_width"]
    lines = pd.concat(pd.DataFrame(rows) for rows in spec["datasets"].values() if rows and "line" in rows[0])
    for r in summary.itertuples():
        text = " ".join(lines[(lines["N"] == r.N) & (lines["binning"] == r.binning)].sort_values("y")["line"])
        assert f"ECE = {r.ece:.4f}" in text and f"fewest samples in a bin: {r.smallest:,}" in text


def test_annotated_diagram_marks_a_bins_gap(over):
    import matplotlib
    matplotlib.use("Agg")
    m, cal = over
    under = calcas.make_synthetic(4_000, accuracy=(0.8,), confidence_scale=(0.6,), flip_rate=0.0, names=("u",),
                                  seed=5)["u"]
    t_over = calcas.reliability_table(m.raw_confidence()[~cal], m.verified[~cal])
    t_under = calcas.reliability_table(under.raw_confidence()[~cal], under.verified[~cal])
    ax = lab.annotated_reliability_diagram(t_over, t_under)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "over-confident" in texts and "accuracy below confidence" in texts and "under-confident" in texts
    row = t_over.iloc[int(np.argmin(np.abs(t_over["mean_confidence"] - 0.75)))]
    assert f"= {abs(row['gap']):.3f}" in texts and "ECE" in texts
    # what the figure teaches holds for its data: the over-confident curve lies below the diagonal
    # (bins near confidence 1 sit on it for both: a model sure of an answer is right)
    assert (t_over.loc[t_over["mean_confidence"] < 0.9, "gap"] < 0).all()
    assert (t_under.loc[t_under["mean_confidence"] < 0.9, "gap"] > 0).all()


def test_results_and_prose_carry_the_grids_numbers(sweep):
    pool = np.random.default_rng(0).uniform(0.5, 1.0, 5000)
    sizes = np.array([100, 1000])
    size = lab.sample_size_sweep(pool, sizes=sizes, draws=20, estimators=("plugin",))
    _, summary = lab.binning_sweep(pool, np.random.default_rng(1).random(5000) < pool, n_bins=[15])
    res = lab.lab_results(sweep, size, summary, n_bins=15)
    assert res["temperature"]["fitted_T"] == sweep.fitted["T"]
    text = lab.lab_prose(res, "temperature")
    assert f"T = {sweep.fitted['T']:.2f}" in text and "at every T of the grid" in text
    plug = size[(size["estimator"] == "plugin") & (size["n"] == 100)]["mean"].iloc[0]
    assert f"{plug:.4f} at n = 100" in lab.lab_prose(res, "sample_size")
    assert "At N = 15" in lab.lab_prose(res, "binning")
    # the verdict follows the numbers: said only where the fitted T raised the test ECE
    went_up = res["temperature"]["at_fitted"]["ece"] >= res["temperature"]["at_1"]["ece"]
    assert ("went **up**" in text) is went_up
    worse = {**res, "temperature": {**res["temperature"],
                                    "at_fitted": {**res["temperature"]["at_fitted"],
                                                  "ece": res["temperature"]["at_1"]["ece"] + 0.01}}}
    assert "went **up**, not down" in lab.lab_prose(worse, "temperature")


# ---------------------------------------------------------------- bad inputs

def test_bad_inputs_are_refused_with_their_names(over, sweep):
    m, cal = over
    z, y = m.logits, m.label
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
        (lambda: lab.binning_sweep([0.5, 0.9], [1, 0], n_bins=[3]), r"n_bins: bin counts must lie in \[1, 2\]"),
        (lambda: lab.binning_sweep([0.5, 0.9], [1, 0, 1]), r"length mismatch"),
        (lambda: lab.binning_sweep([0.5, 0.9], [1, 0], n_bins=[1], binnings=("kmeans",)), r"binning: expected"),
        (lambda: lab.annotated_reliability_diagram(pd.DataFrame({"count": [1]}), pd.DataFrame()),
         r"over: expected a reliability table, missing columns \['accuracy', 'mean_confidence'\]"),
        (lambda: lab.lab_prose({}, "bins"), r"section: expected 'temperature', 'sample_size' or 'binning'"),
        (lambda: lab.temperature_view(sweep, -1.0), r"T: must be a finite number > 0"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_explorers_refuse_grids_a_slider_cannot_offer(sweep):
    uneven = dataclasses.replace(sweep, curve=sweep.curve.iloc[[0, 1, 3]].reset_index(drop=True))
    with pytest.raises(ValueError, match=r"sweep: the temperatures must be an evenly spaced grid in log2 T"):
        lab.temperature_explorer(uneven)
    size = pd.DataFrame({"n": [100, 1000], "estimator": "plugin", "mean": 0.1, "low": 0.0, "high": 0.2})
    with pytest.raises(ValueError, match=r"sweep: the sizes must be one step of 1/8 decade apart"):
        lab.sample_size_explorer(size)
    with pytest.raises(ValueError, match=r"sweep: missing columns \['high'\]"):
        lab.sample_size_explorer(size.drop(columns="high"))
    bins, summary = lab.binning_sweep(np.linspace(0.3, 1, 200), np.ones(200), n_bins=[5, 10])
    with pytest.raises(ValueError, match=r"default: 15 is not among the sweep's bin counts 5..10"):
        lab.binning_explorer(bins, summary, default=15)


# ---------------------------------------------------------------- the built page in Chromium


def test_the_live_widget_cells_are_not_run_by_papermill_and_run_in_process(sweep):
    """ipywidgets' interact can hang a papermill run (papermill #723, nbclient #312; seen here
    twice), so every notebook cell that uses ipywidgets carries nbclient's skip-execution tag:
    the book never runs them (they are remove-output anyway) and JupyterLab readers run them
    live. Their code still has to work: the lab's cells run here, in-process, on small sweeps."""
    import json
    from pathlib import Path

    import matplotlib
    matplotlib.use("Agg")
    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and ("ipywidgets" in source or "interact(" in source):
                assert "skip-execution" in cell["metadata"].get("tags", []), f"{path.name}: {source[:60]!r}"
    pool = np.random.default_rng(0).uniform(0.5, 1.0, 3000)
    sizes = np.array([100, 1000])
    namespace = {"lab": lab, "temperature": sweep, "sizes": sizes, "n_bins": 15,
                 "sample_size": lab.sample_size_sweep(pool, sizes=sizes, draws=5)}
    namespace["bins"], namespace["bin_summary"] = lab.binning_sweep(
        pool, np.random.default_rng(1).random(3000) < pool, n_bins=range(2, 31))
    cells = [c for c in json.loads((root / "notebooks" / "08_lab.ipynb").read_text())["cells"]
             if "skip-execution" in c["metadata"].get("tags", [])]
    assert len(cells) == 3
    for cell in cells:
        exec("".join(cell["source"]), namespace)  # interact draws each view once, at its start value
