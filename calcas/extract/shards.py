"""Resumable, sharded extraction output (SPEC §0).

An extraction writes its rows into a directory of Parquet *shards*
``shard-r{rank:03d}-{k:06d}.parquet``, each written to a temporary name and moved into place
with :func:`os.replace`, so a killed run leaves only complete shards. ``manifest.json`` in the
same directory records the extraction manifest, the shard list and the row counts; it is
rewritten atomically (under a file lock, as several ranks share it) after every shard. The
directory listing is the truth: a shard that was moved into place just before a kill, before
``manifest.json`` caught up, still counts, and the next writer repairs the manifest.

A *batch* is a dict of columns for ``b`` rows: ``"id"`` (list of str), ``"pred"`` (int),
``"label"`` (int, -1 unknown), optionally ``"verified"`` (float in [0, 1]), and exactly one of
``"logits"`` (float array (b, C), fp16 or fp32, kept in its dtype), ``"confidence"``, ``"score"``.

:func:`merge_shards` turns the directory into one record set, rows sorted by id, so the result
does not depend on the shard size or on how the work was split between ranks.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..records import SOURCES, Records, _logits_from_arrow, make_records, write_records

MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".manifest.lock"
FORMAT_VERSION = 1
SHARD_RE = re.compile(r"^shard-r(\d{3,})-(\d{6,})\.parquet$")
_COLUMNS = ("id", "pred", "label", "verified", *SOURCES)

__all__ = ["ShardWriter", "done_ids", "extract", "list_shards", "merge_shards", "read_manifest"]


def _shard_name(rank: int, k: int) -> str:
    return f"shard-r{rank:03d}-{k:06d}.parquet"


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
        files of an interrupted write are not shards and are ignored.
    """
    if not os.path.isdir(out_dir):
        return []
    found = []
    for name in os.listdir(out_dir):
        m = SHARD_RE.match(name)
        if m:
            found.append((name, int(m.group(1)), int(m.group(2))))
    return sorted(found, key=lambda t: (t[1], t[2]))


