"""The runner: execute the section notebooks with papermill for a named profile, then build
the book.

    python -m calcas run [--profile cpu|quick|paper] [--sections 02_calibration ...] [--no-book]
                         [--force] [--jobs N]

Each step runs a notebook of ``notebooks/`` in its own folder ``book/executed/<folder>/``
(the notebook's working directory), where it leaves the executed notebook, its
``results.json`` and, for the data steps, the record sets later steps read. The CPU default
runs sections 01-05 on MNIST-1D, then the same notebooks on public outputs of real models
(``calcas.datasets.public``); without that data those chapters become one line saying how to
get it. Same profile and seed, same bytes in every results.json.

Steps whose inputs have not changed are not run again: :mod:`calcas.execution_cache` keeps each
step's outputs under a key of its code cells, parameters, the outputs of the steps it reads
(:attr:`Step.reads`), the calcas source and the installed packages, in ``_build/cache/``
(``--force`` runs everything). Steps that do not depend on each other run side by side, one
per core (``--jobs``).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import execution_cache

CPU_SECTIONS = ("01_extract", "02_calibration", "03_cascading", "04_cleaning", "05_results", "10_chains",
                "08_lab", "09_ece_estimators")
#: What each CPU section reads: the record sets of 01_extract, or (05_results) the results.json
#: of the chapters it sums up.
CPU_READS = {"02_calibration": ("01_extract",), "03_cascading": ("01_extract",), "04_cleaning": ("01_extract",),
             "05_results": ("02_calibration", "03_cascading", "04_cleaning"), "10_chains": ("01_extract",)}


@dataclasses.dataclass(frozen=True)
class Step:
    """One notebook run: where, which notebook, with what, and what it reads.

    ``reads`` names the earlier steps (their folders) whose outputs the notebook opens: record
    sets through relative paths such as ``../01_extract/records/...``, or ``results.json``
    through ``results_dir``. A step starts only after them, and its cache key holds their
    outputs' content. ``reads_public_data``: the step converts the public data files
    themselves (their content is in its key). ``uses_every_core``: the notebook itself runs
    one process per core, so the runner runs it alone, and first when it can.
    """
    folder: str                 # under book/executed/
    notebook: str               # under notebooks/
    params: dict
    needs_public_data: bool = False
    reads: tuple[str, ...] = ()
    reads_public_data: bool = False
    uses_every_core: bool = False


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

#: Chains of public models for the chain chapter, in chain order, and their cost per call: the published
#: GFLOPs per image at 224 px (ResNet-50 4.1, SimCLR's ResNet-50 4.1; ImageNet-X does not name its ViT:
#: ViT-B/16, 17.6, is assumed) and, for the language models, billions of parameters (a forward pass costs
#: about two FLOPs per parameter per token; prompts are the same for every model of a chain).
CHAINS = {
    "ImageNet: SimCLR → ResNet-50 → ViT": (("imagenet_SimCLR", "imagenet_ResNet50", "imagenet_ViT"), (4.1, 4.1, 17.6)),
    "ARC: Llama-2 7B → 13B → 70B": (("arc_Llama-7b", "arc_Llama-13b", "arc_Llama-70b"), (7, 13, 70)),
    "ARC: Llama-3 8B → 70B": (("arc_Llama3-8b", "arc_Llama3-70b"), (8, 70)),
    "ARC: Yi 6B → 34B": (("arc_Yi-6b", "arc_Yi-34b"), (6, 34)),
    "MMLU: Llama-3 8B → 70B": (("mmlu_Llama3-8b", "mmlu_Llama3-70b"), (8, 70)),
}

_PUBLIC_DATA = ("public/00_public_data",)
#: The public chapters 07_public_summary sums up (its notebook's read_results list).
PUBLIC_SUMMARISED = ("imagenet_calibration", "mmlu_calibration", "imagenet_cascading", "mmlu_cascading",
                     "arc_cascading", "imagenet_cleaning", "mmlu_redux")

PUBLIC_STEPS = (
    Step("public/00_public_data", "00_public_data", {}, True, reads_public_data=True),
    Step("public/imagenet_calibration", "02_calibration",
         {"records": [_pub(f"imagenet_{m}") for m in IMAGENET], "n_boot": 200}, True, _PUBLIC_DATA),
    Step("public/imagenet_cascading", "03_cascading",
         {"pairs": {"ResNet-50 → ViT": [_pub("imagenet_ResNet50"), _pub("imagenet_ViT")],
                    "SimCLR → ResNet-50": [_pub("imagenet_SimCLR"), _pub("imagenet_ResNet50")],
                    "DINO → ViT": [_pub("imagenet_DINO"), _pub("imagenet_ViT")],
                    "large-large: ViT + DINO": [_pub("imagenet_ViT"), _pub("imagenet_DINO")]}}, True, _PUBLIC_DATA),
    Step("public/imagenet_cleaning", "04_cleaning",
         {"experts": [_pub(f"imagenet_{m}") for m in ("ViT", "DINO", "ResNet50")], "K": 10}, True, _PUBLIC_DATA),
    Step("public/mmlu_calibration", "02_calibration",
         {"records": [_pub("mmlu_Llama3-8b"), _pub("mmlu_Llama3-70b")], "n_boot": 500}, True, _PUBLIC_DATA),
    Step("public/mmlu_cascading", "03_cascading",
         {"pairs": {"Llama-3 8B → 70B": [_pub("mmlu_Llama3-8b"), _pub("mmlu_Llama3-70b")]}}, True, _PUBLIC_DATA),
    Step("public/arc_cascading", "03_cascading",
         {"pairs": {k: [_pub(f"arc_{a}"), _pub(f"arc_{b}")] for k, (a, b) in ARC_PAIRS.items()}}, True, _PUBLIC_DATA),
    Step("public/chains", "10_chains",
         {"chains": {k: [_pub(m) for m in models] for k, (models, _) in CHAINS.items()},
          "costs": {k: list(costs) for k, (_, costs) in CHAINS.items()},
          # 300 re-splits: both certification methods at six levels on 50,000 ImageNet rows cost about
          # 0.2 s a re-split; 300 keep the Wilson intervals within 0.04 of a 5% rate
          "n_splits": 300}, True, _PUBLIC_DATA),
    Step("public/mmlu_redux", "06_mmlu_redux", {}, True, _PUBLIC_DATA),
    # 200 bootstrap replicates, as the ImageNet calibration chapter: the ECE intervals are most of the step's time
    Step("public/shift", "11_shift", {"n_boot": 200}, True, _PUBLIC_DATA, reads_public_data=True),
    Step("public/07_public_summary", "07_public_summary", {}, True,
         tuple(f"public/{name}" for name in PUBLIC_SUMMARISED)),
)

# ---------------------------------------------------------------------------- the paper, on GPUs
# Models the paper names (SPEC §5), and our picks where it does not name them (marked "ours").
EVA02_M38M = "eva02_large_patch14_448.mim_m38m_ft_in22k_in1k"   # paper, model 1
EVA02_IN22K = "eva02_large_patch14_448.mim_in22k_ft_in22k_in1k"  # paper, model 2
SMALL_EXTERNAL = "vit_small_patch16_224.augreg_in21k_ft_in1k"    # ours: small, pretrained beyond ImageNet
SMALL_IN1K, LARGE_IN1K = "resnet50.a1_in1k", "deit3_large_patch16_384.fb_in1k"  # ours: ImageNet-only pair
EXPERTS = ("eva_giant_patch14_560.m30m_ft_in22k_in1k", "eva02_large_patch14_448.mim_m38m_ft_in1k")  # ours
LLAMA_8B, LLAMA_70B = "meta-llama/Meta-Llama-3-8B-Instruct", "meta-llama/Meta-Llama-3-70B-Instruct"
QWEN_32B = "Qwen/Qwen2.5-32B-Instruct"  # ours: the paper says "Qwen-32B"
LLM_TASKS = {"mmlu": "MMLU", "arc": "ARC-Challenge", "gsm8k": "GSM8K", "mbpp": "MBPP", "bigcodebench": "BigCodeBench"}
#: Shell variables the paper profile reads: the ImageNet-1k val folder (class sub-folders, file
#: names ILSVRC2012_val_*.JPEG) and the number of GPUs vLLM shards a language model over.
PAPER_ENV = {"CALCAS_IMAGENET_VAL": None, "CALCAS_TENSOR_PARALLEL": "8"}


def _name(model: str, task: str | None = None) -> str:
    from .extract.jobs import record_name
    return record_name(model, task)


def _paper_steps(env: dict[str, str]) -> list[Step]:
    """The steps that reproduce the paper's tables and figures, given :data:`PAPER_ENV` values."""
    def vis(model: str) -> str:
        return f"../imagenet_extract/records/{_name(model)}.parquet"

    def llm(task: str, model: str) -> str:
        return f"../{task}_extract/records/{_name(model, task)}.parquet"

    vision_models = [EVA02_M38M, EVA02_IN22K, SMALL_EXTERNAL, SMALL_IN1K, LARGE_IN1K, *EXPERTS]
    tp = int(env["CALCAS_TENSOR_PARALLEL"])
    images = ("paper/imagenet_extract",)
    steps = [Step("paper/imagenet_extract", "01_extract",
                  {"source": "timm", "models": vision_models, "data": env["CALCAS_IMAGENET_VAL"], "dtype": "bf16",
                   "imagenet_real": True}),
             Step("paper/imagenet_calibration", "02_calibration", {"records": [vis(EVA02_M38M)]}, reads=images),
             Step("paper/imagenet_cascading", "03_cascading",
                  {"pairs": {"(a) ViT-S → EVA02-L, beyond ImageNet": [vis(SMALL_EXTERNAL), vis(EVA02_M38M)],
                             "(b) ResNet-50 → DeiT3-L, ImageNet only": [vis(SMALL_IN1K), vis(LARGE_IN1K)],
                             "(c) large-large: EVA02-L m38m + in22k": [vis(EVA02_M38M), vis(EVA02_IN22K)]}},
                  reads=images),
             Step("paper/imagenet_cleaning", "04_cleaning", {"experts": [vis(m) for m in EXPERTS], "K": 10},
                  reads=images)]
    for task in LLM_TASKS:
        models = [LLAMA_8B, LLAMA_70B] + ([QWEN_32B] if task == "mmlu" else [])
        steps.append(Step(f"paper/{task}_extract", "01_extract",
                          {"source": "vllm", "models": models, "task": task, "data": "hf", "dtype": "bf16",
                           "tensor_parallel_size": tp}))
    steps.append(Step("paper/mmlu_calibration", "02_calibration", {"records": [llm("mmlu", LLAMA_8B)]},
                      reads=("paper/mmlu_extract",)))
    pairs = {f"({'abcde'[i]}) {title}: Llama-3 8B → 70B": [llm(t, LLAMA_8B), llm(t, LLAMA_70B)]
             for i, (t, title) in enumerate(LLM_TASKS.items())}
    pairs["(f) large-large MMLU: Qwen-32B + Llama-3 70B"] = [llm("mmlu", QWEN_32B), llm("mmlu", LLAMA_70B)]
    steps.append(Step("paper/llm_cascading", "03_cascading", {"pairs": pairs},
                      reads=tuple(f"paper/{task}_extract" for task in LLM_TASKS)))
    return steps


