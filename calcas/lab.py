"""The calibration lab: the grids behind the book's teaching explorers, and the charts.

Three lessons, each a pure function that precomputes every slider position with calcas, and a
thin chart builder that draws it as a kernel-free explorer (:class:`calcas.render.interactive.Explorer`):

- :func:`temperature_sweep` / :func:`temperature_explorer`: ``softmax(logits / T)`` on the
  test half for T on a log grid (reliability table, ECE, NLL, accuracy), and the T that
  :func:`calcas.fit_temperature` fits on the cal half;
- :func:`sample_size_sweep` / :func:`sample_size_explorer`: the ECE of a perfectly calibrated
  model over repeated draws of n samples (its true ECE is 0; every estimate above 0 is bias
  and noise), per estimator;
- :func:`binning_sweep` / :func:`binning_explorer`: the reliability diagram for every bin
  count N, with equal-width and equal-count bins.

:func:`annotated_reliability_diagram` draws the guide to reading a reliability diagram
(matplotlib) that the book's intro shows. No number is typed here: every table comes from
:func:`calcas.reliability_table`, :func:`calcas.ece`, :func:`calcas.temperature_nll` and
:func:`calcas.max_prob_confidence`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import altair as alt
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ._validate import (check_binning, check_positive_int, confidence_array, float_array, label_array,
                        same_length, to_numpy)
from .binning import BINNINGS
from .calibration import fit_temperature, temperature_nll
from .confidence import max_prob_confidence
from .render.interactive import HEIGHT, LINE, WIDTH, Explorer, finish, readout, text_panel, UNIT_AXIS
from .metrics import ESTIMATORS, ece, min_detectable_ece, reliability_table
from .render.plots import INLINE_DPI, OKABE_ITO

__all__ = ["TemperatureSweep", "log_grid", "log_sizes", "temperature_sweep", "sample_size_sweep",
           "min_detectable_curve", "binning_sweep",
           "temperature_explorer", "sample_size_explorer", "binning_explorer", "annotated_reliability_diagram",
           "temperature_view", "sample_size_view", "binning_view", "lab_results", "lab_prose", "ESTIMATOR_LABELS"]

ESTIMATOR_LABELS = {"plugin": "plug-in ECE", "debiased": "debiased ECE"}
_ESTIMATOR_STYLE = {"plugin": {"colour": OKABE_ITO["vermillion"], "dash": [6, 3]},
                    "debiased": {"colour": OKABE_ITO["blue"], "dash": [1, 0]}}
_BINNING_LABELS = {"equal_count": "equal-count", "equal_width": "equal-width"}


# ---------------------------------------------------------------------------------------
# grids

def log_grid(low: float, high: float, *, steps_per_doubling: int = 8) -> np.ndarray:
    """Temperatures ``2 ** (k / steps_per_doubling)`` from ``low`` to ``high`` (both powers of two).

    Parameters
    ----------
    low, high : float
        Ends of the grid, powers of two with ``0 < low < high`` (e.g. 0.25 and 4).
    steps_per_doubling : int
        Grid points per doubling of T (8: T grows by 9% a step).

    Returns
    -------
    ndarray, shape (m,)
        The grid, exact in binary floating point, so a slider over ``log2(T)`` meets it exactly.
    """
    steps = check_positive_int(steps_per_doubling, "steps_per_doubling")
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
        raise ValueError(f"low, high: expected 0 < low < high, got {low!r}, {high!r}")
    lo, hi = np.log2(low), np.log2(high)
    if lo != round(lo) or hi != round(hi):
        raise ValueError(f"low, high: expected powers of two, got {low!r}, {high!r}")
    return 2.0 ** (np.arange(round(lo) * steps, round(hi) * steps + 1) / steps)


def log_sizes(low: int, high: int, *, steps_per_decade: int = 8) -> np.ndarray:
    """Sample sizes ``round(10 ** (k / steps_per_decade))`` from ``low`` to ``high``.

    Parameters
    ----------
    low, high : int
        The smallest and largest n, ``1 <= low < high``; the grid keeps the points
        ``10 ** (k / steps_per_decade)`` that round into [low, high].
    steps_per_decade : int
        Grid points per factor of 10 in n (8: n grows by a third a step).

    Returns
    -------
    ndarray of int, shape (m,)
    """
    steps = check_positive_int(steps_per_decade, "steps_per_decade")
    low, high = check_positive_int(low, "low"), check_positive_int(high, "high")
    if low >= high:
        raise ValueError(f"low, high: expected low < high, got {low}, {high}")
    k = np.arange(np.floor(np.log10(low) * steps), np.ceil(np.log10(high) * steps) + 1)
    n = np.unique(np.round(10.0 ** (k / steps)).astype(np.int64))
    return n[(n >= low) & (n <= high)]


@dataclasses.dataclass(frozen=True)
class TemperatureSweep:
    """What :func:`temperature_sweep` returns (every metric on the test half).

    Attributes
    ----------
    curve : DataFrame
        One row per grid temperature: ``T, log2_T, ece, nll, accuracy``.
    bins : DataFrame
        The reliability table at every grid temperature (non-empty bins): ``log2_T, bin,
        count, mean_confidence, accuracy``.
    fitted : dict
        ``T`` (fitted on the cal half by :func:`calcas.fit_temperature`) and the test half's
        ``ece, nll, accuracy`` at that T.
    n_bins : int
    binning : str
    """

    curve: pd.DataFrame
    bins: pd.DataFrame
    fitted: dict[str, float]
    n_bins: int
    binning: str


def temperature_sweep(logits: Any, labels: Any, *, cal: Any, temperatures: Any | None = None,
                      n_bins: int = 15, binning: str = "equal_count") -> TemperatureSweep:
    """Reliability, ECE, NLL and accuracy of ``softmax(logits / T)`` for every T of a grid.

    Parameters
    ----------
    logits : array, shape (n, C)
        Raw logits (not probabilities) of a classifier.
    labels : int array, shape (n,)
        The labels; an answer is correct when its argmax equals its label.
    cal : bool array, shape (n,)
        True on the cal half (where T is fitted), False on the test half (where everything
        is measured). Both halves must be non-empty.
    temperatures : array, shape (m,), optional
        Temperatures > 0; default :func:`log_grid` from 0.25 to 4.
    n_bins : int
    binning : {"equal_count", "equal_width"}
        As in :func:`calcas.ece`; equal-count edges are fitted on each T's own test confidences.

    Returns
    -------
    TemperatureSweep
        Accuracy is the same at every T (T > 0 does not move the argmax); it is computed at
        each T all the same, so the read-out shows what the data says.
    """
    z = float_array(logits, "logits", ndim=2, keep_float32=True)  # fitted as given, as fit_temperature does
    y = label_array(labels, "labels", z.shape[1])
    mask = _mask(cal, "cal")
    same_length(logits=z, labels=y, cal=mask)
    if mask.all() or not mask.any():
        raise ValueError(f"cal: needs rows in both halves, got {int(mask.sum())} cal rows of {len(mask)}")
    check_binning(binning, BINNINGS)
    n_bins = check_positive_int(n_bins, "n_bins")
    grid = log_grid(0.25, 4.0) if temperatures is None else float_array(temperatures, "temperatures", ndim=1)
    if grid.min() <= 0:
        raise ValueError(f"temperatures: must be > 0, found {grid.min():.6g}")
    test_z, test_y = z[~mask], y[~mask]

    def measure(T: float) -> tuple[dict[str, float], pd.DataFrame]:
        conf, pred = max_prob_confidence(test_z, T)
        correct = (pred == test_y).astype(float)
        table = reliability_table(conf, correct, n_bins, binning)
        return ({"ece": ece(conf, correct, n_bins, binning), "nll": temperature_nll(test_z, test_y, T),
                 "accuracy": float(correct.mean())}, table[table["count"] > 0])

    rows, bins = [], []
    for T in grid.tolist():
        stats, table = measure(T)
        rows.append({"T": T, "log2_T": float(np.log2(T)), **stats})
        bins.append(table.assign(log2_T=float(np.log2(T))))
    T_fit = fit_temperature(z[mask], y[mask])
    bins = pd.concat(bins, ignore_index=True)[["log2_T", "bin", "count", "mean_confidence", "accuracy"]]
    return TemperatureSweep(curve=pd.DataFrame(rows), bins=bins, fitted={"T": T_fit, **measure(T_fit)[0]},
                            n_bins=n_bins, binning=binning)


def sample_size_sweep(confidence: Any, *, sizes: Any, draws: int = 500, n_bins: int = 15,
                      binning: str = "equal_count", estimators: Sequence[str] = ESTIMATORS,
                      percentiles: tuple[float, float] = (10.0, 90.0), seed: int = 0) -> pd.DataFrame:
    """The ECE of a perfectly calibrated model over repeated draws of n samples, per estimator.

    Each draw takes n confidences from ``confidence`` (with replacement) and decides each
    answer's correctness by a coin that lands "correct" with exactly that probability, so the
    model is perfectly calibrated by construction: its true ECE is 0, and the mean estimate
    at each n is the estimator's bias there. The same draws are scored by every estimator.

    Parameters
    ----------
    confidence : array, shape (m,)
        A pool of confidences (probabilities in [0, 1]), e.g. the top-1 confidences of a
        calibrated model; only their distribution matters.
    sizes : array of int, shape (k,)
        Sample sizes n, each >= ``n_bins``.
    draws : int
        Draws per sample size.
    n_bins : int
    binning : {"equal_count", "equal_width"}
    estimators : sequence of str
        ``estimator`` values of :func:`calcas.ece` ("plugin", "debiased").
    percentiles : (low, high)
        The spread reported, in percent (10, 90: the middle 80% of the draws).
    seed : int

    Returns
    -------
    DataFrame
        One row per (n, estimator): ``n, estimator, mean, low, high``.
    """
    pool = confidence_array(confidence)
    n_bins = check_positive_int(n_bins, "n_bins")
    check_binning(binning, BINNINGS)
    draws = check_positive_int(draws, "draws")
    sizes = to_numpy(sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(f"sizes: expected a 1-D array of integers, got {sizes!r}")
    if sizes.min() < n_bins:
        raise ValueError(f"sizes: each n must be >= n_bins ({n_bins}), found {sizes.min()}")
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown or not estimators:
        raise ValueError(f"estimators: expected some of {list(ESTIMATORS)}, got {list(estimators)}")
    low, high = percentiles
    if not 0 <= low < high <= 100:
        raise ValueError(f"percentiles: expected 0 <= low < high <= 100, got {percentiles!r}")
    rng = np.random.default_rng(seed)
    rows = []
    for n in sorted(set(sizes.tolist())):
        values = np.empty((len(estimators), draws))
        for d in range(draws):
            c = rng.choice(pool, n)
            correct = (rng.random(n) < c).astype(float)
            for i, est in enumerate(estimators):
                values[i, d] = ece(c, correct, n_bins, binning, estimator=est)
        for est, v in zip(estimators, values):
            lo, hi = np.percentile(v, [low, high])
            rows.append({"n": int(n), "estimator": est, "mean": float(v.mean()),
                         "low": float(lo), "high": float(hi)})
    return pd.DataFrame(rows)


def min_detectable_curve(sizes: Any, *, n_bins: int = 15, accuracy: float = 0.5) -> pd.DataFrame:
    """:func:`calcas.metrics.min_detectable_ece` at each sample size, for :func:`sample_size_explorer`.

    Parameters
    ----------
    sizes : array of int, shape (k,)
        Sample sizes n, each >= ``n_bins``.
    n_bins : int
    accuracy : float
        The model's accuracy, in (0, 1) (of a calibrated model: its mean confidence).

    Returns
    -------
    DataFrame
        ``n, min_detectable``.
    """
    sizes = to_numpy(sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(f"sizes: expected a 1-D array of integers, got {sizes!r}")
    return pd.DataFrame({"n": sizes.astype(int), "min_detectable": [
        min_detectable_ece(int(n), n_bins, accuracy=float(accuracy)) for n in sizes.tolist()]})


def binning_sweep(confidence: Any, correct: Any, *, n_bins: Iterable[int] = range(2, 31),
                  binnings: Sequence[str] = BINNINGS, sample: int | None = None,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reliability tables and ECE for every bin count N and binning.

    Parameters
    ----------
    confidence : array, shape (n,)
        Probabilities in [0, 1] of each answer.
    correct : array, shape (n,)
        Verifier score of each answer (0/1, or in [0, 1]).
    n_bins : iterable of int
        Bin counts, each in [1, n].
    binnings : sequence of {"equal_count", "equal_width"}
    sample : int, optional
        Use a seeded random subset of this many rows (drawn without replacement; all rows
        when it is None or at least n): a small sample shows how noisy a sparse bin is.
    seed : int
        Seed of the subset.

    Returns
    -------
    (bins, summary) : DataFrames
        ``bins``: the non-empty rows of :func:`calcas.reliability_table` with ``N, binning``;
        ``summary``: one row per (N, binning): ``N, binning, ece, smallest`` (fewest samples in
        a non-empty bin), ``empty`` (empty bins), ``bins`` (bins formed).
    """
    c = confidence_array(confidence)
    v = float_array(correct, "correct", ndim=1, low=0.0, high=1.0)
    same_length(confidence=c, correct=v)
    grid = sorted({int(n) for n in n_bins})
    for b in binnings:
        check_binning(b, BINNINGS)
    if not grid or not binnings:
        raise ValueError("n_bins, binnings: need at least one bin count and one binning")
    if sample is not None and check_positive_int(sample, "sample") < len(c):
        rows = np.sort(np.random.default_rng(seed).choice(len(c), sample, replace=False))
        c, v = c[rows], v[rows]
    if grid[0] < 1 or grid[-1] > len(c):
        raise ValueError(f"n_bins: bin counts must lie in [1, {len(c)}] (the samples), got {grid[0]}..{grid[-1]}")
    bins, summary = [], []
    for b in binnings:
        for N in grid:
            table = reliability_table(c, v, N, b)
            full = table[table["count"] > 0]
            bins.append(full.assign(N=N, binning=b))
            summary.append({"N": N, "binning": b, "ece": ece(c, v, N, b), "smallest": int(full["count"].min()),
                            "empty": int((table["count"] == 0).sum()), "bins": len(table)})
    bins = pd.concat(bins, ignore_index=True)[["N", "binning", "bin", "count", "mean_confidence", "accuracy"]]
    return bins, pd.DataFrame(summary)


