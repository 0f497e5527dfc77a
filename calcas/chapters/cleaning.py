"""The cleaning chapter: Algorithm 2 of the paper (§2.3, label cleaning with a mixture of
experts), its Figure 4 (precision against detection rate), Table 3 (method 2 against Confident
Learning) and Table 2 (accuracy measured against cleaned labels).

Three steps, as every chapter (:mod:`calcas.chapters`):

- :func:`compute` calibrates every expert on the cal half, flags labels with methods 1-3 and
  Confident Learning, sweeps method 2 over K, and decides, each from intervals whose coverage
  the estimator study measures: whether precision falls as more is flagged (method 2 at the
  chapter's K against method 1, two Wilson intervals), whether method 2 is more precise than
  Confident Learning at CL's detection rate (method 2's sweep point nearest that rate, two
  Wilson intervals), and whether each expert's test accuracy rises against cleaned labels (a
  paired difference on the same test rows);
- :func:`prose` phrases those facts, and sets them beside the paper's cleaning claims for the
  experts' own data set only (``paper_reference()["datasets"][key]["cleaning"]``);
- :func:`tables`, :func:`figures` and :func:`explorers` draw them (:mod:`calcas.render`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .._validate import check_integer, check_positive_int
from ..calibration import calibrate_records
from ..cleaning import (cleaned_accuracy, cleaning_sweep, confident_learning_flags, flag_class_threshold,
                        flag_confident_disagreement, flag_top1_disagreement, label_errors, precision_interval)
from ..metrics import paired_difference_interval
from ..records import Records, align
from ..render import interactive, plots
from .common import (Estimate, Facts, Verdict, claim_agreement, dataset_label, decide, estimate_difference,
                     exercises_shown, fmt, interval_text, load_record_sets, names_list, paper_reference, pct,
                     reference_dataset, signed, signed_interval_text, table_columns, table_interval)

__all__ = ["CleaningFacts", "CleaningParameters", "FlagCount", "Sweep", "OverlapGroup", "Overlap", "ExpertAccuracy",
           "CleanedAccuracy", "PrecisionFalls", "VersusCL", "TRUTH_SOURCES", "FLAG_ORDER", "compute", "prose", "tables",
           "figures", "explorers"]

CALIBRATIONS = ("auto", "temperature", "platt")

#: Where the ground truth of label errors comes from (``CleaningFacts.truth``), in words.
TRUTH_SOURCES = {"is_noisy": "the labels flipped on purpose in this data set, known exactly",
                 "valid_labels": "every acceptable label of each sample"}

#: The methods of ``CleaningFacts.flags`` in the order the chapter shows them (``results.json``
#: sorts its keys).
FLAG_ORDER = ("method_1", "method_2", "method_3", "confident_learning")

# ---------------------------------------------------------------------------- facts


@dataclasses.dataclass(frozen=True)
class CleaningParameters(Facts):
    """The chapter's parameters, as the notebook received them (record sets as paths, or the
    display names of :class:`calcas.Records` given directly)."""

    experts: list[str]
    K: int
    calibration: str
    n_bins: int
    cal_fraction: float
    seed: int


@dataclasses.dataclass(frozen=True)
class FlagCount(Facts):
    """What one method flags: how many labels, the share of all samples (the detection rate),
    how many of them have known ground truth (``n_rated``), and the share of those that are
    truly wrong, with its Wilson interval (``precision``; every end None without ground truth)."""

    label: str
    flagged: int
    detection_rate: float
    n_rated: int
    precision: Estimate


@dataclasses.dataclass(frozen=True)
class Sweep(Facts):
    """Method 2 swept over K, largest K first (:func:`calcas.cleaning_sweep`): the curve of the
    paper's Figure 4. ``precision`` is None where nothing flagged has ground truth."""

    K: list[int]
    n_flagged: list[int]
    detection_rate: list[float]
    n_rated: list[int]
    precision: list[float | None]

    def frame(self) -> pd.DataFrame:
        """The sweep as :func:`calcas.cleaning_sweep` returns it (precision NaN where None)."""
        table = pd.DataFrame(self.to_dict())
        return table.assign(precision=table["precision"].astype(float))


@dataclasses.dataclass(frozen=True)
class OverlapGroup(Facts):
    """One row of Table 3: how many labels the group holds and the precision of its flags
    (Wilson interval; every end None without ground truth)."""

    label: str
    n_flagged: int
    precision: Estimate


