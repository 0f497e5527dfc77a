"""Vision extraction with timm: a model, an image folder, and batches of logits for the record set.

``load_model`` builds any timm model by name, or from a local checkpoint, with its data config;
``image_dataset`` reads an ImageNet-style class-folder tree or a flat folder with a label file;
``vision_batches`` runs the model and yields ``{"id", "pred", "label", "logits"}`` dicts, the batch
format that :mod:`calcas.extract.shards` writes; ``vision_manifest`` says what produced them, and
``forward_gflops`` what one image costs.

timm without torchvision
------------------------
timm declares torchvision as a dependency and imports it when ``timm`` itself is imported
(``FrozenBatchNorm2d`` from ``torchvision.ops``, the transform classes of ``timm.data``), yet no
model's forward pass and none of the config code that calcas uses ever calls it. On the CPU-only
machines of this project torchvision cannot be had beside torch 2.13.0 CPU: PyPI's torchvision
0.28.0 (the release for torch 2.13) is a CUDA build whose compiled ops do not load beside the CPU
torch, and ``import torchvision`` then fails with "operator torchvision::nms does not exist"
(newer releases pull a newer, multi-GB CUDA torch). A broken torchvision on disk also breaks other
libraries that import it when present (torchmetrics among them). The fix is therefore: install timm
with ``pip install --no-deps timm==1.0.31`` (its other dependencies, PyYAML, huggingface_hub and
safetensors, are plain pins) and leave torchvision out. When, and only when, ``import torchvision``
fails (absent, or present but broken), :func:`import_timm` imports timm behind a small stand-in
for torchvision: a real ``InterpolationMode`` enum and a real ``FrozenBatchNorm2d`` (both copied
from torchvision's definitions), and, for every other name timm touches, a placeholder that raises
an ``ImportError`` naming torchvision if anything ever calls it. The stand-in lives only for the
duration of that import: it is removed from ``sys.modules`` and ``sys.meta_path`` afterwards, so a
later ``import torchvision`` elsewhere behaves exactly as it would without calcas. When torchvision
imports cleanly, timm is imported normally. The image preprocessing never uses torchvision either
way: :class:`EvalTransform` reimplements timm's evaluation transform (resize the shorter side to
``floor(size / crop_pct)``, or squash, then centre-crop, scale to [0, 1], normalise) with PIL and
torch, step by step as torchvision's PIL path does it (same output sizes, the same PIL resampling
filters, the same crop rounding, float32 arithmetic); the tests check it against a hand computation,
and against ``timm.data.create_transform`` wherever torchvision does import.
"""
from __future__ import annotations

import argparse
import enum
import importlib
import importlib.abc
import importlib.machinery
import math
import os
import sys
import types
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import _version
from ..records import file_sha256
from .common import dtype_name, torch_dtype

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
_PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}

# What the last call to import_timm did about torchvision: "torchvision X.Y" or "stand-in".
TORCHVISION_STATUS: str | None = None


# ---------------------------------------------------------------------------------------------
# timm without torchvision
# ---------------------------------------------------------------------------------------------
class _InterpolationMode(enum.Enum):
    # torchvision.transforms.InterpolationMode, same members and values
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def _frozen_batch_norm_2d():

    class FrozenBatchNorm2d(torch.nn.Module):
        # torchvision.ops.misc.FrozenBatchNorm2d: batch norm with fixed statistics and affine parameters
        def __init__(self, num_features: int, eps: float = 1e-5):
            super().__init__()
            self.eps = eps
            self.register_buffer("weight", torch.ones(num_features))
            self.register_buffer("bias", torch.zeros(num_features))
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                                  unexpected_keys, error_msgs):
            state_dict.pop(prefix + "num_batches_tracked", None)
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                          unexpected_keys, error_msgs)

        def forward(self, x):
            w = self.weight.reshape(1, -1, 1, 1)
            b = self.bias.reshape(1, -1, 1, 1)
            rv = self.running_var.reshape(1, -1, 1, 1)
            rm = self.running_mean.reshape(1, -1, 1, 1)
            scale = w * (rv + self.eps).rsqrt()
            return x * scale + (b - rm * scale)

        def __repr__(self):
            return f"{self.__class__.__name__}({self.weight.shape[0]}, eps={self.eps})"

    FrozenBatchNorm2d.__module__ = "torchvision.ops.misc"
    return FrozenBatchNorm2d


