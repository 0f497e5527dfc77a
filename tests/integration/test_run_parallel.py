"""The real notebooks give the same results run one at a time or side by side (the quick profile,
01_extract and the two chapters that read it)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from calcas import run as runner

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ["01_extract", "03_cascading", "04_cleaning"]


def _build(tmp_path: Path, name: str, jobs: int) -> Path:
    root = tmp_path / name
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    (root / "book").mkdir()
    shutil.copy2(ROOT / "book" / "chapters.yml", root / "book" / "chapters.yml")
    shutil.copy2(ROOT / "_config.yml", root / "_config.yml")
    steps = [step for step in runner.plan("quick") if step.folder in SECTIONS]  # not the public steps
    times = runner.run("quick", steps=steps, book=False, root=root, jobs=jobs)
    assert set(times) == set(SECTIONS)  # all of them ran: nothing came from a cache
    return root / "book" / "executed"


# Slow (about a minute on 2 cores: three notebooks, twice); CI runs it (CALCAS_SLOW=1).
@pytest.mark.slow
def test_results_are_the_same_bytes_run_one_at_a_time_or_side_by_side(tmp_path):
    serial, parallel = _build(tmp_path, "serial", 1), _build(tmp_path, "parallel", 2)
    files = sorted(p.relative_to(serial) for p in serial.rglob("*") if p.is_file() and p.suffix != ".ipynb")
    assert files == sorted(p.relative_to(parallel) for p in parallel.rglob("*")
                           if p.is_file() and p.suffix != ".ipynb")
    assert {f.name for f in files} >= {"results.json", "mnist1d_cnn.parquet"}
    for rel in files:
        if rel.suffix == ".parquet":  # the manifest (schema metadata) holds training seconds: compare the columns
            one, two = (pq.read_table(side / rel).replace_schema_metadata(None) for side in (serial, parallel))
            assert one.num_rows > 0 and one.equals(two), rel
        else:
            assert (serial / rel).read_bytes() == (parallel / rel).read_bytes(), rel
