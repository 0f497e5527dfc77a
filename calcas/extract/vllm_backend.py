"""vLLM backend: the batches of :mod:`calcas.extract.language` from a vLLM engine.

For models too large for one GPU (70B-class, tensor parallelism). :func:`vllm_mc_batches` and
:func:`vllm_generate_batches` yield the same batch dicts as
:func:`calcas.extract.language.mc_batches` and :func:`calcas.extract.language.generate_batches`
(same keys, dtypes, shapes, ``pred`` / ``label`` conventions, same prompts and token ids), so
:func:`calcas.extract.shards.extract` writes them unchanged.

It follows the vLLM V1 engine's offline API (``vllm.LLM``, ``vllm.SamplingParams``,
``RequestOutput``) and its ``logprobs_mode`` engine argument (vLLM >= 0.10.2):

- multiple choice uses ``prompt_logprobs``: each (item, option) pair is one request whose
  prompt token ids are the item's prompt followed by the option's continuation tokens, and
  ``RequestOutput.prompt_logprobs[pos][token_id].logprob`` is log p(token at pos | tokens
  before it). Load the engine with ``logprobs_mode="raw_logprobs"`` (the default).
- generation is greedy (``temperature=0``) with ``logprobs=1``;
  ``CompletionOutput.logprobs[i][token_id].logprob`` is, per generated token, its raw logit
  (engine loaded with ``logprobs_mode="raw_logits"``: the Platt ``score``) or its raw
  log-probability (``"raw_logprobs"``: the joint likelihood, ``confidence``). One engine gives
  one of the two, so a ``score`` and a ``confidence`` run need two engines.

Prompts are built and tokenised by the same helpers as the transformers backend and sent to
vLLM as token ids (``{"prompt_token_ids": [...]}``), so vLLM never re-tokenises them.
vLLM is imported inside the functions, never when calcas is.

Example (one process; vLLM shards the model over the GPUs itself)::

    llm, tok = load_vllm("meta-llama/Meta-Llama-3-70B-Instruct", tensor_parallel_size=8)
    manifest = lm_manifest(..., backend="vllm", extra={"vllm": vllm.__version__, "tensor_parallel_size": 8})
    extract(vllm_mc_batches(llm, tok, items, skip_ids=done_ids(out)), out, manifest=manifest,
            planned_ids=[it["id"] for it in items])
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .common import batched, dtype_name
from .language import (_check_generation_options, _check_mc_options, _encode, _generation_batch, _mc_batch,
                       _mc_prompts, _option_ids, format_prompt, option_token_ids, uses_chat_template)

#: The ``logprobs_mode`` values this backend uses (vLLM also has ``processed_*`` modes, which
#: would fold temperature and logit processors into the values: not what calcas stores).
LOGPROBS_MODES = ("raw_logprobs", "raw_logits")
#: Which engine ``logprobs_mode`` each generation confidence source needs.
SOURCE_MODES = {"score": "raw_logits", "confidence": "raw_logprobs"}
# A log-probability above this is not one (float32 log-softmax can give a hair above 0).
_LOGPROB_TOLERANCE = 1e-3

__all__ = ["LOGPROBS_MODES", "SOURCE_MODES", "load_vllm", "vllm_generate_batches", "vllm_mc_batches"]


# --------------------------------------------------------------------------- loading

def _import_vllm():
    try:
        import vllm
    except ImportError as err:  # also raised when sys.modules["vllm"] is None
        raise ImportError("the vLLM backend needs vLLM (Linux with CUDA GPUs): pip install vllm") from err
    return vllm


def load_vllm(model: str, *, tensor_parallel_size: int = 1, dtype: str = "auto",
              logprobs_mode: str = "raw_logprobs", revision: str | None = None, seed: int = 0,
              **engine_kwargs: Any) -> tuple[Any, Any]:
    """Start a vLLM engine for a causal LM and return it with its tokenizer.

    Parameters
    ----------
    model : str
        Hub id or local model directory (as ``vllm.LLM(model=...)`` takes it).
    tensor_parallel_size : int, default 1
        GPUs the model is sharded over (one process drives them all; do not use torchrun).
    dtype : str, default "auto"
        Weight / compute dtype: ``"auto"``, ``"bfloat16"``, ``"float16"``, ``"float32"``;
        ``"bf16"``, ``"fp16"``, ``"fp32"`` and ``torch.bfloat16``-style names are translated.
    logprobs_mode : {"raw_logprobs", "raw_logits"}, default "raw_logprobs"
        What the engine returns as "logprobs": the log-softmax of the model's logits
        (``"raw_logprobs"``: multiple choice and ``source="confidence"``) or the logits themselves
        (``"raw_logits"``: ``source="score"``, the mean token logit). Raw = before temperature and
        logit processors. An engine-wide setting (vLLM >= 0.10.2).
    revision : str, optional
        Hub revision (commit, branch or tag) of the weights.
    seed : int, default 0
        The engine's random seed (decoding here is greedy; this only pins vLLM's own state).
    **engine_kwargs
        Passed to ``vllm.LLM`` (``gpu_memory_utilization``, ``max_model_len``, ``quantization``,
        ...). ``enable_prefix_caching`` defaults to False here: vLLM recomputes the whole prompt
        of a ``prompt_logprobs`` request anyway, prefix-cache hits change the floating-point
        reduction order (so a record could depend on which items ran before it), and some vLLM
        versions return order-dependent prompt log-probs with the cache on (vLLM issue #42019).
        Pass ``enable_prefix_caching=True`` to speed up generation with long shared prefixes.

    Returns
    -------
    (llm, tokenizer)
        The ``vllm.LLM`` engine and ``llm.get_tokenizer()`` (a Hugging Face tokenizer), for
        :func:`vllm_mc_batches` and :func:`vllm_generate_batches`.

    Raises
    ------
    ImportError
        vLLM is not installed (``pip install vllm``; it needs Linux and CUDA GPUs).
    ValueError
        ``logprobs_mode`` is not one of :data:`LOGPROBS_MODES`.
    """
    if logprobs_mode not in LOGPROBS_MODES:
        raise ValueError(f"logprobs_mode: must be one of {LOGPROBS_MODES}, got {logprobs_mode!r}")
    if not isinstance(tensor_parallel_size, int) or tensor_parallel_size < 1:
        raise ValueError(f"tensor_parallel_size: must be an int >= 1, got {tensor_parallel_size!r}")
    vllm = _import_vllm()
    engine_kwargs.setdefault("enable_prefix_caching", False)
    llm = vllm.LLM(model=str(model), tensor_parallel_size=tensor_parallel_size, dtype=dtype_name(dtype),
                   logprobs_mode=logprobs_mode, seed=seed, revision=revision, **engine_kwargs)
    try:  # remembered so that the batch functions can refuse a mismatched source
        llm._calcas_logprobs_mode = logprobs_mode
    except AttributeError:  # pragma: no cover - an engine object that takes no attributes
        pass
    return llm, llm.get_tokenizer()


def _engine_mode(llm: Any) -> str | None:
    """The engine's ``logprobs_mode`` when it can be read (set by :func:`load_vllm`, or vLLM's
    model config), else None."""
    mode = getattr(llm, "_calcas_logprobs_mode", None)
    if isinstance(mode, str):
        return mode
    for path in (("llm_engine", "model_config"), ("model_config",), ("llm_engine", "vllm_config", "model_config")):
        obj = llm
        try:
            for name in path:
                obj = getattr(obj, name)
            mode = getattr(obj, "logprobs_mode", None)
        except Exception:  # noqa: BLE001 - a best-effort look at engine internals
            continue
        mode = getattr(mode, "value", mode)
        if isinstance(mode, str):
            return mode
    return None


def _run(llm: Any, sequences: list[list[int]], params: Any) -> list[Any]:
    prompts = [{"prompt_token_ids": list(map(int, s))} for s in sequences]
    outputs = list(llm.generate(prompts, params, use_tqdm=False))
    if len(outputs) != len(prompts):
        raise RuntimeError(f"vllm: {len(prompts)} requests gave {len(outputs)} outputs")
    return outputs


def _value(entry: dict | None, token: int, where: str) -> float:
    """``entry[token].logprob``: the value vLLM returns for ``token`` at one position."""
    if entry is None or token not in entry:
        raise RuntimeError(f"vllm: no log-probability for token {token} at {where} (vLLM always returns the "
                           "prompt's / the sampled token; is this vLLM's V1 output format?)")
    return float(entry[token].logprob)


# --------------------------------------------------------------------------- multiple choice

def vllm_mc_batches(llm: Any, tokenizer: Any, items: Iterable[dict], *, mode: str = "first_token",
                    batch_size: int = 64, skip_ids: Iterable[str] = frozenset(), use_chat_template: bool = True,
                    reduction: str = "mean") -> Iterator[dict]:
    """Score multiple-choice items with vLLM's prompt log-probabilities; yields shard batches.

    Both modes send, for every item and option, one request whose prompt token ids are the
    item's prompt ids (:func:`~calcas.extract.language.format_mc_prompt`, tokenised as by
    :func:`~calcas.extract.language.mc_batches`) followed by the option's continuation ids, with
    ``SamplingParams(max_tokens=1, temperature=0, prompt_logprobs=0, detokenize=False)``, and
    read the log-probability of each continuation token from ``RequestOutput.prompt_logprobs``.
    The ``batch_size * k`` requests of a batch go to vLLM in one ``llm.generate`` call. vLLM
    recomputes the full prompt of a prompt-log-prob request (its prefix cache is not used for
    them), so each prompt is computed k times; the transformers backend runs it once.

    Parameters
    ----------
    llm, tokenizer
        From :func:`load_vllm`, with ``logprobs_mode="raw_logprobs"`` (required for
        ``"option_likelihood"``; recent vLLM versions return prompt log-probs in the engine's mode).
    items : iterable of dict
        ``{"id", "question", "choices" (list of str), "answer" (int index, -1 unknown)}``;
        every item must have the same number of options k.
    mode : {"first_token", "option_likelihood"}
        ``"first_token"``: the continuation is the option letter's token id
        (:func:`~calcas.extract.language.option_token_ids`), so each stored value is the
        log-probability log p(letter | prompt) over the full vocabulary = the letter's logit minus
        the log-sum-exp of all logits at the answer position. This differs from the transformers
        backend's restricted logits by one constant per row, so their softmax over the k options
        (the restricted confidence), the argmax, logit margins and temperature scaling
        (softmax(z / T) is unchanged by a per-row shift of z) are exactly the same; only the
        absolute logit level is not. ``"option_likelihood"``: the continuation is the option's
        text (after ``" "`` when the prompt ends in a non-space character), tokenised exactly as
        by the transformers backend; values are its mean or summed token log-probabilities, equal
        to the transformers backend's (no shift).
    batch_size : int, default 64
        Items per ``llm.generate`` call (``batch_size * k`` requests; vLLM schedules them itself).
    skip_ids : set of str
        Ids to skip (e.g. :func:`calcas.extract.shards.done_ids`, to resume).
    use_chat_template : bool, default True
        Wrap prompts in the tokenizer's chat template when it has one.
    reduction : {"mean", "sum"}, default "mean"
        ``option_likelihood`` only: mean (length-normalised) or summed token log-probabilities.

    Yields
    ------
    dict
        ``{"id": list[str], "pred": int64 (b,), "label": int64 (b,), "logits": float32 (b, k)}``:
        per item, k log-probabilities used as logits; ``pred`` is their argmax.

    Raises
    ------
    ValueError
        Bad ``mode`` / ``reduction`` / items (same messages as ``mc_batches``), or
        ``option_likelihood`` on an engine loaded with ``logprobs_mode="raw_logits"``.
    RuntimeError
        vLLM's output lacks a needed log-probability, or ``option_likelihood`` values are not
        log-probabilities (> 0: the engine returns logits).
    """
    _check_mc_options(mode, reduction)
    if mode == "option_likelihood" and _engine_mode(llm) == "raw_logits":
        raise ValueError("logprobs_mode: option_likelihood needs log-probabilities, but the engine returns raw "
                         "logits; load it with load_vllm(..., logprobs_mode='raw_logprobs')")
    vllm = _import_vllm()
    params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
    templated = uses_chat_template(tokenizer, use_chat_template)
    k: int | None = None
    letter_ids: list[int] | None = None
    for batch in batched(items, batch_size, skip_ids):
        k, prompts, prompt_ids = _mc_prompts(batch, k, tokenizer, use_chat_template, templated)
        if mode == "first_token":
            if letter_ids is None:
                letter_ids, _ = option_token_ids(tokenizer, prompts[0], k, templated=templated)
            conts = [[[t] for t in letter_ids] for _ in batch]
        else:
            conts = _option_ids(tokenizer, prompts, batch)
        sequences = [p + c for p, row in zip(prompt_ids, conts) for c in row]
        outputs = _run(llm, sequences, params)
        z = np.empty((len(batch), k), dtype=np.float64)
        for n, out in enumerate(outputs):
            i, j = divmod(n, k)
            start, cont = len(prompt_ids[i]), conts[i][j]
            lps = out.prompt_logprobs
            if lps is None or len(lps) != start + len(cont):
                raise RuntimeError(f"vllm: prompt_logprobs of item {batch[i]['id']!r} option {j} has "
                                   f"{None if lps is None else len(lps)} positions, expected {start + len(cont)}")
            values = [_value(lps[start + t], tok, f"item {batch[i]['id']!r} option {j} token {t}")
                      for t, tok in enumerate(cont)]
            if mode == "option_likelihood" and max(values) > _LOGPROB_TOLERANCE:
                raise RuntimeError(f"vllm: prompt log-probability {max(values):.4g} > 0 for item {batch[i]['id']!r}: "
                                   "the engine returns logits; load it with logprobs_mode='raw_logprobs'")
            z[i, j] = math.fsum(values) / (len(values) if reduction == "mean" else 1)  # first_token: 1 value
        yield _mc_batch(batch, z)


# --------------------------------------------------------------------------- generation

def vllm_generate_batches(llm: Any, tokenizer: Any, items: Iterable[dict], *, max_new_tokens: int,
                          verifier: Callable[[str, dict], float], logprobs_mode: str, batch_size: int = 64,
                          skip_ids: Iterable[str] = frozenset(), use_chat_template: bool = True,
                          source: str = "score", details: bool = False) -> Iterator[dict]:
    """Greedy generation with vLLM and the per-token confidences of SPEC §1; yields shard batches.

    Every prompt (:func:`~calcas.extract.language.format_prompt`, tokenised as by
    :func:`~calcas.extract.language.generate_batches`) is one request with
    ``SamplingParams(temperature=0, max_tokens=max_new_tokens, logprobs=1, detokenize=False)``;
    the generated token ids are ``CompletionOutput.token_ids`` (vLLM stops after the first EOS
    or generation-config stop token and keeps it, which counts as a token, as in the
    transformers backend) and, per generated token, ``CompletionOutput.logprobs[i][token_id]
    .logprob`` is its raw logit or raw log-probability, depending on the engine's
    ``logprobs_mode``. The completion text is ``tokenizer.decode(token_ids,
    skip_special_tokens=True)``.

    Parameters
    ----------
    llm, tokenizer
        From :func:`load_vllm`.
    items : iterable of dict
        ``{"id", "prompt"}`` (plus anything the verifier needs).
    max_new_tokens : int
        Generated tokens per item at most.
    verifier : callable (completion: str, item: dict) -> float in [0, 1]
        1 when the completion is correct.
    logprobs_mode : {"raw_logits", "raw_logprobs"}
        The mode the engine was loaded with (``load_vllm(logprobs_mode=...)``): what vLLM's
        per-token values are.
    batch_size : int, default 64
        Prompts per ``llm.generate`` call.
    skip_ids : set of str
        Ids to skip (to resume).
    use_chat_template : bool, default True
    source : {"score", "confidence"}, default "score"
        ``"score"`` = mean logit of the generated tokens (:func:`calcas.mean_token_logit`; needs
        ``logprobs_mode="raw_logits"``), ``"confidence"`` = joint likelihood ``exp(sum of
        log-probs)`` (:func:`calcas.sequence_likelihood`; needs ``"raw_logprobs"``).
    details : bool, default False
        Add ``"completion"`` (list of str), ``"score"``, ``"log_likelihood"``, ``"n_tokens"`` and
        ``"tokens"`` (list of token-id lists), as ``generate_batches`` does; the one of ``score``
        / ``log_likelihood`` that this engine's mode cannot give is NaN.

    Yields
    ------
    dict
        ``{"id", "pred" (-1: free text has no class), "label" (-1), "verified" (float64), source
        (float64 (b,))}``.

    Raises
    ------
    ValueError
        Bad ``source`` / ``max_new_tokens`` / ``logprobs_mode``, a ``source`` the engine's mode
        cannot give, a ``logprobs_mode`` that differs from the engine's, or a verifier value
        outside [0, 1].
    RuntimeError
        vLLM's output lacks the log-probabilities, or ``raw_logprobs`` values are > 0.
    """
    _check_generation_options(source, max_new_tokens)
    if logprobs_mode not in LOGPROBS_MODES:
        raise ValueError(f"logprobs_mode: must be one of {LOGPROBS_MODES}, got {logprobs_mode!r}")
    engine = _engine_mode(llm)
    if engine is not None and engine != logprobs_mode:
        raise ValueError(f"logprobs_mode: the engine was loaded with logprobs_mode={engine!r}, "
                         f"not {logprobs_mode!r}")
    if SOURCE_MODES[source] != logprobs_mode:
        what = "the mean token logit" if source == "score" else "the joint likelihood (token log-probabilities)"
        raise ValueError(f"logprobs_mode: source={source!r} needs {what}, so an engine loaded with "
                         f"load_vllm(..., logprobs_mode={SOURCE_MODES[source]!r}); this one uses {logprobs_mode!r}")
    vllm = _import_vllm()
    params = vllm.SamplingParams(temperature=0.0, max_tokens=max_new_tokens, logprobs=1, detokenize=False)
    templated = uses_chat_template(tokenizer, use_chat_template)
    for batch in batched(items, batch_size, skip_ids):
        prompt_ids = [_encode(tokenizer, format_prompt(it["prompt"], tokenizer, use_chat_template=use_chat_template),
                              templated) for it in batch]
        outputs = _run(llm, prompt_ids, params)
        tokens, values = [], []
        for item, out in zip(batch, outputs):
            completion = out.outputs[0]
            ids = [int(t) for t in completion.token_ids]
            lps = completion.logprobs
            if not ids or lps is None or len(lps) != len(ids):
                raise RuntimeError(f"vllm: item {item['id']!r} has {len(ids)} generated tokens and "
                                   f"{None if lps is None else len(lps)} logprob entries")
            v = np.array([_value(lps[t], tok, f"item {item['id']!r} generated token {t}") for t, tok in enumerate(ids)],
                         dtype=np.float64)
            if logprobs_mode == "raw_logprobs" and v.max() > _LOGPROB_TOLERANCE:
                raise RuntimeError(f"vllm: token log-probability {v.max():.4g} > 0 for item {item['id']!r}: the "
                                   "engine returns logits; pass the logprobs_mode it was loaded with")
            tokens.append(ids)
            values.append(v)
        nan = np.full(len(batch), np.nan)
        if logprobs_mode == "raw_logits":
            score, loglik = np.array([v.mean() for v in values]), nan
        else:
            score, loglik = nan, np.array([math.fsum(v) for v in values])
        yield _generation_batch(batch, tokens, tokenizer, verifier, source=source, score=score, loglik=loglik,
                                details=details)
