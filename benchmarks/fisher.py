"""Training throughput of the Fisher ConvFD model and the speed-up of 2-process data parallelism on CPU.

1. samples/s of one training evaluation (forward + backward of the one-step loss) of the experiment's
   model (3 Euler substeps of ConvFD(1, 4, 3x3)), float32 and float64, on n x n grids, n = 32..256,
   batch 8, 1 torch thread.
2. One Levenberg-Marquardt iteration (the experiment's optimizer: forward-mode Jacobian + normal
   equations) on 32 training tiles of 32x32, with the residuals on 1 process and sharded over 2 gloo
   processes (each 1 thread): speed-up = t(1) / t(2).

    python -m benchmarks.fisher [--repeats N]
"""

from __future__ import annotations

import os
import socket
import time

import torch
import torch.multiprocessing as mp

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli

from ._common import interleaved_times, machine

DT = 2.4e-3


def _model(dtype):
    field = dn.fields.ConvFD(1, 4, 3, ["relu", "relu", "relu2", "relu2"], init="mirrored")
    return dn.Flow.repeat(dn.Step(field, dn.methods.Euler(), DT / 3), 3).to(dtype)


def throughput(repeats: int) -> list[dict]:
    rows = []
    for n in (32, 64, 128, 256):
        fns = {}
        for dtype in (torch.float32, torch.float64):
            model = _model(dtype)
            x = torch.rand(8, 1, n, n, dtype=dtype)
            y = x + 0.01 * torch.rand_like(x)

            def run(model=model, x=x, y=y):
                model.zero_grad()
                (model(x) - y).pow(2).mean().backward()

            fns[str(dtype).replace("torch.", "")] = run
        times = interleaved_times(fns, repeats, warmup=1)
        for name, stats in times.items():
            t = stats["min"]  # interleaved_times gives the minimum (ratios) and the median per candidate
            rows.append({"grid": n, "dtype": name, "seconds_per_batch": t, "median_seconds_per_batch": stats["median"],
                         "samples_per_s": 8 / t, "pixels_per_s": 8 * n * n / t})
    return rows


def _lm_worker(rank: int, world: int, port: int, iterations: int, queue):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from dynnets.train import Phase, fit

    if world > 1:
        dn.train.init_distributed("cpu")
    torch.manual_seed(0)
    x = torch.rand(32, 1, 32, 32, dtype=torch.float64)
    y = x + 1e-2 * torch.rand_like(x)
    x, y = x[rank::world], y[rank::world]
    model = _model(torch.float64)
    t0 = time.perf_counter()
    fit(model, lambda m, batch: m(x) - y, phases=[Phase("lm", iterations)], progress=False)
    elapsed = (time.perf_counter() - t0) / iterations
    if world > 1:
        dn.train.shutdown_distributed()
    if rank == 0:
        queue.put(elapsed)


def lm_speedup(iterations: int) -> dict:
    out = {}
    ctx = mp.get_context("spawn")
    for world in (1, 2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        queue = ctx.Queue()
        procs = [ctx.Process(target=_lm_worker, args=(r, world, port, iterations, queue)) for r in range(world)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        out[f"seconds_per_iteration_{world}proc"] = queue.get()
    out["speedup_2proc"] = out["seconds_per_iteration_1proc"] / out["seconds_per_iteration_2proc"]
    return out


RUNNER = Runner("fisher", __doc__, kind="benchmark", dtypes=("float64",), devices=("cpu",), threads=1)
RUNNER.parser.add_argument("--repeats", type=int, default=5)
RUNNER.parser.add_argument("--lm-iterations", type=int, default=3)


def main(argv=None):
    return RUNNER.main(run_benchmark, argv)


def run_benchmark(args, seed, out) -> dict:
    rows = throughput(args.repeats)
    ddp = lm_speedup(args.lm_iterations)
    print(f"{'grid':>6}{'dtype':>9}{'samples/s':>12}{'Mpixel/s':>10}")
    for r in rows:
        print(f"{r['grid']:>6}{r['dtype']:>9}{r['samples_per_s']:>12.1f}{r['pixels_per_s'] / 1e6:>10.2f}")
    print(f"LM iteration (32 tiles 32x32, float64): 1 process {ddp['seconds_per_iteration_1proc']:.2f} s, "
          f"2 processes {ddp['seconds_per_iteration_2proc']:.2f} s, speed-up {ddp['speedup_2proc']:.2f}x")
    return {"machine": machine(), "throughput": rows, "lm_ddp": ddp, "load_average": os.getloadavg()}


if __name__ == "__main__":
    run_cli(main)
