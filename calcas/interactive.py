"""Kernel-free explorers for the book: altair charts whose sliders recompute in the browser.

Every number a chart shows is computed here, in Python, by calcas (``reliability_table``,
``ece``, ``cascade_curves``, ``cleaning_sweep``) for every slider position; the browser
only filters the precomputed rows with a Vega-Lite parameter. So the static HTML book
stays interactive with no kernel, and what a reader sees is exactly what calcas returns.

Each explorer returns an :class:`Explorer`. Displayed in a notebook it offers

- ``text/html``: a ``<div>`` and a script that loads Vega, Vega-Lite and vega-embed from the
  built book itself (``<book root>/_static/vendored/``, copied there by
  :func:`calcas.book.build_book`; the root is found at run time from the ``data-content_root``
  attribute Sphinx puts on ``<html>``), then draws the chart. No request leaves the book.
  myst-nb uses this entry for the HTML book;
- altair's spec under ``application/vnd.vegalite.v6+json``, for front ends that draw
  Vega-Lite natively (VS Code, nteract, JupyterLab with a Vega-Lite 6 renderer). JupyterLab
  ranks ``text/html`` above it, so there the HTML entry is what runs.

Outside a built book the HTML entry has no scripts to load and says so; in a live session,
display ``explorer.chart`` to draw the same chart with altair's renderer.
"""
from __future__ import annotations

import html
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from .metrics import ece, reliability_table

__all__ = ["Explorer", "reliability_explorer", "cascade_explorer", "cleaning_explorer",
           "VENDOR_PATH", "VENDOR_SCRIPTS", "VEGALITE_MIME"]

#: Where the built book serves the vendored scripts, relative to its root.
VENDOR_PATH = "_static/vendored/"
#: The Vega-Lite 6 mimetype as JupyterLab, VS Code and nbformat spell it.
VEGALITE_MIME = "application/vnd.vegalite.v6+json"
#: Loaded in this order (vega-lite needs vega; vega-embed needs both).
VENDOR_SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d", "#bab0ac")
METHOD_STYLE = {  # cascade curves: colour and dash of each method
    "RC": ("#8c8c8c", [4, 3]), "UC": ("#f58518", [1, 0]),
    "CC": ("#4c78a8", [1, 0]), "oracle": ("#54a24b", [6, 3]),
}
WIDTH, HEIGHT, TEXT_ROW = 460, 320, 20

# The loader shared by every explorer on a page: the scripts are loaded once (one promise on
# window), each explorer then embeds its own spec. RequireJS pages (classic notebooks) would
# turn the UMD bundles into anonymous AMD modules, so `define` is hidden while they load.
_LOADER = """
function calcasBookRoot() {
  var root = document.documentElement.dataset.content_root;        // Sphinx >= 7.2
  if (root !== undefined) return root;
  var opts = window.DOCUMENTATION_OPTIONS;                          // Sphinx < 7.2
  if (opts && opts.URL_ROOT !== undefined) return opts.URL_ROOT;
  var s = document.querySelector('script[src$="_static/documentation_options.js"]');
  if (s) return s.getAttribute("src").replace(/_static\\/documentation_options\\.js$/, "");
  return null;                                                      // not a book page
}
function calcasLoadVega() {
  if (window.calcasVega) return window.calcasVega;
  if (window.vegaEmbed) return (window.calcasVega = Promise.resolve(window.vegaEmbed));
  var root = calcasBookRoot();
  if (root === null) return Promise.reject(new Error(
    "this chart is drawn by the built book, which serves Vega itself; in a live notebook " +
    "display `explorer.chart` instead"));
  var amd = window.define, hidden = !!(amd && amd.amd);
  if (hidden) window.define = undefined;
  var chain = Promise.resolve();
  __SCRIPTS__.forEach(function (name) {
    chain = chain.then(function () {
      return new Promise(function (resolve, reject) {
        var el = document.createElement("script");
        el.src = root + __VENDOR__ + name;
        el.onload = resolve;
        el.onerror = function () { reject(new Error("could not load " + el.src)); };
        document.head.appendChild(el);
      });
    });
  });
  function restore() { if (hidden) window.define = amd; }
  window.calcasVega = chain.then(function () { restore(); return window.vegaEmbed; },
                                 function (err) { restore(); window.calcasVega = null; throw err; });
  return window.calcasVega;
}
""".replace("__SCRIPTS__", json.dumps(list(VENDOR_SCRIPTS))).replace("__VENDOR__", json.dumps(VENDOR_PATH))