def _unavailable(qualname: str):
    """A class standing for torchvision's ``qualname``: subclassable, raises when instantiated or called."""
    def __init__(self, *args, **kwargs):
        raise ImportError(f"{qualname} needs torchvision, which is not usable here; calcas imported timm "
                          "behind a stand-in for it (see calcas.extract.vision)")
    return type(qualname.rsplit(".", 1)[-1], (), {"__init__": __init__, "__module__": qualname.rsplit(".", 1)[0]})


class _StandInModule(types.ModuleType):
    """A torchvision (sub)module: lower-case names are submodules, capitalised ones placeholders."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "InterpolationMode":
            value = _InterpolationMode
        elif name == "FrozenBatchNorm2d":
            value = _frozen_batch_norm_2d()
        elif name[:1].islower():
            value = importlib.import_module(f"{self.__name__}.{name}")
        else:
            value = _unavailable(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value

    def __call__(self, *args, **kwargs):  # a lower-case *function* of torchvision, called
        raise ImportError(f"{self.__name__} needs torchvision, which is not usable here; calcas imported timm "
                          "behind a stand-in for it (see calcas.extract.vision)")


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def _forget(prefix: str) -> None:
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


def import_timm():
    """Import and return the ``timm`` module, behind a torchvision stand-in only where torchvision fails.

    Returns
    -------
    module
        ``timm``, with ``timm.data`` and ``timm.models`` imported. Sets ``TORCHVISION_STATUS`` to
        ``"torchvision <version>"`` or ``"stand-in"`` (see the module docstring for why).
    """
    global TORCHVISION_STATUS
    if "timm" in sys.modules and "timm.data" in sys.modules:
        TORCHVISION_STATUS = TORCHVISION_STATUS or _torchvision_status()
        return sys.modules["timm"]
    TORCHVISION_STATUS = _torchvision_status()
    if TORCHVISION_STATUS != "stand-in":
        import timm
        import timm.data  # noqa: F401
        return timm
    _forget("timm")  # a half-done earlier import
    finder = _StandInFinder()
    sys.meta_path.insert(0, finder)
    try:
        import timm
        import timm.data  # noqa: F401
        import timm.models  # noqa: F401
    finally:
        sys.meta_path.remove(finder)
        _forget("torchvision")
    return timm


def _torchvision_status() -> str:
    try:
        import torchvision
        return f"torchvision {torchvision.__version__}"
    except Exception:  # ImportError when absent; RuntimeError/OSError when its compiled ops do not load
        _forget("torchvision")
        return "stand-in"


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
def load_model(name_or_checkpoint: str | os.PathLike, *, pretrained: bool = False, num_classes: int | None = None,
               model_name: str | None = None, **kwargs: Any):
    """Build a timm model, in eval mode on the CPU, and its evaluation data config.

    Parameters
    ----------
    name_or_checkpoint : str or path
        A timm model name (``"resnet50.a1_in1k"``; any of ``timm.list_models()``), or a local
        checkpoint file: a timm training checkpoint (a dict with ``arch`` and ``state_dict``, as
        timm's ``train.py`` and :func:`save_checkpoint` write), a bare state dict (``.pth``/``.pt``/
        ``.bin``) or ``.safetensors``; for the last two, pass ``model_name``.
    pretrained : bool
        Load the pretrained weights of a named model from the hub (only where one is reachable).
        Ignored for a checkpoint file.
    num_classes : int, optional
        Classifier size; for a checkpoint, read from the checkpoint when not given.
    model_name : str, optional
        Architecture of a checkpoint that does not record it.
    **kwargs
        Passed on to ``timm.create_model`` (``img_size=...``, ``drop_rate=...``).

    Returns
    -------
    (model, data_config)
        The ``torch.nn.Module`` in eval mode, and the dict of ``timm.data.resolve_model_data_config``
        (``input_size``, ``interpolation``, ``mean``, ``std``, ``crop_pct``, ``crop_mode``).
    """
    timm = import_timm()
    path = Path(name_or_checkpoint)
    if path.is_file():
        state_dict, meta = _read_checkpoint(path)
        arch = model_name or meta.get("arch")
        if not arch:
            raise ValueError(f"{path}: the checkpoint does not record its architecture; pass model_name=")
        if num_classes is None:
            num_classes = meta.get("num_classes") or _classifier_size(timm, arch, state_dict)
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        model = timm.create_model(arch, pretrained=False, **kwargs)
        model.load_state_dict(state_dict)
    else:
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        model = timm.create_model(str(name_or_checkpoint), pretrained=pretrained, **kwargs)
    model.eval()
    data_config = dict(timm.data.resolve_model_data_config(model))
    img_size = kwargs.get("img_size")
    if img_size is not None:  # the pretrained config still names the default size
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        data_config["input_size"] = (data_config["input_size"][0], int(h), int(w))
    return model, data_config


def save_checkpoint(model, path: str | os.PathLike, model_name: str) -> Path:
    """Save a timm-style checkpoint that :func:`load_model` reads back without further arguments.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model.
    path : str or path
        Output file (``.pth``).
    model_name : str
        The timm architecture name, stored as ``arch``.

    Returns
    -------
    Path
        ``path``.
    """

    path = Path(path)
    num_classes = getattr(model, "num_classes", None)
    torch.save({"arch": model_name, "num_classes": num_classes, "state_dict": model.state_dict()}, path)
    return path


def _read_checkpoint(path: Path) -> tuple[dict, dict]:

    timm = import_timm()
    if path.suffix == ".safetensors":
        import safetensors
        import safetensors.torch
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        if "num_classes" in meta:
            meta["num_classes"] = int(meta["num_classes"])
        return safetensors.torch.load_file(str(path), device="cpu"), meta
    # weights only; timm's training checkpoints also hold their argparse arguments
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    meta: dict = {}
    if isinstance(checkpoint, dict):
        for key in ("state_dict", "model"):
            if isinstance(checkpoint.get(key), dict):
                meta = {k: checkpoint[k] for k in ("arch", "num_classes") if checkpoint.get(k) is not None}
                checkpoint = checkpoint[key]
                break
    return timm.models.clean_state_dict(checkpoint), meta


def _classifier_size(timm, arch: str, state_dict: dict) -> int | None:
    classifier = timm.models.get_pretrained_cfg_value(arch, "classifier")
    for name in ([classifier] if isinstance(classifier, str) else list(classifier or ())):
        weight = state_dict.get(f"{name}.weight")
        if weight is not None:
            return int(weight.shape[0])
    return None


# ---------------------------------------------------------------------------------------------
# Preprocessing and data
# ---------------------------------------------------------------------------------------------
class EvalTransform:
    """timm's evaluation transform (``transforms_imagenet_eval``) for one PIL image, without torchvision.

    Crop modes ``"center"`` (the default: resize the shorter side to ``floor(size / crop_pct)``,
    keeping the aspect ratio, then centre-crop) and ``"squash"`` (resize both sides to
    ``floor(size / crop_pct)``, then centre-crop); then scale to [0, 1] and normalise by the config's
    mean and std, in float32. ``"border"`` mode is not supported.

    Parameters
    ----------
    data_config : dict
        ``input_size`` (C, H, W), ``interpolation``, ``mean``, ``std``, ``crop_pct``, ``crop_mode``,
        as ``timm.data.resolve_model_data_config`` returns them.
    """

    def __init__(self, data_config: dict):
        channels, height, width = data_config["input_size"]
        self.channels, self.size = int(channels), (int(height), int(width))
        self.crop_pct = float(data_config.get("crop_pct") or 0.875)
        self.crop_mode = data_config.get("crop_mode") or "center"
        if self.crop_mode not in ("center", "squash"):
            raise ValueError(f"crop_mode {self.crop_mode!r}: only 'center' and 'squash' are supported")
        interpolation = data_config.get("interpolation") or "bilinear"
        if interpolation not in _PIL_FILTERS:
            raise ValueError(f"interpolation {interpolation!r}: one of {sorted(_PIL_FILTERS)}")
        self.filter = _PIL_FILTERS[interpolation]
        self.mean = tuple(float(m) for m in data_config["mean"])
        self.std = tuple(float(s) for s in data_config["std"])
        self.scale_size = tuple(math.floor(x / self.crop_pct) for x in self.size)

    def resize(self, image):
        """The resize step: returns the resized PIL image."""
        w, h = image.size
        if self.crop_mode == "squash":
            new_h, new_w = self.scale_size
        elif self.scale_size[0] == self.scale_size[1]:
            # torchvision Resize(int): the shorter side to the size, the longer by int() of the ratio
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = self.scale_size[0], int(self.scale_size[0] * long / short)
            new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        else:
            # timm ResizeKeepRatio(longest=0): divide by the smaller of the two side ratios, round
            ratio = min(h / self.scale_size[0], w / self.scale_size[1])
            new_h, new_w = round(h / ratio), round(w / ratio)
        if (new_w, new_h) == (w, h):
            return image
        return image.resize((new_w, new_h), self.filter)

    def crop(self, image):
        """The centre crop (zero-padded first where the image is smaller), as torchvision's CenterCrop."""
        from PIL import ImageOps

        crop_h, crop_w = self.size
        w, h = image.size
        if crop_w > w or crop_h > h:
            left, top = (crop_w - w) // 2 if crop_w > w else 0, (crop_h - h) // 2 if crop_h > h else 0
            right, bottom = (crop_w - w + 1) // 2 if crop_w > w else 0, (crop_h - h + 1) // 2 if crop_h > h else 0
            image = ImageOps.expand(image, (left, top, right, bottom), fill=0)
            w, h = image.size
            if (w, h) == (crop_w, crop_h):
                return image
        top, left = int(round((h - crop_h) / 2.0)), int(round((w - crop_w) / 2.0))
        return image.crop((left, top, left + crop_w, top + crop_h))

    def __call__(self, image):
        """Transform one PIL image into a float32 tensor (C, H, W)."""

        image = image.convert("L" if self.channels == 1 else "RGB")
        image = self.crop(self.resize(image))
        array = np.asarray(image, dtype=np.uint8)
        if array.ndim == 2:
            array = array[:, :, None]
        x = torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return x.sub(mean).div(std)

    def __repr__(self):
        return (f"EvalTransform(size={self.size}, scale_size={self.scale_size}, crop_mode={self.crop_mode!r}, "
                f"filter={self.filter}, mean={self.mean}, std={self.std})")


