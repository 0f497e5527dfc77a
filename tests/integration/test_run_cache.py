"""The runner's execution cache and its parallel steps, end to end with papermill on tiny notebooks.

Each notebook appends its step's name to ``log.txt`` at the root when it runs: that file, not
the runner's own report, says which steps ran. The graph: ``a`` writes a record that ``b``
reads; ``c`` stands alone; ``d`` converts the "public data" (a registered file under
``$CALCAS_DATA``).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import calcas.datasets.public
from calcas import run as runner
from calcas.run import Step

LOG = "../../../log.txt"  # from book/executed/<folder>/, the notebook's working folder
DATA_FILE = "imagenet-real/real.json"  # a registered public data file


def _notebook(path: Path, code: list[str], prose: str, *, parameters: str) -> None:
    cells = [new_markdown_cell(f"# {path.stem}"), new_code_cell(parameters, metadata={"tags": ["parameters"]}),
             *(new_code_cell(c) for c in code), new_markdown_cell(prose)]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


WRITER = ["import json, pathlib\npathlib.Path('records').mkdir(exist_ok=True)\n"
          "pathlib.Path('records/value.txt').write_text(str(value))",
          "with open(log, 'a') as f:\n    f.write(name + '\\n')\n"
          "json.dump({'value': value}, open('results.json', 'w'))\nprint('wrote', value)"]
READER = ["import json, pathlib\nvalue = int(pathlib.Path('../a/records/value.txt').read_text())",
          "with open(log, 'a') as f:\n    f.write(name + '\\n')\n"
          "json.dump({'double': 2 * value}, open('results.json', 'w'))"]
STEPS = [Step("a", "writer", {"name": "a", "value": 1, "log": LOG}),
         Step("b", "reader", {"name": "b", "log": LOG}, reads=("a",)),
         Step("c", "writer", {"name": "c", "value": 5, "log": LOG}),
         Step("d", "writer", {"name": "d", "value": 7, "log": LOG}, reads_public_data=True)]


def _make_root(root: Path) -> None:
    (root / "notebooks").mkdir(parents=True)
    (root / "_config.yml").write_text("repository:\n  url: ''\n")
    _notebook(root / "notebooks" / "writer.ipynb", WRITER, "The writer's prose.",
              parameters="name = ''\nvalue = 0\nlog = ''\noutput_dir = '.'")
    _notebook(root / "notebooks" / "reader.ipynb", READER, "The reader's prose.",
              parameters="name = ''\nlog = ''\noutput_dir = '.'")
    (root / "data" / "imagenet-real").mkdir(parents=True)
    (root / "data" / DATA_FILE).write_text("[[1], [2]]\n")
    package = root / "package"  # stands in for the calcas source
    (package / "data").mkdir(parents=True)
    (package / "module.py").write_text("X = 1\n")
    (package / "data" / "table.json").write_text("{}\n")


@pytest.fixture(scope="module")
def first_build(tmp_path_factory) -> Path:
    """A root built once (all four steps run); each test works on its own copy."""
    root = tmp_path_factory.mktemp("built") / "root"
    _make_root(root)
    with pytest.MonkeyPatch.context() as m:
        _point_at(root, m)
        runner.run(steps=STEPS, root=root, book=False, jobs=2)
    assert _ran(root) == {"a", "b", "c", "d"}
    return root


def _point_at(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALCAS_DATA", str(root / "data"))
    monkeypatch.setattr(runner, "PACKAGE_DIR", root / "package")


@pytest.fixture
def root(first_build, tmp_path, monkeypatch) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(first_build, copy, symlinks=True)
    _point_at(copy, monkeypatch)
    return copy


def _ran(root: Path) -> set[str]:
    """The steps whose notebooks ran since the last call (and forget them)."""
    log = root / "log.txt"
    names = log.read_text().split() if log.exists() else []
    log.write_text("")
    assert len(names) == len(set(names)), names  # no step runs twice in one build
    return set(names)


def _build(root: Path, **kwargs) -> set[str]:
    runner.run(steps=kwargs.pop("steps", STEPS), root=root, book=False, jobs=kwargs.pop("jobs", 2), **kwargs)
    return _ran(root)


def _edit_notebook(root: Path, name: str, change) -> None:
    path = root / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def _page(root: Path, folder: str, notebook: str) -> str:
    return (root / "book" / "executed" / folder / f"{notebook}.ipynb").read_text()


def _results(root: Path, folder: str) -> dict:
    return json.loads((root / "book" / "executed" / folder / "results.json").read_text())


def test_an_unchanged_build_runs_nothing_and_leaves_every_file_as_it_was(root, capsys):
    capsys.readouterr()
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (root / "book").rglob("*") if p.is_file()}
    assert _build(root) == set()
    lines = capsys.readouterr().out.splitlines()
    for folder in "abcd":
        assert any(line.split()[-2:] == [folder, "cached"] for line in lines), lines
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (root / "book").rglob("*") if p.is_file()}
    assert after == before
    assert _results(root, "b") == {"double": 2}


def test_a_changed_code_cell_reruns_the_steps_of_that_notebook_and_what_reads_them(root):
    _edit_notebook(root, "reader", lambda nb: nb.cells[2].__setitem__("source", nb.cells[2].source + "\nvalue += 0"))
    assert _build(root) == {"b"}
    _edit_notebook(root, "writer", lambda nb: nb.cells[3].__setitem__("source", nb.cells[3].source + " # same"))
    assert _build(root) == {"a", "c", "d"}  # b reads a's outputs, whose bytes did not change
    # a tag is part of the code: it may change what the page shows
    _edit_notebook(root, "reader", lambda nb: nb.cells[3].metadata.__setitem__("tags", ["remove-input"]))
    assert _build(root) == {"b"}


def test_a_changed_parameter_reruns_that_step_and_the_steps_that_read_its_outputs(root):
    steps = [*STEPS]
    steps[0] = Step("a", "writer", {"name": "a", "value": 2, "log": LOG})
    assert _build(root, steps=steps) == {"a", "b"}
    assert _results(root, "b") == {"double": 4}
    assert _build(root, steps=STEPS) == set()  # back to the old value: its entries are still kept ...
    assert _results(root, "b") == {"double": 2}
    assert _build(root, steps=steps) == set()  # ... and so are the new ones
    assert _results(root, "b") == {"double": 4}


def test_a_changed_input_file_reruns_exactly_the_steps_that_read_it(root):
    (root / "data" / DATA_FILE).write_text("[[3]]\n")
    assert _build(root) == {"d"}
    record = root / "book" / "executed" / "a" / "records" / "value.txt"
    record.write_text("10")  # a's output, changed by hand: a's folder is put back from the cache
    assert _build(root) == set()
    assert record.read_text() == "1" and _results(root, "b") == {"double": 2}


def test_a_changed_calcas_source_reruns_every_step(root):
    (root / "package" / "notes.txt").write_text("not source")  # neither *.py nor data/ (see the unit tests)
    assert _build(root) == set()
    (root / "package" / "module.py").write_text("X = 2\n")
    assert _build(root) == {"a", "b", "c", "d"}


def test_a_markdown_change_reruns_nothing_and_the_page_shows_it(root):
    outputs = nbformat.read(root / "book" / "executed" / "c" / "writer.ipynb", as_version=4)
    _edit_notebook(root, "writer", lambda nb: nb.cells[-1].__setitem__("source", "Prose, *rewritten*."))
    _edit_notebook(root, "writer", lambda nb: nb.cells.insert(3, new_markdown_cell("A new paragraph.")))
    assert _build(root) == set()
    for folder in "acd":
        page = nbformat.read(root / "book" / "executed" / folder / "writer.ipynb", as_version=4)
        prose = [c.source for c in page.cells if c.cell_type == "markdown"]
        assert prose[1:] == ["A new paragraph.", "Prose, *rewritten*."], prose
        assert "The writer's prose." not in _page(root, folder, "writer")
    page = nbformat.read(root / "book" / "executed" / "c" / "writer.ipynb", as_version=4)
    code = [c for c in page.cells if c.cell_type == "code"]
    assert [c.outputs for c in code] == [c.outputs for c in outputs.cells if c.cell_type == "code"]
    assert code[-1].outputs[0]["text"] == "wrote 5\n"
    assert "injected-parameters" in code[1].metadata.tags  # papermill's cell stays after "parameters"
    assert page.cells.index(code[1]) == page.cells.index(code[0]) + 1


def test_force_reruns_every_step(root):
    assert _build(root, force=True) == {"a", "b", "c", "d"}
    assert _build(root) == set()


def _entry_of(root: Path, folder: str) -> Path:
    entries = [p.parent for p in (root / "_build" / "cache").glob("*/entry.json")
               if json.loads(p.read_text())["step"] == folder]
    assert len(entries) == 1, entries
    return entries[0]


# every kind of damage is refused by load_entry (tests/unit/test_execution_cache.py); here, that the
# runner then runs the step again and stores a whole entry
@pytest.mark.parametrize("damage", ["changed byte", "no entry.json", "changed page"])
def test_a_damaged_cache_entry_is_not_trusted_but_run_again(root, damage):
    entry = _entry_of(root, "a")
    if damage == "changed byte":
        (entry / "files" / "records" / "value.txt").write_text("9")
    elif damage == "no entry.json":  # a copy cut short before its last file
        (entry / "entry.json").unlink()
    else:
        (entry / "executed.ipynb").write_text("{}")
    assert _build(root) == {"a"}  # b reads a's outputs, which are the same bytes once a has run again
    assert _results(root, "b") == {"double": 2}
    assert json.loads((_entry_of(root, "a") / "entry.json").read_text())["files"]["records/value.txt"]
    assert _build(root) == set()


def test_a_half_written_entry_beside_the_real_ones_is_ignored(root):
    staging = root / "_build" / "cache" / ".0123456789ab-xyz"  # where store_entry writes before renaming
    staging.mkdir()
    (staging / "executed.ipynb").write_text("{}")
    assert _build(root) == set()


def test_a_failing_step_stops_the_build_names_the_error_and_is_not_cached(root):
    _edit_notebook(root, "reader", lambda nb: nb.cells[2].__setitem__("source", "raise ValueError('no value here')"))
    with pytest.raises(SystemExit, match=r"b: ValueError: no value here\n\(the executed notebook with the "
                                         r"traceback: .*reader.ipynb\)"):
        _build(root)
    assert _ran(root) == set()  # the failure came before the log line; the other steps were cached
    with pytest.raises(SystemExit, match="no value here"):
        _build(root)  # not cached: it runs, and fails, again


def test_a_step_without_its_public_data_is_a_placeholder_and_is_not_cached(root, monkeypatch):
    steps = [*STEPS[:3], Step("d", "writer", {"name": "d", "value": 7, "log": LOG}, True, reads_public_data=True)]
    monkeypatch.setattr(calcas.datasets.public, "ensure_data", lambda **kwargs: None)
    assert _build(root, steps=steps) == set()
    assert "Data not available on this machine" in _page(root, "d", "writer")
    assert _results(root, "d")["data"] == "missing"
    assert not (root / "book" / "executed" / "d" / "records").exists()
    monkeypatch.undo()
    _point_at(root, monkeypatch)
    assert _build(root, steps=steps) == set()  # the real results come back from the cache, not the placeholder
    assert _results(root, "d") == {"value": 7}


def test_serial_and_parallel_builds_give_the_same_files(root, tmp_path, monkeypatch):
    serial = tmp_path / "serial"
    shutil.copytree(root, serial, symlinks=True, ignore=shutil.ignore_patterns("_build", "executed"))
    _point_at(serial, monkeypatch)
    assert _build(serial, jobs=1) == {"a", "b", "c", "d"}
    for folder in "abcd":
        files = sorted(p.relative_to(root / "book" / "executed" / folder)
                       for p in (root / "book" / "executed" / folder).rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(serial / "book" / "executed" / folder)
                               for p in (serial / "book" / "executed" / folder).rglob("*") if p.is_file())
        for rel in files:
            if rel.suffix != ".ipynb":  # the pages hold papermill's times
                assert (root / "book" / "executed" / folder / rel).read_bytes() == \
                    (serial / "book" / "executed" / folder / rel).read_bytes()


def test_a_step_waits_for_the_steps_it_reads(root):
    """b reads a: with a's parameter changed and two workers, b must see a's new record."""
    steps = [Step("a", "writer", {"name": "a", "value": 3, "log": LOG}), *STEPS[1:]]
    assert _build(root, steps=steps, jobs=4) == {"a", "b"}
    assert _results(root, "b") == {"double": 6}


def test_bad_jobs_and_sections_are_refused_by_name(root):
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(SystemExit, match=rf"jobs: expected a positive number of steps run at once, got {jobs!r}"):
            runner.run(steps=STEPS, root=root, book=False, jobs=jobs)
    with pytest.raises(SystemExit, match=r"sections: unknown \['e'\]"):
        runner.run(steps=STEPS, root=root, book=False, sections=["e"])


def test_a_step_that_uses_every_core_runs_alone(root):
    """Papermill's own start and end times of each page: no other step overlaps the one that
    trains one process per core."""
    from datetime import datetime
    steps = [*STEPS[:2], Step("c", "writer", {"name": "c", "value": 5, "log": LOG}, uses_every_core=True), STEPS[3]]
    assert _build(root, steps=steps, force=True) == {"a", "b", "c", "d"}

    def span(folder: str) -> tuple[datetime, datetime]:
        notebook = "reader" if folder == "b" else "writer"
        meta = nbformat.read(root / "book" / "executed" / folder / f"{notebook}.ipynb", as_version=4).metadata.papermill
        return datetime.fromisoformat(meta.start_time), datetime.fromisoformat(meta.end_time)
    c_start, c_end = span("c")
    for folder in "abd":
        start, end = span(folder)
        assert end <= c_start or start >= c_end, folder
