"""The report layer and the chapters' prose: numbers checked against direct calls and hand
loops, prose checked against results.json, and the built book's prose regenerated."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

import calcas
from calcas import prose, report
from calcas.params import _rounded

ROOT = Path(__file__).resolve().parents[2]
EXECUTED = ROOT / "book" / "executed"


@pytest.fixture(scope="module")
def synthetic():
    return calcas.make_synthetic(4000, accuracy=(0.7, 0.85, 0.9), confidence_scale=(1.5, 1.0, 0.8),
                                 names=["small", "large", "large_b"], seed=3)


def _tied(n: int = 2000, seed: int = 0) -> tuple[calcas.Records, calcas.Records]:
    """Two confidence-source record sets; the first has 60% of its confidences tied at 1.0."""
    rng = np.random.default_rng(seed)
    ids = [f"q{i:05d}" for i in range(n)]
    c1 = np.where(rng.random(n) < 0.6, 1.0, rng.uniform(0.3, 0.99, n))
    c2 = rng.uniform(0.3, 1.0, n)
    v1 = (rng.random(n) < np.where(c1 == 1.0, 0.95, c1 * 0.8)).astype(float)
    v2 = (rng.random(n) < c2).astype(float)
    make = lambda c, v, m: calcas.make_records(ids, np.zeros(n, int), label=np.where(v == 1, 0, 1), confidence=c,
                                               manifest={"model": m, "dataset": "toy"})
    return make(c1, v1, "tied"), make(c2, v2, "other")


def _flipped(n: int = 3000, scales=(2.0, 0.5, 1.0), flip: float = 0.15, seed: int = 0,
             dataset: str = "toy") -> list[calcas.Records]:
    """Logit record sets whose given labels include flips, with the true labels kept
    (``valid_labels``): one model per scale (> 1 over-confident, < 1 under-confident)."""
    rng = np.random.default_rng(seed)
    C = 5
    true = rng.integers(0, C, n)
    flipped = rng.random(n) < flip
    label = np.where(flipped, (true + rng.integers(1, C, n)) % C, true)
    ids = [f"r{i:05d}" for i in range(n)]
    sets = []
    for j, scale in enumerate(scales):
        logits = scale * (2.0 * np.eye(C)[true] + rng.standard_normal((n, C)))
        sets.append(calcas.make_records(ids, logits.argmax(1), label=label, logits=logits,
                                        valid_labels=[[t] for t in true], is_noisy=flipped,
                                        manifest={"model": f"m{j}", "dataset": dataset}))
    return sets


def _numbers(obj) -> list[float]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, (list, tuple)):
        return [x for v in obj for x in _numbers(v)]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return []
    return [float(obj)]


_CITED = re.compile(r"(Fig(?:ure)?s?\.?|Tables?|§|Algorithm)\s*[\d./()a-f, –-]+")
_NUMBER = re.compile(r"(?<![\w.\-−])[+\-−]?\d[\d,]*(?:\.\d+)?%?(?![\w])")


def assert_prose_numbers_from(text: str, *sources: dict) -> None:
    """Every number in ``text`` is a formatting of a number of ``sources`` (as shown: same
    digits, percentages as x100, thousands separators), apart from citations (Table 3, §2.1)."""
    pool = np.array([x for s in sources for x in _numbers(s) if np.isfinite(x)])
    body = _CITED.sub(" ", text.replace("95%", " "))
    for token in _NUMBER.findall(body):
        t = token.replace(",", "").replace("−", "-")
        pct = t.endswith("%")
        value = float(t.rstrip("%"))
        digits = len(t.rstrip("%").split(".")[1]) if "." in t else 0
        candidates = pool * 100 if pct else pool
        tol = 0.5 * 10 ** -digits + 1e-9
        ok = np.any(np.abs(candidates - value) <= tol) or np.any(np.abs(np.abs(candidates) - abs(value)) <= tol)
        assert ok, f"the number {token!r} in the prose is in no result: {text[:300]}..."


# ---------------------------------------------------------------------------- calibration

def test_calibration_report_matches_direct_calls(synthetic):
    rep = report.calibration_report(list(synthetic.values()), n_boot=20, n_bins=10)
    d = rep.to_dict()
    r = synthetic["large"]
    cal = r.cal_mask()
    fit = calcas.calibrate_records(r, cal)
    m = d["models"]["large"]
    assert m["method"] == "temperature" and m["temperature"] == pytest.approx(fit.calibrator.temperature_)
    assert m["test"]["ece_after"][0] == pytest.approx(calcas.ece(fit.calibrated[~cal], r.verified[~cal], 10))
    assert m["test"]["accuracy"] == pytest.approx(r.verified[~cal].mean())
    assert m["n_cal"] + m["n_test"] == r.n
    # the gap of every over-confident bin: ECE equals mean confidence minus accuracy when all are
    t = m["test"]
    if t["overconfident_bins_before"] == t["n_bins_effective"]:
        assert t["ece_before"][0] == pytest.approx(t["gap_before"])
    assert d["featured"] in d["models"]


def test_detectable_ece_beside_every_ece(synthetic):
    sets = list(synthetic.values())
    rep = report.calibration_report(sets, n_boot=20, n_bins=10)
    table = rep.table()
    for name, r in synthetic.items():
        cal = r.cal_mask()
        for split, m in (("cal", cal), ("test", ~cal)):
            raw = calcas.calibrate_records(r, cal).raw[m]
            bins = len(np.unique(calcas.assign_bins(raw, calcas.equal_count_edges(raw, 10))))
            want = calcas.min_detectable_ece(int(m.sum()), bins, accuracy=r.verified[m].mean())
            assert table.loc[(name, split), report.DETECTABLE] == pytest.approx(want)
    d = rep.to_dict()
    s = d["showcase"]
    assert s["min_detectable_ece"] == pytest.approx(
        calcas.min_detectable_ece(s["n"], s["n_bins_effective"], accuracy=s["accuracy"]))
    summary = report.summary_report({"02_calibration": _rounded(d)}).frames()["table1"]
    ours = summary.loc["02_calibration"]
    assert ours[report.DETECTABLE].tolist() == pytest.approx(
        [d["models"][n]["test"]["min_detectable_ece"] for n in ours.index], abs=1e-6)
    assert summary.loc["paper"][report.DETECTABLE].isna().all()
    summary_dict = report.summary_report({"02_calibration": _rounded(d)}).to_dict()
    below = [n for n, m in d["models"].items() if m["test"]["ece_after"][0] < m["test"]["min_detectable_ece"]]
    assert summary_dict["groups"]["ece_undetectable_after"] == below
    if below:
        assert f"cannot tell {len(below)} of them from a calibrated model" in prose.summary_prose(summary_dict)
    # a split whose accuracy is 0 or 1 has nothing to detect against: no value, not an error
    assert report.detectable_ece(100, 10, 1.0) is None and report.detectable_ece(100, 10, 0.0) is None


def test_prose_says_when_the_data_cannot_tell_a_model_from_a_calibrated_one():
    split = {"n": 400, "n_bins_effective": 10, "min_detectable_ece": 0.05}
    assert "both ECEs lie below it" in prose._detectable("m", split, 0.04, 0.03)
    assert "after calibration the ECE lies below it: the data cannot tell m" in prose._detectable("m", split, 0.2, 0.03)
    assert "both ECEs lie above it" in prose._detectable("m", split, 0.2, 0.08)
    assert prose._detectable("m", {**split, "min_detectable_ece": None}, 0.2, 0.03) == ""


def test_calibration_report_keys_are_snake_case(synthetic):
    d = report.calibration_report([synthetic["small"]], n_boot=5).to_dict()

    def keys(obj, skip=False):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if not skip:
                    yield k
                yield from keys(v, skip=k in ("models", "pairs", "found_at_k", "models_t2"))
    bad = [k for k in keys(d) if not re.fullmatch(r"[a-z][a-z0-9_]*|K|K_[a-z_]+", k)]
    assert not bad, f"display strings as keys: {bad}"


def _entry(dataset, before, after, truth=None):
    return {"dataset": dataset, "test": {"ece_before": [before, 0, 1], "ece_after": [after, 0, 1]},
            "true_labels": truth and {"ece_uncalibrated": truth[0], "ece_temperature_true_labels": truth[1]}}


def test_choose_showcase_follows_the_results_not_the_names():
    # true labels present: the largest fall against them, whatever the fall on the given labels
    models = {"a": _entry("d", 0.3, 0.01, (0.10, 0.05)), "b": _entry("d", 0.1, 0.2, (0.20, 0.01)),
              "c": _entry("d", 0.5, 0.0)}
    assert report.choose_showcase(models) == ("b", "true_labels")
    # no true labels: the largest fall on test; synthetic teaching sets never, while a real one exists
    models = {"syn": _entry("synthetic", 0.9, 0.0), "x": _entry("d", 0.10, 0.08), "y": _entry("d", 0.2, 0.15)}
    assert report.choose_showcase(models) == ("y", "given_labels")
    # every model synthetic, and calibration helping none: the one hurt least
    models = {"s1": _entry("synthetic", 0.1, 0.3), "s2": _entry("synthetic", 0.1, 0.15)}
    assert report.choose_showcase(models) == ("s2", "given_labels")
    with pytest.raises(ValueError, match="models: no models to choose from"):
        report.choose_showcase({})


def test_choose_lesson_is_the_model_that_given_label_calibration_hurts_most():
    def entry(dataset, uncalibrated, given):
        return {"dataset": dataset, "true_labels": {"ece_uncalibrated": uncalibrated,
                                                    "ece_calibrated_given_labels": given}}
    models = {"a": entry("d", 0.10, 0.12), "b": entry("d", 0.02, 0.10), "s": entry("synthetic", 0.0, 0.5),
              "c": {"dataset": "d", "true_labels": None}}
    assert report.choose_lesson(models) == "b"
    assert report.choose_lesson({"s": entry("synthetic", 0.1, 0.05)}) == "s"
    assert report.choose_lesson({"c": models["c"]}) is None


def test_showcase_against_true_labels_matches_a_direct_computation():
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax
    sets = _flipped()
    rep = report.calibration_report(sets, n_boot=50, n_bins=10)
    s = rep.to_dict()["showcase"]
    falls = {}
    for r in sets:
        cal = r.cal_mask()
        test = ~cal
        true = np.array([v[0] for v in r.valid_labels])
        right = (r.pred == true).astype(float)
        # T by a bounded 1-D search of the NLL against the true labels of cal (not calcas' Newton)
        nll = lambda t: -log_softmax(r.logits[cal] / t, axis=1)[np.arange(cal.sum()), true[cal]].mean()
        t_true = minimize_scalar(nll, bounds=(0.05, 20), method="bounded", options={"xatol": 1e-8}).x
        raw = np.exp(log_softmax(r.logits[test], axis=1)).max(1)
        scaled = np.exp(log_softmax(r.logits[test] / t_true, axis=1)).max(1)
        before, after = calcas.ece(raw, right[test], 10), calcas.ece(scaled, right[test], 10)
        falls[r.manifest["model"]] = (before - after, before, after, t_true, right[test], r, test, true)
    name = max(falls, key=lambda k: falls[k][0])
    _, before, after, t_true, right, r, test, true = falls[name]
    assert rep.featured == s["model"] == name and s["verifier"] == "true_labels"
    assert s["temperature"] == pytest.approx(t_true, rel=1e-5)
    assert s["ece_before"][0] == pytest.approx(before) and s["ece_after"][0] == pytest.approx(after, abs=1e-6)
    assert s["ece_before"][1] <= s["ece_before"][2] and s["ece_after"][1] <= s["ece_after"][2]
    assert s["n"] == int(test.sum()) and s["accuracy"] == pytest.approx(right.mean())
    lesson = rep.to_dict()["lesson"]
    rises = {}
    for x in sets:
        tl = rep.to_dict()["models"][x.manifest["model"]]["true_labels"]
        rises[x.manifest["model"]] = tl["ece_calibrated_given_labels"] - tl["ece_uncalibrated"]
    assert lesson["model"] == max(rises, key=rises.get)
    lr = next(x for x in sets if x.manifest["model"] == lesson["model"])
    assert lesson["flipped_share"] == pytest.approx((lr.label[test] != true[test]).mean())
    # the explorer and the figure show the same rows against the same verifier
    conf, correct = rep.explorer_inputs()
    assert np.array_equal(correct, right)
    assert calcas.ece(conf["calibrated"], correct, 10) == pytest.approx(after, abs=1e-6)
    assert rep.showcase_title().endswith("against the true labels")
    tables = rep.lesson_tables()
    given = tables["against the given labels"]["calibrated"]
    assert given["count"].sum() == test.sum()
    assert rep.to_dict()["shown"]["flipped_label_lesson"] is True


def test_showcase_without_true_labels_is_the_largest_fall_on_test(synthetic):
    tied, other = _tied(1500)
    sets = [tied, other, *synthetic.values()]
    d = report.calibration_report(sets, n_boot=20).to_dict()
    falls = {n: m["test"]["ece_before"][0] - m["test"]["ece_after"][0] for n, m in d["models"].items()
             if m["dataset"] != "synthetic"}
    assert d["showcase"]["model"] == max(falls, key=falls.get) and d["showcase"]["verifier"] == "given_labels"
    assert d["shown"]["flipped_label_lesson"] is False and d["lesson"] is None
    m = d["models"][d["featured"]]
    assert d["showcase"]["ece_after"] == m["test"]["ece_after"] and d["showcase"]["ece_before"] == m["test"]["ece_before"]


def test_showcase_prose_says_when_calibration_does_not_help():
    base = {"model": "m", "verifier": "given_labels", "n": 500, "method": "platt", "platt_a": 1.0,
            "platt_b": 0.1, "gap_before": 0.01}
    res = {"models": {"m": {"dataset": "d"}}}
    helped = prose.showcase_prose({**res, "showcase": {**base, "ece_before": [0.2, 0.18, 0.22],
                                                       "ece_after": [0.02, 0.01, 0.04]}})
    assert "visibly helps" in helped and "**not**" not in helped
    within = prose.showcase_prose({**res, "showcase": {**base, "ece_before": [0.05, 0.03, 0.07],
                                                       "ece_after": [0.04, 0.03, 0.06]}})
    assert "does **not** visibly help" in within
    worse = prose.showcase_prose({**res, "showcase": {**base, "ece_before": [0.05, 0.03, 0.07],
                                                      "ece_after": [0.06, 0.04, 0.08]}})
    assert "does **not** help even this model" in worse and "no true labels" in worse


def test_ece_flat_under_bins_when_every_bin_overconfident():
    """MMLU's uncalibrated ECE does not move with N: every bin is over-confident, so ECE is the gap."""
    rng = np.random.default_rng(1)
    c = rng.uniform(0.6, 1.0, 5000)
    v = (rng.random(5000) < c - 0.25).astype(float)
    gap = c.mean() - v.mean()
    for n in (2, 5, 15, 30):
        table = calcas.reliability_table(c, v, n)
        assert (table["mean_confidence"] > table["accuracy"]).all()
        assert calcas.ece(c, v, n) == pytest.approx(gap)


