"""Chapter "A calibration lab" (``notebooks/08_lab.ipynb``): three experiments with a slider, on
synthetic models whose miscalibration was put there.

- :func:`precompute` -> :class:`LabGrids`: every slider position of the three experiments
  (the sweeps of :mod:`calcas.lab`), the two reliability tables of the reading guide, the
  scoring rules' expected losses and the calibrators' maps;
- :func:`compute` -> :class:`LabFacts`: the numbers and the typed outcomes the prose cites,
  which are the chapter's ``results.json``;
- :func:`prose` phrases the facts; :func:`explorers` and :func:`figures` draw the grids with
  :mod:`calcas.render`; :func:`temperature_view`, :func:`sample_size_view` and
  :func:`binning_view` draw one slider position with matplotlib, for the notebook's live
  ipywidgets cells.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import altair as alt
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .._validate import check_binning, check_positive_int
from ..binning import BINNINGS
from ..calibration import TemperatureScaling
from ..lab import (SCORING_RULES, CalibrationMaps, TemperatureSweep, binning_sweep, calibration_maps, log_sizes,
                   min_detectable_curve, sample_size_sweep, scoring_rule_curves, temperature_sweep)
from ..metrics import brier, ece, nll, reliability_table
from ..records import Records
from ..render.interactive import (HEIGHT, WIDTH, Explorer, finish, grid_key, key_matches, readout, vega_style,
                                  reliability_layers, slider, text_panel)
from ..render.plots import (INLINE_DPI, OKABE_ITO, annotated_reliability_diagram, calibration_map_figure,
                            reliability_gaps, scoring_rule_figure, series_style)
from .common import Facts, fmt, pct

__all__ = ["MODEL_NAMES", "ESTIMATOR_LABELS", "BINNING_LABELS", "LabGrids", "AtTemperature", "TemperatureFacts",
           "BySampleSize", "SampleSizeFacts", "BinningOutcome", "BinningFacts", "Scores", "ScoringFacts",
           "PlattFacts", "LabFacts", "RULE_LABELS", "precompute", "compute",
           "prose", "explorers", "figures", "temperature_explorer", "sample_size_explorer", "binning_explorer",
           "temperature_view", "sample_size_view", "binning_view"]

#: The synthetic models :func:`precompute` needs, by name.
MODEL_NAMES = ("over-confident", "under-confident", "calibrated")
ESTIMATOR_LABELS = {"plugin": "plug-in ECE", "debiased": "debiased ECE"}
BINNING_LABELS = {"equal_count": "equal-count", "equal_width": "equal-width"}
RULE_LABELS = {"nll": "NLL (log loss)", "brier": "Brier score", "absolute": "absolute error |q − y|"}
_TRUTH = 0.7  # the true probability of the scoring-rule demonstration
#: The estimators' colours and dashes: those of :data:`calcas.render.plots.SERIES_STYLE`, as in every figure.
_ESTIMATOR_STYLE = {e: vega_style(label) for e, label in ESTIMATOR_LABELS.items()}
_SIZES = (100, 20_000)  # the sample-size experiment's range of n


# ---------------------------------------------------------------------------------------
# the grids

@dataclasses.dataclass(frozen=True)
class LabGrids:
    """Every slider position of the lab's three experiments, from :func:`precompute`.

    Attributes
    ----------
    temperature : TemperatureSweep
        The over-confident model's test half at every T of :func:`calcas.lab.log_grid`
        (0.25 to 4), and the T fitted on its cal half.
    sizes : ndarray of int
        The sample sizes of the sample-size experiment (:func:`calcas.lab.log_sizes`).
    sample_size : DataFrame
        :func:`calcas.lab.sample_size_sweep` of the calibrated model's confidences.
    min_detectable : DataFrame
        :func:`calcas.lab.min_detectable_curve` at those sizes and that model's accuracy.
    bins, bin_summary : DataFrames
        :func:`calcas.lab.binning_sweep` of the temperature-scaled over-confident model's test
        half (a random subset of it).
    reading_tables : dict name -> DataFrame
        Reliability tables of the over- and under-confident models' test halves (the raw
        confidences), for the guide to reading a reliability diagram.
    n_bins : int
        The bin count of every table but the binning sweep's.
    truth, scoring : float, DataFrame
        The true probability p of the scoring-rule demonstration and
        :func:`calcas.lab.scoring_rule_curves` at it.
    predictors : DataFrame
        ECE, NLL and Brier score (binary: the top-1 confidence against whether it is right) on
        the over-confident model's test half, of the temperature-scaled model and of a constant
        predictor that gives every answer the test half's accuracy; index ``model, constant``,
        and a column ``base_rate``.
    maps : CalibrationMaps
        :func:`calcas.lab.calibration_maps` of the over-confident model on its cal half.
    """

    temperature: TemperatureSweep
    sizes: np.ndarray
    sample_size: pd.DataFrame
    min_detectable: pd.DataFrame
    bins: pd.DataFrame
    bin_summary: pd.DataFrame
    reading_tables: dict[str, pd.DataFrame]
    n_bins: int
    truth: float
    scoring: pd.DataFrame
    predictors: pd.DataFrame
    maps: CalibrationMaps


def precompute(models: Mapping[str, Records], *, n_bins: int = 15, draws: int = 500, bins_sample: int = 2000,
               seed: int = 0) -> LabGrids:
    """Every slider position of the lab's three experiments, computed with :mod:`calcas.lab`.

    Parameters
    ----------
    models : dict name -> Records
        Record sets with logits (not probabilities) on the same rows, named as
        :data:`MODEL_NAMES` (as :func:`calcas.make_synthetic` returns them): the
        over-confident model is temperature-scaled and binned, the calibrated one's
        confidences are resampled for the sample-size experiment.
    n_bins : int
        Equal-count bins of every table; the binning sweep covers 2..30 bins and ``n_bins``.
    draws : int
        Simulated data sets per sample size.
    bins_sample : int
        Test answers drawn in the binning experiment's diagram.
    seed : int
        Seed of the cal/test split (the over-confident model's, the same rows in every model)
        and of every resampling.

    Returns
    -------
    LabGrids
    """
    missing = [name for name in MODEL_NAMES if name not in models]
    if missing:
        raise ValueError(f"models: expected record sets named {list(MODEL_NAMES)}, missing {missing}")
    over = models["over-confident"]
    if over.logits is None:
        raise ValueError("models: the over-confident record set has no logits (temperature scaling needs them)")
    n_bins = check_positive_int(n_bins, "n_bins")
    cal = over.cal_mask(seed=seed)
    temperature = temperature_sweep(over.logits, over.label, cal=cal, n_bins=n_bins)
    sizes = log_sizes(*_SIZES)
    pool = models["calibrated"].raw_confidence()
    sample_size = sample_size_sweep(pool, sizes=sizes, draws=draws, n_bins=n_bins, seed=seed)
    detectable = min_detectable_curve(sizes, n_bins=n_bins, accuracy=float(pool.mean()))
    scaled = TemperatureScaling().fit(over.logits[cal], over.label[cal]).transform(over.logits[~cal])
    bins, bin_summary = binning_sweep(scaled, over.verified[~cal], n_bins=range(min(2, n_bins), max(30, n_bins) + 1),
                                      sample=bins_sample, seed=seed)
    reading = {name: reliability_table(models[name].raw_confidence()[~cal], models[name].verified[~cal], n_bins)
               for name in ("over-confident", "under-confident")}
    right = over.verified[~cal]
    constant = np.full(len(right), right.mean())
    predictors = pd.DataFrame(
        {"ece": [ece(c, right, n_bins) for c in (scaled, constant)],
         "nll": [nll(c, right) for c in (scaled, constant)], "brier": [brier(c, right) for c in (scaled, constant)],
         "base_rate": float(right.mean())}, index=["model", "constant"])
    return LabGrids(temperature=temperature, sizes=sizes, sample_size=sample_size, min_detectable=detectable,
                    bins=bins, bin_summary=bin_summary, reading_tables=reading, n_bins=n_bins, truth=_TRUTH,
                    scoring=scoring_rule_curves(_TRUTH), predictors=predictors,
                    maps=calibration_maps(over.logits, over.label, cal=cal, n_bins=n_bins))


# ---------------------------------------------------------------------------------------
# the facts (results.json)

@dataclasses.dataclass(frozen=True)
class AtTemperature(Facts):
    """The test half's ECE, NLL and accuracy at one temperature."""

    ece: float
    nll: float
    accuracy: float


@dataclasses.dataclass(frozen=True)
class TemperatureFacts(Facts):
    """The temperature experiment: the fitted T and the test half at T = 1 and at it.

    ``accuracy_range`` is the lowest and highest accuracy over the grid; the three booleans
    are what the prose says of them: whether accuracy is the same at every T, whether the
    fitted T gave a higher test ECE than T = 1 (it can, where bins hold few answers), and
    whether it gave a lower test NLL.
    """

    fitted_T: float
    at_1: AtTemperature
    at_fitted: AtTemperature
    accuracy_range: tuple[float, float]
    accuracy_constant: bool
    fitted_raised_ece: bool
    fitted_lowered_nll: bool


@dataclasses.dataclass(frozen=True)
class BySampleSize(Facts):
    """One number at the smallest and at the largest sample size of the experiment."""

    small_n: float
    large_n: float


@dataclasses.dataclass(frozen=True)
class SampleSizeFacts(Facts):
    """The sample-size experiment: each estimator's mean ECE of a perfectly calibrated model
    at the smallest and largest n, and the share of the plug-in's mean (its bias: the true ECE
    is 0) that the debiased estimate keeps (None where either estimator was not run)."""

    small_n: int
    large_n: int
    mean_ece: dict[str, BySampleSize]
    debiased_share_of_plugin: BySampleSize | None = None


@dataclasses.dataclass(frozen=True)
class BinningOutcome(Facts):
    """One binning at the chapter's bin count: the ECE, the fewest answers in a non-empty bin,
    and how many bins are empty."""

    ece: float
    smallest: int
    empty: int


@dataclasses.dataclass(frozen=True)
class BinningFacts(Facts):
    """The binning experiment at ``n_bins`` bins, on ``answers_shown`` test answers."""

    n_bins: int
    equal_count: BinningOutcome
    equal_width: BinningOutcome
    answers_shown: int


@dataclasses.dataclass(frozen=True)
class Scores(Facts):
    """One predictor's ECE, NLL and Brier score on the test half."""

    ece: float
    nll: float
    brier: float


@dataclasses.dataclass(frozen=True)
class ScoringFacts(Facts):
    """The scoring-rule demonstration: the report q with the lowest expected loss, per rule,
    when the truth is ``truth``; and the temperature-scaled model against a constant predictor
    at the test half's accuracy ``base_rate``, with what each metric prefers."""

    truth: float
    best_report: dict[str, float]
    base_rate: float
    model: Scores
    constant: Scores
    proper_prefer_model: bool
    ece_prefers_constant: bool


@dataclasses.dataclass(frozen=True)
class PlattFacts(Facts):
    """The two calibrators fitted on the over-confident model's cal half: T, and Platt's
    slope ``a`` and intercept ``b`` on the top-1 log-odds."""

    T: float
    a: float
    b: float


@dataclasses.dataclass(frozen=True)
class LabFacts(Facts):
    """What the lab's prose cites: ``results.json`` of ``08_lab``."""

    temperature: TemperatureFacts
    sample_size: SampleSizeFacts
    binning: BinningFacts
    scoring: ScoringFacts
    platt: PlattFacts


def compute(grids: LabGrids) -> LabFacts:
    """The numbers the lab's prose cites, and its outcomes, from the grids.

    Parameters
    ----------
    grids : LabGrids
        From :func:`precompute`; the temperature grid must hold T = 1 and the binning sweep
        ``grids.n_bins`` with both binnings.

    Returns
    -------
    LabFacts
    """
    curve, fitted = grids.temperature.curve, grids.temperature.fitted
    at_one = curve[curve["T"] == 1.0]
    if at_one.empty:
        raise ValueError("grids: T = 1 is not on the temperature grid")
    raw = AtTemperature(**{k: float(at_one[k].iloc[0]) for k in ("ece", "nll", "accuracy")})
    best = AtTemperature(**{k: float(fitted[k]) for k in ("ece", "nll", "accuracy")})
    low, high = float(curve["accuracy"].min()), float(curve["accuracy"].max())
    temperature = TemperatureFacts(fitted_T=float(fitted["T"]), at_1=raw, at_fitted=best, accuracy_range=(low, high),
                                   accuracy_constant=low == high, fitted_raised_ece=best.ece > raw.ece,
                                   fitted_lowered_nll=best.nll < raw.nll)

    sweep = grids.sample_size
    small, large = int(sweep["n"].min()), int(sweep["n"].max())
    means = {est: BySampleSize(small_n=float(g.loc[g["n"] == small, "mean"].iloc[0]),
                               large_n=float(g.loc[g["n"] == large, "mean"].iloc[0]))
             for est, g in sweep.groupby("estimator")}
    share = None
    if "plugin" in means and "debiased" in means:
        share = BySampleSize(small_n=means["debiased"].small_n / means["plugin"].small_n,
                             large_n=means["debiased"].large_n / means["plugin"].large_n)
    sample_size = SampleSizeFacts(small_n=small, large_n=large, mean_ece=means, debiased_share_of_plugin=share)

    summary = grids.bin_summary
    outcome = {}
    for b in BINNINGS:
        row = summary[(summary["N"] == grids.n_bins) & (summary["binning"] == b)]
        if row.empty:
            raise ValueError(f"grids: the binning sweep has no row for N = {grids.n_bins} with {b} bins")
        outcome[b] = BinningOutcome(ece=float(row["ece"].iloc[0]), smallest=int(row["smallest"].iloc[0]),
                                    empty=int(row["empty"].iloc[0]))
    first = grids.bins.iloc[0]
    shown = int(grids.bins.loc[(grids.bins["N"] == first["N"]) & (grids.bins["binning"] == first["binning"]),
                               "count"].sum())
    binning = BinningFacts(n_bins=grids.n_bins, equal_count=outcome["equal_count"],
                           equal_width=outcome["equal_width"], answers_shown=shown)
    curves = grids.scoring
    best = {rule: float(curves.loc[curves.loc[curves["rule"] == rule, "expected"].idxmin(), "q"])
            for rule in SCORING_RULES}
    scores = {who: Scores(**{k: float(grids.predictors.loc[who, k]) for k in ("ece", "nll", "brier")})
              for who in ("model", "constant")}
    model, constant = scores["model"], scores["constant"]
    scoring = ScoringFacts(truth=grids.truth, best_report=best, base_rate=float(grids.predictors["base_rate"].iloc[0]),
                           model=model, constant=constant,
                           proper_prefer_model=model.nll < constant.nll and model.brier < constant.brier,
                           ece_prefers_constant=constant.ece < model.ece)
    platt = PlattFacts(T=grids.maps.T, a=grids.maps.a, b=grids.maps.b)
    return LabFacts(temperature=temperature, sample_size=sample_size, binning=binning, scoring=scoring, platt=platt)


# ---------------------------------------------------------------------------------------
# the sentences

def prose(facts: LabFacts) -> dict[str, str]:
    """One paragraph of Markdown per section: ``"temperature"``, ``"sample_size"``,
    ``"binning"``, ``"platt"`` and ``"scoring"``, each phrasing the facts of its section."""
    t = facts.temperature
    low, high = t.accuracy_range
    same = (f"accuracy is {fmt(low, 4)} at every T of the grid" if t.accuracy_constant
            else f"accuracy moves between {fmt(low, 4)} and {fmt(high, 4)}")
    temperature = (f"Fitted on the cal half, **T = {fmt(t.fitted_T, 2)}**. On the test half that T takes the ECE "
                   f"from {fmt(t.at_1.ece, 4)} (T = 1, the raw model) to {fmt(t.at_fitted.ece, 4)}, and the NLL "
                   f"from {fmt(t.at_1.nll, 4)} to {fmt(t.at_fitted.nll, 4)}, while {same}.")
    if t.fitted_raised_ece:
        nll = "fell" if t.fitted_lowered_nll else "did not fall either"
        temperature += (" Here the ECE went **up**, not down: with this few test answers per bin the binned ECE is "
                        f"mostly noise (see the sample-size experiment below), while the NLL, which needs no bins, "
                        f"{nll}.")

    s = facts.sample_size
    parts = [f"the {ESTIMATOR_LABELS[e]} averages {fmt(s.mean_ece[e].small_n, 4)} at n = {s.small_n:,} "
             f"and {fmt(s.mean_ece[e].large_n, 4)} at n = {s.large_n:,}" for e in ESTIMATOR_LABELS if e in s.mean_ece]
    sample_size = "For this perfectly calibrated model (true ECE 0), " + "; ".join(parts) + "."
    if s.debiased_share_of_plugin is not None:
        kept = s.debiased_share_of_plugin
        sample_size += (f" At n = {s.large_n:,} the debiased estimate keeps {pct(kept.large_n)} of the plug-in's "
                        f"bias; at n = {s.small_n:,} it keeps {pct(kept.small_n)}.")

    b = facts.binning
    parts = []
    for key, label in BINNING_LABELS.items():
        r: BinningOutcome = getattr(b, key)
        empty = f" ({r.empty} empty)" if r.empty else ""
        parts.append(f"with {label} bins the fewest samples in a bin is {r.smallest:,}{empty} and the ECE "
                     f"{fmt(r.ece, 4)}")
    binning = f"At N = {b.n_bins}, " + "; ".join(parts) + "."

    sc = facts.scoring
    best = "; ".join(f"the {RULE_LABELS[r]} at q = {fmt(sc.best_report[r], 3)}"  # in a fixed order, not the
                     for r in RULE_LABELS if r in sc.best_report)                # order results.json kept
    scoring = f"With the truth p = {fmt(sc.truth, 2)}, the expected loss is lowest for {best}."
    m, c = sc.model, sc.constant
    scoring += (f" On the test half, scoring the top-1 confidence against whether the answer is right (a yes/no "
                f"event, so this NLL is not the temperature experiment's, which scores the probability of the "
                f"true class among all), a constant predictor that gives every answer the accuracy "
                f"{fmt(sc.base_rate, 4)} has ECE {fmt(c.ece, 4)}, NLL {fmt(c.nll, 4)} and Brier score "
                f"{fmt(c.brier, 4)}; the temperature-scaled model has ECE {fmt(m.ece, 4)}, NLL {fmt(m.nll, 4)} and "
                f"Brier score {fmt(m.brier, 4)}.")
    if sc.ece_prefers_constant and sc.proper_prefer_model:
        scoring += (" The ECE ranks the constant, which tells no answer from another, above the model; NLL "
                    "and Brier score rank the model first.")
    p = facts.platt
    slope = "below 1, flattens" if p.a < 1 else "above 1, sharpens"
    platt = (f"Fitted on the cal half, Platt scaling is σ({fmt(p.a, 2)} s {'+' if p.b >= 0 else '−'} "
             f"{fmt(abs(p.b), 2)}): the slope, {slope} the raw confidence σ(s), and the intercept shifts it; "
             f"temperature scaling divides the logits by T = {fmt(p.T, 2)}.")
    return {"temperature": temperature, "sample_size": sample_size, "binning": binning, "scoring": scoring,
            "platt": platt}


# ---------------------------------------------------------------------------------------
# the explorers (kernel-free, drawn from the grids)

def explorers(grids: LabGrids, facts: LabFacts) -> dict[str, Explorer]:
    """The page's three explorers, by experiment: ``"temperature"``, ``"sample_size"``,
    ``"binning"`` (the last starting at the chapter's bin count)."""
    return {
        "temperature": temperature_explorer(grids.temperature, title="over-confident model, test half"),
        "sample_size": sample_size_explorer(grids.sample_size, min_detectable=grids.min_detectable,
                                            title="a perfectly calibrated model (true ECE = 0)"),
        "binning": binning_explorer(grids.bins, grids.bin_summary, default=facts.binning.n_bins,
                                    title=f"temperature-scaled model, {facts.binning.answers_shown:,} test answers"),
    }


def temperature_explorer(sweep: TemperatureSweep, *, title: str = "") -> Explorer:
    """Reliability diagram of ``softmax(logits / T)`` with a slider for log2 T, its read-out,
    and ECE and NLL against T with the current and the fitted T marked.

    Parameters
    ----------
    sweep : TemperatureSweep
        From :func:`calcas.lab.temperature_sweep`, on temperatures evenly spaced in log2 T
        (:func:`calcas.lab.log_grid`).
    title : str

    Returns
    -------
    Explorer
        The read-out at each T: "T = 0.50 (log₂ T = -1): ECE = ..., NLL = ..., accuracy = ...".
        Every row carries the key of its log2 T (:func:`calcas.render.interactive.grid_key`),
        which the slider is matched on; the marks at the current T are named
        ``current_T_ece``, ``current_T_nll`` and the fitted T's ``fitted_T_ece``,
        ``fitted_T_nll``, the diagram's ``temperature_diagram_*``.
    """
    curve, fitted = sweep.curve, sweep.fitted
    steps = np.diff(curve["log2_T"].to_numpy())
    if len(curve) < 2 or not np.allclose(steps, steps[0]):
        raise ValueError("sweep: the temperatures must be an evenly spaced grid in log2 T (see log_grid)")
    keyed = lambda df: df.assign(key=[grid_key(v) for v in df["log2_T"]])  # noqa: E731
    colour = OKABE_ITO["blue"]
    text = [{"series": "T", "key": grid_key(r.log2_T), "colour": "#222222",
             "text": f"T = {r.T:.2f} (log₂ T = {r.log2_T:g}): ECE = {r.ece:.4f}, NLL = {r.nll:.4f}, "
                     f"accuracy = {r.accuracy:.4f}"} for r in curve.itertuples()]
    text, lines = readout(text, "key", ["T"])
    grid = curve["log2_T"].tolist()
    t_param = slider("log2_T", "log₂ of the temperature T ", grid, min(grid, key=abs))  # T = 1: the raw model
    now = key_matches("key", t_param)
    plot = reliability_layers(keyed(sweep.bins), now, name="temperature_diagram", colour=colour)

    # ECE and NLL against T, one small panel each (their scales differ), sharing the T axis
    long = keyed(curve).melt(id_vars=["T", "log2_T", "key"], value_vars=["ece", "nll"], var_name="metric")
    long["metric"] = long["metric"].map({"ece": "ECE", "nll": "NLL"})
    ticks = [t for t in (0.25, 0.5, 1, 2, 4) if curve["T"].min() <= t <= curve["T"].max()]
    t_scale = alt.Scale(type="log", base=2)
    marks = pd.DataFrame({"T": [fitted["T"]], "label": [f"fitted T = {fitted['T']:.2f}"]})

    def panel(metric: str, last: bool) -> alt.LayerChart:
        data = alt.Chart(long[long["metric"] == metric].round({"value": 5}))
        xs = alt.X("T:Q", title="temperature T (log scale)" if last else None, scale=t_scale,
                   axis=alt.Axis(values=ticks, format="~g"))
        ys = alt.Y("value:Q", title=metric, scale=alt.Scale(zero=metric == "ECE", nice=True))
        curve_line = data.mark_line(color="#555555", strokeWidth=1.8).encode(x=xs, y=ys)
        fit_rule = alt.Chart(marks).mark_rule(color=series_style("fitted T")["color"], strokeDash=[4, 3],
                                              strokeWidth=1.6).encode(x=xs)
        current = data.transform_filter(now)
        now_rule = current.mark_rule(color=colour, strokeWidth=1.2, opacity=0.6).encode(x=xs)
        now_point = current.mark_point(size=90, filled=True, color=colour, opacity=1).encode(
            x=xs, y=ys, tooltip=[alt.Tooltip("T:Q", format=".2f"), alt.Tooltip("value:Q", format=".4f")])
        # named marks (SVG classes "current_T_ece_marks", ...): the browser test finds them
        layers = [curve_line, fit_rule.properties(name=f"fitted_T_{metric.lower()}"), now_rule,
                  now_point.properties(name=f"current_T_{metric.lower()}")]
        if metric == "ECE":  # the fitted T's label, once, at the top of the first panel
            layers.append(alt.Chart(marks).mark_text(align="right", dx=-4, baseline="top", fontSize=11.5,
                                                     color=series_style("fitted T")["color"])
                          .encode(x=xs, y=alt.value(2), text="label:N"))
        return alt.layer(*layers).properties(width=WIDTH, height=110)

    chart = alt.vconcat(plot, text_panel(text, lines, now, None), panel("ECE", False), panel("NLL", True), spacing=10)
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
        From :func:`calcas.lab.sample_size_sweep`, on sizes from :func:`calcas.lab.log_sizes`
        (evenly spaced in log10 n).
    min_detectable : DataFrame, optional
        ``n, min_detectable``: the smallest ECE the data could detect at each n, drawn as a
        dotted line and read out beside the estimates.
    title : str
    default : int, optional
        The starting n (the nearest size of the sweep); default the middle one, so the slider
        can move either way.
    steps_per_decade : int
        That of :func:`calcas.lab.log_sizes`: the slider's step is 1/steps_per_decade of a decade.

    Returns
    -------
    Explorer
        Read-out: "n = 100 (log10 n ≈ 2):", then "plug-in ECE = mean (10–90%: low–high)"
        for each estimator and "smallest detectable ECE = ..." with ``min_detectable``. Rows
        are matched to the slider on the key of their log10 n; the marks at the current n are
        named ``current_n_rule`` and ``current_n_points``.
    """
    need = {"n", "estimator", "mean", "low", "high"}
    if not need <= set(sweep.columns):
        raise ValueError(f"sweep: missing columns {sorted(need - set(sweep.columns))}")
    steps = check_positive_int(steps_per_decade, "steps_per_decade")
    # the slider moves over log10 n on a grid of 1/steps decades; each n sits at its nearest point
    sweep = sweep.assign(log10_n=np.round(np.log10(sweep["n"].to_numpy(float)) * steps) / steps)
    sweep = sweep.assign(key=[grid_key(v) for v in sweep["log10_n"]])
    ns = sweep[["n", "log10_n", "key"]].drop_duplicates().sort_values("n")
    gaps = np.round(np.diff(ns["log10_n"].to_numpy()) * steps).astype(int)
    if len(ns) < 2 or set(gaps.tolist()) != {1}:
        raise ValueError(f"sweep: the sizes must be one step of 1/{steps} decade apart (see log_sizes), "
                         f"got n = {ns['n'].tolist()}")
    estimators = [e for e in ESTIMATOR_LABELS if e in set(sweep["estimator"])]
    data = sweep.assign(series=sweep["estimator"].map(ESTIMATOR_LABELS))
    detect = {}
    if min_detectable is not None:
        detect = dict(zip(min_detectable["n"].astype(int), min_detectable["min_detectable"]))
    text = [{"series": "n", "key": r.key, "colour": "#222222", "text": f"n = {r.n:,} (log₁₀ n ≈ {r.log10_n:g}):"}
            for r in ns.itertuples()]
    for r in data.itertuples():
        text.append({"series": r.series, "key": r.key, "colour": _ESTIMATOR_STYLE[r.estimator]["colour"],
                     "text": f"{r.series} = {r.mean:.4f} (10–90%: {r.low:.4f}–{r.high:.4f})"})
    if detect:
        for r in ns.itertuples():
            text.append({"series": "detect", "key": r.key, "colour": "#555555",
                         "text": f"smallest detectable ECE = {detect[int(r.n)]:.4f}"})
    order = ["n"] + [ESTIMATOR_LABELS[e] for e in estimators] + (["detect"] if detect else [])
    text, lines = readout(text, "key", order)
    grid = ns["log10_n"].tolist()
    start = len(ns) // 2 if default is None else int(np.argmin(np.abs(ns["n"].to_numpy() - default)))
    n_param = slider("log10_n", "log₁₀ of the sample size n ", grid, grid[start])
    now = key_matches("key", n_param)

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
    base = alt.Chart(data.round({"mean": 5, "low": 5, "high": 5}))
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
    current = base.transform_filter(now)
    layers.append(current.mark_rule(color="#bbbbbb", strokeDash=[2, 2]).encode(x=x).properties(name="current_n_rule"))
    layers.append(current.mark_point(size=110, filled=True, opacity=1, stroke="white", strokeWidth=1.2).encode(
        x=x, y=y, color=colour,
        tooltip=["n:Q", "series:N", alt.Tooltip("mean:Q", format=".4f"), alt.Tooltip("low:Q", format=".4f"),
                 alt.Tooltip("high:Q", format=".4f")]).properties(name="current_n_points"))
    plot = alt.layer(*layers).properties(width=WIDTH, height=HEIGHT)
    chart = alt.vconcat(plot, text_panel(text, lines, now, None), spacing=8)
    return Explorer(finish(chart.add_params(n_param), title),
                    f"calcas sample-size explorer: n = {lo_n:,}..{hi_n:,}")


def binning_explorer(bins: pd.DataFrame, summary: pd.DataFrame, *, title: str = "", default: int = 15) -> Explorer:
    """Reliability diagram with a slider for the bin count N and a radio for the binning;
    each bin's point is sized by how many samples it holds.

    Parameters
    ----------
    bins, summary : DataFrames
        From :func:`calcas.lab.binning_sweep`, on evenly spaced bin counts.
    title : str
    default : int
        The starting N (must be among the sweep's bin counts).

    Returns
    -------
    Explorer
        Read-out: "N = 15, equal-width bins: ECE = ..., fewest samples in a bin: k (e empty)".
        Rows are matched to the slider on the key of N and to the radio on the binning; the
        diagram's marks are named ``binning_diagram_curve`` and ``binning_diagram_points``.
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
        text.append({"series": "N", "key": f"{r.N}|{r.binning}", "N_key": grid_key(r.N), "binning": r.binning,
                     "colour": "#222222",
                     "text": f"N = {r.N}, {BINNING_LABELS[r.binning]} bins: ECE = {r.ece:.4f}, "
                             f"fewest samples in a bin: {r.smallest:,}{empty}"})
    text, lines = readout(text, "key", ["N"])
    n_param = slider("N", "number of bins N ", grid, int(default))
    b_param = alt.param(name="binning", value=binnings[0], bind=alt.binding_radio(
        # no-break spaces: the radio's labels otherwise touch the next button
        options=binnings, labels=[BINNING_LABELS[b] + "\u00a0\u00a0" for b in binnings], name="bins "))
    now = key_matches("N_key", n_param) & (alt.datum.binning == b_param)
    colour = OKABE_ITO["blue"]
    # area follows the count up to the largest bin at the starting N; bigger bins (small N) are
    # drawn at that size, so the equal-count points stay visible at every N
    top = int(bins.loc[bins["N"] == default, "count"].max())
    size = alt.Size("count:Q", title="samples in bin", scale=alt.Scale(range=[6, 420], zero=True, domain=[0, top],
                                                                       clamp=True),
                    legend=alt.Legend(orient="bottom", direction="horizontal", symbolFillColor=colour,
                                      values=[v for v in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
                                              if v <= top][-3:],
                                      symbolStrokeColor=colour))
    plot = reliability_layers(bins.assign(N_key=[grid_key(n) for n in bins["N"]]), now, name="binning_diagram",
                              colour=colour, gaps=False, size=size)
    chart = alt.vconcat(plot, text_panel(text, lines, now, None), spacing=8)
    return Explorer(finish(chart.add_params(n_param, b_param), title),
                    f"calcas binning explorer: N = {grid[0]}..{grid[-1]}, {', '.join(binnings)}")


# ---------------------------------------------------------------------------------------
# the static figure and the live views (matplotlib)

def figures(grids: LabGrids) -> dict[str, plt.Figure]:
    """The chapter's static figures, by name: ``"annotated_reliability"``, the guide to reading a
    reliability diagram on the over- and under-confident models' test halves (the book's intro
    shows it); ``"calibration_maps"``, temperature and Platt scaling as maps of the raw
    log-odds over the cal half's reliability points; ``"scoring_rules"``, the expected loss of
    each report under the three rules of :data:`calcas.lab.SCORING_RULES`."""
    ax = annotated_reliability_diagram(grids.reading_tables["over-confident"], grids.reading_tables["under-confident"])
    return {"annotated_reliability": ax.figure, "calibration_maps": calibration_map_figure(grids.maps),
            "scoring_rules": scoring_rule_figure(grids.scoring, grids.truth, labels=RULE_LABELS)}


def _nearest(values: Any, target: float) -> float:
    values = np.asarray(values, dtype=float)
    return float(values[int(np.argmin(np.abs(values - target)))])


def temperature_view(sweep: TemperatureSweep, T: float, *, ax: plt.Axes | None = None) -> plt.Axes:
    """The reliability diagram of :func:`temperature_explorer` at the grid T nearest ``T``
    (in log2 T, T > 0), its ECE, NLL and accuracy in the title."""
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"T: must be a finite number > 0, got {T!r}")
    at = _nearest(sweep.curve["log2_T"], np.log2(T))
    row = sweep.curve[sweep.curve["log2_T"] == at].iloc[0]
    ax = reliability_gaps(sweep.bins[sweep.bins["log2_T"] == at], ax=ax)
    ax.set_title(f"T = {row['T']:.2f}: ECE = {row['ece']:.4f}, NLL = {row['nll']:.4f},\n"
                 f"accuracy = {row['accuracy']:.4f} (fitted T = {sweep.fitted['T']:.2f})", fontsize=10)
    return ax


def sample_size_view(sweep: pd.DataFrame, n: int, *, ax: plt.Axes | None = None) -> plt.Axes:
    """The curves of :func:`sample_size_explorer` with the sweep's n nearest ``n`` marked."""
    n = check_positive_int(n, "n")
    at = int(_nearest(sweep["n"], n))
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.6), dpi=INLINE_DPI)  # as reliability_gaps' views
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
    """The reliability diagram of :func:`binning_explorer` at ``N`` bins and ``binning``
    ("equal_count" or "equal_width"), each bin's point sized by its count."""
    check_binning(binning, BINNINGS)
    row = summary[(summary["N"] == N) & (summary["binning"] == binning)]
    if row.empty:
        raise ValueError(f"N: {N!r} is not among the sweep's bin counts {sorted(summary['N'].unique())}")
    row = row.iloc[0]
    ax = reliability_gaps(bins[(bins["N"] == N) & (bins["binning"] == binning)], ax=ax, sized=True)
    ax.set_title(f"N = {N}, {BINNING_LABELS[binning]} bins: ECE = {row['ece']:.4f},\n"
                 f"fewest samples in a bin: {row['smallest']:,}", fontsize=10)
    return ax
