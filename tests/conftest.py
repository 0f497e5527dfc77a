"""Shared fixtures: a tiny random-weight LLaMA and a byte-level BPE tokenizer trained here
(no network, no hub), used by the language, vLLM-backend and extraction-job tests; and the
rule for tests marked ``slow`` (over 20 s): they run with ``CALCAS_SLOW=1`` (CI sets it) or
when ``-m`` names them, and are skipped otherwise."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# unit/, integration/ and book/ import each other's helpers by module name (test names are unique)
sys.path[:0] = [str(Path(__file__).parent / d) for d in ("unit", "integration", "book")]

CORPUS = ["What is the capital of France? Paris is the capital of France.",
          "Answer: A", "Answer: B", "Answer: C", "Answer: D",
          "A. red\nB. green\nC. blue\nD. yellow",
          "The quick brown fox jumps over the lazy dog.", "2 + 2 = 4",
          ] + [" A B C D E"] * 20
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<assistant>\n{% endif %}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``slow`` unless CALCAS_SLOW=1 or the marker expression names them."""
    if os.environ.get("CALCAS_SLOW") == "1" or "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow (over 20 s): set CALCAS_SLOW=1 or select with -m slow")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


#: Multiple-choice items for the tiny model (test_language, test_vllm_backend).
MC_ITEMS = [
    {"id": "q0", "question": "What is the capital of France?", "choices": ["Paris", "Lyon", "Nice", "Lille"],
     "answer": 0},
    {"id": "q1", "question": "2 + 2 =", "choices": ["3", "4", "5", "22"], "answer": 1},
    {"id": "q2", "question": "Which colour is the sky?", "choices": ["red", "green", "blue", "a lazy brown dog"],
     "answer": 2},
    {"id": "q3", "question": "The quick brown fox jumps over the", "choices": ["cat", "fox", "hen", "lazy dog"],
     "answer": 3},
    {"id": "q4", "question": "Pick one.", "choices": ["A", "B", "C", "D"], "answer": 0},
]


@pytest.fixture(scope="session")
def tokenizer():
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tok.chat_template = CHAT_TEMPLATE
    return tok


@pytest.fixture(scope="session")
def model(tokenizer):
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.5, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_lm_dir(model, tokenizer, tmp_path_factory):
    """The tiny model and tokenizer saved with save_pretrained: a local model directory, as a
    user passes a downloaded checkpoint."""
    path = tmp_path_factory.mktemp("tiny_lm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
