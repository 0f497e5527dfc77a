"""Static figures (seaborn / matplotlib) and table formatting for the book: the paper's
Fig. 1 (reliability diagrams), Fig. 2/3 (cascade curves) and Fig. 4 (precision against
detection rate), and :func:`styled` for the tables the chapters print.

The single-panel functions draw tables computed by calcas onto a matplotlib Axes and return
it; the grids (:func:`cascade_grid`, :func:`reliability_grid`) make a whole Figure sized for
the book's text column. No number is computed here.

Colours are the Okabe–Ito colour-blind-safe palette, and each series that matters also has
its own line style and marker, so nothing is told apart by hue alone: uncalibrated
confidence (and UC, the cascade that routes on it) is vermillion, dashed, with squares;
calibrated confidence (and CC) is blue, solid, with circles. :mod:`calcas.render.interactive` uses
the same styles (:data:`SERIES_STYLE`).
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import offset_copy

__all__ = ["OKABE_ITO", "SERIES_COLOURS", "SERIES_STYLE", "SERIES_ALIASES", "INLINE_DPI", "COLUMN_INCHES", "series_style",
           "reliability_diagram", "reliability_grid", "showcase_figure", "cascade_plot", "cascade_grid", "cleaning_plot",
           "threshold_sweep_figure", "chain_frontier_grid", "annotated_reliability_diagram", "reliability_gaps",
           "line_panels", "calibration_map_figure", "scoring_rule_figure"]

#: The Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design").
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
#: Colours for series without a style of their own, in order (yellow, faint on white, last).
SERIES_COLOURS = tuple(OKABE_ITO[c] for c in ("blue", "vermillion", "bluish green", "reddish purple",
                                              "orange", "sky blue", "black", "yellow"))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")
#: Named series: colour, matplotlib line style, marker, line width. The one mapping of series to
#: styles for every static figure and every explorer (:mod:`calcas.render.interactive` reads it):
#: a name drawn in two places is drawn alike, and each named series differs from the others it is
#: drawn with by its dash and marker too, not by hue alone. RC (random routing) is a grey baseline;
#: the oracle a dotted green bound.
SERIES_STYLE = {
    # calibration (chapter 2, the calibration pages, the lab's temperature experiment)
    "uncalibrated": dict(color=OKABE_ITO["vermillion"], ls="--", marker="s", lw=1.6),
    "calibrated": dict(color=OKABE_ITO["blue"], ls="-", marker="o", lw=2.0),
    "T fitted on true labels": dict(color=OKABE_ITO["bluish green"], ls="-.", marker="^", lw=1.8),
    "temperature scaling": dict(color=OKABE_ITO["blue"], ls="-", marker="o", lw=2.0),
    "Platt scaling": dict(color=OKABE_ITO["reddish purple"], ls="-.", marker="D", lw=1.8),
    "fitted T": dict(color=OKABE_ITO["bluish green"], ls=":", marker=None, lw=1.6),
    # the lab's and the intro's synthetic models, before any calibration: not the calibrated /
    # uncalibrated pair's colours, which the intro reserves for before and after calibration
    "over-confident": dict(color=OKABE_ITO["orange"], ls="--", marker="^", lw=1.8),
    "under-confident": dict(color=OKABE_ITO["reddish purple"], ls="-.", marker="D", lw=1.8),
    # cascades (chapter 3 and its pages)
    "UC": dict(color=OKABE_ITO["vermillion"], ls="--", marker="s", lw=1.6),
    "CC": dict(color=OKABE_ITO["blue"], ls="-", marker="o", lw=2.2),
    "RC": dict(color="#7a7a7a", ls="-.", marker=None, lw=1.3),
    "oracle": dict(color=OKABE_ITO["bluish green"], ls=":", marker=None, lw=1.8),
    # ECE estimators (the lab, "How wrong can an ECE be?"): plug-in as uncalibrated, debiased as calibrated
    "plug-in": dict(color=OKABE_ITO["vermillion"], ls="--", marker="s", lw=1.8),
    "debiased": dict(color=OKABE_ITO["blue"], ls="-", marker="o", lw=1.8),
    "smooth": dict(color=OKABE_ITO["bluish green"], ls="-.", marker="^", lw=1.8),
    # label cleaning: the single operating points beside method 2's sweeps, and Redux's two truths
    "method 1": dict(color=OKABE_ITO["orange"], ls="none", marker="s", lw=0),
    "method 3": dict(color=OKABE_ITO["sky blue"], ls="none", marker="D", lw=0),
    "Confident Learning": dict(color=OKABE_ITO["reddish purple"], ls="none", marker="^", lw=0),
    "any annotated problem": dict(color=OKABE_ITO["blue"], ls="-", marker="o", lw=1.8),
    "a wrong ground truth": dict(color=OKABE_ITO["vermillion"], ls="--", marker="s", lw=1.8),
}
#: Other spellings of named series (the lab's read-outs say "plug-in ECE"): styled as the name.
SERIES_ALIASES = {"plug-in ECE": "plug-in", "debiased ECE": "debiased", "smooth ECE": "smooth",
                  "plugin": "plug-in", "temperature": "temperature scaling", "Platt": "Platt scaling"}
#: The PNG resolution of matplotlib-inline (matplotlib's ``figure.dpi``, 100), which myst-nb
#: shows at one image pixel per CSS pixel.
INLINE_DPI = 100
#: The book's text column (sphinx-book-theme at 1280 px) is about 688 px: 6.8 inches at
#: :data:`INLINE_DPI`. Grids are this wide, so they are shown at their natural size.
COLUMN_INCHES = 6.8


def series_style(name: str, index: int = 0) -> dict[str, Any]:
    """The style of series ``name``: its own (:data:`SERIES_STYLE`, also under a spelling of
    :data:`SERIES_ALIASES`) or the ``index``-th of the palette, with a marker and a dash pattern
    of that position.

    Parameters
    ----------
    name : str
        The series' name, as its legend shows it.
    index : int
        Its position among the series of its figure (for unnamed series).

    Returns
    -------
    dict
        ``color``, ``ls``, ``marker`` and ``lw``, matplotlib's keywords.
    """
    name = SERIES_ALIASES.get(name, name)
    if name in SERIES_STYLE:
        return dict(SERIES_STYLE[name])
    return dict(color=SERIES_COLOURS[index % len(SERIES_COLOURS)], ls=_DASHES[index % len(_DASHES)],
                marker=_MARKERS[index % len(_MARKERS)], lw=1.8)


def _axes(ax: plt.Axes | None) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(4.4, 4.4), dpi=INLINE_DPI)
    return ax


def _legend_below(ax: plt.Axes, ncol: int | None = None) -> None:
    """The axes' legend under its x-axis label, outside the data (``tight_layout`` and
    ``bbox_inches="tight"`` both make room for it)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    fs = plt.rcParams
    size = lambda key: _points(fs[key])  # noqa: E731
    drop = (fs["xtick.major.size"] + fs["xtick.major.pad"] + size("xtick.labelsize")
            + fs["axes.labelpad"] + size("axes.labelsize") + 6)
    ncol = ncol or min(len(handles), 3)
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=8,
              frameon=False, bbox_transform=offset_copy(ax.transAxes, fig=ax.figure, y=-drop, units="points"),
              handlelength=2.6, columnspacing=1.2)


