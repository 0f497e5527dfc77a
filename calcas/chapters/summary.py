"""The summaries ("This run beside the paper", "Real data beside the paper"): the calibration,
cascading and cleaning chapters' facts, read back from their ``results.json``, counted claim by
claim beside the paper's claims for each data set.

A change is counted only where its interval excludes zero: calibration "lowered" an ECE only
where the chapter's ``change`` verdict lies above zero; a cascade "beats both models" only where
its paired gain interval does. A pair whose cal-chosen K makes no cascade (a model alone) is
counted as that model alone, never as "within noise". "As the paper" is said per data set, only
where the paper's claim for that data set and a significant direction here agree.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from .calibration import CalibrationFacts
from .cascading import LARGE_LARGE_CLAIM, CascadingFacts
from .cleaning import CleaningFacts
from .common import (Facts, Verdict, dataset_label, interval_text, names_list, paper_reference,
                     signed_interval_text, table_interval)
from .redux import CLAIM_TRUTH as REDUX_TRUTH
from .redux import ReduxFacts

#: The paper's Table 1 claim, as named in ``paper_reference.json``'s ``claims``.
CALIBRATION_CLAIM = "calibration_lowers_ece"
#: What each claim of the paper is tested with here.
TESTED = {CALIBRATION_CLAIM: "the change in true ECE on the test half",
          "cc_above_random": "CC against random routing at the same share, at the cal-chosen K",
          "cc_above_uc": "CC against UC at the same share, at the cal-chosen K",
          "large_large_beats_both": "the large-large cascade's gain over the better model, at the cal-chosen K",
          "precision_falls_with_detection_rate": "method 2 at the chapter's K against method 1, which flags more",
          "ours_above_cl": "method 2 against Confident Learning at CL's detection rate"}
#: How a human audit (MMLU-Redux) tests the precision claim: no method 1 there, but a sweep.
AUDIT_TESTED = ("the precision of the questions every expert LLM answers against the label, minus that of those "
                "at least one does (which flags more), against the annotated wrong ground truths")
#: What a chapter's results.json holds, by its ``section``.
KINDS = {"02_calibration": "calibration", "03_cascading": "cascading", "04_cleaning": "cleaning",
         "06_mmlu_redux": "redux"}


@dataclasses.dataclass(frozen=True)
class CalibrationRow(Facts):
    """One model of a calibration chapter: its test-half ECE before and after (plug-in), the
    change in true ECE and its verdict, and whether the data tell it from a calibrated model."""

    chapter: str
    model: str
    dataset: str | None
    reference: str | None
    ece_before: float
    ece_after: float
    change: Verdict
    calibrated_after: Verdict
    min_detectable_ece: float | None


@dataclasses.dataclass(frozen=True)
class PaperRow(Facts):
    """The paper's Table 1 row for a data set some chapter here is on."""

    dataset: str
    name: str
    model: str
    ece_before: float
    ece_after: float


@dataclasses.dataclass(frozen=True)
class CascadeRow(Facts):
    """One pair of a cascading chapter at the fixed and at the cal-chosen K: what the K makes
    of the pair (a cascade or a model alone) and, where it is a cascade, the gain over the
    better model and CC against UC and random routing; and the chapter's descriptive shares of
    CC's curve against UC's and RC's (no verdict rests on them)."""

    chapter: str
    pair: str
    label: str
    dataset: str | None
    first: str
    second: str
    better: str
    reference: str | None
    large_large: bool
    K_fixed: int
    choice_fixed: str
    gain_fixed: Verdict
    K_cal: int
    choice_cal: str
    gain_cal: Verdict
    identical_cal: bool
    cc_vs_uc_cal: Verdict | None
    cc_vs_random_cal: Verdict | None
    n_test: int
    share_cc_at_least_uc: float | None
    share_cc_above_rc: float | None
    mean_cc_minus_uc: float | None


@dataclasses.dataclass(frozen=True)
class CleaningRow(Facts):
    """One cleaning chapter: each method's flags and precision, and its two verdicts."""

    chapter: str
    label: str
    dataset: str | None
    reference: str | None
    flags: dict[str, dict[str, Any]]
    precision_falls: Verdict | None
    versus_cl: Verdict | None
    table3: dict[str, dict[str, Any]] | None


