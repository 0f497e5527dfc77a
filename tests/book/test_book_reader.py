"""The built book as a reader sees it, at a desktop (1280 px) and a phone (390 px) width.

Every page of ``_build/html`` (or ``$CALCAS_BOOK_HTML``; every ``*.html`` but Sphinx's
``genindex`` and ``search``, the asset folders and the root ``index.html`` redirect) is
opened in the system's Chromium through Playwright (the set-up of ``test_book_browser``: no
browser download, no request outside the book) and checked for what the reader would notice:

- every page has a ``<title>`` of its own;
- the page never needs sideways scrolling (``scrollWidth <= clientWidth + 1``), at both widths:
  wide equations, tables and code scroll inside their own box instead;
- at 1280 px no content image (``naturalWidth >= 100``) is shown at under 55% of its natural
  width: a figure must be drawn for the column, not shrunk into it;
- no table cell reads exactly ``nan``, ``NaN`` or ``None`` (a missing value is shown as "—");
- every explorer's chart (``.calcas-explorer svg``) fits its container, at both widths;
- no content runs off-screen at either width unless it is inside a box that scrolls sideways
  (a clipping ancestor would hide it without making the page scroll);
- every table (the notebooks' and the Markdown pages', those inside closed solutions too) fits
  the column at 1280 px: no table needs its box scrolled sideways to show a column, and none
  spreads an estimate over "95% low" / "95% high" columns;
- at 390 px every table shows at least one value cell without scrolling (calcas's tables turn
  into one block per row there; a table that showed only its row labels would hide the numbers
  it exists for).

One test per page collects all of that page's failures into one message. Without a built book
the tests skip, or fail when ``CALCAS_REQUIRE_BOOK=1``. ``CALCAS_SCREENSHOTS=<folder>`` saves a
full-page PNG of each page at each width (``<page>_<width>.png``).
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from test_book_browser import ALL_DRAWN, CHROMIUM, CHROMIUM_ARGS, HTML, NOT_PAGES, _book, _Quiet

WIDTHS = (1280, 390)
MIN_SHOWN = 0.55          # of an image's natural width, at 1280 px
MIN_NATURAL = 100         # smaller images are icons, not figures
BAD_CELLS = ("nan", "NaN", "None")
SKIP_PAGES = ("genindex.html", "search.html")

# Everything measured in the page, in one round trip.
MEASURE = """() => {
  const doc = document.documentElement;
  const main = ['article.bd-article', 'article', '[role=main]', 'main'].map(q => document.querySelector(q))
    .find(el => el) || document.body;
  const images = Array.from(main.querySelectorAll('img')).map(img => ({
    src: (img.getAttribute('src') || '').slice(-80), natural: img.naturalWidth,
    shown: img.getBoundingClientRect().width, complete: img.complete}));
  const cells = Array.from(document.querySelectorAll('td, th'))
    .map(c => c.textContent.trim()).filter(t => %s.includes(t));
  const charts = Array.from(document.querySelectorAll('.calcas-explorer')).map((el, i) => {
    const svg = el.querySelector('svg');
    const box = el.parentElement || el;
    const style = getComputedStyle(box);
    const inner = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    if (!svg) return {index: i, drawn: false, text: el.textContent.slice(0, 120)};
    const r = svg.getBoundingClientRect(), b = box.getBoundingClientRect();
    return {index: i, drawn: true, svg: r.width, container: inner,
            right: r.right, containerRight: b.right - parseFloat(style.paddingRight)};
  });
  // content that runs off-screen: past the viewport's edge, and not inside a box that scrolls
  // sideways on purpose (overflow-x auto / scroll). A clipping ancestor hides it from the
  // reader without any page scrolling, so this is checked on its own.
  const off = [];
  const view = doc.clientWidth;
  const walker = main.querySelectorAll('*');
  for (const el of walker) {
    if (off.length >= 8) break;
    if (el.closest('mjx-assistive-mml, .visually-hidden, .sr-only')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || (r.right <= view + 1 && r.left >= -1)) continue;
    if (getComputedStyle(el).visibility === 'hidden') continue;
    let scrolls = false;
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll') { scrolls = true; break; }
    }
    if (scrolls) continue;
    // report the outermost offender only: skip elements inside one already reported
    if (off.some(o => o.el.contains(el))) continue;
    const cls = typeof el.className === 'string' && el.className.trim()
      ? '.' + el.className.trim().split(/\\s+/).slice(0, 2).join('.') : '';
    off.push({el, what: el.tagName.toLowerCase() + cls + ' [' + Math.round(r.left) + '..' + Math.round(r.right)
              + '] ' + JSON.stringify(el.textContent.trim().replace(/\\s+/g, ' ').slice(0, 60))});
  }
  return {title: document.title, scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth,
          images, cells, charts, off: off.map(o => o.what)};
}""" % (list(BAD_CELLS),)
IMAGES_LOADED = """() => Array.from(document.images).every(img => img.complete)"""
# Every table, with hidden solutions opened first: does it make a box (or the page) scroll
# sideways, and how many of its value cells (non-empty <td>) can be read without scrolling?
TABLES = """() => {
  document.querySelectorAll('details:not(:has(.vega-actions))').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  const out = [];
  for (const t of document.querySelectorAll('table')) {
    if (t.parentElement.closest('table')) continue;
    const r = t.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    let box = null;
    for (let el = t.parentElement; el && el !== document.documentElement; el = el.parentElement) {
      const o = getComputedStyle(el).overflowX;
      if (['auto', 'scroll', 'hidden', 'clip'].includes(o) && el.scrollWidth > el.clientWidth + 1) {
        box = el; break;
      }
    }
    const edge = box ? box.getBoundingClientRect() : {left: 0, right: document.documentElement.clientWidth};
    const values = Array.from(t.querySelectorAll('td'))
      .filter(td => td.textContent.trim() !== '' && td.getBoundingClientRect().width > 0);
    const readable = values.filter(td => {
      const q = td.getBoundingClientRect();
      return q.left >= edge.left - 1 && q.right <= edge.right + 1;
    });
    const head = Array.from(t.querySelectorAll('thead th')).map(th => th.textContent.trim())
      .filter(Boolean).join(' | ');
    out.push({head: head.slice(0, 100), width: Math.round(r.width),
              scrolls: box !== null || r.right > document.documentElement.clientWidth + 1,
              boxWidth: box ? box.clientWidth : null, values: values.length, readable: readable.length});
  }
  return out;
}"""


def _redirect(path: Path) -> bool:
    """Jupyter Book's root ``index.html`` is one ``<meta http-equiv="Refresh">`` line to the
    first page, not a page of its own."""
    head = path.read_text(errors="replace")[:500].lower()
    return 'http-equiv="refresh"' in head and "<body" not in head


def _pages() -> list[str]:
    if not (HTML / "index.html").is_file():
        return []
    return sorted(p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
                  if p.relative_to(HTML).parts[0] not in NOT_PAGES and p.name not in SKIP_PAGES
                  and not _redirect(p))


PAGES = _pages()


@pytest.fixture(scope="module")
def reader():
    """A function ``read(rel) -> {width: measurements}``, one browser for the whole module."""
    html = _book()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    handler = functools.partial(_Quiet, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_port}/"
    shots = Path(os.environ["CALCAS_SCREENSHOTS"]) if os.environ.get("CALCAS_SCREENSHOTS") else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)

    def route(r):
        target = r.request.url
        if target.startswith(origin) or urlsplit(target).scheme in ("data", "blob"):
            return r.continue_()
        return r.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        contexts = {w: browser.new_context(viewport={"width": w, "height": 900}, service_workers="block")
                    for w in WIDTHS}

        def read(rel: str) -> dict[int, dict]:
            out = {}
            for width, context in contexts.items():
                page = context.new_page()
                try:
                    page.route("**/*", route)
                    page.goto(origin + rel, wait_until="networkidle")
                    for condition in (IMAGES_LOADED, ALL_DRAWN):
                        try:
                            page.wait_for_function(condition, timeout=20_000)
                        except PlaywrightTimeout:  # reported by the measurements
                            pass
                    page.wait_for_timeout(300)  # explorers fit themselves to the column once drawn
                    # MathJax typesets after load: measure what the reader ends up with
                    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise"
                                  " ? MathJax.startup.promise.then(() => true) : true")
                    out[width] = page.evaluate(MEASURE)
                    out[width]["tables"] = page.evaluate(TABLES)  # last: it opens the solutions
                    if shots is not None:
                        name = re.sub(r"[^A-Za-z0-9]+", "_", rel.removesuffix(".html")).strip("_")
                        page.screenshot(path=str(shots / f"{name}_{width}.png"), full_page=True)
                finally:
                    page.close()
            return out

        try:
            yield read
        finally:
            browser.close()
            server.shutdown()
            server.server_close()


def _problems(seen: dict[int, dict]) -> list[str]:
    problems = []
    for width, m in seen.items():
        if m["scrollWidth"] > m["clientWidth"] + 1:
            problems.append(f"{width} px: the page scrolls sideways (scrollWidth {m['scrollWidth']} > "
                            f"clientWidth {m['clientWidth']})")
        for what in m["off"]:
            problems.append(f"{width} px: runs off-screen (not in a box that scrolls): {what}")
        if m["cells"]:
            problems.append(f"{width} px: table cells reading {sorted(set(m['cells']))} "
                            f"({len(m['cells'])} cells)")
        for c in m["charts"]:
            if not c["drawn"]:
                problems.append(f"{width} px: explorer {c['index']} did not draw: {c['text']!r}")
            elif c["svg"] > c["container"] + 1 or c["right"] > c["containerRight"] + 1:
                problems.append(f"{width} px: explorer {c['index']}'s chart is {c['svg']:.0f} px wide "
                                f"(right edge {c['right']:.0f}), its container {c['container']:.0f} px "
                                f"(right edge {c['containerRight']:.0f})")
        problems += table_problems(width, m["tables"])
        if width == max(seen):
            for img in m["images"]:
                if not img["complete"] or img["natural"] == 0:
                    problems.append(f"{width} px: image {img['src']} did not load")
                elif img["natural"] >= MIN_NATURAL and img["shown"] < MIN_SHOWN * img["natural"]:
                    problems.append(f"{width} px: image {img['src']} shown at {img['shown']:.0f} px, "
                                    f"{img['shown'] / img['natural']:.0%} of its {img['natural']} px "
                                    f"(at least {MIN_SHOWN:.0%}): draw it for the column")
    return problems


def table_problems(width: int, tables: list[dict]) -> list[str]:
    """At 1280 px (or wider) a table that scrolls sideways, or one that spreads an estimate over
    columns ("95% low", "95% high": one cell per estimate, "0.262 [0.250, 0.274]"); at a phone's
    width one whose value cells cannot be read without scrolling."""
    problems = []
    for t in tables:
        if width >= 1280 and re.search(r"95% (low|high)", t["head"]):
            problems.append(f"{width} px: a table spreads an estimate over columns: {t['head']!r}")
        if width >= 1280 and t["scrolls"]:
            problems.append(f"{width} px: a table scrolls sideways ({t['width']} px wide in a "
                            f"{t['boxWidth'] or 'page'} px box): {t['head']!r}")
        elif width < 1280 and t["values"] and not t["readable"]:
            problems.append(f"{width} px: a table shows none of its {t['values']} values without "
                            f"scrolling: {t['head']!r}")
    return problems


@pytest.fixture(scope="module")
def seen(reader) -> dict[str, dict[int, dict]]:
    """Measurements of every page, filled as the per-page tests run (titles are compared across)."""
    return {}


@pytest.mark.parametrize("rel", PAGES or ["<no built book>"])
def test_page_reads_well(reader, seen, rel):
    seen[rel] = reader(rel)
    problems = _problems(seen[rel])
    if problems:
        pytest.fail(f"{rel}:\n  " + "\n  ".join(problems), pytrace=False)


def test_titles_are_unique(reader, seen):
    assert PAGES, "the built book has no pages"
    titles = {}
    for rel in PAGES:
        if rel not in seen:
            seen[rel] = reader(rel)
        titles.setdefault(seen[rel][WIDTHS[0]]["title"].strip(), []).append(rel)
    shared = {t: pages for t, pages in titles.items() if len(pages) > 1}
    assert not shared, f"pages sharing a <title>: {shared}"
    assert "" not in titles, f"pages without a <title>: {titles.get('')}"
