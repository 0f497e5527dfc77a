"""Faults in a resumable extraction (calcas.extract.shards), made by real processes: a writer
SIGKILLed at every stage of a shard write, a second live writer of the same rank, a lock left by
a killed writer, a shard name taken behind a writer's back, and truncated shards.

Run as a script, this module is the child process that the tests start and kill::

    python tests/test_shard_faults.py extract OUT          # all rows
    python tests/test_shard_faults.py extract OUT pause    # all rows; pauses after the first batch until OUT.go
    python tests/test_shard_faults.py kill-at OUT STAGE    # all rows; SIGKILLs itself at STAGE of shard 3
    python tests/test_shard_faults.py hold OUT             # opens a writer of rank 0 of 2 and sleeps
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calcas.extract import shards
from calcas.extract.shards import ShardWriter, done_ids, extract, list_shards, merge_shards, read_manifest
from test_shards import MANIFEST, _env, assert_same_records, batches_of, direct_records, toy_columns

N, SHARD = 40, 8  # five shards
COLS = toy_columns(n=N)
IDS = list(COLS["id"])
STAGES = ("before_temp", "during_write", "before_publish", "before_manifest")


def rows_except(done):
    keep = [k for k, i in enumerate(IDS) if i not in done]
    return {name: [v[k] for k in keep] if name == "id" else v[keep] for name, v in COLS.items()}


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_at(stage, shard=3):
    """Make this process SIGKILL itself at ``stage`` of its ``shard``-th shard write."""
    count = itertools.count(1)
    if stage == "before_temp":  # nothing of the shard exists yet
        real_write = shards._write_and_move

        def write_and_move(directory, base, write, move):
            if base.startswith("shard-") and next(count) == shard:
                _die()
            return real_write(directory, base, write, move)
        shards._write_and_move = write_and_move
    elif stage == "during_write":  # half of the Parquet bytes are in the temporary file
        real_table = pq.write_table

        def write_table(table, where, **kwargs):
            if next(count) == shard:
                buffer = pa.BufferOutputStream()
                real_table(table, buffer, **kwargs)
                data = buffer.getvalue().to_pybytes()
                where.write(data[:len(data) // 2])
                where.flush()
                _die()
            return real_table(table, where, **kwargs)
        shards.pq.write_table = write_table
    else:  # the temporary file is complete: killed before it is linked, or after, before manifest.json
        real_link = os.link

        def link(src, dst, **kwargs):
            if next(count) == shard:
                if stage == "before_manifest":
                    real_link(src, dst, **kwargs)
                _die()
            return real_link(src, dst, **kwargs)
        shards.os.link = link


def child(command, out, *args):
    """The child processes of the tests (see the module docstring)."""
    if command == "hold":  # rank 0 of 2, so that rank 1 of the same layout can open beside it
        ShardWriter(out, manifest=MANIFEST, world_size=2)
        Path(f"{out}.ready").touch()
        time.sleep(120)
    elif command == "extract":
        def batches(pause):
            for k, batch in enumerate(batches_of(COLS, sizes=(5,))):
                yield batch
                if pause and k == 0:
                    Path(f"{out}.ready").touch()
                    while not Path(f"{out}.go").exists():
                        time.sleep(0.02)
        print("wrote", extract(batches(args == ("pause",)), out, manifest=MANIFEST, shard_size=SHARD,
                               planned_ids=IDS, progress=False))
    elif command == "kill-at":
        _kill_at(*args)
        extract(batches_of(COLS, sizes=(5,)), out, manifest=MANIFEST, shard_size=SHARD, planned_ids=IDS,
                progress=False)
    else:
        raise SystemExit(f"unknown command {command!r}")


def _child_cmd(*args):
    return [sys.executable, __file__, *map(str, args)]


def _wait_for(path, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.02)


def _stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


# --- a kill at every stage of a shard write -----------------------------------------------------

@pytest.mark.parametrize("stage", STAGES)
def test_a_kill_at_any_stage_of_a_shard_write_resumes_to_exactly_the_planned_ids(tmp_path, stage):
    out = tmp_path / "job"
    killed = subprocess.run(_child_cmd("kill-at", out, stage), env=_env(), capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    published = [name for name, _, _ in list_shards(out)]
    temporary = sorted(p.name for p in out.glob(".shard-*.tmp-*"))
    # what the kill left is what the stage says: shards published, temporary files, manifest behind
    assert (len(published), len(temporary)) == {"before_temp": (2, 0), "during_write": (2, 1),
                                                "before_publish": (2, 1), "before_manifest": (3, 1)}[stage]
    assert len(read_manifest(out)["shards"]) == 2
    if stage == "during_write":
        with pytest.raises(pa.ArrowInvalid):
            pq.read_metadata(out / temporary[0])
    elif stage == "before_publish":
        assert pq.read_metadata(out / temporary[0]).num_rows == SHARD
    done = done_ids(out)
    assert len(done) == SHARD * len(published)

    assert extract(batches_of(rows_except(done)), out, manifest=MANIFEST, shard_size=SHARD, planned_ids=IDS,
                   progress=False) == N - len(done)
    assert not list(out.glob(".*.tmp-*"))  # the killed run's leftovers are gone
    doc = read_manifest(out)
    assert doc["n_rows"] == N and [s["file"] for s in doc["shards"]] == [name for name, _, _ in list_shards(out)]
    assert_same_records(merge_shards(out, planned_ids=IDS), direct_records(COLS))


# --- one writer per directory and rank ----------------------------------------------------------

def test_a_second_live_writer_of_a_rank_is_refused_and_nothing_is_lost(tmp_path):
    """Two extract processes on one directory and rank: the second is refused, the first's rows all stay."""
    out = tmp_path / "job"
    first = subprocess.Popen(_child_cmd("extract", out, "pause"), env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(Path(f"{out}.ready"), first)  # the first writer is open and has rows buffered
        second = subprocess.run(_child_cmd("extract", out), env=_env(), capture_output=True, text=True,
                                timeout=120)
        Path(f"{out}.go").touch()
        stdout, stderr = first.communicate(timeout=120)
    finally:
        _stop(first)
    assert second.returncode == 1
    assert re.search(rf"RuntimeError: {re.escape(str(out))}: rank 0 already has a live writer \(pid {first.pid} on ",
                     second.stderr), second.stderr[-2000:]
    assert first.returncode == 0 and stdout.strip() == f"wrote {N}", stderr[-2000:]
    assert_same_records(merge_shards(out, planned_ids=IDS), direct_records(COLS))


def test_the_lock_of_a_writer_killed_by_sigkill_is_taken_over(tmp_path):
    out = tmp_path / "job"
    holder = subprocess.Popen(_child_cmd("hold", out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(Path(f"{out}.ready"), holder)
        with pytest.raises(RuntimeError, match=rf"^{re.escape(str(out))}: rank 0 already has a live writer "
                                               rf"\(pid {holder.pid} on "):
            ShardWriter(out, manifest=MANIFEST, world_size=2)
        ShardWriter(out, manifest=MANIFEST, rank=1, world_size=2).close()  # another rank is free
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        _stop(holder)
    assert holder.returncode == -signal.SIGKILL
    lock = out / ".writer-r000.lock"
    assert json.loads(lock.read_text())["pid"] == holder.pid  # the dead writer's record is still there
    with ShardWriter(out, manifest=MANIFEST, shard_size=SHARD, world_size=2) as writer:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(RuntimeError, match=rf"rank 0 already has a live writer \(pid {os.getpid()} on "):
            ShardWriter(out, manifest=MANIFEST, world_size=2)  # a second writer in the same process is refused too
        writer.write(COLS)
    assert_same_records(merge_shards(out), direct_records(COLS))


def test_a_taken_shard_name_is_never_overwritten(tmp_path):
    """What a writer on another host could do where flock does not reach: the name is taken, so the
    writer publishes under the next one."""
    elsewhere = tmp_path / "elsewhere"
    extract([{**{name: v[:3] for name, v in COLS.items()}, "id": ["x0", "x1", "x2"]}], elsewhere,
            manifest=MANIFEST, progress=False)
    out = tmp_path / "job"
    with ShardWriter(out, manifest=MANIFEST, shard_size=SHARD) as writer:
        intruder = out / "shard-r000-000000.parquet"
        shutil.copyfile(elsewhere / "shard-r000-000000.parquet", intruder)
        before = intruder.read_bytes()
        writer.write({name: v[:SHARD] for name, v in COLS.items()})
    assert intruder.read_bytes() == before
    assert [name for name, _, _ in list_shards(out)] == ["shard-r000-000000.parquet", "shard-r000-000001.parquet"]
    assert done_ids(out) == {"x0", "x1", "x2", *IDS[:SHARD]}


# --- unreadable shards --------------------------------------------------------------------------

def _truncate(path):
    """Cut a shard to a third of its bytes; returns the ids it held."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3])
    return pq.read_table(pa.BufferReader(data), columns=["id"]).column("id").to_pylist()


def test_a_truncated_last_shard_is_named_and_set_aside_by_merge_and_its_ids_extracted_again(tmp_path):
    out = tmp_path / "job"
    extract(batches_of(COLS), out, manifest=MANIFEST, shard_size=SHARD, planned_ids=IDS, progress=False)
    last = out / "shard-r000-000004.parquet"
    lost = _truncate(last)
    damaged = last.read_bytes()
    with pytest.raises(ValueError, match=r"^shard-r000-000004\.parquet: cannot be read \(\w+: .*\); set aside as "
                                         r"shard-r000-000004\.parquet\.corrupt in .*: resume the extraction"):
        merge_shards(out, planned_ids=IDS)
    assert (out / "shard-r000-000004.parquet.corrupt").read_bytes() == damaged  # kept, not deleted
    done = done_ids(out)
    assert done == set(IDS) - set(lost)
    assert extract(batches_of(rows_except(done)), out, manifest=MANIFEST, shard_size=SHARD, planned_ids=IDS,
                   progress=False) == len(lost)
    assert [k for _, _, k in list_shards(out)] == [0, 1, 2, 3, 5]  # the set-aside shard's number is not reused
    assert_same_records(merge_shards(out, planned_ids=IDS), direct_records(COLS))


def test_truncated_shards_found_by_done_ids_or_a_writer_are_named_and_their_ids_not_done(tmp_path):
    out = tmp_path / "job"
    extract(batches_of(COLS), out, manifest=MANIFEST, shard_size=SHARD, planned_ids=IDS, progress=False)
    lost_1 = _truncate(out / "shard-r000-000001.parquet")
    with pytest.warns(UserWarning, match=r"^shard-r000-000001\.parquet: cannot be read .*; set aside as "
                                         r"shard-r000-000001\.parquet\.corrupt in .*; its ids count as not done"):
        done = done_ids(out)
    assert done == set(IDS) - set(lost_1)
    lost_3 = _truncate(out / "shard-r000-000003.parquet")
    with pytest.warns(UserWarning, match=r"^shard-r000-000003\.parquet: cannot be read"):
        with ShardWriter(out, manifest=MANIFEST, shard_size=SHARD, planned_ids=IDS) as writer:
            assert writer.done_ids() == set(IDS) - set(lost_1) - set(lost_3)
            writer.write(rows_except(writer.done_ids()))
    assert sorted(p.name for p in out.glob("*.corrupt")) == ["shard-r000-000001.parquet.corrupt",
                                                             "shard-r000-000003.parquet.corrupt"]
    assert read_manifest(out)["n_rows"] == N
    assert_same_records(merge_shards(out, planned_ids=IDS), direct_records(COLS))


def test_a_single_flipped_byte_is_never_merged_as_data(tmp_path):
    """Flip one byte of a shard at 150 places: each merge either gives exactly the rows written, or
    names the shard and sets it aside. (Without a checksum, 17 of 150 flips merged with changed
    values, and the merged record set then got a fresh, valid checksum.)"""
    out = tmp_path / "job"
    extract(batches_of(COLS), out, manifest=MANIFEST, shard_size=SHARD, planned_ids=IDS, progress=False)
    expected = direct_records(COLS)
    name = "shard-r000-000002.parquet"
    original = (out / name).read_bytes()
    positions = sorted(set(range(4, len(original) - 8, max(1, (len(original) - 12) // 150))))[:150]
    outcomes = {"same rows": 0, "set aside": 0}
    for k, position in enumerate(positions):
        trial = tmp_path / f"t{k}"
        shutil.copytree(out, trial)
        data = bytearray(original)
        data[position] ^= 0x5A
        (trial / name).write_bytes(bytes(data))
        try:
            merged = merge_shards(trial, planned_ids=IDS)
        except ValueError as err:
            assert str(err).startswith(f"{name}: cannot be read"), (position, str(err))
            assert (trial / (name + ".corrupt")).is_file() and not (trial / name).exists()
            outcomes["set aside"] += 1
        else:
            assert_same_records(merged, expected)  # a flip in padding or unused metadata changes nothing
            outcomes["same rows"] += 1
        shutil.rmtree(trial)
    assert outcomes["set aside"] > 100, outcomes


def test_a_shard_whose_ids_are_not_utf8_is_set_aside_and_extracted_again(tmp_path):
    """Id bytes that are not UTF-8 made every rerun fail with a bare UnicodeDecodeError; the shard
    is now named, set aside, and its ids extracted again."""
    out = tmp_path / "job"
    extract(batches_of(COLS), out, manifest=MANIFEST, shard_size=SHARD, planned_ids=IDS, progress=False)
    path = out / "shard-r000-000001.parquet"
    table = pq.read_table(path)
    lost = table.column("id").to_pylist()
    bad = pa.array([b"\xff\xfe" + i.encode() for i in lost], pa.binary()).cast(pa.string(), safe=False)
    pq.write_table(table.set_column(0, "id", bad), path)
    with pytest.warns(UserWarning, match=r"^shard-r000-000001\.parquet: cannot be read \(ShardDamaged: its "
                                         r"content cannot be decoded \(UnicodeDecodeError"):
        done = done_ids(out)
    assert done == set(IDS) - set(lost)
    extract(batches_of(rows_except(done)), out, manifest=MANIFEST, shard_size=SHARD, planned_ids=IDS, progress=False)
    assert_same_records(merge_shards(out, planned_ids=IDS), direct_records(COLS))


if __name__ == "__main__":
    child(*sys.argv[1:])
