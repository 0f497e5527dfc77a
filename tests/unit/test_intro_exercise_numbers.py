"""The numbers the introduction's static solutions print in prose are the ones calcas computes:
book/intro.md is Markdown, not a notebook, so nothing else would notice if they drifted."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import calcas

INTRO = Path(__file__).resolve().parents[2] / "book" / "intro.md"


def _block(kind: str, label: str) -> str:
    """The body of the ``{exercise}`` with ``label`` (kind "exercise") or of its solution."""
    text = INTRO.read_text()
    if kind == "exercise":
        start = text.rindex("{exercise}", 0, text.index(f":label: {label}\n"))
    else:
        start = text.index(f"{{solution}} {label}\n")
    return text[start:text.index("\n````\n", start)]


def _int(s: str) -> int:
    return int(s.replace("{,}", "").replace(",", ""))


def test_equal_count_exercise_numbers_are_what_calcas_computes():
    exercise = _block("exercise", "ex-intro-equal-count")
    solution = _block("solution", "ex-intro-equal-count")
    prose = solution.split("```python")[0]
    # the exercise names the data the solution's code uses
    call = 'calcas.make_synthetic(3000, accuracy=[0.95], confidence_scale=[1.0],\nnames=["m"], seed=2)'
    assert call in exercise
    assert 'calcas.make_synthetic(3000, accuracy=[0.95], confidence_scale=[1.0], names=["m"], seed=2)' in solution

    r = calcas.make_synthetic(3000, accuracy=[0.95], confidence_scale=[1.0], names=["m"], seed=2)["m"]
    conf = calcas.max_prob_confidence(r.logits)[0]
    # independent references: numpy's histogram for equal-width, np.array_split of the sorted rows for equal-count
    width = np.histogram(conf, bins=np.linspace(0, 1, 16))[0]
    count = np.array([len(g) for g in np.array_split(np.argsort(conf, kind="stable"), 15)])
    assert np.array_equal(count, calcas.reliability_table(conf, r.verified, 15)["count"].to_numpy())

    last = re.search(r"holds ([\d,]+) of the ([\d,]+) answers \((\d+)%\)", prose)
    assert last, prose
    assert _int(last.group(1)) == width[-1] and _int(last.group(2)) == len(conf)
    assert int(last.group(3)) == round(100 * width[-1] / len(conf))
    empty = re.search(r"(\d+) equal-width\s+bins are empty, and the emptiest non-empty one holds (\d+) answers", prose)
    assert empty, prose
    assert int(empty.group(1)) == (width == 0).sum() and int(empty.group(2)) == width[width > 0].min()
    per_bin = re.search(r"\$([\d{},]+) / 15 = (\d+)\$ answers", prose)
    assert per_bin, prose
    assert _int(per_bin.group(1)) == len(conf) and int(per_bin.group(2)) == count.min() == count.max()
    assert f"rests on {count.min()} answers" in prose
