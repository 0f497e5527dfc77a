"""Tests of calcas.records (SPEC §0): the record-set contract, Parquet round trip, align and
the seeded cal/test split. Bad files are written with pyarrow directly."""
from __future__ import annotations

import dataclasses
import json
import re
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calcas import (Records, RecordsError, RecordsWarning, align, cal_test_split, make_records, read_records,
                    record_set_names, write_records)

IDS = ["a", "b", "c", "d"]
MANIFEST_KEYS = ("model", "dataset", "n", "source", "created", "producer")


def full_records(source="logits", **extra):
    rng = np.random.default_rng(0)
    common = dict(label=np.array([0, 2, 1, 2]), valid_labels=[[0], [2, 1], [], [0]],
                  is_noisy=np.array([False, False, True, False]), split=np.array(["cal", "test", "cal", "test"]),
                  manifest={"model": "m1", "dataset": "toy", "extraction": {"layer": -1, "prompt": "x"}})
    common.update(extra)
    if source == "logits":
        z = rng.normal(size=(4, 3)).astype(np.float32)
        return make_records(IDS, z.argmax(axis=1), logits=z, **common)
    if source == "confidence":
        return make_records(IDS, np.array([0, 2, 2, 1]), confidence=np.array([0.9, 0.0, 1.0, 0.55]), **common)
    return make_records(IDS, np.array([0, 2, 2, 1]), score=np.array([-3.5, 0.0, 12.25, 1e-3]), **common)


def write_raw(path, columns: dict, manifest: dict | None):
    """Write a Parquet file with pyarrow directly (no calcas involved)."""
    table = pa.table(columns)
    if manifest is not None:
        table = table.replace_schema_metadata({b"calcas": json.dumps(manifest)})
    pq.write_table(table, path)


def raw_manifest(n, source="confidence", **kw):
    return {"model": "m", "dataset": "d", "split": None, "n": n, "source": source,
            "created": "2024-01-01T00:00:00+00:00", "producer": "hand", **kw}


def raw_columns(**overrides):
    cols = {"id": pa.array(["x", "y", "z"], pa.string()),
            "pred": pa.array([0, 1, 1], pa.int64()),
            "label": pa.array([0, 1, 0], pa.int64()),
            "confidence": pa.array([0.9, 0.8, 0.6], pa.float64())}
    cols.update(overrides)
    return {k: v for k, v in cols.items() if v is not None}


# ----------------------------------------------------------------------------------------
# Round trip
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["logits", "confidence", "score"])
def test_round_trip_each_source(tmp_path, source):
    r = full_records(source)
    path = tmp_path / f"{source}.parquet"
    write_records(r, path)
    back = read_records(path)
    assert back.source == source
    np.testing.assert_array_equal(back.id, IDS)
    np.testing.assert_array_equal(back.pred, r.pred)
    np.testing.assert_array_equal(back.label, [0, 2, 1, 2])
    np.testing.assert_array_equal(back.verified, (r.pred == np.array([0, 2, 1, 2])).astype(float))
    for other in {"logits", "confidence", "score"} - {source}:
        assert getattr(back, other) is None
    if source == "logits":
        assert back.logits.dtype == np.float32
        assert back.logits.shape == (4, 3)
        np.testing.assert_array_equal(back.logits, r.logits)   # bit-exact
    else:
        np.testing.assert_array_equal(getattr(back, source), getattr(r, source))
    assert [list(v) for v in back.valid_labels] == [[0], [2, 1], [], [0]]
    assert back.is_noisy.dtype == bool
    np.testing.assert_array_equal(back.is_noisy, [False, False, True, False])
    assert list(back.split) == ["cal", "test", "cal", "test"]
    for key in MANIFEST_KEYS:
        assert key in back.manifest
        assert back.manifest[key] == r.manifest[key]
    assert back.manifest["model"] == "m1" and back.manifest["dataset"] == "toy"
    assert back.manifest["n"] == 4 and back.manifest["source"] == source
    assert back.manifest["extraction"] == {"layer": -1, "prompt": "x"}
    # the file really is Parquet with the manifest in the schema metadata
    meta = json.loads(pq.read_schema(path).metadata[b"calcas"])
    assert meta["n"] == 4 and meta["source"] == source


