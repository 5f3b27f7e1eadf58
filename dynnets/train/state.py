"""The training state stored in a checkpoint, and its all-or-nothing restoration.

Payload (tensors, numbers, strings and containers only, so ``torch.load(weights_only=True)`` reads it)::

    kind="dynnets.train.fit", step, model (state_dict), optimizer (state_dict), optimizer_class,
    scheduler (state_dict or None), losses (float64 tensor, one entry per step done), world_size,
    ranks (list, one per rank: {"rng": global RNG states, "data": data position}), torch_version
"""

from __future__ import annotations

import copy

import torch

from ..errors import CheckpointError
from .rng import check_rng

KIND = "dynnets.train.fit"


def build_payload(*, step, model, optimizer, scheduler, losses, world_size, ranks) -> dict:
    return {
        "kind": KIND,
        "step": int(step),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "optimizer_class": type(optimizer).__name__,
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "losses": torch.tensor(losses, dtype=torch.float64),
        "world_size": int(world_size),
        "ranks": ranks,
        "torch_version": torch.__version__,
    }


def check_payload_fits(payload: dict, *, path, model, optimizer, scheduler, steps: int) -> None:
    """Refuse a checkpoint that does not belong to this run, before any of it is applied.

    The model, optimizer and scheduler states are loaded into deep copies first: if any of them does not
    fit, nothing of the real objects has been touched.
    """
    where = f"checkpoint {path}"
    if payload.get("kind") != KIND:
        raise CheckpointError(f"{where}: not a training checkpoint written by dynnets.train.fit "
                              f"(kind={payload.get('kind')!r})")
    missing = [k for k in ("step", "model", "optimizer", "optimizer_class", "scheduler", "losses", "ranks",
                           "world_size") if k not in payload]
    if missing:
        raise CheckpointError(f"{where}: missing entries {missing}")
    step = payload["step"]
    if not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{where}: step={step!r} is not a non-negative integer")
    if step > steps:
        raise CheckpointError(f"{where}: it is at step {step}, past this run's steps={steps} (rule: resume "
                              "with steps >= the checkpoint's step, or pass resume=False to start over)")
    losses = payload["losses"]
    if not isinstance(losses, torch.Tensor) or losses.dim() != 1 or losses.numel() != step:
        raise CheckpointError(f"{where}: loss history does not have one entry per step ({step} steps)")
    if payload["optimizer_class"] != type(optimizer).__name__:
        raise CheckpointError(f"{where}: written with optimizer {payload['optimizer_class']}, this run uses "
                              f"{type(optimizer).__name__}")
    if (payload["scheduler"] is None) != (scheduler is None):
        raise CheckpointError(f"{where}: the checkpoint {'has no' if payload['scheduler'] is None else 'has a'} "
                              f"learning-rate schedule but this run {'has one' if scheduler else 'has none'}")
    ranks = payload["ranks"]
    if not isinstance(ranks, list) or not ranks:
        raise CheckpointError(f"{where}: per-rank RNG/data records are missing")
    for r in ranks:
        if not isinstance(r, dict) or "rng" not in r or "data" not in r:
            raise CheckpointError(f"{where}: a per-rank record is malformed")
        check_rng(r["rng"], where)
    own = model.state_dict()
    state = payload["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: model state is not a dict")
    for name, value in own.items():
        if name in state and isinstance(value, torch.Tensor) and isinstance(state[name], torch.Tensor) \
                and value.dtype != state[name].dtype:
            raise CheckpointError(f"{where}: {name} is stored as {state[name].dtype} but the model holds "
                                  f"{value.dtype} (rule: resume with the dtype the run was started with)")
    trial_model, trial_opt, trial_sched = copy.deepcopy((model, optimizer, scheduler))
    try:
        trial_model.load_state_dict(state)
        trial_opt.load_state_dict(payload["optimizer"])
        if trial_sched is not None:
            trial_sched.load_state_dict(payload["scheduler"])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
        msg = " ".join(str(e).split())
        raise CheckpointError(f"{where}: does not fit this model/optimizer/schedule: {msg}") from None


def apply_payload(payload: dict, *, model, optimizer, scheduler) -> list[float]:
    """Load model, optimizer and scheduler states (already checked); returns the loss history."""
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(payload["scheduler"])
    return [float(v) for v in payload["losses"].tolist()]
