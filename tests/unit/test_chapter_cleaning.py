"""The cleaning chapter (calcas.chapters.cleaning): numbers against direct calls, cleanlab,
scipy's Wilson interval and hand computation; every verdict's outcome on designed record sets
whose answer is known; facts round-trip results.json; prose names only what its facts hold,
and every number in it is one of theirs; bad inputs are refused with a message."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

import calcas
from calcas.chapters import cleaning
from calcas.chapters.common import paper_reference, table_interval
from calcas.params import write_results

# ---------------------------------------------------------------------------- helpers


def wilson(successes: int, n: int) -> tuple[float, float]:
    """scipy's Wilson score interval: the independent reference for every precision interval."""
    ci = binomtest(int(successes), int(n)).proportion_ci(method="wilson")
    return float(ci.low), float(ci.high)


def _numbers(obj) -> list[float]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, (list, tuple)):
        return [x for v in obj for x in _numbers(v)]
    if isinstance(obj, (bool, str)) or obj is None:
        return []
    return [float(obj)]


# citations of the paper (Table 3, Figure 4a, §3.4), the methods' numbers and "95%" are not data
_NOT_DATA = re.compile(r"(Tables?|Figures?|§|Algorithm|method|Method)\s*[\d.]+[a-f]?|95%")
_TOKEN = re.compile(r"(?<![\w.\-−])[+\-−]?\d[\d,]*(?:\.\d+)?%?")


def assert_numbers_from(text: str, *sources) -> None:
    """Every number in ``text`` is a number of ``sources`` as shown: same digits after rounding,
    percentages as x100, thousands separators dropped."""
    pool = np.array([x for s in sources for x in _numbers(s) if np.isfinite(x)])
    for token in _TOKEN.findall(_NOT_DATA.sub(" ", text)):
        shown = token.rstrip("%").replace(",", "").replace("−", "-")
        value = float(shown)
        digits = len(shown.split(".")[1]) if "." in shown else 0
        scaled = 100 * pool if token.endswith("%") else pool
        assert np.any(np.round(scaled, digits) == value), f"{token!r} is not a number of the facts: {text}"


def _designed(p_high: float, p_low: float, *, n: int = 6000, valid: bool = True, dataset: str = "designed",
              seed: int = 0) -> list[calcas.Records]:
    """Two identical experts (logits) on rows of two confidence regions, half each: high
    (max probability in [0.8, 1), 5% of rows disagreeing with the label) and low ([0.3, 0.6),
    30% disagreeing). A disagreement is a label error (label flipped, the experts right) with
    probability ``p_high`` / ``p_low`` in its region, else an expert's mistake (label right).

    The high region's bins are the most accurate, so method 2 at K = 5 of 10 bins flags the
    high region's disagreements (and a few of the bin that straddles the two regions on cal)
    and method 1 (K = 10) both regions': precision falls as
    more is flagged when p_high > p_low, rises when p_high < p_low, and is the same when equal.
    """
    rng = np.random.default_rng(seed)
    C = 4
    high = np.arange(n) < n // 2
    conf = np.where(high, rng.uniform(0.8, 1.0, n), rng.uniform(0.3, 0.6, n))
    disagree = rng.random(n) < np.where(high, 0.05, 0.3)
    error = disagree & (rng.random(n) < np.where(high, p_high, p_low))
    true = rng.integers(0, C, n)
    label = np.where(error, (true + 1) % C, true)
    pred = np.where(disagree & ~error, (true + 1) % C, true)
    probs = np.where(np.eye(C)[pred] == 1, conf[:, None], ((1 - conf) / (C - 1))[:, None])
    ids = [f"d{i:05d}" for i in range(n)]
    return [calcas.make_records(ids, pred, label=label, logits=np.log(probs), is_noisy=error,
                                valid_labels=[[t] for t in true] if valid else None,
                                manifest={"model": name, "dataset": dataset}) for name in ("alpha", "beta")]


