"""Notebook plumbing: the papermill parameters of each section, checked before anything runs,
and the machine-readable results.json every executed notebook writes.

Papermill only warns about a parameter the notebook does not declare and never checks types;
each notebook therefore calls :func:`validate_parameters` right after its parameters cell, so
that a misspelt name, a wrong type or a missing file stops the run with one clear message.
The declarations below are the single source of truth; a test checks that every notebook's
parameters cell declares exactly these names with these defaults.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any


class ParameterError(ValueError):
    """A notebook parameter is unknown, of the wrong type, out of range, or names a missing file."""


@dataclasses.dataclass(frozen=True)
class Param:
    type: type
    default: Any
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    is_path: bool = False  # a record-set path (or list of paths) that must exist
    open_bounds: bool = False  # low and high themselves are out of range
    min_items: int = 0  # lists and dicts: at least this many entries
    chain: bool = False  # a dict of paths: each entry a list of at least two (a chain), not exactly two (a pair)


def _rec(model: str) -> str:
    """Where the runner's 01_extract leaves a record set, seen from a sibling section's folder."""
    return f"../01_extract/records/mnist1d_{model}.parquet"


_COMMON = {
    "n_bins": Param(int, 15, "number of equal-count bins (the paper uses 15)", low=1),
    "cal_fraction": Param(float, 0.5, "share of samples in the cal split (the rest is test)", low=0.0, high=1.0,
                          open_bounds=True),
    "seed": Param(int, 0, "seed of the cal/test split and of every resampling", low=0),
    "output_dir": Param(str, ".", "folder for results.json (and record sets in 01_extract)"),
}
_CALIBRATION = {"calibration": Param(str, "auto", "calibration method: 'auto' (temperature for logits, "
                                     "Platt otherwise), 'temperature' or 'platt'",
                                     choices=("auto", "temperature", "platt"))}

SECTIONS: dict[str, dict[str, Param]] = {
    "01_extract": {
        "source": Param(str, "mnist1d", "where record sets come from: 'mnist1d' (train here), 'synthetic', "
                        "'smollm2' (SmolLM2-135M on n_samples MMLU-Redux questions), or the GPU backends "
                        "'timm', 'transformers', 'vllm' (models on data)",
                        choices=("mnist1d", "synthetic", "smollm2", "timm", "transformers", "vllm")),
        "models": Param(list, ["logreg", "mlp", "cnn", "cnn_b"], "models to train and score (GPU sources: timm "
                        "names or checkpoint files, LM hub ids, folders or .gguf files)", min_items=1),
        "n_samples": Param(int, 12000, "number of samples in the pool (each half carries the bins)", low=100),
        "flip_rate": Param(float, 0.08, "share of labels flipped to another class (cleaning ground truth)",
                           low=0.0, high=0.99),
        "n_folds": Param(int, 4, "cross-fitting folds: no sample is scored by a model that saw it", low=2),
        "data": Param(str, "", "GPU sources: an image folder, a data file, 'hf' (the task's Hugging Face "
                      "default) or 'hf:<id or dir>'"),
        "task": Param(str, "", "LM sources: the task", choices=("", "mmlu", "arc", "gsm8k", "mbpp", "bigcodebench")),
        "label_file": Param(str, "", "timm: file-name/label pairs for a flat image folder"),
        "mode": Param(str, "first_token", "multiple choice: 'first_token' (the paper's) or 'option_likelihood'",
                      choices=("first_token", "option_likelihood")),
        "n_items": Param(int, 0, "GPU sources: a seeded subset of n_items items (0: all)", low=0),
        "batch_size": Param(int, 0, "GPU sources: batch size (0: the backend's default)", low=0),
        "dtype": Param(str, "", "GPU sources: compute dtype ('': the model's / fp32)",
                       choices=("", "bf16", "fp16", "fp32")),
        "tensor_parallel_size": Param(int, 1, "vllm: GPUs the model is sharded over", low=1),
        "imagenet_real": Param(bool, False, "timm on the ImageNet val folder: attach the ReaL labels"),
        "seed": _COMMON["seed"],
        "output_dir": _COMMON["output_dir"],
    },
    "02_calibration": {
        "records": Param(list, [_rec("logreg"), _rec("mlp"), _rec("cnn"), _rec("cnn_b"),
                                "../01_extract/records/synthetic_overconfident.parquet",
                                "../01_extract/records/synthetic_underconfident.parquet"],
                         "record sets to calibrate", is_path=True, min_items=1),
        **_CALIBRATION,
        "n_boot": Param(int, 1000, "bootstrap replicates for the ECE intervals", low=1),
        **_COMMON,
    },
    "03_cascading": {
        "pairs": Param(dict, {"small-large": [_rec("mlp"), _rec("cnn")], "large-large": [_rec("cnn"), _rec("cnn_b")]},
                       "cascade pairs: name -> [first record set, second record set]", is_path=True,
                       min_items=1),
        "K": Param(int, 8, "number of bins kept by the first model at the highlighted operating point", low=0),
        **_CALIBRATION,
        **_COMMON,
    },
    "04_cleaning": {
        "experts": Param(list, [_rec("mlp"), _rec("cnn"), _rec("cnn_b")], "record sets of the experts",
                         is_path=True, min_items=1),
        "K": Param(int, 12, "number of most accurate bins at the highlighted operating point", low=1),
        **_CALIBRATION,
        **_COMMON,
    },
    "10_chains": {
        "chains": Param(dict, {"logreg → MLP → CNN": [_rec("logreg"), _rec("mlp"), _rec("cnn")]},
                        "chains: name -> record sets in chain order, the last is the reference model", is_path=True,
                        min_items=1, chain=True),
        "costs": Param(dict, {}, "chain name -> cost of one call of each model; a chain left out takes "
                       "GFLOPs or seconds per item from its manifests"),
        "max_drops": Param(list, [0.01, 0.02, 0.03], "accuracy drops the guarantee is tested at", min_items=1),
        "delta": Param(float, 0.1, "the guarantee may fail with probability at most delta", low=0.0, high=1.0,
                       open_bounds=True),
        "budget": Param(float, 0.01, "accuracy budget of the baseline table", low=0.0, high=1.0),
        "n_splits": Param(int, 500, "random cal/test re-splits per chain", low=1),
        "n_bins": Param(int, 10, "equal-count bins per stage", low=1),
        "fit_fraction": Param(float, 0.3, "share of cal that fits the calibrators (and the frontier method's bins "
                              "and frontier); the rest certifies", low=0.0, high=1.0, open_bounds=True),
        "method": Param(str, "threshold", "certification method of the guarantee table and the explorer",
                        choices=("threshold", "frontier")),
        "deltas": Param(list, [0.05, 0.1], "deltas at which the two certification methods are compared", min_items=1),
        "lambdas": Param(int, 101, "points of the threshold method's grid of lambda on [0, 1]", low=2),
        "n_refit": Param(int, 100, "re-splits that also measure the refit variant and the ceiling", low=1),
        **_CALIBRATION,
        "cal_fraction": _COMMON["cal_fraction"],
        "seed": _COMMON["seed"],
        "output_dir": _COMMON["output_dir"],
    },
    "00_public_data": {
        "output_dir": _COMMON["output_dir"],
    },
    "06_mmlu_redux": {
        "table": Param(str, "../00_public_data/records/mmlu_redux.parquet",
                       "the MMLU-Redux table (calcas.datasets.public.mmlu_redux_table)", is_path=True),
        "k": Param(int, 14, "highlighted operating point: flag when at least k experts disagree", low=1),
        "output_dir": _COMMON["output_dir"],
    },
    "11_shift": {
        "records_dir": Param(str, "../00_public_data/records", "folder of the public record sets (imagenet_<model>.parquet)"),
        "task_models": Param(list, ["Llama-7b", "Llama-13b", "Llama-70b", "Llama3-8b", "Llama3-70b", "Falcon-7b",
                                    "Falcon-40b", "Mistral", "Mixtral", "Solar", "Yi-6b", "Yi-34b", "gpt-3.5-turbo",
                                    "gpt-4-turbo"], "LLMs shifted from MMLU to ARC-Challenge", min_items=1),
        "imagenet_models": Param(list, ["ResNet50", "ViT", "DINO", "SimCLR"],
                                 "ImageNet models shifted from the animal classes to the others", min_items=1),
        "n_boot": Param(int, 500, "bootstrap replicates of every interval", low=1),
        "n_tests": Param(int, 200, "source-vs-source splits of the false-positive rate, and draws of the power", low=1),
        "power_rows": Param(int, 500, "rows on each side in a draw of the power", low=2),
        "sizes": Param(list, [25, 50, 100, 200, 400, 800], "labelled target rows m of the recalibration curve",
                       min_items=1),
        "n_repeats": Param(int, 30, "draws of m rows per size", low=2),
        "max_drop": Param(float, 0.03, "the chains' guarantee: accuracy lost at most max_drop", low=0.0, high=1.0),
        "delta": Param(float, 0.1, "the guarantee may fail with probability at most delta", low=0.0, high=1.0,
                       open_bounds=True),
        "n_splits": Param(int, 100, "re-splits of each chain", low=1),
        "seed": _COMMON["seed"],
        "output_dir": _COMMON["output_dir"],
    },
    "07_public_summary": {
        "results_dir": Param(str, "..", "folder holding the public chapters' output folders"),
        "output_dir": _COMMON["output_dir"],
    },
    "05_results": {
        "results_dir": Param(str, "..", "folder holding the other sections' output folders"),
        "output_dir": _COMMON["output_dir"],
    },
    "08_lab": {
        "n": Param(int, 20000, "samples of each synthetic model (half cal, half test)", low=100),
        "n_bins": _COMMON["n_bins"],
        "draws": Param(int, 500, "sample-size lesson: simulated data sets per sample size", low=2),
        "bins_sample": Param(int, 2000, "bins lesson: test samples drawn in the reliability diagram", low=30),
        "seed": _COMMON["seed"],
        "output_dir": _COMMON["output_dir"],
    },
    "09_ece_estimators": {
        "draws": Param(int, 500, "simulated data sets per configuration", low=2),
        "amplitude": Param(float, 0.03, "miscalibration amplitude a: accuracy at confidence c is c - a*sin(pi*c)", low=0.0, high=0.5),
        "n_boot": Param(int, 200, "bootstrap replicates per interval", low=1),
        "seed": _COMMON["seed"],
        "output_dir": _COMMON["output_dir"],
    },
}


def _type_ok(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _in_range(value: float, p: Param) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if p.open_bounds:
        return (p.low is None or value > p.low) and (p.high is None or value < p.high)
    return (p.low is None or value >= p.low) and (p.high is None or value <= p.high)


def validate_parameters(section: str, namespace: dict[str, Any], *, before: set[str]) -> dict[str, Any]:
    """Check a notebook's parameters; return them as a dict.

    Parameters
    ----------
    section : str
        Notebook name, a key of :data:`SECTIONS`.
    namespace : dict
        The notebook's ``globals()`` after the parameters (and papermill's injected) cell.
    before : set of str
        Names that existed before the parameters cell; anything new that is not a declared
        parameter was injected under a name the notebook does not know.

    Raises
    ------
    ParameterError
        One message listing every problem: unknown names, wrong types, values out of range
        or not among the choices, and record-set files that do not exist.
    """
    if section not in SECTIONS:
        raise ParameterError(f"section: unknown notebook {section!r}; expected one of {sorted(SECTIONS)}")
    declared = SECTIONS[section]
    problems = []
    unknown = sorted(n for n in set(namespace) - before - set(declared) if not n.startswith("_"))
    for name in unknown:
        problems.append(f"{name}: not a parameter of {section} (known: {', '.join(declared)})")
    values = {}
    for name, p in declared.items():
        if name not in namespace:
            problems.append(f"{name}: missing from the parameters cell")
            continue
        value = values[name] = namespace[name]
        if not _type_ok(value, p.type):
            problems.append(f"{name}: expected {p.type.__name__}, got {type(value).__name__} {value!r}")
            continue
        if p.choices is not None and value not in p.choices:
            problems.append(f"{name}: expected one of {list(p.choices)}, got {value!r}")
        if isinstance(value, (int, float)) and not _in_range(value, p):
            lo, hi = ("(", ")") if p.open_bounds else ("[", "]")
            problems.append(f"{name}: must lie in {lo}{p.low}, {p.high}{hi}, got {value!r}")
        if isinstance(value, (list, dict)) and len(value) < p.min_items:
            problems.append(f"{name}: needs at least {p.min_items} entr{'y' if p.min_items == 1 else 'ies'}, "
                            f"got {value!r}")
        if p.is_path:
            paths = value if isinstance(value, list) else [value]
            if isinstance(value, dict):
                fits = (lambda v: len(v) >= 2) if p.chain else (lambda v: len(v) == 2)
                bad = [k for k, v in value.items() if not (isinstance(v, list) and fits(v))]
                if bad:
                    shape = "a list of at least two record sets, in chain order" if p.chain else "[first, second]"
                    problems.append(f"{name}: each entry must be {shape}, not so for {bad}")
                paths = [x for v in value.values() if isinstance(v, list) for x in v]
            if not all(isinstance(x, str) for x in paths):
                problems.append(f"{name}: expected paths as strings, got {value!r}")
            else:
                missing = [x for x in paths if not Path(x).exists()]
                if missing:
                    problems.append(f"{name}: file(s) not found: {', '.join(missing)}")
                folders = [x for x in paths if Path(x).is_dir()]
                if folders:
                    problems.append(f"{name}: expected record-set files, got folder(s): {', '.join(folders)}")
    if problems:
        raise ParameterError(f"{len(problems)} bad parameter(s) for {section}:\n  " + "\n  ".join(problems))
    return values


def _rounded(obj: Any, digits: int = 6) -> Any:
    """Round floats so results.json compares cleanly across runs; NaN becomes null."""
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else round(obj, digits)
    if isinstance(obj, dict):
        return {str(k): _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v, digits) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy scalar
        return _rounded(obj.item(), digits)
    if hasattr(obj, "tolist"):
        return _rounded(obj.tolist(), digits)
    return obj


def write_results(output_dir: str | os.PathLike, results: dict[str, Any]) -> Path:
    """Write ``results.json`` (sorted keys, floats rounded to 6 decimals, NaN as null) into
    ``output_dir``; the same inputs and seed give a byte-identical file."""
    path = Path(output_dir) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_rounded(results), indent=1, sort_keys=True) + "\n")
    return path
