"""Cascades of any length: chains of M >= 2 models with a cost per call, their Pareto frontier on
cal, and a selection that certifies the accuracy it gives up (SPEC §3b).

A chain asks its models in order. Stage j < M - 1 answers a sample when the sample's calibrated
confidence falls in one of the stage's kept bins; otherwise the sample goes on to the next stage.
The last stage answers every sample that reaches it. A stage that keeps no bin is never called
and costs nothing, so every sub-chain that ends in the last model is a configuration, the last
model alone included. A sample answered at stage j costs the sum of the costs of the stages up to
j that were called.

Bins of stage j are equal-count on its cal confidences and are kept in the order of Algorithm 1
with the last model as the second model: by ascending calibrated advantage of the last model over
stage j (ties: higher mean confidence first). A configuration is then the number K_j of bins each
stage keeps, K_j in 0..m_j, and there are prod(m_j + 1) of them. With M = 2 the configurations
are the K of :func:`calcas.cascade_curve`.

The frontier is exact. The rows are counted once in a histogram over the tuples of bin ranks, and
its suffix sums give every configuration's cost and accuracy at once: O(n M + prod(m_j + 1) M)
instead of the O(n M prod(m_j + 1)) of evaluating each configuration on the rows. Configurations
beyond ``max_configurations`` are refused with a message that says how many bins fit.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._validate import check_n_bins, confidence_array, correct_array, same_length, to_numpy
from .binning import _assign_bins, _bin_stats, _equal_count_edges, _rank_bins

MAX_CONFIGURATIONS = 4_000_000
ORDERS = ("advantage", "confidence")


# ---------------------------------------------------------------------------- checks


def _real(x: Any, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a number, got {x!r}")
    return float(x)


def check_max_drop(max_drop: Any) -> float:
    """The accuracy the chain may lose against its last model: a number in [0, 1)."""
    value = _real(max_drop, "max_drop")
    if not 0 <= value < 1:
        raise ValueError(f"max_drop: must be >= 0 and < 1 (a share of accuracy), got {max_drop!r}")
    return value


def check_delta(delta: Any) -> float:
    """The probability the guarantee may fail: a number strictly between 0 and 1."""
    value = _real(delta, "delta")
    if not 0 < value < 1:
        raise ValueError(f"delta: must be in (0, 1), got {delta!r}")
    return value


def _model_name(r: Any, j: int) -> str:
    return str((getattr(r, "manifest", None) or {}).get("model", f"model {j}"))


def check_aligned(records: Sequence[Any]) -> None:
    """The record sets of a chain carry the same ids in the same row order; else one clear error."""
    first = np.asarray(records[0].id)
    for j, r in enumerate(records[1:], start=1):
        ids = np.asarray(r.id)
        if len(ids) != len(first) or not np.array_equal(ids, first):
            differ = len(first) if len(ids) != len(first) else int(np.sum(ids != first))
            raise ValueError(f"records: rows are not aligned by id: records[{j}] ({_model_name(r, j)!r}, "
                             f"{len(ids)} rows) differs from records[0] ({_model_name(records[0], 0)!r}, "
                             f"{len(first)} rows) at {differ} rows; align them first (calcas.align)")


def _manifest_cost(manifest: dict) -> dict[str, float]:
    """The costs a manifest carries, by source (see :func:`costs_from_records`)."""
    found = {}
    cost = manifest.get("cost") or {}
    flops = manifest.get("flops_per_sample", (manifest.get("extraction") or {}).get("flops_per_sample"))
    if cost.get("gflops_per_item"):
        found["GFLOPs per item"] = float(cost["gflops_per_item"])
    elif flops:
        found["GFLOPs per item"] = float(flops) / 1e9
    if cost.get("seconds_per_item"):
        found["seconds per item"] = float(cost["seconds_per_item"])
    return found


def costs_from_records(records: Sequence[Any]) -> tuple[np.ndarray, str]:
    """The cost per call of each model of a chain, read from the record sets' manifests.

    GFLOPs per item where every manifest has them (``cost.gflops_per_item`` written by the
    extraction jobs, or ``flops_per_sample``), else seconds per item (``cost.seconds_per_item``);
    one source for the whole chain, never a mix.

    Returns
    -------
    costs : ndarray, shape (M,)
    source : str
        ``"GFLOPs per item (manifests)"`` or ``"seconds per item (manifests)"``.
    """
    found = [_manifest_cost(getattr(r, "manifest", None) or {}) for r in records]
    for source in ("GFLOPs per item", "seconds per item"):
        if all(source in f for f in found):
            return np.array([f[source] for f in found]), f"{source} (manifests)"
    j = next(j for j, f in enumerate(found) if "GFLOPs per item" not in f)
    raise ValueError(f"costs: not given, and the manifests share no cost field (cost.gflops_per_item, "
                     f"flops_per_sample or cost.seconds_per_item): records[{j}] ({_model_name(records[j], j)!r}) "
                     f"has {sorted(found[j]) or 'none'}; pass costs=[...] (one per model)")


def checked_costs(costs: Any, m: int, *, records: Sequence[Any] | None = None) -> tuple[np.ndarray, str]:
    """The cost per call of each of a chain's ``m`` models: ``costs`` checked, or read from the
    manifests of ``records`` when ``costs`` is None (:func:`costs_from_records`).

    Parameters
    ----------
    costs : sequence of m floats > 0, or None
    m : int
        The number of models in the chain.
    records : list of m record sets, optional
        Where the costs come from when ``costs`` is None.

    Returns
    -------
    costs : ndarray, shape (m,)
    source : str
        ``"given"``, or the manifest field the costs came from.

    Raises
    ------
    ValueError
        When ``costs`` is not one finite number > 0 per model, or is None without ``records``
        (or with manifests that share no cost field).
    """
    if costs is None:
        if records is None:
            raise ValueError(f"costs: give one cost per model ({m}), or the record sets as records=[...] "
                             "to read them from their manifests")
        return costs_from_records(records)
    if isinstance(costs, (str, bytes)) or np.ndim(costs) != 1 or len(costs) != m:
        raise ValueError(f"costs: expected one cost per model ({m}), got {costs!r}")
    c = np.array([_real(x, f"costs[{j}]") for j, x in enumerate(costs)])
    bad = ~(np.isfinite(c) & (c > 0))
    if bad.any():
        j = int(np.argmax(bad))
        raise ValueError(f"costs: every cost must be a finite number > 0, got costs[{j}] = {costs[j]!r}")
    return c, "given"


def _as_list(x: Any, name: str) -> list:
    if isinstance(x, (list, tuple)):
        return list(x)
    a = to_numpy(x)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a list of arrays, one per model in chain order, got shape {a.shape}")
    return list(a)


@dataclasses.dataclass(frozen=True)
class ChainRows:
    """A chain's rows, checked once: what every chain function works on.

    Build it with :meth:`ChainRows.of`, which checks the arrays; :meth:`take` and
    :meth:`sub_chain` cut a checked one without checking again, so a study that cuts the same
    rows many ways (cal, test, the rows that fit) validates them once.

    Attributes
    ----------
    conf : ndarray, shape (M, n)
        Each model's calibrated confidence in its own answer, in chain order.
    correct : ndarray, shape (M, n)
        0/1 verifier scores of each model's answer on the same rows.
    costs : ndarray, shape (M,)
        Cost of one call of each model.
    cost_source : str
        ``"given"`` or the manifest field the costs came from (:func:`checked_costs`).
    """

    conf: np.ndarray
    correct: np.ndarray
    costs: np.ndarray
    cost_source: str

    @classmethod
    def of(cls, conf: Any, correct: Any, costs: Sequence[float] | None = None, *,
           records: Sequence[Any] | None = None) -> "ChainRows":
        """Checked rows from lists of M arrays (n,) in chain order, as :func:`cascade_frontier`
        takes them (costs from the manifests of ``records`` when omitted)."""
        return _checked_chain(conf, correct, costs, records, names=("conf", "correct"))

    @property
    def n_models(self) -> int:
        """M, the number of models."""
        return len(self.costs)

    @property
    def n(self) -> int:
        """The number of rows."""
        return self.conf.shape[1]

    def take(self, rows: Any) -> "ChainRows":
        """The rows ``rows`` (indices or a bool mask of length n), in that order."""
        index = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else rows
        return dataclasses.replace(self, conf=np.take(self.conf, index, axis=1),
                                   correct=np.take(self.correct, index, axis=1))

    def sub_chain(self, stages: Sequence[int]) -> "ChainRows":
        """The chain of the models ``stages`` only (indices in chain order, e.g. ``[0, M - 1]``)."""
        stages = list(stages)
        if len(stages) < 2 or any(b <= a for a, b in zip(stages, stages[1:])) or stages[0] < 0 \
                or stages[-1] >= self.n_models:
            raise ValueError(f"stages: expected at least two increasing model indices in 0..{self.n_models - 1}, "
                             f"got {stages!r}")
        return ChainRows(self.conf[stages], self.correct[stages], self.costs[stages], self.cost_source)


def _checked_chain(conf: Any, correct: Any, costs: Any, records: Sequence[Any] | None,
                   names: tuple[str, str] = ("conf_cal", "correct_cal")) -> ChainRows:
    """The entry checks of every chain function (validate once; the kernels below trust them)."""
    conf, correct = _as_list(conf, names[0]), _as_list(correct, names[1])
    m = len(conf)
    if m < 2:
        raise ValueError(f"{names[0]}: a chain needs at least two models, got {m}")
    if len(correct) != m:
        raise ValueError(f"{names[1]}: expected one array per model ({m}, as in {names[0]}), got {len(correct)}")
    if records is not None:
        if len(records) != m:
            raise ValueError(f"records: expected one record set per model ({m}), got {len(records)}")
        check_aligned(records)
    c = [confidence_array(x, f"{names[0]}[{j}]") for j, x in enumerate(conf)]
    v = [correct_array(x, f"{names[1]}[{j}]") for j, x in enumerate(correct)]
    same_length(**{f"{names[0]}[{j}]": x for j, x in enumerate(c)}, **{f"{names[1]}[{j}]": x for j, x in enumerate(v)})
    return ChainRows(np.stack(c), np.stack(v), *checked_costs(costs, m, records=records))


# ---------------------------------------------------------------------------- kernels


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """:func:`calcas.assign_bins` for checked values and edges (unchecked): the number of interior
    edges <= each value. A pass per edge, counting in bytes, is several times faster than a binary
    search over the few edges of a stage (whose branches a CPU cannot predict on unsorted values);
    more than 254 interior edges go to the binary search."""
    interior = edges[1:-1]
    if len(interior) > 254:
        return _assign_bins(values, edges)
    out, above = np.zeros(len(values), dtype=np.uint8), np.empty(len(values), dtype=bool)
    for edge in interior:
        np.greater_equal(values, edge, out=above)
        out += above
    return out


@dataclasses.dataclass(frozen=True)
class StageBins:
    """The bins of a chain's stages 0..M-2, fitted on some rows: equal-count edges on each stage's
    confidence, and the bin of each of those rows.

    Frontiers of the same rows in other keep orders, or of sub-chains, share them
    (``fit_frontier(..., bins=...)``), and rows binned once with :meth:`assign` are measured by
    every frontier with these edges (``ChainFrontier.measure(..., index=...)``): nothing is sorted
    or binned twice.

    Attributes
    ----------
    edges : tuple of ndarray, one per stage 0..M-2
        Each with m_j + 1 entries (:func:`calcas.equal_count_edges`).
    index : ndarray of int, shape (M - 1, n)
        The bin of each row the edges were fitted on.
    means : tuple of (ndarray, ndarray), one per stage 0..M-2
        Per bin, on those rows: the stage's mean confidence and the last model's (NaN where a
        bin is empty), which the keep orders are made of.
    """

    edges: tuple[np.ndarray, ...]
    index: np.ndarray
    means: tuple[tuple[np.ndarray, np.ndarray], ...]

    @classmethod
    def of(cls, rows: ChainRows, n_bins: int) -> "StageBins":
        """Equal-count bins of ``n_bins`` asked for on each stage of checked ``rows``."""
        n_bins = check_n_bins(n_bins, rows.n)
        edges = tuple(_equal_count_edges(c, n_bins) for c in rows.conf[:-1])
        index = cls._index(rows.conf, edges)
        means = tuple(tuple(_bin_stats(index[j], len(e) - 1, rows.conf[j], rows.conf[-1])[1:])
                      for j, e in enumerate(edges))
        return cls(edges, index, means)

    @staticmethod
    def _index(conf: np.ndarray, edges: Sequence[np.ndarray]) -> np.ndarray:
        index = np.empty((len(edges), conf.shape[1]), dtype=np.uint8 if max(map(len, edges)) <= 256 else np.intp)
        for j, e in enumerate(edges):
            index[j] = _bin_index(conf[j], e)
        return index

    def assign(self, rows: ChainRows) -> np.ndarray:
        """The bin of each of other checked ``rows`` per stage, shape (M - 1, n)."""
        if rows.n_models != len(self.edges) + 1:
            raise ValueError(f"rows: expected {len(self.edges) + 1} models as the bins, got {rows.n_models}")
        return self._index(rows.conf, self.edges)

    def sub_chain(self, stages: Sequence[int]) -> "StageBins":
        """The bins of the sub-chain ``stages`` that ends in the same last model (as
        :meth:`ChainRows.sub_chain`; the last model has no bins)."""
        stages = list(stages)
        if not stages or stages[-1] != len(self.edges):
            raise ValueError(f"stages: a sub-chain of these bins ends in the last model ({len(self.edges)}), got "
                             f"{stages!r}")
        return StageBins(tuple(self.edges[j] for j in stages[:-1]), self.index[stages[:-1]],
                         tuple(self.means[j] for j in stages[:-1]))


def _keep_orders(bins: StageBins, order: str) -> list[np.ndarray]:
    """Per stage j < M - 1: the order its bins are kept in (Algorithm 1's calibrated advantage of
    the last model, or the stage's confidence alone), from the rows the bins were fitted on."""
    orders = []
    for mean_stage, mean_last in bins.means:
        primary = mean_last - mean_stage if order == "advantage" else -mean_stage
        orders.append(_rank_bins(primary, mean_stage))
    return orders


def _ranks_of_bins(bins: np.ndarray, orders: Sequence[np.ndarray]) -> np.ndarray:
    """(M - 1, n): the position of each row's bin (``bins``, (M - 1, n)) in its stage's keep order."""
    out = np.empty(bins.shape, dtype=np.int64)
    for j, o in enumerate(orders):
        rank_of_bin = np.empty(len(o), dtype=np.int64)
        rank_of_bin[o] = np.arange(len(o))
        out[j] = np.take(rank_of_bin, bins[j])
    return out


def _ranks(conf: np.ndarray, edges: Sequence[np.ndarray], orders: Sequence[np.ndarray]) -> np.ndarray:
    """(M - 1, n): the position of each row's bin in its stage's keep order."""
    return _ranks_of_bins(np.stack([_bin_index(conf[j], e) for j, e in enumerate(edges)]), orders)


def _suffix_sums(h: np.ndarray, axes: Sequence[int] | None = None) -> np.ndarray:
    """S[k] = sum of h[r] over r >= k on every axis (or on ``axes``); one more entry (a zero) per
    such axis."""
    for axis in range(h.ndim) if axes is None else axes:
        padded = np.zeros(tuple(s + (a == axis) for a, s in enumerate(h.shape)), dtype=h.dtype)
        padded[tuple(slice(0, -1) if a == axis else slice(None) for a in range(h.ndim))] = \
            np.flip(np.cumsum(np.flip(h, axis), axis=axis), axis)
        h = padded
    return h


def _grid(ranks: np.ndarray, correct: np.ndarray, costs: np.ndarray, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Cost and correct answers summed over the rows, and rows answered per stage, for every
    configuration K (an index into the grid of shape ``m_j + 1`` per stage)."""
    stages, n = correct.shape
    cells = math.prod(sizes)
    cell = np.ravel_multi_index(tuple(ranks), sizes)
    # the row count and each stage's correct answers per cell, suffix-summed together
    blocks = np.stack([np.bincount(cell, minlength=cells).astype(np.float64)]
                      + [np.bincount(cell, weights=c, minlength=cells) for c in correct]).reshape((stages + 1, *sizes))
    suffix = _suffix_sums(blocks, axes=range(1, len(sizes) + 1))
    count = suffix[0]

    def at(table: np.ndarray, j: int) -> np.ndarray:  # table[K_0..K_{j-1}, 0, ..., 0], broadcastable
        return table[tuple(slice(None) if a < j else slice(0, 1) for a in range(len(sizes)))]

    shape = tuple(s + 1 for s in sizes)
    answered, right, cost = [], np.zeros(shape), np.zeros(shape)
    for j in range(stages):
        reach = at(count, j)
        if j < stages - 1:
            called = (np.arange(sizes[j] + 1) > 0).reshape([-1 if a == j else 1 for a in range(len(sizes))])
            t = suffix[j + 1]
            answered.append(np.broadcast_to(reach - at(count, j + 1), shape))
            right = right + at(t, j) - at(t, j + 1)
            cost = cost + costs[j] * called * reach
        else:
            answered.append(np.broadcast_to(count, shape))
            right = right + suffix[j + 1]
            cost = cost + costs[j] * count
    return {"cost": cost, "correct": right, "answered": np.stack(answered)}


def _pareto(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the Pareto-optimal points, cheapest first: each strictly more accurate than every
    cheaper or equally cheap point (ties in both: the lowest index)."""
    order = np.lexsort((np.arange(len(cost)), -accuracy, cost))
    acc = accuracy[order]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(acc)[:-1]))
    return order[acc > best_before]