@pytest.fixture(scope="module")
def synthetic() -> list[calcas.Records]:
    made = calcas.make_synthetic(4000, accuracy=(0.7, 0.85, 0.9), confidence_scale=(1.5, 1.0, 0.8),
                                 names=["small", "large", "large_b"], seed=3)
    return list(made.values())


@pytest.fixture(scope="module")
def facts(synthetic) -> cleaning.CleaningFacts:
    return cleaning.compute(synthetic, K=8, n_bins=12)


@pytest.fixture(scope="module")
def falls() -> cleaning.CleaningFacts:
    return cleaning.compute(_designed(1.0, 0.0), K=5, n_bins=10)


# ---------------------------------------------------------------------------- numbers against references

def test_flags_match_direct_calls_cleanlab_and_hand_counts(synthetic, facts):
    cal = synthetic[0].cal_mask()
    fits = [calcas.calibrate_records(r, cal) for r in synthetic]
    preds = np.stack([r.pred for r in synthetic])
    confs = np.stack([f.calibrated for f in fits])
    labels = synthetic[0].label
    truth = synthetic[0].is_noisy.astype(float)
    m2 = calcas.flag_confident_disagreement(preds, confs, labels, 8, n_bins=12, fit_mask=cal)
    method_1 = (preds != labels).all(axis=0)  # by hand
    best = int(np.argmax([r.verified[cal].mean() for r in synthetic]))
    from cleanlab.filter import find_label_issues
    cl = find_label_issues(labels, fits[best].probabilities, filter_by="prune_by_noise_rate")
    for key, flags in (("method_1", method_1), ("method_2", m2), ("confident_learning", cl)):
        f = facts.flags[key]
        wrong = int(truth[flags].sum())
        assert f.flagged == int(flags.sum()) and f.n_rated == f.flagged
        assert f.detection_rate == pytest.approx(flags.mean())
        assert f.precision.value == pytest.approx(wrong / flags.sum())
        assert (f.precision.low, f.precision.high) == pytest.approx(wilson(wrong, flags.sum()))
        assert f.precision.interval == "proportion_interval"
    assert facts.method3_model == synthetic[best].manifest["model"]
    sweep = calcas.cleaning_sweep(preds, confs, labels, n_bins=12, fit_mask=cal, is_error=truth)
    pd.testing.assert_frame_equal(facts.sweep.frame(), sweep, check_dtype=False)
    assert facts.K_used == 8 and not facts.K_capped and facts.truth == "is_noisy"
    assert facts.noise_rate == pytest.approx(truth.mean())
    assert facts.shown == {"method3_cl": True, "table3": True, "precision": True, "exercises": True}


def test_table3_matches_overlap_summary_and_wilson(synthetic, facts):
    t3 = facts.table3
    assert t3.ours_only.n_flagged + t3.both.n_flagged == facts.flags["method_2"].flagged
    assert t3.cl_only.n_flagged + t3.both.n_flagged == facts.flags["confident_learning"].flagged
    cal = synthetic[0].cal_mask()
    fits = [calcas.calibrate_records(r, cal) for r in synthetic]
    preds, confs = np.stack([r.pred for r in synthetic]), np.stack([f.calibrated for f in fits])
    m2 = calcas.flag_confident_disagreement(preds, confs, synthetic[0].label, 8, n_bins=12, fit_mask=cal)
    best = int(np.argmax([r.verified[cal].mean() for r in synthetic]))
    cl = calcas.confident_learning_flags(fits[best].probabilities, synthetic[0].label)
    overlap = calcas.overlap_summary(m2, cl, is_error=synthetic[0].is_noisy, names=("ours", "cl"))
    truth = synthetic[0].is_noisy
    for key, group in (("ours", t3.ours), ("cl", t3.cl), ("ours only", t3.ours_only), ("cl only", t3.cl_only),
                       ("both", t3.both)):
        assert group.n_flagged == overlap.loc[key, "n_flagged"]
        assert group.precision.value == pytest.approx(overlap.loc[key, "precision"], nan_ok=True)
    both = m2 & cl
    assert (t3.both.precision.low, t3.both.precision.high) == pytest.approx(wilson(truth[both].sum(), both.sum()))
    assert t3.method2_flags_fewer == (t3.ours.n_flagged < t3.cl.n_flagged)
    assert t3.fewer_own_flags == (t3.ours_only.n_flagged < t3.cl_only.n_flagged)
    assert t3.reversed_from_paper is None  # the paper has no Table 3 for synthetic data


