"""Notebook parameters: the declarations in calcas.params agree with every notebook's
parameters cell, and bad parameters stop a run with one message naming them."""
import json
import math
from pathlib import Path

import pytest

from calcas.params import SECTIONS, ParameterError, validate_parameters, write_results

ROOT = Path(__file__).resolve().parents[2]
papermill = pytest.importorskip("papermill")


@pytest.mark.parametrize("section", list(SECTIONS))
def test_notebook_parameters_cell_matches_declarations(section):
    found = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{section}.ipynb"))
    declared = SECTIONS[section]
    assert list(found) == list(declared)
    for name, p in declared.items():
        assert found[name]["inferred_type_name"] == p.type.__name__
        assert eval(found[name]["default"]) == p.default  # the cell's literal, as papermill reads it
        assert found[name]["help"] == p.help


def _namespace(section, **changes):
    ns = {name: p.default for name, p in SECTIONS[section].items()}
    ns.update(changes)
    return ns


def test_valid_parameters_pass_and_come_back(tmp_path):
    ns = _namespace("05_results", results_dir=str(tmp_path))
    assert validate_parameters("05_results", ns, before=set()) == ns


def test_unknown_name_is_refused():
    ns = _namespace("05_results", n_binz=3)
    with pytest.raises(ParameterError, match=r"n_binz: not a parameter of 05_results"):
        validate_parameters("05_results", ns, before=set())


def test_names_defined_before_the_parameters_cell_are_not_parameters():
    ns = _namespace("05_results", calcas=object())
    validate_parameters("05_results", ns, before={"calcas"})


@pytest.mark.parametrize("name, value, message", [
    ("n_bins", "15", r"n_bins: expected int, got str '15'"),
    ("n_bins", 2.5, r"n_bins: expected int, got float"),
    ("n_bins", True, r"n_bins: expected int, got bool"),
    ("n_bins", 0, r"n_bins: must lie in \[1, None\], got 0"),
    ("cal_fraction", 1.5, r"cal_fraction: must lie in \(0.0, 1.0\), got 1.5"),
    ("cal_fraction", 0.0, r"cal_fraction: must lie in \(0.0, 1.0\), got 0.0"),  # no cal rows at all
    ("cal_fraction", 1, r"cal_fraction: must lie in \(0.0, 1.0\), got 1"),  # no test rows at all
    ("seed", -1, r"seed: must lie in \[0, None\], got -1"),
    ("records", [], r"records: needs at least 1 entry, got \[\]"),
    ("cal_fraction", math.nan, r"cal_fraction: must lie in"),
    ("calibration", "isotonic", r"calibration: expected one of \['auto', 'temperature', 'platt'\]"),
    ("records", ["no/such/file.parquet"], r"records: file\(s\) not found: no/such/file.parquet"),
    ("records", "one.parquet", r"records: expected list, got str"),
])
def test_bad_values_are_refused_with_the_name(name, value, message):
    ns = _namespace("02_calibration", **{name: value})
    with pytest.raises(ParameterError, match=message):
        validate_parameters("02_calibration", ns, before=set())


@pytest.mark.parametrize("section, name", [("02_calibration", "records"), ("04_cleaning", "experts"),
                                           ("06_mmlu_redux", "table")])
def test_a_folder_is_not_a_record_set_file(tmp_path, section, name):
    value = str(tmp_path) if name == "table" else [str(tmp_path)]
    ns = _namespace(section, **{name: value})
    with pytest.raises(ParameterError, match=rf"{name}: expected record-set files, got folder\(s\): {tmp_path}"):
        validate_parameters(section, ns, before=set())


def test_empty_pairs_and_experts_are_refused():
    for section, name, empty in (("03_cascading", "pairs", {}), ("04_cleaning", "experts", []),
                                 ("01_extract", "models", [])):
        with pytest.raises(ParameterError, match=rf"{name}: needs at least 1 entry"):
            validate_parameters(section, _namespace(section, **{name: empty}), before=set())


def test_every_problem_is_listed_in_one_message():
    ns = _namespace("02_calibration", n_bins="x", seed=None, extra=1)
    with pytest.raises(ParameterError) as err:
        validate_parameters("02_calibration", ns, before=set())
    text = str(err.value)
    assert text.count("\n") >= 3 and "n_bins" in text and "seed" in text and "extra" in text


def test_unknown_section():
    with pytest.raises(ParameterError, match="section: unknown notebook"):
        validate_parameters("06_nothing", {}, before=set())


def test_write_results_is_deterministic_and_json_clean(tmp_path):
    import numpy as np
    results = {"b": np.float64(0.123456789), "a": [1, np.int64(2)], "nan": float("nan"),
               "arr": np.array([0.5, 1 / 3])}
    first = write_results(tmp_path / "one", results).read_bytes()
    second = write_results(tmp_path / "two", dict(reversed(list(results.items())))).read_bytes()
    assert first == second
    assert json.loads(first) == {"a": [1, 2], "arr": [0.5, 0.333333], "b": 0.123457, "nan": None}


def test_wrong_papermill_parameter_stops_the_notebook_with_one_clear_error(tmp_path):
    """Papermill only warns about an unknown parameter; the notebook's own check stops it."""
    from papermill.exceptions import PapermillExecutionError
    with pytest.raises(PapermillExecutionError) as err:
        papermill.execute_notebook(str(ROOT / "notebooks" / "05_results.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"results_dirr": "x"}, cwd=str(tmp_path), kernel_name="python3",
                                   progress_bar=False)
    assert err.value.ename == "ParameterError"
    assert "results_dirr: not a parameter of 05_results" in err.value.evalue


def test_cascade_pairs_are_checked():
    ns = _namespace("03_cascading", pairs={"ok": ["a.parquet"], "x": ["b.parquet", "c.parquet"]})
    with pytest.raises(ParameterError) as err:
        validate_parameters("03_cascading", ns, before=set())
    assert "pairs: each entry must be [first, second], not so for ['ok']" in str(err.value)
    assert "pairs: file(s) not found: a.parquet, b.parquet, c.parquet" in str(err.value)

