"""A non-autonomous field with a closed-form solution: the harmonically forced oscillator."""

from __future__ import annotations

import math

import torch

from ..base import Field
from ..checks import positive_real, real
from ..errors import ConfigError
from ..structure import CanonicalHamiltonian


class ForcedOscillator(Field):
    """q' = p, p' = -q + a cos(w t) on x = (q, p): F = J grad_x H(t, x), H = (p^2 + q^2) / 2 - a q cos(w t)
    (a symplectic Runge-Kutta step is symplectic for every t). Away from resonance (w != 1), q(t) =
    a cos(w t) / (1 - w^2) + C cos(t - t0) + S sin(t - t0), C, S from the initial state (``solution``)."""

    dim = 2
    time_dependent = True
    traits = frozenset({CanonicalHamiltonian()})

    def __init__(self, omega: float = 2.0, amplitude: float = 1.0):
        super().__init__()
        self.omega = positive_real("omega", omega)
        self.amplitude = real("amplitude", amplitude)
        if abs(1.0 - self.omega ** 2) < 1e-3:
            raise ConfigError(f"omega must be away from the resonance omega = 1 (|1 - omega^2| >= 1e-3), got {omega}")

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        forcing = self.amplitude * torch.cos(self.omega * t).reshape(-1, 1)
        return torch.cat([x[..., 1:], forcing - x[..., :1]], dim=-1)

    def hamiltonian(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """H(t, x) per row (a time-dependent field's Hamiltonian takes the time first)."""
        self.check_input(x)
        forcing = self.amplitude * torch.cos(self.omega * t)
        return 0.5 * x.square().sum(-1) - forcing * x[..., 0]

    def _particular(self, t: float) -> tuple[float, float]:
        scale = self.amplitude / (1.0 - self.omega ** 2)
        return scale * math.cos(self.omega * t), -scale * self.omega * math.sin(self.omega * t)

    def solution(self, x0: torch.Tensor, t0: float, t: float) -> torch.Tensor:
        """The exact state at time t of the solution through x0 (batch, 2) at time t0, in x0's dtype."""
        q0, p0 = self._particular(t0)
        q1, p1 = self._particular(t)
        c, s = x0[:, 0] - q0, x0[:, 1] - p0
        d = t - t0
        return torch.stack([q1 + c * math.cos(d) + s * math.sin(d), p1 - c * math.sin(d) + s * math.cos(d)], dim=1)

    def extra_repr(self) -> str:
        return f"omega={self.omega}, amplitude={self.amplitude}"