def test_table2_paired_gain_against_hand_computed_rows():
    sets = _designed(1.0, 0.0)
    facts = cleaning.compute(sets, K=5, n_bins=10, seed=4)
    cal = sets[0].cal_mask(seed=4)
    test = ~cal
    fits = [calcas.calibrate_records(r, cal) for r in sets]
    m2 = calcas.flag_confident_disagreement(np.stack([r.pred for r in sets]), np.stack([f.calibrated for f in fits]),
                                            sets[0].label, 5, n_bins=10, fit_mask=cal)
    true = np.array([v[0] for v in sets[0].valid_labels])
    t2 = facts.table2
    assert t2.mode == "replace" and t2.n_test == int(test.sum())
    for name, r in zip(facts.experts, sets):
        row = t2.models[name]
        right_given = r.pred[test] == r.label[test]
        cleaned_label = np.where(m2, true, r.label)[test]  # by hand: each flagged label replaced by the truth
        right_cleaned = r.pred[test] == cleaned_label
        assert row.given == pytest.approx(right_given.mean())
        assert row.cleaned == pytest.approx(right_cleaned.mean())
        assert row.all_cleaned == pytest.approx((r.pred[test] == true[test]).mean())
        expected = calcas.paired_difference_interval(right_cleaned, right_given, seed=4)
        assert row.gain.as_list() == pytest.approx(list(expected))
        assert row.gain.value == pytest.approx(row.cleaned - row.given)
        assert row.gain.interval == "paired_difference_interval"


def test_table2_drop_mode_decides_nothing():
    facts = cleaning.compute(_designed(1.0, 0.0, valid=False), K=5, n_bins=10)
    for row in facts.table2.models.values():
        assert row.rises is None and row.all_cleaned is None
        assert row.gain.low is None and row.gain.interval == "rows_dropped"
        assert row.gain.value == pytest.approx(row.cleaned - row.given)
    assert facts.table2.mode == "drop"
    assert "cannot lower" in cleaning.prose(facts)["table2"]


# ---------------------------------------------------------------------------- verdicts on designed data

def test_precision_falls_above_when_confident_flags_are_the_errors(falls):
    assert falls.precision_falls.K == 5 and falls.precision_falls.K_all == 10
    v = falls.precision_falls.verdict
    assert v.outcome == "above" and v.estimate.interval == "proportion_difference_interval"
    m2, m1 = falls.flags["method_2"].precision, falls.flags["method_1"].precision
    assert m2.value > 0.95  # the high region's disagreements are all label errors
    assert v.estimate.as_list() == pytest.approx([m2.value - m1.value, m2.low - m1.high, m2.high - m1.low])
    assert "precision falls as more is flagged" in cleaning.prose(falls)["trend"]


def test_precision_falls_below_when_confident_flags_are_mistakes():
    facts = cleaning.compute(_designed(0.0, 1.0), K=5, n_bins=10)
    assert facts.flags["method_2"].precision.value < 0.05
    assert facts.precision_falls.verdict.outcome == "below"
    assert "**rises**" in cleaning.prose(facts)["trend"]


def test_precision_falls_within_when_both_regions_hold_the_same_mix():
    facts = cleaning.compute(_designed(0.5, 0.5), K=5, n_bins=10)
    assert facts.precision_falls.verdict.outcome == "within"
    assert "cannot tell whether precision falls" in cleaning.prose(facts)["trend"]


