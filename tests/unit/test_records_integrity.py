"""Integrity of record-set files: the content checksum that write_records stores and
read_records verifies, and what a damaged file does (issue 10, item 4)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calcas import Records, RecordsError, make_records, read_records, write_records
from calcas.records import CHECKSUM_KEY, COLUMNS, MANIFEST_KEY, content_sha256


def small_records(n=12, classes=5, dtype=np.float16):
    """Every column a record set can have, logits in ``dtype``."""
    rng = np.random.default_rng(7)
    z = rng.normal(size=(n, classes)).astype(dtype)
    return make_records([f"img{i:03d}" for i in range(n)], z.argmax(axis=1), label=rng.integers(0, classes, n),
                        logits=z, valid_labels=[list(range(i % 3)) for i in range(n)], is_noisy=rng.random(n) < 0.3,
                        split=np.array(["cal", "test"] * (n // 2)),
                        manifest={"model": "m1", "dataset": "toy", "extraction": {"layer": -1}})


def same_records(a: Records, b: Records) -> bool:
    """Equal in every column (values, dtype and shape) and in the manifest."""
    for field in dataclasses.fields(Records):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name == "valid_labels":
            if [v.tolist() for v in x] != [v.tolist() for v in y]:
                return False
        elif isinstance(x, np.ndarray):
            if not isinstance(y, np.ndarray) or x.dtype != y.dtype or x.shape != y.shape or not (x == y).all():
                return False
        elif x != y:
            return False
    return True


def rewrite(path, table: pa.Table, metadata: dict, **options):
    pq.write_table(table.replace_schema_metadata(metadata), path, **options)


def documented_sha256(records: Records, manifest_json: bytes) -> str:
    """The checksum built from content_sha256's docstring alone, in one byte string."""
    def framed(data: bytes) -> bytes:
        return len(data).to_bytes(8, "little") + data

    def array(a: np.ndarray) -> bytes:
        return framed(f"{a.dtype.str} {'x'.join(map(str, a.shape))}".encode()) + a.tobytes()

    out = b""
    for name in COLUMNS:
        value = getattr(records, name)
        if value is None:
            continue
        out += framed(name.encode())
        if name in ("id", "split"):
            utf8 = [s.encode("utf-8") for s in value]
            out += array(np.array([len(s) for s in utf8], "<i8")) + framed(b"".join(utf8))
        elif name == "valid_labels":
            out += array(np.array([len(v) for v in value], "<i8")) + array(np.concatenate(value).astype("<i8"))
        else:
            out += array(value)
    return hashlib.sha256(out + framed(manifest_json)).hexdigest()


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_write_stores_the_documented_checksum_beside_the_manifest(tmp_path, dtype):
    r = small_records(dtype=dtype)
    path = tmp_path / "r.parquet"
    write_records(r, path)
    metadata = pq.read_schema(path).metadata
    manifest_json = metadata[MANIFEST_KEY]
    assert "sha256" not in json.loads(manifest_json)
    assert re.fullmatch(rb"[0-9a-f]{64}", metadata[CHECKSUM_KEY])
    assert metadata[CHECKSUM_KEY].decode() == documented_sha256(r, manifest_json)
    back = read_records(path)
    assert back.logits.dtype == dtype
    assert same_records(back, r)


@pytest.mark.parametrize("options", [{"row_group_size": 5}, {"compression": "none", "use_dictionary": False},
                                     {"compression": "gzip", "data_page_size": 64}])
def test_checksum_does_not_depend_on_parquet_layout(tmp_path, options):
    r = small_records()
    path = tmp_path / "r.parquet"
    write_records(r, path)
    table = pq.read_table(path)
    chunked = pa.concat_tables([table.slice(0, 7), table.slice(7)])
    rewrite(path, chunked, table.schema.metadata, **options)
    assert same_records(read_records(path), r)


def _changed_value(r: Records) -> Records:
    logits = r.logits.copy()
    logits[3, 1] += 1
    return dataclasses.replace(r, logits=logits)