# ---------------------------------------------------------------------------- cascades

def test_cascade_report_numbers_against_a_hand_loop(synthetic):
    rep = report.cascade_report({"pair": [synthetic["small"], synthetic["large"]]}, K=6, n_bins=12)
    r = rep.to_dict()["pairs"]["pair"]
    first, second = calcas.align(synthetic["small"], synthetic["large"])
    cal = first.cal_mask()
    f1, f2 = (calcas.calibrate_records(x, cal) for x in (first, second))
    router = calcas.AdvantageRouter(12).fit(f1.calibrated[cal], f2.calibrated[cal])
    # CC at K and the K chosen on cal, by a plain loop over every K
    def acc(mask, k):
        use = router.route(f1.calibrated[mask], k)
        return np.where(use, first.verified[mask], second.verified[mask]).mean()
    assert r["cc_at_K"][0] == pytest.approx(acc(~cal, 6))
    on_cal = [acc(cal, k) for k in range(r["n_bins_effective"] + 1)]
    assert r["K_cal"] == max(k for k, a in enumerate(on_cal) if a == max(on_cal))
    assert r["cc_at_K_cal"][0] == pytest.approx(acc(~cal, r["K_cal"]))
    better = second if r["better"] == r["second"] else first
    assert r["gain_at_K"][0] == pytest.approx(acc(~cal, 6) - better.verified[~cal].mean())
    assert r["gain_at_K"][1] <= r["gain_at_K"][0] <= r["gain_at_K"][2]
    cc = r["curves"]["CC"]
    assert r["at_K"]["CC"]["accuracy"] == pytest.approx(cc["accuracy"][cc["K"].index(6)])
    assert r["best_cc_accuracy"] == pytest.approx(max(cc["accuracy"]))


