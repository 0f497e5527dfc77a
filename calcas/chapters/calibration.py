"""The calibration chapter (paper §2.1, Table 1, Figure 1): each model calibrated on its cal
half and measured on both halves, against the given labels and, where the record set carries
them, against the true labels.

Verdicts (each a :class:`~calcas.chapters.common.Verdict`):

- ``change``: did calibration lower the true ECE on a half? ``ece_difference_interval`` of the
  raw and calibrated confidences of the same rows (above 0: lowered; below: raised);
- ``calibrated_before`` / ``calibrated_after``: can the data tell the model from a perfectly
  calibrated one? ``ece_interval`` against 0 (above: miscalibration detected; within: not);
- ``carried_over``: does the calibration fitted on cal hold on test (the paper's second
  observation)? ``ece_halves_interval`` of the test and cal halves' ECE after calibration
  (within: the same within noise; above: worse on test);
- against the true labels, ``fit_true_change`` (a temperature fitted on the true labels) and
  ``fit_given_change`` (the chapter's calibration, fitted on the given labels), each the change
  in true ECE measured against the true labels; ``labels_are_the_reason`` when calibrating on
  the given labels does not lower their ECE while a fit on the true labels lowers it against
  them.

The point estimates shown beside the paper's Table 1 are the plug-in ECE (the paper's); the
intervals are for the true ECE, around the debiased estimate (SPEC §2).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..calibration import CalibratedRecords, TemperatureScaling, calibrate_records
from ..lab import binning_sweep
from ..metrics import brier, ece, ece_interval, mce, reliability_table
from ..records import Records
from ..render import interactive, plots
from .common import (Estimate, Facts, Verdict, dataset_label, decide, detectable_ece, difference_of_intervals,
                     exercises_shown, fmt, interval_text, largest_tie_share, load_record_sets, names_list,
                     paper_reference, pct, reference_dataset, signed_interval_text, table_columns, table_interval, term)

#: The columns of a reliability table the facts keep (figures draw from them).
RELIABILITY_COLUMNS = ("bin", "count", "mean_confidence", "accuracy", "lower", "upper")
#: Bin counts the showcase explorer's slider offers (capped by the rows).
EXPLORER_BINS = range(2, 31)


# ---------------------------------------------------------------------------- facts

@dataclasses.dataclass(frozen=True)
class SplitFacts(Facts):
    """One half of one model, before and after calibration.

    ``ece_before`` / ``ece_after`` are the plug-in ECE (the paper's estimator); ``true_ece_*``
    the debiased estimate with the interval of :func:`calcas.ece_interval` (None on the cal half
    before calibration, which no verdict reads)."""

    n: int
    accuracy: float
    ece_before: float
    ece_after: float
    true_ece_before: Estimate | None
    true_ece_after: Estimate
    change: Verdict | None
    calibrated_before: Verdict | None
    calibrated_after: Verdict
    mce_before: float
    mce_after: float
    brier_before: float
    brier_after: float
    monotonicity_before: float | None
    monotonicity_after: float | None
    monotone_before: bool
    n_bins_effective: int
    min_detectable_ece: float | None
    gap_before: float
    overconfident_bins_before: int
    every_bin_overconfident: bool
    reliability: dict[str, dict[str, list]]


@dataclasses.dataclass(frozen=True)
class TrueLabelFacts(Facts):
    """The test half against the true labels (rows whose true label is known).

    ``given_vs_true``: the true ECE left after the chapter's calibration against the given labels
    minus the true ECE a temperature fitted on the true labels reaches against them (two
    ``ece_interval``s combined). ``labels_are_the_reason`` when calibration on the given labels
    does not lower their ECE while that difference lies above zero: the same model, calibrated
    on clean labels, is measurably better calibrated against them."""

    n: int
    test_accuracy: float
    ece_uncalibrated: float
    ece_calibrated_given_labels: float
    ece_temperature_true_labels: float
    min_detectable_ece: float | None
    temperature_given_labels: float | None
    temperature_true_labels: float
    fit_true_change: Verdict
    fit_given_change: Verdict
    given_vs_true: Verdict
    labels_are_the_reason: bool


@dataclasses.dataclass(frozen=True)
class ModelFacts(Facts):
    """One model: its calibrator, both halves, and the verdicts the chapter states."""

    name: str
    dataset: str | None
    reference: str | None
    method: str
    temperature: float | None
    platt_a: float | None
    platt_b: float | None
    n_cal: int
    n_test: int
    cal: SplitFacts
    test: SplitFacts
    carried_over: Verdict
    tie_value: float
    tie_share: float
    some_bins_tied: bool
    true_labels: TrueLabelFacts | None


@dataclasses.dataclass(frozen=True)
class ShowcaseFacts(Facts):
    """The model the chapter opens with, against the verifier it is shown with: the given labels,
    or the true labels with a temperature fitted on the true labels of the cal half."""

    model: str
    verifier: str
    pool: str
    n: int
    accuracy: float
    n_bins_effective: int
    ece_before: float
    ece_after: float
    true_ece_before: Estimate
    true_ece_after: Estimate
    change: Verdict
    calibrated_after: Verdict
    min_detectable_ece: float | None
    gap_before: float
    overconfident_before: bool
    method: str
    temperature: float | None
    softens: bool | None
    platt_a: float | None
    platt_b: float | None
    reliability: dict[str, dict[str, list]]
    explorer_bins: dict[str, list]
    explorer_summary: dict[str, list]


@dataclasses.dataclass(frozen=True)
class LessonFacts(Facts):
    """The flipped-label lesson: the model the given-label calibration hurts most against the
    truth, its most confident bin, and its reliability tables against both label sets."""

    model: str
    flipped_share: float
    accuracy_ceiling: float
    top_bin_confidence: float
    top_bin_accuracy: float
    top_bin_above_ceiling: bool
    temperature_given_labels: float | None
    temperature_true_labels: float
    reliability: dict[str, dict[str, dict[str, list]]]


@dataclasses.dataclass(frozen=True)
class PaperClaim(Facts):
    """The paper's Table 1 row for a data set of this chapter, and how this chapter's models
    compare: which models calibration lowered, raised or left within noise (``change``
    verdicts), the models here that are the paper's own model (``same_model``, by the names in
    ``model_aliases``; other runs of it, not the paper's outputs), and the agreement with the
    paper's claim that it lowers the ECE: "as the paper"
    when it lowered some and raised none, "unlike the paper" when it lowered none, else "in part
    as the paper"."""

    dataset: str
    name: str
    model: str
    ece_before: float
    ece_after: float
    models: list[str]
    same_model: list[str]
    lowered: list[str]
    raised: list[str]
    within: list[str]
    agreement: str


@dataclasses.dataclass(frozen=True)
class CalibrationFacts(Facts):
    """Everything the calibration chapter shows (``results.json``)."""

    section: str
    parameters: dict[str, Any]
    models: dict[str, ModelFacts]
    order: list[str]
    showcase: ShowcaseFacts
    lesson: LessonFacts | None
    paper: list[PaperClaim]
    datasets_without_claims: list[str]
    shown: dict[str, bool]


# ---------------------------------------------------------------------------- compute

def _reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> dict[str, list]:
    return table_columns(reliability_table(confidence, correct, n_bins), RELIABILITY_COLUMNS)


def _true_ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int, n_boot: int, seed: int) -> tuple:
    return ece_interval(confidence, correct, n_bins, n_boot=n_boot, seed=seed)


