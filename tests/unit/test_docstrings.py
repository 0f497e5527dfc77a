"""Every public function, class and method of calcas says what it takes and returns."""
import importlib
import inspect
import pkgutil

import pytest

import calcas

MODULES = sorted(m.name for m in pkgutil.walk_packages(calcas.__path__, "calcas.") if not m.name.endswith(".__main__"))


def _public(module):
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            yield name, obj
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    yield f"{name}.{attr}", member


@pytest.mark.parametrize("module_name", MODULES)
def test_public_objects_have_docstrings(module_name):
    module = importlib.import_module(module_name)
    missing = [name for name, obj in _public(module) if not inspect.getdoc(obj)]
    assert not missing, f"{module_name}: no docstring on {missing}"


def test_array_functions_say_logits_or_probabilities():
    """The functions that take model outputs name which kind they want."""
    for fn in (calcas.softmax, calcas.max_prob_confidence, calcas.fit_temperature, calcas.ece,
               calcas.reliability_table, calcas.nll, calcas.flag_class_threshold, calcas.confident_learning_flags,
               calcas.cascade_curve, calcas.advantage_bins, calcas.confident_disagreement_level):
        doc = inspect.getdoc(fn).lower()
        assert "logit" in doc or "probabilit" in doc, fn.__name__
