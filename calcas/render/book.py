"""Build the Jupyter Book with every script it needs served from the book itself.

The book's interactive charts (:mod:`calcas.render.interactive`) need Vega, Vega-Lite and
vega-embed, and its math needs MathJax 3. None of them is committed and none comes from a
CDN: ``package.json`` (with ``package-lock.json``) pins them, ``npm ci`` installs them into
``node_modules/``, and :func:`vendor_js` copies the files the browser needs into
``_build/vendor/_static/vendored/``, with the tables' stylesheet
(:data:`calcas.render.tables.TABLE_CSS`). ``_config.yml`` names ``_build/vendor`` in Sphinx's
``html_extra_path``, so the HTML build serves them as ``_static/vendored/...`` (deliberately
not a ``_static/`` *source* folder: Jupyter Book 1 would add every ``*.js`` found there to
every page). A build without this step fails (``html_extra_path entry ... does not exist``).

Usage: ``python -m calcas.render.book [ROOT] [--no-strict]`` or :func:`build_book`.
"""
from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

#: package -> files (relative to the package folder) copied to ``_static/vendored/``.
VENDOR_FILES = {
    "vega": ["build/vega.min.js", "LICENSE"],
    "vega-lite": ["build/vega-lite.min.js", "LICENSE"],
    "vega-embed": ["build/vega-embed.min.js", "LICENSE"],
}
#: MathJax: the combined component Sphinx loads, plus what it loads lazily (TeX extensions,
#: CHTML fonts, the menu, accessibility and speech), relative to ``mathjax/es5``.
MATHJAX_PARTS = ["tex-mml-chtml.js", "input", "output/chtml.js", "output/chtml", "ui", "a11y", "sre", "adaptors"]
EXTRA_PATH = Path("_build") / "vendor"       # html_extra_path in _config.yml
VENDOR_URL = "_static/vendored"                # where the built book serves the files
TABLE_CSS_NAME = "calcas-tables.css"           # _config.yml's html_css_files names it


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as err:
        raise RuntimeError(f"{what}: {cmd[0]} is not installed ({err})") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


def ensure_node_packages(root: str | Path = ".") -> Path:
    """Install the pinned node packages with ``npm ci`` unless ``node_modules`` already holds them.

    Returns the ``node_modules`` folder. Raises ``RuntimeError`` when npm is missing or fails.
    """
    root = Path(root).resolve()
    pins = json.loads((root / "package.json").read_text())["dependencies"]
    modules = root / "node_modules"

    def installed(name: str) -> str | None:
        meta = modules / name / "package.json"
        return json.loads(meta.read_text()).get("version") if meta.is_file() else None

    stale = {name: installed(name) for name, version in pins.items() if installed(name) != version}
    if stale:
        if not (root / "package-lock.json").is_file():
            raise RuntimeError(f"{root / 'package-lock.json'} is missing: run `npm install` once and commit it")
        _run(["npm", "ci", "--no-audit", "--no-fund"], root, f"npm ci (to install {', '.join(stale)})")
        still = [name for name, version in pins.items() if installed(name) != version]
        if still:
            raise RuntimeError(f"npm ci did not install the pinned {still}; check package-lock.json")
    return modules


def copy_vega(modules: Path, dest: Path) -> None:
    """Copy :data:`VENDOR_FILES` (Vega, Vega-Lite, vega-embed and their licences) from
    ``node_modules`` into ``dest`` (created if missing): the scripts the explorers load."""
    dest.mkdir(parents=True, exist_ok=True)
    for package, files in VENDOR_FILES.items():
        for rel in files:
            name = f"{package}.LICENSE.txt" if rel == "LICENSE" else Path(rel).name
            shutil.copy2(modules / package / rel, dest / name)


