"""Shared helpers for benchmarks: interleaved timing and machine facts (the runner writes the JSON)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        # the machine is shared: the run queue's 1, 5 and 15 minute averages when the figures were taken
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def interleaved_times(fns: dict, repeats: int, warmup: int = 3) -> dict:
    """Seconds per call of each function, timed round-robin in one process so that load from elsewhere
    on the machine affects every candidate alike. The order alternates each round (ABBA): whichever
    candidate runs first in a round was measured up to 20% slower here (allocator state).

    Returns {name: {"min": s, "median": s, "cpu_min": s, "cpu_median": s}}; ratios use the minimum (as
    timeit does: the least disturbed run, robust to other jobs on the machine), the median is reported
    beside it. ``cpu_*`` are the process's CPU seconds per call (``time.process_time``): time spent waiting
    for a core held by another job is not in them, so on a loaded machine they are the steadier measure of
    what a call costs (with one torch thread they are that thread's own time)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    items = list(fns.items())
    for r in range(repeats):
        for name, fn in items if r % 2 == 0 else reversed(items):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {name: {"min": min(wall[name]), "median": statistics.median(wall[name]),
                   "cpu_min": min(cpu[name]), "cpu_median": statistics.median(cpu[name])} for name in fns}


class Counted:
    """A field as torchdiffeq's or SciPy's right-hand side f(t, y) = F(y) (F(t, y) for a time-dependent
    field), counting calls (torchdiffeq's implicit residuals evaluate the stages one at a time)."""

    def __init__(self, field):
        self.field, self.calls = field, 0

    def __call__(self, t, y):
        self.calls += 1
        return self.field.at(t, y)
