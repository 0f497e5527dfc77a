"""Extraction jobs: the command line that turns a real model and a data set into a record set.

One process, or one per GPU under ``torchrun`` (each rank takes every ``world_size``-th id,
writes its own resumable shards, and rank 0 merges them into ``OUT/records.parquet``, or ``--records PATH``)::

    python -m calcas.extract vision --model resnet50.a1_in1k --pretrained --data /data/imagenet/val \\
        --out runs/resnet50
    torchrun --standalone --nproc_per_node 8 -m calcas.extract -- vision \\
        --model eva02_large_patch14_448.mim_m38m_ft_in22k_in1k --pretrained \\
        --data /data/imagenet/val --label-file /data/imagenet/val_labels.txt --dtype bf16 --out runs/eva02_m38m
    python -m calcas.extract mc --model meta-llama/Meta-Llama-3-8B-Instruct --task mmlu --data hf \\
        --dtype bf16 --out runs/llama3_8b_mmlu
    python -m calcas.extract generate --model meta-llama/Meta-Llama-3-8B-Instruct --task gsm8k --data hf \\
        --dtype bf16 --out runs/llama3_8b_gsm8k
    python -m calcas.extract mc --backend vllm --tensor-parallel-size 8 \\
        --model meta-llama/Meta-Llama-3-70B-Instruct --task mmlu --data hf --out runs/llama3_70b_mmlu

A killed job re-run with the same command resumes where it stopped (finished ids are skipped;
the manifest must match). Each run times its model work: the merged record set's
``manifest["cost"]`` holds the seconds per item, the device and, for timm models, the GFLOPs per
image (:func:`_run`). ``--data`` is a local file or folder, ``hf`` (the task's Hugging Face
default, see :data:`calcas.extract.tasks.TASKS`) or ``hf:<dataset id or dir>[:<config>]``.
The vLLM backend runs in one process (vLLM shards the model over ``--tensor-parallel-size``
GPUs itself); the timm and transformers backends are data-parallel under torchrun.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..records import Records, RecordsError, read_records, same_records, write_records
from .common import seeded_rows
from .parallel import DistContext, distributed_context, rank_slice
from .shards import check_manifest, done_ids, extract, merge_shards

__all__ = ["extract_generation", "extract_models", "extract_multiple_choice", "extract_vision", "main",
           "record_name", "seeded_subset"]


def seeded_subset(ids: Sequence[str], n: int | None, seed: int = 0) -> list[str]:
    """``n`` ids drawn without replacement with ``seed``, kept in their original order (all ids
    when ``n`` is None). The same call gives the same subset on every rank and every re-run."""
    ids = list(ids)
    return [ids[i] for i in seeded_rows(len(ids), n, seed)]


def _device_name(device: str) -> str:
    """``"cpu"``, or the kind and model of an accelerator: ``"cuda (NVIDIA H200)"`` (no index, so
    that the ranks of one machine name one device)."""
    if not device.startswith("cuda"):
        return device
    import torch
    return f"cuda ({torch.cuda.get_device_name(device)})"


def _run_cost(device: str, gflops: tuple[float | None, str | None] = (None, None)) -> dict:
    return {"device": _device_name(device), "gflops_per_item": gflops[0], "gflops_source": gflops[1]}


def _run(all_ids: Sequence[str], make_batches: Callable[[set[str]], Iterator[dict]], out: str | os.PathLike, *,
         records: str | os.PathLike | None, manifest: dict, ctx: DistContext, progress: bool, shard_size: int,
         cost: dict | None = None, finish: Callable[[Records], Records] | None = None,
         resize_world: bool = False) -> Path:
    """This rank's share of ``all_ids`` minus the finished ones → shards; rank 0 merges exactly
    ``all_ids``, passes the merged rows through ``finish`` (e.g. to attach ground truth) and writes
    the record set. The manifest is checked on every run, also when nothing is left to extract.

    Given ``cost`` (the device and GFLOPs per item), every rank times the batches it produces (see
    :func:`calcas.extract.shards.extract`); the record set's ``manifest["cost"]`` is
    ``{"seconds_per_item", "items_timed", "device", "gflops_per_item", "gflops_source"}`` over
    all timed runs and ranks, weighted by their items. It is informational: it takes no part in the
    manifest check, and a re-run that extracts nothing leaves it, and the record set, as they were."""
    shards = Path(out) / "shards"
    check_manifest(shards, manifest, planned_ids=all_ids)
    finished = done_ids(shards)  # empty for a new job
    mine = [i for i in rank_slice(all_ids, ctx.rank, ctx.world_size) if i not in finished]
    if mine:
        extract(make_batches(set(mine)), shards, manifest=manifest, shard_size=shard_size, rank=ctx.rank,
                world_size=ctx.world_size, planned_ids=all_ids, progress=progress, total=len(mine), cost=cost,
                resize_world=resize_world)
    ctx.barrier()
    path = Path(records) if records is not None else Path(out) / "records.parquet"
    if ctx.is_main:
        records = merge_shards(shards, manifest=manifest, planned_ids=all_ids)
        records = finish(records) if finish is not None else records
        if _holds(path, records):
            print(f"{records.n} rows, unchanged: {path}", flush=True)
        else:
            write_records(records, path)
            print(f"{records.n} rows -> {path}", flush=True)
    ctx.barrier()
    return path


def _holds(path: Path, records: Records) -> bool:
    """Whether ``path`` already is this record set (a re-run that found every id done): then it
    is left as it is, its creation time included. An unreadable file is simply rewritten."""
    if not path.exists():
        return False
    try:
        return same_records(read_records(path), records)
    except (RecordsError, OSError):
        return False


def _with_context(job: Callable[[DistContext], Path], ctx: DistContext | None) -> Path:
    own = ctx is None
    ctx = ctx or distributed_context()
    try:
        return job(ctx)
    finally:
        if own:
            ctx.close()


def extract_vision(model: str, data: str, out: str | os.PathLike, *, pretrained: bool = False,
                   label_file: str | None = None, split: str = "validation", records: str | os.PathLike | None = None,
                   n: int | None = None, seed: int = 0, batch_size: int = 64, num_workers: int | None = None,
                   dtype: str | None = None, channels_last: bool = True, compile: bool = False,
                   imagenet_real: bool = False, shard_size: int = 4096, progress: bool = True,
                   ctx: DistContext | None = None, resize_world: bool = False) -> Path:
    """Logits of a timm classifier over an image data set, as a record set.

    Parameters
    ----------
    model : str
        A timm model name (with ``pretrained`` where a hub is reachable) or a checkpoint file
        (:func:`calcas.extract.vision.load_model`).
    data : str
        An image folder (class sub-folders, or flat with ``label_file``;
        :func:`calcas.extract.vision.image_dataset`) or ``hf:<dataset id or dir>[:<config>]``
        with ``image`` and ``label`` columns (:func:`calcas.extract.vision.hf_image_dataset`).
    out : path
        The job folder: resumable shards in ``out/shards/``.
    records : path, optional
        Where rank 0 writes the merged record set; default ``out/records.parquet``.
    n, seed : int
        A seeded subset of n images (default all).
    num_workers : int, optional
        DataLoader workers decoding images; default ``min(8, os.cpu_count())``.
    dtype : {None, "bf16", "fp16", "fp32"}
        Autocast dtype on GPU. Logits are stored as float16 (B, C).
    imagenet_real : bool, default False
        The data is the ImageNet-1k val set (file names ``ILSVRC2012_val_%08d.JPEG``): the merged
        rows get the ImageNet ReaL labels as ``valid_labels``
        (:func:`calcas.datasets.public.with_imagenet_real`) before the record set is written.
        The file names and the ReaL file are checked before any image is run.
    ctx : DistContext, optional
        Default: from the torchrun environment (one process when there is none).
    resize_world : bool, default False
        Continue a job folder started with another number of ranks: the done ids are kept and
        the rest is split anew (stop every writer first; see :class:`calcas.extract.shards.ShardWriter`).
        Without it, a world size other than the folder's is refused.

    Returns
    -------
    Path
        The merged record set: ``logits`` (N, C) float16, ``pred`` the argmax, ``label`` (-1 unknown)
        and, with ``imagenet_real``, ``valid_labels``; ``manifest["cost"]`` has the GFLOPs per image
        of :func:`calcas.extract.vision.forward_gflops` (see :func:`_run`).
    """
    from . import vision

    def job(ctx: DistContext) -> Path:
        net, data_config = vision.load_model(model, pretrained=pretrained)
        if data.startswith("hf:"):
            dataset = vision.hf_image_dataset(data[3:], data_config, split=split)
        else:
            dataset = vision.image_dataset(data, data_config, label_file=label_file)
        all_ids = seeded_subset(dataset.ids, n, seed)
        finish = None
        if imagenet_real:  # on every rank, so that none waits at a barrier for one that failed
            from ..datasets.public import imagenet_real_labels, with_imagenet_real
            imagenet_real_labels(all_ids)  # fails now, not after the extraction, on other file names
            finish = with_imagenet_real
        checkpoint = model if Path(model).is_file() else None
        manifest = vision.vision_manifest(Path(model).stem if checkpoint else model, data_config, data,
                                          checkpoint=checkpoint, dtype=dtype, batch_size=batch_size)
        # "pretrained" is recorded so that a resumed job cannot mix hub weights with random ones
        manifest.update(split=split, subset={"n": n, "seed": seed}, pretrained=bool(pretrained and not checkpoint),
                        producer="calcas.extract.jobs vision")

        def batches(mine: set[str]) -> Iterator[dict]:
            return vision.vision_batches(net, dataset.without(set(dataset.ids) - mine), batch_size=batch_size,
                                         num_workers=num_workers if num_workers is not None
                                         else min(8, os.cpu_count() or 1), device=ctx.device, dtype=dtype,
                                         channels_last=channels_last, compile=compile)

        return _run(all_ids, batches, out, records=records, manifest=manifest, ctx=ctx, progress=progress,
                    shard_size=shard_size, cost=_run_cost(ctx.device, vision.forward_gflops(net, data_config)),
                    finish=finish, resize_world=resize_world)

    return _with_context(job, ctx)


def _language_model(model: str, backend: str, *, dtype: str | None, device: str, revision: str | None,
                    tensor_parallel_size: int, logprobs_mode: str, world_size: int):
    if backend == "vllm":
        if world_size > 1:
            raise ValueError("backend: vllm runs in one process (it shards the model over "
                             "--tensor-parallel-size GPUs itself); do not launch it with torchrun")
        from .vllm_backend import load_vllm
        return load_vllm(model, tensor_parallel_size=tensor_parallel_size, dtype=dtype or "auto",
                         logprobs_mode=logprobs_mode, revision=revision)
    if backend != "transformers":
        raise ValueError(f"backend: must be 'transformers' or 'vllm', got {backend!r}")
    from .language import load_causal_lm
    path = Path(model)
    gguf = path.name if path.suffix == ".gguf" else None
    return load_causal_lm(path.parent if gguf else model, gguf_file=gguf, dtype=dtype, device=device,
                          revision=revision)


def _lm_manifest(model: str, backend: str, tokenizer: Any, *, task: str, data: str, split: str | None,
                 mode: str, dtype: str | None, revision: str | None, use_chat_template: bool, decoding: dict,
                 n: int | None, seed: int, prompt_template: str | None = None) -> dict:
    from .language import MC_TEMPLATE, lm_manifest
    path = Path(model)
    weights = path if path.is_file() else None
    extra = {"task": task, "data": data, "subset": {"n": n, "seed": seed},
             "producer": f"calcas.extract.jobs ({backend})"}
    if backend == "vllm":
        import vllm
        extra["vllm_version"] = vllm.__version__
    return lm_manifest(model, dataset=task, split=split or "default", mode=mode, revision=revision,
                       weights_file=weights, dtype=dtype, tokenizer=tokenizer, use_chat_template=use_chat_template,
                       prompt_template=prompt_template or MC_TEMPLATE, decoding=decoding, backend=backend,
                       extra=extra)


def extract_multiple_choice(model: str, task: str, data: str, out: str | os.PathLike, *,
                            mode: str = "first_token", backend: str = "transformers", split: str | None = None,
                            config: str | None = None, records: str | os.PathLike | None = None, n: int | None = None,
                            seed: int = 0, batch_size: int = 8, dtype: str | None = None,
                            revision: str | None = None, use_chat_template: bool = True,
                            tensor_parallel_size: int = 1, shard_size: int = 1024, progress: bool = True,
                            ctx: DistContext | None = None, resize_world: bool = False) -> Path:
    """Option logits of a causal LM on a multiple-choice task (MMLU, ARC), as a record set.

    Parameters
    ----------
    model : str
        Hub id, local model folder, or a ``.gguf`` file.
    task : {"mmlu", "arc"}
        See :data:`calcas.extract.tasks.TASKS`.
    data : str
        A local file, ``"hf"`` (the task's Hugging Face default) or ``"hf:<id or dir>[:<config>]"``.
    mode : {"first_token", "option_likelihood"}
        The scoring (:func:`calcas.extract.language.mc_batches`).
    backend : {"transformers", "vllm"}
        vLLM (:mod:`calcas.extract.vllm_backend`) for models that need tensor parallelism.
    n, seed : int
        A seeded subset of n questions (default all).

    Returns
    -------
    Path
        The merged record set: ``logits`` (N, k) over the k options (log-probabilities up to a
        per-row constant: softmax and temperature scaling are unaffected), ``label`` the given answer.
        ``manifest["cost"]`` (:func:`_run`) has ``gflops_per_item`` None: prompts differ in length,
        and no offline count per item is both cheap and reliable for every backend.
    """
    from .tasks import TASKS, task_items
    if task not in TASKS or TASKS[task].kind != "mc":
        raise ValueError(f"task: {task!r} is not a multiple-choice task; expected one of "
                         f"{sorted(t for t, v in TASKS.items() if v.kind == 'mc')}")

    def job(ctx: DistContext) -> Path:
        items = task_items(task, data, split=split, config=config)
        all_ids = seeded_subset([it["id"] for it in items], n, seed)
        lm, tokenizer = _language_model(model, backend, dtype=dtype, device=ctx.device, revision=revision,
                                        tensor_parallel_size=tensor_parallel_size, logprobs_mode="raw_logprobs",
                                        world_size=ctx.world_size)
        manifest = _lm_manifest(model, backend, tokenizer, task=task, data=data, split=split, mode=mode,
                                dtype=dtype, revision=revision, use_chat_template=use_chat_template,
                                decoding={"strategy": "score options", "mode": mode}, n=n, seed=seed)
        if backend == "vllm":
            from .vllm_backend import vllm_mc_batches as score
        else:
            from .language import mc_batches as score

        def batches(mine: set[str]) -> Iterator[dict]:
            return score(lm, tokenizer, [it for it in items if it["id"] in mine], mode=mode, batch_size=batch_size,
                         use_chat_template=use_chat_template)

        return _run(all_ids, batches, out, records=records, manifest=manifest, ctx=ctx, progress=progress,
                    shard_size=shard_size, cost=_run_cost(ctx.device), resize_world=resize_world)

    return _with_context(job, ctx)


def extract_generation(model: str, task: str, data: str, out: str | os.PathLike, *, source: str = "score",
                       backend: str = "transformers", split: str | None = None, config: str | None = None,
                       records: str | os.PathLike | None = None, n: int | None = None, seed: int = 0,
                       batch_size: int = 8, max_new_tokens: int | None = None, dtype: str | None = None,
                       revision: str | None = None,
                       use_chat_template: bool = True, tensor_parallel_size: int = 1, shard_size: int = 256,
                       progress: bool = True, ctx: DistContext | None = None,
                       resize_world: bool = False) -> Path:
    """Greedy completions of a causal LM on a generation task (GSM8K, MBPP, BigCodeBench), graded
    by the task's verifier (code runs only in the sandbox), as a record set.

    Parameters
    ----------
    task : {"gsm8k", "mbpp", "bigcodebench"}
        See :data:`calcas.extract.tasks.TASKS`.
    source : {"score", "confidence"}
        ``"score"``: the mean logit of the generated tokens (the Platt input, SPEC §1);
        ``"confidence"``: their joint likelihood.
    max_new_tokens : int, optional
        Default: the task's.

    Returns
    -------
    Path
        The merged record set: ``verified`` in {0, 1}, ``pred`` = ``label`` = -1 (free text), and
        ``score`` (N,) or ``confidence`` (N,). ``manifest["cost"]`` (:func:`_run`) has
        ``gflops_per_item`` None, as for :func:`extract_multiple_choice`.
    """
    from .tasks import TASKS, task_items
    if task not in TASKS or TASKS[task].kind != "generate":
        raise ValueError(f"task: {task!r} is not a generation task; expected one of "
                         f"{sorted(t for t, v in TASKS.items() if v.kind == 'generate')}")
    if source not in ("score", "confidence"):
        raise ValueError(f"source: must be 'score' or 'confidence', got {source!r}")
    spec = TASKS[task]
    max_new_tokens = max_new_tokens or spec.max_new_tokens

    def job(ctx: DistContext) -> Path:
        items = task_items(task, data, split=split, config=config)
        all_ids = seeded_subset([it["id"] for it in items], n, seed)
        logprobs_mode = "raw_logits" if source == "score" else "raw_logprobs"
        lm, tokenizer = _language_model(model, backend, dtype=dtype, device=ctx.device, revision=revision,
                                        tensor_parallel_size=tensor_parallel_size, logprobs_mode=logprobs_mode,
                                        world_size=ctx.world_size)
        manifest = _lm_manifest(model, backend, tokenizer, task=task, data=data, split=split, mode="generate",
                                dtype=dtype, revision=revision, use_chat_template=use_chat_template,
                                decoding={"strategy": "greedy", "max_new_tokens": max_new_tokens, "source": source},
                                n=n, seed=seed, prompt_template=spec.prompt_template)

        def batches(mine: set[str]) -> Iterator[dict]:
            todo = [it for it in items if it["id"] in mine]
            if backend == "vllm":
                from .vllm_backend import vllm_generate_batches
                return vllm_generate_batches(lm, tokenizer, todo, max_new_tokens=max_new_tokens, verifier=spec.verify,
                                             logprobs_mode=logprobs_mode, batch_size=batch_size,
                                             use_chat_template=use_chat_template, source=source)
            from .language import generate_batches
            return generate_batches(lm, tokenizer, todo, max_new_tokens=max_new_tokens, verifier=spec.verify,
                                    batch_size=batch_size, use_chat_template=use_chat_template, source=source)

        return _run(all_ids, batches, out, records=records, manifest=manifest, ctx=ctx, progress=progress,
                    shard_size=shard_size, cost=_run_cost(ctx.device), resize_world=resize_world)

    return _with_context(job, ctx)


def record_name(model: str, task: str | None = None) -> str:
    """A file-name-safe record-set name: the model's last path part (hub org and a weights-file
    suffix dropped), prefixed by the task: ``record_name("meta-llama/Meta-Llama-3-8B-Instruct", "mmlu")``
    is ``"mmlu_Meta-Llama-3-8B-Instruct"``."""
    base = Path(str(model).rstrip("/")).name
    for suffix in (".gguf", ".safetensors", ".pth", ".pt", ".bin"):
        base = base.removesuffix(suffix)
    base = "".join(c if c.isalnum() or c in "._-" else "_" for c in base)
    return f"{task}_{base}" if task else base


def extract_models(source: str, models: Sequence[str], records_dir: str | os.PathLike, *, data: str,
                   task: str = "", label_file: str = "", mode: str = "first_token", n: int | None = None,
                   seed: int = 0, batch_size: int = 0, dtype: str = "", tensor_parallel_size: int = 1,
                   pretrained: bool = True, imagenet_real: bool = False, progress: bool = True) -> dict[str, Path]:
    """Run one extraction job per model (what ``01_extract`` does for its GPU sources).

    Parameters
    ----------
    source : {"timm", "transformers", "vllm"}
        The backend.
    models : list of str
        timm names / checkpoint files, or LM hub ids / folders / ``.gguf`` files.
    records_dir : path
        Record sets go to ``records_dir/<record_name(model, task)>.parquet``, their resumable
        shards to ``records_dir/jobs/<same name>/``.
    data, task, label_file, mode, n, seed
        As in :func:`extract_vision` / :func:`extract_multiple_choice` / :func:`extract_generation`
        (``task`` picks multiple choice or generation; empty strings mean "not given").
    batch_size : int
        0: the backend's default (64 images, 8 prompts on transformers, 64 on vLLM).
    imagenet_real : bool
        timm only: attach the ImageNet ReaL labels (``valid_labels``) to the record sets of the
        val set before they are written (:func:`extract_vision`).

    Returns
    -------
    dict
        record-set name -> path of the merged record set.
    """
    from .tasks import TASKS
    if source not in ("timm", "transformers", "vllm"):
        raise ValueError(f"source: must be 'timm', 'transformers' or 'vllm', got {source!r}")
    if not data:
        raise ValueError(f"data: {source} needs a data set (a folder or file, 'hf' or 'hf:<id>')")
    if source != "timm" and task not in TASKS:
        raise ValueError(f"task: {source} needs one of {sorted(TASKS)}, got {task!r}")
    records_dir = Path(records_dir)
    paths = {}
    for model in models:
        name = record_name(model, None if source == "timm" else task)
        common = dict(records=records_dir / f"{name}.parquet", n=n, seed=seed, dtype=dtype or None, progress=progress)
        out = records_dir / "jobs" / name
        if source == "timm":
            path = extract_vision(model, data, out, pretrained=pretrained, label_file=label_file or None,
                                  batch_size=batch_size or 64, imagenet_real=imagenet_real, **common)
        elif TASKS[task].kind == "mc":
            path = extract_multiple_choice(model, task, data, out, mode=mode, backend=source,
                                           batch_size=batch_size or (64 if source == "vllm" else 8),
                                           tensor_parallel_size=tensor_parallel_size, **common)
        else:
            path = extract_generation(model, task, data, out, backend=source,
                                      batch_size=batch_size or (64 if source == "vllm" else 8),
                                      tensor_parallel_size=tensor_parallel_size, **common)
        paths[name] = path
    return paths


def _common(p: argparse.ArgumentParser, batch_size: int) -> None:
    p.add_argument("--model", required=True, help="model name / hub id, local folder or weights file")
    p.add_argument("--data", required=True, help="local file or folder, 'hf', or 'hf:<id or dir>[:<config>]'")
    p.add_argument("--out", required=True, help="job folder (resumable shards in OUT/shards)")
    p.add_argument("--records", default=None, help="merged record set path (default OUT/records.parquet)")
    p.add_argument("--split", default=None, help="data set split (Hugging Face data)")
    p.add_argument("--n", type=int, default=None, help="a seeded subset of n items (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--dtype", default=None, help="bf16, fp16 or fp32 (default: the model's / fp32 on CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--resize-world", action="store_true",
                   help="continue a job folder started with another number of ranks (stop every writer first)")


def _language_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--config", default=None, help="Hugging Face data set config")
    p.add_argument("--backend", choices=("transformers", "vllm"), default="transformers")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM only")
    p.add_argument("--revision", default=None, help="hub commit of the weights")
    p.add_argument("--no-chat-template", action="store_true", help="plain prompts even if the model has a template")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m calcas.extract {vision,mc,generate} ...`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m calcas.extract",
                                     description="Resumable, data-parallel extraction of record sets from real models.")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("vision", help="a timm classifier over an image folder or HF image data set")
    _common(v, 64)
    v.add_argument("--pretrained", action="store_true", help="load the hub weights of a named model")
    v.add_argument("--label-file", default=None, help="file-name/label pairs for a flat image folder")
    v.add_argument("--workers", type=int, default=None, help="image decoding workers (default min(8, CPUs))")
    v.add_argument("--compile", action="store_true", help="torch.compile the model")
    v.add_argument("--no-channels-last", action="store_true")
    v.add_argument("--imagenet-real", action="store_true",
                   help="ImageNet-1k val: attach the ReaL labels (valid_labels) to the record set")
    m = sub.add_parser("mc", help="a causal LM on a multiple-choice task (mmlu, arc)")
    _common(m, 8)
    _language_options(m)
    m.add_argument("--mode", choices=("first_token", "option_likelihood"), default="first_token")
    g = sub.add_parser("generate", help="a causal LM on a generation task (gsm8k, mbpp, bigcodebench)")
    _common(g, 8)
    _language_options(g)
    g.add_argument("--source", choices=("score", "confidence"), default="score",
                   help="mean generated-token logit (Platt input) or joint likelihood")
    g.add_argument("--max-new-tokens", type=int, default=None, help="default: the task's")
    args = parser.parse_args(argv)
    shared = dict(records=args.records, n=args.n, seed=args.seed, batch_size=args.batch_size, dtype=args.dtype,
                  progress=not args.no_progress, resize_world=args.resize_world)
    if args.command == "vision":
        extract_vision(args.model, args.data, args.out, pretrained=args.pretrained, label_file=args.label_file,
                       split=args.split or "validation", num_workers=args.workers, compile=args.compile,
                       channels_last=not args.no_channels_last, imagenet_real=args.imagenet_real, **shared)
        return 0
    language = dict(backend=args.backend, split=args.split, config=args.config, revision=args.revision,
                    use_chat_template=not args.no_chat_template, tensor_parallel_size=args.tensor_parallel_size,
                    **shared)
    if args.command == "mc":
        extract_multiple_choice(args.model, args.task, args.data, args.out, mode=args.mode, **language)
    else:
        extract_generation(args.model, args.task, args.data, args.out, source=args.source,
                           max_new_tokens=args.max_new_tokens, **language)
    return 0


if __name__ == "__main__":
    sys.exit(main())
