"""Resumable, sharded extraction output (SPEC §0).

An extraction writes its rows into a directory of Parquet *shards*
``shard-r{rank:03d}-{k:06d}.parquet``. Each is written to a temporary name, fsynced, and
published with :func:`os.link`, which never replaces an existing file (a name that is taken sends
the writer on to the next ``k``); the temporary name is then removed. So a killed run leaves only
complete shards, and no shard is ever overwritten. ``manifest.json`` in the same directory records
the extraction manifest, the ids the job planned, the shard list and the row counts; it is
rewritten atomically (under the file lock ``.manifest.lock``, as several ranks share it) after
every shard. The directory listing is the truth: a shard published just before a kill, before
``manifest.json`` caught up, still counts, and the next writer repairs the manifest.

**One writer per directory and rank.** A :class:`ShardWriter` holds an exclusive, non-blocking
``fcntl.flock`` on ``.writer-r{rank:03d}.lock`` (the file records the holder's pid, host and start
time) for as long as it is open. A second live writer of the same rank is refused with a
:class:`RuntimeError` naming the directory, the rank and the holder's pid. The kernel releases a
flock when the process holding it dies, SIGKILL included, so a lock file left by a dead writer is
simply taken over. (On a network file system flock is as good as that file system's locking; the
no-clobber publishing still keeps every shard.)

**The manifest and the planned ids.** :func:`check_manifest` compares a run's manifest with the
recorded one; jobs call it on every run, a completed one included. Shards beside a missing or
unreadable ``manifest.json`` are an error, never a fresh start. A writer given ``planned_ids``
(all ids of the job, every rank's) records ``"planned": {"n", "sha256"}``, the count and the
SHA-256 of ``json.dumps(sorted(ids))``, and refuses rows it does not plan; :func:`merge_shards`
refuses a merge whose ids are not the planned ones, naming the missing and the extra ids.
The manifest key ``"cost"`` (:data:`INFORMATIONAL`) is left out of that comparison.

**Cost.** :func:`extract` given ``cost`` (the device and the GFLOPs per item) times the wall-clock
seconds spent producing its batches (``time.perf_counter``) and appends ``{"rank", "items",
"seconds", **cost}`` to ``"timing"`` in ``manifest.json``; :func:`merge_shards` reports the entries
as ``manifest["cost"]`` (:func:`_cost`), a mean weighted by items. A run that extracts nothing
adds no entry, so merging again gives the same cost.

**Bad rows and bad shards.** Every batch is checked by the rules of :func:`calcas.make_records`
(confidence and verified finite in [0, 1], score and logits finite, label and pred >= -1 and below
the logits' width C) before any of it is kept; the error names the column and the first offending
id. Every shard carries the checksum of its content (:data:`SHARD_CHECKSUM_KEY`, the record sets'
:func:`calcas.records.content_sha256`), verified wherever it is read, so a changed byte is never
merged as data (and then laundered into a record set with a fresh, valid checksum). A shard that
cannot be read (a truncated file, ids that are not UTF-8) or whose content does not match its
checksum is set aside wherever it is found
(:func:`done_ids`, a writer opening, :func:`merge_shards`): renamed to ``<name>.corrupt``, kept, not
deleted, and named in a warning or error. Its ids no longer count as done, so the next run extracts
them again (a rank's shard numbers continue past its set-aside shards, so a name is never reused).

A *batch* is a dict of columns for ``b`` rows: ``"id"`` (list of str), ``"pred"`` (int),
``"label"`` (int, -1 unknown), optionally ``"verified"`` (float in [0, 1]), and exactly one of
``"logits"`` (float array (b, C), fp16 or fp32, kept in its dtype; torch bf16 is stored as fp32,
which holds it exactly), ``"confidence"``, ``"score"``.

:func:`merge_shards` turns the directory into one record set, rows sorted by id, so the result
does not depend on the shard size or on how the work was split between ranks.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import socket
import time
import warnings
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..records import (SOURCES, Records, RecordsError, _logits_from_arrow, content_sha256, make_records,
                       write_records)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locks; one writer per rank is then the caller's duty
    fcntl = None

MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".manifest.lock"
CORRUPT_SUFFIX = ".corrupt"
FORMAT_VERSION = 1
SHARD_RE = re.compile(r"^shard-r(\d{3,})-(\d{6,})\.parquet$")
INFORMATIONAL = ("cost",)  # manifest keys that differ run to run: not part of the identity check
_COLUMNS = ("id", "pred", "label", "verified", *SOURCES)
#: The schema metadata key of a shard's content checksum (:func:`calcas.records.content_sha256`
#: of its columns), written with the shard and verified wherever it is read.
SHARD_CHECKSUM_KEY = b"calcas.shard_sha256"


class ShardDamaged(ValueError):
    """A shard that Parquet can read but whose content is not what was written."""


# what reading a truncated, garbled or altered shard raises
_UNREADABLE = (OSError, pa.ArrowException, ShardDamaged)

__all__ = ["ShardWriter", "check_manifest", "done_ids", "extract", "list_shards", "merge_shards", "read_manifest"]


def _shard_name(rank: int, k: int) -> str:
    return f"shard-r{rank:03d}-{k:06d}.parquet"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _some(ids: list[str], k: int = 5) -> str:
    return ", ".join(map(repr, ids[:k])) + (", ..." if len(ids) > k else "")


def list_shards(out_dir: str | os.PathLike) -> list[tuple[str, int, int]]:
    """The complete shards of an extraction directory.

    Parameters
    ----------
    out_dir : path
        The extraction directory.

    Returns
    -------
    list of (str, int, int)
        ``(file name, rank, k)`` for every complete shard, sorted by rank then k. Temporary
        files of an interrupted write and set-aside ``.corrupt`` files are not shards and are
        ignored.
    """
    if not os.path.isdir(out_dir):
        return []
    found = []
    for name in os.listdir(out_dir):
        m = SHARD_RE.match(name)
        if m:
            found.append((name, int(m.group(1)), int(m.group(2))))
    return sorted(found, key=lambda t: (t[1], t[2]))


def _set_aside(out_dir: str, name: str) -> str:
    """Rename an unreadable shard to ``<name>.corrupt`` (kept for inspection); returns the new name.

    The name is free: a rank's shard numbers continue past its set-aside shards (:func:`_next_k`).
    """
    aside = name + CORRUPT_SUFFIX
    with contextlib.suppress(FileNotFoundError):  # another process set it aside first
        os.rename(os.path.join(out_dir, name), os.path.join(out_dir, aside))
    return aside


def _shard_columns(table: pa.Table) -> dict[str, Any]:
    """A shard's columns as :func:`calcas.records.content_sha256` takes them (ids decoded as UTF-8)."""
    cols: dict[str, Any] = {"id": table.column("id").to_pylist()}
    for name in ("pred", "label", "verified", "confidence", "score"):
        if name in table.column_names:
            cols[name] = table.column(name).to_numpy()
    if "logits" in table.column_names:
        cols["logits"] = _logits_from_arrow(table.column("logits"))
    return cols