@dataclasses.dataclass(frozen=True)
class Overlap(Facts):
    """Table 3: method 2 at the chapter's K against Confident Learning, each alone and together.

    ``method2_flags_fewer``: method 2 flags fewer labels in all than CL; ``fewer_own_flags``:
    fewer labels only method 2 flags than only CL flags. ``reversed_from_paper``: whether
    ``fewer_own_flags`` is the opposite of the paper's Table 3 for the experts' data set (None
    where the paper has no Table 3 for it).
    """

    ours: OverlapGroup
    cl: OverlapGroup
    ours_only: OverlapGroup
    cl_only: OverlapGroup
    both: OverlapGroup
    method2_flags_fewer: bool
    fewer_own_flags: bool
    reversed_from_paper: bool | None


@dataclasses.dataclass(frozen=True)
class ExpertAccuracy(Facts):
    """One expert's row of Table 2, on the test half.

    ``given``: accuracy against the given labels; ``cleaned``: against cleaned labels (the
    labels method 2 flags replaced by the truth where known, or dropped: ``CleanedAccuracy.mode``);
    ``all_cleaned``: every label replaced by the truth (None where it is not known).
    ``gain``: ``cleaned - given``; in ``"replace"`` mode a paired difference on the same test
    rows (``paired_difference_interval``) and ``rises`` its verdict against zero (never "below":
    every expert disagrees with each flagged label, so it was counted wrong there); in ``"drop"``
    mode the two accuracies are over different rows, ``gain`` has no interval and ``rises`` is
    None.
    """

    given: float
    cleaned: float
    all_cleaned: float | None
    gain: Estimate
    rises: Verdict | None


@dataclasses.dataclass(frozen=True)
class CleanedAccuracy(Facts):
    """Table 2: every expert's test accuracy against given and cleaned labels.

    ``mode``: ``"replace"`` (flagged labels replaced by the ground truth, known from
    ``valid_labels``) or ``"drop"`` (flagged samples removed: no truth to replace them with).
    """

    mode: str
    n_test: int
    models: dict[str, ExpertAccuracy]


@dataclasses.dataclass(frozen=True)
class PrecisionFalls(Facts):
    """Does precision fall as more is flagged (the paper's Figure 4)? Method 2 at the chapter's
    K against method 1, which flags the most (every bin, ``K_all``): ``verdict`` decides
    ``precision(K) - precision(K_all)`` (two Wilson intervals, ``proportion_difference_interval``)
    against zero; "above" means precision falls as the detection rate rises."""

    K: int
    K_all: int
    verdict: Verdict


@dataclasses.dataclass(frozen=True)
class VersusCL(Facts):
    """Method 2 against Confident Learning at CL's detection rate: method 2's sweep point
    nearest that rate (``K``, ``detection_rate``, ``precision``; ties go to the larger K;
    ``is_method_1`` when that K keeps every bin), against CL's precision; ``verdict`` decides
    method 2 minus CL (two Wilson intervals) against zero: "above" means method 2 is the more
    precise, "below" the less, "within" that the data cannot tell."""

    K: int
    is_method_1: bool
    detection_rate: float
    precision: Estimate
    cl_detection_rate: float
    cl_precision: Estimate
    verdict: Verdict


@dataclasses.dataclass(frozen=True)
class CleaningFacts(Facts):
    """The cleaning chapter's ``results.json``.

    ``flags``: ``method_1``, ``method_2`` (at ``K_used``) and, where the experts carry class
    probabilities, ``method_3`` and ``confident_learning`` (both on ``method3_model``, the
    expert most accurate on cal). ``truth``: a key of :data:`TRUTH_SOURCES`, or None without
    ground truth (then no precision is known and nothing is decided). ``K_used``: ``K`` capped
    at the bins the experts' tied confidences formed (``K_capped``). ``precision_vs_detection``:
    the Spearman correlation of precision and detection rate along the sweep (describes the
    curve, decides nothing); ``ours_at_cl_rate``: method 2's precision interpolated along the
    sweep at CL's detection rate (describes, decides nothing). ``paper_dataset``: the key of
    ``paper_reference()["datasets"]`` for the experts' data set, or None; ``paper_claims``: each of
    its cleaning claims -> "agrees", "disagrees", "cannot_tell" or "not_measured"
    (:func:`calcas.chapters.common.claim_agreement`). ``shown``: the notebook's ``only-if``
    switches.
    """

    parameters: CleaningParameters
    dataset: str | None
    experts: list[str]
    method3_model: str
    n: int
    K: int
    K_used: int
    K_capped: bool
    n_bins_effective: int
    truth: str | None
    n_rated: int | None
    n_unrated: int | None
    noise_rate: float | None
    flags: dict[str, FlagCount]
    table3: Overlap | None
    table2: CleanedAccuracy
    precision_falls: PrecisionFalls | None
    versus_cl: VersusCL | None
    precision_vs_detection: float | None
    ours_at_cl_rate: float | None
    sweep: Sweep
    sweep_single: dict[str, Sweep]
    paper_dataset: str | None
    paper_claims: dict[str, str]
    shown: dict[str, bool]
    section: str = "04_cleaning"


