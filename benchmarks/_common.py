"""Shared helpers for benchmarks: interleaved timing and machine facts (the runner writes the JSON)."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


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


def _vm(field: str) -> int:
    """VmRSS / VmHWM of this process in bytes (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def peak_rss(run) -> dict:
    """Memory of ``run()`` in this process, after a warm-up the caller did: ``peak_rss_bytes``, the process's
    peak resident set size over it (VmHWM: torch and the model included), and ``rss_bytes``, its growth
    during it (VmHWM - VmRSS before: every transient tensor and the allocator's overhead). The kernel's
    peak mark is reset first (``echo 5 > /proc/self/clear_refs``), so the import's and the warm-up's
    transients do not hide what ``run`` needs. Not ``ru_maxrss``: the kernel keeps there the larger of this
    process's peak and the RSS of the process it was forked from at ``exec``, which the reset leaves alone
    (a child of a benchmark that had grown to 390 MiB reported 390 MiB whatever it ran)."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = _vm("VmRSS")
    run()
    peak = _vm("VmHWM")
    return {"rss_bytes": peak - base, "peak_rss_bytes": peak}


def default_environment() -> dict:
    """This process's environment without allocator settings (``MALLOC_*``, ``GLIBC_TUNABLES``): memory
    figures are those of a default process."""
    return {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "GLIBC_TUNABLES")}


def child_json(module: str, argv: list[str], threads: int) -> dict:
    """``python -m module --threads T argv...`` in a fresh subprocess with the default allocator (one per
    configuration, so that no measurement inherits another's heap); its last stdout line, as JSON."""
    out = subprocess.run([sys.executable, "-m", module, "--threads", str(threads), *argv], cwd=ROOT,
                         capture_output=True, text=True, check=False, env=default_environment())
    if out.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(argv)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])