def _mask(x: Any, name: str) -> np.ndarray:
    a = to_numpy(x)
    if a.ndim != 1 or a.dtype != bool:
        raise ValueError(f"{name}: expected a 1-D boolean mask, got dtype {a.dtype} and shape {a.shape}")
    return a


# ---------------------------------------------------------------------------------------
# charts

def _rounded(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    # drawn, not read out: 5 decimals keep the page small (read-outs carry their own digits)
    return df.round({c: 5 for c in columns})


def temperature_explorer(sweep: TemperatureSweep, *, title: str = "") -> Explorer:
    """Reliability diagram of ``softmax(logits / T)`` with a slider for log2 T, its read-out,
    and ECE and NLL against T with the current and the fitted T marked.

    Parameters
    ----------
    sweep : TemperatureSweep
        From :func:`temperature_sweep`.
    title : str

    Returns
    -------
    Explorer
        The read-out at each T: "T = 0.50 (log2 T = -1): ECE = ..., NLL = ..., accuracy = ...".
    """
    curve, fitted = sweep.curve, sweep.fitted
    steps = np.diff(curve["log2_T"].to_numpy())
    if len(curve) < 2 or not np.allclose(steps, steps[0]):
        raise ValueError("sweep: the temperatures must be an evenly spaced grid in log2 T (see log_grid)")
    start = float(curve["log2_T"].iloc[int(np.argmin(np.abs(curve["log2_T"])))])  # T = 1: the raw model
    colour = OKABE_ITO["blue"]
    text = [{"series": "T", "log2_T": r.log2_T, "colour": "#222222",
             "text": f"T = {r.T:.2f} (log₂ T = {r.log2_T:g}): ECE = {r.ece:.4f}, NLL = {r.nll:.4f}, "
                     f"accuracy = {r.accuracy:.4f}"} for r in curve.itertuples()]
    text, lines = readout(text, "log2_T", ["T"])
    t_param = alt.param(name="log2_T", value=start, bind=alt.binding_range(
        min=float(curve["log2_T"].min()), max=float(curve["log2_T"].max()), step=float(steps[0]),
        name="log₂ of the temperature T "))

    axis = dict(scale=alt.Scale(domain=[0, 1]), axis=UNIT_AXIS)
    x = alt.X("mean_confidence:Q", title="mean confidence in bin", **axis)
    y = alt.Y("accuracy:Q", title="accuracy in bin", **axis)
    diagonal = (alt.Chart(pd.DataFrame({"mean_confidence": [0.0, 1.0], "accuracy": [0.0, 1.0]}))
                .mark_line(color="#999999", strokeDash=[5, 4], strokeWidth=1).encode(x=x, y=y))
    base = alt.Chart(_rounded(sweep.bins, "mean_confidence", "accuracy")).transform_filter(
        alt.datum.log2_T == t_param)
    tooltip = ["bin:Q", "count:Q", alt.Tooltip("mean_confidence:Q", format=".4f"),
               alt.Tooltip("accuracy:Q", format=".4f")]
    gap = base.mark_rule(strokeWidth=3, opacity=0.3, color=colour).encode(
        x=x, y=alt.Y("mean_confidence:Q", **axis), y2="accuracy:Q")
    line = base.mark_line(strokeWidth=2, color=colour, point=alt.OverlayMarkDef(size=45, filled=True, color=colour)
                          ).encode(x=x, y=y, tooltip=tooltip)
    plot = alt.layer(diagonal, gap, line).properties(width=WIDTH, height=HEIGHT)

    # ECE and NLL against T, one small panel each (their scales differ), sharing the T axis
    long = curve.melt(id_vars=["T", "log2_T"], value_vars=["ece", "nll"], var_name="metric")
    long["metric"] = long["metric"].map({"ece": "ECE", "nll": "NLL"})
    ticks = [t for t in (0.25, 0.5, 1, 2, 4) if curve["T"].min() <= t <= curve["T"].max()]
    t_scale = alt.Scale(type="log", base=2)
    marks = pd.DataFrame({"T": [fitted["T"]], "label": [f"fitted T = {fitted['T']:.2f}"]})

    def panel(metric: str, last: bool) -> alt.LayerChart:
        data = alt.Chart(_rounded(long[long["metric"] == metric], "value"))
        xs = alt.X("T:Q", title="temperature T (log scale)" if last else None, scale=t_scale,
                   axis=alt.Axis(values=ticks, format="~g"))
        ys = alt.Y("value:Q", title=metric, scale=alt.Scale(zero=metric == "ECE", nice=True))
        curve_line = data.mark_line(color="#555555", strokeWidth=1.8).encode(x=xs, y=ys)
        fit_rule = alt.Chart(marks).mark_rule(color=OKABE_ITO["bluish green"], strokeDash=[4, 3],
                                              strokeWidth=1.6).encode(x=xs)
        now = data.transform_filter(alt.datum.log2_T == t_param)
        now_rule = now.mark_rule(color=colour, strokeWidth=1.2, opacity=0.6).encode(x=xs)
        now_point = now.mark_point(size=90, filled=True, color=colour, opacity=1).encode(
            x=xs, y=ys, tooltip=[alt.Tooltip("T:Q", format=".2f"), alt.Tooltip("value:Q", format=".4f")])
        # named marks (SVG classes "current_T_ece_marks", ...): the browser test finds them
        layers = [curve_line, fit_rule.properties(name=f"fitted_T_{metric.lower()}"), now_rule,
                  now_point.properties(name=f"current_T_{metric.lower()}")]
        if metric == "ECE":  # the fitted T's label, once, at the top of the first panel
            layers.append(alt.Chart(marks).mark_text(align="right", dx=-4, baseline="top", fontSize=11.5,
                                                     color=OKABE_ITO["bluish green"])
                          .encode(x=xs, y=alt.value(2), text="label:N"))
        return alt.layer(*layers).properties(width=WIDTH, height=110)

    chart = alt.vconcat(plot, text_panel(text, lines, t_param, "log2_T"), panel("ECE", False),
                        panel("NLL", True), spacing=10)
    return Explorer(finish(chart.add_params(t_param), title),
                    f"calcas temperature explorer: T = {curve['T'].min():g}..{curve['T'].max():g}, "
                    f"fitted T = {fitted['T']:.3f}")


def sample_size_explorer(sweep: pd.DataFrame, *, min_detectable: pd.DataFrame | None = None,
                         title: str = "", default: int | None = None, steps_per_decade: int = 8) -> Explorer:
    """Mean ECE of a perfectly calibrated model against n (log scale), one band per estimator,
    with a slider for log10 n and the read-out at that n.

    Parameters
    ----------
    sweep : DataFrame
        From :func:`sample_size_sweep`, on sizes from :func:`log_sizes` (evenly spaced in log10 n).
    min_detectable : DataFrame, optional
        ``n, min_detectable``: the smallest ECE the data could detect at each n, drawn as a
        dotted line and read out beside the estimates.
    title : str
    default : int, optional
        The starting n (the nearest size of the sweep); default the middle one, so the slider
        can move either way.
    steps_per_decade : int
        That of :func:`log_sizes`: the slider's step is 1/steps_per_decade of a decade.

    Returns
    -------
    Explorer
        Read-out: "n = 100 (log10 n ≈ 2):", then "plug-in ECE = mean (10–90%: low–high)"
        for each estimator and "smallest detectable ECE = ..." with ``min_detectable``.
    """
    need = {"n", "estimator", "mean", "low", "high"}
    if not need <= set(sweep.columns):
        raise ValueError(f"sweep: missing columns {sorted(need - set(sweep.columns))}")
    steps = check_positive_int(steps_per_decade, "steps_per_decade")
    # the slider moves over log10 n on a grid of 1/steps decades; each n sits at its nearest point
    sweep = sweep.assign(log10_n=np.round(np.log10(sweep["n"].to_numpy(float)) * steps) / steps)
    ns = sweep[["n", "log10_n"]].drop_duplicates().sort_values("n")
    gaps = np.round(np.diff(ns["log10_n"].to_numpy()) * steps).astype(int)
    if len(ns) < 2 or set(gaps.tolist()) != {1}:
        raise ValueError(f"sweep: the sizes must be one step of 1/{steps} decade apart (see log_sizes), "
                         f"got n = {ns['n'].tolist()}")
    estimators = [e for e in ESTIMATOR_LABELS if e in set(sweep["estimator"])]
    data = sweep.assign(series=sweep["estimator"].map(ESTIMATOR_LABELS))
    detect = {}
    if min_detectable is not None:
        detect = dict(zip(min_detectable["n"].astype(int), min_detectable["min_detectable"]))
    text = [{"series": "n", "log10_n": r.log10_n, "colour": "#222222", "text": f"n = {r.n:,} (log₁₀ n ≈ {r.log10_n:g}):"}
            for r in ns.itertuples()]
    for r in data.itertuples():
        text.append({"series": r.series, "log10_n": r.log10_n, "colour": _ESTIMATOR_STYLE[r.estimator]["colour"],
                     "text": f"{r.series} = {r.mean:.4f} (10–90%: {r.low:.4f}–{r.high:.4f})"})
    if detect:
        for r in ns.itertuples():
            text.append({"series": "detect", "log10_n": r.log10_n, "colour": "#555555",
                         "text": f"smallest detectable ECE = {detect[int(r.n)]:.4f}"})
    order = ["n"] + [ESTIMATOR_LABELS[e] for e in estimators] + (["detect"] if detect else [])
    text, lines = readout(text, "log10_n", order)
    start = len(ns) // 2 if default is None else int(np.argmin(np.abs(ns["n"].to_numpy() - default)))
    n0 = ns["log10_n"].iloc[start]
    n_param = alt.param(name="log10_n", value=float(n0), bind=alt.binding_range(
        min=float(ns["log10_n"].min()), max=float(ns["log10_n"].max()), step=1 / steps,
        name="log₁₀ of the sample size n "))

    names = [ESTIMATOR_LABELS[e] for e in estimators]
    colours = alt.Scale(domain=names, range=[_ESTIMATOR_STYLE[e]["colour"] for e in estimators])
    dashes = alt.Scale(domain=names, range=[_ESTIMATOR_STYLE[e]["dash"] for e in estimators])
    legend = alt.Legend(orient="bottom", direction="horizontal", title=None, symbolType="stroke",
                        symbolStrokeWidth=2.5, symbolSize=420, labelLimit=260, symbolOpacity=1)
    colour = alt.Color("series:N", scale=colours, legend=legend)
    dash = alt.StrokeDash("series:N", scale=dashes, legend=legend)
    lo_n, hi_n = int(ns["n"].min()), int(ns["n"].max())
    ticks = [t for t in (10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000) if lo_n <= t <= hi_n]
    x = alt.X("n:Q", title="sample size n (log scale)", scale=alt.Scale(type="log", domain=[lo_n, hi_n]),
              axis=alt.Axis(values=ticks, format="~s"))
    y = alt.Y("mean:Q", title="ECE of a perfectly calibrated model")
    base = alt.Chart(_rounded(data, "mean", "low", "high"))
    # every layer colours by "series" with the same scale and legend: one legend under the plot
    band = base.mark_area(opacity=0.18).encode(x=x, y="low:Q", y2="high:Q", color=colour)
    line = base.mark_line(strokeWidth=2).encode(x=x, y=y, color=colour, strokeDash=dash)
    layers = [band, line]
    if detect:
        d = pd.DataFrame({"n": list(detect), "min_detectable": list(detect.values()),
                          "label": "smallest detectable ECE"}).round({"min_detectable": 5})
        dotted = alt.Chart(d).encode(x=x, y="min_detectable:Q")
        layers.append(dotted.mark_line(color="#555555", strokeDash=[1.5, 3], strokeWidth=1.8))
        # named on the line itself, a third of the way along (a legend entry would need a series)
        layers.append(dotted.transform_filter(alt.datum.n == int(ns["n"].iloc[len(ns) // 3]))
                      .mark_text(align="left", dx=4, dy=-8, fontSize=11.5, color="#555555").encode(text="label:N"))
    now = base.transform_filter(alt.datum.log10_n == n_param)
    layers.append(now.mark_rule(color="#bbbbbb", strokeDash=[2, 2]).encode(x=x))
    layers.append(now.mark_point(size=110, filled=True, opacity=1, stroke="white", strokeWidth=1.2).encode(
        x=x, y=y, color=colour,
        tooltip=["n:Q", "series:N", alt.Tooltip("mean:Q", format=".4f"), alt.Tooltip("low:Q", format=".4f"),
                 alt.Tooltip("high:Q", format=".4f")]))
    plot = alt.layer(*layers).properties(width=WIDTH, height=HEIGHT)
    chart = alt.vconcat(plot, text_panel(text, lines, n_param, "log10_n"), spacing=8)
    return Explorer(finish(chart.add_params(n_param), title),
                    f"calcas sample-size explorer: n = {int(ns['n'].min()):,}..{int(ns['n'].max()):,}")


def binning_explorer(bins: pd.DataFrame, summary: pd.DataFrame, *, title: str = "", default: int = 15) -> Explorer:
    """Reliability diagram with a slider for the bin count N and a radio for the binning;
    each bin's point is sized by how many samples it holds.

    Parameters
    ----------
    bins, summary : DataFrames
        From :func:`binning_sweep`.
    title : str
    default : int
        The starting N (must be among the sweep's bin counts).

    Returns
    -------
    Explorer
        Read-out: "N = 15, equal-width bins: ECE = ...; fewest in a bin: k (e empty)".
    """
    grid = sorted(int(n) for n in summary["N"].unique())
    if default not in grid:
        raise ValueError(f"default: {default} is not among the sweep's bin counts {grid[0]}..{grid[-1]}")
    if len(set(np.diff(grid).tolist())) > 1:
        raise ValueError("summary: the bin counts must be evenly spaced (a slider offers them)")
    binnings = [b for b in BINNINGS if b in set(summary["binning"])]
    text = []
    for r in summary.itertuples():
        empty = f" ({r.empty} empty)" if r.empty else ""
        text.append({"series": "N", "key": f"{r.N}|{r.binning}", "N": r.N, "binning": r.binning,
                     "colour": "#222222",
                     "text": f"N = {r.N}, {_BINNING_LABELS[r.binning]} bins: ECE = {r.ece:.4f}, "
                             f"fewest samples in a bin: {r.smallest:,}{empty}"})
    text, lines = readout(text, "key", ["N"])
    n_param = alt.param(name="N", value=int(default), bind=alt.binding_range(
        min=grid[0], max=grid[-1], step=int(np.diff(grid)[0]) if len(grid) > 1 else 1, name="number of bins N "))
    b_param = alt.param(name="binning", value=binnings[0], bind=alt.binding_radio(
        # no-break spaces: the radio's labels otherwise touch the next button
        options=binnings, labels=[_BINNING_LABELS[b] + "\u00a0\u00a0" for b in binnings], name="bins "))
    axis = dict(scale=alt.Scale(domain=[0, 1]), axis=UNIT_AXIS)
    x = alt.X("mean_confidence:Q", title="mean confidence in bin", **axis)
    y = alt.Y("accuracy:Q", title="accuracy in bin", **axis)
    colour = OKABE_ITO["blue"]
    diagonal = (alt.Chart(pd.DataFrame({"mean_confidence": [0.0, 1.0], "accuracy": [0.0, 1.0]}))
                .mark_line(color="#999999", strokeDash=[5, 4], strokeWidth=1).encode(x=x, y=y))
    base = (alt.Chart(_rounded(bins, "mean_confidence", "accuracy"))
            .transform_filter((alt.datum.N == n_param) & (alt.datum.binning == b_param)))
    # area follows the count up to the largest bin at the starting N; bigger bins (small N) are
    # drawn at that size, so the equal-count points stay visible at every N
    top = int(bins.loc[bins["N"] == default, "count"].max())
    size = alt.Size("count:Q", title="samples in bin", scale=alt.Scale(range=[6, 420], zero=True, domain=[0, top],
                                                                       clamp=True),
                    legend=alt.Legend(orient="bottom", direction="horizontal", symbolFillColor=colour,
                                      values=[v for v in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
                                              if v <= top][-3:],
                                      symbolStrokeColor=colour))
    line = base.mark_line(strokeWidth=1.5, color=colour, opacity=0.7).encode(x=x, y=y)
    points = base.mark_circle(color=colour, opacity=0.85).encode(
        x=x, y=y, size=size, tooltip=["bin:Q", "count:Q", alt.Tooltip("mean_confidence:Q", format=".4f"),
                                      alt.Tooltip("accuracy:Q", format=".4f")])
    plot = alt.layer(diagonal, line, points).properties(width=WIDTH, height=HEIGHT)
    # the read-out of the (N, binning) pair chosen: text_panel's look, filtered by both controls
    panel = (alt.Chart(text, width=WIDTH, height=LINE * lines + 4)
             .mark_text(align="left", baseline="top", fontSize=12.5, color="#222222")
             .encode(x=alt.value(0), y=alt.Y("y:Q", scale=None, axis=None), text="line:N")
             .transform_filter((alt.datum.N == n_param) & (alt.datum.binning == b_param)))
    chart = alt.vconcat(plot, panel, spacing=8)
    return Explorer(finish(chart.add_params(n_param, b_param), title),
                    f"calcas binning explorer: N = {grid[0]}..{grid[-1]}, {', '.join(binnings)}")


# ---------------------------------------------------------------------------------------
# the annotated reliability diagram

def annotated_reliability_diagram(over: pd.DataFrame, under: pd.DataFrame, *,
                                  ax: plt.Axes | None = None) -> plt.Axes:
    """How to read a reliability diagram: the diagonal, an over-confident model's curve below it,
    an under-confident one's above it, both regions named, and one bin's gap marked.

    Parameters
    ----------
    over, under : DataFrame
        Reliability tables (:func:`calcas.reliability_table`) of an over-confident and an
        under-confident model.
    ax : matplotlib Axes, optional
        Drawn on a new 6.8 x 6.4 inch figure when None.

    Returns
    -------
    Axes
        The gap marked is that of the over-confident bin whose mean confidence is nearest 0.75.
    """
    need = {"count", "mean_confidence", "accuracy"}
    for name, table in (("over", over), ("under", under)):
        if not need <= set(table.columns):
            raise ValueError(f"{name}: expected a reliability table, missing columns "
                             f"{sorted(need - set(table.columns))}")
    over, under = over[over["count"] > 0], under[under["count"] > 0]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.8, 6.4), dpi=INLINE_DPI)
    ax.fill_between([0, 1], [0, 0], [0, 1], color=OKABE_ITO["vermillion"], alpha=0.07, lw=0)
    ax.fill_between([0, 1], [0, 1], [1, 1], color=OKABE_ITO["sky blue"], alpha=0.12, lw=0)
    ax.plot([0, 1], [0, 1], color="#777777", ls=(0, (5, 4)), lw=1)
    ax.text(0.05, 0.075, "perfect calibration:\naccuracy = confidence", rotation=45, rotation_mode="anchor",
            fontsize=8.5, color="#555555", ha="left", va="bottom")
    ax.text(0.97, 0.05, "over-confident:\naccuracy below confidence", ha="right", va="bottom", fontsize=10.5,
            color=OKABE_ITO["vermillion"], fontweight="bold")
    ax.text(0.03, 0.95, "under-confident:\naccuracy above confidence", ha="left", va="top", fontsize=10.5,
            color=OKABE_ITO["blue"], fontweight="bold")
    ax.plot(over["mean_confidence"], over["accuracy"], color=OKABE_ITO["vermillion"], ls="--", marker="s",
            ms=4.5, lw=1.8, label="an over-confident model")
    ax.plot(under["mean_confidence"], under["accuracy"], color=OKABE_ITO["blue"], ls="-", marker="o",
            ms=4.5, lw=1.8, label="an under-confident model")
    row = over.iloc[int(np.argmin(np.abs(over["mean_confidence"].to_numpy() - 0.75)))]
    c, a = float(row["mean_confidence"]), float(row["accuracy"])
    ax.annotate("", xy=(c, a), xytext=(c, c), arrowprops=dict(arrowstyle="<->", color="black", lw=1.3,
                                                                shrinkA=0, shrinkB=0))
    ax.annotate(f"one bin's gap |confidence − accuracy|\n= {abs(c - a):.3f}; ECE is the average gap,\n"
                "each bin weighted by its share of samples",
                xy=(c, (a + c) / 2), xytext=(0.70, 0.27), fontsize=9, ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#cccccc", lw=0.6),
                arrowprops=dict(arrowstyle="-", color="black", lw=0.8, connectionstyle="arc3,rad=0.25"))
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean confidence in bin", ylabel="accuracy in bin")
    ax.set_aspect("equal")
    ax.xaxis.set_major_locator(plt.MultipleLocator(0.1))
    ax.yaxis.set_major_locator(plt.MultipleLocator(0.1))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, frameon=False, fontsize=9.5)
    return ax


# ---------------------------------------------------------------------------------------
# the same lessons for a live kernel (ipywidgets): static figures of one slider position

def _pick(values: Any, target: float) -> float:
    values = np.asarray(values, dtype=float)
    return float(values[int(np.argmin(np.abs(values - target)))])


def temperature_view(sweep: TemperatureSweep, T: float, *, ax: plt.Axes | None = None) -> plt.Axes:
    """The reliability diagram of :func:`temperature_explorer` at the grid T nearest ``T``
    (in log2 T), its ECE, NLL and accuracy in the title."""
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"T: must be a finite number > 0, got {T!r}")
    key = _pick(sweep.curve["log2_T"], np.log2(T))
    row = sweep.curve[sweep.curve["log2_T"] == key].iloc[0]
    ax = _view_axes(ax)
    _diagram(ax, sweep.bins[sweep.bins["log2_T"] == key])
    ax.set_title(f"T = {row['T']:.2f}: ECE = {row['ece']:.4f}, NLL = {row['nll']:.4f},\n"
                 f"accuracy = {row['accuracy']:.4f} (fitted T = {sweep.fitted['T']:.2f})", fontsize=10)
    return ax


