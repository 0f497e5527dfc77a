"""The glossary (book/glossary.md) defines the book's terms, and the built pages link them.

- every term issue 22 lists has an entry in the glossary's source;
- in the built book (``_build/html`` or ``$CALCAS_BOOK_HTML``; skipped when it is not built,
  failed then with ``CALCAS_REQUIRE_BOOK=1``), every page whose prose uses one of the terms the
  issue names (in paragraphs, list items, definitions and captions; code, math and tables
  aside) links it to its glossary entry, and the glossary has an anchor for every entry.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GLOSSARY = ROOT / "book" / "glossary.md"
HTML = Path(os.environ.get("CALCAS_BOOK_HTML", ROOT / "_build" / "html"))
NOT_PAGES = ("_static", "_sources", "_images", "_downloads")

#: The terms the issue names, each with the words that mean it on a page.
LINKED = {"Spearman monotonicity": r"(?i)\bmonotonicity\b|bin accuracy (against|with) bin confidence",
          "Wilson interval": r"\bWilson\b",
          "paired bootstrap": r"\bpaired (percentile )?bootstrap", "detectable ECE": r"\bdetectable ECE\b",
          "Learn-then-Test": r"\bLearn-then-Test\b", "NLL": r"\bNLL\b",
          "proper scoring rule": r"\bproper scoring rules?\b", "Platt scaling": r"\bPlatt\b"}
#: Every term the glossary must define.
DEFINED = set(LINKED) | {"ECE", "plug-in ECE", "debiased ECE", "reliability diagram", "temperature scaling",
                         "Brier score", "fixed-sequence testing", "cascade", "CC", "UC", "RC", "K",
                         "Confident Learning", "max_drop", "δ"}


def _source_terms() -> set[str]:
    """The terms of the glossary directive: its unindented lines."""
    body = re.search(r"^```\{glossary\}\n(.*?)^```$", GLOSSARY.read_text(), re.M | re.S)
    assert body, "book/glossary.md has no {glossary} directive"
    return {line.strip() for line in body.group(1).splitlines() if line.strip() and not line[0].isspace()}


def test_the_glossary_defines_every_term():
    missing = DEFINED - _source_terms()
    assert not missing, f"book/glossary.md does not define {sorted(missing)}"


def _soup(path: Path):
    bs4 = pytest.importorskip("bs4")
    return bs4.BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _entries(glossary) -> dict[str, set[str]]:
    """Glossary term (lower case) -> the anchors of its entry (one per term of the entry)."""
    entries, group = {}, []
    for dl in glossary.select("dl.glossary"):
        for child in dl.find_all(["dt", "dd"], recursive=False):
            if child.name == "dt":
                group.append(child)
                continue
            ids = {dt.get("id") for dt in group if dt.get("id")}
            for dt in group:
                for anchor in dt.select("a.headerlink"):  # the "#" link beside the term
                    anchor.decompose()
                entries[dt.get_text(" ", strip=True).lower()] = ids
            group = []
    return entries


def _prose(page) -> str:
    main = page.select_one("main") or page
    for tag in main.select("pre, code, table, .math, mjx-container, script, style, .toctree-wrapper"):
        tag.decompose()
    return "\n".join(el.get_text(" ", strip=True) for el in main.select("p, li, dd, figcaption"))


def test_built_pages_link_the_terms_they_use():
    if not (HTML / "book" / "glossary.html").is_file():
        if os.environ.get("CALCAS_REQUIRE_BOOK") == "1":
            pytest.fail(f"no built glossary in {HTML}: run `make book` first")
        pytest.skip("the book is not built (or was built without the glossary)")
    entries = _entries(_soup(HTML / "book" / "glossary.html"))
    for term in LINKED:
        assert entries.get(term.lower()), f"glossary.html has no anchor for {term!r}"
    unlinked, checked = [], 0
    for path in sorted(HTML.rglob("*.html")):
        rel = path.relative_to(HTML)
        if rel.parts[0] in NOT_PAGES or rel.name in ("genindex.html", "search.html", "index.html", "glossary.html"):
            continue
        page = _soup(path)
        hrefs = {a["href"].rsplit("glossary.html", 1)[-1] for a in page.select("a[href*='glossary.html#']")}
        text = _prose(page)
        for term, words in LINKED.items():
            if re.search(words, text):
                checked += 1
                if not {f"#{i}" for i in entries[term.lower()]} & hrefs:
                    unlinked.append(f"{rel}: uses {term!r} without a link to the glossary")
    assert checked, "no built page uses any of the terms"
    assert not unlinked, "\n".join(unlinked)


def test_the_glossarys_numbers_are_calcas_defaults():
    """The numbers a definition states: the detectable ECE's level and power are
    min_detectable_ece's defaults, and the debiased ECE's share of the plug-in's bias at
    perfect calibration is 2 - sqrt(2) (the lab measures it)."""
    import inspect
    import math

    from calcas.metrics import min_detectable_ece
    text = " ".join(GLOSSARY.read_text().split())
    defaults = inspect.signature(min_detectable_ece).parameters
    level, power = defaults["level"].default, defaults["power"].default
    assert f"{level:.0%} quantile under perfect calibration with probability {power:g}" in text
    assert f"about {2 - math.sqrt(2):.0%} of the plug-in's bias" in text
