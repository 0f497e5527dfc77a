"""calcas.extract.vllm_backend against a FAKE of vLLM's offline API, checked against the
transformers backend (calcas.extract.language). This is not a run of vLLM (which needs CUDA).

The fake ``vllm`` module (put into ``sys.modules`` per test) implements only what the backend
uses, following vLLM V1's documented structures: ``SamplingParams(**kwargs)`` (unknown
arguments refused), ``LLM(model=..., logprobs_mode=..., ...)`` with ``get_tokenizer()`` and
``generate(prompts, sampling_params, use_tqdm=...)`` returning ``RequestOutput``-like objects:
``prompt_logprobs`` = ``[None, {prompt_token: Logprob}, ...]`` and ``outputs[0]`` with
``token_ids`` (greedy, stopping after the first EOS, which is kept), ``logprobs`` (one dict per
generated token holding the sampled token, values = raw logits or raw log-probs by the engine's
``logprobs_mode``) and ``text``. Its numbers come from plain unbatched forward passes of the
tiny random-weight LLaMA of conftest.py, with a float64 log-softmax.
"""
from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from calcas.extract import language as lm  # noqa: E402
from calcas.extract import vllm_backend as vb  # noqa: E402

from conftest import MC_ITEMS as ITEMS  # noqa: E402
PROMPTS = [{"id": f"g{i}", "prompt": text} for i, text in
           enumerate(["What is the capital", "2 + 2 =", "The quick brown fox jumps over the lazy dog."])]


def verifier(completion, item):
    return float("a" in completion)


# --------------------------------------------------------------------------- the fake vLLM

@dataclasses.dataclass
class Logprob:
    """vllm.logprobs.Logprob."""
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclasses.dataclass
class CompletionOutput:
    """vllm.outputs.CompletionOutput."""
    index: int
    text: str
    token_ids: list
    cumulative_logprob: float | None
    logprobs: list | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclasses.dataclass
class RequestOutput:
    """vllm.outputs.RequestOutput."""
    request_id: str
    prompt: str | None
    prompt_token_ids: list
    prompt_logprobs: list | None
    outputs: list
    finished: bool = True


class SamplingParams:
    """vllm.SamplingParams: keeps its keyword arguments; unknown ones are a TypeError."""
    DEFAULTS = {"n": 1, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "seed": None, "max_tokens": 16,
                "min_tokens": 0, "logprobs": None, "prompt_logprobs": None, "detokenize": True,
                "ignore_eos": False, "stop": None, "stop_token_ids": None, "skip_special_tokens": True}

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f"SamplingParams: unexpected keyword argument {sorted(unknown)[0]!r}")
        self.kwargs = kwargs
        for key, value in {**self.DEFAULTS, **kwargs}.items():
            setattr(self, key, value)


def _entry(values, logprobs, token, n_top):
    """One position's dict: the given token plus the top ``n_top`` (vLLM's ranks: 1 = best)."""
    order = np.argsort(-logprobs, kind="stable")
    keep = {int(token), *map(int, order[:n_top])}
    return {t: Logprob(logprob=float(values[t]), rank=int((logprobs > logprobs[t]).sum()) + 1) for t in keep}


