"""Public reference data: real per-sample outputs of published models and human label audits
(SPEC §6), turned into record sets (SPEC §0).

Four sources, each pinned to one commit of its public repository. Nothing here is committed to
the project: :func:`fetch` (``python -m calcas.datasets.public fetch``; ``make book`` calls it
through :func:`ensure_data` when no copy is found) downloads the files from the origins, and
every file is checked against the SHA-256 recorded in :data:`FILES`.

=============== =========================================================== ============
folder          origin (repository @ commit)                                licence
=============== =========================================================== ============
imagenet-real/  google-research/reassessed-imagenet @ bcd006fe, ``real.json``  Apache-2.0
imagenetx/      facebookresearch/imagenetx @ 6403d41a, top-1 class and         CC BY-NC 4.0
                probability of ResNet-50, ViT, DINO, SimCLR on the 50,000
                ImageNet-1k val images, the given labels, and the 100
                metaclasses the 1,000 classes are grouped into
plaut-llm/      bplaut/llm-calibration-and-correctness-prediction @ c176fdd3,  MIT
                ``main_results/`` re-shaped to one row per question
mmlu-redux/     aryopg/mmlu-redux @ 4563cfa7, 57 subject files and the          CC BY 4.0
                predictions of 14 LLMs (``outputs/multi_expert_helm/all.csv``)
=============== =========================================================== ============

Keep each licence's terms (CC BY-NC: no commercial use of the ImageNet-X predictions) and cite
the sources wherever the data is shown.

Where the data lives (:func:`data_root`): ``$CALCAS_DATA``; else a folder ``shared/data``
beside the repository (the offline copy this project's CI reads); else the download cache (``$CALCAS_CACHE`` or ``~/.cache/calcas/data``) when it
holds any of the files.

Converters: :func:`imagenet_records`, :func:`plaut_records` (record sets) and
:func:`mmlu_redux_table` (a table: those predictions carry no confidence);
:func:`write_public_records` writes them all as Parquet files.
"""
from __future__ import annotations

import argparse
import ast
import collections
import csv
import dataclasses
import io
import json
import os
import pathlib
import re
import sys
import time
import unicodedata
import urllib.error
import urllib.request
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..records import Records, file_sha256, make_records, read_records, write_records

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
"""The repository root (the folder that holds the ``calcas`` package)."""

DATA_ENV = "CALCAS_DATA"
CACHE_ENV = "CALCAS_CACHE"
FETCH_COMMAND = "python -m calcas.datasets.public fetch"


# ----------------------------------------------------------------------------- sources

@dataclasses.dataclass(frozen=True)
class Source:
    """One public origin: a GitHub repository at a pinned commit, and its licence."""

    folder: str
    repo: str
    commit: str
    licence: str
    what: str

    @property
    def page(self) -> str:
        """The repository's web page at the pinned commit (a string URL)."""
        return f"https://github.com/{self.repo}/tree/{self.commit}"

    def raw_url(self, path: str) -> str:
        """The download URL of ``path`` (a path inside the repository) at the pinned commit."""
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{path}"


SOURCES: dict[str, Source] = {
    "imagenet-real": Source(
        "imagenet-real", "google-research/reassessed-imagenet", "bcd006fe12e929f055e0ec7fe39dbf4d64a6881a",
        "Apache-2.0",
        "ReaL re-assessed labels of the 50,000 ImageNet-1k val images (Beyer et al., 2020), in val order"),
    "imagenetx": Source(
        "imagenetx", "facebookresearch/imagenetx", "6403d41a5cc435543a63060e336bc2452e3ad223",
        "CC BY-NC 4.0",
        "ImageNet-X (Idrissi et al., 2022): top-1 class and softmax probability of four models on the "
        "ImageNet-1k val images, and the given labels"),
    "plaut-llm": Source(
        "plaut-llm", "bplaut/llm-calibration-and-correctness-prediction", "c176fdd333ed3915c14c031e8ac3baf30698be22",
        "MIT",
        "Plaut et al. (2024): grade, max softmax probability and max logit of 14 chat LLMs per question "
        "(zero-shot, first prompt phrasing), re-shaped to one row per question"),
    "mmlu-redux": Source(
        "mmlu-redux", "aryopg/mmlu-redux", "4563cfa79b659d76716e5b6019f46bba85fa02db",
        "CC BY 4.0",
        "MMLU-Redux (Gema et al., 2024): 5,700 MMLU questions re-annotated by humans, and the predicted "
        "letter of 14 LLMs (HELM) for each"),
}


@dataclasses.dataclass(frozen=True)
class DataFile:
    """One registered file: where it goes under the data root, where it comes from, its hash.

    ``origin_path`` is the path inside the source repository; ``None`` for a file that
    :func:`fetch` builds from several origin files (the re-shaped plaut-llm CSVs).
    """

    path: str
    sha256: str
    origin_path: str | None

    @property
    def folder(self) -> str:
        """The dataset folder (a key of :data:`SOURCES`)."""
        return self.path.split("/", 1)[0]

    @property
    def source(self) -> Source:
        """The :class:`Source` the file comes from."""
        return SOURCES[self.folder]

    @property
    def url(self) -> str | None:
        """The download URL at the pinned commit, or ``None`` for a derived file."""
        return None if self.origin_path is None else self.source.raw_url(self.origin_path)