def _shard_checksum(table: pa.Table) -> bytes:
    return content_sha256(_shard_columns(table), b"").encode()


def _read_shard(out_dir: str, name: str) -> dict[str, Any]:
    """A shard's columns (:func:`_shard_columns`), read through one open file and checked against
    its checksum (shards written before shards carried one are read as they are); raises
    :class:`ShardDamaged` when its content does not match or cannot be decoded (ids that are not
    UTF-8, say)."""
    with open(os.path.join(out_dir, name), "rb") as f:
        table = pq.read_table(f)
    expected = (table.schema.metadata or {}).get(SHARD_CHECKSUM_KEY)
    try:
        cols = _shard_columns(table)
    except (UnicodeDecodeError, RecordsError) as err:
        raise ShardDamaged(f"its content cannot be decoded ({type(err).__name__}: {err})") from None
    if expected is not None and expected != content_sha256(cols, b"").encode():
        raise ShardDamaged("its content does not match the checksum written with it")
    return cols


def _scan(out_dir: str) -> dict[str, list[str]]:
    """The ids of every readable shard, by file name; unreadable or altered shards are set aside,
    with a warning."""
    ids: dict[str, list[str]] = {}
    for name, _, _ in list_shards(out_dir):
        try:
            ids[name] = _read_shard(out_dir, name)["id"]
        except _UNREADABLE as err:
            aside = _set_aside(out_dir, name)
            warnings.warn(f"{name}: cannot be read ({type(err).__name__}: {err}); set aside as {aside} in "
                          f"{out_dir}; its ids count as not done and are extracted again", stacklevel=3)
    return ids


