"""`fit`: the one optimisation loop of dynnets (phases of Adam, SGD, L-BFGS or Levenberg-Marquardt steps,
checkpoints with exact resume, DDP, time budgets, restarts on stall, keep-best, monitoring)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import CheckpointError, ConfigError
from . import distributed as D
from .checkpoint import RunLock, check_payload
from .config import Run, split_options
from .loop import FitResult, Training, train
from .phase import Phase
from .rng import capture_rng
from .state import build_payload

__all__ = ["FitResult", "fit"]


def fit(model: torch.nn.Module, loss_fn: Callable, data=None, *, phases: list[Phase] | None = None,
        run: Run | None = None, **options) -> FitResult:
    """Train ``model`` on ``loss_fn(model, batch)`` through ``phases``; see docs/training.md.

    model:   a torch.nn.Module (a :class:`dynnets.train.Ensemble` for a batched multi-start); moved to the
             run's device and dtype when they are given; set to train mode.
    loss_fn: ``loss_fn(model, batch) -> scalar tensor`` (a residual tensor for a Levenberg-Marquardt phase).
             Under DDP it receives the DistributedDataParallel wrapper and must call it.
    data:    None (batch=None every step), a re-iterable of batches such as a DataLoader (cycled over
             epochs), or a callable ``step -> batch`` (0-based step index). Tensors in a batch are moved to
             the device, floating ones cast to the dtype.
    phases:  a list of :class:`dynnets.train.Phase` run in order. Shorthand for one phase: the keywords
             ``steps, optimizer, lr, schedule, clip_grad_norm, lbfgs_options``.
    run:     a :class:`dynnets.train.Run` (checkpoint, checkpoint_every, resume, progress, device, dtype, seed,
             time_budget, timer, keep_best, monitor, desc, ddp, on_step, on_checkpoint), or those keywords.

    Bad options raise ConfigError before any work; a non-finite loss or gradient raises NonFiniteLossError
    before that step's update (no checkpoint of non-finite parameters is ever written); a checkpoint that
    belongs to another run or cannot be used raises CheckpointError and nothing is loaded.
    """
    phases, run = split_options(model, loss_fn, data, phases, run, options)
    info = D.current()
    if run.ddp is True and info.world_size < 2:
        raise ConfigError("ddp=True but no process group with more than one rank is initialised (rule: start "
                          "with torchrun and call dynnets.train.init_distributed() first)")
    use_ddp = info.world_size > 1 if run.ddp is None else run.ddp
    first = next(model.parameters())
    dev = D.local_device(run.device if run.device is not None else first.device)
    training = Training(model, loss_fn, data, phases, run, info, use_ddp)  # may refuse a schedule: convert after
    model.to(device=dev, dtype=run.dtype)  # in place: the optimizers keep the same Parameter objects
    if run.checkpoint is not None:  # refuse now a state that could not be written/read back later
        try:
            check_payload(build_payload(fingerprint={}, step=0, phase=0, phase_step=1, model=model,
                                        stepper=training.steppers[0].state_dict(), losses=[], lrs=[], best=None,
                                        world_size=info.world_size, ranks=[{"rng": capture_rng(), "data": {}}]))
        except CheckpointError as e:
            raise ConfigError(str(e)) from None
    lock = RunLock(run.checkpoint) if run.checkpoint is not None and info.is_main else None
    lock_error = None
    if lock is not None:
        try:
            lock.acquire()
        except CheckpointError as e:
            lock_error = e
    if run.checkpoint is not None and not D.all_agree(lock_error is None):
        raise lock_error or CheckpointError(f"checkpoint {run.checkpoint}: rank 0 could not lock it")
    try:
        return train(training, use_ddp, dev)
    finally:
        if lock is not None:
            lock.release()
