"""Kernel-free explorers for the book: altair charts whose sliders recompute in the browser.

Every number a chart shows is computed before it gets here, by calcas (reliability tables and
ECE at every bin count, ``cascade_curves``, ``cleaning_sweep``, the chain study's selection
grid), for every slider position; these functions only draw the precomputed grids, and the
browser only filters their rows with a Vega-Lite parameter. So the static HTML book stays
interactive with no kernel, and what a reader sees is exactly what calcas returns.

Each explorer returns an :class:`Explorer`. Displayed in a notebook it offers

- ``text/html``: a ``<div>`` and a script that loads Vega, Vega-Lite and vega-embed from the
  built book itself (``<book root>/_static/vendored/``, copied there by
  :func:`calcas.render.book.build_book`; the root is found at run time from the ``data-content_root``
  attribute Sphinx puts on ``<html>``), then draws the chart. No request leaves the book.
  myst-nb uses this entry for the HTML book;
- altair's spec under ``application/vnd.vegalite.v6+json``, for front ends that draw
  Vega-Lite natively (VS Code, nteract, JupyterLab with a Vega-Lite 6 renderer). JupyterLab
  ranks ``text/html`` above it, so there the HTML entry is what runs.

Outside a built book the HTML entry has no scripts to load and says so; in a live session,
display ``explorer.chart`` to draw the same chart with altair's renderer.

In the book a chart takes the width of its column, at any width down to a phone's (the axes
included), its legend sits under the plot, and its read-out lines are short enough for a
phone. Colours, dashes and point shapes are those of :mod:`calcas.render.plots` (Okabe–Ito).
Sliders offer exactly the values present in the tables they are given (tied confidences can
leave a cascade or a cleaning sweep with fewer K values than bins).
"""
from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

from .plots import SERIES_COLOURS, series_style

__all__ = ["Explorer", "vega_style", "reliability_explorer", "cascade_explorer", "cleaning_explorer", "chain_explorer",
           "VENDOR_PATH", "VENDOR_SCRIPTS", "VEGALITE_MIME", "UNIT_AXIS", "slider", "readout", "text_panel",
           "finish", "grid_key", "key_matches", "reliability_layers"]

#: Where the built book serves the vendored scripts, relative to its root.
VENDOR_PATH = "_static/vendored/"
#: The Vega-Lite 6 mimetype as JupyterLab, VS Code and nbformat spell it.
VEGALITE_MIME = "application/vnd.vegalite.v6+json"
#: Loaded in this order (vega-lite needs vega; vega-embed needs both).
VENDOR_SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")

#: Colours, dashes and point shapes: those of :mod:`calcas.render.plots` (Okabe–Ito), so the static
#: figures and the explorers agree. Uncalibrated / UC: vermillion, dashed, squares;
#: calibrated / CC: blue, solid, circles; RC grey dash-dot; oracle green dotted.
PALETTE = SERIES_COLOURS
_DASH = {"-": [1, 0], "--": [6, 3], "-.": [7, 3, 1.5, 3], ":": [1.5, 3]}
_SHAPE = {"o": "circle", "s": "square", "^": "triangle-up", "D": "diamond", "v": "triangle-down",
          "P": "cross", "X": "cross", "*": "diamond", None: "circle"}
#: The width the mimebundle spec (live front ends) draws at. In the book, every chart takes
#: its column's width instead (between FIT_MIN and FIT_MAX px of plot), see :meth:`Explorer.to_html`.
WIDTH, HEIGHT, LINE = 460, 320, 17
FIT_MIN, FIT_MAX = 200, 640
#: Read-out lines are wrapped at this many characters, so they fit a 390 px phone screen.
READOUT_CHARS = 44


#: An axis over [0, 1]: ticks every 0.1, labelled with one decimal.
UNIT_AXIS = alt.Axis(values=[i / 10 for i in range(11)], format=".1f")


def vega_style(name: str, index: int = 0) -> dict[str, Any]:
    """Series ``name``'s style in Vega-Lite's terms, read from the one mapping of series to styles,
    :data:`calcas.render.plots.SERIES_STYLE` (:func:`calcas.render.plots.series_style`).

    Parameters
    ----------
    name : str
        The series' name, as its legend shows it.
    index : int
        Its position among the chart's series (for a series without a style of its own).

    Returns
    -------
    dict
        ``colour`` (a hex string), ``dash`` (a strokeDash list) and ``shape`` (a point shape).
    """
    st = series_style(name, index)
    return {"colour": st["color"], "dash": _DASH.get(st["ls"], [1, 0]), "shape": _SHAPE.get(st["marker"], "circle")}


def _styles(names: list[str]) -> dict[str, dict[str, Any]]:
    return {name: vega_style(name, i) for i, name in enumerate(names)}


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

# Fitting a chart to its column. Vega-Lite sizes a view to its container only in single and
# layered views, not in the explorers' vconcat (plot over read-out): there `width: "container"`
# gives each view the container's whole width, and the axes then stick out. So the compiled
# Vega spec is patched: the width signal becomes "container width less calcas_extra" (the
# room the axis, its labels and the padding take, measured once the chart is drawn), within
# FIT_MIN..FIT_MAX, recomputed when the window or the container resizes; the plot's height
# follows its width. The sliders stay the same elements throughout (nothing is re-embedded).
_FIT = """
function calcasFit(vg) {
  var signals = vg.signals || [];
  var width = signals.filter(function (s) { return s.name === "width"; })[0];
  if (!width) return vg;
  var cw = "(isFinite(containerSize()[0]) && containerSize()[0] > 0 ? containerSize()[0] : __WIDTH__ + 70)";
  var fit = "clamp(floor(" + cw + " - calcas_extra), __MIN__, __MAX__)";
  delete width.init; delete width.value;
  width.update = fit;
  width.on = (width.on || [{events: "window:resize"}]).map(function (h) { return {events: h.events, update: fit}; });
  signals.forEach(function (s) {
    if (s.name === "concat_0_height" && s.value !== undefined) {
      s.update = "clamp(round(width * __RATIO__), __HMIN__, " + s.value + ")"; delete s.value;
    }
  });
  signals.unshift({name: "calcas_extra", value: 70});
  return vg;
}
function calcasRefit(result) {
  var view = result.view, svg = view.container() && view.container().querySelector("svg");
  if (!svg) return result;
  var extra = Math.ceil(svg.getBoundingClientRect().width - view.signal("width")) + 2;
  if (!isFinite(extra) || Math.abs(extra - view.signal("calcas_extra")) < 1) return result;
  return view.signal("calcas_extra", extra).runAsync().then(function () { return result; });
}
"""

