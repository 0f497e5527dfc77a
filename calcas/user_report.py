"""The paper's diagnosis of your own model outputs: ``python -m calcas report FILE ... --out DIR``.

Each FILE holds one model's outputs on the same samples, as CSV or Parquet (a calcas record set
is read as it is). A table has one row per sample with the columns

- ``id`` (unique; the join key across files), ``pred`` (the model's answer, a class index);
- ``label`` (the given label, -1 unknown) or ``verified`` (1 if ``pred`` is right, 0 if not,
  or a grade in [0, 1]); both may be given;
- the confidence: ``confidence`` (the probability of ``pred``), or ``prob_0 … prob_{C-1}``
  (class probabilities, each row summing to 1), or ``logit_0 … logit_{C-1}`` (raw logits).
  With class columns (or a record set's logits) ``pred`` must be each row's largest class, the
  paper's top-1 confidence; ``--confidence-of pred`` scores the probability of ``pred`` instead.

One file gives the calibration report (ECE before and after calibration on the test half, with
bootstrap intervals, reliability diagrams, the calibrator fitted and why); two or more add the
cascade of each file with the next one, in the order given (the first usually the cheaper
model; ``--costs`` gives each a cost per sample); three or more add label cleaning with every
file as an expert and, with ``--costs``, the certified chain: :func:`calcas.select_cascade`
(the threshold method) on all files in the order given, the last the reference, picks the
cheapest configuration that loses at most ``--max-drop`` of the last model's accuracy with
probability >= 1 - ``--delta``. The cal and test halves are :func:`calcas.cal_test_split` of the
ids with the seed, as everywhere in calcas; the certified chain splits the rows once more (a
permutation with the seed: :data:`CHAIN_FIT_SHARE` of them, 30%, fit its calibrators, the rest
certify), as its guarantee needs calibrators fitted on other rows than those that certify.
``DIR/index.html`` opens from disk with no network (its scripts are copied beside it) and
``DIR/results.json`` holds every number it shows.

The report is written into a new folder beside ``DIR`` and renamed into place at the end, so an
interrupted or failed run leaves ``DIR`` as it was. ``DIR`` may be new, empty, or a report this
command wrote (it holds the marker file ``.calcas-report``); a folder holding anything else is
refused unless ``--force`` is given.
"""
from __future__ import annotations

import argparse
import codecs
import csv
import dataclasses
import html
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .calibration import calibrate_records
from .certify import select_cascade
from .chain import check_delta, check_max_drop
from .chapters import calibration as calibration_chapter
from .chapters import cascading, cleaning
from .confidence import softmax
from .params import SECTIONS, write_results
from .records import MANIFEST_KEY, Records, RecordsError, align, file_sha256, make_records, read_records
from .render import page

__all__ = ["read_outputs", "user_report", "main"]

#: The file that marks a folder as written by ``calcas report`` (replaced without --force).
REPORT_MARKER = ".calcas-report"
#: What a report folder holds; a marked folder holding anything more is the user's too.
_REPORT_ENTRIES = {REPORT_MARKER, "index.html", "results.json", "_static"}
_PROGRESS_BYTES = 32 << 20  # files larger than this show a progress bar while they are read
_CHUNK_ROWS = 200_000
_PROB_SUM_TOL = 1e-3  # class probabilities written with 4-6 decimals still sum to 1 within this
#: The share of rows that fit the certified chain's calibrators; the other rows certify.
CHAIN_FIT_SHARE = 0.3


def _fail(path: str | os.PathLike, message: str) -> RecordsError:
    return RecordsError(f"{os.fspath(path)}: {message}")


