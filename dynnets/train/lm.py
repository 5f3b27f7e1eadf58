"""Levenberg-Marquardt for small networks on large pixel data (full batch, float64, DDP-aware).

Learning a time-step map U^n -> U^{n+1} with a ConvFD field is a nonlinear least-squares problem with
few parameters (tens to hundreds) and very many residuals (pixels). Gauss-Newton with Marquardt's
damping (Nocedal & Wright, Numerical Optimization, sec. 10.3),

    (J^T J + mu diag(J^T J) + mu tau I) delta = -J^T r,   accept if ||r(theta + delta)|| < ||r(theta)||,

converges in tens of iterations where first-order methods need thousands (the exact ConvFD is a
zero-residual point up to the integrator's error floor). J comes from forward-mode autodiff
(torch.func.jacfwd). Under a torch.distributed process group every rank holds a shard of the residuals;
J^T J, J^T r and the trial losses are summed over ranks, so all ranks take identical steps.

Checkpoints (dynnets.train.save_checkpoint: atomic, verified, weights_only) hold theta, mu, the
iteration and the loss history; an existing checkpoint is resumed from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.func import functional_call, jacfwd
from tqdm.auto import tqdm

from ..errors import ConfigError, NonFiniteLossError
from .distributed import broadcast_flag


@dataclass
class LMResult:
    losses: list[float] = field(default_factory=list)  # sum of squared residuals after each iteration
    iterations: int = 0
    seconds: float = 0.0
    resumed_from: int | None = None


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def _is_main() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def levenberg_marquardt(model: torch.nn.Module, residual: Callable, *, iterations: int, mu0: float = 1e-2,
                        tau: float = 1e-9, time_budget: float | None = None, checkpoint=None,
                        checkpoint_every: int = 5, progress: bool = True, desc: str = "LM") -> LMResult:
    """Minimise sum(residual(model)**2) over the model's trainable parameters, in place.

    residual(module) -> tensor of residuals (this rank's shard); it must call the module it is given.
    tau: floor of the damping relative to max diag(J^T J) (keeps directions with no signal bounded).
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ConfigError(f"iterations must be a non-negative integer, got {iterations!r}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ConfigError("levenberg_marquardt: the model has no trainable parameter")
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    theta = torch.cat([p.detach().reshape(-1) for _, p in named])
    frozen = {n: b for n, b in model.named_buffers()}

    def res(t: torch.Tensor) -> torch.Tensor:
        params = {n: c.view(s) for n, c, s in zip(names, t.split(sizes), shapes, strict=True)}

        class _Call(torch.nn.Module):
            def forward(self, x):
                return functional_call(model, {**params, **frozen}, (x,))

        return residual(_Call()).reshape(-1)

    def loss_of(r: torch.Tensor) -> float:
        return float(_all_reduce(r.detach().pow(2).sum().reshape(1)))

    result = LMResult()
    mu, start = float(mu0), 0
    path = None if checkpoint is None else Path(checkpoint)
    if path is not None and path.exists():
        from .checkpoint import load_checkpoint

        state = load_checkpoint(path)
        if tuple(state["theta"].shape) != tuple(theta.shape):
            raise ConfigError(f"checkpoint {path} holds {state['theta'].numel()} parameters, the model has "
                              f"{theta.numel()}")
        theta = state["theta"].to(theta)
        mu, start, result.losses = float(state["mu"]), int(state["iteration"]), list(state["losses"])
        result.resumed_from = start

    def save(it: int):
        if path is not None and _is_main():
            from .checkpoint import save_checkpoint

            save_checkpoint(path, {"theta": theta.detach().cpu(), "mu": mu, "iteration": it,
                                   "losses": list(result.losses)})

    t0 = time.perf_counter()
    with torch.no_grad():
        r = res(theta)
    loss = loss_of(r)
    if not math.isfinite(loss):
        raise NonFiniteLossError(f"the initial loss is {loss} (rule: residuals must be finite)")
    bar = tqdm(total=iterations, initial=start, desc=desc, unit="it", dynamic_ncols=True,
               disable=not (progress and _is_main()))
    it = start
    try:
        while it < iterations:
            jac = jacfwd(res)(theta)
            jtj = _all_reduce(jac.T @ jac)
            jtr = _all_reduce(jac.T @ r)
            del jac
            if not bool(torch.isfinite(jtj).all() and torch.isfinite(jtr).all()):
                raise NonFiniteLossError(f"non-finite Jacobian at iteration {it} (loss {loss:.3e})")
            diag = torch.diagonal(jtj)
            floor = max(tau * float(diag.max()), 1e-300)
            while True:
                lhs = jtj + mu * torch.diag(diag + floor)
                delta, status = torch.linalg.solve_ex(lhs, -jtr)
                if int(status) != 0 or not bool(torch.isfinite(delta).all()):
                    new = math.inf  # (numerically) singular system: damp more
                else:
                    with torch.no_grad():
                        r_new = res(theta + delta)
                    new = loss_of(r_new)
                if math.isfinite(new) and new < loss:
                    theta, r, loss = theta + delta, r_new, new
                    mu = max(mu / 3.0, 1e-15)
                    break
                mu *= 4.0
                if mu > 1e15:
                    break
            it += 1
            result.losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3e}", mu=f"{mu:.1e}", refresh=False)
            if path is not None and (it % checkpoint_every == 0 or it == iterations):
                save(it)
            if mu > 1e15:
                break
            if time_budget is not None and broadcast_flag(time.perf_counter() - t0 >= time_budget):
                save(it)
                break
    finally:
        bar.close()
    with torch.no_grad():
        for (_, p), c in zip(named, theta.split(sizes), strict=True):
            p.copy_(c.view(p.shape))
    result.iterations = it
    result.seconds = time.perf_counter() - t0
    return result
