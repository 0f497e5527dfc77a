"""calcas.render.interactive.chain_explorer: the spec carries both controls and exactly the chains
chapter's numbers (a small synthetic chain through calcas.chapters.chains.compute), and names a
configuration that keeps every bin of one model as that model alone."""
from __future__ import annotations


import pytest

pytest.importorskip("altair")

from calcas import chain_study  # noqa: E402
from calcas.chapters import chains  # noqa: E402
from calcas.render.interactive import READOUT_CHARS, chain_explorer  # noqa: E402
from test_chain_study import _chain  # noqa: E402
from test_interactive import _params, _readouts, _table  # noqa: E402

# the study's grid: "k|e" keys are max_drop and delta x 10^4
DROPS = [round(0.005 * i, 3) for i in range(11)]


@pytest.fixture(scope="module")
def chain():
    """One chain's results.json entry; 4000 rows certify a cheaper cascade at the larger max_drop."""
    facts = chains.compute({"toy": _chain(n=4000)}, n_splits=2, max_drops=(0.01,), budget=0.01)
    return facts.chains["toy"].to_dict()


def _walk(node):
    """Every dict inside a spec (the inlined datasets left out)."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(v for k, v in node.items() if k != "datasets")
        elif isinstance(node, list):
            stack.extend(node)


def _filters(spec: dict) -> list[tuple[dict, str]]:
    """(view, its filter expression) for every filtered view."""
    return [(view, t["filter"]) for view in _walk(spec) for t in view.get("transform", [])
            if isinstance(t.get("filter"), str)]


def test_both_controls_are_bound_and_start_at_the_pages_guarantee(chain):
    params = _params(chain_explorer(chain).to_dict())
    drop, delta = params["max_drop"], params["delta"]
    assert drop["bind"] == {"input": "range", "min": 0.0, "max": 0.05, "step": 0.005,
                            "name": "max_drop, the accuracy the cascade may lose "}
    assert delta["bind"] == {"input": "select", "options": list(chain_study.GRID_DELTAS),
                             "name": "δ, the chance the guarantee may fail "}
    assert (drop["value"], delta["value"]) == (0.03, 0.1)
    # a guarantee the grid lacks starts at the nearest offered values
    params = _params(chain_explorer(chain, max_drop=0.0121, delta=0.16).to_dict())
    assert (params["max_drop"]["value"], params["delta"]["value"]) == (0.01, 0.2)


def test_every_grid_row_has_its_readout(chain):
    spec = chain_explorer(chain).to_dict()
    text = _readouts(spec, "key").set_index("key")
    grid = chain["selection_grid"]
    assert len(text) == len(grid) == len(DROPS) * len(chain_study.GRID_DELTAS)
    seen = set()
    for r in grid:
        got = text.loc[f"{round(r['max_drop'] * 1e4)}|{round(r['delta'] * 1e4)}"]
        head = f"max_drop = {r['max_drop']:.3f}, δ = {r['delta']:.2f}: "
        if r["answering"] == "2":
            assert got["text"] == head + "calls m2 alone: nothing certified cheaper"
        else:
            calls = " → ".join(f"m{i}" for i in r["answering"].split("+"))
            calls += " alone" if "+" not in r["answering"] else ""
            assert got["text"] == head + (f"calls {calls}, cost {r['cost_share']:.2f} of m2's, test accuracy "
                                          f"{r['accuracy']:.3f} (lost {r['lost']:.3f})")
        assert (got["cost_share"], got["accuracy"], got["lost"]) == (r["cost_share"], r["accuracy"], r["lost"])
        seen.add(r["stages"])
    assert "2" in seen and len(seen) > 1  # both kinds of read-out are checked
    lines = _table(spec, "line")
    assert (lines["line"].str.len() <= READOUT_CHARS).all(), lines["line"].str.len().max()
    for _, part in lines.groupby("key"):
        assert part["y"].is_unique


def test_selected_point_and_readout_follow_both_controls(chain):
    spec = chain_explorer(chain).to_dict()
    both = [(view, f) for view, f in _filters(spec) if "max_drop" in f and "delta" in f]
    # the selected point and the read-out, each matched on the rounded values (float noise never misses)
    assert len(both) == 2, _filters(spec)
    for _, f in both:
        assert "round((max_drop * 10000))" in f and "round((delta * 10000))" in f
    point = [view for view, _ in both if view.get("mark", {}).get("type") == "point"]
    assert len(point) == 1 and point[0]["mark"]["size"] >= 200 and point[0]["mark"]["filled"]
    assert point[0]["encoding"]["x"]["field"] == "cost_share" and point[0]["encoding"]["y"]["field"] == "accuracy"
    drawn = [rows for rows in spec["datasets"].values() if rows and "calls" in rows[0] and "line" not in rows[0]]
    assert len(drawn) == 1 and len(drawn[0]) == len(chain["selection_grid"])
    alone = {r["colour"] for r in drawn[0] if r["stages"] == "2"}
    assert alone == {"#000000"}  # the last model alone: black, as its diamond


def test_rule_is_the_last_accuracy_less_max_drop(chain):
    spec = chain_explorer(chain).to_dict()
    last = [s["accuracy"] for s in chain["singles"] if s["model"] == 2][0]
    rule = _table(spec, "threshold")
    assert rule["max_drop"].tolist() == DROPS
    assert rule["threshold"].tolist() == pytest.approx([last - d for d in DROPS], abs=1e-6)
    assert set(rule["label"]) == {"max_drop below m2"}
    moving = [f for view, f in _filters(spec) if view.get("mark", {}).get("type") == "rule"]
    assert moving == ["(datum.drop_key === round((max_drop * 10000)))"]


def test_frontiers_singles_and_axes(chain):
    spec = chain_explorer(chain, title="toy").to_dict()
    frontier = _table(spec, "configuration")
    assert list(dict.fromkeys(frontier["series"])) == ["m0 → m1 → m2", "m0 → m2", "m1 → m2"]
    whole = frontier[frontier["series"] == "m0 → m1 → m2"]
    assert whole["cost_share"].tolist() == chain["frontiers"]["0+1+2"]["cost_share"]
    singles = _table(spec, "model")
    assert singles["model"].tolist() == ["m0", "m1", "m2"]
    assert singles["accuracy"].tolist() == [s["accuracy"] for s in chain["singles"]]
    titles = {v["encoding"][c]["title"] for v in _walk(spec) for c in ("x", "y")
              if isinstance(v.get("encoding", {}).get(c), dict) and "title" in v["encoding"][c]}
    assert titles == {"cost per item, share of m2's", "test accuracy"}
    assert {"diamond"} <= {v["mark"].get("shape") for v in _walk(spec) if isinstance(v.get("mark"), dict)}
    assert chain_explorer(chain).name.startswith("calcas chain explorer")


def test_readout_of_a_hand_written_chain():
    """A cascade more accurate than the last model reads "gained"; float noise in the grid and a
    two-model chain (one frontier, no legend) are fine."""
    chain = {"models": ["small", "big"],
             "singles": [{"model": 0, "cost_share": 0.1, "accuracy": 0.7}, {"model": 1, "cost_share": 1.0,
                                                                           "accuracy": 0.9}],
             "frontiers": {"0+1": {"cost_share": [0.1, 0.5, 1.1], "accuracy": [0.7, 0.88, 0.9]}},
             "selection_grid": [{"max_drop": 0.015000000000000001, "delta": 0.1, "stages": "0+1", "cost_share": 0.5,
                                 "accuracy": 0.905, "lost": -0.005},
                                {"max_drop": 0.0, "delta": 0.1, "stages": "1", "cost_share": 1.0, "accuracy": 0.9,
                                 "lost": 0.0}]}
    spec = chain_explorer(chain, max_drop=0.02).to_dict()
    text = _readouts(spec, "key").set_index("key")["text"]
    assert text["150|1000"] == ("max_drop = 0.015, δ = 0.10: calls small → big, cost 0.50 of big's, "
                                "test accuracy 0.905 (gained 0.005)")
    assert text["0|1000"] == "max_drop = 0.000, δ = 0.10: calls big alone: nothing certified cheaper"
    # a configuration that keeps every bin of the first model never asks the last: that model alone
    chain["selection_grid"].append({"max_drop": 0.03, "delta": 0.1, "stages": "0+1", "answering": "0",
                                    "cost_share": 0.1, "accuracy": 0.7, "lost": 0.2})
    text = _readouts(chain_explorer(chain).to_dict(), "key").set_index("key")["text"]
    assert text["300|1000"] == ("max_drop = 0.030, δ = 0.10: calls small alone, cost 0.10 of big's, "
                                "test accuracy 0.700 (lost 0.200)")
    params = _params(spec)
    assert params["max_drop"]["value"] == 0.015 and params["max_drop"]["bind"]["step"] == 0.015
    assert params["delta"]["bind"]["input"] == "select"


@pytest.mark.parametrize("key", ["models", "singles", "frontiers", "selection_grid"])
def test_missing_keys_are_named(chain, key):
    with pytest.raises(ValueError, match=rf"chain: missing key '{key}'"):
        chain_explorer({k: v for k, v in chain.items() if k != key})


def test_bad_entries_are_named(chain):
    row = {k: v for k, v in chain["selection_grid"][3].items() if k != "lost"}
    with pytest.raises(ValueError, match=r"chain\['selection_grid'\]\[3\]: missing key 'lost'"):
        chain_explorer({**chain, "selection_grid": chain["selection_grid"][:3] + [row]})
    with pytest.raises(ValueError, match=r"chain\['frontiers'\]\['0\+2'\]: missing keys 'cost_share', 'accuracy'"):
        chain_explorer({**chain, "frontiers": {**chain["frontiers"], "0+2": {}}})
    with pytest.raises(ValueError, match="selection_grid' is empty"):
        chain_explorer({**chain, "selection_grid": []})
    with pytest.raises(ValueError, match="no entry for the last model 'm2'"):
        chain_explorer({**chain, "singles": chain["singles"][:2]})


# ---------------------------------------------------------------- the built page in Chromium


def test_a_control_left_out_is_unbound_and_stays_at_its_start(chain):
    params = _params(chain_explorer(chain, controls=("max_drop",), delta=0.05).to_dict())
    assert "bind" in params["max_drop"] and "bind" not in params["delta"] and params["delta"]["value"] == 0.05
    params = _params(chain_explorer(chain, controls=(), max_drop=0.02).to_dict())
    assert "bind" not in params["max_drop"] and "bind" not in params["delta"] and params["max_drop"]["value"] == 0.02
    with pytest.raises(ValueError, match="controls: expected 'max_drop' and/or 'delta', got \\['K'\\]"):
        chain_explorer(chain, controls=("K",))


def test_threshold_paths_are_drawn_as_lines_with_the_certified_point_on_one(chain):
    spec = chain_explorer(chain, curves="paths").to_dict()
    marks = [v for v in _walk(spec) if isinstance(v.get("mark"), dict) and v["mark"].get("type") == "line"]
    assert any(m["mark"].get("interpolate") == "linear" for m in marks)
    assert not any(m["mark"].get("interpolate") == "step-after" for m in marks)
    # every certified point of the grid is one of the drawn configurations
    points = {(round(c, 9), round(a, 9)) for p in chain["paths"].values() for c, a in zip(p["cost_share"], p["accuracy"])}
    certified = [g for g in chain["selection_grid"] if g["stages"] != "2"]
    assert certified and all((round(g["cost_share"], 9), round(g["accuracy"], 9)) in points for g in certified)
    with pytest.raises(ValueError, match="curves: expected 'frontiers' or 'paths', got 'K'"):
        chain_explorer(chain, curves="K")
