"""The report layer: everything a chapter shows, computed once from record sets.

``calibration_report``, ``cascade_report`` and ``cleaning_report`` take record sets (or their
paths) and the section's parameters and return typed results. Each result's ``to_dict()``
is the section's ``results.json`` (stable snake_case keys, no display strings as keys);
its ``tables``/``figure``/``explorers`` methods draw what the chapter shows, and the
``*_prose`` functions turn a ``results.json`` dict back into the chapter's sentences, so
every number in the prose is one of the file's numbers (``tests/test_report.py`` checks
it). The paper's own numbers live in one data file, read by :func:`paper_reference`.

Every split is :func:`calcas.cal_test_split` (seeded, by id); every comparison is made on
the test half at a K fixed before looking at test (the section's ``K``) or chosen on cal;
"best over K on test" is reported only labelled as optimistic.
"""
from __future__ import annotations

import dataclasses
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .calibration import CalibratedRecords, TemperatureScaling, calibrate_records
from .cascade import AdvantageRouter, cascade_curves
from .cleaning import (cleaned_accuracy, cleaning_sweep, confident_learning_flags, disagreement_sweep,
                       flag_class_threshold, flag_confident_disagreement, flag_top1_disagreement, label_errors,
                       overlap_summary, precision_interval)
from .metrics import (brier, ece, ece_bootstrap, mce, min_detectable_ece, monotonicity, paired_difference_interval,
                      proportion_interval, reliability_table)
from .records import Records, align, read_records, record_set_names

REFERENCE_FILE = Path(__file__).parent / "data" / "paper_reference.json"


@lru_cache(maxsize=1)
def paper_reference() -> dict[str, Any]:
    """The paper's reported numbers in the shape this module's callers read (Tables 1-3, Figures
    2-4), from ``calcas/data/paper_reference.json``. Transitional: the chapters read
    :func:`calcas.chapters.common.paper_reference` per data set instead."""
    ref = json.loads(REFERENCE_FILE.read_text())
    d = ref["datasets"]
    table1 = {k: {**d[k]["calibration"], "dataset": d[k]["name"]} for k in ("imagenet", "mmlu")}
    ll = d["imagenet"]["cascading"]["large_large"]
    return {"table1": table1, "cascades": {"large_large": {**ll, "dataset": "ImageNet-1k, half of val"}},
            "table3": d["imagenet"]["cleaning"]["table3"]}


def _load(record_sets: Sequence[Any]) -> tuple[list[Records], list[str]]:
    """Records and display names from paths or Records (names from the manifests and paths)."""
    sets = [r if isinstance(r, Records) else read_records(r) for r in record_sets]
    paths = [f"{r.manifest.get('model') or 'records'}_{i}" if isinstance(p, Records) else str(p)
             for i, (r, p) in enumerate(zip(sets, record_sets))]
    return sets, record_set_names(sets, paths)


def _interval(k: float, n: int) -> list[float]:
    low, high = proportion_interval(k, n)
    return [k / n if n else float("nan"), low, high]


def _curve_dict(table: pd.DataFrame, columns: Sequence[str]) -> dict[str, list]:
    return {c: table[c].tolist() for c in columns if c in table.columns}


def detectable_ece(n: int, n_bins: int, accuracy: float) -> float | None:
    """:func:`calcas.min_detectable_ece` of a split: its ``n``, the bins that exist on it and
    its accuracy; None where the accuracy is 0 or 1 (no bin's accuracy varies: nothing to
    detect against)."""
    if not 0.0 < accuracy < 1.0:
        return None
    return min_detectable_ece(n, n_bins, accuracy=accuracy)


def exercises_shown(sets: Sequence[Records]) -> bool:
    """Whether a chapter shows its exercises: where every record set carries logits and one
    carries ground truth of its labels (``valid_labels`` or ``is_noisy``).

    The exercises' labels must be unique in a book, and each notebook runs for several
    chapters; the book's own MNIST-1D chapters (and the paper profile's first chapter of each
    kind) meet this condition, the public chapters, on top-1 confidences, do not. The solutions'
    code still runs everywhere (papermill executes it before the chapter drops the cells).
    """
    return all(r.logits is not None for r in sets) and \
        any(r.valid_labels is not None or r.is_noisy is not None for r in sets)


def _largest_tie_share(confidence: np.ndarray) -> tuple[float, float]:
    """The most repeated confidence value and the share of samples holding it."""
    values, counts = np.unique(confidence, return_counts=True)
    i = int(np.argmax(counts))
    return float(values[i]), float(counts[i] / len(confidence))


# ============================================================================ calibration

#: The column beside every ECE: the smallest ECE the split's data can detect (:func:`detectable_ece`).
DETECTABLE = "detectable ECE ≥"