# ---------------------------------------------------------------------------- compute

def _truth(r: Records) -> tuple[np.ndarray | None, str | None]:
    """Ground truth of label errors (1 wrong, 0 right, NaN unknown) and where it comes from."""
    if r.is_noisy is not None:  # flips made on purpose: known exactly for every sample
        return label_errors(r.label, is_noisy=r.is_noisy), "is_noisy"
    if r.valid_labels is not None:
        return label_errors(r.label, valid_labels=r.valid_labels), "valid_labels"
    return None, None


def _flag_count(label: str, flags: np.ndarray, is_error: np.ndarray | None) -> FlagCount:
    rated = 0 if is_error is None else int((flags & ~np.isnan(is_error)).sum())
    return FlagCount(label, int(flags.sum()), float(flags.mean()), rated,
                     Estimate.of(precision_interval(flags, is_error), "proportion_interval"))


def _sweep(table: pd.DataFrame) -> Sweep:
    return Sweep(**table_columns(table, [f.name for f in dataclasses.fields(Sweep)]))


def _right_against_cleaned(pred: np.ndarray, labels: np.ndarray, flags: np.ndarray,
                           valid_labels: Sequence[Sequence[int]]) -> np.ndarray:
    """Per row, whether ``pred`` is right once each flagged label with a known truth is replaced
    by it (the rows whose mean :func:`calcas.cleaned_accuracy` gives in ``"replace"`` mode)."""
    right = pred == labels
    for i in np.flatnonzero(flags):
        if len(valid_labels[i]):
            right[i] = pred[i] in set(np.asarray(valid_labels[i]).tolist())
    return right


def _table2(names: Sequence[str], sets: Sequence[Records], labels: np.ndarray, flags: np.ndarray,
            test: np.ndarray, seed: int) -> CleanedAccuracy:
    valid = sets[0].valid_labels
    mode = "replace" if valid is not None else "drop"
    valid_test = None if valid is None else [valid[i] for i in test]
    y, f = labels[test], flags[test]
    models = {}
    for name, r in zip(names, sets):
        pred = r.pred[test]
        right_given = pred == y
        given = float(right_given.mean())
        cleaned = cleaned_accuracy(pred, y, f, mode=mode, valid_labels=valid_test)
        if mode == "drop":  # the two accuracies are over different rows: nothing is paired, nothing decided
            models[name] = ExpertAccuracy(given, cleaned, None, Estimate(cleaned - given, None, None, "rows_dropped"),
                                          None)
            continue
        right_cleaned = _right_against_cleaned(pred, y, f, valid_test)
        gain = Estimate.of(paired_difference_interval(right_cleaned, right_given, seed=seed),
                           "paired_difference_interval")
        every = cleaned_accuracy(pred, y, np.ones(len(y), bool), valid_labels=valid_test)
        models[name] = ExpertAccuracy(given, cleaned, every, gain, decide(gain))
    return CleanedAccuracy(mode, int(len(test)), models)


def _overlap(m2: np.ndarray, cl: np.ndarray, K: int, is_error: np.ndarray | None,
             paper_table3: dict[str, Any] | None) -> Overlap:
    groups = {"ours": (f"method 2 (K = {K})", m2), "cl": ("Confident Learning", cl),
              "ours_only": ("method 2 only", m2 & ~cl), "cl_only": ("Confident Learning only", cl & ~m2),
              "both": ("both", m2 & cl)}
    rows = {key: OverlapGroup(label, int(g.sum()), Estimate.of(precision_interval(g, is_error), "proportion_interval"))
            for key, (label, g) in groups.items()}
    fewer_own = rows["ours_only"].n_flagged < rows["cl_only"].n_flagged
    reversed_from_paper = None
    if paper_table3 is not None:
        paper_fewer_own = paper_table3["ours_only"]["n_flagged"] < paper_table3["cl_only"]["n_flagged"]
        reversed_from_paper = fewer_own != paper_fewer_own
    return Overlap(**rows, method2_flags_fewer=rows["ours"].n_flagged < rows["cl"].n_flagged,
                   fewer_own_flags=fewer_own, reversed_from_paper=reversed_from_paper)


def _nearest_K(sweep: pd.DataFrame, rate: float) -> int:
    """The sweep's K whose detection rate is nearest ``rate`` (ties: the larger K, listed first)."""
    return int(sweep["K"].iloc[int(np.argmin(np.abs(sweep["detection_rate"].to_numpy() - rate)))])


