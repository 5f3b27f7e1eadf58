"""Geometric properties, the structural traits of field families, and their algebra.

A *property* is what a map (Step or Flow) guarantees (``Symplectic``, ``PreservesVolume``,
``LinearInvariant``, ``QuadraticInvariant``, ``Lipschitz``); a *trait* is what a field family is
(``Partitioned``, ``CanonicalHamiltonian``, ``SeparableHamiltonian``, ``SkewProduct``, ``Affine``). An
invariant has one name at both levels: a field declares ``LinearInvariant(c)`` when c^T F = 0 and a map
guarantees it when its steps keep it (likewise ``QuadraticInvariant(Q)``). Methods turn traits into
properties; a Flow's guarantees are its steps' intersection, with Lipschitz constants multiplied
(``compose``). See docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .checks import as_real, real
from .errors import ConfigError

__all__ = [
    "Affine",
    "CanonicalHamiltonian",
    "LinearInvariant",
    "Lipschitz",
    "Partitioned",
    "PreservesVolume",
    "Property",
    "QuadraticInvariant",
    "SeparableHamiltonian",
    "SkewProduct",
    "Symplectic",
    "Trait",
    "compose",
]


def _finite_reals(values, what: str, kind: str) -> list[float]:
    """``values`` (tensor or numbers) as a flat list of finite floats, not all zero, else ConfigError."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).reshape(-1).tolist()
    elif isinstance(values, (str, bytes)):
        raise ConfigError(f"a {what} needs a {kind} of numbers, got the string {values!r}")
    try:
        vec = [as_real(f"a {what}'s {kind} entry", v) for v in values]  # not '1' or True, which float() takes
    except TypeError:
        raise ConfigError(f"a {what} needs a {kind} of real numbers, got {values!r}") from None
    if not vec:
        raise ConfigError(f"a {what} needs a non-empty {kind}, got an empty one")
    if not all(math.isfinite(v) for v in vec):
        raise ConfigError(f"a {what} needs a finite {kind}, got {vec}")
    if max(abs(v) for v in vec) == 0.0:
        raise ConfigError(f"a {what} needs a non-zero {kind}, got all zeros")
    return vec


def _unit_of_line(vec: list[float]) -> tuple[float, ...]:
    """vec / |vec| with the first non-zero entry positive (scaled by max |vec_i| first: no overflow)."""
    big = max(abs(v) for v in vec)
    scaled = [v / big for v in vec]
    norm = math.sqrt(math.fsum(v * v for v in scaled))
    sign = 1.0 if next(v for v in scaled if v != 0.0) > 0 else -1.0
    return tuple(sign * v / norm for v in scaled)


def _as_symmetric(q) -> tuple[tuple[float, ...], ...]:
    """Q's canonical form: (Q + Q^T)/2 scaled to unit Frobenius norm, first non-zero entry positive."""
    rows = None
    if isinstance(q, torch.Tensor) and q.dim() == 2:
        rows = q.detach().to("cpu", torch.float64).tolist()
    elif not isinstance(q, (str, bytes, torch.Tensor)):
        with contextlib.suppress(TypeError):
            rows = [list(r) for r in q]
    if rows is None or not rows or any(len(r) != len(rows) for r in rows):
        raise ConfigError(f"a quadratic invariant needs a square matrix Q, got {q!r}")
    n = len(rows)
    flat = _finite_reals([v for r in rows for v in r], "quadratic invariant", "matrix Q")
    big = max(abs(v) for v in flat)
    sym = [0.5 * (flat[i * n + j] / big + flat[j * n + i] / big) for i in range(n) for j in range(n)]
    if max(abs(v) for v in sym) == 0.0:
        raise ConfigError("a quadratic invariant needs Q with a non-zero symmetric part (x^T Q x = 0 for skew Q)")
    unit = _unit_of_line(sym)
    return tuple(tuple(unit[i * n:(i + 1) * n]) for i in range(n))


class Property:
    """A property of a map that a Step or Flow can guarantee."""


class Trait:
    """A structural fact about a vector-field family, declared by the field."""


@dataclass(frozen=True)
class Symplectic(Property):
    """D Psi(x)^T Omega D Psi(x) = Omega for the canonical Omega = [[0, I], [-I, 0]] on x = (q, p)."""


@dataclass(frozen=True)
class PreservesVolume(Property):
    """det D Psi(x) = 1."""


