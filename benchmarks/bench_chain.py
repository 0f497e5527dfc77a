"""Speed of calcas.cascade_frontier and of select_cascade(method="threshold") (chains of M models)
against peers measured side by side in one process on the same seeded data (these machines are
noisy: read the ratios, not the times).

    python benchmarks/bench_chain.py [--quick]

Issue: the frontier of a 5-model chain with N = 10 bins per stage on 25,000 cal rows in <= 2 s
(median of 5 runs). Rows are synthetic: confidences beta-distributed, correctness Bernoulli(conf),
costs 1, 2, 4, 8, 16, ... The peer evaluates every one of the (N + 1)^(M - 1) configurations on
the rows with numpy (route the rows, mean accuracy and cost), then takes the Pareto set; the two
frontiers must be identical (same K tuples, cost and accuracy to 1e-9).

Issue: select_cascade(..., method="threshold") on a 5-model chain (15 sub-chains tested), a
101-point lambda grid and 25,000 cal rows in <= 2 s (median of 5 runs; max_drop=0.02, delta=0.1).
The peer is the plain method: per sub-chain and per lambda, route the rows with numpy, one call
of calcas.betting_p_values, fixed-sequence stopping at the first p > delta / 15, then the cheapest
rejected configuration; both must select the same configuration (thresholds, stages, cost).
"""
from __future__ import annotations

import argparse
import gc
import itertools
import os
import platform
import statistics
import time

import numpy as np

import calcas


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median wall time of ``repeat`` runs, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def synthetic_chain(n: int, M: int, seed: int) -> tuple[list, list, list]:
    """M models, better along the chain: beta confidences, correctness ~ Bernoulli(conf)."""
    rng = np.random.default_rng(seed)
    conf = [rng.beta(2.0 + j, 1.0, n) for j in range(M)]
    correct = [(rng.random(n) < c).astype(np.float64) for c in conf]
    return conf, correct, [float(2 ** j) for j in range(M)]


