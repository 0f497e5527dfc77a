"""The paper's language benchmarks as items for :mod:`calcas.extract.language` (SPEC §0, §5).

Multiple choice (scored by :func:`~calcas.extract.language.mc_batches` into logits over the k
options): MMLU and ARC-Challenge. Generation (decoded by
:func:`~calcas.extract.language.generate_batches`, graded by a verifier): GSM8K (final number),
MBPP and BigCodeBench (the code runs with the task's tests in
:func:`calcas.extract.sandbox.run_untrusted`, never in this process).

Data comes from a local file (CSV, JSONL, JSON, Parquet) or a Hugging Face data set
(``"hf:<id or local dataset dir>[:<config>]"``, or ``"hf"`` for the task's default), in each
data set's own column layout::

    items = task_items("gsm8k", "hf", n=200)          # openai/gsm8k, main, test
    batches = generate_batches(model, tokenizer, items, verifier=TASKS["gsm8k"].verify,
                               max_new_tokens=TASKS["gsm8k"].max_new_tokens)

Every reader of task data is here: :func:`read_table` (any file or Hugging Face data set),
:func:`read_mc_file` and :func:`read_csv_text` (local question files) and :func:`mmlu_items`
(a question table -> multiple-choice items). ``calcas.extract.language`` still exports the last
three under their old names.
"""
from __future__ import annotations

import ast
import dataclasses
import io
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .common import seeded_rows
from .verifiers import gsm8k_verify, verify_code

__all__ = ["LETTERS", "TASKS", "Task", "mmlu_items", "read_csv_text", "read_mc_file", "read_table", "task_items"]

#: Option letters: multiple-choice answers given as letters, and the prompts' option labels.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclasses.dataclass(frozen=True)
class Task:
    """One benchmark: where its data lives, how rows become items and how answers are graded.

    Attributes
    ----------
    name : str
        Key in :data:`TASKS`.
    kind : {"mc", "generate"}
        ``"mc"``: items for ``mc_batches`` (record sets with logits over the options);
        ``"generate"``: items for ``generate_batches`` (record sets with a score and ``verified``).
    hf : tuple (dataset_id, config or None, split)
        The default Hugging Face data set (``task_items(name, "hf")``).
    items : callable (table, *, n=None, seed=0, **options) -> list of dict
        Rows of a DataFrame in the data set's layout -> items. Multiple choice:
        ``{"id", "question", "choices" (k str), "answer" (int index, -1 unknown)[, "subject"]}``;
        generation: ``{"id", "prompt", ...}`` plus what :attr:`verify` reads. ``n`` keeps a
        seeded random subset of n rows, in table order.
    verify : callable (completion: str, item: dict) -> float, or None
        1.0 when the completion is correct, else 0.0 (generation only; None for multiple choice,
        whose label is the answer index).
    max_new_tokens : int or None
        Default generation budget (None for multiple choice).
    prompt_template : str or None
        The prompt's ``str.format`` template (for :func:`calcas.extract.language.lm_manifest`);
        None when the data set's own prompt is used or for multiple choice
        (:data:`calcas.extract.language.MC_TEMPLATE`).
    """

    name: str
    kind: str
    hf: tuple[str, str | None, str]
    items: Callable[..., list[dict]]
    verify: Callable[[str, dict], float] | None = None
    max_new_tokens: int | None = None
    prompt_template: str | None = None


# --------------------------------------------------------------------------- reading

def read_table(source: str | os.PathLike, *, split: str | None = None, config: str | None = None):
    """A data set as a DataFrame, from a local file or through ``datasets.load_dataset``.

    Parameters
    ----------
    source : str or path
        A ``.csv`` (separator ``,`` or ``;``, UTF-8 or Mac-Roman, every column read as str),
        ``.jsonl`` / ``.json`` (one object a line, or a JSON array) or ``.parquet`` file; or
        ``"hf:<dataset id or local dataset directory>"``, optionally ``"hf:<id>:<config>"``.
    split : str, optional
        Hugging Face only: the split to load; default the only split there is.
    config : str, optional
        Hugging Face only: the configuration (overrides one given in ``source``).

    Returns
    -------
    pandas.DataFrame
        One row per example, the data set's own columns (lists and structs as Python objects).

    Raises
    ------
    FileNotFoundError
        A local file that does not exist.
    ValueError
        An unknown suffix, a directory given without ``"hf:"``, or no ``split`` for a data set
        with several.
    ImportError
        ``"hf:"`` without the ``datasets`` package.
    """
    import pandas as pd

    text = os.fspath(source)
    if isinstance(text, str) and text.startswith("hf:"):
        return _read_hf(text[3:], split, config)
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"{path}: a directory; for a Hugging Face data set directory pass 'hf:{path}'")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".json"):
        try:
            return pd.read_json(path, lines=True, dtype=False)
        except ValueError:
            if suffix == ".jsonl":
                raise
            return pd.read_json(path, dtype=False)  # a JSON array of objects
    if suffix == ".csv":
        return read_csv_text(path)
    raise ValueError(f"{path}: unknown format {suffix!r} (csv, jsonl, json, parquet, or 'hf:<dataset>')")


