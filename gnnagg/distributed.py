"""Multi-process data-parallel training with ``torch.distributed``.

One code path serves one process, ``N`` processes spawned on this machine
(``--world-size N``) and processes started by ``torchrun`` (or any launcher
that sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``, e.g. on several machines). The backend is ``gloo`` on CPU
and ``nccl`` on GPUs.

A runner

1. prepares its data set once in the launching process (so that workers
   only read the processed files) and calls :func:`launch`;
2. wraps its model with :func:`wrap_model` (``DistributedDataParallel``
   when there is more than one process: gradients are averaged, so all
   ranks keep identical parameters);
3. shards training examples with :func:`train_sampler` (a
   ``DistributedSampler``; call ``set_epoch`` every epoch);
4. shards evaluation with :func:`eval_shard` and collects predictions on
   every rank, in the original order, with :func:`gather_predictions`, so
   that the metric equals a single-process evaluation.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import socket
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

#: Environment variables a torchrun-style launcher sets.
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclasses.dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world_size`` processes,
    ``local_rank`` on its machine, the ``device`` it computes on and the
    ``backend`` (``None`` when running alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def default_backend(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def under_launcher() -> bool:
    """Whether a torchrun-style launcher started this process as one of
    several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def check_device(device: Optional[str]) -> None:
    """A ``ValueError`` unless ``device`` (``'cpu'``, ``'cuda'``,
    ``'cuda:1'``, ...; :obj:`None` picks one) can be used here."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA device is available here")


def _device_for(local_rank: int, device: Optional[str]) -> torch.device:
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local_rank)
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def from_env(device: Optional[str] = None, backend: Optional[str] = None) -> Context:
    """Join the process group described by torchrun-style environment
    variables; a lone process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) gets a
    non-distributed :class:`Context`."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context(device=_device_for(0, device))
    missing = [v for v in LAUNCHER_VARS if v not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={world_size} but the launcher did not set {missing}")
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    dev = _device_for(local_rank, device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = backend or default_backend(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world_size)
    return Context(rank, world_size, local_rank, dev, backend)


def _worker(local_rank: int, fn: Callable, args: tuple, world_size: int, port: int,
            device: Optional[str], backend: Optional[str], result_file: str) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank),
                      WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from .utils import apply_threads

    apply_threads()
    ctx = from_env(device, backend)
    try:
        result = fn(ctx, *args)
        if ctx.is_main:
            tmp = result_file + ".partial"
            torch.save(result, tmp)
            os.replace(tmp, result_file)
        del result
    except BaseException as exc:
        traceback.clear_frames(exc.__traceback__)  # drop fn's models with its frames
        raise
    finally:
        release_process_group()


def release_process_group() -> None:
    """Free what still refers to the default process group (a
    ``DistributedDataParallel`` model's reducer does), then destroy it.

    Order matters with gloo: a group whose last reference goes with a
    reducer is destroyed while that thread holds the GIL, and it joins a
    worker thread that may be waiting for the GIL to free its last work item,
    a deadlock that hung a two-step DDP script within its first ten runs
    (PyTorch 2.13, CPU). Destroyed by
    :func:`torch.distributed.destroy_process_group` after a garbage
    collection, the same script ran 190 times without one."""
    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()


def launch(fn: Callable[..., Any], args: Sequence[Any] = (), world_size: int = 1,
           device: Optional[str] = None, backend: Optional[str] = None) -> Any:
    """Run ``fn(ctx, *args)`` and return rank 0's result.

    * Under a torchrun-style launcher (``WORLD_SIZE`` set), this process
      joins the group and runs ``fn`` as its own rank; ``world_size`` must
      be 1 or equal ``WORLD_SIZE``.
    * Else with ``world_size > 1``, spawns that many processes on this
      machine (rendezvous on 127.0.0.1), which must be able to import
      ``fn`` (a module-level function) and to pickle ``args``.
    * Else runs ``fn`` in this process.

    Non-zero ranks return ``None`` under a launcher.
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer (got {world_size!r})")
    env_size = int(os.environ.get("WORLD_SIZE", "1"))
    if env_size > 1:
        if world_size not in (1, env_size):
            raise ValueError(f"world_size={world_size} conflicts with the launcher's "
                             f"WORLD_SIZE={env_size}")
        ctx = from_env(device, backend)
        result = fn(ctx, *args)
        return result if ctx.is_main else None
    if world_size == 1:
        return fn(from_env(device, backend), *args)
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="gnnagg-dist-") as tmp:
        result_file = str(Path(tmp) / "rank0.pt")
        mp.spawn(_worker, args=(fn, tuple(args), world_size, free_port(), device, backend,
                                result_file), nprocs=world_size, join=True)
        return torch.load(result_file, weights_only=False)


def wrap_model(model: torch.nn.Module, ctx: Context,
               find_unused_parameters: bool = False) -> torch.nn.Module:
    """``model`` on ``ctx.device``, in ``DistributedDataParallel`` when
    there are several processes (parameters are broadcast from rank 0)."""
    model = model.to(ctx.device)
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids,
                                   find_unused_parameters=find_unused_parameters)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper."""
    return getattr(model, "module", model)


class _Range:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def train_sampler(num_examples: int, ctx: Context, seed: int, shuffle: bool = True):
    """A ``DistributedSampler`` over positions ``0 .. num_examples - 1`` for
    this rank (one replica when alone); call ``set_epoch(epoch)`` before each
    epoch so that every epoch has a fresh, rank-consistent order."""
    from torch.utils.data.distributed import DistributedSampler

    return DistributedSampler(_Range(num_examples), num_replicas=ctx.world_size,
                              rank=ctx.rank, shuffle=shuffle, seed=seed)


def eval_shard(num_examples: int, ctx: Context) -> Tensor:
    """This rank's positions for evaluation: ``rank, rank + world_size, ...``
    (no padding, so nothing is counted twice)."""
    return torch.arange(ctx.rank, num_examples, ctx.world_size)


def gather_predictions(pred: Tensor, positions: Tensor, num_examples: int,
                       ctx: Context) -> Tensor:
    """Every rank's predictions for its ``positions``, put back in order
    (``num_examples`` rows) on every rank; a no-op when alone."""
    if not ctx.distributed:
        return pred
    parts: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(parts, (positions.cpu(), pred.detach().cpu()))
    out = torch.empty((num_examples,) + tuple(pred.shape[1:]), dtype=pred.dtype)
    seen = torch.zeros(num_examples, dtype=torch.bool)
    for pos, p in parts:
        out[pos] = p
        seen[pos] = True
    if not bool(seen.all()):
        raise RuntimeError(f"gathered predictions cover {int(seen.sum())} of {num_examples} examples")
    return out


def broadcast(obj: Any, ctx: Context) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


@contextlib.contextmanager
def local_main_first(ctx: Context):
    """Run the block on each machine's local rank 0 first, then on the
    others: e.g. processing a data set into a cache that other local ranks
    then only read."""
    if ctx.local_rank != 0:
        barrier(ctx)
    yield
    if ctx.local_rank == 0:
        barrier(ctx)


def sync_buffers(model: torch.nn.Module, ctx: Context) -> None:
    """Make buffers identical on all ranks: floating ones (e.g. batch-norm
    running statistics, which each rank updates from its own batches) are
    averaged, the others taken from rank 0. Call before evaluating or
    saving; DDP itself only broadcasts buffers at the next forward pass."""
    if not ctx.distributed:
        return
    for buf in unwrap(model).buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf.data, op=dist.ReduceOp.SUM)
            buf.data /= ctx.world_size
        else:
            dist.broadcast(buf.data, src=0)


def all_equal_parameters(model: torch.nn.Module, ctx: Context) -> bool:
    """Whether every rank holds exactly the same parameters and buffers."""
    state = [t.detach().cpu().flatten() for t in unwrap(model).state_dict().values()
             if torch.is_tensor(t) and t.is_floating_point()]
    flat = torch.cat(state) if state else torch.zeros(0)
    if not ctx.distributed:
        return True
    parts: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(parts, flat)
    return all(torch.equal(parts[0], p) for p in parts[1:])
