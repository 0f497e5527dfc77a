"""Tests of calcas.cleaning (SPEC §4, Algorithm 2).

References: hand-computed cases, a slow loop implementation of method 2 written here, and
cleanlab's find_label_issues called directly.
"""
from __future__ import annotations

import numpy as np
import pytest
from cleanlab.filter import find_label_issues
from scipy.special import softmax as scipy_softmax

import calcas
from calcas import (cleaned_accuracy, cleaning_sweep, confident_disagreement_level,
                    confident_learning_flags, flag_class_threshold, flag_confident_disagreement,
                    flag_top1_disagreement, label_errors, overlap_summary, precision)
from calcas.cleaning import accuracy_bin_ranks


# ----------------------------------------------------------------------------------------
# Method 1
# ----------------------------------------------------------------------------------------

def test_method1_one_expert():
    preds = np.array([0, 1, 2, 2])
    labels = np.array([0, 2, 2, 1])
    # expert disagrees with the label on samples 1 and 3
    np.testing.assert_array_equal(flag_top1_disagreement(preds, labels), [False, True, False, True])
    np.testing.assert_array_equal(flag_top1_disagreement(preds[None, :], labels), [False, True, False, True])


def test_method1_two_experts():
    preds = np.array([[0, 1, 2, 1, 0],
                      [1, 1, 0, 2, 0]])
    labels = np.array([0, 0, 0, 1, 2])
    # sample 0: expert 0 agrees -> no; 1: both say 1 != 0 -> yes; 2: 2,0 -> expert 1 agrees -> no
    # sample 3: expert 0 agrees -> no; 4: both say 0 != 2 -> yes
    np.testing.assert_array_equal(flag_top1_disagreement(preds, labels), [False, True, False, False, True])


def test_method1_three_experts():
    preds = np.array([[1, 1, 2, 3],
                      [2, 0, 2, 3],
                      [3, 1, 1, 0]])
    labels = np.array([0, 1, 0, 3])
    # sample 0: 1,2,3 vs 0 -> all disagree -> yes
    # sample 1: expert 0 says 1 = label -> no
    # sample 2: 2,2,1 vs 0 -> yes (experts need not agree with each other)
    # sample 3: experts 0 and 1 say 3 = label -> no
    np.testing.assert_array_equal(flag_top1_disagreement(preds, labels), [True, False, True, False])