_EMBED_OPTIONS = {"mode": "vega-lite", "renderer": "svg",
                  "actions": {"export": True, "source": False, "compiled": False, "editor": False}}


class Explorer:
    """An altair chart that displays in the static book (``text/html``) and in Jupyter.

    Parameters
    ----------
    chart : altair chart
        The chart, with its data inlined and its slider parameters at the top level.
    name : str
        A short description, used as the ``text/plain`` representation.

    Attributes
    ----------
    chart : altair chart
        Display it directly to use altair's own renderer.
    """

    def __init__(self, chart: alt.TopLevelMixin, name: str):
        self.chart = chart
        self.name = name

    def to_dict(self) -> dict[str, Any]:
        """The Vega-Lite spec (a dict, with ``$schema``)."""
        return self.chart.to_dict()

    def to_html(self) -> str:
        """A ``<div>`` and a ``<script>`` that draw the chart with the book's vendored Vega.

        The spec carries no ``$schema`` URL (vega-embed is told the mode instead), so the
        snippet names no outside address at all.
        """
        spec = {k: v for k, v in self.to_dict().items() if k != "$schema"}
        div = f"calcas-explorer-{uuid.uuid4().hex[:12]}"
        payload = json.dumps(spec, separators=(",", ":"), allow_nan=False)
        # keep the JSON inert inside <script>: no "</script>", no JS line separators
        payload = payload.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return (
            f'<div class="calcas-explorer" id="{div}" aria-label="{html.escape(self.name)}"></div>\n'
            f"<script>\n(function () {{\n{_LOADER}"
            f'var el = document.getElementById("{div}");\n'
            f"var spec = {payload};\n"
            f"calcasLoadVega().then(function (embed) {{ return embed(el, spec, "
            f"{json.dumps(_EMBED_OPTIONS)}); }})\n"
            f'  .catch(function (err) {{ el.textContent = "[interactive chart: " + err.message + "]"; }});\n'
            f"}})();\n</script>\n"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # altair 6.3's mimetype renderer names its entry "application/vnd.vegalite.v6.json":
        # nbformat only stores a dict under "application/json" or "*+json" (papermill then
        # refuses the notebook), and front ends look for the "+json" name, so use that one.
        return {VEGALITE_MIME: self.to_dict(), "text/html": self.to_html(), "text/plain": f"<{self.name}>"}

    def __repr__(self) -> str:
        return f"<{self.name}>"


# ---------------------------------------------------------------------------------------
# helpers

def _grid(n_bins: Iterable[int], default: int) -> list[int]:
    grid = sorted({int(n) for n in n_bins})
    if not grid or grid[0] < 1:
        raise ValueError(f"n_bins: expected bin counts >= 1, got {list(n_bins)}")
    if int(default) not in grid:
        raise ValueError(f"default: {default} is not in the n_bins grid {grid[0]}..{grid[-1]}")
    return grid


def _slider(name: str, label: str, values: list[int], value: int) -> alt.Parameter:
    """A parameter bound to a range slider (an evenly spaced grid) or else a drop-down."""
    steps = set(np.diff(values).tolist()) or {1}
    if len(steps) == 1:
        bind = alt.binding_range(min=values[0], max=values[-1], step=steps.pop(), name=label)
    else:
        bind = alt.binding_select(options=values, name=label)
    return alt.param(name=name, value=int(value), bind=bind)


def _named(values: Any, names: list[str], what: str) -> dict[str, Any]:
    if isinstance(values, Mapping):
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"{what}: no entry for {missing}")
        return {n: values[n] for n in names}
    return {n: values for n in names}


