"""Confidence functions (paper §2.1, SPEC §1): from a model's logits to a number in [0, 1].

All functions accept numpy arrays or torch tensors and return numpy arrays.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import confidence_array, float_array, label_array, to_numpy

# Platt's classifier score log(c / (1 - c)) is clipped to this many nats so c = 1.0 stays finite.
_LOGIT_CLIP = 1e-12

# max_prob_confidence widens the logits to float64 this many elements at a time (512 KiB).
_CHUNK_ELEMENTS = 1 << 16


def _check_temperature(temperature: float) -> float:
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature: must be a finite number > 0, got {temperature!r}")
    return float(temperature)


def _scaled_from_max(z: np.ndarray, T: float) -> np.ndarray:
    """``(z - row max) / T`` as a new float64 array, for checked logits ``z`` (n, C) (unchecked).

    Every entry is <= 0 and every row has a 0, so its exp cannot overflow, where ``z / T`` can
    (1e308 / 0.1); a difference beyond the float range becomes -inf, whose exp is the right 0.
    """
    with np.errstate(over="ignore"):
        scaled = np.subtract(z, z.max(axis=1, keepdims=True), dtype=np.float64)
        scaled /= T
    return scaled


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities ``softmax(logits / temperature)``.

    Parameters
    ----------
    logits : array, shape (n, C)
        Raw logits (not probabilities).
    temperature : float
        T > 0; T > 1 softens, T < 1 sharpens.

    Returns
    -------
    probabilities : ndarray, shape (n, C), rows sum to 1.
    """
    z = float_array(logits, "logits", ndim=2)
    p = np.exp(_scaled_from_max(z, _check_temperature(temperature)))
    p /= p.sum(axis=1, keepdims=True)
    return p


