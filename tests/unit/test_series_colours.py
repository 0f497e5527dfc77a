"""One mapping of series to colours (calcas.render.plots.SERIES_STYLE) for every figure and explorer:
a named series drawn by a static figure or a Vega-Lite explorer has the mapping's colour."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

import calcas  # noqa: E402
from calcas.chapters import estimators as est_chapter  # noqa: E402
from calcas.chapters import lab  # noqa: E402
from calcas.estimator_study import ESTIMATOR_NAMES  # noqa: E402
from calcas.render import interactive, plots  # noqa: E402

NAMED = set(plots.SERIES_STYLE) | set(plots.SERIES_ALIASES)


def _expected(name: str) -> str:
    return to_hex(plots.series_style(name)["color"])


# ---------------------------------------------------------------- checkers

def _spec_colours(spec: dict) -> list[tuple[str, str]]:
    """(series, colour) for every colour scale of the spec whose domain names series, and every
    inlined row that carries a series and its colour (the read-outs)."""
    pairs, stack = [], [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            enc = node.get("encoding", {})
            for channel in ("color", "fill", "stroke"):
                scale = enc.get(channel, {}).get("scale") if isinstance(enc.get(channel), dict) else None
                if isinstance(scale, dict) and "domain" in scale and "range" in scale:
                    pairs += list(zip(scale["domain"], scale["range"]))
            stack += list(node.values())
        elif isinstance(node, list):
            stack += node
    for rows in spec.get("datasets", {}).values():
        pairs += [(r["series"], r["colour"]) for r in rows if "series" in r and "colour" in r]
    return [(str(s), str(c)) for s, c in pairs]


def _check_spec(spec: dict) -> int:
    named = [(s, c) for s, c in _spec_colours(spec) if s in NAMED]
    for series, colour in named:
        assert to_hex(colour) == _expected(series), f"explorer: {series!r} drawn {colour}, mapping {_expected(series)}"
    return len(named)


def _figure_colours(fig: plt.Figure) -> list[tuple[str, str]]:
    pairs = []
    for ax in fig.axes:
        for line in ax.get_lines():
            pairs.append((line.get_label(), to_hex(line.get_color())))
        for coll in ax.collections:
            colours = coll.get_facecolor()
            if len(colours):
                pairs.append((coll.get_label(), to_hex(colours[0])))
    return pairs


def _check_figure(fig: plt.Figure) -> int:
    named = [(s, c) for s, c in _figure_colours(fig) if s in NAMED]
    for series, colour in named:
        assert colour == _expected(series), f"figure: {series!r} drawn {colour}, mapping {_expected(series)}"
    plt.close(fig)
    return len(named)


# ---------------------------------------------------------------- data

@pytest.fixture(scope="module")
def demo():
    sets = calcas.make_synthetic(3_000, accuracy=(0.6, 0.85), confidence_scale=(1.6, 1.0),
                                 names=("small", "large"), flip_rate=0.05, seed=3)
    return sets["small"], sets["large"]


def _reliability(confidence: np.ndarray, correct: np.ndarray) -> pd.DataFrame:
    return calcas.reliability_table(confidence, correct, n_bins=10)


@pytest.fixture(scope="module")
def curves(demo):
    small, large = calcas.align(*demo)
    cal = small.cal_mask(seed=0)
    raw_s, raw_l = small.raw_confidence(), large.raw_confidence()
    return calcas.cascade_curves(
        *({"raw_first": raw_s[m], "raw_second": raw_l[m], "calibrated_first": raw_s[m] ** 1.1,
           "calibrated_second": raw_l[m] ** 1.1, "correct_first": small.verified[m],
           "correct_second": large.verified[m]} for m in (cal, ~cal)), n_bins=10)


def _cleaning(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ks = np.arange(1, 8)
    flagged = np.cumsum(rng.integers(1, 20, len(ks)))
    return pd.DataFrame({"K": ks, "n_flagged": flagged, "detection_rate": flagged / n, "n_rated": flagged,
                         "precision": np.linspace(0.9, 0.4, len(ks))})


# ---------------------------------------------------------------- figures

def test_every_named_series_has_a_colour_a_dash_and_a_marker():
    for name, style in plots.SERIES_STYLE.items():
        assert {"color", "ls", "marker", "lw"} <= set(style), name
    for alias, name in plots.SERIES_ALIASES.items():
        assert name in plots.SERIES_STYLE, alias
        assert plots.series_style(alias) == plots.series_style(name)


def test_figures_draw_named_series_in_the_mappings_colours(demo, curves):
    small, _ = demo
    correct = small.verified
    tables = {"uncalibrated": _reliability(small.raw_confidence(), correct),
              "calibrated": _reliability(np.clip(small.raw_confidence() * 0.9, 0, 1), correct),
              "T fitted on true labels": _reliability(np.clip(small.raw_confidence() * 0.95, 0, 1), correct)}
    drawn = _check_figure(plots.reliability_grid([("a", {"cal": tables, "test": tables}), ("b", {"cal": tables})]))
    drawn += _check_figure(plots.cascade_grid({"x → y": curves, "z": curves}, highlight_K=4))
    panels = {"a = 0": pd.DataFrame({e: [0.03, 0.02] for e in ESTIMATOR_NAMES.values()}, index=[500, 2000])}
    drawn += _check_figure(plots.line_panels(panels, xlabel="n", ylabel="bias", log_x=True))
    ax = plots.cleaning_plot({"method 2": _cleaning(10_000, 1)},
                             {"method 1": (0.05, 0.8), "method 3": (0.04, 0.85), "Confident Learning": (0.03, 0.9)})
    drawn += _check_figure(ax.figure)
    sweep = pd.DataFrame({"k": [1, 2, 3], "precision": [0.1, 0.2, 0.3], "recall": [0.9, 0.6, 0.3]})
    drawn += _check_figure(plots.threshold_sweep_figure({"any annotated problem": sweep, "a wrong ground truth": sweep},
                                                        threshold="k", threshold_label="k"))
    assert drawn >= 15


def test_the_estimators_chapter_and_the_lab_agree_on_plugin_and_debiased():
    # the chapter's figure names its columns by ESTIMATOR_NAMES, the lab its read-outs by ESTIMATOR_LABELS
    for key, label in lab.ESTIMATOR_LABELS.items():
        assert plots.series_style(label)["color"] == plots.series_style(ESTIMATOR_NAMES[key])["color"]
    assert plots.series_style("plug-in")["color"] != plots.series_style("debiased")["color"]
    assert est_chapter.figures  # the chapter draws with plots.line_panels, checked above


# ---------------------------------------------------------------- explorers

def test_explorers_draw_named_series_in_the_mappings_colours(demo, curves):
    from calcas.lab import binning_sweep
    small, _ = demo
    correct = small.verified
    bins, summary = [], []
    for series, conf in (("uncalibrated", small.raw_confidence()), ("calibrated", np.clip(small.raw_confidence() * 0.9, 0, 1))):
        b, s = binning_sweep(conf, correct, n_bins=[5, 10], binnings=("equal_count",))
        bins.append(b.assign(series=series))
        summary.append(s.assign(series=series, distinct=b.groupby("N").size().reindex(s["N"]).to_numpy()))
    drawn = _check_spec(interactive.reliability_explorer(pd.concat(bins), pd.concat(summary), default=10).to_dict())
    drawn += _check_spec(interactive.cascade_explorer(curves, default=4).to_dict())
    drawn += _check_spec(interactive.cleaning_explorer({"method 1": _cleaning(5_000, 2),
                                                        "any annotated problem": _cleaning(5_000, 3)}).to_dict())
    assert drawn >= 8


def test_the_labs_sample_size_explorer_uses_the_mapping():
    sizes = lab.log_sizes(100, 1000, steps_per_decade=4)
    sweep = lab.sample_size_sweep(np.linspace(0.5, 0.99, 400), sizes=sizes, draws=3, n_bins=10, seed=0)
    spec = lab.sample_size_explorer(sweep, steps_per_decade=4).to_dict()
    assert _check_spec(spec) >= 2 * len(sizes)


def test_the_check_catches_a_wrong_colour(curves):
    spec = interactive.cascade_explorer(curves, default=4).to_dict()
    for rows in spec["datasets"].values():
        for r in rows:
            if r.get("series") == "CC" and "colour" in r:
                r["colour"] = plots.OKABE_ITO["vermillion"]
    with pytest.raises(AssertionError, match="'CC' drawn"):
        _check_spec(spec)
