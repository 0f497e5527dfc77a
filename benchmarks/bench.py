"""Speed of calcas against its peers, measured side by side in one process on the same seeded
data (these machines are noisy: read the ratios, not the absolute times).

    python benchmarks/bench.py [--quick]

Figures (issue #2): temperature fit on 25,000 x 1,000 fp32 logits against scikit-learn's
CalibratedClassifierCV(FrozenEstimator, method="temperature") and netcal's
TemperatureScaling (where it installs), at equal NLL; the full cascade sweep (N = 15, every
K) on 25,000 cal + 25,000 test samples against a per-K routing loop; the method-2 cleaning
sweep with 3 experts on 50,000 x 1,000 probabilities against cleanlab's find_label_issues;
peak memory of the temperature fit as a multiple of the logits array.

Issue #10: ece_bootstrap and paired_difference_interval at 10^6 and 10^7 rows with 1,000
replicates (time, and peak memory as a multiple of the input arrays) against the resampling
they replaced, which materialised every resample (its time extrapolated from a few
replicates, its memory measured where it fits); max_prob_confidence's peak memory on
50,000 x 1,000 fp32 and fp16 logits against the whole-matrix float64 computation it replaced.

    python benchmarks/bench.py --section bootstrap   # one section only
"""
from __future__ import annotations

import argparse
import gc
import importlib.metadata as md
import os
import platform
import time
import tracemalloc
import warnings

import numpy as np
from scipy.special import softmax

import calcas