def done_ids(out_dir: str | os.PathLike) -> set[str]:
    """Ids already written to complete shards of ``out_dir``, by any rank.

    Parameters
    ----------
    out_dir : path
        The extraction directory (need not exist yet).

    Returns
    -------
    set of str
        The ids to skip when resuming. A shard that cannot be read is set aside (renamed to
        ``<name>.corrupt``, with a warning naming it) and its ids are not counted.
    """
    return set().union(*_scan(os.fspath(out_dir)).values())


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``manifest.json`` of an extraction directory.

    Parameters
    ----------
    out_dir : path
        The extraction directory.

    Returns
    -------
    dict
        ``{"format", "manifest", "created", "planned", "shards": [{"file", "rank", "rows"}], "n_rows"}``,
        and ``"timing"`` (a list, see :func:`extract`) once a timed run finished; ``planned`` is
        ``{"n", "sha256"}`` of the job's ids, or None when no writer was told them.

    Raises
    ------
    FileNotFoundError
        When the directory holds no ``manifest.json`` (no :class:`ShardWriter` ever opened it).
    ValueError
        When ``manifest.json`` is not JSON, or not an object with a ``manifest`` object (naming the file).
    """
    path = os.path.join(out_dir, MANIFEST_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"manifest: {path} not found; is {out_dir} an extraction directory?") from None
    except ValueError as err:  # bad JSON or bad UTF-8
        raise ValueError(f"manifest: {path} cannot be read ({err}); restore it, or move the shards away "
                         "to start afresh") from err
    planned = doc.get("planned") if isinstance(doc, dict) else None
    if (not isinstance(doc, dict) or not isinstance(doc.get("manifest"), dict)
            or not (planned is None or (isinstance(planned, dict) and set(planned) == {"n", "sha256"}))):
        raise ValueError(f"manifest: {path} is not an extraction manifest (a JSON object with a 'manifest' "
                         "object and 'planned' null or {'n', 'sha256'}); restore it, or move the shards away "
                         "to start afresh")
    version = doc.get("format", FORMAT_VERSION)
    if type(version) is not int or version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        raise ValueError(f"manifest: {path} has format {version!r}, " + (
            f"from a newer calcas (this one reads format {FORMAT_VERSION}); upgrade calcas" if newer else
            f"which no calcas writes (this one reads format {FORMAT_VERSION}); restore it"))
    _check_timing(doc.get("timing"), path)
    return doc


def _check_timing(timing: Any, path: str) -> None:
    """``timing`` of manifest.json: absent, or a list of the entries :func:`extract` appends."""
    if timing is None:
        return
    if not isinstance(timing, list):
        raise ValueError(f"manifest: {path}: 'timing' must be a list of timed runs, got {json.dumps(timing)[:60]}")
    for k, entry in enumerate(timing):
        where = f"manifest: {path}: timing[{k}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be an object, got {json.dumps(entry)[:60]}")
        items, seconds = entry.get("items"), entry.get("seconds")
        if isinstance(items, bool) or not isinstance(items, int) or items < 1:
            raise ValueError(f"{where}.items must be a whole number >= 1 (items timed), got {items!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
            raise ValueError(f"{where}.seconds must be a finite number >= 0, got {seconds!r}")
        if not isinstance(entry.get("device"), str):
            raise ValueError(f"{where}.device must be text, got {entry.get('device')!r}")
        if entry.get("gflops_source") is not None and not isinstance(entry["gflops_source"], str):
            raise ValueError(f"{where}.gflops_source must be text or null, got {entry['gflops_source']!r}")
        gflops = entry.get("gflops_per_item")
        if gflops is not None and (isinstance(gflops, bool) or not isinstance(gflops, (int, float))):
            raise ValueError(f"{where}.gflops_per_item must be a number or null, got {gflops!r}")


def _normalise(manifest: dict) -> dict:
    return json.loads(json.dumps(manifest, sort_keys=True, default=str))


def _planned(ids: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """The record ``{"n", "sha256"}`` of a job's ids (their count and the SHA-256 of
    ``json.dumps(sorted(ids))``) and the ids, sorted."""
    if isinstance(ids, str):
        raise ValueError("planned_ids: expected a collection of ids, got a string")
    ordered = list(ids)
    if not all(isinstance(i, str) for i in ordered):
        raise ValueError("planned_ids: every id must be a string")
    ordered.sort()
    again = next((a for a, b in zip(ordered, ordered[1:]) if a == b), None)
    if again is not None:
        raise ValueError(f"planned_ids: {again!r} appears more than once")
    digest = hashlib.sha256(json.dumps(ordered).encode("ascii")).hexdigest()
    return {"n": len(ordered), "sha256": digest}, ordered


def _check_recorded(out_dir: str, manifest: dict, planned: dict | None) -> dict | None:
    """:func:`check_manifest` on a normalised manifest and a planned record."""
    path = os.path.join(out_dir, MANIFEST_FILE)
    if not os.path.exists(path):
        shards = list_shards(out_dir)
        if shards:
            raise FileNotFoundError(f"manifest: {path} is missing, but {out_dir} holds {len(shards)} shard(s) "
                                    f"({shards[0][0]}, ...) of an unknown extraction; restore it, or move the "
                                    "shards away to start afresh")
        return None
    recorded = read_manifest(out_dir)
    old = {k: v for k, v in recorded["manifest"].items() if k not in INFORMATIONAL}
    manifest = {k: v for k, v in manifest.items() if k not in INFORMATIONAL}
    if old != manifest:
        keys = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
        raise ValueError(f"manifest: {out_dir} holds an extraction with a different manifest "
                         f"(keys that differ: {keys}); use a new out_dir or the same manifest")
    if planned is not None and recorded.get("planned") not in (None, planned):
        raise ValueError(f"planned: {out_dir} holds a job planned as {recorded['planned']}, this run plans "
                         f"{planned}; use a new out_dir or the same ids")
    return recorded


def check_manifest(out_dir: str | os.PathLike, manifest: dict, *,
                   planned_ids: Iterable[str] | None = None) -> dict[str, Any] | None:
    """Check that ``out_dir`` holds this extraction, or nothing yet (call on every run, a completed one too).

    Parameters
    ----------
    out_dir : path
        The extraction directory (need not exist yet).
    manifest : dict
        What this run extracts; its keys :data:`INFORMATIONAL` (``"cost"``) are not compared.
    planned_ids : iterable of str, optional
        All ids of the job, every rank's; compared with the recorded ``planned`` count and hash
        when there is one.

    Returns
    -------
    dict or None
        The recorded document (:func:`read_manifest`), or None for a new directory (no
        ``manifest.json`` and no shard).

    Raises
    ------
    FileNotFoundError
        When shards lie beside no ``manifest.json`` (naming the file).
    ValueError
        When ``manifest.json`` cannot be read, records another manifest (naming the keys that
        differ) or other planned ids; on repeated or non-string ``planned_ids``.
    TypeError
        When ``manifest`` is not a dict.
    """
    if not isinstance(manifest, dict):
        raise TypeError(f"manifest: expected a dict, got {type(manifest).__name__}")
    return _check_recorded(os.fspath(out_dir), _normalise(manifest),
                           None if planned_ids is None else _planned(planned_ids)[0])


def _write_and_move(directory: str, base: str, write: Any, move: Any) -> Any:
    """Write through ``write(fileobj)`` to ``.{base}.tmp-{pid}`` in ``directory``, fsync, then return
    ``move(tmp)``; the temporary file is removed when anything fails."""
    tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        return move(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def _locked(out_dir: str) -> Iterator[None]:
    """An exclusive lock on the directory's manifest (POSIX ``flock``; a no-op elsewhere)."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with open(os.path.join(out_dir, LOCK_FILE), "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _lock_holder(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            holder = json.load(f)
        return f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):  # the holder is still writing its lock file
        return "pid not yet recorded"


