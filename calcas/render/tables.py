"""Tables and prose as the book shows them: :func:`styled` formats a DataFrame for a page,
:func:`show_prose` displays a chapter's generated Markdown, marked so tests can find it.

A table fits its column: at a desktop width (the book's text column is about 690 px at
1280 px) it is compact, and on a phone (:data:`TABLE_CSS`, under 640 px) each row becomes a
block of "header: value" lines, so a reader sees values, never only row labels. For that every
value cell carries its column's header as ``data-label``.
"""
from __future__ import annotations

import html
import math
import re
from typing import Any, Mapping

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

__all__ = ["styled", "show_prose", "MISSING", "TABLE_CSS"]

MISSING = "—"

#: The layout of ``table.calcas-table`` (the book serves it as ``_static/vendored/calcas-tables.css``,
#: the own-data report page inlines it). Wide screens: compact cells whose text may wrap, so a
#: table is as wide as its column at most. Narrow screens: one block per row, each value under
#: its row label with its header (``data-label``) on the left.
TABLE_CSS = """
table.calcas-table { border-collapse: collapse; font-size: 0.88rem; line-height: 1.3; max-width: 100%; margin: 0.6em 0; }
table.calcas-table th, table.calcas-table td { padding: 0.2em 0.5em; vertical-align: top; }
table.calcas-table thead th { vertical-align: bottom; }
table.calcas-table td { font-variant-numeric: tabular-nums; text-align: right; }
table.calcas-table tbody th { text-align: left; }
@media (max-width: 640px) {
  table.calcas-table, table.calcas-table tbody, table.calcas-table tr,
  table.calcas-table th, table.calcas-table td { display: block; width: 100%; box-sizing: border-box; }
  table.calcas-table thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  table.calcas-table tbody tr { border-top: 1px solid #bbb; padding: 0.25em 0; }
  table.calcas-table tbody th { font-weight: 600; padding: 0.15em 0.3em; }
  table.calcas-table td { display: flex; justify-content: space-between; gap: 1em; padding: 0.1em 0.3em; }
  table.calcas-table td::before { content: attr(data-label); text-align: left; color: #555; }
}
"""

_DATA_CELL = re.compile(r'(<td id="[^"]*" class="data row\d+ col(\d+)")')


class _LabelledStyler(Styler):
    """A Styler whose value cells carry their column's header as ``data-label`` (what
    :data:`TABLE_CSS` shows beside each value on a narrow screen)."""

    def to_html(self, buf: Any = None, **kwargs: Any) -> str | None:
        # every row names all its labels: on a narrow screen each row is a block of its own, and a
        # label spanning rows would name only the first of them
        kwargs.setdefault("sparse_index", False)
        text = super().to_html(**kwargs)
        labels = [" ".join(str(level) for level in c if str(level) != "") if isinstance(c, tuple) else str(c)
                  for c in self.data.columns]
        text = _DATA_CELL.sub(lambda m: f'{m.group(1)} data-label="{html.escape(labels[int(m.group(2))])}"', text)
        if buf is None:
            return text
        if hasattr(buf, "write"):
            buf.write(text)
        else:
            with open(buf, "w", encoding="utf-8") as f:
                f.write(text)
        return None


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

    - every value cell carries its column's header as ``data-label`` (levels of a MultiIndex
      header joined by spaces), for the narrow-screen layout of :data:`TABLE_CSS`.

    Works on MultiIndex rows and columns. Returns a :class:`pandas.io.formats.style.Styler`
    (its ``to_html()`` is what a notebook displays), with the CSS class ``calcas-table``.
    """
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    styler = _LabelledStyler(df)
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


def show_tables(frames: Mapping[str, pd.DataFrame], *, digits: int = 4) -> None:
    """Display several tables, each under its name in bold (e.g. one per data set), styled as
    :func:`styled`."""
    from IPython.display import Markdown, display
    for name, frame in frames.items():
        display(Markdown(f"**{name}**"))
        display(styled(frame, digits=digits))
