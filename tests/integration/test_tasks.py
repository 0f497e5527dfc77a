"""calcas.extract.tasks: benchmark rows in each data set's own layout -> items -> scorers and
verifiers. Sample data sets are written in the test (no network, no hub); the sandboxed code
checks run a handful of short subprocesses."""
from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from calcas.extract.tasks import TASKS, Task, read_table, task_items

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

# ARC-Challenge rows as on the hub: choices is a {"text", "label"} struct, answerKey a label.
ARC_ROWS = [
    {"id": "Mercury_1", "question": "Which gas do plants take in?",
     "choices": {"text": ["oxygen", "carbon dioxide", "helium", "neon"], "label": ["A", "B", "C", "D"]},
     "answerKey": "B"},
    {"id": "Mercury_2", "question": "Three options only?",
     "choices": {"text": ["x", "y", "z"], "label": ["A", "B", "C"]}, "answerKey": "A"},
    {"id": "NYSEDREGENTS_3", "question": "Which is a mammal?",
     "choices": {"text": ["trout", "frog", "whale", "crow"], "label": ["1", "2", "3", "4"]}, "answerKey": "3"},
    {"id": "Mercury_4", "question": "Five options?",
     "choices": {"text": ["a", "b", "c", "d", "e"], "label": ["A", "B", "C", "D", "E"]}, "answerKey": "E"},
    {"id": "Mercury_5", "question": "Water boils at sea level at",
     "choices": {"text": ["50 C", "100 C", "150 C", "200 C"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"},
    {"id": "NYSEDREGENTS_6", "question": "The Sun is a",
     "choices": {"text": ["planet", "moon", "comet", "star"], "label": ["1", "2", "3", "4"]}, "answerKey": "4"},
    {"id": "Mercury_7", "question": "Ice is",
     "choices": {"text": ["solid water", "gas", "plasma", "liquid"], "label": ["A", "B", "C", "D"]},
     "answerKey": "A"},
]
ARC_KEPT = {"Mercury_1": 1, "NYSEDREGENTS_3": 2, "Mercury_5": 1, "NYSEDREGENTS_6": 3, "Mercury_7": 0}

GSM8K_ROWS = [
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
                 "in May. How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
               "altogether in April and May.\n#### 72"},
    {"question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
                 "How much did she earn?",
     "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned "
               "0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"},
    {"question": "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total?",
     "answer": "It takes 2/2=<<2/2=1>>1 bolt of white fiber\nSo the total is 2+1=<<2+1=3>>3 bolts\n#### 3"},
]

MBPP_ROWS = [
    {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given "
                            "character from the string.",
     "code": "def remove_Occ(s,ch):\n    s = s.replace(ch, '', 1)\n    i = s.rfind(ch)\n"
             "    return s if i < 0 else s[:i] + s[i + 1:]",
     "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"',
                   'assert remove_Occ("PHP","P") == "H"'],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 12, "text": "Write a function to sort a given matrix in ascending order according to the sum "
                            "of its rows.",
     "code": "def sort_matrix(M):\n    return sorted(M, key=sum)",
     "test_list": ["assert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]])==[[1, 1, 1], [1, 2, 3], [2, 4, 5]]"],
     "test_setup_code": "import math", "challenge_test_list": []},
]

BCB_TEST = '''import unittest
import pandas as pd


class TestCases(unittest.TestCase):
    def test_counts(self):
        df = task_func(["a", "b", "b", "c", "a", "b"])
        self.assertIsInstance(df, pd.DataFrame)
        self.assertEqual(df["word"].tolist(), ["b", "a", "c"])
        self.assertEqual(df["count"].tolist(), [3, 2, 1])

    def test_empty(self):
        df = task_func([])
        self.assertEqual(len(df), 0)
        self.assertEqual(list(df.columns), ["word", "count"])


if __name__ == "__main__":
    unittest.main()
'''
BCB_ROW = {
    "task_id": "BigCodeBench/900",
    "complete_prompt": 'import collections\nimport pandas as pd\n\ndef task_func(words):\n    """Count the words."""\n',
    "instruct_prompt": "Count how often each word occurs and return a DataFrame with columns 'word' and 'count', "
                       "most frequent first (ties: alphabetical).\nYou should write self-contained code starting "
                       "with:\n```\nimport collections\nimport pandas as pd\ndef task_func(words):\n```",
    "code_prompt": "import collections\nimport pandas as pd\ndef task_func(words):\n",
    "canonical_solution": "    counts = collections.Counter(words)\n"
                          "    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))\n"
                          "    return pd.DataFrame(rows, columns=['word', 'count'])\n",
    "test": BCB_TEST, "entry_point": "task_func", "doc_struct": "{}", "libs": "['collections', 'pandas']",
}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def arc_file(tmp_path):
    return _jsonl(tmp_path / "arc.jsonl", ARC_ROWS)


@pytest.fixture
def gsm8k_file(tmp_path):
    return _jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS)