# SHA-256 of each file, computed from the origins' files (verbatim copies, except the
# two plaut-llm CSVs, which are the re-shaping that fetch() reproduces byte for byte).
_SHA256: dict[str, str] = {
    "imagenet-real/real.json": "d83e9bff374c631aae8439eb064c7019acc56e1b3bc3f56b8380c2a710b0220b",
    "imagenetx/DINO.csv": "e46713518b13144daebaadd63a67a0466cb9efc91370b1408c8cb8f38c7bdef4",
    "imagenetx/ResNet50.csv": "313b702ffb5c7dc3a97b1d5caf23c7190d1633039ba0cf5c0399c256e7a35f15",
    "imagenetx/SimCLR.csv": "f028b8beb17de3d643e82ff6bdce324a485b05fa5cf9f4cbf1a569c2f993cd19",
    "imagenetx/ViT.csv": "a9487bc285348f298c389057d039da7a626337a68f9e91f083267dad16e256e4",
    "imagenetx/filename_label.csv": "e279a4972518474b373b02b06a35ad21c3572626715eea574d5f7d55302a92bf",
    "imagenetx/imagenet_labels.txt": "1d322cd0385b977ea9f8fa6a7088a8d01d8ad101117e1ec534fcb88debfc4854",
    "imagenetx/imagenet_1k_classes_to_100_metaclasses.csv":
        "a973495d1cbe6c73f994fa7083e454602d6d0dc831ff0257598a02a23aa633c4",
    "plaut-llm/derived_arc_first_prompt.csv": "b6815e8492e0924a3009ba206fff179bd8293b35dc4e55a9438b486f8a2329ae",
    "plaut-llm/derived_mmlu_first_prompt.csv": "57ca79c366ed948f501949fd52871124ed86afcb8d12b6b1e32aabc547f0bb78",
    "mmlu-redux/helm_predictions.csv": "a16015ed7006c82b35de7fdf9061d4cb6c936401077fd68e42a55497426aa9ab",
    "mmlu-redux/questions/mmlu_abstract_algebra.csv": "83b98626d7615b9594d86117ae6cb02cbbea8e3e5e285eb2ced1fb8caa245b99",
    "mmlu-redux/questions/mmlu_anatomy.csv": "e73da98de4080a67d7bf832d12b5cf5b1156aa7aaec3d44b1a20b730bc5782a8",
    "mmlu-redux/questions/mmlu_astronomy.csv": "739ed768fb9c151d341178a122f0d2553df3c6af2a4209a15f0f97f54595eb8b",
    "mmlu-redux/questions/mmlu_business_ethics.csv": "2c732b4bf5430225bfe4329d3aaa445917c3dc961942d5bd5336555c5fce86a9",
    "mmlu-redux/questions/mmlu_clinical_knowledge.csv": "37ec6e0d612370a88f69a3a560f1d43877f084ea819dc8155a622ae75d7a82b0",
    "mmlu-redux/questions/mmlu_college_biology.csv": "0f1ef7b8f19743c1ac0d1d4bf8351ea73be681b4025a6b4c6c4aa078d4875c8f",
    "mmlu-redux/questions/mmlu_college_chemistry.csv": "5d7ee98e59a528e1c77960a226ca11c20ddbdd7039c86584f227e74597785664",
    "mmlu-redux/questions/mmlu_college_computer_science.csv": "f06bcec202a789d98d26689d9667fdcd5fa07c860376f3fb3da85c851f046c92",
    "mmlu-redux/questions/mmlu_college_mathematics.csv": "e3db7906b8aabef98c50eb25eae22a1aeb5c6711ad041e9c7509608992ee88c1",
    "mmlu-redux/questions/mmlu_college_medicine.csv": "2a0f750982849d6f30c7edc9731df61f7f84cd2cf4d9c855e8e4e35b53688f76",
    "mmlu-redux/questions/mmlu_college_physics.csv": "bd76f9eec35a3212a29056a42a3bf41cd84531cd34cc43de088f3a5349df5472",
    "mmlu-redux/questions/mmlu_computer_security.csv": "03ac8a43d2407e274116988767399909b89bc1f16f94f59df9840fa659d4ea22",
    "mmlu-redux/questions/mmlu_conceptual_physics.csv": "29619a9d6f5d44066b3b33df64e8181a2a799f24691928959d215f0a983336e3",
    "mmlu-redux/questions/mmlu_econometrics.csv": "c4812fe99ee0ee47772751b1bd1e48f4929f5b222a2c2e3cab125120f5be58c0",
    "mmlu-redux/questions/mmlu_electrical_engineering.csv": "6afe4e2c28e650d51d9baecf68a364ee20a14b99d9ab616a749dcae707f7173e",
    "mmlu-redux/questions/mmlu_elementary_mathematics.csv": "358c0aa97224d280988eac7fa2d4a4c8bd8db7ab61fa1fc0554768a1473d2ce7",
    "mmlu-redux/questions/mmlu_formal_logic.csv": "0d5a15ed033a7006a7d790fef09e6e3c6c63d46c4a8d7b979d1afd63032a361a",
    "mmlu-redux/questions/mmlu_global_facts.csv": "8ffa62d058bf4a81916c348df67d3745047eea2fac032a67dae727c3442255a2",
    "mmlu-redux/questions/mmlu_high_school_biology.csv": "98204af59693f3497f594ce9689e7adadf82a5c77ed79d07fe3f794554179e42",
    "mmlu-redux/questions/mmlu_high_school_chemistry.csv": "eed7393a71b61af9597df3887cce470ff8ec655676e1c15bcf9a732de40f3605",
    "mmlu-redux/questions/mmlu_high_school_computer_science.csv": "21c739d43b30b59c2d3cc3ec15048eee22bfac3a02bb3bae2b34ceb7fac1339b",
    "mmlu-redux/questions/mmlu_high_school_european_history.csv": "e1b3fc89883c4a372fc592d5329db8951855cd0d59043792c00ff30418a7bac7",
    "mmlu-redux/questions/mmlu_high_school_geography.csv": "360e7a8c0930fd4f0b4af186415398a9015964b058ec31df3c3b524a10c6cd48",
    "mmlu-redux/questions/mmlu_high_school_government_and_politics.csv": "fa69b567414fb06b61d6ab2e7472e793cb40747aff734824c675607a0141da78",
    "mmlu-redux/questions/mmlu_high_school_macroeconomics.csv": "5f2510ec01205542a999fbc51d572cc37bbb10754d2efa52d0c73638aebaf71b",
    "mmlu-redux/questions/mmlu_high_school_mathematics.csv": "bb1af2d2e0bd081453fce188892c49efae34697188c108c855b53b219c2e9c7f",
    "mmlu-redux/questions/mmlu_high_school_microeconomics.csv": "9c920bbeac17308c30e65a6a35c62acd08ff6081d63191c4a32bfd105f702fdf",
    "mmlu-redux/questions/mmlu_high_school_physics.csv": "f0d59f8e836e2c3b6aa739d66624d5d2f68fb91102f452c5292b57aea787b169",
    "mmlu-redux/questions/mmlu_high_school_psychology.csv": "b83eda4e4d941667b84e529066902efaf7511b7ff9fbbdc13019a261c4d9f240",
    "mmlu-redux/questions/mmlu_high_school_statistics.csv": "45351ff30906879249de60e5735c9288a59a31850c95f5040ca47a5f1eca06a1",
    "mmlu-redux/questions/mmlu_high_school_us_history.csv": "1ebb166a783242ab3f6296e00744781b4a72076f2c071911645335c55c146df2",
    "mmlu-redux/questions/mmlu_high_school_world_history.csv": "5fe5e4d32d2bc6c4b04686f6da915360a00460ff2fe338797ab28547a85f1cdf",
    "mmlu-redux/questions/mmlu_human_aging.csv": "a16d1fbba92f5e657c34c4d1b67d323221ebcd5dbe469a57e95eaf2efaa4fca1",
    "mmlu-redux/questions/mmlu_human_sexuality.csv": "91f9c340a8882a3c7c7276fb430e6ee290ca2131b04c4faa514566cc1797630e",
    "mmlu-redux/questions/mmlu_international_law.csv": "bfd10468b8507f8b3393ea36731b1c80894582add5b53763dab8fde1a288446c",
    "mmlu-redux/questions/mmlu_jurisprudence.csv": "f9bce2ef3fdc89ec46eb4a211153eb8e488239e311f0736f2e932a1eb24f45b6",
    "mmlu-redux/questions/mmlu_logical_fallacies.csv": "d965565c9d3a955919bab2349d8efba10c22fbc27f63f1593223a220c3ac70ed",
    "mmlu-redux/questions/mmlu_machine_learning.csv": "7350cb93c40e3ba7ccaff868a918f41d9fa6fd392a64a13697c9647998613ece",
    "mmlu-redux/questions/mmlu_management.csv": "6b782b960b55334aa0088153f96f7c2dfb5a625bfc5ebcce076d5d310620d2f0",
    "mmlu-redux/questions/mmlu_marketing.csv": "4efc6eab77670e52914144a7cbba7b553e4c8b29f10e17c1257a18bb3c0e2c71",
    "mmlu-redux/questions/mmlu_medical_genetics.csv": "c83f59380ad7cdeaee9e1c7fcb7a2be389e402b077ddb3415d628cc036a2bdfa",
    "mmlu-redux/questions/mmlu_miscellaneous.csv": "c3d24001333a2c9200e74eefbef06c3e816c72a452f691b335f538fc8cfcbfb7",
    "mmlu-redux/questions/mmlu_moral_disputes.csv": "8548bea470b9d670cb8258db9a9fd39da2c43c83519a4fa99c343f75bef45875",
    "mmlu-redux/questions/mmlu_moral_scenarios.csv": "df15f12d366670fa0f1577d4d5afdbc43b0c0137dd2c87b2c8cf830d5379b7ba",
    "mmlu-redux/questions/mmlu_nutrition.csv": "8f894f2d26f880ff5e074a362b97e1cbaa59b867c7c23bd49d66c571022d11e6",
    "mmlu-redux/questions/mmlu_philosophy.csv": "061d8b91cab7fbd5548927587485fe675ef39701a888aa9e29fc9a55e3e18cbb",
    "mmlu-redux/questions/mmlu_prehistory.csv": "51afec70b541fbb757a6b12da14120c4104d5d6ac4d5886577eb6dcd5186f474",
    "mmlu-redux/questions/mmlu_professional_accounting.csv": "123f075cae47b09feaa7160cd8069e2d525cedab882e6a8ae94360aa19119f33",
    "mmlu-redux/questions/mmlu_professional_law.csv": "c2a019177708496f4fcd74460e9c1f2bbe0feb25ee7709eddc51adbb22a8e95c",
    "mmlu-redux/questions/mmlu_professional_medicine.csv": "3c024ec4ebd67683b288068f40221b9caf222ef944f24e637652fd2e8776760a",
    "mmlu-redux/questions/mmlu_professional_psychology.csv": "2d9ac1ed86438653ea0f82ff8249d809674a23574e71324caf13eb5dc2e34cf7",
    "mmlu-redux/questions/mmlu_public_relations.csv": "7f4d9b17365085e946a517ad5abf75153d89dd7858ca3909803a329f5baee1d2",
    "mmlu-redux/questions/mmlu_security_studies.csv": "ed0309287be30dad969e44d06b5e1bf48ba82d5a891c44d2d73046dab1649015",
    "mmlu-redux/questions/mmlu_sociology.csv": "2d8d77a4a4eacd988e08221ef827d40e54ac5ab81e9d20f3f96427a405738b99",
    "mmlu-redux/questions/mmlu_us_foreign_policy.csv": "6e379c770dbf98d08a5026caeccbe57fbf8c1ed5a5aabb98b97ee5a1a2b39d0f",
    "mmlu-redux/questions/mmlu_virology.csv": "eca12346cf4ccabab2264878db690da5e471f5c773a146582c05356ba535d26b",
    "mmlu-redux/questions/mmlu_world_religions.csv": "f3b0152249088c512a60b07d31e23bfe3104b4d079a595d3a19ab4e5425d61f2",
}


