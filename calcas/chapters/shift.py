"""The chapter "When the data moves": calibration, label-free accuracy estimates and a certified
cascade, fitted on one distribution (source) and used on another (target) (SPEC §3c).

Two public shifts, and a control:

- task shift: 14 chat LLMs, MMLU (source) -> ARC-Challenge (target), the same models;
- sub-population shift: 4 ImageNet models, the animal classes 0..397 (source) -> the other classes;
- control: the ImageNet classes split by a seeded random half of the 100 metaclasses.

:func:`compute` measures, per shift and model: the target's ECE with no calibration, with Platt
scaling fitted on the source and fitted on half the target (intervals that cover, and whether the
source fit is worse than none); the shift test on the confidences with its false-positive rate
and power; the three label-free accuracy estimates against the truth; the recalibration curve.
Per chain: the threshold-certified cascade on source and on target, and re-certified on m
labelled target rows. :func:`prose`, :func:`tables`, :func:`figures` and :func:`explorers` phrase
and draw the facts only.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..calibration import PlattScaling
from ..chain_study import study_chain_shift
from ..confidence import top1_logit
from ..metrics import ece_difference_interval, ece_interval, proportion_interval
from ..records import Records
from ..render import interactive, plots
from ..shift import ACCURACY_METHODS, confidence_shift_test, predict_accuracy, recalibration_curve
from .common import Estimate, Facts, Verdict, decide, fmt, names_list, pct, signed, table_interval

__all__ = ["ShiftParameters", "ShiftInfo", "TransferFacts", "TestFacts", "AccuracyFacts", "CurveFacts",
           "CascadeFacts", "RecertifiedFacts", "ShiftFacts", "compute", "prose", "tables", "figures", "explorers",
           "METHOD_NAMES"]

METHOD_NAMES = {"ac": "average confidence (AC)", "atc": "thresholded confidence (ATC)",
                "doc": "difference of confidences (DOC)"}
FITS = ("none", "source", "target", "source prior")
FIT_NAMES = {"none": "no calibration", "source": "fitted on the source", "target": "refitted alone",
             "source prior": "refitted from the source fit"}


# ---------------------------------------------------------------------------- facts


@dataclasses.dataclass(frozen=True)
class ShiftParameters(Facts):
    """The chapter's parameters as the notebook received them."""

    shifts: dict[str, list[str]]
    n_boot: int
    n_tests: int
    power_rows: int
    sizes: list[int]
    n_repeats: int
    chains: dict[str, list[str]]
    max_drop: float
    delta: float
    n_splits: int
    seed: int


@dataclasses.dataclass(frozen=True)
class ShiftInfo(Facts):
    """One shift: its source and target in words, the models, and whether it is a control."""

    source: str
    target: str
    models: list[str]
    control: bool


@dataclasses.dataclass(frozen=True)
class TransferFacts(Facts):
    """Calibration on the target's test half (``n_test`` rows) for one model under one shift.

    ``none``, ``source``, ``target``: the true-ECE intervals (:func:`calcas.ece_interval`) of the raw
    confidence, of Platt scaling fitted on all source rows, and of Platt scaling fitted on the
    target's other half. ``source_minus_none`` and ``source_minus_target``: paired ECE differences
    on the same rows (:func:`calcas.ece_difference_interval`), decided against 0 ("above": the source
    fit is worse). ``accuracy_source``, ``accuracy_target``: the model's accuracy on each side."""

    shift: str
    model: str
    n_source: int
    n_test: int
    accuracy_source: float
    accuracy_target: float
    none: Estimate
    source: Estimate
    target: Estimate
    source_minus_none: Verdict
    source_minus_target: Verdict


