"""The record set (SPEC §0): one Parquet file of per-sample model outputs, and the one data
contract that flows extract → calibrate → cascade → clean.

Columns: ``id`` (unique string), ``pred`` (int; -1 where a source reports only whether the
answer was right), ``label`` (int, -1 unknown), ``verified``
(float in [0, 1]; derived from ``pred == label`` when absent), exactly one confidence source
(``logits`` fixed-length list<float>, ``confidence`` in [0, 1], or ``score`` real), and
optionally ``valid_labels`` (list<int>), ``is_noisy`` (bool), ``split`` ("cal"/"test").
The schema metadata key ``calcas`` holds a JSON manifest; files written by
:func:`write_records` also carry ``calcas.sha256``, a checksum of their content that
:func:`read_records` verifies.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import itertools
import json
import os
import secrets
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import _version
from ._validate import check_seed
from .confidence import max_prob_confidence, top1_logit

SOURCES = ("logits", "confidence", "score")
COLUMNS = ("id", "pred", "label", "verified", *SOURCES, "valid_labels", "is_noisy", "split")
MANIFEST_KEY = b"calcas"
CHECKSUM_KEY = b"calcas.sha256"
MANIFEST_FIELDS = ("model", "dataset", "split", "n", "source", "created", "producer")
SCHEMA_VERSION = 1


class RecordsError(ValueError):
    """A record set breaks the contract; the message names the column."""


class RecordsWarning(UserWarning):
    """A record set is read, but with something assumed (a manifest made of defaults)."""


def _code_version() -> str:
    return f"calcas {_version.__version__}"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in chunks: the identity of a weights file, checkpoint or data
    file in a manifest (the one file hash of calcas; the extractors and the public-data
    fetcher use it).

    Parameters
    ----------
    path : path-like
        The file.
    chunk : int, default 1 MiB
        Bytes read at a time.

    Returns
    -------
    str
        64 lower-case hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True, eq=False)
class Records:
    """Per-sample outputs of one model on one dataset (SPEC §0). Build with :func:`make_records`
    or :func:`read_records`; every instance has passed validation."""

    id: np.ndarray
    pred: np.ndarray
    label: np.ndarray
    verified: np.ndarray
    logits: np.ndarray | None = None
    confidence: np.ndarray | None = None
    score: np.ndarray | None = None
    valid_labels: list[np.ndarray] | None = None
    is_noisy: np.ndarray | None = None
    split: np.ndarray | None = None
    manifest: dict = dataclasses.field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.id)

    @property
    def source(self) -> str:
        """Which confidence source the set carries: "logits", "confidence" or "score"."""
        return next(s for s in SOURCES if getattr(self, s) is not None)

    def raw_confidence(self) -> np.ndarray:
        """Uncalibrated confidence in ``pred``, shape (n,): max softmax of the logits, or the
        ``confidence`` column. A ``score`` set has none until Platt scaling."""
        if self.logits is not None:
            return max_prob_confidence(self.logits)[0]
        if self.confidence is not None:
            return self.confidence
        raise RecordsError("score: a score is not a confidence; calibrate it with PlattScaling first")

    def platt_score(self) -> np.ndarray:
        """The Platt input, shape (n,): the ``score`` column, else log(c / (1 - c)) of the
        top-1 confidence."""
        return self.score if self.score is not None else top1_logit(self.raw_confidence())

    def take(self, index: Any) -> "Records":
        """A new record set with the rows ``index`` (int indices or a bool mask)."""
        idx = np.arange(self.n)[np.asarray(index)]
        changes = {f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)
                   if isinstance(getattr(self, f.name), np.ndarray)}
        if self.valid_labels is not None:
            changes["valid_labels"] = [self.valid_labels[i] for i in idx]
        changes["manifest"] = {**self.manifest, "n": int(len(idx))}
        return dataclasses.replace(self, **changes)

    def cal_mask(self, *, cal_fraction: float = 0.5, seed: int = 0) -> np.ndarray:
        """True for cal rows: the ``split`` column when present, else :func:`cal_test_split`."""
        if self.split is not None:
            return self.split == "cal"
        return cal_test_split(self.id, cal_fraction=cal_fraction, seed=seed)


def _column_1d(values: Any, name: str, n: int | None) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise RecordsError(f"{name}: expected one value per row, got shape {a.shape}")
    if n is not None and len(a) != n:
        raise RecordsError(f"{name}: has {len(a)} rows, id has {n}")
    return a


def _int_column(values: Any, name: str, n: int) -> np.ndarray:
    a = _column_1d(values, name, n)
    if not np.issubdtype(a.dtype, np.integer):
        raise RecordsError(f"{name}: expected integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def _float_column(values: Any, name: str, n: int, low: float | None = None, high: float | None = None) -> np.ndarray:
    a = _column_1d(values, name, n)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        raise RecordsError(f"{name}: expected numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise RecordsError(f"{name}: contains NaN or infinite values")
    if (low is not None and a.min() < low) or (high is not None and a.max() > high):
        raise RecordsError(f"{name}: values must lie in [{low}, {high}], found [{a.min():.6g}, {a.max():.6g}]")
    return a


def make_records(id: Any, pred: Any, *, label: Any | None = None, verified: Any | None = None,
                 logits: Any | None = None, confidence: Any | None = None, score: Any | None = None,
                 valid_labels: Sequence[Sequence[int]] | None = None, is_noisy: Any | None = None,
                 split: Any | None = None, manifest: dict[str, Any] | None = None) -> Records:
    """Validate columns and build a :class:`Records`.

    Parameters
    ----------
    id : sequence of str, shape (n,)
        Unique row ids (the join key across models).
    pred : int array, shape (n,)
        The model's answer; -1 where unknown (a source that gives only a grade), in which case
        ``verified`` is required.
    label : int array, shape (n,), optional
        Given label, -1 where unknown; required with ``logits``.
    verified : array, shape (n,), optional
        Verifier score in [0, 1]; defaults to ``pred == label`` (needs every label known).
    logits : array, shape (n, C)
        Raw logits; or ``confidence`` (n,) probabilities in [0, 1]; or ``score`` (n,) real.
        Exactly one of the three.
    valid_labels, is_noisy, split
        Optional ground truth and split columns (SPEC §0).
    manifest : dict, optional
        model, dataset, split and anything else worth keeping (extraction parameters...);
        n, source, schema_version are set here, created and producer when absent.

    Raises
    ------
    RecordsError (a ValueError) naming the offending column.
    """
    ids = np.asarray(id)
    if ids.ndim != 1 or len(ids) == 0:
        raise RecordsError(f"id: expected a non-empty 1-D column, got shape {ids.shape}")
    if not all(isinstance(i, str) for i in ids.tolist()):
        raise RecordsError("id: every id must be a string")
    ids = ids.astype(object)
    n = len(ids)
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != n:
        raise RecordsError(f"id: {int((counts > 1).sum())} id(s) repeat, e.g. {unique[counts > 1][0]!r}")
    pred_a = _int_column(pred, "pred", n)
    given = [s for s, v in zip(SOURCES, (logits, confidence, score)) if v is not None]
    if len(given) != 1:
        raise RecordsError(f"logits/confidence/score: exactly one confidence source is required, got {given or 'none'}")
    src = given[0]
    cols: dict[str, Any] = {}
    if src == "logits":
        z = np.asarray(logits)
        if z.ndim != 2 or len(z) != n:
            raise RecordsError(f"logits: expected shape ({n}, C), got {z.shape}")
        if not np.issubdtype(z.dtype, np.floating):
            z = z.astype(np.float32)
        if not np.isfinite(z).all():
            raise RecordsError("logits: contains NaN or infinite values")
        cols["logits"] = z
    elif src == "confidence":
        cols["confidence"] = _float_column(confidence, "confidence", n, 0.0, 1.0)
    else:
        cols["score"] = _float_column(score, "score", n)
    if label is None:
        if src == "logits":
            raise RecordsError("label: required for classifiers (record sets with logits)")
        label_a = np.full(n, -1, dtype=np.int64)
    else:
        label_a = _int_column(label, "label", n)
        if label_a.min() < -1:
            raise RecordsError(f"label: must be >= -1 (-1 = unknown), found {label_a.min()}")
    if src == "logits":
        C = cols["logits"].shape[1]
        for name, col in (("label", label_a), ("pred", pred_a)):
            if col.max() >= C:
                raise RecordsError(f"{name}: class indices must be < {C} (the logits' width), found {col.max()}")
    if pred_a.min() < -1:
        raise RecordsError(f"pred: must be >= -1 (-1 = unknown), found {pred_a.min()}")
    if verified is None:
        if (label_a < 0).any():
            raise RecordsError("verified: required where label is unknown (-1)")
        if (pred_a < 0).any():
            raise RecordsError("verified: required where pred is unknown (-1)")
        verified_a = (pred_a == label_a).astype(np.float64)
    else:
        verified_a = _float_column(verified, "verified", n, 0.0, 1.0)
    valid = None
    if valid_labels is not None:
        if len(valid_labels) != n:
            raise RecordsError(f"valid_labels: has {len(valid_labels)} rows, id has {n}")
        try:
            valid = [np.asarray(v, dtype=np.int64).reshape(-1) for v in valid_labels]
        except (TypeError, ValueError) as err:
            raise RecordsError(f"valid_labels: expected a list of integer labels per row ({err})") from None
    noisy = None if is_noisy is None else _column_1d(is_noisy, "is_noisy", n)
    if noisy is not None:
        if noisy.dtype != bool:
            raise RecordsError(f"is_noisy: expected booleans, got dtype {noisy.dtype}")
    split_a = None if split is None else _column_1d(split, "split", n).astype(object)
    if split_a is not None and not set(split_a.tolist()) <= {"cal", "test"}:
        raise RecordsError(f"split: values must be 'cal' or 'test', found {sorted(set(split_a.tolist()) - {'cal', 'test'})}")
    meta = {"model": None, "dataset": None, "split": None, **(manifest or {}), "n": n, "source": src,
            "schema_version": SCHEMA_VERSION}
    meta.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("producer", _code_version())
    return Records(id=ids, pred=pred_a, label=label_a, verified=verified_a, valid_labels=valid,
                   is_noisy=noisy, split=split_a, manifest=meta, **cols)


def _update_framed(digest: Any, data: bytes) -> None:
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)


def _update_array(digest: Any, values: np.ndarray) -> None:
    # Contiguous little-endian data (what records hold) goes to the hash without a copy.
    a = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
    _update_framed(digest, f"{a.dtype.str} {'x'.join(map(str, a.shape))}".encode())
    digest.update(a)


def content_sha256(columns: dict[str, Any], manifest_json: bytes) -> str:
    """The checksum of a record set's content that :func:`write_records` stores under
    ``calcas.sha256`` and :func:`read_records` verifies.

    It is the SHA-256 of a canonical byte form of the columns and the manifest, so it depends
    on the values only, not on Parquet's encoding, compression or row groups. Each column of
    :data:`COLUMNS` that is present, in that order, contributes its name, then its data:
    strings (``id``, ``split``) as their UTF-8 byte lengths followed by the bytes; numbers
    (``pred``, ``label``, ``verified``, ``logits``, ``confidence``, ``score``, ``is_noisy``)
    as a header, the text ``"<dtype> <shape>"`` (numpy's dtype string and the sizes joined by
    ``x``: ``"<f2 12x5"``, ``"<i8 12"``), then their little-endian bytes in the dtype the record
    set holds (int64, float64, bool; the logits keep fp16 or fp32); ``valid_labels`` as the
    row lengths followed by every label, both int64 arrays in that form. Each name, header,
    string block and the manifest's JSON text (exactly as stored, last) is preceded by its
    length in bytes (8-byte little-endian); array data is not, its header gives the size.

    Parameters
    ----------
    columns : dict of str to array
        The record set's columns as :class:`Records` holds them (``valid_labels`` a list of
        int arrays); absent columns are left out.
    manifest_json : bytes
        The manifest as stored in the file.

    Returns
    -------
    str
        64 lower-case hex digits.
    """
    digest = hashlib.sha256()
    for name in COLUMNS:
        if name not in columns:
            continue
        value = columns[name]
        _update_framed(digest, name.encode())
        if name in ("id", "split"):
            encoded = [s.encode() for s in value]
            _update_array(digest, np.array([len(b) for b in encoded], dtype=np.int64))
            _update_framed(digest, b"".join(encoded))
        elif name == "valid_labels":
            lengths = np.array([len(v) for v in value], dtype=np.int64)
            _update_array(digest, lengths)
            _update_array(digest, np.fromiter(itertools.chain.from_iterable(value), np.int64, int(lengths.sum())))
        else:
            _update_array(digest, value)
    _update_framed(digest, manifest_json)
    return digest.hexdigest()


def _columns_of(records: Records) -> dict[str, Any]:
    return {name: getattr(records, name) for name in COLUMNS if getattr(records, name) is not None}


def same_records(a: Records, b: Records, *, ignore: Sequence[str] = ("created",)) -> bool:
    """Whether two record sets hold the same columns with the same values (dtypes included)
    and the same manifest apart from the keys ``ignore``.

    Parameters
    ----------
    a, b : Records
        The record sets.
    ignore : sequence of str, default ("created",)
        Manifest keys left out of the comparison: by default the time a set was written, so a
        set merged again from the same shards counts as the same set.

    Returns
    -------
    bool
    """
    def manifest(r: Records) -> dict:
        return {k: v for k, v in r.manifest.items() if k not in ignore}
    return (manifest(a) == manifest(b)
            and content_sha256(_columns_of(a), b"") == content_sha256(_columns_of(b), b""))


_ARROW_TYPES = {"id": pa.string(), "pred": pa.int64(), "label": pa.int64(), "verified": pa.float64(),
                "confidence": pa.float64(), "score": pa.float64(), "is_noisy": pa.bool_(), "split": pa.string()}


def _to_arrow(name: str, value: Any) -> pa.Array:
    if name == "logits":
        return pa.FixedSizeListArray.from_arrays(pa.array(value.reshape(-1)), value.shape[1])
    if name == "valid_labels":
        return pa.array([v.tolist() for v in value], pa.list_(pa.int64()))
    return pa.array(value.tolist() if value.dtype == object else value, _ARROW_TYPES[name])


def write_records(records: Records, path: str | os.PathLike) -> None:
    """Write a record set to one Parquet file, with the manifest and a checksum of the content
    in the schema metadata.

    The checksum (:func:`content_sha256`) sits under its own key, ``calcas.sha256``, beside the
    manifest rather than inside it: it covers the manifest's stored text, so it cannot be part
    of that text, and the manifest a reader gets back stays the one that was written.

    Parameters
    ----------
    records : Records
        The record set.
    path : path-like
        The Parquet file to write. It is written beside itself under a temporary name and then
        moved into place, so a reader (or a second writer) never sees half a file, and a write
        that fails leaves the previous file as it was.
    """
    columns = _columns_of(records)
    if "logits" in columns:
        columns["logits"] = np.ascontiguousarray(columns["logits"])
    manifest_json = json.dumps(records.manifest, default=str).encode()
    metadata = {MANIFEST_KEY: manifest_json, CHECKSUM_KEY: content_sha256(columns, manifest_json).encode()}
    table = pa.table({name: _to_arrow(name, value) for name, value in columns.items()})
    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        pq.write_table(table.replace_schema_metadata(metadata), tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _logits_from_arrow(column: pa.ChunkedArray) -> np.ndarray:
    col = column.combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        width = col.type.list_size
    elif pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lengths = np.asarray(col.value_lengths())
        if len(set(lengths.tolist())) != 1:
            raise RecordsError(f"logits: rows must all have the same length C, found lengths {sorted(set(lengths.tolist()))[:5]}")
        width = int(lengths[0])
    else:
        raise RecordsError(f"logits: expected list<float>, got {col.type}")
    if col.null_count:
        raise RecordsError("logits: contains null rows")
    values = col.flatten()
    if not pa.types.is_floating(values.type):
        raise RecordsError(f"logits: expected floats, got list<{values.type}>")
    return values.to_numpy(zero_copy_only=False).reshape(len(col), width)


def _parse_manifest(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise RecordsError("manifest: there is no 'calcas' manifest in the schema metadata")
    try:
        manifest = json.loads(raw)
    except ValueError as err:
        raise RecordsError(f"manifest: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise RecordsError(f"manifest: expected a JSON object, got {json.dumps(manifest)[:80]}")
    return manifest


def _check_manifest(manifest: dict[str, Any]) -> None:
    # SPEC §0 does not ask for a schema_version: a file without one has the layout of version 1.
    version = manifest.get("schema_version", SCHEMA_VERSION)
    if type(version) is int and version > SCHEMA_VERSION:
        raise RecordsError(f"manifest: schema_version {version} is from a newer calcas (this one reads "
                           f"version {SCHEMA_VERSION}); upgrade calcas to read the file")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise RecordsError(f"manifest: schema_version {version!r} is not a known version "
                           f"(this calcas reads version {SCHEMA_VERSION})")
    for key in ("created", "producer"):
        if key not in manifest:
            raise RecordsError(f"manifest: has no {key!r} (make_records sets it when the record set is built)")


def _columns_from_table(table: pa.Table) -> dict[str, Any]:
    """The columns of a record-set table as :func:`make_records` takes them, after the checks
    that need the Arrow types."""
    names = set(table.column_names)
    for required in ("id", "pred"):
        if required not in names:
            raise RecordsError(f"{required}: required column is missing")
    unknown = names - set(COLUMNS)
    if unknown:
        raise RecordsError(f"{sorted(unknown)[0]}: not a record-set column (SPEC §0)")
    for name in names - {"valid_labels"}:
        if table.column(name).null_count:
            raise RecordsError(f"{name}: contains null values")
    for name in names & {"id", "split"}:
        if not (pa.types.is_string(table.column(name).type) or pa.types.is_large_string(table.column(name).type)):
            raise RecordsError(f"{name}: expected strings, got {table.column(name).type}")
    if "valid_labels" in names:
        kind = table.column("valid_labels").type
        if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not pa.types.is_integer(kind.value_type):
            raise RecordsError(f"valid_labels: expected list<int>, got {kind}")
    columns: dict[str, Any] = {}
    for name in COLUMNS:
        if name not in names:
            continue
        column = table.column(name)
        if name == "logits":
            columns[name] = _logits_from_arrow(column)
        elif name == "valid_labels":
            columns[name] = [v if v is not None else [] for v in column.to_pylist()]
        elif name in ("id", "split"):
            columns[name] = column.to_pylist()
        else:
            columns[name] = column.to_numpy()
    return columns


def read_records(path: str | os.PathLike) -> Records:
    """Read and validate a record set written by :func:`write_records` (or any Parquet file
    that follows SPEC §0).

    A file written by :func:`write_records` carries a checksum of its columns and manifest
    (:func:`content_sha256`); a file whose content does not match it was damaged or changed
    after it was written, and is refused. A file without a checksum (written by another tool
    to SPEC §0, or by calcas before it wrote one) is read with the column and manifest checks
    only, and without a warning: the checksum is calcas's addition to the contract, and a
    warning on every such file would be noise that a user could silence only by rewriting it.

    The file is opened once, for its footer and its data, so a read that overlaps a
    :func:`write_records` replacing the file sees the old file or the new one, whole.

    Parameters
    ----------
    path : path-like
        The Parquet file.

    Returns
    -------
    Records
        The record set, with the manifest as stored (its ``n`` and ``source`` checked
        against the columns).

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    RecordsError
        When the file is not readable Parquet (the pyarrow error is the cause), when its
        content does not match its checksum, when the manifest is not a JSON object, has an
        unknown ``schema_version`` (a higher one: the file is from a newer calcas), lacks
        ``created`` or ``producer``, or disagrees with the columns on ``n`` or ``source``,
        and when a column breaks SPEC §0. The message starts with the offending column (or
        ``file``, ``checksum``, ``manifest``) and ends with the file's path.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"record set not found: {path}")
    where = f"(file {os.fspath(path)})"
    try:
        return _read_records(path)
    except RecordsError as err:
        raise RecordsError(f"{err} {where}") from None
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:
        raise RecordsError(f"file: not a readable Parquet file ({type(err).__name__}: {err}) {where}") from err