def test_no_precision_falls_verdict_when_K_keeps_every_bin():
    facts = cleaning.compute(_designed(1.0, 0.0), K=10, n_bins=10)
    assert facts.K_used == facts.n_bins_effective == 10 and facts.precision_falls is None
    assert "no smaller, more confident set of flags" in cleaning.prose(facts)["trend"]


def test_table2_rises_above_when_flags_are_errors_within_when_they_are_not(falls):
    assert {m.rises.outcome for m in falls.table2.models.values()} == {"above"}
    none_wrong = cleaning.compute(_designed(0.0, 1.0), K=5, n_bins=10)  # K = 5 flags only expert mistakes
    for row in none_wrong.table2.models.values():
        assert row.rises.outcome == "within" and row.gain.low == 0.0 and row.gain.value < 0.002
    assert "the data cannot tell a change for alpha and beta" in cleaning.prose(none_wrong)["table2"]


def _with_cl(monkeypatch, flags_of) -> cleaning.CleaningFacts:
    """The designed records with half of every region's disagreements label errors, and
    Confident Learning's flags set by hand: ``flags_of(records)``."""
    sets = _designed(0.5, 0.5)
    monkeypatch.setattr(cleaning, "confident_learning_flags", lambda probabilities, labels: flags_of(sets[0]))
    return cleaning.compute(sets, K=5, n_bins=10)


def test_versus_cl_every_outcome(monkeypatch):
    """CL's flags set by hand: only the experts' mistakes (method 2, half right, is the more
    precise), only the label errors (method 2 the less precise), exactly method 1's flags (the
    same flags at the same detection rate: the data cannot tell)."""
    above = _with_cl(monkeypatch, lambda r: (r.pred != r.label) & ~r.is_noisy).versus_cl
    assert above.verdict.outcome == "above" and above.cl_precision.value == 0.0
    below = _with_cl(monkeypatch, lambda r: r.is_noisy).versus_cl
    assert below.verdict.outcome == "below" and below.cl_precision.value == 1.0
    same = _with_cl(monkeypatch, lambda r: r.pred != r.label)
    v = same.versus_cl
    assert v.verdict.outcome == "within" and v.K == 10 and v.is_method_1
    assert v.precision == v.cl_precision == same.flags["method_1"].precision
    for case in (above, below):  # the sweep point nearest CL's detection rate, by hand
        sweep = pd.DataFrame({"K": same.sweep.K, "rate": same.sweep.detection_rate})
        nearest = sweep.loc[(sweep["rate"] - case.cl_detection_rate).abs().idxmin()]
        assert case.K == nearest["K"] and case.detection_rate == pytest.approx(nearest["rate"])
        assert not case.is_method_1
        assert case.verdict.estimate.as_list() == pytest.approx(
            [case.precision.value - case.cl_precision.value, case.precision.low - case.cl_precision.high,
             case.precision.high - case.cl_precision.low])


def test_paper_claims_only_for_the_papers_data_set(monkeypatch):
    imagenet = cleaning.compute(_designed(1.0, 0.0, dataset="imagenet-designed"), K=5, n_bins=10)
    assert imagenet.paper_dataset == "imagenet"
    assert imagenet.paper_claims["precision_falls_with_detection_rate"] == "agrees"
    assert set(imagenet.paper_claims) == set(paper_reference()["datasets"]["imagenet"]["cleaning"]["claims"])
    rises = cleaning.compute(_designed(0.0, 1.0, dataset="imagenet-designed"), K=5, n_bins=10)
    assert rises.paper_claims["precision_falls_with_detection_rate"] == "disagrees"
    same = cleaning.compute(_designed(0.5, 0.5, dataset="imagenet-designed"), K=5, n_bins=10)
    assert same.paper_claims["precision_falls_with_detection_rate"] == "cannot_tell"
    text = cleaning.prose(rises)["paper"]
    assert "the opposite holds" in text and "90.116%" in text and "96.266%" in text
    toy = cleaning.compute(_designed(1.0, 0.0), K=5, n_bins=10)
    assert toy.paper_dataset is None and toy.paper_claims == {}
    text = cleaning.prose(toy)["paper"]
    assert "makes no cleaning claim about designed" in text and "90.116" not in text
    arc = cleaning.compute(_designed(1.0, 0.0, dataset="arc-challenge"), K=5, n_bins=10)
    assert arc.paper_dataset is None  # the paper makes cascading claims about ARC, no cleaning claim