def _lock_world_size(path: str) -> int | None:
    """The world size a writer lock's holder recorded (None when not yet written or unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("world_size")
    except (OSError, ValueError, AttributeError):
        return None


def _take_writer_lock(out_dir: str, rank: int, world_size: int = 1) -> int | None:
    """Hold ``.writer-r{rank:03d}.lock`` of ``out_dir`` exclusively; returns the open descriptor.

    The file itself is never removed (removing a lock file races with the next taker); a dead
    holder's lock is gone with its process, as the kernel releases a flock when the holder dies.
    """
    if fcntl is None:  # pragma: no cover - Windows
        return None
    path = os.path.join(out_dir, f".writer-r{rank:03d}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now(),
                                 "world_size": world_size}).encode())
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"{out_dir}: rank {rank} already has a live writer ({_lock_holder(path)}); "
                           "two writers of one rank would lose shards: wait for it or stop it") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _next_k(out_dir: str, rank: int) -> int:
    """One past the largest shard number of ``rank`` in ``out_dir``, set-aside shards included."""
    own = re.compile(rf"^shard-r{rank:03d}-(\d{{6,}})\.parquet")
    return max((int(m.group(1)) for name in os.listdir(out_dir) if (m := own.match(name))), default=-1) + 1


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, possibly on an accelerator
        values = values.detach().cpu()
        if str(values.dtype) == "torch.bfloat16":  # numpy has no bf16; float32 holds every bf16 value
            values = values.float()
        values = values.numpy()
    return np.asarray(values)


def _check_batch(batch: dict[str, Any]) -> tuple[dict[str, np.ndarray], int]:
    """Validate one batch's columns; returns them as numpy arrays and the row count."""
    if not isinstance(batch, dict):
        raise TypeError(f"batch: expected a dict of columns, got {type(batch).__name__}")
    unknown = set(batch) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: not a batch column (expected {', '.join(_COLUMNS)})")
    for required in ("id", "pred", "label"):
        if required not in batch:
            raise ValueError(f"{required}: required batch column is missing")
    given = [s for s in SOURCES if batch.get(s) is not None]
    if len(given) != 1:
        raise ValueError(f"logits/confidence/score: exactly one confidence source is required, got {given or 'none'}")
    ids = list(batch["id"])
    if not all(isinstance(i, str) for i in ids):
        raise ValueError("id: every id must be a string")
    b = len(ids)
    cols: dict[str, np.ndarray] = {"id": np.asarray(ids, dtype=object).reshape(b)}
    for name in ("pred", "label"):
        a = _as_numpy(batch[name]).reshape(-1) if b else _as_numpy(batch[name])
        if a.ndim != 1 or len(a) != b:
            raise ValueError(f"{name}: expected {b} values (one per id), got shape {a.shape}")
        if b and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name}: expected integers, got dtype {a.dtype}")
        cols[name] = a.astype(np.int64)
    for name in ("verified", "confidence", "score"):
        if batch.get(name) is None:
            continue
        a = _as_numpy(batch[name])
        if a.ndim != 1 or len(a) != b:
            raise ValueError(f"{name}: expected {b} values (one per id), got shape {a.shape}")
        if b and not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise ValueError(f"{name}: expected numbers, got dtype {a.dtype}")
        cols[name] = a.astype(np.float64)
    if batch.get("logits") is not None:
        z = _as_numpy(batch["logits"])
        if z.ndim != 2 or len(z) != b:
            raise ValueError(f"logits: expected shape ({b}, C), got {z.shape}")
        if not np.issubdtype(z.dtype, np.floating):
            raise ValueError(f"logits: expected floats (fp16 or fp32), got dtype {z.dtype}")
        cols["logits"] = np.ascontiguousarray(z)
    return cols, b


def _record_error(cols: dict[str, np.ndarray], rows: slice) -> RecordsError | None:
    """Why ``rows`` of a batch are not a valid record set (:func:`calcas.make_records`), or None."""
    try:
        make_records(**{name: v[rows] for name, v in cols.items()})
    except RecordsError as err:
        return err
    return None


def _check_rows(cols: dict[str, np.ndarray]) -> None:
    """Refuse a batch whose values break the record-set rules, naming the column and the first bad id."""
    err = _record_error(cols, slice(None))
    if err is None:
        return
    for k, row_id in enumerate(cols["id"].tolist()):  # the first row that is bad on its own
        row_err = _record_error(cols, slice(k, k + 1))
        if row_err is not None:
            column, _, why = str(row_err).partition(": ")
            raise RecordsError(f"{column}: id {row_id!r}: {why}; nothing of this batch was written")
    raise RecordsError(f"{err}; nothing of this batch was written")


def _signature(cols: dict[str, np.ndarray]) -> tuple:
    z = cols.get("logits")
    return tuple(sorted(cols)), None if z is None else (str(z.dtype), z.shape[1])


def _to_table(cols: dict[str, np.ndarray]) -> pa.Table:
    arrays: dict[str, pa.Array] = {"id": pa.array(cols["id"].tolist(), pa.string()),
                                   "pred": pa.array(cols["pred"], pa.int64()),
                                   "label": pa.array(cols["label"], pa.int64())}
    if "verified" in cols:
        arrays["verified"] = pa.array(cols["verified"], pa.float64())
    if "logits" in cols:
        z = cols["logits"]
        arrays["logits"] = pa.FixedSizeListArray.from_arrays(pa.array(z.reshape(-1)), z.shape[1])
    for name in ("confidence", "score"):
        if name in cols:
            arrays[name] = pa.array(cols[name], pa.float64())
    return pa.table(arrays)


