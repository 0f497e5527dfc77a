"""Seeded synthetic record sets for teaching and tests: several models with chosen accuracy,
miscalibration and error correlation, on labels with injected flips of known truth.

The model: for a sample of true class y, model j sees ``x_j = mu_j * onehot(y) + eps_j`` with
standard normal noise; the Bayes posterior is then ``softmax(mu_j * x_j)``, a perfectly
calibrated classifier whose accuracy is set by mu_j. The logits written out are
``scale_j * mu_j * x_j``: scale > 1 is over-confident, < 1 under-confident (on unflipped
labels temperature scaling recovers T ≈ scale; flips push T higher). Noise is shared between models with correlation rho, so their
mistakes fall on the same samples more often.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import integrate, optimize, stats

from .records import Records, make_records


def _accuracy_of_mu(mu: float, n_classes: int) -> float:
    """P(the true class has the largest x) = ∫ φ(t) Φ(t + mu)^(C-1) dt."""
    value, _ = integrate.quad(lambda t: stats.norm.pdf(t) * stats.norm.cdf(t + mu) ** (n_classes - 1),
                              -np.inf, np.inf)
    return value


def separation_for_accuracy(accuracy: float, n_classes: int) -> float:
    """The signal strength mu that gives a Bayes-calibrated classifier this top-1 accuracy."""
    if not 1.0 / n_classes < accuracy < 1.0:
        raise ValueError(f"accuracy: must be between chance (1/{n_classes}) and 1, got {accuracy}")
    return optimize.brentq(lambda mu: _accuracy_of_mu(mu, n_classes) - accuracy, 0.0, 40.0, xtol=1e-10)


def make_synthetic(n: int = 10_000, *, n_classes: int = 10, accuracy: Sequence[float] = (0.7, 0.9),
                   confidence_scale: Sequence[float] = (1.5, 1.0), correlation: float = 0.3,
                   flip_rate: float = 0.05, names: Sequence[str] | None = None,
                   seed: int = 0) -> dict[str, Records]:
    """Record sets (logits source) of several synthetic models on the same n samples.

    Parameters
    ----------
    n : int
        Number of samples.
    n_classes : int
        C >= 2.
    accuracy : sequence of float, one per model
        Top-1 accuracy against the true labels (before flips), each in (1/C, 1).
    confidence_scale : sequence of float, one per model
        Logit multiplier: 1 calibrated, > 1 over-confident, < 1 under-confident.
    correlation : float in [0, 1)
        Correlation of the models' noise (0 = independent mistakes).
    flip_rate : float in [0, 1)
        Share of given labels replaced by a uniformly drawn other class; ``is_noisy`` marks them.
    names : sequence of str, optional
        Model names (default "model_0", "model_1", ...).
    seed : int

    Returns
    -------
    dict name -> Records, rows aligned (same ids, same order). ``label`` is the given (possibly
    flipped) label and ``verified`` is ``pred == label``, what a verifier would report.
    """
    acc = [float(a) for a in accuracy]
    scale = [float(s) for s in confidence_scale]
    if len(acc) != len(scale):
        raise ValueError(f"confidence_scale: expected {len(acc)} values (one per accuracy), got {len(scale)}")
    if any(s <= 0 for s in scale):
        raise ValueError(f"confidence_scale: values must be > 0, got {scale}")
    names = [f"model_{j}" for j in range(len(acc))] if names is None else list(names)
    if len(names) != len(acc):
        raise ValueError(f"names: expected {len(acc)} names, got {len(names)}")
    if n_classes < 2:
        raise ValueError(f"n_classes: must be >= 2, got {n_classes}")
    if n < 2:
        raise ValueError(f"n: must be >= 2, got {n}")
    if not 0.0 <= correlation < 1.0:
        raise ValueError(f"correlation: must be in [0, 1), got {correlation}")
    if not 0.0 <= flip_rate < 1.0:
        raise ValueError(f"flip_rate: must be in [0, 1), got {flip_rate}")
    rng = np.random.default_rng(seed)
    true = rng.integers(0, n_classes, n)
    noisy = rng.random(n) < flip_rate
    labels = true.copy()
    labels[noisy] = (true[noisy] + rng.integers(1, n_classes, noisy.sum())) % n_classes
    shared = rng.standard_normal((n, n_classes))
    onehot = np.eye(n_classes)[true]
    ids = np.array([f"s{i:07d}" for i in range(n)])
    out = {}
    for name, a, s in zip(names, acc, scale):
        mu = separation_for_accuracy(a, n_classes)
        noise = np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * rng.standard_normal((n, n_classes))
        logits = (s * mu * (mu * onehot + noise)).astype(np.float32)
        out[name] = make_records(ids, logits.argmax(axis=1), label=labels, logits=logits, is_noisy=noisy,
                                 manifest={"model": name, "dataset": "synthetic", "parameters": {
                                     "n": n, "n_classes": n_classes, "accuracy": a, "confidence_scale": s,
                                     "correlation": correlation, "flip_rate": flip_rate, "seed": seed}})
    return out