def _trend(sweep: pd.DataFrame) -> float | None:
    rate, prec = sweep["detection_rate"].to_numpy(), sweep["precision"].to_numpy()
    ok = np.isfinite(prec)
    if ok.sum() < 3 or np.ptp(prec[ok]) == 0 or np.ptp(rate[ok]) == 0:
        return None
    return float(spearmanr(rate[ok], prec[ok]).statistic)


def _interpolated(sweep: pd.DataFrame, rate: float) -> float | None:
    rates, prec = sweep["detection_rate"].to_numpy(), sweep["precision"].to_numpy()
    ok = np.isfinite(prec)
    if not ok.any():
        return None
    order = np.argsort(rates[ok])
    return float(np.interp(rate, rates[ok][order], prec[ok][order]))


def _checked(experts: Any, K: Any, calibration: Any, n_bins: Any, cal_fraction: Any, seed: Any) -> None:
    if isinstance(experts, (str, os.PathLike, Records)) or not len(experts):
        raise ValueError("experts: expected a non-empty list of record sets (paths or Records), one per expert")
    n_bins = check_positive_int(n_bins, "n_bins")
    check_integer(K, "K")
    if not 1 <= K <= n_bins:
        raise ValueError(f"K: must be in [1, n_bins] = [1, {n_bins}], got {K}")
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration: expected one of {CALIBRATIONS}, got {calibration!r}")
    if not 0.0 < cal_fraction < 1.0:
        raise ValueError(f"cal_fraction: must be in (0, 1), got {cal_fraction}")
    check_integer(seed, "seed")


def compute(experts: Sequence[str | os.PathLike | Records], *, K: int = 12, calibration: str = "auto",
            n_bins: int = 15, cal_fraction: float = 0.5, seed: int = 0) -> CleaningFacts:
    """Algorithm 2 with every expert: methods 1-3, Confident Learning, the sweep over K, Tables
    2 and 3, and the verdicts.

    Parameters
    ----------
    experts : sequence of paths or :class:`calcas.Records`
        One record set per expert on the same data set (aligned by id). Their confidence is
        calibrated on the cal half (temperature scaling on logits, Platt on top-1
        probabilities). Ground truth of label errors comes from the first set's ``is_noisy``
        (known flips) or else its ``valid_labels`` (every acceptable label, e.g. ImageNet
        ReaL); without either, precision is unknown and nothing is decided.
    K : int
        Method 2's operating point, ``1 <= K <= n_bins``: each expert's K most accurate cal
        bins (capped at the bins its tied confidences formed: ``K_used``).
    calibration : {"auto", "temperature", "platt"}
    n_bins : int
        Equal-count bins per expert, fitted on cal.
    cal_fraction : float
        Share of samples in the cal split, in (0, 1).
    seed : int
        Seed of the cal/test split (by id) and of the paired bootstrap of Table 2.

    Returns
    -------
    CleaningFacts
        Method 3 and Confident Learning use the expert most accurate on cal and need its
        class probabilities (logits); without them they are left out (``shown``).
    """
    _checked(experts, K, calibration, n_bins, cal_fraction, seed)
    sets, names = load_record_sets(experts)
    sets = list(align(*sets)) if len(sets) > 1 else sets
    cal = sets[0].cal_mask(cal_fraction=cal_fraction, seed=seed)
    fits = [calibrate_records(r, cal, method=calibration) for r in sets]
    labels = sets[0].label
    is_error, truth = _truth(sets[0])
    preds = np.stack([r.pred for r in sets])
    confs = np.stack([f.calibrated for f in fits])
    best = int(np.argmax([r.verified[cal].mean() for r in sets]))

    def method_2(k: int) -> np.ndarray:
        return flag_confident_disagreement(preds, confs, labels, k, n_bins=n_bins, fit_mask=cal)

    sweep = cleaning_sweep(preds, confs, labels, n_bins=n_bins, fit_mask=cal, is_error=is_error)
    singles = {n: cleaning_sweep(preds[j], confs[j], labels, n_bins=n_bins, fit_mask=cal, is_error=is_error)
               for j, n in enumerate(names)}
    K_all = int(sweep["K"].max())
    K_used = min(K, K_all)
    m2 = method_2(K_used)
    flags = {"method_1": _flag_count("method 1", flag_top1_disagreement(preds, labels), is_error),
             "method_2": _flag_count(f"method 2 (K = {K_used})", m2, is_error)}
    probs = fits[best].probabilities
    cl = None
    if probs is not None:
        flags["method_3"] = _flag_count("method 3", flag_class_threshold(probs, labels), is_error)
        cl = confident_learning_flags(probs, labels)
        flags["confident_learning"] = _flag_count("Confident Learning", cl, is_error)

    paper_dataset = reference_dataset(sets[0].manifest.get("dataset"))
    paper_cleaning = paper_reference()["datasets"][paper_dataset].get("cleaning") if paper_dataset else None
    paper_dataset = paper_dataset if paper_cleaning else None  # the paper cleans only some of its data sets
    table3 = None if cl is None else _overlap(m2, cl, K_used, is_error, (paper_cleaning or {}).get("table3"))

    precision_falls = versus_cl = None
    if truth is not None and K_used < K_all:
        precision_falls = PrecisionFalls(K_used, K_all, decide(estimate_difference(
            flags["method_2"].precision, flags["method_1"].precision, "proportion_difference_interval")))
    if truth is not None and cl is not None:
        cl_entry = flags["confident_learning"]
        K_cl = _nearest_K(sweep, cl_entry.detection_rate)
        at = _flag_count(f"method 2 (K = {K_cl})", method_2(K_cl), is_error)
        versus_cl = VersusCL(K_cl, K_cl == K_all, at.detection_rate, at.precision, cl_entry.detection_rate,
                             cl_entry.precision, decide(estimate_difference(at.precision, cl_entry.precision,
                                                                            "proportion_difference_interval")))
    verdicts = {"precision_falls_with_detection_rate": precision_falls and precision_falls.verdict,
                "ours_above_cl": versus_cl and versus_cl.verdict}
    claims = {c: claim_agreement(verdicts.get(c)) for c in (paper_cleaning or {}).get("claims", [])}

    known = None if is_error is None else ~np.isnan(is_error)
    parameters = CleaningParameters([str(p) if not isinstance(p, Records) else n for p, n in zip(experts, names)],
                                    int(K), calibration, int(n_bins), float(cal_fraction), int(seed))
    return CleaningFacts(
        parameters=parameters, dataset=sets[0].manifest.get("dataset"), experts=names, method3_model=names[best],
        n=int(sets[0].n), K=int(K), K_used=K_used, K_capped=K_used < K, n_bins_effective=K_all, truth=truth,
        n_rated=None if known is None else int(known.sum()),
        n_unrated=None if known is None else int((~known).sum()),
        noise_rate=None if known is None else float(np.nanmean(is_error)),
        flags=flags, table3=table3, table2=_table2(names, sets, labels, m2, np.flatnonzero(~cal), seed),
        precision_falls=precision_falls, versus_cl=versus_cl, precision_vs_detection=_trend(sweep),
        ours_at_cl_rate=None if cl is None else _interpolated(sweep, flags["confident_learning"].detection_rate),
        sweep=_sweep(sweep), sweep_single={n: _sweep(s) for n, s in singles.items()},
        paper_dataset=paper_dataset, paper_claims=claims,
        shown={"method3_cl": probs is not None, "table3": table3 is not None, "precision": truth is not None,
               "exercises": exercises_shown(sets)})