@dataclasses.dataclass(frozen=True)
class Counts(Facts):
    """Names grouped by a verdict's outcome, and those a verdict does not apply to."""

    above: list[str]
    below: list[str]
    within: list[str]
    not_applicable: list[str]


@dataclasses.dataclass(frozen=True)
class ClaimTally(Facts):
    """One claim of the paper for one data set, against the rows here on that data set: those
    that agree (a significant direction as the paper's), disagree (significant, opposite),
    cannot tell (the interval contains zero), and where it is not measured (the cal-chosen K is
    a model alone: nothing is routed); ``tested`` says what is compared (:data:`TESTED`);
    ``agreement`` sums it up ("as the paper", "unlike the paper", "in part as the paper",
    "cannot tell", "not measured")."""

    dataset: str
    name: str
    claim: str
    text: str
    tested: str
    agree: list[str]
    disagree: list[str]
    cannot_tell: list[str]
    not_measured: list[str]
    agreement: str


@dataclasses.dataclass(frozen=True)
class ClaimUntested(Facts):
    """A claim the paper makes for a data set this summary has results on, which nothing here
    tests, and why (no chapter of that kind on the data set, no large-large pair, no ground
    truth, or a claim of no difference, which an interval cannot confirm)."""

    dataset: str
    name: str
    claim: str
    text: str
    reason: str


@dataclasses.dataclass(frozen=True)
class SummaryFacts(Facts):
    """What a summary chapter shows (``results.json``)."""

    section: str
    chapters: list[str]
    missing: list[str]
    calibration: list[CalibrationRow]
    paper_table1: list[PaperRow]
    cascades: list[CascadeRow]
    cleaning: list[CleaningRow]
    ece_change: Counts
    ece_calibrated_after: Counts
    cascade_fixed: dict[str, list[str]]
    cascade_cal: dict[str, list[str]]
    cc_vs_uc_cal: Counts
    cc_vs_random_cal: Counts
    claims: list[ClaimTally]
    datasets_without_claims: list[str]
    untested: list[ClaimUntested] = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------------------- compute

def read_chapters(results_dir: str | os.PathLike, chapters: Sequence[str]) -> dict[str, Facts | None]:
    """Each chapter folder's ``results.json`` under ``results_dir`` as its chapter's facts
    (:data:`KINDS` by the file's ``section``); None where the file is absent or a placeholder
    written without data."""
    kinds = {"calibration": CalibrationFacts, "cascading": CascadingFacts, "cleaning": CleaningFacts,
             "redux": ReduxFacts}
    out: dict[str, Facts | None] = {}
    for chapter in chapters:
        path = Path(results_dir) / chapter / "results.json"
        data = json.loads(path.read_text()) if path.is_file() else None
        if data is None or data.get("data") == "missing":
            out[chapter] = None
            continue
        kind = KINDS.get(data.get("section"))
        if kind is None:
            raise ValueError(f"chapters: {path} is a {data.get('section')!r} chapter; expected one of {sorted(KINDS)}")
        out[chapter] = kinds[kind].from_dict(data)
    return out


def _counts(named: Mapping[str, Verdict | None]) -> Counts:
    group = {o: [n for n, v in named.items() if v is not None and v.outcome == o] for o in ("above", "below", "within")}
    return Counts(**group, not_applicable=[n for n, v in named.items() if v is None])


def _tally(dataset: str, claim: str, agree: list[str], disagree: list[str], cannot: list[str],
           not_measured: Sequence[str] = (), *, tested: str | None = None) -> ClaimTally:
    ref = paper_reference()
    if not agree and not disagree:
        agreement = "cannot tell" if cannot else "not measured"
    else:
        agreement = ("as the paper" if not disagree else "unlike the paper" if not agree else "in part as the paper")
    return ClaimTally(dataset, ref["datasets"][dataset]["name"], claim, ref["claims"].get(claim, claim),
                      tested or TESTED[claim], agree, disagree, cannot, list(not_measured), agreement)