def test_cascade_report_fits_each_router_once_per_pair(synthetic, monkeypatch):
    import calcas.cascade as cascade_module
    fits = []
    real = cascade_module._advantage_bins
    monkeypatch.setattr(cascade_module, "_advantage_bins", lambda *a: fits.append(len(a[0])) or real(*a))
    report.cascade_report({"a": [synthetic["small"], synthetic["large"]],
                           "b": [synthetic["large"], synthetic["small"]]}, K=6, n_bins=12)
    n_cal = int(synthetic["small"].cal_mask().sum())
    assert fits == [n_cal] * 4  # UC and CC for each of the two pairs, on the cal rows


def test_cascade_report_with_tied_confidences_caps_K_and_says_so():
    tied, other = _tied()
    rep = report.cascade_report({"tied → other": [tied, other]}, K=15, n_bins=15)
    r = rep.to_dict()["pairs"]["tied → other"]
    assert r["n_bins_effective"] < 15
    assert r["K_used"] == r["n_bins_effective"]
    assert r["tie_value"] == 1.0 or r["tie_share"] > 0.5
    p = r["curves"]["CC"]["p_small"]
    assert np.all(np.diff(p) > 0), "the sweep repeats an operating point"
    text = prose.cascade_prose(_rounded(rep.to_dict()))
    assert f"Only {r['n_bins_effective']} distinct bins" in text
    assert "answers everything" in text


