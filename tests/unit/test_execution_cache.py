"""calcas.execution_cache without a kernel: keys, entries that are whole or not, and pages
rebuilt from cached outputs with the current Markdown."""
from __future__ import annotations

import hashlib
import os
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from calcas import execution_cache as cache
from calcas.run import Step, _critical_paths


def _write(path: Path, cells: list) -> Path:
    nbformat.write(new_notebook(cells=cells), path)
    return path


def _key(path: Path, **changes) -> str:
    args = dict(notebook=path, profile="cpu", params={"n": 1}, inputs={"01_extract": "x"}, source="s",
                environment="e")
    return cache.step_key(**{**args, **changes})


def test_the_key_follows_code_parameters_inputs_source_and_environment_not_markdown(tmp_path):
    nb = _write(tmp_path / "nb.ipynb", [new_markdown_cell("# T"), new_code_cell("x = 1", metadata={"tags": ["a"]})])
    key = _key(nb)
    assert len(key) == 64 and key == _key(nb)
    assert _key(nb, profile="quick") != key and _key(nb, params={"n": 2}) != key
    assert _key(nb, inputs={"01_extract": "y"}) != key and _key(nb, inputs={}) != key
    assert _key(nb, source="t") != key and _key(nb, environment="f") != key
    assert _key(nb, params={"n": 1}) == key  # dict order does not count
    _write(nb, [new_markdown_cell("# Another title\n\nMore prose."), new_code_cell("x = 1", metadata={"tags": ["a"]}),
                new_markdown_cell("An added paragraph.")])
    assert _key(nb) == key
    _write(nb, [new_markdown_cell("# T"), new_code_cell("x = 1", metadata={"tags": ["b"]})])
    assert _key(nb) != key
    _write(nb, [new_markdown_cell("# T"), new_code_cell("x = 2", metadata={"tags": ["a"]})])
    assert _key(nb) != key


def test_digests_are_sha256_of_the_contents(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"abc")
    assert cache.file_sha256(tmp_path / "f.bin") == hashlib.sha256(b"abc").hexdigest()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "g.txt").write_text("g")
    (tmp_path / "page.ipynb").write_text("{}")
    assert cache.file_hashes(tmp_path, skip="page.ipynb") == {
        "f.bin": hashlib.sha256(b"abc").hexdigest(), "sub/g.txt": hashlib.sha256(b"g").hexdigest()}
    assert cache.file_hashes(tmp_path / "missing") == {}
    digest = cache.folder_digest(tmp_path, skip="page.ipynb")
    (tmp_path / "page.ipynb").write_text('{"changed": 1}')
    assert cache.folder_digest(tmp_path, skip="page.ipynb") == digest
    (tmp_path / "sub" / "g.txt").rename(tmp_path / "sub" / "h.txt")  # a renamed file is another output
    assert cache.folder_digest(tmp_path, skip="page.ipynb") != digest