def _calibration_rows(chapter: str, f: CalibrationFacts) -> list[CalibrationRow]:
    return [CalibrationRow(chapter, n, m.dataset, m.reference, m.test.ece_before, m.test.ece_after, m.test.change,
                           m.test.calibrated_after, m.test.min_detectable_ece)
            for n, m in ((n, f.models[n]) for n in f.order)]


def _cascade_rows(chapter: str, f: CascadingFacts) -> list[CascadeRow]:
    order = list(f.parameters.pairs) if f.parameters.pairs else list(f.pairs)
    rows = []
    for name in order:
        p = f.pairs[name]
        fixed, cal = p.at_fixed_K, p.at_cal_K
        rows.append(CascadeRow(
            chapter=chapter, pair=name, label=name, dataset=p.dataset, first=p.first, second=p.second,
            better=p.better, reference=p.paper_dataset,
            large_large=p.large_large, K_fixed=fixed.K, choice_fixed=fixed.choice, gain_fixed=fixed.gain.verdict,
            K_cal=cal.K, choice_cal=cal.choice, gain_cal=cal.gain.verdict, identical_cal=cal.gain.identical,
            cc_vs_uc_cal=cal.cc_vs_uc.verdict if cal.cc_vs_uc else None,
            cc_vs_random_cal=cal.cc_vs_random.verdict if cal.cc_vs_random else None, n_test=p.n_test,
            share_cc_at_least_uc=p.share_cc_at_least_uc, share_cc_above_rc=p.share_cc_above_rc,
            mean_cc_minus_uc=p.mean_cc_minus_uc))
    return rows


def _cleaning_row(chapter: str, f: CleaningFacts) -> CleaningRow:
    flags = {k: {"label": v.label, "flagged": v.flagged, "precision": v.precision.to_dict()} for k, v in f.flags.items()}
    table3 = None
    if f.table3 is not None:
        table3 = {g: {"label": getattr(f.table3, g).label, "flagged": getattr(f.table3, g).n_flagged,
                      "precision": getattr(f.table3, g).precision.to_dict()} for g in ("ours_only", "cl_only", "both")}
    return CleaningRow(chapter, f"method 2 with {names_list(f.experts)}", f.dataset, f.paper_dataset, flags,
                       f.precision_falls.verdict if f.precision_falls else None,
                       f.versus_cl.verdict if f.versus_cl else None, table3)


def _by_choice(rows: Sequence[CascadeRow], at: str) -> dict[str, list[str]]:
    """Pairs by what the K made of them: a cascade that beats both models, loses to the better,
    or that the data cannot tell from it (``same`` where it answers like it on every row), and
    the pairs where the K made no cascade (``second_alone``, ``first_alone``)."""
    out: dict[str, list[str]] = {k: [] for k in ("beats", "loses", "within", "same", "second_alone", "first_alone")}
    for r in rows:
        choice = r.choice_fixed if at == "fixed" else r.choice_cal
        gain = r.gain_fixed if at == "fixed" else r.gain_cal
        if choice != "cascade":
            out[choice].append(r.label)
        elif at == "cal" and r.identical_cal:
            out["same"].append(r.label)
        else:
            out[{"above": "beats", "below": "loses", "within": "within"}[gain.outcome]].append(r.label)
    return out


def _no_chapter(kind: str) -> str:
    return f"no {kind} chapter on this data set among this summary's chapters"


def _redux_verdicts(facts: Mapping[str, Facts | None]) -> list[tuple[str, str, Verdict]]:
    """The MMLU-Redux chapters' test of the paper's cleaning claim, as (the paper's data set, the
    row's name, the verdict): precision at the most experts disagreeing minus at one, against the
    annotated wrong ground truths (:data:`calcas.chapters.redux.CLAIM_TRUTH`)."""
    return [(f.paper_dataset, f"{f.dataset} (experts disagreeing)", f.precision_falls[REDUX_TRUTH])
            for f in facts.values() if isinstance(f, ReduxFacts) and f.paper_dataset and f.precision_falls]