def _route(ranks: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Stage answering each row: the first j with rank_j < K_j, else the last stage. K: (F, M - 1)
    -> (F, n); a (M - 1,) K -> (n,)."""
    K = np.asarray(K)
    flat = K.reshape(-1, len(ranks))
    stage = np.full((len(flat), ranks.shape[1]), len(ranks), dtype=np.intp)
    for j in range(len(ranks) - 1, -1, -1):  # the earliest stage that keeps the row's bin writes last
        np.copyto(stage, j, where=ranks[j][None] < flat[:, j:j + 1])
    return stage if K.ndim == 2 else stage[0]


def _evaluate(ranks: np.ndarray, correct: np.ndarray, costs: np.ndarray, K: np.ndarray,
              chunk: int = 64, stage: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Accuracy, mean cost and share answered per stage of configurations K (F, M - 1) on rows
    (``stage``: the rows already routed, ``_route(ranks, K)``, (F, n))."""
    stages, n = correct.shape
    called = np.concatenate((K > 0, np.ones((len(K), 1), dtype=bool)), axis=1)
    paid = np.cumsum(called * costs, axis=1)  # (F, M): a row answered at stage j pays paid[:, j]
    acc, cost, share = [np.zeros(0)], [np.zeros(0)], [np.zeros((0, stages))]  # no configuration: empty columns
    routed, rows = stage, np.arange(n)
    for lo in range(0, len(K), chunk):
        stage = _route(ranks, K[lo:lo + chunk]) if routed is None else routed[lo:lo + chunk]
        acc.append(correct[stage, rows].mean(axis=1))
        cost.append(np.take_along_axis(paid[lo:lo + chunk], stage, axis=1).mean(axis=1))
        # rows answered per stage: one histogram for the chunk, each configuration's in its own block
        blocks = (stage + (np.arange(len(stage)) * stages)[:, None]).ravel()
        share.append(np.bincount(blocks, minlength=len(stage) * stages).reshape(len(stage), stages) / n)
    return {"accuracy": np.concatenate(acc), "cost": np.concatenate(cost), "share": np.concatenate(share)}


def _answering(K: Sequence[int], sizes: Sequence[int]) -> str:
    """The stages configuration K can send rows to, e.g. ``"0+2"``: stage j < M - 1 when it
    keeps a bin and no earlier stage keeps all of its own; the last stage when none does."""
    out = []
    for j, (k, size) in enumerate(zip(K, sizes)):
        if k > 0:
            out.append(j)
        if k >= size:
            return "+".join(map(str, out))
    return "+".join(map(str, out + [len(sizes)]))


@dataclasses.dataclass(frozen=True)
class ChainPoints:
    """Configurations of a chain measured on some rows (what :meth:`ChainFrontier.measure`
    returns, and the frontier's own points on the rows it was fitted on).

    Attributes
    ----------
    K : ndarray of int, shape (F, M - 1)
        Bins kept per stage 0..M-2, one configuration per row.
    cost : ndarray, shape (F,)
        Expected cost per sample, in the unit of ``costs``.
    accuracy : ndarray, shape (F,)
    share : ndarray, shape (F, M)
        Share of samples answered by each stage.
    costs : ndarray, shape (M,)
    accuracy_last : float
        The last model's accuracy on the same rows.
    """

    K: np.ndarray
    cost: np.ndarray
    accuracy: np.ndarray
    share: np.ndarray
    costs: np.ndarray
    accuracy_last: float

    @property
    def cost_share(self) -> np.ndarray:
        """Cost as a share of the last model's, shape (F,)."""
        return self.cost / self.costs[-1]

    @property
    def accuracy_lost(self) -> np.ndarray:
        """The last model's accuracy minus each configuration's, shape (F,)."""
        return self.accuracy_last - self.accuracy

    @property
    def stages(self) -> list[str]:
        """The stages each configuration calls, e.g. ``"0+2"`` (a stage that keeps a bin, and the last)."""
        called = np.concatenate((self.K > 0, np.ones((len(self.K), 1), dtype=bool)), axis=1)
        return ["+".join(str(j) for j in np.flatnonzero(c)) for c in called]

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        """One row per configuration: ``K`` (a tuple), ``stages``, ``cost``, ``cost_share``,
        ``accuracy``, ``accuracy_lost`` and ``share_j`` per stage j."""
        columns = {
            "K": [tuple(int(k) for k in row) for row in self.K], "stages": self.stages,
            "cost": self.cost, "cost_share": self.cost_share, "accuracy": self.accuracy,
            "accuracy_lost": self.accuracy_lost, **{f"share_{j}": self.share[:, j] for j in range(self.share.shape[1])}}
        return pd.DataFrame(columns)


def _points(K: np.ndarray, measured: dict[str, np.ndarray], rows: ChainRows) -> ChainPoints:
    return ChainPoints(K, measured["cost"], measured["accuracy"], measured["share"], rows.costs,
                       float(rows.correct[-1].mean()))


# ---------------------------------------------------------------------------- the frontier


@dataclasses.dataclass(frozen=True)
class ChainFrontier:
    """What :func:`cascade_frontier` and :func:`fit_frontier` return.

    Attributes
    ----------
    points : ChainPoints
        The Pareto-optimal configurations on cal, cheapest first.
    table : DataFrame
        ``points.table``: one row per Pareto-optimal configuration on cal, cheapest first: ``K``
        (a tuple, bins kept per stage 0..M-2), ``stages`` (the stages called, e.g. ``"0+2"``),
        ``cost`` (expected cost per sample, in the unit of ``costs``), ``cost_share`` (cost / the
        last model's cost), ``accuracy``, ``accuracy_lost`` (the last model's accuracy minus the
        cascade's) and ``share_j`` (share of samples answered by stage j).
    edges, order : tuple of ndarray, one per stage 0..M-2
        The stage's bin edges on cal and the order its bins are kept in.
    costs : ndarray, shape (M,)
    cost_source : str
        ``"given"`` or the manifest field the costs came from.
    n_configurations : int
        prod(m_j + 1): every configuration the frontier was chosen from.
    """

    points: ChainPoints
    edges: tuple[np.ndarray, ...]
    order: tuple[np.ndarray, ...]
    costs: np.ndarray
    cost_source: str
    n_configurations: int

    @property
    def n_models(self) -> int:
        """M, the number of models."""
        return len(self.costs)

    @property
    def table(self) -> pd.DataFrame:
        """The frontier's points on cal as a table (see the class's attributes)."""
        return self.points.table

    @property
    def sizes(self) -> tuple[int, ...]:
        """m_j, the bins that exist on each stage 0..M-2 (the largest K_j)."""
        return tuple(len(o) for o in self.order)

    def answering(self, configuration: Sequence[int]) -> str:
        """The stages configuration K can send rows to, e.g. ``"1"`` for K = (0, m_1): stage
        j < M - 1 when it keeps a bin and no earlier stage keeps all of its bins, and the last
        stage when no stage keeps all of its bins. A configuration whose answer is ``"j"`` is
        model j alone, on any rows (every value falls in some bin)."""
        K = self._checked_configurations([configuration])[0]
        return _answering(K.tolist(), self.sizes)

    def measure(self, rows: ChainRows, configurations: Any = None, *, index: np.ndarray | None = None) -> ChainPoints:
        """The configurations (the frontier's own by default, or an array (F, M - 1) of K) on
        other checked rows, with the bins fitted on cal: :func:`evaluate_frontier` without
        checking the rows again and without the table.

        ``index`` ((M - 1, n), :meth:`StageBins.assign`) is the rows' bins under this frontier's
        edges where they are already known, e.g. for several frontiers that share their bins."""
        if rows.n_models != self.n_models:
            raise ValueError(f"rows: expected {self.n_models} models as in the frontier, got {rows.n_models}")
        K = self.points.K if configurations is None else self._checked_configurations(configurations)
        if index is None:
            ranks = _ranks(rows.conf, self.edges, self.order)
        elif np.shape(index) != (self.n_models - 1, rows.n):
            raise ValueError(f"index: expected shape {(self.n_models - 1, rows.n)}, got {np.shape(index)}")
        else:
            ranks = _ranks_of_bins(index, self.order)
        return _points(K, _evaluate(ranks, rows.correct, rows.costs, K), rows)

    def _checked_configurations(self, configurations: Any) -> np.ndarray:
        K = np.array(configurations)
        sizes = np.array(self.sizes)
        if not np.issubdtype(K.dtype, np.integer) or K.ndim != 2 or K.shape[1] != len(sizes) \
                or (K < 0).any() or (K > sizes).any():
            raise ValueError(f"configurations: expected integer rows of {len(sizes)} bin counts K_j in 0..{sizes.tolist()}, "
                             f"got {np.asarray(configurations).tolist()!r}")
        return K


def _fit_frontier(chain: ChainRows, n_bins: int, order: str, max_configurations: int,
                  bins: StageBins | None = None) -> ChainFrontier:
    bins = StageBins.of(chain, n_bins) if bins is None else bins
    orders = _keep_orders(bins, order)
    sizes = tuple(len(o) for o in orders)
    n_configurations = math.prod(s + 1 for s in sizes)
    if n_configurations > max_configurations:
        fits = round(max_configurations ** (1 / len(sizes)))
        fits = (fits if fits ** len(sizes) <= max_configurations else fits - 1) - 1  # float roots fall short
        raise ValueError(f"n_bins: {len(sizes) + 1} models with {n_bins} bins per stage make {n_configurations:,} "
                         f"configurations, more than max_configurations={max_configurations:,}; use n_bins <= {fits}")
    n = chain.conf.shape[1]
    grid = _grid(_ranks_of_bins(bins.index, orders), chain.correct, chain.costs, sizes)
    accuracy, cost = grid["correct"].ravel() / n, grid["cost"].ravel() / n
    keep = _pareto(cost, accuracy)
    K = np.stack(np.unravel_index(keep, tuple(s + 1 for s in sizes)), axis=1)
    share = grid["answered"].reshape(len(chain.costs), -1)[:, keep].T / n
    points = ChainPoints(K, cost[keep], accuracy[keep], share, chain.costs, float(chain.correct[-1].mean()))
    return ChainFrontier(points, bins.edges, tuple(orders), chain.costs, chain.cost_source, n_configurations)


def fit_frontier(rows: ChainRows, *, n_bins: int = 15, order: str = "advantage", bins: StageBins | None = None,
                 max_configurations: int = MAX_CONFIGURATIONS) -> ChainFrontier:
    """:func:`cascade_frontier` of rows checked once (:meth:`ChainRows.of`), which it does not
    check again: what a study that fits many frontiers on cuts of the same rows calls.

    ``bins`` (``StageBins.of(rows, n_bins)``, or its :meth:`StageBins.sub_chain` for ``rows``'s
    sub-chain) are these rows' bins, computed once for several frontiers; by default they are fitted
    here. Bins fitted on other rows are refused.
    """
    if order not in ORDERS:
        raise ValueError(f"order: expected one of {ORDERS}, got {order!r}")
    n_bins = check_n_bins(n_bins, rows.n)
    if bins is not None and (len(bins.edges) != rows.n_models - 1 or bins.index.shape != (rows.n_models - 1, rows.n)):
        raise ValueError(f"bins: fitted on {bins.index.shape[1]} rows of {len(bins.edges) + 1} models, not on these "
                         f"{rows.n} rows of {rows.n_models} models")
    return _fit_frontier(rows, n_bins, order, max_configurations, bins)


def cascade_frontier(conf_cal: Any, correct_cal: Any, costs: Sequence[float] | None = None, *, n_bins: int = 15,
                     order: str = "advantage", records: Sequence[Any] | None = None,
                     max_configurations: int = MAX_CONFIGURATIONS) -> ChainFrontier:
    """Every Pareto-optimal configuration of a chain of M >= 2 models, with its cost and accuracy on cal.

    Parameters
    ----------
    conf_cal : list of M arrays, shape (n,) each
        Each model's calibrated confidence (a probability) in its own answer on cal, in chain
        order (cheapest usually first), rows aligned sample by sample.
    correct_cal : list of M arrays, shape (n,) each
        0/1 verifier scores of each model's answer on the same rows.
    costs : sequence of M floats > 0, optional
        Cost of one call of each model (FLOPs, seconds, price). When omitted, ``records`` must be
        given and the costs are read from their manifests (:func:`costs_from_records`); the
        result's ``cost_source`` says which field.
    n_bins : int
        Equal-count bins asked for on each stage's confidence (m_j <= n_bins are formed: tied
        confidences are never split).
    order : {"advantage", "confidence"}
        The order bins are kept in: Algorithm 1's calibrated advantage of the last model over the
        stage, or the stage's confidence alone (most confident first: per-stage thresholds, as in
        FrugalGPT).
    records : list of M record sets, optional
        The chain's record sets; their ids must be aligned row by row (one error otherwise) and
        they supply the costs when ``costs`` is omitted.
    max_configurations : int
        Refuse chains with more configurations prod(m_j + 1) than this (memory).

    Returns
    -------
    ChainFrontier
        With two models, the frontier's rows are those rows of :func:`calcas.cascade_curve` on cal
        that no cheaper row matches in accuracy.
    """
    if order not in ORDERS:
        raise ValueError(f"order: expected one of {ORDERS}, got {order!r}")
    return fit_frontier(_checked_chain(conf_cal, correct_cal, costs, records), n_bins=n_bins, order=order,
                        max_configurations=max_configurations)


def evaluate_frontier(frontier: ChainFrontier, conf: Any, correct: Any, *, configurations: Any = None) -> pd.DataFrame:
    """The frontier's configurations (bins fitted on cal) evaluated on other rows, such as test.

    Parameters
    ----------
    frontier : ChainFrontier
    conf, correct : list of M arrays, shape (n,) each
        Calibrated confidences (with the calibrators fitted on cal) and 0/1 verifier scores of
        every model on the rows to evaluate.
    configurations : array of shape (F, M - 1), optional
        Other configurations K to evaluate with the same bins (default: the frontier's own).

    Returns
    -------
    DataFrame with the columns of ``frontier.table``, measured on these rows; on test a
    configuration can come out dearer or less accurate than its neighbours (it was Pareto on cal).
    """
    if len(_as_list(conf, "conf")) != frontier.n_models:
        raise ValueError(f"conf: expected {frontier.n_models} models as in the frontier, got {len(_as_list(conf, 'conf'))}")
    rows = _checked_chain(conf, correct, frontier.costs, None, names=("conf", "correct"))
    return frontier.measure(rows, configurations).table


# ---------------------------------------------------------------------------- selection with a guarantee


def betting_p_values(difference: Any, max_drop: float, *, cap: float = 0.5) -> np.ndarray:
    """Valid p-values for H0: E[difference] >= max_drop, one per row of ``difference``.

    A test by betting (Waudby-Smith & Ramdas 2024): the wealth prod_t (1 + lambda_t (max_drop - d_t))
    is a non-negative supermartingale under H0, so by Ville's inequality p = min(1, 1 / max_t
    wealth_t) is a valid p-value. lambda_t is chosen from the rows before t only (aGRAPA: the
    growth-optimal bet for the running mean and variance, at most ``cap / (1 - max_drop)``), which
    makes the test variance-adaptive: a difference that is mostly 0 is certified with few rows.

    Parameters
    ----------
    difference : array, shape (F, n) or (n,)
        Per-sample accuracy lost, in [-1, 1]: the last model's 0/1 score minus the cascade's, rows
        in an order that does not depend on their values (exchangeable rows: any fixed order).
    max_drop : float
        The largest mean loss to certify, in [0, 1).

    Returns
    -------
    ndarray, shape (F,) (a float for a 1-D ``difference``).
    """
    d = np.atleast_2d(np.asarray(difference, dtype=np.float64))
    p = _betting_p(d, _running_moments(d), max_drop, cap)
    return p if np.ndim(difference) == 2 else float(p[0])


def _running_moments(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The running mean and variance of the rows before t, shrunk towards 0 and 1/4 by one
    pseudo-row: the part of :func:`betting_p_values` that does not depend on max_drop."""
    t = np.arange(1, d.shape[1] + 1)
    mean_before = np.concatenate((np.zeros((len(d), 1)), np.cumsum(d, axis=1)[:, :-1]), axis=1) / t
    spread = np.concatenate((np.zeros((len(d), 1)), np.cumsum((d - mean_before) ** 2, axis=1)[:, :-1]), axis=1)
    return mean_before, (0.25 + spread) / t


def _betting_p(d: np.ndarray, moments: tuple[np.ndarray, np.ndarray], max_drop: float, cap: float = 0.5) -> np.ndarray:
    mean_before, var_before = moments
    gap = max_drop - mean_before
    bet = np.square(gap)  # the steps of gap / (var_before + gap ** 2), clipped, in place
    np.add(var_before, bet, out=bet)
    np.divide(gap, bet, out=bet)
    np.clip(bet, 0.0, cap / (1 - max_drop), out=bet)
    np.subtract(max_drop, d, out=gap)
    np.multiply(bet, gap, out=bet)
    log_wealth = np.cumsum(np.log1p(bet, out=bet), axis=1)
    return np.minimum(1.0, np.exp(-np.maximum(log_wealth.max(axis=1), 0.0)))


def _test_blocks(n: int) -> list[tuple[int, int]]:
    """The candidates tested at a time: the first alone (the sequence often stops there), then 8."""
    return [(0, min(1, n))] + [(lo, min(lo + 8, n)) for lo in range(1, n, 8)] if n else []


@dataclasses.dataclass(frozen=True)
class Selection:
    """What a fitted :class:`CascadeSelector` certifies at one (max_drop, delta)
    (:meth:`CascadeSelector.choose`).

    Attributes
    ----------
    max_drop, delta : float
        The level tested.
    config : tuple of int
        Bins kept per stage 0..M-2 (all 0: the last model alone).
    stages : str
        The stages the configuration calls, e.g. ``"1+2"`` (the last always among them).
    answering : str
        The stages it can send rows to (:meth:`ChainFrontier.answering`): ``"1"`` where stage 1
        keeps every bin and the last model is never reached, i.e. model 1 alone.
    expected_cost, cost_share : float
        Mean cost per sample on the certifying rows, and as a share of the last model's.
    bound : float
        The accuracy drop certified at level 1 - delta (``max_drop``; 0 for the last model alone).
    drop_certify : float
        The configuration's drop measured on the certifying rows.
    p_values : ndarray, shape (F,)
        Per candidate in testing order (:attr:`CascadeSelector.tested_`); NaN after the first failure.
    rejected : ndarray of bool, shape (F,)
    """

    max_drop: float
    delta: float
    config: tuple[int, ...]
    stages: str
    answering: str
    expected_cost: float
    cost_share: float
    bound: float
    drop_certify: float
    p_values: np.ndarray
    rejected: np.ndarray


def fit_input(conf_cal: Any, correct_cal: Any, costs: Any, records: Any) -> ChainRows:
    """What a selector's ``fit`` was given, as checked rows: :class:`ChainRows` as they are (then
    with no ``correct_cal``, ``costs`` or ``records``, which they hold), or lists checked once."""
    if isinstance(conf_cal, ChainRows):
        if correct_cal is not None or costs is not None or records is not None:
            raise ValueError("conf_cal: ChainRows carry the scores and costs; pass no correct_cal, costs or records")
        return conf_cal
    if correct_cal is None:
        raise ValueError("correct_cal: expected one array of 0/1 scores per model")
    return _checked_chain(conf_cal, correct_cal, costs, records)


def set_fitted(selector: Any, chosen: Selection) -> None:
    """A selector's fitted attributes (``config_``, ``stages_``, ``answering_``,
    ``expected_cost_``, ``cost_share_``, ``bound_``, ``drop_certify_``) from its choice."""
    selector._chosen = chosen
    selector.config_, selector.stages_, selector.answering_ = chosen.config, chosen.stages, chosen.answering
    selector.expected_cost_, selector.cost_share_ = chosen.expected_cost, chosen.cost_share
    selector.bound_, selector.drop_certify_ = chosen.bound, chosen.drop_certify


class CascadeSelector:
    """Choose a chain configuration that loses at most ``max_drop`` accuracy against the last model,
    with probability at least 1 - ``delta`` over the draw of cal (Learn-then-Test, Angelopoulos et al. 2021).

    ``fit`` splits cal at random: the bins and the Pareto frontier are fitted on a share
    ``fit_fraction`` of it, and the rest certifies. Along the frontier, from the most expensive
    configuration cheaper than the last model down to the cheapest, each configuration's null
    "it loses more than max_drop" is tested with :func:`betting_p_values` at level ``delta``
    (fixed-sequence testing: the order was fixed on the fit part, so no correction is needed);
    the first that cannot be rejected stops the sequence, and the cheapest rejected one is chosen.
    When none is rejected the chain is the last model alone, which loses nothing by definition.

    Assumption: cal and the rows the chain will see are exchangeable (drawn from one distribution,
    in no particular order). A shift of the inputs, a change of any model or of its calibrator, or
    calibrators fitted on the certifying rows break it.

    Parameters
    ----------
    max_drop : float in [0, 1)
    delta : float in (0, 1)
    n_bins : int
        Bins per stage, as in :func:`cascade_frontier`.
    fit_fraction : float in (0, 1)
        Share of cal that fits the bins and the frontier; the rest certifies.
    seed : int
        Seed of the split (and of the certifying rows' order).

    Attributes
    ----------
    frontier_ : ChainFrontier
        Fitted on the fit part.
    config_ : tuple of int
        Bins kept per stage 0..M-2 (all 0: the last model alone).
    stages_ : str
        The stages called, as in ``frontier_.table``.
    answering_ : str
        The stages the configuration can send rows to (:meth:`ChainFrontier.answering`).
    expected_cost_ : float
        Mean cost per sample on the certifying rows, in the unit of the costs.
    cost_share_ : float
        ``expected_cost_`` / the last model's cost.
    bound_ : float
        The accuracy drop certified at level 1 - delta (``max_drop``; 0 for the last model alone).
    drop_certify_ : float
        The chosen configuration's drop measured on the certifying rows.
    tested_ : DataFrame
        The candidates in testing order: the frontier's columns on the certifying rows and
        ``p_value``, ``rejected``; ``p_value`` is NaN after the first failure, where testing stops.
    cost_source_ : str
    n_fit_, n_certify_ : int
    """

    def __init__(self, *, max_drop: float, delta: float, n_bins: int = 15, fit_fraction: float = 0.5, seed: int = 0):
        self.max_drop = max_drop
        self.delta = delta
        self.n_bins = n_bins
        self.fit_fraction = fit_fraction
        self.seed = seed

    def fit(self, conf_cal: Any, correct_cal: Any = None, costs: Sequence[float] | None = None, *,
            records: Sequence[Any] | None = None, fit_rows: Any = None) -> "CascadeSelector":
        """Fit on cal: lists of M calibrated confidences and 0/1 scores (n,) in chain order, or
        :class:`ChainRows` already checked (then without ``correct_cal``, ``costs`` and
        ``records``, which it holds); returns self.

        ``fit_rows`` (indices into cal) fixes which rows fit the bins and the frontier, e.g. the rows
        the calibrators were fitted on; the rest certify. By default a seeded random
        ``fit_fraction`` of cal."""
        max_drop, delta = check_max_drop(self.max_drop), check_delta(self.delta)
        fraction = _real(self.fit_fraction, "fit_fraction")
        if not 0 < fraction < 1:
            raise ValueError(f"fit_fraction: must be in (0, 1), got {self.fit_fraction!r}")
        chain = fit_input(conf_cal, correct_cal, costs, records)
        n = chain.n
        n_fit = int(round(fraction * n))
        if not 1 <= n_fit < n:
            raise ValueError(f"fit_fraction: {fraction} of {n} cal rows leaves no rows to fit on or to certify")
        rows = np.random.default_rng(self.seed).permutation(n)
        if fit_rows is not None:
            chosen = np.zeros(n, dtype=bool)
            chosen[np.asarray(fit_rows, dtype=np.int64)] = True
            rows, n_fit = np.concatenate((np.flatnonzero(chosen), rows[~chosen[rows]])), int(chosen.sum())
            if not 1 <= n_fit < n:
                raise ValueError(f"fit_rows: must select at least one and fewer than all {n} cal rows, got {n_fit}")
        fit, certify = rows[:n_fit], rows[n_fit:]
        self.frontier_ = _fit_frontier(chain.take(fit), check_n_bins(self.n_bins, n_fit), "advantage",
                                       MAX_CONFIGURATIONS)
        self.n_fit_, self.n_certify_, self.cost_source_ = n_fit, len(certify), chain.cost_source
        self._candidates(chain.take(certify))
        self._choose(max_drop, delta)
        return self

    def _candidates(self, certify: ChainRows) -> None:
        """The configurations to test, in testing order, and the certifying rows' bins: everything
        of the certification that does not depend on max_drop or delta. What each candidate loses
        per row is routed when the sequence first reaches it (:meth:`_block`)."""
        points = self.frontier_.points
        self._candidate_K = points.K[np.flatnonzero(points.cost < self.frontier_.costs[-1])[::-1]]
        self._certify, self._measured = certify, {}
        self._certify_ranks = _ranks(certify.conf, self.frontier_.edges, self.frontier_.order)
        self._blocks: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]] = []  # whatever the max_drop
        self._p_values: dict[float, list[np.ndarray]] = {}  # per max_drop, the blocks tested so far

    def _block(self, i: int, lo: int, hi: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
        """Block i of the candidates (rows lo..hi of the testing order): the accuracy each loses
        against the last model per certifying row, (hi - lo, n), its running moments, and the stage
        that answers each row."""
        if i == len(self._blocks):
            c = self._certify.correct
            stage = _route(self._certify_ranks, self._candidate_K[lo:hi])
            difference = c[-1][None] - c[stage, np.arange(c.shape[1])]
            self._blocks.append((difference, _running_moments(difference), stage))
        return self._blocks[i]

    def choose(self, *, max_drop: float, delta: float) -> "Selection":
        """What the fitted selector certifies at another (max_drop, delta): the same frontier,
        certifying rows and testing order, tested again at this level. The fitted attributes are
        left as they are; ``fit`` sets them from ``choose(max_drop=self.max_drop, delta=self.delta)``.

        Returns
        -------
        Selection
        """
        if not hasattr(self, "frontier_"):
            raise RuntimeError("CascadeSelector is not fitted; call fit(conf_cal, correct_cal, costs) first")
        max_drop, delta = check_max_drop(max_drop), check_delta(delta)
        # fixed sequence: stop at the first failure; configurations after it are never tested (p is NaN).
        # A configuration's p-value depends on max_drop only, so other deltas reuse the chunks computed.
        p = np.full(len(self._candidate_K), np.nan)
        chunks = self._p_values.setdefault(max_drop, [])
        for i, (lo, hi) in enumerate(_test_blocks(len(p))):
            if i == len(chunks):
                difference, moments, _ = self._block(i, lo, hi)
                chunks.append(_betting_p(difference, moments, max_drop))
            p[lo:hi] = chunks[i]
            if (p[lo:hi] > delta).any():
                break
        rejected = np.cumprod(np.nan_to_num(p, nan=1.0) <= delta).astype(bool)
        p[int(rejected.sum()) + 1:] = np.nan
        last = self.frontier_.n_models - 1
        if rejected.any():
            i = int(np.flatnonzero(rejected)[-1])
            chosen = self._on_certify(i)
            config, stages, bound = tuple(int(k) for k in chosen.K[0]), chosen.stages[0], max_drop
            expected_cost, drop_certify = float(chosen.cost[0]), chosen.accuracy_lost[0]
        else:
            config, stages, bound = (0,) * last, str(last), 0.0
            expected_cost, drop_certify = float(self.frontier_.costs[-1]), 0.0
        return Selection(max_drop, delta, config, stages, _answering(config, self.frontier_.sizes), expected_cost,
                         expected_cost / float(self.frontier_.costs[-1]), bound, drop_certify, p, rejected)

    def _choose(self, max_drop: float, delta: float) -> None:
        """Set the fitted attributes from :meth:`choose` at (max_drop, delta)."""
        set_fitted(self, self.choose(max_drop=max_drop, delta=delta))

    def _on_certify(self, candidate: int | None = None) -> ChainPoints:
        """One tested candidate (its rows already routed for its test), or every candidate,
        measured on the certifying rows."""
        if candidate not in self._measured:
            rows, K, stage = self._certify, self._candidate_K, None
            if candidate is not None:
                i, (lo, _) = next((i, b) for i, b in enumerate(_test_blocks(len(K))) if b[0] <= candidate < b[1])
                K, stage = K[candidate:candidate + 1], self._blocks[i][2][candidate - lo:candidate - lo + 1]
            self._measured[candidate] = _points(K, _evaluate(self._certify_ranks, rows.correct, rows.costs, K,
                                                             stage=stage), rows)
        return self._measured[candidate]

    @property
    def tested_(self) -> pd.DataFrame:
        """The candidates in testing order (see the class's attributes), built when first read."""
        return self._on_certify().table.assign(p_value=self._chosen.p_values, rejected=self._chosen.rejected)

    def route(self, conf: Any) -> np.ndarray:
        """Index of the stage whose answer is kept, per sample, shape (n,).

        ``conf`` is a list of the M models' calibrated confidences (n,) in chain order; only the
        stages the configuration calls are read (pass anything of the right length for the others).
        """
        if not hasattr(self, "config_"):
            raise RuntimeError("CascadeSelector is not fitted; call fit(conf_cal, correct_cal, costs) first")
        c = _as_list(conf, "conf")
        if len(c) != self.frontier_.n_models:
            raise ValueError(f"conf: expected {self.frontier_.n_models} models, got {len(c)}")
        checked = np.stack([confidence_array(x, f"conf[{j}]") for j, x in enumerate(c)])
        return _route(_ranks(checked, self.frontier_.edges, self.frontier_.order), np.array(self.config_))
