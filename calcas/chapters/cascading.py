"""The cascading chapter: Algorithm 1 of the paper (§2.2, calibrated advantage routing) on pairs
of models, with the paper's Figures 2 and 3 (accuracy against the share p answered by the first
model for random routing RC, uncalibrated routing UC, calibrated routing CC and the oracle).

Three steps, as every chapter (:mod:`calcas.chapters`):

- :func:`compute` fits both routers on the cal half of each pair and measures everything on the
  test half: the curves, CC at the fixed K and at the K chosen on cal, and every verdict, each a
  paired difference on the same test rows (:func:`calcas.paired_difference_interval`): CC against
  the better model (judged on cal), against UC at the same share p (its two operating points
  around p, mixed) and against random routing at the same p;
- :func:`prose` phrases those facts, and sets them beside the paper's claims for each pair's
  own data set (``paper_reference()["datasets"][key]["cascading"]``);
- :func:`tables`, :func:`figures` and :func:`explorers` draw them (:mod:`calcas.render`).

No comparison is made at the K that is best on test: that K is shown, labelled optimistic, and
decides nothing.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._validate import check_integer, check_k, check_positive_int
from ..calibration import calibrate_records
from ..cascade import AdvantageRouter, cascade_curves
from ..metrics import paired_difference_interval, proportion_interval
from ..records import Records, align
from ..render import interactive, plots
from ..render.tables import MISSING
from .common import (Estimate, Facts, Verdict, dataset_label, decide, exercises_shown, fmt, interval_text,
                     largest_tie_share, load_record_sets, names_list, paper_reference, pct, reference_dataset, signed,
                     signed_interval_text, table_columns, table_interval)

__all__ = ["CascadingFacts", "CascadingParameters", "PairFacts", "OperatingPoint", "Comparison", "Curve",
           "CurvePoint", "ClaimCheck", "PaperComparison", "CHOICES", "LARGE_LARGE_CLAIM", "compute", "prose",
           "tables", "figures", "explorers", "curve_table"]

#: What a K makes of a pair: the second model alone (K = 0), the first model alone (K keeps
#: every bin that exists on cal), or a cascade of the two.
CHOICES = ("second_alone", "first_alone", "cascade")

#: The name under which :class:`PaperComparison` checks the paper's large-large result (the
#: data set's ``cascading.large_large`` entry in ``paper_reference.json``).
LARGE_LARGE_CLAIM = "large_large_beats_both"

METHODS = ("RC", "UC", "CC", "oracle")
CALIBRATIONS = ("auto", "temperature", "platt")

# ---------------------------------------------------------------------------- facts


@dataclasses.dataclass(frozen=True)
class CascadingParameters(Facts):
    """The chapter's parameters, as the notebook received them (record sets as paths, or the
    display names of :class:`calcas.Records` given directly)."""

    pairs: dict[str, list[str]]
    K: int
    calibration: str
    n_bins: int
    cal_fraction: float
    seed: int
    n_boot: int = 2000


@dataclasses.dataclass(frozen=True)
class Comparison(Facts):
    """A paired difference of two per-row scores on the same test rows (first minus second),
    with its verdict against zero; ``identical`` when the two scores agree on every test row
    (the interval is then [0, 0] by construction, and says nothing about noise)."""

    verdict: Verdict
    identical: bool


@dataclasses.dataclass(frozen=True)
class OperatingPoint(Facts):
    """CC at one K, measured on the test rows.

    ``choice`` is one of :data:`CHOICES`. ``accuracy`` has a Wilson interval; ``gain`` is CC
    minus the better model (judged on cal). ``cc_vs_uc`` is CC minus UC at CC's share
    ``p_first``: UC's operating points rarely have that share on test, so UC there mixes its two
    operating points around it, ``uc_K_below`` and ``uc_K_above`` (equal where one has the
    share), each row scoring ``(1 - w)`` times UC's correctness at the first plus ``w`` times at
    the second, ``w = uc_weight_above`` chosen so that the mix sends the share ``p_first`` to the
    first model. ``cc_vs_random`` is CC minus random routing at CC's share (per row
    ``p v1 + (1 - p) v2``). Both are None where CC is a model alone (every router is then that
    model). ``compute_saved`` (the
    share of the second model's compute saved, the first always running) is None without
    costs; ``saves_compute`` says whether it is positive.
    """

    K: int
    choice: str
    p_first: float
    accuracy: Estimate
    gain: Comparison
    uc_K_below: int | None = None
    uc_K_above: int | None = None
    uc_weight_above: float | None = None
    cc_vs_uc: Comparison | None = None
    cc_vs_random: Comparison | None = None
    compute_saved: float | None = None
    saves_compute: bool | None = None


@dataclasses.dataclass(frozen=True)
class CurvePoint(Facts):
    """One row of a curve: K, the share p answered by the first model, accuracy, the
    second-model calls saved and (with costs) the share of compute saved."""

    K: int
    p_small: float
    accuracy: float
    large_calls_saved: int
    compute_saved: float | None = None


@dataclasses.dataclass(frozen=True)
class Curve(Facts):
    """One method's curve on test, one entry per K (see :func:`calcas.cascade_curves`)."""

    K: list[int]
    p_small: list[float]
    accuracy: list[float]
    large_calls_saved: list[int]
    compute_saved: list[float] | None = None


@dataclasses.dataclass(frozen=True)
class PairFacts(Facts):
    """Everything the chapter shows of one pair (first model asked first).

    ``dataset`` is the first record set's manifest ``dataset``; ``paper_dataset`` the paper's
    key for it (:func:`calcas.chapters.common.reference_dataset`), None where the paper makes no
    claim about it. ``large_large`` marks a pair named as a large-large cascade ("large-large"
    in its name). ``bins_merged``: tied confidences left fewer bins on cal than ``n_bins``;
    ``K_capped``: the fixed K was then lowered to the bins that exist. ``beats_both``: the
    cascade at the cal-chosen K beats both models (the paired interval of its gain over the
    better model lies above zero). ``share_cc_at_least_uc``, ``share_cc_above_rc`` and
    ``mean_cc_minus_uc`` describe CC's curve against UC's and RC's between the two models
    alone; no verdict rests on them. ``best_cc_*``: the best K on test, optimistic.
    """

    first: str
    second: str
    better: str
    dataset: str | None
    paper_dataset: str | None
    large_large: bool
    n_cal: int
    n_test: int
    n_bins_effective: int
    n_bins_effective_uc: int
    bins_merged: bool
    tie_value: float
    tie_share: float
    K: int
    K_capped: bool
    accuracy_first: Estimate
    accuracy_second: Estimate
    at_fixed_K: OperatingPoint
    at_cal_K: OperatingPoint
    beats_both: bool
    best_cc_accuracy: float
    best_cc_K: int
    best_cc_p: float
    share_cc_at_least_uc: float | None
    share_cc_above_rc: float | None
    mean_cc_minus_uc: float | None
    at_K: dict[str, CurvePoint]
    curves: dict[str, Curve]

    @property
    def K_used(self) -> int:
        """The fixed K as used (capped at the bins that exist)."""
        return self.at_fixed_K.K

    @property
    def K_cal(self) -> int:
        """The K most accurate on the cal rows (ties: the larger K, which calls the second model less)."""
        return self.at_cal_K.K

    @property
    def cal_choice(self) -> str:
        """What the cal-chosen K makes of the pair (one of :data:`CHOICES`)."""
        return self.at_cal_K.choice


@dataclasses.dataclass(frozen=True)
class ClaimCheck(Facts):
    """One claim of the paper tested on the pairs of its data set at one operating point
    (``"fixed"`` or ``"cal"``): the pairs whose deciding interval lies above zero, below it,
    contains it, whose two compared scores are identical on every test row, and those whose
    operating point is a model alone (nothing routed, so nothing to compare).

    ``claim`` is a key of ``paper_reference()["claims"]`` (decided by ``cc_vs_random`` for
    ``cc_above_random``, by ``cc_vs_uc`` for ``cc_above_uc`` and ``uc_close_to_cc``) or
    :data:`LARGE_LARGE_CLAIM` (decided by ``gain`` on the large-large pairs).
    """

    claim: str
    operating_point: str
    above: list[str]
    below: list[str]
    within: list[str]
    identical: list[str]
    model_alone: list[str]


@dataclasses.dataclass(frozen=True)
class PaperComparison(Facts):
    """The paper's cascading claims for one data set (a key of ``paper_reference()["datasets"]``)
    beside the pairs here on that data set."""

    dataset: str
    pairs: list[str]
    checks: list[ClaimCheck]


@dataclasses.dataclass(frozen=True)
class CascadingFacts(Facts):
    """The cascading chapter's ``results.json``.

    ``pairs``: one :class:`PairFacts` per pair, in the order given. ``paper``: one
    :class:`PaperComparison` per data set the paper makes cascading claims about.
    ``without_claims``: manifest data set -> the pairs on it where the paper makes none
    (the empty string where the record sets name no data set). ``shown``: the notebook's
    ``only-if:<key>`` switches (``exercises``).
    """

    parameters: CascadingParameters
    pairs: dict[str, PairFacts]
    paper: list[PaperComparison]
    without_claims: dict[str, list[str]]
    shown: dict[str, bool]
    section: str = "03_cascading"


# ---------------------------------------------------------------------------- compute

def _proportion(successes: float, n: int) -> Estimate:
    low, high = proportion_interval(successes, n)
    return Estimate.of((successes / n, low, high), "proportion_interval")


def _compare(a: np.ndarray, b: np.ndarray, seed: int, n_boot: int) -> Comparison:
    estimate = Estimate.of(paired_difference_interval(a, b, n_boot=n_boot, seed=seed), "paired_difference_interval")
    return Comparison(decide(estimate), bool(np.array_equal(a, b)))


def _choice(K: int, n_bins_effective: int) -> str:
    if K == 0:
        return "second_alone"
    return "first_alone" if K >= n_bins_effective else "cascade"


def _cost_of(r: Records) -> float | None:
    return (r.manifest.get("extraction") or {}).get("flops_per_sample")


def _curve_point(curve: pd.DataFrame, K: int) -> CurvePoint:
    row = curve[curve["K"] == K].iloc[0]
    saved = row.get("compute_saved")
    return CurvePoint(int(row["K"]), float(row["p_small"]), float(row["accuracy"]), int(row["large_calls_saved"]),
                      None if saved is None else float(saved))


def _curve(curve: pd.DataFrame) -> Curve:
    columns = table_columns(curve, ("K", "p_small", "accuracy", "large_calls_saved", "compute_saved"))
    return Curve(**columns)


def _bracket(shares: np.ndarray, p: float) -> tuple[int, int, float]:
    """The two operating points (indices = K) of a curve whose shares enclose ``p``, and the
    weight of the upper one in the mix whose share is ``p``; one point, weight 0, where a K has
    the share exactly (shares are counts over the same rows, so equal shares compare exactly)."""
    exact = np.flatnonzero(shares == p)
    if exact.size:
        return int(exact[0]), int(exact[0]), 0.0
    below, above = int(np.flatnonzero(shares < p)[-1]), int(np.flatnonzero(shares > p)[0])
    return below, above, float((p - shares[below]) / (shares[above] - shares[below]))


def _is_large_large(name: str) -> bool:
    return any(tag in name.lower() for tag in ("large-large", "large–large", "large_large", "large large"))


def _pair(name: str, first: Records, second: Records, names: list[str], *, K: int, calibration: str,
          n_bins: int, cal_fraction: float, seed: int, n_boot: int) -> PairFacts:
    cal = first.cal_mask(cal_fraction=cal_fraction, seed=seed)
    test = ~cal
    f1, f2 = (calibrate_records(r, cal, method=calibration) for r in (first, second))
    v1, v2 = first.verified, second.verified
    t1, t2 = v1[test], v2[test]
    n_test = int(test.sum())

    costs = {"cost_first": _cost_of(first), "cost_second": _cost_of(second)}
    # one fit per router: the curves, the rows routed at each K and the curve on cal all use these two
    routers = {"UC": AdvantageRouter(n_bins).fit(f1.raw[cal], f2.raw[cal]),
               "CC": AdvantageRouter(n_bins).fit(f1.calibrated[cal], f2.calibrated[cal])}
    on_test = {"raw_first": f1.raw[test], "raw_second": f2.raw[test], "calibrated_first": f1.calibrated[test],
               "calibrated_second": f2.calibrated[test], "correct_first": t1, "correct_second": t2}
    curves = cascade_curves(None, on_test, routers=routers, **costs)
    by_method = {m: curves[curves["method"] == m].reset_index(drop=True) for m in METHODS}
    cc, uc, rc = by_method["CC"], by_method["UC"], by_method["RC"]
    n_eff = routers["CC"].n_bins_
    K_used = min(K, n_eff)
    # K chosen on cal: the CC curve measured on the cal rows themselves (ties: the larger K, cheaper)
    on_cal = routers["CC"].curve(f1.calibrated[cal], v1[cal], v2[cal])
    K_cal = int(on_cal["K"].to_numpy()[::-1][np.argmax(on_cal["accuracy"].to_numpy()[::-1])])
    better_is_first = v1[cal].mean() > v2[cal].mean()  # the better model, judged on cal
    better = t1 if better_is_first else t2

    def rows(method: str, k: int) -> np.ndarray:
        confidence = f1.calibrated[test] if method == "CC" else f1.raw[test]
        return np.where(routers[method].route(confidence, k), t1, t2)

    def point(k: int) -> OperatingPoint:
        cc_rows = rows("CC", k)
        at = _curve_point(cc, k)
        choice = _choice(k, n_eff)
        fields: dict[str, Any] = {}
        if choice == "cascade":
            below, above, weight = _bracket(uc["p_small"].to_numpy(), at.p_small)
            uc_rows = (1 - weight) * rows("UC", below) + weight * rows("UC", above)
            random_rows = at.p_small * t1 + (1 - at.p_small) * t2  # random routing's expected score per row
            fields = {"uc_K_below": below, "uc_K_above": above, "uc_weight_above": weight,
                      "cc_vs_uc": _compare(cc_rows, uc_rows, seed, n_boot),
                      "cc_vs_random": _compare(cc_rows, random_rows, seed, n_boot)}
        return OperatingPoint(K=k, choice=choice, p_first=at.p_small, accuracy=_proportion(cc_rows.sum(), n_test),
                              gain=_compare(cc_rows, better, seed, n_boot), compute_saved=at.compute_saved,
                              saves_compute=None if at.compute_saved is None else at.compute_saved > 0, **fields)

    at_fixed_K, at_cal_K = point(K_used), point(K_cal)
    # CC against UC and RC at the same share p (UC's curve read at CC's p: with ties the two
    # curves can have different K grids), on the K strictly between the two models alone:
    # descriptive shares of the curve, no verdict rests on them.
    inner = ((cc["K"] > 0) & (cc["K"] < n_eff)).to_numpy()
    p = cc["p_small"].to_numpy()
    acc = cc["accuracy"].to_numpy()
    uc_at_p = np.interp(p, uc["p_small"].to_numpy(), uc["accuracy"].to_numpy())
    best = int(np.argmax(acc))
    tie_value, tie_share = largest_tie_share(f1.calibrated[cal])
    dataset = first.manifest.get("dataset")
    return PairFacts(
        first=names[0], second=names[1], better=names[0] if better_is_first else names[1],
        dataset=None if dataset is None else str(dataset), paper_dataset=reference_dataset(dataset),
        large_large=_is_large_large(name), n_cal=int(cal.sum()), n_test=n_test, n_bins_effective=n_eff,
        n_bins_effective_uc=routers["UC"].n_bins_, bins_merged=n_eff < n_bins, tie_value=tie_value,
        tie_share=tie_share, K=K, K_capped=K_used < K,
        accuracy_first=_proportion(t1.sum(), n_test), accuracy_second=_proportion(t2.sum(), n_test),
        at_fixed_K=at_fixed_K, at_cal_K=at_cal_K, beats_both=at_cal_K.gain.verdict.outcome == "above",
        best_cc_accuracy=float(acc[best]), best_cc_K=int(cc["K"][best]), best_cc_p=float(p[best]),
        share_cc_at_least_uc=float(np.mean(acc[inner] >= uc_at_p[inner] - 1e-12)) if inner.any() else None,
        share_cc_above_rc=float(np.mean(acc[inner] > rc["accuracy"].to_numpy()[inner])) if inner.any() else None,
        mean_cc_minus_uc=float(np.mean(acc[inner] - uc_at_p[inner])) if inner.any() else None,
        at_K={m: _curve_point(c, K_used) for m, c in by_method.items() if K_used in set(c["K"])},
        curves={m: _curve(c) for m, c in sorted(by_method.items())})


def _sorted_by_outcome(claim: str, point: str, names: Sequence[str], pairs: Mapping[str, PairFacts]) -> ClaimCheck:
    groups: dict[str, list[str]] = {k: [] for k in ("above", "below", "within", "identical", "model_alone")}
    for name in names:
        at = getattr(pairs[name], "at_fixed_K" if point == "fixed" else "at_cal_K")
        if claim == LARGE_LARGE_CLAIM:
            comparison = at.gain
        else:
            comparison = at.cc_vs_random if claim == "cc_above_random" else at.cc_vs_uc
        if at.choice != "cascade" or comparison is None:
            groups["model_alone"].append(name)
        elif comparison.identical:
            groups["identical"].append(name)
        else:
            groups[comparison.verdict.outcome].append(name)
    return ClaimCheck(claim, point, **groups)


def _paper_comparisons(pairs: Mapping[str, PairFacts]) -> tuple[list[PaperComparison], dict[str, list[str]]]:
    reference = paper_reference()["datasets"]
    with_claims: dict[str, list[str]] = {}
    without: dict[str, list[str]] = {}
    for name, pair in pairs.items():
        key = pair.paper_dataset
        if key is not None and (reference[key].get("cascading") or {}).get("claims"):
            with_claims.setdefault(key, []).append(name)
        else:
            without.setdefault(pair.dataset or "", []).append(name)
    out = []
    for key, names in with_claims.items():
        cascading = reference[key]["cascading"]
        checks = [_sorted_by_outcome(claim, point, names, pairs)
                  for claim in cascading["claims"] for point in ("fixed", "cal")]
        if (cascading.get("large_large") or {}).get("beats_both"):
            checks.append(_sorted_by_outcome(LARGE_LARGE_CLAIM, "cal", [n for n in names if pairs[n].large_large],
                                             pairs))
        out.append(PaperComparison(key, names, checks))
    return out, without


def _checked_pairs(pairs: Any) -> dict[str, list[Any]]:
    if not isinstance(pairs, Mapping) or not pairs:
        raise ValueError(f"pairs: expected a non-empty mapping name -> [first, second], got {pairs!r}")
    out = {}
    for name, sets in pairs.items():
        if isinstance(sets, (str, os.PathLike, Records)) or not isinstance(sets, Sequence) or len(sets) != 2:
            raise ValueError(f"pairs[{name!r}]: expected two record sets [first, second], got {sets!r}")
        out[str(name)] = list(sets)
    return out


def compute(pairs: Mapping[str, Sequence[str | os.PathLike | Records]], *, K: int = 8, calibration: str = "auto",
            n_bins: int = 15, cal_fraction: float = 0.5, seed: int = 0, n_boot: int = 2000) -> CascadingFacts:
    """Algorithm 1 on every pair: the curves RC / UC / CC / oracle over K, CC at the fixed K and
    at the K chosen on cal, and every verdict, from the pairs' record sets.

    Each pair's rows are aligned by id and split into cal and test
    (:meth:`calcas.Records.cal_mask`). Each model is calibrated on cal (temperature scaling on
    logits, Platt scaling on probabilities; :func:`calcas.calibrate_records`); the routers are
    fitted on the cal confidences, raw (UC) and calibrated (CC), which are probabilities in
    [0, 1]; everything is then measured on the test rows.

    Parameters
    ----------
    pairs : mapping name -> [first, second]
        Paths of record sets (or :class:`calcas.Records`), the first asked first (usually the
        small model). A name containing "large-large" marks a large-large cascade, which the
        paper's large-large claims are checked on.
    K : int, default 8
        Bins kept by the first model at the fixed operating point, set before looking at test,
        ``0 <= K <= n_bins``; capped at the bins that exist on cal (tied confidences are never
        split, so fewer than ``n_bins`` may exist).
    calibration : {"auto", "temperature", "platt"}
        As in :func:`calcas.calibrate_records`.
    n_bins : int, default 15
        Equal-count bins asked for on the first model's cal confidence (the paper: 15).
    cal_fraction : float, default 0.5
        Share of the rows in the cal split, in (0, 1).
    seed : int, default 0
        Seed of the cal/test split and of every bootstrap.
    n_boot : int, default 2000
        Resamples of every paired bootstrap interval (:func:`calcas.paired_difference_interval`).

    Returns
    -------
    CascadingFacts
        Per pair (:class:`PairFacts`): each model's test accuracy with its Wilson interval;
        CC at the fixed K and at the cal-chosen K (:class:`OperatingPoint`): what the K makes of
        the pair (a cascade or a model alone), its accuracy, and paired 95% bootstrap intervals
        of CC against the better model, against UC at the same share and against random
        routing at the same share, each with its verdict; the curves. Per data set the paper
        makes claims about, those claims beside these verdicts (:class:`PaperComparison`).

    Raises
    ------
    ValueError
        On an empty or malformed ``pairs``, ``K`` outside [0, n_bins], ``n_bins`` < 1, an unknown
        ``calibration``, ``cal_fraction`` outside (0, 1), a negative or non-integer ``seed``, or
        ``n_boot`` < 1.
    """
    checked = _checked_pairs(pairs)
    n_bins = check_positive_int(n_bins, "n_bins")
    K = check_k(K, n_bins)
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration: expected one of {CALIBRATIONS}, got {calibration!r}")
    if isinstance(cal_fraction, bool) or not isinstance(cal_fraction, (int, float)) or not 0.0 < cal_fraction < 1.0:
        raise ValueError(f"cal_fraction: must be strictly between 0 and 1, got {cal_fraction!r}")
    check_integer(seed, "seed")
    if seed < 0:
        raise ValueError(f"seed: must be >= 0, got {seed}")
    n_boot = check_positive_int(n_boot, "n_boot")
    out, every_set, shown_paths = {}, [], {}
    for name, sets in checked.items():
        loaded, names = load_record_sets(sets)
        every_set += loaded
        first, second = align(*loaded)
        out[name] = _pair(name, first, second, names, K=K, calibration=calibration, n_bins=n_bins,
                          cal_fraction=float(cal_fraction), seed=int(seed), n_boot=n_boot)
        shown_paths[name] = [n if isinstance(p, Records) else str(p) for p, n in zip(sets, names)]
    parameters = CascadingParameters(shown_paths, K, calibration, n_bins, float(cal_fraction), int(seed), n_boot)
    paper, without = _paper_comparisons(out)
    return CascadingFacts(parameters, out, paper, without, {"exercises": exercises_shown(every_set)})


# ---------------------------------------------------------------------------- prose

# Likely reasons, phrased once: a pair's paragraph and the comparison with the paper both give them.
_WHY_BELOW_UC = ("The likely reason: each model is calibrated by one global map fitted over all its rows, while the "
                 "router compares the second model's mean confidence within the first model's bins, where the second "
                 "model can remain miscalibrated; raw confidences miscalibrated alike can compare better.")
_WHY_SAME_AS_UC = ("The likely reason: calibration maps each model's confidence monotonically, so both routers cut the "
                   "first model's rows into the same bins, and here they also keep the same ones.")
_WHY_BELOW_RANDOM = ("The likely reason: the second model's advantage per bin, measured on cal, does not carry over "
                     "to test for this pair, so the bins handed to the first model are worse than a random share.")
_WHY_LOSES = ("The likely reason: a K chosen as the best on one half need not be the best on the other, and here the "
              "rows it hands to the first model are ones the better model gets right more often.")

# What a deciding interval reads, per comparison (identical: the two scores agree on every test row).
_GAIN = {"above": "the cascade beats both models", "below": "it loses to the better model",
         "within": "the data cannot tell it from the better model",
         "identical": "it is right on exactly the same test rows as {better}"}
_ALONE_GAIN = {**_GAIN, "above": "it beats the better model"}  # a model alone, against the better one
_VS_UC = {"above": "CC is more accurate than UC", "below": "CC is less accurate than UC",
          "within": "the data cannot tell CC from UC", "identical": "UC is right on exactly the same test rows"}
_VS_RANDOM = {"above": "CC beats random routing", "below": "CC is less accurate than random routing",
              "within": "the data cannot tell CC from random routing",
              "identical": "random routing scores the same on every test row"}


def _reads(comparison: Comparison) -> str:
    """The key of a comparison's reading: its verdict's outcome, or "identical"."""
    return "identical" if comparison.identical else comparison.verdict.outcome


def _routing_sentences(pair: PairFacts, at: OperatingPoint) -> list[str]:
    uc, rc = at.cc_vs_uc, at.cc_vs_random
    where = (f"its operating point K = {at.uc_K_below}" if at.uc_K_below == at.uc_K_above else
             f"mixing its operating points K = {at.uc_K_below} and {at.uc_K_above}")
    out = [f"Against UC at the same share ({where}), CC differs by {signed_interval_text(uc.verdict.estimate)}: "
           f"{_VS_UC[_reads(uc)]}; against random routing at the same share, by "
           f"{signed_interval_text(rc.verdict.estimate)}: {_VS_RANDOM[_reads(rc)]}."]
    out += [why for why, shown in ((_WHY_BELOW_UC, _reads(uc) == "below"), (_WHY_SAME_AS_UC, uc.identical),
                                   (_WHY_BELOW_RANDOM, _reads(rc) == "below")) if shown]
    return out


def _point_sentences(pair: PairFacts, at: OperatingPoint, where: str) -> list[str]:
    """CC at one operating point (``where``: "At the fixed K = 8", ...): what the K makes of the
    pair, its accuracy and its verdicts."""
    if at.choice == "cascade":
        gain = _GAIN[_reads(at.gain)].format(better=pair.better)
        return [f"{where}, CC gives {pct(at.p_first)} of the test rows to {pair.first} and reaches "
                f"{interval_text(at.accuracy)}; its paired gain over {pair.better} (the better model on cal) is "
                f"{signed_interval_text(at.gain.verdict.estimate)}: {gain}.", *_routing_sentences(pair, at)]
    out = [f"{where}: no cascade chosen: {pair.second} alone." if at.choice == "second_alone" else
           f"{where}, {pair.first} keeps every bin: {pair.first} alone."]
    if not at.gain.identical:
        out.append(f"Its paired difference from {pair.better} (the better model on cal) is "
                   f"{signed_interval_text(at.gain.verdict.estimate)}: {_ALONE_GAIN[at.gain.verdict.outcome]}.")
    return out


def _pair_paragraph(name: str, pair: PairFacts) -> str:
    on = f" of {dataset_label(pair.dataset)}" if pair.dataset else ""
    out = [f"**{name}** ({pair.n_test:,} test rows{on}): {pair.first} {interval_text(pair.accuracy_first)} and "
           f"{pair.second} {interval_text(pair.accuracy_second)} alone."]
    if pair.bins_merged:
        out.append(f"Only {pair.n_bins_effective} distinct bins exist on cal ({pct(pair.tie_share)} of "
                   f"{pair.first}'s calibrated confidences equal {fmt(pair.tie_value, 4)}; tied values are never "
                   f"split), so K runs from 0 to {pair.n_bins_effective}"
                   + (f" and the fixed K = {pair.K} becomes {pair.K_used}." if pair.K_capped else "."))
    out += _point_sentences(pair, pair.at_fixed_K, f"At the fixed K = {pair.K_used}")
    if pair.at_fixed_K.choice == "first_alone":
        out.append("The fixed K says nothing about routing here; the K chosen on cal is the one to read.")
    out += _point_sentences(pair, pair.at_cal_K, f"At K = {pair.K_cal}, chosen on cal")
    if pair.at_cal_K.choice == "second_alone":
        out.append(f"On the cal rows no K beats {pair.second} alone: calibrated routing finds nothing to gain for "
                   "this pair.")
    elif pair.at_cal_K.choice == "first_alone":
        out.append(f"On the cal rows {pair.first} alone is best: the second model adds nothing there.")
    out.append(f"The best K on test (K = {pair.best_cc_K}, {fmt(pair.best_cc_accuracy, 4)}) is optimistic and "
               "decides nothing here.")
    if pair.share_cc_at_least_uc is not None:
        out.append(f"Along the curve, between the two models alone, CC is at least as accurate as UC at "
                   f"{pct(pair.share_cc_at_least_uc)} of its operating points (mean difference "
                   f"{signed(pair.mean_cc_minus_uc)}) and above random routing at {pct(pair.share_cc_above_rc)}; "
                   "these shares describe the curves and decide nothing.")
    saved = pair.at_fixed_K.compute_saved
    if saved is not None:
        out.append(f"Compute saved at K = {pair.K_used} against {pair.second} alone: {signed(saved, 3)}"
                   + ("." if pair.at_fixed_K.saves_compute else
                      f" ({pair.first} always runs, and costs at least as much as the calls of {pair.second} it "
                      "saves)."))
    return " ".join(out)


#: Per claim, what each reading of its deciding interval says beside the paper ({} = the pairs),
#: in the order the sentence gives them, and the likely reason where the data go against it.
_CLAIM_READINGS: dict[str, dict[str, str]] = {
    "cc_above_random": {
        "above": "CC beats random routing for {}, as in the paper",
        "within": "the data cannot tell CC from random routing for {}",
        "identical": "CC and random routing score the same on every test row for {}",
        "below": "CC is significantly below random routing for {}, the opposite of the paper"},
    "cc_above_uc": {
        "above": "CC beats UC for {}, as in the paper",
        "within": "the data cannot tell CC from UC for {}",
        "identical": "CC and UC are right on exactly the same test rows for {}, so CC is not better there, unlike "
                     "the paper",
        "below": "CC is significantly below UC for {}, the opposite of the paper"},
    "uc_close_to_cc": {
        "within": "the data cannot tell CC from UC for {}, in line with the paper's \"very close\"",
        "identical": "CC and UC are right on exactly the same test rows for {}, as close as can be",
        "above": "CC is significantly above UC for {}",
        "below": "CC is significantly below UC for {}"},
    LARGE_LARGE_CLAIM: {
        "above": "the cascade beats both models for {}, as in the paper",
        "within": "the data cannot tell the cascade from the better model for {}, so it is not shown to beat both",
        "identical": "the cascade is right on exactly the same test rows as the better model for {}",
        "below": "the cascade loses to the better model for {}, the opposite of the paper"},
}
_CLAIM_REASONS: dict[tuple[str, str], str] = {
    ("cc_above_random", "below"): _WHY_BELOW_RANDOM, ("cc_above_uc", "below"): _WHY_BELOW_UC,
    ("cc_above_uc", "identical"): _WHY_SAME_AS_UC, (LARGE_LARGE_CLAIM, "below"): _WHY_LOSES,
    ("uc_close_to_cc", "above"): "Where the interval excludes zero the two differ here, though possibly by little: "
                                 "the paper calls them very close, not equal.",
}
_CLAIM_REASONS[("uc_close_to_cc", "below")] = _CLAIM_REASONS[("uc_close_to_cc", "above")]
_AT = {"fixed": "at the fixed K", "cal": "at the K chosen on cal"}
_ALONE_AT = {"fixed": "{} {} a model alone at this K (nothing routed, nothing to compare)",
             "cal": "no cascade is chosen for {} (a model alone: nothing to compare)"}


def _claim_sentences(check: ClaimCheck) -> list[str]:
    """Which pairs agree with one claim at one operating point, which cannot tell, which go
    against it, and the likely reason where they do."""
    readings = _CLAIM_READINGS[check.claim]
    said = [phrase.format(names_list(getattr(check, reading))) for reading, phrase in readings.items()
            if getattr(check, reading)]
    if check.model_alone:
        said.append(_ALONE_AT[check.operating_point].format(names_list(check.model_alone),
                                                            "is" if len(check.model_alone) == 1 else "are"))
    at = _AT[check.operating_point]
    if not said:
        return [f"No pair here is large–large, so the claim is not tested {at}."]
    reasons = dict.fromkeys(_CLAIM_REASONS[(check.claim, reading)] for reading in readings
                            if getattr(check, reading) and (check.claim, reading) in _CLAIM_REASONS)
    return [f"{at[0].upper()}{at[1:]}, {'; '.join(said)}.", *reasons]


def _claim_statement(dataset: str, claim: str) -> str:
    reference = paper_reference()
    if claim == LARGE_LARGE_CLAIM:
        ll = reference["datasets"][dataset]["cascading"]["large_large"]
        reached = f", reaching accuracy {fmt(ll['accuracy'], 5)}" if ll.get("accuracy") is not None else ""
        return (f"The paper's large–large pair ({ll['pair']}, {ll['source']}) beats both of its models{reached}; "
                "here a large–large pair beats both only where the paired interval of its gain at the K chosen on "
                "cal lies above zero.")
    return f"The paper claims: {reference['claims'][claim]}."


def _beside_paper(comparison: PaperComparison) -> str:
    reference = paper_reference()["datasets"][comparison.dataset]
    cascading = reference["cascading"]
    out = [f"**Beside the paper: {reference['name']}** ({names_list(comparison.pairs)}). The paper's cascades on "
           f"{reference['name']} ({cascading['source']}): {cascading['models']}. Compare directions, not values. "
           "Each claim is tested at the fixed K and at the K chosen on cal, for CC, by a paired 95% interval on the "
           "test rows: \"as in the paper\" only where the paper's direction and an interval excluding zero agree."]
    for claim in dict.fromkeys(check.claim for check in comparison.checks):
        out.append(_claim_statement(comparison.dataset, claim))
        out += [s for c in comparison.checks if c.claim == claim for s in _claim_sentences(c)]
    if cascading.get("large_large") is None:
        out.append(f"The paper makes no large–large claim for {reference['name']}.")
    return " ".join(out)


def _without_claims(dataset: str, names: list[str]) -> str:
    about = f"about {dataset_label(dataset)}" if dataset else "about the data set of these record sets (their manifests name none)"
    return (f"The paper makes no cascading claim {about} ({names_list(names)}): the verdicts above stand on their "
            "own, with no result of the paper to set them beside.")


def prose(facts: CascadingFacts) -> dict[str, str]:
    """The chapter's sentences, from its facts only.

    Parameters
    ----------
    facts : CascadingFacts
        From :func:`compute`, or read back from ``results.json`` (``CascadingFacts.from_dict``).

    Returns
    -------
    dict with ``"pairs"`` (one paragraph per pair: accuracies, CC at the fixed and the
    cal-chosen K with each verdict, the optimistic best K on test, the descriptive shares,
    compute saved) and ``"beside_paper"`` (per data set, the paper's cascading claims for it and
    which pairs agree, cannot tell, or show the opposite; or that the paper makes none).
    """
    pairs = "\n\n".join(_pair_paragraph(name, pair) for name, pair in facts.pairs.items())
    beside = [_beside_paper(c) for c in facts.paper]
    beside += [_without_claims(dataset, names) for dataset, names in facts.without_claims.items()]
    beside.append("Every verdict uses the K fixed in advance or the K chosen on cal, never the best K on test, with "
                  "a paired 95% interval on the test rows that holds the cal fit fixed.")
    return {"pairs": pairs, "beside_paper": "\n\n".join(beside)}


# ---------------------------------------------------------------------------- tables, figures, explorers

_CHOICE_TEXT = {"second_alone": "no cascade: {second} alone", "first_alone": "{first} alone", "cascade": "cascade"}
_OUTCOME_TEXT = {"above": "above 0", "below": "below 0", "within": "contains 0"}


def _choice_text(pair: PairFacts, at: OperatingPoint) -> str:
    return _CHOICE_TEXT[at.choice].format(first=pair.first, second=pair.second)


def _verdict_text(comparison: Comparison | None) -> str | None:
    if comparison is None:
        return None
    return "identical rows" if comparison.identical else _OUTCOME_TEXT[comparison.verdict.outcome]


def _pair_label(name: str, r: PairFacts) -> str:
    """The row label of a pair: its name, with its two models when the name does not say them."""
    return name if "→" in name else f"{name} ({r.first} → {r.second})"


def _accuracy_table(facts: CascadingFacts) -> pd.DataFrame:
    rows = []
    for name, r in facts.pairs.items():
        rows.append({"pair": _pair_label(name, r), "first alone": table_interval(r.accuracy_first),
                     "second alone": table_interval(r.accuracy_second),
                     f"CC at K = {r.K_used} (fixed)": table_interval(r.at_fixed_K.accuracy),
                     "CC at the K chosen on cal": f"{table_interval(r.at_cal_K.accuracy)} (K\u00a0=\u00a0{r.K_cal})",
                     "best CC on test (optimistic)": f"{fmt(r.best_cc_accuracy)} (K\u00a0=\u00a0{r.best_cc_K})"})
    return pd.DataFrame(rows).set_index("pair")


def _gain_table(facts: CascadingFacts) -> pd.DataFrame:
    rows = []
    for name, r in facts.pairs.items():
        for label, at in ((f"K = {r.K_used} (fixed)", r.at_fixed_K), (f"K = {r.K_cal} (chosen on cal)", r.at_cal_K)):
            rows.append({"pair": _pair_label(name, r), "CC at": label, "better alone (on cal)": r.better,
                         "gain over it [95%]": table_interval(at.gain.verdict.estimate, signed=True),
                         "reads": _verdict_text(at.gain), "what the K makes": _choice_text(r, at)})
    return pd.DataFrame(rows).set_index(["pair", "CC at"])


def _against_table(facts: CascadingFacts, against: str) -> pd.DataFrame:
    """CC against UC (``against="uc"``) or random routing (``"random"``) at CC's share p."""
    rows = []
    for name, r in facts.pairs.items():
        for label, at in ((f"K = {r.K_used} (fixed)", r.at_fixed_K), (f"K = {r.K_cal} (chosen on cal)", r.at_cal_K)):
            comparison = at.cc_vs_uc if against == "uc" else at.cc_vs_random
            row = {"pair": _pair_label(name, r), "CC at": label, "share p asked first": at.p_first}
            if against == "uc":
                row["UC's K around p"] = ("—" if at.uc_K_below is None
                                          else f"{at.uc_K_below}" if at.uc_K_below == at.uc_K_above
                                          else f"{at.uc_K_below} and {at.uc_K_above}")
            difference = "CC − UC [95%]" if against == "uc" else "CC − random [95%]"
            row[difference] = (table_interval(comparison.verdict.estimate, signed=True)
                               if comparison is not None else MISSING)
            row["reads"] = _verdict_text(comparison) or _choice_text(r, at)
            rows.append(row)
    return pd.DataFrame(rows).set_index(["pair", "CC at"])


def _curve_shares_table(facts: CascadingFacts) -> pd.DataFrame:
    rows = [{"pair": _pair_label(name, r), "share of K where CC ≥ UC": pct(r.share_cc_at_least_uc),
             "mean CC − UC over K": signed(r.mean_cc_minus_uc), "share of K where CC > random": pct(r.share_cc_above_rc)}
            for name, r in facts.pairs.items()]
    return pd.DataFrame(rows).set_index("pair")


#: The operating points' columns as the table heads them.
_POINT_COLUMNS = {"K": "K", "p_small": "share asked first", "accuracy": "accuracy",
                  "large_calls_saved": "second-model calls saved", "compute_saved": "compute saved"}


def _operating_points_table(facts: CascadingFacts) -> pd.DataFrame:
    rows = [{"pair": _pair_label(name, r), "method": method, **point.to_dict()}
            for name, r in facts.pairs.items() for method, point in r.at_K.items()]
    table = pd.DataFrame(rows).set_index(["pair", "method"])
    return table.dropna(axis=1, how="all").rename(columns=_POINT_COLUMNS)


def tables(facts: CascadingFacts) -> dict[str, pd.DataFrame]:
    """The chapter's tables, from its facts, one question each and one cell per estimate
    ("value [low, high]").

    Returns
    -------
    dict of DataFrames
        ``"accuracy"``: per pair, each model alone and CC at the fixed and the cal-chosen K (95%
        Wilson intervals), and the (optimistic) best K on test. ``"gains"``: per pair and
        operating point, the paired gain over the better model and what its interval reads.
        ``"vs_uc"`` and ``"vs_random"``: CC against UC and against random routing at CC's share
        p (paired differences, 95% intervals). ``"curve_shares"``: the descriptive shares of CC's
        curve against UC's and RC's. ``"operating_points"``: RC, UC, CC and the oracle at the fixed K.
    """
    return {"accuracy": _accuracy_table(facts), "gains": _gain_table(facts),
            "vs_uc": _against_table(facts, "uc"), "vs_random": _against_table(facts, "random"),
            "curve_shares": _curve_shares_table(facts), "operating_points": _operating_points_table(facts)}


def curve_table(pair: PairFacts) -> pd.DataFrame:
    """One pair's curves as the long table :func:`calcas.cascade_curves` returns (``method, K,
    p_small, accuracy, large_calls_saved`` and ``compute_saved`` where costs were known), built
    from the facts alone."""
    frames = []
    for method, curve in pair.curves.items():
        columns = {k: v for k, v in curve.to_dict().items() if v is not None}
        frames.append(pd.DataFrame(columns).assign(method=method))
    table = pd.concat(frames, ignore_index=True)
    return table[["method"] + [c for c in table.columns if c != "method"]]


def figures(facts: CascadingFacts) -> Figure:
    """The paper's Figure 2/3 for these pairs: one panel per pair, CC marked at the fixed K
    (:func:`calcas.render.plots.cascade_grid`); returns the matplotlib Figure."""
    return plots.cascade_grid({name: curve_table(r) for name, r in facts.pairs.items()},
                              highlight_K={name: r.K_used for name, r in facts.pairs.items()},
                              titles={name: panel_title(name, r) for name, r in facts.pairs.items()})


def panel_title(name: str, pair: PairFacts) -> str:
    """A pair's panel title: its name, and under it the two record sets in routing order only
    where the name does not already say the order ("DINO → ViT" is its own title;
    "large-large: ViT + DINO" gains "ViT → DINO")."""
    return name if "→" in name else f"{name}\n{pair.first} → {pair.second}"


def explorers(facts: CascadingFacts) -> dict[str, interactive.Explorer]:
    """The kernel-free explorer (:func:`calcas.render.interactive.cascade_explorer`), its slider
    starting at the fixed K: one pair's under the pair's name, or, with several pairs, one
    explorer (``"pairs"``) whose drop-down chooses the pair, so a page of many pairs stays short."""
    if len(facts.pairs) == 1:
        (name, r), = facts.pairs.items()
        return {name: interactive.cascade_explorer(curve_table(r), title=name, default=r.K_used)}
    return {"pairs": interactive.cascade_explorer({name: curve_table(r) for name, r in facts.pairs.items()},
                                                  title="choose a pair",
                                                  default={name: r.K_used for name, r in facts.pairs.items()})}