@dataclasses.dataclass(frozen=True)
class TestFacts(Facts):
    """The shift test (KS) on the source-calibrated confidences of all source and target rows:
    ``statistic`` (D), ``p_value``, ``mean_difference`` and ``wasserstein`` (confidence units),
    ``tied_share``; ``false_positive``: the share of ``n_tests`` random source-vs-source halves it
    rejects at 0.05 (Wilson interval); ``power``: the share of ``n_tests`` draws of ``power_rows``
    source and ``power_rows`` target rows it rejects at 0.05."""

    shift: str
    model: str
    statistic: float
    p_value: float
    mean_difference: float
    wasserstein: float
    tied_share: float
    false_positive: Estimate
    power: float


@dataclasses.dataclass(frozen=True)
class AccuracyFacts(Facts):
    """The target's accuracy (``truth``, Wilson interval) and each label-free estimate (``ac``,
    ``atc``, ``doc``: estimate with its bootstrap interval, not a deciding one) with its error
    (estimate - truth); ``closest``: the method with the smallest |error| (on a tie, the first of
    AC, ATC, DOC: with Platt scaling fitted on all source rows DOC equals AC); ``covers``: the methods
    whose interval holds the true accuracy; ``all_miss``: none does."""

    shift: str
    model: str
    truth: Estimate
    estimates: dict[str, Estimate]
    errors: dict[str, float]
    closest: str
    covers: list[str]
    all_miss: bool


@dataclasses.dataclass(frozen=True)
class CurveFacts(Facts):
    """:func:`calcas.recalibration_curve` of one model under one shift, as columns (``fit``, ``m``,
    ``ece_mean``, ``ece_low``, ``ece_high``); ``beats_source_at``: per fit ("target", "source
    prior") the smallest m whose mean ECE is below the source fit's, or None."""

    shift: str
    model: str
    fit: list[str]
    m: list[int]
    ece_mean: list[float]
    ece_low: list[float | None]
    ece_high: list[float | None]
    beats_source_at: dict[str, int | None]


@dataclasses.dataclass(frozen=True)
class RecertifiedFacts(Facts):
    """Re-certified on m labelled target rows: violations on the other target rows (Wilson,
    against delta), mean cost saved, and the share of re-splits that certified anything cheaper."""

    m: int
    violations: Verdict
    saved: float
    certified_share: float


@dataclasses.dataclass(frozen=True)
class CascadeFacts(Facts):
    """A chain certified on source (threshold method) and run on target, over re-splits: violations
    (loss above max_drop) on all source rows and on all target rows (Wilson, against delta), cost
    saved on each, the mean accuracy lost on target, the stages most often called, and the
    re-certifications."""

    chain: str
    shift: str
    models: list[str]
    costs: list[float]
    n_splits: int
    source_violations: Verdict
    target_violations: Verdict
    saved_source: float
    saved_target: float
    lost_target: float
    usual_stages: str
    recertified: list[RecertifiedFacts]


@dataclasses.dataclass(frozen=True)
class ShiftFacts(Facts):
    """The chapter's ``results.json``."""

    parameters: ShiftParameters
    shifts: dict[str, ShiftInfo]
    transfer: list[TransferFacts]
    tests: list[TestFacts]
    accuracy: list[AccuracyFacts]
    curves: list[CurveFacts]
    cascades: list[CascadeFacts]
    shown: dict[str, bool]
    section: str = "11_shift"


# ---------------------------------------------------------------------------- compute


def _halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def _transfer(shift: str, model: str, src: Records, tgt: Records, n_boot: int, seed: int) -> tuple[TransferFacts, np.ndarray,
                                                                                                      np.ndarray]:
    s_score, t_score = src.platt_score(), tgt.platt_score()
    fitted = PlattScaling().fit(s_score, src.verified)
    conf_s, conf_t = fitted.transform(s_score), fitted.transform(t_score)
    test, other = _halves(tgt.n, seed)
    own = PlattScaling().fit(t_score[other], tgt.verified[other]).transform(t_score[test])
    raw, v = tgt.raw_confidence()[test], tgt.verified[test]
    kw = {"n_boot": n_boot, "seed": seed}
    facts = TransferFacts(
        shift, model, src.n, len(test), float(src.verified.mean()), float(tgt.verified.mean()),
        Estimate.of(ece_interval(raw, v, **kw), "ece_interval"), Estimate.of(ece_interval(conf_t[test], v, **kw), "ece_interval"),
        Estimate.of(ece_interval(own, v, **kw), "ece_interval"),
        decide(Estimate.of(ece_difference_interval(conf_t[test], raw, v, **kw), "ece_difference_interval")),
        decide(Estimate.of(ece_difference_interval(conf_t[test], own, v, **kw), "ece_difference_interval")))
    return facts, conf_s, conf_t


