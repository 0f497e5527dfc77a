"""Verifiers that turn a model's completion into ``verified`` in [0, 1] (SPEC §0 record sets).

GSM8K completions are checked by their final number; generated code (MBPP, BigCodeBench) by
running it with its tests, *only* through :func:`calcas.extract.sandbox.run_untrusted`, never in
the calling process.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from typing import Callable, Sequence

import numpy as np

from .sandbox import run_untrusted

__all__ = ["gsm8k_final_number", "gsm8k_verify", "extract_code", "verify_batch", "verify_code"]

# a number with optional sign, thousands separators ("1,234,567") and decimals
_NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUMBER_RE = re.compile(rf"(?<![\d.]){_NUMBER}")
_HASHES_RE = re.compile(rf"####\s*\$?\s*({_NUMBER})")
_FENCE_RE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\r?\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def gsm8k_final_number(text: str) -> str | None:
    """The final numeric answer of a GSM8K-style text.

    Parameters
    ----------
    text : str
        A completion, or a GSM8K reference answer.

    Returns
    -------
    str or None
        The number after the first ``####`` if there is one, else the last number in the text,
        with thousands separators removed (``"1,234"`` -> ``"1234"``); None if there is no number.
    """
    if not text:
        return None
    match = _HASHES_RE.search(text)
    if match:
        number = match.group(1)
    else:
        numbers = _NUMBER_RE.findall(text)
        if not numbers:
            return None
        number = numbers[-1]
    return number.replace(",", "")


def gsm8k_verify(completion: str, answer: str | int | float) -> float:
    """Whether a completion's final number equals the reference answer, numerically.

    Parameters
    ----------
    completion : str
        The model's completion.
    answer : str, int or float
        The reference: a number, or a GSM8K answer text ending in ``#### <number>``.

    Returns
    -------
    float
        1.0 when both final numbers exist and are equal as decimals (``"3.50"`` equals ``"3.5"``),
        else 0.0.
    """
    got = gsm8k_final_number(completion)
    want = gsm8k_final_number(str(answer))
    if got is None or want is None:
        return 0.0
    try:
        return 1.0 if Decimal(got) == Decimal(want) else 0.0
    except InvalidOperation:
        return 0.0


def extract_code(completion: str) -> str:
    """The code of a completion.

    Parameters
    ----------
    completion : str
        The model's completion, possibly markdown with fenced code blocks.

    Returns
    -------
    str
        The body of the first fenced block tagged ``python`` (or ``py``/``python3``); failing
        that, of the first untagged fenced block; failing that, the whole text. An unclosed fence
        runs to the end of the text.
    """
    blocks = _FENCE_RE.findall(completion)
    for tag, body in blocks:
        if tag:
            return body
    for tag, body in blocks:
        if not tag.strip():
            return body
    return completion


def verify_code(completion: str, tests: str, *, timeout_s: float = 10.0, memory_mb: int = 512,
                **sandbox_options) -> float:
    """Run a completion's code with the task's tests in the sandbox.

    Parameters
    ----------
    completion : str
        The model's completion; its code is taken with :func:`extract_code`.
    tests : str
        Test code appended after the solution; it must raise when a test fails (MBPP ``assert``
        lines; for ``unittest`` suites append a runner that raises on failure).
    timeout_s : float
        Wall-clock limit for the whole run, in seconds.
    memory_mb : int
        Address-space cap in MiB.
    **sandbox_options
        Passed to :func:`calcas.extract.sandbox.run_untrusted` (e.g. ``allow_site_packages=True``
        for BigCodeBench).

    Returns
    -------
    float
        1.0 iff the code and every test ran to completion in the sandbox, else 0.0.

    Raises
    ------
    calcas.extract.sandbox.SandboxUnreachableError
        The sandbox's unprivileged uid cannot read what the code imports (for instance the virtual
        environment lies under a 0700 folder): no answer could pass, so none is graded.
    RuntimeError
        The sandbox could not start a child at all (the answer was never run).
    """
    program = extract_code(completion).rstrip() + "\n\n\n" + tests.strip() + "\n"
    result = run_untrusted(program, timeout_s=timeout_s, memory_mb=memory_mb, **sandbox_options)
    if result.status == "error" and result.returncode is None:  # no child ran: nothing was graded
        raise RuntimeError(f"sandbox: could not run the code at all ({result.stderr_tail}); "
                           "stopping rather than grading the answer as wrong")
    return 1.0 if result.passed else 0.0


def verify_batch(verifier: Callable[[str, dict], float], completions: Sequence[str], items: Sequence[dict], *,
                 workers: int | None = None) -> np.ndarray:
    """Grade a batch of completions, several at a time.

    Code verifiers spend their time waiting on sandboxed subprocesses, so running them in
    threads keeps the accelerator from idling while a batch of MBPP / BigCodeBench answers is
    checked (each sandboxed run has its own random uid, so runs do not interfere).

    Parameters
    ----------
    verifier : callable (completion: str, item: dict) -> float
        E.g. ``calcas.extract.tasks.TASKS["mbpp"].verify``.
    completions : sequence of str
        One completion per item.
    items : sequence of dict
        The items, in the same order.
    workers : int, optional
        Threads; default ``min(8, os.cpu_count())``. 1 grades one at a time.

    Returns
    -------
    numpy.ndarray
        float64 (n,), ``verified`` in item order.

    Raises
    ------
    ValueError
        A verifier value outside [0, 1] (or not finite).
    """
    workers = workers or min(8, os.cpu_count() or 1)
    if workers == 1 or len(items) <= 1:
        values = [float(verifier(c, it)) for c, it in zip(completions, items)]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            values = [float(v) for v in pool.map(verifier, completions, items)]
    verified = np.array(values, dtype=np.float64)
    if ((verified < 0) | (verified > 1) | ~np.isfinite(verified)).any():
        raise ValueError("verifier: must return a number in [0, 1]")
    return verified
