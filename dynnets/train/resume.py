"""Resuming from a checkpoint: check everything first, replay the data position, then apply all at once."""

from __future__ import annotations

import warnings

from . import distributed as D
from .checkpoint import load_checkpoint
from .data import BatchSource
from .rng import capture_rng, restore_rng
from .state import check_payload_fits


class PreparedResume:
    """A checked checkpoint whose data position has been replayed; ``apply(training)`` applies the rest,
    ``undo()`` puts the random generators back if another rank could not use its copy."""

    def __init__(self, payload: dict, record: dict, rng_before: dict):
        self.payload, self.record, self.rng_before = payload, record, rng_before

    def undo(self) -> None:
        restore_rng(self.rng_before)

    def apply(self, training) -> None:
        p = self.payload
        training.model.load_state_dict(p["model"])
        if p["stepper"] is not None:
            training.steppers[p["phase"]].load_state_dict(p["stepper"])
        training.step, training.phase, training.phase_step = p["step"], p["phase"], p["phase_step"]
        training.losses = [float(v) for v in p["losses"].tolist()]
        training.lrs = [float(v) for v in p["lrs"].tolist()]
        training.best = p["best"]
        restore_rng(self.record["rng"])


def prepare_resume(path, training, source: BatchSource, info: D.DistInfo) -> PreparedResume:
    """Check everything and replay the data; nothing of the model or the optimizers is touched yet."""
    payload = load_checkpoint(path, map_location="cpu")
    check_payload_fits(payload, path=path, model=training.model, phases=training.phases,
                       fingerprint=training.fingerprint)
    if payload["stepper"] is not None:
        training.steppers[payload["phase"]].check_state(payload["stepper"], f"checkpoint {path}")
    ranks = payload["ranks"]
    if len(ranks) != info.world_size:
        warnings.warn(f"checkpoint {path} was written by {len(ranks)} process(es), this run has "
                      f"{info.world_size}: data order and random streams will differ from an uninterrupted run",
                      stacklevel=4)
    record = ranks[info.rank % len(ranks)]
    source.check_state(record["data"], f"checkpoint {path}")
    before = capture_rng()
    try:
        source.restore(record["data"], f"checkpoint {path}")
    except BaseException:
        restore_rng(before)
        raise
    return PreparedResume(payload, record, before)