def _read_hf(name: str, split: str | None, config: str | None):
    try:
        import datasets
    except ImportError as err:
        raise ImportError("hf: reading Hugging Face data sets needs the datasets package: "
                          "`pip install datasets`") from err
    if ":" in name and not Path(name).exists():
        name, given = name.rsplit(":", 1)
        config = config or given or None
    data = datasets.load_dataset(name, config, split=split)
    if isinstance(data, datasets.DatasetDict):
        if len(data) != 1:
            raise ValueError(f"hf:{name}: pass split= (one of {sorted(data)})")
        data = next(iter(data.values()))
    return data.to_pandas()


def read_csv_text(path: str | os.PathLike):
    """A benchmark CSV as a DataFrame of str: UTF-8 (or Mac-Roman, e.g. MMLU-Redux's
    moral_scenarios file), separator ``,`` or ``;`` (whichever the header has more of),
    empty cells kept as ``""``, column names stripped."""
    import pandas as pd
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("mac_roman")
    first = text.split("\n", 1)[0]
    sep = ";" if first.count(";") > first.count(",") else ","
    table = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    table.columns = [str(c).strip() for c in table.columns]
    return table


def read_mc_file(path: str | os.PathLike):
    """A local multiple-choice file as a DataFrame (for :func:`mmlu_items`).

    Read by :func:`read_table` (``.csv``, ``.jsonl`` / ``.json``, ``.parquet``); a CSV's column
    names are lower-cased. The columns ``question``, ``choices`` and ``answer`` must be there.
    """
    path = Path(path)
    table = read_table(path)
    if path.suffix.lower() == ".csv":
        table.columns = [c.lower() for c in table.columns]
    missing = {"question", "choices", "answer"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column {sorted(missing)[0]!r}")
    return table


# --------------------------------------------------------------------------- rows -> items

def _require(table, task: str, *columns: str) -> None:
    for column in columns:
        if column not in table.columns:
            raise ValueError(f"{task}: missing column {column!r} (columns: {list(table.columns)})")


def _ids(table, task: str, column: str | None) -> list[str]:
    """The id column as str when there is one, else ``"<task>-<row>"``; must be unique."""
    if column is not None and column in table.columns:
        ids = [str(v) for v in table[column]]
    else:
        ids = [f"{task}-{i}" for i in range(len(table))]
    seen: set[str] = set()
    for id_ in ids:
        if id_ in seen:
            raise ValueError(f"{task}: id {id_!r} is repeated; ids must be unique")
        seen.add(id_)
    return ids


def _as_list(value: Any) -> list:
    if isinstance(value, str):
        value = ast.literal_eval(value.strip()) if value.strip() else []
    if hasattr(value, "tolist"):
        value = value.tolist()
    return list(value) if value is not None else []


def _text(value: Any) -> str:
    """A cell as str; a missing value (None, NaN) as ""."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _parse_choices(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"choices: cannot parse {value[:60]!r} as a list") from err
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"choices: expected a non-empty list of options, got {value!r}")
    return [str(v) for v in value]


def _parse_answer(value: Any, k: int) -> int:
    text = str(value).strip()
    if len(text) == 1 and text.upper() in LETTERS[:k]:
        return LETTERS.index(text.upper())
    answer = int(float(text))
    if not 0 <= answer < k:
        raise ValueError(f"answer: {value!r} is outside the {k} options")
    return answer


def mmlu_items(table: Any, n: int | None = None, seed: int = 0) -> list[dict]:
    """Items for :func:`~calcas.extract.language.mc_batches` from a question table.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``question``, ``choices`` (list of str, or its Python literal), ``answer`` (int
        index or letter), optionally ``id`` (default ``"q<row>"``) and ``subject``;
        e.g. :func:`calcas.datasets.public.mmlu_redux_table`.
    n : int, optional
        Keep a random sample of n rows (without replacement, seeded), in table order.
    seed : int, default 0

    Returns
    -------
    list of dict ``{"id", "question", "choices", "answer"[, "subject"]}``.
    """
    missing = {"question", "choices", "answer"} - set(table.columns)
    if missing:
        raise ValueError(f"{sorted(missing)[0]}: missing column (need question, choices, answer)")
    ids = table["id"].astype(str).to_numpy() if "id" in table.columns else np.array([f"q{i}" for i in range(len(table))])
    if len(set(ids)) != len(ids):
        raise ValueError("id: ids must be unique")
    out = []
    for i in seeded_rows(len(table), n, seed):
        row = table.iloc[int(i)]
        choices = _parse_choices(row["choices"])
        item = {"id": str(ids[i]), "question": str(row["question"]), "choices": choices,
                "answer": _parse_answer(row["answer"], len(choices))}
        if "subject" in table.columns:
            item["subject"] = str(row["subject"])
        out.append(item)
    return out


def _mmlu_items(table, *, n: int | None = None, seed: int = 0) -> list[dict]:
    _require(table, "mmlu", "question", "choices", "answer")
    table = table.assign(id=_ids(table, "mmlu", "id"))
    return mmlu_items(table, n=n, seed=seed)


def _arc_items(table, *, n: int | None = None, seed: int = 0, n_options: int = 4) -> list[dict]:
    """ARC rows (``choices`` = {"text", "label"}, ``answerKey``) or a flat question table.

    Questions without exactly ``n_options`` options are dropped (a record set has one fixed
    number of options) with a warning that gives the count; ``n`` samples the kept ones.
    """
    _require(table, "arc", "question", "choices")
    if "answerKey" not in table.columns:
        _require(table, "arc", "answer")
    ids = _ids(table, "arc", "id")
    kept: list[dict] = []
    for id_, row in zip(ids, table.to_dict("records")):
        value = row["choices"]
        if isinstance(value, str) and value.strip().startswith("{"):
            value = ast.literal_eval(value.strip())
        if isinstance(value, dict):
            choices = [str(t) for t in _as_list(value["text"])]
            labels = [str(x).strip() for x in _as_list(value.get("label"))] or list(LETTERS[:len(choices)])
        else:
            choices, labels = _parse_choices(value), None
        if len(choices) != n_options:
            continue
        key = row.get("answerKey", row.get("answer"))
        if _text(key).strip() == "":
            answer = -1
        elif labels is not None:
            if str(key).strip() not in labels:
                raise ValueError(f"arc: answer key {key!r} of {id_!r} is not one of its labels {labels}")
            answer = labels.index(str(key).strip())
        else:
            answer = _parse_answer(key, len(choices))
        kept.append({"id": id_, "question": str(row["question"]), "choices": choices, "answer": answer})
    if len(kept) < len(table):
        warnings.warn(f"arc: dropped {len(table) - len(kept)} of {len(table)} questions that do not have "
                      f"{n_options} options", UserWarning, stacklevel=2)
    return [kept[i] for i in seeded_rows(len(kept), n, seed)]


def _generation_items(task: str, table, columns: tuple[str, ...], id_column: str | None,
                      make: Callable[[dict], dict], n: int | None, seed: int) -> list[dict]:
    _require(table, task, *columns)
    ids = _ids(table, task, id_column)
    records = table.to_dict("records")
    return [{"id": ids[i], **make(records[i])} for i in seeded_rows(len(table), n, seed)]


_GSM8K_TEMPLATE = ("Solve the following math problem step by step. At the end, write the final answer "
                  "on its own line as \"#### <number>\".\n\nQuestion: {question}\nAnswer:")


def _gsm8k_items(table, *, n: int | None = None, seed: int = 0) -> list[dict]:
    return _generation_items("gsm8k", table, ("question", "answer"), "id", lambda r: {
        "prompt": _GSM8K_TEMPLATE.format(question=str(r["question"]).strip()),
        "question": str(r["question"]), "answer": str(r["answer"])}, n, seed)


def _gsm8k_verify(completion: str, item: dict) -> float:
    return gsm8k_verify(completion, item["answer"])


_MBPP_TEMPLATE = ("You are an expert Python programmer, and here is your task: {text} "
                 "Your code should pass these tests:\n\n{tests}\n\n"
                 "Answer with the complete code in one ```python code block.\n")


def _mbpp_items(table, *, n: int | None = None, seed: int = 0) -> list[dict]:
    def make(r: dict) -> dict:
        tests = [str(t) for t in _as_list(r["test_list"])]
        return {"prompt": _MBPP_TEMPLATE.format(text=str(r["text"]).strip(), tests="\n".join(tests)),
                "test_list": tests, "test_setup_code": _text(r.get("test_setup_code")),
                "reference": _text(r.get("code"))}
    return _generation_items("mbpp", table, ("task_id", "text", "test_list"), "task_id", make, n, seed)


def _mbpp_verify(completion: str, item: dict) -> float:
    tests = item.get("test_setup_code", "") + "\n" + "\n".join(item["test_list"])
    return verify_code(completion, tests)  # standard library only, 10 s, 512 MiB


# Runs the task's TestCases in the sandbox (where __name__ is "__sandbox__", so a test file's
# `if __name__ == "__main__": unittest.main()` does not run) and fails the run unless all pass.
_UNITTEST_RUNNER = """
import unittest as _calcas_unittest
_calcas_result = _calcas_unittest.TextTestRunner(verbosity=0).run(
    _calcas_unittest.defaultTestLoader.loadTestsFromTestCase(TestCases))
if not _calcas_result.wasSuccessful():
    raise SystemExit(1)
"""
# Importing pandas + numpy + matplotlib + scipy + sklearn peaks at ~0.6 GiB of address space
# (~2 s); torch ~0.6 GiB. 4 GiB leaves room for the tasks' own data, 60 s for slow imports.
_BIGCODEBENCH_SANDBOX = {"timeout_s": 60.0, "memory_mb": 4096, "max_processes": 64, "max_file_mb": 64,
                         "allow_site_packages": True}


def _bigcodebench_items(table, *, n: int | None = None, seed: int = 0) -> list[dict]:
    return _generation_items("bigcodebench", table, ("task_id", "instruct_prompt", "test"), "task_id",
                             lambda r: {"prompt": str(r["instruct_prompt"]), "test": str(r["test"]),
                                        "entry_point": _text(r.get("entry_point"))}, n, seed)


def _bigcodebench_verify(completion: str, item: dict) -> float:
    """The audit hook refuses ``ctypes``, which pandas, scipy and torch import: it is turned off
    where the sandbox drops to a fresh unprivileged uid (the OS layer then protects the caller);
    elsewhere it stays on and such tasks verify as 0 (with a warning)."""
    from .sandbox import isolation_report

    uid_drop = isolation_report()["uid_drop"]
    if not uid_drop:
        warnings.warn("bigcodebench: the sandbox cannot drop to an unprivileged uid here, so its audit "
                      "hook stays on and refuses ctypes (imported by pandas, scipy, torch): tasks that "
                      "need them verify as 0", UserWarning, stacklevel=2)
    return verify_code(completion, item["test"] + "\n" + _UNITTEST_RUNNER, audit_hook=not uid_drop,
                       **_BIGCODEBENCH_SANDBOX)


#: The benchmarks of the paper, by name.
TASKS: dict[str, Task] = {
    "mmlu": Task("mmlu", "mc", ("cais/mmlu", "all", "test"), _mmlu_items),
    "arc": Task("arc", "mc", ("allenai/ai2_arc", "ARC-Challenge", "test"), _arc_items),
    "gsm8k": Task("gsm8k", "generate", ("openai/gsm8k", "main", "test"), _gsm8k_items, _gsm8k_verify,
                  512, _GSM8K_TEMPLATE),
    "mbpp": Task("mbpp", "generate", ("google-research-datasets/mbpp", "full", "test"), _mbpp_items,
                 _mbpp_verify, 512, _MBPP_TEMPLATE),
    "bigcodebench": Task("bigcodebench", "generate", ("bigcode/bigcodebench", None, "v0.1.4"),
                         _bigcodebench_items, _bigcodebench_verify, 1280, None),
}


def task_items(task: str, source: str | os.PathLike, *, split: str | None = None, config: str | None = None,
               n: int | None = None, seed: int = 0, **options) -> list[dict]:
    """Items of one benchmark, ready for ``mc_batches`` or ``generate_batches``.

    Parameters
    ----------
    task : str
        A key of :data:`TASKS`: ``"mmlu"``, ``"arc"``, ``"gsm8k"``, ``"mbpp"``, ``"bigcodebench"``.
    source : str or path
        ``"hf"``: the task's default Hugging Face data set (:attr:`Task.hf`); ``"hf:<id or
        dir>[:<config>]"``: another one; anything else: a local file (:func:`read_table`).
    split, config : str, optional
        Hugging Face split and configuration; default the task's (``split``) and, for ``"hf"``,
        its configuration.
    n : int, optional
        A seeded random subset of n rows (in table order); default all.
    seed : int, default 0
    **options
        Passed to :attr:`Task.items`, e.g. ``n_options=4`` for ``"arc"``.

    Returns
    -------
    list of dict
        Multiple choice: ``{"id", "question", "choices", "answer"}`` (the label index; the
        scorer turns them into logits); generation: ``{"id", "prompt", ...}`` for
        :attr:`Task.verify`.

    Raises
    ------
    ValueError
        An unknown task, a missing column, a repeated id, n out of range (and see
        :func:`read_table`).
    """
    if task not in TASKS:
        raise ValueError(f"task: unknown {task!r}; known tasks: {', '.join(TASKS)}")
    spec = TASKS[task]
    text = os.fspath(source)
    if text == "hf":
        dataset, default_config, default_split = spec.hf
        table = read_table(f"hf:{dataset}", split=split or default_split, config=config or default_config)
    elif text.startswith("hf:"):
        table = read_table(text, split=split or spec.hf[2], config=config)
    else:
        table = read_table(text)
    return spec.items(table, n=n, seed=seed, **options)
