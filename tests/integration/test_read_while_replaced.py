"""A record set read while another process replaces it: every read sees one whole file.

write_records replaces a file by os.replace; a reader that opened the path twice (pyarrow's
read_table given a path reads the footer, then opens it again for the data) could mix the old
footer with the new data: 472 of 2,917 reads failed here before read_records kept one handle."""
from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

import calcas


def _sets() -> list[calcas.Records]:
    out = []
    for n in (3000, 200):  # two sizes: a footer of one never describes the data of the other
        rng = np.random.default_rng(n)
        out.append(calcas.make_records([f"r{i}" for i in range(n)], rng.integers(0, 3, n),
                                       label=rng.integers(0, 3, n), logits=rng.normal(size=(n, 3)),
                                       manifest={"model": f"m{n}"}))
    return out


def _replace_until(path: str, stop) -> None:
    sets, i = _sets(), 0
    while not stop.is_set():
        calcas.write_records(sets[i % 2], path)
        i += 1


def test_every_read_during_replacements_sees_one_whole_file(tmp_path):
    path = str(tmp_path / "set.parquet")
    small, large = (s.n for s in _sets()[::-1])
    calcas.write_records(_sets()[0], path)
    stop = mp.get_context("spawn").Event()
    writer = mp.get_context("spawn").Process(target=_replace_until, args=(path, stop))
    writer.start()
    failures, sizes = [], []
    try:
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            try:
                sizes.append(calcas.read_records(path).n)
            except calcas.RecordsError as err:
                failures.append(str(err))
    finally:
        stop.set()
        writer.join(timeout=30)
    assert not failures, f"{len(failures)} of {len(failures) + len(sizes)} reads failed, e.g. {failures[0]}"
    assert set(sizes) <= {small, large} and len(sizes) > 20
    assert len(set(sizes)) == 2, "the writer never replaced the file during the reads"
