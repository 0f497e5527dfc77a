"""Tests of calcas.extract: resumable sharded extraction output (ShardWriter, extract,
merge_shards, check_manifest), the checks of rows, manifests and planned ids, and the data-parallel
path (rank_slice, the demo CLI under a killed-and-resumed run and under torchrun with two gloo
ranks). Faults made by other processes (kills mid-write, a second writer, a dead lock holder) and
damaged shards are in test_shard_faults.py."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from calcas import RecordsError, make_records, read_records
from calcas.extract.parallel import rank_slice, run_demo
from calcas.extract.shards import (ShardWriter, check_manifest, done_ids, extract, list_shards, merge_shards,
                                   read_manifest)

VOLATILE = {"created", "extracted", "n_shards", "ranks"}
MANIFEST = {"model": "toy", "dataset": "synthetic", "split": "test", "extraction": {"layer": -1}}


def assert_same_records(a, b):
    """Equal columns, bit for bit (logits dtype included), and equal manifests up to times and shard counts."""
    assert a.id.tolist() == b.id.tolist()
    for name in ("pred", "label", "verified", "confidence", "score"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert (a.logits is None) == (b.logits is None)
    if a.logits is not None:
        assert a.logits.dtype == b.logits.dtype and a.logits.shape == b.logits.shape
        assert a.logits.tobytes() == b.logits.tobytes()
    strip = lambda m: {k: v for k, v in m.items() if k not in VOLATILE}  # noqa: E731
    assert strip(a.manifest) == strip(b.manifest)


def toy_columns(n=53, classes=4, source="logits", seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"s{int(i):05d}" for i in rng.permutation(10 * n)[:n]]  # unsorted, with gaps
    label = rng.integers(0, classes, n)
    label[::9] = -1
    cols = {"id": ids, "label": label, "verified": rng.random(n)}
    if source == "logits":
        z = (3 * rng.normal(size=(n, classes))).astype(np.float16)
        cols.update(pred=z.astype(np.float32).argmax(axis=1), logits=z)
    elif source == "confidence":
        cols.update(pred=rng.integers(0, classes, n), confidence=rng.random(n))
    else:
        cols.update(pred=rng.integers(0, classes, n), score=rng.normal(size=n) * 5)
    return cols


def batches_of(cols, sizes=(5, 1, 11, 3)):
    """Split columns into batches of uneven sizes (cycling through ``sizes``)."""
    n, start, k = len(cols["id"]), 0, 0
    while start < n:
        stop = min(n, start + sizes[k % len(sizes)])
        yield {name: v[start:stop] for name, v in cols.items()}
        start, k = stop, k + 1


def direct_records(cols, manifest=MANIFEST):
    order = np.argsort(np.asarray(cols["id"], dtype=object))
    sorted_cols = {name: np.asarray(v, dtype=object if name == "id" else None)[order] for name, v in cols.items()}
    ids = sorted_cols.pop("id").tolist()
    return make_records(ids, sorted_cols.pop("pred"), manifest=manifest, **sorted_cols)


# --- 1. round trip ---------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["logits", "confidence", "score"])
def test_round_trip_any_shard_size_equals_direct_records(tmp_path, source):
    cols = toy_columns(source=source)
    expected = direct_records(cols)
    merged = []
    for shard_size in (1, 7, 1000):
        out = tmp_path / f"out{shard_size}"
        n = extract(batches_of(cols), out, manifest=MANIFEST, shard_size=shard_size, progress=False)
        assert n == 53
        shards = list_shards(out)
        assert len(shards) == -(-53 // shard_size)
        doc = read_manifest(out)
        assert doc["manifest"] == MANIFEST and doc["n_rows"] == 53
        assert [s["file"] for s in doc["shards"]] == [s[0] for s in shards]
        assert sum(s["rows"] for s in doc["shards"]) == 53
        records = merge_shards(out, path=tmp_path / f"merged{shard_size}.parquet")
        assert records.manifest["n_shards"] == len(shards) and records.manifest["ranks"] == [0]
        assert_same_records(records, expected)
        assert_same_records(read_records(tmp_path / f"merged{shard_size}.parquet"), expected)
        merged.append(records)
    if source == "logits":
        assert merged[0].logits.dtype == np.float16
        assert np.array_equal(merged[0].logits, expected.logits)


def test_work_split_between_ranks_and_runs_merges_to_the_same_records(tmp_path):
    cols = toy_columns()
    ids = cols["id"]
    position = {i: k for k, i in enumerate(ids)}
    for rank in range(3):  # three ranks, run one after another into one directory
        mine = rank_slice(ids, rank, 3)
        rows = [position[i] for i in mine]
        part = {name: [v[r] for r in rows] if name == "id" else np.asarray(v)[rows] for name, v in cols.items()}
        extract(batches_of(part), tmp_path, manifest=MANIFEST, shard_size=4, rank=rank, world_size=3,
                progress=False)
    records = merge_shards(tmp_path)
    assert records.manifest["ranks"] == [0, 1, 2]
    assert_same_records(records, direct_records(cols))


def test_rows_already_done_are_dropped_not_duplicated(tmp_path):
    cols = toy_columns()
    first = {name: v[:20] for name, v in cols.items()}
    assert extract(batches_of(first), tmp_path, manifest=MANIFEST, shard_size=6, progress=False) == 20
    assert done_ids(tmp_path) == set(cols["id"][:20])
    with ShardWriter(tmp_path, manifest=MANIFEST, shard_size=6) as writer:
        assert writer.done_ids() == set(cols["id"][:20])
    # a careless caller that replays everything: only the 33 new rows are written
    assert extract(batches_of(cols), tmp_path, manifest=MANIFEST, shard_size=6, progress=False) == 33
    assert_same_records(merge_shards(tmp_path), direct_records(cols))


def test_resume_with_another_manifest_is_refused(tmp_path):
    cols = toy_columns()
    extract(batches_of(cols), tmp_path, manifest=MANIFEST, progress=False)
    with pytest.raises(ValueError, match="manifest.*model"):
        ShardWriter(tmp_path, manifest={**MANIFEST, "model": "other"})


def test_bad_batches_name_the_column(tmp_path):
    cols = toy_columns(n=6)
    with ShardWriter(tmp_path, manifest=MANIFEST) as writer:
        with pytest.raises(ValueError, match="logits/confidence/score"):
            writer.write({**cols, "score": np.zeros(6)})
        with pytest.raises(ValueError, match="pred"):
            writer.write({**cols, "pred": cols["pred"][:3]})
        with pytest.raises(ValueError, match="colour"):
            writer.write({**cols, "colour": np.zeros(6)})
        writer.write(cols)
        with pytest.raises(ValueError, match="logits"):
            writer.write({**cols, "id": [f"x{i}" for i in range(6)], "logits": cols["logits"].astype(np.float32)})
        with pytest.raises(ValueError, match="id: 'x0' was given twice"):
            writer.write({**cols, "id": ["x0", "x1", "x0", "x3", "x4", "x5"]})


# --- 2. kill and resume ------------------------------------------------------------------------

def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _demo_cmd(out, n, *extra):
    return [sys.executable, "-m", "calcas.extract.parallel", "demo", "--out", str(out), "--n", str(n),
            "--batch-size", "4", "--shard-size", "8", "--no-progress", *extra]


def test_killed_run_resumes_without_lost_or_duplicated_ids(tmp_path):
    n = 96
    out = tmp_path / "killed"
    proc = subprocess.Popen(_demo_cmd(out, n, "--delay", "0.06"), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while len(list_shards(out)) < 2:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no shard appeared within 30 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "records.parquet").exists()
    partial = done_ids(out)
    assert 8 <= len(partial) < n
    # a half-written shard left by the kill: ignored by readers and removed on restart
    junk = out / ".shard-r000-000099.parquet.tmp-12345"
    junk.write_bytes(b"PAR1 truncated")
    assert done_ids(out) == partial

    resumed = subprocess.run(_demo_cmd(out, n), env=_env(), capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert not junk.exists()
    doc = read_manifest(out)
    assert doc["n_rows"] == n and sum(s["rows"] for s in doc["shards"]) == n  # nothing written twice

    reference_dir = tmp_path / "uninterrupted"
    run_demo(reference_dir, n, batch_size=4, shard_size=8, progress=False)
    got, expected = read_records(out / "records.parquet"), read_records(reference_dir / "records.parquet")
    assert got.n == n and len(set(got.id.tolist())) == n
    assert got.logits.dtype == np.float16
    assert_same_records(got, expected)


# --- 3. data parallel ---------------------------------------------------------------------------

def test_torchrun_two_gloo_ranks_equal_single_process(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
    assert torchrun, "torchrun not found"
    n = 70
    out = tmp_path / "ddp"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "calcas.extract.parallel", "--",
           "demo", "--out", str(out), "--n", str(n), "--shard-size", "6", "--batch-size", "5", "--no-progress"]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {r for _, r, _ in list_shards(out)} == {0, 1}
    reference_dir = tmp_path / "single"
    run_demo(reference_dir, n, shard_size=64, batch_size=16, progress=False)
    got, expected = read_records(out / "records.parquet"), read_records(reference_dir / "records.parquet")
    assert got.manifest["ranks"] == [0, 1] and expected.manifest["ranks"] == [0]
    assert_same_records(got, expected)


def test_rank_slice_is_a_deterministic_partition():
    ids = [f"id{i}" for i in range(23)]
    for world in (1, 2, 3, 7, 30):
        parts = [rank_slice(ids, r, world) for r in range(world)]
        assert sorted(sum(parts, [])) == sorted(ids)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        assert parts == [rank_slice(ids, r, world) for r in range(world)]
    with pytest.raises(ValueError, match="rank"):
        rank_slice(ids, 2, 2)
    with pytest.raises(ValueError, match="'a'"):
        rank_slice(["a", "b", "a"], 0, 1)


# --- 4. errors ------------------------------------------------------------------------------------

def test_duplicate_ids_across_shards_are_refused_by_name(tmp_path):
    cols = toy_columns(n=10)
    # two ranks opened before either wrote, both given the same rows: each sees nothing done
    w0 = ShardWriter(tmp_path, manifest=MANIFEST, shard_size=4, rank=0, world_size=2)
    w1 = ShardWriter(tmp_path, manifest=MANIFEST, shard_size=4, rank=1, world_size=2)
    w0.write(cols)
    w1.write({name: v[3:5] for name, v in cols.items()})
    w0.close()
    w1.close()
    dup = sorted(cols["id"][3:5])[0]
    with pytest.raises(ValueError, match=rf"id: 2 id\(s\).*{dup!r}.*shard-r00[01]"):
        merge_shards(tmp_path)


def test_bad_shard_size_is_refused_by_name(tmp_path):
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="shard_size"):
            ShardWriter(tmp_path, manifest=MANIFEST, shard_size=bad)
    with pytest.raises(ValueError, match="shard_size"):
        extract(batches_of(toy_columns()), tmp_path, manifest=MANIFEST, shard_size=0, progress=False)


def test_merge_of_empty_directory_is_refused(tmp_path):
    ShardWriter(tmp_path, manifest=MANIFEST).close()
    with pytest.raises(ValueError, match="no complete shard"):
        merge_shards(tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text())["shards"] == []


# --- 5. rows are checked before they are written --------------------------------------------------

BAD_VALUES = [  # (confidence source of the batch, column, bad value)
    ("confidence", "confidence", np.nan),
    ("confidence", "confidence", 2.0),
    ("confidence", "verified", -0.5),
    ("score", "score", np.inf),
    ("logits", "logits", np.inf),
    ("logits", "label", 4),  # the logits are 4 wide
    ("logits", "pred", 7),
    ("confidence", "label", -2),
    ("confidence", "pred", -3),
]


@pytest.mark.parametrize("source, column, value", BAD_VALUES)
def test_a_bad_value_is_refused_by_column_and_first_id_and_nothing_of_its_batch_is_written(tmp_path, source,
                                                                                           column, value):
    cols = toy_columns(n=12, source=source)
    good = {name: v[:6] for name, v in cols.items()}
    bad = {name: v[6:] if name == "id" else np.array(v[6:]) for name, v in cols.items()}
    for row in (2, 4):
        if column == "logits":
            bad["logits"][row, 1] = value
        else:
            bad[column][row] = value
    with ShardWriter(tmp_path, manifest=MANIFEST, shard_size=1) as writer:  # a kept row would be a shard at once
        writer.write(good)
        with pytest.raises(RecordsError, match=rf"^{column}: id {re.escape(repr(bad['id'][2]))}: .*; "
                                               "nothing of this batch was written$"):
            writer.write(bad)
        assert len(list_shards(tmp_path)) == 6
    assert done_ids(tmp_path) == set(good["id"])
    assert merge_shards(tmp_path).n == 6  # the directory is not poisoned


def test_a_batch_without_verified_where_the_label_is_unknown_is_refused(tmp_path):
    cols = toy_columns(n=10)
    del cols["verified"]  # label[0] is -1 (unknown): nothing says whether row 0 is right
    with ShardWriter(tmp_path, manifest=MANIFEST) as writer:
        with pytest.raises(RecordsError, match=rf"^verified: id {re.escape(repr(cols['id'][0]))}: required where "
                                               "label is unknown"):
            writer.write(cols)


def test_bf16_torch_logits_are_stored_as_float32_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    z = (3 * torch.randn(6, 4, generator=torch.Generator().manual_seed(0))).to(torch.bfloat16)
    ids = [f"b{i}" for i in range(6)]
    extract([{"id": ids, "pred": z.float().argmax(dim=1), "label": torch.tensor([0, 1, 2, 3, 0, 1]), "logits": z}],
            tmp_path, manifest=MANIFEST, progress=False)
    records = merge_shards(tmp_path)
    assert records.id.tolist() == ids and records.logits.dtype == np.float32
    assert np.array_equal(records.logits, z.float().numpy())


# --- 6. the manifest and the planned ids ----------------------------------------------------------

def test_a_completed_extraction_is_checked_against_the_manifest_and_the_planned_ids(tmp_path):
    cols = toy_columns()
    extract(batches_of(cols), tmp_path, manifest=MANIFEST, planned_ids=cols["id"], progress=False)
    assert check_manifest(tmp_path, MANIFEST, planned_ids=cols["id"])["n_rows"] == 53
    other_model = r"manifest: .* holds an extraction with a different manifest \(keys that differ: \['model'\]\)"
    with pytest.raises(ValueError, match=other_model):
        check_manifest(tmp_path, {**MANIFEST, "model": "other"})
    with pytest.raises(ValueError, match=other_model):
        merge_shards(tmp_path, manifest={**MANIFEST, "model": "other"})
    with pytest.raises(ValueError, match=r"planned: .* holds a job planned as \{'n': 53, .*this run plans \{'n': 52,"):
        check_manifest(tmp_path, MANIFEST, planned_ids=cols["id"][1:])
    with pytest.raises(ValueError, match=r"planned: .* holds a job planned as \{'n': 53, "):
        ShardWriter(tmp_path, manifest=MANIFEST, planned_ids=cols["id"][1:])
    assert check_manifest(tmp_path / "new", MANIFEST) is None  # nothing there yet: a fresh start


def test_a_missing_or_unreadable_manifest_beside_shards_is_an_error_not_a_fresh_start(tmp_path):
    cols = toy_columns()
    extract(batches_of({name: v[:20] for name, v in cols.items()}), tmp_path, manifest=MANIFEST, shard_size=6,
            progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("shard-*")}
    path = tmp_path / "manifest.json"
    path.unlink()
    missing = rf"manifest: {re.escape(str(path))} is missing, but .* holds 4 shard\(s\)"
    with pytest.raises(FileNotFoundError, match=missing):
        check_manifest(tmp_path, MANIFEST)
    with pytest.raises(FileNotFoundError, match=missing):  # a resume of another model must not start afresh
        extract(batches_of(cols), tmp_path, manifest={**MANIFEST, "model": "other"}, progress=False)
    for text, why in (("{not json", "cannot be read"), ("[1, 2]", "is not an extraction manifest"),
                      ('{"format": 1, "manifest": "toy"}', "is not an extraction manifest")):
        path.write_text(text)
        with pytest.raises(ValueError, match=rf"manifest: {re.escape(str(path))} {why}"):
            check_manifest(tmp_path, MANIFEST)
        with pytest.raises(ValueError, match=rf"manifest: {re.escape(str(path))} {why}"):
            ShardWriter(tmp_path, manifest=MANIFEST)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("shard-*")} == before
    with pytest.raises(TypeError, match="manifest: expected a dict, got list"):
        check_manifest(tmp_path, [MANIFEST])


def test_the_planned_ids_are_recorded_and_a_short_merge_names_the_missing_ones(tmp_path):
    cols = toy_columns()
    planned = sorted(cols["id"])
    extract(batches_of({name: v[:40] for name, v in cols.items()}), tmp_path, manifest=MANIFEST,
            planned_ids=cols["id"], progress=False)
    assert read_manifest(tmp_path)["planned"] == {"n": 53,
                                                  "sha256": hashlib.sha256(json.dumps(planned).encode()).hexdigest()}
    missing = sorted(cols["id"][40:])
    with pytest.raises(ValueError, match=rf"hold 40 ids, the job planned 53: 13 missing "
                                         rf"\({re.escape(', '.join(map(repr, missing[:5])))}, \.\.\.\)"):
        merge_shards(tmp_path, planned_ids=cols["id"])
    with pytest.raises(ValueError, match=r"hold 40 ids, the job planned 53 \(sha256 [0-9a-f]{64}\), and these "
                                         "are not those"):
        merge_shards(tmp_path)  # the count and hash recorded in manifest.json
    with ShardWriter(tmp_path, manifest=MANIFEST, planned_ids=cols["id"]) as writer:
        with pytest.raises(ValueError, match="id: 'zz' is not among the 53 planned ids of this job"):
            writer.write({**{name: v[40:42] for name, v in cols.items()}, "id": [cols["id"][40], "zz"]})
    assert len(done_ids(tmp_path)) == 40
    extract(batches_of(cols), tmp_path, manifest=MANIFEST, planned_ids=cols["id"], progress=False)
    assert_same_records(merge_shards(tmp_path, planned_ids=cols["id"]), direct_records(cols))


def test_a_padded_merge_or_other_ids_of_the_planned_count_are_refused(tmp_path):
    cols = toy_columns(n=10)
    ids = list(cols["id"])
    rows = lambda a, b: {name: v[a:b] for name, v in cols.items()}  # noqa: E731
    # the last row comes from a writer that was not told the plan (a writer that is, refuses it)
    extract(batches_of(rows(0, 9)), tmp_path / "padded", manifest=MANIFEST, planned_ids=ids[:9], progress=False)
    extract(batches_of(rows(9, 10)), tmp_path / "padded", manifest=MANIFEST, progress=False)
    with pytest.raises(ValueError, match=rf"hold 10 ids, the job planned 9: 1 not planned \({ids[9]!r}\)$"):
        merge_shards(tmp_path / "padded", planned_ids=ids[:9])
    # nine planned, nine written, one of them not planned: the count agrees, the recorded hash does not
    extract(batches_of(rows(1, 9)), tmp_path / "other", manifest=MANIFEST, planned_ids=ids[:9], progress=False)
    extract(batches_of(rows(9, 10)), tmp_path / "other", manifest=MANIFEST, progress=False)
    with pytest.raises(ValueError, match=r"hold 9 ids, the job planned 9 \(sha256 [0-9a-f]{64}\), and these are "
                                         "not those"):
        merge_shards(tmp_path / "other")
    with pytest.raises(ValueError, match=rf"1 missing \({ids[0]!r}\); .*; 1 not planned \({ids[9]!r}\)$"):
        merge_shards(tmp_path / "other", planned_ids=ids[:9])


def test_bad_planned_ids_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="planned_ids: 'a' appears more than once"):
        ShardWriter(tmp_path, manifest=MANIFEST, planned_ids=["a", "b", "a"])
    with pytest.raises(ValueError, match="planned_ids: expected a collection of ids, got a string"):
        extract([], tmp_path, manifest=MANIFEST, planned_ids="abc", progress=False)
    with pytest.raises(ValueError, match="planned_ids: every id must be a string"):
        check_manifest(tmp_path, MANIFEST, planned_ids=["a", 2])
    with pytest.raises(ValueError, match="planned_ids: 'b' appears more than once"):
        merge_shards(tmp_path, planned_ids=["b", "b"])


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format=99), r"has format 99, from a newer calcas \(this one reads format 1\); upgrade"),
    (lambda d: d.update(format="1"), r"has format '1', which no calcas writes"),
    (lambda d: d.update(timing="x"), r"'timing' must be a list of timed runs, got \"x\""),
    (lambda d: d.update(timing=[{"rank": 0, "items": 0, "seconds": 1.0, "device": "cpu", "gflops_per_item": None,
                                 "gflops_source": None}]), r"timing\[0\]\.items must be a whole number >= 1"),
    (lambda d: d.update(timing=[{"rank": 0, "items": 5, "seconds": "x", "device": "cpu"}]),
     r"timing\[0\]\.seconds must be a finite number >= 0, got 'x'"),
    (lambda d: d.update(timing=[7]), r"timing\[0\] must be an object, got 7"),
])
def test_a_hand_edited_manifest_json_is_named_not_a_traceback(tmp_path, edit, message):
    """manifest.json edited by hand: format 99 was accepted silently, timing with zero items raised
    ZeroDivisionError at merge and timing "x" a TypeError; now one message names the file and key."""
    cols = toy_columns(n=12)
    extract(batches_of(cols), tmp_path, manifest=MANIFEST, shard_size=4, progress=False)
    path = tmp_path / "manifest.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"^manifest: .*manifest\.json.*" + message):
        merge_shards(tmp_path)


# --- world size -------------------------------------------------------------------------------

def _slice(cols, ids):
    keep = [k for k, i in enumerate(cols["id"]) if i in set(ids)]
    return {name: [v[k] for k in keep] if name == "id" else v[keep] for name, v in cols.items()}


def test_a_writer_of_another_world_size_is_refused_so_no_id_is_written_twice(tmp_path):
    """Rank 0 of 1 and rank 1 of 2 on one folder used to double every id of rank 1's slice, and each
    rerun then failed on duplicate ids; the folder records its world size and the second is refused."""
    cols = toy_columns(n=40)
    ids = list(cols["id"])
    with ShardWriter(tmp_path, manifest=MANIFEST, shard_size=4, rank=0, world_size=1, planned_ids=ids) as first:
        first.write(_slice(cols, ids[:10]))
        with pytest.raises(ValueError, match=r"^world_size: .* is extracted by 1 rank\(s\) \(manifest\.json\); this "
                                             r"writer is rank 1 of 2, and ranks of two world sizes would extract "
                                             r"the same ids twice\. Resume with 1 rank\(s\), or stop every writer "
                                             r"and rerun with --resize-world"):
            ShardWriter(tmp_path, manifest=MANIFEST, shard_size=4, rank=1, world_size=2, planned_ids=ids)
        first.write(_slice(cols, ids[10:]))
    assert read_manifest(tmp_path)["world_size"] == 1
    assert_same_records(merge_shards(tmp_path, planned_ids=ids), direct_records(cols))


def test_a_job_continues_under_a_new_world_size_with_resize_world(tmp_path):
    """Stop every writer, then open the new ranks with resize_world: the done ids are kept, the
    rest is split anew (ranks of the new layout may open side by side); a live writer of the old
    layout blocks the resize, and after it a writer of the old world size is refused."""
    cols = toy_columns(n=40)
    ids = list(cols["id"])
    with ShardWriter(tmp_path, manifest=MANIFEST, shard_size=4, world_size=1, planned_ids=ids) as old:
        old.write(_slice(cols, ids[:12]))
        with pytest.raises(RuntimeError, match=r"^world_size: cannot resize .* from 1 to 2 rank\(s\) while a writer "
                                               r"of rank 0 of another world size is live \(pid \d+"):
            ShardWriter(tmp_path, manifest=MANIFEST, shard_size=4, rank=1, world_size=2, planned_ids=ids,
                        resize_world=True)
    left = [i for i in ids if i not in done_ids(tmp_path)]
    writers = [ShardWriter(tmp_path, manifest=MANIFEST, shard_size=4, rank=r, world_size=2, planned_ids=ids,
                           resize_world=True) for r in (0, 1)]
    for r, w in enumerate(writers):
        w.write(_slice(cols, left[r::2]))
    for w in writers:
        w.close()
    assert read_manifest(tmp_path)["world_size"] == 2
    assert_same_records(merge_shards(tmp_path, planned_ids=ids), direct_records(cols))
    with pytest.raises(ValueError, match=r"^world_size: .* is extracted by 2 rank\(s\)"):
        ShardWriter(tmp_path, manifest=MANIFEST, shard_size=4, world_size=1, planned_ids=ids)
