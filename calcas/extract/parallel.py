"""Data-parallel extraction: split the ids between ranks, write shards per rank, merge on rank 0.

Launch one process per rank with ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``); each process takes its :func:`rank_slice` of the ids, skips those already
done, writes its shards through :class:`~calcas.extract.shards.ShardWriter` into the shared
directory, and after a barrier rank 0 merges with :func:`~calcas.extract.shards.merge_shards`.
As the merge sorts rows by id, the record set is the same for any number of ranks.

Command line (a tiny deterministic torch model on synthetic inputs, to exercise the path)::

    python -m calcas.extract.parallel demo --out DIR --n 1000
    torchrun --standalone --nproc_per_node 2 -m calcas.extract.parallel -- demo --out DIR --n 1000

(the ``--`` stops torchrun's own parser from reading ``--n`` as an abbreviation of its options).

torch is imported only where needed, so importing this module does not require it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Iterator, Sequence

import numpy as np

from .common import batched, torch_dtype
from .shards import done_ids, extract, merge_shards

__all__ = ["DistContext", "distributed_context", "main", "rank_slice", "run_demo"]


def rank_slice(ids: Sequence[str], rank: int, world_size: int) -> list[str]:
    """The ids rank ``rank`` of ``world_size`` processes handles: every ``world_size``-th id.

    Parameters
    ----------
    ids : sequence of str
        All ids of the job, in the same order on every rank. Call this on the full list and
        skip done ids afterwards, so that resuming does not move ids between ranks.
    rank : int
        This process's rank, ``0 <= rank < world_size``.
    world_size : int
        Number of ranks (>= 1).

    Returns
    -------
    list of str
        ``ids[rank::world_size]``: the slices of all ranks are disjoint, cover every id, and
        differ in size by at most one.

    Raises
    ------
    ValueError
        On a bad ``rank`` / ``world_size``, or repeated ids (naming one).
    """
    if isinstance(world_size, bool) or not isinstance(world_size, (int, np.integer)) or world_size < 1:
        raise ValueError(f"world_size: must be a positive integer, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise ValueError(f"rank: must satisfy 0 <= rank < world_size={world_size}, got {rank!r}")
    ids = list(ids)
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        again = next(i for i in ids if i in seen or seen.add(i))
        raise ValueError(f"ids: {again!r} appears more than once")
    return ids[int(rank)::int(world_size)]


class DistContext:
    """Where this process sits in a (possibly single-process) data-parallel job.

    Built by :func:`distributed_context`; usable as a context manager that tears down the
    process group it created.

    Parameters
    ----------
    rank, world_size, local_rank : int
        From the ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` environment variables.
    backend : str or None
        ``"gloo"`` or ``"nccl"`` when torch.distributed is in use, else None.
    device : str
        ``"cuda:{local_rank}"`` when CUDA is available, else ``"cpu"``.
    owns_group : bool
        Whether this context initialised the process group (and so destroys it on close).
    """

    def __init__(self, rank: int, world_size: int, local_rank: int, backend: str | None, device: str,
                 owns_group: bool = False) -> None:
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.backend = backend
        self.device = device
        self.owns_group = owns_group

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the rank that merges)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank gets here; a no-op for a single process."""
        if self.backend is None:
            return
        import torch.distributed as dist
        if self.backend == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group when this context created it."""
        if self.owns_group:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False

    def __enter__(self) -> "DistContext":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"DistContext(rank={self.rank}, world_size={self.world_size}, local_rank={self.local_rank}, "
                f"backend={self.backend!r}, device={self.device!r})")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected an integer in the environment, got {raw!r}") from None


def distributed_context(backend: str | None = None) -> DistContext:
    """Read the torchrun environment and, with several ranks, initialise torch.distributed.

    Parameters
    ----------
    backend : str, optional
        Process-group backend; default ``"nccl"`` when CUDA is available, else ``"gloo"``.

    Returns
    -------
    DistContext
        rank, world size, local rank, backend (None for one process) and device. With
        ``WORLD_SIZE`` > 1 the default process group is initialised from the environment
        (``MASTER_ADDR`` / ``MASTER_PORT``, as torchrun sets them) unless it already is.

    Raises
    ------
    ValueError
        When the environment variables are not consistent integers.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"RANK/WORLD_SIZE: need 0 <= RANK < WORLD_SIZE, got RANK={rank}, WORLD_SIZE={world_size}")
    try:
        import torch
        cuda = torch.cuda.is_available()
    except ImportError:
        if world_size > 1:
            raise
        cuda = False
    device = f"cuda:{local_rank}" if cuda else "cpu"
    if world_size == 1:
        return DistContext(rank, world_size, local_rank, None, device)
    import torch.distributed as dist
    if dist.is_initialized():
        return DistContext(rank, world_size, local_rank, dist.get_backend(), device)
    backend = backend or ("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistContext(rank, world_size, local_rank, backend, device, owns_group=True)


def _demo_ids(n: int) -> list[str]:
    return [f"item-{i:06d}" for i in range(n)]


def _demo_model(n: int, classes: int, dim: int, seed: int, device: str) -> tuple[Any, Any, np.ndarray]:
    """A seeded Linear model, seeded inputs (n, dim) and labels (n,)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen)
    labels = torch.randint(0, classes, (n,), generator=gen).numpy()
    model = torch.nn.Linear(dim, classes)
    with torch.no_grad():
        model.weight.copy_(torch.randn(classes, dim, generator=gen))
        model.bias.copy_(0.1 * torch.randn(classes, generator=gen))
        x = x + 0.8 * model.weight[torch.from_numpy(labels)]  # make the model right more often than chance
    return model.to(device).eval(), x.to(device), labels


def run_demo(out: str | os.PathLike, n: int, *, merged: str | os.PathLike | None = None, batch_size: int = 16,
             shard_size: int = 64, classes: int = 5, dim: int = 8, seed: int = 0, dtype: str = "fp16",
             delay: float = 0.0, progress: bool = True, ctx: DistContext | None = None) -> int:
    """Extract a tiny deterministic torch model's logits over ``n`` synthetic ids, data-parallel.

    Parameters
    ----------
    out : path
        The extraction directory (shared by all ranks).
    n : int
        Number of synthetic ids ``item-000000`` ... .
    merged : path, optional
        Where rank 0 writes the merged record set; default ``out/records.parquet``.
    batch_size, shard_size : int
        Rows per model batch and per shard.
    classes, dim, seed : int
        Model size and the seed of weights, inputs and labels.
    dtype : {"fp16", "fp32"}
        The dtype in which logits are stored.
    delay : float
        Seconds to sleep per batch (to make a run slow enough to interrupt in tests).
    progress : bool
        Show a progress bar.
    ctx : DistContext, optional
        Default :func:`distributed_context`.

    Returns
    -------
    int
        Rows written by this rank in this call.

    Notes
    -----
    Each row's logits come from its own forward pass of shape (1, dim), so they are bitwise
    the same whichever batch or rank computes them.
    """
    import torch
    if n < 1:
        raise ValueError(f"n: must be at least 1, got {n}")
    if dtype not in ("fp16", "fp32"):
        raise ValueError(f"dtype: must be 'fp16' or 'fp32', got {dtype!r}")
    own_ctx = ctx is None
    ctx = ctx or distributed_context()
    try:
        logits_dtype = torch_dtype(dtype)
        model, x, labels = _demo_model(n, classes, dim, seed, ctx.device)
        ids = _demo_ids(n)
        index = {i: k for k, i in enumerate(ids)}
        done = done_ids(out)
        todo = [i for i in rank_slice(ids, ctx.rank, ctx.world_size) if i not in done]
        manifest = {"model": f"demo-linear-{dim}x{classes}-seed{seed}", "dataset": f"synthetic-{n}",
                    "split": None, "extraction": {"dtype": dtype}}

        def batches() -> Iterator[dict[str, Any]]:
            for chunk in batched(todo, batch_size):
                rows = [index[i] for i in chunk]
                with torch.no_grad():
                    z = torch.cat([model(x[r:r + 1]) for r in rows]).to(logits_dtype).cpu()
                if delay:
                    time.sleep(delay)
                yield {"id": chunk, "pred": z.float().argmax(dim=1).numpy(), "label": labels[rows],
                       "logits": z.numpy()}

        written = extract(batches(), out, manifest=manifest, shard_size=shard_size, rank=ctx.rank,
                          world_size=ctx.world_size, planned_ids=ids, progress=progress, total=len(todo))
        ctx.barrier()
        if ctx.is_main:
            path = merged if merged is not None else os.path.join(out, "records.parquet")
            records = merge_shards(out, path=path, manifest=manifest, planned_ids=ids)
            print(f"merged {records.n} rows from {records.manifest['n_shards']} shards into {path}", flush=True)
        ctx.barrier()
        return written
    finally:
        if own_ctx:
            ctx.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m calcas.extract.parallel demo --out DIR --n N [options]``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(prog="python -m calcas.extract.parallel",
                                     description="Data-parallel, resumable extraction of record sets.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="extract a tiny deterministic torch model over synthetic ids")
    demo.add_argument("--out", required=True, help="extraction directory (shared by all ranks)")
    demo.add_argument("--n", type=int, required=True, help="number of synthetic ids")
    demo.add_argument("--merged", default=None, help="merged record set path (default OUT/records.parquet)")
    demo.add_argument("--batch-size", type=int, default=16)
    demo.add_argument("--shard-size", type=int, default=64)
    demo.add_argument("--classes", type=int, default=5)
    demo.add_argument("--dim", type=int, default=8)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16")
    demo.add_argument("--delay", type=float, default=0.0, help="seconds to sleep per batch")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    run_demo(args.out, args.n, merged=args.merged, batch_size=args.batch_size, shard_size=args.shard_size,
             classes=args.classes, dim=args.dim, seed=args.seed, dtype=args.dtype, delay=args.delay,
             progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