def _points(size: Any) -> float:
    from matplotlib.font_manager import FontProperties
    return FontProperties(size=size).get_size_in_points()


def _title_chars(panel_inches: float) -> int:
    """How many characters of a 10 pt title fit over a panel ``panel_inches`` wide (its
    axes take about three quarters of it; a character is about 7.5 px at 100 dpi)."""
    return max(16, int(panel_inches * INLINE_DPI * 0.75 / 7.5))


def _wrap(title: str, width: int = 42) -> str:
    """``title`` wrapped at ``width`` characters, its own line breaks kept."""
    return "\n".join(line for part in title.split("\n") for line in textwrap.wrap(part, width)) if title else ""


#: The limits of an axis over [0, 1], with a margin so that a point at 0 or 1 (a top bin at
#: confidence 1) is drawn inside the frame, not on it; ticks stay at 0, 0.2, ..., 1.
UNIT_LIMITS = (-0.03, 1.03)


def _unit_axes(ax: plt.Axes, step: float = 0.2) -> None:
    ax.set(xlim=UNIT_LIMITS, ylim=UNIT_LIMITS)
    ticks = np.round(np.arange(0, 1 + step / 2, step), 2)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)


def _facet_grid(data: pd.DataFrame, *, width: float, ncols: int, panel_height: float,
                **facets: Any) -> sns.FacetGrid:
    """A seaborn FacetGrid ``width`` inches wide (``ncols`` panels a row), each panel
    ``panel_height`` inches tall, not despined (the book's figures keep their frames). Once
    drawn, :func:`_grid_figure` finishes it."""
    grid = sns.FacetGrid(data, height=panel_height, aspect=width / ncols / panel_height, despine=False,
                         **facets)
    grid.figure.set_dpi(INLINE_DPI)
    return grid


def _grid_figure(grid: sns.FacetGrid, handles: Mapping[str, Any]) -> Figure:
    """The drawn grid's figure, its layout constrained (seaborn's tight layout leaves no room
    for a legend under the panels), with one legend of ``handles`` under it."""
    grid.figure.set_layout_engine("constrained")
    _figure_legend(grid.figure, handles)
    return grid.figure


# ---------------------------------------------------------------------------------------
# reliability diagrams (Fig. 1)

def _draw_reliability(ax: plt.Axes, tables: Mapping[str, pd.DataFrame], title: str, wrap: int = 42) -> None:
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls=(0, (4, 3)), zorder=0, label="_diagonal")
    for i, (name, table) in enumerate(tables.items()):
        full = table[table["count"] > 0]
        style = series_style(name, i)
        ax.plot(full["mean_confidence"], full["accuracy"], ms=4, label=name,
                markerfacecolor="white" if style["ls"] != "-" else style["color"], **style)
    ax.set(xlabel="mean confidence in bin", ylabel="accuracy in bin")
    _unit_axes(ax)
    if title:
        ax.set_title(_wrap(title, wrap), fontsize=10)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)


