"""What every extraction backend shares: dtype names, batches of items and seeded subsets.

The vision (timm), transformers and vLLM backends, the task readers and the jobs take these
from here, so that ``--dtype bf16`` means the same everywhere and a seeded subset of ``n`` ids
is the same subset whichever reader or job draws it. torch is imported inside
:func:`torch_dtype` only: importing this module costs no more than numpy.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, TypeVar

import numpy as np

__all__ = ["DTYPE_ALIASES", "batched", "dtype_name", "seeded_rows", "torch_dtype"]

#: Short dtype names accepted everywhere (``--dtype``), and the torch name each stands for.
DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}

_T = TypeVar("_T")


def dtype_name(dtype: Any) -> str:
    """The full torch name of a dtype given by a short name, a torch name or a ``torch.dtype``.

    Parameters
    ----------
    dtype : str or torch.dtype
        ``"bf16"``, ``"fp16"``, ``"half"``, ``"fp32"``, ``"float"`` (see :data:`DTYPE_ALIASES`),
        ``"bfloat16"``, ``"torch.bfloat16"``, ``torch.bfloat16``; any other text (vLLM's
        ``"auto"``) is returned as it is.

    Returns
    -------
    str
        E.g. ``"bfloat16"``; not checked against torch (see :func:`torch_dtype`).
    """
    text = str(dtype).removeprefix("torch.")
    return DTYPE_ALIASES.get(text, text)


def torch_dtype(dtype: Any):
    """The ``torch.dtype`` a dtype name stands for.

    Parameters
    ----------
    dtype : str, torch.dtype or None
        As for :func:`dtype_name`; a ``torch.dtype`` and None are returned unchanged.

    Returns
    -------
    torch.dtype or None

    Raises
    ------
    ValueError
        A name that is not a torch dtype (``"dtype: unknown torch dtype 'bf17'"``).
    """
    if dtype is None or not isinstance(dtype, str):
        return dtype
    import torch
    value = getattr(torch, dtype_name(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"dtype: unknown torch dtype {dtype!r}")
    return value


def batched(items: Iterable[_T], batch_size: int, skip_ids: Iterable[str] = frozenset()) -> Iterator[list[_T]]:
    """The items in order, in lists of ``batch_size`` (the last one shorter), less skipped ids.

    Parameters
    ----------
    items : iterable
        Anything; with ``skip_ids``, dicts with an ``"id"``.
    batch_size : int
        At least 1.
    skip_ids : iterable of str
        Items whose ``str(item["id"])`` is here are left out (a resumed run's finished ids).

    Yields
    ------
    list
        Non-empty lists of at most ``batch_size`` items.

    Raises
    ------
    ValueError
        ``batch_size`` is not an int >= 1 (on the first ``next``).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: must be an int >= 1, got {batch_size!r}")
    skip = set(skip_ids)
    batch: list[_T] = []
    for item in items:
        if skip and str(item["id"]) in skip:  # type: ignore[index]
            continue
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def seeded_rows(size: int, n: int | None, seed: int = 0) -> np.ndarray:
    """Row positions of a seeded subset: ``n`` of ``range(size)`` drawn without replacement, in
    increasing order (all rows when ``n`` is None). The same arguments give the same rows on
    every rank and every re-run.

    Parameters
    ----------
    size : int
        Number of rows.
    n : int or None
        How many to keep, in [0, size].
    seed : int, default 0

    Returns
    -------
    int array, shape (n,)

    Raises
    ------
    ValueError
        ``n`` outside [0, size].
    """
    if n is None:
        return np.arange(size)
    if not 0 <= n <= size:
        raise ValueError(f"n: must be in [0, {size}], got {n}")
    return np.sort(np.random.default_rng(seed).choice(size, size=n, replace=False))