@dataclasses.dataclass
class CalibrationReport:
    """What the calibration chapter shows (paper §2.1, Table 1, Fig. 1).

    ``models`` maps a record set's display name to its numbers (see :meth:`to_dict`);
    ``featured`` is the showcased model (:func:`choose_showcase`) and ``showcase`` its numbers
    against the verifier it is shown with; ``lesson`` the flipped-label lesson's model
    (:func:`choose_lesson`) and its numbers, None without true labels; ``fits`` and ``cal`` keep the fitted calibrators and
    splits for the figures, ``true_fits`` the temperature fitted on the true labels.
    """

    parameters: dict[str, Any]
    models: dict[str, dict[str, Any]]
    featured: str
    fits: dict[str, CalibratedRecords] = dataclasses.field(repr=False)
    sets: dict[str, Records] = dataclasses.field(repr=False)
    cal: dict[str, np.ndarray] = dataclasses.field(repr=False)
    showcase: dict[str, Any] = dataclasses.field(default_factory=dict)
    lesson: dict[str, Any] | None = None
    true_fits: dict[str, TemperatureScaling] = dataclasses.field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The section's ``results.json``: every number the chapter shows, under snake_case keys."""
        return {"section": "02_calibration", "parameters": self.parameters, "models": self.models,
                "featured": self.featured, "showcase": self.showcase, "lesson": self.lesson,
                "n_cal": {n: m["n_cal"] for n, m in self.models.items()},
                "shown": {"true_labels": any(m.get("true_labels") for m in self.models.values()),
                          "flipped_label_lesson": self.lesson is not None,
                          "exercises": exercises_shown(list(self.sets.values()))}}

    def reliability_tables(self, name: str) -> dict[str, dict[str, pd.DataFrame]]:
        """Per split, the uncalibrated and calibrated reliability tables of one model."""
        f, r, cal, n_bins = self.fits[name], self.sets[name], self.cal[name], self.parameters["n_bins"]
        return {split: {"uncalibrated": reliability_table(f.raw[m], r.verified[m], n_bins),
                        "calibrated": reliability_table(f.calibrated[m], r.verified[m], n_bins)}
                for split, m in (("cal", cal), ("test", ~cal))}

    def table(self) -> pd.DataFrame:
        """Table 1: accuracy, ECE before/after with 95% intervals, per model and split."""
        rows = []
        for name, m in self.models.items():
            for split in ("cal", "test"):
                s = m[split]
                rows.append({"model": name, "split": split, "accuracy": s["accuracy"],
                             "ECE before": s["ece_before"][0], "95% low before": s["ece_before"][1],
                             "95% high before": s["ece_before"][2], "ECE after": s["ece_after"][0],
                             "95% low after": s["ece_after"][1], "95% high after": s["ece_after"][2],
                             DETECTABLE: s["min_detectable_ece"], "bins": s["n_bins_effective"]})
        return pd.DataFrame(rows).set_index(["model", "split"])

    def calibrator_table(self) -> pd.DataFrame:
        """The fitted calibrator of each model: method and its parameters."""
        return pd.DataFrame({n: {"method": m["method"], "temperature T": m.get("temperature"),
                                 "Platt a": m.get("platt_a"), "Platt b": m.get("platt_b")}
                             for n, m in self.models.items()}).T.dropna(axis=1, how="all")

    def true_label_table(self) -> pd.DataFrame | None:
        """ECE against the true labels, where the record sets carry them (else None)."""
        rows = {n: m["true_labels"] for n, m in self.models.items() if m.get("true_labels")}
        if not rows:
            return None
        columns = {"test_accuracy": "test accuracy (true labels)", "ece_uncalibrated": "ECE uncalibrated",
                   "ece_calibrated_given_labels": "ECE, calibrated on given labels",
                   "ece_temperature_true_labels": "ECE, T fitted on true labels", "min_detectable_ece": DETECTABLE,
                   "temperature_given_labels": "T (given labels)", "temperature_true_labels": "T (true labels)"}
        return pd.DataFrame(rows).T[list(columns)].rename(columns=columns)

    def _true_correct(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Correctness against the true labels and the mask of rows whose true label is known."""
        r = self.sets[name]
        true = _true_labels(r)
        return (r.pred == true).astype(float), true >= 0

    def showcase_title(self) -> str:
        """"<model>, test half" and, where it is shown against them, "against the true labels"."""
        against = ", against the true labels" if self.showcase.get("verifier") == "true_labels" else ""
        return f"{self.featured}, test half{against}"

    def showcase_tables(self) -> dict[str, pd.DataFrame]:
        """The showcased model's test-half reliability tables, uncalibrated and calibrated,
        against the verifier it is shown with (``showcase["verifier"]``)."""
        conf, correct = self.explorer_inputs()
        n_bins = min(self.parameters["n_bins"], len(correct))
        return {k: reliability_table(c, correct, n_bins) for k, c in conf.items()}

    def lesson_tables(self) -> dict[str, dict[str, pd.DataFrame]] | None:
        """The flipped-label lesson (None without true labels): the lesson model's test half
        against the given labels (uncalibrated, and calibrated on the given labels as in the
        rest of the chapter), and against the true labels (the same two, and the temperature
        fitted on the true labels)."""
        if self.lesson is None:
            return None
        name = self.lesson["model"]
        f, r, test = self.fits[name], self.sets[name], ~self.cal[name]
        right, known = self._true_correct(name)
        m = test & known
        n_bins = self.parameters["n_bins"]
        true_t = self.true_fits[name].transform(r.logits[m])
        return {"against the given labels": {
                    "uncalibrated": reliability_table(f.raw[test], r.verified[test], n_bins),
                    "calibrated": reliability_table(f.calibrated[test], r.verified[test], n_bins)},
                "against the true labels": {
                    "uncalibrated": reliability_table(f.raw[m], right[m], n_bins),
                    "calibrated": reliability_table(f.calibrated[m], right[m], n_bins),
                    "T fitted on true labels": reliability_table(true_t, right[m], n_bins)}}

    def explorer_inputs(self, name: str | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Test-half confidences (uncalibrated, calibrated) and correctness of one model.

        Without ``name``, the showcased model against its verifier: where it is shown against
        the true labels, "calibrated" is the temperature fitted on the true labels of the cal
        half and correctness is against the true labels (rows whose true label is known)."""
        if name is None and self.showcase.get("verifier") == "true_labels":
            name = self.featured
            r, test = self.sets[name], ~self.cal[name]
            right, known = self._true_correct(name)
            m = test & known
            return ({"uncalibrated": self.fits[name].raw[m],
                     "calibrated": self.true_fits[name].transform(r.logits[m])}, right[m])
        name = name or self.featured
        f, r, cal = self.fits[name], self.sets[name], self.cal[name]
        return {"uncalibrated": f.raw[~cal], "calibrated": f.calibrated[~cal]}, r.verified[~cal]


def _split_metrics(raw: np.ndarray, calibrated: np.ndarray, correct: np.ndarray, n_bins: int,
                   n_boot: int, seed: int) -> dict[str, Any]:
    before_table = reliability_table(raw, correct, n_bins)
    over = before_table[before_table["count"] > 0]
    return {"n": int(len(correct)), "accuracy": float(correct.mean()),
            "ece_before": list(ece_bootstrap(raw, correct, n_bins, n_boot=n_boot, seed=seed)),
            "ece_after": list(ece_bootstrap(calibrated, correct, n_bins, n_boot=n_boot, seed=seed)),
            "mce_before": mce(raw, correct, n_bins), "mce_after": mce(calibrated, correct, n_bins),
            "brier_before": brier(raw, correct), "brier_after": brier(calibrated, correct),
            "monotonicity_before": monotonicity(raw, correct, n_bins),
            "monotonicity_after": monotonicity(calibrated, correct, n_bins),
            "n_bins_effective": int(len(over)),
            "min_detectable_ece": detectable_ece(len(correct), len(over), float(correct.mean())),
            "gap_before": float(raw.mean() - correct.mean()),
            "overconfident_bins_before": int((over["mean_confidence"] > over["accuracy"]).sum())}


def _true_labels(r: Records) -> np.ndarray:
    """The first true label of each row (-1 where none is known); needs ``valid_labels``."""
    return np.array([v[0] if len(v) else -1 for v in r.valid_labels])


def _true_label_check(r: Records, f: CalibratedRecords, cal: np.ndarray,
                      n_bins: int) -> tuple[dict[str, float], TemperatureScaling] | tuple[None, None]:
    """The same model against its true labels (a clean verifier), where the set carries them,
    and the temperature fitted on the true labels of the cal half."""
    if r.valid_labels is None or r.logits is None:
        return None, None
    true = _true_labels(r)
    known = true >= 0
    right = (r.pred == true).astype(float)
    fit_true = TemperatureScaling().fit(r.logits[cal & known], true[cal & known])
    m = ~cal & known
    bins = int((reliability_table(f.raw[m], right[m], n_bins)["count"] > 0).sum())
    return {"test_accuracy": float(right[m].mean()), "ece_uncalibrated": ece(f.raw[m], right[m], n_bins),
            "min_detectable_ece": detectable_ece(int(m.sum()), bins, float(right[m].mean())),
            "ece_calibrated_given_labels": ece(f.calibrated[m], right[m], n_bins),
            "ece_temperature_true_labels": ece(fit_true.transform(r.logits[m]), right[m], n_bins),
            "temperature_given_labels": getattr(f.calibrator, "temperature_", None),
            "temperature_true_labels": fit_true.temperature_}, fit_true


def choose_showcase(models: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    """The model the calibration chapter shows first, and the verifier it is shown against.

    Among the real models (not ``dataset == "synthetic"``; all of them when every one is
    synthetic): where some carry true labels, the one whose test ECE against the true labels
    falls most under a temperature fitted on the true labels (verifier ``"true_labels"``);
    otherwise the one whose test ECE falls most under the chapter's calibration (verifier
    ``"given_labels"``). The fall can be negative: then no model is helped, and this is the
    one hurt least. Ties go to the first in order.

    Parameters
    ----------
    models : mapping name -> model entry
        The ``models`` of a calibration ``results.json`` (:meth:`CalibrationReport.to_dict`).

    Returns
    -------
    (name, verifier)
    """
    if not models:
        raise ValueError("models: no models to choose from")
    real = [n for n, m in models.items() if m.get("dataset") != "synthetic"] or list(models)
    with_truth = [n for n in real if models[n].get("true_labels")]
    if with_truth:
        drop = {n: models[n]["true_labels"]["ece_uncalibrated"] - models[n]["true_labels"]["ece_temperature_true_labels"]
                for n in with_truth}
        verifier = "true_labels"
    else:
        drop = {n: models[n]["test"]["ece_before"][0] - models[n]["test"]["ece_after"][0] for n in real}
        verifier = "given_labels"
    return max(drop, key=drop.__getitem__), verifier


def choose_lesson(models: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The model of the flipped-label lesson: among the real models with true labels (all
    models with them when none is real), the one whose test ECE against the true labels the
    calibration fitted on the given labels raises most (or lowers least); None when no model
    carries true labels. Ties go to the first in order.

    Parameters
    ----------
    models : mapping name -> model entry
        The ``models`` of a calibration ``results.json``.
    """
    with_truth = [n for n, m in models.items() if m.get("true_labels")]
    real = [n for n in with_truth if models[n].get("dataset") != "synthetic"] or with_truth
    if not real:
        return None
    rise = {n: models[n]["true_labels"]["ece_calibrated_given_labels"] - models[n]["true_labels"]["ece_uncalibrated"]
            for n in real}
    return max(rise, key=rise.__getitem__)


def _lesson(rep: CalibrationReport, name: str) -> dict[str, Any]:
    """The lesson model's numbers: what the flips cap, and its most confident bin against the
    given labels after the chapter's calibration."""
    r, test = rep.sets[name], ~rep.cal[name]
    true = _true_labels(r)
    known = test & (true >= 0)
    flipped = float((r.label[known] != true[known]).mean())
    given = reliability_table(rep.fits[name].calibrated[test], r.verified[test], rep.parameters["n_bins"])
    top = given[given["count"] > 0].iloc[-1]
    truth = rep.models[name]["true_labels"]
    return {"model": name, "flipped_share": flipped, "accuracy_ceiling": 1.0 - flipped,
            "top_bin_confidence": float(top["mean_confidence"]), "top_bin_accuracy": float(top["accuracy"]),
            "temperature_given_labels": truth["temperature_given_labels"],
            "temperature_true_labels": truth["temperature_true_labels"]}


def _showcase(rep: CalibrationReport, verifier: str, n_boot: int, seed: int) -> dict[str, Any]:
    """The showcased model's numbers against its verifier: ECE before and after with bootstrap
    intervals."""
    name = rep.featured
    m = rep.models[name]
    conf, correct = rep.explorer_inputs()
    n_bins = min(rep.parameters["n_bins"], len(correct))
    before = list(ece_bootstrap(conf["uncalibrated"], correct, n_bins, n_boot=n_boot, seed=seed))
    after = list(ece_bootstrap(conf["calibrated"], correct, n_bins, n_boot=n_boot, seed=seed))
    table = reliability_table(conf["uncalibrated"], correct, n_bins)
    out = {"model": name, "verifier": verifier, "n": int(len(correct)), "accuracy": float(correct.mean()),
           "n_bins_effective": int((table["count"] > 0).sum()), "ece_before": before, "ece_after": after,
           "min_detectable_ece": detectable_ece(len(correct), int((table["count"] > 0).sum()), float(correct.mean())),
           "gap_before": float(conf["uncalibrated"].mean() - correct.mean()),
           "method": "temperature" if verifier == "true_labels" else m["method"]}
    if verifier == "true_labels":
        out["temperature"] = m["true_labels"]["temperature_true_labels"]
    elif m["method"] == "temperature":
        out["temperature"] = m["temperature"]
    else:
        out["platt_a"], out["platt_b"] = m["platt_a"], m["platt_b"]
    return out


def calibration_report(records: Sequence[Any], *, calibration: str = "auto", n_bins: int = 15,
                       n_boot: int = 1000, cal_fraction: float = 0.5, seed: int = 0) -> CalibrationReport:
    """Calibrate each record set on its cal half and measure both halves (Table 1, Fig. 1).

    Parameters
    ----------
    records : sequence of paths or Records
        One record set per model (logits, confidences or scores; see :func:`calcas.calibrate_records`).
    calibration : {"auto", "temperature", "platt"}
    n_bins : int
        Equal-count bins for ECE, MCE, monotonicity and the reliability diagrams.
    n_boot : int
        Bootstrap replicates of each ECE interval.
    cal_fraction, seed
        The seeded cal/test split of :func:`calcas.cal_test_split`.

    Returns
    -------
    CalibrationReport
        ``featured`` is the model the chapter shows first (:func:`choose_showcase`), and
        ``showcase`` its ECE before and after against that verifier, with intervals;
        ``lesson`` the flipped-label lesson (:func:`choose_lesson`).
    """
    sets, names = _load(records)
    models, fits, cal_of, true_fits = {}, {}, {}, {}
    for name, r in zip(names, sets):
        cal = cal_of[name] = r.cal_mask(cal_fraction=cal_fraction, seed=seed)
        f = fits[name] = calibrate_records(r, cal, method=calibration)
        entry = {"method": f.method, "dataset": r.manifest.get("dataset"), "n_cal": int(cal.sum()),
                 "n_test": int((~cal).sum())}
        if f.method == "temperature":
            entry["temperature"] = f.calibrator.temperature_
        else:
            entry["platt_a"], entry["platt_b"] = f.calibrator.a_, f.calibrator.b_
        for split, m in (("cal", cal), ("test", ~cal)):
            entry[split] = _split_metrics(f.raw[m], f.calibrated[m], r.verified[m], n_bins, n_boot, seed)
        entry["tie_value"], entry["tie_share"] = _largest_tie_share(f.raw)
        entry["true_labels"], true_fit = _true_label_check(r, f, cal, n_bins)
        if true_fit is not None:
            true_fits[name] = true_fit
        models[name] = entry
    featured, verifier = choose_showcase(models)
    params = {"records": [str(p) if not isinstance(p, Records) else n for p, n in zip(records, names)],
              "calibration": calibration, "n_bins": n_bins, "n_boot": n_boot, "cal_fraction": cal_fraction,
              "seed": seed}
    rep = CalibrationReport(params, models, featured, fits, dict(zip(names, sets)), cal_of,
                            showcase={"verifier": verifier}, true_fits=true_fits)
    rep.showcase = _showcase(rep, verifier, n_boot, seed)
    lesson = choose_lesson(models)
    rep.lesson = None if lesson is None else _lesson(rep, lesson)
    return rep


# ============================================================================ cascades

@dataclasses.dataclass
class CascadeReport:
    """What the cascade chapter shows (paper §2.2, Algorithm 1, Figs. 2/3, Table 2's first column)."""

    parameters: dict[str, Any]
    pairs: dict[str, dict[str, Any]]
    curves: dict[str, pd.DataFrame] = dataclasses.field(repr=False)
    exercises: bool = False  # see exercises_shown

    def to_dict(self) -> dict[str, Any]:
        """The section's ``results.json``: every number the chapter shows, under snake_case keys."""
        return {"section": "03_cascading", "parameters": self.parameters, "pairs": self.pairs,
                "shown": {"exercises": self.exercises}}

    def table(self) -> pd.DataFrame:
        """Per pair: each model, CC at the fixed K and at the cal-chosen K, the paired gains, and
        the (optimistic) best over K on test; accuracy with its 95% interval."""
        rows = []
        for pair, r in self.pairs.items():
            k, kc = r["K_used"], r["K_cal"]
            for what, key in ((f"first: {r['first']}", "accuracy_first"), (f"second: {r['second']}", "accuracy_second"),
                              (f"CC at K = {k} (fixed)", "cc_at_K"), (f"CC at K = {kc} (chosen on cal)", "cc_at_K_cal"),
                              (f"gain of CC at K = {k} over {r['better']} (paired)", "gain_at_K"),
                              (f"gain of CC at K = {kc} over {r['better']} (paired)", "gain_at_K_cal")):
                v = r[key]
                rows.append({"pair": pair, "": what, "accuracy": v[0], "95% low": v[1], "95% high": v[2]})
            rows.append({"pair": pair, "": f"best CC over K, picked on test (optimistic; K = {r['best_cc_K']})",
                         "accuracy": r["best_cc_accuracy"], "95% low": None, "95% high": None})
        return pd.DataFrame(rows).set_index(["pair", ""])

    def operating_points(self) -> pd.DataFrame:
        """RC, UC, CC and the oracle at the fixed K of each pair."""
        rows = []
        for pair, r in self.pairs.items():
            for method, point in r["at_K"].items():
                rows.append({"pair": pair, "method": method, **point})
        return pd.DataFrame(rows).set_index(["pair", "method"])


def _at(curve: pd.DataFrame, K: int) -> dict[str, Any]:
    row = curve[curve["K"] == K].iloc[0]
    return {c: (int(row[c]) if c in ("K", "large_calls_saved") else float(row[c]))
            for c in curve.columns if c != "method"}


def _cost_of(r: Records) -> float | None:
    return (r.manifest.get("extraction") or {}).get("flops_per_sample")


def _pair_report(first: Records, second: Records, names: list[str], *, K: int, calibration: str,
                 n_bins: int, cal_fraction: float, seed: int) -> tuple[dict[str, Any], pd.DataFrame]:
    cal = first.cal_mask(cal_fraction=cal_fraction, seed=seed)
    test = ~cal
    f1, f2 = (calibrate_records(r, cal, method=calibration) for r in (first, second))
    v1, v2 = first.verified, second.verified

    costs = {"cost_first": _cost_of(first), "cost_second": _cost_of(second)}
    # one fit per router: the curves, the rows routed at K and the curve on cal all use these two
    router = AdvantageRouter(n_bins).fit(f1.calibrated[cal], f2.calibrated[cal])
    routers = {"UC": AdvantageRouter(n_bins).fit(f1.raw[cal], f2.raw[cal]), "CC": router}
    on_test = {"raw_first": f1.raw[test], "raw_second": f2.raw[test], "calibrated_first": f1.calibrated[test],
               "calibrated_second": f2.calibrated[test], "correct_first": v1[test], "correct_second": v2[test]}
    curves = cascade_curves(None, on_test, routers=routers, **costs)
    cc = curves[curves["method"] == "CC"].reset_index(drop=True)
    uc = curves[curves["method"] == "UC"].reset_index(drop=True)
    rc = curves[curves["method"] == "RC"].reset_index(drop=True)
    n_eff = int(cc["K"].max())
    K_used = min(K, n_eff)
    # K chosen on cal: the CC curve measured on the cal rows themselves (ties: the larger K, cheaper)
    on_cal = router.curve(f1.calibrated[cal], v1[cal], v2[cal])
    K_cal = int(on_cal["K"].to_numpy()[::-1][np.argmax(on_cal["accuracy"].to_numpy()[::-1])])
    better_is_first = v1[cal].mean() > v2[cal].mean()  # the better model, judged on cal
    better = v1[test] if better_is_first else v2[test]
    n_test = int(test.sum())

    def cc_rows(k: int) -> np.ndarray:
        return np.where(router.route(f1.calibrated[test], k), v1[test], v2[test])
    at_K, at_K_cal = cc_rows(K_used), cc_rows(K_cal)
    # CC against UC and RC at the same share p (UC's curve read at CC's p: with ties the two
    # curves can have different K grids), on the K strictly between the two models alone.
    inner = (cc["K"] > 0) & (cc["K"] < n_eff)
    p = cc["p_small"].to_numpy()
    uc_at_p = np.interp(p, uc["p_small"].to_numpy(), uc["accuracy"].to_numpy())
    acc = cc["accuracy"].to_numpy()
    best = int(np.argmax(acc))
    tie_value, tie_share = _largest_tie_share(f1.calibrated[cal])
    result = {
        "first": names[0], "second": names[1], "better": names[0] if better_is_first else names[1],
        "n_cal": int(cal.sum()), "n_test": n_test, "n_bins_effective": n_eff,
        "n_bins_effective_uc": int(uc["K"].max()), "tie_value": tie_value, "tie_share": tie_share,
        "K": K, "K_used": K_used, "K_cal": K_cal,
        "accuracy_first": _interval(v1[test].sum(), n_test), "accuracy_second": _interval(v2[test].sum(), n_test),
        "cc_at_K": _interval(at_K.sum(), n_test), "cc_at_K_cal": _interval(at_K_cal.sum(), n_test),
        "gain_at_K": list(paired_difference_interval(at_K, better, seed=seed)),
        "gain_at_K_cal": list(paired_difference_interval(at_K_cal, better, seed=seed)),
        "best_cc_accuracy": float(acc[best]), "best_cc_K": int(cc["K"][best]), "best_cc_p": float(p[best]),
        "share_cc_at_least_uc": float(np.mean(acc[inner] >= uc_at_p[inner] - 1e-12)) if inner.any() else None,
        "share_cc_above_rc": float(np.mean(acc[inner] > rc["accuracy"].to_numpy()[inner])) if inner.any() else None,
        "mean_cc_minus_uc": float(np.mean(acc[inner] - uc_at_p[inner])) if inner.any() else None,
        # the half-width of one accuracy's interval: the scale below which a curve difference is noise
        "noise_half_width": float(1.96 * np.sqrt(max(at_K.mean() * (1 - at_K.mean()), 1e-12) / n_test)),
        "at_K": {m: _at(curves[curves["method"] == m], K_used) for m in ("RC", "UC", "CC", "oracle")
                 if K_used in set(curves[curves["method"] == m]["K"])},
        "curves": {m: _curve_dict(g, ("K", "p_small", "accuracy", "compute_saved"))
                   for m, g in curves.groupby("method")},
    }
    return result, curves


def cascade_report(pairs: Mapping[str, Sequence[Any]], *, K: int = 8, calibration: str = "auto",
                   n_bins: int = 15, cal_fraction: float = 0.5, seed: int = 0) -> CascadeReport:
    """Algorithm 1 on every pair: curves RC / UC / CC / oracle over K, and the operating points.

    Parameters
    ----------
    pairs : mapping name -> [first, second]
        Paths or Records of the first (asked first, usually the small) and second model; rows
        are aligned by id.
    K : int
        Bins kept by the first model at the fixed operating point (fixed before looking at
        test). With tied confidences fewer than ``n_bins`` distinct bins may exist; K is then
        capped at their number (``K_used``).
    calibration, n_bins, cal_fraction, seed
        As in :func:`calibration_report`.

    Returns
    -------
    CascadeReport
        Per pair (see :meth:`CascadeReport.to_dict`): accuracies with Wilson intervals; CC at
        the fixed K and at the K that is best on cal, each with the paired bootstrap gain over
        the better model (the better judged on cal); the best over K on test (optimistic).
    """
    if K > n_bins:
        raise ValueError(f"K: must be <= n_bins ({n_bins}), got {K}")
    out, curves, every_set = {}, {}, []
    for pair, paths in pairs.items():
        sets, names = _load(paths)
        every_set += sets
        first, second = align(*sets)
        out[pair], curves[pair] = _pair_report(first, second, names, K=K, calibration=calibration, n_bins=n_bins,
                                               cal_fraction=cal_fraction, seed=seed)
    params = {"pairs": {k: [str(p) for p in v] for k, v in pairs.items()}, "K": K, "calibration": calibration,
              "n_bins": n_bins, "cal_fraction": cal_fraction, "seed": seed}
    return CascadeReport(params, out, curves, exercises_shown(every_set))


# ============================================================================ cleaning

@dataclasses.dataclass
class CleaningReport:
    """What the cleaning chapter shows (paper §2.3, Algorithm 2, Fig. 4, Tables 2 and 3)."""

    parameters: dict[str, Any]
    results: dict[str, Any]
    sweeps: dict[str, pd.DataFrame] = dataclasses.field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The section's ``results.json``: every number the chapter shows, under snake_case keys."""
        return {"section": "04_cleaning", "parameters": self.parameters, **self.results}

    def flags_table(self) -> pd.DataFrame:
        """Per method: flagged, detection rate and, with ground truth, precision and its interval."""
        rows = {f["label"]: {"flagged": f["flagged"], "detection rate": f["detection_rate"],
                             "rated": f["n_rated"], "precision": f["precision"], "95% low": f["precision_low"],
                             "95% high": f["precision_high"]}
                for f in self.results["flags"].values()}
        table = pd.DataFrame(rows).T
        if self.results["truth"] is None:
            table = table[["flagged", "detection rate"]]
        return table

    def overlap_table(self) -> pd.DataFrame | None:
        """Table 3: method 2 against Confident Learning, alone and together (None without CL)."""
        t3 = self.results["table3"]
        if t3 is None:
            return None
        return pd.DataFrame({g["label"]: {"flagged": g["n_flagged"], "precision": g["precision"]}
                             for g in t3.values()}).T

    def cleaned_table(self) -> pd.DataFrame:
        """Table 2: each expert's test accuracy on given and on cleaned labels."""
        t2 = self.results["table2"]
        return pd.DataFrame({m: {"given labels": v["given"], f"method 2 flags cleaned ({t2['mode']})": v["cleaned"],
                                 **({"every label cleaned": v["all_cleaned"]} if v.get("all_cleaned") is not None
                                    else {})}
                             for m, v in t2["models"].items()}).T

    def lines(self) -> dict[str, pd.DataFrame]:
        """The method-2 sweeps, mixture first, keyed by display name."""
        n = len(self.results["experts"])
        return {f"method 2, {n} experts" if name == "mixture" else f"method 2, {name} alone": s
                for name, s in self.sweeps.items()}

    def points(self) -> dict[str, tuple[float, float]]:
        """Single operating points (detection rate, precision): method 1, method 3, CL."""
        return {f["label"]: (f["detection_rate"], f["precision"]) for k, f in self.results["flags"].items()
                if k != "method_2"}


def _truth(r: Records) -> tuple[np.ndarray | None, str | None]:
    if r.is_noisy is not None:  # flips made on purpose: known exactly for every sample
        return label_errors(r.label, is_noisy=r.is_noisy), "is_noisy"
    if r.valid_labels is not None:
        return label_errors(r.label, valid_labels=r.valid_labels), "valid_labels"
    return None, None


def _flag_entry(label: str, flags: np.ndarray, is_error: np.ndarray | None) -> dict[str, Any]:
    prec, low, high = precision_interval(flags, is_error)
    rated = int((flags & ~np.isnan(is_error)).sum()) if is_error is not None else 0
    return {"label": label, "flagged": int(flags.sum()), "detection_rate": float(flags.mean()), "n_rated": rated,
            "precision": prec, "precision_low": low, "precision_high": high}


def cleaning_report(experts: Sequence[Any], *, K: int = 12, calibration: str = "auto", n_bins: int = 15,
                    cal_fraction: float = 0.5, seed: int = 0) -> CleaningReport:
    """Algorithm 2 with every expert: methods 1-3, Confident Learning, the sweep over K.

    Parameters
    ----------
    experts : sequence of paths or Records
        One record set per expert on the same data set (aligned by id). Ground truth of label
        errors comes from the first set's ``valid_labels`` (every acceptable label, e.g.
        ImageNet ReaL) or ``is_noisy`` (known flips); without either, precision is unknown.
    K : int
        Method 2's operating point: each expert's K most accurate cal bins (capped at the
        number of distinct bins when confidences are tied: ``K_used``).
    calibration, n_bins, cal_fraction, seed
        As in :func:`calibration_report`.

    Returns
    -------
    CleaningReport
        Method 3 and Confident Learning use the expert most accurate on cal and need its
        class probabilities (logits); without them they are left out (``shown``).
    """
    if K > n_bins:
        raise ValueError(f"K: must be <= n_bins ({n_bins}), got {K}")
    sets, names = _load(experts)
    sets = list(align(*sets)) if len(sets) > 1 else sets
    cal = sets[0].cal_mask(cal_fraction=cal_fraction, seed=seed)
    fits = [calibrate_records(r, cal, method=calibration) for r in sets]
    labels = sets[0].label
    is_error, truth = _truth(sets[0])
    preds = np.stack([r.pred for r in sets])
    confs = np.stack([f.calibrated for f in fits])
    best = int(np.argmax([r.verified[cal].mean() for r in sets]))
    sweep = cleaning_sweep(preds, confs, labels, n_bins=n_bins, fit_mask=cal, is_error=is_error)
    sweeps = {"mixture": sweep, **{n: cleaning_sweep(preds[j], confs[j], labels, n_bins=n_bins, fit_mask=cal,
                                                     is_error=is_error) for j, n in enumerate(names)}}
    K_used = min(K, int(sweep["K"].max()))
    m2 = flag_confident_disagreement(preds, confs, labels, K_used, n_bins=n_bins, fit_mask=cal)
    flags = {"method_1": _flag_entry("method 1", flag_top1_disagreement(preds, labels), is_error),
             "method_2": _flag_entry(f"method 2 (K = {K_used})", m2, is_error)}
    probs = fits[best].probabilities
    cl = None
    if probs is not None:
        flags["method_3"] = _flag_entry("method 3", flag_class_threshold(probs, labels), is_error)
        cl = confident_learning_flags(probs, labels)
        flags["confident_learning"] = _flag_entry("Confident Learning", cl, is_error)
    table3 = None
    if cl is not None:
        o = overlap_summary(m2, cl, is_error=is_error, names=("ours", "cl"))
        labels3 = {"ours": f"method 2 (K = {K_used})", "cl": "Confident Learning",
                   "ours only": "method 2 only", "cl only": "Confident Learning only", "both": "both"}
        table3 = {k.replace(" ", "_"): {"label": labels3[k], "n_flagged": int(o.loc[k, "n_flagged"]),
                                        "precision": float(o.loc[k, "precision"])} for k in o.index}
    test = np.flatnonzero(~cal)
    valid = sets[0].valid_labels
    mode = "replace" if valid is not None else "drop"
    valid_test = None if valid is None else [valid[i] for i in test]
    table2 = {"mode": mode, "models": {}}
    for n, r in zip(names, sets):
        entry = table2["models"][n] = {
            "given": float((r.pred == labels)[test].mean()),
            "cleaned": cleaned_accuracy(r.pred[test], labels[test], m2[test], mode=mode, valid_labels=valid_test),
            "all_cleaned": (cleaned_accuracy(r.pred[test], labels[test], np.ones(len(test), bool),
                                             valid_labels=valid_test) if valid is not None else None)}
        entry["gain"] = entry["cleaned"] - entry["given"]
    known = None if is_error is None else ~np.isnan(is_error)
    rate, prec = sweep["detection_rate"].to_numpy(), sweep["precision"].to_numpy()
    ok = np.isfinite(prec)
    trend = (float(spearmanr(rate[ok], prec[ok]).statistic)
             if ok.sum() >= 3 and np.ptp(prec[ok]) > 0 and np.ptp(rate[ok]) > 0 else None)
    order = np.argsort(rate[ok])
    ours_at_cl = (float(np.interp(flags["confident_learning"]["detection_rate"], rate[ok][order], prec[ok][order]))
                  if cl is not None and ok.any() else None)
    results = {
        "experts": names, "method3_model": names[best], "n": int(sets[0].n), "K": K, "K_used": K_used,
        "n_bins_effective": int(sweep["K"].max()), "truth": truth,
        "n_rated": None if known is None else int(known.sum()),
        "n_unrated": None if known is None else int((~known).sum()),
        "noise_rate": None if known is None else float(np.nanmean(is_error)),
        "flags": flags, "table3": table3, "table2": table2,
        "precision_vs_detection": trend, "ours_at_cl_rate": ours_at_cl,
        "sweep": _curve_dict(sweep, sweep.columns),
        "sweep_single": {n: _curve_dict(sweeps[n], sweep.columns) for n in names},
        "shown": {"method3_cl": probs is not None, "table3": table3 is not None, "precision": truth is not None,
                  "exercises": exercises_shown(sets)},
    }
    params = {"experts": [str(p) for p in experts], "K": K, "calibration": calibration, "n_bins": n_bins,
              "cal_fraction": cal_fraction, "seed": seed}
    return CleaningReport(params, results, sweeps)


# ============================================================================ MMLU-Redux

def redux_report(table: pd.DataFrame, models: Sequence[str], *, k: int) -> dict[str, Any]:
    """Method 1 relaxed (at least k of m experts disagree) against MMLU-Redux's human annotations."""
    if k > len(models):
        raise ValueError(f"k: must be <= the number of experts ({len(models)}), got {k}")
    preds = table[list(models)].to_numpy().T
    labels = table["answer"].to_numpy()
    any_problem = (table["error_type"] != "ok").to_numpy()
    wrong_truth = (table["error_type"] == "wrong_groundtruth").to_numpy()
    sweeps = {"any_problem": disagreement_sweep(preds, labels, is_error=any_problem),
              "wrong_truth": disagreement_sweep(preds, labels, is_error=wrong_truth)}
    flagged = (preds != labels[None, :]).sum(axis=0) >= k
    counts = table["error_type"].value_counts()
    found = table.loc[flagged, "error_type"].value_counts()
    return {"section": "06_mmlu_redux", "n": int(len(table)), "experts": list(models), "k": k,
            "n_any_problem": int(any_problem.sum()), "n_wrong_truth": int(wrong_truth.sum()),
            "sweeps": {n: _curve_dict(s, s.columns) for n, s in sweeps.items()},
            "found_at_k": {t: {"questions": int(counts[t]), "flagged": int(found.get(t, 0)),
                               "share_flagged": float(found.get(t, 0) / counts[t])} for t in counts.index}}


# ============================================================================ writing and summaries

def write(report: Any, output_dir: str | os.PathLike) -> dict[str, Any]:
    """Write ``report.to_dict()`` (or a dict) as ``results.json`` and return it as read back
    (rounded, NaN as None): the dict every sentence of the chapter is written from."""
    from .params import write_results
    path = write_results(output_dir, report if isinstance(report, dict) else report.to_dict())
    return json.loads(path.read_text())


def read_results(results_dir: str | os.PathLike, chapters: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    """The ``results.json`` of each chapter folder under ``results_dir`` (None where absent
    or a placeholder written without data)."""
    out = {}
    for chapter in chapters:
        path = Path(results_dir) / chapter / "results.json"
        res = json.loads(path.read_text()) if path.exists() else None
        out[chapter] = None if res is None or res.get("data") == "missing" else res
    return out


@dataclasses.dataclass
class SummaryReport:
    """This run's chapters beside the paper: Table 1, the cascades, Tables 2 and 3."""

    table1: list[dict[str, Any]]
    cascades: list[dict[str, Any]]
    cleaning: list[dict[str, Any]]
    table3: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The section's ``results.json``: every number the chapter shows, under snake_case keys."""
        from .prose import summary_groups
        out = {"section": "summary", "table1": self.table1, "cascades": self.cascades, "cleaning": self.cleaning,
               "table3": self.table3}
        groups = summary_groups(out)
        return {**out, "groups": groups, "counts": {k: len(v) for k, v in groups.items()}}

    def frames(self) -> dict[str, pd.DataFrame]:
        """Display tables, keyed by what they are."""
        casc = pd.DataFrame([{"chapter": c["chapter"], "pair": c["pair"], "K": c["K_used"],
                              "gain at K": c["gain_at_K"][0], "95% low": c["gain_at_K"][1],
                              "95% high": c["gain_at_K"][2], "K chosen on cal": c["K_cal"],
                              "gain at cal K": c["gain_at_K_cal"][0], "95% low (cal K)": c["gain_at_K_cal"][1],
                              "95% high (cal K)": c["gain_at_K_cal"][2],
                              "CC ≥ UC (share)": c["share_cc_at_least_uc"], "CC > RC (share)": c["share_cc_above_rc"]}
                             for c in self.cascades])
        frames = {"table1": pd.DataFrame(self.table1), "cascades": casc, "cleaning": pd.DataFrame(self.cleaning),
                  "table3": pd.DataFrame(self.table3)}
        index = {"table1": ["source", "model"], "cascades": ["chapter", "pair"], "cleaning": ["chapter", "method"],
                 "table3": ["source", "group"]}
        return {k: f.set_index(index[k]) if len(f) else f for k, f in frames.items()}


def summary_report(results: Mapping[str, dict[str, Any] | None]) -> SummaryReport:
    """Set the chapters' results (``read_results``) beside :func:`paper_reference`.

    Calibration chapters give Table 1 rows, cascade chapters one row per pair with the gain at
    the fixed and at the cal-chosen K (verdicts from the paired intervals, never from the best
    K on test), cleaning chapters their flags and Table 3.
    """
    from .prose import cascade_claims
    ref = paper_reference()
    table1 = [{"source": "paper", "model": f"{r['model']} ({r['dataset']})", "ECE before": r["test"]["ece_before"],
               "95% low before": None, "95% high before": None, "ECE after": r["test"]["ece_after"],
               "95% low after": None, "95% high after": None, DETECTABLE: None} for r in ref["table1"].values()
              if isinstance(r, dict)]
    cleaning, table3 = [], []
    for chapter, res in results.items():
        if not res:
            continue
        for name, m in res.get("models", {}).items():
            b, a = m["test"]["ece_before"], m["test"]["ece_after"]
            table1.append({"source": chapter, "model": name, "ECE before": b[0], "95% low before": b[1],
                           "95% high before": b[2], "ECE after": a[0], "95% low after": a[1], "95% high after": a[2],
                           DETECTABLE: m["test"].get("min_detectable_ece")})
        for key, f in (res.get("flags") or {}).items():
            cleaning.append({"chapter": chapter, "method": f["label"], "flagged": f["flagged"],
                             "precision": f["precision"], "95% low": f["precision_low"],
                             "95% high": f["precision_high"]})
        if res.get("table3"):
            for group in ("ours_only", "cl_only", "both"):
                g = res["table3"][group]
                table3.append({"source": chapter, "group": g["label"], "flagged": g["n_flagged"],
                               "precision": g["precision"]})
    if table3:
        for group, label in (("ours_only", "method 2 only"), ("cl_only", "Confident Learning only"), ("both", "both")):
            g = ref["table3"][group]
            table3.insert(0, {"source": "paper", "group": label, "flagged": g["n_flagged"],
                              "precision": g.get("precision")})
    return SummaryReport(table1, cascade_claims({c: r for c, r in results.items() if r}), cleaning, table3)