def test_round_trip_minimal_set_without_optional_columns(tmp_path):
    r = make_records(["p", "q"], [1, 0], label=[1, 1], confidence=[0.7, 0.2], manifest={"model": "mm"})
    write_records(r, tmp_path / "m.parquet")
    back = read_records(tmp_path / "m.parquet")
    assert back.valid_labels is None and back.is_noisy is None and back.split is None
    np.testing.assert_array_equal(back.verified, [1.0, 0.0])
    assert back.manifest["model"] == "mm"


def test_manifest_split_value_survives_round_trip(tmp_path):
    # A file whose manifest names the split (SPEC §0) and has no split column.
    path = tmp_path / "s.parquet"
    write_raw(path, raw_columns(), raw_manifest(3, split="test"))
    back = read_records(path)
    assert back.manifest["split"] == "test"
    assert back.split is None


def test_verified_derived_from_pred_equals_label(tmp_path):
    r = make_records(["a", "b", "c"], [0, 1, 2], label=[0, 2, 2], confidence=[0.5, 0.5, 0.5])
    np.testing.assert_array_equal(r.verified, [1.0, 0.0, 1.0])
    # a file without a verified column
    path = tmp_path / "v.parquet"
    write_raw(path, raw_columns(), raw_manifest(3))
    back = read_records(path)
    np.testing.assert_array_equal(back.verified, [1.0, 1.0, 0.0])   # pred [0,1,1] vs label [0,1,0]
    # a given verified column wins over pred == label
    r2 = make_records(["a", "b"], [0, 1], label=[0, 0], verified=[0.0, 1.0], confidence=[0.5, 0.5])
    np.testing.assert_array_equal(r2.verified, [0.0, 1.0])
    # unknown labels with a verifier: fine
    r3 = make_records(["a", "b"], [0, 1], label=[-1, -1], verified=[1, 0], score=[0.1, 0.2])
    np.testing.assert_array_equal(r3.label, [-1, -1])


# ----------------------------------------------------------------------------------------
# Records.take, cal_mask
# ----------------------------------------------------------------------------------------

def test_take_and_cal_mask():
    r = full_records("logits")
    sub = r.take([2, 0])
    np.testing.assert_array_equal(sub.id, ["c", "a"])
    np.testing.assert_array_equal(sub.logits, r.logits[[2, 0]])
    np.testing.assert_array_equal(sub.label, [1, 0])
    assert [list(v) for v in sub.valid_labels] == [[], [0]]
    np.testing.assert_array_equal(sub.is_noisy, [True, False])
    assert list(sub.split) == ["cal", "cal"]
    assert sub.manifest["n"] == 2 and sub.n == 2
    masked = r.take(np.array([False, True, False, True]))
    np.testing.assert_array_equal(masked.id, ["b", "d"])
    # the split column decides
    np.testing.assert_array_equal(r.cal_mask(), [True, False, True, False])
    np.testing.assert_array_equal(r.cal_mask(seed=123, cal_fraction=0.25), [True, False, True, False])
    # without one, the seeded split of the ids
    no_split = make_records(IDS, [0, 1, 0, 1], label=[0, 1, 1, 1], confidence=[0.5] * 4)
    np.testing.assert_array_equal(no_split.cal_mask(seed=4), cal_test_split(np.array(IDS), seed=4))


# ----------------------------------------------------------------------------------------
# align
# ----------------------------------------------------------------------------------------

def test_align_inner_join_on_id_with_shuffled_order():
    ids = np.array([f"s{i}" for i in range(10)])
    rng = np.random.default_rng(2)
    values = rng.random(10)
    perm = rng.permutation(10)
    a = make_records(list(ids), np.arange(10) % 3, label=np.arange(10) % 3, confidence=values, manifest={"model": "A"})
    # b has the same samples shuffled, minus s3 and s7; its confidence is keyed by id
    keep = [i for i in perm if ids[i] not in ("s3", "s7")]
    b = make_records(list(ids[keep]), np.zeros(len(keep), int), label=np.arange(10)[keep] % 3,
                     confidence=1 - values[keep], manifest={"model": "B"})
    with pytest.warns(UserWarning, match="kept 8 of 10"):
        a2, b2 = align(a, b)
    np.testing.assert_array_equal(a2.id, b2.id)
    assert set(a2.id) == set(ids) - {"s3", "s7"}
    by_id = dict(zip(ids, values))
    for i, sid in enumerate(a2.id):
        assert a2.confidence[i] == by_id[sid]
        assert b2.confidence[i] == pytest.approx(1 - by_id[sid])
        assert b2.label[i] == int(sid[1:]) % 3


