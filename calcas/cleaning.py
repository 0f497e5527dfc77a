"""Label cleaning with a mixture of experts (paper §2.3, Algorithm 2; SPEC §4).

Method 1 flags a label every expert's top-1 answer disagrees with; method 2 also asks each
expert's confidence to fall in its K most accurate cal bins; method 3 is the paper's
single-model Confident-Learning-style rule; Confident Learning itself comes from cleanlab.
Precision is measured against a ground truth of label errors when one is given.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._validate import (check_k, check_n_bins, confidence_array, correct_array, float_array, label_array,
                        same_length, to_numpy)
from .binning import _assign_bins, _bin_stats, _bin_sums, _equal_count_edges, _rank_bins


def _experts(preds: Any, labels: Any, name: str = "preds") -> tuple[np.ndarray, np.ndarray]:
    """Stack expert predictions into shape (m, n) and check labels against them."""
    p = to_numpy(preds)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[0] < 1:
        raise ValueError(f"{name}: expected shape (m, n) for m >= 1 experts, got {p.shape}")
    p = np.stack([label_array(row, f"{name}[{j}]") for j, row in enumerate(p)])
    y = label_array(labels, "labels")
    if p.shape[1] != len(y):
        raise ValueError(f"length mismatch: {name} has {p.shape[1]} samples, labels has {len(y)}")
    return p, y


def _probabilities_and_labels(probabilities: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    P = float_array(probabilities, "probabilities", ndim=2, low=0.0, high=1.0)
    y = label_array(labels, "labels", P.shape[1])
    same_length(probabilities=P, labels=y)
    return P, y


def flag_top1_disagreement(preds: Any, labels: Any) -> np.ndarray:
    """Method 1: flag a sample when every expert's top-1 class differs from its label.

    Parameters
    ----------
    preds : int array, shape (m, n) or (n,)
        Top-1 class of each of m experts.
    labels : int array, shape (n,)
        The given labels.

    Returns
    -------
    flags : bool ndarray, shape (n,)
    """
    p, y = _experts(preds, labels)
    return np.all(p != y[None, :], axis=0)


def _accuracy_bin_ranks(c: np.ndarray, v: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`accuracy_bin_ranks` on checked inputs (unchecked kernel)."""
    edges = _equal_count_edges(c, n_bins)
    m = len(edges) - 1
    _, accuracy, mean_conf = _bin_stats(_assign_bins(c, edges), m, v, c)
    rank = np.empty(m, dtype=np.int64)
    rank[_rank_bins(-accuracy, mean_conf)] = np.arange(m)  # most accurate first
    return edges, rank