def _claims(calibration: list[CalibrationRow], cascades: list[CascadeRow], cleaning: list[CleaningRow],
            redux: Sequence[tuple[str, str, Verdict]] = ()) -> tuple[list[ClaimTally], list[str], list[ClaimUntested]]:
    ref = paper_reference()["datasets"]
    tallies, without, untested = [], [], []

    def not_tested(key: str, claim: str, reason: str) -> None:
        untested.append(ClaimUntested(key, ref[key]["name"], claim, paper_reference()["claims"].get(claim, claim),
                                      reason))
    datasets = dict.fromkeys([r.reference for r in calibration] + [r.reference for r in cascades]
                             + [r.reference for r in cleaning] + [key for key, _, _ in redux])
    for key in datasets:
        if key is None:
            continue
        claims = ref[key]
        rows = [r for r in calibration if r.reference == key]
        if "calibration" in claims and not rows:
            not_tested(key, CALIBRATION_CLAIM, _no_chapter("calibration"))
        if rows and "calibration" in claims:
            tallies.append(_tally(key, CALIBRATION_CLAIM, [r.model for r in rows if r.change.outcome == "above"],
                                  [r.model for r in rows if r.change.outcome == "below"],
                                  [r.model for r in rows if r.change.outcome == "within"]))
        here = [r for r in cascades if r.reference == key]
        alone = [r.label for r in here if r.choice_cal != "cascade"]
        for claim in (claims.get("cascading") or {}).get("claims", []):
            field = {"cc_above_random": "cc_vs_random_cal", "cc_above_uc": "cc_vs_uc_cal"}.get(claim)
            if not here:
                not_tested(key, claim, _no_chapter("cascading"))
                continue
            if field is None:
                not_tested(key, claim, "a claim of no difference, which an interval can fail to find but never confirm")
                continue
            verdicts = {r.label: getattr(r, field) for r in here if getattr(r, field) is not None}
            tallies.append(_tally(key, claim, [p for p, v in verdicts.items() if v.outcome == "above"],
                                  [p for p, v in verdicts.items() if v.outcome == "below"],
                                  [p for p, v in verdicts.items() if v.outcome == "within"], alone))
        large = [r for r in here if r.large_large]
        if not large and (claims.get("cascading") or {}).get("large_large"):
            not_tested(key, LARGE_LARGE_CLAIM, "no large-large pair on this data set here" if here
                       else _no_chapter("cascading"))
        if large and (claims.get("cascading") or {}).get("large_large"):
            cascade = [r for r in large if r.choice_cal == "cascade"]
            tallies.append(_tally(key, LARGE_LARGE_CLAIM, [r.label for r in cascade if r.gain_cal.outcome == "above"],
                                  [r.label for r in cascade if r.gain_cal.outcome == "below"],
                                  [r.label for r in cascade if r.gain_cal.outcome == "within"],
                                  [r.label for r in large if r.choice_cal != "cascade"]))
        cleaning_claims = (claims.get("cleaning") or {}).get("claims", [])
        cleaned = [r for r in cleaning if r.reference == key]
        audited = [(label, v) for k, label, v in redux if k == key]
        for claim in cleaning_claims if not cleaned else []:
            if claim == "precision_falls_with_detection_rate" and audited:
                continue  # tested against the human audit, below
            not_tested(key, claim, _no_chapter("cleaning"))
        if audited and "precision_falls_with_detection_rate" in cleaning_claims:
            tallies.append(_tally(key, "precision_falls_with_detection_rate",
                                  [n for n, v in audited if v.outcome == "above"],
                                  [n for n, v in audited if v.outcome == "below"],
                                  [n for n, v in audited if v.outcome == "within"], tested=AUDIT_TESTED))
        for r in cleaned:
            for claim, verdict, absent in (
                    ("precision_falls_with_detection_rate", r.precision_falls, "no ground truth of label errors here"),
                    ("ours_above_cl", r.versus_cl, "Confident Learning is not run on this data set here")):
                if claim not in cleaning_claims:
                    continue
                if verdict is None:
                    not_tested(key, claim, absent)
                else:
                    o = verdict.outcome
                    tallies.append(_tally(key, claim, [r.label] * (o == "above"), [r.label] * (o == "below"),
                                          [r.label] * (o == "within")))
    without = sorted({dataset_label(r.dataset) if r.dataset else "an unnamed data set"
                      for r in [*calibration, *cascades, *cleaning]
                      if r.reference is None})
    return tallies, without, untested