def _colours(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _colour(names: list[str], orient: str = "bottom-right") -> alt.Color:
    scale = alt.Scale(domain=names, range=list(_colours(names).values()))
    return alt.Color("series:N", scale=scale, title=None,
                     legend=alt.Legend(orient=orient, symbolOpacity=1) if len(names) > 1 else None)


def _text_panel(text: pd.DataFrame, param: alt.Parameter, field: str, rows: int) -> alt.Chart:
    """The read-out under a chart: one line per series (coloured as its series, from the
    ``colour`` column), filtered by the slider."""
    return (alt.Chart(text, width=WIDTH, height=TEXT_ROW * rows)
            .mark_text(align="left", baseline="middle", fontSize=12.5)
            .encode(x=alt.value(0), y=alt.Y("row:O", axis=None), text="text:N",
                    color=alt.Color("colour:N", scale=None, legend=None))
            .transform_filter(alt.datum[field] == param))


def _finish(chart: alt.VConcatChart, title: str) -> alt.VConcatChart:
    # independent legends keep each legend inside its plot (a shared one floats above the concat)
    chart = chart.resolve_legend(color="independent")
    if title:
        chart = chart.properties(title=alt.TitleParams(title, anchor="start", fontSize=15))
    return chart.configure_view(stroke=None).configure_axis(grid=True, gridOpacity=0.4)


# ---------------------------------------------------------------------------------------
# the explorers

def reliability_explorer(confidence: Any, correct: Any, *, n_bins: Iterable[int] = range(2, 31),
                         default: int = 15, binning: str = "equal_count", title: str = "",
                         label: str = "model") -> Explorer:
    """Reliability diagram with a slider for the number of bins N, and the ECE at that N.

    Parameters
    ----------
    confidence : array, shape (n,), or dict name -> array
        Confidences (probabilities in [0, 1]) of each sample's answer. A dict draws one
        series per name (e.g. ``{"uncalibrated": raw, "temperature-scaled": cal}``).
    correct : array, shape (n,), or dict name -> array
        Verifier score (0/1) of each answer: one array shared by every series, or one per name.
    n_bins : iterable of int
        Bin counts the slider offers; every table and ECE is precomputed for each.
    default : int
        The slider's starting position (must be in ``n_bins``).
    binning : {"equal_count", "equal_width"}
        Passed to :func:`calcas.reliability_table` and :func:`calcas.ece`.
    title : str
    label : str
        Name of the series when ``confidence`` is a single array.

    Returns
    -------
    Explorer
        Accuracy against mean confidence per bin, the diagonal of perfect calibration, the
        gap of each bin, and the read-out "ECE = 0.0xyz with N bins" for each series.
    """
    conf = dict(confidence) if isinstance(confidence, Mapping) else {label: confidence}
    names = [str(n) for n in conf]
    conf = dict(zip(names, conf.values()))
    corr = _named(correct, names, "correct")
    # equal-count binning needs a sample per bin: a small test half offers fewer bin counts
    n_min = min(len(np.asarray(c)) for c in conf.values())
    grid = _grid([n for n in n_bins if int(n) <= n_min], default)
    bins, text = [], []
    for row, name in enumerate(names):
        for n in grid:
            table = reliability_table(conf[name], corr[name], n_bins=n, binning=binning)
            bins.append(table[table["count"] > 0].assign(series=name, N=n))
            e = ece(conf[name], corr[name], n_bins=n, binning=binning)
            prefix = f"{name}: " if len(names) > 1 else ""
            text.append({"series": name, "N": n, "ece": e, "row": row, "colour": _colours(names)[name],
                         "text": f"{prefix}ECE = {e:.4f} with {n} bins"})
    bins = pd.concat(bins, ignore_index=True)[
        ["series", "N", "bin", "count", "mean_confidence", "accuracy", "lower", "upper"]]
    # drawn, not reported: 6 decimals keep the page small (the ECE read-out is exact)
    bins = bins.round({"mean_confidence": 6, "accuracy": 6, "lower": 6, "upper": 6})
    text = pd.DataFrame(text)

    n_param = _slider("N", "number of bins N ", grid, default)
    axis = dict(scale=alt.Scale(domain=[0, 1]))
    x = alt.X("mean_confidence:Q", title="mean confidence in bin", **axis)
    y = alt.Y("accuracy:Q", title="accuracy in bin", **axis)
    colour = _colour(names)
    tooltip = [alt.Tooltip("series:N"), alt.Tooltip("bin:Q"), alt.Tooltip("count:Q"),
               alt.Tooltip("mean_confidence:Q", format=".4f"), alt.Tooltip("accuracy:Q", format=".4f"),
               alt.Tooltip("lower:Q", format=".4f"), alt.Tooltip("upper:Q", format=".4f")]
    diagonal = (alt.Chart(pd.DataFrame({"mean_confidence": [0.0, 1.0], "accuracy": [0.0, 1.0]}))
                .mark_line(color="#999999", strokeDash=[5, 4], strokeWidth=1).encode(x=x, y=y))
    base = alt.Chart(bins).transform_filter(alt.datum.N == n_param)
    gap = base.mark_rule(strokeWidth=3, opacity=0.35).encode(
        x=x, y=alt.Y("mean_confidence:Q", **axis), y2="accuracy:Q", color=colour)
    line = base.mark_line(point=alt.OverlayMarkDef(size=45, filled=True)).encode(
        x=x, y=y, color=colour, detail="series:N", tooltip=tooltip)
    plot = alt.layer(diagonal, gap, line).properties(width=WIDTH, height=HEIGHT)
    chart = alt.vconcat(plot, _text_panel(text, n_param, "N", len(names)), spacing=8)
    return Explorer(_finish(chart.add_params(n_param), title),
                    f"calcas reliability explorer: {', '.join(names)}; N = {grid[0]}..{grid[-1]}")


def cascade_explorer(curves: pd.DataFrame, *, title: str = "") -> Explorer:
    """Cascade curves (accuracy against the share answered by the small model) with a slider for K.

    Parameters
    ----------
    curves : DataFrame
        The long table of :func:`calcas.cascade_curves`: ``method`` (RC / UC / CC / oracle),
        ``K, p_small, accuracy, large_calls_saved``.
    title : str

    Returns
    -------
    Explorer
        One line per method; the CC and UC operating points at the chosen K (K bins kept by
        the small model) are highlighted, with the read-out "K = k: p_small = ..., accuracy =
        ..., large calls saved = ...".
    """
    need = ["method", "K", "p_small", "accuracy", "large_calls_saved"]
    if not set(need) <= set(curves.columns):
        raise ValueError(f"curves: missing columns {sorted(set(need) - set(curves.columns))}")
    data = curves[need].copy()
    methods = [m for m in METHOD_STYLE if m in set(data["method"])] + \
        sorted(set(data["method"]) - set(METHOD_STYLE))
    ks = sorted(int(k) for k in data["K"].unique())
    marked = [m for m in ("CC", "UC") if m in methods] or methods[:1]
    colours = {m: METHOD_STYLE.get(m, (PALETTE[i % len(PALETTE)], None))[0] for i, m in enumerate(methods)}
    text = []
    for row, method in enumerate(marked):
        for r in data[data["method"] == method].itertuples():
            text.append({"series": method, "K": int(r.K), "row": row, "colour": colours[method],
                         "text": f"{method} at K = {int(r.K)}: p_small = {r.p_small:.3f}, accuracy = "
                                 f"{r.accuracy:.4f}, large calls saved = {int(r.large_calls_saved):,}"})
    text = pd.DataFrame(text)
    data = data.rename(columns={"method": "series"})

    k_param = _slider("K", "bins kept by the small model K ", ks, ks[len(ks) // 2])
    scale = alt.Scale(domain=methods, range=[colours[m] for m in methods])
    legend = alt.Legend(orient="bottom-left", symbolType="stroke", symbolStrokeWidth=2.5)
    colour = alt.Color("series:N", title="method", legend=legend, scale=scale)
    dash = alt.StrokeDash("series:N", legend=None, scale=alt.Scale(
        domain=methods, range=[METHOD_STYLE.get(m, (None, [1, 0]))[1] for m in methods]))
    x = alt.X("p_small:Q", title="share answered by the small model (p)", scale=alt.Scale(domain=[0, 1]))
    y = alt.Y("accuracy:Q", title="cascade accuracy", scale=alt.Scale(zero=False))
    tooltip = [alt.Tooltip("series:N", title="method"), "K:Q", alt.Tooltip("p_small:Q", format=".3f"),
               alt.Tooltip("accuracy:Q", format=".4f"), alt.Tooltip("large_calls_saved:Q", format=",")]
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=x, y=y, color=colour, strokeDash=dash, tooltip=tooltip)
    current = alt.Chart(data).transform_filter(alt.datum.K == k_param).transform_filter(
        alt.FieldOneOfPredicate(field="series", oneOf=marked))
    rule = current.transform_filter(alt.datum.series == marked[0]).mark_rule(
        color="#bbbbbb", strokeDash=[2, 2]).encode(x=x)
    points = current.mark_point(size=160, filled=True, opacity=1, stroke="white", strokeWidth=1.5).encode(
        x=x, y=y, color=colour, tooltip=tooltip)
    plot = alt.layer(lines, rule, points).properties(width=WIDTH, height=HEIGHT)
    panel = _text_panel(text, k_param, "K", len(marked))
    chart = alt.vconcat(plot, panel, spacing=8)
    return Explorer(_finish(chart.add_params(k_param), title),
                    f"calcas cascade explorer: {', '.join(methods)}; K = {ks[0]}..{ks[-1]}")


def cleaning_explorer(sweep: pd.DataFrame | Mapping[str, pd.DataFrame], *, title: str = "",
                      label: str = "method 2") -> Explorer:
    """Precision against detection rate of label cleaning (method 2), with a slider for K.

    Parameters
    ----------
    sweep : DataFrame, or dict name -> DataFrame
        The table of :func:`calcas.cleaning_sweep`: ``K, n_flagged, detection_rate, n_rated,
        precision`` (precision NaN where there is no ground truth). A dict draws one curve per
        name (e.g. one per mixture of experts).
    title : str
    label : str
        Name of the curve when ``sweep`` is a single table.

    Returns
    -------
    Explorer
        The precision / detection-rate curve, the point at the chosen K (each expert's K most
        accurate bins) highlighted, and the read-out "K = k: n flagged, detection rate,
        precision".
    """
    sweeps = dict(sweep) if isinstance(sweep, Mapping) else {label: sweep}
    names = [str(n) for n in sweeps]
    need = ["K", "n_flagged", "detection_rate", "n_rated", "precision"]
    frames, text = [], []
    for row, (name, table) in enumerate(zip(names, sweeps.values())):
        if not set(need) <= set(table.columns):
            raise ValueError(f"sweep: {name!r} lacks columns {sorted(set(need) - set(table.columns))}")
        table = table[need].assign(series=name)
        frames.append(table)
        prefix = f"{name}: " if len(names) > 1 else ""
        for r in table.itertuples():
            if not np.isfinite(r.precision):
                prec = "precision = n/a (no ground truth)"
            elif r.n_rated < r.n_flagged:  # ground truth for only some of the flagged samples
                prec = f"precision = {r.precision:.3f} ({int(r.n_rated):,} rated)"
            else:
                prec = f"precision = {r.precision:.3f}"
            text.append({"series": name, "K": int(r.K), "row": row, "colour": _colours(names)[name],
                         "text": f"{prefix}K = {int(r.K)}: {int(r.n_flagged):,} flagged, "
                                 f"detection rate = {r.detection_rate:.4f}, {prec}"})
    data = pd.concat(frames, ignore_index=True)
    text = pd.DataFrame(text)
    ks = sorted(int(k) for k in data["K"].unique())

    k_param = _slider("K", "most accurate bins K ", ks, ks[len(ks) // 2])
    colour = _colour(names)
    if data["precision"].notna().any():
        x = alt.X("detection_rate:Q", title="detection rate (flagged / dataset size)")
        y = alt.Y("precision:Q", title="precision (truly mislabeled among flagged)", scale=alt.Scale(domain=[0, 1]))
        valid = alt.Chart(data).transform_filter("isValid(datum.precision)")
    else:  # no ground truth anywhere: all there is to draw is how much each K flags
        x = alt.X("K:Q", title="K (most accurate bins of each expert)", axis=alt.Axis(tickMinStep=1))
        y = alt.Y("detection_rate:Q", title="detection rate (no ground truth: precision unknown)")
        valid = alt.Chart(data)
    tooltip = [alt.Tooltip("series:N"), "K:Q", alt.Tooltip("n_flagged:Q", format=","),
               alt.Tooltip("detection_rate:Q", format=".4f"), alt.Tooltip("precision:Q", format=".3f")]
    line = valid.mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(
        x=x, y=y, color=colour, detail="series:N", tooltip=tooltip)
    point = valid.transform_filter(alt.datum.K == k_param).mark_point(
        size=170, filled=True, opacity=1, stroke="white", strokeWidth=1.5).encode(
        x=x, y=y, color=colour, tooltip=tooltip)
    plot = alt.layer(line, point).properties(width=WIDTH, height=HEIGHT)
    chart = alt.vconcat(plot, _text_panel(text, k_param, "K", len(names)), spacing=8)
    return Explorer(_finish(chart.add_params(k_param), title),
                    f"calcas cleaning explorer: {', '.join(names)}; K = {ks[0]}..{ks[-1]}")