# ---------------------------------------------------------------------------- prose

_DIFFERENCE = {"above": "lies above zero", "below": "lies below zero", "within": "includes zero"}


def _precision_text(f: FlagCount) -> str:
    return (f"{f.flagged:,} labels (detection rate {fmt(f.detection_rate, 4)}) with precision "
            f"{interval_text(f.precision)}")


def _flags_text(facts: CleaningFacts) -> str:
    m1, m2 = facts.flags["method_1"], facts.flags["method_2"]
    capped = (f" (K = {facts.K} was asked; the experts' tied confidences formed only {facts.n_bins_effective} bins)"
              if facts.K_capped else "")
    if facts.truth is None:
        text = (f"These record sets carry no ground truth of label errors, so only counts are shown and nothing is "
                f"decided: method 1 flags {m1.flagged:,} labels of {facts.n:,} and method 2 at K = {facts.K_used}"
                f"{capped} flags {m2.flagged:,}.")
    else:
        source = TRUTH_SOURCES[facts.truth]
        if facts.truth == "valid_labels":
            source += f"; {facts.n_unrated:,} samples carry none and are left out of precision"
        text = (f"Ground truth: {source} ({pct(facts.noise_rate)} of the rated labels are wrong). Of {facts.n:,} "
                f"labels, method 2 at K = {facts.K_used}{capped} flags {_precision_text(m2)}; method 1 flags "
                f"{_precision_text(m1)}.")
        if "confident_learning" in facts.flags:
            text += (f" On {facts.method3_model}, the expert most accurate on cal, method 3 flags "
                     f"{_precision_text(facts.flags['method_3'])} and Confident Learning "
                     f"{_precision_text(facts.flags['confident_learning'])}.")
        text += " Intervals are 95% Wilson intervals over the flags whose ground truth is known."
    if "confident_learning" not in facts.flags:
        text += (" Method 3 and Confident Learning need every class's probability (logits); these record sets "
                 "carry only the top-1 confidence, so neither runs here and method 2 is not set against Confident "
                 "Learning.")
    return text


