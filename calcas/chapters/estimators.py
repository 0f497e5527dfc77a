"""Chapter "How wrong can an ECE be?": the ECE estimators' bias, the coverage of the intervals
the book decides from, and how much ECE n samples can show.

The numbers come from :mod:`calcas.estimator_study` (synthetic models whose true calibration
error is known). Besides the chapter's own tables, the facts hold :func:`deciding_coverage`'s
rows: the coverage of every interval a verdict of the book may rest on
(:data:`calcas.chapters.common.DECIDING_INTERVALS`), and whether each reaches
:data:`COVERAGE_FLOOR` everywhere it was measured.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from .. import estimator_study as study
from ..render import plots
from .common import DECIDING_INTERVALS, Facts, names_list, signed, table_columns

#: The coverage every deciding interval must reach in every configuration of the study.
COVERAGE_FLOOR = 0.90
#: The debiased ECE's bias the chapter holds it to (|bias| at most this, as a share of probability).
BIAS_TARGET = 0.005
#: Where the prose quotes the study: n and N (the book's 15 bins on a 2,000-row half).
QUOTED_N, QUOTED_BINS = 2000, 15


@dataclasses.dataclass(frozen=True)
class BiasAt(Facts):
    """One miscalibrated amplitude's biases at the quoted n and N, and where the debiased ECE
    misses :data:`BIAS_TARGET`."""

    amplitude: float
    target: float
    plugin: float
    plugin_share: float | None
    debiased: float
    smooth: float
    meets_target: bool
    misses_at: list[tuple[int, int]]


@dataclasses.dataclass(frozen=True)
class CalibratedBias(Facts):
    """The perfectly calibrated model (a = 0): the estimators' means at the quoted n and N, and
    the debiased ECE's bias as a share of the plug-in's, over every configuration and in theory
    (:math:`2 - \\sqrt{2}` with every bin's gap exactly normal)."""

    plugin_mean: float
    debiased_mean: float
    share_low: float
    share_high: float
    share_theory: float


@dataclasses.dataclass(frozen=True)
class IntervalSummary(Facts):
    """The ECE intervals' coverage over the study's configurations."""

    percentile_low: float
    percentile_high: float
    corrected_low: float
    corrected_high: float
    worst: tuple[float, int, int]
    under_floor: list[tuple[float, int, int]]
    width_percentile: float
    width_corrected: float


@dataclasses.dataclass(frozen=True)
class DecidingInterval(Facts):
    """One deciding interval's coverage over its cases: worst and best, where it is worst, and
    whether it reaches :data:`COVERAGE_FLOOR` everywhere."""

    interval: str
    rows: int
    worst: float
    best: float
    worst_case: str
    worst_n: int
    covers: bool


@dataclasses.dataclass(frozen=True)
class CheckSummary(Facts):
    """The study's bin-level intervals beside the functions' own, on the same data sets."""

    amplitude: float
    n: int
    n_bins: int
    draws: int
    differences: dict[str, dict[str, float]]
    width: float
    small: bool


@dataclasses.dataclass(frozen=True)
class EstimatorsFacts(Facts):
    """Everything the chapter shows (``results.json``)."""

    section: str
    parameters: dict[str, Any]
    draws: int
    n_boot: int
    level: float
    seconds: float
    truth: dict[str, dict[str, float]]
    estimates: dict[str, list]
    intervals: dict[str, list]
    deciding: dict[str, list]
    deciding_summary: list[DecidingInterval]
    all_deciding_covered: bool
    bias: list[BiasAt]
    calibrated: CalibratedBias | None
    interval_summary: IntervalSummary
    check: CheckSummary
    detectable: dict[str, list]
    quoted_n: int
    quoted_bins: int


# ---------------------------------------------------------------------------- compute

def compute(*, draws: int = 500, amplitude: float = 0.03, n_boot: int = 200, seed: int = 0) -> EstimatorsFacts:
    """Run the study at ``amplitude`` and at 0 (:func:`calcas.estimator_study.run_study`), the
    coverage of every deciding interval, the functions-against-study check, and the detectable
    ECE table.

    Parameters
    ----------
    draws : int
        Simulated data sets per configuration, >= 2.
    amplitude : float
        The miscalibration amplitude a in [0, 0.5] (a = 0 is always studied too).
    n_boot : int
        Bootstrap replicates per interval, >= 1.
    seed : int
        Seed of every draw.
    """
    result = study.run_study(draws, [amplitude, 0.0], n_boot, seed)
    check = study.interval_check(draws=min(draws, 10), n_boot=n_boot, seed=seed)
    detectable = study.detectability_table()
    deciding = study.deciding_coverage(result, seed)
    return EstimatorsFacts(
        section="09_ece_estimators",
        parameters={"draws": draws, "amplitude": amplitude, "n_boot": n_boot, "seed": seed},
        draws=result.draws, n_boot=result.n_boot, level=result.level, seconds=result.seconds,
        truth={f"{a:g}": t for a, t in result.truth.items()},
        estimates=table_columns(result.estimates, result.estimates.columns),
        intervals=table_columns(result.intervals, result.intervals.columns),
        deciding=table_columns(deciding, deciding.columns),
        deciding_summary=deciding_summary(deciding),
        all_deciding_covered=all(s.covers for s in deciding_summary(deciding)),
        bias=_bias(result), calibrated=_calibrated(result), interval_summary=_intervals(result),
        check=_check(check), detectable={"n": detectable.index.tolist(), **table_columns(detectable, detectable.columns)},
        quoted_n=_quoted(sorted(set(result.estimates["n"])), QUOTED_N),
        quoted_bins=_quoted(sorted(set(result.estimates["n_bins"])), QUOTED_BINS))


def deciding_summary(deciding: pd.DataFrame) -> list[DecidingInterval]:
    """Per interval of :data:`DECIDING_INTERVALS`, in its order: worst and best coverage over the
    rows of :func:`calcas.estimator_study.deciding_coverage`, and whether the worst reaches
    :data:`COVERAGE_FLOOR`. An interval with no row is reported with no coverage and fails."""
    out = []
    for name in DECIDING_INTERVALS:
        rows = deciding[deciding["interval"] == name]
        if rows.empty:
            out.append(DecidingInterval(name, 0, float("nan"), float("nan"), "", 0, False))
            continue
        worst = rows.loc[rows["coverage"].idxmin()]
        out.append(DecidingInterval(name, int(len(rows)), float(worst["coverage"]), float(rows["coverage"].max()),
                                    str(worst["case"]), int(worst["n"]), bool(worst["coverage"] >= COVERAGE_FLOOR)))
    return out


def _quoted(values: list[int], preferred: int) -> int:
    return preferred if preferred in values else values[len(values) // 2]


def _row(table: pd.DataFrame, **keys: Any) -> pd.Series:
    rows = table
    for k, value in keys.items():
        rows = rows[rows[k] == value]
    return rows.iloc[0]


def _bias(result: study.StudyResult) -> list[BiasAt]:
    est = result.estimates
    n0 = _quoted(sorted(set(est["n"])), QUOTED_N)
    N0 = _quoted(sorted(set(est["n_bins"])), QUOTED_BINS)
    out = []
    for a in (a for a in result.truth if a > 0):
        rows = {e: _row(est, amplitude=a, n=n0, n_bins=N0, estimator=e) for e in ("plug-in", "debiased", "smooth")}
        over = est[(est["amplitude"] == a) & (est["estimator"] == "debiased") & (est["bias"].abs() > BIAS_TARGET)]
        target, plugin = float(rows["plug-in"]["target"]), float(rows["plug-in"]["bias"])
        out.append(BiasAt(a, target, plugin, plugin / target if target else None, float(rows["debiased"]["bias"]), float(rows["smooth"]["bias"]),
                          bool(abs(rows["debiased"]["bias"]) <= BIAS_TARGET),
                          [(int(r.n), int(r.n_bins)) for r in over.itertuples()]))
    return out


def _calibrated(result: study.StudyResult) -> CalibratedBias | None:
    if 0.0 not in result.truth:
        return None
    est = result.estimates
    n0 = _quoted(sorted(set(est["n"])), QUOTED_N)
    N0 = _quoted(sorted(set(est["n_bins"])), QUOTED_BINS)
    zero = est[est["amplitude"] == 0]
    shares = (zero[zero["estimator"] == "debiased"]["bias"].to_numpy()
              / zero[zero["estimator"] == "plug-in"]["bias"].to_numpy())
    return CalibratedBias(float(_row(zero, n=n0, n_bins=N0, estimator="plug-in")["mean"]),
                          float(_row(zero, n=n0, n_bins=N0, estimator="debiased")["mean"]),
                          float(shares.min()), float(shares.max()), float(2 - np.sqrt(2)))


def _intervals(result: study.StudyResult) -> IntervalSummary:
    itv, est = result.intervals, result.estimates
    n0 = _quoted(sorted(set(est["n"])), QUOTED_N)
    N0 = _quoted(sorted(set(est["n_bins"])), QUOTED_BINS)
    first = next(iter(result.truth))
    percentile = itv[itv["interval"] == study.INTERVAL_NAMES["percentile"]]
    corrected = itv[itv["interval"] == study.INTERVAL_NAMES["corrected"]]
    worst = corrected.loc[corrected["coverage"].idxmin()]
    under = corrected[corrected["coverage"] < COVERAGE_FLOOR]
    return IntervalSummary(
        float(percentile["coverage"].min()), float(percentile["coverage"].max()),
        float(corrected["coverage"].min()), float(corrected["coverage"].max()),
        (float(worst["amplitude"]), int(worst["n"]), int(worst["n_bins"])),
        [(float(r.amplitude), int(r.n), int(r.n_bins)) for r in under.itertuples()],
        float(_row(percentile, amplitude=first, n=n0, n_bins=N0)["width"]),
        float(_row(corrected, amplitude=first, n=n0, n_bins=N0)["width"]))


def _check(check: pd.DataFrame) -> CheckSummary:
    differences = study.check_summary(check)
    corrected = check[check["interval"] == study.INTERVAL_NAMES["corrected"]]
    width = float(np.mean(corrected["function_high"] - corrected["function_low"]))
    largest = max(max(v["low"], v["high"]) for v in differences.values())
    return CheckSummary(float(check.attrs["amplitude"]), int(check.attrs["n"]), int(check.attrs["n_bins"]),
                        int(next(iter(differences.values()))["draws"]),
                        {name: {"low": v["low"], "high": v["high"]} for name, v in differences.items()},
                        width, bool(largest < width / 4))


# ---------------------------------------------------------------------------- tables and figures

def _wide(columns: dict[str, list], by: str, value: str, order: list[str]) -> pd.DataFrame:
    """One row per case, labelled "a = 0.03, n = 500, N = 5" (on a phone each row is a block of its
    own, headed by its label)."""
    wide = study.wide_table(pd.DataFrame(columns), by, value, order)
    return wide.set_axis(pd.Index([f"a = {a}, n = {int(n):,}, N = {int(N)}" for a, n, N in wide.index], name="case"))


def tables(facts: EstimatorsFacts) -> dict[str, pd.DataFrame]:
    """The chapter's tables: ``bias``, ``rmse`` (per estimator), ``coverage``, ``width`` (per ECE
    interval), ``deciding`` (the coverage of every deciding interval, one row per interval) and
    ``detectable``."""
    estimators = list(study.ESTIMATOR_NAMES.values())
    intervals = list(study.INTERVAL_NAMES.values())
    deciding = pd.DataFrame([{"interval": s.interval, "cases": s.rows, "worst coverage": s.worst, "best coverage": s.best,
                              "worst at": f"{s.worst_case}, n = {s.worst_n:,}"} for s in facts.deciding_summary]).set_index("interval")
    detectable = pd.DataFrame(facts.detectable)  # results.json keeps its columns in sorted order
    bins = sorted((c for c in detectable if c.startswith("N = ")), key=lambda c: int(c.removeprefix("N = ")))
    detectable = (detectable.set_index("n")[bins + ["default_n_bins", "at default_n_bins"]]
                  .rename(columns={"default_n_bins": "default N", "at default_n_bins": "at default N"}))
    detectable.index = pd.Index([f"n = {int(n):,}" for n in detectable.index], name="n")
    return {"bias": _wide(facts.estimates, "estimator", "bias", estimators),
            "rmse": _wide(facts.estimates, "estimator", "rmse", estimators),
            "coverage": _wide(facts.intervals, "interval", "coverage", intervals),
            "width": _wide(facts.intervals, "interval", "width", intervals),
            "deciding": deciding, "detectable": detectable}


def figures(facts: EstimatorsFacts) -> Any:
    """Bias against n (log scale) per estimator at the quoted bin count, one panel per amplitude."""
    est = pd.DataFrame(facts.estimates)
    est = est[est["n_bins"] == facts.quoted_bins]
    panels = {}
    for a in dict.fromkeys(est["amplitude"]):
        rows = est[est["amplitude"] == a]
        panels[f"a = {a:g} (true ECE {facts.truth[f'{a:g}']['ece']:.3f})"] = (
            rows.pivot_table(index="n", columns="estimator", values="bias", sort=False)
            .reindex(columns=[e for e in study.ESTIMATOR_NAMES.values()]))
    return plots.line_panels(panels, xlabel="samples n", ylabel=f"bias (N = {facts.quoted_bins} bins)",
                             log_x=True, zero_line=True)


# ---------------------------------------------------------------------------- prose

def _where(cells: list[tuple[Any, ...]]) -> str:
    return names_list([f"(n = {c[-2]:,}, N = {c[-1]})" for c in cells])


def prose(facts: EstimatorsFacts) -> dict[str, str]:
    """The chapter's sentences, by section: ``model``, ``bias``, ``calibrated``, ``intervals``,
    ``deciding``, ``check``, ``detectable``."""
    n0, N0 = facts.quoted_n, facts.quoted_bins
    out = {}
    truth = ". ".join(f"At a = {a} the true ECE is {t['ece']:.4f} and the smooth ECE's large-n limit "
                      f"{t['smooth']:.4f}" for a, t in facts.truth.items())
    out["model"] = (f"{truth}. Each configuration below is {facts.draws:,} simulated data sets, "
                    f"{facts.n_boot:,} bootstrap replicates per interval; the whole study took "
                    f"{facts.seconds:.1f} s.")
    parts = []
    for b in facts.bias:
        share = f"the true ECE is {b.target:.4f}" if b.plugin_share is None else \
            f"{b.plugin_share:.0%} of the true {b.target:.4f}"
        parts.append(
            f"At a = {b.amplitude:g}, n = {n0:,} and N = {N0} bins, the plug-in ECE is biased by {signed(b.plugin)} "
            f"({share}) and the debiased one by {signed(b.debiased)}: it "
            f"{'meets' if b.meets_target else 'misses'} the target |bias| ≤ {BIAS_TARGET:g}. "
            + (f"The debiased bias exceeds {BIAS_TARGET:g} at {_where(b.misses_at)}: few samples per bin, where the "
               "bins' gaps are small against their noise and the correction, evaluated at the noisy gap, removes "
               "only part of the excess. " if b.misses_at else
               f"The debiased bias is within {BIAS_TARGET:g} everywhere. ")
            + f"The smooth ECE, against its own large-n limit, is biased by {signed(b.smooth)} at n = {n0:,} "
              "(it has no bins, so the same in every row).")
    out["bias"] = " ".join(parts) or ("This run has no miscalibrated model (its amplitude is 0): the bias "
                                      "of a perfectly calibrated model is in the next section.")
    c = facts.calibrated
    out["calibrated"] = "This run has no perfectly calibrated model." if c is None else (
        f"A perfectly calibrated model (a = 0) is where the debiased ECE disappoints: at n = {n0:,} and N = {N0} it "
        f"still reads {c.debiased_mean:.4f} on average where the truth is 0, against the plug-in's "
        f"{c.plugin_mean:.4f}. Across the configurations its bias is {c.share_low:.0%} to {c.share_high:.0%} of the "
        f"plug-in's; with every bin's gap exactly normal, theory gives {c.share_theory:.0%}. Each bin's correction "
        "is the excess a normal noise adds to |gap| *at the observed gap*, and the observed gap of a calibrated bin "
        "is itself noise, so the correction is too small. No estimator of |gap| is unbiased at a gap of 0; what can "
        "be had is an interval that reaches 0, below.")
    i = facts.interval_summary
    out["intervals"] = (
        f"The percentile interval (`ece_bootstrap`) holds the true ECE in {i.percentile_low:.0%} to "
        f"{i.percentile_high:.0%} of the data sets (nominal {facts.level:.0%}): it is the spread of the plug-in, "
        "which sits above the truth, and its resamples sit higher still. **No verdict in this book rests on it.** "
        f"`ece_interval` holds it in {i.corrected_low:.0%} to {i.corrected_high:.0%}; its worst case is "
        f"a = {i.worst[0]:g}, n = {i.worst[1]:,}, N = {i.worst[2]}. "
        + (f"It is under {COVERAGE_FLOOR:.0%} at {_where(i.under_floor)}. " if i.under_floor else
           f"It is at least {COVERAGE_FLOOR:.0%} in every configuration. ")
        + f"The price is width: at n = {n0:,}, N = {N0} its mean width is {i.width_corrected:.4f} against the "
          f"percentile interval's {i.width_percentile:.4f}.")
    failing = [s.interval for s in facts.deciding_summary if not s.covers]
    listed = "; ".join(f"`{s.interval}` {s.worst:.1%} to {s.best:.1%} over {s.rows} cases" for s in
                       facts.deciding_summary)
    out["deciding"] = (
        f"Every verdict in this book is decided by one of {len(facts.deciding_summary)} intervals, and by nothing "
        f"else: {listed}. "
        + (f"Each holds its truth in at least {COVERAGE_FLOOR:.0%} of the cases in every configuration measured."
           if facts.all_deciding_covered else
           f"**{names_list(failing)} falls below {COVERAGE_FLOOR:.0%} somewhere**: a verdict resting on it is not "
           "trustworthy there.")
        + " The change in ECE from calibration is decided by `ece_difference_interval`: the two models' "
          "`ece_interval`s on the same rows, combined as their difference (the low end of one minus the high end "
          "of the other). Bootstrap intervals of the difference itself cover far less, because the ECE's bias "
          "differs between a miscalibrated and a calibrated confidence and does not cancel; the combined "
          f"interval covers at least {_worst(facts, 'ece_difference_interval'):.1%} of the cases, at the price of "
          "width: a small true change reads as within noise.")
    k = facts.check
    out["check"] = (
        "On the same data sets, the study's bin-level intervals and the functions' own differ by "
        + " and ".join(f"{v['low']:.4f} (low end) and {v['high']:.4f} (high end) on average for the {name} interval"
                       for name, v in k.differences.items())
        + f", over {k.draws} data sets at a = {k.amplitude:g}, n = {k.n:,}, N = {k.n_bins}, where `ece_interval` is "
          f"{k.width:.4f} wide on average: the differences are {'small' if k.small else 'not small'} against the "
          "width.")
    d = facts.detectable
    at = {n: i for i, n in enumerate(d["n"])}
    n_mid = n0 if n0 in at else d["n"][len(d["n"]) // 2]
    bins = sorted(int(key.split("= ")[1]) for key in d if key.startswith("N = "))
    out["detectable"] = (
        f"With n = {n_mid:,} samples of a 90%-accurate model in {N0} bins, the smallest true ECE the plug-in "
        f"detects (beyond what a calibrated model shows 95% of the time, with probability 0.8) is "
        f"{d[f'N = {N0}'][at[n_mid]]:.4f}; with {bins[0]} bins it is {d[f'N = {bins[0]}'][at[n_mid]]:.4f}, with "
        f"{bins[-1]} bins {d[f'N = {bins[-1]}'][at[n_mid]]:.4f}. Fewer bins resolve less of the reliability curve but "
        "detect smaller gaps. `default_n_bins` keeps at least 100 samples per bin, 15 at most: "
        + ", ".join(f"{k} at n = {n:,}" for n, k in zip(d["n"], d["default_n_bins"])) + ".")
    return out


def _worst(facts: EstimatorsFacts, interval: str) -> float:
    return next(s.worst for s in facts.deciding_summary if s.interval == interval)
