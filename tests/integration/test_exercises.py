"""The book's exercises: every solution's code runs and its checks hold.

The introduction's solutions are Python code blocks inside ``{solution}`` directives, run as
they stand. The chapters' solutions are the code cells between a ``{solution-start}`` and a
``{solution-end}`` Markdown cell of ``notebooks/02``-``04`` and ``10``; each chapter's set-up cells (imports,
parameters, the report) run first, with the parameters pointed at small record sets made
here: logit sets with known flips (what the book's own chapters run on), the same models as
top-1 confidences without ground truth (what the public chapters run on, where papermill
still executes the solutions before the chapter drops them), and the runner's MNIST-1D record
sets where they exist. Each solution asserts its answer against an independent computation;
its last expression, the sentence the book shows, is evaluated and checked too.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

import calcas

ROOT = Path(__file__).resolve().parents[2]
INTRO = ROOT / "book" / "intro.md"
CHAPTERS = ("02_calibration", "03_cascading", "04_cleaning", "10_chains")
RUNNER_RECORDS = ROOT / "book" / "executed" / "01_extract" / "records"

_EXERCISE = re.compile(r"^`{3,}\{exercise\}[^\n]*\n:label: (\S+)", re.M)
_SOLUTION = re.compile(r"^(`{4,})\{solution\} (\S+)\n(.*?)^\1$", re.M | re.S)
_START = re.compile(r"^`{3,}\{solution-start\} (\S+)\n:class: dropdown$", re.M)
_PYTHON = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)


def intro_solutions() -> dict[str, list[str]]:
    """Label -> the Python code blocks of that solution in the introduction."""
    text = INTRO.read_text()
    out = {}
    for _, label, body in _SOLUTION.findall(text):
        assert ":class: dropdown" in body.split("\n", 1)[0], f"{label}: the solution is not hidden"
        out[label] = _PYTHON.findall(body)
    return out


def _notebook(stem: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)


def notebook_exercises(stem: str) -> tuple[list[str], dict[str, list[str]]]:
    """The exercise labels of a chapter, and label -> its solution's code cells."""
    exercises, solutions, current = [], {}, None
    for cell in _notebook(stem).cells:
        if cell.cell_type == "markdown":
            exercises += _EXERCISE.findall(cell.source)
            if "{solution-end}" in cell.source:
                current = None
            started = _START.findall(cell.source)
            if started:
                current = started[-1]
                solutions[current] = []
        elif current is not None:
            solutions[current].append(cell.source)
    return exercises, solutions


def intro_exercises() -> list[str]:
    return _EXERCISE.findall(INTRO.read_text())


# ---------------------------------------------------------------------------- counting

def test_at_least_eight_exercises_one_per_chapter_each_with_a_hidden_solution():
    counts = {"intro": len(intro_exercises())}
    for stem in CHAPTERS:
        exercises, solutions = notebook_exercises(stem)
        counts[stem] = len(exercises)
        assert sorted(exercises) == sorted(solutions), f"{stem}: exercises and solutions do not pair up"
        assert all(solutions.values()), f"{stem}: a solution without code cells"
        source = "\n".join(c.source for c in _notebook(stem).cells if c.cell_type == "markdown")
        assert source.count("{solution-start}") == source.count("{solution-end}") == len(exercises)
    intro = intro_solutions()
    assert sorted(intro) == sorted(intro_exercises()) and all(intro.values())
    assert all(n >= 1 for n in counts.values()), counts
    assert sum(counts.values()) >= 8, counts
    labels = intro_exercises() + [x for stem in CHAPTERS for x in notebook_exercises(stem)[0]]
    assert len(labels) == len(set(labels)), "an exercise label repeats"


def test_the_exercises_cells_are_dropped_where_they_do_not_apply():
    """Every cell of an exercise is tagged only-if:exercises (a notebook runs for several
    chapters; a label must appear once in a book)."""
    for stem in CHAPTERS:
        cells = _notebook(stem).cells
        first = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "{exercise}" in c.source)
        tagged = ["only-if:exercises" in c.metadata.get("tags", []) for c in cells]
        start = max(i for i in range(first) if not tagged[i]) + 1
        assert all(tagged[start:]) and not any(tagged[:start]), stem