_EMBED_OPTIONS = {"mode": "vega-lite", "renderer": "svg",
                  "actions": {"export": True, "source": False, "compiled": False, "editor": False}}


def _fit_js() -> str:
    return (_FIT.replace("__WIDTH__", str(WIDTH)).replace("__MIN__", str(FIT_MIN))
            .replace("__MAX__", str(FIT_MAX)).replace("__RATIO__", "0.72").replace("__HMIN__", "220"))


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
        snippet names no outside address at all. Its views take the width of the column
        (``width: "container"``, fitted by ``calcasFit``: the whole chart, axes included,
        fits the column at any width down to a phone's), where the mimebundle's spec keeps
        the fixed :data:`WIDTH`.
        """
        spec = {k: v for k, v in self.to_dict().items() if k != "$schema"}
        for view in spec.get("vconcat", []):
            if "width" in view:
                view["width"] = "container"
        div = f"calcas-explorer-{uuid.uuid4().hex[:12]}"
        payload = json.dumps(spec, separators=(",", ":"), allow_nan=False)
        # keep the JSON inert inside <script>: no "</script>", no JS line separators
        payload = payload.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return (
            f'<div class="calcas-explorer" id="{div}" aria-label="{html.escape(self.name)}" '
            f'style="display: block; width: 100%; max-width: 100%;"></div>\n'
            f"<script>\n(function () {{\n{_LOADER}{_fit_js()}"
            f'var el = document.getElementById("{div}");\n'
            f"var spec = {payload};\n"
            f"var options = {json.dumps(_EMBED_OPTIONS)};\noptions.patch = calcasFit;\n"
            f"calcasLoadVega().then(function (embed) {{ return embed(el, spec, options); }})\n"
            f"  .then(calcasRefit)\n"
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


def _start(values: list[Any], default: float | None) -> Any:
    """The slider's starting value: the middle of ``values`` when ``default`` is None, else
    the offered value nearest to ``default`` (the smaller of two equally near)."""
    if default is None:
        return values[len(values) // 2]
    return min(values, key=lambda v: (abs(v - float(default)), v))


def slider(name: str, label: str, values: list[Any], value: Any) -> alt.Parameter:
    """A parameter bound to a range slider (an evenly spaced grid) or else a drop-down.
    ``values`` are ints, or floats (then the parameter's value is a float)."""
    # rounded: the steps of a float grid (0, 0.005, 0.01, 0.015, ...) differ in their last bits
    steps = set(np.round(np.diff(values), 9).tolist()) or {1}
    if len(steps) == 1:
        bind = alt.binding_range(min=values[0], max=values[-1], step=steps.pop(), name=label)
    else:
        bind = alt.binding_select(options=values, name=label)
    return alt.param(name=name, value=float(value) if isinstance(value, float) else int(value), bind=bind)


def _scales(names: list[str]) -> tuple[alt.Scale, alt.Scale, alt.Scale]:
    """The colour, dash and shape scales of the series ``names``."""
    styles = _styles(names)
    return tuple(alt.Scale(domain=names, range=[styles[n][key] for n in names])
                 for key in ("colour", "dash", "shape"))


def _encodings(names: list[str], *, title: str | None = None, columns: int | None = None):
    """Colour, dash and shape of each series; one legend (of colour, dash and shape together)
    under the plot, outside the data."""
    colours, dashes, shapes = _scales(names)
    # colour and dash share one legend (same field, title and properties: Vega-Lite merges
    # them), whose symbols are short strokes in the series' colour and dash pattern
    legend = alt.Legend(orient="bottom", direction="horizontal", title=title, symbolType="stroke",
                        symbolStrokeWidth=2.5, symbolSize=420, labelLimit=260, columns=columns or len(names),
                        symbolOpacity=1) if len(names) > 1 else None
    colour = alt.Color("series:N", title=title, legend=legend, scale=colours)
    dash = alt.StrokeDash("series:N", title=title, legend=legend, scale=dashes)
    # point shapes from a copy of the series column: a channel of "series" without a legend
    # would clash with the merged legend ("Conflicting legend property disable")
    shape = alt.Shape("marker:N", legend=None, scale=shapes)
    return colour, dash, shape


def _legend_columns(names: list[str]) -> int:
    """Entries per legend row: all on one row when the names are short, else two, or one when two of
    the longest would not fit a phone's column (about 40 characters)."""
    if sum(len(n) + 4 for n in names) <= 40:
        return len(names)
    return 2 if 2 * (max(len(n) for n in names) + 4) <= 40 else 1


def _wrap(text: str, width: int = READOUT_CHARS) -> list[str]:
    """Split a read-out into lines of at most ``width`` characters where it can: after ", "
    and ": ", and before " (". Never inside "name = value"."""
    parts = [p for p in re.split(r"(?<=, )|(?<=: )|(?= \()", text) if p]
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + len(part.rstrip()) > width:
            lines.append(part.lstrip())
        else:
            lines[-1] += part
    return [line.rstrip() for line in lines]


def readout(rows: list[dict[str, Any]], field: str, order: list[str]) -> tuple[pd.DataFrame, int]:
    """The read-out rows, one per line: each record of ``rows`` (``series``, ``field``,
    ``text``, ``colour``, ...) wrapped into lines placed ``y`` px down the panel. Series keep
    their own band (as tall as their longest read-out), in the order of ``order``. Returns
    the table and the number of lines of the panel."""
    table = pd.DataFrame(rows)
    table["lines"] = table["text"].map(_wrap)
    band = {s: int(table.loc[table["series"] == s, "lines"].map(len).max()) for s in order
            if (table["series"] == s).any()}
    top, offset = 0, {}
    for s in order:
        if s in band:
            offset[s], top = top, top + band[s]
    out = table.explode("lines").rename(columns={"lines": "line"})
    out["y"] = out.groupby([field, "series"], sort=False).cumcount() + out["series"].map(offset)
    out["y"] = (out["y"] * LINE).astype(int)
    return out.reset_index(drop=True), top


def text_panel(text: pd.DataFrame, lines: int, param: Any, field: str | None) -> alt.Chart:
    """The read-out under a chart: the lines of each series (coloured as its series, from the
    ``colour`` column), filtered by the slider (``datum[field] == param``), or by ``param``
    itself, a predicate over several controls, when ``field`` is None."""
    return (alt.Chart(text, width=WIDTH, height=LINE * lines + 4)
            .mark_text(align="left", baseline="top", fontSize=12.5)
            .encode(x=alt.value(0), y=alt.Y("y:Q", scale=None, axis=None), text="line:N",
                    color=alt.Color("colour:N", scale=None, legend=None))
            .transform_filter(param if field is None else alt.datum[field] == param))


def finish(chart: alt.VConcatChart, title: str) -> alt.VConcatChart:
    """The explorer's last touches: its title, independent legends, the book's fonts and sizes."""
    # independent legends keep each legend with its plot (a shared one floats above the concat)
    chart = chart.resolve_legend(color="independent", strokeDash="independent")
    if title:
        text = _wrap(title, 40) if len(title) > 40 else title  # a list: one line each
        chart = chart.properties(title=alt.TitleParams(text, anchor="start", fontSize=15))
    # labels never overlap, whatever width the chart is given: Vega drops every other one
    return chart.configure_view(stroke=None).configure_axis(grid=True, gridOpacity=0.4, labelOverlap="greedy",
                                                             labelSeparation=6)


# ---------------------------------------------------------------------------------------
# the explorers

def reliability_explorer(bins: pd.DataFrame, summary: pd.DataFrame, *, default: int = 15, title: str = "",
                         binning: str = "equal_count") -> Explorer:
    """Reliability diagrams with a slider for the number of bins N, and the ECE at that N,
    drawn from precomputed tables (one series or several, e.g. uncalibrated and calibrated).

    Parameters
    ----------
    bins : DataFrame
        The non-empty rows of :func:`calcas.reliability_table` of every series at every N:
        columns ``series, N, bin, count, mean_confidence, accuracy`` (e.g. from
        :func:`calcas.lab.binning_sweep` with a ``series`` column).
    summary : DataFrame
        One row per (series, N): ``series, N, ece`` and ``distinct`` (the number of non-empty
        bins). The slider offers the N of ``summary``.
    default : int
        The slider's starting position (must be among ``summary``'s N).
    title : str
    binning : {"equal_count", "equal_width"}
        How the tables were binned: only the read-out's wording depends on it.

    Returns
    -------
    Explorer
        Accuracy against mean confidence per bin, the diagonal of perfect calibration, the gap
        of each bin, and the read-out "ECE = 0.0xyz with N = n bins" for each series. Where tied
        confidences leave fewer distinct equal-count bins than N, it says so: "ECE = 0.0123
        with N = 30 (12 distinct bins: tied confidences)"; with equal-width bins, "(12 non-empty
        bins)". Series named "uncalibrated" and "calibrated" take their own styles
        (:data:`calcas.render.plots.SERIES_STYLE`).
    """
    _need_columns(bins, ("series", "N", "bin", "count", "mean_confidence", "accuracy"), "bins")
    _need_columns(summary, ("series", "N", "ece", "distinct"), "summary")
    names = [str(n) for n in dict.fromkeys(summary["series"])]
    grid = _grid(summary["N"], default)
    styles = _styles(names)
    text = []
    for row in summary.itertuples():
        prefix = f"{row.series}: " if len(names) > 1 else ""
        if row.distinct == row.N:
            line = f"{prefix}ECE = {row.ece:.4f} with N = {row.N} bins"
        elif binning == "equal_count":
            line = f"{prefix}ECE = {row.ece:.4f} with N = {row.N} ({row.distinct} distinct bins: tied confidences)"
        else:
            line = f"{prefix}ECE = {row.ece:.4f} with N = {row.N} ({row.distinct} non-empty bins)"
        text.append({"series": str(row.series), "N": int(row.N), "ece": float(row.ece),
                     "distinct_bins": int(row.distinct), "colour": styles[str(row.series)]["colour"], "text": line})
    # drawn, not reported: 6 decimals keep the page small (the ECE read-out is exact)
    bins = bins.assign(series=bins["series"].astype(str), marker=bins["series"].astype(str)).round(
        {"mean_confidence": 6, "accuracy": 6})
    text, lines = readout(text, "N", names)

    n_param = slider("N", "number of bins N ", grid, default)
    axis = dict(scale=alt.Scale(domain=[0, 1]), axis=UNIT_AXIS)
    x = alt.X("mean_confidence:Q", title="mean confidence in bin", **axis)
    y = alt.Y("accuracy:Q", title="accuracy in bin", **axis)
    colour, dash, shape = _encodings(names, columns=_legend_columns(names))
    tooltip = [alt.Tooltip("series:N"), alt.Tooltip("bin:Q"), alt.Tooltip("count:Q"),
               alt.Tooltip("mean_confidence:Q", format=".4f"), alt.Tooltip("accuracy:Q", format=".4f")]
    diagonal = (alt.Chart(pd.DataFrame({"mean_confidence": [0.0, 1.0], "accuracy": [0.0, 1.0]}))
                .mark_line(color="#999999", strokeDash=[5, 4], strokeWidth=1).encode(x=x, y=y))
    base = alt.Chart(bins[["series", "marker", "N", "bin", "count", "mean_confidence", "accuracy"]]).transform_filter(
        alt.datum.N == n_param)
    gap = base.mark_rule(strokeWidth=3, opacity=0.3).encode(
        x=x, y=alt.Y("mean_confidence:Q", **axis), y2="accuracy:Q", color=colour)
    line = base.mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=45, filled=True)).encode(
        x=x, y=y, color=colour, strokeDash=dash, shape=shape, detail="series:N", tooltip=tooltip)
    plot = alt.layer(diagonal, gap, line).properties(width=WIDTH, height=HEIGHT)
    chart = alt.vconcat(plot, text_panel(text, lines, n_param, "N"), spacing=8)
    return Explorer(finish(chart.add_params(n_param), title),
                    f"calcas reliability explorer: {', '.join(names)}; N = {grid[0]}..{grid[-1]}")


