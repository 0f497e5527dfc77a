"""What every chapter shares: facts that round-trip ``results.json``, estimates that name the
interval they come from, verdicts decided only from intervals whose coverage the estimator
study measures, the paper's claims per data set, and the formatting the prose uses.

A chapter module has three steps (see ``calcas/chapters/__init__.py``):

- ``compute(...) -> Facts``: every number, curve and verdict the chapter shows, in a frozen
  dataclass built from :class:`Facts`, so ``to_dict()`` is the chapter's ``results.json`` and
  ``from_dict()`` reads it back;
- verdicts are :class:`Verdict` fields of the facts, made by :func:`decide` from an
  :class:`Estimate` whose interval is one of :data:`DECIDING_INTERVALS`;
- ``prose(facts) -> dict[str, str]`` phrases the facts: no arithmetic, no thresholds, the
  paper's numbers only from :func:`paper_reference`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import numpy as np

from ..metrics import min_detectable_ece
from ..params import write_results
from ..records import Records, read_records, record_set_names

REFERENCE_FILE = Path(__file__).resolve().parent.parent / "data" / "paper_reference.json"

# ---------------------------------------------------------------------------- facts

F = TypeVar("F", bound="Facts")


class Facts:
    """Base of a chapter's frozen dataclasses: ``to_dict()`` gives plain JSON-ready data,
    ``from_dict()`` rebuilds the dataclass from it, guided by the field annotations.

    Field types may be ``int``, ``float``, ``str``, ``bool``, ``Any``, another ``Facts``
    subclass, ``X | None``, ``list[X]``, ``tuple[X, ...]`` and ``dict[str, X]``, nested.
    ``results.json`` stores NaN as null (:func:`calcas.params.write_results`), so a float that
    can be NaN reads back as None.
    """

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, numbers, strings, None): what ``results.json`` holds."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[F], data: Mapping[str, Any]) -> F:
        """The dataclass from :meth:`to_dict`'s data (or ``results.json`` read back); unknown
        keys are refused, missing ones take the field's default."""
        hints = _hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        return cls(**{name: _typed(hints[name], data[name]) for name in known if name in data})


def write_facts(facts: F, output_dir: str | Path) -> F:
    """Write ``facts`` as ``output_dir/results.json`` and return them as the file holds them
    (floats rounded to 6 decimals, NaN as None): a page built from the returned facts shows
    exactly its file's numbers, and regenerating its prose from the file gives the same text."""
    path = write_results(output_dir, facts.to_dict())
    return type(facts).from_dict(json.loads(path.read_text()))


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _plain(x: Any) -> Any:
    if isinstance(x, Facts):
        return x.to_dict()
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _typed(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _typed(options[0], value)
        for option in options:  # the first that reads the value (Facts before plain types)
            if isinstance(option, type) and issubclass(option, Facts) and isinstance(value, Mapping):
                return option.from_dict(value)
        return value
    if isinstance(hint, type) and issubclass(hint, Facts):
        return hint.from_dict(value)
    if origin in (dict, Mapping):
        return {k: _typed(args[1], v) for k, v in value.items()}
    if origin in (list, Sequence):
        return [_typed(args[0], v) for v in value]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], v) for v in value)
        return tuple(_typed(a, v) for a, v in zip(args, value))
    if hint is float:
        return float(value)
    if hint is int:
        return int(value)
    return value


# ---------------------------------------------------------------------------- estimates and verdicts

#: The intervals a verdict may be decided from, each with what it covers. The estimator study
#: (chapter "How wrong can an ECE be?", :func:`calcas.estimator_study.deciding_coverage`)
#: measures the coverage of every one of them; a test fails if any row is below 90%.
DECIDING_INTERVALS: dict[str, str] = {
    "ece_interval": "the true ECE of one model (calcas.ece_interval)",
    "ece_difference_interval": "the change in true ECE between two confidences of the same rows "
                               "(calcas.ece_difference_interval)",
    "ece_halves_interval": "the difference in true ECE between two disjoint halves, from their two "
                           "ece_intervals (difference_of_intervals)",
    "paired_difference_interval": "the difference of two accuracies on the same rows "
                                  "(calcas.paired_difference_interval)",
    "proportion_interval": "a proportion: an accuracy, a precision, a violation rate "
                           "(Wilson score, calcas.proportion_interval)",
    "proportion_difference_interval": "the difference of two proportions measured on different rows, from their "
                                      "two Wilson intervals (difference_of_intervals)",
}

#: What :func:`decide` can conclude: the interval lies wholly above the reference, wholly
#: below it, or contains it.
OUTCOMES = ("above", "below", "within")