#: What each paper step reproduces (book/reproduce.md lists the commands in this order).
PAPER_TARGETS = {
    "paper/imagenet_extract": "record sets of seven timm models on ImageNet-1k val, with ReaL labels",
    "paper/imagenet_calibration": "Table 1 and Figure 1a: EVA02-L-448 before and after temperature scaling",
    "paper/imagenet_cascading": "Figure 2 (a)-(c), Table 2's original column: ImageNet cascades",
    "paper/imagenet_cleaning": "Table 3 and Figure 4: two experts against Confident Learning; ReaL stands in "
                               "for the paper's human check",
    **{f"paper/{t}_extract": f"record sets of the LLMs on {title} (vLLM)" for t, title in LLM_TASKS.items()},
    "paper/mmlu_calibration": "Table 1 and Figure 1b: Llama-3-8B-Instruct on MMLU",
    "paper/llm_cascading": "Figure 3 (a)-(f): Llama-3 8B → 70B on five tasks, Qwen-32B + Llama-3 70B on MMLU",
}

#: The paper profile's book: its own table of contents and build folder.
PAPER_BOOK = {"toc": "_toc_paper.yml", "output": "_build/paper"}

PROFILES: dict[str, dict[str, dict] | None] = {
    # The offline CPU default: MNIST-1D, four real models trained here with cross-fitting.
    "cpu": {},
    # A fast smoke run (tests, quick looks): fewer samples and bootstrap replicates.
    "quick": {"01_extract": {"n_samples": 3000, "n_folds": 2}, "02_calibration": {"n_boot": 50},
              "10_chains": {"n_splits": 50}},
    # The paper's experiments: real models on ImageNet and five LLM benchmarks (GPUs, hub access).
    "paper": None,
}


