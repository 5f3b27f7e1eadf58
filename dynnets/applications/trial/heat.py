"""The seed's heat problem solved by trial-function networks: two recipes, one training entry point.

Problem (Puleo, Svejda, Breitenstein 2022, sec. II.3): u_t = u_xx on [0, 1] x [0, 1], u(x, 0) = sin(pi x),
u(0, t) = u(1, t) = 0, exact solution sin(pi x) exp(-pi^2 t). The seed's ``PAPER_RECIPE`` and our
``DYNNETS_RECIPE``: docs/heat.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import ConfigError
from ...train import Monitor, Phase, Stall, fit
from .network import LinearPDE, ProjectedLoss, TrialNetwork, TrialSolution, grid_points, residual_loss


def heat_sine_trial(network: nn.Module, alpha: float = 1.0) -> tuple[TrialSolution, LinearPDE]:
    """u_t = alpha u_xx with u(x, 0) = sin(pi x), u(0, t) = u(1, t) = 0 in the trial form
    u = (1 - t) sin(pi x) + x (1 - x) t N(x, t); inputs z = (x, t)."""
    return (TrialSolution(network, lambda z: (1.0 - z[:, 1]) * torch.sin(math.pi * z[:, 0]),
                          lambda z: z[:, 0] * (1.0 - z[:, 0]) * z[:, 1]),
            LinearPDE({"t": 1.0, "xx": -float(alpha)}, coords="xt"))


def heat_sine_exact(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.sin(math.pi * x) * math.exp(-math.pi**2 * t)


@dataclass(frozen=True)
class HeatTrialRecipe:
    name: str
    network: str              # "flow" (TrialNetwork) or "paper-mlp" (the seed's MLP)
    dtype: torch.dtype
    points_per_axis: int
    interior_points: bool     # cell midpoints (True) or linspace with the faces (False, the seed)
    adam_steps: int
    adam_lr: float
    lbfgs_steps: int
    lbfgs_history: int = 100
    reduction: str = "mean"
    width: int = 20
    depth: int = 3
    activation: str = "tanh"
    output_scale: float = 1.0
    t_grading: float = 1.0    # t-points s^p: p > 1 clusters them near t = 0 (fast decay there)
    projection: str = "trained"  # "trained" (by the optimizer) or "least-squares" (variable projection)


PAPER_RECIPE = HeatTrialRecipe(
    name="paper", network="paper-mlp", dtype=torch.float32, points_per_axis=20, interior_points=False,
    adam_steps=10**6, adam_lr=0.005, lbfgs_steps=0, reduction="sum", activation="sigmoid",
)
DYNNETS_RECIPE = HeatTrialRecipe(  # width 20, depth 3, L-BFGS history 100: the defaults
    name="dynnets", network="flow", dtype=torch.float64, interior_points=True, points_per_axis=28,
    t_grading=2.0, adam_steps=100, adam_lr=1e-2, lbfgs_steps=10**6, projection="least-squares",
)


def build_heat_trial(recipe: HeatTrialRecipe, seed: int, dtype: torch.dtype | None = None,
                     device=None):
    """(solution, pde, collocation points) for a recipe, with parameters drawn under ``seed``."""
    dtype = recipe.dtype if dtype is None else dtype
    torch.manual_seed(seed)
    if recipe.network == "flow":
        net = TrialNetwork(2, recipe.width, recipe.depth, recipe.activation, output_scale=recipe.output_scale)
    elif recipe.network == "paper-mlp":  # the seed's N: 2-50-20-1, sigmoid, torch's init (the seed used TF's)
        net = nn.Sequential(nn.Linear(2, 50), nn.Sigmoid(), nn.Linear(50, 20), nn.Sigmoid(), nn.Linear(20, 1),
                            nn.Flatten(0))
    else:
        raise ConfigError(f"unknown network kind {recipe.network!r}; use 'flow' or 'paper-mlp'")
    solution, pde = heat_sine_trial(net.to(dtype=dtype, device=device))
    points = grid_points((recipe.points_per_axis,) * 2, (0.0, 0.0), (1.0, 1.0), dtype=dtype,
                         interior=recipe.interior_points, grading=(1.0, recipe.t_grading)).to(device)
    return solution, pde, points


@torch.no_grad()
def max_abs_errors(solution: nn.Module, times=(0.1, 0.3), n: int = 1001) -> dict[float, float]:
    """max over n uniform x in [0, 1] of |u(x, t) - exact| for each t (evaluated in float64 when the
    solution's parameters are float64, else in their dtype, compared with the float64 exact values)."""
    p = next(solution.parameters())
    x = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    out = {}
    for t in times:
        z = torch.stack([x, torch.full_like(x, t)], 1).to(dtype=p.dtype, device=p.device)
        out[float(t)] = float((solution(z).to(torch.float64).cpu() - heat_sine_exact(x, t)).abs().max())
    return out


LBFGS_CHUNK = 10  # L-BFGS iterations per step: the loss is checked (restart on stall, budget) every chunk


def train_heat_trial(recipe: HeatTrialRecipe, seed: int = 0, *, time_budget: float = 20.0,
                     timer: str = "cpu", log_every: float = 0.5, dtype: torch.dtype | None = None,
                     device=None, progress: bool = False) -> dict:
    """Train one recipe for ``time_budget`` seconds (``timer`` "cpu" or "wall") with dynnets.train.fit,
    keeping the lowest-loss parameters; returns {solution, history (max error at t = 0.1, 0.3 every
    ``log_every`` s), errors, max_abs_error, train_seconds, wall_seconds, ...}."""
    solution, pde, points = build_heat_trial(recipe, seed, dtype, device)
    if recipe.projection == "least-squares":
        loss = ProjectedLoss(solution, pde, points)
        finish = loss.set_projection
    elif recipe.projection == "trained":
        loss, finish = residual_loss(solution, pde, points, reduction=recipe.reduction), (lambda: None)
    else:
        raise ConfigError(f"projection must be 'trained' or 'least-squares', got {recipe.projection!r}")

    def error(s) -> float:
        finish()  # the monitor sees the solution with its current best projection
        return max(max_abs_errors(s).values())

    # Adam, then L-BFGS in chunks, restarted when a chunk leaves the loss unchanged to 4 digits
    lbfgs = Phase("lbfgs", math.ceil(recipe.lbfgs_steps / LBFGS_CHUNK), lr=1.0, stall=Stall(every=1, rtol=1e-4),
                  options=dict(max_iter=LBFGS_CHUNK, max_eval=LBFGS_CHUNK * 5 // 4, history_size=recipe.lbfgs_history,
                               tolerance_grad=0.0, tolerance_change=0.0))
    phases = [p for p in (Phase("adam", recipe.adam_steps, lr=recipe.adam_lr), lbfgs) if p.steps]
    wall = time.perf_counter()
    result = fit(solution, loss, phases=phases, time_budget=time_budget, timer=timer, keep_best=True,
                 monitor=Monitor(error, every_seconds=log_every), progress=progress, desc=f"heat trial ({recipe.name})")
    finish()
    wall = time.perf_counter() - wall
    history = [{"seconds": r["seconds"], "phase": r["phase"], "iteration": r["step"], "monitor": r["value"]}
               for r in result.monitor]
    errors = max_abs_errors(solution)
    return {"solution": solution, "history": history, "errors": errors, "max_abs_error": max(errors.values()),
            "train_seconds": result.train_seconds, "wall_seconds": wall, "seed": seed, "recipe": recipe.name,
            "final_loss": result.end_loss}
