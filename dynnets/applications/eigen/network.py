"""Trial-function networks for the Yi ODE (Lagaris-style, as in Puleo et al. 2022 Sec. II.4), done so
that the search finds every eigenpair.

Trial form on the unit sphere in the complement of the vectors found so far (projector P), s = t / T in
[0, 1]: x(s) = P y(s) / ||P y(s)||, y(s) = x0 + N(s) - N(0), so x(0) = x0 (unit, P x0 = x0), ||x|| = 1 and
the deflation (Theorem B) hold for any parameters. The loss is the seed's eq. (22) in s:
mean_i ||dx/ds(s_i) - T F(x(s_i))||^2, F(x) = S(x) x, dx/ds by ``torch.func.jvp``.

Search: each round trains ``starts`` networks at once (a ``dynnets.train.Ensemble``, loss vmapped, Adam then
L-BFGS on the summed log loss). An end point x(1) is accepted when ||A x - rho x|| <= accept_tol ||A||_F and
it is not in the span of the accepted vectors; eigenvalues are Rayleigh quotients (eq. 20), not polished.
With n - 1 pairs accepted, the last is the 1-D complement (``info["rounds"][i]["from_complement"]``).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jvp, vmap
from tqdm import tqdm

from ...checks import check_int, positive_real, real
from ...errors import ConfigError
from ...systems.yi import YiField, spread_bound
from ...train import Ensemble, Phase, fit
from ...train.config import TIMERS
from ...train.monitor import Clock
from .result import EigenResult, finish

__all__ = ["TrialMLP", "network_eig"]


class TrialMLP(nn.Module):
    """N(s): R -> R^n: features phi_k(s) = 1 - exp(-kappa_k s) (fixed rates kappa_k, spanning the exact
    solution's rates T (lambda_1 - lambda_j)), two tanh hidden layers plus a linear skip."""

    def __init__(self, dim: int, width: int, rates):
        super().__init__()
        self.rates = torch.as_tensor(rates, dtype=torch.float64)  # fixed, not a parameter or buffer
        self.net = nn.Sequential(nn.Linear(len(rates), width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                                 nn.Linear(width, dim))
        self.skip = nn.Linear(len(rates), dim, bias=False)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        phi = -torch.expm1(-s * self.rates)
        return self.net(phi) + self.skip(phi)


def _make_loss(base: nn.Module, a: torch.Tensor, basis: torch.Tensor, horizon: float, s: torch.Tensor):
    """Batched (vmap over stacked parameters and starts) eq. (22) loss, end point x(1) and curve x(s)."""

    zero = torch.zeros(1, 1, dtype=s.dtype)

    def curve(params, x0, si):
        y = x0 + functional_call(base, params, (si.unsqueeze(-1),)) - functional_call(base, params, (zero,))
        if basis.shape[1]:
            y = y - (y @ basis) @ basis.T
        return y / y.norm(dim=-1, keepdim=True)

    def pointwise(params, x0):
        x, dx = jvp(lambda si: curve(params, x0, si), (s,), (torch.ones_like(s),))
        ax = x @ a
        field = (x * x).sum(-1, keepdim=True) * ax - (x * ax).sum(-1, keepdim=True) * x
        return ((dx / horizon - field) ** 2).sum(-1)

    def loss(params, x0, causality=0.0):
        r = pointwise(params, x0)
        if causality:
            # causal weights (Wang, Sankaran, Perdikaris 2022): a time point counts only once the residual
            # before it is small, so the fit follows the trajectory from x0 instead of settling on a
            # stationary solution with a kink at s = 0 (the seed's failure mode)
            before = torch.cumsum(r, 0) - r
            r = torch.exp(-causality * before.detach() / r.shape[0]) * r
        return r.mean()

    def endpoint(params, x0):
        return curve(params, x0, torch.ones(1, dtype=s.dtype))[0]

    return vmap(loss, in_dims=(0, 0, None)), vmap(endpoint), vmap(curve, in_dims=(0, 0, None))


def _init_members(starts: int, n: int, width: int, rates, gen) -> list[TrialMLP]:
    nets = []
    for _ in range(starts):
        net = TrialMLP(n, width, rates).double()
        with torch.no_grad():  # deterministic init from the search's own generator
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) / math.sqrt(max(p.shape[-1], 1)))
            # output layers start at zero: the initial trial curve is the constant x0, so a start that is
            # already near an eigenvector (a continued search) begins at a small loss, not at an O(1) one
            for p in (net.net[-1].weight, net.net[-1].bias, net.skip.weight):
                p.zero_()
        nets.append(net)
    return nets