def test_cascade_report_bad_K():
    tied, other = _tied(200)
    with pytest.raises(ValueError, match=r"K: must be <= n_bins \(10\), got 11"):
        report.cascade_report({"p": [tied, other]}, K=11, n_bins=10)


# ---------------------------------------------------------------------------- cleaning

def test_cleaning_report_matches_direct_calls(synthetic):
    sets = list(synthetic.values())
    rep = report.cleaning_report(sets, K=8, n_bins=12)
    d = rep.to_dict()
    cal = sets[0].cal_mask()
    fits = [calcas.calibrate_records(r, cal) for r in sets]
    preds = np.stack([r.pred for r in sets])
    confs = np.stack([f.calibrated for f in fits])
    m2 = calcas.flag_confident_disagreement(preds, confs, sets[0].label, 8, n_bins=12, fit_mask=cal)
    truth = calcas.label_errors(sets[0].label, is_noisy=sets[0].is_noisy)
    assert d["flags"]["method_2"]["flagged"] == int(m2.sum())
    assert d["flags"]["method_2"]["precision"] == pytest.approx(calcas.precision(m2, truth))
    assert d["flags"]["method_1"]["flagged"] == int(calcas.flag_top1_disagreement(preds, sets[0].label).sum())
    assert d["truth"] == "is_noisy" and d["shown"] == {"method3_cl": True, "table3": True, "precision": True,
                                                 "exercises": True}
    t3 = d["table3"]
    assert t3["ours_only"]["n_flagged"] + t3["both"]["n_flagged"] == d["flags"]["method_2"]["flagged"]
    assert t3["cl_only"]["n_flagged"] + t3["both"]["n_flagged"] == d["flags"]["confident_learning"]["flagged"]


