"""The chapters' sentences, written from a section's ``results.json`` dict.

Each function takes the dict a report's ``to_dict()`` wrote (read back from the file) and
returns Markdown. Every number in the text is one of the dict's numbers, formatted; every
claim of the paper comes from :func:`calcas.report.paper_reference`. Where a run disagrees
with the paper, the text says so and gives the likely reason. ``tests/test_report.py``
regenerates the prose of every built chapter from its ``results.json`` and compares.
"""
from __future__ import annotations

import math
from typing import Any

from .report import DETECTABLE, paper_reference


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"  # round() to an int: never "-0%"


def _ci(v: list[float], digits: int = 3) -> str:
    """"0.123 [0.110, 0.135]" from [value, low, high]."""
    return f"{_f(v[0], digits)} [{_f(v[1], digits)}, {_f(v[2], digits)}]"


def _signed_ci(v: list[float], digits: int = 4) -> str:
    return f"{v[0]:+.{digits}f} [{v[1]:+.{digits}f}, {v[2]:+.{digits}f}]"


def _reference_key(dataset: str | None) -> str | None:
    d = (dataset or "").lower()
    return next((k for k in ("imagenet", "mmlu") if k in d), None)


# ---------------------------------------------------------------------------- calibration

def _detectable(name: str, split: dict[str, Any], before: float, after: float) -> str:
    """The smallest ECE the split can detect, and what it says of the two ECEs ("" without one)."""
    d = split.get("min_detectable_ece")
    if d is None:
        return ""
    text = f"The smallest ECE that {split['n']:,} rows in {split['n_bins_effective']} bins can detect is {_f(d)}"
    if before < d and after < d:
        return text + (f"; both ECEs lie below it: before or after calibration, the data cannot tell {name} from a "
                       "calibrated model.")
    if after < d:
        return text + f"; after calibration the ECE lies below it: the data cannot tell {name} from a calibrated model."
    if before < d:
        return text + (f"; already before calibration the ECE lies below it: the data cannot tell {name} from a "
                       "calibrated model.")
    return text + "; both ECEs lie above it."


def _calibration_model(name: str, m: dict[str, Any], n_bins: int) -> list[str]:
    t, c = m["test"], m["cal"]
    fitted = f"T = {_f(m['temperature'], 2)}" if m.get("temperature") is not None else \
        f"a = {_f(m.get('platt_a'), 2)}, b = {_f(m.get('platt_b'), 2)}"
    before, after = t["ece_before"], t["ece_after"]
    out = [f"**{name}** ({m['method']} scaling, {fitted}; {t['n']:,} test rows): test ECE "
           f"{_ci(before)} before and {_ci(after)} after calibration."]
    detect = _detectable(name, t, before[0], after[0])
    if detect:
        out.append(detect)
    if after[1] > after[0]:
        out.append("(The bootstrap interval after calibration lies above the estimate: ECE is biased upward, more "
                   "so on resamples, and a well-calibrated model shows it most.)")
    if after[0] < before[1]:
        out.append("Calibration lowers it, as in the paper.")
    elif after[0] < before[0]:
        out.append("Calibration lowers it, but only within the interval of the uncalibrated ECE: little to fix.")
    else:
        out.append("Calibration does **not** lower it, unlike the paper's Table 1, where it falls for both models.")
        tl = m.get("true_labels")
        if before[1] <= after[0] <= before[2]:
            out.append("The change lies within the interval of the uncalibrated ECE: within noise.")
        if tl and tl["ece_temperature_true_labels"] < tl["ece_uncalibrated"]:
            out.append(f"The labels are the likely reason: against the true labels, a temperature fitted on them "
                       f"takes this model's ECE from {_f(tl['ece_uncalibrated'])} to "
                       f"{_f(tl['ece_temperature_true_labels'])}. Against labels with flips, accuracy is capped "
                       "at every confidence, and one temperature cannot follow a curve that rises and then stalls.")
        elif not before[1] <= after[0] <= before[2]:
            out.append("A single calibrator fitted by likelihood trades bins against each other; it can lower the "
                       "likelihood and still raise the binned ECE.")
    gap = abs(after[0] - c["ece_after"][0])
    out.append(f"After calibration, cal and test ECE are {_f(c['ece_after'][0])} and {_f(after[0])}"
               + (" (calibration carries over to held-out data, the paper's second observation)." if gap <= 0.02
                  else f", {_f(gap)} apart: less stable than the paper's 0.0271 / 0.0296."))
    mono = t["monotonicity_before"]
    if mono is not None and math.isfinite(mono):
        out.append(f"Higher confidence goes with higher accuracy: the Spearman correlation of bin accuracy with bin "
                   f"confidence is {_f(mono, 2)} before calibration"
                   + ("." if mono >= 0.8 else ", weaker than the paper's first observation suggests."))
    if t["n_bins_effective"] < n_bins:
        out.append(f"Only {t['n_bins_effective']} of the {n_bins} bins exist on the test half: "
                   f"{_pct(m['tie_share'])} of the confidences equal {_f(m['tie_value'], 4)}, and equal-count bins "
                   "never split tied values.")
    if t["overconfident_bins_before"] == t["n_bins_effective"] and t["n_bins_effective"] > 1:
        out.append(f"Before calibration every bin is over-confident, so the ECE equals the overall gap, mean "
                   f"confidence minus accuracy = {_f(t['gap_before'])}, whatever the number of bins: "
                   "a flat ECE under the bin slider is expected here, not a fault.")
    return out