def brute_force(conf, correct, costs, edges, order, chunk: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every configuration routed on the rows, then the Pareto set (cheapest first; strictly more
    accurate than every cheaper or equally cheap point; exact ties keep the first in grid order)."""
    conf, correct, costs = np.asarray(conf), np.asarray(correct), np.asarray(costs)
    M, n = conf.shape
    ranks = np.empty((M - 1, n), dtype=np.int64)
    for j in range(M - 1):
        rank_of_bin = np.argsort(order[j])
        ranks[j] = rank_of_bin[np.searchsorted(edges[j][1:-1], conf[j], side="right")]
    K = np.array(list(itertools.product(*(range(len(o) + 1) for o in order))), dtype=np.int64)
    accuracy, cost = np.empty(len(K)), np.empty(len(K))
    rows = np.arange(n)
    for lo in range(0, len(K), chunk):
        k = K[lo:lo + chunk]
        kept = ranks[None] < k[:, :, None]                                   # (F, M - 1, n)
        stage = np.where(kept.any(axis=1), kept.argmax(axis=1), M - 1)       # (F, n)
        paid = np.cumsum(np.concatenate((k > 0, np.ones((len(k), 1), bool)), axis=1) * costs, axis=1)
        accuracy[lo:lo + chunk] = correct[stage, rows].mean(axis=1)
        cost[lo:lo + chunk] = np.take_along_axis(paid, stage, axis=1).mean(axis=1)
    by = np.lexsort((np.arange(len(K)), -accuracy, cost))
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(accuracy[by])[:-1]))
    keep = by[accuracy[by] > best_before]
    return K[keep], cost[keep], accuracy[keep]


def same_frontier(table, K, cost, accuracy) -> bool:
    return (list(table["K"]) == [tuple(int(x) for x in k) for k in K]
            and np.allclose(table["cost"], cost, rtol=0, atol=1e-9)
            and np.allclose(table["accuracy"], accuracy, rtol=0, atol=1e-9))


def plain_threshold(conf, correct, costs, max_drop: float, delta: float, lambdas: int, seed: int = 0) -> dict:
    """The threshold method written plainly: every sub-chain, every lambda of the grid from high
    to low, rows routed with numpy and a p-value per lambda, stopping at the first failure."""
    conf, correct, costs = np.asarray(conf), np.asarray(correct), np.asarray(costs, dtype=np.float64)
    M, n = conf.shape
    order = np.random.default_rng(seed).permutation(n)  # every row certifies, read in this order
    conf, correct = conf[:, order], correct[:, order]
    grid = np.linspace(1.0, 0.0, lambdas)
    subs = [(*s, M - 1) for k in range(1, M) for s in itertools.combinations(range(M - 1), k)]
    level = delta / len(subs)
    best = (float(costs[-1]), (float("inf"),) * (M - 1), str(M - 1))
    rows = np.arange(n)
    for sub in subs:
        paid = np.cumsum(costs[list(sub)])
        for lam in grid:
            stage = np.full(n, len(sub) - 1)
            for pos in range(len(sub) - 2, -1, -1):
                stage[conf[sub[pos]] >= lam] = pos
            answer = np.asarray(sub)[stage]
            p = calcas.betting_p_values(correct[-1] - correct[answer, rows], max_drop)
            if p > level:
                break
            cost = float(paid[stage].mean())
            if cost < best[0] - 1e-12:
                best = (cost, tuple(float(lam) if j in sub else float("inf") for j in range(M - 1)),
                        "+".join(map(str, sub)))
    return {"expected_cost": best[0], "config": best[1], "stages": best[2]}


def bench_threshold(rows: list, M: int, G: int, n: int, target: float | None,
                    max_drop: float = 0.02, delta: float = 0.1) -> None:
    conf, correct, costs = synthetic_chain(n, M, seed=M * 1000 + G)
    ours_t, sel = timed(lambda: calcas.select_cascade(conf, correct, costs, max_drop=max_drop, delta=delta,
                                                      method="threshold", lambdas=G), 5)
    peer_t, ref = timed(lambda: plain_threshold(conf, correct, costs, max_drop, delta, G), 1)
    same = (sel.config_ == ref["config"] and sel.stages_ == ref["stages"]
            and abs(sel.expected_cost_ - ref["expected_cost"]) <= 1e-9)
    tested = len(sel.tested_)
    lam = "-" if sel.threshold_ is None else f"{sel.threshold_:.3g}"
    note = f"{len(sel.sub_chains_)} sub-chains tested, {tested} (sub-chain, lambda) tests; chose {sel.stages_} " \
           f"at lambda {lam}, cost share {sel.cost_share_:.3f}; identical: {'yes' if same else 'NO'}"
    if target is not None:
        note += f"; <= {target:g} s: {'target met' if ours_t <= target else 'target missed'}"
    rows.append((f"select_cascade threshold M={M}, {G}-point grid, {n:,} rows", PLAIN_PEER, ours_t, peer_t, note))


FRONTIER_PEER = "brute force over every configuration (numpy)"
PLAIN_PEER = "plain loop over sub-chains and lambdas (numpy routing, betting_p_values per lambda)"


def bench(rows: list, M: int, N: int, n: int, target: float | None) -> None:
    conf, correct, costs = synthetic_chain(n, M, seed=M * 100 + N)
    ours_t, f = timed(lambda: calcas.cascade_frontier(conf, correct, costs, n_bins=N), 5)
    peer_t, (K, cost, accuracy) = timed(lambda: brute_force(conf, correct, costs, f.edges, f.order), 1)
    note = f"{f.n_configurations:,} configurations, {len(f.table)} on the frontier; identical: " \
           f"{'yes' if same_frontier(f.table, K, cost, accuracy) else 'NO'}"
    if target is not None:
        note += f"; <= {target:g} s: {'target met' if ours_t <= target else 'target missed'}"
    rows.append((f"cascade_frontier M={M}, N={N}, {n:,} rows", FRONTIER_PEER, ours_t, peer_t, note))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and bins (a smoke run, not the targets)")
    args = parser.parse_args()
    print(f"calcas {calcas.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    n = 2_000 if args.quick else 25_000
    cases = [(5, 4, None), (3, 6, None), (6, 3, None)] if args.quick else [(5, 10, 2.0), (3, 15, None), (6, 6, None)]
    rows: list = []
    for M, N, target in cases:
        bench(rows, M, N, n, target)
    bench_threshold(rows, 5, 101, n, None if args.quick else 2.0)
    if not args.quick:
        bench_threshold(rows, 3, 101, n, None)
    print()
    print("| figure | peer | ours (s, median of 5) | peer (s) | ours / peer | note |")
    print("|---|---|---|---|---|---|")
    for figure, peer, ours_t, peer_t, note in rows:
        print(f"| {figure} | {peer} | {ours_t:.4f} | {peer_t:.4f} | "
              f"{ours_t / peer_t:.3g} | {note} |")


if __name__ == "__main__":
    main()