# ---------------------------------------------------------------------------- running

def _run(code: str, ns: dict, where: str):
    """Run ``code`` in ``ns``; return the value of its last line when that is an expression."""
    tree = ast.parse(code, filename=where)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, where, "exec"), ns)
    return eval(compile(ast.Expression(last.value), where, "eval"), ns) if last is not None else None


def _shown_text(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "data"):  # IPython.display.Markdown
        return str(value.data)
    return value.to_html() if hasattr(value, "to_html") else str(value)


@pytest.mark.parametrize("label", sorted(intro_solutions()))
def test_intro_solution_runs_and_checks_hold(label, capsys):
    for i, code in enumerate(intro_solutions()[label]):
        _run(code, {"__name__": "__exercise__"}, f"intro:{label}:{i}")
    assert "nan" not in capsys.readouterr().out.lower()


def _confidence_only(r: calcas.Records) -> calcas.Records:
    """The same model as top-1 confidences with no ground truth, as the public record sets."""
    conf = calcas.max_prob_confidence(r.logits)[0]
    return calcas.make_records(list(r.id), r.pred, label=r.label, confidence=conf, manifest=dict(r.manifest))


@pytest.fixture(scope="module")
def record_sets(tmp_path_factory) -> dict[str, list[str]]:
    """Kind -> paths of three models' record sets on the same rows."""
    folder = tmp_path_factory.mktemp("records")
    made = calcas.make_synthetic(1600, accuracy=(0.7, 0.85, 0.9), confidence_scale=(1.6, 1.0, 0.7),
                                 flip_rate=0.1, names=["small", "large", "large_b"], seed=5)
    out = {"logits": [], "confidences": []}
    for name, r in made.items():
        for kind, rec in (("logits", r), ("confidences", _confidence_only(r))):
            path = folder / f"{kind}_{name}.parquet"
            calcas.write_records(rec, path)
            out[kind].append(str(path))
    runner = sorted(str(p) for p in RUNNER_RECORDS.glob("mnist1d_*.parquet"))
    if len(runner) >= 3:
        out["runner"] = runner
    return out


def _parameters(stem: str, paths: list[str], out: Path) -> dict:
    three = paths[-3:]
    if stem == "02_calibration":
        return {"records": paths, "n_boot": 20, "output_dir": str(out)}
    if stem == "03_cascading":
        return {"pairs": {"small-large": three[:2], "large-large": three[1:]}, "output_dir": str(out)}
    if stem == "10_chains":  # the synthetic sets carry no cost of their own
        return {"chains": {"three": three}, "costs": {"three": [1.0, 3.0, 4.0]}, "n_splits": 3, "output_dir": str(out)}
    return {"experts": three, "output_dir": str(out)}


@pytest.mark.parametrize("kind", ["logits", "confidences", "runner"])
@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_solutions_run_and_checks_hold(stem, kind, record_sets, tmp_path):
    if kind not in record_sets:
        pytest.skip("the runner's MNIST-1D record sets are not here (book/executed/01_extract)")
    cells = _notebook(stem).cells
    setup_end = next(i for i, c in enumerate(cells) if i > 0 and c.cell_type == "markdown")
    ns = {"__name__": "__exercise__", "display": lambda *a, **k: None}  # a notebook's built-in
    for i, cell in enumerate(cells[:setup_end]):
        if cell.cell_type != "code":
            continue
        _run(cell.source, ns, f"{stem}:setup:{i}")
        if "parameters" in cell.metadata.get("tags", []):
            ns.update(_parameters(stem, record_sets[kind], tmp_path))
    switches = ns["facts"].shown if "facts" in ns else ns["res"]["shown"]  # chapters in the new shape keep facts
    assert switches["exercises"] is (kind != "confidences")
    _, solutions = notebook_exercises(stem)
    for label, codes in solutions.items():
        shown = [_shown_text(_run(code, ns, f"{stem}:{label}:{i}")) for i, code in enumerate(codes)]
        assert shown[-1], f"{label}: the solution shows no answer"
        assert not re.search(r"\bnan\b", shown[-1], re.I), f"{label}: {shown[-1]}"