def sample_size_view(sweep: pd.DataFrame, n: int, *, ax: plt.Axes | None = None) -> plt.Axes:
    """The curves of :func:`sample_size_explorer` with the sweep's n nearest ``n`` marked."""
    n = check_positive_int(n, "n")
    at = int(_pick(sweep["n"], n))
    ax = _view_axes(ax)
    lines = []
    for est in [e for e in ESTIMATOR_LABELS if e in set(sweep["estimator"])]:
        part = sweep[sweep["estimator"] == est].sort_values("n")
        style = _ESTIMATOR_STYLE[est]
        ax.fill_between(part["n"], part["low"], part["high"], color=style["colour"], alpha=0.18, lw=0)
        ax.plot(part["n"], part["mean"], color=style["colour"], ls="--" if style["dash"] != [1, 0] else "-",
                label=ESTIMATOR_LABELS[est])
        now = part[part["n"] == at].iloc[0]
        ax.plot([at], [now["mean"]], "o", color=style["colour"])
        lines.append(f"{ESTIMATOR_LABELS[est]} = {now['mean']:.4f}")
    ax.axvline(at, color="#bbbbbb", ls=":")
    ax.set(xscale="log", xlabel="sample size n", ylabel="ECE of a perfectly calibrated model")
    ax.set_title(f"n = {at:,}: " + ", ".join(lines), fontsize=10)
    ax.legend(frameon=False)
    return ax


