"""The ECE estimator study (chapter "How wrong can an ECE be?", :mod:`calcas.chapters.estimators`,
``benchmarks/bench_ece_study.py``): how biased the plug-in, debiased and smooth ECE are, how often
the bootstrap intervals hold the truth, on synthetic models whose true calibration error is known,
and the coverage of every interval the book decides from (:func:`deciding_coverage`).

The model: confidences ``c ~ Beta(9, 1)`` (mean 0.9, most mass above 0.8: the confidences of a
classifier about 90% accurate), and ``correct ~ Bernoulli(clip(c - a sin(pi c), 0, 1))``, so
the model is over-confident by ``a sin(pi c)`` at confidence ``c`` (``a = 0``: perfectly
calibrated). Its true ECE is ``E|c - P(correct | c)|`` under the Beta, by numerical
integration. The gap never changes sign, so binning cancels nothing: the true ECE of any
binning (the population value the binned estimators aim at) is the same number.

Each configuration (amplitude a, sample size n, bin count N) draws ``draws`` data sets at
once, as ``(draws, n)`` arrays. Beta draws have no ties, so the equal-count bins of a sorted
row are its ``np.array_split`` groups, exactly the bins of :func:`calcas.equal_count_edges`,
and the plug-in and debiased ECE of every draw come from per-bin sums (the same kernel as
:func:`calcas.ece`). The smooth ECE is :func:`calcas.smooth_ece`, draw by draw.

Intervals. :func:`calcas.ece_bootstrap` and :func:`calcas.ece_interval` resample rows and
re-fit the bins, O(n) per replicate: 500 draws x 9 configurations x 200 replicates would take
many minutes. The study resamples each draw's bins instead, vectorised over draws and
replicates: a resample's bin counts are multinomial, its correct answers per bin binomial
(exact for 0/1 scores once the bins are fixed), its confidence sums normal around the bin's
mean with the bin's spread (a bin's confidences span a few thousandths), and the redraws
under perfect calibration binomial at the bin's mean confidence. This keeps the bins of the
data where the functions re-fit them on each resample; :func:`interval_check` measures how
far the two are apart on draws where both are run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import integrate, stats

from ._validate import check_level, check_positive_int
from .metrics import (_corrected_interval, _debiased_ece, _plugin_ece, _smooth_ece_rows, ece_bootstrap, ece_interval,
                      proportion_interval,
                      smooth_ece)

#: Beta parameters of the confidences: mean 0.9, like a 90%-accurate classifier's.
BETA = (9.0, 1.0)
SIZES = (500, 2000, 20_000)
BIN_COUNTS = (5, 15, 30)
ESTIMATOR_NAMES = {"plugin": "plug-in", "debiased": "debiased", "smooth": "smooth"}
INTERVAL_NAMES = {"percentile": "percentile", "corrected": "ece_interval"}
# n for the smooth ECE's large-n limit (noise-free scores P(correct | c)).
_SMOOTH_LIMIT_N = 1_000_000


def accuracy_at(c: np.ndarray, amplitude: float) -> np.ndarray:
    """``P(correct | c) = clip(c - a sin(pi c), 0, 1)`` of the study's model."""
    return np.clip(c - amplitude * np.sin(np.pi * c), 0.0, 1.0)


def true_ece(amplitude: float, beta: tuple[float, float] = BETA) -> float:
    """``E|c - P(correct | c)|`` for ``c ~ Beta(*beta)`` (scipy.integrate.quad)."""
    density = stats.beta(*beta).pdf
    value, _ = integrate.quad(lambda c: abs(c - accuracy_at(np.float64(c), amplitude)) * density(c), 0.0, 1.0,
                              limit=200)
    return float(value)