def test_cleaning_report_without_probabilities_or_truth_leaves_sections_out():
    tied, other = _tied(600)
    d = report.cleaning_report([tied, other], K=5, n_bins=10).to_dict()
    assert d["truth"] is None and d["table3"] is None
    assert d["shown"] == {"method3_cl": False, "table3": False, "precision": False, "exercises": False}
    text = prose.cleaning_prose(_rounded(d))
    assert "no ground truth" in text


def test_redux_report_bad_k():
    import pandas as pd
    table = pd.DataFrame({"answer": [0, 1], "error_type": ["ok", "wrong_groundtruth"], "a": [0, 0], "b": [1, 0]})
    with pytest.raises(ValueError, match=r"k: must be <= the number of experts \(2\), got 3"):
        report.redux_report(table, ["a", "b"], k=3)
    res = report.redux_report(table, ["a", "b"], k=2)
    assert res["found_at_k"]["wrong_groundtruth"] == {"questions": 1, "flagged": 1, "share_flagged": 1.0}


# ---------------------------------------------------------------------------- prose

def test_every_number_in_the_prose_comes_from_the_results(synthetic):
    sets = list(synthetic.values())
    ref = report.paper_reference()
    cal = _rounded(report.calibration_report(sets, n_boot=10).to_dict())
    assert_prose_numbers_from(prose.calibration_prose(cal), cal, ref)
    assert_prose_numbers_from(prose.showcase_prose(cal), cal, ref)
    truth = _rounded(report.calibration_report(_flipped(), n_boot=10).to_dict())
    for text in (prose.showcase_prose(truth), prose.flipped_label_prose(truth), prose.calibration_prose(truth)):
        assert text
        assert_prose_numbers_from(text, truth, ref)
    casc = _rounded(report.cascade_report({"a": sets[:2], "large-large": sets[1:]}, K=8).to_dict())
    assert_prose_numbers_from(prose.cascade_prose(casc), casc, ref)
    clean = _rounded(report.cleaning_report(sets, K=12).to_dict())
    assert_prose_numbers_from(prose.cleaning_prose(clean), clean, ref)