def _read_records(path: str | os.PathLike) -> Records:
    # One open file for the footer and the data: given a path, pyarrow opens it twice, and a
    # write_records replacing the file in between mixes two files (a reader would see neither).
    with open(path, "rb") as f:
        table = pq.read_table(f)
    metadata = table.schema.metadata or {}
    columns = _columns_from_table(table)
    manifest_json = metadata.get(MANIFEST_KEY)
    if manifest_json is None:
        if CHECKSUM_KEY in metadata:
            raise RecordsError("manifest: missing, though the file carries a calcas checksum: the file was "
                               "damaged or changed after it was written")
        # the record columns written by another tool: read them, with a manifest made of defaults
        manifest = {"model": Path(path).stem, "dataset": None, "split": None, "created": "unknown",
                    "producer": "unknown (no calcas manifest)"}
        warnings.warn(f"{os.fspath(path)}: no calcas manifest; read with a default one (model "
                      f"{manifest['model']!r}, dataset unknown)", RecordsWarning, stacklevel=3)
        return make_records(**columns, manifest=manifest)
    manifest = _parse_manifest(manifest_json)
    kept = {k: v for k, v in manifest.items() if k not in ("n", "source", "schema_version")}
    records = make_records(**columns, manifest=kept)
    # Verified before the manifest is read further, so that a damaged manifest reads as damage.
    checksum = metadata.get(CHECKSUM_KEY)
    if checksum is not None and checksum != content_sha256(_columns_of(records), manifest_json).encode():
        raise RecordsError("checksum: the columns and manifest do not match the file's calcas.sha256 checksum; "
                           "the file was damaged or changed after it was written")
    _check_manifest(manifest)
    if manifest.get("n") != records.n:
        raise RecordsError(f"manifest: says n={manifest.get('n')}, the file has {records.n} rows")
    if manifest.get("source") != records.source:
        raise RecordsError(f"manifest: says source={manifest.get('source')!r}, the columns carry {records.source!r}")
    return records