class ShardWriter:
    """Buffer batches of rows and write them as atomic Parquet shards of one extraction.

    Parameters
    ----------
    out_dir : path
        The extraction directory; created when missing. Several ranks may share it, one writer
        per rank at a time.
    manifest : dict
        What is being extracted (model, dataset, split, extraction parameters...). Stored in
        ``manifest.json``; a directory started with a different manifest is refused, so a
        resumed run cannot mix outputs of two configurations.
    shard_size : int, default 1024
        Rows per shard (the last shard of a run may be shorter).
    rank, world_size : int, default 0 and 1
        This process's rank and the number of ranks; shards are named
        ``shard-r{rank:03d}-{k:06d}.parquet`` with ``k`` continuing after this rank's existing
        shards.
    planned_ids : iterable of str, optional
        All ids of the job (every rank's). Recorded in ``manifest.json`` as their count and hash
        for :func:`merge_shards` to check; a row whose id is not planned is refused.
    resize_world : bool, default False
        ``manifest.json`` records the world size the folder was started with, and a writer of
        another world size is refused: ranks of two layouts would extract the same ids twice.
        To continue a job under a new world size, stop every writer, then open the writers with
        ``resize_world=True`` (``python -m calcas.extract ... --resize-world``): the done ids are
        kept and the rest is split anew. It is refused while a writer of another rank is live.

    Raises
    ------
    RuntimeError
        When another live writer of this rank holds ``out_dir`` (naming the directory, the rank
        and its pid), or, with ``resize_world``, a writer of any other rank.
    FileNotFoundError
        When ``out_dir`` holds shards but no ``manifest.json`` (:func:`check_manifest`).
    ValueError
        On a bad ``shard_size``, ``rank``, ``world_size`` or ``planned_ids``, or a manifest,
        planned ids or (without ``resize_world``) a world size that differ from those already
        recorded in ``out_dir``.

    Notes
    -----
    Use as a context manager: leaving the block normally flushes the buffered rows; leaving
    it through an exception discards them (they are not in any shard, so a resumed run
    extracts them again). Either way the writer lock is released. Opening a writer removes this
    rank's temporary files left by a killed run and sets aside unreadable shards. Rows whose id is
    already in a complete shard (see :meth:`done_ids`) are dropped by :meth:`write`; an id given
    twice within one writer is an error.
    """

    def __init__(self, out_dir: str | os.PathLike, *, manifest: dict, shard_size: int = 1024,
                 rank: int = 0, world_size: int = 1, planned_ids: Iterable[str] | None = None,
                 resize_world: bool = False) -> None:
        if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
            raise ValueError(f"shard_size: must be a positive integer, got {shard_size!r}")
        if not isinstance(world_size, (int, np.integer)) or world_size < 1:
            raise ValueError(f"world_size: must be a positive integer, got {world_size!r}")
        if not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
            raise ValueError(f"rank: must satisfy 0 <= rank < world_size={world_size}, got {rank!r}")
        if not isinstance(manifest, dict):
            raise TypeError(f"manifest: expected a dict, got {type(manifest).__name__}")
        self._planned, self._planned_ids = None, None
        if planned_ids is not None:
            self._planned, ordered = _planned(planned_ids)
            self._planned_ids = frozenset(ordered)
        self.out_dir = os.fspath(out_dir)
        self.manifest = _normalise(manifest)
        self.shard_size = int(shard_size)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.resize_world = bool(resize_world)
        self.rows_written = 0
        self.rows_skipped = 0
        self._buffer: list[dict[str, np.ndarray]] = []
        self._n_buffered = 0
        self._signature: tuple | None = None
        self._closed = False
        self._created = _now()
        os.makedirs(self.out_dir, exist_ok=True)
        self._lock_fd = _take_writer_lock(self.out_dir, self.rank, self.world_size)
        try:
            self._open()
        except BaseException:
            self._release()
            raise

    def _open(self) -> None:
        """Check the directory and tidy it up for this rank; the writer lock is held."""
        with _locked(self.out_dir):
            _check_recorded(self.out_dir, self.manifest, self._planned)
            self._check_world_size()
            tmp_re = re.compile(rf"^\.(shard-r{self.rank:03d}-\d+\.parquet|{re.escape(MANIFEST_FILE)})\.tmp-")
            for name in os.listdir(self.out_dir):
                if tmp_re.match(name):  # left by a killed run (no one writes manifest.json while we hold its lock)
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(os.path.join(self.out_dir, name))
            shard_ids = _scan(self.out_dir)
            self._row_counts = {name: len(ids) for name, ids in shard_ids.items()}
            self._update_manifest()
        self._done = set().union(*shard_ids.values())
        self._seen: set[str] = set()
        self._next_k = _next_k(self.out_dir, self.rank)
        first = next(iter(shard_ids), None)
        self._existing_schema = (None if first is None else
                                 pq.read_schema(os.path.join(self.out_dir, first)).remove_metadata())

    def _check_world_size(self) -> None:
        """Refuse a world size other than the recorded one, unless resizing with no other writer
        live; call with the manifest lock held."""
        if not os.path.exists(os.path.join(self.out_dir, MANIFEST_FILE)):
            return
        recorded = read_manifest(self.out_dir).get("world_size")
        if recorded is None or recorded == self.world_size:
            return
        if not self.resize_world:
            raise ValueError(
                f"world_size: {self.out_dir} is extracted by {recorded} rank(s) (manifest.json); this writer is "
                f"rank {self.rank} of {self.world_size}, and ranks of two world sizes would extract the same ids "
                f"twice. Resume with {recorded} rank(s), or stop every writer and rerun with --resize-world "
                f"(resize_world=True) to continue with {self.world_size}")
        for name in os.listdir(self.out_dir):  # a live writer of the old layout would double ids
            m = re.match(r"^\.writer-r(\d{3,})\.lock$", name)
            if not m or int(m.group(1)) == self.rank or fcntl is None:
                continue
            path = os.path.join(self.out_dir, name)
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # live: a rank of the new layout may go on, one of another may not
                if _lock_world_size(path) != self.world_size:
                    raise RuntimeError(f"world_size: cannot resize {self.out_dir} from {recorded} to "
                                       f"{self.world_size} rank(s) while a writer of rank {int(m.group(1))} of "
                                       f"another world size is live ({_lock_holder(path)})") from None
            finally:
                os.close(fd)

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def done_ids(self) -> set[str]:
        """Ids in complete shards of ``out_dir`` for all ranks, read when the writer opened.

        Returns
        -------
        set of str
            The ids a resumed run should skip (a copy; the writer's own set is not exposed).
        """
        return set(self._done)

    def write(self, batch: dict[str, Any]) -> int:
        """Buffer the rows of one batch, writing a shard each time ``shard_size`` rows are buffered.

        Parameters
        ----------
        batch : dict
            Columns for b rows (see the module docstring); torch tensors are accepted.

        Returns
        -------
        int
            How many rows of the batch were kept (rows whose id is already done are dropped).

        Raises
        ------
        ValueError
            Naming the column, when the batch breaks the contract or its columns differ from
            earlier batches (other columns, logits dtype or width); naming the column and the
            first offending id (a :class:`calcas.RecordsError`), when a value breaks the
            record-set rules; naming the id, when it was already given to this writer or is not
            among the planned ids. Nothing of a refused batch is kept.
        """
        if self._closed:
            raise ValueError("ShardWriter: write() after close()")
        cols, b = _check_batch(batch)
        if b == 0:
            return 0
        sig = _signature(cols)
        if self._signature is not None and sig != self._signature:
            what = "logits" if sig[0] == self._signature[0] else sorted(set(sig[0]) ^ set(self._signature[0]))[0]
            raise ValueError(f"{what}: this batch's columns {sig} differ from earlier batches' {self._signature}")
        ids = cols["id"].tolist()
        if self._planned_ids is not None:
            stray = next((i for i in ids if i not in self._planned_ids), None)
            if stray is not None:
                raise ValueError(f"id: {stray!r} is not among the {len(self._planned_ids)} planned ids of this "
                                 "job; nothing of this batch was written")
        keep = np.fromiter((i not in self._done for i in ids), dtype=bool, count=b)
        new_ids = np.asarray(ids, dtype=object)[keep].tolist()
        new_set = set(new_ids)
        if len(new_set) < len(new_ids) or not self._seen.isdisjoint(new_set):
            again = next(i for k, i in enumerate(new_ids) if i in self._seen or i in new_ids[:k])
            raise ValueError(f"id: {again!r} was given twice to this writer")
        _check_rows(cols)
        # the batch is accepted: only now does the writer's state change
        self._signature = sig
        self._seen |= new_set
        n_keep = int(keep.sum())
        self.rows_skipped += b - n_keep
        if n_keep == 0:
            return 0
        if n_keep < b:
            cols = {k: v[keep] for k, v in cols.items()}
        self._buffer.append(cols)
        self._n_buffered += n_keep
        while self._n_buffered >= self.shard_size:
            self._flush(self.shard_size)
        return n_keep

    def close(self) -> None:
        """Write the buffered rows as a last (shorter) shard and release the writer lock; further
        writes are refused."""
        if self._closed:
            return
        try:
            if self._n_buffered:
                self._flush(self._n_buffered)
        finally:
            self._closed = True
            self._release()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._buffer, self._n_buffered, self._closed = [], 0, True
            self._release()

    def _flush(self, n: int) -> None:
        merged = {k: np.concatenate([c[k] for c in self._buffer]) for k in self._buffer[0]}
        head = {k: v[:n] for k, v in merged.items()}
        rest = {k: v[n:] for k, v in merged.items()}
        self._buffer = [rest] if len(rest["id"]) else []
        self._n_buffered -= n
        table = _to_table(head)
        table = table.replace_schema_metadata({SHARD_CHECKSUM_KEY: _shard_checksum(table)})
        if self._existing_schema is not None and not table.schema.equals(self._existing_schema):
            raise ValueError(f"columns: this run's schema {table.schema} differs from the existing shards' "
                             f"{self._existing_schema} in {self.out_dir}")
        name = _write_and_move(self.out_dir, _shard_name(self.rank, self._next_k),
                               lambda f: pq.write_table(table, f), self._publish)
        self._row_counts[name] = n
        self.rows_written += n
        with _locked(self.out_dir):
            self._update_manifest()

    def _publish(self, tmp: str) -> str:
        """Link the complete file ``tmp`` to this rank's next free shard name; returns the name."""
        while True:
            name = _shard_name(self.rank, self._next_k)
            self._next_k += 1
            try:
                os.link(tmp, os.path.join(self.out_dir, name))  # unlike a rename, never replaces a file
            except FileExistsError:  # written by a writer the lock could not see (a lockless file system)
                continue
            os.remove(tmp)
            return name

    def _update_manifest(self) -> None:
        """Rewrite manifest.json from the directory listing, keeping its creation time and planned
        ids; call with the manifest lock held."""
        kept = read_manifest(self.out_dir) if os.path.exists(os.path.join(self.out_dir, MANIFEST_FILE)) else {}
        shards = []
        for name, rank, _ in list_shards(self.out_dir):
            if name not in self._row_counts:  # published by another rank since this writer opened
                self._row_counts[name] = pq.ParquetFile(os.path.join(self.out_dir, name)).metadata.num_rows
            shards.append({"file": name, "rank": rank, "rows": self._row_counts[name]})
        doc = {"format": FORMAT_VERSION, "manifest": self.manifest, "world_size": self.world_size,
               "created": kept.get("created", self._created),
               "planned": kept.get("planned") or self._planned, "shards": shards,
               "n_rows": sum(s["rows"] for s in shards), **({"timing": kept["timing"]} if "timing" in kept else {})}
        _write_manifest(self.out_dir, doc)