def compute(results_dir: str | os.PathLike, chapters: Sequence[str], *, section: str) -> SummaryFacts:
    """Read the chapters' facts (:func:`read_chapters`) and count them beside the paper.

    Parameters
    ----------
    results_dir : path
        The folder holding the chapters' folders.
    chapters : sequence of str
        Chapter folders under ``results_dir`` (calibration, cascading or cleaning chapters).
    section : str
        The summary's own section name (``05_results``, ``07_public_summary``).
    """
    facts = read_chapters(results_dir, chapters)
    calibration, cascades, cleaning = [], [], []
    for chapter, f in facts.items():
        if isinstance(f, CalibrationFacts):
            calibration += _calibration_rows(chapter, f)
        elif isinstance(f, CascadingFacts):
            cascades += _cascade_rows(chapter, f)
        elif isinstance(f, CleaningFacts):
            cleaning.append(_cleaning_row(chapter, f))
    # a pair named alike on two data sets (Llama-3 8B → 70B on MMLU and on ARC) is told apart by its data set
    repeated = {r.pair for r in cascades if sum(x.pair == r.pair for x in cascades) > 1}
    cascades = [dataclasses.replace(r, label=f"{r.pair} ({dataset_label(r.dataset) if r.dataset else r.chapter})")
                if r.pair in repeated else r
                for r in cascades]
    ref = paper_reference()["datasets"]
    paper_rows = [PaperRow(k, ref[k]["name"], ref[k]["calibration"]["model"], ref[k]["calibration"]["test"]["ece_before"],
                           ref[k]["calibration"]["test"]["ece_after"])
                  for k in dict.fromkeys(r.reference for r in calibration) if k and "calibration" in ref[k]]
    claims, without, untested = _claims(calibration, cascades, cleaning, _redux_verdicts(facts))
    cascade_cal = {r.label: r for r in cascades if r.choice_cal == "cascade"}
    return SummaryFacts(
        section=section, chapters=[c for c, f in facts.items() if f is not None],
        missing=[c for c, f in facts.items() if f is None], calibration=calibration, paper_table1=paper_rows,
        cascades=cascades, cleaning=cleaning,
        ece_change=_counts({r.model: r.change for r in calibration}),
        ece_calibrated_after=_counts({r.model: r.calibrated_after for r in calibration}),
        cascade_fixed=_by_choice(cascades, "fixed"), cascade_cal=_by_choice(cascades, "cal"),
        cc_vs_uc_cal=_counts({p: r.cc_vs_uc_cal for p, r in cascade_cal.items()}),
        cc_vs_random_cal=_counts({p: r.cc_vs_random_cal for p, r in cascade_cal.items()}),
        claims=claims, datasets_without_claims=without, untested=untested)


# ---------------------------------------------------------------------------- tables

_CHOICE_TEXT = {"cascade": "cascade", "second_alone": "second alone", "first_alone": "first alone"}
_OUTCOME = {"above": "above 0", "below": "below 0", "within": "contains 0"}


