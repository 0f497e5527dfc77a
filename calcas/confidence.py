"""Confidence functions (paper §2.1, SPEC §1): from a model's logits to a number in [0, 1].

All functions accept numpy arrays or torch tensors and return numpy arrays.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import log_softmax as _log_softmax
from scipy.special import softmax as _softmax

from ._validate import confidence_array, float_array, to_numpy

# Platt's classifier score log(c / (1 - c)) is clipped to this many nats so c = 1.0 stays finite.
_LOGIT_CLIP = 1e-12


def _check_temperature(temperature: float) -> float:
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature: must be a finite number > 0, got {temperature!r}")
    return float(temperature)


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
    return _softmax(z / _check_temperature(temperature), axis=1)


def max_prob_confidence(logits: Any, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 confidence ``c = max softmax(z / T)`` and the predicted class.

    Parameters
    ----------
    logits : array, shape (n, C)
        Raw logits.
    temperature : float
        Temperature T > 0.

    Returns
    -------
    confidence : ndarray, shape (n,), in [0, 1]
    pred : ndarray of int, shape (n,), the argmax class.
    """
    z = float_array(logits, "logits", ndim=2)
    T = _check_temperature(temperature)
    pred = z.argmax(axis=1)
    # max softmax = 1 / sum_j exp((z_j - z_max) / T): no full probability matrix needed.
    top = z[np.arange(len(z)), pred]
    confidence = 1.0 / np.exp((z - top[:, None]) / T).sum(axis=1)
    return confidence, pred


def class_confidence(logits: Any, classes: Any, temperature: float = 1.0) -> np.ndarray:
    """Per-class confidence ``c(X, Y) = softmax(z / T)_Y`` for one class per row.

    Parameters
    ----------
    logits : array, shape (n, C)
        Raw logits.
    classes : int array, shape (n,)
        The class Y whose probability is wanted, per row.

    Returns
    -------
    confidence : ndarray, shape (n,)
    """
    z = float_array(logits, "logits", ndim=2)
    y = to_numpy(classes).astype(np.int64)
    if y.shape != (len(z),):
        raise ValueError(f"classes: expected shape ({len(z)},), got {y.shape}")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"classes: class indices must be in [0, {z.shape[1]})")
    logp = _log_softmax(z / _check_temperature(temperature), axis=1)
    return np.exp(logp[np.arange(len(z)), y])


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
    ids = to_numpy(option_token_ids).astype(np.int64).ravel()
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
