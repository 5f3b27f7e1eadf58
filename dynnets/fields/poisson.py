"""A non-canonical Hamiltonian family: the Lie-Poisson bracket of so(3)*, {F, G}(x) = x . (grad F x grad G),
with a learned energy H: x' = x x grad H(x) = S(x) x, S(x) = -[grad H(x)]_x (skew), so the Casimir |x|^2 and H
are first integrals (GNI VII.2; Jin et al., Poisson neural networks, 2022).
"""

from __future__ import annotations

import torch

from ..base import Field
from ..checks import check_size
from ..linalg import cross_matrix
from ..structure import QuadraticInvariant, SkewProduct
from .hamiltonian import _activation_for, _Potential


class LiePoisson(Field):
    """F(x) = x x grad H(x) on x in R^3, H(x) = w^T Gamma(K x + a) (K: (width, 3); ``potential`` as for
    ``Hamiltonian``). The Casimir |x|^2 is kept to round-off by ``Cayley`` and the Gauss-Legendre methods,
    the energy H only to O(h^p)."""

    traits = frozenset({SkewProduct(), QuadraticInvariant.norm()})
    dim = 3

    def __init__(self, width: int, potential: str = "logcosh", *, init_scale: float = 0.5):
        super().__init__()
        self.width = check_size("width", width)
        act = _activation_for(potential)
        self.potential_kind = potential
        self.energy_net = _Potential(3, self.width, init_scale, act)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.energy_net.value(x)

    def energy_gradient(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.energy_net.grad(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.cross(x, self.energy_gradient(x), dim=-1)

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        return -cross_matrix(self.energy_gradient(x))

    def extra_repr(self) -> str:
        return f"width={self.width}, potential={self.potential_kind!r}"