def reliability_diagram(tables: dict[str, pd.DataFrame], *, ax: plt.Axes | None = None,
                        title: str = "") -> plt.Axes:
    """Accuracy against mean confidence per bin, one line per table, with the diagonal.

    Parameters
    ----------
    tables : dict name -> DataFrame from :func:`calcas.reliability_table`
        E.g. ``{"uncalibrated": ..., "calibrated": ...}``; those two names have their own
        styles (:data:`SERIES_STYLE`), others take the palette in order.

    The legend sits under the axes, outside the data.
    """
    ax = _axes(ax)
    _draw_reliability(ax, tables, title)
    _legend_below(ax)
    return ax


def reliability_grid(rows: Sequence[tuple[str, Mapping[str, Mapping[str, pd.DataFrame]]]], *,
                     width: float = COLUMN_INCHES) -> Figure:
    """Reliability diagrams of several models: one row per model, its splits side by side.

    Parameters
    ----------
    rows : list of (name, {split: {series: table}})
        E.g. ``[("ResNet-50", {"cal": {"uncalibrated": t0, "calibrated": t1},
        "test": {...}}), ...]``; each table from :func:`calcas.reliability_table`. Every row
        should have the same splits (at most two fit the column; a row with fewer leaves the
        rest of its line empty).
    width : float
        Figure width in inches (:data:`COLUMN_INCHES`: the book's column at 100 dpi).

    Returns
    -------
    matplotlib Figure
        Square panels (a seaborn FacetGrid: one row per model, named on the right margin;
        one column per split, named over the top row), one legend under the grid. The figure
        is made with pyplot, so a notebook shows it once at the end of the cell (assign it,
        ``fig = reliability_grid(...)``, or end the line with ``;``).
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows: no models to draw")
    names = [name for name, _ in rows]
    if len(set(names)) < len(names):
        raise ValueError(f"rows: each model once, got {names}")
    splits = list(dict.fromkeys(split for _, by_split in rows for split in by_split))
    ncols = max(len(by_split) for _, by_split in rows)
    series = list(dict.fromkeys(s for _, by_split in rows for tables in by_split.values() for s in tables))
    long = pd.concat([pd.DataFrame(table).assign(model=name, split=split, series=s)
                      for name, by_split in rows for split, tables in by_split.items() for s, table in tables.items()],
                     ignore_index=True)
    grid = _facet_grid(long, width=width, ncols=ncols, panel_height=width / ncols * 0.98, row="model", col="split",
                       row_order=names, col_order=splits, margin_titles=True, sharex=False, sharey=False)

    def panel(data: pd.DataFrame, **_: Any) -> None:
        tables = {s: data[data["series"] == s] for s in series if (data["series"] == s).any()}
        _draw_reliability(plt.gca(), tables, "")

    grid.map_dataframe(panel)
    # the model names on the right margin and the splits over the top row: no title sits under
    # another panel's tick labels, where it would read as that panel's x-axis label
    grid.set_titles(row_template="{row_name}", col_template="{col_name}", size=10, fontweight="bold")
    for (r, c), ax in np.ndenumerate(grid.axes):
        if splits[c] not in rows[r][1]:
            ax.axis("off")
        else:  # axis titles once: on the bottom row and the left column
            ax.set_xlabel("mean confidence in bin" if r == len(rows) - 1 else "")
            ax.set_ylabel("accuracy in bin" if c == 0 else "")
            ax.tick_params(labelbottom=True, labelleft=True)
    seen: dict[str, Line2D] = {}
    for ax in grid.axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    return _grid_figure(grid, {s: seen[s] for s in series if s in seen})


def showcase_figure(tables: Mapping[str, pd.DataFrame], intervals: Mapping[str, Sequence[float]], *,
                    title: str = "", detectable: float | None = None, width: float = COLUMN_INCHES) -> Figure:
    """One model's reliability diagram beside its ECE with 95% intervals, before and after.

    Parameters
    ----------
    tables : dict series -> DataFrame from :func:`calcas.reliability_table`
        E.g. ``{"uncalibrated": t0, "calibrated": t1}``.
    intervals : dict series -> [ECE, low, high]
        The same series' ECE and interval (keys as in ``tables``).
    title : str
        Over the diagram.
    detectable : float, optional
        The smallest ECE the data can detect (:func:`calcas.min_detectable_ece`), drawn as a
        dotted line on the ECE panel.

    Returns
    -------
    matplotlib Figure
        Left: the diagram (square); right: one point and interval per series, in the series'
        own style, on an ECE axis from 0.
    """
    names = list(tables)
    if list(intervals) != names:
        raise ValueError(f"intervals: expected the series of tables {names}, got {list(intervals)}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(width, width * 0.56), dpi=INLINE_DPI, layout="constrained",
                                      gridspec_kw={"width_ratios": [1.7, 1]})
    _draw_reliability(left, tables, title, _title_chars(width * 0.6))
    top = max(max(v[2] for v in intervals.values()), detectable or 0.0)
    for i, name in enumerate(names):
        value, low, high = intervals[name]
        style = series_style(name, i)
        # a bootstrap interval of ECE can lie above its estimate, so it is drawn as a range, not an error bar
        right.vlines(i, low, high, color=style["color"], lw=2.2)
        right.hlines([low, high], i - 0.12, i + 0.12, color=style["color"], lw=1.5)
        right.plot([i], [value], color=style["color"], marker=style["marker"] or "o", ms=7, ls="none")
    if detectable is not None:
        right.axhline(detectable, color="0.35", ls=":", lw=1.3)
        right.annotate("detectable", (len(names) - 0.5, detectable), xytext=(0, 3), textcoords="offset points",
                       ha="right", va="bottom", fontsize=8, color="0.35")
    right.set(xlim=(-0.6, len(names) - 0.4), ylim=(0, 1.15 * top if top > 0 else 1), ylabel="ECE (95% interval)")
    right.set_xticks(range(len(names)), [_wrap(n, 12) for n in names], fontsize=9)
    right.grid(alpha=0.3, axis="y")
    handles = {h_l[1]: h_l[0] for h_l in zip(*left.get_legend_handles_labels())}
    _figure_legend(fig, handles)
    return fig


def _figure_legend(fig: Figure, handles: Mapping[str, Any]) -> None:
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=min(len(handles), 5), frameon=False, fontsize=9, handlelength=2.8)


# ---------------------------------------------------------------------------------------
# cascades (Fig. 2/3)

def _panels(n: int, width: float, *, below: float, bottom: float = 0.0,
            sharex: bool = False) -> tuple[Figure, np.ndarray, float, int]:
    """A grid of ``n`` panels for the book's column, two per row (one alone, at most 5 inches wide):
    each panel is about as tall as wide plus ``below`` inches (its labels, a legend), and the figure
    ``bottom`` inches more. Returns the figure, its axes (2-D), its width and the number of columns."""
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    fig_w = width if ncols == 2 else min(width, 5.0)
    panel_h = fig_w / ncols * 0.82 + below
    fig, axes = plt.subplots(nrows, ncols, figsize=(fig_w, panel_h * nrows + bottom), dpi=INLINE_DPI,
                             squeeze=False, layout="constrained", sharex=sharex)
    return fig, axes, fig_w, ncols


def _nearest(values: Sequence[int], target: int) -> int:
    return min(values, key=lambda v: (abs(v - target), v))


def _draw_cascade(ax: plt.Axes, curves: pd.DataFrame, title: str, highlight_K: int | None,
                  wrap: int = 42) -> None:
    known = [m for m in ("RC", "UC", "CC", "oracle") if m in set(curves["method"])]
    others = sorted(set(curves["method"]) - set(known))
    for i, method in enumerate(known + others):
        part = curves[curves["method"] == method].sort_values("p_small")
        style = series_style(method, i)
        if style.get("marker"):
            style["markevery"] = max(1, len(part) // 12)
        ax.plot(part["p_small"], part["accuracy"], ms=3.5, label=method, **style)
    if highlight_K is not None:
        cc = curves[curves["method"] == "CC"]
        if len(cc):
            k = _nearest(sorted(int(x) for x in cc["K"].unique()), int(highlight_K))
            row = cc[cc["K"] == k].iloc[0]
            ax.scatter([row["p_small"]], [row["accuracy"]], s=90, facecolors="none", edgecolors="k",
                       linewidths=1.5, zorder=5, label="CC at the fixed K")
            right = row["p_small"] > 0.75  # near the right edge: label to the left of the point
            # a white halo around the letters, not a box: the curves stay visible round the label
            ax.annotate(f"K = {k}", (row["p_small"], row["accuracy"]), xytext=(-7 if right else 7, 7),
                        textcoords="offset points", fontsize=8, ha="right" if right else "left",
                        path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")])
    ax.set(xlabel="p: share answered by the first model", ylabel="accuracy", xlim=(-0.02, 1.02))
    if title:
        ax.set_title(_wrap(title, wrap), fontsize=10)
    ax.grid(alpha=0.3)


def cascade_plot(curves: pd.DataFrame, *, ax: plt.Axes | None = None, title: str = "",
                 highlight_K: int | None = None) -> plt.Axes:
    """Cascade accuracy against the share p answered by the first model (Fig. 2/3).

    Parameters
    ----------
    curves : DataFrame from :func:`calcas.cascade_curves` (columns method, K, p_small, accuracy).
    highlight_K : int, optional
        Mark CC's operating point at this K (or, if the curve has no such K because tied
        confidences merged bins, at the nearest K it has).

    The legend sits under the axes, outside the data.
    """
    ax = _axes(ax)
    _draw_cascade(ax, curves, title, highlight_K)
    _legend_below(ax, ncol=3)
    return ax


def cascade_grid(curves: Mapping[str, pd.DataFrame], *, highlight_K: int | Mapping[str, int] | None = None,
                 titles: Mapping[str, str] | None = None, width: float = COLUMN_INCHES) -> Figure:
    """Small multiples of cascade curves, sized for the book's column (at most two per row).

    Parameters
    ----------
    curves : dict name -> DataFrame from :func:`calcas.cascade_curves`
        One panel per entry, in order.
    highlight_K : int, or dict name -> int, optional
        CC's operating point to mark in every panel (one K, or one per name; names missing
        from the dict get no mark). A K a curve does not have (tied confidences merge bins)
        is marked at the nearest K it has, and the panel says which.
    titles : dict name -> str, optional
        Panel titles (default: the names); long titles wrap.
    width : float
        Figure width in inches (:data:`COLUMN_INCHES`: the book's column at 100 dpi).

    Returns
    -------
    matplotlib Figure
        A seaborn FacetGrid, one legend under it. Made with pyplot: a notebook shows it once at
        the end of the cell (assign it, or end the line with ``;``).
    """
    curves = dict(curves)
    if not curves:
        raise ValueError("curves: no cascades to draw")
    names = [str(n) for n in curves]
    ncols = 1 if len(curves) == 1 else 2
    fig_w = width if ncols == 2 else min(width, 5.0)
    long = pd.concat([pd.DataFrame(c).assign(panel=str(name)) for name, c in curves.items()], ignore_index=True)
    shape = 0.82 if len(curves) <= 4 else 0.68  # many pairs: flatter panels, a page a reader can scan
    grid = _facet_grid(long, width=fig_w, ncols=ncols, panel_height=fig_w / ncols * shape + 0.35, col="panel",
                       col_order=names, col_wrap=ncols, sharex=True, sharey=False)
    keys = dict(zip(names, curves))

    def panel(data: pd.DataFrame, **_: Any) -> None:
        name = keys[str(data["panel"].iloc[0])]
        k = highlight_K.get(name) if isinstance(highlight_K, Mapping) else highlight_K
        _draw_cascade(plt.gca(), data.drop(columns="panel"), (titles or {}).get(name, str(name)), k,
                      _title_chars(fig_w / ncols))

    grid.map_dataframe(panel)
    seen: dict[str, Any] = {}
    for i, ax in enumerate(grid.axes.flat):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
        ax.tick_params(labelbottom=True, labelleft=True)
        # axis titles once per row and column: on the left column, and above no other panel
        ax.set_xlabel("p: share answered by the first model" if i + ncols >= len(curves) else "")
        ax.set_ylabel("accuracy" if i % ncols == 0 else "")
    return _grid_figure(grid, seen)


# ---------------------------------------------------------------------------------------
# chains of models

def chain_label(models: Sequence[str], stages: str) -> str:
    """"SimCLR → ViT" for the stages "0+2" of a chain of ``models``."""
    return " → ".join(models[int(j)] for j in stages.split("+"))


def _draw_chain(ax: plt.Axes, chain: Mapping[str, Any], title: str, wrap: int) -> None:
    models = chain["models"]
    full = "+".join(str(j) for j in range(len(models)))
    ordered = [full] + sorted(k for k in chain["frontiers"] if k != full)
    for i, stages in enumerate(ordered):
        f = pd.DataFrame({"cost_share": chain["frontiers"][stages]["cost_share"],
                          "accuracy": chain["frontiers"][stages]["accuracy"]}).sort_values("cost_share", kind="stable")
        style = series_style("", i)  # the palette in order, as calcas.render.interactive.chain_explorer draws them
        # steps, not segments: between two configurations no configuration reaches the line joining them;
        # at a cost between two points the accuracy to be had is that of the cheaper one
        ax.plot(f["cost_share"], f["accuracy"], ms=3.5, label=chain_label(models, stages), drawstyle="steps-post",
                **style)
    for s in chain["singles"]:
        ax.scatter([s["cost_share"]], [s["accuracy"]], marker="D", s=34, color="k", zorder=5,
                   label="each model alone")
        right = s["cost_share"] > 0.75
        ax.annotate(models[s["model"]], (s["cost_share"], s["accuracy"]), xytext=(-6 if right else 6, -11),
                    textcoords="offset points", fontsize=8, ha="right" if right else "left")
    ax.set(xlabel=f"cost per item, share of {models[-1]}'s", ylabel="test accuracy", xlim=(-0.02, 1.06))
    if title:
        ax.set_title(_wrap(title, wrap), fontsize=10)
    ax.grid(alpha=0.3)


def chain_frontier_grid(chains: Mapping[str, Mapping[str, Any]], *, width: float = COLUMN_INCHES) -> Figure:
    """The Pareto frontiers of each chain and of its two-model sub-chains, measured on test.

    Parameters
    ----------
    chains : dict name -> one chain's entry of the chain chapter's results
        (:meth:`calcas.chapters.chains.SingleChainFacts.to_dict`): ``models``, ``singles`` and ``frontiers``
        (stage sets such as ``"0+1+2"`` -> lists ``cost_share`` and ``accuracy`` on test).
    width : float
        Figure width in inches.

    Returns
    -------
    matplotlib Figure
        One panel per chain (two per row), each frontier as steps (``steps-post``: a configuration's
        accuracy holds until the next, costlier one; no line suggests operating points between
        them), each model alone as a labelled diamond; one legend per panel, since the chains'
        models differ.
    """
    chains = dict(chains)
    if not chains:
        raise ValueError("chains: no chains to draw")
    fig, axes, fig_w, ncols = _panels(len(chains), width, below=1.0)
    for ax, (name, chain) in zip(axes.flat, chains.items()):
        _draw_chain(ax, chain, str(name), _title_chars(fig_w / ncols))
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(list(unique.values()), list(unique), loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1,
                  fontsize=8, frameon=False, handlelength=2.6)
    for ax in list(axes.flat)[len(chains):]:
        ax.axis("off")
    return fig


# ---------------------------------------------------------------------------------------
# label cleaning (Fig. 4)

def cleaning_plot(sweeps: dict[str, pd.DataFrame], points: dict[str, tuple[float, float]] | None = None,
                  *, ax: plt.Axes | None = None, title: str = "", log_x: bool | None = None) -> plt.Axes:
    """Precision against detection rate (Fig. 4): method-2 sweeps as lines, single operating
    points (method 1, method 3, Confident Learning) as markers.

    Parameters
    ----------
    sweeps : dict name -> DataFrame from :func:`calcas.cleaning_sweep`
    points : dict name -> (detection_rate, precision)
    ax : matplotlib Axes, optional
    title : str
    log_x : bool, optional
        A log-scaled detection rate, so that the few flags of small K (each a measured point)
        are spread out instead of stacked at 0. None: log where the positive detection rates
        span more than two decades. A sweep's points that flag nothing (rate 0, precision
        unknown) are not drawn on a log axis.

    The legend sits under the axes, outside the data.
    """
    ax = _axes(ax)
    rates = pd.concat([s["detection_rate"] for s in sweeps.values()]
                      + [pd.Series([r for r, _ in (points or {}).values()], dtype=float)])
    positive = rates[rates > 0]
    if log_x is None:
        log_x = len(positive) > 1 and positive.max() / positive.min() > 100
    for i, (name, sweep) in enumerate(sweeps.items()):
        ax.plot(sweep["detection_rate"], sweep["precision"], ms=3.5, label=name, **series_style(name, i))
    for j, (name, (rate, prec)) in enumerate((points or {}).items()):
        style = series_style(name, len(sweeps) + j)
        ax.scatter([rate], [prec], marker=style["marker"] or "sD^v"[j % 4], s=55, zorder=5, color=style["color"],
                   edgecolors="k", linewidths=0.6, label=name)
    ax.set(xlabel="detection rate (flagged / all)", ylabel="precision (truly mislabeled / flagged)",
           ylim=(0, 1.02))
    if log_x:
        ax.set_xscale("log")
        ax.set_xlim(positive.min() / 1.6, positive.max() * 1.6)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("detection rate (flagged / all, log scale)")
    if title:
        ax.set_title(_wrap(title, 60), fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(ax, ncol=2)
    return ax


def threshold_sweep_figure(sweeps: Mapping[str, pd.DataFrame], *, threshold: str, threshold_label: str,
                           width: float = COLUMN_INCHES) -> Figure:
    """Precision as a flagging threshold moves, and precision against recall: two panels, one
    line per series, with a shaded band where the tables carry an interval.

    Parameters
    ----------
    sweeps : dict name -> DataFrame
        One table per series (e.g. per kind of ground truth), one row per threshold value, with
        columns ``threshold``, ``precision`` and ``recall`` (shares in [0, 1], NaN where
        unknown) and optionally ``precision_low`` and ``precision_high`` (the band).
    threshold : str
        The column holding the threshold (the left panel's x-axis).
    threshold_label : str
        The left panel's x-axis label.
    width : float
        Figure width in inches (the book's text column by default).

    Returns
    -------
    Figure
    """
    if not sweeps:
        raise ValueError("sweeps: no series to draw")
    for name, table in sweeps.items():
        missing = sorted({threshold, "precision", "recall"} - set(table.columns))
        if missing:
            raise ValueError(f"sweeps: {name!r} lacks columns {missing}")
    fig, axes = plt.subplots(1, 2, figsize=(width, width / 2 + 0.6), dpi=INLINE_DPI, sharey=True,
                             layout="constrained")
    for i, (name, table) in enumerate(sweeps.items()):
        style = series_style(name, i)
        for ax, x in zip(axes, (threshold, "recall")):
            ax.plot(table[x], table["precision"], ms=3.5, label=name if x == threshold else "_", **style)
            if {"precision_low", "precision_high"} <= set(table.columns):
                ax.fill_between(table[x], table["precision_low"], table["precision_high"], color=style["color"],
                                alpha=0.15, lw=0)
    axes[0].set(xlabel=threshold_label, ylabel="precision", ylim=(0, 1.02))
    if all(pd.api.types.is_integer_dtype(t[threshold]) for t in sweeps.values()):
        axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set(xlabel="recall (flagged / annotated)")
    for ax in axes:
        ax.grid(alpha=0.3)
    _figure_legend(fig, {h.get_label(): h for h in axes[0].get_lines()})
    return fig


# ---------------------------------------------------------------------------------------
# teaching figures: how to read a reliability diagram

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
    lo, hi = UNIT_LIMITS  # the regions fill the frame, margins included
    ax.fill_between([lo, hi], [lo, lo], [lo, hi], color=series_style("over-confident")["color"], alpha=0.08, lw=0)
    ax.fill_between([lo, hi], [lo, hi], [hi, hi], color=series_style("under-confident")["color"], alpha=0.07, lw=0)
    ax.plot([0, 1], [0, 1], color="#777777", ls=(0, (5, 4)), lw=1)
    ax.text(0.05, 0.075, "perfect calibration:\naccuracy = confidence", rotation=45, rotation_mode="anchor",
            fontsize=8.5, color="#555555", ha="left", va="bottom")
    over_style, under_style = series_style("over-confident"), series_style("under-confident")
    ax.text(0.97, 0.05, "over-confident:\naccuracy below confidence", ha="right", va="bottom", fontsize=10.5,
            color=over_style["color"], fontweight="bold")
    ax.text(0.03, 0.95, "under-confident:\naccuracy above confidence", ha="left", va="top", fontsize=10.5,
            color=under_style["color"], fontweight="bold")
    ax.plot(over["mean_confidence"], over["accuracy"], ms=4.5, label="an over-confident model", **over_style)
    ax.plot(under["mean_confidence"], under["accuracy"], ms=4.5, label="an under-confident model", **under_style)
    row = over.iloc[int(np.argmin(np.abs(over["mean_confidence"].to_numpy() - 0.75)))]
    c, a = float(row["mean_confidence"]), float(row["accuracy"])
    ax.annotate("", xy=(c, a), xytext=(c, c), arrowprops=dict(arrowstyle="<->", color="black", lw=1.3,
                                                                shrinkA=0, shrinkB=0))
    ax.annotate(f"one bin's gap |confidence − accuracy|\n= {abs(c - a):.3f}; ECE is the average gap,\n"
                "each bin weighted by its share of samples",
                xy=(c, (a + c) / 2), xytext=(0.70, 0.27), fontsize=9, ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#cccccc", lw=0.6),
                arrowprops=dict(arrowstyle="-", color="black", lw=0.8, connectionstyle="arc3,rad=0.25"))
    ax.set(xlabel="mean confidence in bin", ylabel="accuracy in bin")
    _unit_axes(ax, step=0.1)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, frameon=False, fontsize=9.5)
    return ax


def reliability_gaps(table: pd.DataFrame, *, ax: plt.Axes | None = None, sized: bool = False,
                     colour: str = OKABE_ITO["blue"]) -> plt.Axes:
    """One reliability table as a curve over the diagonal, each bin's gap to it a faint bar.

    Parameters
    ----------
    table : DataFrame
        The non-empty rows of :func:`calcas.reliability_table` (``count, mean_confidence,
        accuracy``).
    ax : matplotlib Axes, optional
        Drawn on a new 5.0 x 4.6 inch figure when None.
    sized : bool
        Size each bin's point by its share of the largest bin's count (else one size).
    colour : str

    Returns
    -------
    Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.6), dpi=INLINE_DPI)
    ax.plot([0, 1], [0, 1], color="#999999", ls=(0, (5, 4)), lw=1)
    ax.vlines(table["mean_confidence"], table["mean_confidence"], table["accuracy"], color=colour, alpha=0.3, lw=3)
    ax.plot(table["mean_confidence"], table["accuracy"], color=colour, lw=1.6)
    size = 260 * table["count"] / table["count"].max() if sized else 30
    ax.scatter(table["mean_confidence"], table["accuracy"], s=size, color=colour, zorder=3)
    ax.set(xlabel="mean confidence in bin", ylabel="accuracy in bin")
    _unit_axes(ax)
    ax.grid(alpha=0.3)
    return ax


