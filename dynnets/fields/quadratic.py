"""Linear kicks: the separable Hamiltonian field of quadratic energies (``QuadraticHamiltonian``). A
partitioned method's shear is that energy's exact flow: Symplectic Euler on it gives the linear "up/low"
modules of an LA-SympNet (Jin, Zhang, Zhu, Tang, Karniadakis, SympNets, Neural Networks 132, 2020, Sec. 3.2).
S is symmetric by construction: S = A + A^T (``rank=None``) or S = diag(d) + U diag(e) U^T (``rank=r``,
indefinite allowed).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import checks
from ..base import scaled
from ..checks import check_bool, check_size
from ..errors import ConfigError
from .hamiltonian import SeparableEnergies, add_product


class _Quadratic(nn.Module):
    """z -> S z + b and z -> 1/2 z^T S z + b^T z with S symmetric by construction (module docstring)."""

    def __init__(self, dim: int, rank: int | None, bias: bool, scale: float):
        super().__init__()
        if rank is None:
            self.A = nn.Parameter(torch.randn(dim, dim) * (scale / 2))
        else:
            self.d = nn.Parameter(torch.randn(dim) * scale)
            self.U = nn.Parameter(torch.randn(dim, rank) / dim**0.5)
            self.e = nn.Parameter(torch.randn(rank) * scale)
        self.rank = rank
        self.b = nn.Parameter(torch.zeros(dim)) if bias else None

    def matrix(self) -> torch.Tensor:
        if self.rank is None:
            return self.A + self.A.t()
        return torch.diag(self.d) + (self.U * self.e) @ self.U.t()

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        """S z + b per row (z S = (S z)^T as S is symmetric)."""
        if self.rank is None:
            out = z @ self.matrix()
        else:
            out = z * self.d + ((z @ self.U) * self.e) @ self.U.t()
        return out if self.b is None else out + self.b

    def kick(self, y: torch.Tensor, z: torch.Tensor, coefficients) -> torch.Tensor:
        """y + c (S z + b) for each c in turn; with a dense S as y + c b + (c z) S (product and sum fused)."""
        if self.rank is not None:
            value = self.grad(z)
            for c in coefficients:
                y = y + scaled(c, value)
            return y
        S = self.matrix()
        for c in coefficients:
            y = y if self.b is None else y + scaled(c, self.b)
            y = add_product(y, scaled(c, z), S)
        return y

    def value(self, z: torch.Tensor) -> torch.Tensor:
        out = 0.5 * (z * (z @ self.matrix())).sum(-1)
        return out if self.b is None else out + z @ self.b


class QuadraticHamiltonian(SeparableEnergies):
    """H(q, p) = 1/2 p^T S_T p + b_T^T p + 1/2 q^T S_V q + b_V^T q on x = (q, p), q, p in R^dim, S symmetric;
    ``kinetic`` / ``potential_energy``: which energy is present (at least one); ``bias``: the linear terms b;
    ``init_scale``: the standard deviation of S's entries (d, e) at initialisation (U: 1 / sqrt(dim)).
    """

    def __init__(self, dim: int, *, kinetic: bool = True, potential_energy: bool = True, rank: int | None = None,
                 bias: bool = False, init_scale: float = 0.1):
        super().__init__()
        self.q_dim = check_size("dim", dim)
        self.dim = 2 * self.q_dim
        kinetic, potential = check_bool("kinetic", kinetic), check_bool("potential_energy", potential_energy)
        if not (kinetic or potential):
            raise ConfigError("QuadraticHamiltonian needs kinetic=True or potential_energy=True (rule: at least one "
                              "energy; with neither the field is zero)")
        rank = None if rank is None else check_size("rank", rank)
        bias, scale = check_bool("bias", bias), checks.init_scale(init_scale)
        self.rank = rank
        self.kinetic = _Quadratic(self.q_dim, rank, bias, scale) if kinetic else None
        self.potential_energy = _Quadratic(self.q_dim, rank, bias, scale) if potential else None

    def matrices(self):
        """(S_T, S_V), each None when that energy is absent."""
        return tuple(None if e is None else e.matrix() for e in (self.kinetic, self.potential_energy))

    def extra_repr(self) -> str:
        parts = [name for name, e in (("kinetic", self.kinetic), ("potential", self.potential_energy)) if e is not None]
        return f"dim={self.q_dim}, energies={'+'.join(parts)}, rank={self.rank}"
