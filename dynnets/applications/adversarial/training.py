"""Training a classifier with dynnets.train.fit: mini-batches reshuffled every epoch by a seeded generator
(deterministic under ``seed``), Adam, torch's OneCycleLR (warm-up over 30% of the steps, then cosine decay to
lr / 1e4), stepped once per optimizer step like every ``fit`` schedule, not once per epoch."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, TensorDataset

from ...checks import check_size, positive_real
from ...train import FitResult, fit


def train_classifier(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Callable, *, epochs: int,
                     batch: int, lr: float, seed: int, desc: str = "train", progress: bool = True) -> FitResult:
    """Minimise ``loss(model(x_batch), y_batch)`` for ``epochs`` passes over (x, y) in batches of ``batch``."""
    check_size("epochs", epochs)
    lr = positive_real("lr", lr)
    loader = DataLoader(TensorDataset(x, y), batch_size=check_size("batch", batch), shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    steps = epochs * len(loader)
    return fit(model, lambda m, b: loss(m(b[0]), b[1]), loader, steps=steps, optimizer="adam", lr=lr,
               schedule=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps),
               device=x.device, desc=desc, progress=progress)
