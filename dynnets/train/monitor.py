"""The training clock (wall or CPU seconds, paused while monitoring) and the monitor evaluated on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..checks import check_int, positive_real
from ..errors import ConfigError


class Clock:
    """Seconds of training by ``timer``: "wall" (time.perf_counter) or "cpu" (this process's CPU time, robust
    to other processes sharing the cores). Time spent inside ``paused()`` is not counted."""

    def __init__(self, timer: str = "wall"):
        self._now = {"wall": time.perf_counter, "cpu": time.process_time}[timer]
        self._spent = 0.0
        self._start = self._now()

    def elapsed(self) -> float:
        return self._spent + self._now() - self._start

    @contextmanager
    def paused(self):
        self._spent = self.elapsed()
        try:
            yield
        finally:
            self._start = self._now()


@dataclass(frozen=True)
class Monitor:
    """``fn(model) -> float`` (e.g. a test error) evaluated under torch.no_grad with the clock stopped:
    before the first step, then whenever ``every_seconds`` of training time (or ``every_steps`` steps)
    have passed since the last evaluation, and on the returned parameters at the end."""

    fn: Callable
    every_seconds: float | None = None
    every_steps: int | None = None

    def __post_init__(self):
        if not callable(self.fn):
            raise ConfigError(f"Monitor fn must be callable as fn(model) -> float, got {type(self.fn).__name__}")
        if self.every_seconds is not None:
            positive_real("Monitor every_seconds", self.every_seconds, symbol="every_seconds")
        if self.every_steps is not None:
            check_int("Monitor every_steps", self.every_steps, minimum=1)


class MonitorLog:
    """Runs a Monitor on a Clock and keeps its records {"step", "phase", "seconds", "value"}."""

    def __init__(self, monitor: Monitor | None, clock: Clock):
        self.monitor, self.clock = monitor, clock
        self.records: list[dict] = []
        self._next_seconds, self._last_step = 0.0, None

    def due(self, step: int) -> bool:
        m = self.monitor
        if m is None:
            return False
        if self._last_step is None:
            return True
        return ((m.every_seconds is not None and self.clock.elapsed() >= self._next_seconds)
                or (m.every_steps is not None and step - self._last_step >= m.every_steps))

    def record(self, model: torch.nn.Module, step: int, phase: str) -> None:
        with self.clock.paused():
            seconds = self.clock.elapsed()
            with torch.no_grad():
                value = float(self.monitor.fn(model))
        self.records.append({"step": step, "phase": phase, "seconds": seconds, "value": value})
        self._last_step = step
        if self.monitor.every_seconds is not None:
            self._next_seconds = seconds + self.monitor.every_seconds