def binning_view(bins: pd.DataFrame, summary: pd.DataFrame, N: int, binning: str, *,
                 ax: plt.Axes | None = None) -> plt.Axes:
    """The reliability diagram of :func:`binning_explorer` at ``N`` and ``binning``."""
    check_binning(binning, BINNINGS)
    row = summary[(summary["N"] == N) & (summary["binning"] == binning)]
    if row.empty:
        raise ValueError(f"N: {N!r} is not among the sweep's bin counts {sorted(summary['N'].unique())}")
    row = row.iloc[0]
    ax = _view_axes(ax)
    _diagram(ax, bins[(bins["N"] == N) & (bins["binning"] == binning)], sized=True)
    ax.set_title(f"N = {N}, {_BINNING_LABELS[binning]} bins: ECE = {row['ece']:.4f},\n"
                 f"fewest samples in a bin: {row['smallest']:,}", fontsize=10)
    return ax


def _view_axes(ax: plt.Axes | None) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.6), dpi=INLINE_DPI)
    return ax


def _diagram(ax: plt.Axes, table: pd.DataFrame, *, sized: bool = False) -> None:
    colour = OKABE_ITO["blue"]
    ax.plot([0, 1], [0, 1], color="#999999", ls=(0, (5, 4)), lw=1)
    ax.vlines(table["mean_confidence"], table["mean_confidence"], table["accuracy"], color=colour, alpha=0.3, lw=3)
    ax.plot(table["mean_confidence"], table["accuracy"], color=colour, lw=1.6)
    size = 260 * table["count"] / table["count"].max() if sized else 30
    ax.scatter(table["mean_confidence"], table["accuracy"], s=size, color=colour, zorder=3)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean confidence in bin", ylabel="accuracy in bin")
    ax.grid(alpha=0.3)