def _read_table(path: Path, progress: bool) -> pd.DataFrame:
    """The file as a DataFrame with ``id`` as str; CSV is read in chunks (with a bar when large)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq
        try:
            return pq.read_table(path).to_pandas()
        except Exception as err:  # pyarrow raises several types for damaged files
            raise _fail(path, f"not a readable Parquet file ({err})") from err
    try:
        return _read_csv(path, progress)
    except UnicodeDecodeError:  # pandas names no line: find the first bad byte, on this rare path only
        raise _fail(path, _not_utf8(path)) from None


def _not_utf8(path: Path) -> str:
    """Where a file stops being UTF-8: its first undecodable byte and that byte's offset."""
    decoder, done = codecs.getincrementaldecoder("utf-8")(), 0
    with open(path, "rb") as f:  # in blocks: a large file is never held as one string
        for block in iter(lambda: f.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                return (f"not UTF-8 text (byte 0x{block[err.start]:02x} at byte {done + err.start:,}); save the file "
                        "as UTF-8 (CSV UTF-8 in Excel)")
            done += len(block)
    return "not UTF-8 text; save the file as UTF-8 (CSV UTF-8 in Excel)"


def _read_csv(path: Path, progress: bool) -> pd.DataFrame:
    """A CSV table, read in chunks (with a bar when large); raises UnicodeDecodeError on bytes
    that are not UTF-8."""
    # utf-8-sig: UTF-8, and the byte-order mark Excel writes before the header is not part of "id"
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise _fail(path, "the file is empty (expected a header line and one row per sample)") from None
    with open(path, newline="", encoding="utf-8-sig") as f:  # pandas renames a repeated column to "x.1"
        columns = next(csv.reader(f))
    if len(set(columns)) < len(columns):
        again = next(c for i, c in enumerate(columns) if c in columns[:i])
        raise _fail(path, f"{again}: the column appears twice in the header")
    if "id" not in columns:
        raise _fail(path, f"id: required column is missing (the header has {columns[:8]})")
    # ids are text as written ("007" stays "007", "NA" is an id); empty cells elsewhere are NaN
    reader = pd.read_csv(path, dtype={"id": str}, keep_default_na=False, na_values={c: [""] for c in columns
                                                                                     if c != "id"},
                         chunksize=_CHUNK_ROWS, encoding="utf-8-sig")
    bar = None
    if progress and path.stat().st_size > _PROGRESS_BYTES:
        from tqdm.auto import tqdm
        bar = tqdm(desc=f"reading {path.name}", unit=" rows", unit_scale=True, file=sys.stderr)
    chunks = []
    try:
        for chunk in reader:
            chunks.append(chunk)
            if bar is not None:
                bar.update(len(chunk))
    except pd.errors.ParserError as err:  # "Expected 7 fields in line 4, saw 8"
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if found is None:
            raise _fail(path, f"not a readable CSV table ({err})") from None
        expected, line, saw = found.groups()
        raise _fail(path, f"line {line} has {saw} fields; the header has {expected}") from None
    if bar is not None:
        bar.close()
    return pd.concat(chunks, ignore_index=True) if chunks else header


def _where(table: pd.DataFrame, bad: np.ndarray, path: Path) -> str:
    """'line L (id X)' of the first True in ``bad``; CSV lines count the header as line 1, Parquet
    rows count from 1."""
    i = int(np.flatnonzero(bad)[0])
    line = f"line {i + 2}" if path.suffix.lower() != ".parquet" else f"row {i + 1}"
    return f"{line} (id {table['id'].iloc[i]!r})"


def _numbers(table: pd.DataFrame, column: str, path: Path, *, integer: bool = False,
             low: float | None = None, high: float | None = None) -> np.ndarray:
    """A numeric column, checked row by row; every error names the column and the first bad row."""
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    if missing.any():
        text = raw.to_numpy()[missing][0]
        what = "is empty" if pd.isna(text) else f"is not a number ({text!r})"
        raise _fail(path, f"{column}: {_where(table, missing, path)} {what}")
    if not np.isfinite(values).all():
        raise _fail(path, f"{column}: {_where(table, ~np.isfinite(values), path)} is infinite")
    if integer:
        fractional = values != np.round(values)
        if fractional.any():
            raise _fail(path, f"{column}: {_where(table, fractional, path)} is "
                              f"{values[fractional][0]:g}, not a class index")
    for bound, bad in ((low, values < low if low is not None else None),
                       (high, values > high if high is not None else None)):
        if bad is not None and bad.any():
            limits = ", ".join("…" if b is None else f"{b:g}" for b in (low, high))
            raise _fail(path, f"{column}: {_where(table, bad, path)} is {values[bad][0]:.10g}, outside [{limits}]")
    return values.astype(np.int64) if integer else values


def _class_columns(columns: Sequence[str], prefix: str, path: Path) -> list[str]:
    """``prefix0 … prefix{C-1}``, in class order; a gap or a stray suffix is an error."""
    found = [c for c in columns if c.startswith(prefix)]
    suffixes = [c[len(prefix):] for c in found]
    if not all(s.isdigit() for s in suffixes):
        bad = next(c for c, s in zip(found, suffixes) if not s.isdigit())
        raise _fail(path, f"{bad}: expected {prefix}<class index>, e.g. {prefix}0")
    padded = next((c for c, s in zip(found, suffixes) if s != str(int(s))), None)
    if padded is not None:
        raise _fail(path, f"{padded}: expected {prefix}<class index> with no leading zeros "
                          f"({prefix}{int(padded[len(prefix):])})")
    indices = sorted(int(s) for s in suffixes)
    missing = sorted(set(range(max(indices) + 1)) - set(indices))
    if missing or len(indices) < 2:
        raise _fail(path, f"{prefix}{missing[0] if missing else 1}: missing; the class columns must run "
                          f"{prefix}0 … {prefix}{{C-1}} with C >= 2")
    return [f"{prefix}{i}" for i in range(len(indices))]


#: What the report pairs with ``pred == label``: the largest class probability (the paper's
#: confidence, which needs ``pred`` to be that class) or the probability of ``pred`` itself.
CONFIDENCE_OF = ("argmax", "pred")


def _confidence_of_pred(table: pd.DataFrame, path: Path, pred: np.ndarray, scores: np.ndarray, what: str,
                        confidence_of: str) -> np.ndarray | None:
    """Check that ``pred`` is a largest column of ``scores`` (logits or log-probabilities, (n, C),
    named ``what`` in messages; ties: any maximiser; rows with pred = -1 are not checked). Returns
    None when it is, or, with ``confidence_of="pred"``, the probability of ``pred`` per row
    (softmax of ``scores``; the largest where pred = -1)."""
    known = pred >= 0
    picked = np.take_along_axis(scores, np.where(known, pred, 0)[:, None], axis=1)[:, 0]
    off = known & (picked < scores.max(axis=1))
    if confidence_of == "argmax":
        if off.any():
            rows = np.flatnonzero(off)[:3]
            first = "; ".join(f"{_where(table, np.arange(len(pred)) == i, path)}: pred {pred[i]}, largest at "
                              f"class {int(scores[i].argmax())}" for i in rows)
            raise _fail(path, f"pred: {int(off.sum()):,} of {len(pred):,} rows are not the class with the largest "
                              f"{what} ({first}). The report pairs the largest probability with pred == label, "
                              "so the two must agree; if pred is a thresholded decision (e.g. prob_1 > 0.3), pass "
                              "--confidence-of pred to score the probability of pred instead")
        return None
    prob = softmax(scores)  # logits, or log-probabilities: the same softmax
    return np.where(known, np.take_along_axis(prob, np.where(known, pred, 0)[:, None], axis=1)[:, 0],
                    prob.max(axis=1))


def read_outputs(path: str | os.PathLike, *, name: str | None = None, cost: float | None = None,
                 progress: bool = True, confidence_of: str = "argmax") -> Records:
    """One model's outputs, from a CSV or Parquet table of the module docstring's columns.

    Parameters
    ----------
    path : path
        ``.csv`` or ``.parquet``. A Parquet file that is a calcas record set (it carries the
        manifest) is read with :func:`calcas.read_records`.
    name : str, optional
        The model's name in the report; default the file name without its suffix.
    cost : float, optional
        Cost per sample (FLOPs, seconds, money), recorded as the manifest's
        ``extraction.flops_per_sample`` for the cascade's compute saving.
    progress : bool, default True
        Show a progress bar while a large CSV is read.
    confidence_of : {"argmax", "pred"}, default "argmax"
        With class probabilities or logits (``prob_*``, ``logit_*`` or a record set's logits):
        "argmax" requires ``pred`` to be the class with the largest value in every row (ties:
        any maximiser), the paper's top-1 confidence; "pred" scores the probability of ``pred``
        instead (a thresholded decision), read as a ``confidence`` column.

    Returns
    -------
    Records
        With ``logits`` (log of ``prob_*``, or ``logit_*``) or ``confidence``.

    Raises
    ------
    RecordsError
        Naming the file, the column and the first offending line: a missing column, an empty
        file, a repeated id, an empty or non-numeric cell, a confidence or probability outside
        [0, 1], probabilities that do not sum to 1, a gap in the class columns, a label or
        prediction outside the classes, a ``pred`` that is not the largest class (with
        ``confidence_of="argmax"``).
    """
    if confidence_of not in CONFIDENCE_OF:
        raise ValueError(f"confidence_of: expected one of {list(CONFIDENCE_OF)}, got {confidence_of!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    name = name or path.stem
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq
        try:
            is_record_set = MANIFEST_KEY in (pq.read_schema(path).metadata or {})
        except Exception as err:
            raise _fail(path, f"not a readable Parquet file ({err})") from err
        if is_record_set:
            r = read_records(path)
            manifest = {**r.manifest, "model": name}
            if cost is not None:
                manifest["extraction"] = {**(manifest.get("extraction") or {}), "flops_per_sample": cost}
            if r.logits is not None:
                own = _confidence_of_pred(pd.DataFrame({"id": r.id}), path, r.pred, np.asarray(r.logits, np.float64),
                                          "logit", confidence_of)
                if own is not None:
                    return make_records(r.id, r.pred, label=r.label, verified=r.verified, confidence=own,
                                        is_noisy=r.is_noisy, manifest={**manifest, "source": "confidence"})
            return dataclasses.replace(r, manifest=manifest)  # columns already checked by read_records
    elif path.suffix.lower() != ".csv":
        raise _fail(path, f"expected a .csv or .parquet file, got {path.suffix or 'no suffix'!r}")
    table = _read_table(path, progress)
    columns = [str(c) for c in table.columns]
    if len(table) == 0:
        raise _fail(path, "has a header but no rows")
    for required in ("id", "pred"):
        if required not in columns:
            raise _fail(path, f"{required}: required column is missing (the header has {columns[:8]})")
    if "label" not in columns and "verified" not in columns:
        raise _fail(path, "label/verified: give the given label or a 0/1 verified column (neither is there)")
    ids = table["id"].to_numpy(dtype=object)
    blank = np.array([i is None or (isinstance(i, float) and np.isnan(i)) or str(i).strip() == "" for i in ids])
    if blank.any():
        raise _fail(path, f"id: {_where(table, blank, path)} is empty")
    order = np.argsort(ids, kind="stable")
    repeat = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if len(repeat):
        first, second = sorted(order[repeat[0]: repeat[0] + 2])
        raise _fail(path, f"id: {ids[first]!r} appears on line {first + 2} and on line {second + 2}")
    sources = {"confidence": "confidence" in columns, "prob_": any(c.startswith("prob_") for c in columns),
               "logit_": any(c.startswith("logit_") for c in columns)}
    given = [k for k, v in sources.items() if v]
    if len(given) != 1:
        found = [g if g == "confidence" else f"{g}*" for g in given] or "none"
        raise _fail(path, "confidence: give exactly one of confidence, prob_0 … prob_{C-1} or "
                          f"logit_0 … logit_{{C-1}}; found {found}")
    kwargs: dict[str, Any] = {}
    n_classes = None
    if given[0] == "confidence":
        kwargs["confidence"] = _numbers(table, "confidence", path, low=0.0, high=1.0)
    else:
        cols = _class_columns(columns, given[0], path)
        n_classes = len(cols)
        block = np.column_stack([_numbers(table, c, path, **({"low": 0.0, "high": 1.0} if given[0] == "prob_"
                                                              else {})) for c in cols])
        if given[0] == "prob_":
            total = block.sum(axis=1)
            off = np.abs(total - 1.0) > _PROB_SUM_TOL
            if off.any():
                raise _fail(path, f"prob_*: {_where(table, off, path)} sums to {total[off][0]:.6g}, not 1")
            # log(p) has the same softmax as p; p = 0 becomes a very negative but finite logit
            block = np.log(np.maximum(block, np.finfo(np.float64).tiny))
        kwargs["logits"] = block
    low = -1
    pred = _numbers(table, "pred", path, integer=True, low=low, high=None if n_classes is None else n_classes - 1)
    if "logits" in kwargs:  # log(p) orders the classes as p does, and its softmax is p
        own = _confidence_of_pred(table, path, pred, kwargs["logits"], f"{given[0]}*", confidence_of)
        if own is not None:
            del kwargs["logits"]
            kwargs["confidence"] = own
    if "label" in columns:
        kwargs["label"] = _numbers(table, "label", path, integer=True, low=low,
                                   high=None if n_classes is None else n_classes - 1)
    elif "logits" in kwargs:  # verified alone: every label unknown, calibrated on verified (Platt)
        kwargs["label"] = np.full(len(table), -1)
    if "verified" in columns:
        kwargs["verified"] = _numbers(table, "verified", path, low=0.0, high=1.0)
    else:
        for column, values in (("label", kwargs.get("label")), ("pred", pred)):
            if values is not None and (values < 0).any():
                raise _fail(path, f"{column}: {_where(table, values < 0, path)} is -1 (unknown), so whether pred "
                                  "is right is unknown: give a verified column (1 right, 0 wrong) for such rows")
    if "confidence" in kwargs and np.ptp(kwargs["confidence"]) == 0:
        raise _fail(path, f"confidence: every row is {kwargs['confidence'][0]:.10g}; calibration and the "
                          "reliability diagram need confidences that vary")
    manifest = {"model": name, "dataset": None, "source_file": path.name, "source_sha256": file_sha256(path)}
    if cost is not None:
        manifest["extraction"] = {"flops_per_sample": cost}
    try:
        return make_records(ids.astype(str).tolist(), pred, manifest=manifest, **kwargs)
    except RecordsError as err:
        raise _fail(path, str(err)) from None


def _same_ids(sets: Sequence[Records], paths: Sequence[Path]) -> None:
    first = set(sets[0].id.tolist())
    for r, p in zip(sets[1:], paths[1:]):
        other = set(r.id.tolist())
        if other != first:
            only_first, only_other = sorted(first - other), sorted(other - first)
            parts = [f"{len(only_first)} id(s) of {paths[0].name} are not in it (e.g. {only_first[:3]})"
                     if only_first else "",
                     f"{len(only_other)} of its ids are not in {paths[0].name} (e.g. {only_other[:3]})"
                     if only_other else ""]
            raise _fail(p, "id: the files must score the same samples; " + "; ".join(x for x in parts if x))


def _same_labels(sets: Sequence[Records], paths: Sequence[Path]) -> bool:
    """Whether every file gives the same label to each id (cleaning needs one given label)."""
    order0 = np.argsort(sets[0].id)
    for r, p in zip(sets[1:], paths[1:]):
        order = np.argsort(r.id)
        differ = sets[0].label[order0] != r.label[order]
        if differ.any():
            raise _fail(p, f"label: id {sets[0].id[order0][differ][0]!r} has label "
                           f"{r.label[order][differ][0]} here and {sets[0].label[order0][differ][0]} in "
                           f"{paths[0].name}; cleaning needs one given label per sample")
    return bool((sets[0].label >= 0).all())


def _why_calibrator(calibration: str) -> str:
    if calibration != "auto":
        return f"Calibrator: {calibration} scaling, as asked (--calibration {calibration})."
    return ("Calibrator: temperature scaling for files with class probabilities or logits (one T rescales "
            "every class), Platt scaling (a logistic fit of right/wrong on the log-odds of the confidence) for "
            "files that give one confidence per sample; both are fitted on the cal half by exact Newton steps.")


def _default_K(section: str, n_bins: int) -> int:
    """The chapter's highlighted K (its papermill default), scaled from its default bin count to ``n_bins``."""
    declared = SECTIONS[section]
    return max(1, round(n_bins * declared["K"].default / declared["n_bins"].default))


def _checked_out_dir(out_dir: str | os.PathLike, inputs: Sequence[Path], *, force: bool) -> Path:
    """``out_dir`` as a Path, once it is known that the report can be written there: refused with
    one message, before any computation, when it is a file, lies under a file, holds an input
    file, or holds files this command did not write (unless ``force``)."""
    out = Path(out_dir)
    where_out = out.resolve()
    inside = [p for p in inputs if where_out in p.resolve().parents]
    if inside:
        raise ValueError(f"--out: {out} holds the input file {inside[0]}, which the report would replace; "
                         "choose another folder")
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == out else f"lies under {parent}, which is a file"
            raise ValueError(f"--out: {out} {where}; give a folder")
    if out.is_dir() and not force:
        entries = sorted(e.name for e in out.iterdir())
        ours = REPORT_MARKER in entries and set(entries) <= _REPORT_ENTRIES
        if entries and not ours:
            shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
            raise ValueError(f"--out: {out} holds files calcas report did not write ({shown}); choose a new or "
                             "empty folder, or pass --force to replace the folder")
    return out


def _staging_dir(out: Path) -> Path:
    """A new folder beside ``out`` (same file system, so the final rename is atomic)."""
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    except OSError as err:
        raise ValueError(f"--out: cannot write in {parent} ({err.strerror or err})") from None


def _move_into_place(staged: Path, out: Path) -> None:
    """Replace ``out`` by ``staged``: the old folder is renamed aside first and removed last, so
    ``out`` is the old report or the new one, whole (absent only between the two renames), never
    a mix of the two."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=staged.parent))
        os.replace(out, old / "report")
    os.replace(staged, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _chain_split(n: int, seed: int) -> np.ndarray:
    """The rows that fit the certified chain's calibrators: the first ``round(CHAIN_FIT_SHARE * n)``
    (at least 1, at most n - 1) of ``np.random.default_rng(seed).permutation(n)``, sorted; the
    other rows certify.

    Parameters
    ----------
    n : int
        The number of rows (>= 2), in the order of :func:`calcas.align` (sorted ids).
    seed : int

    Returns
    -------
    ndarray of int, shape (n_fit,)
    """
    n_fit = min(max(int(round(CHAIN_FIT_SHARE * n)), 1), n - 1)
    return np.sort(np.random.default_rng(seed).permutation(n)[:n_fit])


def _chain_rows(sets: Sequence[Records], *, calibration: str, seed: int
               ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, tuple[Records, ...]]:
    """What the certified chain is computed from: every file's rows aligned by id, each file
    calibrated on the rows of :func:`_chain_split` only, and its verified scores.

    Parameters
    ----------
    sets : sequence of Records
        The files in chain order, on the same ids (in any row order).
    calibration : {"auto", "temperature", "platt"}
        As in :func:`calcas.calibrate_records`.
    seed : int

    Returns
    -------
    conf : list of ndarray, shape (n,) each
        Calibrated confidences of every row (sorted-id order), fitted on ``fit_rows`` only.
    correct : list of ndarray, shape (n,) each
        ``verified`` (1 right, 0 wrong, or a grade in [0, 1]).
    fit_rows : ndarray of int
        The rows the calibrators were fitted on; they do not certify.
    aligned : tuple of Records
        The record sets in sorted-id order.
    """
    aligned = align(*sets)
    fit_rows = _chain_split(aligned[0].n, seed)
    fit_mask = np.zeros(aligned[0].n, dtype=bool)
    fit_mask[fit_rows] = True
    conf = [calibrate_records(r, fit_mask, method=calibration).calibrated for r in aligned]
    return conf, [r.verified for r in aligned], fit_rows, aligned


def _certified_chain(sets: Sequence[Records], costs: Sequence[float], *, calibration: str, max_drop: float,
                     delta: float, seed: int) -> dict[str, Any]:
    """``results["chain"]``: :func:`calcas.select_cascade` (threshold method) on the files in the
    order given, or, when ``delta`` is too small to certify anything, its message (``"message"``)."""
    conf, correct, fit_rows, aligned = _chain_rows(sets, calibration=calibration, seed=seed)
    names = [r.manifest["model"] for r in aligned]
    out: dict[str, Any] = {"method": "threshold", "order": names, "max_drop": max_drop, "delta": delta,
                           "n_fit": len(fit_rows), "n_certify": aligned[0].n - len(fit_rows),
                           "last_cost": float(costs[-1]), "message": None}
    try:
        chosen = select_cascade(conf, correct, [float(c) for c in costs], max_drop=max_drop, delta=delta,
                                method="threshold", fit_rows=fit_rows, seed=seed, records=list(aligned))
    except ValueError as err:
        if not str(err).startswith("delta:"):
            raise
        return {**out, "message": str(err)}
    called = [int(j) for j in chosen.stages_.split("+")]
    return {**out, "models": [names[j] for j in called], "last_alone": len(called) == 1,
            "threshold": chosen.threshold_, "expected_cost": chosen.expected_cost_,
            "cost_share": chosen.cost_share_, "saving": 1.0 - chosen.cost_share_, "bound": chosen.bound_,
            "accuracy_lost": chosen.drop_certify_, "n_certify": chosen.n_certify_, "n_fit": chosen.n_fit_}


def _chain_split_sentence(chain: dict[str, Any], seed: int) -> str:
    n = chain["n_fit"] + chain["n_certify"]
    return (f"Its rows are split once at random (a permutation with seed {seed}, not the cal/test halves above): "
            f"{chain['n_fit']:,} ({chain['n_fit'] / n:.0%}) fit each file's calibrator and the other "
            f"{chain['n_certify']:,} ({chain['n_certify'] / n:.0%}) certify, so no row that certifies was seen by a "
            "calibrator, as the guarantee requires.")


def _chain_table(chain: dict[str, Any]) -> pd.DataFrame:
    """The certified chain in one row (the settings and the row counts alone when nothing could be
    certified)."""
    row: dict[str, Any] = {}
    if chain["message"] is None:
        row = {"models called": " → ".join(chain["models"]),
               "threshold λ": np.nan if chain["threshold"] is None else chain["threshold"],
               "cost share": chain["cost_share"], "saving": f"{chain['saving']:.1%}",
               "accuracy lost (certifying rows)": chain["accuracy_lost"]}
    row.update({"max drop": chain["max_drop"], "delta": chain["delta"], "certifying rows": chain["n_certify"],
                "calibrator rows": chain["n_fit"]})
    return pd.DataFrame([row])


def _chain_text(chain: dict[str, Any]) -> str:
    """What the chain certifies, in words, every number from ``chain``."""
    last = chain["order"][-1]
    if chain["message"] is not None:
        return f"Nothing could be certified: {chain['message']}"
    if chain["last_alone"]:
        return (f"Certified: the last model alone ({last}): nothing cheaper could be certified to lose at most "
                f"{chain['max_drop']:g} of {last}'s accuracy with probability >= {1 - chain['delta']:g} on these "
                f"{chain['n_certify']:,} certifying rows (cost share {chain['cost_share']:.0%}, saving "
                f"{chain['saving']:.0%}).")
    early, lam = chain["models"][:-1], f"λ = {chain['threshold']:.4g}"
    rule = (f"{early[0]} answers a sample when its calibrated confidence is at least {lam}" if len(early) == 1 else
            f"The first of {', '.join(early)} whose calibrated confidence is at least {lam} answers a sample")
    return (f"Certified: {' → '.join(chain['models'])}. {rule}, else {last} does. On the "
            f"{chain['n_certify']:,} certifying rows it costs {chain['expected_cost']:.4g} per sample against "
            f"{chain['last_cost']:.4g} for {last} alone: a cost share of {chain['cost_share']:.1%}, a saving of "
            f"{chain['saving']:.1%}. It loses at most {chain['max_drop']:g} of {last}'s accuracy with probability "
            f">= {1 - chain['delta']:g} (it lost {chain['accuracy_lost']:.4f} on the certifying rows).")


def _chain_blocks(chain: dict[str, Any], seed: int) -> list[str]:
    """The section "Certified chain" of the page."""
    intro = (f"The chain is the files in the order given, {' → '.join(chain['order'])}, the last the reference: "
             f"calcas.select_cascade (threshold method) picks the cheapest configuration, one threshold λ on "
             f"calibrated confidence per set of models called, that loses at most max_drop = {chain['max_drop']:g} "
             f"of {chain['order'][-1]}'s accuracy with probability >= 1 - delta = {1 - chain['delta']:g}. "
             + _chain_split_sentence(chain, seed))
    return ["<h2>Certified chain</h2>", f'<p class="note">{html.escape(intro)}</p>',
            page.table_html(_chain_table(chain)), f"<p>{html.escape(_chain_text(chain))}</p>"]


def _report(paths: list[Path], *, costs: Sequence[float] | None, n_bins: int, n_boot: int, calibration: str,
            seed: int, progress: bool, confidence_of: str, max_drop: float,
            delta: float) -> tuple[dict[str, Any], str]:
    """The report's numbers (``results.json``) and its page, computed from the files."""
    names = [p.stem for p in paths]
    names = [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]
    sets = [read_outputs(p, name=n, cost=None if costs is None else float(costs[i]), progress=progress,
                         confidence_of=confidence_of) for i, (p, n) in enumerate(zip(paths, names))]
    _same_ids(sets, paths)
    n_cal = int(sets[0].cal_mask(seed=seed).sum())
    if n_cal < 2 * n_bins:
        raise ValueError(f"n_bins: {n_bins} bins need at least {2 * n_bins} rows in the cal half; "
                         f"{paths[0].name} has {sets[0].n} rows ({n_cal} in cal): lower n_bins")
    K_cascade, K_cleaning = (_default_K(section, n_bins) for section in ("03_cascading", "04_cleaning"))
    results: dict[str, Any] = {"inputs": [{"file": str(p), "name": n, "rows": r.n, "source": r.source,
                                           "cost": None if costs is None else float(costs[i])}
                                          for i, (p, n, r) in enumerate(zip(paths, names, sets))]}
    blocks = [f"<h1>calcas report: {html.escape(', '.join(names))}</h1>",
              f'<p class="note">{sets[0].n:,} samples; everything is fitted on the cal half and measured on '
              f"the test half (<code>cal_test_split(ids, seed={seed})</code>). Every verdict below rests on a "
              "95% interval whose coverage calcas measures. Numbers: "
              '<a href="results.json">results.json</a>.</p>']

    cal = calibration_chapter.compute(sets, calibration=calibration, n_bins=n_bins, n_boot=n_boot, seed=seed)
    results["calibration"] = cal.to_dict()
    text = calibration_chapter.prose(cal, terms=False)  # markdown-it, not Sphinx: no {term} roles
    table = calibration_chapter.tables(cal)
    blocks += ["<h2>Calibration</h2>", page.table_html(table["table1"]), page.table_html(table["true_ece"]),
               f'<p class="note">{html.escape(_why_calibrator(calibration))}</p>',
               page.table_html(table["calibrators"]), page.markdown_html(text["models"]),
               page.figure_html(calibration_chapter.reliability_figure(cal),
                                "reliability diagrams before and after calibration"),
               page.markdown_html(text["showcase"])]
    fitted = calibration_chapter.fitted_models(sets, calibration=calibration, seed=seed)
    blocks += [calibration_chapter.model_explorer(fitted, name, n_bins=n_bins).to_html() for name in cal.order]

    if len(sets) >= 2:
        pairs = {f"{a.manifest['model']} → {b.manifest['model']}": [a, b] for a, b in zip(sets, sets[1:])}
        cas = cascading.compute(pairs, K=K_cascade, calibration=calibration, n_bins=n_bins, seed=seed)
        results["cascade"] = cas.to_dict()
        text, table = cascading.prose(cas), cascading.tables(cas)
        blocks += ["<h2>Cascades</h2>", page.figure_html(cascading.figures(cas), "cascade curves"),
                   *(page.table_html(table[k]) for k in ("accuracy", "gains", "vs_uc", "vs_random") if len(table[k])),
                   page.markdown_html(text["pairs"]), *(e.to_html() for e in cascading.explorers(cas).values())]

    if len(sets) >= 3:
        if _same_labels(sets, paths):
            cle = cleaning.compute(sets, K=K_cleaning, calibration=calibration, n_bins=n_bins, seed=seed)
            results["cleaning"] = cle.to_dict()
            text, table = cleaning.prose(cle), cleaning.tables(cle)
            blocks += ["<h2>Label cleaning</h2>",
                       *(page.table_html(t) for t in (table["flags"], table["table2"]) if len(t)),
                       *(page.markdown_html(text[k]) for k in ("flags", "trend", "table2")),
                       *(e.to_html() for e in cleaning.explorers(cle).values())]
        else:
            results["cleaning"] = None
            unknown = sets[0].label < 0
            blocks += ["<h2>Label cleaning</h2>",
                       f'<p class="note">Left out: {int(unknown.sum()):,} label(s) are unknown (-1), e.g. id '
                       f"{html.escape(repr(str(sets[0].id[unknown][0])))} in {html.escape(paths[0].name)}, and cleaning "
                       "judges the given label of every sample.</p>"]

    if len(sets) >= 3 and costs is not None:
        results["chain"] = _certified_chain(sets, costs, calibration=calibration, max_drop=max_drop, delta=delta,
                                            seed=seed)
        blocks += _chain_blocks(results["chain"], seed)

    return results, page.page_html(f"calcas report: {', '.join(names)}", blocks)


def user_report(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                costs: Sequence[float] | None = None, n_bins: int = 15, n_boot: int = 1000,
                calibration: str = "auto", seed: int = 0, progress: bool = True,
                force: bool = False, confidence_of: str = "argmax", max_drop: float = 0.02,
                delta: float = 0.1) -> dict[str, Any]:
    """Write ``out_dir/index.html`` and ``out_dir/results.json`` for the given model outputs.

    Parameters
    ----------
    paths : sequence of path
        One file per model (see the module docstring), all on the same samples.
    out_dir : path
        Created if missing; ``index.html``, ``results.json``, ``_static/vendored/`` and the marker
        ``.calcas-report`` go there. It must be new, empty or a report this function wrote;
        the report is built beside it and renamed into place when complete.
    costs : sequence of float, optional
        Cost per sample of each model, in the order of ``paths`` (for the cascade's compute saving,
        and, with three or more files, the certified chain).
    n_bins, n_boot, calibration, seed
        As in :func:`calcas.chapters.calibration.compute`; the cascade and cleaning highlight
        the book's default K (8 and 12 of 15 bins, scaled to ``n_bins``).
    force : bool
        Replace ``out_dir`` even when it holds files this function did not write.
    confidence_of : {"argmax", "pred"}
        As in :func:`read_outputs`: by default ``pred`` must be each row's largest class.
    max_drop : float in [0, 1), default 0.02
        The certified chain (three or more files and ``costs``) loses at most this share of the
        last model's accuracy ...
    delta : float in (0, 1), default 0.1
        ... with probability at least 1 - ``delta`` (:func:`calcas.select_cascade`). A delta too
        small to certify anything leaves the section with :func:`calcas.select_cascade`'s message
        (``results["chain"]["message"]``) instead of a configuration.

    Returns
    -------
    dict
        ``results.json`` as read back; ``"chain"`` (with three or more files and ``costs``): the
        models called, ``threshold``, ``expected_cost``, ``cost_share``, ``saving``,
        ``accuracy_lost`` (on the certifying rows), ``max_drop``, ``delta``, ``n_certify``,
        ``n_fit`` and ``message`` (None, or why nothing could be certified).

    Raises
    ------
    ValueError
        On bad arguments (each message names its argument: ``costs``, ``max_drop``, ``delta``,
        ``n_bins``, ``--out``); :class:`calcas.RecordsError` on a bad file.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("paths: give at least one file of model outputs")
    out = _checked_out_dir(out_dir, paths, force=force)
    if costs is not None and len(costs) != len(paths):
        raise ValueError(f"costs: give one cost per file ({len(paths)}), got {len(costs)}")
    if costs is not None and any(not (isinstance(c, (int, float)) and np.isfinite(c) and c > 0) for c in costs):
        raise ValueError(f"costs: every cost must be a positive number, got {list(costs)}")
    max_drop, delta = check_max_drop(max_drop), check_delta(delta)
    staged = _staging_dir(out)  # before any computation: an unwritable place fails at once
    try:
        results, html_page = _report(paths, costs=costs, n_bins=n_bins, n_boot=n_boot, calibration=calibration,
                                     seed=seed, progress=progress, confidence_of=confidence_of, max_drop=max_drop,
                                     delta=delta)
        written = json.loads(write_results(staged, results).read_text())
        page.copy_scripts(staged)
        (staged / "index.html").write_text(html_page, encoding="utf-8")
        (staged / REPORT_MARKER).write_text("written by python -m calcas report\n", encoding="utf-8")
        _move_into_place(staged, out)
    finally:  # an interrupted or failed run leaves no half-written folder behind
        shutil.rmtree(staged, ignore_errors=True)
    return written


def _whole(low: int):
    """An argparse type: an integer >= ``low`` (argparse names the option in its message)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m calcas report FILE [FILE ...] --out DIR [--costs C ...] [--max-drop D] [--delta P]
    [--n-bins N] [--seed S]``."""
    p = argparse.ArgumentParser(prog="python -m calcas report", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="CSV or Parquet files of model outputs on the same samples")
    p.add_argument("--out", required=True, help="folder for index.html and results.json")
    p.add_argument("--costs", nargs="+", type=float,
                   help="cost per sample of each model, in file order; with three or more files it adds the "
                        "certified chain")
    p.add_argument("--max-drop", type=float, default=0.02,
                   help="the certified chain loses at most this share of the last model's accuracy (default 0.02)")
    p.add_argument("--delta", type=float, default=0.1,
                   help="the certified chain's guarantee holds with probability at least 1 - delta (default 0.1)")
    p.add_argument("--n-bins", type=_whole(1), default=15, help="equal-count bins (default 15, the paper's)")
    p.add_argument("--n-boot", type=_whole(1), default=1000, help="bootstrap replicates of each ECE interval")
    p.add_argument("--calibration", default="auto", choices=("auto", "temperature", "platt"))
    p.add_argument("--seed", type=_whole(0), default=0,
                   help="seed of the cal/test split, the bootstrap and the certified chain's split")
    p.add_argument("--confidence-of", choices=CONFIDENCE_OF, default="argmax",
                   help="argmax (default): pred must be each row's largest class; pred: score the probability "
                        "of pred (a thresholded decision)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even when it holds files calcas report did not write")
    args = p.parse_args(argv)
    try:
        user_report(args.files, args.out, costs=args.costs, n_bins=args.n_bins, n_boot=args.n_boot,
                    calibration=args.calibration, seed=args.seed, force=args.force,
                    confidence_of=args.confidence_of, max_drop=args.max_drop, delta=args.delta)
    except (RecordsError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"calcas report: {err}", file=sys.stderr)
        return 2
    print(f"{Path(args.out) / 'index.html'}")
    return 0
