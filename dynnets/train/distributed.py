"""Data-parallel training with torch.distributed, started by torchrun: ``init_distributed``, ``shard_loader``,
``fit`` (wraps the model in DDP), ``shutdown_distributed`` on every rank in a ``finally``. With a mean-reduced
loss and equal shards every rank takes the single-process step on the global batch (up to summation order).
A complete script: docs/training.md, "Training on several processes with torchrun".
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import warnings
import weakref
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from ..checks import check_int
from ..errors import ConfigError
from .config import resolve_device

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.backend is not None


def current() -> DistInfo:
    """Rank and world size of the initialised process group (rank 0 of 1 when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", 0)), backend=str(dist.get_backend()))


def is_main_process() -> bool:
    return current().is_main


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} must be an integer (set by torchrun)") from None


def init_distributed(device="cpu", backend: str | None = None, timeout: float = 300.0) -> DistInfo:
    """Join the process group described by torchrun's environment (without it: a no-op, rank 0 of 1).
    Backend: gloo on CPU, nccl on CUDA (device ``cuda:LOCAL_RANK``); ``timeout`` (seconds) bounds every
    collective, so a dead rank makes the others fail instead of hang.
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo()
    missing = [v for v in _TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise ConfigError(f"environment variables {missing} are not set (rule: start the script with torchrun, "
                          "which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)")
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    dev = resolve_device(device)
    backend = ("nccl" if dev.type == "cuda" else "gloo") if backend is None else backend
    if backend not in ("gloo", "nccl", "mpi"):
        raise ConfigError(f"backend={backend!r} is not one of 'gloo', 'nccl', 'mpi'")
    if backend == "nccl" and dev.type != "cuda":
        raise ConfigError(f"backend='nccl' needs CUDA devices, but device={device!r}")
    if dev.type == "cuda":
        torch.cuda.set_device(local)
    # imported before init_process_group, torch.distributed.nn.functional's default `group.WORLD` is None,
    # so it cannot hold the group and keep shutdown_distributed from freeing it
    importlib.import_module("torch.distributed.nn.functional")
    dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout))
    return DistInfo(rank=rank, world_size=world, local_rank=local, backend=backend)


def shutdown_distributed() -> None:
    """Tear the process group down on every rank: a barrier (skipped while an exception propagates), then
    destroy *and free* the group so no gloo thread outlives it (else the process may abort at exit). A group
    still referenced (e.g. by a kept DDP wrapper) cannot be freed: a RuntimeWarning says so.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    synchronised = False
    try:
        if sys.exc_info()[1] is None:
            dist.barrier()
            synchronised = True
    finally:
        gc.collect()  # DDP wrappers of finished fits sit in reference cycles: free them while the group lives
        group = weakref.ref(dist.group.WORLD)
        dist.destroy_process_group()
    if synchronised and group() is not None:  # (on an error path a traceback may still hold the group)
        warnings.warn("the process group is still referenced after shutdown_distributed() (e.g. by a "
                      "DistributedDataParallel wrapper), so its threads keep running and can abort the "
                      "interpreter at exit (rule: drop such references before shutting down)",
                      RuntimeWarning, stacklevel=2)


def local_device(device) -> torch.device:
    """``device`` with a bare 'cuda' mapped to this process's GPU (cuda:LOCAL_RANK) under torchrun."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and current().active:
        return torch.device("cuda", current().local_rank)
    return dev


def wrap_ddp(model: torch.nn.Module, device) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel (parameters broadcast from rank 0)."""
    from torch.nn.parallel import DistributedDataParallel

    dev = torch.device(device)
    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def shard_loader(dataset, global_batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True, **loader_kwargs) -> DataLoader:
    """A DataLoader over this rank's shard, ``global_batch_size / world_size`` samples per batch
    (DistributedSampler): batch k of rank r is ``perm[r::W][k*b:(k+1)*b]``, so the union over ranks of batch
    k is batch k of one process; ``perm`` depends only on ``seed`` and the epoch.
    """
    info = current()
    global_batch_size = check_int("global_batch_size", global_batch_size, minimum=1)
    if global_batch_size % info.world_size:
        raise ConfigError(f"global_batch_size={global_batch_size} is not divisible by the world size "
                          f"{info.world_size} (rule: every rank takes the same number of samples)")
    sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle,
                                 seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=global_batch_size // info.world_size, sampler=sampler,
                      drop_last=drop_last, **loader_kwargs)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over ranks (a copy; ``value`` itself is untouched)."""
    return all_reduce_sum(value) / current().world_size


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over ranks (a copy; ``value`` itself is untouched; ``value`` with no group)."""
    out = value.detach().clone()
    info = current()
    if info.active and info.world_size > 1:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def _flag_collective(flag: bool, collective) -> bool:
    info = current()
    if not (info.active and info.world_size > 1):
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if info.backend == "nccl" else torch.device("cpu")
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=device)
    collective(t)
    return bool(t.item())


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's value of ``flag`` on every rank (so all ranks agree to stop at the same step)."""
    return _flag_collective(flag, lambda t: dist.broadcast(t, src=0))


def all_agree(ok: bool) -> bool:
    """True on every rank iff ``ok`` is True on every rank; also a barrier (every rank must call it)."""
    return _flag_collective(ok, lambda t: dist.all_reduce(t, op=dist.ReduceOp.MIN))


def gather_objects(obj) -> list:
    """``obj`` from every rank, as a list indexed by rank (a single-element list without a process group)."""
    info = current()
    if not (info.active and info.world_size > 1):
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