# ---------------------------------------------------------------------------- without probabilities or truth

def _tied(n: int = 600, seed: int = 0) -> list[calcas.Records]:
    """Two confidence-only record sets without ground truth; the first has 60% of its
    confidences tied at 1.0 (so few bins form)."""
    rng = np.random.default_rng(seed)
    ids = [f"q{i:05d}" for i in range(n)]
    c1 = np.where(rng.random(n) < 0.6, 1.0, rng.uniform(0.3, 0.99, n))
    c2 = rng.uniform(0.3, 1.0, n)
    v1 = (rng.random(n) < np.where(c1 == 1.0, 0.95, c1 * 0.8)).astype(float)
    v2 = (rng.random(n) < c2).astype(float)
    make = lambda c, v, m: calcas.make_records(ids, np.zeros(n, int), label=np.where(v == 1, 0, 1),  # noqa: E731
                                               confidence=c, manifest={"model": m, "dataset": "toy"})
    return [make(c1, v1, "tied"), make(c2, v2, "other")]


def test_without_probabilities_or_truth_sections_and_verdicts_are_left_out():
    facts = cleaning.compute(_tied(), K=10, n_bins=10)
    assert facts.truth is None and facts.table3 is None and facts.versus_cl is None
    assert facts.precision_falls is None and facts.n_rated is None
    assert facts.shown == {"method3_cl": False, "table3": False, "precision": False, "exercises": False}
    assert set(facts.flags) == {"method_1", "method_2"}
    assert facts.flags["method_2"].precision.as_list() == [None, None, None]
    assert facts.K_capped == (facts.K_used < 10) and facts.K_used == facts.n_bins_effective
    text = cleaning.prose(facts)
    assert "no ground truth" in text["flags"] and "only the top-1 confidence" in text["flags"]
    assert cleaning.figures(facts) == {}
    shown = cleaning.tables(facts)
    assert list(shown["flags"].columns) == ["flagged", "detection rate"]
    assert shown["table3"].empty and shown["comparisons"].empty


# ---------------------------------------------------------------------------- results.json, tables, figures

def test_facts_round_trip_through_results_json(facts, tmp_path):
    path = write_results(tmp_path, facts.to_dict())
    written = json.loads(path.read_text())
    back = cleaning.CleaningFacts.from_dict(written)
    assert json.loads(json.dumps(back.to_dict())) == written
    assert back.versus_cl.verdict.outcome == facts.versus_cl.verdict.outcome
    assert cleaning.prose(back) == cleaning.prose(facts)  # in the experts' order, though the file sorts keys
    for name, table in cleaning.tables(facts).items():
        pd.testing.assert_frame_equal(cleaning.tables(back)[name], table, check_exact=False, atol=1e-6)
    with pytest.raises(ValueError, match=r"CleaningFacts: unknown keys \['extra'\]"):
        cleaning.CleaningFacts.from_dict({**written, "extra": 1})


