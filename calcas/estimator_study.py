"""The ECE estimator study (chapter "How wrong can an ECE be?", ``benchmarks/bench_ece_study.py``):
how biased the plug-in, debiased and smooth ECE are, and how often the bootstrap intervals hold
the truth, on synthetic models whose true calibration error is known.

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
from .metrics import _corrected_interval, _debiased_ece, _plugin_ece, ece_bootstrap, ece_interval, smooth_ece

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
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plug-in and debiased ECE of ``n_boot`` bin-level resamples of each draw, and the debiased
    ECE of ``n_boot`` redraws under perfect calibration: each (draws, n_boot)."""
    n = int(count[0].sum())
    mean_c = sum_c / count
    sd_c = np.sqrt(np.maximum(sum_cc / count - mean_c ** 2, 0.0))
    boot_count = rng.multinomial(n, count / n, size=(n_boot, *count.shape[:-1])).astype(np.float64)
    boot_v = rng.binomial(boot_count.astype(np.int64), sum_v / count).astype(np.float64)
    boot_c = boot_count * mean_c + np.sqrt(boot_count) * sd_c * rng.standard_normal(boot_count.shape)
    plugin = _plugin_ece(boot_count, boot_c, boot_v).T
    debiased = _debiased_ece(boot_count, boot_c, boot_v, boot_v).T
    null_v = rng.binomial(count.astype(np.int64), mean_c, size=(n_boot, *count.shape)).astype(np.float64)
    null = _debiased_ece(count, sum_c, null_v, null_v).T
    return plugin, debiased, null


@dataclass
class StudyResult:
    """The study's tables. ``estimates``: one row per (amplitude, n, n_bins, estimator) with the
    target, mean, bias and RMSE over draws (the smooth ECE has no bins: its rows repeat for
    every n_bins). ``intervals``: one row per (amplitude, n, n_bins, interval) with coverage of
    the true ECE and mean width. ``seconds``: wall time of :func:`run_study`."""
    estimates: pd.DataFrame
    intervals: pd.DataFrame
    truth: dict[float, dict[str, float]]
    draws: int
    n_boot: int
    level: float
    seconds: float


