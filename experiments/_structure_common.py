"""Plumbing shared by the structure experiments (mass, hamiltonian): command line, reference data,
a plain Adam training loop, rollouts, atomic output. No structure logic lives here; it is all in dynnets."""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path

import torch
from tqdm import tqdm

import dynnets as dn
from dynnets.errors import ConfigError

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description)
    p.add_argument("--quick", action="store_true", help="small run (under a minute on 2 CPU cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results") / name)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="float64", choices=sorted(DTYPES),
                   help="float64 (default) so that invariants are checked at float64 round-off")
    return p


def setup(args) -> tuple[torch.device, torch.dtype]:
    """Seed, device and dtype from the parsed arguments (ConfigError on a bad device)."""
    if args.device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch.cuda.is_available() is False")
    if args.device == "cpu":
        # the models are tiny: intra-op threads cost more in hand-offs than they save
        torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    return torch.device(args.device), DTYPES[args.dtype]


@torch.no_grad()
def rollout(f, x0: torch.Tensor, n: int) -> torch.Tensor:
    """x_0, f(x_0), ..., f^n(x_0): shape (n + 1, batch, dim)."""
    xs = [x0]
    for _ in range(n):
        xs.append(f(xs[-1]))
    return torch.stack(xs)


def reference_flow(field, dt: float, substeps: int) -> dn.Flow:
    """The reference flow map over dt: `substeps` classical RK4 steps of the true field."""
    return dn.Flow.repeat(dn.Step(field, dn.methods.RK4(), dt / substeps), substeps)


def fit(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float,
        batch_size: int, seed: int, desc: str) -> list[float]:
    """Minimise the mean squared one-step error ||model(x) - y||^2 with Adam and a cosine learning
    rate schedule. Returns the per-epoch mean training loss. A non-finite loss is an error."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=lr / 100)
    gen = torch.Generator().manual_seed(seed)
    history = []
    # disable=None: a bar on a terminal, silence in logs and tests
    bar = tqdm(range(epochs), desc=desc, leave=False, mininterval=0.5, disable=None)
    for epoch in bar:
        order = torch.randperm(x.shape[0], generator=gen).to(x.device)
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start:start + batch_size]
            loss = (model(x[idx]) - y[idx]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        sched.step()
        mean = total / x.shape[0]
        if not math.isfinite(mean):
            raise ValueError(f"{desc}: training loss became {mean} at epoch {epoch}; lower the learning rate")
        history.append(mean)
        bar.set_postfix(loss=f"{mean:.2e}", refresh=False)
    return history


@torch.no_grad()
def mse(model, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x) - y).square().mean())


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def write_metrics(out: Path, metrics: dict) -> Path:
    """Write out/metrics.json atomically (temporary file in the same directory, then os.replace)."""
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".metrics.", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(metrics, fh, indent=2, sort_keys=True, allow_nan=False)
        fh.write("\n")
    target = out / "metrics.json"
    os.replace(tmp, target)
    return target


def save_figure(fig, path: Path) -> Path:
    """Save a matplotlib figure atomically as PNG."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    os.replace(tmp, path)
    return path


def finite_or_none(value: float):
    """JSON has no infinity: a diverged quantity is recorded as null (with a flag next to it)."""
    return value if math.isfinite(value) else None