def _origin_path(path: str) -> str | None:
    folder, rest = path.split("/", 1)
    if folder == "imagenet-real":
        return rest
    if folder == "imagenetx":
        if rest in ("filename_label.csv", "imagenet_labels.txt", "imagenet_1k_classes_to_100_metaclasses.csv"):
            return f"imagenet_x/annotations/{rest}"
        return f"model_predictions/base/{rest}"
    if folder == "plaut-llm":
        return None
    if rest == "helm_predictions.csv":
        return "outputs/multi_expert_helm/all.csv"
    return "mmlu_redux/" + rest.split("/", 1)[1]


FILES: dict[str, DataFile] = {p: DataFile(p, h, _origin_path(p)) for p, h in _SHA256.items()}
"""Every file the converters read: relative path -> :class:`DataFile` (origin URL, SHA-256)."""

IMAGENET_MODELS = ("ResNet50", "ViT", "DINO", "SimCLR")
"""The ImageNet-X models with per-image predictions (file ``imagenetx/<model>.csv``)."""

REDUX_SUBJECTS = tuple(p[len("mmlu-redux/questions/mmlu_"):-len(".csv")]
                       for p in FILES if p.startswith("mmlu-redux/questions/"))
"""The 57 MMLU subjects of MMLU-Redux, in file-name order."""

REDUX_MODELS = (
    "anthropic_claude-3-5-sonnet-20240620", "anthropic_claude-3-opus-20240229",
    "meta_llama-3.1-405b-instruct-turbo", "openai_gpt-4o-2024-05-13", "qwen_qwen2.5-72b-instruct-turbo",
    "google_gemini-1.5-pro-001", "openai_gpt-4-0613", "qwen_qwen2-72b-instruct", "writer_palmyra-x-004",
    "openai_gpt-4-turbo-2024-04-09", "google_gemini-1.5-pro-preview-0409",
    "meta_llama-3.2-90b-vision-instruct-turbo", "meta_llama-3.1-70b-instruct-turbo",
    "mistralai_mistral-large-2407",
)
"""The 14 LLM columns of ``mmlu-redux/helm_predictions.csv`` (predicted answer letters)."""

_PLAUT_MODEL_LIST = ("Llama-7b", "Llama-13b", "Llama-70b", "Llama3-8b", "Llama3-70b", "Falcon-7b", "Falcon-40b",
                     "Mistral", "Mixtral", "Solar", "Yi-6b", "Yi-34b", "gpt-3.5-turbo", "gpt-4-turbo")
PLAUT_MODELS: dict[str, tuple[str, ...]] = {"mmlu": _PLAUT_MODEL_LIST, "arc": _PLAUT_MODEL_LIST}
"""Column prefixes (``<model>__grade``, ``__msp``, ``__maxlogit``) of the plaut-llm CSVs per benchmark."""

PLAUT_MMLU_ALIGNED = ("Llama3-8b", "Llama3-70b")
"""On MMLU only these two models are row-aligned with each other (data README); on ARC all are."""

PLAUT_N_QUESTIONS = {"mmlu": 6000, "arc": 2590}
"""Questions per benchmark in the plaut-llm results (MMLU: 6,000 of the test split; ARC-Challenge)."""

PLAUT_CHUNK = 500
"""The origin stores each model's results in files of 500 questions (``-q0to500``, ``-q500to1000``...)."""

PLAUT_NO_MAXLOGIT = ("gpt-3.5-turbo", "gpt-4-turbo")
"""OpenAI models: the origin has no raw-logit files for them, so no ``__maxlogit`` column."""

_PLAUT_FILE = {"mmlu": "plaut-llm/derived_mmlu_first_prompt.csv", "arc": "plaut-llm/derived_arc_first_prompt.csv"}
_PLAUT_DATASET = {"mmlu": "mmlu-test", "arc": "arc-challenge"}
_PLAUT_GRADES = ("Correct", "Wrong", "Unparseable")


class ChecksumError(ValueError):
    """A downloaded or re-shaped file does not have the registered SHA-256."""


# ----------------------------------------------------------------------------- locations

def cache_dir() -> pathlib.Path:
    """The download cache: ``$CALCAS_CACHE`` if set, else ``~/.cache/calcas/data``.

    Returns
    -------
    pathlib.Path
        The folder (it may not exist yet).
    """
    env = os.environ.get(CACHE_ENV)
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".cache" / "calcas" / "data"