# ---------------------------------------------------------------------------------------
# results.json and the sentences the chapter prints from it

def lab_results(temperature: TemperatureSweep, sample_size: pd.DataFrame, binning: pd.DataFrame, *,
                n_bins: int) -> dict[str, Any]:
    """The numbers the lab's prose cites, for ``results.json``.

    Parameters
    ----------
    temperature : TemperatureSweep
    sample_size : DataFrame from :func:`sample_size_sweep`
    binning : DataFrame, the ``summary`` of :func:`binning_sweep`
    n_bins : int
        The bin count the binning sentences are about (must be in ``binning``).
    """
    curve = temperature.curve
    at_one = curve[curve["log2_T"] == 0.0]
    if at_one.empty:
        raise ValueError("temperature: T = 1 is not on the grid")
    if n_bins not in set(binning["N"]):
        raise ValueError(f"n_bins: {n_bins} is not among the binning sweep's bin counts")
    small, large = int(sample_size["n"].min()), int(sample_size["n"].max())
    means = {est: {"small_n": float(g.loc[g["n"] == small, "mean"].iloc[0]),
                   "large_n": float(g.loc[g["n"] == large, "mean"].iloc[0])}
             for est, g in sample_size.groupby("estimator")}
    bins = {b: binning[(binning["N"] == n_bins) & (binning["binning"] == b)].iloc[0] for b in set(binning["binning"])}
    return {
        "temperature": {"fitted_T": temperature.fitted["T"], "at_fitted": {k: temperature.fitted[k] for k in
                                                                           ("ece", "nll", "accuracy")},
                        "at_1": {k: float(at_one[k].iloc[0]) for k in ("ece", "nll", "accuracy")},
                        "accuracy_range": [float(curve["accuracy"].min()), float(curve["accuracy"].max())]},
        "sample_size": {"small_n": small, "large_n": large, "mean_ece": means},
        "binning": {"n_bins": int(n_bins), **{b: {"ece": float(r["ece"]), "smallest": int(r["smallest"]),
                                                   "empty": int(r["empty"])} for b, r in bins.items()}},
    }