def vendor_js(root: str | Path = ".") -> Path:
    """Copy Vega, Vega-Lite, vega-embed and MathJax from ``node_modules`` into the folder that
    ``html_extra_path`` serves; returns ``<root>/_build/vendor``.
    """
    root = Path(root).resolve()
    modules = ensure_node_packages(root)
    extra = root / EXTRA_PATH
    dest = extra / VENDOR_URL
    if dest.exists():
        shutil.rmtree(dest)
    copy_vega(modules, dest)
    mathjax = modules / "mathjax"
    for part in MATHJAX_PARTS:
        src, out = mathjax / "es5" / part, dest / "mathjax" / part
        out.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, out)
    shutil.copy2(mathjax / "LICENSE", dest / "mathjax" / "LICENSE.txt")
    # the tables' layout (calcas.render.tables.TABLE_CSS), one source for the book and the report page
    from .tables import TABLE_CSS
    (dest / TABLE_CSS_NAME).write_text(TABLE_CSS.lstrip())
    versions = {p: json.loads((modules / p / "package.json").read_text())["version"]
                for p in (*VENDOR_FILES, "mathjax")}
    (dest / "VERSIONS.json").write_text(json.dumps(versions, indent=1) + "\n")
    return extra


def _jupyter_book() -> list[str]:
    local = Path(sys.executable).with_name("jupyter-book")
    if local.is_file():
        return [str(local)]
    found = shutil.which("jupyter-book")
    if found is None:
        raise RuntimeError("jupyter-book is not installed in this environment")
    return [found]


def static_changed(root: str | Path, html: str | Path) -> bool:
    """Whether a file the built book serves as is (``_static/`` of the book, and the top-level
    files of the vendored folder: the tables' stylesheet, the Vega scripts) differs from its
    copy in ``html``. Sphinx copies them only when some page is out of date, so an edit to
    ``_static/calcas.css`` alone would otherwise never reach the built book."""
    root, html = Path(root), Path(html)
    if not (html / "_static").is_dir():
        return False  # a first build copies everything
    sources = [(f, html / "_static" / f.relative_to(root / "_static"))
               for f in (root / "_static").rglob("*") if f.is_file()]
    vendored = root / EXTRA_PATH / VENDOR_URL
    if vendored.is_dir():
        sources += [(f, html / VENDOR_URL / f.name) for f in vendored.iterdir() if f.is_file()]
    return any(not built.is_file() or not filecmp.cmp(src, built, shallow=False) for src, built in sources)


def build_book(root: str | Path = ".", *, strict: bool = True, toc: str | None = None,
               output: str | None = None) -> Path:
    """Vendor the JavaScript and build the HTML book; returns ``<root>/_build/html``
    (``<root>/<output>/_build/html`` with ``output``).

    Parameters
    ----------
    root : path
        The book's root (holds ``_config.yml``, ``_toc.yml``, ``package.json``).
    strict : bool
        Build with ``-W -n --keep-going``: every Sphinx warning (nit-picky references
        included) fails the build, after all of them are reported. ``False`` drops ``-W``.
    toc : str, optional
        Another table of contents relative to ``root`` (``"_toc_paper.yml"``: the paper book).
    output : str, optional
        Build folder relative to ``root`` (``"_build/paper"``), so that a second book does not
        replace the first.

    Raises
    ------
    RuntimeError
        When npm or the build fails; the message ends with the tail of the build log, which
        is kept whole in ``<root>/_build/book-build.log``.
    """
    root = Path(root).resolve()
    vendor_js(root)
    html = (root / output / "_build" / "html") if output else root / "_build" / "html"
    cmd = [*_jupyter_book(), "build", str(root), "-n", "--keep-going"] + (["-W"] if strict else [])
    if static_changed(root, html):  # Sphinx copies static files only when some page is rebuilt
        cmd.append("--all")
    cmd += (["--toc", str(root / toc)] if toc else []) + (["--path-output", str(root / output)] if output else [])
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    build = root / output / "_build" if output else root / "_build"
    build.mkdir(parents=True, exist_ok=True)
    log = build / "book-build.log"
    log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    html = build / "html"
    if proc.returncode != 0 or not (html / "index.html").is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}); full log in {log}:\n{tail}")
    return html


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m calcas.render.book [ROOT] [--no-strict]`` builds the book."""
    parser = argparse.ArgumentParser(prog="python -m calcas.render.book", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".", help="the book's root (default: .)")
    parser.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    args = parser.parse_args(argv)
    print(build_book(args.root, strict=not args.no_strict))


if __name__ == "__main__":
    main()