def data_root() -> pathlib.Path | None:
    """Where the public reference data is read from.

    In order: the ``CALCAS_DATA`` environment variable if set (even if the folder lacks files,
    so a wrong setting fails loudly); else a folder ``shared/data`` beside the repository when it
    exists (the offline copy this project's CI reads);
    else the download cache (:func:`cache_dir`) when it holds at least one registered file.

    Returns
    -------
    pathlib.Path or None
        The data root, or ``None`` when no data is available (see :func:`missing_data_message`).
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return pathlib.Path(env).expanduser()
    shared = REPO_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    cache = cache_dir()
    if any((cache / path).is_file() for path in FILES):
        return cache
    return None


def ensure_data(*, timeout: float = 30.0, progress: bool = True) -> pathlib.Path | None:
    """The public data's root, fetched into the cache first when no copy is on this machine.

    Returns :func:`data_root` when it finds the data. Otherwise it tries :func:`fetch` (pinned
    commits, SHA-256 checked, a progress bar) and returns the cache; when an origin cannot be
    reached (offline), it prints one line saying how to fetch later and returns None, leaving
    whatever was fetched in the cache. A file that arrives with another SHA-256 is an error,
    never a placeholder.
    """
    root = data_root()
    if root is not None:
        return root
    try:
        return fetch(timeout=timeout, progress=progress)
    except OSError as err:  # a ChecksumError is a ValueError: it is raised, never a placeholder
        print(f"public data: not on this machine and its origins cannot be reached ({err}); "
              f"those chapters say how to get it; later run `{FETCH_COMMAND}`", file=sys.stderr, flush=True)
        return None


def missing_data_message(dataset: str = "all") -> str:
    """One line telling a reader how to get the public data.

    Parameters
    ----------
    dataset : str
        The folder or converter that needs it ("imagenetx", "plaut-llm", "mmlu-redux", ...).

    Returns
    -------
    str
        A single-line message naming the ``CALCAS_DATA`` variable and the fetch command.
    """
    return (f"public reference data ({dataset}) not found: set {DATA_ENV} to a folder holding "
            f"imagenet-real/, imagenetx/, plaut-llm/ and mmlu-redux/, or download it from the pinned "
            f"origins with `{FETCH_COMMAND}` (into {CACHE_ENV} or ~/.cache/calcas/data)")


def _resolve_root(root: str | os.PathLike | None, dataset: str) -> pathlib.Path:
    resolved = pathlib.Path(root) if root is not None else data_root()
    if resolved is None:
        raise FileNotFoundError(missing_data_message(dataset))
    return resolved


def _data_file(root: pathlib.Path, path: str, dataset: str) -> pathlib.Path:
    full = root / path
    if not full.is_file():
        raise FileNotFoundError(f"{full} does not exist; {missing_data_message(dataset)}")
    return full


# ----------------------------------------------------------------------------- fetching

def _download(url: str, timeout: float = 60.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as err:
        raise OSError(f"could not download {url}: {err}") from err


def plaut_origin_paths(benchmark: str, model: str) -> list[tuple[str, str | None]]:
    """The origin files behind one model's columns of a re-shaped plaut-llm CSV.

    ``main_results/<benchmark>_<model>-q<a>to<b>_no_abst_<norm|raw>_logits_first_prompt.txt``
    for consecutive chunks of :data:`PLAUT_CHUNK` questions; each file has a header line
    ``grade confidence_level`` and one ``<grade> <value>`` line per question. The ``norm`` file's
    value is the max softmax probability (``__msp``), the ``raw`` file's the max logit
    (``__maxlogit``); the OpenAI models have no raw file.

    Parameters
    ----------
    benchmark : {"mmlu", "arc"}
    model : str
        One of :func:`plaut_models`.

    Returns
    -------
    list of (str, str or None)
        Per chunk, in question order: the norm-file path and the raw-file path (None when absent).
    """
    _check_plaut(benchmark, model)
    n = PLAUT_N_QUESTIONS[benchmark]
    out = []
    for start in range(0, n, PLAUT_CHUNK):
        stem = f"main_results/{benchmark}_{model}-q{start}to{min(start + PLAUT_CHUNK, n)}_no_abst"
        raw = None if model in PLAUT_NO_MAXLOGIT else f"{stem}_raw_logits_first_prompt.txt"
        out.append((f"{stem}_norm_logits_first_prompt.txt", raw))
    return out


def _parse_plaut_chunk(text: str, expected: int, where: str) -> list[tuple[str, str]]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].split() != ["grade", "confidence_level"]:
        raise ValueError(f"{where}: expected the header 'grade confidence_level'")
    rows = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{where}: expected '<grade> <value>', got {line!r}")
        rows.append((parts[0], parts[1]))
    if len(rows) != expected:
        raise ValueError(f"{where}: expected {expected} questions, found {len(rows)}")
    return rows


def reshape_plaut(benchmark: str, get: Callable[[str], bytes]) -> bytes:
    """Build a plaut-llm CSV (one row per question) from the origin's ``main_results/`` files.

    The origin values are copied verbatim as text (no float round trip); the grade comes from
    the MSP (``norm``) file. Output: header ``pos`` then ``<model>__grade,<model>__msp`` and,
    except for :data:`PLAUT_NO_MAXLOGIT`, ``<model>__maxlogit`` for each model of
    :data:`PLAUT_MODELS`; CSV with ``\\r\\n`` line ends (Python's csv writer).

    Parameters
    ----------
    benchmark : {"mmlu", "arc"}
    get : callable
        ``get(origin_path) -> bytes``: the content of one origin file (a download, or a local read).

    Returns
    -------
    bytes
        The CSV, byte-identical to ``plaut-llm/derived_<benchmark>_first_prompt.csv`` when the
        origin files are the pinned ones.
    """
    n = PLAUT_N_QUESTIONS[benchmark]
    header, columns = ["pos"], [[str(i) for i in range(n)]]
    for model in PLAUT_MODELS[benchmark]:
        grades: list[str] = []
        msp: list[str] = []
        maxlogit: list[str] = []
        for k, (norm_path, raw_path) in enumerate(plaut_origin_paths(benchmark, model)):
            expected = min(PLAUT_CHUNK, n - k * PLAUT_CHUNK)
            norm = _parse_plaut_chunk(get(norm_path).decode("utf-8"), expected, norm_path)
            grades += [g for g, _ in norm]
            msp += [v for _, v in norm]
            if raw_path is not None:
                maxlogit += [v for _, v in _parse_plaut_chunk(get(raw_path).decode("utf-8"), expected, raw_path)]
        header += [f"{model}__grade", f"{model}__msp"]
        columns += [grades, msp]
        if model not in PLAUT_NO_MAXLOGIT:
            header.append(f"{model}__maxlogit")
            columns.append(maxlogit)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(zip(*columns))
    return buffer.getvalue().encode("utf-8")


def _select(names: str | Iterable[str] | None) -> list[DataFile]:
    if names is None:
        return list(FILES.values())
    if isinstance(names, str):
        names = [names]
    chosen: dict[str, DataFile] = {}
    for name in names:
        name = str(name).strip("/")
        if name in FILES:
            chosen[name] = FILES[name]
        elif name in SOURCES:
            chosen.update({p: f for p, f in FILES.items() if f.folder == name})
        else:
            raise ValueError(f"fetch: unknown file or folder {name!r}; give a key of FILES or one of {sorted(SOURCES)}")
    return list(chosen.values())


def _write_verified(dest: pathlib.Path, data: bytes, entry: DataFile, origin: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(data)
    actual = file_sha256(part)
    if actual != entry.sha256:
        part.unlink()
        if dest.exists():
            dest.unlink()
        raise ChecksumError(f"{entry.path}: SHA-256 {actual} does not match the registered {entry.sha256} "
                            f"(from {origin}); the file was deleted")
    os.replace(part, dest)


def fetch(names: str | Iterable[str] | None = None, *, cache: str | os.PathLike | None = None,
          timeout: float = 60.0, verbose: bool = False, progress: bool = False) -> pathlib.Path:
    """Download the public reference data from the pinned origins into a local cache.

    Files already in the cache with the right SHA-256 are kept; every new file is written under
    a temporary name, checked against :data:`FILES` and only then moved into place. The two
    plaut-llm CSVs are rebuilt from the origin's ``main_results/`` files (:func:`reshape_plaut`,
    about 470 small downloads) and checked the same way.

    Parameters
    ----------
    names : str or iterable of str, optional
        Keys of :data:`FILES` (``"imagenetx/ResNet50.csv"``) or folder names (``"imagenetx"``);
        all files when omitted.
    cache : path-like, optional
        Target folder; default :func:`cache_dir`. Point ``CALCAS_DATA`` at it, or leave it at
        the default, which :func:`data_root` finds by itself.
    timeout : float
        Seconds per download.
    verbose : bool
        Print one line per file.
    progress : bool
        Show a progress bar over the files (tqdm, on stderr).

    Returns
    -------
    pathlib.Path
        The cache root.

    Raises
    ------
    ChecksumError
        A file's SHA-256 differs from the registered one (the file is deleted).
    OSError
        A download failed.
    """
    root = pathlib.Path(cache).expanduser() if cache is not None else cache_dir()
    entries = list(_select(names))
    if progress:
        from tqdm.auto import tqdm
        entries = tqdm(entries, desc="public data", unit=" file", file=sys.stderr)
    for entry in entries:
        dest = root / entry.path
        if dest.is_file() and file_sha256(dest) == entry.sha256:
            continue
        if entry.url is not None:
            origin = entry.url
            data = _download(entry.url, timeout)
        else:
            benchmark = "mmlu" if "mmlu" in entry.path else "arc"
            source = entry.source
            origin = f"{source.page}/main_results (re-shaped)"
            data = reshape_plaut(benchmark, lambda path: _download(source.raw_url(path), timeout))
        _write_verified(dest, data, entry, origin)
        if verbose:
            print(f"fetched {entry.path} ({len(data):,} bytes)")
    return root


# ----------------------------------------------------------------------------- ImageNet

_VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.JPEG")


def _val_index(file_names: Sequence[str]) -> np.ndarray:
    index = np.empty(len(file_names), dtype=np.int64)
    for i, name in enumerate(file_names):
        match = _VAL_NAME.fullmatch(name)
        if match is None or not 1 <= int(match.group(1)) <= 50000:
            raise ValueError(f"file_name: {name!r} is not an ImageNet-1k val image name (ILSVRC2012_val_%08d.JPEG)")
        index[i] = int(match.group(1)) - 1
    return index


def _imagenet_given_labels(root: pathlib.Path):
    import pandas as pd

    table = pd.read_csv(_data_file(root, "imagenetx/filename_label.csv", "imagenetx"),
                        dtype={"file_name": str, "label": np.int64})
    if not table["file_name"].is_unique:
        raise ValueError("imagenetx/filename_label.csv: a file name appears twice")
    return table.set_index("file_name")["label"]


def _imagenet_real(root: pathlib.Path) -> list[list[int]]:
    with open(_data_file(root, "imagenet-real/real.json", "imagenet-real")) as handle:
        real = json.load(handle)
    if len(real) != 50000:
        raise ValueError(f"imagenet-real/real.json: expected 50,000 entries, found {len(real)}")
    return real


def imagenet_records(model: str, *, root: str | os.PathLike | None = None, nrows: int | None = None) -> Records:
    """ImageNet-1k val predictions of one ImageNet-X model, with given and ReaL labels.

    Joins three files on the image file name (never on row position):
    ``imagenetx/<model>.csv`` (columns ``file_name, predicted_class, predicted_probability``),
    ``imagenetx/filename_label.csv`` (``file_name, label``: the given ImageNet label) and
    ``imagenet-real/real.json`` (a list of 50,000 lists in val order: entry n-1 belongs to
    ``ILSVRC2012_val_%08d.JPEG`` % n). Class indices are 0..999 in the standard ILSVRC2012 order
    (sorted WordNet ids, ``imagenetx/imagenet_labels.txt``) in all three files; see
    :func:`check_imagenet_classes`.

    Only the top-1 probability is published: the record set carries ``confidence`` (no logits),
    so Platt scaling of the top-1 score applies, temperature scaling does not.

    Parameters
    ----------
    model : {"ResNet50", "ViT", "DINO", "SimCLR"}
    root : path-like, optional
        Data root; default :func:`data_root`.
    nrows : int, optional
        Read only the first ``nrows`` rows of the model's file (small slices for tests).

    Returns
    -------
    Records
        n = 50,000 rows (or ``nrows``), in the model file's order: ``id`` = image file name,
        ``pred`` = predicted class, ``confidence`` = its softmax probability, ``label`` = given
        label, ``valid_labels`` = the ReaL list. An empty ReaL list means the image was not
        rated (no valid label): such rows are kept, and their number is the manifest's
        ``n_real_empty``; leave them out when scoring against ReaL.

    Raises
    ------
    FileNotFoundError
        The data is not available (the message says how to get it).
    ValueError
        Unknown model, or a file name missing from the label file.
    """
    import pandas as pd

    if model not in IMAGENET_MODELS:
        raise ValueError(f"model: unknown ImageNet-X model {model!r}; choose from {IMAGENET_MODELS}")
    root_path = _resolve_root(root, "imagenetx")
    path = f"imagenetx/{model}.csv"
    preds = pd.read_csv(_data_file(root_path, path, "imagenetx"), nrows=nrows,
                        dtype={"file_name": str, "predicted_class": np.int64, "predicted_probability": np.float64})
    expected = ["file_name", "predicted_class", "predicted_probability"]
    if list(preds.columns) != expected:
        raise ValueError(f"{path}: expected columns {expected}, found {list(preds.columns)}")
    names = preds["file_name"].tolist()
    given = _imagenet_given_labels(root_path).reindex(names)
    if given.isna().any():
        missing = [n for n, v in zip(names, given.isna()) if v]
        raise ValueError(f"{path}: {len(missing)} file name(s) not in imagenetx/filename_label.csv, e.g. {missing[0]!r}")
    valid = imagenet_real_labels(names, root=root_path)
    prob = preds["predicted_probability"].to_numpy(dtype=np.float64)
    if prob.min() < -1e-9 or prob.max() > 1 + 1e-9:
        raise ValueError(f"{path}: predicted_probability outside [0, 1]: [{prob.min()}, {prob.max()}]")
    imagenetx, reassessed = SOURCES["imagenetx"], SOURCES["imagenet-real"]
    manifest = {
        "model": model, "dataset": "imagenet-1k-val", "split": None,
        "source": f"{imagenetx.what}; {reassessed.what}",
        "licence": f"predictions and given labels: {imagenetx.licence}; ReaL labels: {reassessed.licence}",
        "origin": [FILES[path].url, FILES["imagenetx/filename_label.csv"].url, FILES["imagenet-real/real.json"].url],
        "commit": {"imagenetx": imagenetx.commit, "imagenet-real": reassessed.commit},
        "confidence": "top-1 softmax probability (predicted_probability)",
        "class_index": "0..999, standard ILSVRC2012 order (sorted WordNet ids)",
        "n_real_empty": int(sum(1 for v in valid if len(v) == 0)),
        "converter": "calcas.datasets.public.imagenet_records",
    }
    return make_records(names, preds["predicted_class"].to_numpy(), label=given.to_numpy(dtype=np.int64),
                        confidence=np.clip(prob, 0.0, 1.0), valid_labels=valid, manifest=manifest)


#: ImageNet-1k class indices 0..397 are animals (WordNet's animal subtree, in the standard class order).
IMAGENET_ANIMALS = range(0, 398)


def imagenet_metaclasses(*, root: str | os.PathLike | None = None) -> tuple[np.ndarray, list[str]]:
    """The 100 metaclasses ImageNet-X groups the 1,000 ImageNet-1k classes into.

    Reads ``imagenetx/imagenet_1k_classes_to_100_metaclasses.csv`` (one row per class in class-index
    order: ``wnid, name, metaclass``).

    Returns
    -------
    metaclass : ndarray of int, shape (1000,)
        The metaclass (0..99) of each class index.
    names : list of str, length 100
        Each metaclass's name.

    Raises
    ------
    ValueError
        When the file does not have 1,000 rows or its metaclasses are not 0..99, each named.
    """
    import pandas as pd

    root_path = _resolve_root(root, "imagenetx")
    table = pd.read_csv(_data_file(root_path, "imagenetx/imagenet_1k_classes_to_100_metaclasses.csv", "imagenetx"))
    if len(table) != 1000 or list(table.columns) != ["wnid", "name", "metaclass"]:
        raise ValueError(f"imagenetx/imagenet_1k_classes_to_100_metaclasses.csv: expected 1,000 rows of wnid, name, "
                         f"metaclass; got {len(table)} rows of {list(table.columns)}")
    metaclass = table["metaclass"].to_numpy(dtype=int)
    if sorted(set(metaclass.tolist())) != list(range(100)):
        raise ValueError("imagenetx/imagenet_1k_classes_to_100_metaclasses.csv: metaclasses are not 0..99")
    names = table.drop_duplicates("metaclass").set_index("metaclass")["name"].sort_index().astype(str).tolist()
    return metaclass, names


def imagenet_real_labels(ids: Sequence[str], *, root: str | os.PathLike | None = None) -> list[np.ndarray]:
    """The ImageNet ReaL labels of ImageNet-1k val images, by file name.

    Parameters
    ----------
    ids : sequence of str
        Ids whose last path part is a val file name (``ILSVRC2012_val_%08d.JPEG``, with or
        without class sub-folders before it), in any order.
    root : path-like, optional
        Data root; default :func:`data_root`.

    Returns
    -------
    list of int64 arrays
        One per id, in the order of ``ids``: the image's ReaL class indices (standard
        ILSVRC2012 order); empty where the image was not rated.

    Raises
    ------
    FileNotFoundError
        The ReaL file is not available (the message says how to get it).
    ValueError
        An id that does not end in a val file name.
    """
    real = _imagenet_real(_resolve_root(root, "imagenet-real"))
    names = [str(i).rsplit("/", 1)[-1] for i in ids]
    return [np.asarray(real[i], dtype=np.int64) for i in _val_index(names)]


def with_imagenet_real(records: Records, *, root: str | os.PathLike | None = None) -> Records:
    """An extracted ImageNet-1k val record set with the ReaL labels attached as ``valid_labels``.

    :func:`calcas.extract.jobs.extract_vision` (``imagenet_real=True``) calls it on the merged
    rows before it writes the record set; call it yourself on record sets made otherwise.

    Parameters
    ----------
    records : Records
        Ids whose last path part is a val file name (``ILSVRC2012_val_%08d.JPEG``, as
        :func:`calcas.extract.jobs.extract_vision` writes for the val folder, with or without
        class sub-folders); class indices in the standard ILSVRC2012 order.
    root : path-like, optional
        Data root; default :func:`data_root`.

    Returns
    -------
    Records
        The same rows; ``valid_labels`` = the ReaL list of each image (empty: not rated), and the
        manifest's ``n_real_empty`` and ``valid_labels`` source.
    """
    valid = imagenet_real_labels(records.id, root=root)
    manifest = {**records.manifest, "valid_labels": f"ImageNet ReaL ({SOURCES['imagenet-real'].what})",
                "n_real_empty": int(sum(1 for v in valid if len(v) == 0))}
    return dataclasses.replace(records, valid_labels=valid, manifest=manifest)


_KNOWN_VAL_IMAGES = {  # val image -> (given label index, WordNet id), from the ILSVRC2012 val ground truth
    "ILSVRC2012_val_00000001.JPEG": (65, "n01751748"),   # sea snake
    "ILSVRC2012_val_00000002.JPEG": (970, "n09193705"),  # alp
    "ILSVRC2012_val_00000003.JPEG": (230, "n02105855"),  # Shetland sheepdog
}


def check_imagenet_classes(*, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check that ImageNet-X and ReaL use the same class indices (0..999, standard order).

    Checks: ``imagenet_labels.txt`` lists 1,000 distinct WordNet ids in sorted order (the
    standard ILSVRC2012 class order, starting with n01440764 "tench"); three val images whose
    classes are known have those given labels; and the given label lies in the image's non-empty
    ReaL list for most images (about 90%: ReaL's estimate of the original labels' precision; a
    shifted or permuted index would give ~0%).

    Parameters
    ----------
    root : path-like, optional
        Data root; default :func:`data_root`.

    Returns
    -------
    dict
        ``n_classes``, ``given_in_real`` (fraction of rated images whose given label is valid),
        ``n_real_empty``.

    Raises
    ------
    ValueError
        A check fails.
    """
    root_path = _resolve_root(root, "imagenetx")
    lines = _data_file(root_path, "imagenetx/imagenet_labels.txt", "imagenetx").read_text().splitlines()
    wnids = [line.split(",", 1)[0].strip() for line in lines if line.strip()]
    if len(wnids) != 1000 or len(set(wnids)) != 1000 or wnids != sorted(wnids) or wnids[0] != "n01440764":
        raise ValueError("imagenetx/imagenet_labels.txt: expected the 1,000 ILSVRC2012 WordNet ids in sorted order")
    given = _imagenet_given_labels(root_path)
    for name, (index, wnid) in _KNOWN_VAL_IMAGES.items():
        if int(given[name]) != index or wnids[index] != wnid:
            raise ValueError(f"{name}: expected given label {index} ({wnid}), found {int(given[name])} "
                             f"({wnids[int(given[name])]})")
    real = _imagenet_real(root_path)
    labels = given.reindex([f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(50000)]).to_numpy()
    rated = [(int(lab), r) for lab, r in zip(labels, real) if r]
    agree = float(np.mean([lab in r for lab, r in rated]))
    if agree < 0.8:
        raise ValueError(f"given labels agree with ReaL on only {agree:.1%} of rated images; class indices differ")
    if max(max(r) for _, r in rated) > 999 or min(min(r) for _, r in rated) < 0:
        raise ValueError("imagenet-real/real.json: class indices outside 0..999")
    return {"n_classes": 1000, "given_in_real": agree, "n_real_empty": 50000 - len(rated)}


