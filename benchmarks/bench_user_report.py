"""`python -m calcas report` at scale: time and peak memory on generated CSVs of 10⁶ rows.

    python benchmarks/bench_user_report.py [--rows 1000000] [--classes 10] [--files 2]

Each report runs in a fresh process (so its peak resident memory is its own, read from
``getrusage`` of the child) on CSVs written here: one with a ``confidence`` column and one
with ``prob_0 … prob_{C-1}``. The target is 10⁶ rows within 2 GB. The peer printed beside it is
pandas alone reading the same files (the least any CSV report must spend).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax


def write_csvs(folder: Path, rows: int, classes: int, files: int, form: str) -> list[Path]:
    label = np.random.default_rng(99).integers(0, classes, rows)
    paths = []
    for m in range(files):
        rng = np.random.default_rng(m)
        z = rng.normal(size=(rows, classes)).astype(np.float32) * 1.5
        z[np.arange(rows), label] += 1.0 + m
        p = softmax(z, axis=1)
        frame = pd.DataFrame({"id": [f"s{i:07d}" for i in range(rows)], "pred": z.argmax(1), "label": label})
        if form == "confidence":
            frame["confidence"] = p.max(axis=1)
        else:
            for j in range(classes):
                frame[f"prob_{j}"] = p[:, j]
        path = folder / f"{form}_m{m}.csv"
        frame.to_csv(path, index=False, float_format="%.6f")
        paths.append(path)
    return paths


def peak_gib(stderr: str) -> float:
    return int(stderr.strip().splitlines()[-1]) / 2 ** 20  # ru_maxrss is in KiB on Linux


def in_child(code: str) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter; (seconds, that process's own peak resident GiB)."""
    code += "\nimport resource, sys\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, peak_gib(proc.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=200)
    args = ap.parse_args()
    print("| form | rows × files | CSV MB | pandas read (s) | report (s) | report / pandas | peak GiB |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for form in ("confidence", "prob"):
            paths = write_csvs(Path(tmp), args.rows, args.classes, args.files, form)
            mb = sum(p.stat().st_size for p in paths) / 2 ** 20
            files = [str(p) for p in paths]
            t_pandas, _ = in_child(f"import pandas as pd\nfor p in {files!r}: pd.read_csv(p, dtype={{'id': str}})")
            t_report, peak = in_child(f"from calcas.user_report import user_report\nuser_report({files!r}, "
                                      f"{str(Path(tmp) / ('out_' + form))!r}, n_boot={args.n_boot}, progress=False)")
            print(f"| {form} | {args.rows:,} × {args.files} | {mb:.0f} | {t_pandas:.1f} | {t_report:.1f} | "
                  f"{t_report / t_pandas:.1f} | {peak:.2f} |", flush=True)


if __name__ == "__main__":
    main()