class ImageDataset(Dataset):
    """Images on disk with ids and labels; item ``i`` is ``(id, tensor, label)``.

    Build it with :func:`image_dataset`. ``ids``, ``labels`` (int64, -1 unknown), ``paths`` and
    ``classes`` (class-folder names, or None) are plain attributes.

    Parameters
    ----------
    root : path
        The folder the ids are relative to.
    ids : list of str
        File names relative to ``root``, with ``/`` separators.
    labels : array of int
        One label per id, -1 where unknown.
    transform : callable
        PIL image → tensor.
    classes : list of str, optional
        Class names by index.
    """

    def __init__(self, root, ids, labels, transform, classes=None):
        self.root = Path(root)
        self.ids = list(ids)
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self.ids) != len(self.labels):
            raise ValueError(f"{len(self.ids)} ids but {len(self.labels)} labels")
        self.transform = transform
        self.classes = classes

    @property
    def paths(self) -> list[Path]:
        """The image files, in id order."""
        return [self.root / i for i in self.ids]

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        from PIL import Image

        id_ = self.ids[index]
        with Image.open(self.root / id_) as image:
            x = self.transform(image)
        return id_, x, int(self.labels[index])

    def without(self, skip_ids: Iterable[str]) -> "ImageDataset":
        """The same dataset less the items whose id is in ``skip_ids`` (a resumed run's finished ids).

        Returns
        -------
        ImageDataset
            A new dataset; this one is left as it is.
        """
        skip = set(skip_ids)
        if not skip:
            return self
        keep = [i for i, id_ in enumerate(self.ids) if id_ not in skip]
        return ImageDataset(self.root, [self.ids[i] for i in keep], self.labels[keep], self.transform, self.classes)


