"""Full-batch regression of a map (small problems, float64) with dynnets.train.fit, and its relative error."""

from __future__ import annotations

import torch

from ...train import Phase, fit


def relative_error(pred: torch.Tensor, target: torch.Tensor) -> float:
    """sqrt(mean |pred - target|^2) / sqrt(mean |target|^2)."""
    return float((pred - target).square().sum(-1).mean().sqrt() / target.square().sum(-1).mean().sqrt())


def fit_map(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, adam_steps: int = 1000,
            lr: float = 1e-2, lbfgs_steps: int = 0, progress=None) -> dict:
    """Minimise mean |model(x) - y|^2 by ``adam_steps`` Adam steps (cosine schedule from ``lr`` to 0), then
    ``lbfgs_steps`` L-BFGS calls of up to 20 iterations (strong Wolfe, history 20); {"train_mse": the trained
    model's loss, "history": the loss before every step}. ``progress``: a callable(int) advanced per step."""

    def loss(m, batch):
        return (m(x) - y).square().sum(-1).mean()

    phases = [Phase("adam", adam_steps, lr=lr,
                    schedule=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, adam_steps))),
              Phase("lbfgs", lbfgs_steps, lr=1.0, options=dict(max_iter=20, history_size=20, tolerance_grad=1e-12,
                                                               tolerance_change=1e-15))]
    result = fit(model, loss, phases=phases, progress=False,
                 on_step=None if progress is None else (lambda step, value: progress(1)))
    with torch.no_grad():
        return {"train_mse": float(loss(model, None)), "history": result.losses}
