"""calcas report on public per-sample outputs calcas did not write."""
from __future__ import annotations


import pandas as pd
import pytest

import calcas
from calcas.user_report import user_report
from test_user_report import _csv  # noqa: E402


def test_a_public_per_sample_output_we_did_not_write(tmp_path):
    """ImageNet-X's published ResNet-50 and ViT predictions, re-shaped into the CSV form only."""
    from calcas.datasets.public import data_root
    data = data_root()
    if data is None or not (data / "imagenetx" / "ResNet50.csv").is_file():
        pytest.skip("the public data is not on this machine (python -m calcas.datasets.public fetch)")
    labels = pd.read_csv(data / "imagenetx" / "filename_label.csv")
    paths = []
    for model in ("ResNet50", "ViT"):
        frame = pd.read_csv(data / "imagenetx" / f"{model}.csv").merge(labels, on="file_name")
        frame = frame.rename(columns={"file_name": "id", "predicted_class": "pred", "predicted_probability": "confidence"})
        paths.append(_csv(tmp_path, model, frame))
    res = user_report(paths, tmp_path / "out", n_boot=20, progress=False)
    frame = pd.read_csv(paths[0])
    test = ~calcas.cal_test_split(frame["id"].to_numpy(), seed=0)
    accuracy = float((frame["pred"] == frame["label"])[test].mean())
    assert res["calibration"]["models"]["ResNet50"]["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert res["cascade"]["pairs"]["ResNet50 → ViT"]["n_test"] == int(test.sum())