def _paper_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    env = {k: environ.get(k, default) for k, default in PAPER_ENV.items()}
    missing = [k for k, v in env.items() if not v]
    if missing:
        raise SystemExit(f"profile: 'paper' needs {', '.join(missing)} set: the ImageNet-1k val folder "
                         "(class sub-folders of ILSVRC2012_val_*.JPEG files); see the book's Reproduce and re-run page")
    if not env["CALCAS_TENSOR_PARALLEL"].isdigit() or int(env["CALCAS_TENSOR_PARALLEL"]) < 1:
        raise SystemExit(f"CALCAS_TENSOR_PARALLEL: must be a positive integer, got {env['CALCAS_TENSOR_PARALLEL']!r}")
    return env


def plan(profile: str = "cpu", *, environ: dict[str, str] | None = None) -> list[Step]:
    """The steps of a profile, in order (``environ``: where the paper profile reads
    :data:`PAPER_ENV`; default ``os.environ``)."""
    if profile not in PROFILES:
        raise SystemExit(f"profile: unknown {profile!r}; expected one of {sorted(PROFILES)}")
    if profile == "paper":
        return _paper_steps(_paper_env(environ))
    overrides = PROFILES[profile]
    # the full-size MNIST-1D pool trains one process per core (calcas.datasets.mnist1d); quick's is small
    steps = [Step(s, s, overrides.get(s, {}), reads=CPU_READS.get(s, ()),
                  uses_every_core=s == "01_extract" and profile == "cpu") for s in CPU_SECTIONS]
    return steps + list(PUBLIC_STEPS)


