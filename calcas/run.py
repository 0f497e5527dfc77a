"""The runner: execute the section notebooks in order with papermill for a named profile, then
build the book.

    python -m calcas run [--profile cpu|quick|paper] [--sections 02_calibration ...] [--no-book]

Each step runs a notebook of ``notebooks/`` in its own folder ``book/executed/<folder>/``
(the notebook's working directory), where it leaves the executed notebook, its
``results.json`` and, for the data steps, the record sets later steps read. The CPU default
runs sections 01-05 on MNIST-1D, then the same notebooks on public outputs of real models
(``calcas.datasets.public``); without that data those chapters become one line saying how to
get it. Same profile and seed, same bytes in every results.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

CPU_SECTIONS = ("01_extract", "02_calibration", "03_cascading", "04_cleaning", "05_results")


@dataclasses.dataclass(frozen=True)
class Step:
    folder: str                 # under book/executed/
    notebook: str               # under notebooks/
    params: dict
    needs_public_data: bool = False


def _pub(name: str) -> str:
    """A public record set, seen from a sibling folder of public/00_public_data."""
    return f"../00_public_data/records/{name}.parquet"


IMAGENET = ("ResNet50", "ViT", "DINO", "SimCLR")
ARC_PAIRS = {  # small -> large of the same family, and one large-large pair
    "Llama-2 7B → 13B": ("Llama-7b", "Llama-13b"), "Llama-2 13B → 70B": ("Llama-13b", "Llama-70b"),
    "Llama-3 8B → 70B": ("Llama3-8b", "Llama3-70b"), "Falcon 7B → 40B": ("Falcon-7b", "Falcon-40b"),
    "Yi 6B → 34B": ("Yi-6b", "Yi-34b"), "Mistral → Mixtral": ("Mistral", "Mixtral"),
    "GPT-3.5 → GPT-4": ("gpt-3.5-turbo", "gpt-4-turbo"), "large-large: Llama-3 70B + GPT-4": ("Llama3-70b", "gpt-4-turbo"),
}

PUBLIC_STEPS = (
    Step("public/00_public_data", "00_public_data", {}, True),
    Step("public/imagenet_calibration", "02_calibration",
         {"records": [_pub(f"imagenet_{m}") for m in IMAGENET], "n_boot": 200}, True),
    Step("public/imagenet_cascading", "03_cascading",
         {"pairs": {"ResNet-50 → ViT": [_pub("imagenet_ResNet50"), _pub("imagenet_ViT")],
                    "SimCLR → ResNet-50": [_pub("imagenet_SimCLR"), _pub("imagenet_ResNet50")],
                    "DINO → ViT": [_pub("imagenet_DINO"), _pub("imagenet_ViT")],
                    "large-large: ViT + DINO": [_pub("imagenet_ViT"), _pub("imagenet_DINO")]}}, True),
    Step("public/imagenet_cleaning", "04_cleaning",
         {"experts": [_pub(f"imagenet_{m}") for m in ("ViT", "DINO", "ResNet50")], "K": 10}, True),
    Step("public/mmlu_calibration", "02_calibration",
         {"records": [_pub("mmlu_Llama3-8b"), _pub("mmlu_Llama3-70b")], "n_boot": 500}, True),
    Step("public/mmlu_cascading", "03_cascading",
         {"pairs": {"Llama-3 8B → 70B": [_pub("mmlu_Llama3-8b"), _pub("mmlu_Llama3-70b")]}}, True),
    Step("public/arc_cascading", "03_cascading",
         {"pairs": {k: [_pub(f"arc_{a}"), _pub(f"arc_{b}")] for k, (a, b) in ARC_PAIRS.items()}}, True),
    Step("public/mmlu_redux", "06_mmlu_redux", {}, True),
    Step("public/07_public_summary", "07_public_summary", {}, True),
)

PROFILES: dict[str, dict[str, dict] | None] = {
    # The offline CPU default: MNIST-1D, four real models trained here with cross-fitting.
    "cpu": {},
    # A fast smoke run (tests, quick looks): fewer samples and bootstrap replicates.
    "quick": {"01_extract": {"n_samples": 3000, "n_folds": 2}, "02_calibration": {"n_boot": 50}},
    # The paper's GPU-scale settings need the timm / transformers extraction backends.
    "paper": None,
}


def plan(profile: str = "cpu") -> list[Step]:
    """The steps of a profile, in order."""
    if profile not in PROFILES:
        raise SystemExit(f"profile: unknown {profile!r}; expected one of {sorted(PROFILES)}")
    overrides = PROFILES[profile]
    if overrides is None:
        raise SystemExit(f"profile: {profile!r} needs the GPU extraction backends (timm / transformers), "
                         "which this version does not have yet; the book's 'Reproduce and re-run' chapter "
                         "gives the papermill commands per section")
    steps = [Step(s, s, overrides.get(s, {})) for s in CPU_SECTIONS]
    return steps + list(PUBLIC_STEPS)


def _placeholder(path: Path, title: str, message: str) -> None:
    """An executed-notebook stand-in for a chapter whose data is absent: one clear line."""
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\n**Data not available on this machine.** {message}")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    (path.parent / "results.json").write_text(json.dumps({"data": "missing", "message": message}) + "\n")


def run(profile: str = "cpu", *, sections: list[str] | None = None, book: bool = True,
        root: str | os.PathLike = ".") -> dict[str, float]:
    """Execute the steps of ``profile`` (or only those whose folder or notebook is in
    ``sections``), then build the book; return seconds per step."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .datasets.public import data_root, missing_data_message

    steps = plan(profile)
    if sections:
        known = {s.folder for s in steps} | {s.notebook for s in steps}
        unknown = [s for s in sections if s not in known]
        if unknown:
            raise SystemExit(f"sections: unknown {unknown}; expected folders or notebooks among {sorted(known)}")
        steps = [s for s in steps if s.folder in sections or s.notebook in sections]
    root = Path(root).resolve()
    have_public = data_root() is not None
    # The notebook kernel must be this interpreter, whatever PATH says.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    times: dict[str, float] = {}
    for i, step in enumerate(steps, 1):
        folder = root / "book" / "executed" / step.folder
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"{step.notebook}.ipynb"
        start = time.perf_counter()
        if step.needs_public_data and not have_public:
            print(f"[{i}/{len(steps)}] {step.folder}: public data not found, writing a one-line chapter", flush=True)
            title = step.folder.split("/")[-1].lstrip("0123456789_").replace("_", " ").capitalize()
            _placeholder(out, title, missing_data_message())
            continue
        params = {**step.params, "output_dir": "."}
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        print(f"[{i}/{len(steps)}] {step.folder} ({shown[:150]}{'...' if len(shown) > 150 else ''})", flush=True)
        try:
            papermill.execute_notebook(root / "notebooks" / f"{step.notebook}.ipynb", out, parameters=params,
                                       cwd=str(folder), kernel_name="python3", progress_bar=sys.stderr.isatty())
        except PapermillExecutionError as err:
            raise SystemExit(f"{step.folder} failed: {err.ename}: {err.evalue}\n"
                             f"(the executed notebook with the traceback: {out})")
        times[step.folder] = time.perf_counter() - start
        print(f"      done in {times[step.folder]:.1f} s", flush=True)
    if book:
        from .book import build_book
        start = time.perf_counter()
        print("building the book (jupyter-book, -W -n --keep-going)", flush=True)
        html = build_book(root)
        times["book build"] = time.perf_counter() - start
        print(f"      done in {times['book build']:.1f} s: {html / 'index.html'}")
    print("\nseconds per step:")
    for step, seconds in times.items():
        print(f"  {step:<30} {seconds:7.1f}")
    print(f"  {'total':<30} {sum(times.values()):7.1f}")
    return times


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m calcas run [--profile P] [--sections S ...] [--no-book]``."""
    parser = argparse.ArgumentParser(prog="python -m calcas", description="calcas command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="execute the section notebooks with papermill, then build the book")
    p.add_argument("--profile", default="cpu", help=f"one of {sorted(PROFILES)} (default cpu)")
    p.add_argument("--sections", nargs="+", help="a subset of the steps, by folder or notebook name")
    p.add_argument("--no-book", action="store_true", help="skip the Jupyter Book build")
    args = parser.parse_args(argv)
    run(args.profile, sections=args.sections, book=not args.no_book)