def _write_manifest(out_dir: str, doc: dict) -> None:
    """Replace ``manifest.json`` atomically by ``doc``; call with the manifest lock held."""
    data = json.dumps(doc, indent=1).encode("utf-8")
    path = os.path.join(out_dir, MANIFEST_FILE)
    _write_and_move(out_dir, MANIFEST_FILE, lambda f: f.write(data), lambda tmp: os.replace(tmp, path))


def _cost(timing: list[dict]) -> dict[str, Any]:
    """``manifest["cost"]`` from the timed runs: seconds per item over all of them (a mean weighted
    by ``items``), the devices they ran on and the last run's GFLOPs per item."""
    items = sum(t["items"] for t in timing)
    return {"seconds_per_item": sum(t["seconds"] for t in timing) / items, "items_timed": items,
            "device": ", ".join(sorted({t["device"] for t in timing})),
            "gflops_per_item": timing[-1]["gflops_per_item"], "gflops_source": timing[-1]["gflops_source"]}


def _progress_bar(total: int | None, enabled: bool, desc: str) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional; without it there is no bar
        enabled = False
    if not enabled:
        class _Silent:
            def update(self, n: int) -> None:
                pass

            def close(self) -> None:
                pass
        return _Silent()
    return tqdm(total=total, desc=desc, unit="row", dynamic_ncols=True, smoothing=0.1)


