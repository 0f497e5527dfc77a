"""Throughput of calcas's extraction loops against a bare PyTorch loop, side by side in one process
on the same model and the same batches (these machines are noisy: read the ratios, not the
absolute rates).

    python benchmarks/bench_extract.py [--quick]

Figures:

- vision: :func:`calcas.extract.vision.vision_batches` (fully consumed) and the full path through
  :func:`calcas.extract.shards.extract` (Parquet shards in a temp dir), against a bare loop over the
  same DataLoader settings and the same preprocessed dataset (``model(x)`` under
  ``torch.inference_mode()``, argmax, ``.half().numpy()``). Random-weight timm ``resnet18``
  (1000 classes) at 96 px, synthetic PNG images in class folders. Target: ours >= 0.9x bare.
- language: :func:`calcas.extract.language.mc_batches` (``first_token``) against a bare loop that
  formats the same prompts with the module's own :func:`format_mc_prompt`, tokenises them with
  the tokenizer's own left padding, runs the model and takes the last-position logits at the
  option-letter ids. Random-weight LLaMA (hidden 256, 4 layers) with a byte-level BPE tokenizer
  trained here. ``option_likelihood`` is timed too, against a bare loop that scores every
  prompt+option sequence in full (no KV-cache reuse), for information.
- GPU figures (EVA02-L-448 bf16 images/s; MMLU scoring tokens/s of an 8B-shaped LLaMA): run only
  where ``torch.cuda.is_available()``; otherwise listed as not measured.

Noise control: the vision (and GPU) figures come from ``--vision-rounds`` rounds of whole runs, all
variants back to back in each round (order flipped every other round): rates are medians over
rounds, the ratio is the median of the per-round ratios; the language figures interleave ours and bare batch by
batch (back to back, order alternating) over ``--rounds`` passes: rates sum each batch's best time,
the ratio is the median of the paired per-batch ratios.
"""
from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import calcas  # noqa: E402
from calcas.extract import language as lm  # noqa: E402
from calcas.extract import shards  # noqa: E402
from calcas.extract import vision  # noqa: E402

warnings.filterwarnings("ignore")
ROWS: list[tuple[str, str, str, str, str]] = []


# --------------------------------------------------------------------------- timing

def interleaved(fns: dict, rounds: int) -> tuple[dict, dict]:
    """Run each callable once per round, the order alternating (reversed every other round).

    Returns ({name: array of wall times, one per round}, {name: last return value})."""
    times = {name: [] for name in fns}
    out = {}
    names = list(fns)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            gc.collect()
            t = time.perf_counter()
            out[name] = fns[name]()
            times[name].append(time.perf_counter() - t)
    return {name: np.array(ts) for name, ts in times.items()}, out


def paired_ratio(t_ours: np.ndarray, t_bare: np.ndarray) -> float:
    """Median over rounds of the speed ratio ours/bare of runs made next to each other (slow drifts
    of the machine cancel within a round; the median drops rounds that a burst of load hit)."""
    return float(np.median(t_bare / t_ours))


def row(figure: str, ours: float, bare: float, unit: str, target: float | None, ratio: float | None = None) -> None:
    ratio = ours / bare if ratio is None else ratio
    mark = "" if target is None else (" ✓" if ratio >= target else " ✗")
    ROWS.append((figure, f"{ours:,.1f} {unit}", f"{bare:,.1f} {unit}", f"{ratio:.2f}x{mark}",
                 "—" if target is None else f"≥ {target:.1f}x"))


def print_table() -> None:
    head = ("figure", "ours items/s", "bare items/s", "ratio ours/bare", "target")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


# --------------------------------------------------------------------------- vision

def make_images(root: Path, n: int, classes: int = 4, seed: int = 0) -> None:
    from PIL import Image
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        h, w = int(rng.integers(100, 140)), int(rng.integers(100, 140))  # resized + cropped to 96
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i:05d}.png")


