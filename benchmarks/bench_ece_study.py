"""The ECE estimator study (chapter 09, issue #12) and the speed of the new estimators, measured
side by side in one process on the same seeded data (read the ratios, not the absolute times).

    python benchmarks/bench_ece_study.py [--quick] [--draws 500] [--n-boot 200]

Prints the study's two tables as in the book (bias and RMSE of the plug-in, debiased and smooth
ECE; coverage and width of ece_bootstrap's percentile interval and of ece_interval, at
a = 0.03 and a = 0, n in {500, 2,000, 20,000}, N in {5, 15, 30}) with the study's wall time
(target: within 60 s on the 2-core machine), then smooth_ece against relplot.smECE at
n = 10^4, 10^5, 10^6 (same value to 1e-6) and ece(estimator="debiased") against the plug-in
at n = 10^5 and 10^6.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

import calcas
from calcas import estimator_study as study

from bench import best_time


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def timings(quick: bool) -> list[tuple[str, str, float, float, str]]:
    rows = []
    rng = np.random.default_rng(0)
    try:
        import relplot
    except ImportError:  # a test-only dependency
        relplot = None
    for n in ([10**4, 10**5] if quick else [10**4, 10**5, 10**6]):
        c = rng.beta(*study.BETA, n)
        v = (rng.random(n) < study.accuracy_at(c, 0.03)).astype(float)
        repeat = 3 if n < 10**6 else 2
        if relplot is not None:
            ours_t, ours = best_time(lambda: calcas.smooth_ece(c, v), repeat)
            peer_t, peer = best_time(lambda: relplot.smECE(c, v), repeat)
            rows.append((f"smooth_ece n={n:,}", "relplot.smECE 1.0.3", ours_t, peer_t,
                         f"|difference| {abs(ours - peer):.1e} (target 1e-6: {_verdict(abs(ours - peer) <= 1e-6)})"))
        if n >= 10**5:
            deb_t, _ = best_time(lambda: calcas.ece(c, v, estimator="debiased"), repeat)
            plug_t, _ = best_time(lambda: calcas.ece(c, v), repeat)
            rows.append((f"ece debiased n={n:,}", "ece plug-in", deb_t, plug_t, "15 equal-count bins"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 draws and smaller timings (a smoke run)")
    parser.add_argument("--draws", type=int, default=500, help="simulated data sets per configuration")
    parser.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates per interval")
    parser.add_argument("--real-functions", action="store_true",
                        help="also measure the coverage of ece_bootstrap and ece_interval themselves at N = 15 "
                             "(every draw through the functions; about 10 minutes at 500 draws)")
    args = parser.parse_args()
    print(f"calcas {calcas.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    result = study.run_study(50 if args.quick else args.draws, (0.03, 0.0), args.n_boot, 0)
    pd.set_option("display.width", 160)
    print(f"\nstudy: {result.draws} draws, {result.n_boot} replicates, {result.seconds:.1f} s "
          f"(target 60 s: {_verdict(result.seconds <= 60)})")
    for a, t in result.truth.items():
        print(f"a = {a:g}: true ECE {t['ece']:.4f}, smooth ECE large-n limit {t['smooth']:.4f}")
    estimates = pd.concat({v: study.estimates_table(result, v) for v in ("bias", "rmse")}, axis=1)
    intervals = pd.concat({v: study.intervals_table(result, v) for v in ("coverage", "width")}, axis=1)
    print("\nbias and RMSE\n" + estimates.round(4).to_string())
    print("\ninterval coverage and mean width (percentile: ece_bootstrap)\n" + intervals.round(3).to_string())
    est = result.estimates
    d = float(est[(est.amplitude == 0.03) & (est.n == 2000) & (est.n_bins == 15) & (est.estimator == "debiased")]["bias"].iloc[0])
    print(f"\ndebiased bias at a = 0.03, n = 2,000, N = 15: {d:+.4f} (target |bias| <= 0.005: {_verdict(abs(d) <= 0.005)})")
    worst = result.intervals[result.intervals["interval"] == study.INTERVAL_NAMES["corrected"]]["coverage"].min()
    print(f"ece_interval's worst coverage: {worst:.3f} (target >= 0.90: {_verdict(worst >= 0.9)})")
    deciding = study.deciding_coverage(result)
    print("\nthe intervals the book decides from: worst and best coverage over their cases\n"
          + deciding.groupby("interval")["coverage"].agg(["min", "max", "count"]).round(3).to_string())
    if args.real_functions:
        start = time.perf_counter()
        real = pd.concat([study.function_coverage(n, 15, a, result.draws, args.n_boot)
                          for a in (0.03, 0.0) for n in study.SIZES], ignore_index=True)
        print(f"\nthe functions themselves at N = 15 ({time.perf_counter() - start:.0f} s)\n"
              + real.round(3).to_string(index=False))
    print("\n| figure | peer | ours (s) | peer (s) | ours / peer | note |")
    print("|---|---|---|---|---|---|")
    for figure, peer, ours_t, peer_t, note in timings(args.quick):
        print(f"| {figure} | {peer} | {ours_t:.4f} | {peer_t:.4f} | {ours_t / peer_t:.3f} | {note} |")


if __name__ == "__main__":
    main()
