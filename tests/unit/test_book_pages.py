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