def _commands(steps: list[Step], targets: dict[str, str]) -> list[str]:
    """The papermill command of each step, as a user types it from the repository root, each
    after a comment saying what it gives."""
    import shlex
    lines = []
    for step in steps:
        folder = f"book/executed/{step.folder}"
        args = []
        for key, value in step.params.items():
            if isinstance(value, str) and value.startswith("${"):
                args.append(f'-p {key} "{value}"')
            elif isinstance(value, (str, int, float)):
                args.append(f"-p {key} {shlex.quote(str(value))}")
            else:
                args.append(f"-y {shlex.quote(json.dumps({key: value}, ensure_ascii=False))}")
        lines.append(f"# {step.folder}: {targets[step.folder]}")
        lines.append((f"mkdir -p {folder} && papermill notebooks/{step.notebook}.ipynb "
                      f"{folder}/{step.notebook}.ipynb --cwd {folder} -p output_dir . " + " ".join(args)).rstrip())
    return lines


def paper_commands() -> list[str]:
    """The papermill command of every paper step, as a user types it (shell variables for
    :data:`PAPER_ENV`), each after a comment saying what it reproduces."""
    placeholders = {k: f"${{{k}}}" for k in PAPER_ENV}
    return _commands(_paper_steps({**placeholders, "CALCAS_TENSOR_PARALLEL": "8"}), PAPER_TARGETS)


def public_commands(root: str | os.PathLike = ".") -> list[str]:
    """The papermill command of every public-data chapter (after ``public/00_public_data``
    has written the record sets), each after a comment naming the chapter."""
    texts = chapter_texts(root)
    return _commands(list(PUBLIC_STEPS), {s.folder: texts.get(s.folder, {}).get("title", s.folder)
                                          for s in PUBLIC_STEPS})


def chapter_texts(root: str | os.PathLike = ".") -> dict[str, dict[str, str]]:
    """Title and opening paragraph of each CPU-book chapter, by folder (``book/chapters.yml``)."""
    import yaml
    path = Path(root) / "book" / "chapters.yml"
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def launch_links(notebook: str, root: str | os.PathLike = ".") -> str:
    """One Markdown line: where to run a chapter's notebook yourself.

    Binder builds ``environment.yml`` (and ``postBuild``) of the repository named by
    ``repository.url`` in ``_config.yml``; Colab opens the notebook from GitHub. Both are plain
    links: the page loads nothing from them. Without a repository URL (a local clone) the line
    names the notebook and the download button. The theme's download button offers the
    executed notebook on every chapter page either way.
    """
    import yaml
    config = yaml.safe_load((Path(root) / "_config.yml").read_text()) or {}
    repo = (config.get("repository") or {}).get("url") or ""
    branch = (config.get("repository") or {}).get("branch") or "main"
    where = f"`notebooks/{notebook}.ipynb`"
    if not repo.startswith("https://github.com/"):
        return (f"*Run it yourself:* {where} in this repository (papermill parameters: see {{doc}}`Reproduce and "
                "re-run </book/reproduce>`), or download this executed notebook with the download button above.")
    slug = repo.removeprefix("https://github.com/").strip("/")
    binder = f"https://mybinder.org/v2/gh/{slug}/{branch}?labpath=notebooks%2F{notebook}.ipynb"
    colab = f"https://colab.research.google.com/github/{slug}/blob/{branch}/notebooks/{notebook}.ipynb"
    return (f"*Run it yourself:* {where} [on Binder]({binder}) or [in Colab]({colab}), or download this "
            "executed notebook with the download button above.")


def finish_chapter(path: Path, text: dict[str, str] | None, results: dict | None,
                   launch: str | None = None) -> None:
    """Give an executed notebook its chapter's title and opening, and drop the sections it has
    nothing to show for.

    The notebook's first cell is a Markdown cell starting with its generic ``# title``; a
    chapter's title replaces that line and its opening paragraph follows it. Cells tagged
    ``only-if:<key>`` are dropped when the section's ``results.json`` says
    ``"shown": {"<key>": false}`` (no true labels, no class probabilities, ...). ``launch``
    (see :func:`launch_links`) is added after the opening. Papermill's injected-parameters
    cell is hidden when it only sets the runner's ``output_dir``; one that sets the chapter's
    data (the public chapters) becomes the one parameters cell a reader sees
    (:func:`merged_parameters`: every parameter with the value the page ran with), and the
    notebook's own defaults cell, whose record sets are the CPU book's, is hidden.
    """
    import nbformat
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    if text and first.cell_type == "markdown" and first.source.startswith("# "):
        rest = first.source.split("\n", 1)[1] if "\n" in first.source else ""
        opening = f"\n\n{text['opening'].strip()}" if text.get("opening") else ""
        launch_line = f"\n\n{launch}" if launch else ""
        first.source = f"# {text['title']}{opening}{launch_line}\n{rest}"
    shown = (results or {}).get("shown", {})

    def keep(cell: Any) -> bool:
        keys = [t.split(":", 1)[1] for t in cell.metadata.get("tags", []) if t.startswith("only-if:")]
        return all(shown.get(k, True) for k in keys)
    nb.cells = [c for c in nb.cells if keep(c)]
    defaults = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    for cell in nb.cells:  # the runner's own output_dir = "." says nothing to a reader
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            if _assignments(cell.source) == {"output_dir"}:
                cell.metadata["tags"] = [*tags, "remove-cell"]
                continue
            merged = None if defaults is None else merged_parameters(defaults.source, cell.source)
            if merged is None:
                cell.source = readable_parameters(cell.source)
            else:  # one cell with what the page ran on; the notebook's defaults would mislead beside it
                cell.source = merged
                defaults.metadata["tags"] = [*defaults.metadata.get("tags", []), "remove-cell"]
    nbformat.write(nb, path)