def test_method1_bad_input():
    with pytest.raises(ValueError, match="length mismatch"):
        flag_top1_disagreement(np.array([[0, 1, 2]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        flag_top1_disagreement(np.array([0, 1]), np.array([0, -1]))


# ----------------------------------------------------------------------------------------
# Method 2: slow reference
# ----------------------------------------------------------------------------------------

def ref_expert_bins(conf_fit, correct_fit, n_bins):
    """Equal-count bins on the fit rows; bins ranked by accuracy (desc), ties by mean conf (desc).

    Bins are made of whole runs of equal confidences: the possible cuts are the ends of the
    runs (cumulative counts of the distinct values); each np.array_split cut is replaced by
    the nearest of them (the smaller on a tie), repeated cuts count once.
    """
    values, run_lengths = np.unique(conf_fit, return_counts=True)
    run_ends = list(np.cumsum(run_lengths)[:-1])
    ideal = np.cumsum([len(g) for g in np.array_split(np.arange(len(conf_fit)), n_bins)])[:-1]
    cuts = sorted({min(run_ends, key=lambda e: (abs(e - j), e)) for j in ideal} if run_ends else set())
    s = np.sort(conf_fit)
    interior = [(s[j - 1] + s[j]) / 2.0 for j in cuts]
    n_bins = len(cuts) + 1

    def bin_of(c):
        return sum(1 for e in interior if c >= e)

    hits = [0.0] * n_bins
    confs = [0.0] * n_bins
    counts = [0] * n_bins
    for c, v in zip(conf_fit, correct_fit):
        b = bin_of(c)
        hits[b] += v
        confs[b] += c
        counts[b] += 1

    def key(b):
        if counts[b] == 0:
            return (1, 0.0, 0.0)
        return (0, -hits[b] / counts[b], -confs[b] / counts[b])

    ranked = sorted(range(n_bins), key=key)
    return bin_of, ranked


def ref_method2_flags(preds, confs, labels, K, n_bins, fit_mask):
    m, n = preds.shape
    experts = []
    for j in range(m):
        bin_of, ranked = ref_expert_bins(confs[j][fit_mask], (preds[j][fit_mask] == labels[fit_mask]).astype(float),
                                         n_bins)
        experts.append((bin_of, set(ranked[:K])))
    flags = np.zeros(n, dtype=bool)
    for i in range(n):
        ok = True
        for j in range(m):
            bin_of, top = experts[j]
            if preds[j][i] == labels[i] or bin_of(confs[j][i]) not in top:
                ok = False
                break
        flags[i] = ok
    return flags


@pytest.fixture(scope="module")
def experts():
    n = 600
    sets = calcas.make_synthetic(n, n_classes=4, accuracy=(0.75, 0.85, 0.9), confidence_scale=(1.0, 1.2, 0.8),
                                 correlation=0.2, flip_rate=0.15, seed=5)
    records = list(sets.values())
    probs = [scipy_softmax(r.logits.astype(float), axis=1) for r in records]
    preds = np.stack([p.argmax(axis=1) for p in probs])
    confs = np.stack([p.max(axis=1) for p in probs])
    labels = records[0].label
    is_noisy = records[0].is_noisy
    fit_mask = np.zeros(n, dtype=bool)
    fit_mask[np.random.default_rng(1).permutation(n)[: n // 2]] = True
    return preds, confs, labels, is_noisy, fit_mask, probs


@pytest.mark.parametrize("n_bins", [1, 5, 12])
def test_method2_flags_match_slow_reference(experts, n_bins):
    preds, confs, labels, _, fit_mask, _ = experts
    for K in range(1, n_bins + 1):
        expected = ref_method2_flags(preds, confs, labels, K, n_bins, fit_mask)
        got = flag_confident_disagreement(preds, confs, labels, K, n_bins=n_bins, fit_mask=fit_mask)
        np.testing.assert_array_equal(got, expected)
    # K = N is method 1; K = 0 flags nothing
    np.testing.assert_array_equal(
        flag_confident_disagreement(preds, confs, labels, n_bins, n_bins=n_bins, fit_mask=fit_mask),
        np.all(preds != labels[None, :], axis=0))
    assert not flag_confident_disagreement(preds, confs, labels, 0, n_bins=n_bins, fit_mask=fit_mask).any()


def test_method2_level_matches_reference(experts):
    preds, confs, labels, _, fit_mask, _ = experts
    n_bins = 8
    level = confident_disagreement_level(preds, confs, labels, n_bins=n_bins, fit_mask=fit_mask)
    flags_by_k = {K: ref_method2_flags(preds, confs, labels, K, n_bins, fit_mask) for K in range(1, n_bins + 1)}
    for i in range(len(labels)):
        flagged_at = [K for K in range(1, n_bins + 1) if flags_by_k[K][i]]
        expected = min(flagged_at) if flagged_at else n_bins + 1
        assert level[i] == expected


def test_method2_without_fit_mask_uses_all_rows(experts):
    preds, confs, labels, _, _, _ = experts
    all_rows = np.ones(len(labels), dtype=bool)
    for K in (1, 3, 6):
        np.testing.assert_array_equal(flag_confident_disagreement(preds, confs, labels, K, n_bins=6),
                                      ref_method2_flags(preds, confs, labels, K, 6, all_rows))


def test_method2_reference_with_tied_confidences():
    rng = np.random.default_rng(4)
    n, n_bins = 300, 9
    labels = rng.integers(0, 3, n)
    preds = np.stack([np.where(rng.random(n) < 0.6, labels, rng.integers(0, 3, n)) for _ in range(2)])
    confs = rng.integers(1, 6, (2, n)) / 5          # coarse grid: runs of ties, fewer bins formed
    fit_mask = rng.random(n) < 0.5
    level = confident_disagreement_level(preds, confs, labels, n_bins=n_bins, fit_mask=fit_mask)
    assert level.min() >= 1 and level.max() <= n_bins + 1
    assert level[level <= n_bins].max() <= 5      # at most 5 bins (5 grid values) per expert
    for K in range(1, n_bins + 1):
        expected = ref_method2_flags(preds, confs, labels, K, n_bins, fit_mask)
        np.testing.assert_array_equal(level <= K, expected)
        np.testing.assert_array_equal(
            flag_confident_disagreement(preds, confs, labels, K, n_bins=n_bins, fit_mask=fit_mask), expected)
    assert (level <= n_bins).any()


def test_accuracy_bin_ranks_under_ties():
    # sorted: 0.2 0.2 0.2 0.2 | 0.6 | 0.9 0.9 0.9; 4 bins asked for (cuts 2, 4, 6):
    # 2 -> 4 (run 0..3: upper end 4 nearer than 0, which is the array's start), 4 stays,
    # 6 -> 5 (run 5..7, upper end is the array's end): 3 bins
    conf = np.array([0.9, 0.2, 0.6, 0.2, 0.9, 0.2, 0.2, 0.9])
    correct = np.array([1, 0, 1, 1, 0, 0, 1, 1])
    edges, rank = accuracy_bin_ranks(conf, correct, 4)
    np.testing.assert_allclose(edges, [-np.inf, 0.4, 0.75, np.inf], rtol=1e-15)
    # accuracy: bin 0 = 2/4, bin 1 = 1/1, bin 2 = 2/3 -> ranks 2, 0, 1
    np.testing.assert_array_equal(rank, [2, 0, 1])
    edges, rank = accuracy_bin_ranks(np.full(8, 0.5), correct, 4)  # one run: one bin
    np.testing.assert_array_equal(edges, [-np.inf, np.inf])
    np.testing.assert_array_equal(rank, [0])


def test_cleaning_sweep_k_range_under_ties():
    rng = np.random.default_rng(8)
    n, n_bins = 400, 10
    labels = rng.integers(0, 4, n)
    preds = np.stack([np.where(rng.random(n) < 0.5, labels, rng.integers(0, 4, n)) for _ in range(3)])
    confs = np.stack([rng.integers(1, 5, n) / 4,                  # 4 distinct values: <= 4 bins
                      np.where(rng.random(n) < 0.6, 1.0, rng.random(n)),  # a run of 1.0
                      rng.random(n)])                             # no ties: 10 bins
    fit_mask = rng.random(n) < 0.5
    is_error = rng.random(n) < 0.3
    own_bins = [len(accuracy_bin_ranks(c[fit_mask], p[fit_mask] == labels[fit_mask], n_bins)[1])
                for p, c in zip(preds, confs)]
    assert own_bins[0] <= 4 and own_bins[1] < n_bins and own_bins[2] == n_bins
    for experts in ([0], [1], [0, 1], [0, 1, 2]):
        sweep = cleaning_sweep(preds[experts], confs[experts], labels, n_bins=n_bins, fit_mask=fit_mask,
                               is_error=is_error)
        most = max(own_bins[j] for j in experts)
        assert list(sweep["K"]) == list(range(most, 0, -1))
        for _, row in sweep.iterrows():
            flags = ref_method2_flags(preds[experts], confs[experts], labels, int(row["K"]), n_bins, fit_mask)
            assert row["n_flagged"] == flags.sum()
            assert row["n_rated"] == flags.sum()
        # K = M is method 1 (every expert keeps all its bins); a larger K flags the same
        method1 = flag_top1_disagreement(preds[experts], labels)
        assert sweep["n_flagged"].iloc[0] == method1.sum()
        for K in range(most, n_bins + 1):
            np.testing.assert_array_equal(
                flag_confident_disagreement(preds[experts], confs[experts], labels, K, n_bins=n_bins,
                                            fit_mask=fit_mask), method1)


def test_method2_bad_k_and_fit_mask():
    conf = np.linspace(0.1, 0.9, 8)
    pred, label = np.zeros(8, int), np.ones(8, int)
    with pytest.raises(ValueError, match=r"^K: must be in \[0, 3\] \(the number of bins\), got 4"):
        flag_confident_disagreement(pred, conf, label, 4, n_bins=3)
    with pytest.raises(ValueError, match=r"^fit_mask: selects no rows"):
        confident_disagreement_level(pred, conf, label, n_bins=3, fit_mask=np.zeros(8, bool))
    with pytest.raises(ValueError, match=r"^n_bins: 5 bins need at least as many samples, got 4"):
        cleaning_sweep(pred, conf, label, n_bins=5, fit_mask=np.arange(8) < 4)


def test_method2_accuracy_tie_goes_to_higher_confidence():
    # one expert, 2 bins of 4 fit rows; both bins have accuracy 0.5 -> the higher-confidence bin
    # (bin 1) is the top-1 bin. Sample 7 (conf 0.9, disagrees) is flagged at K=1, sample 0
    # (conf 0.1, disagrees) only at K=2.
    conf = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    pred = np.array([1, 0, 1, 0, 0, 0, 0, 1])
    label = np.array([0, 0, 0, 0, 0, 1, 0, 0])
    # bin 0 correct: [F, T, F, T] -> 0.5; bin 1 correct: [T, F, T, F] -> 0.5
    level = confident_disagreement_level(pred, conf, label, n_bins=2)
    #          agree -> 3 (never); disagree in bin 0 -> 2; disagree in bin 1 -> 1
    np.testing.assert_array_equal(level, [2, 3, 2, 3, 3, 1, 3, 1])
    np.testing.assert_array_equal(flag_confident_disagreement(pred, conf, label, 1, n_bins=2),
                                  [False, False, False, False, False, True, False, True])


def test_cleaning_sweep_matches_hand_computation(experts):
    preds, confs, labels, is_noisy, fit_mask, _ = experts
    n_bins = 10
    sweep = cleaning_sweep(preds, confs, labels, n_bins=n_bins, fit_mask=fit_mask, is_error=is_noisy)
    assert list(sweep["K"]) == list(range(n_bins, 0, -1))
    n = len(labels)
    for _, row in sweep.iterrows():
        flags = ref_method2_flags(preds, confs, labels, int(row["K"]), n_bins, fit_mask)
        assert row["n_flagged"] == flags.sum()
        assert row["detection_rate"] == pytest.approx(flags.sum() / n, abs=1e-12)
        assert row["n_rated"] == flags.sum()
        if flags.sum():
            assert row["precision"] == pytest.approx(is_noisy[flags].sum() / flags.sum(), abs=1e-12)
        else:
            assert np.isnan(row["precision"])
    assert np.all(np.diff(sweep["n_flagged"].to_numpy()) <= 0)   # fewer flags as K decreases
    assert sweep["n_flagged"].iloc[0] > sweep["n_flagged"].iloc[-1]
    # with injected noise and calibrated experts precision improves from K=N to small K
    assert sweep["precision"].iloc[0] > 0.5


def test_cleaning_sweep_with_unknown_truth(experts):
    preds, confs, labels, is_noisy, fit_mask, _ = experts
    truth = is_noisy.astype(float)
    truth[::3] = np.nan
    sweep = cleaning_sweep(preds, confs, labels, n_bins=5, fit_mask=fit_mask, is_error=truth)
    for _, row in sweep.iterrows():
        flags = ref_method2_flags(preds, confs, labels, int(row["K"]), 5, fit_mask)
        known = flags & ~np.isnan(truth)
        assert row["n_flagged"] == flags.sum()
        assert row["n_rated"] == known.sum()
        assert row["precision"] == pytest.approx(truth[known].sum() / known.sum(), abs=1e-12)
    no_truth = cleaning_sweep(preds, confs, labels, n_bins=5, fit_mask=fit_mask)
    assert no_truth["precision"].isna().all()
    assert (no_truth["n_rated"] == 0).all()


# ----------------------------------------------------------------------------------------
# Method 3
# ----------------------------------------------------------------------------------------

def test_method3_hand_computed():
    P = np.array([[0.70, 0.20, 0.10],   # label 0
                  [0.50, 0.45, 0.05],   # label 0
                  [0.62, 0.38, 0.00],   # label 1
                  [0.65, 0.30, 0.05],   # label 1
                  [0.10, 0.30, 0.60]])  # label 2
    labels = np.array([0, 0, 1, 1, 2])
    # thresholds: t(0) = (0.70 + 0.50)/2 = 0.60; t(1) = (0.38 + 0.30)/2 = 0.34; t(2) = 0.60
    # row 0: C = {0}            -> argmax 0 = label           -> not flagged
    # row 1: C = {1} (0.45)     -> 1 != 0                     -> flagged
    # row 2: C = {0, 1}         -> argmax 0 (0.62) != 1        -> flagged (label is a candidate)
    # row 3: C = {0}            -> 0 != 1                     -> flagged
    # row 4: C = {} (0.6 is not > 0.6)                        -> not flagged
    np.testing.assert_array_equal(flag_class_threshold(P, labels), [False, True, True, True, False])


def test_method3_class_without_labels_is_never_a_candidate():
    P = np.array([[0.1, 0.1, 0.8],
                  [0.6, 0.3, 0.1],
                  [0.2, 0.7, 0.1],
                  [0.4, 0.5, 0.1]])
    labels = np.array([0, 0, 1, 1])   # nobody is labelled 2
    # t(0) = (0.1 + 0.6)/2 = 0.35, t(1) = (0.7 + 0.5)/2 = 0.6, class 2: no threshold
    # row 0: C = {} (0.1, 0.1 below; class 2 excluded) -> no
    # row 1: C = {0} -> label -> no;  row 2: C = {1} -> label -> no
    # row 3: C = {0} (0.4 > 0.35; 0.5 not > 0.6) -> 0 != 1 -> flagged
    np.testing.assert_array_equal(flag_class_threshold(P, labels), [False, False, False, True])


def test_method3_bad_input():
    with pytest.raises(ValueError, match="probabilities"):
        flag_class_threshold(np.array([[0.5, 1.5]]), np.array([0]))
    with pytest.raises(ValueError, match="labels"):
        flag_class_threshold(np.array([[0.5, 0.5]]), np.array([2]))


# ----------------------------------------------------------------------------------------
# Confident Learning through cleanlab
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("filter_by", ["prune_by_noise_rate", "prune_by_class", "both"])
def test_confident_learning_equals_cleanlab(experts, filter_by):
    _, _, labels, _, _, probs = experts
    P = probs[0]
    expected = find_label_issues(labels, P, filter_by=filter_by)
    got = confident_learning_flags(P, labels, filter_by=filter_by)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, np.asarray(expected, dtype=bool))
    assert got.sum() > 0


def test_confident_learning_default_is_prune_by_noise_rate(experts):
    _, _, labels, _, _, probs = experts
    P = probs[1]
    expected = find_label_issues(labels, P, filter_by="prune_by_noise_rate")
    np.testing.assert_array_equal(confident_learning_flags(P, labels), expected)


# ----------------------------------------------------------------------------------------
# Ground truth, precision, overlap, cleaned accuracy
# ----------------------------------------------------------------------------------------

def test_label_errors_from_is_noisy_and_valid_labels():
    np.testing.assert_array_equal(label_errors(np.array([0, 1, 2]), is_noisy=np.array([True, False, True])),
                                  [1.0, 0.0, 1.0])
    truth = label_errors(np.array([0, 0, 1, 3]), valid_labels=[[0], [1, 2], [], [3, 4]])
    # 0 in {0} -> right; 0 not in {1,2} -> wrong; empty -> unknown; 3 in {3,4} -> right
    assert truth[0] == 0.0 and truth[1] == 1.0 and np.isnan(truth[2]) and truth[3] == 0.0
    with pytest.raises(ValueError, match="exactly one"):
        label_errors(np.array([0]))
    with pytest.raises(ValueError, match="valid_labels"):
        label_errors(np.array([0, 1]), valid_labels=[[0]])


def test_precision_ignores_unknown_truth():
    flags = np.array([True, True, True, False, True])
    truth = np.array([1.0, 0.0, np.nan, 1.0, 1.0])
    # flagged and known: samples 0, 1, 4 -> 2 of 3 wrong
    assert precision(flags, truth) == pytest.approx(2 / 3)
    assert np.isnan(precision(np.zeros(5, bool), truth))
    assert np.isnan(precision(np.array([False, False, True, False, False]), truth))


@pytest.mark.parametrize("flags, truth, match", [
    ([1, 0, 1], [7, 0, 1], r"is_error: values must be 0, 1 or NaN \(unknown\), found 7.0 at row 0"),
    ([1, 0, 1], [1, 0, 0.5], "found 0.5 at row 2"),
    ([2, 0, 1], [1, 0, 1], r"flags: expected booleans \(or 0/1\), got dtype int64 with values \[0, 1, 2\]"),
    (["a", "b", "c"], [1, 0, 1], "flags: expected booleans"),
    ([[True, False]], [1, 0], "flags: expected a 1-D array"),
])
def test_precision_refuses_values_that_are_not_flags_or_truths(flags, truth, match):
    # 7 used to count as a label error (and 2 as a flag)
    with pytest.raises(ValueError, match=match):
        precision(flags, truth)


def test_flags_accept_zero_one_numbers():
    assert precision([1, 0, 1], [1.0, 0.0, 0.0]) == precision([True, False, True], [1.0, 0.0, 0.0]) == 0.5


def test_overlap_summary_counts_and_precision():
    a = np.array([True, True, False, False, True, True])
    b = np.array([True, False, True, False, False, True])
    truth = np.array([1.0, 0.0, 1.0, 1.0, np.nan, 0.0])
    table = overlap_summary(a, b, is_error=truth)
    assert list(table.index) == ["ours", "CL", "ours only", "CL only", "both"]
    # ours {0,1,4,5}: known 0,1,5 -> 1/3; CL {0,2,5}: 2/3; ours only {1,4}: known 1 -> 0/1
    # CL only {2}: 1/1; both {0,5}: 1/2
    np.testing.assert_array_equal(table["n_flagged"], [4, 3, 2, 1, 2])
    np.testing.assert_allclose(table["precision"], [1 / 3, 2 / 3, 0.0, 1.0, 0.5])
    named = overlap_summary(a, b, names=("m2", "cl"))
    assert list(named.index) == ["m2", "cl", "m2 only", "cl only", "both"]
    assert named["precision"].isna().all()


def test_cleaned_accuracy_replace_and_drop():
    pred = np.array([0, 1, 2, 0, 1, 2])
    labels = np.array([0, 2, 2, 1, 1, 0])
    flags = np.array([False, True, False, True, False, True])
    true = np.array([0, 1, 2, -1, 1, 1])
    # replace: flagged labels -> truth where known: [0, 1, 2, 1 (unknown kept), 1, 1]
    #   pred == cleaned: [T, T, T, F, T, F] -> 4/6
    assert cleaned_accuracy(pred, labels, flags, true_labels=true, mode="replace") == pytest.approx(4 / 6)
    # drop: keep samples 0, 2, 4 -> pred == labels: [T, T, T] -> 1.0
    assert cleaned_accuracy(pred, labels, flags, mode="drop") == pytest.approx(1.0)
    # nothing flagged: the plain accuracy 3/6
    assert cleaned_accuracy(pred, labels, np.zeros(6, bool), mode="drop") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="true_labels"):
        cleaned_accuracy(pred, labels, flags, mode="replace")
    with pytest.raises(ValueError, match="mode"):
        cleaned_accuracy(pred, labels, flags, true_labels=true, mode="fix")
    with pytest.raises(ValueError, match="flags"):
        cleaned_accuracy(pred, labels, np.ones(6, bool), mode="drop")


def test_cleaned_accuracy_with_valid_label_sets():
    # 5 samples: given labels, predictions, flags, ReaL-style sets (empty = not rated)
    pred = np.array([1, 2, 3, 4, 5])
    labels = np.array([1, 0, 0, 0, 5])
    flags = np.array([False, True, True, True, True])
    valid = [[1], [2, 7], [9], [], [5]]
    # row 0 right as given; row 1 flagged, pred in set -> right; row 2 flagged, not in set -> wrong;
    # row 3 flagged but not rated -> judged on the given label (wrong); row 4 flagged, in set -> right
    assert calcas.cleaned_accuracy(pred, labels, flags, valid_labels=valid) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="exactly one of them"):
        calcas.cleaned_accuracy(pred, labels, flags, valid_labels=valid, true_labels=labels)
    with pytest.raises(ValueError, match="valid_labels: expected 5 entries"):
        calcas.cleaned_accuracy(pred, labels, flags, valid_labels=valid[:4])


def test_disagreement_sweep_by_hand():
    labels = np.array([0, 1, 2, 0])
    preds = np.array([[1, 1, 0, 0],    # expert 0 disagrees on samples 0, 2
                      [1, 0, 0, 0],    # expert 1 disagrees on samples 0, 1, 2
                      [2, 1, 2, -1]])  # expert 2 disagrees on samples 0, 3 (-1: no answer)
    truth = np.array([1.0, 0.0, 1.0, np.nan])
    sweep = calcas.disagreement_sweep(preds, labels, is_error=truth)
    # disagreement counts: [3, 1, 2, 1]
    assert sweep["k"].tolist() == [3, 2, 1]
    assert sweep["n_flagged"].tolist() == [1, 2, 4]
    np.testing.assert_allclose(sweep["precision"], [1.0, 1.0, 2 / 3])
    np.testing.assert_allclose(sweep["recall"], [0.5, 1.0, 1.0])
    # k = m is method 1
    np.testing.assert_array_equal(calcas.flag_top1_disagreement(np.where(preds < 0, 9, preds), labels),
                                  [True, False, False, False])