def extract(batches: Iterable[dict[str, Any]], out_dir: str | os.PathLike, *, manifest: dict,
            shard_size: int = 1024, rank: int = 0, world_size: int = 1, planned_ids: Iterable[str] | None = None,
            progress: bool = True, total: int | None = None, cost: dict | None = None,
            resize_world: bool = False) -> int:
    """Write batches of model outputs to resumable shards in ``out_dir``.

    Parameters
    ----------
    batches : iterable of dict
        Batches of rows (see the module docstring). The caller's iterator should skip ids in
        :func:`done_ids` (``out_dir``) so no model time is spent on them; rows whose id is
        done are dropped here as well, so nothing is ever duplicated.
    out_dir : path
        The extraction directory (shared by all ranks).
    manifest : dict
        What is being extracted; must equal the manifest of an existing ``out_dir``.
    shard_size : int, default 1024
        Rows per shard.
    rank, world_size : int, default 0 and 1
        This process's rank and the number of ranks.
    planned_ids : iterable of str, optional
        All ids of the job, every rank's (see :class:`ShardWriter`).
    progress : bool, default True
        Show a tqdm progress bar (rows/s and ETA) on stderr.
    total : int, optional
        Rows this call is expected to write (for the bar's ETA).
    cost : dict, optional
        ``{"device": str, "gflops_per_item": float or None, "gflops_source": str or None}`` of this
        run. When given, the seconds spent producing the batches (waiting on ``batches``, not
        writing them) and the number of items they held are appended, with ``rank`` and ``cost``,
        to ``"timing"`` in ``manifest.json`` once the writer closed (nothing when no item came).
    resize_world : bool, default False
        Continue a job started with another world size (see :class:`ShardWriter`).

    Returns
    -------
    int
        Number of rows written by this call.

    Raises
    ------
    RuntimeError, FileNotFoundError, ValueError
        From :class:`ShardWriter` (a live writer of this rank, shards without a manifest, bad
        ``shard_size``, manifest mismatch, bad batch).
    """
    with ShardWriter(out_dir, manifest=manifest, shard_size=shard_size, rank=rank, world_size=world_size,
                     planned_ids=planned_ids, resize_world=resize_world) as writer:
        bar = _progress_bar(total, progress, f"extract r{rank}/{world_size}")
        batches, seconds, items = iter(batches), 0.0, 0
        try:
            while True:
                start = time.perf_counter()
                batch = next(batches, None)
                seconds += time.perf_counter() - start
                if batch is None:
                    break
                items += len(batch["id"])
                bar.update(writer.write(batch))
        finally:
            bar.close()
    if cost is not None and items:
        out_dir = os.fspath(out_dir)
        with _locked(out_dir):
            doc = read_manifest(out_dir)
            doc.setdefault("timing", []).append({"rank": rank, "items": items, "seconds": seconds, **cost})
            _write_manifest(out_dir, doc)
    return writer.rows_written


