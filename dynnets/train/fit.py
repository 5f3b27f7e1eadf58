"""`fit`: the one optimisation loop of dynnets (phases of Adam, SGD, L-BFGS or Levenberg-Marquardt steps,
checkpoints with exact resume, DDP, time budgets, restarts on stall, keep-best, monitoring)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from ..errors import CheckpointError, ConfigError
from . import distributed as D
from .checkpoint import check_payload
from .config import split_options
from .loop import FitResult, Training, train
from .phase import Phase

__all__ = ["FitResult", "fit"]


def fit(model: torch.nn.Module, loss_fn: Callable, data=None, *, phases: list[Phase] | None = None,
        **options) -> FitResult:
    """Train ``model`` on ``loss_fn(model, batch)`` through ``phases``; see docs/training.md.

    model:   a torch.nn.Module (a :class:`dynnets.train.Ensemble` for a batched multi-start); moved to the
             run's device and dtype when they are given; set to train mode.
    loss_fn: ``loss_fn(model, batch) -> scalar tensor`` (a residual tensor for a Levenberg-Marquardt phase).
             Under DDP it receives the DistributedDataParallel wrapper and must call it.
    data:    None (batch=None every step), a re-iterable of batches such as a DataLoader (cycled over
             epochs), or a callable ``step -> batch`` (0-based step index). Tensors in a batch are moved to
             the device, floating ones cast to the dtype.
    phases:  a list of :class:`dynnets.train.Phase` run in order; or one phase by the keywords
             ``steps, optimizer, lr, schedule``.
    options: checkpoint (a file path), checkpoint_every (100), resume (True), progress (True), device, dtype,
             seed, time_budget (seconds by timer "wall" or "cpu"), keep_best, monitor (a Monitor), desc,
             on_step(step, loss) (called on rank 0 after each step), settings (a dict of JSON-able values the
             checkpoint records beside the run's own and a resume compares, e.g. an experiment's command-line
             options). DistributedDataParallel is used when a process group with more than one rank is
             initialised.

    Raises ConfigError (bad options, before any work), NonFiniteLossError (before that step's update),
    CheckpointError / SettingsMismatchError (unusable checkpoint or other settings; nothing is loaded).
    """
    phases, run = split_options(model, loss_fn, data, phases, options)
    info = D.current()
    use_ddp = info.world_size > 1
    dev = D.local_device(run.device if run.device is not None else next(model.parameters()).device)
    training = Training(model, loss_fn, data, phases, run, info, use_ddp)  # may refuse a schedule: convert after
    if run.dtype is not None or any(t.device != dev for t in itertools.chain(model.parameters(), model.buffers())):
        model.to(device=dev, dtype=run.dtype)  # in place: the optimizers keep the same Parameter objects
    if run.checkpoint is not None:  # refuse now a model state that could not be written/read back later
        try:
            check_payload(model.state_dict(), "model")
        except CheckpointError as e:
            raise ConfigError(str(e)) from None
    return train(training, use_ddp, dev)