# ----------------------------------------------------------------------------- plaut-llm

def plaut_models(benchmark: str) -> list[str]:
    """The 14 LLMs of the plaut-llm results for one benchmark (their CSV column prefixes).

    Parameters
    ----------
    benchmark : {"mmlu", "arc"}

    Returns
    -------
    list of str
        Model names, e.g. ``"Llama3-8b"``, ``"gpt-4-turbo"``.
    """
    if benchmark not in PLAUT_MODELS:
        raise ValueError(f"benchmark: expected one of {sorted(PLAUT_MODELS)}, got {benchmark!r}")
    return list(PLAUT_MODELS[benchmark])


def _check_plaut(benchmark: str, model: str) -> None:
    if model not in plaut_models(benchmark):
        raise ValueError(f"model: unknown {benchmark} model {model!r}; choose from {plaut_models(benchmark)}")


def plaut_records(benchmark: str, model: str, *, root: str | os.PathLike | None = None,
                  nrows: int | None = None) -> Records:
    """One chat LLM's graded answers and max softmax probabilities on MMLU or ARC-Challenge.

    Reads ``plaut-llm/derived_<benchmark>_first_prompt.csv`` (one row per question position
    ``pos``; columns ``<model>__grade`` in Correct/Wrong/Unparseable and ``<model>__msp``, the
    maximum softmax probability at the answer token, zero-shot, first prompt phrasing). The
    question text and the chosen letter are not published, so ``pred`` and ``label`` are -1 and
    correctness is carried by ``verified``.

    Parameters
    ----------
    benchmark : {"mmlu", "arc"}
    model : str
        One of :func:`plaut_models` (e.g. ``"Llama3-8b"``).
    root : path-like, optional
        Data root; default :func:`data_root`.
    nrows : int, optional
        Read only the first ``nrows`` questions (small slices for tests).

    Returns
    -------
    Records
        n rows (MMLU 6,000, ARC 2,590, fewer if msp is missing somewhere): ``id`` =
        ``f"{benchmark}-{pos:05d}"``, ``pred`` = ``label`` = -1, ``verified`` = 1.0 where the
        grade is "Correct" and 0.0 otherwise: an **Unparseable** answer counts as wrong (its msp
        is 0 in the origin); ``confidence`` = msp. Rows with a missing msp are dropped. The
        manifest counts ``n_correct``, ``n_wrong``, ``n_unparseable``, ``n_dropped_missing_msp``.
        Ids align rows across models of the same benchmark, but on MMLU only Llama3-8b and
        Llama3-70b answered the same questions in the same order (pair them with each other
        only); on ARC all 14 models are aligned.

    Raises
    ------
    FileNotFoundError
        The data is not available (the message says how to get it).
    ValueError
        Unknown benchmark or model, or a grade outside Correct/Wrong/Unparseable.
    """
    import pandas as pd

    _check_plaut(benchmark, model)
    root_path = _resolve_root(root, "plaut-llm")
    path = _PLAUT_FILE[benchmark]
    grade_col, msp_col = f"{model}__grade", f"{model}__msp"
    table = pd.read_csv(_data_file(root_path, path, "plaut-llm"), usecols=["pos", grade_col, msp_col],
                        nrows=nrows, dtype={"pos": np.int64, grade_col: object, msp_col: np.float64},
                        keep_default_na=False, na_values={msp_col: ["", "nan", "NaN", "NA"]})
    grades = table[grade_col].astype(str).str.strip().to_numpy(dtype=object)
    unknown = sorted(set(grades.tolist()) - set(_PLAUT_GRADES))
    if unknown:
        raise ValueError(f"{path}: {grade_col} has grades {unknown}; expected {list(_PLAUT_GRADES)}")
    msp = table[msp_col].to_numpy(dtype=np.float64)
    keep = np.isfinite(msp)
    pos = table["pos"].to_numpy()[keep]
    grades, msp = grades[keep], msp[keep]
    source = SOURCES["plaut-llm"]
    aligned = (list(PLAUT_MMLU_ALIGNED) if model in PLAUT_MMLU_ALIGNED else [model]) if benchmark == "mmlu" \
        else plaut_models(benchmark)
    manifest = {
        "model": model, "dataset": _PLAUT_DATASET[benchmark], "split": None, "benchmark": benchmark,
        "source": source.what, "licence": source.licence,
        "origin": f"{source.page}/main_results", "commit": source.commit,
        "confidence": "max softmax probability at the answer token (msp), zero-shot, first prompt",
        "verified": "1 where grade == 'Correct'; 'Wrong' and 'Unparseable' count as wrong (0)",
        "n_correct": int((grades == "Correct").sum()), "n_wrong": int((grades == "Wrong").sum()),
        "n_unparseable": int((grades == "Unparseable").sum()),
        "n_dropped_missing_msp": int((~keep).sum()),
        "row_aligned_with": aligned,
        "converter": "calcas.datasets.public.plaut_records",
    }
    ids = [f"{benchmark}-{int(p):05d}" for p in pos]
    return make_records(ids, np.full(len(ids), -1, dtype=np.int64), label=np.full(len(ids), -1, dtype=np.int64),
                        verified=(grades == "Correct").astype(np.float64), confidence=np.clip(msp, 0.0, 1.0),
                        manifest=manifest)


