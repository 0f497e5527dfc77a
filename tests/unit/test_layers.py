"""The package's floors: each module imports only from its own floor or the floors below, no two
modules import each other (imports inside functions count), and rendering knows no chapter.

    ground    records, confidence, binning, params, _validate, _version
    paper     calibration, metrics, cascade, chain, cleaning, synthetic, lab, chain_study,
              estimator_study, datasets.*, extract.*, and the package itself (it re-exports them)
    render    render.* (imports only render.*: it draws what it is given and computes nothing)
    chapters  chapters.*
    top       run, user_report, execution_cache, __main__
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "calcas"
GROUND = {"calcas.records", "calcas.confidence", "calcas.binning", "calcas.params", "calcas._validate",
          "calcas._version"}
TOP = {"calcas.run", "calcas.user_report", "calcas.execution_cache", "calcas.__main__"}
ORDER = ["ground", "paper", "render", "chapters", "top"]


def floor(module: str) -> str:
    if module in GROUND:
        return "ground"
    if module in TOP:
        return "top"
    if module.startswith("calcas.render"):
        return "render"
    if module.startswith("calcas.chapters"):
        return "chapters"
    return "paper"


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports() -> dict[str, set[str]]:
    """Every calcas module each module imports, anywhere in its body."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        base = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                parts = base.split(".")
                stem = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
                module = ".".join(p for p in (stem, node.module or "") if p)
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            for t in targets:
                if t in mods and t != m and not m.startswith(t + "."):
                    graph[m].add(t)
    return graph


def test_no_module_imports_a_floor_above_its_own():
    upward = []
    for m, targets in imports().items():
        for t in targets:
            if ORDER.index(floor(t)) > ORDER.index(floor(m)):
                upward.append(f"{m} ({floor(m)}) imports {t} ({floor(t)})")
    assert not upward, "\n".join(upward)


def test_rendering_imports_only_rendering():
    leaks = [f"{m} imports {t}" for m, targets in imports().items() if floor(m) == "render"
             for t in targets if floor(t) != "render"]
    assert not leaks, "\n".join(leaks)


def test_no_import_circle():
    graph = imports()
    index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, circles


@pytest.mark.parametrize("chapter", sorted(p.stem for p in (PACKAGE / "chapters").glob("*.py")
                                           if p.stem not in ("__init__", "common")))
def test_a_chapter_reaches_no_private_name_of_another_module(chapter):
    """Chapters use the public API of the library and of each other (``from .x import _y`` and
    ``x._y`` attribute reads of other modules are refused)."""
    tree = ast.parse((PACKAGE / "chapters" / f"{chapter}.py").read_text())
    private = [f"from {n.module} import {a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               for a in n.names if a.name.startswith("_") and n.module not in (None, "__future__")]
    modules = {a.asname or a.name.split(".")[-1] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
               for a in n.names}
    private += [f"{n.value.id}.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id in modules and n.attr.startswith("_")
                and not n.attr.startswith("__")]
    assert not private, private