def _trend_text(facts: CleaningFacts) -> str:
    if facts.truth is None:
        return "Without ground truth, precision along the sweep is unknown."
    out = []
    falls = facts.precision_falls
    if falls is None:
        out.append(f"At K = {facts.K_used} method 2 keeps every bin and flags what method 1 flags, so there is no "
                   "smaller, more confident set of flags to compare with.")
    else:
        v = falls.verdict
        outcome = {"above": "precision falls as more is flagged.",
                   "below": "precision **rises** as more is flagged: the labels the experts flag less confidently "
                            "are more often wrong here than those they flag most confidently.",
                   "within": "the data cannot tell whether precision falls as more is flagged."}[v.outcome]
        out.append(f"Does precision fall as more is flagged? Method 2 at K = {falls.K} against method 1 (all "
                   f"{falls.K_all} bins, the most flags): the difference in precision, "
                   f"{signed_interval_text(v.estimate, 3)} (from the two Wilson intervals), {_DIFFERENCE[v.outcome]}: "
                   f"{outcome}")
    if facts.precision_vs_detection is not None:
        out.append(f"Along the whole sweep, precision and detection rate have a Spearman correlation of "
                   f"{fmt(facts.precision_vs_detection, 2)}; it describes the curve's shape and decides nothing.")
    return " ".join(out)


def _versus_cl_text(facts: CleaningFacts) -> str:
    out = []
    v = facts.versus_cl
    if v is not None:
        point = f"K = {v.K}" + (", every bin: method 1" if v.is_method_1 else "")
        outcome = {"above": "method 2 is the more precise at this detection rate.",
                   "below": "method 2 is the **less** precise at this detection rate.",
                   "within": "the data cannot tell which of the two is more precise."}[v.verdict.outcome]
        out.append(f"Confident Learning flags at detection rate {fmt(v.cl_detection_rate, 4)} with precision "
                   f"{interval_text(v.cl_precision)}. The point of method 2's sweep nearest that rate is {point} "
                   f"(detection rate {fmt(v.detection_rate, 4)}), with precision {interval_text(v.precision)}. "
                   f"Method 2 minus Confident Learning, {signed_interval_text(v.verdict.estimate, 3)}, "
                   f"{_DIFFERENCE[v.verdict.outcome]}: {outcome}")
    t3 = facts.table3
    if t3 is not None:
        precision = (lambda g: f" (precision {interval_text(g.precision)})") if facts.truth is not None \
            else (lambda g: "")
        text = (f"Alone and together: {t3.ours_only.n_flagged:,} labels are flagged by method 2 only"
                f"{precision(t3.ours_only)}, "
                f"{t3.cl_only.n_flagged:,} by Confident Learning only{precision(t3.cl_only)} and "
                f"{t3.both.n_flagged:,} by both{precision(t3.both)}.")
        if t3.method2_flags_fewer and t3.fewer_own_flags:
            text += (f" At K = {facts.K_used} method 2 flags {t3.ours.n_flagged:,} labels in all against Confident "
                     f"Learning's {t3.cl.n_flagged:,}: it is the stricter rule, so few of its flags are its own; a "
                     "larger K moves it toward Confident Learning's detection rate.")
        out.append(text)
    return " ".join(out)


def _table2_text(facts: CleaningFacts) -> str:
    t2 = facts.table2
    models = dict(zip(facts.experts, _in_order(t2.models, facts.experts)))
    gains = ", ".join(f"{name} {signed_interval_text(m.gain) if m.rises is not None else signed(m.gain.value)}"
                      for name, m in models.items())
    if t2.mode == "drop":
        return (f"Without the true labels, the labels method 2 flags are dropped from the {t2.n_test:,} test rows "
                f"({gains}). Every expert disagrees with each flagged label, so dropping them cannot lower an "
                "expert's accuracy: these gains say how many flags fall on the test rows, not whether cleaning "
                "helps.")
    by = {o: [n for n, m in models.items() if m.rises.outcome == o] for o in ("above", "within", "below")}
    parts = [f"rises for {names_list(by['above'])} (interval above zero)" if by["above"] else "",
             f"the data cannot tell a change for {names_list(by['within'])} (interval contains zero)"
             if by["within"] else "",
             f"it falls for {names_list(by['below'])} (interval below zero)" if by["below"] else ""]
    said = "; ".join(p for p in parts if p)
    return (f"Measured against cleaned labels (each label method 2 flags replaced by the true one where it is known) "
            f"on the same {t2.n_test:,} test rows, the change in each expert's accuracy, with its paired 95% interval, "
            f"is {gains}. Accuracy {said}.")