def _need_columns(table: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}")


def cascade_explorer(curves: pd.DataFrame | Mapping[str, pd.DataFrame], *, title: str = "",
                     default: int | Mapping[str, int] | None = None) -> Explorer:
    """Cascade curves (accuracy against the share answered by the first model) with a slider for K,
    and a drop-down choosing the pair where several are given.

    Parameters
    ----------
    curves : DataFrame, or dict pair name -> DataFrame
        The long table of :func:`calcas.cascade_curves`: ``method`` (RC / UC / CC / oracle),
        ``K, p_small, accuracy, large_calls_saved``. The slider offers exactly the K values
        of the tables (with tied confidences a curve may have fewer than n_bins + 1). A dict
        draws one pair at a time, chosen by a drop-down (one chart instead of one per pair).
    title : str
    default : int, or dict pair name -> int, optional
        The slider's starting K: the K the page's tables report (of the first pair, with a
        dict). None starts in the middle of the offered K values; a K the table lacks starts at
        the nearest one it has.

    Returns
    -------
    Explorer
        One line per method; the CC and UC operating points at the chosen K (K bins kept by
        the first model) are highlighted, with the read-out "CC at K = k: p = ..., accuracy = ...,
        second-model calls saved = ...". A pair lacking the chosen K marks its nearest and says so.
    """
    pairs = dict(curves) if isinstance(curves, Mapping) else {"": curves}
    if not pairs:
        raise ValueError("curves: no cascades to draw")
    need = ["method", "K", "p_small", "accuracy", "large_calls_saved"]
    for name, table in pairs.items():
        if not set(need) <= set(table.columns):
            where = f"curves[{name!r}]" if name else "curves"
            raise ValueError(f"{where}: missing columns {sorted(set(need) - set(table.columns))}")
    data = pd.concat([t[need].assign(pair=str(name)) for name, t in pairs.items()], ignore_index=True)
    order = ("RC", "UC", "CC", "oracle")
    methods = [m for m in order if m in set(data["method"])] + sorted(set(data["method"]) - set(order))
    ks = sorted(int(k) for k in data["K"].unique())
    marked = [m for m in ("CC", "UC") if m in methods] or methods[:1]
    styles = _styles(methods)
    # With several pairs the slider offers the K of all of them; a pair whose tied confidences
    # merged bins lacks some: at such a K it marks its nearest K and the read-out says so.
    available = {str(n): sorted(int(k) for k in t["K"].unique()) for n, t in pairs.items()}
    text, shown_at = [], []
    for pair, own in available.items():
        rows = data[(data["pair"] == pair) & data["method"].isin(marked)]
        for k in ks:
            near = min(own, key=lambda a: (abs(a - k), a))
            where = "" if near == k else f" (not a K of this pair, whose tied confidences merged bins; at K = {near})"
            for r in rows[rows["K"] == near].itertuples():
                text.append({"series": r.method, "K": k, "pair": pair, "key": f"{pair}|{k}",
                             "colour": styles[r.method]["colour"],
                             "text": f"{r.method} at K = {k}{where}: p = {r.p_small:.3f}, accuracy = {r.accuracy:.4f}, "
                                     f"second-model calls saved = {int(r.large_calls_saved):,}"})
                shown_at.append({"index": r.Index, "at": k})
    text, lines = readout(text, "key", marked)
    data = data.rename(columns={"method": "series"}).assign(marker=lambda d: d["series"])

    names = [str(n) for n in pairs]
    first = default.get(names[0]) if isinstance(default, Mapping) else default
    k_param = slider("K", "bins kept by the first model K ", ks, _start(ks, first))
    params = [k_param]
    base, shown = alt.Chart(data), (alt.datum.K == k_param)
    if len(names) > 1:
        pair_param = alt.param(name="pair", value=names[0], bind=alt.binding_select(options=names, name="pair "))
        params.append(pair_param)
        base = base.transform_filter(alt.datum.pair == pair_param)
        shown = f"datum.key === {pair_param.name} + '|' + {k_param.name}"  # a Vega expression string
    colour, dash, shape = _encodings(methods, title="method")
    x = alt.X("p_small:Q", title="share answered by the first model (p)", scale=alt.Scale(domain=[0, 1]),
              axis=UNIT_AXIS)
    y = alt.Y("accuracy:Q", title="cascade accuracy", scale=alt.Scale(zero=False))
    tooltip = [alt.Tooltip("series:N", title="method"), "K:Q", alt.Tooltip("p_small:Q", format=".3f"),
               alt.Tooltip("accuracy:Q", format=".4f"), alt.Tooltip("large_calls_saved:Q", format=",")]
    lines_ = base.mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=22)).encode(
        x=x, y=y, color=colour, strokeDash=dash, shape=shape, tooltip=tooltip)
    # the marked points: each pair's operating points at the slider's K (or its nearest, above)
    at = pd.DataFrame(shown_at)
    marks = data.loc[at["index"]].reset_index(drop=True).assign(at=at["at"].to_numpy())
    current = alt.Chart(marks).transform_filter(alt.datum.at == k_param)
    if len(names) > 1:
        current = current.transform_filter(alt.datum.pair == pair_param)
    rule = current.transform_filter(alt.datum.series == marked[0]).mark_rule(
        color="#bbbbbb", strokeDash=[2, 2]).encode(x=x)
    points = current.mark_point(size=160, filled=True, opacity=1, stroke="white", strokeWidth=1.5).encode(
        x=x, y=y, color=colour, shape=shape, tooltip=tooltip)
    plot = alt.layer(lines_, rule, points).properties(width=WIDTH, height=HEIGHT)
    chart = alt.vconcat(plot, text_panel(text, lines, shown, None), spacing=8)
    return Explorer(finish(chart.add_params(*params), title),
                    f"calcas cascade explorer: {', '.join(methods)}; K = {ks[0]}..{ks[-1]}"
                    + (f"; pairs {', '.join(names)}" if len(names) > 1 else ""))


