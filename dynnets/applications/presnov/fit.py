"""Full-batch regression of a map: Adam, then optionally L-BFGS (small problems, float64)."""

from __future__ import annotations

import math

import torch

from ...errors import ConfigError, NonFiniteLossError

__all__ = ["fit_map", "relative_error"]


def relative_error(pred: torch.Tensor, target: torch.Tensor) -> float:
    """sqrt(mean |pred - target|^2) / sqrt(mean |target|^2)."""
    return float((pred - target).square().sum(-1).mean().sqrt() / target.square().sum(-1).mean().sqrt())


def fit_map(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, adam_steps: int = 1000,
            lr: float = 1e-2, lbfgs_steps: int = 0, progress=None) -> dict:
    """Minimise mean |model(x) - y|^2. Returns {"train_mse": ..., "history": [...]}; ``progress`` is
    an optional callable(int) advanced once per optimiser step."""
    for name, value in (("adam_steps", adam_steps), ("lbfgs_steps", lbfgs_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be positive and finite, got lr={lr!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    history = []

    def loss_fn():
        loss = (model(x) - y).square().sum(-1).mean()
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"the training loss became {float(loss)}; lower lr={lr}")
        return loss

    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, adam_steps))
    for _ in range(adam_steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if progress is not None:
            progress(1)
    if lbfgs_steps:
        lbfgs = torch.optim.LBFGS(params, lr=1.0, max_iter=20, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)

        def closure():
            lbfgs.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            return loss

        for _ in range(lbfgs_steps):
            history.append(float(lbfgs.step(closure).detach()))
            if progress is not None:
                progress(1)
    with torch.no_grad():
        final = float(loss_fn())
    return {"train_mse": final, "history": history}