def tables(facts: SummaryFacts) -> dict[str, pd.DataFrame]:
    """``table1`` (each data set's paper row, then its models: ECE before and after, the change in
    true ECE and its verdict), ``cascades`` (each pair at the cal-chosen K: what it makes and the
    gain over the better model), ``routing`` (the same: CC against UC and random routing),
    ``cleaning`` (each method's flags and precision)
    and ``claims`` (each claim of the paper, per data set)."""
    table1 = [{"data set": p.name, "model": f"{p.model} (paper)", "ECE before": p.ece_before,
               "ECE after": p.ece_after, "change in true ECE [95%]": None, "verdict": None}
              for p in facts.paper_table1]
    table1 += [{"data set": dataset_label(r.dataset), "model": r.model, "ECE before": r.ece_before,
                "ECE after": r.ece_after, "change in true ECE [95%]": table_interval(r.change.estimate, 3, signed=True),
                "verdict": {"above": "lowered", "below": "raised", "within": "cannot tell"}[r.change.outcome]}
               for r in facts.calibration]
    cascades = [{"data set": dataset_label(r.dataset), "pair": r.label, "K (cal)": r.K_cal,
                 "what the K makes": _CHOICE_TEXT[r.choice_cal],
                 "gain over the better [95%]": table_interval(r.gain_cal.estimate, 4, signed=True)}
                for r in facts.cascades]
    routing = [{"data set": dataset_label(r.dataset), "pair": r.label, "K (cal)": r.K_cal,
                "CC − UC [95%]": None if r.cc_vs_uc_cal is None else table_interval(r.cc_vs_uc_cal.estimate, 4,
                                                                                     signed=True),
                "CC − random [95%]": None if r.cc_vs_random_cal is None else
                table_interval(r.cc_vs_random_cal.estimate, 4, signed=True)} for r in facts.cascades]
    cleaning = [{"data set": dataset_label(r.dataset), "method": f["label"], "flagged": f["flagged"],
                 "precision [95%]": table_interval([f["precision"]["value"], f["precision"]["low"],
                                                    f["precision"]["high"]])}
                for r in facts.cleaning for f in r.flags.values()]
    claims = [{"data set": t.name, "claim": t.text, "agree": len(t.agree), "disagree": len(t.disagree),
               "cannot tell": len(t.cannot_tell), "not measured": len(t.not_measured), "here": t.agreement}
              for t in facts.claims]
    claims += [{"data set": u.name, "claim": u.text, "agree": 0, "disagree": 0, "cannot tell": 0, "not measured": 0,
                "here": "not tested"} for u in facts.untested]
    # each data set's rows together, data sets in the order they first appear (for claims: each data
    # set's tested claims, then its untested; for Table 1: the paper's row above the models here)
    for rows in (table1, cascades, routing, cleaning, claims):
        order = {name: i for i, name in enumerate(dict.fromkeys(r["data set"] for r in rows))}
        rows.sort(key=lambda r: order[r["data set"]])
    index = {"table1": ["data set", "model"], "cascades": ["data set", "pair"], "routing": ["data set", "pair"],
             "cleaning": ["data set", "method"],
             "claims": ["data set", "claim"]}
    frames = {"table1": pd.DataFrame(table1), "cascades": pd.DataFrame(cascades), "routing": pd.DataFrame(routing),
              "cleaning": pd.DataFrame(cleaning),
              "claims": pd.DataFrame(claims)}
    return {k: f.set_index(index[k]) if len(f) else f for k, f in frames.items()}


# ---------------------------------------------------------------------------- prose