def test_align_same_ids_does_not_warn():
    a = make_records(["x", "y", "z"], [0, 1, 2], label=[0, 1, 2], confidence=[0.1, 0.2, 0.3])
    b = make_records(["z", "x", "y"], [2, 0, 1], label=[2, 0, 1], confidence=[0.3, 0.1, 0.2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a2, b2 = align(a, b)
    np.testing.assert_array_equal(a2.confidence, b2.confidence)
    np.testing.assert_array_equal(a2.pred, b2.pred)


def test_align_no_common_ids_raises():
    a = make_records(["x", "y"], [0, 1], label=[0, 1], confidence=[0.1, 0.2], manifest={"model": "A"})
    b = make_records(["u", "v"], [0, 1], label=[0, 1], confidence=[0.1, 0.2], manifest={"model": "B"})
    with pytest.raises(ValueError, match=r"^id: .*share no ids"):
        align(a, b)
    with pytest.raises(RecordsError, match="id"):
        align(a, b)


# ----------------------------------------------------------------------------------------
# cal_test_split
# ----------------------------------------------------------------------------------------

def test_cal_test_split_properties():
    ids = np.array([f"img{i:04d}" for i in range(101)])
    m1 = cal_test_split(ids, seed=3)
    m2 = cal_test_split(ids, seed=3)
    np.testing.assert_array_equal(m1, m2)                          # deterministic
    assert m1.sum() == round(101 * 0.5)                            # exact size
    assert cal_test_split(ids, seed=3, cal_fraction=0.3).sum() == round(101 * 0.3)
    perm = np.random.default_rng(0).permutation(101)
    shuffled = cal_test_split(ids[perm], seed=3)
    assert set(ids[perm][shuffled]) == set(ids[m1])                # independent of row order
    other = cal_test_split(ids, seed=4)
    assert set(ids[other]) != set(ids[m1])                         # seeds differ
    with pytest.raises(ValueError, match="cal_fraction"):
        cal_test_split(ids, cal_fraction=1.0)
    with pytest.raises(ValueError, match="cal_fraction"):
        cal_test_split(ids[:2], cal_fraction=0.1)


# ----------------------------------------------------------------------------------------
# Bad input: each error names the column
# ----------------------------------------------------------------------------------------

def test_repeated_ids():
    with pytest.raises(ValueError, match=r"^id: .*repeat"):
        make_records(["a", "b", "a"], [0, 1, 0], label=[0, 1, 0], confidence=[0.5] * 3)


def test_non_string_ids(tmp_path):
    with pytest.raises(ValueError, match=r"^id: .*string"):
        make_records([1, 2, 3], [0, 1, 0], label=[0, 1, 0], confidence=[0.5] * 3)
    path = tmp_path / "intid.parquet"
    write_raw(path, raw_columns(id=pa.array([1, 2, 3], pa.int64())), raw_manifest(3))
    with pytest.raises(ValueError, match=r"^id: .*string"):
        read_records(path)


@pytest.mark.parametrize("column", ["id", "pred"])
def test_missing_required_column(tmp_path, column):
    path = tmp_path / f"no_{column}.parquet"
    write_raw(path, raw_columns(**{column: None}), raw_manifest(3))
    with pytest.raises(ValueError, match=rf"^{column}: required column is missing"):
        read_records(path)


def test_two_confidence_sources_or_none(tmp_path):
    with pytest.raises(ValueError, match=r"^logits/confidence/score: .*exactly one.*confidence.*score"):
        make_records(["a", "b"], [0, 1], label=[0, 1], confidence=[0.5, 0.5], score=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"^logits/confidence/score: .*none"):
        make_records(["a", "b"], [0, 1], label=[0, 1])
    path = tmp_path / "two.parquet"
    write_raw(path, raw_columns(score=pa.array([1.0, 2.0, 3.0])), raw_manifest(3))
    with pytest.raises(ValueError, match=r"^logits/confidence/score"):
        read_records(path)


def test_logits_with_nan(tmp_path):
    z = np.zeros((3, 2))
    z[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^logits: .*NaN"):
        make_records(["a", "b", "c"], [0, 1, 0], label=[0, 1, 0], logits=z)
    path = tmp_path / "nan.parquet"
    flat = pa.array([0.0, 1.0, float("nan"), 0.0, 1.0, 2.0], pa.float32())
    write_raw(path, raw_columns(confidence=None, logits=pa.FixedSizeListArray.from_arrays(flat, 2)),
              raw_manifest(3, source="logits"))
    with pytest.raises(ValueError, match=r"^logits: .*NaN"):
        read_records(path)


def test_ragged_logits(tmp_path):
    path = tmp_path / "ragged.parquet"
    ragged = pa.array([[0.1, 0.2], [0.3, 0.4, 0.5], [0.6, 0.7]], pa.list_(pa.float32()))
    write_raw(path, raw_columns(confidence=None, logits=ragged), raw_manifest(3, source="logits"))
    with pytest.raises(ValueError, match=r"^logits: .*same length"):
        read_records(path)


def test_variable_length_list_logits_of_equal_width_are_accepted(tmp_path):
    path = tmp_path / "listlogits.parquet"
    col = pa.array([[0.5, 0.1], [0.0, 2.0], [1.0, 3.0]], pa.list_(pa.float32()))
    write_raw(path, raw_columns(confidence=None, logits=col), raw_manifest(3, source="logits"))
    back = read_records(path)
    assert back.logits.dtype == np.float32
    np.testing.assert_array_equal(back.logits, np.array([[0.5, 0.1], [0.0, 2.0], [1.0, 3.0]], np.float32))


@pytest.mark.parametrize("bad", [[0.5, 1.2, 0.3], [-0.1, 0.5, 0.5]])
def test_confidence_outside_unit_interval(tmp_path, bad):
    with pytest.raises(ValueError, match=r"^confidence: .*\[0.0, 1.0\]"):
        make_records(["a", "b", "c"], [0, 1, 0], label=[0, 1, 0], confidence=bad)
    path = tmp_path / "conf.parquet"
    write_raw(path, raw_columns(confidence=pa.array(bad, pa.float64())), raw_manifest(3))
    with pytest.raises(ValueError, match=r"^confidence: "):
        read_records(path)


def test_label_out_of_range():
    z = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"^label: .*< 3"):
        make_records(["a", "b", "c"], [0, 1, 0], label=[0, 3, 1], logits=z)
    with pytest.raises(ValueError, match=r"^label: .*>= -1"):
        make_records(["a", "b", "c"], [0, 1, 0], label=[0, -2, 1], confidence=[0.5] * 3)
    with pytest.raises(ValueError, match=r"^pred: .*< 3"):
        make_records(["a", "b", "c"], [0, 5, 0], label=[0, 1, 1], logits=z)
    with pytest.raises(ValueError, match=r"^label: required"):
        make_records(["a", "b", "c"], [0, 1, 0], logits=z)


def test_verified_missing_where_label_unknown(tmp_path):
    with pytest.raises(ValueError, match=r"^verified: "):
        make_records(["a", "b"], [0, 1], label=[0, -1], confidence=[0.5, 0.5])
    path = tmp_path / "unk.parquet"
    write_raw(path, raw_columns(label=pa.array([0, -1, 1], pa.int64())), raw_manifest(3))
    with pytest.raises(ValueError, match=r"^verified: "):
        read_records(path)


def test_split_values(tmp_path):
    with pytest.raises(ValueError, match=r"^split: .*'val'"):
        make_records(["a", "b"], [0, 1], label=[0, 1], confidence=[0.5, 0.5], split=["cal", "val"])
    path = tmp_path / "split.parquet"
    write_raw(path, raw_columns(split=pa.array(["cal", "test", "train"])), raw_manifest(3))
    with pytest.raises(ValueError, match=r"^split: .*'train'"):
        read_records(path)


def test_manifest_missing_or_wrong(tmp_path):
    path = tmp_path / "nomani.parquet"
    write_raw(path, raw_columns(), None)
    with pytest.warns(RecordsWarning, match=r"nomani\.parquet: no calcas manifest"):  # another tool's file
        assert read_records(path).manifest["model"] == "nomani"
    path = tmp_path / "badn.parquet"
    write_raw(path, raw_columns(), raw_manifest(5))
    with pytest.raises(ValueError, match=r"^manifest: .*n=5.*3 rows"):
        read_records(path)
    path = tmp_path / "badsource.parquet"
    write_raw(path, raw_columns(), raw_manifest(3, source="logits"))
    with pytest.raises(ValueError, match=r"^manifest: .*source"):
        read_records(path)


@pytest.mark.parametrize("raw, shown", [(b"null", "null"), (b"[1, 2]", r"\[1, 2\]"), (b'"m"', '"m"'), (b"3", "3")])
def test_manifest_must_be_a_json_object(tmp_path, raw, shown):
    path = tmp_path / "notobject.parquet"
    pq.write_table(pa.table(raw_columns()).replace_schema_metadata({b"calcas": raw}), path)
    with pytest.raises(RecordsError, match=rf"^manifest: expected a JSON object, got {shown} \(file {path}\)$"):
        read_records(path)


def test_manifest_schema_version_must_be_known(tmp_path):
    path = tmp_path / "v.parquet"
    write_raw(path, raw_columns(), raw_manifest(3, schema_version=1))
    assert read_records(path).manifest["schema_version"] == 1
    write_raw(path, raw_columns(), raw_manifest(3, schema_version=99))
    with pytest.raises(RecordsError, match=r"^manifest: schema_version 99 is from a newer calcas \(this one reads "
                                           r"version 1\); upgrade calcas"):
        read_records(path)
    for bad in (0, "1", 1.0, True):
        write_raw(path, raw_columns(), raw_manifest(3, schema_version=bad))
        with pytest.raises(RecordsError, match=rf"^manifest: schema_version {re.escape(repr(bad))} is not a known version"):
            read_records(path)


@pytest.mark.parametrize("key", ["created", "producer"])
def test_manifest_created_and_producer_are_required_in_a_file(tmp_path, key):
    manifest = raw_manifest(3)
    del manifest[key]
    path = tmp_path / f"no_{key}.parquet"
    write_raw(path, raw_columns(), manifest)
    with pytest.raises(RecordsError, match=rf"^manifest: has no '{key}' \(make_records sets it"):
        read_records(path)


def test_read_errors_name_the_file(tmp_path):
    path = tmp_path / "conf.parquet"
    write_raw(path, raw_columns(confidence=pa.array([0.5, 1.5, 0.5])), raw_manifest(3))
    with pytest.raises(RecordsError, match=rf"^confidence: .* \(file {re.escape(str(path))}\)$"):
        read_records(path)


def test_split_and_valid_labels_column_types(tmp_path):
    path = tmp_path / "types.parquet"
    write_raw(path, raw_columns(split=pa.array([0, 1, 0])), raw_manifest(3))
    with pytest.raises(RecordsError, match=r"^split: expected strings, got int64"):
        read_records(path)
    write_raw(path, raw_columns(valid_labels=pa.array([["a"], [], ["b"]])), raw_manifest(3))
    with pytest.raises(RecordsError, match=r"^valid_labels: expected list<int>, got list<element: string>"):
        read_records(path)
    write_raw(path, raw_columns(valid_labels=pa.array([[0, None], [], [1]], pa.list_(pa.int64()))), raw_manifest(3))
    with pytest.raises(RecordsError, match=r"^valid_labels: expected a list of integer labels per row"):
        read_records(path)
    with pytest.raises(RecordsError, match=r"^valid_labels: expected a list of integer labels per row"):
        make_records(["a"], [0], label=[0], confidence=[0.5], valid_labels=[["zero"]])


def test_unknown_extra_column(tmp_path):
    path = tmp_path / "extra.parquet"
    write_raw(path, raw_columns(notes=pa.array(["u", "v", "w"])), raw_manifest(3))
    with pytest.raises(ValueError, match=r"^notes: not a record-set column"):
        read_records(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "nope.parquet")


def test_records_is_a_value_error_subclass():
    assert issubclass(RecordsError, ValueError)
    r = make_records(["a"], [0], label=[0], score=[2.0])
    assert isinstance(r, Records)
    with pytest.raises(ValueError, match="^score: "):
        r.raw_confidence()


def test_unknown_pred_needs_verified():
    r = make_records(["a", "b"], [-1, -1], verified=[1.0, 0.0], confidence=[0.9, 0.4])
    np.testing.assert_array_equal(r.verified, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"^verified: required where pred is unknown"):
        make_records(["a", "b"], [-1, 1], label=[0, 1], confidence=[0.9, 0.4])
    with pytest.raises(ValueError, match=r"^pred: must be >= -1"):
        make_records(["a", "b"], [-2, 1], verified=[1.0, 0.0], confidence=[0.9, 0.4])



def test_record_set_names_are_distinct_where_models_repeat():
    a = make_records(["x", "y"], [0, 1], label=[0, 1], logits=[[2.0, 0.0], [0.0, 2.0]], manifest={"model": "m"})
    b = make_records(["x", "y"], [0, 1], label=[0, 1], logits=[[2.0, 0.0], [0.0, 2.0]], manifest={"model": "m"})
    c = make_records(["x", "y"], [0, 1], label=[0, 1], logits=[[2.0, 0.0], [0.0, 2.0]])
    names = record_set_names([a, b, c], ["r/mmlu_first.parquet", "r/mmlu_likelihood.parquet", "r/other.parquet"])
    assert names == ["m (mmlu_first)", "m (mmlu_likelihood)", "other"]
    assert record_set_names([a, c], ["p/a.parquet", "p/c.parquet"]) == ["m", "c"]
    with pytest.raises(ValueError, match="paths: 1 paths for 2 record sets"):
        record_set_names([a, b], ["one.parquet"])
    assert record_set_names([a, b], ["ft/smollm2.parquet", "ol/smollm2.parquet"]) == ["m (ft/smollm2)", "m (ol/smollm2)"]


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path):
    import hashlib

    from calcas.records import file_sha256
    path = tmp_path / "w.bin"
    data = bytes(range(256)) * 5000  # over one chunk
    path.write_bytes(data)
    assert file_sha256(path) == file_sha256(path, chunk=7) == hashlib.sha256(data).hexdigest()


def test_records_and_the_layers_on_it_import_no_calibration_code():
    """The record set sits at the bottom: calcas.records (and the shard writer and the public
    data converters on it) take the version from calcas._version and import nothing of
    calibration, cascading or cleaning. The package's own __init__ is kept out (a bare package
    module stands in for it), since it imports everything by design."""
    import subprocess
    import sys
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "calcas"
    code = f"""
import sys, types
package = types.ModuleType("calcas")
package.__path__ = [{str(package)!r}]
sys.modules["calcas"] = package
import calcas.records, calcas.extract.shards, calcas.datasets.public
from calcas import _version
r = calcas.records.make_records(["a"], [0], label=[0], logits=[[1.0, 0.0]])
assert r.manifest["producer"] == "calcas " + _version.__version__, r.manifest["producer"]
above = sorted(m for m in sys.modules if m.split(".")[:2] in (["calcas", "calibration"], ["calcas", "cascade"],
                                                              ["calcas", "cleaning"], ["calcas", "report"]))
assert not above, above
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import calcas
    from calcas import _version
    assert calcas.__version__ == _version.__version__


def test_same_records_ignores_only_the_creation_time(tmp_path):
    from calcas.records import same_records
    rng = np.random.default_rng(0)
    r = make_records([f"s{i}" for i in range(6)], rng.integers(0, 3, 6), label=rng.integers(0, 3, 6),
                     logits=rng.normal(size=(6, 3)).astype(np.float32), manifest={"model": "m", "created": "t0"})
    write_records(r, tmp_path / "r.parquet")
    back = read_records(tmp_path / "r.parquet")
    assert same_records(back, r)
    assert same_records(r, dataclasses.replace(r, manifest={**r.manifest, "created": "t1"}))
    assert not same_records(r, dataclasses.replace(r, manifest={**r.manifest, "model": "other"}))
    changed = r.logits.copy()
    changed[2, 1] += 1e-3
    assert not same_records(r, dataclasses.replace(r, logits=changed))
    # the same values in another dtype are another record set
    assert not same_records(r, dataclasses.replace(r, logits=r.logits.astype(np.float16)))
    assert not same_records(r, r.take(np.arange(5)))


def test_a_parquet_of_record_columns_without_a_manifest_is_read_with_defaults(tmp_path):
    """What another tool writes (the SPEC §0 columns, no calcas metadata) is read, with a manifest
    made of defaults and one warning naming the file; a file with a calcas checksum but no
    manifest is damaged and refused."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    frame = pd.DataFrame({"id": ["a", "b", "c", "d"], "pred": [0, 1, 1, 0], "label": [0, 1, 0, 0],
                          "confidence": [0.9, 0.8, 0.6, 0.7]})
    path = tmp_path / "other_tool.parquet"
    frame.to_parquet(path, index=False)
    with pytest.warns(RecordsWarning, match=r"other_tool\.parquet: no calcas manifest; read with a default "
                                                   r"one \(model 'other_tool', dataset unknown\)") as caught:
        r = read_records(path)
    assert len(caught) == 1
    assert r.n == 4 and r.source == "confidence" and r.manifest["model"] == "other_tool"
    np.testing.assert_array_equal(r.verified, [1, 1, 0, 1])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.replace_schema_metadata({"calcas.sha256": "0" * 64}), tmp_path / "damaged.parquet")
    with pytest.raises(RecordsError, match=r"manifest: missing, though the file carries a calcas checksum"):
        read_records(tmp_path / "damaged.parquet")