def make_fake_vllm(model, tokenizer):
    """A ``vllm`` module whose LLM runs ``model`` (a transformers causal LM) on the CPU."""

    class LLM:
        """vllm.LLM (V1 engine). ``prompt_logprobs_follow_mode`` = True imitates vLLM versions
        whose prompt_logprobs honour logprobs_mode (raw logits in "raw_logits" mode)."""
        prompt_logprobs_follow_mode = False
        instances: list = []

        def __init__(self, model=None, *, tensor_parallel_size=1, dtype="auto", logprobs_mode="raw_logprobs",
                     seed=None, revision=None, **kwargs):
            if logprobs_mode not in ("raw_logprobs", "raw_logits", "processed_logprobs", "processed_logits"):
                raise ValueError(f"logprobs_mode {logprobs_mode!r}")
            self.model_name, self.logprobs_mode = model, logprobs_mode
            self.engine_args = {"model": model, "tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
                                "logprobs_mode": logprobs_mode, "seed": seed, "revision": revision, **kwargs}
            self.calls = []
            LLM.instances.append(self)

        def get_tokenizer(self):
            return tokenizer

        def _forward(self, ids):
            with torch.no_grad():
                z = model(input_ids=torch.tensor([ids])).logits[0].double()
            return z.numpy(), torch.log_softmax(z, -1).numpy()

        def generate(self, prompts, sampling_params=None, use_tqdm=True):
            prompts = [prompts] if isinstance(prompts, dict) else list(prompts)
            sp = sampling_params or SamplingParams()
            if sp.temperature != 0.0 or sp.n != 1:
                raise NotImplementedError("the fake decodes greedily only")
            self.calls.append((len(prompts), sp))
            eos = {tokenizer.eos_token_id}
            gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
            eos |= set(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]) - {None}
            results = []
            for r, prompt in enumerate(prompts):
                ids = list(prompt["prompt_token_ids"])
                prompt_lp = None
                if sp.prompt_logprobs is not None:
                    z, lp = self._forward(ids)
                    shown = z if self.prompt_logprobs_follow_mode and self.logprobs_mode == "raw_logits" else lp
                    prompt_lp = [None] + [_entry(shown[t - 1], lp[t - 1], ids[t], sp.prompt_logprobs)
                                          for t in range(1, len(ids))]
                gen, gen_lp, finish = [], [] if sp.logprobs is not None else None, "length"
                for _ in range(sp.max_tokens):
                    z, lp = self._forward(ids + gen)
                    nxt = int(z[-1].argmax())
                    gen.append(nxt)
                    if gen_lp is not None:
                        shown = z[-1] if self.logprobs_mode == "raw_logits" else lp[-1]
                        gen_lp.append(_entry(shown, lp[-1], nxt, sp.logprobs))
                    if nxt in eos and not sp.ignore_eos:
                        finish = "stop"
                        break
                text = tokenizer.decode(gen, skip_special_tokens=True) if sp.detokenize else ""
                completion = CompletionOutput(0, text, gen, None, gen_lp, finish)
                results.append(RequestOutput(str(r), None, ids, prompt_lp, [completion]))
            return results

    module = types.ModuleType("vllm")
    module.__version__ = "0.0-fake"
    module.LLM, module.SamplingParams = LLM, SamplingParams
    return module


@pytest.fixture
def fake_vllm(monkeypatch, model, tokenizer):
    module = make_fake_vllm(model, tokenizer)
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def _stack(batches, key):
    return np.concatenate([np.asarray(b[key]) for b in batches])


def _softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- tests

def test_load_vllm_passes_engine_arguments(fake_vllm):
    llm, tok = vb.load_vllm("meta-llama/Meta-Llama-3-70B-Instruct", tensor_parallel_size=8, dtype="bf16",
                            logprobs_mode="raw_logits", revision="abc123", gpu_memory_utilization=0.85)
    assert llm.engine_args == {"model": "meta-llama/Meta-Llama-3-70B-Instruct", "tensor_parallel_size": 8,
                               "dtype": "bfloat16", "logprobs_mode": "raw_logits", "seed": 0, "revision": "abc123",
                               "gpu_memory_utilization": 0.85, "enable_prefix_caching": False}
    assert tok is llm.get_tokenizer()
    llm2, _ = vb.load_vllm("m", dtype="float16", enable_prefix_caching=True)
    assert llm2.engine_args["dtype"] == "float16" and llm2.engine_args["logprobs_mode"] == "raw_logprobs"
    assert llm2.engine_args["enable_prefix_caching"] is True
    with pytest.raises(ValueError, match="logprobs_mode: must be one of"):
        vb.load_vllm("m", logprobs_mode="processed_logits")


def test_vllm_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match="pip install vllm"):
        vb.load_vllm("m")


def test_sampling_params_of_requests(fake_vllm):
    llm, tok = vb.load_vllm("m")
    list(vb.vllm_mc_batches(llm, tok, ITEMS, batch_size=2))
    assert [n for n, _ in llm.calls] == [8, 8, 4]  # batch_size * k requests per generate call
    assert llm.calls[0][1].kwargs == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0, "detokenize": False}
    with pytest.raises(TypeError, match="unexpected keyword"):
        fake_vllm.SamplingParams(max_new_tokens=3)