def test_the_number_check_catches_a_typed_number(synthetic):
    cal = _rounded(report.calibration_report([synthetic["small"]], n_boot=10).to_dict())
    with pytest.raises(AssertionError, match="0.777"):
        assert_prose_numbers_from(prose.calibration_prose(cal) + " The ECE is 0.777.", cal,
                                  report.paper_reference())


def test_prose_says_where_calibration_fails_and_why():
    res = {"parameters": {"n_bins": 15}, "models": {"m": {
        "method": "temperature", "temperature": 1.1, "dataset": "d", "tie_share": 0.01, "tie_value": 0.9,
        "cal": {"ece_after": [0.1, 0.09, 0.11]},
        "test": {"n": 100, "ece_before": [0.07, 0.06, 0.08], "ece_after": [0.1, 0.09, 0.11],
                 "monotonicity_before": 0.9, "n_bins_effective": 15, "overconfident_bins_before": 3,
                 "gap_before": 0.01},
        "true_labels": {"ece_uncalibrated": 0.09, "ece_temperature_true_labels": 0.005}}}}
    text = prose.calibration_prose(res)
    assert "does **not** lower it" in text and "labels are the likely reason" in text


def test_summary_counts_verdicts_at_fixed_and_cal_K_not_best_on_test():
    claims = [{"pair": "a", "verdict_at_K": "the cascade loses to the better model",
               "verdict_at_K_cal": "the cascade beats both models", "share_cc_at_least_uc": 0.2,
               "share_cc_above_rc": 1.0},
              {"pair": "b", "verdict_at_K": "the difference is within noise",
               "verdict_at_K_cal": "the difference is within noise", "share_cc_at_least_uc": 0.9,
               "share_cc_above_rc": 0.5}]
    for c in claims:
        c.update(mean_cc_minus_uc=-0.01, noise_half_width=0.005)
    res = {"table1": [], "cascades": claims, "table3": []}
    groups = prose.summary_groups(res)
    text = prose.summary_prose({**res, "groups": groups, "counts": {k: len(v) for k, v in groups.items()}})
    assert "for 0 at the fixed K and for 1 (a) at the K chosen on cal" in text
    assert "loses to the better model for 1 at the fixed K" in text
    assert "below UC at most operating points for 1 (a)" in text