def done_ids(out_dir: str | os.PathLike) -> set[str]:
    """Ids already written to complete shards of ``out_dir``, by any rank.

    Parameters
    ----------
    out_dir : path
        The extraction directory (need not exist yet).

    Returns
    -------
    set of str
        The ids to skip when resuming.
    """
    ids: set[str] = set()
    for name, _, _ in list_shards(out_dir):
        ids.update(pq.read_table(os.path.join(out_dir, name), columns=["id"]).column("id").to_pylist())
    return ids


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``manifest.json`` of an extraction directory.

    Parameters
    ----------
    out_dir : path
        The extraction directory.

    Returns
    -------
    dict
        ``{"format", "manifest", "created", "shards": [{"file", "rank", "rows"}], "n_rows"}``.

    Raises
    ------
    FileNotFoundError
        When the directory holds no ``manifest.json`` (no :class:`ShardWriter` ever opened it).
    """
    path = os.path.join(out_dir, MANIFEST_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"manifest: {path} not found; is {out_dir} an extraction directory?")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _normalise(manifest: dict) -> dict:
    return json.loads(json.dumps(manifest, sort_keys=True, default=str))


def _atomic_write_bytes(path: str, write: Any) -> None:
    """Write through ``write(fileobj)`` to a temporary name beside ``path``, fsync, then replace."""
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def _locked(out_dir: str) -> Iterator[None]:
    """An exclusive lock on the directory's manifest (POSIX ``flock``; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(os.path.join(out_dir, LOCK_FILE), "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, possibly on an accelerator
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _check_batch(batch: dict[str, Any]) -> tuple[dict[str, np.ndarray], int]:
    """Validate one batch; returns its columns as numpy arrays and its row count."""
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
        The extraction directory; created when missing. Several ranks may share it.
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

    Raises
    ------
    ValueError
        On a bad ``shard_size``, ``rank`` or ``world_size``, or a manifest that differs from
        the one already recorded in ``out_dir``.

    Notes
    -----
    Use as a context manager: leaving the block normally flushes the buffered rows; leaving
    it through an exception discards them (they are not in any shard, so a resumed run
    extracts them again). Opening a writer removes this rank's temporary files left by a
    killed run. Rows whose id is already in a complete shard (see :meth:`done_ids`) are
    dropped by :meth:`write`; an id given twice within one writer is an error.
    """

    def __init__(self, out_dir: str | os.PathLike, *, manifest: dict, shard_size: int = 1024,
                 rank: int = 0, world_size: int = 1) -> None:
        if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
            raise ValueError(f"shard_size: must be a positive integer, got {shard_size!r}")
        if not isinstance(world_size, (int, np.integer)) or world_size < 1:
            raise ValueError(f"world_size: must be a positive integer, got {world_size!r}")
        if not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
            raise ValueError(f"rank: must satisfy 0 <= rank < world_size={world_size}, got {rank!r}")
        if not isinstance(manifest, dict):
            raise TypeError(f"manifest: expected a dict, got {type(manifest).__name__}")
        self.out_dir = os.fspath(out_dir)
        self.manifest = _normalise(manifest)
        self.shard_size = int(shard_size)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.rows_written = 0
        self.rows_skipped = 0
        self._buffer: list[dict[str, np.ndarray]] = []
        self._n_buffered = 0
        self._signature: tuple | None = None
        self._row_counts: dict[str, int] = {}
        self._closed = False
        os.makedirs(self.out_dir, exist_ok=True)
        with _locked(self.out_dir):
            tmp_re = re.compile(rf"^\.(shard-r{self.rank:03d}-\d+\.parquet|{re.escape(MANIFEST_FILE)})\.tmp-")
            for name in os.listdir(self.out_dir):
                if tmp_re.match(name):  # left by a killed run of this rank
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(os.path.join(self.out_dir, name))
            path = os.path.join(self.out_dir, MANIFEST_FILE)
            self._created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            if os.path.exists(path):
                recorded = read_manifest(self.out_dir)
                if recorded.get("manifest") != self.manifest:
                    old, new = recorded.get("manifest") or {}, self.manifest
                    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                    raise ValueError(f"manifest: {self.out_dir} holds an extraction with a different manifest "
                                     f"(keys that differ: {keys}); use a new out_dir or the same manifest")
                self._created = recorded.get("created", self._created)
            self._update_manifest()
        own = [k for _, r, k in list_shards(self.out_dir) if r == self.rank]
        self._next_k = max(own) + 1 if own else 0
        self._done = done_ids(self.out_dir)
        self._seen: set[str] = set()
        existing = list_shards(self.out_dir)
        self._existing_schema = (pq.read_schema(os.path.join(self.out_dir, existing[0][0])).remove_metadata()
                                 if existing else None)

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
            earlier batches (other columns, logits dtype or width), or naming the id, when an
            id was already given to this writer.
        """
        if self._closed:
            raise ValueError("ShardWriter: write() after close()")
        cols, b = _check_batch(batch)
        if b == 0:
            return 0
        sig = _signature(cols)
        if self._signature is None:
            self._signature = sig
        elif sig != self._signature:
            what = "logits" if sig[0] == self._signature[0] else sorted(set(sig[0]) ^ set(self._signature[0]))[0]
            raise ValueError(f"{what}: this batch's columns {sig} differ from earlier batches' {self._signature}")
        ids = cols["id"].tolist()
        keep = np.fromiter((i not in self._done for i in ids), dtype=bool, count=b)
        new_ids = np.asarray(ids, dtype=object)[keep].tolist()
        new_set = set(new_ids)
        if len(new_set) < len(new_ids) or not self._seen.isdisjoint(new_set):
            again = next(i for k, i in enumerate(new_ids) if i in self._seen or i in new_ids[:k])
            raise ValueError(f"id: {again!r} was given twice to this writer")
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
        """Write the buffered rows as a last (shorter) shard; further writes are refused."""
        if self._closed:
            return
        if self._n_buffered:
            self._flush(self._n_buffered)
        self._closed = True

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._buffer, self._n_buffered, self._closed = [], 0, True

    def _flush(self, n: int) -> None:
        merged = {k: np.concatenate([c[k] for c in self._buffer]) for k in self._buffer[0]}
        head = {k: v[:n] for k, v in merged.items()}
        rest = {k: v[n:] for k, v in merged.items()}
        self._buffer = [rest] if len(rest["id"]) else []
        self._n_buffered -= n
        table = _to_table(head)
        if self._existing_schema is not None and not table.schema.equals(self._existing_schema):
            raise ValueError(f"columns: this run's schema {table.schema} differs from the existing shards' "
                             f"{self._existing_schema} in {self.out_dir}")
        name = _shard_name(self.rank, self._next_k)
        self._next_k += 1
        _atomic_write_bytes(os.path.join(self.out_dir, name), lambda f: pq.write_table(table, f))
        self._row_counts[name] = n
        self.rows_written += n
        with _locked(self.out_dir):
            self._update_manifest()

    def _update_manifest(self) -> None:
        """Rewrite manifest.json from the directory listing; call with the lock held."""
        shards = []
        for name, rank, _ in list_shards(self.out_dir):
            if name not in self._row_counts:
                self._row_counts[name] = pq.ParquetFile(os.path.join(self.out_dir, name)).metadata.num_rows
            shards.append({"file": name, "rank": rank, "rows": self._row_counts[name]})
        doc = {"format": FORMAT_VERSION, "manifest": self.manifest, "created": self._created,
               "shards": shards, "n_rows": sum(s["rows"] for s in shards)}
        data = json.dumps(doc, indent=1).encode("utf-8")
        _atomic_write_bytes(os.path.join(self.out_dir, MANIFEST_FILE), lambda f: f.write(data))


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
            shard_size: int = 1024, rank: int = 0, world_size: int = 1, progress: bool = True,
            total: int | None = None) -> int:
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
    progress : bool, default True
        Show a tqdm progress bar (rows/s and ETA) on stderr.
    total : int, optional
        Rows this call is expected to write (for the bar's ETA).

    Returns
    -------
    int
        Number of rows written by this call.

    Raises
    ------
    ValueError
        From :class:`ShardWriter` (bad ``shard_size``, manifest mismatch, bad batch).
    """
    with ShardWriter(out_dir, manifest=manifest, shard_size=shard_size, rank=rank,
                     world_size=world_size) as writer:
        bar = _progress_bar(total, progress, f"extract r{rank}/{world_size}")
        try:
            for batch in batches:
                bar.update(writer.write(batch))
        finally:
            bar.close()
    return writer.rows_written


def merge_shards(out_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Records:
    """Merge every complete shard of an extraction into one record set, rows sorted by id.

    Parameters
    ----------
    out_dir : path
        The extraction directory.
    path : path, optional
        Where to write the merged record set (one Parquet file, :func:`calcas.write_records`).

    Returns
    -------
    Records
        Built with :func:`calcas.make_records`; its manifest is the extraction manifest plus
        ``n_shards``, ``ranks`` (the ranks that wrote shards) and ``extracted`` (when the
        extraction directory was started). The columns do not depend
        on the shard size or on how the work was split; logits keep their dtype (fp16 stays
        fp16).

    Raises
    ------
    ValueError
        When there are no shards, when shards disagree on their columns (naming the shard),
        or when an id appears more than once (naming ids and the shards holding them).
    """
    out_dir = os.fspath(out_dir)
    recorded = read_manifest(out_dir)
    shards = list_shards(out_dir)
    if not shards:
        raise ValueError(f"shards: {out_dir} holds no complete shard to merge")
    tables, owner = [], []
    for name, _, _ in shards:
        t = pq.read_table(os.path.join(out_dir, name)).replace_schema_metadata(None)
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
    table = table.take(pa.array(order))
    kwargs: dict[str, Any] = {"label": table.column("label").to_numpy()}
    for name in ("verified", "confidence", "score"):
        if name in table.column_names:
            kwargs[name] = table.column(name).to_numpy()
    if "logits" in table.column_names:
        kwargs["logits"] = _logits_from_arrow(table.column("logits"))
    manifest = {**(recorded.get("manifest") or {}), "n_shards": len(shards),
                "ranks": sorted({r for _, r, _ in shards}), "extracted": recorded.get("created")}
    records = make_records(sorted_ids.tolist(), table.column("pred").to_numpy(), manifest=manifest, **kwargs)
    if path is not None:
        write_records(records, path)
    return records