@dataclass(frozen=True, init=False)
class LinearInvariant(Property, Trait):
    """c^T x is conserved: by a map, c^T Psi(x) = c^T x; by a field, c^T F(x) = 0. ``c`` is stored as the
    unit vector of its line (a hashable tuple: c and 2 c are the same invariant)."""

    c: tuple[float, ...]

    def __init__(self, c):
        object.__setattr__(self, "c", _unit_of_line(_finite_reals(c, "linear invariant", "vector c")))

    @classmethod
    def ones(cls, dim: int) -> LinearInvariant:
        return cls((1.0,) * dim)

    def vector(self, dtype=torch.float64, device=None) -> torch.Tensor:
        return torch.tensor(self.c, dtype=dtype, device=device)

    def __repr__(self) -> str:
        if len(set(self.c)) == 1:
            return f"LinearInvariant.ones({len(self.c)})"
        shown = self.c if len(self.c) <= 6 else self.c[:3] + ("...",)
        return f"LinearInvariant(c={shown}, dim={len(self.c)})"


@dataclass(frozen=True, init=False)
class QuadraticInvariant(Property, Trait):
    """x^T Q x is conserved: by a map, Psi(x)^T Q Psi(x) = x^T Q x; by a field, x^T Q F(x) = 0 (kept by
    symplectic tableaux; Cooper 1987, GNI IV.2.1). ``Q`` is stored in canonical form (hashable: Q, 2 Q and
    Q^T are the same invariant); a multiple of I is the norm, ``QuadraticInvariant.norm()``, Q = None."""

    Q: tuple[tuple[float, ...], ...] | None

    def __init__(self, Q=None):
        form = None if Q is None else _as_symmetric(Q)
        if form is not None and all(form[i][j] == (form[0][0] if i == j else 0.0)
                                    for i in range(len(form)) for j in range(len(form))):
            form = None  # a positive multiple of I (the canonical form has a positive first entry)
        object.__setattr__(self, "Q", form)

    @classmethod
    def norm(cls) -> QuadraticInvariant:
        """||x||^2, i.e. the Euclidean norm, conserved (Q = I in the state's dimension)."""
        return cls()

    @property
    def is_norm(self) -> bool:
        """True when the invariant is ||x|| (Q a multiple of the identity)."""
        return self.Q is None

    def matrix(self, dim: int | None = None, dtype=torch.float64, device=None) -> torch.Tensor:
        """Q as a tensor; the norm's Q = I needs the state dimension ``dim``."""
        if self.Q is None:
            if dim is None:
                raise ConfigError("the norm invariant's matrix I needs the state dimension: matrix(dim)")
            return torch.eye(dim, dtype=dtype, device=device)
        return torch.tensor(self.Q, dtype=dtype, device=device)

    def __repr__(self) -> str:
        if self.Q is None:
            return "QuadraticInvariant.norm()"
        n = len(self.Q)
        return f"QuadraticInvariant(Q={self.Q if n <= 3 else '...'}, dim={n})"


@dataclass(frozen=True)
class Lipschitz(Property):
    """||Psi(x) - Psi(y)|| <= L ||x - y|| with a certified (exactly computed) constant L."""

    L: float

    def __post_init__(self):
        real("a Lipschitz constant", self.L, symbol="L", minimum=0.0)


@dataclass(frozen=True)
class Partitioned(Trait):
    """State x = (q, v); F(q, v) = (f(v), g(q)). The field exposes ``partition()``."""


@dataclass(frozen=True)
class CanonicalHamiltonian(Trait):
    """F(x) = J grad H(x) on x = (q, p), J = [[0, I], [-I, 0]], any H. The field exposes
    ``hamiltonian(x)`` (time-dependent: ``hamiltonian(t, x)``)."""


@dataclass(frozen=True)
class SeparableHamiltonian(CanonicalHamiltonian):
    """Partitioned with f = grad T(p), g = -grad V(q), H = T + V (a CanonicalHamiltonian too). The field
    exposes ``hamiltonian(x)``."""


@dataclass(frozen=True)
class SkewProduct(Trait):
    """F(x) = S(x) x with S(x) skew-symmetric. The field exposes ``skew(x)``."""


@dataclass(frozen=True)
class Affine(Trait):
    """F(x) = M x + c with constant M and c; the field exposes ``affine_parts(dtype, device) -> (M, c)``."""


def compose(guarantee_sets: Iterable[frozenset]) -> frozenset:
    """The intersection of the sets, Lipschitz constants multiplied (kept only when every member has
    one); an empty composition guarantees nothing."""
    sets = [frozenset(s) for s in guarantee_sets]
    if not sets:
        return frozenset()
    plain = (frozenset(p for p in s if not isinstance(p, Lipschitz)) for s in sets)
    result = set(frozenset.intersection(*plain))
    constants = [min((p.L for p in s if isinstance(p, Lipschitz)), default=None) for s in sets]
    if None not in constants:
        result.add(Lipschitz(math.prod(constants)))
    return frozenset(result)
