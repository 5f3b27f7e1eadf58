"""The training state a checkpoint stores (:func:`build_payload`: tensors, numbers, strings and containers,
so ``torch.load(weights_only=True)`` reads it; ``phase`` is the number of phases once the run is finished,
``stepper`` None at the start of a phase, ``ranks`` one {"rng", "data"} record per rank), the run's settings
it records (:func:`settings`), and resuming from it (every check first, then everything applied at once)
under the resume rule of docs/training.md.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import torch

from ..errors import CheckpointError, SettingsMismatchError
from . import distributed as D
from .checkpoint import load_checkpoint
from .rng import capture_rng, restore_rng

KIND = "dynnets.train.fit"
FORMAT = 3


def _plain(value):
    """``value`` as JSON-able data: numbers, strings, lists and dicts; a function or object by its name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    return getattr(value, "__qualname__", type(value).__qualname__)


def settings(*, model, loss_fn, data, phases, seed, keep_best, extra: dict) -> dict:
    """The settings of one run that its checkpoints record and a resume compares (see the module docstring);
    ``extra``: the caller's own (fit's ``settings=``), under their names prefixed by "settings."."""
    kind = "None" if data is None else "callable" if callable(data) else type(data).__qualname__
    out = {"model": type(model).__qualname__, "loss": _plain(loss_fn), "seed": seed, "keep_best": keep_best,
           "data": kind + (f" of {len(data)} batches" if hasattr(data, "__len__") else ""),
           "phases": len(phases)}
    for n, p in model.named_parameters():
        out[f"parameter {n}"] = f"{str(p.dtype)[6:]} {list(p.shape)}" + ("" if p.requires_grad else " frozen")
    for i, p in enumerate(phases, 1):
        out.update({f"phase {i} {k}": _plain(getattr(p, k)) for k in ("optimizer", "lr", "options", "schedule",
                                                                     "loss", "stall")})
        if i < len(phases):  # where the next phase starts; the last phase may be extended (a longer run)
            out[f"phase {i} steps"] = p.steps
    out.update({f"settings.{k}": v for k, v in extra.items()})
    return out


def compare_settings(stored, current: dict, where: str) -> None:
    """SettingsMismatchError listing every setting in which the checkpoint's run differs from this one."""
    if not isinstance(stored, dict):
        raise CheckpointError(f"{where}: its settings record is malformed")
    keys = [k for k in (*current, *(k for k in stored if k not in current))
            if stored.get(k, "<absent>") != current.get(k, "<absent>")]
    if keys:
        def cut(v):
            text = repr(v)
            return text if len(text) <= 60 else text[:57] + "..."
        shown = "; ".join(f"{k}: checkpoint {cut(stored.get(k, '<absent>'))}, this run {cut(current.get(k, '<absent>'))}"
                          for k in keys)
        raise SettingsMismatchError(f"{where}: written by a run with other settings: {shown} (rule: resume only "
                                    "with the settings the run was started with; pass resume=False to start over)",
                                    keys)


def build_payload(t, ranks: list) -> dict:
    """The checkpoint of the run ``t`` (a ``loop.Training``); ``ranks``: every rank's {"rng", "data"}."""
    running = t.phase < len(t.phases) and t.phase_step > 0
    return {
        "kind": KIND, "format": FORMAT, "settings": dict(t.settings), "step": int(t.step),
        "phase": int(t.phase), "phase_step": int(t.phase_step), "model": t.model.state_dict(),
        "stepper": t.steppers[t.phase].state_dict() if running else None,
        "losses": torch.tensor(t.losses, dtype=torch.float64), "best": t.best,
        "world_size": int(t.info.world_size), "ranks": ranks, "torch_version": str(torch.__version__),
    }


def check_payload_fits(payload: dict, *, where: str, model, phases, settings: dict) -> None:
    """Refuse a checkpoint that does not belong to this run, before any of it is applied: another kind of
    file, other settings, a position past this run's phases, a model state that does not load."""
    if payload.get("kind") != KIND:
        raise CheckpointError(f"{where}: not a training checkpoint written by dynnets.train.fit "
                              f"(kind={payload.get('kind')!r})")
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"{where}: format {payload.get('format')!r} is not {FORMAT} (written by another "
                              "dynnets); pass resume=False to start over")
    compare_settings(payload["settings"], settings, where)
    step, phase, phase_step, total = payload["step"], payload["phase"], payload["phase_step"], sum(p.steps for p in phases)
    if step > total or phase > len(phases) or (phase < len(phases) and phase_step > phases[phase].steps):
        raise CheckpointError(f"{where}: it is at step {step}, past this run's steps={total} (rule: resume with "
                              "steps >= the checkpoint's step, or pass resume=False to start over)")
    check_model_state(payload["model"], model, where)
    if payload["best"] is not None:
        check_model_state(payload["best"]["model"], model, where)


def check_model_state(state, model: torch.nn.Module, where: str) -> None:
    """CheckpointError unless ``state`` has the names, shapes and dtypes of ``model``'s state (what a strict
    load_state_dict needs; the model is not touched)."""
    own = model.state_dict()
    if not isinstance(state, dict) or set(own) != set(state):
        names = set(state) if isinstance(state, dict) else set()
        raise CheckpointError(f"{where}: does not fit this model: missing {sorted(set(own) - names)[:5]}, "
                              f"unexpected {sorted(names - set(own))[:5]}")
    for name, value in own.items():
        theirs = state[name]
        if isinstance(value, torch.Tensor) and (not isinstance(theirs, torch.Tensor) or theirs.shape != value.shape
                                                or theirs.dtype != value.dtype):
            found = f"{theirs.dtype} {list(theirs.shape)}" if isinstance(theirs, torch.Tensor) else type(theirs).__name__
            raise CheckpointError(f"{where}: {name} is {found} in the checkpoint, {value.dtype} {list(value.shape)} "
                                  "in the model (rule: resume with the model and dtype the run was started with)")


class PreparedResume:
    """The checkpoint at ``path``, checked, with the data of ``training`` replayed to its position; nothing of
    the model or the optimizers is touched yet. ``apply(training)`` applies the rest, ``undo()`` puts the
    random generators back if another rank could not use its copy."""

    def __init__(self, path, training, info: D.DistInfo):
        where = f"checkpoint {path}"
        self.payload = load_checkpoint(path, map_location="cpu")
        check_payload_fits(self.payload, where=where, model=training.model, phases=training.phases,
                           settings=training.settings)
        ranks = self.payload["ranks"]
        if len(ranks) != info.world_size:
            warnings.warn(f"{where} was written by {len(ranks)} process(es), this run has {info.world_size}: "
                          "data order and random streams will differ from an uninterrupted run", stacklevel=4)
        self.record, self.rng_before = ranks[info.rank % len(ranks)], capture_rng()
        try:
            training.source.restore(self.record["data"], where)
        except BaseException:
            restore_rng(self.rng_before)
            raise

    def undo(self) -> None:
        restore_rng(self.rng_before)

    def apply(self, training) -> None:
        p = self.payload
        training.model.load_state_dict(p["model"])
        if p["stepper"] is not None:
            training.steppers[p["phase"]].load_state_dict(p["stepper"])
        training.step, training.phase, training.phase_step = p["step"], p["phase"], p["phase_step"]
        training.losses = [float(v) for v in p["losses"].tolist()]
        training.best = p["best"]
        restore_rng(self.record["rng"])
