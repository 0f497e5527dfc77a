"""The runner's plan agrees with the book's table of contents and the notebooks' parameters."""
import json
from pathlib import Path

import pytest
import yaml

from calcas.params import SECTIONS
from calcas.run import PROFILES, _placeholder, plan

ROOT = Path(__file__).resolve().parents[1]


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


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


def test_paper_profile_says_what_is_missing():
    with pytest.raises(SystemExit, match="needs the GPU extraction backends"):
        plan("paper")
    with pytest.raises(SystemExit, match="profile: unknown 'gpu'"):
        plan("gpu")


def test_placeholder_is_one_clear_line(tmp_path):
    path = tmp_path / "x.ipynb"
    _placeholder(path, "ImageNet", "set CALCAS_DATA or run `python -m calcas.datasets.public fetch`")
    nb = json.loads(path.read_text())
    source = "".join(nb["cells"][0]["source"])
    assert len(nb["cells"]) == 1 and source.startswith("# ImageNet")
    assert "Data not available on this machine" in source and "python -m calcas.datasets.public fetch" in source
    assert json.loads((tmp_path / "results.json").read_text())["data"] == "missing"