@pytest.mark.parametrize("change", [
    pytest.param(lambda r: dataclasses.replace(r, id=np.array(["imgX", *r.id[1:]], dtype=object)), id="id"),
    pytest.param(_changed_value, id="logits value"),
    pytest.param(lambda r: dataclasses.replace(r, logits=r.logits.astype(np.float32)), id="logits dtype"),
    pytest.param(lambda r: dataclasses.replace(r, label=r.label[::-1].copy()), id="label"),
    pytest.param(lambda r: dataclasses.replace(r, valid_labels=[np.array([4])] + r.valid_labels[1:]), id="valid_labels"),
    pytest.param(lambda r: dataclasses.replace(r, is_noisy=~r.is_noisy), id="is_noisy"),
    pytest.param(lambda r: dataclasses.replace(r, split=r.split[::-1].copy()), id="split"),
    pytest.param(lambda r: dataclasses.replace(r, manifest={**r.manifest, "model": "m2"}), id="manifest"),
])
def test_changed_content_under_the_old_checksum_is_refused(tmp_path, change):
    r = small_records()
    path, changed = tmp_path / "r.parquet", tmp_path / "changed.parquet"
    write_records(r, path)
    write_records(change(r), changed)
    table = pq.read_table(changed)   # the manifest is the old one, but where the change is to it
    rewrite(path, table, {**table.schema.metadata, CHECKSUM_KEY: pq.read_schema(path).metadata[CHECKSUM_KEY]})
    with pytest.raises(RecordsError, match=rf"^checksum: the columns and manifest do not match the file's "
                                           rf"calcas.sha256 checksum; .* \(file {re.escape(str(path))}\)$"):
        read_records(path)


def test_file_without_checksum_is_read_without_warning(tmp_path):
    r = small_records()
    path = tmp_path / "r.parquet"
    write_records(r, path)
    table = pq.read_table(path)
    rewrite(path, table, {MANIFEST_KEY: table.schema.metadata[MANIFEST_KEY]})
    assert CHECKSUM_KEY not in pq.read_schema(path).metadata
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_records(path)
    assert same_records(back, r)


@pytest.mark.parametrize("content", [b"", b"PAR1 truncated", b"not parquet at all" * 10])
def test_unreadable_file_is_a_records_error_with_the_pyarrow_cause(tmp_path, content):
    path = tmp_path / "junk.parquet"
    path.write_bytes(content)
    with pytest.raises(RecordsError, match=rf"^file: not a readable Parquet file \(.*\) \(file {re.escape(str(path))}\)$") as err:
        read_records(path)
    assert isinstance(err.value.__cause__, (pa.ArrowException, OSError))


def _column_chunk_ranges(path) -> dict[str, range]:
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    ranges = {}
    for j in range(row_group.num_columns):
        chunk = row_group.column(j)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        ranges[chunk.path_in_schema] = range(start, start + chunk.total_compressed_size)
    return ranges


def test_single_byte_flips_are_refused_or_harmless(tmp_path):
    """Each of 400 single-byte flips, spread over the whole file (one in each of 400 equal
    slices), either raises a RecordsError naming the file or leaves the record set as it was."""
    r = small_records()
    clean, path = tmp_path / "clean.parquet", tmp_path / "flipped.parquet"
    write_records(r, clean)
    data = clean.read_bytes()
    rng = np.random.default_rng(2024)
    edges = np.linspace(0, len(data), 401).astype(int)
    positions = rng.integers(edges[:-1], edges[1:])
    footer_start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    assert (positions >= footer_start).sum() >= 50
    for column, chunk in _column_chunk_ranges(clean).items():
        assert any(p in chunk for p in positions), column
    outcomes = {"refused": 0, "harmless": 0}
    for position, mask in zip(positions, rng.integers(1, 256, len(positions))):
        flipped = bytearray(data)
        flipped[position] ^= mask
        path.write_bytes(flipped)
        try:
            back = read_records(path)
        except RecordsError as err:
            assert str(path) in str(err), (position, str(err))
            outcomes["refused"] += 1
        else:
            assert same_records(back, r), f"byte {position} ^ {mask:#x} changed the record set without an error"
            outcomes["harmless"] += 1
    print(f"single-byte flips of a {len(data)}-byte file: {outcomes}")


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    # two jobs merging at once, or a kill mid-write, must never leave half a record set
    import pyarrow.parquet as pq

    from calcas.records import read_records, write_records
    first = make_records(["a", "b", "c"], [0, 1, 1], label=[0, 1, 0], confidence=[0.9, 0.8, 0.7])
    path = tmp_path / "r.parquet"
    write_records(first, path)
    real = pq.write_table

    def dies_half_way(table, where, **kw):
        real(table, where, **kw)
        with open(where, "r+b") as f:
            f.truncate(40)
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(pq, "write_table", dies_half_way)
    second = make_records(["x"], [1], label=[1], confidence=[0.5])
    with pytest.raises(KeyboardInterrupt):
        write_records(second, path)
    assert read_records(path).id.tolist() == ["a", "b", "c"]
    assert [p.name for p in tmp_path.iterdir()] == ["r.parquet"]  # no temporary file left