def _train_round(a, basis, x0, width, horizon, points, adam_steps, lbfgs_steps, lr, causality, gen, on_step=None,
                 time_left=None, timer="wall"):
    """(end points, losses) of ``starts`` networks trained as one Ensemble: Adam, then one L-BFGS call on the
    sum of log losses (stuck networks do not set the others' steps), skipped when ``time_left`` s are up."""
    starts, n = x0.shape
    rates = np.geomspace(0.5, horizon * float(spread_bound(a)), 12)
    ens = Ensemble(_init_members(starts, n, width, rates, gen))
    # half the points quadratically clustered at s = 0 (fast transient), half uniform (the slow approach,
    # whose residual sets the end point's accuracy)
    s = torch.cat([torch.linspace(0.0, 1.0, points - points // 2, dtype=torch.float64) ** 2,
                   torch.linspace(0.0, 1.0, points // 2 + 2, dtype=torch.float64)[1:-1]]).sort().values
    loss_fn, end_fn, _ = _make_loss(ens.template, a, basis, horizon, s)
    phases = [Phase("adam", adam_steps, lr=lr, schedule=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(
                  opt, max(adam_steps, 1), eta_min=lr / 100)),
              Phase("lbfgs", 1 if lbfgs_steps else 0, lr=1.0, loss=lambda m, b: loss_fn(m.params(), x0, 0.0).log().sum(),
                    options=dict(max_iter=max(lbfgs_steps, 1), history_size=50, tolerance_grad=1e-14,
                                 tolerance_change=1e-18))]
    if adam_steps + lbfgs_steps and (time_left is None or time_left > 0):
        fit(ens, lambda m, b: loss_fn(m.params(), x0, causality).sum(), phases=phases, time_budget=time_left,
            timer=timer, progress=False, on_step=on_step)
    with torch.no_grad():
        return end_fn(ens.params(), x0), loss_fn(ens.params(), x0, 0.0)


def _accept(a: torch.Tensor, ends: torch.Tensor, basis: torch.Tensor, tol: float):
    """(residuals, accepted unit end points: residual <= tol, not mostly in span(basis); the new basis)."""
    rho = (ends * (ends @ a)).sum(1)
    res = (ends @ a - rho.unsqueeze(1) * ends).norm(dim=1)
    new = []
    for i in torch.argsort(res).tolist():
        if res[i] > tol:
            break
        v = ends[i] - basis @ (basis.T @ ends[i])
        if v.norm() < 0.5:  # mostly along accepted vectors: a repeat, not a new eigenvector
            continue
        new.append((ends[i] / ends[i].norm()).numpy())
        basis = torch.cat([basis, (v / v.norm()).unsqueeze(1)], dim=1)
    return res, new, basis


def _check_counts(starts, width, points, adam_steps, lbfgs_steps, timer) -> tuple[int, ...]:
    """network_eig's integer options (returned) and timer, checked (``yi_eig`` checks the seed)."""
    if timer not in TIMERS:
        raise ConfigError(f"timer={timer!r} must be one of {', '.join(map(repr, TIMERS))}")
    starts, width, points, adam_steps, lbfgs_steps = (check_int(k, v, minimum=m) for k, v, m in (
        ("starts", starts, 1), ("width", width, 1), ("points", points, 1), ("adam_steps", adam_steps, 0),
        ("lbfgs_steps", lbfgs_steps, 0)))
    if adam_steps + lbfgs_steps == 0:
        raise ConfigError("adam_steps + lbfgs_steps must be at least 1 (no training would find no pair), got 0")
    return starts, width, points, adam_steps, lbfgs_steps


def _starts(x0, keep, basis: torch.Tensor, starts: int, gen) -> torch.Tensor:
    """Unit starts in the complement of ``basis``: the kept previous ones, fresh random ones elsewhere."""
    fresh = torch.randn(starts, basis.shape[0], generator=gen, dtype=torch.float64)
    x0 = fresh if x0 is None else torch.where(keep.unsqueeze(1), x0, fresh)
    x0 = x0 - (x0 @ basis) @ basis.T
    return x0 / x0.norm(dim=1, keepdim=True)


def network_eig(field: YiField, *, seed: int = 0, starts: int = 8, width: int = 24, horizon: float = 80.0,
                points: int = 96, adam_steps: int = 300, lbfgs_steps: int = 200, lr: float = 1e-2, causality: float = 100.0,
                accept_tol: float = 5e-5, max_rounds: int | None = None, time_budget: float | None = None,
                timer: str = "wall", progress: bool = False, device=None) -> EigenResult:
    """Search eigenpairs of ``field.A`` (module docstring), horizon T = horizon / ||A||_F (scale free).
    ``time_budget`` (seconds by ``timer``, "wall" or "cpu") cuts the running round short, then ends the
    search. Run with torch.set_num_threads(1) (tiny tensors). Returns the pairs found (maybe fewer than n)."""
    starts, width, points, adam_steps, lbfgs_steps = _check_counts(
        starts, width, points, adam_steps, lbfgs_steps, timer)
    horizon, lr, accept_tol = (positive_real(k, v) for k, v in
                               (("horizon", horizon), ("lr", lr), ("accept_tol", accept_tol)))
    causality = real("causality", causality, minimum=0.0)
    if max_rounds is not None:
        max_rounds = check_int("max_rounds", max_rounds, minimum=1)
    if time_budget is not None:
        time_budget = positive_real("time_budget", time_budget)
    a_np = field.A.detach().cpu().numpy()
    a = torch.as_tensor(a_np)
    n = a.shape[0]
    scale = float(np.linalg.norm(a_np))
    horizon_t = horizon / max(scale, np.finfo(float).tiny)
    rounds = max_rounds if max_rounds is not None else 4 * n
    gen = torch.Generator().manual_seed(seed)
    basis = torch.zeros(n, 0, dtype=torch.float64)
    found, steps, history = [], [], []
    x0, keep = None, None
    bar = tqdm(total=rounds * (adam_steps + lbfgs_steps), desc="network search", unit="it", leave=False,
               disable=not progress)

    def on_step(step: int, loss: float) -> None:  # an L-BFGS step is lbfgs_steps iterations
        bar.update(1 if step <= adam_steps else lbfgs_steps)

    t0, clock = time.perf_counter(), Clock(timer)
    for r in range(rounds):
        if len(found) == n or (time_budget is not None and clock.elapsed() > time_budget):
            break
        if n - len(found) == 1:  # a 1-D complement holds exactly one unit vector: nothing to learn
            v = torch.linalg.qr(torch.cat([basis, torch.randn(n, 1, generator=gen, dtype=torch.float64)], 1))[0][:, -1]
            ends, losses = v.unsqueeze(0), torch.zeros(1)
        else:
            x0 = _starts(x0, keep, basis, starts, gen)
            ends, losses = _train_round(a, basis, x0, width, horizon_t, points, adam_steps, lbfgs_steps, lr,
                                        causality, gen, on_step if progress else None,
                                        None if time_budget is None else time_budget - clock.elapsed(), timer)
        res, new, basis = _accept(a, ends, basis, accept_tol * scale)
        found += new
        steps += [adam_steps + lbfgs_steps] * len(new)
        # a network not accepted hands its end point on as the next start (unless it lies along accepted ones)
        if ends.shape[0] == starts:
            keep = (ends - (ends @ basis) @ basis.T).norm(dim=1) > 0.5
            x0 = ends
        history.append({"round": r, "accepted": len(new), "from_complement": ends.shape[0] != starts,
                        "residuals": res.tolist(), "losses": losses.tolist()})
    seconds = time.perf_counter() - t0
    bar.close()
    return finish(a_np, found, "network", seconds, steps, device,
                  info={"rounds": history, "starts": starts, "width": width, "horizon": horizon,
                        "points": points, "adam_steps": adam_steps, "lbfgs_steps": lbfgs_steps,
                        "accept_tol": accept_tol, "timer": timer, "budget_seconds_used": clock.elapsed()})