def max_prob_confidence(logits: Any, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 confidence ``c = max softmax(z / T)`` and the predicted class.

    Computed in float64 a block of rows at a time, so beyond the logits themselves it holds
    about one byte per logit (the finiteness check) and the outputs.

    Parameters
    ----------
    logits : array, shape (n, C)
        Raw logits (float16/32/64 kept as given; bf16 tensors arrive as float32).
    temperature : float
        Temperature T > 0.

    Returns
    -------
    confidence : ndarray, shape (n,), in [0, 1]
    pred : ndarray of int, shape (n,), the argmax class.
    """
    z = float_array(logits, "logits", ndim=2, keep_float=True)
    T = _check_temperature(temperature)
    confidence = np.empty(len(z))
    pred = np.empty(len(z), dtype=np.int64)
    rows = max(1, _CHUNK_ELEMENTS // z.shape[1])
    for start in range(0, len(z), rows):
        wide = z[start:start + rows].astype(np.float64)  # numpy's float16 max and argmax are slow
        pred[start:start + rows] = wide.argmax(axis=1)
        # max softmax = 1 / sum_j exp((z_j - z_max) / T): no probability matrix needed.
        weights = np.exp(_scaled_from_max(wide, T))
        confidence[start:start + rows] = 1.0 / weights.sum(axis=1)
    return confidence, pred


def class_confidence(logits: Any, classes: Any, temperature: float = 1.0) -> np.ndarray:
    """Per-class confidence ``c(X, Y) = softmax(z / T)_Y`` for one class per row.

    Parameters
    ----------
    logits : array, shape (n, C)
        Raw logits.
    classes : int array, shape (n,)
        The class Y in [0, C) whose probability is wanted, per row (integer-valued floats are
        accepted, fractional ones refused).
    temperature : float
        Temperature T > 0.

    Returns
    -------
    confidence : ndarray, shape (n,), in [0, 1]
    """
    z = float_array(logits, "logits", ndim=2)
    y = label_array(classes, "classes", z.shape[1])
    if len(y) != len(z):
        raise ValueError(f"classes: expected shape ({len(z)},), got {y.shape}")
    scaled = _scaled_from_max(z, _check_temperature(temperature))
    return np.exp(scaled[np.arange(len(z)), y]) / np.exp(scaled).sum(axis=1)


def restricted_confidence(token_logits: Any, option_token_ids: Any, temperature: float = 1.0) -> np.ndarray:
    """Multiple-choice probabilities: the answer token's logits restricted to the option tokens.

    The paper's MMLU confidence: take the first answer token's logits over the vocabulary,
    keep only the option letters (e.g. the token ids of "A", "B", "C", "D") and renormalise.

    Parameters
    ----------
    token_logits : array, shape (n, V)
        Logits over the vocabulary at the answer position (raw logits).
    option_token_ids : int array, shape (k,)
        Vocabulary ids of the k options, in option order.

    Returns
    -------
    probabilities : ndarray, shape (n, k), rows sum to 1; column j is option j.
    """
    z = float_array(token_logits, "token_logits", ndim=2)
    ids = label_array(to_numpy(option_token_ids).ravel(), "option_token_ids")
    if ids.size < 2:
        raise ValueError(f"option_token_ids: need at least 2 options, got {ids.size}")
    if ids.min() < 0 or ids.max() >= z.shape[1]:
        raise ValueError(f"option_token_ids: ids must be in [0, {z.shape[1]}) (vocabulary size)")
    if len(np.unique(ids)) != ids.size:
        raise ValueError("option_token_ids: ids must be distinct")
    return softmax(z[:, ids], temperature)


def _masked_token_values(values: Any, mask: Any | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    v = float_array(np.nan_to_num(to_numpy(values), nan=0.0) if mask is not None else values, name, ndim=2)
    m = np.ones_like(v, dtype=bool) if mask is None else to_numpy(mask).astype(bool)
    if m.shape != v.shape:
        raise ValueError(f"mask: expected shape {v.shape} (same as {name}), got {m.shape}")
    lengths = m.sum(axis=1)
    if (lengths == 0).any():
        raise ValueError(f"mask: {int((lengths == 0).sum())} row(s) have no generated tokens")
    return np.where(m, v, 0.0), lengths


def sequence_likelihood(token_logprobs: Any, mask: Any | None = None) -> np.ndarray:
    """Joint likelihood of a generated sequence, ``prod_i p(Y_i | X, Y_<i)``.

    Parameters
    ----------
    token_logprobs : array, shape (n, L)
        Log-probabilities (natural log, not logits) of the sampled tokens, padded to length L.
    mask : bool array, shape (n, L), optional
        True where a token was generated; padding (which may be NaN) is ignored.

    Returns
    -------
    likelihood : ndarray, shape (n,), in [0, 1].
    """
    v, _ = _masked_token_values(token_logprobs, mask, "token_logprobs")
    if v.max() > 0:
        raise ValueError("token_logprobs: log-probabilities must be <= 0 (were logits passed?)")
    return np.exp(v.sum(axis=1))


def mean_token_logit(token_logits: Any, mask: Any | None = None) -> np.ndarray:
    """Mean over generated tokens of the sampled token's logit, ``z̄`` (the Platt input).

    Parameters
    ----------
    token_logits : array, shape (n, L)
        Raw logit of each sampled token (not a probability), padded to length L.
    mask : bool array, shape (n, L), optional
        True where a token was generated.

    Returns
    -------
    score : ndarray, shape (n,), real-valued; calibrate with :class:`calcas.PlattScaling`.
    """
    v, lengths = _masked_token_values(token_logits, mask, "token_logits")
    return v.sum(axis=1) / lengths


def top1_logit(confidence: Any) -> np.ndarray:
    """Platt's score for a classifier: ``log(c / (1 - c))`` of the top-1 probability, clipped.

    Parameters
    ----------
    confidence : array, shape (n,)
        Probabilities in [0, 1]; 0 and 1 are clipped to 1e-12 and 1 - 1e-12.

    Returns
    -------
    score : ndarray, shape (n,)
    """
    c = confidence_array(confidence)
    c = np.clip(c, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return np.log(c) - np.log1p(-c)