def merged_parameters(defaults: str, injected: str) -> str | None:
    """The parameters a page ran with, as one readable cell: every parameter of the notebook's
    own cell (``name: type = default  # what it is``) in its order, with the value papermill
    injected where it injected one, else the default; each preceded by its comment; the
    runner's ``output_dir`` left out. None where either cell is not plain literal assignments."""
    import ast
    try:
        own, given = ast.parse(defaults).body, ast.parse(injected).body
        values = {n.targets[0].id: ast.literal_eval(n.value) for n in given
                  if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)}
        if not all(isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None
                   for n in own):
            return None
        lines = defaults.splitlines()
        out = ["# The parameters this page ran with (papermill's, over the notebook's defaults)"]
        for node in own:
            name = node.target.id
            if name == "output_dir":
                continue
            value = values[name] if name in values else ast.literal_eval(node.value)
            comment = lines[node.end_lineno - 1].split("#", 1)[1].strip() if "#" in lines[node.end_lineno - 1] else ""
            out += ([f"# {comment}"] if comment else []) + [f"{name} = {_wrapped_literal(value, len(name) + 3)}"]
        return "\n".join(out) + "\n"
    except (SyntaxError, ValueError, TypeError, KeyError, MemoryError, RecursionError):
        return None


def readable_parameters(source: str) -> str:
    """The injected-parameters cell as a reader should see it: the same values, one name a
    line, long values wrapped, strings as written ("→", not papermill's ``\\u2192`` escapes).

    Comment lines are kept; a source that is not plain ``name = literal`` lines is returned
    unchanged, so nothing a kernel ran is ever misrepresented.
    """
    import ast
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return source
    if not all(isinstance(node, ast.Assign) and len(node.targets) == 1
               and isinstance(node.targets[0], ast.Name) for node in body):
        return source
    try:
        assigned = [(node.targets[0].id, ast.literal_eval(node.value)) for node in body]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return source
    comments = [line for line in source.splitlines() if line.lstrip().startswith("#")]
    lines = [f"{name} = {_wrapped_literal(value, len(name) + 3)}" for name, value in assigned]
    return "\n".join([*comments, *lines]) + "\n"


def _wrapped_literal(value: Any, start: int, *, indent: int = 0, width: int = 64) -> str:
    """``repr(value)``, with a list, tuple or dict that does not fit before ``width`` opened one
    item a line at a hanging indent of four (the column of a book's code cell is narrow)."""
    text = repr(value)
    brackets = {dict: "{}", list: "[]", tuple: "()"}.get(type(value))
    if start + len(text) <= width or brackets is None or not value:
        return text
    inner = indent + 4
    if isinstance(value, dict):
        items = [f"{k!r}: {_wrapped_literal(v, inner + len(repr(k)) + 2, indent=inner, width=width)}"
                 for k, v in value.items()]
    else:
        items = [_wrapped_literal(v, inner, indent=inner, width=width) for v in value]
    body = "".join(f"{' ' * inner}{item},\n" for item in items)
    return f"{brackets[0]}\n{body}{' ' * indent}{brackets[1]}"


def _assignments(source: str) -> set[str]:
    """The names a parameters cell assigns."""
    return {line.split("=", 1)[0].strip() for line in source.splitlines()
            if "=" in line and not line.lstrip().startswith("#")}


def _placeholder(path: Path, title: str, message: str) -> None:
    """An executed-notebook stand-in for a chapter whose data is absent: one clear line."""
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\n**Data not available on this machine.** {message}")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    (path.parent / "results.json").write_text(json.dumps({"data": "missing", "message": message}) + "\n")