def cleaning_explorer(sweep: pd.DataFrame | Mapping[str, pd.DataFrame], *, title: str = "",
                      label: str = "method 2", default: int | None = None) -> Explorer:
    """Precision against detection rate of label cleaning (method 2), with a slider for K.

    Parameters
    ----------
    sweep : DataFrame, or dict name -> DataFrame
        The table of :func:`calcas.cleaning_sweep`: ``K, n_flagged, detection_rate, n_rated,
        precision`` (precision NaN where there is no ground truth). A dict draws one curve per
        name (e.g. one per mixture of experts). The slider offers exactly the K values of
        the tables.
    title : str
    label : str
        Name of the curve when ``sweep`` is a single table.
    default : int, optional
        The slider's starting K: the K the page's tables report. None starts in the middle
        of the offered K values; a K the tables lack starts at the nearest one they have.

    Returns
    -------
    Explorer
        The precision / detection-rate curve, the point at the chosen K (each expert's K most
        accurate bins) highlighted, and the read-out "K = k: n flagged, detection rate,
        precision". Precision reads "n/a (nothing flagged)" where K flags nothing and "n/a
        (no ground truth)" where the flagged samples have none.
    """
    sweeps = dict(sweep) if isinstance(sweep, Mapping) else {label: sweep}
    names = [str(n) for n in sweeps]
    styles = _styles(names)
    need = ["K", "n_flagged", "detection_rate", "n_rated", "precision"]
    frames, text = [], []
    for name, table in zip(names, sweeps.values()):
        if not set(need) <= set(table.columns):
            raise ValueError(f"sweep: {name!r} lacks columns {sorted(set(need) - set(table.columns))}")
        table = table[need].assign(series=name, marker=name)
        frames.append(table)
        prefix = f"{name}: " if len(names) > 1 else ""
        for r in table.itertuples():
            if int(r.n_flagged) == 0:
                prec = "precision = n/a (nothing flagged)"
            elif not np.isfinite(r.precision):
                prec = "precision = n/a (no ground truth)"
            elif r.n_rated < r.n_flagged:  # ground truth for only some of the flagged samples
                prec = f"precision = {r.precision:.3f} ({int(r.n_rated):,} rated)"
            else:
                prec = f"precision = {r.precision:.3f}"
            text.append({"series": name, "K": int(r.K), "colour": styles[name]["colour"],
                         "text": f"{prefix}K = {int(r.K)}: {int(r.n_flagged):,} flagged, "
                                 f"detection rate = {r.detection_rate:.4f}, {prec}"})
    data = pd.concat(frames, ignore_index=True)
    text, lines = readout(text, "K", names)
    ks = sorted(int(k) for k in data["K"].unique())

    k_param = slider("K", "most accurate bins K ", ks, _start(ks, default))
    colour, dash, shape = _encodings(names, columns=_legend_columns(names))
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
    line = valid.mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=30, filled=True)).encode(
        x=x, y=y, color=colour, strokeDash=dash, shape=shape, detail="series:N", tooltip=tooltip)
    point = valid.transform_filter(alt.datum.K == k_param).mark_point(
        size=170, filled=True, opacity=1, stroke="white", strokeWidth=1.5).encode(
        x=x, y=y, color=colour, shape=shape, tooltip=tooltip)
    plot = alt.layer(line, point).properties(width=WIDTH, height=HEIGHT)
    chart = alt.vconcat(plot, text_panel(text, lines, k_param, "K"), spacing=8)
    return Explorer(finish(chart.add_params(k_param), title),
                    f"calcas cleaning explorer: {', '.join(names)}; K = {ks[0]}..{ks[-1]}")