def smooth_ece_limit(amplitude: float, seed: int = 0, n: int = _SMOOTH_LIMIT_N) -> float:
    """The smooth ECE's large-n limit: :func:`calcas.smooth_ece` on ``n`` confidences with the
    noise-free scores ``P(correct | c)`` (the smoothed residual is linear in the scores, so only
    the confidences' own sampling is left). It measures a smoothed miscalibration, not the
    ECE: this, not :func:`true_ece`, is what the smooth ECE's bias is measured against."""
    c = np.random.default_rng(seed).beta(*BETA, n)
    return smooth_ece(c, accuracy_at(c, amplitude))


def draw(n: int, draws: int, amplitude: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``draws`` data sets of the model, each row sorted by confidence: (c, correct), (draws, n)."""
    c = np.sort(rng.beta(*BETA, size=(draws, n)), axis=1)
    return c, (rng.random((draws, n)) < accuracy_at(c, amplitude)).astype(np.float64)


def bin_sums(c: np.ndarray, v: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    """Per-bin count, sums of c, c^2 and v of rows sorted by confidence without ties, in the
    equal-count bins (``np.array_split`` groups), shape (draws, n_bins) each."""
    sizes = np.array([len(g) for g in np.array_split(np.arange(c.shape[1]), n_bins)])
    starts = np.cumsum(sizes) - sizes
    count = np.broadcast_to(sizes.astype(np.float64), (c.shape[0], n_bins))
    return (count, *(np.add.reduceat(x, starts, axis=1) for x in (c, c * c, v)))


def _binned_replicates(count: np.ndarray, sum_c: np.ndarray, sum_cc: np.ndarray, sum_v: np.ndarray, n_boot: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, "_Resample"]:
    """Plug-in and debiased ECE of ``n_boot`` bin-level resamples of each draw, and the debiased
    ECE of ``n_boot`` redraws under perfect calibration: each (draws, n_boot); and the resample
    itself, for a second confidence of the same rows (:func:`_paired_replicates`)."""
    n = int(count[0].sum())
    mean_c = sum_c / count
    sd_c = np.sqrt(np.maximum(sum_cc / count - mean_c ** 2, 0.0))
    boot_count = rng.multinomial(n, count / n, size=(n_boot, *count.shape[:-1])).astype(np.float64)
    boot_v = rng.binomial(boot_count.astype(np.int64), sum_v / count).astype(np.float64)
    noise = rng.standard_normal(boot_count.shape)
    boot_c = boot_count * mean_c + np.sqrt(boot_count) * sd_c * noise
    plugin = _plugin_ece(boot_count, boot_c, boot_v).T
    debiased = _debiased_ece(boot_count, boot_c, boot_v, boot_v).T
    null_v = rng.binomial(count.astype(np.int64), mean_c, size=(n_boot, *count.shape)).astype(np.float64)
    null = _debiased_ece(count, sum_c, null_v, null_v).T
    return plugin, debiased, null, _Resample(boot_count, boot_v, noise)


@dataclass(frozen=True)
class _Resample:
    """A bin-level resample of every draw: counts and correct answers per bin, and the standard
    normal noise of its confidence sums, each (n_boot, draws, n_bins)."""
    count: np.ndarray
    correct: np.ndarray
    noise: np.ndarray


def _paired_replicates(count: np.ndarray, sum_g: np.ndarray, sum_gg: np.ndarray, resample: _Resample,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Debiased ECE of a second confidence g of the same rows (same bins: g is increasing) on the
    same resamples as :func:`_binned_replicates`, and its redraws under perfect calibration:
    each (draws, n_boot). Only the null redraws take new random numbers."""
    mean_g = sum_g / count
    sd_g = np.sqrt(np.maximum(sum_gg / count - mean_g ** 2, 0.0))
    boot_g = resample.count * mean_g + np.sqrt(resample.count) * sd_g * resample.noise
    debiased = _debiased_ece(resample.count, boot_g, resample.correct, resample.correct).T
    null_v = rng.binomial(count.astype(np.int64), mean_g, size=resample.count.shape).astype(np.float64)
    return debiased, _debiased_ece(count, sum_g, null_v, null_v).T


@dataclass
class StudyResult:
    """The study's tables. ``estimates``: one row per (amplitude, n, n_bins, estimator) with the
    target, mean, bias and RMSE over draws (the smooth ECE has no bins: its rows repeat for
    every n_bins). ``intervals``: one row per (amplitude, n, n_bins, interval) with coverage of
    the true ECE and mean width. ``differences``: coverage of the intervals of a difference of
    true ECEs (:func:`difference_cases`), rows as :func:`deciding_coverage`'s. ``seconds``: wall
    time of :func:`run_study`."""
    estimates: pd.DataFrame
    intervals: pd.DataFrame
    differences: pd.DataFrame
    truth: dict[float, dict[str, float]]
    draws: int
    n_boot: int
    level: float
    seconds: float


def run_study(draws: int = 500, amplitudes: Sequence[float] = (0.03, 0.0), n_boot: int = 200, seed: int = 0, *,
              sizes: Sequence[int] = SIZES, bin_counts: Sequence[int] = BIN_COUNTS, level: float = 0.95) -> StudyResult:
    """Bias and RMSE of the plug-in, debiased and smooth ECE, and coverage and width of the
    percentile (:func:`calcas.ece_bootstrap`) and corrected (:func:`calcas.ece_interval`)
    intervals, ``draws`` data sets per (amplitude, n, n_bins); see the module docstring. Also
    the coverage of the intervals of a difference of true ECEs: :func:`calcas.ece_difference_interval`
    on a second confidence of the same rows (:func:`difference_cases`, on the same bin-level
    resamples), and two independent data sets of the model (draw d against draw d + 1, true
    difference 0: the book's cal and test halves).

    Parameters
    ----------
    draws : int, default 500
        Data sets per configuration, >= 2.
    amplitudes : sequence of float, default (0.03, 0.0)
        Miscalibration amplitudes a in [0, 0.5] (duplicates dropped).
    n_boot : int, default 200
        Replicates per interval, >= 1.
    seed : int, default 0
        Seed of every draw (``numpy.random.default_rng([seed, a, n, N])``).
    sizes, bin_counts
        Sample sizes and bin counts (every bin count <= every size).
    level : float, default 0.95
        Interval level.
    """
    start = time.perf_counter()
    draws = check_positive_int(draws, "draws")
    if draws < 2:
        raise ValueError(f"draws: must be >= 2 (a bias needs a spread), got {draws}")
    n_boot = check_positive_int(n_boot, "n_boot")
    level = check_level(level)
    amplitudes = list(dict.fromkeys(float(a) for a in amplitudes))
    if not amplitudes or any(not 0.0 <= a <= 0.5 for a in amplitudes):
        raise ValueError(f"amplitudes: expected values in [0, 0.5], got {amplitudes}")
    if max(bin_counts) > min(sizes):
        raise ValueError(f"bin_counts: {max(bin_counts)} bins need at least as many samples, smallest n is {min(sizes)}")
    estimates, intervals, differences, truth = [], [], [], {}
    cases = {a: {case: (g, _true_ece_of(g, a)) for case, g in difference_cases(a).items()} for a in amplitudes}
    for i, a in enumerate(amplitudes):
        truth[a] = {"ece": true_ece(a), "smooth": smooth_ece_limit(a, seed)}
        for n in sizes:
            rng = np.random.default_rng([seed, i, n])
            c, v = draw(n, draws, a, rng)
            smooth = _smooth_ece_rows(c, v)
            for n_bins in bin_counts:
                count, sum_c, sum_cc, sum_v = bin_sums(c, v, n_bins)
                values = {"plugin": _plugin_ece(count, sum_c, sum_v),
                          "debiased": _debiased_ece(count, sum_c, sum_v, sum_v), "smooth": smooth}
                for name, x in values.items():
                    target = truth[a]["smooth" if name == "smooth" else "ece"]
                    estimates.append({"amplitude": a, "n": n, "n_bins": n_bins, "estimator": ESTIMATOR_NAMES[name],
                                      "target": target, "mean": x.mean(), "bias": x.mean() - target,
                                      "rmse": float(np.sqrt(np.mean((x - target) ** 2)))})
                boot_p, boot_d, null, resample = _binned_replicates(count, sum_c, sum_cc, sum_v, n_boot,
                                                                    np.random.default_rng([seed, i, n, n_bins]))
                alpha = (1.0 - level) / 2.0
                bounds = {"percentile": tuple(np.quantile(boot_p, [alpha, 1.0 - alpha], axis=1)),
                          "corrected": _corrected_interval(values["debiased"], values["plugin"], boot_d, null, level)}
                for name, (low, high) in bounds.items():
                    t = truth[a]["ece"]
                    intervals.append({"amplitude": a, "n": n, "n_bins": n_bins, "interval": INTERVAL_NAMES[name],
                                      "coverage": float(np.mean((low <= t) & (t <= high))),
                                      "width": float(np.mean(high - low)), "below": float(np.mean(high < t)),
                                      "above": float(np.mean(low > t)), "excludes_zero": float(np.mean(low > 0))})
                low, high = bounds["corrected"]
                differences.append(_coverage_row("ece_halves_interval", f"a = {a:g}, two data sets", n, n_bins, 0.0,
                                                 low[:-1] - high[1:], high[:-1] - low[1:]))
                for k, (case, (g, g_truth)) in enumerate(cases[a].items()):
                    _, sum_g, sum_gg, _ = bin_sums(g(c), v, n_bins)
                    g_boot, g_null = _paired_replicates(count, sum_g, sum_gg, resample,
                                                        np.random.default_rng([seed, i, n, n_bins, 1 + k]))
                    g_low, g_high = _corrected_interval(_debiased_ece(count, sum_g, sum_v, sum_v),
                                                        _plugin_ece(count, sum_g, sum_v), g_boot, g_null, level)
                    differences.append(_coverage_row("ece_difference_interval", case, n, n_bins,
                                                     truth[a]["ece"] - g_truth, low - g_high, high - g_low))
    return StudyResult(pd.DataFrame(estimates), pd.DataFrame(intervals), pd.DataFrame(differences), truth, draws,
                       n_boot, level, time.perf_counter() - start)


def interval_check(n: int = 2000, n_bins: int = 15, amplitude: float = 0.03, draws: int = 10, n_boot: int = 200,
                   seed: int = 0) -> pd.DataFrame:
    """The study's bin-level intervals beside :func:`calcas.ece_bootstrap` and
    :func:`calcas.ece_interval` run on the same ``draws`` data sets: one row per draw and
    interval with both bounds from each (the replicates differ, so the bounds agree within
    Monte Carlo noise plus the effect of re-fitting the bins)."""
    c, v = draw(n, draws, amplitude, np.random.default_rng([seed, 99, n]))
    count, sum_c, sum_cc, sum_v = bin_sums(c, v, n_bins)
    plugin, debiased = _plugin_ece(count, sum_c, sum_v), _debiased_ece(count, sum_c, sum_v, sum_v)
    boot_p, boot_d, null, _ = _binned_replicates(count, sum_c, sum_cc, sum_v, n_boot, np.random.default_rng([seed, 98]))
    p_low, p_high = np.quantile(boot_p, [0.025, 0.975], axis=1)
    c_low, c_high = _corrected_interval(debiased, plugin, boot_d, null, 0.95)
    rows = []
    for d in range(draws):
        _, fl, fh = ece_bootstrap(c[d], v[d], n_bins, n_boot=n_boot, seed=d)
        rows.append({"draw": d, "interval": INTERVAL_NAMES["percentile"], "study_low": p_low[d],
                     "study_high": p_high[d], "function_low": fl, "function_high": fh})
        _, fl, fh = ece_interval(c[d], v[d], n_bins, n_boot=n_boot, seed=d)
        rows.append({"draw": d, "interval": INTERVAL_NAMES["corrected"], "study_low": c_low[d],
                     "study_high": c_high[d], "function_low": fl, "function_high": fh})
    table = pd.DataFrame(rows)
    table.attrs.update(n=n, n_bins=n_bins, amplitude=amplitude)
    return table


def function_coverage(n: int, n_bins: int = 15, amplitude: float = 0.03, draws: int = 500, n_boot: int = 200,
                      seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Coverage and mean width of :func:`calcas.ece_bootstrap` and :func:`calcas.ece_interval`
    themselves (not the study's bin-level stand-in) over ``draws`` data sets of the study's
    model: one row per interval. Slow (both functions on every draw, about 0.1 s each at
    n = 2,000); the benchmark runs it with ``--real-functions``."""
    c, v = draw(n, draws, amplitude, np.random.default_rng([seed, 97, n]))
    truth = true_ece(amplitude)
    rows = []
    for name, fn in (("percentile", ece_bootstrap), ("corrected", ece_interval)):
        bounds = np.array([fn(c[d], v[d], n_bins, n_boot=n_boot, level=level, seed=d)[1:] for d in range(draws)])
        low, high = bounds[:, 0], bounds[:, 1]
        rows.append({"amplitude": amplitude, "n": n, "n_bins": n_bins, "interval": INTERVAL_NAMES[name],
                     "coverage": float(np.mean((low <= truth) & (truth <= high))),
                     "width": float(np.mean(high - low)), "draws": draws})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the intervals that decide

def difference_cases(amplitude: float) -> dict[str, Any]:
    """The second confidences g(c) of the same rows that :func:`calcas.ece_difference_interval` is
    measured on, for raw confidences of the model at ``amplitude``: for a > 0, perfectly
    calibrated (g = P(correct | c)) and half the gap removed; for a = 0, made over-confident as
    by the gap the model at a = 0.03 has. Every g is increasing, so c and g(c) sort the rows alike and share
    their equal-count bins."""
    if amplitude > 0:
        return {f"a = {amplitude:g}, then perfectly calibrated": lambda c: accuracy_at(c, amplitude),
                f"a = {amplitude:g}, then half the gap left": lambda c: accuracy_at(c, amplitude / 2)}
    return {"a = 0, then made under-confident (by 0.03 sin(pi c))": lambda c: accuracy_at(c, 0.03)}


#: Paired accuracy differences: per row, +1 (only the first right), -1 (only the second), or 0,
#: with these probabilities of +1 and -1.
PAIRED_CASES = {"+0.02 (0.05 vs 0.03 discordant)": (0.05, 0.03), "0 (0.1 vs 0.1 discordant)": (0.1, 0.1),
                "+0.01 (0.01 vs 0 discordant)": (0.01, 0.0)}
#: Proportions whose Wilson interval is measured exactly, and the sample sizes.
PROPORTIONS = (0.01, 0.03, 0.1, 0.5, 0.9)
PROPORTION_SIZES = (40, 100, 500, 2000, 20_000)


def _true_ece_of(g: Any, amplitude: float) -> float:
    """``E|g(c) - P(correct | c)|`` for the study's model at ``amplitude`` (g increasing)."""
    density = stats.beta(*BETA).pdf
    value, _ = integrate.quad(lambda c: abs(g(np.float64(c)) - accuracy_at(np.float64(c), amplitude)) * density(c),
                              0.0, 1.0, limit=200)
    return float(value)


def _coverage_row(interval: str, case: str, n: int, n_bins: int | None, truth: float, low: np.ndarray,
                  high: np.ndarray) -> dict[str, Any]:
    return {"interval": interval, "case": case, "n": n, "n_bins": n_bins, "truth": truth,
            "coverage": float(np.mean((low <= truth) & (truth <= high))), "width": float(np.mean(high - low)),
            "excludes_zero": float(np.mean((low > 0) | (high < 0))), "draws": int(len(low))}


def _wilson_coverage(p: float, n: int, level: float) -> tuple[float, float]:
    """Exact coverage and mean width of :func:`calcas.proportion_interval` at (p, n): a sum over
    the binomial distribution of the count."""
    k = np.arange(n + 1)
    low, high = proportion_interval(k, np.full(n + 1, n), level=level)
    pmf = stats.binom.pmf(k, n, p)
    return float(pmf[(low <= p) & (p <= high)].sum()), float((pmf * (high - low)).sum())


def _wilson_difference_coverage(p: float, q: float, n: int, level: float) -> tuple[float, float]:
    """Exact coverage and mean width of ``difference_of_intervals`` of two Wilson intervals, of two
    independent proportions p and q on n rows each (counts within 9 standard deviations)."""
    def support(x: float) -> tuple[np.ndarray, np.ndarray]:
        spread = 9.0 * np.sqrt(n * x * (1 - x)) + 10
        k = np.arange(max(0, int(n * x - spread)), min(n, int(n * x + spread)) + 1)
        return k, stats.binom.pmf(k, n, x)
    (ka, pa), (kb, pb) = support(p), support(q)
    la, ha = proportion_interval(ka, np.full(len(ka), n), level=level)
    lb, hb = proportion_interval(kb, np.full(len(kb), n), level=level)
    low, high = la[:, None] - hb[None, :], ha[:, None] - lb[None, :]
    weight = pa[:, None] * pb[None, :]
    covered = (low <= p - q) & (p - q <= high)
    return float(weight[covered].sum()), float((weight * (high - low)).sum())


def deciding_coverage(result: StudyResult, seed: int = 0) -> pd.DataFrame:
    """Coverage of every interval a verdict of the book may be decided from, one row per case.

    - ``ece_interval``: the study's bin-level :func:`calcas.ece_interval` (the "corrected" rows
      of ``result.intervals``), every amplitude, n and N;
    - ``ece_difference_interval`` and ``ece_halves_interval``: ``result.differences`` (see
      :func:`run_study`);
    - ``paired_difference_interval``: :func:`calcas.paired_difference_interval` on
      :data:`PAIRED_CASES`, ``result.draws`` data sets of each of the study's sizes, with
      ``result.n_boot`` resamples; a resample of rows that are +1, -1 or 0 is a multinomial draw
      of the three counts, so the resamples are drawn that way (the same distribution);
    - ``proportion_interval``: the Wilson interval, exactly (a sum over the binomial), at
      :data:`PROPORTIONS` x :data:`PROPORTION_SIZES`;
    - ``proportion_difference_interval``: two Wilson intervals combined (``a_low - b_high``,
      ``a_high - b_low``), exactly, for neighbouring proportions of :data:`PROPORTIONS`.

    Returns
    -------
    DataFrame with columns ``interval, case, n, n_bins, truth, coverage, width, excludes_zero,
    draws``: ``excludes_zero`` is the share of data sets whose interval lies wholly on one side of
    0 (a verdict: its power where the truth is not 0, its false alarms where it is); ``draws``
    is 0 where the coverage is exact (``excludes_zero`` then None); ``n_bins`` None where there
    are no bins.
    """
    corrected = result.intervals[result.intervals["interval"] == INTERVAL_NAMES["corrected"]]
    rows = [{"interval": "ece_interval", "case": f"a = {r.amplitude:g}", "n": r.n, "n_bins": r.n_bins,
             "truth": result.truth[r.amplitude]["ece"], "coverage": r.coverage, "width": r.width,
             "excludes_zero": r.excludes_zero, "draws": result.draws} for r in corrected.itertuples()]
    rows += result.differences.to_dict("records")
    alpha = (1.0 - result.level) / 2.0
    sizes = sorted(set(result.intervals["n"]))
    for k, (case, (up, down)) in enumerate(PAIRED_CASES.items()):
        for n in sizes:
            rng = np.random.default_rng([seed, 70 + k, n])
            shares = rng.multinomial(n, [up, down, 1.0 - up - down], size=result.draws) / n
            boot = np.stack([rng.multinomial(n, s, size=result.n_boot) for s in shares])  # (draws, n_boot, 3)
            low, high = np.quantile((boot[..., 0] - boot[..., 1]) / n, [alpha, 1.0 - alpha], axis=1)
            rows.append(_coverage_row("paired_difference_interval", case, n, None, up - down, low, high))
    for p in PROPORTIONS:
        for n in PROPORTION_SIZES:
            coverage, width = _wilson_coverage(p, n, result.level)
            rows.append({"interval": "proportion_interval", "case": f"p = {p:g}", "n": n, "n_bins": None,
                         "truth": p, "coverage": coverage, "width": width, "excludes_zero": None, "draws": 0})
    for p, q in zip(PROPORTIONS, PROPORTIONS[1:]):
        for n in PROPORTION_SIZES:
            coverage, width = _wilson_difference_coverage(p, q, n, result.level)
            rows.append({"interval": "proportion_difference_interval", "case": f"p = {p:g} vs {q:g}", "n": n,
                         "n_bins": None, "truth": p - q, "coverage": coverage, "width": width,
                         "excludes_zero": None, "draws": 0})
    return pd.DataFrame(rows)


def wide_table(table: pd.DataFrame, columns: str, value: str, order: Sequence[str]) -> pd.DataFrame:
    """``value`` of a long table (``run_study``'s estimates or intervals) with one column per
    ``columns`` entry, in ``order``, and one row per (a, n, N), a from the largest down."""
    wide = table.pivot_table(index=["amplitude", "n", "n_bins"], columns=columns, values=value, sort=False)
    wide = wide.reindex(columns=[c for c in order if c in wide.columns])
    wide.index.names = ["a", "n", "N"]
    wide.columns.name = None
    wide = wide.sort_index(level=["a", "n", "N"], ascending=[False, True, True])
    # amplitudes as written ("0.03", "0"), not as floats printed to 4 decimals
    return wide.set_axis(wide.index.set_levels([f"{a:g}" for a in wide.index.levels[0]], level="a"))


def estimates_table(result: StudyResult, value: str = "bias") -> pd.DataFrame:
    """``value`` ("bias", "rmse" or "mean") per estimator (columns), one row per (a, n, N)."""
    return wide_table(result.estimates, "estimator", value, list(ESTIMATOR_NAMES.values()))


def intervals_table(result: StudyResult, value: str = "coverage") -> pd.DataFrame:
    """``value`` ("coverage", "width", "below" or "above") per interval (columns), one row per
    (a, n, N)."""
    return wide_table(result.intervals, "interval", value, list(INTERVAL_NAMES.values()))


def detectability_table(sizes: Sequence[int] = SIZES, bin_counts: Sequence[int] = BIN_COUNTS,
                        accuracy: float = 0.9) -> pd.DataFrame:
    """:func:`calcas.min_detectable_ece` for each n (rows) and bin count N (columns) at
    ``accuracy``, with the bin count :func:`calcas.default_n_bins` picks for each n."""
    from .metrics import default_n_bins, min_detectable_ece

    table = pd.DataFrame({f"N = {N}": [min_detectable_ece(n, N, accuracy=accuracy) for n in sizes]
                          for N in bin_counts}, index=pd.Index(list(sizes), name="n"))
    table["default_n_bins"] = [default_n_bins(n) for n in sizes]
    table["at default_n_bins"] = [min_detectable_ece(n, default_n_bins(n), accuracy=accuracy) for n in sizes]
    return table


def check_summary(check: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Mean absolute difference of the study's bounds from the functions', per interval."""
    return {name: {"low": float(np.mean(np.abs(rows["study_low"] - rows["function_low"]))),
                   "high": float(np.mean(np.abs(rows["study_high"] - rows["function_high"]))),
                   "draws": int(len(rows))}
            for name, rows in check.groupby("interval")}