def _ipc_kernel_manager() -> type:
    """A kernel manager whose kernels talk over local Unix sockets, not TCP: nothing listens on a
    port, and the kernel has no reason to warn about unencrypted TCP at every step."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
    return IPCKernelManager


#: Seconds of each CPU-profile step in a reference build (a quiet 2-core machine). They only
#: order the ready steps of a first build, longest chain first; once a step has run here, its
#: own time (``_build/cache/seconds.json``) is used instead.
REFERENCE_SECONDS = {
    "01_extract": 94, "02_calibration": 27, "03_cascading": 8, "04_cleaning": 8, "05_results": 6, "10_chains": 38,
    "08_lab": 16, "09_ece_estimators": 40, "public/00_public_data": 9, "public/imagenet_calibration": 16,
    "public/imagenet_cascading": 24, "public/imagenet_cleaning": 11, "public/mmlu_calibration": 11,
    "public/mmlu_cascading": 5.5, "public/arc_cascading": 14, "public/chains": 70, "public/mmlu_redux": 4,
    "public/shift": 60, "public/07_public_summary": 4}

#: The execution cache, under the book's build folder (``make clean`` removes it).
CACHE_DIR = Path("_build") / "cache"
#: The calcas package the notebooks import: its source is part of every step's key.
PACKAGE_DIR = Path(__file__).resolve().parent


def public_data_digest() -> str:
    """The content of the public data files a conversion step reads (every registered file
    under :func:`calcas.datasets.public.data_root`; a missing one counts as missing)."""
    from .datasets.public import FILES, data_root
    root = data_root()
    if root is None:
        return execution_cache.json_digest(None)
    return execution_cache.json_digest({path: execution_cache.file_sha256(root / path) if (root / path).is_file()
                                        else "missing" for path in sorted(FILES)})


def _execute(notebook: str, out: str, params: dict[str, Any], cwd: str) -> tuple[float, str | None]:
    """Run one notebook with papermill (in a worker process); return its seconds and, when a
    cell failed, ``"<error name>: <value>"`` instead of raising (a papermill error does not
    cross a process boundary whole)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    try:
        papermill.execute_notebook(notebook, out, parameters=params, cwd=cwd, kernel_name="python3",
                                   progress_bar=False, kernel_manager_class=_ipc_kernel_manager())
    except PapermillExecutionError as err:
        return time.perf_counter() - start, f"{err.ename}: {err.evalue}"
    except Exception as err:  # a kernel that dies, a notebook papermill cannot read
        return time.perf_counter() - start, f"{type(err).__name__}: {err}"
    return time.perf_counter() - start, None


def _clear(folder: Path) -> None:
    """Empty a step's folder before it runs, so that what the step leaves there (and what the
    cache keeps) is exactly what this run wrote."""
    if folder.is_dir():
        for path in folder.iterdir():
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _critical_paths(steps: list[Step], seconds: dict[str, float]) -> dict[str, float]:
    """For each step, the longest chain of recorded seconds from it to the end of the run: the
    order in which ready steps start (unknown steps count 0, and then the plan order decides)."""
    later: dict[str, list[str]] = {s.folder: [] for s in steps}
    for step in steps:
        for dep in step.reads:
            if dep in later:
                later[dep].append(step.folder)
    longest: dict[str, float] = {}
    for step in reversed(steps):  # reads point backwards in a plan
        longest[step.folder] = seconds.get(step.folder, 0.0) + max(
            (longest[f] for f in later[step.folder] if f in longest), default=0.0)
    return longest