def image_dataset(path: str | os.PathLike, data_config: dict, *, label_file: str | os.PathLike | None = None,
                  skip_ids: Iterable[str] = frozenset(), transform=None) -> ImageDataset:
    """An image folder as a dataset of ``(id, tensor, label)``, preprocessed for the model's data config.

    Parameters
    ----------
    path : str or path
        Either an ImageNet-style tree (one sub-folder per class, searched recursively; class names
        sorted give the label indices), or a flat folder of images. With ``label_file``, the images
        are exactly the ones the file lists.
    data_config : dict
        The model's data config (:func:`load_model`); gives the :class:`EvalTransform`.
    label_file : str or path, optional
        Two columns per line, separated by white space or a comma: file name (relative to
        ``path``) and label index. A first line whose label is not an integer is a header. Without
        it a flat folder's labels are -1 (unknown).
    skip_ids : iterable of str
        Ids to leave out (a resumed run's finished ids).
    transform : callable, optional
        Replaces the :class:`EvalTransform`.

    Returns
    -------
    ImageDataset
        Sorted by id; ids are file names relative to ``path`` with ``/`` separators.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    transform = transform if transform is not None else EvalTransform(data_config)
    classes = None
    if label_file is not None:
        pairs = _read_label_file(Path(label_file))
        missing = [i for i, _ in pairs if not (root / i).is_file()]
        if missing:
            raise FileNotFoundError(f"{label_file}: {len(missing)} listed files are not under {root}, "
                                    f"e.g. {missing[:3]}")
        pairs.sort()
        ids, labels = [i for i, _ in pairs], [y for _, y in pairs]
    else:
        subdirs = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if subdirs:
            classes, ids, labels = subdirs, [], []
            for index, name in enumerate(classes):
                for file in _images_under(root / name):
                    ids.append(file.relative_to(root).as_posix())
                    labels.append(index)
        else:
            ids = [f.relative_to(root).as_posix() for f in _images_under(root)]
            labels = [-1] * len(ids)
        order = np.argsort(np.asarray(ids, dtype=object), kind="stable") if ids else []
        ids, labels = [ids[i] for i in order], [labels[i] for i in order]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{label_file or root}: duplicate file names")
    if not ids:
        raise ValueError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return ImageDataset(root, ids, labels, transform, classes).without(skip_ids)


class HFImageDataset(Dataset):
    """A Hugging Face image data set with ids and labels; item ``i`` is ``(id, tensor, label)``.

    Build it with :func:`hf_image_dataset`. ``ids`` are ``"<split>/<row index>"`` (or the data
    set's id column), ``labels`` int64 (-1 unknown).
    """

    def __init__(self, table, rows, ids, labels, transform, image_column):
        self.table, self.rows, self.transform, self.image_column = table, list(rows), transform, image_column
        self.ids = list(ids)
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        image = self.table[self.rows[index]][self.image_column]
        return self.ids[index], self.transform(image), int(self.labels[index])

    def without(self, skip_ids: Iterable[str]) -> "HFImageDataset":
        """The same data set less the items whose id is in ``skip_ids``."""
        skip = set(skip_ids)
        keep = [i for i, id_ in enumerate(self.ids) if id_ not in skip]
        return HFImageDataset(self.table, [self.rows[i] for i in keep], [self.ids[i] for i in keep],
                              self.labels[keep], self.transform, self.image_column)


def hf_image_dataset(source: str, data_config: dict, *, split: str = "validation", config: str | None = None,
                     image_column: str = "image", label_column: str | None = "label",
                     id_column: str | None = None, transform=None) -> HFImageDataset:
    """An image data set loaded with ``datasets.load_dataset`` (hub id, or a local folder that
    ``datasets`` reads, e.g. an image-folder tree), preprocessed for the model's data config.

    Parameters
    ----------
    source : str
        Data set id (``"ILSVRC/imagenet-1k"``) or local folder; ``"<id>:<config>"`` also works.
    data_config : dict
        The model's data config (:func:`load_model`).
    split : str
        The split to read.
    image_column, label_column, id_column : str
        Column names; without ``label_column`` (None, or absent) labels are -1; without
        ``id_column`` ids are ``"<split>/<row index>"`` (zero-padded to 8 digits).

    Returns
    -------
    HFImageDataset
    """
    try:
        import datasets
    except ImportError as err:
        raise ImportError("hf: reading Hugging Face data sets needs `pip install datasets`") from err
    if config is None and ":" in source and not Path(source).exists():
        source, config = source.rsplit(":", 1)
    table = datasets.load_dataset(source, config, split=split)
    if image_column not in table.column_names:
        raise ValueError(f"{source}: no image column {image_column!r} (columns: {table.column_names})")
    n = len(table)
    labels = (table[label_column] if label_column and label_column in table.column_names else [-1] * n)
    ids = ([str(i) for i in table[id_column]] if id_column else [f"{split}/{i:08d}" for i in range(n)])
    if len(set(ids)) != n:
        raise ValueError(f"{source}: ids in {id_column!r} are not unique")
    transform = transform if transform is not None else EvalTransform(data_config)
    return HFImageDataset(table, range(n), ids, labels, transform, image_column)


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _read_label_file(file: Path) -> list[tuple[str, int]]:
    pairs = []
    for n, line in enumerate(file.read_text().splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.replace(",", " ").replace("\t", " ").split()
        if len(fields) != 2:
            raise ValueError(f"{file}:{n + 1}: expected two columns (file name, label), got {line!r}")
        try:
            label = int(fields[1])
        except ValueError:
            if not pairs and n == 0:
                continue  # a header
            raise ValueError(f"{file}:{n + 1}: label {fields[1]!r} is not an integer") from None
        pairs.append((Path(fields[0]).as_posix(), label))
    return pairs


def _collate(items):

    ids, xs, ys = zip(*items)
    return list(ids), torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------
def _autocast_dtype(dtype):
    """The autocast dtype for a ``dtype`` argument: None (full precision) for None and fp32."""
    if not (dtype is None or isinstance(dtype, torch.dtype) or dtype_name(dtype) in ("bfloat16", "float16", "float32")):
        raise ValueError(f"dtype {dtype!r}: one of bf16, fp16, fp32 (or a torch.dtype)")
    value = torch_dtype(dtype)
    return None if value in (None, torch.float32) else value


def vision_batches(model, dataset, *, batch_size: int = 64, num_workers: int = 2, device: str = "cpu",
                   dtype=None, channels_last: bool = True, compile: bool = False,
                   skip_ids: Iterable[str] = frozenset()) -> Iterator[dict]:
    """Run ``model`` over ``dataset`` and yield batches in the format of :mod:`calcas.extract.shards`.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits (B, C), e.g. from :func:`load_model`. Put in eval mode and
        moved to ``device`` (in place).
    dataset : ImageDataset
        From :func:`image_dataset` (any dataset of ``(id, tensor, label)`` works when ``skip_ids``
        is empty).
    batch_size, num_workers : int
        DataLoader settings; ``pin_memory`` is on where ``device`` is CUDA. Order is the dataset's.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    dtype : {None, "bf16", "fp16", "fp32"} or torch.dtype
        Autocast dtype for the forward pass (meant for CUDA); None or fp32: full precision.
    channels_last : bool
        Model and inputs in channels-last memory format (faster convolutions on GPU).
    compile : bool
        ``torch.compile`` the model first.
    skip_ids : iterable of str
        Ids already extracted (a resumed run); they are not run again.

    Yields
    ------
    dict
        ``id`` list[str]; ``pred`` int64 (B,), the argmax of the float32 logits; ``label`` int64
        (B,), -1 unknown; ``logits`` float16 (B, C).
    """

    skip = frozenset(skip_ids)
    if skip:
        if not hasattr(dataset, "without"):
            raise TypeError("skip_ids needs a dataset with .without(ids), such as image_dataset() returns")
        dataset = dataset.without(skip)
    if len(dataset) == 0:
        return
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    model.eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model)
    amp = _autocast_dtype(dtype)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=on_cuda, collate_fn=_collate, persistent_workers=False)
    with torch.inference_mode():
        for ids, x, y in loader:
            x = x.to(device, non_blocking=on_cuda)
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext():
                logits = model(x)
            logits = logits.float()
            yield {"id": list(ids),
                   "pred": logits.argmax(dim=1).cpu().numpy().astype(np.int64),
                   "label": y.numpy().astype(np.int64),
                   "logits": logits.cpu().numpy().astype(np.float16)}



def forward_gflops(model, data_config: dict) -> tuple[float | None, str | None]:
    """GFLOPs of one forward pass of ``model`` on one image of its data config's input size,
    counted offline (timm reports no such figure for a model it builds).

    Parameters
    ----------
    model : torch.nn.Module
        The model, as :func:`load_model` returns it (eval mode, on the CPU or a device).
    data_config : dict
        Its data config; ``input_size`` is ``(C, H, W)``.

    Returns
    -------
    (float or None, str or None)
        The GFLOPs per image, counted by :class:`torch.utils.flop_counter.FlopCounterMode` on one
        zero image (2 FLOPs per multiply-add, matrix products, convolutions and attention only:
        elementwise work, normalisation and pooling are not counted), and where the figure comes
        from, ``"torch.utils.flop_counter at 3x224x224"``; ``(None, None)`` when the counter
        cannot follow the model.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    shape = tuple(data_config["input_size"])
    param = next(model.parameters())
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(1, *shape, dtype=param.dtype, device=param.device))
    except Exception:  # noqa: BLE001 - a model the counter cannot follow has no figure, and no failed job
        return None, None
    return counter.get_total_flops() / 1e9, f"torch.utils.flop_counter at {'x'.join(map(str, shape))}"

# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------
def vision_manifest(model_name: str, data_config: dict, dataset_path: str | os.PathLike, *,
                    checkpoint: str | os.PathLike | None = None, dtype=None, batch_size: int) -> dict:
    """What produced a vision extraction, for the record set's manifest.

    Parameters
    ----------
    model_name : str
        The timm model name (or the checkpoint's architecture).
    data_config : dict
        The data config used (:func:`load_model`).
    dataset_path : str or path
        The image folder.
    checkpoint : str or path, optional
        A local checkpoint file: its path and SHA-256 are recorded. A hub tag is part of ``model_name``.
    dtype : str or torch.dtype, optional
        The autocast dtype (None: float32).
    batch_size : int
        The batch size.

    Returns
    -------
    dict
        ``model``, ``checkpoint`` (None or ``{"path", "sha256"}``), ``dataset``, ``preprocessing``
        (the data config, JSON-ready), ``dtype``, ``batch_size``, ``code_version``
        (``calcas.__version__``), ``timm_version``, ``torch_version``, ``torchvision``
        (version, or "stand-in"), ``producer``.
    """
    timm = import_timm()
    ckpt = None
    if checkpoint is not None:
        ckpt = {"path": str(checkpoint), "sha256": file_sha256(checkpoint)}
    return {
        "model": model_name,
        "checkpoint": ckpt,
        "dataset": str(dataset_path),
        "preprocessing": {k: (list(v) if isinstance(v, tuple) else v) for k, v in data_config.items()},
        "dtype": "float32" if _autocast_dtype(dtype) is None else dtype_name(_autocast_dtype(dtype)),
        "batch_size": int(batch_size),
        "code_version": _version.__version__,
        "timm_version": timm.__version__,
        "torch_version": torch.__version__,
        "torchvision": TORCHVISION_STATUS,
        "producer": "calcas.extract.vision",
    }
