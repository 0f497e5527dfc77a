"""Speed of calcas.cascade_frontier (chains of M models) against a brute force measured side by side
in one process on the same seeded data (these machines are noisy: read the ratios, not the times).

    python benchmarks/bench_chain.py [--quick]

Issue: the frontier of a 5-model chain with N = 10 bins per stage on 25,000 cal rows in <= 2 s
(median of 5 runs). Rows are synthetic: confidences beta-distributed, correctness Bernoulli(conf),
costs 1, 2, 4, 8, 16, ... The peer evaluates every one of the (N + 1)^(M - 1) configurations on
the rows with numpy (route the rows, mean accuracy and cost), then takes the Pareto set; the two
frontiers must be identical (same K tuples, cost and accuracy to 1e-9).
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


def bench(rows: list, M: int, N: int, n: int, target: float | None) -> None:
    conf, correct, costs = synthetic_chain(n, M, seed=M * 100 + N)
    ours_t, f = timed(lambda: calcas.cascade_frontier(conf, correct, costs, n_bins=N), 5)
    peer_t, (K, cost, accuracy) = timed(lambda: brute_force(conf, correct, costs, f.edges, f.order), 1)
    note = f"{f.n_configurations:,} configurations, {len(f.table)} on the frontier; identical: " \
           f"{'yes' if same_frontier(f.table, K, cost, accuracy) else 'NO'}"
    if target is not None:
        note += f"; <= {target:g} s: {'target met' if ours_t <= target else 'target missed'}"
    rows.append((f"cascade_frontier M={M}, N={N}, {n:,} rows", ours_t, peer_t, note))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and bins (a smoke run, not the target)")
    args = parser.parse_args()
    print(f"calcas {calcas.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    n = 2_000 if args.quick else 25_000
    cases = [(5, 4, None), (3, 6, None), (6, 3, None)] if args.quick else [(5, 10, 2.0), (3, 15, None), (6, 6, None)]
    rows: list = []
    for M, N, target in cases:
        bench(rows, M, N, n, target)
    print()
    print("| figure | peer | ours (s, median of 5) | peer (s) | ours / peer | note |")
    print("|---|---|---|---|---|---|")
    for figure, ours_t, peer_t, note in rows:
        print(f"| {figure} | brute force over every configuration (numpy) | {ours_t:.4f} | {peer_t:.4f} | "
              f"{ours_t / peer_t:.3g} | {note} |")


if __name__ == "__main__":
    main()