def _test(shift: str, model: str, conf_s: np.ndarray, conf_t: np.ndarray, n_tests: int, power_rows: int,
          seed: int) -> TestFacts:
    result = confidence_shift_test(conf_s, conf_t)
    rng = np.random.default_rng(seed)
    false, power = 0, 0
    rows = min(power_rows, len(conf_s), len(conf_t))
    for _ in range(n_tests):  # the rows are checked above: scipy's test itself, as method="ks" runs it
        a, b = _halves(len(conf_s), int(rng.integers(2 ** 31)))
        false += stats.ks_2samp(conf_s[a], conf_s[b]).pvalue < 0.05
        power += stats.ks_2samp(rng.choice(conf_s, rows, replace=False),
                                rng.choice(conf_t, rows, replace=False)).pvalue < 0.05
    low, high = proportion_interval(false, n_tests)
    return TestFacts(shift, model, result.statistic, result.p_value, result.mean_difference, result.wasserstein,
                     result.tied_share, Estimate.of((false / n_tests, low, high), "proportion_interval"), power / n_tests)


def _accuracy(shift: str, model: str, conf_s: np.ndarray, src: Records, conf_t: np.ndarray, tgt: Records,
              n_boot: int, seed: int) -> AccuracyFacts:
    right = float(tgt.verified.sum())
    truth = Estimate.of((right / tgt.n, *proportion_interval(right, tgt.n)), "proportion_interval")
    estimates, errors = {}, {}
    for method in ACCURACY_METHODS:
        e = predict_accuracy(conf_s, src.verified, conf_t, method=method, n_boot=n_boot, seed=seed)
        estimates[method] = Estimate.of((e.estimate, e.low, e.high), "bootstrap")
        errors[method] = e.estimate - truth.value
    covers = [k for k, e in estimates.items() if e.low <= truth.value <= e.high]
    best = min(abs(e) for e in errors.values())
    closest = next(k for k in ACCURACY_METHODS if abs(errors[k]) <= best + 1e-9)  # ties (DOC = AC): the first
    return AccuracyFacts(shift, model, truth, estimates, errors, closest, covers, not covers)


def _curve(shift: str, model: str, src: Records, tgt: Records, sizes: Sequence[int], n_repeats: int,
           seed: int) -> CurveFacts:
    pool = tgt.n - int(round(0.5 * tgt.n))
    usable = [m for m in sizes if m <= pool]
    table = recalibration_curve(src.platt_score(), src.verified, tgt.platt_score(), tgt.verified, sizes=usable,
                                n_repeats=n_repeats, seed=seed)
    source = float(table.loc[table["fit"] == "source", "ece_mean"].iloc[0])
    beats = {}
    for fit in ("target", "source prior"):
        rows = table[(table["fit"] == fit) & (table["ece_mean"] < source)]
        beats[fit] = int(rows["m"].min()) if len(rows) else None
    nan = lambda x: None if pd.isna(x) else float(x)  # noqa: E731
    return CurveFacts(shift, model, table["fit"].tolist(), [int(m) for m in table["m"]],
                      [float(x) for x in table["ece_mean"]], [nan(x) for x in table["ece_low"]],
                      [nan(x) for x in table["ece_high"]], beats)


