"""Same parameters and seed, same bytes: a section re-run with papermill writes a results.json
identical to the first run's (the runner's promise; MNIST-1D training determinism itself is
tested in test_mnist1d.py)."""
import os
from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")
ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / "book" / "executed" / "01_extract" / "records"


def _need_records():
    if not (RECORDS / "mnist1d_cnn.parquet").exists():
        if os.environ.get("CALCAS_REQUIRE_BOOK") == "1":
            pytest.fail(f"{RECORDS} is missing: `make book` should have produced it")
        pytest.skip("no record sets yet: run `make book` first")


@pytest.mark.parametrize("section, parameters", [
    ("03_cascading", lambda: {"pairs": {"a": [str(RECORDS / "mnist1d_mlp.parquet"), str(RECORDS / "mnist1d_cnn.parquet")],
                                        "b": [str(RECORDS / "mnist1d_cnn.parquet"), str(RECORDS / "mnist1d_cnn_b.parquet")]},
                              "K": 5, "n_bins": 10}),
    ("04_cleaning", lambda: {"experts": [str(RECORDS / f"mnist1d_{m}.parquet") for m in ("mlp", "cnn", "cnn_b")],
                             "K": 4, "n_bins": 10, "seed": 3}),
])
def test_rerun_gives_byte_identical_results(tmp_path, section, parameters):
    _need_records()
    outputs = []
    for run in ("first", "second"):
        folder = tmp_path / run
        folder.mkdir()
        papermill.execute_notebook(str(ROOT / "notebooks" / f"{section}.ipynb"), str(folder / "out.ipynb"),
                                   parameters={**parameters(), "output_dir": "."}, cwd=str(folder),
                                   kernel_name="python3", progress_bar=False)
        outputs.append((folder / "results.json").read_bytes())
    assert outputs[0] == outputs[1]
    assert b'"K": ' in outputs[0]
