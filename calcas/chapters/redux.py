"""The MMLU-Redux chapter: label cleaning checked against human annotations.

MMLU-Redux (Gema et al. 2024) re-annotated MMLU questions by hand; each carries an
``error_type`` (``ok``, or the kind of problem). Fourteen LLMs' answers to every question are
public, without confidences, so only method 1 of the paper's Algorithm 2 and its relaxation
apply: flag a question when at least k of the m experts disagree with its given answer
(:func:`calcas.disagreement_sweep`; k = m is method 1).

Three steps, as every chapter (:mod:`calcas.chapters`):

- :func:`compute` sweeps k, measures precision and recall against the annotations (any
  annotated problem, or only a wrong ground truth) with Wilson intervals, counts the flags per
  error type at the highlighted k, and decides whether precision falls as more is flagged
  (k = m against k = 1) and whether the flagged questions hold problems more often than the
  whole set does;
- :func:`prose` phrases those facts beside the paper's cleaning claim for MMLU;
- :func:`tables` and :func:`figures` draw them (:mod:`calcas.render`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._validate import check_integer
from ..cleaning import disagreement_sweep
from ..metrics import proportion_interval
from ..render import plots
from .common import (Estimate, Facts, Verdict, claim_agreement, decide, estimate_difference, fmt, interval_text,
                     paper_reference, reference_dataset, signed_interval_text, table_interval)

__all__ = ["ReduxFacts", "ReduxParameters", "DisagreementSweep", "ErrorTypeFound", "Flagged", "TRUTHS", "DATASET",
           "compute", "prose", "tables", "figures"]

#: What counts as a label error, by key: any annotated problem, or only a wrong ground truth.
TRUTHS = {"any_problem": "any annotated problem", "wrong_truth": "a wrong ground truth"}

#: The data set's name by default, as the facts and the prose give it.
DATASET = "MMLU-Redux"

#: The claim whose analogue this chapter checks (a key of ``paper_reference()["claims"]``),
#: and the truth it is checked against: the paper judges whether a given answer is wrong.
PRECISION_CLAIM, CLAIM_TRUTH = "precision_falls_with_detection_rate", "wrong_truth"

# ---------------------------------------------------------------------------- facts


@dataclasses.dataclass(frozen=True)
class ReduxParameters(Facts):
    """The chapter's parameters: the table (its path, or ``"<DataFrame>"`` when one was given),
    the highlighted k and the data set's name."""

    table: str
    k: int
    dataset: str


@dataclasses.dataclass(frozen=True)
class DisagreementSweep(Facts):
    """Flag when at least k experts disagree, for k = m down to 1, against one truth: counts,
    ``n_found`` (flagged with the problem), precision and recall with their Wilson intervals
    (``*_low``, ``*_high``)."""

    k: list[int]
    n_flagged: list[int]
    detection_rate: list[float]
    n_found: list[int]
    precision: list[float | None]
    precision_low: list[float | None]
    precision_high: list[float | None]
    recall: list[float | None]
    recall_low: list[float | None]
    recall_high: list[float | None]

    def frame(self) -> pd.DataFrame:
        """The sweep as a table, one row per k (None as NaN)."""
        return pd.DataFrame(self.to_dict()).astype({c: float for c in ("precision", "precision_low", "precision_high",
                                                                        "recall", "recall_low", "recall_high")})

    def at(self, k: int) -> int:
        """The row index of ``k``."""
        return self.k.index(k)


@dataclasses.dataclass(frozen=True)
class ErrorTypeFound(Facts):
    """One annotated error type at the highlighted k: its questions, how many are flagged, and
    that share with its Wilson interval."""

    questions: int
    flagged: int
    share_flagged: Estimate


