"""calcas.interactive: the explorers' specs carry the slider parameters and exactly calcas's
numbers, and their HTML names no address outside the book."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

alt = pytest.importorskip("altair")

import calcas  # noqa: E402
from calcas.interactive import (VEGALITE_MIME, VENDOR_PATH, VENDOR_SCRIPTS, cascade_explorer,  # noqa: E402
                                cleaning_explorer, reliability_explorer)


@pytest.fixture(scope="module")
def demo():
    sets = calcas.make_synthetic(4_000, accuracy=(0.6, 0.85), confidence_scale=(1.6, 1.0),
                                 names=("small", "large"), flip_rate=0.05, seed=3)
    small, large = calcas.align(sets["small"], sets["large"])
    cal = small.cal_mask(seed=0)
    cs = calcas.TemperatureScaling().fit(small.logits[cal], small.label[cal]).transform(small.logits)
    cl = calcas.TemperatureScaling().fit(large.logits[cal], large.label[cal]).transform(large.logits)
    raw_s, raw_l = small.raw_confidence(), large.raw_confidence()
    part = {"cal": cal, "test": ~cal}
    curves = calcas.cascade_curves(
        *({"raw_first": raw_s[m], "raw_second": raw_l[m], "calibrated_first": cs[m],
           "calibrated_second": cl[m], "correct_first": small.verified[m],
           "correct_second": large.verified[m]} for m in part.values()), n_bins=10)
    sweep = calcas.cleaning_sweep(np.stack([small.pred, large.pred]), np.stack([cs, cl]), small.label,
                                  fit_mask=cal, is_error=small.is_noisy)
    return {"raw": raw_s[~cal], "cal": cs[~cal], "correct": small.verified[~cal],
            "correct_large": large.verified[~cal], "curves": curves, "sweep": sweep}


def _params(spec: dict) -> dict:
    return {p["name"]: p for p in spec.get("params", [])}


def _fields(spec: dict, channel: str) -> set[str]:
    """Every field the spec's views put on ``channel`` (text panels have no x/y field)."""
    found, stack = set(), [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            enc = node.get("encoding", {}).get(channel, {})
            if isinstance(enc, dict) and "field" in enc:
                found.add(enc["field"])
            stack.extend(v for k, v in node.items() if k != "datasets")
        elif isinstance(node, list):
            stack.extend(node)
    return found - {"row"}


def _table(spec: dict, column: str) -> pd.DataFrame:
    """The one inlined dataset that has ``column``."""
    found = [pd.DataFrame(rows) for rows in spec["datasets"].values() if rows and column in rows[0]]
    assert len(found) == 1, f"{len(found)} datasets with a {column!r} column"
    return found[0]


def test_reliability_slider_and_exact_ece(demo):
    ex = reliability_explorer({"uncalibrated": demo["raw"], "temperature-scaled": demo["cal"]},
                              demo["correct"], n_bins=range(2, 31), default=15)
    spec = ex.to_dict()
    n = _params(spec)["N"]
    assert n["value"] == 15
    assert n["bind"] == {"input": "range", "min": 2, "max": 30, "step": 1, "name": n["bind"]["name"]}
    text = _table(spec, "ece")
    assert len(text) == 2 * 29
    for row in text.itertuples():
        conf = demo["raw"] if row.series == "uncalibrated" else demo["cal"]
        expected = calcas.ece(conf, demo["correct"], n_bins=row.N)
        assert row.ece == expected
        assert row.text == f"{row.series}: ECE = {expected:.4f} with {row.N} bins"


def test_reliability_bins_are_calcas_tables(demo):
    spec = reliability_explorer(demo["cal"], demo["correct"], n_bins=[5, 10, 15], default=10,
                                binning="equal_width").to_dict()
    bins = _table(spec, "count")
    for n in (5, 10, 15):
        table = calcas.reliability_table(demo["cal"], demo["correct"], n_bins=n, binning="equal_width")
        table = table[table["count"] > 0].reset_index(drop=True)
        got = bins[bins["N"] == n].reset_index(drop=True)
        assert got["count"].tolist() == table["count"].tolist()
        np.testing.assert_allclose(got[["mean_confidence", "accuracy"]], table[["mean_confidence", "accuracy"]],
                                   atol=1e-6)
    text = _table(spec, "ece")
    assert text["text"].tolist()[0].startswith("ECE = ")  # one series: no name prefix


def test_reliability_inputs(demo):
    per_name = reliability_explorer({"a": demo["cal"], "b": demo["cal"]},
                                    {"a": demo["correct"], "b": demo["correct_large"]}, n_bins=[10], default=10)
    text = _table(per_name.to_dict(), "ece").set_index("series")
    assert text.loc["b", "ece"] == calcas.ece(demo["cal"], demo["correct_large"], n_bins=10)
    uneven = reliability_explorer(demo["cal"], demo["correct"], n_bins=[5, 10, 20], default=5).to_dict()
    assert _params(uneven)["N"]["bind"]["input"] == "select"
    with pytest.raises(ValueError, match="default"):
        reliability_explorer(demo["cal"], demo["correct"], n_bins=range(2, 10), default=15)
    with pytest.raises(ValueError, match="correct"):
        reliability_explorer({"a": demo["cal"]}, {"b": demo["correct"]})


def test_cascade_slider_and_readout(demo):
    curves = demo["curves"]
    spec = cascade_explorer(curves, title="small -> large").to_dict()
    k = _params(spec)["K"]
    assert (k["bind"]["input"], k["bind"]["min"], k["bind"]["max"]) == ("range", 0, 10)
    lines = _table(spec, "text")
    assert sorted(lines["series"].unique()) == ["CC", "UC"]
    cc = curves[(curves["method"] == "CC") & (curves["K"] == 4)].iloc[0]
    line = lines[(lines["series"] == "CC") & (lines["K"] == 4)]["text"].item()
    assert line == (f"CC at K = 4: p_small = {cc.p_small:.3f}, accuracy = {cc.accuracy:.4f}, "
                    f"large calls saved = {int(cc.large_calls_saved):,}")
    drawn = _table(spec, "p_small")
    assert set(drawn["series"]) == {"RC", "UC", "CC", "oracle"}
    with pytest.raises(ValueError, match="curves"):
        cascade_explorer(curves.drop(columns="accuracy"))


def test_cleaning_slider_and_readout(demo):
    sweep = demo["sweep"]
    spec = cleaning_explorer(sweep).to_dict()
    k = _params(spec)["K"]
    assert (k["bind"]["min"], k["bind"]["max"]) == (1, 15)
    lines = _table(spec, "text").set_index("K")
    r = sweep.set_index("K").loc[3]
    assert lines.loc[3, "text"].startswith(f"K = 3: {int(r.n_flagged):,} flagged, "
                                           f"detection rate = {r.detection_rate:.4f}, precision = ")
    unrated = sweep.assign(precision=np.nan, n_rated=0)
    both = cleaning_explorer({"rated": sweep, "no ground truth": unrated}).to_dict()
    text = _table(both, "text")
    assert text[text["series"] == "no ground truth"]["text"].str.endswith("precision = n/a (no ground truth)").all()
    assert _fields(both, "y") == {"precision"}
    alone = cleaning_explorer(unrated).to_dict()  # nothing rated: detection rate against K
    assert _fields(alone, "y") == {"detection_rate"} and _fields(alone, "x") == {"K"}


def test_html_names_no_outside_address(demo):
    explorers = [reliability_explorer(demo["cal"], demo["correct"]),
                 cascade_explorer(demo["curves"]), cleaning_explorer(demo["sweep"])]
    snippets = [e.to_html() for e in explorers]
    for snippet in snippets:
        assert not re.search(r"https?://", snippet), re.search(r".{40}https?://.{40}", snippet).group(0)
        assert "content_root" in snippet and VENDOR_PATH in snippet
        assert all(name in snippet for name in VENDOR_SCRIPTS)
    ids = [re.search(r'id="(calcas-explorer-[0-9a-f]+)"', s).group(1) for s in snippets]
    assert len(set(ids)) == len(ids)  # several explorers on one page


def test_html_keeps_hostile_names_inert(demo):
    snippet = reliability_explorer(demo["cal"], demo["correct"], label="</script><b>x", n_bins=[10],
                                   default=10).to_html()
    assert snippet.count("</script>") == 1
    spec = json.loads(re.search(r"var spec = (\{.*\});\n", snippet).group(1).replace("<\\/", "</"))
    assert "$schema" not in spec and _params(spec)["N"]["value"] == 10


def test_mimebundle(demo):
    ex = cleaning_explorer(demo["sweep"])
    bundle = ex._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain", VEGALITE_MIME}
    assert bundle[VEGALITE_MIME]["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6")
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("ex", outputs=[
        nbformat.v4.new_output("display_data", data=bundle)])])
    nbformat.validate(nb)  # a notebook holding the output is valid (papermill checks this)


def test_reliability_grid_stops_at_the_sample_count():
    """Equal-count bins need one sample each: 12 answers offer N up to 12, not the default 30."""
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 12)
    spec = reliability_explorer(conf, rng.random(12) < conf, default=6).to_dict()
    n = _params(spec)["N"]
    assert (n["bind"]["input"], n["bind"]["min"], n["bind"]["max"]) == ("range", 2, 12)
    with pytest.raises(ValueError, match="default: 15 is not in the n_bins grid 2..12"):
        reliability_explorer(conf, rng.random(12) < conf, default=15)
