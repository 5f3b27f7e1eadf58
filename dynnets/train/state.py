"""The training state stored in a checkpoint, and its all-or-nothing check before restoration.

Payload (tensors, numbers, strings and containers only, so ``torch.load(weights_only=True)`` reads it)::

    kind="dynnets.train.fit", format=2, fingerprint ({setting: description}, see fingerprint.py),
    step (steps done in the whole run), phase (index of the running phase; == number of phases when the
    run is finished), phase_step (steps done in it), model (state_dict), stepper (the running phase's
    optimizer/schedule state, None at the start of a phase), losses and lrs (float64 tensors, one entry
    per step), best (None or {"loss", "model"}: keep-best), world_size, ranks (one per rank:
    {"rng": global RNG states, "data": data position}), torch_version
"""

from __future__ import annotations

import copy

import torch

from ..errors import CheckpointError
from .fingerprint import compare
from .rng import check_rng

KIND = "dynnets.train.fit"
FORMAT = 2
_ENTRIES = ("fingerprint", "step", "phase", "phase_step", "model", "stepper", "losses", "lrs", "best", "ranks",
            "world_size")


def build_payload(*, fingerprint, step, phase, phase_step, model, stepper, losses, lrs, best, world_size,
                  ranks) -> dict:
    return {
        "kind": KIND, "format": FORMAT, "fingerprint": dict(fingerprint), "step": int(step), "phase": int(phase),
        "phase_step": int(phase_step), "model": model.state_dict(), "stepper": stepper,
        "losses": torch.tensor(losses, dtype=torch.float64), "lrs": torch.tensor(lrs, dtype=torch.float64),
        "best": best, "world_size": int(world_size), "ranks": ranks, "torch_version": str(torch.__version__),
    }


def check_payload_fits(payload: dict, *, path, model, phases, fingerprint) -> None:
    """Refuse a checkpoint that does not belong to this run, before any of it is applied: another kind of
    file, another run (fingerprint), an inconsistent position, a model state that does not load."""
    where = f"checkpoint {path}"
    if payload.get("kind") != KIND:
        raise CheckpointError(f"{where}: not a training checkpoint written by dynnets.train.fit "
                              f"(kind={payload.get('kind')!r})")
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"{where}: format {payload.get('format')!r} holds no run fingerprint (written by an "
                              "older dynnets); pass resume=False to start over")
    missing = [k for k in _ENTRIES if k not in payload]
    if missing:
        raise CheckpointError(f"{where}: missing entries {missing}")
    compare(payload["fingerprint"], fingerprint, where)
    _check_position(payload, where, phases)
    ranks = payload["ranks"]
    if not isinstance(ranks, list) or not ranks:
        raise CheckpointError(f"{where}: per-rank RNG/data records are missing")
    for r in ranks:
        if not isinstance(r, dict) or "rng" not in r or "data" not in r:
            raise CheckpointError(f"{where}: a per-rank record is malformed")
        check_rng(r["rng"], where)
    check_model_state(payload["model"], model, where)
    best = payload["best"]
    if best is not None:
        if not isinstance(best, dict) or not isinstance(best.get("loss"), float):
            raise CheckpointError(f"{where}: keep-best record is malformed")
        check_model_state(best.get("model"), model, where)


def _check_position(payload: dict, where: str, phases) -> None:
    step, phase, phase_step = payload["step"], payload["phase"], payload["phase_step"]
    for name, v in (("step", step), ("phase", phase), ("phase_step", phase_step)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise CheckpointError(f"{where}: {name}={v!r} is not a non-negative integer")
    total = sum(p.steps for p in phases)
    if step > total:
        raise CheckpointError(f"{where}: it is at step {step}, past this run's steps={total} (rule: resume with "
                              "steps >= the checkpoint's step, or pass resume=False to start over)")
    if phase > len(phases) or (phase < len(phases) and phase_step > phases[phase].steps):
        raise CheckpointError(f"{where}: it is at phase {phase + 1} step {phase_step}, past this run's phases "
                              "(rule: resume the run that wrote it, or pass resume=False to start over)")
    for key in ("losses", "lrs"):
        history = payload[key]
        if not isinstance(history, torch.Tensor) or history.dim() != 1 or history.numel() != step:
            raise CheckpointError(f"{where}: {key} history does not have one entry per step ({step} steps)")
    if (payload["stepper"] is None) != (phase_step == 0 or phase == len(phases)):
        raise CheckpointError(f"{where}: optimizer state and position disagree")


def check_model_state(state, model: torch.nn.Module, where: str) -> None:
    """CheckpointError unless ``state`` loads into ``model`` (tried on a copy: the model is not touched)."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: model state is not a dict")
    own = model.state_dict()
    for name, value in own.items():
        if name in state and isinstance(value, torch.Tensor) and isinstance(state[name], torch.Tensor) \
                and value.dtype != state[name].dtype:
            raise CheckpointError(f"{where}: {name} is stored as {state[name].dtype} but the model holds "
                                  f"{value.dtype} (rule: resume with the dtype the run was started with)")
    try:
        trial = copy.deepcopy(model)
    except Exception:  # noqa: BLE001 - a model that cannot be copied: check the structure instead
        _check_structure(where, own, state)
        return
    try:
        trial.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
        raise CheckpointError(f"{where}: does not fit this model: {' '.join(str(e).split())}") from None


def _check_structure(where, own: dict, state: dict) -> None:
    """What load_state_dict would check, for models that cannot be deep-copied."""
    if set(own) != set(state):
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        raise CheckpointError(f"{where}: does not fit this model: missing keys {missing[:5]}, unexpected keys "
                              f"{extra[:5]}")
    for name, value in own.items():
        if isinstance(value, torch.Tensor) and tuple(value.shape) != tuple(getattr(state[name], "shape", ())):
            raise CheckpointError(f"{where}: {name} has shape {tuple(state[name].shape)} in the checkpoint, "
                                  f"{tuple(value.shape)} in the model")