# ----------------------------------------------------------------------------- MMLU-Redux

_LETTERS = {"A": 0, "B": 1, "C": 2, "D": 3}


def _norm_text(text: str) -> str:
    """Join key: NFKC, non-ASCII dropped, whitespace runs collapsed (helm_predictions.csv lost
    non-breaking spaces and a Mac-Roman apostrophe that the subject files keep)."""
    text = unicodedata.normalize("NFKC", str(text))
    text = "".join(ch for ch in text if ord(ch) < 128)
    return re.sub(r"\s+", " ", text).strip()


def _parse_choices(text: str, where: str) -> list[str]:
    try:
        choices = ast.literal_eval(text)
    except (ValueError, SyntaxError) as err:
        raise ValueError(f"{where}: choices is not a Python-literal list: {text[:80]!r} ({err})") from None
    if not isinstance(choices, (list, tuple)):
        raise ValueError(f"{where}: choices is not a list: {text[:80]!r}")
    return [str(c) for c in choices]


def normalise_error_type(value: str) -> str:
    """MMLU-Redux error type in one spelling: lower case, words joined by ``_``; "ok" when fine.

    Parameters
    ----------
    value : str
        As written by the annotators ("OK", "Wrong Groundtruth", "bad_question_clarity ", ...).

    Returns
    -------
    str
        E.g. "ok", "wrong_groundtruth", "bad_question_clarity".
    """
    return re.sub(r"[\s_]+", "_", str(value).strip().lower())