_AGREES = {"agrees": "so it is here, significantly ({evidence}, shown above, lies above zero)",
           "disagrees": "here the opposite holds, significantly ({evidence}, shown above, lies below zero); the "
                        "experts and the ground truth here are not the paper's (see above), which may be why",
           "cannot_tell": "here the data cannot tell ({evidence}, shown above, includes zero)",
           "not_measured": "this cannot be checked here: {why}"}


def _not_measured(facts: CleaningFacts, claim: str) -> str:
    """Why a claim has no verdict here, from what the facts lack."""
    if facts.truth is None:
        return "there is no ground truth of label errors"
    if claim == "ours_above_cl":
        return ("Confident Learning needs every class's probability, and these record sets carry only the top-1 "
                "confidence")
    return f"at K = {facts.K_used} method 2 keeps every bin, so there is no smaller set of flags to compare"



_EVIDENCE = {"precision_falls_with_detection_rate": "the difference in precision of method 2 and method 1",
             "ours_above_cl": "the difference in precision of method 2 and Confident Learning"}


def _paper_text(facts: CleaningFacts) -> str:
    if facts.paper_dataset is None:
        about = dataset_label(facts.dataset) if facts.dataset else "the data set of these record sets (their manifests name none)"
        return (f"The paper makes no cleaning claim about {about}: its cleaning results are for other data sets, "
                "so the verdicts above stand on their own, with no result of the paper to set them beside.")
    ref = paper_reference()
    data = ref["datasets"][facts.paper_dataset]
    cleaning = data["cleaning"]
    out = [f"**Beside the paper: {data['name']}.** The paper's cleaning on {data['name']} ({cleaning['source']}) uses "
           f"{cleaning['experts']}; here the experts are {names_list(facts.experts)}, and precision is measured "
           f"against {TRUTH_SOURCES.get(facts.truth, 'no ground truth')}. \"As the paper\" only where its claim and a "
           "95% interval that excludes zero agree."]
    for claim in (c for c in cleaning["claims"] if c in facts.paper_claims):  # the paper's order, not the file's
        said = _AGREES[facts.paper_claims[claim]].format(evidence=_EVIDENCE[claim], why=_not_measured(facts, claim))
        out.append(f"The paper claims for {data['name']} that {ref['claims'][claim]}; {said}.")
    t3, paper_t3 = facts.table3, cleaning.get("table3")
    if t3 is not None and paper_t3 is not None:
        out.append(f"Its Table 3: {paper_t3['ours_only']['n_flagged']:,} labels flagged by its method only "
                   f"(precision {fmt(paper_t3['ours_only']['precision'])}), {paper_t3['cl_only']['n_flagged']:,} by "
                   f"Confident Learning only ({fmt(paper_t3['cl_only']['precision'])}), "
                   f"{paper_t3['both']['n_flagged']:,} by both; here {t3.ours_only.n_flagged:,}, "
                   f"{t3.cl_only.n_flagged:,} and {t3.both.n_flagged:,}: method 2 has "
                   + ("fewer labels of its own than Confident Learning" if t3.fewer_own_flags
                      else "at least as many labels of its own as Confident Learning")
                   + (", the other way round from the paper." if t3.reversed_from_paper else ", as in the paper."))
    large_large = (data.get("cascading") or {}).get("large_large") or {}
    if large_large.get("accuracy_cleaned") is not None:
        out.append(f"The paper's Table 2 for {data['name']}: its large–large cascade ({large_large['pair']}) scores "
                   f"{large_large['accuracy']:.3%} against the original labels and "
                   f"{large_large['accuracy_cleaned']:.3%} against cleaned ones. Here each expert alone is "
                   "measured, not a cascade, and on this run's cleaned labels, so compare the direction, not the size.")
    return " ".join(out)


def prose(facts: CleaningFacts) -> dict[str, str]:
    """The chapter's sentences, from its facts only.

    Parameters
    ----------
    facts : CleaningFacts
        From :func:`compute`, or read back from ``results.json`` (``CleaningFacts.from_dict``).

    Returns
    -------
    dict with ``"flags"`` (the ground truth and what each method flags), ``"trend"`` (whether
    precision falls as more is flagged), ``"versus_cl"`` (method 2 against Confident Learning
    and Table 3), ``"table2"`` (accuracy against cleaned labels) and ``"paper"`` (the paper's
    cleaning claims for the experts' data set, or that it makes none).
    """
    return {"flags": _flags_text(facts), "trend": _trend_text(facts), "versus_cl": _versus_cl_text(facts),
            "table2": _table2_text(facts), "paper": _paper_text(facts)}


# ---------------------------------------------------------------------------- tables, figures, explorers

