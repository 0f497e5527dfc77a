"""Binning (SPEC §2): equal-count and equal-width edges, bin assignment, checked against
numpy.array_split / torch.bucketize and hand computations."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import calcas


def _sizes(n, k):
    """Group sizes of np.array_split (the first n % k groups get one more)."""
    return np.array([len(g) for g in np.array_split(np.arange(n), k)])


# ---------------------------------------------------------------- equal count


@pytest.mark.parametrize("n, k", [(100, 15), (101, 10), (15, 15), (37, 1), (1000, 7)])
def test_equal_count_edges_are_midpoints_of_array_split_groups(n, k):
    c = np.random.default_rng(n + k).random(n)
    edges = calcas.equal_count_edges(c, k)
    groups = np.array_split(np.sort(c), k)
    hand_interior = [(groups[i][-1] + groups[i + 1][0]) / 2 for i in range(k - 1)]
    assert edges.shape == (k + 1,)
    assert edges[0] == -np.inf and edges[-1] == np.inf
    np.testing.assert_allclose(edges[1:-1], hand_interior, rtol=0, atol=0)
    bins = calcas.assign_bins(c, edges)
    np.testing.assert_array_equal(np.bincount(bins, minlength=k), _sizes(n, k))
    # every sample lands in the group that holds it after sorting
    rank = np.argsort(np.argsort(c))
    group_of_rank = np.repeat(np.arange(k), _sizes(n, k))
    np.testing.assert_array_equal(bins, group_of_rank[rank])


def test_equal_count_hand_example():
    c = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8])
    # sorted: 0.1 0.2 0.3 | 0.5 0.7 | 0.8 0.9  (sizes 3, 2, 2)
    edges = calcas.equal_count_edges(c, 3)
    np.testing.assert_allclose(edges[1:-1], [0.4, 0.75], rtol=1e-15)
    np.testing.assert_array_equal(calcas.assign_bins(c, edges), [2, 0, 1, 0, 1, 0, 2])
    # new data reuses the edges; values outside the fitted range are clamped to the outer bins
    np.testing.assert_array_equal(calcas.assign_bins(np.array([0.0, 0.4, 0.74, 0.75, 1.0]), edges),
                                  [0, 1, 1, 2, 2])


def test_equal_count_run_straddling_a_boundary_is_not_split():
    # sorted 0.1 0.2 | 0.5 0.5 0.5 0.9: the array_split boundary (index 3) falls inside the run
    # of 0.5 (indices 2..4); its lower end (2) is nearer than its upper end (5)
    c = np.array([0.1, 0.2, 0.5, 0.5, 0.5, 0.9])
    edges = calcas.equal_count_edges(c, 2)
    np.testing.assert_allclose(edges[1:-1], [0.35], rtol=1e-15)
    np.testing.assert_array_equal(np.bincount(calcas.assign_bins(c, edges)), [2, 4])
    # the run nearer its upper end: 0.1 0.5 0.5 0.5 | 0.8 0.9 (boundary 3 -> 4)
    c = np.array([0.9, 0.5, 0.1, 0.5, 0.8, 0.5])
    edges = calcas.equal_count_edges(c, 2)
    np.testing.assert_allclose(edges[1:-1], [0.65], rtol=1e-15)
    np.testing.assert_array_equal(calcas.assign_bins(c, edges), [1, 0, 0, 0, 1, 0])
    # both ends as near (boundary 2, run 1..2): the lower end, the run joins the upper bin
    edges = calcas.equal_count_edges(np.array([0.1, 0.5, 0.5, 0.9]), 2)
    np.testing.assert_allclose(edges[1:-1], [0.3], rtol=1e-15)


def test_equal_count_many_ties_hand_example():
    # sorted: 0 0 0 | 0.2 | 0.4 0.6 | 1 1 1 1; array_split starts 2, 4, 6, 8:
    #   2 is inside the run of 0 (0..2), whose lower end is the array's start -> 3
    #   4 and 6 are between distinct values -> kept
    #   8 is inside the run of 1 (6..9), whose upper end is the array's end -> 6 (duplicate)
    c = np.array([1.0, 0.0, 0.6, 1.0, 0.0, 0.2, 1.0, 0.4, 0.0, 1.0])
    edges = calcas.equal_count_edges(c, 5)
    assert len(edges) - 1 == 4
    np.testing.assert_allclose(edges[1:-1], [0.1, 0.3, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(calcas.assign_bins(c, edges), [3, 0, 2, 3, 0, 1, 3, 2, 0, 3])


@pytest.mark.parametrize("k", [2, 3, 5, 9])
def test_equal_count_all_ties_but_one(k):
    # one value below a run of 9: every boundary moves to the run's lower end, two bins
    c = np.r_[0.3, np.full(9, 0.7)]
    edges = calcas.equal_count_edges(c, k)
    np.testing.assert_allclose(edges, [-np.inf, 0.5, np.inf], rtol=1e-15)
    np.testing.assert_array_equal(calcas.assign_bins(c, edges), [0] + [1] * 9)
    # the odd value above the run: the run's upper end, two bins again
    c = np.r_[np.full(9, 0.7), 0.9]
    np.testing.assert_array_equal(np.bincount(calcas.assign_bins(c, calcas.equal_count_edges(c, k))), [9, 1])


def test_equal_count_exact_zeros_and_ones_among_other_values():
    # 30 exact 0.0, 40 distinct values in between, 30 exact 1.0, 10 bins of 10 asked for:
    # the boundaries at 10, 20 and 30 move to 30 (the end of the zeros), those at 70, 80, 90
    # to 70 (the start of the ones); 40, 50, 60 stay
    inner = np.linspace(0.01, 0.99, 40)
    c = np.random.default_rng(0).permutation(np.r_[np.zeros(30), inner, np.ones(30)])
    edges = calcas.equal_count_edges(c, 10)
    s = np.sort(c)
    expected = [(s[j - 1] + s[j]) / 2 for j in (30, 40, 50, 60, 70)]
    np.testing.assert_allclose(edges[1:-1], expected, rtol=1e-15)
    np.testing.assert_array_equal(np.bincount(calcas.assign_bins(c, edges)), [30, 10, 10, 10, 10, 30])
    assert calcas.assign_bins(np.array([0.0]), edges)[0] == 0
    assert calcas.assign_bins(np.array([1.0]), edges)[0] == len(edges) - 2


def test_equal_count_edges_adjacent_floats():
    """Regression: the midpoint of two adjacent doubles rounds to the lower one, which then
    fell into the upper bin (sizes [1, 3] instead of [2, 2])."""
    a = 0.5
    b = np.nextafter(a, 1.0)
    c = np.array([0.1, a, b, 0.9])
    edges = calcas.equal_count_edges(c, 2)
    np.testing.assert_array_equal(np.bincount(calcas.assign_bins(c, edges), minlength=2), [2, 2])
    assert a < edges[1] <= b


def test_equal_count_edges_huge_scores_do_not_overflow():
    """Regression: (lo + hi) / 2 overflowed to inf for scores near the float maximum."""
    c = np.array([-1e308, 1.6e308, 1.7e308, 1.75e308])
    edges = calcas.equal_count_edges(c, 2)
    assert np.isfinite(edges[1]) and 1.6e308 < edges[1] < 1.7e308
    np.testing.assert_array_equal(calcas.assign_bins(c, edges), [0, 0, 1, 1])


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=200, unique=True),
       data=st.data())
def test_equal_count_sizes_differ_by_at_most_one_without_ties(values, data):
    c = np.array(values)
    k = data.draw(st.integers(1, len(c)))
    counts = np.bincount(calcas.assign_bins(c, calcas.equal_count_edges(c, k)), minlength=k)
    assert counts.sum() == len(c)
    assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(counts, _sizes(len(c), k))


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=1, max_size=100,
                       unique=True),
       data=st.data())
def test_equal_count_sizes_for_arbitrary_real_scores(values, data):
    # equal_count_edges accepts raw scores too (Platt inputs), not only probabilities
    c = np.array(values)
    k = data.draw(st.integers(1, len(c)))
    counts = np.bincount(calcas.assign_bins(c, calcas.equal_count_edges(c, k)), minlength=k)
    np.testing.assert_array_equal(counts, _sizes(len(c), k))


def ref_tie_group_sizes(values, k):
    """Slow reference of the tie rule: sizes of the groups of the sorted values. Each
    np.array_split boundary that falls between two equal values moves to the nearest index j
    with s[j - 1] < s[j] (the lower one when two are as near); repeated boundaries count once."""
    s = sorted(values)
    n = len(s)
    changes = [j for j in range(1, n) if s[j - 1] < s[j]]
    cuts = set()
    for boundary in np.cumsum(_sizes(n, k))[:-1]:
        if changes:
            cuts.add(min(changes, key=lambda j: (abs(j - boundary), j)))
    bounds = [0, *sorted(cuts), n]
    return [b - a for a, b in zip(bounds, bounds[1:])]


def old_midpoint_edges(values, k):
    """The edges before the tie rule: midpoints of np.array_split groups (upper value where
    the midpoint of adjacent floats rounds down), as the rule must still give without ties."""
    groups = np.array_split(np.sort(values), k)
    interior = []
    for lower, upper in zip(groups, groups[1:]):
        mid = lower[-1] / 2 + upper[0] / 2
        interior.append(mid if mid > lower[-1] else upper[0])
    return np.array([-np.inf, *interior, np.inf])


TIED = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.5 + 2 ** -53, 1.0]), st.floats(0.0, 1.0, allow_nan=False))


@settings(max_examples=150, deadline=None)
@given(values=st.lists(TIED, min_size=1, max_size=120), data=st.data())
def test_equal_count_never_splits_a_run_of_ties(values, data):
    c = np.array(values)
    k = data.draw(st.integers(1, len(c)))
    edges = calcas.equal_count_edges(c, k)
    m = len(edges) - 1
    assert 1 <= m <= k
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert np.all(np.diff(edges) > 0)
    bins = calcas.assign_bins(c, edges)
    for value in np.unique(c):  # every run of equal values lies in one bin
        assert len(set(bins[c == value])) == 1
    counts = np.bincount(bins, minlength=m)
    assert counts.min() > 0 and len(counts) == m  # every bin formed is non-empty
    np.testing.assert_array_equal(counts, ref_tie_group_sizes(values, k))
    if len(np.unique(c)) == len(c):  # no ties: exactly the edges of before
        assert m == k
        np.testing.assert_array_equal(edges, old_midpoint_edges(c, k))


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=1, max_size=80, unique=True),
       data=st.data())
def test_equal_count_edges_unchanged_without_ties(values, data):
    c = np.array(values)
    k = data.draw(st.integers(1, len(c)))
    np.testing.assert_array_equal(calcas.equal_count_edges(c, k), old_midpoint_edges(c, k))


def test_equal_count_ties_of_huge_scores_do_not_overflow():
    c = np.array([-1e308, 1.6e308, 1.6e308, 1.6e308, 1.7e308, 1.75e308])
    edges = calcas.equal_count_edges(c, 3)  # boundary 2 inside the run 1..3 -> 1; 4 stays
    assert np.isfinite(edges[1:-1]).all()
    np.testing.assert_array_equal(calcas.assign_bins(c, edges), [0, 1, 1, 1, 2, 2])


# ---------------------------------------------------------------- equal width


@pytest.mark.parametrize("k", [1, 4, 5, 15])
def test_equal_width_edges(k):
    np.testing.assert_allclose(calcas.equal_width_edges(k), [i / k for i in range(k + 1)], rtol=0,
                               atol=1e-15)


def test_equal_width_assignment_of_ends_and_interior_edges():
    # 5 bins: 0.0 -> first bin, 0.2 and 0.4 (interior edges) -> the upper bin, 1.0 -> last bin
    c = np.array([0.0, 0.1, 0.2, 0.3999, 0.4, 0.99, 1.0])
    edges = calcas.bin_edges(c, 5, "equal_width")
    np.testing.assert_array_equal(calcas.assign_bins(c, edges), [0, 0, 1, 1, 2, 4, 4])
    # 4 bins (edges exact in binary)
    c = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 0.2499999])
    np.testing.assert_array_equal(calcas.assign_bins(c, calcas.equal_width_edges(4)), [0, 1, 2, 3, 3, 0])


@pytest.mark.parametrize("k", [4, 5, 8, 10, 15, 16])
def test_equal_width_assignment_matches_torch_bucketize_and_exact_arithmetic(k):
    rng = np.random.default_rng(k)
    c = np.r_[rng.random(500), 0.0, 1.0]
    if k & (k - 1) == 0:  # k a power of 2: the interior edges i/k are exact doubles, include them
        c = np.r_[c, np.arange(1, k) / k]
    # Edges i/k that are not exact in binary (e.g. 11/15) are rounded differently by
    # numpy.linspace and torch.linspace, so a double within an ulp of such an edge may land on
    # either side; random values are never that close.
    edges = calcas.bin_edges(c, k, "equal_width")
    got = calcas.assign_bins(c, edges)
    # torchmetrics' rule: bucketize(right=True) - 1 on linspace(0, 1, k + 1); it gives 1.0 an
    # extra bin k, which SPEC §2 folds into the last bin
    ref = torch.bucketize(torch.from_numpy(c), torch.linspace(0, 1, k + 1, dtype=torch.float64),
                          right=True) - 1
    np.testing.assert_array_equal(got, ref.clamp(max=k - 1).numpy())
    # exact rational arithmetic: bin = floor(c * k), with c = 1 in the last bin
    exact = [min(math.floor(Fraction(float(x)) * k), k - 1) for x in c]
    np.testing.assert_array_equal(got, exact)


def test_bin_edges_dispatch():
    c = np.random.default_rng(0).random(50)
    np.testing.assert_allclose(calcas.bin_edges(c, 5, "equal_width"), np.linspace(0, 1, 6))
    groups = np.array_split(np.sort(c), 5)
    np.testing.assert_allclose(calcas.bin_edges(c, 5)[1:-1],
                               [(groups[i][-1] + groups[i + 1][0]) / 2 for i in range(4)])


def test_torch_input_accepted():
    c = np.random.default_rng(1).random(40)
    edges = calcas.equal_count_edges(torch.from_numpy(c), 4)
    groups = np.array_split(np.sort(c), 4)
    np.testing.assert_allclose(edges[1:-1], [(groups[i][-1] + groups[i + 1][0]) / 2 for i in range(3)])
    np.testing.assert_array_equal(np.bincount(calcas.assign_bins(torch.from_numpy(c), edges)), [10] * 4)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("n_bins, msg", [(0, r"^n_bins: must be >= 1"), (-3, r"^n_bins: must be >= 1"),
                                         (2.5, r"^n_bins: expected an integer"),
                                         (3.0, r"^n_bins: expected an integer"),
                                         (True, r"^n_bins: expected an integer"),
                                         ("4", r"^n_bins: expected an integer"),
                                         (11, r"^n_bins: 11 bins need at least as many samples, got 10")])
def test_bad_n_bins(n_bins, msg):
    c = np.linspace(0.05, 0.95, 10)
    with pytest.raises(ValueError, match=msg):
        calcas.equal_count_edges(c, n_bins)
    if n_bins == 11:  # equal-width bins are fixed intervals: more bins than samples leaves some empty
        np.testing.assert_array_equal(calcas.bin_edges(c, n_bins, "equal_width"), np.linspace(0, 1, 12))
        return
    with pytest.raises(ValueError, match=msg):
        calcas.bin_edges(c, n_bins, "equal_width")


@pytest.mark.parametrize("n_bins", [0, 2.5, None])
def test_equal_width_edges_bad_n_bins(n_bins):
    with pytest.raises(ValueError, match=r"^n_bins:"):
        calcas.equal_width_edges(n_bins)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_equal_count_all_values_equal_is_one_bin(k):
    # not an error any more: a run is never split, so all-equal values form one bin
    edges = calcas.equal_count_edges(np.full(8, 0.7), k)
    np.testing.assert_array_equal(edges, [-np.inf, np.inf])
    np.testing.assert_array_equal(calcas.assign_bins(np.full(8, 0.7), edges), np.zeros(8))
    np.testing.assert_array_equal(calcas.bin_edges(np.full(8, 0.7), k), [-np.inf, np.inf])
    # equal-width bins do not depend on the data
    assert len(calcas.bin_edges(np.full(8, 0.7), k, "equal_width")) == k + 1


def test_unknown_binning():
    with pytest.raises(ValueError, match=r"^binning: expected one of .*'quantile'"):
        calcas.bin_edges(np.linspace(0, 1, 10), 3, "quantile")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_confidence(bad):
    c = np.r_[np.linspace(0, 1, 9), bad]
    with pytest.raises(ValueError, match=r"^confidence: contains 1 NaN or infinite"):
        calcas.equal_count_edges(c, 3)
    with pytest.raises(ValueError, match=r"^confidence: contains 1 NaN or infinite"):
        calcas.assign_bins(c, np.linspace(0, 1, 4))


def test_equal_width_refuses_confidence_outside_unit_interval():
    with pytest.raises(ValueError, match=r"^confidence: values must be <= 1"):
        calcas.bin_edges(np.array([0.2, 1.5, 0.3]), 2, "equal_width")
    with pytest.raises(ValueError, match=r"^confidence: values must be >= 0"):
        calcas.bin_edges(np.array([0.2, -0.5, 0.3]), 2, "equal_width")


def test_empty_and_bad_edges():
    with pytest.raises(ValueError, match=r"^confidence: is empty"):
        calcas.equal_count_edges(np.array([]), 1)
    with pytest.raises(ValueError, match=r"^confidence: expected a 1-D array"):
        calcas.equal_count_edges(np.zeros((3, 2)), 2)
    with pytest.raises(ValueError, match=r"^edges: must be non-decreasing"):
        calcas.assign_bins(np.array([0.5]), np.array([0.0, 0.6, 0.4, 1.0]))
    with pytest.raises(ValueError, match=r"^edges: expected a 1-D array of at least 2 edges"):
        calcas.assign_bins(np.array([0.5]), np.array([0.0]))