def line_panels(panels: Mapping[str, pd.DataFrame], *, xlabel: str, ylabel: str, log_x: bool = False,
                zero_line: bool = False, width: float = 4.8) -> Figure:
    """Panels stacked one above the other, each drawing the columns of its DataFrame (one series
    each, styled by :func:`series_style` in column order) against the index; one legend below.

    Parameters
    ----------
    panels : mapping title -> DataFrame
        Index: the x values (sorted); columns: the series, the same in every panel.
    xlabel, ylabel : str
    log_x : bool
        A log-scaled x axis, ticked at the index values ("2k" for 2,000).
    zero_line : bool
        A grey line at y = 0 (biases, differences).
    width : float
        Inches; 4.8 is shown at its natural size in the book's column and scaled by less than a
        quarter on a phone.
    """
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, 1.0 + 2.6 * len(panels)), sharex=True, squeeze=False,
                             layout="constrained")
    for ax, (title, frame) in zip(axes[:, 0], panels.items()):
        for i, series in enumerate(frame.columns):
            style = series_style(series, i)
            ax.plot(frame.index, frame[series], marker=style["marker"], ls=style["ls"], color=style["color"],
                    lw=style["lw"], label=series)
        if zero_line:
            ax.axhline(0.0, color="#7a7a7a", lw=1)
        if log_x:
            ax.set_xscale("log")
            xs = list(frame.index)
            ax.set_xticks(xs, [f"{x / 1000:g}k" if x >= 1000 else f"{x:g}" for x in xs])
            ax.set_xlim(min(xs) / 1.5, max(xs) * 1.5)
            ax.minorticks_off()
        # every panel keeps its own x labels: a title under an unlabelled axis reads as its x label
        ax.tick_params(labelsize=11, labelbottom=True)
        ax.set_ylabel(ylabel, fontsize=11)
        ax.set_xlabel(xlabel, fontsize=11)
        ax.set_title(title, fontsize=11, fontweight="bold")
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), frameon=False, fontsize=11)
    return fig