_OUTCOME_TEXT = {"above": "above 0", "below": "below 0", "within": "contains 0"}


def _flags_table(facts: CleaningFacts) -> pd.DataFrame:
    rows = {f.label: {"flagged": f.flagged, "detection rate": f.detection_rate, "rated": f.n_rated,
                      "precision [95%]": table_interval(f.precision)}
            for f in _in_order(facts.flags, FLAG_ORDER)}
    table = pd.DataFrame.from_dict(rows, orient="index").astype({"detection rate": float})
    return table if facts.truth is not None else table[["flagged", "detection rate"]]


def _overlap_table(t3: Overlap) -> pd.DataFrame:
    groups = (t3.ours, t3.cl, t3.ours_only, t3.cl_only, t3.both)
    rows = {g.label: {"flagged": g.n_flagged, "precision [95%]": table_interval(g.precision)} for g in groups}
    return pd.DataFrame.from_dict(rows, orient="index")


def _in_order(entries: dict[str, Any], order: Sequence[str]) -> list[Any]:
    """``entries``' values in ``order`` (keys it lacks are skipped): dicts read back from
    ``results.json`` come in sorted-key order."""
    return [entries[k] for k in order if k in entries]


def _cleaned_table(t2: CleanedAccuracy, experts: Sequence[str]) -> pd.DataFrame:
    rows = {}
    for name, m in zip(experts, _in_order(t2.models, experts)):
        row = {"given labels": m.given, f"cleaned ({t2.mode} flagged)": m.cleaned,
               "change [95%]": table_interval(m.gain, signed=True) if m.rises is not None else signed(m.gain.value)}
        if m.rises is not None:
            row["interval"] = _OUTCOME_TEXT[m.rises.outcome]
        if m.all_cleaned is not None:
            row["every label cleaned"] = m.all_cleaned
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _comparisons_table(facts: CleaningFacts) -> pd.DataFrame:
    rows = {}
    if facts.precision_falls is not None:
        f = facts.precision_falls
        rows[f"precision: method 2 at K = {f.K} minus method 1"] = (f.verdict, 3)
    if facts.versus_cl is not None:
        rows[f"precision: method 2 at K = {facts.versus_cl.K} minus Confident Learning"] = (facts.versus_cl.verdict, 3)
    for name, m in zip(facts.experts, _in_order(facts.table2.models, facts.experts)):
        if m.rises is not None:
            rows[f"accuracy of {name}: cleaned minus given labels"] = (m.rises, 4)
    return pd.DataFrame.from_dict({what: {"difference [95%]": table_interval(v.estimate, digits, signed=True),
                                          "interval": _OUTCOME_TEXT[v.outcome]}
                                   for what, (v, digits) in rows.items()}, orient="index")


def tables(facts: CleaningFacts) -> dict[str, pd.DataFrame]:
    """The chapter's tables, every key always present (an empty table where there is nothing
    to show): ``"flags"`` (per method: flagged, detection rate and, with ground truth,
    precision and its Wilson interval), ``"table2"`` (accuracy against given and cleaned
    labels), ``"table3"`` (where Confident Learning ran) and ``"comparisons"`` (every verdict:
    the difference, its 95% interval, and where the interval lies against zero)."""
    return {"flags": _flags_table(facts), "table2": _cleaned_table(facts.table2, facts.experts),
            "table3": pd.DataFrame() if facts.table3 is None else _overlap_table(facts.table3),
            "comparisons": _comparisons_table(facts)}


def _lines(facts: CleaningFacts) -> dict[str, pd.DataFrame]:
    return {f"method 2, {len(facts.experts)} experts": facts.sweep.frame(),
            **{f"method 2, {name} alone": facts.sweep_single[name].frame() for name in facts.experts}}


def figures(facts: CleaningFacts) -> dict[str, Any]:
    """The paper's Figure 4: precision against detection rate, method 2 swept over K for the
    mixture of experts and each expert alone, with method 1, method 3 and Confident Learning as
    single points (``"precision_detection"``, a matplotlib Figure; empty without ground truth)."""
    if facts.truth is None:
        return {}
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=plots.INLINE_DPI)
    points = {f.label: (f.detection_rate, f.precision.value)
              for f in _in_order(facts.flags, [k for k in FLAG_ORDER if k != "method_2"])}
    plots.cleaning_plot(_lines(facts), points, ax=ax)
    return {"precision_detection": fig}


def explorers(facts: CleaningFacts) -> dict[str, interactive.Explorer]:
    """Method 2's operating point moved along its sweeps by a K slider, starting at the
    chapter's K (``"sweep"``; kernel-free)."""
    return {"sweep": interactive.cleaning_explorer(_lines(facts), title="method 2", default=facts.K_used)}
