"""A batch source for `fit` (its ``data``: None, a callable step -> batch or a re-iterable of batches, cycled)
whose position can be saved and replayed exactly.

Exact resume of an iterable: at each epoch start the source records the global generators' states (torch,
numpy, python) and every torch.Generator on the loader and its samplers, and counts the batches taken; on
resume it restores them, restarts the epoch and skips the counted batches. Samplers with ``set_epoch`` get
the epoch number. A list or tuple records only its epoch and position.
"""

from __future__ import annotations

import torch

from ..errors import CheckpointError, ConfigError
from .rng import capture_rng, restore_rng


def _parts(data) -> tuple:
    """The loader and its samplers: data, data.sampler, data.batch_sampler, data.batch_sampler.sampler."""
    batch_sampler = getattr(data, "batch_sampler", None)
    return data, getattr(data, "sampler", None), batch_sampler, getattr(batch_sampler, "sampler", None)


def _generators(data) -> list[torch.Generator]:
    found = [getattr(obj, "generator", None) for obj in _parts(data)]
    return list({id(g): g for g in found if isinstance(g, torch.Generator)}.values())  # each once, in order


def tensors_of(batch) -> list[torch.Tensor]:
    """The tensors in (nested tuples/lists/dicts of) ``batch``."""
    if isinstance(batch, torch.Tensor):
        return [batch]
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    return [t for b in items for t in tensors_of(b)]


def move_batch(batch, device: torch.device, dtype: torch.dtype | None):
    """Move tensors in (nested tuples/lists/dicts of) ``batch`` to ``device``; cast floating ones to ``dtype``."""
    if isinstance(batch, torch.Tensor):
        if dtype is not None and batch.is_floating_point():
            return batch.to(device=device, dtype=dtype)
        return batch.to(device=device)
    if isinstance(batch, (list, tuple)):
        items = [move_batch(b, device, dtype) for b in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
    if isinstance(batch, dict):
        return {k: move_batch(v, device, dtype) for k, v in batch.items()}
    return batch


class BatchSource:
    def __init__(self, data):
        self.data = data
        self.kind = "none" if data is None else "callable" if callable(data) else "iterable"
        self.indexed = isinstance(data, (list, tuple))  # taken by index: no iterator, no random draws
        if self.indexed and not data:
            raise ConfigError(f"data is an empty {type(data).__name__} (rule: at least one batch)")
        _, sampler, _, inner = _parts(data)
        setters = {id(s): s for s in (sampler, inner) if callable(getattr(s, "set_epoch", None))}
        self.setters = list(setters.values())
        self.epoch = 0
        self.position = 0  # batches taken in the current epoch
        # the current epoch's iterator, and the generator states recorded at its start
        self._iterator, self._epoch_rng, self._epoch_generators = None, None, []

    def _start_epoch(self) -> None:
        for sampler in self.setters:
            sampler.set_epoch(self.epoch)
        self._epoch_rng = capture_rng()
        self._epoch_generators = [g.get_state() for g in _generators(self.data)]
        self._iterator = iter(self.data)
        self.position = 0

    def _draw(self):
        try:
            return next(self._iterator)
        except StopIteration:
            if self.position == 0:
                raise ConfigError(f"data ({type(self.data).__name__}) yielded no batch in epoch {self.epoch} "
                                  "(rule: a non-empty iterable)") from None
        self.epoch += 1
        self._start_epoch()
        return self._draw()

    def next(self, step: int):
        if self.kind == "none":
            return None
        if self.kind == "callable":
            return self.data(step)
        if self.indexed:
            if self.position == len(self.data):
                self.epoch, self.position = self.epoch + 1, 0
            self.position += 1
            return self.data[self.position - 1]
        if self._iterator is None:
            self._start_epoch()
        batch = self._draw()
        self.position += 1
        return batch

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "epoch_rng": self._epoch_rng,
                "generators": list(self._epoch_generators)}

    def restore(self, state, where: str) -> None:
        """Replay the data to the recorded position (CheckpointError if the data is shorter than recorded)."""
        if self.kind != "iterable" or state["position"] == 0:
            return  # (no batch drawn yet: the epoch starts on the first draw, after the generators are restored)
        self.epoch = state["epoch"]
        if self.indexed:
            if state["position"] > len(self.data):
                raise CheckpointError(f"{where}: the data has {len(self.data)} batches, but the checkpoint was "
                                      f"taken after batch {state['position']} of an epoch")
            self.position = state["position"]
            return
        restore_rng(state["epoch_rng"])
        for g, s in zip(_generators(self.data), state["generators"], strict=True):
            g.set_state(s)
        self._start_epoch()
        for i in range(state["position"]):
            try:
                next(self._iterator)
            except StopIteration:
                raise CheckpointError(f"{where}: the data yields only {i} batches in epoch {self.epoch}, but "
                                      f"the checkpoint was taken after batch {state['position']} (was the "
                                      "dataset or batch size changed?)") from None
        self.position = state["position"]
