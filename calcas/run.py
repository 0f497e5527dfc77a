"""The runner: execute the section notebooks in order with papermill for a named profile, then
build the book.

    python -m calcas run [--profile cpu|quick|paper] [--sections 02_calibration ...] [--no-book]

Each section runs in its own folder ``book/executed/<section>/`` (the notebook's working
directory), where it leaves the executed notebook, its ``results.json`` and, for
``01_extract``, the record sets the later sections read. Same profile and seed, same bytes
in every results.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .params import SECTIONS

ORDER = tuple(SECTIONS)

PROFILES: dict[str, dict[str, dict]] = {
    # The offline CPU default: MNIST-1D, four real models trained here with cross-fitting.
    "cpu": {},
    # A fast smoke run (tests, quick looks): fewer samples and bootstrap replicates.
    "quick": {"01_extract": {"n_samples": 3000, "n_folds": 2},
              "02_calibration": {"n_boot": 50}},
    # The paper's GPU-scale settings need the timm / transformers extraction backends.
    "paper": None,
}


def run(profile: str = "cpu", *, sections: list[str] | None = None, book: bool = True,
        root: str | os.PathLike = ".") -> dict[str, float]:
    """Execute ``sections`` (default: all, in order) for ``profile``; return seconds per step."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    if profile not in PROFILES:
        raise SystemExit(f"profile: unknown {profile!r}; expected one of {sorted(PROFILES)}")
    if PROFILES[profile] is None:
        raise SystemExit(f"profile: {profile!r} needs the GPU extraction backends (timm / transformers), "
                         "which this version does not have yet; the book's 'Reproduce on a GPU' chapter "
                         "gives the papermill commands per section")
    sections = list(sections or ORDER)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"sections: unknown {unknown}; expected some of {list(ORDER)}")
    root = Path(root).resolve()
    # The notebook kernel must be this interpreter, whatever PATH says.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    times: dict[str, float] = {}
    for i, section in enumerate(sections, 1):
        folder = root / "book" / "executed" / section
        folder.mkdir(parents=True, exist_ok=True)
        params = {**PROFILES[profile].get(section, {}), "output_dir": "."}
        print(f"[{i}/{len(sections)}] {section} ({', '.join(f'{k}={v!r}' for k, v in params.items())})", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(root / "notebooks" / f"{section}.ipynb", folder / f"{section}.ipynb",
                                       parameters=params, cwd=str(folder), kernel_name="python3",
                                       progress_bar=sys.stderr.isatty())
        except PapermillExecutionError as err:
            raise SystemExit(f"{section} failed: {err.ename}: {err.evalue}\n"
                             f"(the executed notebook with the traceback: {folder / (section + '.ipynb')})")
        times[section] = time.perf_counter() - start
        print(f"      done in {times[section]:.1f} s", flush=True)
    if book:
        from .book import build_book
        start = time.perf_counter()
        print("building the book (jupyter-book, -W -n --keep-going)", flush=True)
        html = build_book(root)
        times["book build"] = time.perf_counter() - start
        print(f"      done in {times['book build']:.1f} s: {html / 'index.html'}")
    print("\nseconds per step:")
    for step, seconds in times.items():
        print(f"  {step:<16} {seconds:7.1f}")
    print(f"  {'total':<16} {sum(times.values()):7.1f}")
    return times


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m calcas run [--profile P] [--sections S ...] [--no-book]``."""
    parser = argparse.ArgumentParser(prog="python -m calcas", description="calcas command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="execute the section notebooks with papermill, then build the book")
    p.add_argument("--profile", default="cpu", help=f"one of {sorted(PROFILES)} (default cpu)")
    p.add_argument("--sections", nargs="+", help=f"a subset of {list(ORDER)}")
    p.add_argument("--no-book", action="store_true", help="skip the Jupyter Book build")
    args = parser.parse_args(argv)
    run(args.profile, sections=args.sections, book=not args.no_book)