def _helps(before: list[float], after: list[float]) -> str:
    """Whether a calibration helps, from the ECE before and after with their intervals."""
    if after[2] < before[1]:
        return "visibly"
    if after[0] < before[1]:
        return "beyond noise"
    if after[0] < before[0]:
        return "within noise"
    return "not"


def showcase_prose(res: dict[str, Any]) -> str:
    """The calibration chapter's opening example: the showcased model (``res["showcase"]``,
    chosen by :func:`calcas.report.choose_showcase`) before and after calibration, and what
    that says on these data, including when calibration does not help it."""
    s = res["showcase"]
    name, before, after = s["model"], s["ece_before"], s["ece_after"]
    real = [n for n, m in res["models"].items() if m.get("dataset") != "synthetic"]
    pool = ("the real models" if real else "the models") if s["verifier"] == "given_labels" else \
        "the models whose record sets carry true labels"
    if s["verifier"] == "true_labels":
        how = (f"Measured against the **true** labels of its {s['n']:,} test rows (a clean verifier), a "
               f"temperature fitted on the true labels of the cal half (T = {_f(s['temperature'], 2)})")
        why = "largest fall in test ECE against the true labels"
    else:
        fitted = (f"T = {_f(s['temperature'], 2)}" if s.get("temperature") is not None else
                  f"a = {_f(s.get('platt_a'), 2)}, b = {_f(s.get('platt_b'), 2)}")
        method = "Platt scaling" if s["method"] == "platt" else "temperature scaling"
        how = f"On its {s['n']:,} test rows, {method} fitted on the cal half ({fitted})"
        why = "largest fall in test ECE under calibration"
    out = [f"**{name}** is shown first: of {pool}, it has the {why}. {how} takes its ECE from "
           f"{_ci(before)} to {_ci(after)}."]
    verdict = _helps(before, after)
    detect = _detectable(name, s, before[0], after[0])
    if verdict == "visibly":
        out.append("The two intervals do not overlap: calibration visibly helps.")
    elif verdict == "beyond noise":
        out.append("The calibrated ECE lies below the interval of the uncalibrated one, though the two intervals "
                   "overlap: calibration helps, modestly.")
    elif verdict == "within noise":
        out.append("On these data calibration does **not** visibly help even this model, the best case they "
                   "offer: the calibrated ECE lies within the interval of the uncalibrated one.")
    else:
        out.append("On these data calibration does **not** help even this model, the best case they offer: its "
                   "ECE does not fall. Where a model is calibrated already, there is nothing to fix.")
    if detect:
        out.append(detect)
    gap = s["gap_before"]
    side = ("over-confident (mean confidence above accuracy, the curve below the diagonal)" if gap > 0 else
            "under-confident (mean confidence below accuracy, the curve above the diagonal)")
    out.append(f"Before calibration it is {side} by {_f(abs(gap))} on average")
    t = s.get("temperature")
    if t is not None and s["method"] == "temperature":
        out[-1] += (f"; T = {_f(t, 2)} {'>' if t > 1 else '<'} 1 "
                    + ("softens its confidences." if t > 1 else "sharpens its confidences."))
    else:
        out[-1] += "."
    if s["verifier"] == "given_labels":
        out.append("These record sets carry no true labels, so the verifier is the given label throughout.")
    return " ".join(out)


def flipped_label_prose(res: dict[str, Any]) -> str:
    """The flipped-label lesson (``res["lesson"]``, chosen by
    :func:`calcas.report.choose_lesson`): its model calibrated on the given labels, which
    include flips, measured against them and against the true labels ("" without one)."""
    lesson = res.get("lesson")
    if not lesson:
        return ""
    name = lesson["model"]
    m = res["models"][name]
    tl, test = m["true_labels"], m["test"]
    same = name == res["showcase"]["model"]
    out = [(f"Here {name} again" if same else f"Here **{name}**") + f", calibrated as the rest of the chapter calibrates every model: on the **given** labels, "
           f"{_pct(lesson['flipped_share'])} of which are wrong on its test half. Fitted on them, its temperature is "
           f"T = {_f(lesson['temperature_given_labels'], 2)}; fitted on the true labels, it would be "
           f"T = {_f(lesson['temperature_true_labels'], 2)}."]
    out.append(f"Against the given labels its test ECE goes from {_ci(test['ece_before'])} to "
               f"{_ci(test['ece_after'])}"
               + (": calibration looks like it makes it worse." if test["ece_after"][0] > test["ece_before"][0]
                  else "."))
    if lesson["top_bin_confidence"] > lesson["accuracy_ceiling"]:
        out.append(f"No bin can be right much more often than the share of correct labels, "
                   f"{_f(lesson['accuracy_ceiling'])}: in the calibrated model's most confident bin, accuracy against "
                   f"the given labels is {_f(lesson['top_bin_accuracy'])} at mean confidence "
                   f"{_f(lesson['top_bin_confidence'])}, so the curve cannot follow the diagonal at the top (left "
                   "panel below).")
    worse = tl["ece_calibrated_given_labels"] > tl["ece_uncalibrated"]
    out.append(f"Against the true labels (right panel), the temperature fitted on the given labels takes the ECE "
               f"from {_f(tl['ece_uncalibrated'])} to {_f(tl['ece_calibrated_given_labels'])}, where the one fitted "
               f"on the true labels reaches {_f(tl['ece_temperature_true_labels'])}"
               + (": fitted on labels with flips, calibration made the model worse against the truth." if worse else
                  ": fitted on labels with flips, the temperature does less good against the truth than one fitted "
                  "on clean labels." if tl["ece_calibrated_given_labels"] > tl["ece_temperature_true_labels"] else "."))
    return " ".join(out)


