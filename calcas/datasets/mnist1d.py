"""MNIST-1D record sets: real models on a real benchmark, offline and on a CPU.

MNIST-1D (Greydanus, 2020) turns ten hand-drawn 1-D digit templates into length-40 signals by
padding, scaling, translation, correlated and i.i.d. noise and shear. The ``mnist1d`` package
generates it locally from those templates; this module never calls its downloading loader
(``mnist1d.get_dataset``), so nothing here touches the network.

The pipeline, all seeded:

1. generate one pool of ``n_samples`` clean samples (:func:`generate_mnist1d`);
2. replace exactly ``round(flip_rate * n_samples)`` labels by a uniformly drawn *different*
   class; ``is_noisy`` keeps the ground truth (:func:`flip_labels`);
3. cross-fit: split the pool into ``n_folds`` folds (:func:`fold_assignment`); for each model
   and fold, train on the other folds **with the noisy labels** (the realistic cleaning
   setting) and write logits for the held-out fold, so no sample is scored by a model that saw
   it (:func:`training_indices`, :func:`cross_fit_logits`);
4. one record set per model, rows aligned by id (:func:`make_mnist1d_records`,
   :func:`write_mnist1d_records`).

Four models (accuracy against the true labels at the default size, measured on a 2-core
CPU): logistic regression (~31%), an MLP (~72%), a 1-D CNN (~95%) and a second 1-D CNN of
another design (~94%, for large-large cascades); about a minute for all four and four folds.

Determinism: training runs with one intra-op thread, ``torch.use_deterministic_algorithms``,
and torch seeds derived from (seed, model, fold), so the same arguments give byte-identical
logits on the same machine. The caller's torch and numpy global state (random generators,
thread count, deterministic flag) is restored afterwards.

Speed: the (model, fold) fits do not depend on each other, so :func:`make_mnist1d_records`
runs them in ``workers`` processes (by default one per core for a full-size pool), each fit
with its own seed and one thread: the logits are the same bytes as with ``workers=1``.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.metadata
import multiprocessing
import math
import os
import pathlib
import random
import sys
import time
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..records import Records, make_records, write_records

MODELS = ("logreg", "mlp", "cnn", "cnn_b")
"""Model names, in increasing capacity; ``cnn_b`` is a second strong model of another design
(no striding or batch norm, max pooling, global average pooling) for large-large cascades."""

N_CLASSES = 10
SEQ_LEN = 40
NUM_THREADS = 1
"""Intra-op threads used for training. Fixed, because results depend on it; one thread is
also the fastest for these small layers and the least hurt by other load on the machine."""

MIN_SAMPLES_PER_FOLD = 50
"""The smallest held-out fold accepted (n_samples >= MIN_SAMPLES_PER_FOLD * n_folds)."""

PARALLEL_MIN_SAMPLES = 5000
"""Pools of at least this many samples train in worker processes by default: a worker takes
seconds to start (it imports torch), more than the fits of a smaller pool would save."""

TRAINING: dict[str, dict[str, Any]] = {
    "logreg": {"epochs": 10, "batch_size": 128, "learning_rate": 1e-2},
    "mlp": {"epochs": 20, "batch_size": 128, "learning_rate": 3e-3},
    "cnn": {"epochs": 10, "batch_size": 128, "learning_rate": 1e-2},
    "cnn_b": {"epochs": 12, "batch_size": 128, "learning_rate": 5e-3},
}
"""Default training per model: Adam with a one-cycle learning-rate schedule peaking at
``learning_rate``, mini-batches of ``batch_size``, ``epochs`` passes over the training folds."""

ARCHITECTURE = {
    "logreg": "Linear(40->10): multinomial logistic regression on the raw signal",
    "mlp": "MLP 40-256-256-10, ReLU",
    "cnn": ("1-D CNN: Conv1d(1->32, k5, s2)+BN+ReLU, Conv1d(32->64, k3, s2)+BN+ReLU, "
            "Conv1d(64->64, k3, s2)+BN+ReLU, Linear(64*5->10)"),
    "cnn_b": ("1-D CNN with pooling: Conv1d(1->32, k9)+ReLU+MaxPool2, Conv1d(32->64, k5)+ReLU+MaxPool2, "
              "Conv1d(64->64, k3)+ReLU, global average pool, Linear(64->10)"),
}

# Stream tags for the seeded generators, so label flips and folds never share random numbers.
_FLIP_STREAM, _FOLD_STREAM, _TORCH_STREAM = 1, 2, 3


# ----------------------------------------------------------------------------- arguments

def _check_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    return int(value)


def _check_models(models: Any) -> tuple[str, ...]:
    if isinstance(models, str):
        models = (models,)
    try:
        names = tuple(models)
    except TypeError:
        raise ValueError(f"models: expected a sequence of model names from {MODELS}, got {models!r}") from None
    if not names:
        raise ValueError(f"models: give at least one model name from {MODELS}")
    for name in names:
        if name not in MODELS:
            raise ValueError(f"models: unknown model {name!r}; choose from {MODELS}")
    if len(set(names)) != len(names):
        raise ValueError(f"models: each model may appear once, got {names}")
    return names


def _check_folds(n_samples: Any, n_folds: Any) -> tuple[int, int]:
    n_folds = _check_int(n_folds, "n_folds")
    if n_folds < 2:
        raise ValueError(f"n_folds: cross-fitting needs at least 2 folds, got {n_folds}")
    n_samples = _check_int(n_samples, "n_samples")
    need = MIN_SAMPLES_PER_FOLD * n_folds
    if n_samples < need:
        raise ValueError(f"n_samples: {n_samples} is too small for n_folds={n_folds}; need at least "
                         f"{MIN_SAMPLES_PER_FOLD} samples per fold, i.e. n_samples >= {need}")
    return n_samples, n_folds


def _check_seed(seed: Any) -> int:
    seed = _check_int(seed, "seed")
    if seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed}")
    return seed


def _check_flip_rate(flip_rate: Any) -> float:
    try:
        rate = float(flip_rate)
    except (TypeError, ValueError):
        raise ValueError(f"flip_rate: expected a number in [0, 1), got {flip_rate!r}") from None
    if not 0.0 <= rate < 1.0:  # also refuses NaN
        raise ValueError(f"flip_rate: must be in [0, 1), got {flip_rate}")
    return rate


def _check_epochs(epochs: Mapping[str, int] | None, names: Sequence[str]) -> dict[str, int]:
    out = {name: int(TRAINING[name]["epochs"]) for name in names}
    if epochs is None:
        return out
    if not isinstance(epochs, Mapping):
        raise ValueError(f"epochs: expected a dict model name -> number of epochs, got {epochs!r}")
    for name, value in epochs.items():
        if name not in MODELS:
            raise ValueError(f"epochs: unknown model {name!r}; choose from {MODELS}")
        value = _check_int(value, "epochs")
        if value < 1:
            raise ValueError(f"epochs: must be >= 1, got {value} for {name!r}")
        if name in out:
            out[name] = value
    return out


# ----------------------------------------------------------------------------- data

@contextlib.contextmanager
def _preserved_global_rng() -> Iterator[None]:
    """mnist1d seeds and draws from the global ``random`` and ``numpy.random`` state; put the
    caller's state back afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def generate_mnist1d(n_samples: int = 12_000, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clean MNIST-1D signals generated locally from the ``mnist1d`` templates (no download).

    Uses ``mnist1d.data.make_dataset`` with the package's default arguments
    (``get_dataset_args()``) except ``num_samples`` (rounded up to a multiple of 10, then the
    shuffled pool is cut to ``n_samples``), ``train_split=1`` (one pool) and ``seed``. The
    global ``random`` / ``numpy.random`` state that mnist1d reseeds is restored afterwards.

    Parameters
    ----------
    n_samples : int
        Number of samples, >= 10.
    seed : int
        Seed of the generator (mnist1d's ``args.seed``).

    Returns
    -------
    x : float32 array, shape (n_samples, 40)
        The signals, standardised over the pool as mnist1d does.
    y : int64 array, shape (n_samples,)
        The true class, 0..9; classes are balanced up to the final cut.
    """
    n_samples = _check_int(n_samples, "n_samples")
    if n_samples < N_CLASSES:
        raise ValueError(f"n_samples: need at least {N_CLASSES} (one per class), got {n_samples}")
    seed = _check_seed(seed)
    from mnist1d.data import get_dataset_args, make_dataset  # never get_dataset: it may download

    args = get_dataset_args()
    args.num_samples = N_CLASSES * math.ceil(n_samples / N_CLASSES)
    args.train_split = 1.0
    args.seed = seed
    with _preserved_global_rng():
        data = make_dataset(args)
    x = np.asarray(data["x"][:n_samples], dtype=np.float32)
    y = np.asarray(data["y"][:n_samples], dtype=np.int64)
    if x.shape != (n_samples, SEQ_LEN):
        raise RuntimeError(f"mnist1d returned signals of shape {x.shape}, expected ({n_samples}, {SEQ_LEN})")
    return x, y


def flip_labels(labels: Any, flip_rate: float, *, seed: int = 0,
                n_classes: int = N_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Replace exactly ``round(flip_rate * n)`` labels by a uniformly drawn different class.

    Parameters
    ----------
    labels : int array, shape (n,)
        The clean labels, in 0..n_classes-1.
    flip_rate : float in [0, 1)
        Share of labels to flip; the flipped samples are a uniform random subset of that size.
    seed : int
        Seed (its own stream, independent of the data generator and of the folds).
    n_classes : int

    Returns
    -------
    given : int64 array, shape (n,)
        The labels with flips; ``given[i] != labels[i]`` exactly where ``is_noisy[i]``.
    is_noisy : bool array, shape (n,)
        Ground truth of the flips.
    """
    rate = _check_flip_rate(flip_rate)
    seed = _check_seed(seed)
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    rng = np.random.default_rng((seed, _FLIP_STREAM))
    flipped = rng.permutation(n)[: int(round(rate * n))]
    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[flipped] = True
    given = y.copy()
    # An offset in 1..C-1 added mod C is a uniform draw over the C-1 other classes.
    given[flipped] = (y[flipped] + rng.integers(1, n_classes, len(flipped))) % n_classes
    return given, is_noisy


def fold_assignment(n_samples: int, n_folds: int, seed: int = 0) -> np.ndarray:
    """Seeded fold of every sample for cross-fitting; fold sizes differ by at most one.

    Parameters
    ----------
    n_samples : int
    n_folds : int, >= 2
    seed : int

    Returns
    -------
    int64 array, shape (n_samples,), values 0..n_folds-1.
    """
    n_samples, n_folds = _check_int(n_samples, "n_samples"), _check_int(n_folds, "n_folds")
    if n_folds < 2:
        raise ValueError(f"n_folds: cross-fitting needs at least 2 folds, got {n_folds}")
    if n_samples < n_folds:
        raise ValueError(f"n_samples: {n_samples} is too small for n_folds={n_folds}")
    rng = np.random.default_rng((_check_seed(seed), _FOLD_STREAM))
    return rng.permutation(np.arange(n_samples, dtype=np.int64) % n_folds)


def training_indices(folds: Any, fold: int) -> np.ndarray:
    """Rows a model may train on when it scores ``fold``: every row of every other fold.

    Parameters
    ----------
    folds : int array, shape (n,)
        From :func:`fold_assignment`.
    fold : int
        The held-out fold.

    Returns
    -------
    int64 array of row indices, sorted, none of them in ``fold``.
    """
    folds = np.asarray(folds)
    if fold not in set(folds.tolist()):
        raise ValueError(f"fold: {fold} is not one of the folds {sorted(set(folds.tolist()))}")
    return np.flatnonzero(folds != fold)


def held_out_indices(folds: Any, fold: int) -> np.ndarray:
    """Rows scored by the model trained on :func:`training_indices` ``(folds, fold)``."""
    return np.flatnonzero(np.asarray(folds) == fold)


# ----------------------------------------------------------------------------- models

def build_model(name: str):
    """A freshly initialised torch module for ``name`` (uses torch's global generator).

    Parameters
    ----------
    name : {"logreg", "mlp", "cnn", "cnn_b"}

    Returns
    -------
    torch.nn.Module mapping a float tensor (batch, 40) to logits (batch, 10).
    """
    from torch import nn

    if name == "logreg":
        return nn.Linear(SEQ_LEN, N_CLASSES)
    if name == "mlp":
        return nn.Sequential(nn.Linear(SEQ_LEN, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                             nn.Linear(256, N_CLASSES))
    if name == "cnn":
        return nn.Sequential(
            nn.Unflatten(1, (1, SEQ_LEN)),
            nn.Conv1d(1, 32, 5, stride=2, padding=2), nn.BatchNorm1d(32), nn.ReLU(),    # 40 -> 20
            nn.Conv1d(32, 64, 3, stride=2, padding=1), nn.BatchNorm1d(64), nn.ReLU(),   # 20 -> 10
            nn.Conv1d(64, 64, 3, stride=2, padding=1), nn.BatchNorm1d(64), nn.ReLU(),   # 10 -> 5
            nn.Flatten(), nn.Linear(64 * 5, N_CLASSES))
    if name == "cnn_b":
        return nn.Sequential(
            nn.Unflatten(1, (1, SEQ_LEN)),
            nn.Conv1d(1, 32, 9, padding=4), nn.ReLU(), nn.MaxPool1d(2),      # 40 -> 20
            nn.Conv1d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),     # 20 -> 10
            nn.Conv1d(64, 64, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(64, N_CLASSES))
    raise ValueError(f"models: unknown model {name!r}; choose from {MODELS}")


def model_cost(name: str) -> dict[str, int]:
    """Parameter count and inference FLOPs per sample of a model.

    FLOPs count 2 per multiply-add of the Linear and Conv1d layers (bias, batch norm, ReLU
    and pooling are left out: they are under 1% here).

    Parameters
    ----------
    name : {"logreg", "mlp", "cnn", "cnn_b"}

    Returns
    -------
    dict with ``n_params`` and ``flops_per_sample``.
    """
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        model = build_model(name)
    macs = 0

    def count(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features
        elif isinstance(module, nn.Conv1d):
            macs += output.shape[-1] * module.out_channels * (module.in_channels // module.groups) * module.kernel_size[0]

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, SEQ_LEN))
    for h in hooks:
        h.remove()
    return {"n_params": int(sum(p.numel() for p in model.parameters())), "flops_per_sample": int(2 * macs)}


def _torch_seed(seed: int, name: str, fold: int) -> int:
    """A torch seed for (seed, model, fold); independent of which other models run."""
    state = np.random.SeedSequence((seed, _TORCH_STREAM, MODELS.index(name), fold)).generate_state(1)
    return int(state[0])


@contextlib.contextmanager
def deterministic_torch() -> Iterator[None]:
    """Run torch with :data:`NUM_THREADS` threads and deterministic algorithms; restore the
    caller's thread count, deterministic flag and CPU random state on exit."""
    import torch

    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(NUM_THREADS)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(det, warn_only=warn_only)
            torch.set_num_threads(threads)


def _fit(name: str, x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int):
    """Train model ``name`` on (x, y) and return it in eval mode. Call inside
    :func:`deterministic_torch`."""
    import torch
    from torch import nn

    cfg = TRAINING[name]
    torch.manual_seed(seed)
    model = build_model(name)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    n, batch = len(yt), int(cfg["batch_size"])
    steps_per_epoch = math.ceil(n / batch)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg["learning_rate"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg["learning_rate"],
                                                   total_steps=epochs * steps_per_epoch)
    order_rng = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=order_rng)
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            if len(rows) < 2 and name == "cnn":  # batch norm cannot train on one sample
                continue
            loss = nn.functional.cross_entropy(model(xt[rows]), yt[rows])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    model.eval()
    return model


def _predict(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy().astype(np.float32)


def _fit_and_score(name: str, x_train: np.ndarray, y_train: np.ndarray, x_held: np.ndarray, *, epochs: int,
                   seed: int) -> tuple[np.ndarray, float]:
    """Train ``name`` on one fold's training rows and score its held-out rows, under
    :func:`deterministic_torch` (here or in a worker process); returns the logits and seconds."""
    start = time.perf_counter()
    with deterministic_torch():
        model = _fit(name, x_train, y_train, epochs=epochs, seed=seed)
        logits = _predict(model, x_held)
    return logits, time.perf_counter() - start


def _warm_up() -> None:
    """Import torch in a fresh worker while the parent still generates the data, and what its
    first optimiser imports lazily (torch._dynamo: seconds)."""
    import torch

    torch.optim.Adam(torch.nn.Linear(1, 1).parameters())


def _check_workers(workers: Any, n_fits: int, n_samples: int) -> int:
    if workers is None:  # one per core this process may use (taskset, cgroups)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(cores, n_fits)) if n_samples >= PARALLEL_MIN_SAMPLES else 1
    workers = _check_int(workers, "workers")
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    return workers


def _cross_fit_all(x: np.ndarray, labels: np.ndarray, epochs: Mapping[str, int], folds: np.ndarray, *, seed: int,
                   progress: bool, workers: int,
                   pool: concurrent.futures.Executor | None = None) -> dict[str, tuple[np.ndarray, list[float]]]:
    """Out-of-fold logits and per-fold seconds of every model in ``epochs`` (name -> epochs).

    With ``workers == 1`` the fits run here, one after the other; otherwise in ``pool`` (or a
    pool of ``workers`` spawned processes), the largest models first.
    """
    fold_ids = sorted(set(folds.tolist()))
    logits = {name: np.full((len(x), N_CLASSES), np.nan, dtype=np.float32) for name in epochs}
    seconds = {name: [0.0] * len(fold_ids) for name in epochs}
    fits = [(name, k) for name in sorted(epochs, key=MODELS.index, reverse=True) for k in fold_ids]
    start = time.perf_counter()

    def arguments(name: str, k: int) -> tuple[tuple, dict]:
        train, held = training_indices(folds, k), held_out_indices(folds, k)
        return (name, x[train], labels[train], x[held]), {"epochs": epochs[name], "seed": _torch_seed(seed, name, k)}

    def done(name: str, k: int, fold_logits: np.ndarray, fold_seconds: float) -> None:
        held = held_out_indices(folds, k)
        logits[name][held] = fold_logits
        seconds[name][fold_ids.index(k)] = fold_seconds
        if progress:
            print(f"mnist1d {name:>6} fold {fold_ids.index(k) + 1}/{len(fold_ids)}: trained on {len(x) - len(held)}, "
                  f"scored {len(held)} in {fold_seconds:.1f} s (elapsed {time.perf_counter() - start:.1f} s)",
                  file=sys.stderr, flush=True)

    if workers == 1:
        for name, k in fits:
            args, kwargs = arguments(name, k)
            done(name, k, *_fit_and_score(*args, **kwargs))
        return {name: (logits[name], seconds[name]) for name in epochs}
    own_pool = pool is None
    if own_pool:
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {}
        for name, k in fits:
            args, kwargs = arguments(name, k)
            futures[pool.submit(_fit_and_score, *args, **kwargs)] = (name, k)
        for future in concurrent.futures.as_completed(futures):
            done(*futures[future], *future.result())
    finally:
        if own_pool:
            pool.shutdown()
    return {name: (logits[name], seconds[name]) for name in epochs}


def cross_fit_logits(x: Any, labels: Any, name: str, folds: Any, *, epochs: int | None = None,
                     seed: int = 0, progress: bool = False, workers: int = 1) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold logits of one model: for each fold, train on every other fold and score it.

    Parameters
    ----------
    x : float array, shape (n, 40)
    labels : int array, shape (n,)
        The labels the model trains on (the given, possibly flipped, labels).
    name : {"logreg", "mlp", "cnn", "cnn_b"}
    folds : int array, shape (n,)
        From :func:`fold_assignment`.
    epochs : int, optional
        Passes over the training folds (default ``TRAINING[name]["epochs"]``).
    seed : int
        Seeds the initialisation and batch order of each fold's model.
    progress : bool
        Print one line per fold with the elapsed time (to stderr).
    workers : int, default 1
        Processes that train the folds side by side (1: here, one fold after the other); the
        logits are the same bytes either way.

    Returns
    -------
    logits : float32 array, shape (n, 10)
        Row i comes from the model that did not see row i.
    seconds : list of float
        Wall time of each fold (training and scoring).
    """
    if name not in MODELS:
        raise ValueError(f"models: unknown model {name!r}; choose from {MODELS}")
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    folds = np.asarray(folds)
    epochs = int(TRAINING[name]["epochs"] if epochs is None else epochs)
    workers = _check_workers(workers, len(set(folds.tolist())), len(x))
    return _cross_fit_all(x, labels, {name: epochs}, folds, seed=seed, progress=progress, workers=workers)[name]


# ----------------------------------------------------------------------------- record sets

def make_mnist1d_records(*, n_samples: int = 12_000, flip_rate: float = 0.08, n_folds: int = 4,
                         seed: int = 0, models: Sequence[str] = MODELS, progress: bool = True,
                         epochs: Mapping[str, int] | None = None, workers: int | None = None) -> dict[str, Records]:
    """Cross-fitted record sets of real models on MNIST-1D with injected label flips.

    Generates ``n_samples`` clean samples, flips ``round(flip_rate * n_samples)`` labels,
    splits the pool into ``n_folds`` seeded folds and, for every model and fold, trains on the
    other folds with the given (noisy) labels and scores the held-out fold. Everything is
    seeded and deterministic: the same arguments give byte-identical logits on one machine.

    Parameters
    ----------
    n_samples : int, default 12000
        Size of the pool; at least 50 per fold. The default leaves 6,000 samples in each
        cal/test half, 400 per equal-count bin at 15 bins.
    flip_rate : float in [0, 1), default 0.08
        Share of labels replaced by a uniformly drawn different class (``is_noisy``).
    n_folds : int >= 2, default 4
        Cross-fitting folds: each model is trained ``n_folds`` times on (n_folds-1)/n_folds of
        the pool.
    seed : int >= 0, default 0
        Seeds the data, the flips, the folds and the training.
    models : sequence of {"logreg", "mlp", "cnn", "cnn_b"}, default all four
        Which models to train; results for one model do not depend on which others run.
    progress : bool, default True
        Print one line per model and fold with the elapsed time (to stderr).
    epochs : dict model name -> int, optional
        Override the training length (default :data:`TRAINING`); for quick tests.
    workers : int, optional
        Processes that run the (model, fold) fits side by side (default: one per core, at most
        one per fit, for pools of :data:`PARALLEL_MIN_SAMPLES` or more; else 1: all in this
        process). Each fit is seeded on its own and uses one thread, so the logits are the same
        bytes whatever ``workers`` is.

    Returns
    -------
    dict model name -> :class:`calcas.Records`
        Rows aligned across models (same ids ``"mnist1d-00000"``..., same order); ``logits``
        float32 (n, 10), ``pred`` their argmax, ``label`` the given (possibly flipped) label,
        ``verified = pred == label``, ``is_noisy`` the flip ground truth. The manifest holds
        ``model``, ``dataset="mnist1d"``, ``n_params``, ``flops_per_sample`` and an
        ``extraction`` dict (n_samples, flip_rate, n_flipped, n_folds, seed, epochs, training
        set-up, architecture, parameter count, FLOPs, training seconds, library versions).

    Raises
    ------
    ValueError
        Naming the argument: ``n_samples`` too small for the folds, ``flip_rate`` outside
        [0, 1), ``n_folds`` < 2, an unknown name in ``models``, a bad ``seed``, ``epochs`` or
        ``workers``.
    """
    names = _check_models(models)
    n_samples, n_folds = _check_folds(n_samples, n_folds)
    flip_rate = _check_flip_rate(flip_rate)
    seed = _check_seed(seed)
    n_epochs = _check_epochs(epochs, names)
    workers = _check_workers(workers, len(names) * n_folds, n_samples)
    with contextlib.ExitStack() as stack:
        pool = None
        if workers > 1:  # started first: the workers import torch while the data is generated here
            pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn")))
            for _ in range(workers):
                pool.submit(_warm_up)
        return _make_records(names, n_samples, flip_rate, n_folds, seed, n_epochs, progress, workers, pool)


def _make_records(names: tuple[str, ...], n_samples: int, flip_rate: float, n_folds: int, seed: int,
                  n_epochs: dict[str, int], progress: bool, workers: int,
                  pool: concurrent.futures.Executor | None) -> dict[str, Records]:
    """:func:`make_mnist1d_records` after its argument checks."""
    t0 = time.perf_counter()
    x, clean = generate_mnist1d(n_samples, seed=seed)
    given, is_noisy = flip_labels(clean, flip_rate, seed=seed)
    folds = fold_assignment(n_samples, n_folds, seed)
    if progress:
        print(f"mnist1d: generated {n_samples} samples, flipped {int(is_noisy.sum())} labels "
              f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    width = max(5, len(str(n_samples - 1)))
    ids = np.array([f"mnist1d-{i:0{width}d}" for i in range(n_samples)])
    import torch

    versions = {"mnist1d": importlib.metadata.version("mnist1d"), "torch": torch.__version__,
                "numpy": np.__version__}
    fitted = _cross_fit_all(x, given, {name: n_epochs[name] for name in names}, folds, seed=seed, progress=progress,
                            workers=workers, pool=pool)
    out: dict[str, Records] = {}
    for name in names:
        logits, seconds = fitted[name]
        cost = model_cost(name)
        cfg = TRAINING[name]
        extraction = {
            "n_samples": n_samples, "flip_rate": flip_rate, "n_flipped": int(is_noisy.sum()),
            "n_folds": n_folds, "seed": seed, "epochs": n_epochs[name],
            "batch_size": cfg["batch_size"], "optimizer": "Adam, one-cycle learning rate",
            "learning_rate": cfg["learning_rate"], "trained_on": "given (noisy) labels, other folds",
            "architecture": ARCHITECTURE[name], **cost,
            "train_seconds": round(float(sum(seconds)), 3),
            "fold_seconds": [round(float(s), 3) for s in seconds],
            "num_threads": NUM_THREADS, "generator": "mnist1d.data.make_dataset, default args",
            "versions": versions,
        }
        manifest = {"model": name, "dataset": "mnist1d", **cost, "extraction": extraction}
        # valid_labels holds the clean label: the ground truth cleaning is scored against.
        out[name] = make_records(ids, logits.argmax(axis=1), label=given, logits=logits,
                                 valid_labels=clean[:, None], is_noisy=is_noisy, manifest=manifest)
    if progress:
        print(f"mnist1d: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return out


def write_mnist1d_records(out_dir: str | os.PathLike, **kwargs: Any) -> dict[str, pathlib.Path]:
    """Build the MNIST-1D record sets and write ``out_dir/mnist1d_<model>.parquet``.

    Parameters
    ----------
    out_dir : path
        Created (with parents) when missing; existing files of the same name are replaced.
    **kwargs
        Passed to :func:`make_mnist1d_records` (n_samples, flip_rate, n_folds, seed, models,
        progress, epochs).

    Returns
    -------
    dict model name -> path of the written Parquet file.
    """
    records = make_mnist1d_records(**kwargs)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rec in records.items():
        path = out / f"mnist1d_{name}.parquet"
        write_records(rec, path)
        paths[name] = path
    return paths