def calibration_map_figure(maps: Any, *, width: float = COLUMN_INCHES) -> Figure:
    """Temperature scaling and Platt scaling as maps from the raw top-1 log-odds to the
    calibrated confidence, over the reliability points they were fitted on.

    Parameters
    ----------
    maps : calcas.lab.CalibrationMaps
        ``reliability`` (``mean_score, accuracy``: black points), ``platt`` and ``temperature``
        (``score, confidence``: the series "Platt scaling" and "temperature scaling", styled by
        :func:`series_style` as on every page), ``T``, ``a``, ``b``. The raw confidence ``sigmoid(s)`` is drawn
        as a grey dashed line: what the model says before either calibrator.
    width : float
        Inches (:data:`COLUMN_INCHES`: the book's column).

    Returns
    -------
    Figure
    """
    fig, ax = plt.subplots(figsize=(width, 0.62 * width), dpi=INLINE_DPI, layout="constrained")
    grid = maps.platt["score"].to_numpy()
    ax.plot(grid, 1.0 / (1.0 + np.exp(-grid)), color="#7a7a7a", ls=(0, (5, 4)), lw=1.2,
            label="raw confidence σ(s)")
    for i, (name, frame, label) in enumerate((
            ("temperature scaling", maps.temperature, f"temperature scaling, T = {maps.T:.2f} (mean per bin)"),
            ("Platt scaling", maps.platt,
             f"Platt scaling, σ({maps.a:.2f} s {'+' if maps.b >= 0 else '−'} {abs(maps.b):.2f})"))):
        style = series_style(name, i)
        ax.plot(frame["score"], frame["confidence"], color=style["color"], ls=style["ls"], lw=style["lw"] + 0.4,
                label=label)
    points = maps.reliability
    ax.scatter(points["mean_score"], points["accuracy"], s=34, color="#000000", zorder=3,
               label="accuracy in a bin of the cal half")
    ax.set(ylim=(0, 1.02), xlim=(grid.min(), float(points["mean_score"].max()) + 1.0))  # flat at 1 past the points
    ax.set_xlabel("raw top-1 log-odds s = log(c / (1 − c))", fontsize=11)
    ax.set_ylabel("confidence, or accuracy in bin", fontsize=11)
    ax.tick_params(labelsize=10.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", frameon=True, framealpha=0.9, fontsize=10.5)
    return fig


def scoring_rule_figure(curves: pd.DataFrame, p: float, *, labels: Mapping[str, str] | None = None,
                        width: float = COLUMN_INCHES) -> Figure:
    """The expected loss of each report q, less that of the truthful report q = p, per rule.

    A strictly proper rule's curve is 0 at q = p and above 0 everywhere else; a rule that is
    not proper dips below 0 somewhere: a false report beats the truth there.

    Parameters
    ----------
    curves : DataFrame
        ``rule, q, expected`` (:func:`calcas.lab.scoring_rule_curves` at ``p``); ``q = p`` must
        be on the grid of every rule.
    p : float
        The true probability, marked by a vertical line.
    labels : mapping rule -> str, optional
        Legend names (default the rule names).
    width : float

    Returns
    -------
    Figure
    """
    fig, ax = plt.subplots(figsize=(width, 0.55 * width), dpi=INLINE_DPI, layout="constrained")
    for i, (rule, frame) in enumerate(curves.groupby("rule", sort=False)):
        at_p = frame.loc[np.isclose(frame["q"], p), "expected"]
        if at_p.empty:
            raise ValueError(f"curves: q = {p} is not on the grid of rule {rule!r}")
        style = series_style(rule, i)
        ax.plot(frame["q"], frame["expected"] - float(at_p.iloc[0]), color=style["color"], ls=style["ls"],
                lw=style["lw"], label=(labels or {}).get(rule, rule))
    ax.axhline(0.0, color="#7a7a7a", lw=1)
    ax.axvline(p, color="#000000", lw=1, ls=":")
    ax.annotate(f"truth p = {p:g}", (p, 0.97), xycoords=("data", "axes fraction"), ha="right", va="top",
                xytext=(-4, 0), textcoords="offset points", fontsize=10.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(top=min(ax.get_ylim()[1], 0.6))
    ax.set_xlabel("reported probability q", fontsize=11)
    ax.set_ylabel("expected loss of q − that of p", fontsize=11)
    ax.tick_params(labelsize=10.5)
    ax.grid(alpha=0.3)
    # under the axes (inside them it covered the NLL curve), as line_panels places its legend
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False, fontsize=10.5)
    return fig


def paired_points(panels: Mapping[str, Sequence[tuple[str, float, ...]]], *, labels: Sequence[str], ylabel: str,
                  width: float = COLUMN_INCHES) -> Figure:
    """One panel per group (stacked), one column per item, one marker per value: e.g. a model's
    ECE with no calibration, with the source's calibrator and refitted, side by side.

    Parameters
    ----------
    panels : dict title -> list of (item, value_0, value_1, ...)
        The values of each item, in the order of ``labels``.
    labels : sequence of str
        The legend name of each value (styled by :func:`series_style`).
    ylabel : str
    width : float
        Figure width in inches.

    Returns
    -------
    Figure
    """
    heights = [2.3 for _ in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, sum(heights) + 0.9 * len(panels)), dpi=INLINE_DPI,
                             squeeze=False)
    for ax, (title, rows) in zip(axes[:, 0], panels.items()):
        x = np.arange(len(rows))
        for k, label in enumerate(labels):
            style = series_style(label, k)
            ax.scatter(x + (k - (len(labels) - 1) / 2) * 0.18, [r[1 + k] for r in rows], s=26, color=style["color"],
                       marker=style["marker"], label=label, zorder=3)
        ax.set_xticks(x, [r[0] for r in rows], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(_wrap(title, _title_chars(width)), fontsize=9.5)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
