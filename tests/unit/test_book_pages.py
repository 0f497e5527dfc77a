"""The pages around the chapters: titles and openings from book/chapters.yml, cells pruned by a
chapter's ``shown`` switches, and the reproduce page's commands."""
from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]


def test_finish_chapter_titles_and_prunes(tmp_path):
    from calcas.run import finish_chapter
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_markdown_cell("## kept")
    gone = nbformat.v4.new_markdown_cell("## true labels")
    gone.metadata["tags"] = ["only-if:true_labels"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Generic title\n\nGeneric text."), keep, gone]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    finish_chapter(path, {"title": "ImageNet: calibration", "opening": "Four public models."},
                   {"shown": {"true_labels": False}})
    out = nbformat.read(path, as_version=4)
    assert out.cells[0].source.startswith("# ImageNet: calibration\n\nFour public models.\n\nGeneric text.")
    assert [c.source for c in out.cells[1:]] == ["## kept"]


def test_chapter_titles_are_unique():
    from calcas.run import chapter_texts
    titles = [t["title"] for t in chapter_texts(ROOT).values()]
    assert len(titles) == len(set(titles))


def test_reproduce_page_gives_every_public_command_exactly():
    from calcas.run import public_commands
    page = (ROOT / "book" / "reproduce.md").read_text()
    for line in public_commands(ROOT):
        assert line in page, line


def test_a_public_page_shows_one_parameters_cell_with_what_it_ran_on(tmp_path):
    """The notebook's defaults (the CPU book's record sets) are hidden where papermill injected the
    chapter's data; the one cell shown has every parameter with the value the page ran with."""
    import ast

    from calcas.run import finish_chapter, merged_parameters
    defaults = ("records: list = ['../01_extract/records/mnist1d_cnn.parquet']  # record sets to calibrate\n"
                "n_bins: int = 15  # number of equal-count bins\n"
                "output_dir: str = '.'  # folder for results.json\n")
    injected = "# Parameters\nrecords = ['../00_public_data/records/imagenet_ViT.parquet']\noutput_dir = '.'\n"
    merged = merged_parameters(defaults, injected)
    ran = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(merged).body}
    assert ran == {"records": ["../00_public_data/records/imagenet_ViT.parquet"], "n_bins": 15}
    assert "# record sets to calibrate\nrecords = " in merged and "mnist1d" not in merged
    assert merged_parameters("x = f(1)\n", injected) is None  # not literal: left to readable_parameters
    nb = nbformat.v4.new_notebook()
    own, given = nbformat.v4.new_code_cell(defaults), nbformat.v4.new_code_cell(injected)
    own.metadata["tags"], given.metadata["tags"] = ["parameters"], ["injected-parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), own, given]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    finish_chapter(path, None, None)
    out = nbformat.read(path, as_version=4)
    assert "remove-cell" in out.cells[1].metadata["tags"] and out.cells[2].source == merged
