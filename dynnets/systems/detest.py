"""Standard non-stiff test problems (Hull, Enright, Fellen, Sedgwick, SIAM J. Numer. Anal. 9 (1972), the
DETEST set; Hairer, Norsett, Wanner I, II.10), each a fixed field with its usual ``initial_state``.
"""

from __future__ import annotations

import math

import torch

from ..base import PartitionedField
from ..checks import real
from ..structure import Partitioned, SeparableHamiltonian
from .ode import ConstantsField


class TwoBody(PartitionedField):
    """Kepler orbits (DETEST D1-D5 for e = 0.1, ..., 0.9), x = (q1, q2, p1, p2): q' = p, p' = -q / |q|^3
    (H = |p|^2 / 2 - 1 / |q|), started at the pericentre q = (1 - e, 0), p = (0, sqrt((1 + e) / (1 - e))) of
    the orbit with eccentricity e, semi-major axis 1 and period 2 pi."""

    dim = 4
    q_dim = 2
    traits = frozenset({Partitioned(), SeparableHamiltonian()})

    def __init__(self, eccentricity: float = 0.5):
        super().__init__()
        # below 0.99: closer to 1 the orbit passes the centre
        self.eccentricity = real("eccentricity", eccentricity, minimum=0.0, below=0.99)

    def f(self, p: torch.Tensor) -> torch.Tensor:
        return p

    def g(self, q: torch.Tensor) -> torch.Tensor:
        r = torch.linalg.vector_norm(q, dim=-1, keepdim=True)
        return -q / (r * r * r)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return 0.5 * x[..., 2:].square().sum(-1) - 1.0 / torch.linalg.vector_norm(x[..., :2], dim=-1)

    def initial_state(self, dtype=torch.float64) -> torch.Tensor:
        e = self.eccentricity
        return torch.tensor([[1.0 - e, 0.0, 0.0, math.sqrt((1.0 + e) / (1.0 - e))]], dtype=dtype)

    def solution(self, t: float, dtype=torch.float64) -> torch.Tensor:
        """The exact state at time t from the initial state: the eccentric anomaly E solves Kepler's
        equation E - e sin E = t (Newton's method to round-off), q = (cos E - e, sqrt(1 - e^2) sin E),
        p = (-sin E, sqrt(1 - e^2) cos E) / (1 - e cos E)."""
        e, mean = self.eccentricity, math.remainder(real("t", t), 2.0 * math.pi)
        E = mean if e < 0.8 else math.pi * (1.0 if mean >= 0 else -1.0)
        for _ in range(100):
            step = (E - e * math.sin(E) - mean) / (1.0 - e * math.cos(E))
            E -= step
            if abs(step) <= 4.0 * math.ulp(max(abs(E), 1.0)):
                break
        w, d = math.sqrt(1.0 - e * e), 1.0 - e * math.cos(E)
        return torch.tensor([[math.cos(E) - e, w * math.sin(E), -math.sin(E) / d, w * math.cos(E) / d]], dtype=dtype)

    def extra_repr(self) -> str:
        return f"eccentricity={self.eccentricity}"


class _Planar(ConstantsField):
    """A 2-D problem on x = (u, v), x' = ``rates(u, v)`` (two columns), started at ``start``."""

    dim = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return torch.cat(self.rates(x[..., :1], x[..., 1:]), dim=-1)

    def initial_state(self, dtype=torch.float64) -> torch.Tensor:
        return torch.tensor([self.start], dtype=dtype)


class LotkaVolterra(_Planar):
    """Predator and prey, x' = a x - b x y, y' = c x y - d y; DETEST B1 (a = b = 2, c = d = 1) from (1, 3);
    c x - d log x + b y - a log y is conserved."""

    start = (1.0, 3.0)

    def __init__(self, a: float = 2.0, b: float = 2.0, c: float = 1.0, d: float = 1.0):
        super().__init__(a=a, b=b, c=c, d=d)

    def rates(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return u * (self.a - self.b * v), v * (self.c * u - self.d)


class VanDerPol(_Planar):
    """x' = y, y' = mu (1 - x^2) y - x, from (2, 0); non-stiff for mu of order 1 (a limit cycle)."""

    start = (2.0, 0.0)

    def __init__(self, mu: float = 1.0):
        super().__init__(mu=mu)

    def rates(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return v, self.mu * (1.0 - u * u) * v - u


class Brusselator(_Planar):
    """The chemical oscillator of Prigogine and Lefever, x' = A + x^2 y - (B + 1) x, y' = B x - x^2 y, from
    (1.5, 3) (HNW I, (16.12); a limit cycle for B > 1 + A^2)."""

    start = (1.5, 3.0)

    def __init__(self, A: float = 1.0, B: float = 3.0):
        super().__init__(A=A, B=B)

    def rates(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        uuv = u * u * v
        return self.A + uuv - (self.B + 1.0) * u, self.B * u - uuv