def _listed(names: Sequence[str]) -> str:
    return f" ({names_list(names)})" if names else ""


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def prose(facts: SummaryFacts) -> dict[str, str]:
    """The summary's sentences: ``calibration``, ``cascades``, ``cleaning`` and ``paper``."""
    out = {}
    c, d = facts.ece_change, facts.ece_calibrated_after
    n = len(facts.calibration)
    out["calibration"] = (
        f"Calibration lowers the true ECE of {len(c.above)} of {_n(n, 'model')}{_listed(c.above)}: only where the "
        "interval of the change lies above zero is it counted. "
        + (f"It raises it for {len(c.below)}{_listed(c.below)}. " if c.below else "")
        + (f"For {len(c.within)}{_listed(c.within)} the data cannot tell the change from zero. " if c.within else "")
        + f"After calibration the data cannot tell {len(d.within)} of the {n} from a perfectly calibrated model"
        + f"{_listed(d.within)}." if n else "No calibration chapter has results here.")
    fixed, cal = facts.cascade_fixed, facts.cascade_cal
    pairs = len(facts.cascades)
    if pairs:
        text = [f"Of {_n(pairs, 'cascade pair')}, at the K chosen on cal the cascade beats both of its models for "
                f"{_n(len(cal['beats']), 'pair')}{_listed(cal['beats'])}, loses to the better one for "
                f"{len(cal['loses'])}{_listed(cal['loses'])}, and cannot be told from the better one for "
                f"{len(cal['within'])}{_listed(cal['within'])}."]
        if cal["same"]:
            text.append(f"It answers like the better model on every test row for {len(cal['same'])}"
                        f"{_listed(cal['same'])}.")
        if cal["second_alone"]:
            text.append(f"No cascade is chosen for {len(cal['second_alone'])}: the second model alone is best on cal"
                        f"{_listed(cal['second_alone'])}.")
        if cal["first_alone"]:
            text.append(f"The first model alone is best on cal for {len(cal['first_alone'])}"
                        f"{_listed(cal['first_alone'])}.")
        alone = fixed["second_alone"] + fixed["first_alone"]
        text.append(f"At the K fixed in advance the cascade beats both for {len(fixed['beats'])}"
                    f"{_listed(fixed['beats'])}, loses for {len(fixed['loses'])}{_listed(fixed['loses'])}, cannot be "
                    f"told from the better model for {len(fixed['within'])}, and is a model alone for {len(alone)}"
                    f"{_listed(alone)}.")
        u, r = facts.cc_vs_uc_cal, facts.cc_vs_random_cal
        text.append(f"Where the cal-chosen K makes a cascade, CC beats UC at the same share for {len(u.above)}"
                    f"{_listed(u.above)}, loses to it for {len(u.below)}{_listed(u.below)}, and cannot be told from it "
                    f"for {len(u.within)}; it beats random routing for {len(r.above)}{_listed(r.above)}, loses to it "
                    f"for {len(r.below)}{_listed(r.below)}, and cannot be told from it for {len(r.within)}.")
        out["cascades"] = " ".join(text)
    else:
        out["cascades"] = "No cascading chapter has results here."
    paras = []
    for row in facts.cleaning:
        falls = row.precision_falls
        versus = row.versus_cl
        where = dataset_label(row.dataset) if row.dataset else row.chapter
        sentence = f"**{where}**, {row.label}: "
        sentence += ("no ground truth of label errors, so no precision is known." if falls is None else
                     {"above": "precision falls as more is flagged (method 2 at its K above method 1, interval "
                               f"{signed_interval_text(falls.estimate, 3)})",
                      "below": f"precision rises as more is flagged ({signed_interval_text(falls.estimate, 3)})",
                      "within": "the data cannot tell whether precision falls as more is flagged "
                                f"({signed_interval_text(falls.estimate, 3)})"}[falls.outcome])
        if versus is not None:
            sentence += {"above": "; method 2 is more precise than Confident Learning at CL's detection rate",
                         "below": "; method 2 is less precise than Confident Learning at CL's detection rate",
                         "within": "; the data cannot tell method 2 from Confident Learning at CL's detection rate"
                         }[versus.outcome] + f" ({signed_interval_text(versus.estimate, 3)})"
        paras.append(sentence + ("" if sentence.endswith(".") else "."))
    out["cleaning"] = "\n\n".join(paras) or "No cleaning chapter has results here."
    claims = []
    for t in facts.claims:
        detail = "; ".join(part for part in (
            f"agrees: {names_list(t.agree)}" if t.agree else "", f"disagrees: {names_list(t.disagree)}" if t.disagree
            else "", f"cannot tell: {names_list(t.cannot_tell)}" if t.cannot_tell else "",
            f"not measured, the cal-chosen K being a model alone: {names_list(t.not_measured)}" if t.not_measured
            else "") if part)
        claims.append(f"On {t.name}, the paper claims that {t.text}. Here, {t.tested}: **{t.agreement}** ({detail}).")
    if facts.untested:
        claims.append("Not tested here: " + "; ".join(f"on {u.name}, that {u.text}: {u.reason}"
                                                      for u in facts.untested) + ".")
    if facts.datasets_without_claims:
        claims.append(f"The paper makes no claim about {names_list(facts.datasets_without_claims)}: those results "
                      "stand on their own.")
    if facts.missing:
        claims.append(f"Not on this machine: {names_list(facts.missing)} (no data).")
    out["paper"] = "\n\n".join(claims)
    return out