def _not_planned(out_dir: str, ids: list[str], planned: dict, planned_ids: Iterable[str] | None) -> str:
    """Why the merged ``ids`` are not the planned ones: what is missing and extra, when the ids are known."""
    head = f"ids: the shards of {out_dir} hold {len(ids)} ids, the job planned {planned['n']}"
    if planned_ids is None:
        return (f"{head} (sha256 {planned['sha256']}), and these are not those; pass planned_ids= to name the "
                "missing and extra ones")
    expected, got = set(planned_ids), set(ids)
    missing, extra = sorted(expected - got), sorted(got - expected)
    parts = [f"{len(missing)} missing ({_some(missing)}); resume the extraction to write them"] if missing else []
    parts += [f"{len(extra)} not planned ({_some(extra)})"] if extra else []
    return f"{head}: " + "; ".join(parts)


def merge_shards(out_dir: str | os.PathLike, path: str | os.PathLike | None = None, *,
                 manifest: dict | None = None, planned_ids: Iterable[str] | None = None) -> Records:
    """Merge every complete shard of an extraction into one record set, rows sorted by id.

    Parameters
    ----------
    out_dir : path
        The extraction directory.
    path : path, optional
        Where to write the merged record set (one Parquet file, :func:`calcas.write_records`).
    manifest : dict, optional
        What the caller extracted; checked with :func:`check_manifest` first.
    planned_ids : iterable of str, optional
        All ids of the job: the merged ids must be exactly these. Without them, the count and
        hash recorded in ``manifest.json`` (when a writer was given them) are checked instead.

    Returns
    -------
    Records
        Built with :func:`calcas.make_records`; its manifest is the extraction manifest plus
        ``n_shards``, ``ranks`` (the ranks that wrote shards), ``extracted`` (when the
        extraction directory was started) and, when timed runs wrote shards, ``cost``
        (:func:`_cost`: ``{"seconds_per_item", "items_timed", "device", "gflops_per_item",
        "gflops_source"}``, informational). The columns do not depend
        on the shard size or on how the work was split; logits keep their dtype (fp16 stays
        fp16).

    Raises
    ------
    ValueError
        When there are no shards; when a shard cannot be read (naming it; it is set aside as
        ``<name>.corrupt`` so that a resumed run extracts its ids again); when shards disagree on
        their columns (naming the shard); when an id appears more than once (naming ids and the
        shards holding them); when the ids are not the planned ones (naming how many, and with
        ``planned_ids`` the first few, are missing or extra); from :func:`check_manifest`.
    """
    out_dir = os.fspath(out_dir)
    if planned_ids is not None:
        planned, planned_ids = _planned(planned_ids)
    if manifest is not None:
        check_manifest(out_dir, manifest)
    recorded = read_manifest(out_dir)
    if planned_ids is None:
        planned = recorded.get("planned")
    shards = list_shards(out_dir)
    if not shards:
        raise ValueError(f"shards: {out_dir} holds no complete shard to merge")
    tables, owner = [], []
    for name, _, _ in shards:
        try:
            cols = _read_shard(out_dir, name)
        except _UNREADABLE as err:
            aside = _set_aside(out_dir, name)
            raise ValueError(f"{name}: cannot be read ({type(err).__name__}: {err}); set aside as {aside} in "
                             f"{out_dir}: resume the extraction to extract its ids again, then merge") from err
        # rebuilt from its values: what a flipped byte in Parquet's own schema bytes (a field name,
        # a nullable flag) changes is not content, and shards are compared on their content's types
        t = _to_table({**cols, "id": np.asarray(cols["id"], dtype=object)})
        if tables and not t.schema.equals(tables[0].schema):
            raise ValueError(f"{name}: its columns {t.schema.names} / types differ from {shards[0][0]}'s; "
                             "shards of one extraction must share one schema")
        tables.append(t)
        owner.extend([name] * t.num_rows)
    table = pa.concat_tables(tables)
    ids = np.asarray(table.column("id").to_pylist(), dtype=object)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if len(dup):
        names = sorted(set(sorted_ids[dup].tolist()))
        where = {i: sorted({owner[j] for j in np.flatnonzero(ids == i)}) for i in names[:3]}
        raise ValueError(f"id: {len(names)} id(s) appear in more than one row of the shards of {out_dir}, "
                         f"e.g. {', '.join(f'{i!r} in {w}' for i, w in where.items())}")
    if planned is not None and _planned(sorted_ids.tolist())[0] != planned:
        raise ValueError(_not_planned(out_dir, sorted_ids.tolist(), planned, planned_ids))
    table = table.take(pa.array(order))
    kwargs: dict[str, Any] = {"label": table.column("label").to_numpy()}
    for name in ("verified", "confidence", "score"):
        if name in table.column_names:
            kwargs[name] = table.column(name).to_numpy()
    if "logits" in table.column_names:
        kwargs["logits"] = _logits_from_arrow(table.column("logits"))
    manifest = {**recorded["manifest"], "n_shards": len(shards),
                "ranks": sorted({r for _, r, _ in shards}), "extracted": recorded.get("created"),
                **({"cost": _cost(recorded["timing"])} if recorded.get("timing") else {})}
    records = make_records(sorted_ids.tolist(), table.column("pred").to_numpy(), manifest=manifest, **kwargs)
    if path is not None:
        write_records(records, path)
    return records