def _read_subject(path: pathlib.Path):
    import pandas as pd

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("mac_roman")  # mmlu_moral_scenarios.csv: 0xD5 is a Mac-Roman apostrophe
    first = text.split("\n", 1)[0]
    sep = ";" if first.count(";") > first.count(",") else ","
    table = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = {"question", "choices", "answer", "error_type"} - set(table.columns)
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {sorted(missing)}")
    return table


def mmlu_redux_table(*, root: str | os.PathLike | None = None):
    """MMLU-Redux: 5,700 MMLU questions with human error labels and 14 LLMs' predicted answers.

    This is a table, not a record set: ``helm_predictions.csv`` gives each LLM's predicted
    letter only, with no confidence, so no calibration method applies to it. It serves as
    offline MMLU questions (extraction input) and as human ground truth for label cleaning.

    Join: the 57 subject files ``questions/mmlu_<subject>.csv`` (separator "," or ";", one file
    in Mac-Roman, column order varying) are read in file-name order; helm_predictions.csv has no
    subject column, so its rows are matched on the question text and choices (normalised:
    NFKC, non-ASCII dropped, whitespace collapsed), the k-th copy of a repeated
    (question, choices) pair with the k-th copy (32 pairs repeat). Every question is matched
    exactly once, and the given answer and error type must agree with helm's
    ``groundtruth_answer`` and ``error_type``; the matching found is recorded in
    ``table.attrs["join"]`` (on the pinned files it is the identity: helm's rows are the subject
    files concatenated in file-name order).

    Parameters
    ----------
    root : path-like, optional
        Data root; default :func:`data_root`.

    Returns
    -------
    pandas.DataFrame
        5,700 rows (57 subjects x 100), columns: ``id`` (``redux-<subject>-<k>``), ``subject``,
        ``question``, ``choices`` (list of 4 str), ``answer`` (int, the given answer index),
        ``error_type`` (:func:`normalise_error_type`; "ok" when the question is fine),
        ``correct_answer`` (the annotators' correction, as written; "" when none), then one int
        column per LLM of :data:`REDUX_MODELS`: the predicted answer index (A-D -> 0-3, anything
        else -> -1).

    Raises
    ------
    FileNotFoundError
        The data is not available (the message says how to get it).
    ValueError
        A question is not matched exactly once, or the two files disagree on a matched row.
    """
    import pandas as pd

    root_path = _resolve_root(root, "mmlu-redux")
    parts = []
    for subject in REDUX_SUBJECTS:
        rel = f"mmlu-redux/questions/mmlu_{subject}.csv"
        table = _read_subject(_data_file(root_path, rel, "mmlu-redux"))
        choices = [_parse_choices(c, f"{rel} row {i}") for i, c in enumerate(table["choices"])]
        answer = pd.to_numeric(table["answer"].str.strip(), errors="raise").astype(np.int64)
        parts.append(pd.DataFrame({
            "id": [f"redux-{subject}-{k:03d}" for k in range(len(table))],
            "subject": subject, "question": table["question"].astype(str).to_numpy(dtype=object),
            "choices": choices, "answer": answer.to_numpy(),
            "error_type": [normalise_error_type(e) for e in table["error_type"]],
            "correct_answer": (table["correct_answer"].astype(str).str.strip().to_numpy(dtype=object)
                               if "correct_answer" in table.columns else ""),
        }))
    questions = pd.concat(parts, ignore_index=True)
    bad = [(i, a, len(c)) for i, (a, c) in enumerate(zip(questions["answer"], questions["choices"]))
           if not 0 <= a < len(c)]
    if bad:
        raise ValueError(f"questions: answer index outside the choices at row {bad[0][0]} ({bad[0][1]} of {bad[0][2]})")

    helm_path = _data_file(root_path, "mmlu-redux/helm_predictions.csv", "mmlu-redux")
    helm = pd.read_csv(helm_path, dtype=str, keep_default_na=False)
    missing_cols = {"question", "choices", "groundtruth_answer", "error_type", *REDUX_MODELS} - set(helm.columns)
    if missing_cols:
        raise ValueError(f"helm_predictions.csv: missing column(s) {sorted(missing_cols)}")

    def keys(question_texts: Iterable[str], choice_lists: Iterable[Sequence[str]]) -> list[tuple]:
        seen: collections.Counter = collections.Counter()
        out = []
        for q, c in zip(question_texts, choice_lists):
            key = (_norm_text(q), tuple(_norm_text(x) for x in c))
            out.append((key, seen[key]))
            seen[key] += 1
        return out

    helm_choices = [_parse_choices(c, f"helm_predictions.csv row {i}") for i, c in enumerate(helm["choices"])]
    helm_rows = {key: i for i, key in enumerate(keys(helm["question"], helm_choices))}
    match = np.array([helm_rows.get(key, -1) for key in keys(questions["question"], questions["choices"])])
    unmatched = np.flatnonzero(match < 0)
    if len(unmatched):
        raise ValueError(f"mmlu-redux join: {len(unmatched)} question(s) not found in helm_predictions.csv, "
                         f"e.g. {questions['id'][unmatched[0]]}")
    if len(set(match.tolist())) != len(match) or len(match) != len(helm):
        raise ValueError(f"mmlu-redux join: {len(match)} questions matched {len(set(match.tolist()))} of "
                         f"{len(helm)} helm rows; every question must match exactly one row")
    matched = helm.iloc[match].reset_index(drop=True)
    gt = pd.to_numeric(matched["groundtruth_answer"].str.strip(), errors="coerce")
    if not (gt.to_numpy() == questions["answer"].to_numpy()).all():
        raise ValueError("mmlu-redux join: helm's groundtruth_answer differs from the subject files' answer")
    helm_err = matched["error_type"].map(normalise_error_type)
    if not (helm_err.to_numpy(dtype=object) == questions["error_type"].to_numpy(dtype=object)).all():
        raise ValueError("mmlu-redux join: helm's error_type differs from the subject files' error_type")
    for name in REDUX_MODELS:
        questions[name] = matched[name].map(lambda v: _LETTERS.get(str(v).strip(), -1)).astype(np.int64).to_numpy()
    identity = bool((match == np.arange(len(match))).all())
    questions.attrs["join"] = {
        "method": "question text + choices (NFKC, non-ASCII dropped, whitespace collapsed), "
                  "k-th repeat to k-th repeat",
        "matched": int(len(match)), "helm_rows": int(len(helm)), "identity_order": identity,
    }
    source = SOURCES["mmlu-redux"]
    questions.attrs["source"] = {"what": source.what, "licence": source.licence, "origin": source.page,
                                 "commit": source.commit}
    return questions