def calibration_prose(res: dict[str, Any]) -> str:
    """"Beside the paper" for the calibration chapter."""
    n_bins = res["parameters"]["n_bins"]
    paras = [" ".join(_calibration_model(name, m, n_bins)) for name, m in res["models"].items()]
    ref = paper_reference()["table1"]
    keys = {_reference_key(m.get("dataset")) for m in res["models"].values()} - {None}
    for key in sorted(keys):
        r = ref[key]
        ours = {n: m for n, m in res["models"].items() if _reference_key(m.get("dataset")) == key}
        best = min(ours, key=lambda n: ours[n]["test"]["ece_after"][0])
        paras.append(f"The paper's {r['model']} on {r['dataset']} goes from {_f(r['test']['ece_before'], 4)} to "
                     f"{_f(r['test']['ece_after'], 4)} on its test half. Here the lowest ECE after calibration is "
                     f"{best}'s {_f(ours[best]['test']['ece_after'][0])}: other models, the same shape.")
    if not keys:
        paras.append("The paper's Table 1 (EVA02-L on ImageNet, 0.2624 → 0.0296; LLaMA-3-8B on MMLU, 0.1830 → "
                     "0.0901) is on other data: compare the shape, not the values.")
    return "\n\n".join(paras)


# ---------------------------------------------------------------------------- cascades

def _verdict(gain: list[float]) -> str:
    if gain[1] == gain[2] == 0:
        return "the same answers as the better model on every test row"
    if gain[1] > 0:
        return "the cascade beats both models"
    if gain[2] < 0:
        return "the cascade loses to the better model"
    return "the difference is within noise"


def _cascade_pair(pair: str, r: dict[str, Any], n_bins: int) -> list[str]:
    out = [f"**{pair}** ({r['n_test']:,} test rows): {r['first']} {_ci(r['accuracy_first'])} and {r['second']} "
           f"{_ci(r['accuracy_second'])} alone."]
    n_eff, k, kc = r["n_bins_effective"], r["K_used"], r["K_cal"]
    if n_eff < n_bins:
        out.append(f"Only {n_eff} distinct bins exist on cal ({_pct(r['tie_share'])} of the first model's "
                   f"calibrated confidences equal {_f(r['tie_value'], 4)}; tied values are never split), so the "
                   f"slider offers K = 0…{n_eff}" + (f" and the fixed K = {r['K']} becomes {k}." if k < r["K"] else "."))
    p_k = r["at_K"]["CC"]["p_small"] if "CC" in r["at_K"] else float("nan")
    if k == n_eff:
        out.append(f"At K = {k} the first model answers everything, so the fixed K says nothing about routing; "
                   f"the K chosen on cal is the comparison to read.")
    else:
        out.append(f"At the fixed K = {k}, CC gives {_pct(p_k)} of the rows to {r['first']} and reaches "
                   f"{_ci(r['cc_at_K'])}; its paired gain over {r['better']} (the better model on cal) is "
                   f"{_signed_ci(r['gain_at_K'])}: {_verdict(r['gain_at_K'])}.")
    if kc == 0:
        out.append(f"On the cal rows no K beats {r['second']} alone (K = 0 is best there): calibrated routing "
                   "finds nothing to gain for this pair.")
    elif kc == n_eff:
        out.append(f"On the cal rows the first model alone (K = {kc}) is best: the second model adds nothing there.")
    else:
        out.append(f"At the K that is best on cal (K = {kc}), CC reaches {_ci(r['cc_at_K_cal'])}, a gain of "
                   f"{_signed_ci(r['gain_at_K_cal'])}: {_verdict(r['gain_at_K_cal'])}.")
    out.append(f"The best K on test (K = {r['best_cc_K']}, {_f(r['best_cc_accuracy'], 4)}) is optimistic and "
               "decides nothing here.")
    if r["share_cc_at_least_uc"] is not None:
        share, diff = r["share_cc_at_least_uc"], r["mean_cc_minus_uc"]
        half = r["noise_half_width"]
        text = (f"CC is at least as accurate as UC at {_pct(share)} of the operating points between the two "
                f"models alone (mean difference {diff:+.4f})")
        if share >= 0.5:
            out.append(text + ", as the paper finds (CC ≥ UC).")
        elif abs(diff) < half:
            out.append(text + f"; the paper finds CC ≥ UC. The difference is smaller than the ±{_f(half)} interval "
                       "of one accuracy here: within noise, not a reversal.")
        else:
            out.append(text + ": **below UC**, unlike the paper (CC ≥ UC). The likely reason: each model is "
                       "calibrated by one global map, fitted over all its samples, while the router compares the "
                       "second model's mean confidence within the first model's bins, where the second model can "
                       "remain miscalibrated; raw confidences that are miscalibrated alike compare better.")
    if r["share_cc_above_rc"] is not None and r["share_cc_above_rc"] < 1:
        out.append(f"CC is above random routing at {_pct(r['share_cc_above_rc'])} of the operating points; the "
                   "paper finds CC > RC at every p. Where the first model's confidence barely tells where the "
                   "second model does better (a flat advantage), routing is no better than chance.")
    cc = r["at_K"].get("CC", {})
    if cc.get("compute_saved") is not None:
        saved = cc["compute_saved"]
        out.append(f"Compute saved at K = {k} against the second model alone: {saved:+.3f}"
                   + (" (negative: the first model costs more than the second-model calls it saves)."
                      if saved < 0 else "."))
    return out


