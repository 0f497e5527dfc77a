"""Static figures (seaborn / matplotlib) for the book: the paper's Fig. 1 (reliability
diagrams), Fig. 2/3 (cascade curves) and Fig. 4 (precision against detection rate).

Each function draws tables computed by calcas onto a matplotlib Axes and returns it; no
number is computed here.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

_CASCADE_STYLE = {"RC": dict(ls="--", color="0.5"), "UC": dict(color="tab:orange"),
                  "CC": dict(color="tab:blue", lw=2.2), "oracle": dict(ls=":", color="tab:green")}


def _axes(ax: plt.Axes | None) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4))
    return ax


def reliability_diagram(tables: dict[str, pd.DataFrame], *, ax: plt.Axes | None = None,
                        title: str = "") -> plt.Axes:
    """Accuracy against mean confidence per bin, one line per table, with the diagonal.

    Parameters
    ----------
    tables : dict name -> DataFrame from :func:`calcas.reliability_table`
        E.g. ``{"uncalibrated": ..., "calibrated": ...}``; the first is drawn light.
    """
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, zorder=0)
    palette = sns.color_palette("Blues", n_colors=len(tables) + 1)[1:]
    for (name, table), color in zip(tables.items(), palette):
        full = table[table["count"] > 0]
        ax.plot(full["mean_confidence"], full["accuracy"], marker="o", ms=3.5, color=color, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean confidence in bin", ylabel="accuracy in bin", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax


def cascade_plot(curves: pd.DataFrame, *, ax: plt.Axes | None = None, title: str = "",
                 highlight_K: int | None = None) -> plt.Axes:
    """Cascade accuracy against the share p answered by the first model (Fig. 2/3).

    Parameters
    ----------
    curves : DataFrame from :func:`calcas.cascade_curves` (columns method, K, p_small, accuracy).
    highlight_K : int, optional
        Mark CC's operating point at this K.
    """
    ax = _axes(ax)
    for method, style in _CASCADE_STYLE.items():
        part = curves[curves["method"] == method].sort_values("p_small")
        if len(part):
            ax.plot(part["p_small"], part["accuracy"], marker="." if method in ("UC", "CC") else None,
                    label=method, **style)
    if highlight_K is not None:
        row = curves[(curves["method"] == "CC") & (curves["K"] == highlight_K)]
        ax.scatter(row["p_small"], row["accuracy"], s=70, facecolors="none", edgecolors="k", zorder=5,
                   label=f"CC at K={highlight_K}")
    ax.set(xlabel="p: share answered by the first model", ylabel="accuracy", title=title, xlim=(-0.02, 1.02))
    ax.legend(fontsize=8, frameon=False)
    return ax


def cleaning_plot(sweeps: dict[str, pd.DataFrame], points: dict[str, tuple[float, float]] | None = None,
                  *, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Precision against detection rate (Fig. 4): method-2 sweeps as lines, single operating
    points (method 1, method 3, Confident Learning) as markers.

    Parameters
    ----------
    sweeps : dict name -> DataFrame from :func:`calcas.cleaning_sweep`
    points : dict name -> (detection_rate, precision)
    """
    ax = _axes(ax)
    for name, sweep in sweeps.items():
        ax.plot(sweep["detection_rate"], sweep["precision"], marker="o", ms=3, label=name)
    for (name, (rate, prec)), marker in zip((points or {}).items(), "s^Dv"):
        ax.scatter([rate], [prec], marker=marker, s=50, zorder=5, label=name)
    ax.set(xlabel="detection rate (flagged / all)", ylabel="precision (truly mislabeled / flagged)",
           title=title, ylim=(0, 1.02))
    ax.legend(fontsize=8, frameon=False)
    return ax
