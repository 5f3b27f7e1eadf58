"""Classical ODE systems as fixed (parameter-free) fields, for generating data and as references:
SIR, the slides' mass-conserving 3-D system, the pendulum, and a damped forced 3-D field.

Each is a ``dynnets.fields.Field`` that declares the same traits as the learned family that should
mimic it, so e.g. ``Step(Pendulum(), StormerVerlet(), h)`` is a symplectic reference integrator.
"""

from __future__ import annotations

import torch

from ..base import Field
from ..checks import positive_real
from ..structure import ConservesLinear, Partitioned, SeparableHamiltonian


class SIR(Field):
    """Susceptible-infected-recovered model on x = (S, I, R):
    S' = -beta S I,  I' = beta S I - gamma I,  R' = gamma I.  The population S + I + R is conserved."""

    dim = 3
    traits = frozenset({ConservesLinear((1.0, 1.0, 1.0))})

    def __init__(self, beta: float = 3.0, gamma: float = 1.0):
        super().__init__()
        self.beta = positive_real("beta", beta)
        self.gamma = positive_real("gamma", gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        s, i, _ = x.unbind(-1)
        infection = self.beta * s * i
        recovery = self.gamma * i
        return torch.stack([-infection, infection - recovery, recovery], dim=-1)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}"


class SkewMass3D(Field):
    """The mass-conserving 3-D system of the seed slides (Celledoni et al. 2022):
    y' = [[0, -y3 y1^2, y2 y3], [y3 y1^2, 0, -sin y1], [-y2 y3, sin y1, 0]] 1, so 1^T y is conserved."""

    dim = 3
    traits = frozenset({ConservesLinear((1.0, 1.0, 1.0))})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        y1, y2, y3 = x.unbind(-1)
        a12, a13, a23 = -y3 * y1.square(), y2 * y3, -torch.sin(y1)
        # row sums of the skew matrix [[0, a12, a13], [-a12, 0, a23], [-a13, -a23, 0]]
        return torch.stack([a12 + a13, -a12 + a23, -a13 - a23], dim=-1)


class Pendulum(Field):
    """The mathematical pendulum on x = (q, p): H(q, p) = p^2 / 2 - cos q, q' = p, p' = -sin q."""

    dim = 2
    q_dim = 1
    traits = frozenset({Partitioned(), SeparableHamiltonian()})

    def f(self, p: torch.Tensor) -> torch.Tensor:
        return p

    def g(self, q: torch.Tensor) -> torch.Tensor:
        return -torch.sin(q)

    def partition(self):
        return self.q_dim, self.f, self.g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return torch.cat([self.f(x[..., 1:]), self.g(x[..., :1])], dim=-1)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return 0.5 * x[..., 1].square() - torch.cos(x[..., 0])

    energy = hamiltonian


class DampedForced(Field):
    """A damped, forced, nonlinear 3-D field (no parameters; div f = -(a + b + c) < 0):

        x1' = x2 - a x1 + 0.4 x2 x3
        x2' = -x1 - b x2 + 0.5 sin(x3)
        x3' = -c x3 + 0.6 x1 x2 + 0.3
    """

    dim = 3

    def __init__(self, a: float = 0.3, b: float = 0.2, c: float = 0.5):
        super().__init__()
        self.a, self.b, self.c = (positive_real(n, v) for n, v in (("a", a), ("b", b), ("c", c)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x1, x2, x3 = x.unbind(-1)
        return torch.stack([
            x2 - self.a * x1 + 0.4 * x2 * x3,
            -x1 - self.b * x2 + 0.5 * torch.sin(x3),
            -self.c * x3 + 0.6 * x1 * x2 + 0.3,
        ], dim=-1)

    def extra_repr(self) -> str:
        return f"a={self.a}, b={self.b}, c={self.c}"
