"""Linearised stability of a learned time-step map on a periodic grid: the spectrum of its field at constant
states, a penalty that keeps it where the PDE's own spectrum is, and the certificate reported after training.

A translation-invariant field F (a ConvFD, an FD field) linearised at a constant state U = c 1 is a
circulant operator DF(c 1); its eigenvalues on an n x n periodic grid are the discrete Fourier transform of
its response to a delta at the origin (the first column of the circulant matrix):

    lambda_c(xi) = fft2( DF(c 1)[delta] )(xi),     xi = the n x n grid frequencies

(``linearised_symbol``; the response by a central difference, exact to round-off for fields of degree <= 2
in U such as the tied Fisher and heat ConvFD). For the semi-discrete PDE the frozen-
coefficient spectrum is bounded by the equation itself: Re lambda_c <= b(c) with b(c) = 1 - 2c for Fisher
(alpha L <= 0 plus the logistic slope 1 - 2c) and b = 0 for heat (``_Diffusion2D.growth_bound``). One explicit
Euler substep of size h multiplies the mode xi by 1 + h lambda_c(xi), and the exact FD field satisfies
|1 + h lambda| <= 1 + h max(b(c), 0) whenever h rho(alpha L) <= 2 (its Euler stability rule). A learned field
fitted to one-step data is constrained only at the frequencies the data carries: nothing stops its symbol at
frequencies the data lacks (the checkerboard mode xi = (pi, pi) of a grid) from having a large positive real
part, and a rollout then amplifies round-off there until it overflows (docs/fisher.md, Fisher seed 3).

``stability_residuals`` are hinge residuals, zero exactly when

    Re lambda_c(xi) <= b(c)   and   |1 + h lambda_c(xi)| <= 1 + h max(b(c), 0)      for every probed c, xi,

scaled per Euler substep (h (Re lambda - b), |1 + h lambda| - (1 + h b+)); appended to the one-step
residual of Levenberg-Marquardt they keep the exact construction a zero-residual point and push every
learned mode into the PDE's own stability region. ``certificate`` evaluates both quantities after training
on the rollout grid, over a grid of constant states; for the polynomial (tied) ConvFD the symbol is affine in
c (lambda_c = lambda_0 + c mu from the relu and relu^2 pairs), so the maxima over an interval of c are
attained at its end points and a grid containing them certifies the whole interval. This is a frozen-
coefficient (linearised) criterion at constant states, stated as such: it is not a proof for every state.
"""

from __future__ import annotations

import torch
from torch import nn

from ...methods.rk import Euler
from ...step import Flow, Step

PROBE = 2.0**-10  # size of the central-difference probe (a power of two: c +- PROBE exact for c in [0, 1])


def linearised_response(field, states: torch.Tensor, n: int) -> torch.Tensor:
    """DF(c 1)[delta]: the field linearised at each constant state c in ``states`` (1-D) applied to a delta at
    the origin of an n x n grid, shape (len(states), n, n) (the first column of the circulant Jacobian;
    translated, the correlation kernel of DF(c 1) flipped).

    Computed by the central difference (F(c 1 + e delta) - F(c 1 - e delta)) / 2e, e = PROBE, which is exact
    (to round-off, about eps |F| / e) for fields that are polynomials of degree <= 2 in U, such as the tied
    (mirrored) ConvFD of Fisher and heat, and O(e^2) accurate for smooth fields. Forward-mode autodiff is not
    used on purpose: at a constant state a relu pair's pre-activation A_j * c can be exactly 0 (c = 0, or a
    kernel summing to 0 such as alpha L for heat), where autograd's relu'(0) = 0 drops the linear term
    relu(z) - relu(-z) = z of the construction; the central difference keeps it."""
    states = torch.as_tensor(states).reshape(-1)
    u = states.view(-1, 1, 1, 1).expand(-1, 1, n, n)
    delta = torch.zeros_like(u)
    delta[..., 0, 0] = PROBE
    both = field(torch.cat([u + delta, u - delta]))
    plus, minus = both[: len(states), 0], both[len(states):, 0]
    return (plus - minus) / (2 * PROBE)


def linearised_symbol(field, states: torch.Tensor, n: int) -> torch.Tensor:
    """lambda_c(xi) for each constant state c in ``states`` (1-D): complex (len(states), n, n), indexed like
    ``torch.fft.fft2`` (see the module docstring)."""
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
    """U -> Psi(U): ``substeps`` explicit Euler steps of ``field`` with h = dt / substeps (``flow``, a dynnets
    Flow); ``forward(states, linearise=True)`` returns instead the field's ``linearised_symbol`` at the
    constant ``states`` on an n x n grid (n = ``probe_grid``). One module for both, so that a residual
    differentiated by ``dynnets.train``'s Levenberg-Marquardt (which calls the model through a functional view
    of its parameters) can use the step map and the field's spectrum with the same parameters."""

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
        if linearise:
            return linearised_symbol(self.field, u, self.probe_grid)
        return self.flow(u)

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
    amp_excess = amp - (1 + h * torch.relu(bounds))
    flat = int(excess.argmax())
    c_index, rest = divmod(flat, n * n)
    return {"states": states.tolist(), "grid": n, "h": h,
            "max_growth_rate": float(symbol.real.max()), "max_growth_excess": float(excess.max()),
            "worst": {"c": float(states[c_index]), "ky": rest // n, "kx": rest % n},
            "max_amplification": float(amp.max()), "max_amplification_excess": float(amp_excess.max()),
            "fraction_above_bound_plus_10": float((excess > 10).double().mean()),
            "rule": "Re lambda_c(xi) <= b(c) and |1 + h lambda_c(xi)| <= 1 + h max(b(c), 0); excess <= 0 holds"}