def bare_vision(model, dataset, batch_size, num_workers):
    """The plain loop: same DataLoader settings over the same dataset, forward, argmax, fp16 logits."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=vision._collate)
    preds, logits = [], []
    with torch.inference_mode():
        for _, x, _ in loader:
            z = model(x)
            preds.append(z.argmax(1).numpy())
            logits.append(z.half().numpy())
    return np.concatenate(preds), np.concatenate(logits)


def ours_vision(model, dataset, batch_size, num_workers, **kw):
    preds, logits = [], []
    for b in vision.vision_batches(model, dataset, batch_size=batch_size, num_workers=num_workers, **kw):
        preds.append(b["pred"])
        logits.append(b["logits"])
    return np.concatenate(preds), np.concatenate(logits)


def bench_vision(args) -> None:
    torch.manual_seed(0)
    model, data_config = vision.load_model("resnet18", num_classes=1000)
    data_config["input_size"] = (3, 96, 96)
    bare_model = copy.deepcopy(model)  # vision_batches converts its model to channels_last in place
    cl_off_model = copy.deepcopy(model)
    n, B, W = args.images, 32, args.workers
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_images(tmp / "images", n)
        dataset = vision.image_dataset(tmp / "images", data_config)
        manifest = vision.vision_manifest("resnet18", data_config, tmp / "images", batch_size=B)
        counter = iter(range(10**6))

        def full_path():
            out = tmp / f"out{next(counter)}"
            rows = shards.extract(vision.vision_batches(model, dataset, batch_size=B, num_workers=W), out,
                                  manifest=manifest, shard_size=1024, progress=False)
            assert rows == n
            return rows

        times, out = interleaved({
            "ours": lambda: ours_vision(model, dataset, B, W),
            "ours_cl_off": lambda: ours_vision(cl_off_model, dataset, B, W, channels_last=False),
            "extract": full_path,
            "bare": lambda: bare_vision(bare_model, dataset, B, W),
        }, args.vision_rounds)
        # same outputs (channels_last changes the summation order: compare loosely)
        (p_o, z_o), (p_b, z_b) = out["ours"], out["bare"]
        assert z_o.shape == z_b.shape == (n, 1000)
        np.testing.assert_allclose(z_o.astype(np.float32), z_b.astype(np.float32), rtol=2e-2, atol=2e-2)
        np.testing.assert_array_equal(out["ours_cl_off"][0], p_b)
        merged = shards.merge_shards(tmp / "out0")
        assert len(merged.id) == n
    t_bare = times["bare"]
    print(f"vision: resnet18 random weights, {n} PNG images -> 96 px, batch {B}, {W} workers, "
          f"{torch.get_num_threads()} torch threads; median of {len(t_bare)} rounds; bare runs ranged "
          f"{n / t_bare.max():.0f}-{n / t_bare.min():.0f} img/s (the noise these ratios sit in)")
    for name, figure in [("ours", "vision_batches (default, channels_last)"),
                         ("ours_cl_off", "vision_batches (channels_last=False)"),
                         ("extract", "shards.extract(vision_batches) → parquet")]:
        row(figure, n / np.median(times[name]), n / np.median(t_bare), "img/s", 0.9,
            ratio=paired_ratio(times[name], t_bare))


# --------------------------------------------------------------------------- language

WORDS = ("the a of to in is was for on that with as by at from which what when where how many "
         "capital city river number value energy cell force planet law theory market price "
         "red green blue yellow first second third largest smallest true false none all").split()


def make_tokenizer():
    """Byte-level BPE trained here, as tests/test_language.py does (no network)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    corpus = [" ".join(WORDS)] * 5 + ["Answer: A", "Answer: B", "Answer: C", "Answer: D",
                                      "A. red\nB. green\nC. blue\nD. yellow"] + [" A B C D E"] * 20
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def make_items(n: int, k: int = 4, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    words = lambda m: " ".join(rng.choice(WORDS, m))  # noqa: E731
    return [{"id": f"q{i:04d}", "question": words(int(rng.integers(20, 60))) + "?",
             "choices": [words(int(rng.integers(2, 12))) for _ in range(k)], "answer": int(rng.integers(k))}
            for i in range(n)]


def bare_first_token_batch(model, tokenizer, batch, letter_ids, templated):
    """Format with the module's own prompt function, tokenise with left padding, forward, last logits."""
    prompts = [lm.format_mc_prompt(it["question"], it["choices"], tokenizer) for it in batch]
    enc = tokenizer(prompts, add_special_tokens=not templated, padding=True, return_tensors="pt",
                    padding_side="left")
    mask = enc["attention_mask"]
    position = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        z = model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=position, use_cache=False).logits
    return z[:, -1, letter_ids].float().numpy(), int(mask.sum())


