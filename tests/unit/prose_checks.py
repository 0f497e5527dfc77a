"""Checks every chapter's prose must pass, shared by the chapters' tests.

- :func:`assert_prose_numbers_from`: every number in a text is a formatting of a number of its
  facts (or the paper's reference file), or the length of one of their lists, apart from
  citations (Table 3, §2.1, Figure 3).
- :func:`assert_names_from`: every name a text mentions from a list of names that could appear
  (models, data sets, figures of the paper) is one its facts hold.
"""
from __future__ import annotations

import re

import numpy as np


def _numbers(obj) -> list[float]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, (list, tuple)):  # a list's length is a count the facts hold ("3 of 6 models")
        return [float(len(obj))] + [x for v in obj for x in _numbers(v)]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return []
    return [float(obj)]


_CITED = re.compile(r"(Fig(?:ure)?s?\.?|Tables?|§|Algorithm)\s*[\d./()a-f, –-]+")
_NUMBER = re.compile(r"(?<![\w.\-−])[+\-−]?\d[\d,]*(?:\.\d+)?%?(?![\w])")


def assert_prose_numbers_from(text: str, *sources: dict) -> None:
    """Every number in ``text`` is a formatting of a number of ``sources`` (as shown: same
    digits, percentages as x100, thousands separators), apart from citations (Table 3, §2.1)."""
    pool = np.array([x for s in sources for x in _numbers(s) if np.isfinite(x)])
    body = _CITED.sub(" ", text.replace("95%", " "))
    for token in _NUMBER.findall(body):
        t = token.replace(",", "").replace("−", "-")
        pct = t.endswith("%")
        value = float(t.rstrip("%"))
        digits = len(t.rstrip("%").split(".")[1]) if "." in t else 0
        candidates = pool * 100 if pct else pool
        tol = 0.5 * 10 ** -digits + 1e-9
        ok = np.any(np.abs(candidates - value) <= tol) or np.any(np.abs(np.abs(candidates) - abs(value)) <= tol)
        assert ok, f"the number {token!r} in the prose is in no result: {text[:300]}..."


def _strings(obj) -> set[str]:
    if isinstance(obj, dict):
        return {s for k, v in obj.items() for s in ({str(k)} | _strings(v))}
    if isinstance(obj, (list, tuple)):
        return {s for v in obj for s in _strings(v)}
    return {obj} if isinstance(obj, str) else set()


def assert_names_from(text: str, facts: dict, candidates: list[str]) -> None:
    """No name of ``candidates`` (model, data-set and figure names that could appear) is in
    ``text`` unless some string of ``facts`` holds it."""
    held = " | ".join(_strings(facts))
    for name in candidates:
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
            assert name in held, f"the prose names {name!r}, which its facts do not hold: {text[:300]}..."
