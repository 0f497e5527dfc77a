"""Input checks shared by every module: one place that turns bad input into a clear ValueError.

Every public function converts its array arguments with these helpers, so a NaN, a wrong
shape or an out-of-range label is refused with a message that names the argument.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array; torch tensors are detached and moved to the CPU.

    numpy has no bfloat16, so a bf16 tensor becomes float32 (every bf16 value is exact in float32).
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        torch = sys.modules.get("torch")
        if torch is not None and x.dtype == torch.bfloat16:
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def float_array(x: Any, name: str, *, ndim: int | None = None, low: float | None = None,
                high: float | None = None, keep_float32: bool = False, keep_float: bool = False) -> np.ndarray:
    """A finite float array with the given number of dimensions and (inclusive) range.

    Returned as float64 unless ``keep_float32`` (float32 kept, float16 widened to float32) or
    ``keep_float`` (any float array kept as it is, for kernels that widen it chunk by chunk).
    """
    a = to_numpy(x)
    if not (a.dtype == bool or np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if keep_float and np.issubdtype(a.dtype, np.floating):
        pass
    elif not (keep_float32 and a.dtype in (np.float32, np.float16)):
        a = a.astype(np.float64, copy=False)
    elif a.dtype == np.float16:
        a = a.astype(np.float32)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: is empty")
    if not np.isfinite(a).all():
        bad = int(np.size(a) - np.isfinite(a).sum())
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
    if low is not None and a.min() < low:
        raise ValueError(f"{name}: values must be >= {low}, found {a.min():.6g}")
    if high is not None and a.max() > high:
        raise ValueError(f"{name}: values must be <= {high}, found {a.max():.6g}")
    return a


def confidence_array(x: Any, name: str = "confidence") -> np.ndarray:
    """A 1-D array of confidences in [0, 1]."""
    return float_array(x, name, ndim=1, low=0.0, high=1.0)


def correct_array(x: Any, name: str = "correct") -> np.ndarray:
    """A 1-D array of verifier scores in [0, 1] (bools accepted)."""
    return float_array(x, name, ndim=1, low=0.0, high=1.0)


def label_array(x: Any, name: str, n_classes: int | None = None, *, allow_unknown: bool = False) -> np.ndarray:
    """A 1-D integer array of class indices in [0, n_classes) (or -1 when ``allow_unknown``)."""
    a = to_numpy(x)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: is empty")
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() and (a == np.round(a)).all():
            a = a.astype(np.int64)
        else:
            raise ValueError(f"{name}: expected integer class indices, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    low = -1 if allow_unknown else 0
    if a.min() < low:
        raise ValueError(f"{name}: class indices must be >= {low}, found {a.min()}")
    if n_classes is not None and a.max() >= n_classes:
        raise ValueError(f"{name}: class indices must be < {n_classes} (number of classes), found {a.max()}")
    return a


def same_length(**arrays: np.ndarray) -> int:
    """Check that all arrays have the same first dimension; return it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(f"length mismatch: {listed} rows")
    return next(iter(lengths.values()))


def check_integer(x: Any, name: str) -> None:
    """x must be a Python or numpy integer (not a bool, not an integral float)."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer, got {x!r}")


def check_seed(seed: Any, name: str = "seed") -> int:
    """A random seed: an integer >= 0 (what numpy.random.default_rng accepts as one number)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {seed!r}")
    return int(seed)


def check_positive_int(x: Any, name: str) -> int:
    """An integer >= 1 (a count such as n_bins or n_boot)."""
    check_integer(x, name)
    if x < 1:
        raise ValueError(f"{name}: must be >= 1, got {x}")
    return int(x)


def check_n_bins(n_bins: Any, n: int, binning: str = "equal_count") -> int:
    """n_bins must be an integer in [1, n]; for "equal_width" bins (fixed intervals of [0, 1],
    where an empty bin is defined and weighs 0) any integer >= 1, given at least one sample."""
    n_bins = check_positive_int(n_bins, "n_bins")
    if binning == "equal_width":
        if n < 1:
            raise ValueError("n_bins: equal-width bins need at least one sample, got 0")
        return n_bins
    if n_bins > n:
        raise ValueError(f"n_bins: {n_bins} bins need at least as many samples, got {n}")
    return n_bins


def check_level(level: Any) -> float:
    """A confidence level: a real number strictly between 0 and 1."""
    real = isinstance(level, (int, float, np.integer, np.floating)) and not isinstance(level, (bool, np.bool_))
    if not (real and 0 < level < 1):
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    return float(level)


def check_k(K: Any, n_bins: int) -> int:
    """K (number of kept bins) must be an integer in [0, n_bins]."""
    check_integer(K, "K")
    if not 0 <= K <= n_bins:
        raise ValueError(f"K: must be in [0, {n_bins}] (the number of bins), got {K}")
    return int(K)


def check_binning(binning: Any, choices: tuple[str, ...]) -> str:
    """binning must be one of ``choices``."""
    if binning not in choices:
        raise ValueError(f"binning: expected one of {choices}, got {binning!r}")
    return binning


def check_edges(edges: Any) -> np.ndarray:
    """Bin edges: a 1-D float array of at least 2 entries, non-decreasing, free of NaN."""
    e = np.asarray(to_numpy(edges), dtype=np.float64)
    if e.ndim != 1 or len(e) < 2:
        raise ValueError(f"edges: expected a 1-D array of at least 2 edges, got shape {e.shape}")
    if np.isnan(e).any() or np.any(np.diff(e) < 0):
        raise ValueError("edges: must be non-decreasing and free of NaN")
    return e