#: Grid rows are matched to the controls on round(value x _KEY), never on the float itself:
#: a grid may carry 0.015000000000000001 and a slider's input 0.035000000000000003.
_KEY = 10_000
_GRID_KEYS = ("max_drop", "delta", "stages", "cost_share", "accuracy", "lost")


def _need(entry: Any, keys: Iterable[str], where: str) -> None:
    missing = [k for k in keys if not isinstance(entry, Mapping) or k not in entry]
    if missing:
        raise ValueError(f"{where}: missing key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")


def grid_key(value: float) -> int:
    """The integer a float grid value is matched on (rounded once, never compared as a float)."""
    return int(round(float(value) * _KEY))


def chain_explorer(chain: Mapping[str, Any], *, title: str = "", max_drop: float = 0.03,
                   delta: float = 0.1, controls: Sequence[str] = ("max_drop", "delta"),
                   curves: str = "frontiers") -> Explorer:
    """A chain's cost / accuracy frontiers on test, with controls for the guarantee (max_drop, δ)
    and the cascade :func:`calcas.select_cascade` certifies under it.

    Parameters
    ----------
    chain : mapping
        One chain's entry of the chain chapter's ``results.json``
        (:meth:`calcas.chapters.chains.SingleChainFacts.to_dict`): ``models`` (names in chain order, the
        last the reference), ``singles`` (each model alone on test: ``model`` index,
        ``cost_share``, ``accuracy``), ``frontiers`` (stages such as ``"0+1+2"`` -> lists
        ``cost_share``, ``accuracy`` on test) and ``selection_grid`` (rows ``max_drop, delta,
        stages, cost_share, accuracy, lost``, one per pair of the controls' values, and
        optionally ``answering``, the models the configuration can send rows to: ``"1"`` reads
        "calls b alone" where b keeps every bin).
    title : str
    max_drop, delta : float
        The controls' starting values (the page's guarantee); a value the grid lacks starts at
        the nearest one it has.
    controls : sequence of {"max_drop", "delta"}
        The controls shown; a control left out stays at its starting value (for a chain where it
        moves nothing).
    curves : {"frontiers", "paths"}
        The configurations drawn: ``chain["frontiers"]`` as steps, or ``chain["paths"]`` (stages
        -> lists ``threshold``, ``cost_share``, ``accuracy``: the threshold method's
        configurations of each sub-chain on test) as lines in the order of the threshold, where
        each point is a configuration and the certified one lies on its sub-chain's line.

    Returns
    -------
    Explorer
        One step line per frontier (step-after: a configuration's accuracy holds until the next,
        costlier one), each model alone as a labelled black diamond, a dashed rule at
        the last model's test accuracy less max_drop, and the certified cascade at the chosen
        (max_drop, δ) as a large point, with the read-out "max_drop = 0.030, δ = 0.10: calls
        a → c, cost 0.34 of c's, test accuracy 0.871 (lost 0.008)", or "calls c alone: nothing
        certified cheaper". The max_drop slider and the δ drop-down offer exactly the grid's
        values; rows are matched on round(value × 10⁴), so float noise never misses one.
    """
    _need(chain, ("models", "singles", "frontiers", "selection_grid"), "chain")
    models = [str(m) for m in chain["models"]]
    last, m = models[-1], len(models)

    def calls(stages: Any) -> str:
        return " → ".join(models[int(i)] for i in str(stages).split("+"))

    for i, s in enumerate(chain["singles"]):
        _need(s, ("model", "cost_share", "accuracy"), f"chain['singles'][{i}]")
    singles = pd.DataFrame([{"model": models[int(s["model"])], "cost_share": float(s["cost_share"]),
                             "accuracy": float(s["accuracy"])} for s in chain["singles"]])
    if last not in set(singles["model"]):
        raise ValueError(f"chain: 'singles' has no entry for the last model {last!r}")
    last_accuracy = float(singles.loc[singles["model"] == last, "accuracy"].iloc[0])
    rows = list(chain["selection_grid"])
    if not rows:
        raise ValueError("chain: 'selection_grid' is empty")
    for i, r in enumerate(rows):
        _need(r, _GRID_KEYS, f"chain['selection_grid'][{i}]")

    if curves not in ("frontiers", "paths"):
        raise ValueError(f"curves: expected 'frontiers' or 'paths', got {curves!r}")
    _need(chain, (curves,), "chain")
    names = [calls(stages) for stages in chain[curves]]
    styles = _styles(names)
    frontier = []
    for (stages, f), name in zip(chain[curves].items(), names):
        _need(f, ("cost_share", "accuracy"), f"chain[{curves!r}][{stages!r}]")
        frontier.append(pd.DataFrame({"cost_share": f["cost_share"], "accuracy": f["accuracy"]})
                        .assign(series=name, marker=name, configuration=lambda d: range(len(d))))
    frontier = pd.concat(frontier, ignore_index=True)

    grid, text = [], []
    for r in rows:
        d, e = float(r["max_drop"]), float(r["delta"])
        # the models that answer: a stage that keeps every bin ends the chain there (one model alone)
        answering = str(r.get("answering", r["stages"]))
        alone, one = answering == str(m - 1), "+" not in answering
        name = last if alone else calls(answering)
        lost = float(r["lost"])
        row = {"drop_key": grid_key(d), "delta_key": grid_key(e), "key": f"{grid_key(d)}|{grid_key(e)}", "max_drop": d,
               "delta": e, "stages": str(r["stages"]), "calls": name + (" alone" if one else ""),
               "cost_share": float(r["cost_share"]), "accuracy": float(r["accuracy"]), "lost": lost,
               "colour": styles.get(calls(r["stages"]), {"colour": "#000000"})["colour"]}
        grid.append(row)
        head = f"max_drop = {d:.3f}, δ = {e:.2f}: "
        if alone:
            line = head + f"calls {last} alone: nothing certified cheaper"
        else:
            change = f"lost {lost:.3f}" if lost >= 0 else f"gained {-lost:.3f}"
            line = head + (f"calls {row['calls']}, cost {row['cost_share']:.2f} of {last}'s, "
                           f"test accuracy {row['accuracy']:.3f} ({change})")
        text.append({**row, "series": "selection", "colour": "#222222", "text": line})
    grid = pd.DataFrame(grid)
    text, lines = readout(text, "key", ["selection"])
    drops = [k / _KEY for k in sorted(set(grid["drop_key"]))]
    deltas = [k / _KEY for k in sorted(set(grid["delta_key"]))]
    rule = pd.DataFrame({"drop_key": [grid_key(d) for d in drops], "max_drop": drops,
                         "threshold": [round(last_accuracy - d, 6) for d in drops],
                         "label": f"max_drop below {last}"})

    unknown = set(controls) - {"max_drop", "delta"}
    if unknown:
        raise ValueError(f"controls: expected 'max_drop' and/or 'delta', got {sorted(unknown)}")
    drop_param = slider("max_drop", "max_drop, the accuracy the cascade may lose ", drops,
                        _start(drops, max_drop)) if "max_drop" in controls else \
        alt.param(name="max_drop", value=_start(drops, max_drop))
    delta_param = alt.param(name="delta", value=_start(deltas, delta), bind=alt.binding_select(
        options=deltas, name="δ, the chance the guarantee may fail ")) if "delta" in controls else \
        alt.param(name="delta", value=_start(deltas, delta))
    chosen = ((alt.datum.drop_key == alt.expr.round(drop_param * _KEY))
              & (alt.datum.delta_key == alt.expr.round(delta_param * _KEY)))
    top = max(1.05, float(frontier["cost_share"].max()), float(singles["cost_share"].max()))
    x = alt.X("cost_share:Q", title=f"cost per item, share of {last}'s", scale=alt.Scale(domain=[0, top]),
              axis=alt.Axis(values=[i / 10 for i in range(int(top * 10) + 1)], format=".1f"))
    y = alt.Y("accuracy:Q", title="test accuracy", scale=alt.Scale(zero=False))
    colour, dash, shape = _encodings(names, columns=_legend_columns(names))
    tooltip = [alt.Tooltip("series:N", title="calls"), alt.Tooltip("cost_share:Q", format=".3f"),
               alt.Tooltip("accuracy:Q", format=".3f")]
    # frontiers as steps (step-after): between two configurations no configuration reaches the segment
    # joining them. A threshold path joins its configurations in the order of the threshold, which is
    # the order of cost (a lower threshold never sends a row to a later stage), as Vega sorts a line
    drawn = alt.Chart(frontier).mark_line(
        strokeWidth=2, interpolate="step-after" if curves == "frontiers" else "linear",
        point=alt.OverlayMarkDef(size=28 if curves == "frontiers" else 10, filled=True)).encode(
        x=x, y=y, color=colour, strokeDash=dash, shape=shape, detail="series:N", tooltip=tooltip)
    alone = alt.Chart(singles).encode(x=x, y=y, tooltip=["model:N", alt.Tooltip("cost_share:Q", format=".3f"),
                                                          alt.Tooltip("accuracy:Q", format=".3f")])
    diamonds = alone.mark_point(shape="diamond", size=110, filled=True, color="#000000", opacity=1)
    labels = alone.mark_text(baseline="bottom", dy=-8, fontSize=11.5, color="#000000").encode(text="model:N")
    budget = alt.Chart(rule).transform_filter(alt.datum.drop_key == alt.expr.round(drop_param * _KEY))
    budget_rule = budget.mark_rule(color="#555555", strokeDash=[6, 3], strokeWidth=1.2).encode(
        y=alt.Y("threshold:Q", title="test accuracy"))
    rule_label = budget.mark_text(align="left", baseline="bottom", dx=3, dy=-3, fontSize=11, color="#555555").encode(
        x=alt.datum(0), y=alt.Y("threshold:Q", title="test accuracy"), text="label:N")
    selected = alt.Chart(grid).transform_filter(chosen).mark_point(
        shape="circle", size=320, filled=True, opacity=1, stroke="white", strokeWidth=1.5).encode(
        # fill, not color: a second color field in the layer would add a legend of its own
        x=x, y=y, fill=alt.Fill("colour:N", scale=None, legend=None),
        tooltip=["calls:N", alt.Tooltip("cost_share:Q", format=".3f"), alt.Tooltip("accuracy:Q", format=".3f"),
                 alt.Tooltip("lost:Q", format=".3f")])
    plot = alt.layer(drawn, budget_rule, rule_label, diamonds, labels, selected).properties(width=WIDTH, height=HEIGHT)
    chart = alt.vconcat(plot, text_panel(text, lines, chosen, None), spacing=8)
    return Explorer(finish(chart.add_params(drop_param, delta_param), title),
                    f"calcas chain explorer: {' → '.join(models)}; max_drop = {drops[0]:g}..{drops[-1]:g}, "
                    f"δ = {', '.join(f'{e:g}' for e in deltas)}")


