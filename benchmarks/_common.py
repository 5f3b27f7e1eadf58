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
    }


def interleaved_times(fns: dict, repeats: int, warmup: int = 3) -> dict:
    """Seconds per call of each function, timed round-robin in one process so that load from elsewhere
    on the machine affects every candidate alike. The order alternates each round (ABBA): whichever
    candidate runs first in a round was measured up to 20% slower here (allocator state).

    Returns {name: {"min": s, "median": s}}; ratios use the minimum (as timeit does: the least disturbed
    run, robust to other jobs on the machine), the median is reported beside it."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples = {name: [] for name in fns}
    items = list(fns.items())
    for r in range(repeats):
        for name, fn in items if r % 2 == 0 else reversed(items):
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: {"min": min(s), "median": statistics.median(s)} for name, s in samples.items()}


class Counted:
    """A field as torchdiffeq's or SciPy's right-hand side f(t, y) = F(y) (F(t, y) for a time-dependent
    field), counting calls (torchdiffeq's implicit residuals evaluate the stages one at a time)."""

    def __init__(self, field):
        self.field, self.calls = field, 0

    def __call__(self, t, y):
        self.calls += 1
        return self.field.at(t, y)