def bare_option_likelihood_batch(model, tokenizer, batch, templated):
    """Every prompt+option sequence of the batch scored in full: mean log-prob of the option's tokens."""
    pad = lm._pad_id(tokenizer)
    seqs, spans = [], []
    for it in batch:
        prompt = lm.format_mc_prompt(it["question"], it["choices"], tokenizer)
        p = lm._encode(tokenizer, prompt, templated)
        for c in it["choices"]:
            cont = list(tokenizer(lm._continuation(prompt, c), add_special_tokens=False)["input_ids"])
            seqs.append(p + cont)
            spans.append(len(cont))
    ids, mask, pos = lm._left_pad(seqs, pad, "cpu")
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
        lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    scores = [lp[i, -m:].mean().item() for i, m in enumerate(spans)]
    return np.array(scores, dtype=np.float32).reshape(len(batch), -1), int(mask.sum())


def paired(make_ours, bare_step, batches, rounds):
    """Per-batch interleaving: batch i of ``make_ours()`` (a generator) and ``bare_step(batch i)`` are
    timed back to back, their order alternating, over ``rounds`` passes.

    Returns (ours seconds, bare seconds, ratio, ours outputs, bare outputs): the seconds are sums over
    batches of each batch's best time; the ratio ours/bare is the median over all (round, batch)
    pairs of the paired speed ratio, which a burst of load on the machine cannot move much."""
    t_ours, t_bare = np.full((rounds, len(batches)), np.inf), np.full((rounds, len(batches)), np.inf)
    for r in range(rounds):
        gen = make_ours()
        out_ours, out_bare = [], []
        for i, batch in enumerate(batches):
            for who in (("ours", "bare") if (i + r) % 2 == 0 else ("bare", "ours")):
                t = time.perf_counter()
                if who == "ours":
                    out_ours.append(next(gen))
                    t_ours[r, i] = time.perf_counter() - t
                else:
                    out_bare.append(bare_step(batch))
                    t_bare[r, i] = time.perf_counter() - t
        assert next(gen, None) is None
    ratio = float(np.median(t_bare / t_ours))
    return t_ours.min(0).sum(), t_bare.min(0).sum(), ratio, out_ours, out_bare


def collect(batches) -> np.ndarray:
    return np.concatenate([b["logits"] for b in batches])


def bench_language(args) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM
    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config).eval()
    items = make_items(args.items)
    n, B = len(items), 16
    templated = lm.uses_chat_template(tokenizer)
    prompt0 = lm.format_mc_prompt(items[0]["question"], items[0]["choices"], tokenizer)
    letter_ids, _ = lm.option_token_ids(tokenizer, prompt0, 4, templated=templated)
    batches = [items[s:s + B] for s in range(0, n, B)]
    t_ours, t_bare, ratio, out_ours, out_bare = paired(
        lambda: lm.mc_batches(model, tokenizer, items, mode="first_token", batch_size=B),
        lambda batch: bare_first_token_batch(model, tokenizer, batch, letter_ids, templated), batches, args.rounds)
    np.testing.assert_allclose(collect(out_ours), np.concatenate([z for z, _ in out_bare]), rtol=1e-4, atol=1e-4)
    n_tokens = sum(m for _, m in out_bare)
    print(f"language: LLaMA random weights (hidden 256, 4 layers, vocab {len(tokenizer)}), {n} 4-choice items, "
          f"batch {B}, {n_tokens / n:.0f} prompt tokens/item (option_likelihood: first {args.items_ol} items)")
    row("mc_batches first_token", n / t_ours, n / t_bare, "items/s", 0.9, ratio)
    row("mc_batches first_token (prompt tokens/s)", n_tokens / t_ours, n_tokens / t_bare, "tok/s", 0.9, ratio)

    sub = items[:min(n, args.items_ol)]
    batches = [sub[s:s + B] for s in range(0, len(sub), B)]
    t_ours, t_bare, ratio, out_ours, out_bare = paired(
        lambda: lm.mc_batches(model, tokenizer, sub, mode="option_likelihood", batch_size=B),
        lambda batch: bare_option_likelihood_batch(model, tokenizer, batch, templated), batches, args.rounds)
    np.testing.assert_allclose(collect(out_ours), np.concatenate([z for z, _ in out_bare]), rtol=1e-3, atol=1e-3)
    row("mc_batches option_likelihood (bare: full re-scoring, no KV reuse)", len(sub) / t_ours,
        len(sub) / t_bare, "items/s", None, ratio)


# --------------------------------------------------------------------------- GPU