def _change(before: tuple, after: tuple) -> Verdict:
    """Did the true ECE fall from ``before`` to ``after`` (two ece_interval triples of the same rows)?"""
    return decide(Estimate.of(difference_of_intervals(before, after), "ece_difference_interval"))


def _monotone(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> tuple[float | None, bool]:
    """Spearman correlation of bin accuracy with bin confidence, and whether it is positive at
    the 5% level (one-sided; scipy's exact test for few bins)."""
    table = reliability_table(confidence, correct, n_bins)
    table = table[table["count"] > 0]
    if len(table) < 3 or table["accuracy"].nunique() < 2 or table["mean_confidence"].nunique() < 2:
        return None, False
    test = spearmanr(table["mean_confidence"], table["accuracy"], alternative="greater")
    return float(test.statistic), bool(test.pvalue < 0.05)


def _split(raw: np.ndarray, calibrated: np.ndarray, correct: np.ndarray, n_bins: int, n_boot: int, seed: int,
           *, decide_before: bool) -> SplitFacts:
    before_table = reliability_table(raw, correct, n_bins)
    over = before_table[before_table["count"] > 0]
    accuracy = float(correct.mean())
    after = _true_ece(calibrated, correct, n_bins, n_boot, seed)
    before = _true_ece(raw, correct, n_bins, n_boot, seed) if decide_before else None
    rho_before, monotone = _monotone(raw, correct, n_bins)
    overconfident = int((over["mean_confidence"] > over["accuracy"]).sum())
    return SplitFacts(
        n=int(len(correct)), accuracy=accuracy,
        ece_before=ece(raw, correct, n_bins), ece_after=ece(calibrated, correct, n_bins),
        true_ece_before=None if before is None else Estimate.of(before, "ece_interval"),
        true_ece_after=Estimate.of(after, "ece_interval"),
        change=None if before is None else _change(before, after),
        calibrated_before=None if before is None else decide(Estimate.of(before, "ece_interval")),
        calibrated_after=decide(Estimate.of(after, "ece_interval")),
        mce_before=mce(raw, correct, n_bins), mce_after=mce(calibrated, correct, n_bins),
        brier_before=brier(raw, correct), brier_after=brier(calibrated, correct),
        monotonicity_before=rho_before, monotonicity_after=_monotone(calibrated, correct, n_bins)[0],
        monotone_before=monotone, n_bins_effective=int(len(over)),
        min_detectable_ece=detectable_ece(len(correct), len(over), accuracy),
        gap_before=float(raw.mean() - correct.mean()), overconfident_bins_before=overconfident,
        every_bin_overconfident=bool(overconfident == len(over) and len(over) > 1),
        reliability={"uncalibrated": _reliability(raw, correct, n_bins),
                     "calibrated": _reliability(calibrated, correct, n_bins)})


def _true_labels(r: Records) -> np.ndarray:
    """The first true label of each row (-1 where none is known); needs ``valid_labels``."""
    return np.array([v[0] if len(v) else -1 for v in r.valid_labels])


@dataclasses.dataclass(frozen=True)
class FittedModel:
    """One record set and what compute fits on its cal half: the chapter's calibrator and, where
    the set carries true labels and logits, a temperature fitted on the true labels. Not facts:
    the arrays the exercises recompute from (:func:`fitted_models`)."""

    records: Records
    fit: CalibratedRecords
    cal: np.ndarray
    true_fit: TemperatureScaling | None


def fitted_models(records: Sequence[Any], *, calibration: str = "auto", cal_fraction: float = 0.5,
                  seed: int = 0) -> dict[str, FittedModel]:
    """Each record set (paths or Records) with its calibrators fitted on its seeded cal half, by
    display name: what :func:`compute` measures."""
    sets, names = load_record_sets(records)
    out = {}
    for name, r in zip(names, sets):
        cal = r.cal_mask(cal_fraction=cal_fraction, seed=seed)
        true_fit = None
        if r.valid_labels is not None and r.logits is not None:
            true = _true_labels(r)
            known = cal & (true >= 0)
            true_fit = TemperatureScaling().fit(r.logits[known], true[known])
        out[name] = FittedModel(r, calibrate_records(r, cal, method=calibration), cal, true_fit)
    return out


def showcase_arrays(models: Mapping[str, FittedModel], model: str,
                    verifier: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A model's test-half confidences (``uncalibrated``, ``calibrated``) and correctness against
    ``verifier`` (the showcase's: ``facts.showcase.model``, ``facts.showcase.verifier``):
    against ``"true_labels"`` (rows whose true label is known) "calibrated" is the temperature
    fitted on the true labels of the cal half; against ``"given_labels"``, the chapter's
    calibration and the given labels."""
    m = models[model]
    r, test = m.records, ~m.cal
    if verifier == "true_labels":
        true = _true_labels(r)
        rows = test & (true >= 0)
        return ({"uncalibrated": m.fit.raw[rows], "calibrated": m.true_fit.transform(r.logits[rows])},
                (r.pred == true).astype(float)[rows])
    return {"uncalibrated": m.fit.raw[test], "calibrated": m.fit.calibrated[test]}, r.verified[test]


def _true_label_facts(m: FittedModel, n_bins: int, n_boot: int, seed: int,
                      test: SplitFacts) -> tuple[TrueLabelFacts | None, tuple | None]:
    """The test half against the true labels, and the two ece_interval triples (uncalibrated, T
    fitted on the true labels) the showcase reuses; (None, None) without true labels."""
    r, f, cal = m.records, m.fit, m.cal
    if m.true_fit is None:
        return None, None
    true = _true_labels(r)
    right = (r.pred == true).astype(float)
    rows = ~cal & (true >= 0)
    true_t = m.true_fit.transform(r.logits[rows])
    raw = _true_ece(f.raw[rows], right[rows], n_bins, n_boot, seed)
    given = _true_ece(f.calibrated[rows], right[rows], n_bins, n_boot, seed)
    fitted = _true_ece(true_t, right[rows], n_bins, n_boot, seed)
    bins = int((reliability_table(f.raw[rows], right[rows], n_bins)["count"] > 0).sum())
    fit_true = _change(raw, fitted)
    given_vs_true = _change(test.true_ece_after.as_list(), fitted)
    return TrueLabelFacts(
        n=int(rows.sum()), test_accuracy=float(right[rows].mean()),
        ece_uncalibrated=ece(f.raw[rows], right[rows], n_bins),
        ece_calibrated_given_labels=ece(f.calibrated[rows], right[rows], n_bins),
        ece_temperature_true_labels=ece(true_t, right[rows], n_bins),
        min_detectable_ece=detectable_ece(int(rows.sum()), bins, float(right[rows].mean())),
        temperature_given_labels=getattr(f.calibrator, "temperature_", None),
        temperature_true_labels=float(m.true_fit.temperature_),
        fit_true_change=fit_true, fit_given_change=_change(raw, given), given_vs_true=given_vs_true,
        labels_are_the_reason=bool(test.change.outcome != "above" and given_vs_true.outcome == "above")), (raw, fitted)


def _model_facts(name: str, m: FittedModel, n_bins: int, n_boot: int, seed: int) -> tuple[ModelFacts, tuple | None]:
    r, f, cal = m.records, m.fit, m.cal
    test = _split(f.raw[~cal], f.calibrated[~cal], r.verified[~cal], n_bins, n_boot, seed, decide_before=True)
    on_cal = _split(f.raw[cal], f.calibrated[cal], r.verified[cal], n_bins, n_boot, seed, decide_before=False)
    halves = difference_of_intervals(test.true_ece_after.as_list(), on_cal.true_ece_after.as_list())
    tie_value, tie_share = largest_tie_share(f.raw)
    dataset = r.manifest.get("dataset")
    true_labels, true_intervals = _true_label_facts(m, n_bins, n_boot, seed, test)
    return ModelFacts(
        name=name, dataset=dataset, reference=reference_dataset(dataset), method=f.method,
        temperature=f.calibrator.temperature_ if f.method == "temperature" else None,
        platt_a=f.calibrator.a_ if f.method == "platt" else None,
        platt_b=f.calibrator.b_ if f.method == "platt" else None,
        n_cal=int(cal.sum()), n_test=int((~cal).sum()), cal=on_cal, test=test,
        carried_over=decide(Estimate.of(halves, "ece_halves_interval")),
        tie_value=tie_value, tie_share=tie_share, some_bins_tied=test.n_bins_effective < n_bins,
        true_labels=true_labels), true_intervals


def choose_showcase(models: Mapping[str, ModelFacts]) -> tuple[str, str]:
    """The model the chapter shows first, and the verifier it is shown against.

    Among the real models (``dataset != "synthetic"``; all of them when every one is
    synthetic): where some carry true labels, the one whose test ECE against the true labels
    falls most under a temperature fitted on the true labels (verifier ``"true_labels"``);
    otherwise the one whose test ECE falls most under the chapter's calibration (verifier
    ``"given_labels"``). The fall can be negative: then no model is helped, and this is the
    one hurt least. Ties go to the first in order. This picks what to show, not a verdict.

    Returns
    -------
    (name, verifier)
    """
    if not models:
        raise ValueError("models: no models to choose from")
    real = [n for n, m in models.items() if m.dataset != "synthetic"] or list(models)
    with_truth = [n for n in real if models[n].true_labels]
    if with_truth:
        drop = {n: models[n].true_labels.ece_uncalibrated - models[n].true_labels.ece_temperature_true_labels
                for n in with_truth}
        return max(drop, key=drop.__getitem__), "true_labels"
    drop = {n: models[n].test.ece_before - models[n].test.ece_after for n in real}
    return max(drop, key=drop.__getitem__), "given_labels"


def choose_lesson(models: Mapping[str, ModelFacts]) -> str | None:
    """The model of the flipped-label lesson: among the real models with true labels (all models
    with them when none is real), the one whose test ECE against the true labels the given-label
    calibration raises most (or lowers least); None when no model carries true labels."""
    with_truth = [n for n, m in models.items() if m.true_labels]
    real = [n for n in with_truth if models[n].dataset != "synthetic"] or with_truth
    if not real:
        return None
    rise = {n: models[n].true_labels.ece_calibrated_given_labels - models[n].true_labels.ece_uncalibrated
            for n in real}
    return max(rise, key=rise.__getitem__)


def _explorer_grid(conf: Mapping[str, np.ndarray], correct: np.ndarray,
                   n_bins: int) -> tuple[dict[str, list], dict[str, list]]:
    """Reliability tables and ECE of each series at every bin count the explorer offers:
    :data:`EXPLORER_BINS` and the page's own ``n_bins`` (1 or 40 included), capped by the rows."""
    grid = sorted(n for n in {*EXPLORER_BINS, n_bins} if n <= len(correct))
    bins, summary = [], []
    for series, c in conf.items():
        b, s = binning_sweep(c, correct, n_bins=grid, binnings=("equal_count",))
        bins.append(b.assign(series=series))
        summary.append(s.assign(series=series, distinct=b.groupby("N").size().reindex(s["N"]).to_numpy()))
    bins, summary = pd.concat(bins, ignore_index=True), pd.concat(summary, ignore_index=True)
    return (table_columns(bins, ("series", "N", "bin", "count", "mean_confidence", "accuracy")),
            table_columns(summary, ("series", "N", "ece", "distinct")))


def _showcase(facts_so_far: dict[str, ModelFacts], models: dict[str, FittedModel], true_intervals: dict[str, tuple],
              n_bins: int) -> ShowcaseFacts:
    name, verifier = choose_showcase(facts_so_far)
    mf = facts_so_far[name]
    conf, correct = showcase_arrays(models, name, verifier)
    if verifier == "true_labels":
        tl = mf.true_labels
        before, after = true_intervals[name]
        ece_before, ece_after = tl.ece_uncalibrated, tl.ece_temperature_true_labels
        detectable, change = tl.min_detectable_ece, tl.fit_true_change
        method, temperature, a, b = "temperature", tl.temperature_true_labels, None, None
        pool = "the models whose record sets carry true labels"
    else:
        before, after = mf.test.true_ece_before.as_list(), mf.test.true_ece_after.as_list()
        ece_before, ece_after = mf.test.ece_before, mf.test.ece_after
        detectable, change = mf.test.min_detectable_ece, mf.test.change
        method, temperature, a, b = mf.method, mf.temperature, mf.platt_a, mf.platt_b
        pool = "the real models" if any(x.dataset != "synthetic" for x in facts_so_far.values()) else "the models"
    shown_bins = min(n_bins, len(correct))
    table = reliability_table(conf["uncalibrated"], correct, shown_bins)
    explorer_bins, explorer_summary = _explorer_grid(conf, correct, n_bins)
    gap = float(conf["uncalibrated"].mean() - correct.mean())
    return ShowcaseFacts(
        model=name, verifier=verifier, pool=pool, n=int(len(correct)), accuracy=float(correct.mean()),
        n_bins_effective=int((table["count"] > 0).sum()), ece_before=ece_before, ece_after=ece_after,
        true_ece_before=Estimate.of(before, "ece_interval"), true_ece_after=Estimate.of(after, "ece_interval"),
        change=change, calibrated_after=decide(Estimate.of(after, "ece_interval")),
        min_detectable_ece=detectable, gap_before=gap, overconfident_before=gap > 0, method=method,
        temperature=temperature, softens=None if method != "temperature" or temperature is None else temperature > 1,
        platt_a=a, platt_b=b,
        reliability={k: _reliability(c, correct, shown_bins) for k, c in conf.items()},
        explorer_bins=explorer_bins, explorer_summary=explorer_summary)


def _lesson(models: dict[str, ModelFacts], kept: dict[str, FittedModel], n_bins: int) -> LessonFacts | None:
    name = choose_lesson(models)
    if name is None:
        return None
    m, tl = kept[name], models[name].true_labels
    r, test = m.records, ~m.cal
    true = _true_labels(r)
    rows = test & (true >= 0)
    right = (r.pred == true).astype(float)
    flipped = float((r.label[rows] != true[rows]).mean())
    given = reliability_table(m.fit.calibrated[test], r.verified[test], n_bins)
    top = given[given["count"] > 0].iloc[-1]
    true_t = m.true_fit.transform(r.logits[rows])
    return LessonFacts(
        model=name, flipped_share=flipped, accuracy_ceiling=1.0 - flipped,
        top_bin_confidence=float(top["mean_confidence"]), top_bin_accuracy=float(top["accuracy"]),
        top_bin_above_ceiling=bool(top["mean_confidence"] > 1.0 - flipped),
        temperature_given_labels=tl.temperature_given_labels, temperature_true_labels=tl.temperature_true_labels,
        reliability={"against the given labels": {
                         "uncalibrated": _reliability(m.fit.raw[test], r.verified[test], n_bins),
                         "calibrated": _reliability(m.fit.calibrated[test], r.verified[test], n_bins)},
                     "against the true labels": {
                         "uncalibrated": _reliability(m.fit.raw[rows], right[rows], n_bins),
                         "calibrated": _reliability(m.fit.calibrated[rows], right[rows], n_bins),
                         "T fitted on true labels": _reliability(true_t, right[rows], n_bins)}})


def _plain_name(name: str) -> str:
    """A model's name reduced to lower-case letters and digits, to match the paper's names."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _paper_claims(models: dict[str, ModelFacts]) -> tuple[list[PaperClaim], list[str]]:
    ref = paper_reference()["datasets"]
    claims, without = [], []
    for key in dict.fromkeys(m.reference for m in models.values()):
        ours = [n for n, m in models.items() if m.reference == key]
        entry = ref.get(key, {}).get("calibration") if key else None
        if entry is None:
            without += [d for d in dict.fromkeys(models[n].dataset or "unnamed" for n in ours)]
            continue
        outcome = {n: models[n].test.change.outcome for n in ours}
        lowered, raised = [n for n in ours if outcome[n] == "above"], [n for n in ours if outcome[n] == "below"]
        agreement = "as the paper" if lowered and not raised else "unlike the paper" if not lowered else \
            "in part as the paper"
        aliases = {_plain_name(a) for a in entry.get("model_aliases", [entry["model"]])}
        same = [n for n in ours if _plain_name(n) in aliases or _plain_name(models[n].name) in aliases]
        claims.append(PaperClaim(dataset=key, name=ref[key]["name"], model=entry["model"],
                                 ece_before=entry["test"]["ece_before"], ece_after=entry["test"]["ece_after"],
                                 models=ours, same_model=same, lowered=lowered, raised=raised,
                                 within=[n for n in ours if outcome[n] == "within"], agreement=agreement))
    return claims, without


def compute(records: Sequence[Any], *, calibration: str = "auto", n_bins: int = 15, n_boot: int = 1000,
            cal_fraction: float = 0.5, seed: int = 0) -> CalibrationFacts:
    """Calibrate each record set on its cal half and measure both halves (Table 1, Figure 1).

    Parameters
    ----------
    records : sequence of paths or Records
        One record set per model (logits, confidences or scores; see
        :func:`calcas.calibrate_records`).
    calibration : {"auto", "temperature", "platt"}
    n_bins : int
        Equal-count bins for the ECE, MCE, monotonicity and the reliability diagrams.
    n_boot : int
        Bootstrap replicates of each :func:`calcas.ece_interval`.
    cal_fraction, seed
        The seeded cal/test split of :func:`calcas.cal_test_split`; ``seed`` also seeds the
        bootstraps.

    Returns
    -------
    CalibrationFacts
    """
    kept = fitted_models(records, calibration=calibration, cal_fraction=cal_fraction, seed=seed)
    names = list(kept)
    models: dict[str, ModelFacts] = {}
    true_intervals: dict[str, tuple] = {}
    for name, m in kept.items():
        models[name], true_intervals[name] = _model_facts(name, m, n_bins, n_boot, seed)
    paper, without = _paper_claims(models)
    lesson = _lesson(models, kept, n_bins)
    params = {"records": [str(p) if not isinstance(p, Records) else n for p, n in zip(records, names)],
              "calibration": calibration, "n_bins": n_bins, "n_boot": n_boot, "cal_fraction": cal_fraction,
              "seed": seed}
    return CalibrationFacts(
        section="02_calibration", parameters=params, models=models, order=list(names),
        showcase=_showcase(models, kept, true_intervals, n_bins), lesson=lesson, paper=paper,
        datasets_without_claims=without,
        shown={"true_labels": any(m.true_labels for m in models.values()), "flipped_label_lesson": lesson is not None,
               "exercises": exercises_shown([m.records for m in kept.values()])})


# ---------------------------------------------------------------------------- tables, figures, explorers

def _frame(columns: Mapping[str, list]) -> pd.DataFrame:
    return pd.DataFrame(dict(columns))


def _ordered(facts: CalibrationFacts) -> list[ModelFacts]:
    return [facts.models[n] for n in facts.order]


def tables(facts: CalibrationFacts) -> dict[str, pd.DataFrame]:
    """``table1`` (per model and half: accuracy, the plug-in ECE before and after, the bins and
    the detectable ECE), ``true_ece`` (per model and half: the true ECE's intervals before and
    after, and the change), ``calibrators`` and ``true_labels`` (empty without true labels)."""
    plug_in, true_ece = [], []
    for m in _ordered(facts):
        for split, s in (("cal", m.cal), ("test", m.test)):
            plug_in.append({"model": m.name, "split": split, "accuracy": s.accuracy,
                            "ECE before": s.ece_before, "ECE after": s.ece_after, "bins": s.n_bins_effective,
                            "detectable ECE ≥": s.min_detectable_ece})
            true_ece.append({"model": m.name, "split": split,
                             "true ECE before [95%]": table_interval(s.true_ece_before),
                             "true ECE after [95%]": table_interval(s.true_ece_after),
                             "change [95%]": None if s.change is None else table_interval(s.change.estimate, 3,
                                                                                          signed=True)})
    out = {"table1": pd.DataFrame(plug_in).set_index(["model", "split"]),
           "true_ece": pd.DataFrame(true_ece).set_index(["model", "split"])}
    out["calibrators"] = pd.DataFrame({m.name: {"method": _METHOD_NAMES[m.method], "temperature T": m.temperature,
                                                "Platt a": m.platt_a, "Platt b": m.platt_b}
                                       for m in _ordered(facts)}).T.dropna(axis=1, how="all")
    truth = {m.name: m.true_labels for m in _ordered(facts) if m.true_labels}
    out["true_labels"] = pd.DataFrame()  # the notebook runs every cell; its page drops this one without true labels
    if truth:
        out["true_labels"] = pd.DataFrame({n: {
            "test accuracy (true labels)": t.test_accuracy, "ECE uncalibrated": t.ece_uncalibrated,
            "ECE, calibrated on given labels": t.ece_calibrated_given_labels,
            "ECE, T fitted on true labels": t.ece_temperature_true_labels, "detectable ECE ≥": t.min_detectable_ece,
            "T (given labels)": t.temperature_given_labels, "T (true labels)": t.temperature_true_labels}
            for n, t in truth.items()}).T
    return out


#: The order series are drawn and listed in (results.json holds them in sorted order).
SERIES_ORDER = ("uncalibrated", "calibrated", "T fitted on true labels")


def _tables_of(reliability: Mapping[str, Mapping[str, list]]) -> dict[str, pd.DataFrame]:
    return {k: _frame(reliability[k]) for k in sorted(reliability, key=lambda k: (SERIES_ORDER + (k,)).index(k))}


def showcase_title(facts: CalibrationFacts) -> str:
    """"<model>, test half" and, where it is shown against them, "against the true labels"."""
    s = facts.showcase
    return f"{s.model}, test half" + (", against the true labels" if s.verifier == "true_labels" else "")


def showcase_figure(facts: CalibrationFacts) -> Any:
    """The opening model's reliability diagram, before and after, beside its true-ECE intervals."""
    s = facts.showcase
    return plots.showcase_figure(_tables_of(s.reliability),
                                 {"uncalibrated": s.true_ece_before.as_list(), "calibrated": s.true_ece_after.as_list()},
                                 title=showcase_title(facts), detectable=s.min_detectable_ece)


def lesson_figure(facts: CalibrationFacts) -> Any:
    """The flipped-label lesson's model against the given and against the true labels (None
    without true labels)."""
    if facts.lesson is None:
        return None
    return plots.reliability_grid([(facts.lesson.model, {k: _tables_of(v) for k, v in
                                                         facts.lesson.reliability.items()})])


def reliability_figure(facts: CalibrationFacts) -> Any:
    """Every model's reliability diagrams, cal and test halves side by side (the paper's Fig. 1)."""
    return plots.reliability_grid([(m.name, {"cal": _tables_of(m.cal.reliability),
                                             "test": _tables_of(m.test.reliability)}) for m in _ordered(facts)])


def model_explorer(models: Mapping[str, FittedModel], name: str, *, n_bins: int = 15) -> interactive.Explorer:
    """One model's test-half reliability diagram, uncalibrated and calibrated against the given
    labels, with a slider for the number of bins (grid computed here, drawn by
    :func:`calcas.render.interactive.reliability_explorer`). For pages that show every model,
    where the chapter shows only its showcased one (:func:`explorer`); the slider starts at
    ``n_bins`` (or the most bins the test half allows)."""
    conf, correct = showcase_arrays(models, name, "given_labels")
    bins, summary = _explorer_grid(conf, correct, n_bins)
    return interactive.reliability_explorer(_frame(bins), _frame(summary), default=min(n_bins, max(summary["N"])),
                                            title=f"{name}, test half")


def explorer(facts: CalibrationFacts) -> interactive.Explorer:
    """The showcase model's reliability diagram with a slider for the number of bins."""
    s = facts.showcase
    default = min(facts.parameters["n_bins"], max(s.explorer_summary["N"]))
    return interactive.reliability_explorer(_frame(s.explorer_bins), _frame(s.explorer_summary), default=default,
                                            title=showcase_title(facts))


# ---------------------------------------------------------------------------- prose

_CHANGE = {"above": "lowers", "below": "raises", "within": "does not detectably change"}


_METHOD_NAMES = {"temperature": "temperature scaling", "platt": "Platt scaling"}


def _fitted(method: str, temperature: float | None, a: float | None, b: float | None) -> str:
    return f"T = {fmt(temperature, 2)}" if method == "temperature" else f"a = {fmt(a, 2)}, b = {fmt(b, 2)}"


def _intervals_sentence(before: Estimate, after: Estimate, change: Verdict) -> str:
    return (f"the true ECE lies in [{fmt(before.low)}, {fmt(before.high)}] before and "
            f"[{fmt(after.low)}, {fmt(after.high)}] after (95%, `ece_interval`), so calibration "
            f"**{_CHANGE[change.outcome]}** it: the change in true ECE, {signed_interval_text(change.estimate, 3)}, "
            + {"above": "lies above zero.", "below": "lies below zero.",
               "within": "contains zero."}[change.outcome])


def _calibrated_sentence(name: str, verdict: Verdict, when: str) -> str:
    if verdict.outcome == "above":
        return f"{when} the interval stays above 0: the data detect miscalibration left in {name}."
    return f"{when} the interval reaches 0: the data cannot tell {name} from a perfectly calibrated model."


def _model_paragraph(m: ModelFacts, n_bins: int, *, on_slider: bool, terms: bool = False) -> str:
    """One model's verdicts; ``on_slider``: the page's bin slider shows this model; ``terms``:
    link the glossary's terms (:func:`calcas.chapters.common.term`)."""
    t, c = m.test, m.cal
    out = [f"**{m.name}** ({_METHOD_NAMES[m.method]}, {_fitted(m.method, m.temperature, m.platt_a, m.platt_b)}; "
           f"{t.n:,} test rows): ECE {fmt(t.ece_before)} before and {fmt(t.ece_after)} after calibration; "
           + _intervals_sentence(t.true_ece_before, t.true_ece_after, t.change)]
    if t.calibrated_before.outcome == "within":
        out.append(_calibrated_sentence(m.name, t.calibrated_before, "Already before calibration") +
                   " There was little to fix.")
    else:
        out.append(_calibrated_sentence(m.name, t.calibrated_after, "After calibration"))
    tl = m.true_labels
    if tl is not None and tl.labels_are_the_reason:
        out.append(f"The labels are the reason: against the true labels, a temperature fitted on them reaches an ECE "
                   f"of {fmt(tl.ece_temperature_true_labels)} (from {fmt(tl.ece_uncalibrated)} uncalibrated), "
                   f"measurably below what calibration leaves against the given labels (the difference in true ECE, "
                   f"{signed_interval_text(tl.given_vs_true.estimate, 3)}, lies above zero). Against labels with "
                   "flips, accuracy is capped at every confidence, and one temperature cannot follow a curve that "
                   "rises and then stalls.")
    elif t.change.outcome == "below":
        out.append("A single calibrator fitted by likelihood trades bins against each other; it can lower the "
                   "likelihood and still raise the binned ECE.")
    carried = {"within": "the same within noise (`ece_halves_interval` contains zero): the calibration carries "
                         "over to held-out data, the paper's second observation",
               "above": "**worse on test** (`ece_halves_interval` lies above zero): the calibration does not fully "
                        "carry over",
               "below": "better on test than on cal (`ece_halves_interval` lies below zero)"}[m.carried_over.outcome]
    out.append(f"After calibration, cal and test ECE are {fmt(c.ece_after)} and {fmt(t.ece_after)}: {carried}.")
    if t.monotonicity_before is not None:
        out.append(f"Bin accuracy against bin confidence before calibration has a "
                   f"{term('Spearman correlation', 'Spearman monotonicity', link=terms)} of "
                   f"{fmt(t.monotonicity_before, 2)}: "
                   + ("it rises with confidence (one-sided test, 5%), the paper's first observation."
                      if t.monotone_before else
                      "the data do not show it rising with confidence (one-sided test, 5%), unlike the paper's "
                      "first observation."))
    if m.some_bins_tied:
        out.append(f"Only {t.n_bins_effective} of the {n_bins} bins exist on the test half: {pct(m.tie_share)} of "
                   f"the confidences equal {fmt(m.tie_value, 4)}, and equal-count bins never split tied values.")
    if t.every_bin_overconfident:
        out.append(f"Before calibration every bin is over-confident, so the ECE equals the overall gap, mean "
                   f"confidence minus accuracy = {fmt(t.gap_before)}, whatever the number of bins"
                   + (": a flat ECE under the bin slider is expected here, not a fault." if on_slider else "."))
    return " ".join(out)


def _showcase_paragraph(facts: CalibrationFacts) -> str:
    s = facts.showcase
    if s.verifier == "true_labels":
        why = "largest fall in test ECE against the true labels"
        how = (f"Measured against the **true** labels of its {s.n:,} test rows (a clean verifier), a temperature "
               f"fitted on the true labels of the cal half (T = {fmt(s.temperature, 2)})")
    else:
        why = "largest fall in test ECE under calibration"
        method = "Platt scaling" if s.method == "platt" else "temperature scaling"
        how = (f"On its {s.n:,} test rows, {method} fitted on the cal half "
               f"({_fitted(s.method, s.temperature, s.platt_a, s.platt_b)})")
    out = [f"**{s.model}** is shown first: of {s.pool}, it has the {why}. {how} takes its plug-in ECE "
           f"(the paper's estimator) from {fmt(s.ece_before)} to {fmt(s.ece_after)}; " + _intervals_sentence(s.true_ece_before, s.true_ece_after,
                                                                                 s.change)]
    out.append("The figure's dots are the true ECE's debiased estimates with those intervals, not the plug-in "
               "values quoted here.")
    if s.change.outcome != "above":
        out.append("Even this model, the best case these data offer, is not visibly helped.")
    out.append(_calibrated_sentence(s.model, s.calibrated_after, "After calibration"))
    side = ("over-confident (mean confidence above accuracy, the curve below the diagonal)" if s.overconfident_before
            else "under-confident (mean confidence below accuracy, the curve above the diagonal)")
    softens = {True: f"; T = {fmt(s.temperature, 2)} > 1 softens its confidences.",
               False: f"; T = {fmt(s.temperature, 2)} < 1 sharpens its confidences.", None: "."}[s.softens]
    out.append(f"Before calibration it is {side} by {fmt(abs(s.gap_before))} on average{softens}")
    if s.verifier == "given_labels":
        out.append("These record sets carry no true labels, so the verifier is the given label throughout.")
    return " ".join(out)


def _lesson_paragraph(facts: CalibrationFacts) -> str:
    lesson = facts.lesson
    if lesson is None:
        return ""
    m = facts.models[lesson.model]
    tl, test = m.true_labels, m.test
    same = lesson.model == facts.showcase.model
    out = [(f"Here {lesson.model} again" if same else f"Here **{lesson.model}**")
           + f", calibrated as the rest of the chapter calibrates every model: on the **given** labels, "
             f"{pct(lesson.flipped_share)} of which are wrong on its test half. Fitted on them, its temperature is "
             f"T = {fmt(lesson.temperature_given_labels, 2)}; fitted on the true labels, it would be "
             f"T = {fmt(lesson.temperature_true_labels, 2)}.",
           f"Against the given labels its test ECE goes from {fmt(test.ece_before)} to {fmt(test.ece_after)}: "
           + {"above": "calibration lowers it.", "below": "calibration **raises** it.",
              "within": "no change the data can detect."}[test.change.outcome]]
    if lesson.top_bin_above_ceiling:
        out.append(f"No bin can be right much more often than the share of correct labels, "
                   f"{fmt(lesson.accuracy_ceiling)}: in the calibrated model's most confident bin, accuracy against "
                   f"the given labels is {fmt(lesson.top_bin_accuracy)} at mean confidence "
                   f"{fmt(lesson.top_bin_confidence)}, so the curve cannot follow the diagonal at the top (left "
                   "panel below).")
    given = tl.fit_given_change.outcome
    out.append(f"Against the true labels (right panel), the temperature fitted on the given labels takes the "
               f"plug-in ECE from {fmt(tl.ece_uncalibrated)} to {fmt(tl.ece_calibrated_given_labels)} (the change in "
               f"true ECE, before minus after and so negative where calibration raises it, is "
               f"{signed_interval_text(tl.fit_given_change.estimate, 3)}; it is debiased, so it is not the "
               f"difference of the two plug-in values), where the one fitted on the true labels "
               f"reaches {fmt(tl.ece_temperature_true_labels)}: "
               + {"below": "fitted on labels with flips, calibration made the model worse against the truth.",
                  "within": "fitted on labels with flips, calibration does no good the data can detect against the "
                            "truth.",
                  "above": "fitted on labels with flips, calibration still helps against the truth."}[given])
    return " ".join(out)


def _paper_paragraph(facts: CalibrationFacts) -> str:
    paras = []
    for p in facts.paper:
        others = [n for n in p.models if n not in p.same_model]
        who = (f"{names_list(p.same_model)} is the paper's model (other outputs of it than the paper's)"
               + (f" and {names_list(others)} {'is' if len(others) == 1 else 'are'} not" if others else "")
               if p.same_model else "with other models than the paper's")
        outcome = [f"calibration lowers the true ECE (the change's interval above zero) for {len(p.lowered)} of "
                   f"{len(p.models)}" + (f" ({names_list(p.lowered)})" if p.lowered else "")]
        if p.within:
            outcome.append(f"the data cannot tell the change from zero for {names_list(p.within)}")
        if p.raised:
            outcome.append(f"it raises it for {names_list(p.raised)}")
        paras.append(f"The paper (Table 1) calibrates {p.model} on {p.name}, whose test ECE goes from "
                     f"{p.ece_before:.4f} to {p.ece_after:.4f}. Here, on the same data set ({who}), "
                     + "; ".join(outcome) + f": {p.agreement}.")
    if facts.datasets_without_claims:
        paras.append(f"The paper reports no calibration result on "
                     f"{names_list([dataset_label(d) for d in facts.datasets_without_claims])}: "
                     "these models are not compared with a number of the paper's.")
    return "\n\n".join(paras)


def prose(facts: CalibrationFacts, *, terms: bool = True) -> dict[str, str]:
    """The chapter's sentences, by section: ``showcase``, ``lesson`` ("" without true labels),
    ``models`` (one paragraph per model) and ``paper`` (beside the paper's claims for these data
    sets, or that it has none).

    ``terms``: the first paragraph's first use of a glossary term links it with MyST's
    ``{term}`` role, as the book shows it; False for Markdown rendered outside Sphinx (the
    own-data report)."""
    n_bins = facts.parameters["n_bins"]
    models = _ordered(facts)
    # the Spearman correlation is linked where the page first states one
    first = next((i for i, m in enumerate(models) if m.test.monotonicity_before is not None), None)
    return {"showcase": _showcase_paragraph(facts), "lesson": _lesson_paragraph(facts),
            "models": "\n\n".join(_model_paragraph(m, n_bins, on_slider=m.name == facts.showcase.model,
                                                    terms=terms and i == first)
                                 for i, m in enumerate(models)),
            "paper": _paper_paragraph(facts)}
