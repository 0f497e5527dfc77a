"""The cost per item that extraction jobs record in ``manifest["cost"]``: seconds per item timed
while extracting, the device, and for timm models the forward GFLOPs per image; informational,
so it never trips the manifest check and a re-run that extracts nothing rewrites nothing."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import calcas  # noqa: E402
from calcas.extract import jobs, vision  # noqa: E402
from calcas.extract.shards import MANIFEST_FILE, check_manifest, extract, list_shards, merge_shards  # noqa: E402
from test_jobs import image_tree, mmlu_file, tiny_timm  # noqa: E402,F401 - fixtures

COST_KEYS = {"seconds_per_item", "items_timed", "device", "gflops_per_item", "gflops_source"}


def hooked_gflops(model, input_size) -> float:
    """2 x the multiply-adds of every convolution and linear layer, counted with forward hooks."""
    macs = []

    def hook(module, inputs, output):
        per_output = module.in_features if isinstance(module, torch.nn.Linear) else \
            module.in_channels // module.groups * int(np.prod(module.kernel_size))
        macs.append(output.numel() * per_output)

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.no_grad():
        model(torch.zeros(1, *input_size))
    for h in handles:
        h.remove()
    return 2 * sum(macs) / 1e9


def test_vision_job_records_seconds_and_gflops_per_image(tiny_timm, image_tree, tmp_path):
    job = tmp_path / "job"
    run = lambda: jobs.extract_vision(str(tiny_timm), str(image_tree), job, batch_size=4,  # noqa: E731
                                      num_workers=0, shard_size=4, progress=False)
    path = run()
    cost = calcas.read_records(path).manifest["cost"]
    assert set(cost) == COST_KEYS and cost["device"] == "cpu" and cost["items_timed"] == 9
    assert cost["seconds_per_item"] > 0
    model, config = vision.load_model(str(tiny_timm))
    size = tuple(config["input_size"])
    assert cost["gflops_source"] == f"torch.utils.flop_counter at {'x'.join(map(str, size))}"
    assert cost["gflops_per_item"] > 0 and cost["gflops_per_item"] == pytest.approx(hooked_gflops(model, size))
    # a rerun with nothing new leaves the file as it is
    before = path.read_bytes()
    run()
    assert path.read_bytes() == before
    # a resumed run times only what it extracts: here the 4 rows of a lost shard
    (job / "shards" / list_shards(job / "shards")[0][0]).unlink()
    cost = calcas.read_records(run()).manifest["cost"]
    entries = json.loads((job / "shards" / MANIFEST_FILE).read_text())["timing"]
    assert [e["items"] for e in entries] == [9, 4] and cost["items_timed"] == 13
    assert cost["seconds_per_item"] == pytest.approx(sum(e["seconds"] for e in entries) / 13)


def test_mc_job_records_its_cost_and_a_rerun_keeps_the_record_set(tiny_lm_dir, mmlu_file, tmp_path):
    run = lambda: jobs.extract_multiple_choice(str(tiny_lm_dir), "mmlu", str(mmlu_file), tmp_path / "job",  # noqa: E731
                                               batch_size=3, progress=False)
    path = run()
    cost = calcas.read_records(path).manifest["cost"]
    assert set(cost) == COST_KEYS and cost["items_timed"] == 7 and cost["seconds_per_item"] > 0
    assert cost["gflops_per_item"] is None and cost["gflops_source"] is None
    before = path.read_bytes()
    run()
    assert path.read_bytes() == before


def test_merge_weights_the_runs_by_items_and_cost_is_not_part_of_the_manifest_check(tmp_path):
    manifest = {"model": "toy", "dataset": "synthetic", "split": "test"}

    def batches(ids):
        for i in ids:
            yield {"id": [i], "pred": np.array([0]), "label": np.array([0]), "logits": np.zeros((1, 2), np.float32)}

    info = {"device": "cpu", "gflops_per_item": 1.5, "gflops_source": "by hand"}
    extract(batches(["a", "b", "c"]), tmp_path, manifest=manifest, progress=False, cost=info)
    extract(batches(["d"]), tmp_path, manifest=manifest, progress=False, cost=info)  # a second run
    doc = json.loads((tmp_path / MANIFEST_FILE).read_text())
    doc["timing"][0]["seconds"], doc["timing"][1]["seconds"] = 3.0, 5.0  # 1 s per item, then 5 s per item
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(doc))
    cost = merge_shards(tmp_path, manifest=manifest).manifest["cost"]
    assert cost == {"seconds_per_item": 2.0, "items_timed": 4, "device": "cpu", "gflops_per_item": 1.5,
                    "gflops_source": "by hand"}
    # an other timing, or an other "cost" in the manifest, is the same extraction; an other model is not
    check_manifest(tmp_path, {**manifest, "cost": {"seconds_per_item": 9.0}})
    with pytest.raises(ValueError, match=r"keys that differ: \['model'\]"):
        check_manifest(tmp_path, {**manifest, "model": "other", "cost": cost})
