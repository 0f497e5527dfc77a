"""The runner's builds: the paper book beside the CPU book (npm, Sphinx) and notebook kernels over IPC."""

import pytest

from calcas.run import _placeholder, plan
from test_run import PAPER_ENV, ROOT  # noqa: E402


def test_paper_book_builds_beside_the_cpu_book(tmp_path):
    """The paper book (its own toc and build folder) builds under -W from executed notebooks;
    stand-ins here, as no GPU run exists. Built in a copy, so nothing real is overwritten."""
    import shutil

    from calcas.render.book import build_book
    from calcas.run import PAPER_BOOK
    if not (ROOT / "node_modules" / "vega").is_dir() and shutil.which("npm") is None:
        pytest.skip("needs the pinned node packages (npm)")
    for name in ("_config.yml", "_toc_paper.yml", "package.json", "package-lock.json"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "_static", tmp_path / "_static")
    (tmp_path / "book").mkdir()
    for page in (ROOT / "book").glob("*.md"):
        shutil.copy2(page, tmp_path / "book" / page.name)
    if (ROOT / "node_modules").is_dir():
        (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    for step in plan("paper", environ=PAPER_ENV):
        folder = tmp_path / "book" / "executed" / step.folder
        folder.mkdir(parents=True)
        _placeholder(folder / f"{step.notebook}.ipynb", step.folder, "a stand-in for the GPU run")
    html = build_book(tmp_path, **PAPER_BOOK)
    assert html == tmp_path / "_build" / "paper" / "_build" / "html"
    assert "book/paper.html" in (html / "index.html").read_text()
    page = (html / "book" / "paper.html").read_text()
    assert "on GPUs" in page and "LLM cascades (Figure 3)" in page  # the root page and its navigation
    assert (html / "book" / "executed" / "paper" / "llm_cascading" / "03_cascading.html").is_file()
    assert not (tmp_path / "_build" / "html").exists()  # the CPU book's folder is left alone


@pytest.mark.parametrize("ipc", [False, True])
def test_notebook_kernels_talk_over_ipc_so_nothing_warns_about_tcp(tmp_path, capfd, ipc):
    """The runner's kernels use Unix sockets; over TCP ipykernel warns at every step. The TCP
    case is run too, so the test shows the warning it guards against is real here."""
    import nbformat
    import papermill

    from calcas.run import _ipc_kernel_manager
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    extra = {"kernel_manager_class": _ipc_kernel_manager()} if ipc else {}
    papermill.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3",
                               progress_bar=False, cwd=str(tmp_path), **extra)
    assert nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs[0]["text"] == "42\n"
    captured = capfd.readouterr()
    assert ("without encryption" in captured.err + captured.out) is not ipc
    assert not list(tmp_path.glob("kernel-*"))  # no socket files left in the working folder