def cascade_prose(res: dict[str, Any]) -> str:
    """"Beside the paper" for a cascade chapter."""
    n_bins = res["parameters"]["n_bins"]
    paras = [" ".join(_cascade_pair(pair, r, n_bins)) for pair, r in res["pairs"].items()]
    ll = paper_reference()["cascades"]["large_large"]
    paras.append(f"The paper finds CC ≥ UC > RC at every p, and its large–large pair ({ll['pair']}) reaching "
                 f"{100 * ll['accuracy']:.3f}% on {ll['dataset']}, above both models. Verdicts above use the K "
                 "fixed in advance or chosen on cal, with paired intervals.")
    return "\n\n".join(paras)


# ---------------------------------------------------------------------------- cleaning

def cleaning_prose(res: dict[str, Any]) -> str:
    """"Beside the paper" for a cleaning chapter."""
    flags, truth, K = res["flags"], res["truth"], res["K_used"]
    m1, m2 = flags["method_1"], flags["method_2"]
    paras = []
    if truth is None:
        paras.append(f"These record sets carry no ground truth of label errors, so only counts are shown: method 1 "
                     f"flags {m1['flagged']:,} labels and method 2 at K = {K} flags {m2['flagged']:,}.")
        return "\n\n".join(paras)
    source = ("the labels flipped with a seed in this data set, known exactly" if truth == "is_noisy" else
              f"every acceptable label of each sample; {res['n_unrated']:,} samples carry none and are "
              "left out of precision")
    paras.append(f"Ground truth: {source} ({_pct(res['noise_rate'])} of the rated labels are wrong). Method 2 at "
                 f"K = {K} flags {m2['flagged']:,} labels with precision {_ci([m2['precision'], m2['precision_low'], m2['precision_high']])}; "
                 f"method 1 flags {m1['flagged']:,} with precision "
                 f"{_ci([m1['precision'], m1['precision_low'], m1['precision_high']])}.")
    trend = res.get("precision_vs_detection")
    if trend is not None:
        paras.append(f"Along the sweep over K, precision and detection rate have a Spearman correlation of "
                     f"{_f(trend, 2)}: " + ("precision falls as more is flagged, as in the paper's Fig. 4." if trend < 0
                                             else "precision does **not** fall as more is flagged, unlike the paper's "
                                                  "Fig. 4; the lowest-confidence bins still hold mostly true errors here."))
    cl = flags.get("confident_learning")
    if cl is None:
        paras.append("Method 3 and Confident Learning need every class's probability (logits); these record sets "
                     "carry only the top-1 confidence, so the paper's Table 3 comparison cannot be made here.")
    else:
        at = res.get("ours_at_cl_rate")
        if at is not None:
            paras.append(f"Confident Learning flags {cl['flagged']:,} labels at precision {_f(cl['precision'])}; at the "
                         f"same detection rate method 2's curve has precision {_f(at)}"
                         + (": above CL, as in the paper." if at >= cl["precision"] else
                            ": **below** CL, unlike the paper's Fig. 4."))
        t3, ref = res["table3"], paper_reference()["table3"]
        ours, theirs = t3["ours_only"], t3["cl_only"]
        text = (f"Table 3: {ours['n_flagged']:,} labels flagged by method 2 only (precision {_f(ours['precision'])}), "
                f"{theirs['n_flagged']:,} by CL only ({_f(theirs['precision'])}), {t3['both']['n_flagged']:,} by both. "
                f"The paper: {ref['ours_only']['n_flagged']:,} ours only ({_f(ref['ours_only']['precision'])}), "
                f"{ref['cl_only']['n_flagged']:,} CL only ({_f(ref['cl_only']['precision'])}), "
                f"{ref['both']['n_flagged']:,} both.")
        if ours["n_flagged"] < theirs["n_flagged"]:
            text += (f" The overlap is **reversed** here: at K = {K} method 2 flags {m2['flagged']:,} labels against "
                     f"CL's {cl['flagged']:,}, so it is the stricter rule and has few labels of its own (the paper "
                     "does not state its K); a larger K moves it toward CL's detection rate.")
        paras.append(text)
    t2 = res["table2"]
    gains = {n: v["gain"] for n, v in t2["models"].items()}
    paras.append(f"Table 2's shape: measured against cleaned labels ({t2['mode']} the flagged ones), every expert's "
                 "test accuracy " + ("rises" if all(g > 0 for g in gains.values()) else "does not always rise")
                 + " (" + ", ".join(f"{n} {d:+.4f}" for n, d in gains.items()) + "); the paper's large–large "
                 f"cascade goes from {100 * paper_reference()['cascades']['large_large']['accuracy']:.3f}% to "
                 f"{100 * paper_reference()['cascades']['large_large']['accuracy_cleaned']:.3f}%.")
    return "\n\n".join(paras)