def align(*record_sets: Records) -> tuple[Records, ...]:
    """Inner-join record sets on ``id``; rows come out in sorted-id order, identical across sets.

    Warns when a set loses rows; raises :class:`RecordsError` when no id is shared.
    """
    if len(record_sets) < 2:
        raise ValueError("align: give at least two record sets")
    common = record_sets[0].id
    for r in record_sets[1:]:
        common = np.intersect1d(common, r.id)
    if len(common) == 0:
        names = ", ".join(str(r.manifest.get("model")) for r in record_sets)
        raise RecordsError(f"id: the record sets ({names}) share no ids; check that they come from the same dataset")
    out = []
    for r in record_sets:
        order = np.argsort(r.id)
        rows = order[np.searchsorted(r.id[order], common)]
        if len(rows) < r.n:
            warnings.warn(f"align: kept {len(rows)} of {r.n} rows of {r.manifest.get('model')!r} "
                          "(ids missing from another set)", stacklevel=2)
        out.append(r.take(rows))
    return tuple(out)


def record_set_names(record_sets: Sequence[Records], paths: Sequence[str | os.PathLike]) -> list[str]:
    """Distinct display names for record sets: the manifest's ``model`` (else the file stem),
    with the shortest distinguishing tail of the path added where two sets would share a name
    (the same model on two tasks, or with two scoring modes): ``"m (mmlu_first)"``,
    ``"m (run1/records)"``.

    Parameters
    ----------
    record_sets : sequence of Records
    paths : sequence of path
        The files they were read from, in the same order.

    Returns
    -------
    list of str
        One name per record set, all different when the paths are.
    """
    if len(record_sets) != len(paths):
        raise ValueError(f"paths: {len(paths)} paths for {len(record_sets)} record sets")
    names = [str(r.manifest.get("model") or Path(p).stem) for r, p in zip(record_sets, paths)]
    parts = [Path(p).with_suffix("").parts for p in paths]
    out = list(names)
    for name in set(names):
        same = [i for i, n in enumerate(names) if n == name]
        if len(same) < 2:
            continue
        for k in range(1, max(len(parts[i]) for i in same) + 1):
            tails = ["/".join(parts[i][-k:]) for i in same]
            if len(set(tails)) == len(tails):
                break
        for i, tail in zip(same, tails):
            out[i] = f"{name} ({tail})"
    return out


def cal_test_split(ids: Any, *, cal_fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """The paper's seeded split: True for the cal half, False for test, shape (n,).

    Depends only on the set of ids and the seed (not on row order), so aligned record sets of
    different models get the same split.
    """
    seed = check_seed(seed)
    ids = np.asarray(ids).astype(str)
    n = len(ids)
    if not 0.0 < cal_fraction < 1.0:
        raise ValueError(f"cal_fraction: must be strictly between 0 and 1, got {cal_fraction}")
    n_cal = int(round(n * cal_fraction))
    if n_cal == 0 or n_cal == n:
        raise ValueError(f"cal_fraction: {cal_fraction} of {n} rows leaves an empty cal or test split")
    order = np.argsort(ids, kind="stable")
    chosen = order[np.random.default_rng(seed).permutation(n)[:n_cal]]
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    return mask