@dataclasses.dataclass(frozen=True)
class Flagged(Facts):
    """The flags at one k, per truth (keys of :data:`TRUTHS`): precision and recall (Wilson
    intervals), and ``above_base_rate``: precision decided against ``ReduxFacts.base_rate``
    (the share of all questions with that problem); "above" means a flagged question holds the
    problem more often than a question drawn from the whole set."""

    k: int
    n_flagged: int
    precision: dict[str, Estimate]
    recall: dict[str, Estimate]
    above_base_rate: dict[str, Verdict]


@dataclasses.dataclass(frozen=True)
class ReduxFacts(Facts):
    """The MMLU-Redux chapter's ``results.json``.

    ``n``: questions, every one annotated by hand; ``n_any_problem``, ``n_wrong_truth``: those
    with any annotated problem, with a wrong ground truth; ``base_rate``: those counts over
    ``n``, per truth. ``sweeps``: per truth, :class:`DisagreementSweep`. ``method_1`` (k = m)
    and ``at_k`` (the highlighted k; ``k_is_method_1`` when they are the same): the flags,
    decided against the base rate. ``found_at_k``: per error type (``ok`` included), the share
    flagged at k. ``precision_falls``: per truth, precision at k = m minus precision at k = 1
    (two Wilson intervals) against zero, "above" meaning precision falls as more is flagged
    (None with one expert). ``paper_dataset``, ``paper_claims``: the paper's cleaning claims for
    MMLU and how the data here stand to them (``"agrees"``, ``"disagrees"``, ``"cannot_tell"``,
    ``"not_measured"``).
    """

    parameters: ReduxParameters
    dataset: str
    n: int
    experts: list[str]
    k: int
    k_is_method_1: bool
    n_any_problem: int
    n_wrong_truth: int
    base_rate: dict[str, float]
    sweeps: dict[str, DisagreementSweep]
    method_1: Flagged
    at_k: Flagged
    found_at_k: dict[str, ErrorTypeFound]
    precision_falls: dict[str, Verdict] | None
    paper_dataset: str | None
    paper_claims: dict[str, str]
    section: str = "06_mmlu_redux"


# ---------------------------------------------------------------------------- compute

def _proportion(successes: int, n: int) -> Estimate:
    low, high = proportion_interval(successes, n)
    return Estimate.of((successes / n if n else float("nan"), low, high), "proportion_interval")


def _sweep(table: pd.DataFrame, n_errors: int) -> DisagreementSweep:
    n_flagged = table["n_flagged"].to_numpy()
    # every question is annotated, so precision is found / flagged exactly and found is recovered from it
    found = np.rint(np.nan_to_num(table["precision"].to_numpy()) * n_flagged).astype(np.int64)
    p_low, p_high = proportion_interval(found, n_flagged)
    r_low, r_high = proportion_interval(found, np.full(len(found), n_errors))
    return DisagreementSweep(table["k"].tolist(), n_flagged.tolist(), table["detection_rate"].tolist(),
                             found.tolist(), table["precision"].tolist(), p_low.tolist(), p_high.tolist(),
                             table["recall"].tolist(), r_low.tolist(), r_high.tolist())


def _flagged(sweeps: dict[str, DisagreementSweep], k: int, base_rate: dict[str, float]) -> Flagged:
    first = next(iter(sweeps.values()))
    i = first.at(k)
    precision = {t: Estimate(s.precision[i], s.precision_low[i], s.precision_high[i], "proportion_interval")
                 for t, s in sweeps.items()}
    recall = {t: Estimate(s.recall[i], s.recall_low[i], s.recall_high[i], "proportion_interval")
              for t, s in sweeps.items()}
    return Flagged(k, first.n_flagged[i], precision, recall,
                   {t: decide(precision[t], base_rate[t]) for t in sweeps})