def _cascade(name: str, shift: str, source: Sequence[Records], target: Sequence[Records], models: list[str],
             costs: Sequence[float], *, max_drop: float, delta: float, n_splits: int, sizes: Sequence[int],
             seed: int) -> CascadeFacts:
    usable = [m for m in sizes if m < target[0].n]
    runs = study_chain_shift(source, target, costs, max_drop=max_drop, delta=delta, n_splits=n_splits,
                             target_sizes=usable, seed=seed)

    def rate(lost: np.ndarray) -> Verdict:
        k = int(np.sum(lost > max_drop + 1e-12))
        return decide(Estimate.of((k / len(lost), *proportion_interval(k, len(lost))), "proportion_interval"), delta)

    last = str(len(models) - 1)
    again = [RecertifiedFacts(m, rate(lost), float(1 - cost.mean()), float(np.mean([s != last for s in stages])))
             for m, (lost, cost, stages) in runs.recertified.items()]
    usual = max(set(runs.answering), key=lambda a: (runs.answering.count(a), a))
    return CascadeFacts(name, shift, models, [float(c) for c in costs], n_splits, rate(runs.lost_source),
                        rate(runs.lost_target), float(1 - runs.cost_source.mean()), float(1 - runs.cost_target.mean()),
                        float(runs.lost_target.mean()), usual, again)


def compute(shifts: Mapping[str, Mapping[str, tuple[Records, Records]]], info: Mapping[str, ShiftInfo], *,
            chains: Mapping[str, tuple[str, Sequence[Records], Sequence[Records], Sequence[str], Sequence[float]]],
            n_boot: int = 500, n_tests: int = 200, power_rows: int = 500,
            sizes: Sequence[int] = (25, 50, 100, 200, 400, 800), n_repeats: int = 30, max_drop: float = 0.03,
            delta: float = 0.1, n_splits: int = 100, seed: int = 0, shown_paths: Mapping[str, list[str]] | None = None
            ) -> ShiftFacts:
    """Every measurement of the chapter.

    Parameters
    ----------
    shifts : mapping shift name -> (mapping model -> (source Records, target Records))
        The models' record sets on each side of each shift (top-1 confidence and correctness).
    info : mapping shift name -> ShiftInfo
    chains : mapping chain name -> (shift name, source sets, target sets, model names, costs)
        The chains certified on source and run on target (threshold method), and re-certified on
        100, 200, 400 and 800 labelled target rows (those below the target's size).
    n_boot, n_tests, power_rows, sizes, n_repeats, max_drop, delta, n_splits, seed
        Bootstrap replicates of the intervals; source-vs-source splits of the false-positive rate
        and draws of the power (``power_rows`` rows per side); the recalibration curve's m values
        and draws per m; the chain's guarantee and re-splits; the seed.

    Returns
    -------
    ShiftFacts
    """
    transfer, tests, accuracy, curves = [], [], [], []
    for shift, models in shifts.items():
        for model, (src, tgt) in models.items():
            t, conf_s, conf_t = _transfer(shift, model, src, tgt, n_boot, seed)
            transfer.append(t)
            tests.append(_test(shift, model, conf_s, conf_t, n_tests, power_rows, seed))
            accuracy.append(_accuracy(shift, model, conf_s, src, conf_t, tgt, n_boot, seed))
            curves.append(_curve(shift, model, src, tgt, sizes, n_repeats, seed))
    cascades = [_cascade(name, shift, s, t, list(models), costs, max_drop=max_drop, delta=delta, n_splits=n_splits,
                         sizes=(100, 200, 400, 800), seed=seed)
                for name, (shift, s, t, models, costs) in chains.items()]
    parameters = ShiftParameters(dict(shown_paths or {k: list(v) for k, v in shifts.items()}), n_boot, n_tests,
                                 power_rows, list(sizes), n_repeats,
                                 {k: list(v[3]) for k, v in chains.items()}, max_drop, delta, n_splits, seed)
    return ShiftFacts(parameters, dict(info), transfer, tests, accuracy, curves, cascades, {"exercises": True})


