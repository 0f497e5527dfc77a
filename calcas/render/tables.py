"""Tables and prose as the book shows them: :func:`styled` formats a DataFrame for a page,
:func:`show_prose` displays a chapter's generated Markdown, marked so tests can find it."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["styled", "show_prose", "MISSING"]

MISSING = "—"


def _integral(values: pd.Series) -> bool:
    v = pd.to_numeric(values, errors="coerce").dropna()
    v = v[np.isfinite(v)]
    return len(v) > 0 and bool(np.all(v == np.round(v))) and bool(np.all(np.abs(v) < 2 ** 53))


def _float_formatter(values: pd.Series, digits: int):
    """The format of a float column. A column of values in [-1, 1] (probabilities,
    accuracies, ECEs) gets ``digits`` decimals throughout, so its figures line up; any other
    gets ``digits`` significant digits per value, with thousands separators. Non-zero values
    that fixed decimals would show as zero get 3 significant digits (``1.2e-05``)."""
    v = pd.to_numeric(values, errors="coerce")
    finite = np.abs(v[np.isfinite(v)])
    unit = bool(len(finite)) and float(finite.max()) <= 1.0
    tiny = 0.5 * 10.0 ** -digits

    def fmt(x: Any) -> str:
        if x is None or x is pd.NA or (isinstance(x, (float, np.floating)) and math.isnan(x)):
            return MISSING
        x = float(x)
        if not math.isfinite(x):
            return "∞" if x > 0 else "−∞"
        if x != 0 and abs(x) < tiny:
            return f"{x:.3g}"
        if unit or abs(x) < 1:
            return f"{x:.{digits}f}"
        decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
        return f"{x:,.{decimals}f}"
    return fmt


def _cell(x: Any) -> str:
    if x is None or x is pd.NA or x is pd.NaT or (isinstance(x, (float, np.floating)) and math.isnan(x)):
        return MISSING
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        return f"{int(x):,}" if float(x).is_integer() else f"{float(x):.4g}"
    return str(x)


def styled(df: pd.DataFrame, *, digits: int = 4) -> pd.io.formats.style.Styler:
    """The Styler the book prints a table with: readable numbers, "—" for missing values.

    - integer columns, and float columns whose values are all whole numbers (counts that
      became floats next to a NaN), print as integers with thousands separators: ``12,500``;
    - other float columns get one format per column: ``digits`` decimals when every value is
      below 1 (probabilities, accuracies, ECEs: ``0.4335``), ``digits`` significant digits
      otherwise (``12.35``, ``1,235``), and 3 significant digits for columns of tiny values
      (``1.2e-05``);
    - NaN, None and NA print as "—" (cells, and index values), booleans as yes / no;
    - no index or column-axis names above the table, and no index at all when it is the
      default 0..n-1 ``RangeIndex``;
    - text in cells, row labels and column headers is HTML-escaped: a model named
      ``<img src=x onerror=...>`` shows as those characters, never as markup.

    Works on MultiIndex rows and columns. Returns a :class:`pandas.io.formats.style.Styler`
    (its ``to_html()`` is what a notebook displays), with the CSS class ``calcas-table``.
    """
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    styler = df.style
    for j, col in enumerate(df.columns):
        values = df.iloc[:, j]
        if pd.api.types.is_float_dtype(values) and not _integral(values):
            fmt = _float_formatter(values, digits)
        else:  # integers, whole-number floats (counts next to a NaN), booleans, text
            fmt = _cell
        styler = styler.format(fmt, subset=pd.IndexSlice[:, [col]], escape="html")
    # names, ids and column headers come from the user's files: text, never markup
    styler = styler.format_index(_cell, axis=0, escape="html").format_index(_cell, axis=1, escape="html")
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1 \
            and df.index.name is None:
        styler = styler.hide(axis="index")
    styler = styler.hide(axis="index", names=True).hide(axis="columns", names=True)
    return styler.set_table_attributes('class="calcas-table"')


def show_prose(markdown: str) -> None:
    """Display a chapter's generated sentences as Markdown, marked so tests can find them."""
    from IPython.display import Markdown, display
    display(Markdown(markdown), metadata={"calcas": "prose"})
