"""Separable Hamiltonian field on x = (q, p): H(q, p) = T(p) + V(q), q' = grad T(p), p' = -grad V(q).

T and V are one-hidden-layer networks  T(p) = w_T^T Gamma(K_T p + a_T),  V(q) = w_V^T Gamma(K_V q + a_V),
whose gradients are available in closed form, grad T(p) = K_T^T (w_T * sigma(K_T p + a_T)) with
sigma = Gamma'; no autograd is needed to evaluate the field, so it is cheap and composes with
torch.func. Symplectic Euler and Stormer-Verlet applied to it are symplectic maps (trait
``SeparableHamiltonian``). The output weights w are what lets V be non-convex (e.g. -cos q).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..base import Field
from ..checks import check_size
from ..errors import ConfigError
from ..structure import Partitioned, SeparableHamiltonian
from .activations import ACTIVATIONS


class _Potential(nn.Module):
    """z -> w^T Gamma(K z + a) and its gradient K^T (w * sigma(K z + a))."""

    def __init__(self, dim: int, width: int, init_scale: float):
        super().__init__()
        self.K = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
        self.a = nn.Parameter(torch.randn(width) * 0.5)
        self.w = nn.Parameter(torch.randn(width) * (checks.init_scale(init_scale) / math.sqrt(width)))

    def value(self, z, gamma):
        return gamma(F.linear(z, self.K, self.a)) @ self.w

    def grad(self, z, sigma):
        return F.linear(sigma(F.linear(z, self.K, self.a)) * self.w, self.K.t())


class Hamiltonian(Field):
    """Separable H(q, p) = T(p) + V(q) on x = (q, p), q, p in R^dim; F(x) = (grad T(p), -grad V(q)).

    ``potential`` names Gamma: "logcosh" (sigma = tanh, default) or "softplus" (sigma = sigmoid).
    ``hamiltonian(x)`` (alias ``energy``) returns H per batch row, e.g. to plot energy along a rollout.
    ``partition()`` returns (dim, grad T, -grad V), the interface the partitioned methods use.
    """

    traits = frozenset({Partitioned(), SeparableHamiltonian()})

    def __init__(self, dim: int, width: int, potential: str = "logcosh", *, init_scale: float = 0.5):
        super().__init__()
        self.q_dim = check_size("dim", dim)
        self.width = check_size("width", width)
        self.dim = 2 * self.q_dim
        act = next((a for a in ACTIVATIONS.values() if a.antiderivative_name == potential), None)
        if act is None:
            choices = sorted(a.antiderivative_name for a in ACTIVATIONS.values() if a.antiderivative_name)
            raise ConfigError(f"unknown potential {potential!r}; choose one of {choices}")
        self.potential_kind = potential
        self._gamma, self._sigma = act.antiderivative, act.fn
        self.kinetic = _Potential(dim, width, init_scale)
        self.potential_energy = _Potential(dim, width, init_scale)

    def f(self, p: torch.Tensor) -> torch.Tensor:
        """dq/dt = grad T(p)."""
        return self.kinetic.grad(p, self._sigma)

    def g(self, q: torch.Tensor) -> torch.Tensor:
        """dp/dt = -grad V(q)."""
        return -self.potential_energy.grad(q, self._sigma)

    def partition(self):
        return self.q_dim, self.f, self.g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        q, p = x[..., : self.q_dim], x[..., self.q_dim:]
        return torch.cat([self.f(p), self.g(q)], dim=-1)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        """H(q, p) = T(p) + V(q), shape (batch,)."""
        self.check_input(x)
        q, p = x[..., : self.q_dim], x[..., self.q_dim:]
        return self.kinetic.value(p, self._gamma) + self.potential_energy.value(q, self._gamma)

    energy = hamiltonian

    def extra_repr(self) -> str:
        return f"dim={self.q_dim}, width={self.width}, potential={self.potential_kind!r}"