@pytest.mark.parametrize("templated", [True, False])
def test_first_token_softmax_equals_transformers(fake_vllm, model, tokenizer, templated):
    llm, tok = vb.load_vllm("m")
    batches = list(vb.vllm_mc_batches(llm, tok, ITEMS, mode="first_token", batch_size=3, use_chat_template=templated))
    want = list(lm.mc_batches(model, tokenizer, ITEMS, mode="first_token", batch_size=3, use_chat_template=templated))
    assert [len(b["id"]) for b in batches] == [3, 2]
    for got, ref in zip(batches, want):
        assert set(got) == set(ref) == {"id", "pred", "label", "logits"}
        assert got["id"] == ref["id"]
        for key in ("pred", "label", "logits"):
            assert got[key].dtype == ref[key].dtype and got[key].shape == ref[key].shape, key
        np.testing.assert_array_equal(got["pred"], ref["pred"])
        np.testing.assert_array_equal(got["label"], ref["label"])
        np.testing.assert_allclose(_softmax(got["logits"]), _softmax(ref["logits"]), rtol=1e-4, atol=1e-6)
        # log-probabilities: the transformers logits shifted by one constant per row
        shift = got["logits"].astype(np.float64) - ref["logits"]
        np.testing.assert_allclose(shift, shift[:, :1].repeat(4, axis=1), atol=1e-4)
        assert (got["logits"] < 0).all()
        # hence temperature scaling is unchanged too
        np.testing.assert_allclose(_softmax(got["logits"] / 2.5), _softmax(ref["logits"] / 2.5), rtol=1e-4, atol=1e-6)


def test_first_token_with_logit_prompt_values(fake_vllm, model, tokenizer):
    """A vLLM whose prompt_logprobs follow a raw_logits engine gives the transformers logits exactly."""
    fake_vllm.LLM.prompt_logprobs_follow_mode = True
    llm, tok = vb.load_vllm("m", logprobs_mode="raw_logits")
    got = _stack(vb.vllm_mc_batches(llm, tok, ITEMS, mode="first_token"), "logits")
    want = _stack(lm.mc_batches(model, tokenizer, ITEMS, mode="first_token"), "logits")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="option_likelihood needs log-probabilities"):
        list(vb.vllm_mc_batches(llm, tok, ITEMS, mode="option_likelihood"))
    # an engine whose mode calcas cannot read: the values themselves give the logits away
    bare = fake_vllm.LLM("m", logprobs_mode="raw_logits")
    with pytest.raises(RuntimeError, match="returns logits"):
        list(vb.vllm_mc_batches(bare, tok, ITEMS, mode="option_likelihood"))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("templated", [True, False])