def lab_prose(results: dict[str, Any], section: str) -> str:
    """One paragraph of Markdown with the numbers of ``section`` ("temperature", "sample_size"
    or "binning") of :func:`lab_results`."""
    if section == "temperature":
        t = results["temperature"]
        lo, hi = t["accuracy_range"]
        same = (f"accuracy is {lo:.4f} at every T of the grid" if lo == hi
                else f"accuracy moves between {lo:.4f} and {hi:.4f}")
        text = (f"Fitted on the cal half, **T = {t['fitted_T']:.2f}**. On the test half that T takes the ECE "
                f"from {t['at_1']['ece']:.4f} (T = 1, the raw model) to {t['at_fitted']['ece']:.4f}, and the NLL "
                f"from {t['at_1']['nll']:.4f} to {t['at_fitted']['nll']:.4f}, while {same}.")
        if t["at_fitted"]["ece"] >= t["at_1"]["ece"]:
            nll = "fell" if t["at_fitted"]["nll"] < t["at_1"]["nll"] else "did not fall either"
            text += (" Here the ECE went **up**, not down: with this few test answers per bin the binned ECE is "
                     f"mostly noise (see the sample-size experiment below), while the NLL, which needs no bins, {nll}.")
        return text
    if section == "sample_size":
        s = results["sample_size"]
        parts = [f"the {ESTIMATOR_LABELS[e]} averages {s['mean_ece'][e]['small_n']:.4f} at n = {s['small_n']:,} "
                 f"and {s['mean_ece'][e]['large_n']:.4f} at n = {s['large_n']:,}"
                 for e in ESTIMATOR_LABELS if e in s["mean_ece"]]
        text = "For this perfectly calibrated model (true ECE 0), " + "; ".join(parts) + "."
        means = s["mean_ece"]
        if "plugin" in means and "debiased" in means:
            text += (f" At n = {s['large_n']:,} the debiased estimate keeps "
                     f"{means['debiased']['large_n'] / means['plugin']['large_n']:.0%} of the plug-in's bias, at "
                     f"n = {s['small_n']:,} {means['debiased']['small_n'] / means['plugin']['small_n']:.0%}.")
        return text
    if section == "binning":
        b = results["binning"]
        parts = []
        for key, label in _BINNING_LABELS.items():
            if key in b:
                empty = f" ({b[key]['empty']} empty)" if b[key]["empty"] else ""
                parts.append(f"with {label} bins the fewest samples in a bin is {b[key]['smallest']:,}{empty} "
                             f"and the ECE {b[key]['ece']:.4f}")
        return f"At N = {b['n_bins']}, " + "; ".join(parts) + "."
    raise ValueError(f"section: expected 'temperature', 'sample_size' or 'binning', got {section!r}")