# --------------------------------------------------------------------------- tasks and reading

def test_registry():
    assert list(TASKS) == ["mmlu", "arc", "gsm8k", "mbpp", "bigcodebench"]
    assert all(isinstance(t, Task) and t.name == name for name, t in TASKS.items())
    assert {n for n, t in TASKS.items() if t.kind == "mc"} == {"mmlu", "arc"}
    assert TASKS["arc"].hf == ("allenai/ai2_arc", "ARC-Challenge", "test")
    assert TASKS["bigcodebench"].hf == ("bigcode/bigcodebench", None, "v0.1.4")
    for name in ("mmlu", "arc"):
        assert TASKS[name].verify is None and TASKS[name].max_new_tokens is None
    assert [TASKS[n].max_new_tokens for n in ("gsm8k", "mbpp", "bigcodebench")] == [512, 512, 1280]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_arc_drops_other_option_counts_and_maps_labels(tmp_path, fmt):
    path = tmp_path / f"arc.{fmt}"
    if fmt == "jsonl":
        _jsonl(path, ARC_ROWS)
    else:  # choices become a struct column, read back as dicts of arrays
        pd.DataFrame(ARC_ROWS).to_parquet(path)
    with pytest.warns(UserWarning, match="arc: dropped 2 of 7 questions that do not have 4 options"):
        items = task_items("arc", path)
    assert {it["id"]: it["answer"] for it in items} == ARC_KEPT
    assert [it["id"] for it in items] == list(ARC_KEPT)  # table order
    assert items[1]["choices"] == ["trout", "frog", "whale", "crow"]  # numeric label "3" -> index 2
    with pytest.warns(UserWarning, match="dropped 6 of 7 .* 3 options"):
        three = TASKS["arc"].items(read_table(path), n_options=3)
    assert [(it["id"], it["answer"]) for it in three] == [("Mercury_2", 0)]


