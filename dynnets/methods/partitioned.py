"""Partitioned methods for fields F(q, v) = (f(v), g(q)) (trait ``Partitioned``, interface ``partition()``).

Each step is a composition of shears (q += h f(v) or v += h g(q)), each with unit Jacobian determinant
and an explicit inverse (the same shear with -h), so the step preserves volume for every partitioned
field and is explicitly invertible. For a separable Hamiltonian field (f = grad T, g = -grad V) each
shear is the exact flow of a Hamiltonian (T or V), hence symplectic (Hairer, Lubich, Wanner,
Geometric Numerical Integration, VI.3).
"""

from __future__ import annotations

import torch

from ..base import Field, Method
from ..errors import IncompatibleFieldError
from ..structure import CanonicalHamiltonian, Partitioned, SeparableHamiltonian, Symplectic, VolumePreserving


def _split(field, x: torch.Tensor):
    field.check_input(x)
    q_dim, f, g = field.partition()
    return x[..., :q_dim], x[..., q_dim:], f, g


class _PartitionedMethod(Method):
    requires = (Partitioned,)

    def check(self, field) -> None:
        """As ``Method.check``; a non-separable Hamiltonian field is pointed to the implicit symplectic methods."""
        if _non_separable_hamiltonian(field):
            raise IncompatibleFieldError(
                f"method {self.name} needs a field with trait Partitioned (a separable H = T(p) + V(q)), but "
                f"{type(field).__name__} is a non-separable CanonicalHamiltonian field: use "
                "dn.methods.GaussLegendre(stages) or dn.methods.ImplicitMidpoint(), symplectic for any H"
            )
        super().check(field)

    def guarantees(self, field, h) -> frozenset:
        props = {VolumePreserving()}
        if field.has_trait(SeparableHamiltonian):
            props.add(Symplectic())
        return frozenset(props)

    def invertible(self, field) -> bool:
        return True


def _non_separable_hamiltonian(field) -> bool:
    return isinstance(field, Field) and field.has_trait(CanonicalHamiltonian) and not field.has_trait(Partitioned)


class SymplecticEuler(_PartitionedMethod):
    """q' = q + h f(v),  v' = v + h g(q').  Order 1. Inverse: v = v' - h g(q'),  q = q' - h f(v)."""

    name = "SymplecticEuler"
    order = 1

    def step(self, field, x: torch.Tensor, h) -> torch.Tensor:
        q, v, f, g = _split(field, x)
        q = q + h * f(v)
        v = v + h * g(q)
        return torch.cat([q, v], dim=-1)

    def inverse(self, field, y: torch.Tensor, h) -> torch.Tensor:
        q, v, f, g = _split(field, y)
        v = v - h * g(q)
        q = q - h * f(v)
        return torch.cat([q, v], dim=-1)


class StormerVerlet(_PartitionedMethod):
    """v+ = v + h/2 g(q),  q' = q + h f(v+),  v' = v+ + h/2 g(q').  Order 2, symmetric.
    Inverse: the three shears undone in reverse order."""

    name = "StormerVerlet"
    order = 2

    def step(self, field, x: torch.Tensor, h) -> torch.Tensor:
        q, v, f, g = _split(field, x)
        half = h / 2
        v = v + half * g(q)
        q = q + h * f(v)
        v = v + half * g(q)
        return torch.cat([q, v], dim=-1)

    def inverse(self, field, y: torch.Tensor, h) -> torch.Tensor:
        q, v, f, g = _split(field, y)
        half = h / 2
        v = v - half * g(q)
        q = q - h * f(v)
        v = v - half * g(q)
        return torch.cat([q, v], dim=-1)