# ---------------------------------------------------------------------------- the runner

def test_finish_chapter_titles_and_prunes(tmp_path):
    from calcas.run import finish_chapter
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_markdown_cell("## kept")
    gone = nbformat.v4.new_markdown_cell("## true labels")
    gone.metadata["tags"] = ["only-if:true_labels"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Generic title\n\nGeneric text."), keep, gone]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    finish_chapter(path, {"title": "ImageNet: calibration", "opening": "Four public models."},
                   {"shown": {"true_labels": False}})
    out = nbformat.read(path, as_version=4)
    assert out.cells[0].source.startswith("# ImageNet: calibration\n\nFour public models.\n\nGeneric text.")
    assert [c.source for c in out.cells[1:]] == ["## kept"]


def test_chapter_titles_are_unique():
    from calcas.run import chapter_texts
    titles = [t["title"] for t in chapter_texts(ROOT).values()]
    assert len(titles) == len(set(titles))


# ---------------------------------------------------------------------------- the built book

def _prose_outputs(nb) -> list[str]:
    return [o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("metadata", {}).get("calcas") == "prose"]


def _calibration_chapter(res: dict) -> list[str]:
    """The calibration chapter's generated paragraphs, in page order (the lesson only where shown)."""
    lesson = [prose.flipped_label_prose(res)] if res["shown"].get("flipped_label_lesson") else []
    return [prose.showcase_prose(res), *lesson, prose.calibration_prose(res)]


def _one(fn):
    return lambda res: [fn(res)]


PROSE = {"02_calibration": _calibration_chapter, "03_cascading": _one(prose.cascade_prose),
         "04_cleaning": _one(prose.cleaning_prose), "06_mmlu_redux": _one(prose.redux_prose),
         "05_results": _one(prose.summary_prose), "07_public_summary": _one(prose.summary_prose),
         "10_chains": lambda res: list(prose.chain_prose(res).values())}


def test_built_chapters_prose_is_what_their_results_say():
    notebooks = [p for p in EXECUTED.rglob("*.ipynb") if p.stem in PROSE] if EXECUTED.exists() else []
    if not notebooks:
        if os.environ.get("CALCAS_REQUIRE_BOOK"):
            pytest.fail("no executed chapters under book/executed: run `make book` first")
        pytest.skip("the book is not built")
    checked = 0
    for path in notebooks:
        res_path = path.parent / "results.json"
        res = json.loads(res_path.read_text())
        if res.get("data") == "missing":
            continue
        shown = _prose_outputs(nbformat.read(path, as_version=4))
        assert shown, f"{path}: no generated prose"
        assert shown == PROSE[path.stem](res), f"{path}: the page's prose differs from its results.json"
        for text in shown:
            assert_prose_numbers_from(text, res, report.paper_reference())
        checked += 1
    assert checked


def test_reproduce_page_gives_every_public_command_exactly():
    from calcas.run import public_commands
    page = (ROOT / "book" / "reproduce.md").read_text()
    for line in public_commands(ROOT):
        assert line in page, line


def test_summary_names_the_models_the_data_cannot_tell_from_calibrated():
    rows = [{"source": "paper", "model": "p", "ECE before": 0.2, "ECE after": 0.03, report.DETECTABLE: None},
            {"source": "02", "model": "a", "ECE before": 0.2, "ECE after": 0.01, report.DETECTABLE: 0.02},
            {"source": "02", "model": "b", "ECE before": 0.2, "ECE after": 0.05, report.DETECTABLE: 0.02}]
    res = {"table1": rows, "cascades": [], "table3": []}
    groups = prose.summary_groups(res)
    assert groups["ece_undetectable_after"] == ["a"]
    text = prose.summary_prose({**res, "groups": groups, "counts": {k: len(v) for k, v in groups.items()}})
    assert "the data cannot tell 1 of them from a calibrated model (a)" in text
