"""Plumbing shared by the structure experiments (mass, hamiltonian): reference data, training with
dynnets.train.fit, rollouts. No structure logic lives here; it is all in dynnets."""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, TensorDataset

import dynnets as dn
from dynnets.applications.runner import (
    save_figure,
)
from dynnets.train import fit as train_fit

__all__ = ["rollout", "reference_flow", "fit", "mse", "n_params", "save_figure", "finite_or_none"]


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
    """Minimise the mean squared one-step error ||model(x) - y||^2 with Adam and a cosine learning-rate
    schedule (dynnets.train.fit; a non-finite loss is an error). Returns the per-step training loss."""
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=gen)
    steps = epochs * len(loader)

    def loss_fn(m, batch):
        inputs, targets = batch
        return (m(inputs) - targets).square().mean()

    result = train_fit(model, loss_fn, loader, steps=steps, optimizer="adam", lr=lr, desc=desc,
                       device=next(model.parameters()).device,
                       schedule=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, lr / 100))
    return result.losses


@torch.no_grad()
def mse(model, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x) - y).square().mean())


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def finite_or_none(value: float):
    """JSON has no infinity: a diverged quantity is recorded as null (with a flag next to it)."""
    return value if math.isfinite(value) else None