def run_study(draws: int = 500, amplitudes: Sequence[float] = (0.03, 0.0), n_boot: int = 200, seed: int = 0, *,
              sizes: Sequence[int] = SIZES, bin_counts: Sequence[int] = BIN_COUNTS, level: float = 0.95) -> StudyResult:
    """Bias and RMSE of the plug-in, debiased and smooth ECE, and coverage and width of the
    percentile (:func:`calcas.ece_bootstrap`) and corrected (:func:`calcas.ece_interval`)
    intervals, ``draws`` data sets per (amplitude, n, n_bins); see the module docstring.

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
    estimates, intervals, truth = [], [], {}
    for i, a in enumerate(amplitudes):
        truth[a] = {"ece": true_ece(a), "smooth": smooth_ece_limit(a, seed)}
        for n in sizes:
            rng = np.random.default_rng([seed, i, n])
            c, v = draw(n, draws, a, rng)
            smooth = np.array([smooth_ece(ci, vi) for ci, vi in zip(c, v)])
            for n_bins in bin_counts:
                count, sum_c, sum_cc, sum_v = bin_sums(c, v, n_bins)
                values = {"plugin": _plugin_ece(count, sum_c, sum_v),
                          "debiased": _debiased_ece(count, sum_c, sum_v, sum_v), "smooth": smooth}
                for name, x in values.items():
                    target = truth[a]["smooth" if name == "smooth" else "ece"]
                    estimates.append({"amplitude": a, "n": n, "n_bins": n_bins, "estimator": ESTIMATOR_NAMES[name],
                                      "target": target, "mean": x.mean(), "bias": x.mean() - target,
                                      "rmse": float(np.sqrt(np.mean((x - target) ** 2)))})
                boot_p, boot_d, null = _binned_replicates(count, sum_c, sum_cc, sum_v, n_boot,
                                                          np.random.default_rng([seed, i, n, n_bins]))
                alpha = (1.0 - level) / 2.0
                bounds = {"percentile": tuple(np.quantile(boot_p, [alpha, 1.0 - alpha], axis=1)),
                          "corrected": _corrected_interval(values["debiased"], values["plugin"], boot_d, null, level)}
                for name, (low, high) in bounds.items():
                    t = truth[a]["ece"]
                    intervals.append({"amplitude": a, "n": n, "n_bins": n_bins, "interval": INTERVAL_NAMES[name],
                                      "coverage": float(np.mean((low <= t) & (t <= high))),
                                      "width": float(np.mean(high - low)), "below": float(np.mean(high < t)),
                                      "above": float(np.mean(low > t))})
    return StudyResult(pd.DataFrame(estimates), pd.DataFrame(intervals), truth, draws, n_boot, level,
                       time.perf_counter() - start)


def interval_check(n: int = 2000, n_bins: int = 15, amplitude: float = 0.03, draws: int = 10, n_boot: int = 200,
                   seed: int = 0) -> pd.DataFrame:
    """The study's bin-level intervals beside :func:`calcas.ece_bootstrap` and
    :func:`calcas.ece_interval` run on the same ``draws`` data sets: one row per draw and
    interval with both bounds from each (the replicates differ, so the bounds agree within
    Monte Carlo noise plus the effect of re-fitting the bins)."""
    c, v = draw(n, draws, amplitude, np.random.default_rng([seed, 99, n]))
    count, sum_c, sum_cc, sum_v = bin_sums(c, v, n_bins)
    plugin, debiased = _plugin_ece(count, sum_c, sum_v), _debiased_ece(count, sum_c, sum_v, sum_v)
    boot_p, boot_d, null = _binned_replicates(count, sum_c, sum_cc, sum_v, n_boot, np.random.default_rng([seed, 98]))
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


def _wide(table: pd.DataFrame, columns: str, value: str, order: Sequence[str]) -> pd.DataFrame:
    wide = table.pivot_table(index=["amplitude", "n", "n_bins"], columns=columns, values=value, sort=False)
    wide = wide.reindex(columns=[c for c in order if c in wide.columns])
    wide.index.names = ["a", "n", "N"]
    wide.columns.name = None
    wide = wide.sort_index(level=["a", "n", "N"], ascending=[False, True, True])
    # amplitudes as written ("0.03", "0"), not as floats printed to 4 decimals
    return wide.set_axis(wide.index.set_levels([f"{a:g}" for a in wide.index.levels[0]], level="a"))


def estimates_table(result: StudyResult, value: str = "bias") -> pd.DataFrame:
    """``value`` ("bias", "rmse" or "mean") per estimator (columns), one row per (a, n, N)."""
    return _wide(result.estimates, "estimator", value, list(ESTIMATOR_NAMES.values()))


def intervals_table(result: StudyResult, value: str = "coverage") -> pd.DataFrame:
    """``value`` ("coverage", "width", "below" or "above") per interval (columns), one row per
    (a, n, N)."""
    return _wide(result.intervals, "interval", value, list(INTERVAL_NAMES.values()))


def bias_figure(result: StudyResult, n_bins: int = 15) -> Any:
    """Bias against n (log scale) per estimator at ``n_bins`` bins, one panel per amplitude,
    stacked (4.8 inches wide: shown at its natural size in the book's column, and scaled by
    less than a quarter on a phone)."""
    import matplotlib.pyplot as plt

    from .render.plots import SERIES_COLOURS

    table = result.estimates[result.estimates["n_bins"] == n_bins]
    amplitudes = list(dict.fromkeys(table["amplitude"]))
    # panels stacked, not side by side: the figure stays readable on a phone's column
    fig, axes = plt.subplots(len(amplitudes), 1, figsize=(4.8, 1.0 + 2.6 * len(amplitudes)), sharex=True,
                             squeeze=False, layout="constrained")
    axes = axes.T
    styles = {"plug-in": ("s", "--"), "debiased": ("o", "-"), "smooth": ("^", "-.")}
    for ax, a in zip(axes[0], amplitudes):
        for k, (name, (marker, ls)) in enumerate(styles.items()):
            rows = table[(table["amplitude"] == a) & (table["estimator"] == name)]
            ax.plot(rows["n"], rows["bias"], marker=marker, ls=ls, color=SERIES_COLOURS[k], lw=2, label=name)
        ax.axhline(0.0, color="#7a7a7a", lw=1)
        ax.set_xscale("log")
        sizes = list(dict.fromkeys(table["n"]))
        ax.set_xticks(sizes, [f"{n / 1000:g}k" if n >= 1000 else f"{n}" for n in sizes])
        ax.set_xlim(min(sizes) / 1.5, max(sizes) * 1.5)
        ax.minorticks_off()
        ax.tick_params(labelsize=11)
        ax.set_ylabel(f"bias (N = {n_bins} bins)", fontsize=11)
        truth = result.truth[a]["ece"]
        ax.set_title(f"a = {a:g} (true ECE {truth:.3f})", fontsize=11)
        ax.grid(alpha=0.3)
    axes[0][-1].set_xlabel("samples n", fontsize=11)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False, fontsize=11)
    return fig


def summary(result: StudyResult) -> dict[str, Any]:
    """The numbers the chapter's prose quotes (and results.json keeps)."""
    est, itv = result.estimates, result.intervals

    def at(table: pd.DataFrame, column: str, **keys: Any) -> float | None:
        rows = table
        for k, value in keys.items():
            rows = rows[rows[k] == value]
        return float(rows[column].iloc[0]) if len(rows) else None

    out: dict[str, Any] = {"draws": result.draws, "n_boot": result.n_boot, "seconds": result.seconds,
                           "truth": {str(a): t for a, t in result.truth.items()}}
    for a in result.truth:
        key = f"a={a:g}"
        out[key] = {
            "bias": {e: {f"n={n},N={N}": at(est, "bias", amplitude=a, n=n, n_bins=N, estimator=e)
                         for n in est["n"].unique() for N in est["n_bins"].unique()}
                     for e in ESTIMATOR_NAMES.values()},
            "coverage": {i: {f"n={n},N={N}": at(itv, "coverage", amplitude=a, n=n, n_bins=N, interval=i)
                             for n in itv["n"].unique() for N in itv["n_bins"].unique()}
                         for i in INTERVAL_NAMES.values()},
            "worst_coverage": {i: float(itv[(itv["amplitude"] == a) & (itv["interval"] == i)]["coverage"].min())
                               for i in INTERVAL_NAMES.values()},
        }
    return out


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


