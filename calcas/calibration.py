"""Calibration (paper §2.1, SPEC §1): temperature scaling and Platt scaling.

Both are fitted by minimising the NLL on the cal split, exactly (Newton's method on a
convex objective, to machine precision), never with a fixed-step optimiser. Both are
monotone maps, so neither changes the ranking of samples by confidence.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit

from ._validate import correct_array, float_array, label_array, same_length
from .confidence import _check_temperature, max_prob_confidence, softmax

if TYPE_CHECKING:  # records imports confidence only; no cycle at run time either way
    from .records import Records

_ROWS_PER_CHUNK = 128  # ~0.5 MB of fp32 logits per chunk: stays in cache, bounds extra memory


def _temperature_objective(z: np.ndarray, row_max: np.ndarray, margin: np.ndarray,
                           beta: float, scale: float = 1.0) -> tuple[float, float, float]:
    """NLL(beta) of softmax(beta * z / scale) and its first two derivatives in beta.

    With m = row max and d = m - z_label >= 0:
      NLL   = mean(beta * d + log S0),          S_k = sum_j exp(beta (z_j - m)) (z_j - m)^k
      NLL'  = mean(d + S1 / S0)
      NLL'' = mean(S2 / S0 - (S1 / S0)^2)       (a variance, so NLL is convex in beta)
    Computed in row chunks so memory stays at a few MB beyond the logits themselves.
    ``scale`` (a power of two, so dividing by it is exact) brings logits of any magnitude to
    a range where neither exp nor the squares in S2 over- or underflow; ``margin`` is already
    divided by it.
    """
    n, C = z.shape
    row_max = row_max.astype(z.dtype, copy=False)  # subtract in the logits' own precision
    s0, s1, s2 = np.empty(n), np.empty(n), np.empty(n)
    shifted = np.empty((min(n, _ROWS_PER_CHUNK), C), dtype=z.dtype)
    weights = np.empty_like(shifted)
    for start in range(0, n, _ROWS_PER_CHUNK):
        stop = min(start + _ROWS_PER_CHUNK, n)
        x, w = shifted[: stop - start], weights[: stop - start]
        np.subtract(z[start:stop], row_max[start:stop, None], out=x)
        if scale != 1.0:
            np.divide(x, z.dtype.type(scale), out=x)  # not x * (1 / scale): 1 / scale overflows for subnormal spreads
        np.multiply(x, z.dtype.type(beta), out=w)
        np.exp(w, out=w)
        s0[start:stop] = w.sum(axis=1)
        np.multiply(w, x, out=w)
        s1[start:stop] = w.sum(axis=1)
        np.multiply(w, x, out=w)
        s2[start:stop] = w.sum(axis=1)
    mean1 = s1 / s0
    f = float(np.mean(beta * margin + np.log(s0)))
    g = float(np.mean(margin + mean1))
    h = float(np.mean(s2 / s0 - mean1 ** 2))
    return f, g, h


def _newton_beta(z: np.ndarray, row_max: np.ndarray, margin: np.ndarray, beta: float,
                 max_iter: int, rtol: float = 1e-7, scale: float = 1.0) -> tuple[float, int]:
    """Damped Newton on the convex 1-D NLL(beta), beta > 0; returns (beta, iterations)."""
    f_prev = np.inf
    beta_prev = beta
    for it in range(1, max_iter + 1):
        f, g, h = _temperature_objective(z, row_max, margin, beta, scale)
        if f > f_prev + 1e-14 * abs(f_prev):  # overshoot: back off halfway (convexity makes this safe)
            beta = 0.5 * (beta + beta_prev)
            continue
        if h <= 0:
            # The caller rules out constant rows, so a zero curvature means beta * z is so large
            # that exp underflows to one-hot rows (logits on a scale of 1e8, say): shrink beta.
            if beta < 1e-300:
                raise ValueError("logits: every row is constant, the NLL does not depend on the temperature")
            beta_prev, beta = beta, beta / 16.0
            continue
        step = -g / h
        # Newton decrement: g^2 / (2h) estimates how far f is above its minimum.
        if g * g / (2.0 * h) <= rtol * max(1.0, abs(f)):
            return beta + step if beta + step > 0 else beta, it
        f_prev, beta_prev = f, beta
        beta = beta + step if beta + step > 0 else 0.5 * beta
    raise RuntimeError(f"temperature fit did not converge in {max_iter} iterations (beta={beta:.6g})")


def fit_temperature(logits: Any, labels: Any, *, max_iter: int = 100) -> float:
    """Temperature T > 0 minimising the NLL of ``labels`` under ``softmax(logits / T)``.

    Solved exactly as a 1-D convex problem in beta = 1/T (SPEC §1): Newton on a row sample
    gives a starting point, then Newton steps over all rows until the estimated NLL gap
    before the last step is below 1e-7 relative (the last step squares it). fp32 logits
    are processed in fp32 chunks (no full-size copy).

    Parameters
    ----------
    logits : array, shape (n, C)
        Raw logits (not probabilities), numpy or torch, float32 or float64.
    labels : int array, shape (n,)
        Class indices in [0, C).

    Returns
    -------
    temperature : float

    Raises
    ------
    ValueError
        On NaN/inf logits, bad labels, or when no finite T > 0 minimises the NLL: the logits
        carry no information about the labels (optimum T = inf), or every label is the
        strict argmax (optimum T -> 0).
    """
    z = float_array(logits, "logits", ndim=2, keep_float32=True)
    y = label_array(labels, "labels", z.shape[1])
    n = same_length(logits=z, labels=y)
    row_max = z.max(axis=1).astype(np.float64)
    label_logit = z[np.arange(n), y].astype(np.float64)
    row_min = z.min(axis=1).astype(np.float64)
    margin = row_max - label_logit
    if np.all(row_max == row_min):
        raise ValueError("logits: every row is constant, so the NLL does not depend on the temperature")
    if np.all(margin == 0):
        raise ValueError("labels: every label is the model's top-1 class; the NLL keeps falling as "
                         "T -> 0, so there is no finite temperature to fit")
    # NLL'(beta=0) = mean(row mean - label logit); rounding of the row means is ~eps * |z|.
    rounding = 1e-12 * max(float(np.abs(row_max).max()), float(np.abs(row_min).max()))
    if float(np.mean(z.mean(axis=1, dtype=np.float64) - label_logit)) >= -rounding:
        raise ValueError("labels: the logits rank the labels no better than uniform; the NLL is "
                         "minimised at T = inf, so temperature scaling does not apply")
    # Temperature is scale-equivariant (T(s z) = s T(z)); fit logits far from unit spread in
    # units of a power of two near their spread, so exp and the squares in NLL'' stay finite.
    spread = float(np.max(row_max - row_min))
    scale = 1.0 if 2.0 ** -8 <= spread <= 2.0 ** 8 else float(2.0 ** np.round(np.log2(spread)))
    margin = margin / scale
    beta = 1.0
    if n > 8192:  # a cheap start from a row sample; the full-data steps then converge in ~2 passes
        rows = np.random.default_rng(0).choice(n, 2048, replace=False)
        sub_margin = margin[rows]
        if np.any(sub_margin > 0):
            try:
                beta, _ = _newton_beta(z[rows], row_max[rows], sub_margin, 1.0, max_iter, rtol=1e-6,
                                       scale=scale)
            except (ValueError, RuntimeError):
                beta = 1.0
    beta, _ = _newton_beta(z, row_max, margin, beta, max_iter, scale=scale)
    return scale / beta


def temperature_nll(logits: Any, labels: Any, temperature: float) -> float:
    """Mean NLL of ``labels`` under ``softmax(logits / temperature)`` (logits, not probabilities)."""
    z = float_array(logits, "logits", ndim=2)
    y = label_array(labels, "labels", z.shape[1])
    same_length(logits=z, labels=y)
    row_max = z.max(axis=1)
    f, _, _ = _temperature_objective(z, row_max, row_max - z[np.arange(len(z)), y],
                                     1.0 / _check_temperature(temperature))
    return f


def fit_platt(scores: Any, verified: Any, *, max_iter: int = 100) -> tuple[float, float]:
    """(a, b) minimising the binary NLL of ``verified`` under ``sigmoid(a * score + b)``.

    Unregularised logistic regression on one feature, by Newton's method with step halving.

    Parameters
    ----------
    scores : array, shape (n,)
        Real-valued scores: the mean sampled-token logit for sequences, or
        :func:`calcas.confidence.top1_logit` of a classifier's top-1 probability.
    verified : array, shape (n,)
        Verifier score of each answer, 0/1 (or in [0, 1]).

    Returns
    -------
    (a, b) : floats.

    Raises
    ------
    ValueError
        When ``verified`` holds one outcome only, ``scores`` are all equal, or the scores
        separate the outcomes perfectly (no finite optimum).
    """
    s = float_array(scores, "scores", ndim=1)
    v = correct_array(verified, "verified")
    same_length(scores=s, verified=v)
    if v.min() == v.max():
        raise ValueError(f"verified: all values are {v[0]:g}; Platt scaling needs both correct and "
                         "wrong answers")
    if s.min() == s.max():
        raise ValueError(f"scores: all values equal {s[0]:.6g}; Platt scaling needs varying scores")
    pos, neg = s[v > 0], s[v < 1]  # a soft label (0 < v < 1) counts on both sides
    if neg.max() <= pos.min() or pos.max() <= neg.min():  # (quasi-)separation: no finite MLE
        raise ValueError("scores: they separate verified outcomes perfectly, so the Platt slope "
                         "grows without bound (no finite optimum)")
    # Standardise for conditioning; undo at the end. Divided by the largest deviation first, so
    # that the spread is computed on numbers near 1 at any scale (1e-200 or 1e155).
    mu = s.mean()
    x = s - mu
    spread = float(np.abs(x).max())
    x /= spread
    sd = float(x.std())
    x /= sd
    n = len(x)
    # Three working arrays, reused in every step: peak memory stays near 2x the inputs.
    t, u, w = np.empty(n), np.empty(n), np.empty(n)

    def objective(a: float, b: float) -> float:
        # NLL = mean(log(1 + e^t) - v t), the difference taken row by row: two large means
        # subtracted would lose the digits the line search compares near the optimum
        np.multiply(x, a, out=t)
        np.add(t, b, out=t)
        np.logaddexp(0.0, t, out=u)
        np.multiply(v, t, out=w)  # w is free here: the Newton step is already taken
        return float(np.subtract(u, w, out=u).mean())

    a, b = 0.0, float(np.log(v.mean() / (1.0 - v.mean())))
    f = objective(a, b)
    for _ in range(max_iter):
        np.multiply(x, a, out=t)
        t += b
        p = expit(t, out=t)
        np.subtract(p, v, out=u)  # the residual r = p - v
        g = np.array([np.dot(u, x) / n, u.mean()])
        np.subtract(1.0, p, out=w)
        w *= p  # the weight p (1 - p)
        np.multiply(w, x, out=u)  # w x
        hxx, hx, h1 = np.dot(u, x) / n, u.mean(), w.mean()
        H = np.array([[hxx, hx], [hx, h1]])
        step = np.linalg.solve(H, -g)
        decrement = float(-g @ step)
        if decrement / 2.0 <= 1e-15:
            break
        step_size = 1.0
        while True:
            a_new, b_new = a + step_size * step[0], b + step_size * step[1]
            f_new = objective(a_new, b_new)
            if f_new <= f - 0.25 * step_size * decrement or step_size < 1e-12:
                break
            step_size *= 0.5
        a, b, f = a_new, b_new, f_new
        if abs(a) > 1e4:
            raise ValueError("scores: they separate verified outcomes perfectly, so the Platt slope "
                             "grows without bound (no finite optimum)")
    else:
        raise RuntimeError(f"Platt fit did not converge in {max_iter} iterations")
    slope = a / sd / spread  # per unit of the original score
    return float(slope), float(b - slope * mu)


class TemperatureScaling:
    """Temperature scaling: ``softmax(z / T)`` with T fitted on cal (scikit-learn style).

    Parameters
    ----------
    max_iter : int
        Newton iteration cap (the fit usually needs 2-6).

    Attributes
    ----------
    temperature_ : float
        The fitted T.

    Examples
    --------
    >>> ts = TemperatureScaling().fit(cal_logits, cal_labels)   # doctest: +SKIP
    >>> test_confidence = ts.transform(test_logits)             # doctest: +SKIP
    """

    def __init__(self, max_iter: int = 100):
        self.max_iter = max_iter

    def fit(self, logits: Any, labels: Any) -> "TemperatureScaling":
        """Fit T on raw ``logits`` (n, C) and integer ``labels`` (n,); returns self."""
        self.temperature_ = fit_temperature(logits, labels, max_iter=self.max_iter)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "temperature_"):
            raise RuntimeError("TemperatureScaling is not fitted; call fit(logits, labels) first")

    def predict_proba(self, logits: Any) -> np.ndarray:
        """Calibrated class probabilities, shape (n, C), from raw ``logits`` (n, C)."""
        self._check_fitted()
        return softmax(logits, self.temperature_)

    def transform(self, logits: Any) -> np.ndarray:
        """Calibrated confidence of the top-1 class, shape (n,), from raw ``logits`` (n, C)."""
        self._check_fitted()
        return max_prob_confidence(logits, self.temperature_)[0]


class PlattScaling:
    """Platt scaling: ``sigmoid(a * score + b)`` fitted on cal against the verifier.

    Attributes
    ----------
    a_, b_ : float
        Fitted slope and intercept.
    """

    def __init__(self, max_iter: int = 100):
        self.max_iter = max_iter

    def fit(self, scores: Any, verified: Any) -> "PlattScaling":
        """Fit on real-valued ``scores`` (n,) and 0/1 ``verified`` (n,); returns self."""
        self.a_, self.b_ = fit_platt(scores, verified, max_iter=self.max_iter)
        return self

    def predict_proba(self, scores: Any) -> np.ndarray:
        """Calibrated probability that each answer is correct, shape (n,), from ``scores`` (n,)."""
        if not hasattr(self, "a_"):
            raise RuntimeError("PlattScaling is not fitted; call fit(scores, verified) first")
        return expit(self.a_ * float_array(scores, "scores", ndim=1) + self.b_)

    transform = predict_proba


@dataclasses.dataclass(frozen=True)
class CalibratedRecords:
    """What :func:`calibrate_records` returns: every array has one entry per record row."""

    method: str                       # "temperature" or "platt"
    calibrator: TemperatureScaling | PlattScaling
    raw: np.ndarray                   # (n,) uncalibrated confidence in pred
    calibrated: np.ndarray            # (n,) calibrated confidence in pred
    probabilities: np.ndarray | None  # (n, C) calibrated class probabilities (temperature only)


def calibrate_records(records: "Records", cal_mask: Any, *, method: str = "auto") -> CalibratedRecords:
    """Fit a calibrator on the cal rows of a record set and apply it to every row.

    Parameters
    ----------
    records : calcas.Records
        A record set; its confidence source decides what ``method="auto"`` does: temperature
        scaling on ``logits`` (against ``label``, fitted on the cal rows whose label is known;
        Platt scaling when none is), Platt scaling on ``confidence`` (via log(c / (1 - c))) or
        ``score`` (against ``verified``).
    cal_mask : bool array, shape (n,)
        True for the rows to fit on.
    method : {"auto", "temperature", "platt"}
        Platt also works on logits (on the top-1 probability's log-odds).

    Returns
    -------
    CalibratedRecords
        ``raw`` is the uncalibrated confidence (max softmax, the ``confidence`` column, or
        sigmoid(score) for a score set).
    """
    mask = np.asarray(cal_mask, dtype=bool)
    if mask.shape != (records.n,):
        raise ValueError(f"cal_mask: expected shape ({records.n},), got {mask.shape}")
    if not mask.any():
        raise ValueError("cal_mask: selects no rows to fit on")
    labelled = mask & (records.label >= 0)  # the temperature's likelihood needs each row's class
    if method == "auto":
        method = "temperature" if records.logits is not None and labelled.any() else "platt"
    if method == "temperature":
        if records.logits is None:
            raise ValueError(f"method: temperature scaling needs logits; this record set carries "
                             f"{records.source!r} (use 'platt')")
        if not labelled.any():
            raise ValueError("method: temperature scaling needs known labels on the cal rows, and every one there "
                             "is unknown (-1); use 'platt', which fits on verified")
        ts = TemperatureScaling().fit(records.logits[labelled], records.label[labelled])
        probabilities = ts.predict_proba(records.logits)
        # the confidence in pred; where pred is unknown (-1), in the largest class, as raw_confidence
        calibrated = np.where(records.pred >= 0, probabilities[np.arange(records.n), np.maximum(records.pred, 0)],
                              probabilities.max(axis=1))
        return CalibratedRecords("temperature", ts, records.raw_confidence(), calibrated, probabilities)
    if method == "platt":
        score = records.platt_score()
        ps = PlattScaling().fit(score[mask], records.verified[mask])
        # A score has no confidence of its own: sigmoid(score) stands in as the uncalibrated one.
        raw = records.raw_confidence() if records.score is None else expit(score)
        return CalibratedRecords("platt", ps, raw, ps.transform(score), None)
    raise ValueError(f"method: expected 'auto', 'temperature' or 'platt', got {method!r}")