def public_shifts(records_dir: str, *, task_models: Sequence[str], imagenet_models: Sequence[str], seed: int = 0,
                  root: str | None = None) -> tuple[dict, dict[str, ShiftInfo], dict]:
    """The public shifts as :func:`compute` takes them: MMLU -> ARC-Challenge for ``task_models``
    (:func:`calcas.datasets.public.plaut_records`), and the ImageNet animal classes -> the others,
    and a seeded random half of the metaclasses -> the rest, for ``imagenet_models``
    (``records_dir/imagenet_<model>.parquet``); and the two chains: Llama-3 8B -> 70B (MMLU -> ARC,
    costs 8, 70) and SimCLR -> ResNet-50 -> ViT (animals -> the rest, GFLOPs 4.1, 4.1, 17.6)."""
    from ..datasets import public
    from ..records import read_records
    task = {m: (public.plaut_records("mmlu", m, root=root), public.plaut_records("arc", m, root=root))
            for m in task_models}
    sets = {m: read_records(f"{records_dir}/imagenet_{m}.parquet") for m in imagenet_models}
    metaclass, _ = public.imagenet_metaclasses(root=root)
    label = next(iter(sets.values())).label
    animal = np.isin(label, np.asarray(public.IMAGENET_ANIMALS))
    half = np.random.default_rng(seed).permutation(100)[:50]
    chosen = np.isin(metaclass[label], half)

    def split(mask: np.ndarray) -> dict[str, tuple[Records, Records]]:
        return {m: (r.take(np.flatnonzero(mask)), r.take(np.flatnonzero(~mask))) for m, r in sets.items()}

    shifts = {"MMLU → ARC-Challenge": task, "ImageNet: animals → other classes": split(animal),
              "ImageNet: random metaclasses → the rest (control)": split(chosen)}
    info = {"MMLU → ARC-Challenge": ShiftInfo("MMLU, 6,000 questions", "ARC-Challenge, 2,590 questions",
                                              list(task_models), False),
            "ImageNet: animals → other classes": ShiftInfo("ImageNet val, classes 0–397 (animals)",
                                                           "ImageNet val, classes 398–999", list(imagenet_models), False),
            "ImageNet: random metaclasses → the rest (control)": ShiftInfo(
                "ImageNet val, 50 of the 100 metaclasses drawn at random", "the other 50 metaclasses",
                list(imagenet_models), True)}
    chains = {}
    if {"Llama3-8b", "Llama3-70b"} <= set(task_models):
        chains["Llama-3 8B → 70B, MMLU → ARC"] = ("MMLU → ARC-Challenge",
                                                 [task["Llama3-8b"][0], task["Llama3-70b"][0]],
                                                 [task["Llama3-8b"][1], task["Llama3-70b"][1]],
                                                 ["Llama3-8b", "Llama3-70b"], [8.0, 70.0])
    if {"SimCLR", "ResNet50", "ViT"} <= set(imagenet_models):
        pieces = split(animal)
        chains["SimCLR → ResNet-50 → ViT, animals → other classes"] = (
            "ImageNet: animals → other classes", [pieces[m][0] for m in ("SimCLR", "ResNet50", "ViT")],
            [pieces[m][1] for m in ("SimCLR", "ResNet50", "ViT")], ["SimCLR", "ResNet50", "ViT"], [4.1, 4.1, 17.6])
    return shifts, info, chains


# ---------------------------------------------------------------------------- prose


def _models(rows: Sequence[Any]) -> str:
    return names_list([r.model for r in rows]) if rows else "none"


def _count(rows: Sequence[Any], noun: str = "model") -> str:
    """"3 models (a, b and c)", "1 model (a)", "no model"."""
    if not rows:
        return f"no {noun}"
    return f"{len(rows)} {noun}{'s' if len(rows) > 1 else ''} ({_models(rows)})"