def test_option_likelihood_equals_transformers(fake_vllm, model, tokenizer, reduction, templated):
    llm, tok = vb.load_vllm("m")
    got = list(vb.vllm_mc_batches(llm, tok, ITEMS, mode="option_likelihood", batch_size=4, reduction=reduction,
                                  use_chat_template=templated))
    want = list(lm.mc_batches(model, tokenizer, ITEMS, mode="option_likelihood", batch_size=4, reduction=reduction,
                              use_chat_template=templated))
    assert _stack(got, "logits").dtype == np.float32
    np.testing.assert_allclose(_stack(got, "logits"), _stack(want, "logits"), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(_stack(got, "pred"), _stack(want, "pred"))
    assert list(_stack(got, "id")) == [it["id"] for it in ITEMS]


def test_mc_errors_and_skip_ids(fake_vllm):
    llm, tok = vb.load_vllm("m")
    batches = list(vb.vllm_mc_batches(llm, tok, ITEMS, batch_size=2, skip_ids={"q1", "q3"}))
    assert [b["id"] for b in batches] == [["q0", "q2"], ["q4"]]
    bad = [ITEMS[0], {**ITEMS[1], "choices": ["x", "y", "z"], "answer": 0}]
    with pytest.raises(ValueError, match="choices: item 'q1' has 3 options"):
        list(vb.vllm_mc_batches(llm, tok, bad))
    with pytest.raises(ValueError, match="mode"):
        list(vb.vllm_mc_batches(llm, tok, ITEMS, mode="letters"))
    with pytest.raises(ValueError, match="answer"):
        list(vb.vllm_mc_batches(llm, tok, [{**ITEMS[0], "answer": 7}]))
    with pytest.raises(ValueError, match="reduction"):
        list(vb.vllm_mc_batches(llm, tok, ITEMS, reduction="max"))


@pytest.mark.parametrize("mode,source", [("raw_logits", "score"), ("raw_logprobs", "confidence")])
def test_generation_equals_transformers(fake_vllm, model, tokenizer, mode, source):
    llm, tok = vb.load_vllm("m", logprobs_mode=mode)
    got = list(vb.vllm_generate_batches(llm, tok, PROMPTS, max_new_tokens=6, verifier=verifier, logprobs_mode=mode,
                                        batch_size=2, source=source, details=True))
    (want,) = lm.generate_batches(model, tokenizer, PROMPTS, max_new_tokens=6, verifier=verifier, batch_size=3,
                                  source=source, details=True)
    assert llm.calls[0][1].kwargs == {"temperature": 0.0, "max_tokens": 6, "logprobs": 1, "detokenize": False}
    assert [len(b["id"]) for b in got] == [2, 1] and set(got[0]) == set(want)
    assert sum((b["tokens"] for b in got), []) == want["tokens"]
    assert sum((b["completion"] for b in got), []) == want["completion"]
    for key in ("pred", "label", "verified", "n_tokens"):
        assert _stack(got, key).dtype == want[key].dtype, key
        np.testing.assert_array_equal(_stack(got, key), want[key])
    if mode == "raw_logits":
        np.testing.assert_allclose(_stack(got, "score"), want["score"], rtol=1e-4, atol=1e-4)
        assert np.isnan(_stack(got, "log_likelihood")).all()
    else:
        np.testing.assert_allclose(np.exp(_stack(got, "log_likelihood")), np.exp(want["log_likelihood"]), rtol=1e-4)
        assert np.isnan(_stack(got, "score")).all()
    np.testing.assert_allclose(_stack(got, source), want[source], rtol=1e-4, atol=1e-9)
    plain = next(vb.vllm_generate_batches(llm, tok, PROMPTS, max_new_tokens=6, verifier=verifier,
                                          logprobs_mode=mode, source=source))
    assert set(plain) == {"id", "pred", "label", "verified", source}


class _EosAtPosition(torch.nn.Module):
    """Makes EOS the greedy next token after absolute position ``at``, batched or not."""

    def __init__(self, inner, eos, at):
        super().__init__()
        self.inner, self.eos, self.at = inner, eos, at

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, use_cache=None,
                logits_to_keep=0):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         cache=cache, use_cache=use_cache, logits_to_keep=logits_to_keep)
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1])[None].expand(input_ids.shape[0], -1)
        kept = position_ids[:, -out.logits.shape[1]:]
        rows, cols = torch.nonzero(kept == self.at, as_tuple=True)
        out.logits[rows, cols, self.eos] = out.logits[rows, cols].max(-1).values + 5.0
        return out


def test_generation_stops_after_eos_like_transformers(monkeypatch, model, tokenizer):
    prompts = [{"id": "a", "prompt": "hello"}, {"id": "b", "prompt": "2 + 2 ="},
               {"id": "c", "prompt": "What is the capital"}]
    lengths = [len(lm._encode(tokenizer, lm.format_prompt(p["prompt"], tokenizer), True)) for p in prompts]
    at = max(lengths) - 1  # the longest prompt's first token is EOS, the others reach it later
    assert max(lengths) - min(lengths) < 7
    wrapped = _EosAtPosition(model, tokenizer.eos_token_id, at)
    monkeypatch.setitem(sys.modules, "vllm", make_fake_vllm(wrapped, tokenizer))
    llm, tok = vb.load_vllm("m", logprobs_mode="raw_logits")
    (got,) = vb.vllm_generate_batches(llm, tok, prompts, max_new_tokens=8, verifier=verifier,
                                      logprobs_mode="raw_logits", details=True)
    (want,) = lm.generate_batches(wrapped, tokenizer, prompts, max_new_tokens=8, verifier=verifier, details=True)
    eos = tokenizer.eos_token_id
    assert got["tokens"] == want["tokens"]
    assert all(t[-1] == eos and eos not in t[:-1] for t in got["tokens"])
    np.testing.assert_array_equal(got["n_tokens"], [at - n + 2 for n in lengths])
    assert got["completion"] == want["completion"]
    assert got["completion"][int(np.argmax(lengths))] == ""
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-4, atol=1e-4)


