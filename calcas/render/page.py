"""A self-contained HTML page outside the book (the own-data report): figures as inline PNG,
tables through :func:`calcas.render.tables.styled`, Markdown prose, explorers, and the Vega
scripts copied beside the page so it opens from disk with no network. Knows no chapter."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .book import VENDOR_URL, copy_vega, ensure_node_packages
from .tables import TABLE_CSS, styled

__all__ = ["figure_html", "markdown_html", "table_html", "page_html", "copy_scripts"]

_PAGE_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 0 auto; padding: 1rem; line-height: 1.45;
       color: #1a1a1a; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
.table-wrap { overflow-x: auto; margin: 0.8rem 0; }
thead th { background: #f2f2f2; } tr:nth-child(even) td { background: #fafafa; }
img.figure { max-width: 100%; height: auto; }
.note { color: #444; font-size: 0.95rem; }
.calcas-explorer .chart-wrapper { display: flex; flex-direction: column; align-items: flex-start; }
.calcas-explorer .chart-wrapper > .vega-bindings { order: -1; }
"""


def figure_html(fig: Any, alt_text: str) -> str:
    """A matplotlib figure as an inline PNG ``<img>`` (the figure is closed)."""
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="figure" alt="{html.escape(alt_text)}" src="data:image/png;base64,{data}">'


def markdown_html(text: str) -> str:
    """CommonMark to HTML (markdown-it-py) with raw HTML disabled: the prose quotes names from the
    user's files, so any markup in it is shown as text."""
    from markdown_it import MarkdownIt
    return MarkdownIt("commonmark", {"html": False}).render(text)


def table_html(df: pd.DataFrame) -> str:
    """A table as the book styles it, in a wrapper that scrolls sideways when it must."""
    return f'<div class="table-wrap">{styled(df).to_html()}</div>'


def page_html(title: str, blocks: Sequence[str]) -> str:
    """The whole page: ``blocks`` (HTML) in order under a title."""
    # data-content_root tells calcas.render.interactive's loader where _static/vendored/ is: beside this page
    return (f'<!DOCTYPE html>\n<html lang="en" data-content_root="./">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_PAGE_CSS}{TABLE_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(blocks) + "\n</body>\n</html>\n")


def copy_scripts(out: Path, root: Path | None = None) -> None:
    """Vega, Vega-Lite and vega-embed into ``out/_static/vendored/`` from the pinned node packages
    (of the repository at ``root``, by default the one this file is in)."""
    root = root or Path(__file__).resolve().parents[2]
    try:
        modules = ensure_node_packages(root)
    except (RuntimeError, FileNotFoundError) as err:
        raise RuntimeError(f"report: the page's charts need Vega from the pinned node packages ({err}); "
                           f"run `npm ci` in {root}") from None
    copy_vega(modules, out / VENDOR_URL)