def _checked_table(table: Any, models: Sequence[str] | None, k: Any) -> tuple[pd.DataFrame, list[str], str]:
    if isinstance(table, (str, os.PathLike)):
        source, table = str(table), pd.read_parquet(table)
    elif isinstance(table, pd.DataFrame):
        source = "<DataFrame>"
    else:
        raise ValueError(f"table: expected a path or a pandas DataFrame, got {type(table).__name__}")
    missing = sorted({"answer", "error_type"} - set(table.columns))
    if missing:
        raise ValueError(f"table: missing column(s) {missing} (see calcas.datasets.public.mmlu_redux_table)")
    if models is None:
        from ..datasets.public import REDUX_MODELS
        models = [m for m in REDUX_MODELS if m in table.columns]
    models = list(models)
    if not models:
        raise ValueError("models: no expert's answers in the table (give the names of its answer columns)")
    absent = [m for m in models if m not in table.columns]
    if absent:
        raise ValueError(f"models: no column for {absent} in the table")
    if table["error_type"].isna().any():
        raise ValueError(f"error_type: {int(table['error_type'].isna().sum())} question(s) carry no annotation; "
                         "every question must be annotated ('ok' or the kind of problem)")
    check_integer(k, "k")
    if not 1 <= k <= len(models):
        raise ValueError(f"k: must be in [1, {len(models)}] (the number of experts), got {k}")
    return table, models, source


def compute(table: str | os.PathLike | pd.DataFrame, *, k: int = 14, models: Sequence[str] | None = None,
            dataset: str = DATASET) -> ReduxFacts:
    """Method 1 relaxed (at least k of m experts disagree with the given answer) against
    MMLU-Redux's human annotations.

    Parameters
    ----------
    table : path or DataFrame
        The MMLU-Redux table (:func:`calcas.datasets.public.mmlu_redux_table`): ``answer`` (the
        given answer's index), ``error_type`` (``"ok"`` or the kind of problem, on every row),
        and one column per expert with its answer's index (-1 = no answer, which disagrees).
    k : int
        The highlighted operating point, ``1 <= k <= m``.
    models : sequence of str, optional
        The experts' columns; by default every one of
        :data:`calcas.datasets.public.REDUX_MODELS` the table holds.
    dataset : str
        The audited data set's name; the paper's cleaning claims for it are those of
        :func:`calcas.chapters.common.reference_dataset` (MMLU's, for MMLU-Redux).

    Returns
    -------
    ReduxFacts
    """
    table, models, source = _checked_table(table, models, k)
    preds = table[models].to_numpy().T
    labels = table["answer"].to_numpy()
    error_type = table["error_type"]
    problems = {"any_problem": (error_type != "ok").to_numpy(),
                "wrong_truth": (error_type == "wrong_groundtruth").to_numpy()}
    n = int(len(table))
    sweeps = {t: _sweep(disagreement_sweep(preds, labels, is_error=p), int(p.sum())) for t, p in problems.items()}
    base_rate = {t: float(p.mean()) for t, p in problems.items()}
    m = len(models)

    flagged = (preds != labels[None, :]).sum(axis=0) >= k
    counts = error_type.value_counts()
    found = error_type[flagged].value_counts()
    found_at_k = {str(t): ErrorTypeFound(int(counts[t]), int(found.get(t, 0)), _proportion(int(found.get(t, 0)),
                                                                                            int(counts[t])))
                  for t in counts.index}

    precision_falls = None
    if m > 1:
        precision_falls = {}
        for t, s in sweeps.items():
            most, least = (Estimate(s.precision[i], s.precision_low[i], s.precision_high[i], "proportion_interval")
                           for i in (s.at(m), s.at(1)))
            precision_falls[t] = decide(estimate_difference(most, least, "proportion_difference_interval"))
    paper_dataset = reference_dataset(dataset)
    paper_cleaning = paper_reference()["datasets"][paper_dataset].get("cleaning") if paper_dataset else None
    claims = {c: claim_agreement((precision_falls or {}).get(CLAIM_TRUTH) if c == PRECISION_CLAIM else None)
              for c in (paper_cleaning or {}).get("claims", [])}
    return ReduxFacts(
        parameters=ReduxParameters(source, int(k), dataset), dataset=dataset, n=n, experts=models, k=int(k),
        k_is_method_1=k == m, n_any_problem=int(problems["any_problem"].sum()),
        n_wrong_truth=int(problems["wrong_truth"].sum()), base_rate=base_rate, sweeps=sweeps,
        method_1=_flagged(sweeps, m, base_rate), at_k=_flagged(sweeps, int(k), base_rate), found_at_k=found_at_k,
        precision_falls=precision_falls, paper_dataset=paper_dataset if paper_cleaning else None, paper_claims=claims)