def test_generation_mode_errors(fake_vllm):
    llm, tok = vb.load_vllm("m", logprobs_mode="raw_logprobs")
    kw = dict(max_new_tokens=4, verifier=verifier)
    with pytest.raises(ValueError, match=r"source='score' needs the mean token logit.*logprobs_mode='raw_logits'"):
        list(vb.vllm_generate_batches(llm, tok, PROMPTS, logprobs_mode="raw_logprobs", source="score", **kw))
    with pytest.raises(ValueError, match="engine was loaded with logprobs_mode='raw_logprobs', not 'raw_logits'"):
        list(vb.vllm_generate_batches(llm, tok, PROMPTS, logprobs_mode="raw_logits", source="score", **kw))
    logits_llm, _ = vb.load_vllm("m", logprobs_mode="raw_logits")
    with pytest.raises(ValueError, match=r"source='confidence' needs the joint likelihood.*'raw_logprobs'"):
        list(vb.vllm_generate_batches(logits_llm, tok, PROMPTS, logprobs_mode="raw_logits", source="confidence", **kw))
    with pytest.raises(ValueError, match="logprobs_mode: must be one of"):
        list(vb.vllm_generate_batches(llm, tok, PROMPTS, logprobs_mode="logits", **kw))
    with pytest.raises(ValueError, match="source"):
        list(vb.vllm_generate_batches(llm, tok, PROMPTS, logprobs_mode="raw_logprobs", source="both", **kw))
    with pytest.raises(ValueError, match="max_new_tokens"):
        list(vb.vllm_generate_batches(llm, tok, PROMPTS, logprobs_mode="raw_logprobs", source="confidence",
                                      max_new_tokens=0, verifier=verifier))
    with pytest.raises(ValueError, match="verifier"):
        list(vb.vllm_generate_batches(llm, tok, PROMPTS, logprobs_mode="raw_logprobs", source="confidence",
                                      max_new_tokens=2, verifier=lambda c, it: 2.0))
    # an engine whose mode calcas cannot read, given the wrong mode: its values give it away
    bare = fake_vllm.LLM("m", logprobs_mode="raw_logits")
    with pytest.raises(RuntimeError, match="returns logits"):
        list(vb.vllm_generate_batches(bare, tok, PROMPTS, logprobs_mode="raw_logprobs", source="confidence", **kw))
    done = list(vb.vllm_generate_batches(llm, tok, PROMPTS, logprobs_mode="raw_logprobs", source="confidence",
                                         skip_ids={"g0", "g2"}, **kw))
    assert [b["id"] for b in done] == [["g1"]]


def test_batches_go_through_shards(fake_vllm, tokenizer, tmp_path):
    shards = pytest.importorskip("calcas.extract.shards")
    llm, tok = vb.load_vllm("m")
    manifest = lm.lm_manifest("tiny-llama", dataset="toy", mode="first_token", tokenizer=tok, backend="vllm",
                              extra={"vllm": fake_vllm.__version__, "tensor_parallel_size": 1})
    assert manifest["backend"] == "vllm" and lm.lm_manifest("m", dataset="d")["backend"] == "transformers"
    out = tmp_path / "mc"
    shards.extract(vb.vllm_mc_batches(llm, tok, ITEMS[:3], batch_size=2), out, manifest=manifest, progress=False,
                   shard_size=2)
    # resume: the rest, skipping what is done
    shards.extract(vb.vllm_mc_batches(llm, tok, ITEMS, batch_size=2, skip_ids=shards.done_ids(out)), out,
                   manifest=manifest, progress=False, shard_size=2)
    merged = shards.merge_shards(out)
    assert list(merged.id) == [it["id"] for it in ITEMS] and merged.logits.shape == (5, 4)
    assert merged.source == "logits" and merged.manifest["backend"] == "vllm"
    np.testing.assert_array_equal(merged.label, [it["answer"] for it in ITEMS])

    gen_llm, _ = vb.load_vllm("m", logprobs_mode="raw_logits")
    gen_manifest = lm.lm_manifest("tiny-llama", dataset="toy", mode="generate", backend="vllm")
    shards.extract(vb.vllm_generate_batches(gen_llm, tok, PROMPTS, max_new_tokens=3, verifier=verifier,
                                            logprobs_mode="raw_logits"), tmp_path / "gen",
                   manifest=gen_manifest, progress=False)
    records = shards.merge_shards(tmp_path / "gen")
    assert records.source == "score" and records.n == 3 and (records.pred == -1).all()
