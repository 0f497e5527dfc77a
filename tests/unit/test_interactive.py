"""calcas.render.interactive: the explorers' specs carry the slider parameters and exactly calcas's
numbers, and their HTML names no address outside the book; calcas.render.plots: the grids are drawn
for the book's column, and styled tables read well (the static half of the same book layer)."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

alt = pytest.importorskip("altair")

import calcas  # noqa: E402
from calcas.render.interactive import (VEGALITE_MIME, VENDOR_PATH, VENDOR_SCRIPTS, cascade_explorer,  # noqa: E402
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


def _rel(confidence, correct, *, n_bins=range(2, 31), default=15, binning="equal_count", label="model", **kwargs):
    """reliability_explorer on grids computed as the chapters compute them (calcas.lab.binning_sweep)."""
    from calcas.lab import binning_sweep
    conf = dict(confidence) if isinstance(confidence, dict) else {label: confidence}
    bins, summary = [], []
    for name, c in conf.items():
        v = correct[name] if isinstance(correct, dict) else correct
        grid = [n for n in n_bins if n <= len(c)]
        b, s = binning_sweep(c, v, n_bins=grid, binnings=(binning,))
        bins.append(b.assign(series=name))
        summary.append(s.assign(series=name, distinct=b.groupby("N").size().reindex(s["N"]).to_numpy()))
    return reliability_explorer(pd.concat(bins), pd.concat(summary), default=default, binning=binning, **kwargs)


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
    return found - {"y"}  # the read-out panel places its lines by a pixel offset "y"


def _table(spec: dict, column: str) -> pd.DataFrame:
    """The one inlined dataset that has ``column``."""
    found = [pd.DataFrame(rows) for rows in spec["datasets"].values() if rows and column in rows[0]]
    assert len(found) == 1, f"{len(found)} datasets with a {column!r} column"
    return found[0]


def _readouts(spec: dict, key: str) -> pd.DataFrame:
    """The read-out of each series at each slider value (``key``: N or K), its lines joined
    again (they are split after ", " and ": " and before " (")."""
    lines = _table(spec, "line")
    rows = []
    for (series, k), part in lines.groupby(["series", key], sort=False):
        part = part.sort_values("y")
        rows.append({**part.iloc[0].drop(["line", "y"]).to_dict(), "text": " ".join(part["line"]),
                     "n_lines": len(part)})
    return pd.DataFrame(rows)


def test_reliability_slider_and_exact_ece(demo):
    ex = _rel({"uncalibrated": demo["raw"], "temperature-scaled": demo["cal"]},
                              demo["correct"], n_bins=range(2, 31), default=15)
    spec = ex.to_dict()
    n = _params(spec)["N"]
    assert n["value"] == 15
    assert n["bind"] == {"input": "range", "min": 2, "max": 30, "step": 1, "name": n["bind"]["name"]}
    text = _readouts(spec, "N")
    assert len(text) == 2 * 29
    for row in text.itertuples():
        conf = demo["raw"] if row.series == "uncalibrated" else demo["cal"]
        expected = calcas.ece(conf, demo["correct"], n_bins=row.N)
        assert row.ece == expected
        assert row.text == f"{row.series}: ECE = {expected:.4f} with N = {row.N} bins"


def test_reliability_bins_are_calcas_tables(demo):
    spec = _rel(demo["cal"], demo["correct"], n_bins=[5, 10, 15], default=10,
                                binning="equal_width").to_dict()
    bins = _table(spec, "count")
    for n in (5, 10, 15):
        table = calcas.reliability_table(demo["cal"], demo["correct"], n_bins=n, binning="equal_width")
        table = table[table["count"] > 0].reset_index(drop=True)
        got = bins[bins["N"] == n].reset_index(drop=True)
        assert got["count"].tolist() == table["count"].tolist()
        np.testing.assert_allclose(got[["mean_confidence", "accuracy"]], table[["mean_confidence", "accuracy"]],
                                   atol=1e-6)
    text = _readouts(spec, "N")
    assert text["text"].tolist()[0].startswith("ECE = ")  # one series: no name prefix


def test_reliability_inputs(demo):
    per_name = _rel({"a": demo["cal"], "b": demo["cal"]},
                                    {"a": demo["correct"], "b": demo["correct_large"]}, n_bins=[10], default=10)
    text = _readouts(per_name.to_dict(), "N").set_index("series")
    assert text.loc["b", "ece"] == calcas.ece(demo["cal"], demo["correct_large"], n_bins=10)
    uneven = _rel(demo["cal"], demo["correct"], n_bins=[5, 10, 20], default=5).to_dict()
    assert _params(uneven)["N"]["bind"]["input"] == "select"
    with pytest.raises(ValueError, match="default"):
        _rel(demo["cal"], demo["correct"], n_bins=range(2, 10), default=15)
    with pytest.raises(ValueError, match=r"bins: missing columns \['series', 'bin', 'count'"):
        reliability_explorer(pd.DataFrame({"N": [5]}), pd.DataFrame({"series": ["a"], "N": [5], "ece": [0.1],
                                                                     "distinct": [5]}), default=5)
    with pytest.raises(ValueError, match=r"summary: missing columns \['distinct'\]"):
        reliability_explorer(pd.DataFrame(columns=["series", "N", "bin", "count", "mean_confidence", "accuracy"]),
                             pd.DataFrame({"series": ["a"], "N": [5], "ece": [0.1]}), default=5)


def test_cascade_slider_and_readout(demo):
    curves = demo["curves"]
    spec = cascade_explorer(curves, title="small -> large").to_dict()
    k = _params(spec)["K"]
    assert (k["bind"]["input"], k["bind"]["min"], k["bind"]["max"]) == ("range", 0, 10)
    assert k["value"] == 5  # no default: the middle of 0..10
    lines = _readouts(spec, "K")
    assert sorted(lines["series"].unique()) == ["CC", "UC"]
    cc = curves[(curves["method"] == "CC") & (curves["K"] == 4)].iloc[0]
    line = lines[(lines["series"] == "CC") & (lines["K"] == 4)]["text"].item()
    assert line == (f"CC at K = 4: p = {cc.p_small:.3f}, accuracy = {cc.accuracy:.4f}, "
                    f"second-model calls saved = {int(cc.large_calls_saved):,}")
    drawn = [pd.DataFrame(rows) for rows in spec["datasets"].values() if rows and "p_small" in rows[0]]
    lines_, marks = sorted(drawn, key=lambda d: "at" in d)  # the curves, and the points the slider marks
    assert set(lines_["series"]) == {"RC", "UC", "CC", "oracle"} and set(marks["series"]) == {"CC", "UC"}
    assert (marks["at"] == marks["K"]).all()  # one pair: every slider K is one of its K
    with pytest.raises(ValueError, match="curves"):
        cascade_explorer(curves.drop(columns="accuracy"))


def test_a_pair_lacking_the_sliders_K_marks_its_nearest_and_says_so(demo):
    """Two pairs in one explorer: the slider offers the K of both; at a K the second lacks (its tied
    confidences merged bins) it still marks a point, its nearest K, and the read-out names both."""
    curves = demo["curves"]
    short = curves[curves["K"] <= 6]
    spec = cascade_explorer({"long": curves, "short": short}).to_dict()
    assert _params(spec)["K"]["bind"]["max"] == 10 and _params(spec)["pair"]["bind"]["options"] == ["long", "short"]
    marks = [pd.DataFrame(rows) for rows in spec["datasets"].values() if rows and "at" in rows[0]][0]
    at9 = marks[(marks["pair"] == "short") & (marks["at"] == 9)]
    assert sorted(at9["series"]) == ["CC", "UC"] and (at9["K"] == 6).all()
    lines = _readouts(spec, "key")  # one read-out per pair and K
    line = lines[(lines["key"] == "short|9") & (lines["series"] == "CC")]["text"].item()
    cc = short[(short["method"] == "CC") & (short["K"] == 6)].iloc[0]
    assert line == (f"CC at K = 9 (not a K of this pair, whose tied confidences merged bins; at K = 6): "
                    f"p = {cc.p_small:.3f}, accuracy = {cc.accuracy:.4f}, "
                    f"second-model calls saved = {int(cc.large_calls_saved):,}")


def test_cleaning_slider_and_readout(demo):
    sweep = demo["sweep"]
    spec = cleaning_explorer(sweep).to_dict()
    k = _params(spec)["K"]
    assert (k["bind"]["min"], k["bind"]["max"]) == (1, 15)
    lines = _readouts(spec, "K").set_index("K")
    r = sweep.set_index("K").loc[3]
    assert lines.loc[3, "text"].startswith(f"K = 3: {int(r.n_flagged):,} flagged, "
                                           f"detection rate = {r.detection_rate:.4f}, precision = ")
    unrated = sweep.assign(precision=np.nan, n_rated=0)
    both = cleaning_explorer({"rated": sweep, "no ground truth": unrated}).to_dict()
    text = _readouts(both, "K")
    assert text[text["series"] == "no ground truth"]["text"].str.endswith("precision = n/a (no ground truth)").all()
    assert _fields(both, "y") == {"precision"}
    alone = cleaning_explorer(unrated).to_dict()  # nothing rated: detection rate against K
    assert _fields(alone, "y") == {"detection_rate"} and _fields(alone, "x") == {"K"}


def test_html_names_no_outside_address(demo):
    explorers = [_rel(demo["cal"], demo["correct"]),
                 cascade_explorer(demo["curves"]), cleaning_explorer(demo["sweep"])]
    snippets = [e.to_html() for e in explorers]
    for snippet in snippets:
        assert not re.search(r"https?://", snippet), re.search(r".{40}https?://.{40}", snippet).group(0)
        assert "content_root" in snippet and VENDOR_PATH in snippet
        assert all(name in snippet for name in VENDOR_SCRIPTS)
    ids = [re.search(r'id="(calcas-explorer-[0-9a-f]+)"', s).group(1) for s in snippets]
    assert len(set(ids)) == len(ids)  # several explorers on one page


def test_html_keeps_hostile_names_inert(demo):
    snippet = _rel(demo["cal"], demo["correct"], label="</script><b>x", n_bins=[10],
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
    spec = _rel(conf, rng.random(12) < conf, default=6).to_dict()
    n = _params(spec)["N"]
    assert (n["bind"]["input"], n["bind"]["min"], n["bind"]["max"]) == ("range", 2, 12)
    with pytest.raises(ValueError, match="default: 15 is not in the n_bins grid 2..12"):
        _rel(conf, rng.random(12) < conf, default=15)


# ---------------------------------------------------------------------------------------
# defaults, tied confidences, read-outs, styles, responsive HTML

def _legends(spec: dict) -> list[dict]:
    found, stack = [], [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("legend"), dict):
                found.append(node["legend"])
            stack.extend(v for k, v in node.items() if k not in ("datasets", "resolve"))
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _scale_of(spec: dict, channel: str) -> dict[str, object]:
    """series -> range value of the first ``channel`` scale on the series field."""
    stack = [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            enc = node.get("encoding", {}).get(channel)
            if isinstance(enc, dict) and isinstance(enc.get("scale"), dict) and "domain" in enc["scale"]:
                return dict(zip(enc["scale"]["domain"], enc["scale"]["range"]))
            stack.extend(v for k, v in node.items() if k != "datasets")
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError(f"no {channel} scale")


def test_cascade_default_k_is_the_pages_k(demo):
    curves = demo["curves"]
    assert _params(cascade_explorer(curves, default=7).to_dict())["K"]["value"] == 7
    assert _params(cascade_explorer(curves, default=99).to_dict())["K"]["value"] == 10  # nearest offered
    # tied confidences: a curve with only some K (here 0, 1, 2, 6, 9, 10); the slider offers
    # exactly those, and a default between two starts at the nearer (the lower when equally near)
    some = curves[curves["K"].isin([0, 1, 2, 6, 9, 10])]
    spec = cascade_explorer(some, default=4).to_dict()
    k = _params(spec)["K"]
    assert k["bind"]["input"] == "select" and k["bind"]["options"] == [0, 1, 2, 6, 9, 10]
    assert k["value"] == 2
    assert _params(cascade_explorer(some, default=5).to_dict())["K"]["value"] == 6
    assert sorted(_readouts(spec, "K")["K"].unique()) == [0, 1, 2, 6, 9, 10]


def test_cleaning_default_and_nothing_flagged(demo):
    sweep = demo["sweep"]
    assert _params(cleaning_explorer(sweep, default=3).to_dict())["K"]["value"] == 3
    assert _params(cleaning_explorer(sweep, default=0).to_dict())["K"]["value"] == 1
    assert _params(cleaning_explorer(sweep).to_dict())["K"]["value"] == 8  # None: the middle of 1..15
    # K = 1 flags nothing; K = 2 flags samples nobody rated; K = 3 flags rated ones
    odd = sweep[sweep["K"] <= 3].copy().set_index("K")
    odd.loc[1, ["n_flagged", "detection_rate", "n_rated", "precision"]] = [0, 0.0, 0, np.nan]
    odd.loc[2, ["n_rated", "precision"]] = [0, np.nan]
    text = _readouts(cleaning_explorer(odd.reset_index()).to_dict(), "K").set_index("K")["text"]
    assert text[1] == "K = 1: 0 flagged, detection rate = 0.0000, precision = n/a (nothing flagged)"
    assert text[2].endswith("precision = n/a (no ground truth)")
    assert "n/a" not in text[3]


def test_reliability_says_when_ties_merge_bins():
    """With tied confidences, equal-count binning has fewer distinct bins than N: the
    read-out gives both (the distinct bins are the reliability table's rows with samples)."""
    rng = np.random.default_rng(1)
    conf = rng.choice([0.55, 0.7, 0.8, 0.9, 0.95], 400)  # five distinct values
    correct = rng.random(400) < conf
    spec = _rel(conf, correct, n_bins=[3, 20], default=20).to_dict()
    text = _readouts(spec, "N").set_index("N")
    table = calcas.reliability_table(conf, correct, n_bins=20)
    distinct = int((table["count"] > 0).sum())
    assert distinct < 20
    e = calcas.ece(conf, correct, n_bins=20)
    assert text.loc[20, "text"] == f"ECE = {e:.4f} with N = 20 ({distinct} distinct bins: tied confidences)"
    assert text.loc[20, "distinct_bins"] == distinct
    drawn = _table(spec, "count")
    assert (drawn["N"] == 20).sum() == distinct  # one point per distinct bin


def test_readout_lines_fit_a_phone(demo):
    """Read-outs are wrapped into lines of at most READOUT_CHARS characters, never inside
    "name = value", and each series keeps its own band of lines."""
    from calcas.render.interactive import READOUT_CHARS
    specs = {"N": _rel({"uncalibrated": demo["raw"], "calibrated": demo["cal"]}, demo["correct"]),
             "K": cascade_explorer(demo["curves"])}
    for key, ex in specs.items():
        lines = _table(ex.to_dict(), "line")
        assert (lines["line"].str.len() <= READOUT_CHARS).all(), lines["line"].str.len().max()
        assert not lines["line"].str.contains(r"=$|^=").any()
        for _, part in lines.groupby(key):  # no two lines at one height
            assert part["y"].is_unique
    text = _readouts(specs["K"].to_dict(), "K")
    assert (text["n_lines"] == 2).all()


def test_styles_are_the_static_figures(demo):
    """Okabe–Ito, as calcas.render.plots: uncalibrated / UC and calibrated / CC differ in colour,
    dash and point shape; legends sit under the plot."""
    from calcas.render.plots import SERIES_STYLE
    rel = _rel({"uncalibrated": demo["raw"], "calibrated": demo["cal"]}, demo["correct"]).to_dict()
    cas = cascade_explorer(demo["curves"]).to_dict()
    for spec, (a, b) in ((rel, ("uncalibrated", "calibrated")), (cas, ("UC", "CC"))):
        colours, dashes, shapes = (_scale_of(spec, c) for c in ("color", "strokeDash", "shape"))
        assert colours[a] == SERIES_STYLE[a]["color"] and colours[b] == SERIES_STYLE[b]["color"]
        assert colours[a] != colours[b] and dashes[a] != dashes[b] and shapes[a] != shapes[b]
    assert _scale_of(cas, "color")["UC"] == _scale_of(rel, "color")["uncalibrated"]
    for spec in (rel, cas, cleaning_explorer({"a": demo["sweep"], "b": demo["sweep"]}).to_dict()):
        legends = _legends(spec)
        assert legends and all(legend.get("orient") == "bottom" for legend in legends)


def test_html_charts_take_the_column_width(demo):
    """In the book every view is ``width: "container"``, fitted by the patch (calcasFit) and
    measured once drawn (calcasRefit); the mimebundle's spec keeps a fixed width."""
    from calcas.render.interactive import WIDTH
    ex = cascade_explorer(demo["curves"])
    snippet = ex.to_html()
    spec = json.loads(re.search(r"var spec = (\{.*\});\n", snippet).group(1).replace("<\\/", "</"))
    assert [v["width"] for v in spec["vconcat"]] == ["container", "container"]
    assert "options.patch = calcasFit" in snippet and ".then(calcasRefit)" in snippet
    assert 'style="display: block; width: 100%;' in snippet
    assert [v["width"] for v in ex.to_dict()["vconcat"]] == [WIDTH, WIDTH]


# ---------------------------------------------------------------------------------------
# calcas.render.plots

def test_grids_fit_the_column(demo):
    """cascade_grid and reliability_grid make figures at most COLUMN_INCHES wide at the inline
    dpi, two panels a row at most, one legend under the grid (not on any axes)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from calcas.render import plots
    curves = {f"pair {i}": demo["curves"] for i in range(5)}
    fig = plots.cascade_grid(curves, highlight_K={"pair 0": 4}, titles={"pair 1": "a long title " * 6})
    w, _ = fig.get_size_inches()
    assert w <= plots.COLUMN_INCHES + 1e-9 and fig.dpi == plots.INLINE_DPI
    drawn = [ax for ax in fig.axes if ax.axison]
    assert len(drawn) == 5 and len({round(ax.get_position().x0, 3) for ax in drawn}) == 2
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["RC", "UC", "CC", "oracle", "CC at the fixed K"]  # the K the chapter fixes, not one chosen
    fig.canvas.draw()
    width_px = fig.get_tightbbox().width * fig.dpi
    assert width_px <= 720  # shown at >= 95% of its size in the 688 px column
    plt.close(fig)

    table = calcas.reliability_table(demo["cal"], demo["correct"], 10)
    rows = [(m, {"cal": {"uncalibrated": table, "calibrated": table},
                 "test": {"uncalibrated": table, "calibrated": table}}) for m in ("a", "b", "c")]
    fig = plots.reliability_grid(rows)
    assert fig.get_size_inches()[0] <= plots.COLUMN_INCHES + 1e-9
    # the splits over the top row only, the models on the right margin: no title sits under another
    # panel's tick labels, where it would read as that panel's x-axis label
    assert [ax.get_title() for ax in fig.axes] == ["cal", "test"] + [""] * 4
    assert [t.get_text() for ax in fig.axes[1::2] for t in ax.texts] == ["a", "b", "c"]
    assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == [
        "uncalibrated", "calibrated"]
    plt.close(fig)
    # the single-panel functions still draw onto a given axes, legend outside the data
    fig, ax = plt.subplots()
    assert plots.cascade_plot(demo["curves"], ax=ax, highlight_K=3) is ax
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 <= ax.get_window_extent().y0  # under the axes
    plots.reliability_diagram({"uncalibrated": table, "calibrated": table}, ax=plt.subplots()[1])
    plots.cleaning_plot({"m2": demo["sweep"]}, {"m1": (0.1, 0.5)}, ax=plt.subplots()[1])
    plt.close("all")


def test_styled_tables():
    from calcas.render.tables import styled
    df = pd.DataFrame({"model": ["a", "b", None], "accuracy": [0.433453, 1.0, np.nan],
                       "count": [12500, 35, 7], "n": [1.0, 2500.0, np.nan], "nll": [12.3456, 1.2, 0.5],
                       "p": [1e-5, 3e-6, 0.0]})
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", styled(df).to_html())
    assert cells == ["a", "0.4335", "12,500", "1", "12.35", "1e-05",
                     "b", "1.0000", "35", "2,500", "1.200", "3e-06",
                     "—", "—", "7", "—", "0.5000", "0.0000"]
    assert styled(df, digits=3).to_html().count("0.433<") == 1
    html = styled(df).to_html()
    assert "row_heading" not in html  # a default RangeIndex is not printed
    # MultiIndex rows and columns: the index names do not print, missing index values read "—"
    mi = df.set_index(["model", "count"])
    mi.index.names = ["model", "count"]
    mi.columns = pd.MultiIndex.from_tuples([("fit", c) for c in mi.columns], names=["part", "quantity"])
    html = styled(mi).to_html()
    texts = re.findall(r">([^<>]+)</t[hd]>", html)
    assert "part" not in texts and "quantity" not in texts and "model" not in texts
    assert not {"nan", "NaN", "None"} & {t.strip() for t in texts}
    assert "12,500" in texts and "—" in texts and "0.4335" in texts


def test_styled_tables_escape_markup_in_cells_labels_and_headers():
    """Names come from users' files: a model named like markup shows as text (issue: model names
    ran script in the report's table headers)."""
    from calcas.render.tables import styled
    hostile = "<img src=x onerror=alert(1)>"
    df = pd.DataFrame({hostile: [0.5, 0.25], "name": ["<b onmouseover=alert(2)>x", "a & b"]},
                      index=pd.MultiIndex.from_tuples([("<script>alert(3)</script>", "k"), ("ok", hostile)]))
    html = styled(df).to_html()
    assert "<img" not in html and "<script" not in html and "<b " not in html
    texts = [t for t in re.findall(r">([^<>]*)</t[hd]>", html)]
    assert texts.count("&lt;img src=x onerror=alert(1)&gt;") == 2  # the header and a row label
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in texts and "a &amp; b" in texts
    assert "0.5000" in texts and "0.2500" in texts  # numbers keep their format


def test_markdown_prose_shows_markup_as_text():
    from calcas.render.page import markdown_html
    out = markdown_html("**m** <img src=x onerror=alert(1)> and <script>alert(2)</script>")
    assert out == ("<p><strong>m</strong> &lt;img src=x onerror=alert(1)&gt; and "
                   "&lt;script&gt;alert(2)&lt;/script&gt;</p>\n")