# ---------------------------------------------------------------------------- prose

_BASE = {"above": "more often than a question drawn from the whole set",
         "within": "and the data cannot tell that from a question drawn from the whole set",
         "below": "less often than a question drawn from the whole set"}


def _flagged_text(facts: ReduxFacts, f: Flagged) -> str:
    p, r = f.precision, f.recall
    return (f"{f.n_flagged:,} of {facts.n:,} questions are flagged; {interval_text(p['any_problem'])} of them carry "
            f"an annotated problem ({_BASE[f.above_base_rate['any_problem'].outcome]}, where the share is "
            f"{fmt(facts.base_rate['any_problem'])}) and {interval_text(p['wrong_truth'])} a wrong ground truth "
            f"({_BASE[f.above_base_rate['wrong_truth'].outcome]}: {fmt(facts.base_rate['wrong_truth'])}). They hold "
            f"{interval_text(r['any_problem'])} of the {facts.n_any_problem:,} annotated problems and "
            f"{interval_text(r['wrong_truth'])} of the {facts.n_wrong_truth:,} wrong ground truths (recall)")


def _flags_text(facts: ReduxFacts) -> str:
    m = len(facts.experts)
    text = f"When all {m} experts disagree with the given answer (method 1), {_flagged_text(facts, facts.method_1)}."
    if not facts.k_is_method_1:
        text += f" When at least k = {facts.k} disagree, {_flagged_text(facts, facts.at_k)}."
    return text + " Intervals are 95% Wilson intervals."


_FALLS = {"above": "precision falls as more is flagged",
          "below": "precision **rises** as more is flagged",
          "within": "the data cannot tell whether precision falls as more is flagged"}


def _trend_text(facts: ReduxFacts) -> str:
    if facts.precision_falls is None:
        return "With one expert there is one operating point, and no trend to measure."
    m = len(facts.experts)
    parts = [f"against {TRUTHS[t]}, the difference is {signed_interval_text(v.estimate, 3)}: {_FALLS[v.outcome]}"
             for t, v in facts.precision_falls.items()]
    return (f"Does precision fall as more is flagged? Precision at k = {m} (the fewest flags) minus precision at "
            f"k = 1 (the most), from the two Wilson intervals: " + "; ".join(parts) + ".")


def _errors_text(facts: ReduxFacts) -> str:
    wrong = facts.found_at_k.get("wrong_groundtruth")
    ok = facts.found_at_k.get("ok")
    out = []
    if wrong is not None:
        out.append(f"At k = {facts.k}, {wrong.flagged:,} of the {wrong.questions:,} questions whose ground truth is "
                   f"wrong are flagged ({interval_text(wrong.share_flagged)})")
    if ok is not None:
        out.append(f"{ok.flagged:,} of the {ok.questions:,} questions annotated as fine are flagged too "
                   f"({interval_text(ok.share_flagged)})")
    return "; ".join(out) + "." if out else "No question is annotated as fine or as having a wrong ground truth."


_AGREES = {"agrees": "so it does here, significantly, against a wrong ground truth (there as the confidence "
                     "threshold falls, here as k falls)",
           "disagrees": "here the opposite holds, significantly, against a wrong ground truth; the experts, the "
                        "method (answers only, no confidence bins) and the judge differ from the paper's",
           "cannot_tell": "here the data cannot tell, against a wrong ground truth (the difference includes zero)",
           "not_measured": "this cannot be checked here: with one expert there is no trend"}