def test_tables_show_the_facts(falls):
    shown = cleaning.tables(falls)
    flags = shown["flags"]
    m2 = falls.flags["method_2"]
    assert flags.loc[m2.label, "flagged"] == m2.flagged
    assert flags.loc[m2.label, "precision [95%]"] == table_interval(m2.precision)
    table2 = shown["table2"]
    alpha = falls.table2.models["alpha"]
    assert table2.loc["alpha", "change [95%]"] == table_interval(alpha.gain, signed=True)
    comparisons = shown["comparisons"]
    row = comparisons.loc["precision: method 2 at K = 5 minus method 1"]
    assert row["interval"] == "above 0"
    assert row["difference [95%]"] == table_interval(falls.precision_falls.verdict.estimate, 3, signed=True)
    assert len(comparisons) == 1 + 1 + 2  # precision falls, versus CL, one row per expert


def test_figure_and_explorer_draw_from_facts_alone(falls):
    import matplotlib.pyplot as plt
    fig = cleaning.figures(falls)["precision_detection"]
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:3] == ["method 2, 2 experts", "method 2, alpha alone", "method 2, beta alone"]
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), falls.sweep.detection_rate)
    plt.close(fig)
    spec = cleaning.explorers(falls)["sweep"].to_dict()
    assert json.dumps(spec).count("method 2, 2 experts") >= 1


# ---------------------------------------------------------------------------- prose

def test_every_number_in_the_prose_comes_from_the_facts(facts, falls, tmp_path):
    for f in (facts, falls, cleaning.compute(_designed(0.0, 1.0, dataset="imagenet-designed"), K=5, n_bins=10)):
        written = json.loads(write_results(tmp_path, f.to_dict()).read_text())
        for text in cleaning.prose(f).values():
            assert_numbers_from(text, written, paper_reference())
        assert cleaning.prose(cleaning.CleaningFacts.from_dict(written)) == cleaning.prose(f)  # keys sorted in file


def test_the_number_check_catches_a_typed_number(falls):
    with pytest.raises(AssertionError, match="0.777"):
        assert_numbers_from(cleaning.prose(falls)["flags"] + " Precision is 0.777.", falls.to_dict())


#: Names the prose of another data set must never use: the paper's data sets and models, and
#: the book's own experts.
FOREIGN = ("ImageNet", "MMLU", "MNIST", "mnist1d", "EVA", "LLaMA", "Llama", "Qwen", "GPT", "ViT", "DINO", "ResNet",
           "mlp", "cnn", "ARC", "GSM8K", "ReaL", "small", "large")


def test_prose_of_a_second_synthetic_data_set_names_only_what_its_facts_hold(monkeypatch):
    sets = calcas.make_synthetic(3000, accuracy=(0.8, 0.85), confidence_scale=(1.2, 0.9), flip_rate=0.1,
                                 names=["gizmo", "widget"], seed=11)
    facts = cleaning.compute(list(sets.values()), K=9, n_bins=12)
    text = " ".join(cleaning.prose(facts).values())
    for name in FOREIGN:
        assert not re.search(rf"\b{re.escape(name)}\b", text, re.I), name
    assert "gizmo" in text and "widget" in text and "synthetic" in text
    named_models = set(re.findall(r"\b(gizmo|widget)\b", text))
    assert named_models <= set(facts.experts)


# ---------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("kwargs, message", [
    ({"K": 11, "n_bins": 10}, r"K: must be in \[1, n_bins\] = \[1, 10\], got 11"),
    ({"K": 0}, r"K: must be in \[1, n_bins\] = \[1, 15\], got 0"),
    ({"K": 2.5}, r"K: expected an integer"),
    ({"n_bins": 0}, r"n_bins"),
    ({"calibration": "isotonic"}, r"calibration: expected one of \('auto', 'temperature', 'platt'\), got 'isotonic'"),
    ({"cal_fraction": 1.0}, r"cal_fraction: must be in \(0, 1\), got 1.0"),
])
def test_bad_parameters_are_refused_with_a_message(synthetic, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cleaning.compute(synthetic, **kwargs)


@pytest.mark.parametrize("experts", [[], "records.parquet"])
def test_experts_must_be_a_non_empty_list(experts):
    with pytest.raises(ValueError, match=r"experts: expected a non-empty list of record sets"):
        cleaning.compute(experts)
