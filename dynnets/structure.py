"""Geometric properties, the structural traits of field families, and their algebra.

A *property* is what a map (a Step or a Flow) guarantees: ``Symplectic()``, ``VolumePreserving()``,
``NormPreserving()``, ``LinearInvariant(c)`` (c^T x is conserved) and ``Lipschitz(L)``.

A *trait* is what a vector-field family is: ``Partitioned()`` (state (q, v), F = (f(v), g(q))),
``SeparableHamiltonian()`` (additionally f = grad T, g = -grad V), ``SkewProduct()`` (F(x) = S(x) x
with S(x) skew), or ``ConservesLinear(c)`` (c^T F(x) = 0 for all x). Methods turn traits into
properties (e.g. any Runge-Kutta method turns ConservesLinear(c) into LinearInvariant(c)), so a
Step's guarantees come from the pair (field, method) and fields and methods never import each other.

A Flow's guarantees are the intersection of its steps' guarantees, except Lipschitz constants,
which multiply (``compose``).

``Affine()`` (F(x) = M x + c, constant M, c) is a trait that tells implicit linear methods
(Crank-Nicolson) they may solve with M.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .errors import ConfigError

__all__ = [
    "Affine",
    "ConservesLinear",
    "LinearInvariant",
    "Lipschitz",
    "NormPreserving",
    "Partitioned",
    "Property",
    "SeparableHamiltonian",
    "SkewProduct",
    "Symplectic",
    "Trait",
    "VolumePreserving",
    "compose",
]


def _as_vector(c) -> tuple[float, ...]:
    """c as the canonical unit vector of its line: c / |c| with the first non-zero entry positive.

    c^T x is conserved exactly when (a c)^T x is, for any a != 0, so the invariant is the line of c: two
    vectors on one line give the same (equal, hashable) property, and measuring drift with the unit
    vector is scale-free. |c| is computed after dividing by max |c_i|, so neither 1e200 nor 1e-300
    overflows or underflows."""
    if isinstance(c, torch.Tensor):
        c = c.detach().to("cpu", torch.float64).reshape(-1).tolist()
    elif isinstance(c, (str, bytes)):
        raise ConfigError(f"a linear invariant needs a vector of numbers, got the string {c!r}")
    try:
        vec = [float(v) for v in c]
    except (TypeError, ValueError):
        raise ConfigError(f"a linear invariant needs a vector of real numbers, got {c!r}") from None
    if not vec:
        raise ConfigError("a linear invariant needs a non-empty vector c, got an empty one")
    if not all(math.isfinite(v) for v in vec):
        raise ConfigError(f"a linear invariant needs a finite vector c, got {vec}")
    big = max(abs(v) for v in vec)
    if big == 0.0:
        raise ConfigError("a linear invariant needs a non-zero vector c, got all zeros")
    scaled = [v / big for v in vec]
    norm = math.sqrt(math.fsum(v * v for v in scaled))
    sign = 1.0 if next(v for v in scaled if v != 0.0) > 0 else -1.0
    return tuple(sign * v / norm for v in scaled)


class Property:
    """A property of a map that a Step or Flow can guarantee."""


@dataclass(frozen=True)
class Symplectic(Property):
    """D Psi(x)^T Omega D Psi(x) = Omega for the canonical Omega = [[0, I], [-I, 0]] on x = (q, p)."""


@dataclass(frozen=True)
class VolumePreserving(Property):
    """det D Psi(x) = 1."""


@dataclass(frozen=True)
class NormPreserving(Property):
    """||Psi(x)||_2 = ||x||_2."""


@dataclass(frozen=True, init=False)
class LinearInvariant(Property):
    """c^T Psi(x) = c^T x. ``c`` is stored as the canonical unit vector of its line (``_as_vector``), a
    tuple of floats, so that the property is hashable and c and 2 c are the same invariant."""

    c: tuple[float, ...]

    def __init__(self, c):
        object.__setattr__(self, "c", _as_vector(c))

    @classmethod
    def ones(cls, dim: int) -> LinearInvariant:
        return cls((1.0,) * dim)

    def vector(self, dtype=torch.float64, device=None) -> torch.Tensor:
        return torch.tensor(self.c, dtype=dtype, device=device)

    def __repr__(self) -> str:
        shown = self.c if len(self.c) <= 6 else self.c[:3] + ("...",)
        return f"LinearInvariant(c={shown}, dim={len(self.c)})"


@dataclass(frozen=True)
class Lipschitz(Property):
    """||Psi(x) - Psi(y)|| <= L ||x - y|| with a certified (exactly computed) constant L."""

    L: float

    def __post_init__(self):
        if not (math.isfinite(self.L) and self.L >= 0):
            raise ConfigError(f"a Lipschitz constant must be finite and >= 0, got L={self.L}")


class Trait:
    """A structural fact about a vector-field family, declared by the field."""


@dataclass(frozen=True)
class Partitioned(Trait):
    """State x = (q, v); F(q, v) = (f(v), g(q)). The field exposes ``partition()``."""


@dataclass(frozen=True)
class SeparableHamiltonian(Trait):
    """Partitioned with f = grad T(p), g = -grad V(q), H = T + V. The field exposes ``hamiltonian(x)``."""


@dataclass(frozen=True)
class SkewProduct(Trait):
    """F(x) = S(x) x with S(x) skew-symmetric. The field exposes ``skew(x)``."""


@dataclass(frozen=True, init=False)
class ConservesLinear(Trait):
    """c^T F(x) = 0 for every x, so c^T x is a first integral of the flow."""

    c: tuple[float, ...]

    def __init__(self, c):
        object.__setattr__(self, "c", _as_vector(c))


@dataclass(frozen=True)
class Affine(Trait):
    """F(x) = M x + c with constant M and c (e.g. a semi-discretised linear PDE with boundary data).
    The field exposes ``affine_parts(dtype, device) -> (M, c)``, so implicit linear methods (Crank-
    Nicolson) can solve with M instead of iterating."""


def compose(guarantee_sets: Iterable[frozenset]) -> frozenset:
    """Guarantees of a composition: the intersection of all sets, except that Lipschitz constants
    multiply (present only when every member has one). An empty composition is the identity, which
    we give no guarantees to avoid vacuous claims."""
    sets = [frozenset(s) for s in guarantee_sets]
    if not sets:
        return frozenset()
    plain = [frozenset(p for p in s if not isinstance(p, Lipschitz)) for s in sets]
    result = set(frozenset.intersection(*plain))
    constants = []
    for s in sets:
        ls = [p.L for p in s if isinstance(p, Lipschitz)]
        if not ls:
            break
        constants.append(min(ls))
    else:
        result.add(Lipschitz(math.prod(constants)))
    return frozenset(result)