class _Build:
    """What :func:`run` needs to know of one build: its steps, where they write, their cache
    keys, and how a cached step's files and page are put in place."""

    def __init__(self, steps: list[Step], every_step: list[Step], profile: str, root: Path, *,
                 force: bool, have_public: bool) -> None:
        self.steps, self.profile, self.root, self.force, self.have_public = steps, profile, root, force, have_public
        self.notebook_of = {s.folder: s.notebook for s in every_step}
        self.cache_dir = root / CACHE_DIR
        self.texts = chapter_texts(root) if profile != "paper" else {}
        self.source = execution_cache.source_digest(PACKAGE_DIR)
        self.environment = execution_cache.environment_digest()
        self.seconds_file = self.cache_dir / "seconds.json"
        try:
            self.seconds = json.loads(self.seconds_file.read_text())
        except (OSError, ValueError):
            self.seconds = {}

    def folder(self, step: Step) -> Path:
        return self.root / "book" / "executed" / step.folder

    def key(self, step: Step) -> str:
        """The cache key of ``step``, from the current outputs of the steps it reads."""
        inputs = {dep: execution_cache.folder_digest(self.root / "book" / "executed" / dep,
                                                     skip=f"{self.notebook_of.get(dep, '')}.ipynb")
                  for dep in step.reads}
        if step.reads_public_data:
            inputs["public data"] = public_data_digest()
        return execution_cache.step_key(notebook=self.root / "notebooks" / f"{step.notebook}.ipynb",
                                        profile=self.profile, params={**step.params, "output_dir": "."},
                                        inputs=inputs, source=self.source, environment=self.environment)

    def cached(self, key: str) -> dict[str, Any] | None:
        """The whole cache entry of ``key``; None when there is none, or with ``force``."""
        return None if self.force else execution_cache.load_entry(self.cache_dir, key)

    def keep(self, step: Step, key: str, seconds: float) -> dict[str, Any]:
        """Store the outputs of a step just run under ``key`` and note its seconds; returns the
        entry as read back (and checked)."""
        folder = self.folder(step)
        execution_cache.store_entry(self.cache_dir, key, folder / f"{step.notebook}.ipynb", folder,
                                    info={"step": step.folder, "seconds": round(seconds, 1)})
        self.seconds[step.folder] = round(seconds, 1)
        self.seconds_file.write_text(json.dumps(self.seconds, indent=1, sort_keys=True) + "\n")
        entry = execution_cache.load_entry(self.cache_dir, key)
        if entry is None:
            raise RuntimeError(f"{step.folder}: the cache entry just written does not read back whole: "
                               f"{self.cache_dir / key}")
        return entry

    def publish(self, step: Step, entry: dict[str, Any]) -> None:
        """Put a cached step in place: its files, and its page rebuilt from the cached outputs
        with the current notebook's Markdown and chapter text. Files whose bytes are already
        right are not rewritten, so the book build does not read them again."""
        import nbformat
        folder = self.folder(step)
        page = folder / f"{step.notebook}.ipynb"
        execution_cache.restore_files(entry, folder, keep=page.name)
        executed = json.loads((Path(entry["path"]) / execution_cache.EXECUTED_FILE).read_text(encoding="utf-8"))
        current = json.loads((self.root / "notebooks" / f"{step.notebook}.ipynb").read_text(encoding="utf-8"))
        nb = nbformat.from_dict(execution_cache.assemble_notebook(executed, current))
        results = folder / "results.json"
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as tmp:
            draft = Path(tmp) / page.name
            nbformat.write(nb, draft)
            launch = launch_links(step.notebook, self.root) if self.profile != "paper" else None
            finish_chapter(draft, self.texts.get(step.folder),
                           json.loads(results.read_text()) if results.exists() else None, launch=launch)
            if not page.is_file() or page.read_bytes() != draft.read_bytes():
                os.replace(draft, page)

    def placeholder(self, step: Step) -> None:
        """The one-line chapter of a step whose public data is absent (never cached)."""
        from .datasets.public import missing_data_message
        folder = self.folder(step)
        _clear(folder)
        title = self.texts.get(step.folder, {}).get("title") or \
            step.folder.split("/")[-1].lstrip("0123456789_").replace("_", " ").capitalize()
        _placeholder(folder / f"{step.notebook}.ipynb", title, missing_data_message())


def run(profile: str = "cpu", *, sections: list[str] | None = None, book: bool = True,
        root: str | os.PathLike = ".", force: bool = False, jobs: int | None = None,
        steps: list[Step] | None = None) -> dict[str, float]:
    """Execute the steps of ``profile`` (or only those whose folder or notebook is in
    ``sections``) that the cache does not hold, then build the book.

    Parameters
    ----------
    profile : str
        One of :data:`PROFILES`.
    sections : list of str, optional
        Folders or notebook names; the other steps are left as they are (a step still reads
        an earlier step's folder as it finds it).
    book : bool
        Build the Jupyter Book afterwards.
    root : path
        The repository root (``notebooks/``, ``book/``, ``_build/``).
    force : bool
        Run every selected step, ignoring the cache (and refreshing it).
    jobs : int, optional
        Steps run at once (default: the cores this process may use); a step waits for the
        steps it reads.
    steps : list of Step, optional
        Run these instead of the profile's plan (tests).

    Returns
    -------
    dict
        Seconds of each step that ran (a cached step is not listed), and of the book build.
    """
    every_step = plan(profile) if steps is None else list(steps)
    selected = every_step
    if sections:
        known = {s.folder for s in every_step} | {s.notebook for s in every_step}
        unknown = [s for s in sections if s not in known]
        if unknown:
            raise SystemExit(f"sections: unknown {unknown}; expected folders or notebooks among {sorted(known)}")
        selected = [s for s in every_step if s.folder in sections or s.notebook in sections]
    if jobs is None:  # the cores this process may use (taskset, cgroups), not all the machine's
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SystemExit(f"jobs: expected a positive number of steps run at once, got {jobs!r}")
    root = Path(root).resolve()
    have_public = False
    if any(s.needs_public_data for s in selected):
        from .datasets.public import ensure_data
        # fetched into the cache first when missing and reachable; offline, those chapters are placeholders
        have_public = ensure_data() is not None
    # The notebook kernel must be this interpreter, whatever PATH says (workers inherit it).
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    build = _Build(selected, every_step, profile, root, force=force, have_public=have_public)
    times = _run_steps(build, jobs)
    if book:
        from .render.book import build_book
        start = time.perf_counter()
        print(f"{'[book]':>7} {'jupyter-book build -W -n':<34}", end=" ", flush=True)
        # the paper's chapters make a book of their own (_toc_paper.yml), beside the CPU book
        html = build_book(root, **PAPER_BOOK) if profile == "paper" else build_book(root)
        times["book build"] = time.perf_counter() - start
        print(f"{times['book build']:6.1f} s -> {html / 'index.html'}")
    return times


