"""Training runs that tests start as real processes (kill/resume, torchrun DDP). Not collected by pytest.

    python tests/train/_train_script.py resume --checkpoint F --steps 2N --every N [--slow-after N]
    python tests/train/_train_script.py ddp --out F --steps K [--control-out G]     # also under torchrun
        [--split-out H --split-checkpoint C --stop-at S] [--lm-out L] [--fail-on-rank R]

`resume` trains a float64 MLP with dropout on shuffled mini-batches (DataLoader with a seeded generator,
epochs that do not divide the step count), Adam + StepLR, and a loss that also draws
from numpy's and python's global generators, so every piece of state a resume must restore is exercised.
It prints "resumed_from S" at the end.
With --slow-after N it sleeps 100 ms per step after step N, so a test can SIGKILL it mid-training.

`ddp` shuts the process group down in a `finally`, then prints "group_threads_left L of N": of the N threads
that init_distributed started (gloo's I/O loop and worker threads; Linux /proc, "unknown" elsewhere), L still
run. With --fail-on-rank R, rank R raises right after init_distributed while the other ranks start training.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from dynnets.train import Phase, fit, init_distributed, save_checkpoint, shard_loader, shutdown_distributed


def make_data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = torch.sin(x @ torch.tensor([1.0, -2.0, 0.5, 1.5], dtype=torch.float64)).unsqueeze(1)
    return TensorDataset(x, y)


def make_model(seed: int, dropout: float) -> torch.nn.Module:
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(4, 16), torch.nn.Tanh()]
    if dropout:
        layers.append(torch.nn.Dropout(dropout))
    layers.append(torch.nn.Linear(16, 1))
    return torch.nn.Sequential(*layers).double()


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def noisy_mse(model, batch):
    # draws from numpy's and python's global generators, so their restoration is tested too
    x, y = batch
    noise = torch.from_numpy(np.random.standard_normal(x.shape)) * 1e-2
    return ((model(x + noise) - y) ** 2).mean() * (1.0 + 0.01 * random.random())


def run_resume(args) -> None:
    model = make_model(1, dropout=0.2)
    loader = DataLoader(make_data(100, 2), batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(3))

    def on_step(step, loss):
        if args.slow_after is not None and step > args.slow_after:
            time.sleep(0.1)

    result = fit(model, noisy_mse, loader, steps=args.steps, optimizer="adam", lr=1e-2,
                 schedule=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.8),
                 checkpoint=args.checkpoint, checkpoint_every=args.every, seed=4, progress=False, on_step=on_step)
    print(f"resumed_from {result.resumed_from}", flush=True)


def thread_ids() -> set[int] | None:
    """Ids of this process's threads (Linux /proc); None where they cannot be listed."""
    tasks = Path("/proc/self/task")
    return {int(task.name) for task in tasks.iterdir()} if tasks.is_dir() else None


def run_ddp(args) -> None:
    if args.pid_dir:  # torchrun starts workers in their own sessions: the test kills them by pid on timeout
        with open(os.path.join(args.pid_dir, f"worker-{os.getpid()}.pid"), "w") as f:
            f.write(str(os.getpid()))
    before = thread_ids()
    info = init_distributed(device="cpu", timeout=60.0)
    started = None if before is None else thread_ids() - before
    try:
        if args.fail_on_rank == info.rank:
            raise RuntimeError(f"deliberate failure on rank {info.rank}")
        train_ddp(args, info)
    finally:
        shutdown_distributed()
    if started is None:
        print("group_threads_left unknown", flush=True)
    else:
        print(f"group_threads_left {len(started & thread_ids())} of {len(started)}", flush=True)


def train_ddp(args, info) -> None:
    dataset = make_data(128, 5)
    loader = shard_loader(dataset, global_batch_size=32, seed=6)
    model = make_model(7, dropout=0.0)
    result = fit(model, mse, loader, steps=args.steps, optimizer="sgd", lr=0.1, progress=False,
                 checkpoint=args.checkpoint, checkpoint_every=args.steps)
    if info.is_main:
        save_checkpoint(args.out, {"params": dict(model.state_dict()),
                                   "losses": torch.tensor(result.losses, dtype=torch.float64),
                                   "world_size": info.world_size})
    if args.split_out:
        # the same run stopped at --stop-at and resumed from its checkpoint with fresh objects
        for stop in (args.stop_at, args.steps):
            split = make_model(7, dropout=0.0)
            split_result = fit(split, mse, shard_loader(dataset, global_batch_size=32, seed=6), steps=stop,
                               optimizer="sgd", lr=0.1, progress=False, checkpoint=args.split_checkpoint,
                               checkpoint_every=1000)
        if info.is_main:
            save_checkpoint(args.split_out, {"params": dict(split.state_dict()),
                                             "losses": torch.tensor(split_result.losses, dtype=torch.float64),
                                             "resumed_from": split_result.resumed_from})
    if args.lm_out:
        # Levenberg-Marquardt with the residuals sharded over ranks: the normal equations are summed over ranks
        # (a well-conditioned linear least-squares problem, so that sum order stays at round-off in the result)
        x, y = dataset.tensors
        shard = slice(info.rank, None, info.world_size)
        torch.manual_seed(8)
        lm = torch.nn.Linear(4, 1).double()
        fit(lm, lambda m, b: m(x[shard]) - y[shard], phases=[Phase("lm", 6)], progress=False)
        if info.is_main:
            save_checkpoint(args.lm_out, {"params": dict(lm.state_dict())})
        if info.world_size == 1:  # negative control: one rank's half of the residuals alone
            torch.manual_seed(8)
            half = torch.nn.Linear(4, 1).double()
            fit(half, lambda m, b: m(x[0::2]) - y[0::2], phases=[Phase("lm", 6)], progress=False)
            save_checkpoint(args.lm_out + ".control", {"params": dict(half.state_dict())})
    if args.control_out and info.world_size == 1:
        # negative control: what one rank would learn from its own half of each global batch, i.e. DDP
        # without gradient averaging
        half = DataLoader(dataset, batch_size=16, drop_last=True,
                          sampler=DistributedSampler(dataset, num_replicas=2, rank=0, seed=6, drop_last=True))
        control = make_model(7, dropout=0.0)
        fit(control, mse, half, steps=args.steps, optimizer="sgd", lr=0.1, progress=False)
        save_checkpoint(args.control_out, {"params": dict(control.state_dict())})


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("resume")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--steps", type=int, required=True)
    r.add_argument("--every", type=int, required=True)
    r.add_argument("--slow-after", type=int, default=None)
    d = sub.add_parser("ddp")
    d.add_argument("--out", required=True)
    d.add_argument("--steps", type=int, required=True)
    d.add_argument("--checkpoint", default=None)
    d.add_argument("--control-out", default=None)
    d.add_argument("--split-out", default=None)
    d.add_argument("--split-checkpoint", default=None)
    d.add_argument("--stop-at", type=int, default=None)
    d.add_argument("--pid-dir", default=None)
    d.add_argument("--lm-out", default=None)
    d.add_argument("--fail-on-rank", type=int, default=None)
    args = parser.parse_args()
    {"resume": run_resume, "ddp": run_ddp}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