def accuracy_bin_ranks(confidence: Any, correct: Any, n_bins: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Equal-count bins of one expert on cal, ranked by accuracy (rank 0 = most accurate).

    Ties in accuracy go to the bin with the higher mean confidence. Tied confidences are
    never split between bins, so m <= n_bins bins are formed, all non-empty (see
    :func:`calcas.equal_count_edges`).

    Parameters
    ----------
    confidence : array, shape (n,)
        The expert's calibrated confidence in its own answer (probabilities).
    correct : array, shape (n,)
        Whether that answer equals the given label (0/1).
    n_bins : int
        Number of bins asked for, 1 <= n_bins <= n.

    Returns
    -------
    edges : ndarray, shape (m + 1,)
    rank : int ndarray, shape (m,); ``rank[b]`` is bin b's place by accuracy.
    """
    c = confidence_array(confidence)
    v = correct_array(correct)
    same_length(confidence=c, correct=v)
    return _accuracy_bin_ranks(c, v, check_n_bins(n_bins, len(c)))


def _checked_method2(preds: Any, confidences: Any, labels: Any, n_bins: Any,
                     fit_mask: Any | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The entry checks of method 2: experts' answers and confidences, labels, fit rows, n_bins."""
    p, y = _experts(preds, labels)
    conf = float_array(confidences, "confidences", low=0.0, high=1.0)
    conf = conf[None, :] if conf.ndim == 1 else conf
    if conf.shape != p.shape:
        raise ValueError(f"confidences: expected shape {p.shape} (same as preds), got {conf.shape}")
    fit = np.ones(len(y), dtype=bool) if fit_mask is None else to_numpy(fit_mask).astype(bool)
    if fit.shape != y.shape:
        raise ValueError(f"fit_mask: expected shape {y.shape}, got {fit.shape}")
    if not fit.any():
        raise ValueError("fit_mask: selects no rows; the bins are fitted on the rows it selects")
    return p, conf, y, fit, check_n_bins(n_bins, int(fit.sum()))


def _levels(p: np.ndarray, conf: np.ndarray, y: np.ndarray, fit: np.ndarray,
            n_bins: int) -> tuple[np.ndarray, int]:
    """Method-2 level of every sample and the largest number of bins any expert formed (unchecked)."""
    worst_rank = np.zeros(len(y), dtype=np.int64)
    most_bins = 1
    for pj, cj in zip(p, conf):
        edges, rank = _accuracy_bin_ranks(cj[fit], (pj[fit] == y[fit]).astype(np.float64), n_bins)
        np.maximum(worst_rank, rank[_assign_bins(cj, edges)], out=worst_rank)
        most_bins = max(most_bins, len(rank))
    disagree = np.all(p != y[None, :], axis=0)
    return np.where(disagree, worst_rank + 1, n_bins + 1), most_bins


def confident_disagreement_level(preds: Any, confidences: Any, labels: Any, *, n_bins: int = 15,
                                 fit_mask: Any | None = None) -> np.ndarray:
    """Method 2 for every K at once: the smallest K at which each sample is flagged.

    A sample is flagged at K when every expert disagrees with its label and each expert's
    confidence falls in that expert's K most accurate bins (fitted on the ``fit_mask`` rows).
    So the level is 1 + the worst (largest) accuracy rank among the experts' bins, and
    ``n_bins + 1`` (never flagged) where some expert agrees with the label. An expert whose
    tied confidences formed only m_j < n_bins bins keeps all of them at every K >= m_j.

    Parameters
    ----------
    preds : int array, shape (m, n) or (n,)
        Top-1 class of each expert.
    confidences : array, shape (m, n) or (n,)
        Each expert's calibrated confidence in its top-1 class (probabilities).
    labels : int array, shape (n,)
    n_bins : int
        Equal-count bins asked for per expert (1 <= n_bins <= number of fit rows).
    fit_mask : bool array, shape (n,), optional
        Rows whose given labels fit the bins and their accuracy ranks (the cal split);
        all rows when omitted.

    Returns
    -------
    level : int ndarray, shape (n,), values in [1, n_bins + 1] (flagged samples' levels are
    at most the largest number of bins an expert formed).
    """
    return _levels(*_checked_method2(preds, confidences, labels, n_bins, fit_mask))[0]


def flag_confident_disagreement(preds: Any, confidences: Any, labels: Any, K: int, *,
                                n_bins: int = 15, fit_mask: Any | None = None) -> np.ndarray:
    """Method 2 at one K: bool flags, shape (n,). See :func:`confident_disagreement_level`.

    ``K`` is the number of most accurate bins each expert keeps, ``0 <= K <= n_bins`` (an
    expert with fewer bins keeps all of its bins); inputs as there (confidences are
    probabilities, shape (m, n)).
    """
    checked = _checked_method2(preds, confidences, labels, n_bins, fit_mask)
    K = check_k(K, checked[-1])
    return _levels(*checked)[0] <= K


def flag_class_threshold(probabilities: Any, labels: Any) -> np.ndarray:
    """Method 3 (the paper's CL-style rule, one model).

    Per class Y, t(Y) = mean of c(X', Y) over the samples labelled Y; candidates
    C(X) = {Y : c(X, Y) > t(Y)}; flag X when C(X) is non-empty and its most confident
    candidate is not the given label. A class no sample is labelled with has no threshold
    and is never a candidate.

    Parameters
    ----------
    probabilities : array, shape (n, C)
        Calibrated class probabilities (not logits).
    labels : int array, shape (n,)

    Returns
    -------
    flags : bool ndarray, shape (n,)
    """
    P, y = _probabilities_and_labels(probabilities, labels)
    C = P.shape[1]
    count = np.bincount(y, minlength=C)
    with np.errstate(invalid="ignore", divide="ignore"):
        threshold = np.bincount(y, weights=P[np.arange(len(y)), y], minlength=C) / count
    threshold[count == 0] = np.inf
    candidate = np.where(P > threshold[None, :], P, -np.inf)
    best = candidate.argmax(axis=1)
    has_candidate = np.isfinite(candidate[np.arange(len(y)), best])
    return has_candidate & (best != y)


def confident_learning_flags(probabilities: Any, labels: Any, *,
                             filter_by: str = "prune_by_noise_rate", **kwargs: Any) -> np.ndarray:
    """Confident Learning (Northcutt et al.) through ``cleanlab.filter.find_label_issues``.

    Parameters
    ----------
    probabilities : array, shape (n, C)
        Out-of-sample class probabilities (calibrated, not logits); rows sum to 1.
    labels : int array, shape (n,)
    filter_by : str
        cleanlab's rule (``"prune_by_noise_rate"``, ``"prune_by_class"``, ``"both"``,
        ``"confident_learning"``, ...); other keyword arguments go to cleanlab unchanged.

    Returns
    -------
    flags : bool ndarray, shape (n,)
    """
    from cleanlab.filter import find_label_issues

    P, y = _probabilities_and_labels(probabilities, labels)
    return np.asarray(find_label_issues(y, P, filter_by=filter_by, **kwargs), dtype=bool)


def label_errors(labels: Any, *, is_noisy: Any | None = None,
                 valid_labels: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """Ground truth of label errors as floats: 1.0 wrong, 0.0 right, NaN unknown.

    Parameters
    ----------
    labels : int array, shape (n,)
    is_noisy : bool array, shape (n,), optional
        Known flips (e.g. injected noise).
    valid_labels : sequence of n int sequences, optional
        Every acceptable label of each sample (e.g. ImageNet ReaL); a label is wrong when it
        is not in a non-empty list; an empty list means "not rated" (NaN).
    """
    y = label_array(labels, "labels", allow_unknown=True)
    if (is_noisy is None) == (valid_labels is None):
        raise ValueError("label_errors: give exactly one of is_noisy or valid_labels")
    if is_noisy is not None:
        truth = to_numpy(is_noisy).astype(np.float64)
        if truth.shape != y.shape:
            raise ValueError(f"is_noisy: expected shape {y.shape}, got {truth.shape}")
        return truth
    if len(valid_labels) != len(y):
        raise ValueError(f"valid_labels: expected {len(y)} entries, got {len(valid_labels)}")
    return np.array([np.nan if len(v) == 0 else float(label not in set(v))
                     for label, v in zip(y, valid_labels)])


def _truth(is_error: Any | None, n: int) -> np.ndarray:
    """``is_error`` as floats: 1 a label error, 0 a correct label, NaN unknown."""
    if is_error is None:
        return np.full(n, np.nan)
    t = to_numpy(is_error).astype(np.float64)
    if t.shape != (n,):
        raise ValueError(f"is_error: expected shape ({n},), got {t.shape}")
    bad = ~(np.isnan(t) | (t == 0) | (t == 1))
    if bad.any():
        raise ValueError(f"is_error: values must be 0, 1 or NaN (unknown), found {float(t[bad][0])} at row "
                         f"{int(np.flatnonzero(bad)[0])}")
    return t


def _flags(flags: Any, name: str = "flags") -> np.ndarray:
    """A 1-D boolean flag column; 0/1 numbers are accepted, other values are refused."""
    f = to_numpy(flags)
    if f.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {f.shape}")
    if f.dtype != bool:
        if not (np.issubdtype(f.dtype, np.number) and np.isin(f, (0, 1)).all()):
            raise ValueError(f"{name}: expected booleans (or 0/1), got dtype {f.dtype}"
                             + ("" if f.dtype == object else f" with values {np.unique(f)[:5].tolist()}"))
        f = f.astype(bool)
    return f


def _precision(f: np.ndarray, t: np.ndarray) -> float:
    known = f & ~np.isnan(t)
    return float(t[known].mean()) if known.any() else float("nan")


def precision(flags: Any, is_error: Any) -> float:
    """Share of flagged samples whose label is truly wrong, over flagged samples with known
    ground truth (``is_error`` NaN = unknown); NaN when none is flagged."""
    f = _flags(flags)
    return _precision(f, _truth(is_error, len(f)))


def precision_interval(flags: Any, is_error: Any, *, level: float = 0.95) -> tuple[float, float, float]:
    """:func:`precision` with its Wilson interval over the flagged samples of known ground truth.

    Returns
    -------
    (precision, low, high) : NaN when none of the flagged has known ground truth.
    """
    from .metrics import proportion_interval
    f = _flags(flags)
    t = _truth(is_error, len(f))
    known = f & ~np.isnan(t)
    low, high = proportion_interval(int(t[known].sum()), int(known.sum()), level=level)
    return _precision(f, t), low, high


def cleaning_sweep(preds: Any, confidences: Any, labels: Any, *, n_bins: int = 15,
                   fit_mask: Any | None = None, is_error: Any | None = None) -> pd.DataFrame:
    """Method 2 for K = M..1: detection rate and precision at every K (the paper's Fig. 4).

    Parameters
    ----------
    preds, confidences, labels, n_bins, fit_mask
        As in :func:`confident_disagreement_level` (confidences are probabilities, shape
        (m, n)).
    is_error : array, shape (n,), optional
        Ground truth of label errors (bool, or floats with NaN = unknown, as returned by
        :func:`label_errors`). Without it, precision is NaN.

    Returns
    -------
    DataFrame, one row per K from M down to 1, where M <= n_bins is the largest number of
    bins any expert formed on the fit rows (tied confidences are never split, so an expert
    can form fewer than ``n_bins``; at K >= M every expert keeps all its bins, which is
    method 1): ``K, n_flagged, detection_rate`` (flagged / n), ``n_rated`` (flagged with
    known ground truth), ``precision``.
    """
    p, conf, y, fit, n_bins = _checked_method2(preds, confidences, labels, n_bins, fit_mask)
    n = len(y)
    truth = _truth(is_error, n)
    level, most = _levels(p, conf, y, fit, n_bins)
    level = np.minimum(level, most + 1)  # most + 1: never flagged at any K <= most
    known = ~np.isnan(truth)
    flagged = np.cumsum(_bin_sums(level, most + 2)[0][1:-1])
    rated, wrong = (np.cumsum(s[1:-1]) for s in _bin_sums(level[known], most + 2, truth[known]))
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(rated > 0, wrong / np.maximum(rated, 1), np.nan)
    sweep = pd.DataFrame({"K": np.arange(1, most + 1), "n_flagged": flagged,
                          "detection_rate": flagged / n, "n_rated": rated, "precision": prec})
    return sweep.iloc[::-1].reset_index(drop=True)


def overlap_summary(flags_a: Any, flags_b: Any, *, is_error: Any | None = None,
                    names: tuple[str, str] = ("ours", "CL")) -> pd.DataFrame:
    """The paper's Table 3: how many samples each method flags, alone and together, and the
    precision of each group.

    Returns
    -------
    DataFrame indexed by ``<a>``, ``<b>``, ``<a> only``, ``<b> only``, ``both`` with columns
    ``n_flagged`` and ``precision`` (NaN without ground truth).
    """
    a = _flags(flags_a, "flags_a")
    b = _flags(flags_b, "flags_b")
    same_length(flags_a=a, flags_b=b)
    t = _truth(is_error, len(a))
    groups = {names[0]: a, names[1]: b, f"{names[0]} only": a & ~b, f"{names[1]} only": b & ~a,
              "both": a & b}
    return pd.DataFrame({"n_flagged": [int(g.sum()) for g in groups.values()],
                         "precision": [_precision(g, t) for g in groups.values()]},
                        index=list(groups))


def cleaned_accuracy(pred: Any, labels: Any, flags: Any, *, true_labels: Any | None = None,
                     valid_labels: Sequence[Sequence[int]] | None = None, mode: str = "replace") -> float:
    """Accuracy after cleaning (the paper's Table 2).

    Parameters
    ----------
    pred, labels : int arrays, shape (n,)
        A model's answers and the given labels.
    flags : bool array, shape (n,)
        Labels flagged as wrong.
    true_labels : int array, shape (n,), optional
        Ground-truth labels (-1 = unknown).
    valid_labels : sequence of n int sequences, optional
        Every acceptable label per sample (ImageNet ReaL; empty = not rated). Give this or
        ``true_labels`` for ``mode="replace"``.
    mode : {"replace", "drop"}
        ``replace``: a flagged label is replaced by the ground truth where it is known (with
        ``valid_labels``, a flagged sample counts as right when ``pred`` is in its set);
        ``drop``: flagged samples are removed.
    """
    p = label_array(pred, "pred")
    y = label_array(labels, "labels")
    f = _flags(flags)
    same_length(pred=p, labels=y, flags=f)
    if mode == "drop":
        if f.all():
            raise ValueError("flags: every sample is flagged, nothing is left to measure")
        return float(np.mean(p[~f] == y[~f]))
    if mode != "replace":
        raise ValueError(f"mode: expected 'replace' or 'drop', got {mode!r}")
    if (true_labels is None) == (valid_labels is None):
        raise ValueError("true_labels, valid_labels: mode='replace' needs exactly one of them")
    right = p == y
    if true_labels is not None:
        t = label_array(true_labels, "true_labels", allow_unknown=True)
        same_length(labels=y, true_labels=t)
        fix = f & (t >= 0)
        right[fix] = p[fix] == t[fix]
    else:
        if len(valid_labels) != len(y):
            raise ValueError(f"valid_labels: expected {len(y)} entries, got {len(valid_labels)}")
        for i in np.flatnonzero(f):
            if len(valid_labels[i]):
                right[i] = p[i] in set(np.asarray(valid_labels[i]).tolist())
    return float(np.mean(right))


def disagreement_sweep(preds: Any, labels: Any, *, is_error: Any | None = None) -> pd.DataFrame:
    """Method 1 relaxed: flag a label when at least k of the m experts' answers differ from it,
    for k = m (method 1 itself) down to 1.

    Parameters
    ----------
    preds : int array, shape (m, n)
        Each expert's answer (class index; -1 = no answer, which counts as disagreeing).
    labels : int array, shape (n,)
        The given labels.
    is_error : array, shape (n,), optional
        Ground truth of label errors (bool, or floats with NaN = unknown).

    Returns
    -------
    DataFrame, one row per k from m down to 1: ``k, n_flagged, detection_rate, precision``
    (truly wrong among flagged with known truth) and ``recall`` (flagged among the known
    errors).
    """
    p = to_numpy(preds)
    if p.ndim != 2:
        raise ValueError(f"preds: expected shape (m, n), got {p.shape}")
    y = label_array(labels, "labels")
    if p.shape[1] != len(y):
        raise ValueError(f"length mismatch: preds has {p.shape[1]} samples, labels has {len(y)}")
    m = p.shape[0]
    disagree = (p != y[None, :]).sum(axis=0)
    truth = _truth(is_error, len(y))
    known = ~np.isnan(truth)
    n_errors = truth[known].sum()
    rows = []
    for k in range(m, 0, -1):
        flagged = disagree >= k
        rated = flagged & known
        wrong = truth[rated].sum()
        rows.append({"k": k, "n_flagged": int(flagged.sum()), "detection_rate": float(flagged.mean()),
                     "precision": float(wrong / rated.sum()) if rated.any() else float("nan"),
                     "recall": float(wrong / n_errors) if n_errors > 0 else float("nan")})
    return pd.DataFrame(rows)
