"""Linearised stability of a learned time-step map on a periodic grid (why it is needed: docs/fisher.md).

A translation-invariant field linearised at a constant state c 1 is circulant; on an n x n periodic grid its
eigenvalues are lambda_c(xi) = fft2(DF(c 1)[delta])(xi), xi the grid frequencies (``linearised_symbol``).
The PDE bounds them: Re lambda_c <= b(c) (``growth_bound``: 1 - 2c for Fisher, 0 for heat), and an Euler
substep amplifies by |1 + h lambda| <= 1 + h max(b(c), 0). ``stability_residuals`` are hinge residuals, zero
exactly when both hold at every probed c and xi (a Levenberg-Marquardt penalty); ``certificate`` reports both
after training. A frozen-coefficient criterion at constant states, not a proof for every state.
"""

from __future__ import annotations

import torch
from torch import nn

from ...methods.rk import Euler
from ...step import Flow, Step

PROBE = 2.0**-10  # size of the central-difference probe (a power of two: c +- PROBE exact for c in [0, 1])


def linearised_response(field, states: torch.Tensor, n: int) -> torch.Tensor:
    """DF(c 1)[delta] for each constant state c in ``states`` (1-D), a delta at the origin of an n x n grid,
    shape (len(states), n, n), by the central difference (F(c 1 + e delta) - F(c 1 - e delta)) / 2e,
    e = PROBE: exact to round-off for fields of degree <= 2 in U. Not autodiff: relu'(0) = 0 would drop the
    linear term relu(z) - relu(-z) = z of a relu pair at a zero pre-activation."""
    states = torch.as_tensor(states).reshape(-1)
    u = states.view(-1, 1, 1, 1).expand(-1, 1, n, n)
    delta = torch.zeros_like(u)
    delta[..., 0, 0] = PROBE
    both = field(torch.cat([u + delta, u - delta]))
    return (both[: len(states), 0] - both[len(states):, 0]) / (2 * PROBE)


def linearised_symbol(field, states: torch.Tensor, n: int) -> torch.Tensor:
    """lambda_c(xi) per constant state c in ``states`` (1-D): complex (len(states), n, n), fft2 order."""
    return torch.fft.fft2(linearised_response(field, states, n))


def growth_bounds(growth_bound, states: torch.Tensor) -> torch.Tensor:
    """b(c) for each constant state (``growth_bound``: the PDE's, e.g. ``FisherField2D.growth_bound``), shaped
    (len(states), 1, 1) to broadcast against ``linearised_symbol``."""
    states = torch.as_tensor(states, dtype=torch.float64).reshape(-1)
    return torch.tensor([float(growth_bound(float(c))) for c in states], dtype=states.dtype).view(-1, 1, 1)


def stability_residuals(symbol: torch.Tensor, bounds: torch.Tensor, h: float) -> torch.Tensor:
    """Hinge residuals (flattened) of the growth rate and of the Euler substep's amplification beyond the
    PDE's own, per substep of size h: zero iff the symbol lies in the PDE's stability region."""
    growth = torch.relu(h * (symbol.real - bounds))
    amplification = torch.relu((1 + h * symbol).abs() - (1 + h * torch.relu(bounds)))
    return torch.cat([growth.reshape(-1), amplification.reshape(-1)])


class EulerStepMap(nn.Module):
    """U -> Psi(U): ``substeps`` Euler steps of ``field``, h = dt / substeps; ``forward(states,
    linearise=True)`` gives the field's ``linearised_symbol`` on a ``probe_grid`` grid instead (one module,
    so that Levenberg-Marquardt's functional view sees both with the same parameters)."""

    def __init__(self, field, dt: float, substeps: int = 3, probe_grid: int = 32):
        super().__init__()
        self.h, self.probe_grid = dt / substeps, int(probe_grid)
        self.flow = Flow.repeat(Step(field, Euler(), self.h), substeps)

    @property
    def field(self):
        # not registered a second time: torch.func.functional_call (Levenberg-Marquardt's view of the model)
        # restores a parameter reachable under two module paths as a plain tensor
        return self.flow.steps[0].field

    def forward(self, u: torch.Tensor, linearise: bool = False) -> torch.Tensor:
        return linearised_symbol(self.field, u, self.probe_grid) if linearise else self.flow(u)

    def extra_repr(self) -> str:
        return f"h={self.h:.6g}, probe_grid={self.probe_grid}"


@torch.no_grad()
def certificate(field, growth_bound, h: float, n: int, states) -> dict:
    """Max over the constant ``states`` and the n x n grid frequencies of the linearised growth rate, its
    excess over the PDE's bound b(c), and the Euler substep amplification |1 + h lambda| (also relative to
    the PDE's own 1 + h max(b, 0)); with where the worst excess is. JSON-ready."""
    states = torch.as_tensor(states, dtype=torch.float64).reshape(-1)
    symbol = linearised_symbol(field, states, n)
    bounds = growth_bounds(growth_bound, states)
    excess = symbol.real - bounds
    amp = (1 + h * symbol).abs()
    c_index, rest = divmod(int(excess.argmax()), n * n)
    return {"states": states.tolist(), "grid": n, "h": h,
            "max_growth_rate": float(symbol.real.max()), "max_growth_excess": float(excess.max()),
            "worst": {"c": float(states[c_index]), "ky": rest // n, "kx": rest % n},
            "max_amplification": float(amp.max()),
            "max_amplification_excess": float((amp - (1 + h * torch.relu(bounds))).max()),
            "fraction_above_bound_plus_10": float((excess > 10).double().mean()),
            "rule": "Re lambda_c(xi) <= b(c) and |1 + h lambda_c(xi)| <= 1 + h max(b(c), 0); excess <= 0 holds"}