def _paper_text(facts: ReduxFacts) -> str:
    human = (f"{facts.dataset}'s annotators labelled each of its {facts.n:,} questions by hand, so here precision and "
             "recall are measured against people rather than a model: a check of the answers-only version of the "
             "method (method 1 and its relaxation) that the paper did not have.")
    if facts.paper_dataset is None:
        return f"The paper makes no cleaning claim about {facts.dataset}. {human}"
    ref = paper_reference()
    data = ref["datasets"][facts.paper_dataset]
    cleaning = data["cleaning"]
    out = [f"**Beside the paper: {data['name']}.** The paper's cleaning of {data['name']}, in {cleaning['source']}, "
           f"uses {cleaning['experts']}: no human checks its flags. {human}"]
    for claim in (c for c in cleaning["claims"] if c in facts.paper_claims):  # the paper's order, not the file's
        out.append(f"The paper claims for {data['name']} that {ref['claims'][claim]}; "
                   f"{_AGREES[facts.paper_claims[claim]]}.")
    return " ".join(out)


def prose(facts: ReduxFacts) -> dict[str, str]:
    """The chapter's sentences, from its facts only.

    Parameters
    ----------
    facts : ReduxFacts
        From :func:`compute`, or read back from ``results.json`` (``ReduxFacts.from_dict``).

    Returns
    -------
    dict with ``"flags"`` (method 1 and the highlighted k: precision and recall against both
    truths, each against the base rate), ``"trend"`` (whether precision falls as more is
    flagged), ``"errors"`` (which error types are found at k) and ``"paper"`` (the paper's
    cleaning claim for MMLU, and what the human annotations add).
    """
    return {"flags": _flags_text(facts), "trend": _trend_text(facts), "errors": _errors_text(facts),
            "paper": _paper_text(facts)}


# ---------------------------------------------------------------------------- tables, figures

#: The annotators' error types in words (others print as written, "_" read as a space).
ERROR_TYPE_WORDS = {"ok": "no error", "wrong_groundtruth": "wrong ground truth", "bad_question_clarity": "unclear question",
                    "bad_options_clarity": "unclear options", "no_correct_answer": "no correct answer",
                    "multiple_correct_answers": "several correct answers"}


def _error_type_words(key: str) -> str:
    return ERROR_TYPE_WORDS.get(key, key.replace("_", " "))


def _sweep_table(sweep: DisagreementSweep) -> pd.DataFrame:
    frame = sweep.frame().set_index("k")
    frame.index = [f"k = {k}" for k in frame.index]
    columns = {"flagged": frame["n_flagged"]}
    for what in ("precision", "recall"):
        columns[f"{what} [95%]"] = [table_interval(e) for e in
                                     zip(frame[what], frame[f"{what}_low"], frame[f"{what}_high"])]
    return pd.DataFrame(columns, index=frame.index)


def tables(facts: ReduxFacts) -> dict[str, pd.DataFrame]:
    """``"sweep_<truth>"`` for each key of :data:`TRUTHS`: per k, the flags, and precision and
    recall against that truth with their Wilson intervals; ``"found_at_k"``: per annotated
    error type, most questions first, the share flagged at the highlighted k."""
    found = pd.DataFrame.from_dict(
        {_error_type_words(t): {"questions": e.questions, "flagged": e.flagged,
                                "share flagged [95%]": table_interval(e.share_flagged)}
         for t, e in facts.found_at_k.items()},
        orient="index").sort_values("questions", ascending=False, kind="stable")
    return {**{f"sweep_{t}": _sweep_table(s) for t, s in facts.sweeps.items()}, "found_at_k": found}


def figures(facts: ReduxFacts) -> dict[str, Any]:
    """``"sweep"``: precision against k and against recall, one line per truth, with Wilson
    bands (:func:`calcas.render.plots.threshold_sweep_figure`)."""
    sweeps = {TRUTHS[t]: s.frame() for t, s in facts.sweeps.items()}
    return {"sweep": plots.threshold_sweep_figure(sweeps, threshold="k",
                                                  threshold_label="k: experts disagreeing (at least)")}