def recalibration_explorer(curves: pd.DataFrame, *, title: str = "", default: int | None = None,
                           names: Mapping[str, str] | None = None) -> Explorer:
    """Each model's ECE on the target after refitting its calibrator on m labelled target rows, with
    a control for m, beside the ECE with no calibration and with the source's calibrator.

    Parameters
    ----------
    curves : DataFrame
        Columns ``model``, ``fit``, ``m``, ``ece_mean``, ``ece_low``, ``ece_high`` (the rows of
        :func:`calcas.recalibration_curve` of every model, with its name): ``fit`` "none" and
        "source" at m = 0 (drawn as ticks at every m), "target" and "source prior" at each m
        (points with their interval).
    title : str
    default : int, optional
        The starting m (nearest offered); the middle one by default.
    names : dict fit -> legend name, optional

    Returns
    -------
    Explorer
        Models along x, ECE up; the read-out at each m counts, per refit, the models whose
        refitted ECE lies below the source fit's: "m = 100, <fit>: below the source fit for 9 of
        14 models".
    """
    need = {"model", "fit", "m", "ece_mean", "ece_low", "ece_high"}
    if not need <= set(curves.columns):
        raise ValueError(f"curves: missing columns {sorted(need - set(curves.columns))}")
    names = dict(names or {})
    data = curves.assign(series=lambda d: d["fit"].map(lambda f: names.get(f, f)), marker=lambda d: d["series"])
    fixed = data[data["fit"].isin(["none", "source"])]
    moving = data[~data["fit"].isin(["none", "source"])]
    if moving.empty or fixed.empty:
        raise ValueError("curves: expected the fits 'none' and 'source' (m = 0) and at least one refit at m > 0")
    ms = sorted(int(m) for m in moving["m"].unique())
    models = list(dict.fromkeys(data["model"]))
    series = list(dict.fromkeys(data["series"]))
    styles = _styles(series)
    source = fixed[fixed["fit"] == "source"].set_index("model")["ece_mean"]
    text, fits = [], list(dict.fromkeys(moving["series"]))
    for m in ms:
        at = moving[moving["m"] == m]
        for fit in fits:
            rows = at[at["series"] == fit]
            below = int(sum(r.ece_mean < source[r.model] for r in rows.itertuples()))
            text.append({"series": fit, "m": m, "colour": styles[fit]["colour"],
                         "text": f"m = {m}, {fit}: below the source fit for {below} of {len(rows)} models"})
    text, lines = readout(text, "m", fits)
    m_param = slider("m", "labelled target rows m ", ms, _start(ms, default if default is not None else ms[len(ms) // 2]))
    colour, dash, shape = _encodings(series, title="calibration", columns=_legend_columns(series))
    x = alt.X("model:N", title=None, sort=models, axis=alt.Axis(labelAngle=-45, labelOverlap=False, labelFontSize=10))
    y = alt.Y("ece_mean:Q", title="ECE on the target's test rows", scale=alt.Scale(zero=True))
    tooltip = ["model:N", alt.Tooltip("series:N", title="calibration"), alt.Tooltip("ece_mean:Q", format=".3f")]
    ticks = alt.Chart(fixed).mark_tick(thickness=2.5, size=18).encode(x=x, y=y, color=colour, tooltip=tooltip)
    current = alt.Chart(moving).transform_filter(alt.datum.m == m_param)
    bars = current.mark_rule(strokeWidth=1.5).encode(x=x, y=alt.Y("ece_low:Q"), y2="ece_high:Q", color=colour)
    points = current.mark_point(size=70, filled=True, opacity=1).encode(x=x, y=y, color=colour, shape=shape,
                                                                          tooltip=tooltip)
    plot = alt.layer(ticks, bars, points).properties(width=WIDTH, height=HEIGHT)
    chart = alt.vconcat(plot, text_panel(text, lines, m_param, "m"), spacing=8)
    return Explorer(finish(chart.add_params(m_param), title),
                    f"calcas recalibration explorer: {len(models)} models; m = {ms[0]}..{ms[-1]}")


# ---------------------------------------------------------------------------------------
# building blocks of explorers over precomputed grids (the lab's)

def key_matches(field: str, param: Any) -> Any:
    """The predicate "this row belongs to the grid value the control ``param`` shows":
    ``datum[field] == round(param × 10⁴)``, the rows carrying :func:`grid_key` of their value
    in ``field``.

    A range slider's value is ``min + i × step`` as the browser computes it, which can differ
    in its last bits from the float a grid holds (``log2(2 ** -0.5)`` is
    -0.4999999999999999, the slider's -0.5): compared as floats, such a position would show
    nothing. Keys compare integers. Combine predicates with ``&``.
    """
    return alt.datum[field] == alt.expr.round(param * _KEY)


def reliability_layers(bins: pd.DataFrame, where: Any, *, name: str, colour: str, gaps: bool = True,
                       size: alt.Size | None = None) -> alt.LayerChart:
    """A reliability diagram of the rows of ``bins`` that the controls select: the diagonal of
    perfect calibration and each bin's accuracy against its mean confidence, as a line through
    its points.

    Parameters
    ----------
    bins : DataFrame
        The non-empty rows of :func:`calcas.reliability_table` (``bin, count,
        mean_confidence, accuracy``) at every position of the controls, with the columns
        ``where`` reads (keys from :func:`grid_key`, say).
    where : predicate
        Selects one position's rows (e.g. :func:`key_matches`).
    name : str
        Prefix of the filtered marks' names: Vega gives their SVG groups the classes
        ``<name>_curve_marks``, ``<name>_points_marks`` (and ``<name>_gaps_marks``), so a
        browser test finds them.
    colour : str
        The colour of the curve, its points and the gaps.
    gaps : bool
        Draw each bin's gap to the diagonal (|mean confidence − accuracy|) as a faint bar.
    size : alt.Size, optional
        A size encoding for the points (e.g. over ``count``); one size for all when None.

    Returns
    -------
    LayerChart
        :data:`WIDTH` × :data:`HEIGHT`, both axes over [0, 1].
    """
    axis = dict(scale=alt.Scale(domain=[0, 1]), axis=UNIT_AXIS)
    x = alt.X("mean_confidence:Q", title="mean confidence in bin", **axis)
    y = alt.Y("accuracy:Q", title="accuracy in bin", **axis)
    diagonal = (alt.Chart(pd.DataFrame({"mean_confidence": [0.0, 1.0], "accuracy": [0.0, 1.0]}))
                .mark_line(color="#999999", strokeDash=[5, 4], strokeWidth=1).encode(x=x, y=y))
    # drawn, not read out: 5 decimals keep the page small (read-outs carry their own digits)
    base = alt.Chart(bins.round({"mean_confidence": 5, "accuracy": 5})).transform_filter(where)
    tooltip = ["bin:Q", "count:Q", alt.Tooltip("mean_confidence:Q", format=".4f"),
               alt.Tooltip("accuracy:Q", format=".4f")]
    layers = [diagonal]
    if gaps:
        layers.append(base.mark_rule(strokeWidth=3, opacity=0.3, color=colour).encode(
            x=x, y=alt.Y("mean_confidence:Q", **axis), y2="accuracy:Q").properties(name=f"{name}_gaps"))
    sized = size is not None
    layers.append(base.mark_line(strokeWidth=1.5 if sized else 2, color=colour, opacity=0.7 if sized else 1)
                  .encode(x=x, y=y).properties(name=f"{name}_curve"))
    points = base.mark_circle(color=colour, opacity=0.85 if sized else 1, **({} if sized else {"size": 45}))
    layers.append(points.encode(x=x, y=y, tooltip=tooltip, **({"size": size} if sized else {}))
                  .properties(name=f"{name}_points"))
    return alt.layer(*layers).properties(width=WIDTH, height=HEIGHT)