def _row(table: pd.DataFrame, **keys: Any) -> pd.Series:
    rows = table
    for k, value in keys.items():
        rows = rows[rows[k] == value]
    return rows.iloc[0]


def _where(rows: pd.DataFrame) -> str:
    return ", ".join(f"(n = {r.n:,}, N = {r.n_bins})" for r in rows.itertuples())


def prose(result: StudyResult, check: pd.DataFrame, detectable: pd.DataFrame) -> dict[str, str]:
    """The chapter's verdicts, written from the study's numbers: Markdown per section
    ("model", "bias", "calibrated", "intervals", "detectable", "check")."""
    est, itv = result.estimates, result.intervals
    sizes, bins = sorted(est["n"].unique()), sorted(est["n_bins"].unique())
    n0 = 2000 if 2000 in sizes else sizes[len(sizes) // 2]
    N0 = 15 if 15 in bins else bins[len(bins) // 2]
    amplitudes = list(result.truth)
    miscal = [a for a in amplitudes if a > 0]
    out = {}
    truth_text = ". ".join(f"At a = {a:g} the true ECE is {t['ece']:.4f} and the smooth ECE's large-n limit "
                           f"{t['smooth']:.4f}" for a, t in result.truth.items())
    out["model"] = (f"{truth_text}. Each configuration below is {result.draws:,} simulated data sets, "
                    f"{result.n_boot:,} bootstrap replicates per interval; the whole study took "
                    f"{result.seconds:.1f} s.")
    parts = []
    for a in miscal:
        p = _row(est, amplitude=a, n=n0, n_bins=N0, estimator="plug-in")
        d = _row(est, amplitude=a, n=n0, n_bins=N0, estimator="debiased")
        s = _row(est, amplitude=a, n=n0, n_bins=N0, estimator="smooth")
        over = est[(est["amplitude"] == a) & (est["estimator"] == "debiased") & (est["bias"].abs() > 0.005)]
        verdict = ("meets" if abs(d["bias"]) <= 0.005 else "misses")
        parts.append(
            f"At a = {a:g}, n = {n0:,} and N = {N0} bins, the plug-in ECE is biased by {p['bias']:+.4f} "
            f"({p['bias'] / p['target']:.0%} of the true {p['target']:.4f}) and the debiased one by "
            f"{d['bias']:+.4f}: it {verdict} the target |bias| ≤ 0.005. "
            + (f"The debiased bias exceeds 0.005 at {_where(over)}: few samples per bin, where the bins' "
               "gaps are small against their noise and the correction, evaluated at the noisy gap, removes "
               "only part of the excess. " if len(over) else "The debiased bias is within 0.005 everywhere. ")
            + f"The smooth ECE, against its own large-n limit, is biased by {s['bias']:+.4f} at n = {n0:,} "
            "(it has no bins, so the same in every row).")
    out["bias"] = " ".join(parts) or ("This run has no miscalibrated model (its amplitude is 0): the bias "
                                      "of a perfectly calibrated model is in the next section.")
    if 0.0 in amplitudes:
        p = _row(est, amplitude=0.0, n=n0, n_bins=N0, estimator="plug-in")
        d = _row(est, amplitude=0.0, n=n0, n_bins=N0, estimator="debiased")
        ratios = (est[(est.amplitude == 0) & (est.estimator == "debiased")]["bias"].to_numpy()
                  / est[(est.amplitude == 0) & (est.estimator == "plug-in")]["bias"].to_numpy())
        out["calibrated"] = (
            f"A perfectly calibrated model (a = 0) is where the debiased ECE disappoints: at n = {n0:,} and "
            f"N = {N0} it still reads {d['mean']:.4f} on average where the truth is 0, against the plug-in's "
            f"{p['mean']:.4f}. Across the configurations its bias is {ratios.min():.0%} to {ratios.max():.0%} "
            f"of the plug-in's; with every bin's gap exactly normal, theory gives {2 - np.sqrt(2):.0%}. Each "
            "bin's correction is "
            "the excess a normal noise adds to |gap| *at the observed gap*, and the observed gap of a "
            "calibrated bin is itself noise, so the correction is too small. No estimator of |gap| is "
            "unbiased at a gap of 0; what can be had is an interval that reaches 0, below.")
    cov = itv.copy()
    pct = cov[cov["interval"] == INTERVAL_NAMES["percentile"]]
    fix = cov[cov["interval"] == INTERVAL_NAMES["corrected"]]
    worst = fix.loc[fix["coverage"].idxmin()]
    under = fix[fix["coverage"] < 0.9]
    w_pct = _row(pct, amplitude=amplitudes[0], n=n0, n_bins=N0)["width"]
    w_fix = _row(fix, amplitude=amplitudes[0], n=n0, n_bins=N0)["width"]
    out["intervals"] = (
        f"The percentile interval (`ece_bootstrap`) holds the true ECE in {pct['coverage'].min():.0%} to "
        f"{pct['coverage'].max():.0%} of the data sets (nominal {result.level:.0%}): it is the spread of the "
        "plug-in, which sits above the truth, and its resamples sit higher still. `ece_interval` holds it in "
        f"{fix['coverage'].min():.0%} to {fix['coverage'].max():.0%}; its worst case is a = {worst.amplitude:g}, "
        f"n = {worst.n:,}, N = {worst.n_bins}. "
        + (f"It is under 90% at {_where(under)}. " if len(under) else "It is at least 90% in every configuration. ")
        + f"The price is width: at a = {amplitudes[0]:g}, n = {n0:,}, N = {N0} its mean width is {w_fix:.4f} "
        f"against the percentile interval's {w_pct:.4f}.")
    n_mid = n0 if n0 in detectable.index else detectable.index[len(detectable.index) // 2]
    row = detectable.loc[n_mid]
    out["detectable"] = (
        f"With n = {n_mid:,} samples of a 90%-accurate model in {N0} bins, the smallest true ECE the plug-in "
        f"detects (beyond what a calibrated model shows 95% of the time, with probability 0.8) is "
        f"{row[f'N = {N0}']:.4f}; with {bins[0]} bins it is {row[f'N = {bins[0]}']:.4f}, with {bins[-1]} bins "
        f"{row[f'N = {bins[-1]}']:.4f}. Fewer bins resolve less of the reliability curve but detect smaller gaps. `default_n_bins` keeps "
        f"at least 100 samples per bin, 15 at most: {', '.join(f'{k} at n = {n:,}' for n, k in detectable['default_n_bins'].items())}.")
    summary_check = check_summary(check)
    fix_rows = check[check["interval"] == INTERVAL_NAMES["corrected"]]
    width = float(np.mean(fix_rows["function_high"] - fix_rows["function_low"]))
    largest = max(max(v["low"], v["high"]) for v in summary_check.values())
    out["check"] = ("On the same data sets, the study's bin-level intervals and the functions' own differ by "
                    + " and ".join(f"{v['low']:.4f} (low end) and {v['high']:.4f} (high end) on average for the "
                                   f"{name} interval"
                                   for name, v in summary_check.items())
                    + f", over {next(iter(summary_check.values()))['draws']} data sets at a = "
                      f"{check.attrs['amplitude']:g}, n = {check.attrs['n']:,}, N = {check.attrs['n_bins']}, where "
                      f"`ece_interval` is {width:.4f} wide on average: the differences are "
                      f"{'small' if largest < width / 4 else 'not small'} against the width.")
    return out