@dataclasses.dataclass(frozen=True)
class Estimate(Facts):
    """A number with its interval and the name of the method that made the interval
    (a key of :data:`DECIDING_INTERVALS`, or another name for intervals that only inform)."""

    value: float | None
    low: float | None
    high: float | None
    interval: str

    @classmethod
    def of(cls, triple: Sequence[Any], interval: str) -> "Estimate":
        """From ``(value, low, high)``, as calcas's interval functions return it."""
        value, low, high = (_number(x) for x in triple)
        return cls(value, low, high, interval)

    def as_list(self) -> list[float | None]:
        """``[value, low, high]``."""
        return [self.value, self.low, self.high]


def _number(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclasses.dataclass(frozen=True)
class Verdict(Facts):
    """A decision and the numbers that made it: where ``estimate``'s interval lies against
    ``reference`` (``"above"``, ``"below"`` or ``"within"``; see :func:`decide`).

    Only an interval in :data:`DECIDING_INTERVALS` may decide: building a verdict from any
    other (the percentile bootstrap of the ECE, say) raises ``ValueError``.
    """

    outcome: str
    estimate: Estimate
    reference: float = 0.0

    def __post_init__(self) -> None:
        if self.estimate.interval not in DECIDING_INTERVALS:
            raise ValueError(f"estimate: a verdict cannot rest on the {self.estimate.interval!r} interval, whose "
                             f"coverage the estimator study does not measure; use one of {sorted(DECIDING_INTERVALS)}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome: expected one of {OUTCOMES}, got {self.outcome!r}")


def decide(estimate: Estimate, reference: float = 0.0) -> Verdict:
    """"above" when the whole interval lies above ``reference``, "below" when it lies below,
    else "within" (the data cannot tell the value from the reference; so too when an end is
    unknown)."""
    low, high = estimate.low, estimate.high
    if low is not None and low > reference:
        outcome = "above"
    elif high is not None and high < reference:
        outcome = "below"
    else:
        outcome = "within"
    return Verdict(outcome, estimate, float(reference))


def difference_of_intervals(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """``a - b`` from two ``(value, low, high)`` triples: ``(a0 - b0, a_low - b_high,
    a_high - b_low)``. Whenever both intervals hold their truths, this one holds the true
    difference; the estimator study measures how often it does (see
    :func:`calcas.ece_difference_interval`)."""
    return a[0] - b[0], a[1] - b[2], a[2] - b[1]


def estimate_difference(a: Estimate, b: Estimate, interval: str) -> Estimate:
    """``a - b`` by :func:`difference_of_intervals`, as an :class:`Estimate` of the named
    interval (a key of :data:`DECIDING_INTERVALS` for two Wilson intervals:
    ``"proportion_difference_interval"``); every end None where either estimate lacks one (a
    proportion of nothing), which :func:`decide` reads as "within"."""
    if None in a.as_list() or None in b.as_list():
        return Estimate(None, None, None, interval)
    return Estimate.of(difference_of_intervals(a.as_list(), b.as_list()), interval)


#: How the data stand to a claim of the paper, from the verdict whose estimate is oriented so
#: that the claim reads "above zero".
AGREEMENT = {"above": "agrees", "below": "disagrees", "within": "cannot_tell"}


def claim_agreement(verdict: Verdict | None) -> str:
    """:data:`AGREEMENT` of ``verdict`` ("agrees", "disagrees", "cannot_tell"), or
    "not_measured" where there is no verdict (the data lack what the claim needs)."""
    return "not_measured" if verdict is None else AGREEMENT[verdict.outcome]


# ---------------------------------------------------------------------------- the paper's claims

@lru_cache(maxsize=1)
def paper_reference() -> dict[str, Any]:
    """The paper's reported numbers and claims, per data set (``calcas/data/paper_reference.json``)."""
    return json.loads(REFERENCE_FILE.read_text())


def reference_dataset(dataset: str | None) -> str | None:
    """The paper's name for a data set a record set's manifest names (``"imagenet"``,
    ``"mmlu"``, ``"arc"``, ...), or None where the paper makes no claim about it."""
    d = (dataset or "").lower().replace("-", "_")
    keys = paper_reference()["datasets"]
    return next((k for k in keys if k in d), None)


def dataset_label(dataset: str | None) -> str:
    """A data set as a reader knows it: the paper's name ("ImageNet-1k val", "MMLU"), "MNIST-1D"
    for the data set trained here, else the record sets' own name ("—" when none)."""
    key = reference_dataset(dataset)
    if key is not None:
        return paper_reference()["datasets"][key]["name"]
    if dataset and dataset.lower().replace("-", "").replace("_", "") == "mnist1d":
        return "MNIST-1D"
    return dataset or "—"


# ---------------------------------------------------------------------------- inputs

def load_record_sets(record_sets: Sequence[Any]) -> tuple[list[Records], list[str]]:
    """Records and display names from paths or Records (names from the manifests and paths)."""
    sets = [r if isinstance(r, Records) else read_records(r) for r in record_sets]
    paths = [f"{r.manifest.get('model') or 'records'}_{i}" if isinstance(p, Records) else str(p)
             for i, (r, p) in enumerate(zip(sets, record_sets))]
    return sets, record_set_names(sets, paths)


def exercises_shown(sets: Sequence[Records]) -> bool:
    """Whether a chapter shows its exercises: where every record set carries logits and one
    carries ground truth of its labels (``valid_labels`` or ``is_noisy``).

    The exercises' labels must be unique in a book, and each notebook runs for several
    chapters; the book's own MNIST-1D chapters (and the paper profile's first chapter of each
    kind) meet this condition, the public chapters, on top-1 confidences, do not. The
    solutions' code still runs everywhere (papermill executes it before the chapter drops the
    cells).
    """
    return all(r.logits is not None for r in sets) and \
        any(r.valid_labels is not None or r.is_noisy is not None for r in sets)


def detectable_ece(n: int, n_bins: int, accuracy: float) -> float | None:
    """:func:`calcas.min_detectable_ece` of a split: its ``n``, the bins that exist on it and
    its accuracy; None where the accuracy is 0 or 1 (no bin's accuracy varies)."""
    if not 0.0 < accuracy < 1.0:
        return None
    return min_detectable_ece(n, n_bins, accuracy=accuracy)


def largest_tie_share(confidence: np.ndarray) -> tuple[float, float]:
    """The most repeated confidence value and the share of samples holding it."""
    values, counts = np.unique(confidence, return_counts=True)
    i = int(np.argmax(counts))
    return float(values[i]), float(counts[i] / len(confidence))


def table_columns(table: Any, columns: Sequence[str]) -> dict[str, list]:
    """Columns of a DataFrame as plain lists (the form curves take in facts)."""
    return {c: table[c].tolist() for c in columns if c in table.columns}


# ---------------------------------------------------------------------------- phrasing

def fmt(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals; "—" for None or NaN."""
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def pct(x: float | None) -> str:
    """A share as a whole percentage ("40%"; never "-0%")."""
    return "—" if x is None else f"{round(100 * x)}%"


def interval_text(e: Estimate | Sequence[float | None], digits: int = 3) -> str:
    """"0.123 [0.110, 0.135]"."""
    v = e.as_list() if isinstance(e, Estimate) else list(e)
    return f"{fmt(v[0], digits)} [{fmt(v[1], digits)}, {fmt(v[2], digits)}]"


def signed_interval_text(e: Estimate | Sequence[float | None], digits: int = 4) -> str:
    """"+0.0123 [+0.0010, +0.0240]"."""
    v = e.as_list() if isinstance(e, Estimate) else list(e)
    return " ".join([signed(v[0], digits), f"[{signed(v[1], digits)}, {signed(v[2], digits)}]"])


def table_interval(e: Estimate | Sequence[float | None] | None, digits: int | None = None, *,
                   signed: bool = False) -> str:
    """An estimate as one table cell, with the digits the prose gives it (3, or 4 with a sign):
    "0.123 [0.110,\u00a00.135]". The space inside the brackets does not break, so a narrow
    column wraps the cell only between the value and its interval. "—" for None."""
    if e is None or (e.value if isinstance(e, Estimate) else list(e)[0]) is None:
        return "—"
    if signed:
        text = signed_interval_text(e, 4 if digits is None else digits)
    else:
        text = interval_text(e, 3 if digits is None else digits)
    return text.replace(", ", ",\u00a0")


def signed(x: float | None, digits: int = 4) -> str:
    """A number with its sign and ``digits`` decimals ("+0.0123"); never "-0.0000"; "—" for None."""
    return "—" if x is None else f"{round(x, digits) + 0.0:+.{digits}f}"  # + 0.0: never "-0.000"


def term(text: str, entry: str | None = None, *, link: bool = True) -> str:
    """``text`` linked to its entry of the book's glossary (book/glossary.md) with MyST's
    ``{term}`` role: ``{term}`text <entry>``` (``{term}`text``` when ``entry`` is None or
    ``text``). With ``link=False`` the plain ``text``, for prose rendered outside Sphinx (the
    own-data report, :mod:`calcas.user_report`), where a role would show as raw text."""
    if not link:
        return text
    return f"{{term}}`{text}`" if entry is None or entry == text else f"{{term}}`{text} <{entry}>`"


def names_list(names: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