def test_arc_flat_table_and_no_warning_when_nothing_dropped(tmp_path):
    table = pd.DataFrame({"question": ["q1", "q2"], "choices": [["a", "b", "c", "d"], ["e", "f", "g", "h"]],
                          "answer": ["C", 1]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        items = TASKS["arc"].items(table)
    assert [(it["id"], it["answer"]) for it in items] == [("arc-0", 2), ("arc-1", 1)]


def test_mmlu_csv_and_subset(tmp_path):
    path = tmp_path / "mmlu.csv"
    rows = ["question;choices;answer;subject"] + [
        f"Question {i}?;['w{i}', 'x{i}', 'y{i}', 'z{i}'];{'ABCD'[i % 4]};s{i % 2}" for i in range(10)]
    path.write_text("\n".join(rows) + "\n")
    items = task_items("mmlu", path)
    assert [it["id"] for it in items] == [f"mmlu-{i}" for i in range(10)]
    assert [it["answer"] for it in items] == [i % 4 for i in range(10)]
    assert items[3]["choices"] == ["w3", "x3", "y3", "z3"] and items[3]["subject"] == "s1"
    sub = task_items("mmlu", path, n=4, seed=1)
    ids = [it["id"] for it in sub]
    assert len(set(ids)) == 4 and ids == sorted(ids, key=lambda s: int(s.split("-")[1]))
    assert ids == [it["id"] for it in task_items("mmlu", path, n=4, seed=1)]
    assert task_items("mmlu", path, n=0) == []


def test_one_seeded_subset_and_one_batching_for_readers_and_jobs(tmp_path):
    """calcas.extract.common: the task readers, mmlu_items and the jobs' id subsets draw the same
    seeded rows; batches keep the order and leave out finished ids."""
    from calcas.extract.common import batched, seeded_rows
    from calcas.extract.jobs import seeded_subset
    from calcas.extract.tasks import mmlu_items, read_mc_file
    rows = seeded_rows(10, 4, seed=3)
    assert rows.tolist() == sorted(rows.tolist()) and len(set(rows.tolist())) == 4
    assert seeded_rows(10, None).tolist() == list(range(10))
    ids = [f"mmlu-{i}" for i in range(10)]
    assert seeded_subset(ids, 4, seed=3) == [ids[i] for i in rows]
    path = tmp_path / "q.csv"
    path.write_text("question;choices;answer\n" + "".join(f"q{i};['a', 'b'];{'AB'[i % 2]}\n" for i in range(10)))
    table = read_mc_file(path)
    assert [it["id"] for it in mmlu_items(table, n=4, seed=3)] == [f"q{i}" for i in rows]
    assert [it["id"] for it in task_items("mmlu", path, n=4, seed=3)] == [ids[i] for i in rows]
    with pytest.raises(ValueError, match=r"n: must be in \[0, 10\], got 11"):
        seeded_rows(10, 11)
    items = [{"id": i} for i in range(7)]
    assert [[it["id"] for it in b] for b in batched(items, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [[it["id"] for it in b] for b in batched(items, 3, skip_ids={"1", "4"})] == [[0, 2, 3], [5, 6]]
    assert list(batched(["x", "y", "z"], 2)) == [["x", "y"], ["z"]]  # no skip: any items
    with pytest.raises(ValueError, match="batch_size: must be an int >= 1, got 0"):
        next(batched(items, 0))


def test_mmlu_redux_offline_table():
    from calcas.datasets.public import data_root, mmlu_redux_table
    if data_root() is None:
        pytest.skip("public reference data (mmlu-redux) not available")
    table = mmlu_redux_table()
    items = TASKS["mmlu"].items(table)
    assert len(items) == 5700
    assert [it["id"] for it in items] == table["id"].tolist()
    assert all(len(it["choices"]) == 4 and 0 <= it["answer"] <= 3 for it in items)
    assert len({it["subject"] for it in items}) == 57


def test_gsm8k_items_and_verify(gsm8k_file):
    task = TASKS["gsm8k"]
    items = task_items("gsm8k", gsm8k_file)
    assert [it["id"] for it in items] == ["gsm8k-0", "gsm8k-1", "gsm8k-2"]
    first = items[0]
    assert GSM8K_ROWS[0]["question"] in first["prompt"] and "#### <number>" in first["prompt"]
    assert first["prompt"] == task.prompt_template.format(question=GSM8K_ROWS[0]["question"])
    for item, row in zip(items, GSM8K_ROWS):
        assert task.verify(row["answer"], item) == 1.0
    assert task.verify("48 + 24 = 72 clips.\n#### 72", first) == 1.0
    assert task.verify("She sold 48 + 24 = 73 clips.\n#### 73", first) == 0.0
    assert task.verify("I do not know.", first) == 0.0


@linux
def test_mbpp_reference_passes_and_wrong_code_fails(tmp_path):
    path = tmp_path / "mbpp.parquet"
    pd.DataFrame(MBPP_ROWS).to_parquet(path)  # test_list as list<string>
    items = task_items("mbpp", path)
    assert [it["id"] for it in items] == ["11", "12"]
    item = items[0]
    assert item["prompt"].startswith("You are an expert Python programmer, and here is your task: Write a python")
    assert "Your code should pass these tests:\n\n" + "\n".join(MBPP_ROWS[0]["test_list"]) in item["prompt"]
    assert item["test_list"] == MBPP_ROWS[0]["test_list"] and items[1]["test_setup_code"] == "import math"
    verify = TASKS["mbpp"].verify
    assert verify(f"Here you go:\n```python\n{item['reference']}\n```\n", item) == 1.0
    assert verify("def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)", item) == 0.0  # first one only
    assert verify(items[1]["reference"], items[1]) == 1.0


@linux
def test_bigcodebench_reference_passes_and_wrong_code_fails(tmp_path):
    from calcas.extract.sandbox import isolation_report
    if not isolation_report()["uid_drop"]:
        pytest.skip("pandas needs ctypes, refused by the audit hook that stays on without a uid drop")
    items = task_items("bigcodebench", _jsonl(tmp_path / "bcb.jsonl", [BCB_ROW]))
    assert len(items) == 1
    item = items[0]
    assert item["id"] == "BigCodeBench/900" and item["prompt"] == BCB_ROW["instruct_prompt"]
    verify = TASKS["bigcodebench"].verify
    from calcas.extract.sandbox import SandboxUnreachableError
    try:
        reference = verify(BCB_ROW["code_prompt"] + BCB_ROW["canonical_solution"], item)
    except SandboxUnreachableError as err:  # e.g. a clone under a 0700 folder: grading is impossible here
        pytest.skip(f"the sandbox cannot reach this environment's packages: {err}")
    assert reference == 1.0
    unsorted = ("import collections\nimport pandas as pd\ndef task_func(words):\n"
                "    return pd.DataFrame(list(collections.Counter(words).items()), columns=['word', 'count'])\n")
    assert verify(f"```python\n{unsorted}```", item) == 0.0  # test_empty passes, test_counts fails


# --------------------------------------------------------------------------- Hugging Face path

@pytest.fixture
def offline_hf(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    datasets = pytest.importorskip("datasets")
    # the variables are read when datasets is first imported: hold it to them if that was earlier
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_home" / "datasets")
    return datasets


def test_hf_local_dataset_directory(tmp_path, offline_hf):
    folder = tmp_path / "arc_ds"
    folder.mkdir()
    _jsonl(folder / "test.jsonl", ARC_ROWS)
    with pytest.warns(UserWarning, match="dropped 2 of 7"):
        items = task_items("arc", f"hf:{folder}")  # the task's default split, "test"
    assert {it["id"]: it["answer"] for it in items} == ARC_KEPT
    assert (tmp_path / "hf_home" / "datasets").is_dir()  # the cache went into tmp_path
    table = read_table(f"hf:{folder}")  # the only split
    assert len(table) == 7 and table["choices"][2]["label"].tolist() == ["1", "2", "3", "4"]
    with pytest.raises(ValueError, match="validation"):
        read_table(f"hf:{folder}", split="validation")


def test_hf_default_resolves_to_the_task_dataset(monkeypatch, offline_hf):
    calls = []

    def fake_load_dataset(name, config, split=None):
        calls.append((name, config, split))
        return offline_hf.Dataset.from_list(GSM8K_ROWS[:2])

    monkeypatch.setattr(offline_hf, "load_dataset", fake_load_dataset)
    items = task_items("gsm8k", "hf", n=1, seed=0)
    task_items("gsm8k", "hf", split="train", config="socratic")
    task_items("gsm8k", "hf:someone/gsm8k-copy:cfg")
    assert calls == [("openai/gsm8k", "main", "test"), ("openai/gsm8k", "socratic", "train"),
                     ("someone/gsm8k-copy", "cfg", "test")]
    assert len(items) == 1 and items[0]["answer"] in {r["answer"] for r in GSM8K_ROWS[:2]}


# --------------------------------------------------------------------------- bad input

def test_bad_inputs(tmp_path, arc_file, gsm8k_file, monkeypatch):
    with pytest.raises(ValueError, match="unknown 'squad'; known tasks: mmlu, arc, gsm8k, mbpp, bigcodebench"):
        task_items("squad", arc_file)
    odd = tmp_path / "data.txt"
    odd.write_text("x")
    with pytest.raises(ValueError, match=r"data\.txt: unknown format '\.txt'"):
        read_table(odd)
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl: no such file"):
        task_items("gsm8k", tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="a directory; .* pass 'hf:"):
        read_table(tmp_path)
    table = read_table(gsm8k_file)
    with pytest.raises(ValueError, match="gsm8k: missing column 'answer'"):
        TASKS["gsm8k"].items(table.drop(columns="answer"))
    with pytest.raises(ValueError, match="mbpp: missing column 'test_list'"):
        TASKS["mbpp"].items(pd.DataFrame(MBPP_ROWS).drop(columns="test_list"))
    with pytest.raises(ValueError, match="bigcodebench: missing column 'test'"):
        TASKS["bigcodebench"].items(pd.DataFrame([BCB_ROW]).drop(columns="test"))
    with pytest.raises(ValueError, match="arc: missing column 'choices'"):
        TASKS["arc"].items(pd.DataFrame(ARC_ROWS).drop(columns="choices"))
    with pytest.raises(ValueError, match="mmlu: missing column 'choices'"):
        TASKS["mmlu"].items(pd.DataFrame({"question": ["q"], "answer": [0]}))
    with pytest.raises(ValueError, match="arc: id 'Mercury_1' is repeated"):
        TASKS["arc"].items(pd.DataFrame(ARC_ROWS + ARC_ROWS[:1]))
    with pytest.raises(ValueError, match="mbpp: id '11' is repeated"):
        TASKS["mbpp"].items(pd.DataFrame(MBPP_ROWS + MBPP_ROWS[:1]))
    with pytest.raises(ValueError, match="answer key 'F' of 'Mercury_1' is not one of its labels"):
        TASKS["arc"].items(pd.DataFrame([{**ARC_ROWS[0], "answerKey": "F"}]))
    for n in (-1, 4):
        with pytest.raises(ValueError, match=r"n: must be in \[0, 3\], got " + str(n)):
            task_items("gsm8k", gsm8k_file, n=n)
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match="pip install datasets"):
        task_items("arc", "hf")


# --------------------------------------------------------------------------- with the real scorers

def test_items_run_through_the_scorers(model, tokenizer, arc_file, gsm8k_file):
    from calcas.extract.language import generate_batches, mc_batches
    with pytest.warns(UserWarning, match="dropped 2"):
        items = task_items("arc", arc_file)
    batches = list(mc_batches(model, tokenizer, items, batch_size=3))
    logits = np.concatenate([b["logits"] for b in batches])
    assert logits.shape == (5, 4) and np.isfinite(logits).all()
    assert np.concatenate([b["label"] for b in batches]).tolist() == list(ARC_KEPT.values())
    gen = task_items("gsm8k", gsm8k_file, n=2)
    out = list(generate_batches(model, tokenizer, gen, verifier=TASKS["gsm8k"].verify, max_new_tokens=4))
    verified = np.concatenate([b["verified"] for b in out])
    assert [i for b in out for i in b["id"]] == [it["id"] for it in gen]
    assert verified.shape == (2,) and set(verified.tolist()) <= {0.0, 1.0}


def test_verify_batch_grades_in_parallel_in_item_order_and_checks_the_range():
    """Threads run the sandboxed MBPP checks concurrently; results keep the item order."""
    import time as _time

    from calcas.extract.verifiers import verify_batch
    items = [{"id": f"m{i}", "test_list": [f"assert f() == {i}"], "test_setup_code": ""} for i in range(4)]
    completions = [f"def f():\n    return {i if i % 2 == 0 else -1}\n" for i in range(4)]
    verify = TASKS["mbpp"].verify
    start = _time.perf_counter()
    serial = verify_batch(verify, completions, items, workers=1)
    t_serial = _time.perf_counter() - start
    start = _time.perf_counter()
    parallel = verify_batch(verify, completions, items, workers=4)
    t_parallel = _time.perf_counter() - start
    assert serial.tolist() == parallel.tolist() == [1.0, 0.0, 1.0, 0.0]
    print(f"4 sandboxed checks: {t_serial:.2f} s one at a time, {t_parallel:.2f} s with 4 threads")
    with pytest.raises(ValueError, match=r"verifier: must return a number in \[0, 1\]"):
        verify_batch(lambda c, it: 2.0, ["x", "y"], [{}, {}], workers=2)