# ---------------------------------------------------------------------------- the summaries

def cascade_claims(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cascade pair of several chapters: the gain at the fixed K and at the
    cal-chosen K with their verdicts, and CC against UC and RC."""
    rows = []
    for chapter, res in results.items():
        for pair, r in (res or {}).get("pairs", {}).items():
            rows.append({"chapter": chapter, "pair": pair, "n_test": r["n_test"],
                         "gain_at_K": r["gain_at_K"], "K_used": r["K_used"], "verdict_at_K": _verdict(r["gain_at_K"]),
                         "gain_at_K_cal": r["gain_at_K_cal"], "K_cal": r["K_cal"],
                         "verdict_at_K_cal": _verdict(r["gain_at_K_cal"]),
                         "share_cc_at_least_uc": r["share_cc_at_least_uc"],
                         "mean_cc_minus_uc": r["mean_cc_minus_uc"], "noise_half_width": r["noise_half_width"],
                         "share_cc_above_rc": r["share_cc_above_rc"]})
    return rows


def summary_groups(res: dict[str, Any]) -> dict[str, list[str]]:
    """Which models and pairs agree with the paper, by claim (the summary's ``groups``)."""
    ours = [r for r in res["table1"] if r["source"] != "paper"]
    claims = res["cascades"]

    def where(key: str, verdict: str) -> list[str]:
        return [c["pair"] for c in claims if c[key] == verdict]
    below_uc = [c["pair"] for c in claims if c["share_cc_at_least_uc"] is not None and c["share_cc_at_least_uc"] < 0.5]
    return {"models": [r["model"] for r in ours],
            "ece_lowered": [r["model"] for r in ours if r["ECE after"] < r["ECE before"]],
            "ece_raised": [r["model"] for r in ours if r["ECE after"] >= r["ECE before"]],
            "ece_undetectable_after": [r["model"] for r in ours if r.get(DETECTABLE) is not None
                                       and r["ECE after"] < r[DETECTABLE]],
            "pairs": [c["pair"] for c in claims],
            "beats_at_K": where("verdict_at_K", "the cascade beats both models"),
            "loses_at_K": where("verdict_at_K", "the cascade loses to the better model"),
            "beats_at_K_cal": where("verdict_at_K_cal", "the cascade beats both models"),
            "loses_at_K_cal": where("verdict_at_K_cal", "the cascade loses to the better model"),
            "below_uc": below_uc,
            "below_uc_beyond_noise": [c["pair"] for c in claims if c["pair"] in below_uc
                                      and c["mean_cc_minus_uc"] < -c["noise_half_width"]],
            "not_above_rc": [c["pair"] for c in claims if c["share_cc_above_rc"] is not None
                             and c["share_cc_above_rc"] < 1]}


def summary_prose(res: dict[str, Any]) -> str:
    """What agrees with the paper across chapters, from a summary's ``results.json``
    (:func:`calcas.report.summary_report`); the counts are the summary's ``counts``."""
    g, n = res["groups"], res["counts"]

    def pairs(key: str) -> str:
        return f"{n[key]}" + (f" ({', '.join(g[key])})" if g[key] else "")
    paras = []
    if g["models"]:
        paras.append(f"Calibration lowers the test ECE for {n['ece_lowered']} of {n['models']} models, as the "
                     "paper's Table 1 does for both of its models"
                     + (f"; it does not for {', '.join(g['ece_raised'])}, and the calibration chapter says why"
                        if g["ece_raised"] else "") + ".")
        if g.get("ece_undetectable_after"):
            paras[-1] += (f" After calibration the data cannot tell {n['ece_undetectable_after']} of them from a "
                          f"calibrated model ({', '.join(g['ece_undetectable_after'])}): their test ECE is below the "
                          "smallest their test half can detect.")
    if g["pairs"]:
        paras.append(f"Of {n['pairs']} cascade pairs, CC beats both of its models (the paired 95% interval of the "
                     f"gain over the better model above zero) for {n['beats_at_K']} at the fixed K and for "
                     f"{pairs('beats_at_K_cal')} at the K chosen on cal. It loses to the better model for "
                     f"{n['loses_at_K']} at the fixed K and for {pairs('loses_at_K_cal')} at the cal-chosen K; the "
                     "rest are within noise. The paper finds a large–large cascade above both models, and "
                     "small–large cascades close to the large model at a fraction of its calls. CC is below UC at "
                     f"most operating points for {pairs('below_uc')}, by more than the noise of one accuracy for "
                     f"{pairs('below_uc_beyond_noise')}, and not above RC everywhere for {pairs('not_above_rc')}; "
                     "the paper finds CC ≥ UC > RC at every p. Each cascade chapter gives the likely reason, pair "
                     "by pair.")
    else:
        paras.append("No cascade chapter has results on this machine.")
    groups = {r["group"]: r for r in res["table3"] if r["source"] != "paper"}
    if groups:
        ours_only, cl_only = groups["method 2 only"]["flagged"], groups["Confident Learning only"]["flagged"]
        paras.append(f"Table 3: method 2 alone flags {ours_only:,} labels and Confident Learning alone {cl_only:,}; "
                     "in the paper method 2 has far more of its own (994 against 82)"
                     + ("; here the overlap is reversed (the cleaning chapter says why)." if ours_only < cl_only
                        else ", and so it has here."))
    return "\n\n".join(paras)


def redux_prose(res: dict[str, Any]) -> str:
    """The MMLU-Redux chapter's sentences: method 1 (every expert disagrees) and the highlighted k."""
    any_p = res["sweeps"]["any_problem"]
    wrong = res["sweeps"]["wrong_truth"]
    m, k = len(res["experts"]), res["k"]
    i, j = any_p["k"].index(m), any_p["k"].index(k)
    found = res["found_at_k"].get("wrong_groundtruth", {"flagged": 0, "questions": 0})
    return (f"When all {m} experts disagree with the given answer (method 1), {any_p['n_flagged'][i]:,} of "
            f"{res['n']:,} questions are flagged; {_f(any_p['precision'][i])} of them have an annotated problem and "
            f"{_f(wrong['precision'][i])} a wrong ground truth. At k = {k}, {any_p['n_flagged'][j]:,} are flagged, "
            f"including {found['flagged']:,} of the {found['questions']:,} questions whose ground truth is wrong "
            f"(recall {_f(wrong['recall'][j])}). The paper cleans MMLU without a human check of its flags; "
            "MMLU-Redux's audit is that check, for the answers-only version of the method.")


# ---------------------------------------------------------------------------- chains of models

def _share(x: float) -> str:
    """A share of re-splits, with one decimal: "3.0%"."""
    return f"{100 * x:.1f}%"


def _rate_verdict(v: list[float], delta: float) -> str:
    if v[1] > delta:
        return f"**above δ = {_pct(delta)}: the guarantee failed here**"
    if v[0] > delta:
        return f"above δ = {_pct(delta)}, though within noise of it"
    if v[2] > delta:
        return f"within δ = {_pct(delta)}, though the interval reaches above it"
    return f"within δ = {_pct(delta)}"


def _chain_setup(name: str, c: dict[str, Any]) -> str:
    models, costs = c["models"], c["costs"]
    source = "as given in the chapter's parameters" if c["cost_source"] == "given" else f"from {c['cost_source']}"
    alone = ", ".join(f"{models[s['model']]} {_f(s['accuracy'])} (cost {costs[s['model']]:g})" for s in c["singles"])
    return (f"**{name}**: {c['n']:,} rows; costs per call {source}. Test accuracy of each model alone on the first "
            f"re-split: {alone}. Each re-split gives {c['n_cal']:,} rows to cal ({c['n_fit']:,} fit the calibrators, "
            f"bins and frontier; {c['n_certify']:,} certify) and {c['n_test']:,} to test.")


def _chain_guarantee(name: str, c: dict[str, Any], delta: float, n_splits: int) -> str:
    last = c["models"][-1]
    levels = list(c["guarantee"].values())
    rates = [g["violation_rate"] for g in levels]
    verdicts = {_rate_verdict(v, delta) for v in rates}
    listed = "; ".join(f"{_share(v[0])} [{_share(v[1])}, {_share(v[2])}] at {g['max_drop']:g}"
                       for v, g in zip(rates, levels))
    verdict = (f"all {verdicts.pop()}" if len(verdicts) == 1 else
               "; ".join(f"at {g['max_drop']:g} {_rate_verdict(v, delta)}" for v, g in zip(rates, levels)))
    out = [f"**{name}**, {n_splits:,} re-splits. Share of them whose certified cascade lost more than max_drop of "
           f"{last}'s test accuracy: {listed}; {verdict}.",
           "Cost saved against " + last + " alone, the mean and the range of the middle 95% of re-splits: " + "; ".join(
               f"{_pct(g['cost_saved_mean'])} ({_pct(g['cost_saved_quantiles'][0])} to "
               f"{_pct(g['cost_saved_quantiles'][2])}) at {g['max_drop']:g}" for g in levels) + "."]
    alone = [g for g in levels if g["last_alone_share"] >= 0.5]
    if alone:
        out.append(f"Nothing cheaper than {last} could be certified in most re-splits at max_drop = "
                   + ", ".join(f"{g['max_drop']:g} ({_pct(g['last_alone_share'])})" for g in alone) + ".")
    gained = [g for g in levels if g["lost_mean"] < 0]
    if gained:
        drops = ", ".join(f"{g['max_drop']:g}" for g in gained)
        lost = ", ".join(f"{g['lost_mean']:+.3f}" for g in gained)
        out.append(f"At max_drop = {drops} the certified cascade was on average more accurate than {last} alone "
                   f"(accuracy lost {lost}): where a cheaper model is right and the last one is not, the cascade gains.")
    if any(g["cost_saved_quantiles"][0] < 0 for g in levels):
        out.append(f"In some re-splits the certified cascade cost more than {last} alone on test: a configuration is "
                   "tested only when it is cheaper on the fit rows, and on other rows the same configuration can "
                   "send more of them to the dearer stages.")
    return " ".join(out)


def _chain_baselines(name: str, c: dict[str, Any], budget: float, delta: float) -> str:
    from .chain_study import SHORT_NAMES
    b, last = c["baselines"], c["models"][-1]
    out = [f"**{name}** (budget {budget:g} of {last}'s accuracy):"]
    cert = b.get("certified")
    if cert is not None:
        cheaper = [k for k, v in b.items() if k not in ("certified", "oracle")
                   and v["cost_share_mean"] < cert["cost_share_mean"] - 1e-9]
        broke = [k for k in cheaper if b[k]["over_budget"][1] > delta]
        if broke:
            out.append("cheaper than the certified cascade but over budget on test in more than δ of re-splits: "
                       + ", ".join(f"{SHORT_NAMES[k]} ({_f(b[k]['cost_share_mean'])}, over in "
                                   f"{_pct(b[k]['over_budget'][0])})" for k in broke) + ".")
        held = [k for k in cheaper if k not in broke]
        if held:
            out.append("Cheaper and within δ here, with no guarantee that they stay so on other data: "
                       + ", ".join(f"{SHORT_NAMES[k]} ({_f(b[k]['cost_share_mean'])})" for k in held) + ".")
        if not cheaper:
            out.append(f"no method that routes without knowing test correctness was cheaper than the certified "
                       f"cascade ({_f(cert['cost_share_mean'])}).")
        else:
            out.append(f"The certified cascade: {_f(cert['cost_share_mean'])}, over budget in "
                       f"{_pct(cert['over_budget'][0])}.")
    if "oracle" in b:
        out.append(f"The oracle needs {_f(b['oracle']['cost_share_mean'])}.")
    if "uncalibrated" in b and "calibrated" in b:
        u, k = b["uncalibrated"]["cost_share_mean"], b["calibrated"]["cost_share_mean"]
        if _f(u) == _f(k):
            out.append(f"Routing on uncalibrated confidences costs the same ({_f(u)}).")
        elif u > k:
            out.append(f"Routing on uncalibrated confidences costs more ({_f(u)} against {_f(k)}).")
        else:
            out.append(f"Routing on uncalibrated confidences costs less here ({_f(u)} against {_f(k)}).")
    # the first sentence continues the bold header after its colon
    sentences = [t[0].lower() + t[1:] if i == 0 else t[0].upper() + t[1:] for i, t in enumerate(out[1:])]
    return " ".join([out[0], *sentences])


def _frontier_cost(f: dict[str, list[float]], target: float) -> float | None:
    """The cheapest test cost share on a frontier whose test accuracy reaches ``target``."""
    ok = [c for c, a in zip(f["cost_share"], f["accuracy"]) if a >= target - 1e-12]
    return min(ok) if ok else None


def _chain_shortfall(frontiers: dict[str, dict[str, list[float]]], full: str,
                     margin: float = 0.005) -> tuple[str, float, float, float] | None:
    """The pair frontier point the whole chain's test frontier misses by most (more than ``margin``):
    (pair, its cost, its accuracy, the chain's best accuracy at no more cost), or None."""
    chain = frontiers[full]
    worst = None
    for pair, f in frontiers.items():
        if pair == full:
            continue
        for cost, acc in zip(f["cost_share"], f["accuracy"]):
            reach = [a for c, a in zip(chain["cost_share"], chain["accuracy"]) if c <= cost + 1e-12]
            if reach and acc - max(reach) > margin and (worst is None or acc - max(reach) > worst[2] - worst[3]):
                worst = (pair, cost, acc, max(reach))
    return worst


def _chain_middle(name: str, c: dict[str, Any]) -> str | None:
    models, costs = c["models"], c["costs"]
    m = len(models)
    if m < 3:
        return None
    accuracy = {s["model"]: s["accuracy"] for s in c["singles"]}
    drops = list(c["guarantee"].values())
    levels = ", ".join(f"{g['max_drop']:g}" for g in drops)
    out = [f"**{name}**: share of re-splits whose certified cascade calls each cheaper model, at max_drop = {levels}: "
           + "; ".join(f"{models[j]} " + ", ".join(_pct(g["called_share"][j]) for g in drops) for j in range(m - 1))
           + "."]
    for j in range(m - 1):
        if max(g["called_share"][j] for g in drops) == 0:
            later = [k for k in range(j + 1, m - 1) if costs[k] <= costs[j] and accuracy[k] > accuracy[j]]
            if costs[j] >= costs[-1]:
                out.append(f"{models[j]} never pays: one call costs at least as much as {models[-1]}'s ({costs[j]:g} "
                           f"against {costs[-1]:g}), so no configuration that calls it is cheaper than {models[-1]} "
                           "alone.")
            elif later:
                k = later[0]
                out.append(f"{models[j]} never pays: it costs at least as much as {models[k]} ({costs[j]:g} against "
                           f"{costs[k]:g}) and is right less often ({_f(accuracy[j])} against {_f(accuracy[k])}), so "
                           f"every configuration that calls it is matched more cheaply by one that calls {models[k]}.")
    target = accuracy[m - 1] - drops[-1]["max_drop"]
    full = "+".join(str(j) for j in range(m))
    reach = {k: _frontier_cost(f, target) for k, f in c["frontiers"].items()}
    names = {k: " → ".join(models[int(j)] for j in k.split("+")) for k in reach}
    listed = ", ".join(f"{names[k]} {_f(v)}" if v is not None else f"{names[k]} never" for k, v in reach.items())
    out.append(f"On the first re-split's test rows, the cheapest frontier point within {drops[-1]['max_drop']:g} of "
               f"{models[-1]}'s accuracy costs: {listed}.")
    worst = _chain_shortfall(c["frontiers"], full)
    if worst is not None:
        pair, cost, acc, chain_acc = worst
        out.append(f"On test, the whole chain's frontier falls below {names[pair]}'s in places: at a cost of {_f(cost)}, "
                   f"{names[pair]} reaches {_f(acc)}, the whole chain {_f(chain_acc)} at no more cost. On cal the whole "
                   "chain's frontier contains every pair's, but it is chosen among far more configurations, and some "
                   "that win on cal by a small margin lose it on test.")
    pairs = [v for k, v in reach.items() if k != full and v is not None]
    if reach.get(full) is not None and pairs:
        if reach[full] < min(pairs) - 1e-9:
            out.append(f"All {m} models together pay: the whole chain gets there cheaper than any pair.")
        else:
            out.append(f"All {m} models together do not pay here: a pair gets there as cheaply as the whole chain.")
    return " ".join(out)


def _chain_expectations(res: dict[str, Any]) -> str:
    e = res["expectation"]
    d = e["max_drop"]
    out = [f"This chapter was built to reach about {_pct(e['cost_saved'])} of the last model's cost saved at max_drop = "
           f"{d:g}, δ = {e['delta']:g} with about {e['n_cal']:,} cal rows, on a chain of {e['models']} language models with "
           "real per-call prices (a simple valid version of this method is reported to do so)."]
    tested = [n for n in res.get("order", res["chains"]) if f"{d:g}" in res["chains"][n]["guarantee"]]
    if not tested:
        return " ".join(out + [f"This run did not test max_drop = {d:g}, so it says nothing about that target."])
    for name in tested:
        c = res["chains"][name]
        g = c["guarantee"][f"{d:g}"]
        saved = g["cost_saved_mean"]
        verdict = "reaches it" if saved >= e["cost_saved"] else "falls short"
        acc = ", ".join(f"{c['models'][s['model']]} {_f(s['accuracy'])}" for s in c["singles"])
        out.append(f"**{name}** saves {_pct(saved)} at max_drop = {d:g}: it {verdict} (test accuracies alone: {acc}).")
    out.append("Where a chain falls short, its cheaper models are right much less often than its last (the accuracies "
               "above), and the guarantee can only keep what the certifying rows show a cheaper stage gets right. The "
               "oracle row of the baseline table bounds what any router could save on these outputs.")
    return " ".join(out)


def chain_prose(res: dict[str, Any]) -> dict[str, str]:
    """The chain chapter's sentences, by section: ``chains``, ``guarantee``, ``baselines``, ``middle``
    and ``expectations``."""
    p = res["parameters"]
    chains = {n: res["chains"][n] for n in res.get("order", res["chains"])}  # results.json sorts its keys
    middle = [t for t in (_chain_middle(n, c) for n, c in chains.items()) if t]
    return {
        "chains": "\n\n".join(_chain_setup(n, c) for n, c in chains.items()),
        "guarantee": "\n\n".join(_chain_guarantee(n, c, p["delta"], p["n_splits"]) for n, c in chains.items()),
        "baselines": "\n\n".join(_chain_baselines(n, c, p["budget"], p["delta"]) for n, c in chains.items()),
        "middle": "\n\n".join(middle) or "Every chain here has two models: there is no middle stage to weigh.",
        "expectations": _chain_expectations(res),
    }