# ----------------------------------------------------------------------------- all at once

def data_root_description(root: pathlib.Path | None = None) -> str:
    """Where :func:`data_root` reads the public data from, in words a page can print: which of its
    three places it is, never the folder's path on the machine that built the page."""
    root = data_root() if root is None else root
    if root is None:
        return missing_data_message("public")
    if os.environ.get(DATA_ENV):
        return f"data: the folder named by {DATA_ENV}"
    if root == REPO_ROOT.parent / "shared" / "data":
        return "data: the offline copy beside the repository (shared/data)"
    return "data: the download cache (python -m calcas.datasets.public fetch)"


def record_set_summary(paths: Mapping[str, str | os.PathLike]) -> "pd.DataFrame":
    """One row per file :func:`write_public_records` wrote: its rows, accuracy against the given
    labels (none for the MMLU-Redux table, which holds answers only) and what was left out."""
    import pandas as pd

    rows = []
    for name, path in paths.items():
        if name == "mmlu_redux":
            rows.append({"record set": name, "rows": len(pd.read_parquet(path)), "accuracy (given labels)": None,
                         "note": "answers only"})
            continue
        r = read_records(path)
        m = r.manifest
        rows.append({"record set": name, "rows": r.n, "accuracy (given labels)": float(r.verified.mean()),
                     "note": ", ".join(f"{k.removeprefix('n_')}: {m[k]:,}" for k in ("n_unrated", "n_unparseable",
                                                                                      "n_dropped")
                                       if isinstance(m.get(k), int) and m[k] > 0)})
    columns = ["record set", "rows", "accuracy (given labels)", "note"]
    return pd.DataFrame(rows, columns=columns).set_index("record set")


def write_public_records(out_dir: str | os.PathLike, *, root: str | os.PathLike | None = None) -> dict[str, pathlib.Path]:
    """Write every public record set, and the MMLU-Redux table, as Parquet files.

    Files: ``imagenet_<model>.parquet`` for the 4 ImageNet-X models (:func:`imagenet_records`);
    ``mmlu_<model>.parquet`` for Llama3-8b and Llama3-70b only (the two models row-aligned on
    MMLU) and ``arc_<model>.parquet`` for all 14 ARC models (:func:`plaut_records`);
    ``mmlu_redux.parquet``, the plain pandas table of :func:`mmlu_redux_table`.

    Parameters
    ----------
    out_dir : path-like
        Output folder (created if needed).
    root : path-like, optional
        Data root; default :func:`data_root`.

    Returns
    -------
    dict of str to pathlib.Path
        File stem (e.g. ``"imagenet_ResNet50"``, ``"arc_gpt-4-turbo"``, ``"mmlu_redux"``) -> path.

    Raises
    ------
    FileNotFoundError
        The data is not available; the message (:func:`missing_data_message`) says how to get it.
    """
    root_path = _resolve_root(root, "all")
    missing = [p for p in FILES if not (root_path / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{root_path / missing[0]} and {len(missing) - 1} more file(s) do not exist; "
                                f"{missing_data_message('all')}")
    check_imagenet_classes(root=root_path)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, pathlib.Path] = {}

    def put(name: str, records: Records) -> None:
        path = out / f"{name}.parquet"
        write_records(records, path)
        written[name] = path

    for model in IMAGENET_MODELS:
        put(f"imagenet_{model}", imagenet_records(model, root=root_path))
    for model in PLAUT_MMLU_ALIGNED:
        put(f"mmlu_{model}", plaut_records("mmlu", model, root=root_path))
    for model in plaut_models("arc"):
        put(f"arc_{model}", plaut_records("arc", model, root=root_path))
    table = mmlu_redux_table(root=root_path)
    path = out / "mmlu_redux.parquet"
    table.to_parquet(path, index=False)
    written["mmlu_redux"] = path
    return written


# ----------------------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m calcas.datasets.public fetch [--cache DIR] [--only NAME ...]``
    downloads the data; ``... write OUT_DIR [--root DIR]`` writes the record sets.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(prog="python -m calcas.datasets.public",
                                     description="Public reference data: download and convert to record sets.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download the files from the pinned origins and check their SHA-256")
    p_fetch.add_argument("--cache", default=None, help=f"target folder (default ${CACHE_ENV} or ~/.cache/calcas/data)")
    p_fetch.add_argument("--only", nargs="+", default=None, metavar="NAME",
                         help="files (e.g. imagenetx/ResNet50.csv) or folders (e.g. imagenetx) to fetch")
    p_write = sub.add_parser("write", help="write the public record sets as Parquet files")
    p_write.add_argument("out_dir")
    p_write.add_argument("--root", default=None, help="data root (default: found by data_root())")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.command == "fetch":
        try:
            root = fetch(args.only, cache=args.cache, verbose=True)
        except (OSError, ValueError) as err:
            print(f"fetch failed: {err}", file=sys.stderr)
            return 1
        print(f"public data in {root} ({time.perf_counter() - start:.1f} s)")
        if args.cache is not None and pathlib.Path(args.cache).expanduser() != cache_dir():
            print(f"use it with: export {DATA_ENV}={root}")
        return 0
    try:
        written = write_public_records(args.out_dir, root=args.root)
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 1
    for name, path in written.items():
        print(f"{name}: {path}")
    print(f"{len(written)} files in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