warnings.filterwarnings("ignore")


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def peak_bytes(fn) -> int:
    """Peak memory numpy allocates while fn runs (tracemalloc sees numpy's buffers)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def imagenet_like_logits(n: int, C: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident fp32 logits with ~80% top-1 accuracy, like an ImageNet classifier."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    z = rng.standard_normal((n, C), dtype=np.float32) * 2.0
    z[np.arange(n), y] += (rng.standard_normal(n) * 3 + 7).astype(np.float32)
    return z, y


class _Logits:
    """A frozen 'classifier' whose decision_function returns its input (the logits)."""
    _estimator_type = "classifier"

    def __init__(self, n_classes: int):
        self.classes_ = np.arange(n_classes)

    def fit(self, X, y):
        return self

    def decision_function(self, X):
        return X

    def predict(self, X):
        return X.argmax(axis=1)

    def get_params(self, deep=True):
        return {"n_classes": len(self.classes_)}

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, ClassifierTags, TargetTags
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags())


def bench_temperature(rows: list, quick: bool) -> None:
    n, C = (5_000, 100) if quick else (25_000, 1_000)
    z, y = imagenet_like_logits(n, C, seed=0)
    ours_t, T = best_time(lambda: calcas.fit_temperature(z, y), 3)
    ours_nll = calcas.temperature_nll(z, y, T)
    logits_bytes = z.nbytes
    ours_peak = (logits_bytes + peak_bytes(lambda: calcas.fit_temperature(z, y))) / logits_bytes
    peers = []
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    sk = CalibratedClassifierCV(FrozenEstimator(_Logits(C)), method="temperature")
    sk_t, _ = best_time(lambda: sk.fit(z, y), 1)
    sk_T = 1.0 / float(sk.calibrated_classifiers_[0].calibrators[0].beta_)
    sk_peak = (logits_bytes + peak_bytes(lambda: CalibratedClassifierCV(
        FrozenEstimator(_Logits(C)), method="temperature").fit(z, y))) / logits_bytes
    peers.append((f"scikit-learn {md.version('scikit-learn')}", sk_t, calcas.temperature_nll(z, y, sk_T), sk_peak))
    try:
        from netcal.scaling import TemperatureScaling as NetcalTS
        probs = softmax(z.astype(np.float64), axis=1)
        nc = NetcalTS(method="mle")
        nc_t, _ = best_time(lambda: nc.fit(probs, y), 1)
        q = np.clip(nc.transform(probs), 1e-300, None)
        nc_nll = float(-np.log(q[np.arange(n), y]).mean())
        peers.append((f"netcal {md.version('netcal')}", nc_t, nc_nll, float("nan")))
    except Exception as err:  # netcal is optional: report, do not fail
        print(f"netcal not measured: {type(err).__name__}: {err}")
    fastest = min(peers, key=lambda p: p[1])
    for name, t, nll, peak in peers:
        rows.append((f"temperature fit {n}x{C} fp32", name, ours_t, t,
                     f"NLL ours {ours_nll:.9f} vs {nll:.9f} (rel {abs(ours_nll - nll) / nll:.1e})"))
    rows.append((f"temperature fit {n}x{C} fp32", "target", ours_t, fastest[1],
                 f"<= 0.3 s: {'met' if ours_t <= 0.3 else 'MISSED'}; >= 3x faster than fastest peer: "
                 f"{'met' if fastest[1] / ours_t >= 3 else 'MISSED'} ({fastest[1] / ours_t:.1f}x)"))
    rows.append(("peak memory, temperature fit", f"scikit-learn: {sk_peak:.2f}x logits", ours_peak, sk_peak,
                 f"ours {ours_peak:.2f}x the logits array (target <= 3x: {'met' if ours_peak <= 3 else 'MISSED'})"))


def bench_cascade(rows: list, quick: bool) -> None:
    sets = calcas.make_synthetic(50_000, n_classes=10, accuracy=(0.7, 0.9), confidence_scale=(1.5, 1.2),
                                 correlation=0.3, names=("small", "large"), seed=1)
    small, large = sets["small"], sets["large"]
    cal = small.cal_mask()
    cs, cl = small.raw_confidence(), large.raw_confidence()
    vs, vl = small.verified, large.verified

    def ours():
        return calcas.cascade_curve(cs[cal], cl[cal], cs[~cal], vs[~cal], vl[~cal], n_bins=15)

    def per_k_loop():  # the obvious implementation: route the test set once per K
        router = calcas.AdvantageRouter(15).fit(cs[cal], cl[cal])
        return [np.mean(np.where(router.route(cs[~cal], K), vs[~cal], vl[~cal])) for K in range(16)]

    ours_t, curve = best_time(ours, 20)
    peer_t, accs = best_time(per_k_loop, 5)
    assert np.allclose(curve["accuracy"], accs)
    rows.append(("cascade sweep N=15, every K, 25k cal + 25k test", "per-K routing loop", ours_t, peer_t,
                 f"<= 20 ms: {'met' if ours_t <= 0.020 else 'MISSED'}; same accuracies"))


def bench_cleaning(rows: list, quick: bool) -> None:
    n, C = (10_000, 1_000) if quick else (50_000, 1_000)
    sets = calcas.make_synthetic(n, n_classes=C, accuracy=(0.75, 0.8, 0.85), confidence_scale=(1.0, 1.0, 1.0),
                                 correlation=0.3, flip_rate=0.05, seed=2)
    probs = [softmax(r.logits, axis=1).astype(np.float32) for r in sets.values()]
    labels = next(iter(sets.values())).label
    cal = next(iter(sets.values())).cal_mask()

    def ours():
        preds = np.stack([p.argmax(axis=1) for p in probs])
        conf = np.stack([p.max(axis=1) for p in probs])
        return calcas.cleaning_sweep(preds, conf, labels, fit_mask=cal)

    from cleanlab.filter import find_label_issues
    ours_t, _ = best_time(ours, 3)
    peer_t, _ = best_time(lambda: find_label_issues(labels, probs[0], filter_by="prune_by_noise_rate"), 1)
    rows.append((f"cleaning method-2 sweep, 3 experts, {n}x{C}",
                 f"cleanlab {md.version('cleanlab')} find_label_issues (1 model)", ours_t, peer_t,
                 f"<= 0.5x cleanlab: {'met' if ours_t / peer_t <= 0.5 else 'MISSED'}"))


# ---------------------------------------------------------------- issue #10: bootstrap and top-1 memory


def _old_ece_replicates(c, v, n_bins, n_boot, seed):
    """The resampling ece_bootstrap replaced: every resample materialised and its edges re-fitted by a sort."""
    from calcas.binning import _edges
    from calcas.metrics import _binned, _ece
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for r in range(n_boot):
        idx = rng.integers(0, len(c), len(c))
        ci, vi = c[idx], v[idx]
        reps[r] = _ece(*_binned(ci, vi, _edges(ci, n_bins, "equal_count")))
    return reps


def _old_mean_replicates(d, n_boot, seed):
    """The resampling paired_difference_interval replaced: (256, n) index draws at a time."""
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for start in range(0, n_boot, 256):
        stop = min(n_boot, start + 256)
        reps[start:stop] = d[rng.integers(0, len(d), (stop - start, len(d)))].mean(axis=1)
    return reps


def _old_max_prob(z, T):
    """The max_prob_confidence it replaced: the logits widened to float64 whole, then three more matrices."""
    z = z.astype(np.float64)
    pred = z.argmax(axis=1)
    top = z[np.arange(len(z)), pred]
    return 1.0 / np.exp((z - top[:, None]) / T).sum(axis=1), pred


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def bench_bootstrap(rows: list, quick: bool) -> None:
    sizes, n_boot = ((100_000,), 100) if quick else ((1_000_000, 10_000_000), 1000)
    peak_boot = 20  # memory does not grow with replicates (checked in tests): a few suffice
    for n in sizes:
        rng = np.random.default_rng(n)
        c = rng.random(n)
        v = (rng.random(n) < c ** 1.3).astype(np.float64)
        inputs = c.nbytes + v.nbytes
        label = f"{n:.0e} rows x {n_boot}".replace("e+0", "e")

        ours_t, _ = best_time(lambda: calcas.ece_bootstrap(c, v, 15, n_boot=n_boot), 1)
        ours_peak = (inputs + peak_bytes(lambda: calcas.ece_bootstrap(c, v, 15, n_boot=peak_boot))) / inputs
        old_reps = 10 if n <= 1_000_000 else 3
        old_t, _ = best_time(lambda: _old_ece_replicates(c, v, 15, old_reps, 0), 1)
        old_peak = (inputs + peak_bytes(lambda: _old_ece_replicates(c, v, 15, old_reps, 0))) / inputs
        target = f"<= 30 s: {_verdict(ours_t <= 30)}; " if n == 1_000_000 else ""
        rows.append((f"ece_bootstrap equal_count, {label}", f"old resampling (x{n_boot} from {old_reps})",
                     ours_t, old_t * n_boot / old_reps,
                     f"{target}{1000 * ours_t / n_boot:.1f} ms a replicate"))
        rows.append((f"peak memory, ece_bootstrap {label}", f"old: {old_peak:.2f}x inputs", ours_peak, old_peak,
                     f"ours {ours_peak:.2f}x the inputs (2 float64 arrays; target <= 3x: {_verdict(ours_peak <= 3)})"))

        ours_t, _ = best_time(lambda: calcas.paired_difference_interval(c, v, n_boot=n_boot), 1)
        ours_peak = (inputs + peak_bytes(lambda: calcas.paired_difference_interval(c, v, n_boot=peak_boot))) / inputs
        old_chunk = 256 * n * 8
        if old_chunk <= 4 * 2 ** 30:
            d = c - v
            old_t, _ = best_time(lambda: _old_mean_replicates(d, 256, 0), 1)
            old_t *= n_boot / 256
            old_peak = (inputs + peak_bytes(lambda: _old_mean_replicates(d, 256, 0))) / inputs
            del d
            peer = f"old resampling (x{n_boot} from 256)"
        else:
            old_t = old_peak = float("nan")
            peer = f"old resampling: not run ({old_chunk / 2 ** 30:.1f} GiB of draws)"
        rows.append((f"paired_difference_interval, {label}", peer, ours_t, old_t,
                     f"{1000 * ours_t / n_boot:.1f} ms a replicate"))
        rows.append((f"peak memory, paired_difference_interval {label}", f"old: {old_peak:.2f}x inputs",
                     ours_peak, old_peak,
                     f"ours {ours_peak:.2f}x the inputs (2 float64 arrays; target <= 3x: {_verdict(ours_peak <= 3)})"))

    n, C = (5_000, 1_000) if quick else (50_000, 1_000)
    z32, _ = imagenet_like_logits(n, C, seed=3)
    for z in (z32, z32.astype(np.float16)):
        kind = f"{n}x{C} {z.dtype}"
        ours_t, (conf, _) = best_time(lambda: calcas.max_prob_confidence(z, 1.5), 3)
        old_t, (old_conf, _) = best_time(lambda: _old_max_prob(z, 1.5), 3)
        assert np.allclose(conf, old_conf, rtol=1e-12)
        ours_peak = (z.nbytes + peak_bytes(lambda: calcas.max_prob_confidence(z, 1.5))) / z.nbytes
        old_peak = (z.nbytes + peak_bytes(lambda: _old_max_prob(z, 1.5))) / z.nbytes
        rows.append((f"max_prob_confidence {kind}", "old: whole-matrix float64", ours_t, old_t, "same confidences"))
        rows.append((f"peak memory, max_prob_confidence {kind}", f"old: {old_peak:.2f}x logits", ours_peak, old_peak,
                     f"ours {ours_peak:.2f}x the logits (target <= 2x: {_verdict(ours_peak <= 2)})"))


SECTIONS = {"temperature": bench_temperature, "cascade": bench_cascade, "cleaning": bench_cleaning,
            "bootstrap": bench_bootstrap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller arrays (a smoke run, not the targets)")
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append",
                        help="run only this section (repeatable; default: all)")
    args = parser.parse_args()
    print(f"calcas {calcas.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    rows: list = []
    for name in args.section or SECTIONS:
        SECTIONS[name](rows, args.quick)
    print()
    print("| figure | peer | ours (s) | peer (s) | ours / peer | note |")
    print("|---|---|---|---|---|---|")
    for figure, peer, ours_t, peer_t, note in rows:
        if figure.startswith("peak memory"):
            print(f"| {figure} | {peer} | {ours_t:.2f}x | {peer_t:.2f}x | {ours_t / peer_t:.2f} | {note} |")
        else:
            print(f"| {figure} | {peer} | {ours_t:.4f} | {peer_t:.4f} | {ours_t / peer_t:.3f} | {note} |")


if __name__ == "__main__":
    main()