class _TensorImages(torch.utils.data.Dataset):
    """Synthetic preprocessed images as (id, tensor, label), shared by both loops."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return f"i{i:06d}", self.x[i], -1


def bench_gpu_vision(rounds: int) -> None:
    timm = vision.import_timm()
    model = timm.create_model("eva02_large_patch14_448", pretrained=False).cuda().eval()
    bare_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    B, n = 64, 64 * 8
    data = _TensorImages(torch.randn(n, 3, 448, 448))

    def ours():
        for _ in vision.vision_batches(model, data, batch_size=B, num_workers=4, device="cuda", dtype="bf16",
                                       channels_last=True):
            pass
        torch.cuda.synchronize()

    def bare():
        loader = DataLoader(data, batch_size=B, num_workers=4, pin_memory=True, collate_fn=vision._collate)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            for _, x, _ in loader:
                z = bare_model(x.cuda(non_blocking=True).contiguous(memory_format=torch.channels_last)).float()
                z.argmax(1).cpu().numpy(), z.half().cpu().numpy()
        torch.cuda.synchronize()

    ours(), bare()  # warm-up (cuDNN/cuBLAS heuristics)
    times, _ = interleaved({"ours": ours, "bare": bare}, rounds)
    row("GPU: EVA02-L-448 bf16, batch 64", n / np.median(times["ours"]), n / np.median(times["bare"]), "img/s", 0.9,
        ratio=paired_ratio(times["ours"], times["bare"]))
    del model, bare_model
    torch.cuda.empty_cache()


def bench_gpu_language(rounds: int) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM
    tokenizer = make_tokenizer()
    config = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                         bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(previous)
    items = make_items(200, seed=1)
    B = 16
    templated = lm.uses_chat_template(tokenizer)
    prompt0 = lm.format_mc_prompt(items[0]["question"], items[0]["choices"], tokenizer)
    letter_ids, _ = lm.option_token_ids(tokenizer, prompt0, 4, templated=templated)

    def bare():
        out, n_tok = [], 0
        with torch.inference_mode():
            for s in range(0, len(items), B):
                prompts = [lm.format_mc_prompt(it["question"], it["choices"], tokenizer) for it in items[s:s + B]]
                enc = tokenizer(prompts, add_special_tokens=not templated, padding=True, return_tensors="pt",
                                padding_side="left").to("cuda")
                mask = enc["attention_mask"]
                z = model(input_ids=enc["input_ids"], attention_mask=mask,
                          position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
                out.append(z[:, -1, letter_ids].float().cpu().numpy())
                n_tok += int(mask.sum())
        return n_tok

    ours = lambda: collect(lm.mc_batches(model, tokenizer, items, mode="first_token", batch_size=B))  # noqa: E731
    n_tok = bare()
    ours()  # warm-up
    times, _ = interleaved({"ours": ours, "bare": bare}, rounds)
    row("GPU: 8B-shaped LLaMA bf16, MMLU-style first_token", n_tok / np.median(times["ours"]),
        n_tok / np.median(times["bare"]), "tok/s", 0.9, ratio=paired_ratio(times["ours"], times["bare"]))
    del model
    torch.cuda.empty_cache()


# --------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and items, 2 rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vision-rounds", type=int, default=6)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--items-ol", type=int, default=64)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.vision_rounds, args.images, args.items, args.items_ol = 2, 2, 96, 64, 32
    import transformers
    timm = vision.import_timm()
    print(f"calcas {calcas.__version__}, torch {torch.__version__}, timm {timm.__version__}, transformers "
          f"{transformers.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"vision: median of {args.vision_rounds} alternating rounds; language: {args.rounds} passes interleaved batch "
          f"by batch\n")
    t0 = time.perf_counter()
    bench_vision(args)
    bench_language(args)
    gpu = torch.cuda.is_available()
    if gpu:
        print(f"GPU: {torch.cuda.get_device_name(0)}")
        bench_gpu_vision(args.rounds)
        bench_gpu_language(args.rounds)
    print()
    print_table()
    if not gpu:
        print("\nnot measured here (no GPU):\n"
              "- EVA02-L-448 (eva02_large_patch14_448, timm config, pretrained=False) bf16 channels_last, "
              "batch 64, synthetic images: images/s of vision_batches vs the bare loop (compare with timm's "
              "benchmark.py inference numbers for the same model and batch)\n"
              "- 8B-shaped LLaMA (Llama-3-8B LlamaConfig, random weights, bf16): tokens/s of MMLU-style "
              "first_token scoring, 200 prompts, mc_batches vs the bare loop")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