def _run_steps(build: _Build, jobs: int) -> dict[str, float]:
    """Run ``build``'s steps, each once the steps it reads are done, at most ``jobs`` at once;
    a cached step is put in place at once. Prints one line per step as it finishes."""
    pending = list(build.steps)
    order = {s.folder: i for i, s in enumerate(pending)}
    priority = _critical_paths(pending, {**REFERENCE_SECONDS, **build.seconds})
    running: dict[concurrent.futures.Future, tuple[Step, str]] = {}
    times: dict[str, float] = {}
    failures: list[str] = []
    finished = 0
    start = time.perf_counter()

    def report(step: Step, status: str) -> None:
        nonlocal finished
        finished += 1
        print(f"[{finished:>2}/{len(build.steps)}] {step.folder:<34} {status}", flush=True)

    def waiting_on(step: Step) -> bool:
        busy = {s.folder for s in pending} | {s.folder for s, _ in running.values()}
        return any(dep in busy for dep in step.reads)

    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        while pending or running:
            progressed = True
            while progressed and not failures:
                progressed = False
                # a step that uses every core runs alone: once it is the first ready one to wait
                # for room, nothing after it starts (it would wait for ever behind them)
                alone = any(s.uses_every_core for s, _ in running.values())
                for step in sorted(pending, key=lambda s: (-priority[s.folder], order[s.folder])):
                    if waiting_on(step):
                        continue
                    if step.needs_public_data and not build.have_public:
                        pending.remove(step)
                        build.placeholder(step)
                        report(step, "public data not found: a one-line chapter")
                        progressed = True
                        break
                    key = build.key(step)
                    entry = build.cached(key)
                    if entry is not None:
                        pending.remove(step)
                        build.publish(step, entry)
                        report(step, "cached")
                        progressed = True
                        break
                    room = not running if step.uses_every_core else len(running) < jobs
                    if room and not alone:
                        pending.remove(step)
                        folder = build.folder(step)
                        _clear(folder)
                        future = pool.submit(_execute, str(build.root / "notebooks" / f"{step.notebook}.ipynb"),
                                             str(folder / f"{step.notebook}.ipynb"),
                                             {**step.params, "output_dir": "."}, str(folder))
                        running[future] = (step, key)
                        progressed = True
                        break
                    alone = alone or step.uses_every_core
            if not running:
                if failures or not pending:
                    break
                raise RuntimeError(f"steps wait on each other: {[s.folder for s in pending]}")
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                step, key = running.pop(future)
                seconds, error = future.result()
                if error is not None:
                    report(step, "failed")
                    failures.append(f"{step.folder}: {error}\n(the executed notebook with the traceback: "
                                    f"{build.folder(step) / f'{step.notebook}.ipynb'})")
                    continue
                build.publish(step, build.keep(step, key, seconds))
                times[step.folder] = seconds
                report(step, f"{seconds:6.1f} s")
            if failures:
                pending.clear()
    execution_cache.prune(build.cache_dir)
    if failures:
        raise SystemExit("failed\n" + "\n".join(failures))
    print(f"{'':>7} {'steps (wall clock)':<34} {time.perf_counter() - start:6.1f} s", flush=True)
    return times


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m calcas run [--profile P] [--sections S ...] [--no-book] [--force]
    [--jobs N]``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report"]:  # its own parser: python -m calcas report --help
        from .user_report import main as report_main
        raise SystemExit(report_main(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m calcas", description="calcas command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("report", help="the paper's diagnosis of your own model outputs (CSV or Parquet) as a "
                                  "page: python -m calcas report FILE [FILE ...] --out DIR")
    p = sub.add_parser("run", help="execute the section notebooks with papermill, then build the book")
    p.add_argument("--profile", default="cpu", help=f"one of {sorted(PROFILES)} (default cpu)")
    p.add_argument("--sections", nargs="+", help="a subset of the steps, by folder or notebook name")
    p.add_argument("--no-book", action="store_true", help="skip the Jupyter Book build")
    p.add_argument("--force", action="store_true", help="run every step again, ignoring the execution cache")
    p.add_argument("--jobs", type=int, default=None,
                   help="steps run at once, each after the steps it reads (default: the number of cores)")
    p.add_argument("--print-commands", action="store_true",
                   help="print the papermill commands of the paper profile and exit")
    args = parser.parse_args(argv)
    if args.print_commands:
        print("\n".join(paper_commands()))
        return
    run(args.profile, sections=args.sections, book=not args.no_book, force=args.force, jobs=args.jobs)