def _sentences(parts: Sequence[str]) -> str:
    return " ".join(p[0].upper() + p[1:] for p in parts)


def _by_shift(items: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for x in items:
        out.setdefault(x.shift, []).append(x)
    return out


def _transfer_text(shift: str, rows: Sequence[TransferFacts]) -> str:
    worse = [r for r in rows if r.source_minus_none.outcome == "above"]
    better = [r for r in rows if r.source_minus_none.outcome == "below"]
    unsure = [r for r in rows if r.source_minus_none.outcome == "within"]
    behind = [r for r in rows if r.source_minus_target.outcome == "above"]
    out = [f"**{shift}** ({len(rows)} models; ECE on the target's test half, {rows[0].n_test:,} rows): Platt scaling "
           f"fitted on the source is worse than no calibration for {_count(worse)}, better for {_count(better)}, "
           f"and these rows cannot tell for {_count(unsure)}.",
           f"Against Platt scaling refitted on the target's other half, the source fit is worse for {len(behind)} of "
           f"{len(rows)} models."]
    lo, hi = min(rows, key=lambda r: r.source.value), max(rows, key=lambda r: r.source.value)
    out.append(f"With the source fit the target ECE runs from {fmt(lo.source.value)} ({lo.model}) to "
               f"{fmt(hi.source.value)} ({hi.model}); refitted on the target, from "
               f"{fmt(min(r.target.value for r in rows))} to {fmt(max(r.target.value for r in rows))}.")
    return " ".join(out)


def _tests_text(shift: str, rows: Sequence[TestFacts], n_tests: int, power_rows: int) -> str:
    rejected = [r for r in rows if r.p_value < 0.05]
    fp = [r.false_positive.value for r in rows]
    d = sorted(r.statistic for r in rows)
    return (f"**{shift}**: the KS test on the source-calibrated confidences rejects one distribution at 0.05 for "
            f"{len(rejected)} of {len(rows)} models (D from {fmt(d[0])} to {fmt(d[-1])}; mean confidence moves by "
            f"{signed(min(r.mean_difference for r in rows), 3)} to {signed(max(r.mean_difference for r in rows), 3)}). "
            f"On {n_tests} random halves of each model's source rows, where nothing moved, it rejects in "
            f"{pct(min(fp))} to {pct(max(fp))} of them (the level is 5%). With {power_rows:,} rows on each side it "
            f"detects this shift in {pct(min(r.power for r in rows))} to {pct(max(r.power for r in rows))} of "
            f"{n_tests} draws.")


def _accuracy_text(shift: str, rows: Sequence[AccuracyFacts]) -> str:
    closest = {k: [r for r in rows if r.closest == k] for k in ACCURACY_METHODS}
    mean_error = {k: float(np.mean([abs(r.errors[k]) for r in rows])) for k in ACCURACY_METHODS}
    best = min(mean_error, key=mean_error.get)
    miss = [r for r in rows if r.all_miss]
    out = [f"**{shift}**: closest to the true target accuracy: " + "; ".join(
        f"{METHOD_NAMES[k]} for {len(v)} model{'s' if len(v) > 1 else ''}" for k, v in closest.items() if v) + ".",
           "Mean absolute error: " + ", ".join(f"{k.upper()} {fmt(v)}" for k, v in mean_error.items())
           + f"; {best.upper()} is the smallest."]
    if miss:
        out.append(f"For {len(miss)} of {len(rows)} models no method's interval holds the true accuracy "
                   f"({_models(miss)}): every estimate is off by more than its own uncertainty.")
    return " ".join(out)


def _curves_text(shift: str, rows: Sequence[CurveFacts]) -> str:
    out = []
    for fit in ("target", "source prior"):
        at = [r.beats_source_at[fit] for r in rows]
        reached = [m for m in at if m is not None]
        never = [r.model for r, m in zip(rows, at) if m is None]
        what = {"target": "Platt scaling refitted on m target rows alone",
                "source prior": "Platt scaling refitted from the source fit on m target rows"}[fit]
        text = (f"{what} gets below the source fit's ECE for {len(reached)} of {len(rows)} models"
                + (f", at a median of {int(np.median(reached))} labelled rows" if reached else ""))
        if never:
            text += f"; never within the sizes tried for {names_list(never)}"
        out.append(text + ".")
    return f"**{shift}**: " + _sentences(out)


def _cascade_text(c: CascadeFacts, max_drop: float, delta: float) -> str:
    s, t = c.source_violations, c.target_violations
    verdict = {"below": f"below δ = {pct(delta)}: the guarantee held",
               "above": f"**above δ = {pct(delta)}: the guarantee failed on the target**",
               "within": f"around δ = {pct(delta)}: these re-splits cannot tell"}
    asked = [c.models[int(j)] for j in c.usual_stages.split("+")]
    stages = f"{asked[0]} alone" if len(asked) == 1 else " → ".join(asked)
    out = [f"**{c.chain}**, {c.n_splits} re-splits, certified on the source at max_drop = {max_drop:g}: the "
           f"configuration most often certified answers with {stages}. It lost more than max_drop on all source rows in "
           f"{pct(s.estimate.value)} of re-splits ({verdict[s.outcome]}) and on the target in "
           f"{pct(t.estimate.value)} ({verdict[t.outcome]}); the mean accuracy lost on the target is "
           f"{signed(c.lost_target, 3)}. It saves {pct(c.saved_source)} of {c.models[-1]}'s cost on the source and "
           f"{pct(c.saved_target)} on the target."]
    first = next((r for r in c.recertified if r.certified_share > 0.5), None)
    if first is None:
        out.append(f"Re-certified on up to {c.recertified[-1].m} labelled target rows, nothing cheaper than "
                   f"{c.models[-1]} is certified in most re-splits.")
    else:
        out.append(f"Re-certified on labelled target rows, it certifies something cheaper in most re-splits from "
                   f"m = {first.m} on, saving {pct(first.saved)} with violations in "
                   f"{pct(first.violations.estimate.value)} of re-splits; at m = {c.recertified[-1].m}, "
                   f"{pct(c.recertified[-1].saved)}.")
    return " ".join(out)


def prose(facts: ShiftFacts) -> dict[str, str]:
    """The chapter's sentences, from its facts only: ``"transfer"``, ``"tests"``, ``"accuracy"``,
    ``"curves"`` and ``"cascades"``, one paragraph per shift (or chain)."""
    p = facts.parameters
    return {
        "transfer": "\n\n".join(_transfer_text(k, v) for k, v in _by_shift(facts.transfer).items()),
        "tests": "\n\n".join(_tests_text(k, v, p.n_tests, p.power_rows) for k, v in _by_shift(facts.tests).items()),
        "accuracy": "\n\n".join(_accuracy_text(k, v) for k, v in _by_shift(facts.accuracy).items()),
        "curves": "\n\n".join(_curves_text(k, v) for k, v in _by_shift(facts.curves).items()),
        "cascades": "\n\n".join(_cascade_text(c, p.max_drop, p.delta) for c in facts.cascades)
        or "No chain of these models is on both sides of a shift here.",
    }


# ---------------------------------------------------------------------------- tables, figures, explorers

_READS = {"above": "worse", "below": "better", "within": "cannot tell"}


def _per_shift(rows: Sequence[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """One table per shift, models as rows (a shift's long name repeated on every row would make
    the table scroll)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["shift"], []).append({k: v for k, v in r.items() if k != "shift"})
    return {k: pd.DataFrame(v).set_index("model") for k, v in out.items()}


def _transfer_table(facts: ShiftFacts) -> dict[str, pd.DataFrame]:
    return _per_shift([{"shift": r.shift, "model": r.model, "accuracy, source → target":
                        f"{fmt(r.accuracy_source)} → {fmt(r.accuracy_target)}", "no calibration": table_interval(r.none),
                        "source fit": table_interval(r.source), "target fit": table_interval(r.target),
                        "source fit against none": _READS[r.source_minus_none.outcome]} for r in facts.transfer])


def _p_text(p: float) -> str:
    """A p-value as text: two significant digits, or "< 0.0001"."""
    return f"{p:.2g}" if p >= 1e-4 else "< 0.0001"


def _tests_table(facts: ShiftFacts) -> dict[str, pd.DataFrame]:
    return _per_shift([{"shift": r.shift, "model": r.model, "D": fmt(r.statistic), "p": _p_text(r.p_value),
                        "mean confidence moves": signed(r.mean_difference, 3),
                        "false positives (source halves)": pct(r.false_positive.value),
                        f"power ({facts.parameters.power_rows} rows a side)": pct(r.power)} for r in facts.tests])


def _accuracy_table(facts: ShiftFacts) -> dict[str, pd.DataFrame]:
    return _per_shift([{"shift": r.shift, "model": r.model, "true accuracy": table_interval(r.truth),
                        **{k.upper(): table_interval(r.estimates[k]) for k in ACCURACY_METHODS},
                        "closest": r.closest.upper()} for r in facts.accuracy])


def _cascade_table(facts: ShiftFacts) -> pd.DataFrame:
    rows = []
    for c in facts.cascades:
        rows.append({"chain": c.chain, "certified on": "source", "violations on the source": pct(
            c.source_violations.estimate.value), "violations on the target": pct(c.target_violations.estimate.value),
            "saved on the target": pct(c.saved_target)})
        for r in c.recertified:
            rows.append({"chain": c.chain, "certified on": f"{r.m} target rows", "violations on the source": "—",
                         "violations on the target": pct(r.violations.estimate.value),
                         "saved on the target": pct(r.saved)})
    return pd.DataFrame(rows).set_index(["chain", "certified on"])


def tables(facts: ShiftFacts) -> dict[str, Any]:
    """``"transfer"`` (ECE on the target's test half per calibration), ``"tests"`` (the KS test,
    its false positives and power) and ``"accuracy"`` (the label-free estimates beside the truth),
    each a dict shift -> DataFrame with models as rows; ``"cascades"`` (violations and savings,
    certified on the source or on m target rows), one DataFrame."""
    return {"transfer": _transfer_table(facts), "tests": _tests_table(facts), "accuracy": _accuracy_table(facts),
            "cascades": _cascade_table(facts)}


def _curve_table(facts: ShiftFacts, shift: str) -> pd.DataFrame:
    parts = [pd.DataFrame({"fit": c.fit, "m": c.m, "ece_mean": c.ece_mean, "ece_low": c.ece_low,
                           "ece_high": c.ece_high}).assign(model=c.model) for c in facts.curves if c.shift == shift]
    return pd.concat(parts, ignore_index=True)


def explorers(facts: ShiftFacts) -> dict[str, interactive.Explorer]:
    """One recalibration explorer per shift (:func:`calcas.render.interactive.recalibration_explorer`):
    every model's target ECE after refitting on m labelled target rows, a control for m."""
    return {shift: interactive.recalibration_explorer(_curve_table(facts, shift), title=shift, default=100,
                                                      names=FIT_NAMES)
            for shift in dict.fromkeys(c.shift for c in facts.curves)}


def figures(facts: ShiftFacts) -> Any:
    """The target's ECE with the source's calibrator against with none, per model and shift
    (:func:`calcas.render.plots.paired_points`); returns the matplotlib Figure."""
    return plots.paired_points({s: [(r.model, r.none.value, r.source.value, r.target.value) for r in rows]
                                for s, rows in _by_shift(facts.transfer).items()},
                               labels=("no calibration", "fitted on the source", "refitted on the target"),
                               ylabel="ECE on the target's test half")