def test_the_source_digest_covers_python_files_and_package_data_only(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "sub" / "m.py").write_text("x = 1\n")
    (tmp_path / "data" / "ref.json").write_text("{}")
    digest = cache.source_digest(tmp_path)
    (tmp_path / "README.txt").write_text("notes")
    (tmp_path / "sub" / "__pycache__").mkdir()
    (tmp_path / "sub" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    assert cache.source_digest(tmp_path) == digest
    (tmp_path / "data" / "ref.json").write_text('{"a": 1}')
    assert cache.source_digest(tmp_path) != digest
    (tmp_path / "data" / "ref.json").write_text("{}")
    (tmp_path / "sub" / "m.py").write_text("x = 2\n")
    assert cache.source_digest(tmp_path) != digest


def _entry(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "step"
    (folder / "records").mkdir(parents=True)
    (folder / "records" / "r.parquet").write_bytes(b"PAR1")
    (folder / "results.json").write_text('{"a": 1}\n')
    _write(folder / "nb.ipynb", [new_code_cell("1")])
    key = "k" * 64
    cache.store_entry(tmp_path / "cache", key, folder / "nb.ipynb", folder, info={"step": "step"})
    return tmp_path / "cache" / key, key


def test_a_whole_entry_loads_with_its_files_and_info(tmp_path):
    path, key = _entry(tmp_path)
    entry = cache.load_entry(tmp_path / "cache", key)
    assert entry["files"] == {"records/r.parquet": hashlib.sha256(b"PAR1").hexdigest(),
                              "results.json": hashlib.sha256(b'{"a": 1}\n').hexdigest()}
    assert entry["step"] == "step" and entry["path"] == str(path)
    assert cache.load_entry(tmp_path / "cache", "m" * 64) is None
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [key]  # no staging folder left behind


@pytest.mark.parametrize("damage", ["changed file", "missing file", "extra file", "extra top-level file",
                                    "changed notebook", "no entry.json", "bad json", "other key", "other format"])
def test_a_damaged_entry_is_refused_and_removed(tmp_path, damage):
    path, key = _entry(tmp_path)
    meta = json.loads((path / "entry.json").read_text())
    if damage == "changed file":
        (path / "files" / "results.json").write_text('{"a": 2}\n')
    elif damage == "missing file":
        (path / "files" / "records" / "r.parquet").unlink()
    elif damage == "extra file":
        (path / "files" / "records" / "s.parquet").write_bytes(b"")
    elif damage == "extra top-level file":
        (path / "stray").write_text("")
    elif damage == "changed notebook":
        (path / "executed.ipynb").write_text("{}")
    elif damage == "no entry.json":
        (path / "entry.json").unlink()
    elif damage == "bad json":
        (path / "entry.json").write_text("[")
    elif damage == "other key":
        (path / "entry.json").write_text(json.dumps({**meta, "key": "j" * 64}))
    else:
        (path / "entry.json").write_text(json.dumps({**meta, "format": cache.CACHE_FORMAT + 1}))
    assert cache.load_entry(tmp_path / "cache", key) is None
    assert not path.exists()


def test_restoring_an_entry_rewrites_only_what_differs_and_removes_what_it_lacks(tmp_path):
    path, key = _entry(tmp_path)
    entry = cache.load_entry(tmp_path / "cache", key)
    target = tmp_path / "target"
    (target / "old" / "deep").mkdir(parents=True)
    (target / "old" / "deep" / "stale.txt").write_text("stale")
    (target / "results.json").write_text('{"a": 1}\n')
    (target / "page.ipynb").write_text("the page")
    before = (target / "results.json").stat().st_mtime_ns
    cache.restore_files(entry, target, keep="page.ipynb")
    assert cache.file_hashes(target, skip="page.ipynb") == entry["files"]
    assert not (target / "old").exists() and (target / "page.ipynb").read_text() == "the page"
    assert (target / "results.json").stat().st_mtime_ns == before


def _executed() -> dict:
    """Papermill's output for a notebook with a parameters cell: the injected cell follows it."""
    nb = new_notebook(cells=[
        new_markdown_cell("# Old title"),
        new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("n = 5", metadata={"tags": ["injected-parameters"]}),
        new_markdown_cell("Old prose."),
        new_code_cell("print(n)", execution_count=3, outputs=[new_output("stream", name="stdout", text="5\n")]),
    ])
    return json.loads(nbformat.writes(nb))


def test_a_page_keeps_the_outputs_and_takes_the_current_markdown():
    current = json.loads(nbformat.writes(new_notebook(cells=[
        new_markdown_cell("# New title"), new_markdown_cell("An added paragraph."),
        new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
        new_markdown_cell("New prose."), new_code_cell("print(n)")])))
    page = cache.assemble_notebook(_executed(), current)
    kinds = [(c["cell_type"], "".join(c["source"])) for c in page["cells"]]
    assert kinds == [("markdown", "# New title"), ("markdown", "An added paragraph."), ("code", "n = 1"),
                     ("code", "n = 5"), ("markdown", "New prose."), ("code", "print(n)")]
    assert "".join(page["cells"][-1]["outputs"][0]["text"]) == "5\n" and page["cells"][-1]["execution_count"] == 3
    nbformat.validate(nbformat.from_dict(page))


def test_a_page_without_a_parameters_cell_keeps_papermills_cell_first():
    executed = _executed()
    executed["cells"] = [executed["cells"][2], executed["cells"][0], executed["cells"][4]]
    current = json.loads(nbformat.writes(new_notebook(cells=[new_markdown_cell("# T"), new_code_cell("print(n)")])))
    page = cache.assemble_notebook(executed, current)
    assert ["".join(c["source"]) for c in page["cells"]] == ["n = 5", "# T", "print(n)"]


@pytest.mark.parametrize("code", [["n = 1", "print(n + 1)"], ["n = 1"], ["n = 1", "print(n)", "x = 2"]])
def test_a_page_is_never_assembled_from_other_code(code):
    cells = [new_code_cell(code[0], metadata={"tags": ["parameters"]}), *(new_code_cell(c) for c in code[1:])]
    current = json.loads(nbformat.writes(new_notebook(cells=cells)))
    with pytest.raises(ValueError, match="assemble_notebook: the executed notebook's code cells differ from the "
                                         "current notebook's; only Markdown may change between them"):
        cache.assemble_notebook(_executed(), current)


def test_ready_steps_start_by_the_longest_recorded_chain_after_them():
    steps = [Step("x", "x", {}), Step("y", "y", {}, reads=("x",)), Step("z", "z", {}), Step("w", "w", {}, reads=("y",))]
    paths = _critical_paths(steps, {"x": 10, "y": 5, "z": 30, "w": 1})
    assert paths == {"x": 16, "y": 6, "z": 30, "w": 1}
    assert _critical_paths(steps, {}) == {"x": 0, "y": 0, "z": 0, "w": 0}


def test_prune_keeps_the_most_recently_used_entries_of_each_step(tmp_path):
    folder = tmp_path / "step"
    folder.mkdir()
    _write(folder / "nb.ipynb", [new_code_cell("1")])
    keys = [str(i) * 64 for i in range(5)]
    for age, key in enumerate(keys):  # keys[0] is the oldest
        step = "other" if key == keys[4] else "step"
        path = cache.store_entry(tmp_path / "cache", key, folder / "nb.ipynb", folder, info={"step": step})
        os.utime(path, (1000 + age, 1000 + age))
    assert cache.load_entry(tmp_path / "cache", keys[0]) is not None  # used now: the most recent
    (tmp_path / "cache" / "stray").mkdir()  # no entry.json: not prune's to judge
    deleted = cache.prune(tmp_path / "cache", keep=2)
    assert sorted(p.name for p in deleted) == [keys[1], keys[2]]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([keys[0], keys[3], keys[4], "stray"])
    assert cache.prune(tmp_path / "cache", keep=2) == []
