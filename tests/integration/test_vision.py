"""calcas.extract.vision: timm models (random weights, never a hub), image folders, batches, manifest."""
import hashlib
import importlib.util
import sys

import numpy as np
import pytest
import torch

from calcas.extract import vision

if importlib.util.find_spec("timm") is None:
    pytest.skip("timm is not installed (pip install --no-deps timm==1.0.31)", allow_module_level=True)

from PIL import Image  # noqa: E402

MODEL = "test_efficientnet"  # timm's own ~0.1M-parameter test model
N_CLASSES = 5
SIZES = [(40, 30), (30, 40), (64, 64), (50, 21), (33, 47), (20, 20), (90, 60)]


def _image(seed, size, mode="RGB"):
    rng = np.random.default_rng(seed)
    w, h = size
    shape = (h, w) if mode == "L" else (h, w, 3)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


@pytest.fixture(scope="module")
def model_and_config():
    torch.manual_seed(0)
    model, config = vision.load_model(MODEL, num_classes=N_CLASSES)
    return model, config


@pytest.fixture(scope="module")
def class_tree(tmp_path_factory):
    """Class folders b_dog, a_cat (sorted: a_cat=0, b_dog=1) and c_empty-less c_fox with a nested file."""
    root = tmp_path_factory.mktemp("val")
    files = {"a_cat/x1.png": 0, "a_cat/x0.png": 0, "b_dog/img.png": 1, "c_fox/sub/deep.png": 2,
             "c_fox/y.PNG": 2, "b_dog/z.jpg": 1, "a_cat/grey.png": 0}
    for seed, (name, _) in enumerate(files.items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = "L" if "grey" in name else "RGB"
        _image(seed, SIZES[seed % len(SIZES)], mode).save(path)
    (root / "a_cat" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root, files


@pytest.fixture(scope="module")
def flat_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("flat")
    labels = {"ILSVRC_val_003.png": 4, "ILSVRC_val_001.png": 0, "ILSVRC_val_002.png": 3}
    for seed, name in enumerate(labels):
        _image(100 + seed, SIZES[seed]).save(root / name)
    _image(200, (12, 12)).save(root / "unlisted.png")
    label_file = root.parent / f"{root.name}_labels.csv"
    label_file.write_text("file,label\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    return root, label_file, labels


def test_timm_imports_with_torchvision_absent_or_broken():
    timm = vision.import_timm()
    assert vision.TORCHVISION_STATUS == "stand-in" or vision.TORCHVISION_STATUS.startswith("torchvision ")
    assert hasattr(timm.data, "resolve_model_data_config")
    # the stand-in never outlives the import: a later `import torchvision` is the real thing or fails
    assert not isinstance(sys.modules.get("torchvision"), vision._StandInModule)
    assert not any(isinstance(f, vision._StandInFinder) for f in sys.meta_path)
    if vision.TORCHVISION_STATUS == "stand-in":
        with pytest.raises(Exception):
            import torchvision  # noqa: F401


def test_stand_in_parts():
    bn = vision._frozen_batch_norm_2d()(3)
    bn.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
    bn.running_mean.copy_(torch.tensor([0.5, 0.0, -1.0]))
    bn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    x = torch.randn(2, 3, 4, 4)
    ref = torch.nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    torch.testing.assert_close(bn(x), ref)
    placeholder = vision._unavailable("torchvision.transforms.Resize")
    with pytest.raises(ImportError, match="torchvision"):
        placeholder(224)
    assert vision._InterpolationMode("bicubic") is vision._InterpolationMode.BICUBIC


def test_load_model_by_name(model_and_config):
    model, config = model_and_config
    assert not model.training
    assert model.num_classes == N_CLASSES
    assert set(config) >= {"input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode"}
    _, small = vision.load_model("test_vit", num_classes=3, img_size=32)
    assert small["input_size"] == (3, 32, 32)


def test_class_folders(class_tree, model_and_config):
    root, files = class_tree
    ds = vision.image_dataset(root, model_and_config[1])
    assert ds.ids == sorted(files)
    assert ds.classes == ["a_cat", "b_dog", "c_fox"]
    assert ds.labels.tolist() == [files[i] for i in ds.ids]
    id_, x, y = ds[ds.ids.index("c_fox/sub/deep.png")]
    assert (id_, y) == ("c_fox/sub/deep.png", 2)
    assert x.shape == model_and_config[1]["input_size"] and x.dtype == torch.float32
    assert ds[ds.ids.index("a_cat/grey.png")][1].shape[0] == 3  # greyscale made RGB


def test_flat_folder_with_label_file(flat_folder, model_and_config):
    root, label_file, labels = flat_folder
    ds = vision.image_dataset(root, model_and_config[1], label_file=label_file)
    assert ds.ids == sorted(labels)  # exactly the listed files; the header is skipped
    assert ds.labels.tolist() == [labels[i] for i in ds.ids]
    unlabelled = vision.image_dataset(root, model_and_config[1])
    assert unlabelled.ids == sorted([*labels, "unlisted.png"]) and (unlabelled.labels == -1).all()
    bad = root.parent / "bad_labels.txt"
    bad.write_text("ILSVRC_val_001.png 0\nmissing.png 1\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        vision.image_dataset(root, model_and_config[1], label_file=bad)


def _hand(image, size, scale, filt, mean, std, squash=False):
    """timm's eval transform written out: resize, centre crop, /255, normalise."""
    w, h = image.size
    if squash:
        new_w = new_h = scale
    elif w <= h:
        new_w, new_h = scale, int(scale * h / w)
    else:
        new_w, new_h = int(scale * w / h), scale
    a = np.asarray(image.convert("RGB").resize((new_w, new_h), filt), dtype=np.float32) / 255
    top, left = int(round((new_h - size) / 2)), int(round((new_w - size) / 2))
    a = a[top:top + size, left:left + size]
    return ((a - np.float32(mean)) / np.float32(std)).transpose(2, 0, 1)


@pytest.mark.parametrize("mode", ["center", "squash"])
def test_preprocessing_equals_hand_computation(mode):
    config = {"input_size": (3, 24, 24), "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": mode,
              "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    t = vision.EvalTransform(config)
    assert t.scale_size == (27, 27)  # floor(24 / 0.875)
    for size in [(40, 30), (30, 41), (27, 27), (100, 27)]:
        image = _image(sum(size), size)
        expected = _hand(image, 24, 27, Image.BICUBIC, config["mean"], config["std"], squash=mode == "squash")
        np.testing.assert_allclose(t(image).numpy(), expected, rtol=0, atol=1e-6)
    # a worked number: a 40x30 image becomes 36x27 (int(27 * 40 / 30)), cropped at left 6, top 2
    assert t.resize(_image(0, (40, 30))).size == ((36, 27) if mode == "center" else (27, 27))


def test_preprocessing_non_square_and_matches_timm_when_torchvision_works():
    config = {"input_size": (3, 16, 24), "interpolation": "bilinear", "crop_pct": 1.0, "crop_mode": "center",
              "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
    t = vision.EvalTransform(config)
    image = _image(7, (60, 30))  # ratio min(30/16, 60/24) = 1.875 -> 32 x 16
    assert t.resize(image).size == (32, 16)
    assert t(image).shape == (3, 16, 24)
    if not (vision.TORCHVISION_STATUS or "").startswith("torchvision "):
        return  # torchvision not usable here: nothing to compare against
    timm = vision.import_timm()
    for cfg in (config, {**config, "input_size": (3, 24, 24), "interpolation": "bicubic", "crop_pct": 0.875}):
        reference = timm.data.create_transform(**cfg)
        for size in [(60, 30), (31, 47), (24, 24)]:
            image = _image(sum(size), size)
            torch.testing.assert_close(vision.EvalTransform(cfg)(image), reference(image), rtol=0, atol=1e-6)


def test_batches_equal_bare_model(class_tree, model_and_config):
    model, config = model_and_config
    ds = vision.image_dataset(class_tree[0], config)
    batches = list(vision.vision_batches(model, ds, batch_size=3, num_workers=2))
    assert [len(b["id"]) for b in batches] == [3, 3, 1]
    for b in batches:
        assert b["pred"].dtype == np.int64 and b["label"].dtype == np.int64
        assert b["logits"].dtype == np.float16 and b["logits"].shape == (len(b["id"]), N_CLASSES)
    ids = [i for b in batches for i in b["id"]]
    assert ids == ds.ids
    x = torch.stack([ds[i][1] for i in range(len(ds))])
    with torch.no_grad():
        bare = model(x).float().numpy()
    logits = np.concatenate([b["logits"] for b in batches]).astype(np.float32)
    np.testing.assert_allclose(logits, bare, rtol=2e-3, atol=2e-3)
    assert np.concatenate([b["pred"] for b in batches]).tolist() == bare.argmax(1).tolist()
    assert np.concatenate([b["label"] for b in batches]).tolist() == ds.labels.tolist()


def test_skip_ids(class_tree, model_and_config):
    model, config = model_and_config
    ds = vision.image_dataset(class_tree[0], config)
    done = set(ds.ids[::2])
    ids = [i for b in vision.vision_batches(model, ds, batch_size=4, num_workers=0, skip_ids=done) for i in b["id"]]
    assert ids == [i for i in ds.ids if i not in done]
    assert vision.image_dataset(class_tree[0], config, skip_ids=done).ids == ids
    assert list(vision.vision_batches(model, ds, num_workers=0, skip_ids=set(ds.ids))) == []


def test_autocast_dtype_on_cpu(class_tree, model_and_config):
    model, config = model_and_config
    ds = vision.image_dataset(class_tree[0], config)
    (b,) = vision.vision_batches(model, ds, batch_size=16, num_workers=0, dtype="bf16")
    assert b["logits"].dtype == np.float16 and np.isfinite(b["logits"]).all()
    with pytest.raises(ValueError, match="dtype"):
        vision._autocast_dtype("int8")


def test_checkpoints_give_same_logits(tmp_path, class_tree, model_and_config):
    model, config = model_and_config
    ds = vision.image_dataset(class_tree[0], config)
    x = torch.stack([ds[i][1] for i in range(3)])
    with torch.no_grad():
        expected = model(x)
    path = vision.save_checkpoint(model, tmp_path / "ckpt.pth", MODEL)  # timm style: arch + state_dict
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)
    import safetensors.torch
    st = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(st))
    for loaded, loaded_config in (vision.load_model(path), vision.load_model(bare, model_name=MODEL),
                                  vision.load_model(st, model_name=MODEL)):
        assert loaded.num_classes == N_CLASSES  # read from the checkpoint
        assert loaded_config == config
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), expected)
    with pytest.raises(ValueError, match="model_name"):
        vision.load_model(bare)


def test_manifest(tmp_path, model_and_config, class_tree):
    model, config = model_and_config
    path = vision.save_checkpoint(model, tmp_path / "m.pth", MODEL)
    m = vision.vision_manifest(MODEL, config, class_tree[0], checkpoint=path, dtype="fp16", batch_size=32)
    assert m["checkpoint"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    import calcas
    import timm
    assert (m["code_version"], m["timm_version"]) == (calcas.__version__, timm.__version__)
    assert m["dtype"] == "float16" and m["batch_size"] == 32 and m["model"] == MODEL
    assert m["preprocessing"]["input_size"] == list(config["input_size"])
    assert m["torchvision"] == vision.TORCHVISION_STATUS
    import json
    json.dumps(m)
    assert vision.vision_manifest(MODEL, config, class_tree[0], batch_size=8)["checkpoint"] is None


def test_through_shards_and_resume(tmp_path, class_tree, model_and_config):
    shards = pytest.importorskip("calcas.extract.shards")
    if not all(hasattr(shards, f) for f in ("extract", "merge_shards", "done_ids")):
        pytest.skip("calcas.extract.shards has no extract/merge_shards/done_ids yet")
    model, config = model_and_config
    root, files = class_tree
    ds = vision.image_dataset(root, config)
    manifest = vision.vision_manifest(MODEL, config, root, batch_size=2)
    out = tmp_path / "run"
    first = vision.image_dataset(root, config).without(ds.ids[3:])  # an interrupted first run
    shards.extract(vision.vision_batches(model, first, batch_size=2, num_workers=0), out, manifest=manifest,
                   shard_size=2, progress=False)
    done = shards.done_ids(out)
    assert done <= set(ds.ids[:3]) and done
    shards.extract(vision.vision_batches(model, ds, batch_size=2, num_workers=0, skip_ids=done), out,
                   manifest=manifest, shard_size=2, progress=False)
    records = shards.merge_shards(out)
    assert list(records.id) == ds.ids
    assert records.label.tolist() == [files[i] for i in ds.ids]
    (b,) = vision.vision_batches(model, ds, batch_size=16, num_workers=0)
    np.testing.assert_array_equal(np.asarray(records.logits, dtype=np.float16), b["logits"])
