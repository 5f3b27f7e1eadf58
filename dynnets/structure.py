"""Geometric properties, the structural traits of field families, and their algebra.

A *property* is what a map (a Step or a Flow) guarantees: ``Symplectic()``, ``PreservesVolume()``,
``LinearInvariant(c)`` (c^T x is conserved), ``QuadraticInvariant(Q)`` (x^T Q x is conserved;
``QuadraticInvariant.norm()``, Q = I, is the Euclidean norm) and ``Lipschitz(L)``.

A *trait* is what a vector-field family is: ``Partitioned()`` (state (q, v), F = (f(v), g(q))),
``CanonicalHamiltonian()`` (F = J grad H on x = (q, p)), ``SeparableHamiltonian()`` (partitioned and
canonical Hamiltonian with H = T(p) + V(q)), ``SkewProduct()`` (F(x) = S(x) x with S(x) skew) and
``Affine()`` (F(x) = M x + c, which tells implicit linear methods such as Crank-Nicolson they may solve
with M).

An invariant is one concept with one name at both levels: a field declares ``LinearInvariant(c)`` among
its traits when c^T F(x) = 0 for all x (so c^T x is a first integral of its flow), and a map guarantees
the same ``LinearInvariant(c)`` when its steps keep it; likewise ``QuadraticInvariant(Q)`` (x^T Q F(x) = 0).
Methods turn traits into properties (any Runge-Kutta method keeps every linear invariant; a symplectic
Runge-Kutta tableau keeps every quadratic one and turns CanonicalHamiltonian into Symplectic), so a
Step's guarantees come from the pair (field, method) and fields and methods never import each other.

A Flow's guarantees are the intersection of its steps' guarantees, except Lipschitz constants,
which multiply (``compose``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .checks import as_real
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
    """``values`` (a tensor or a sequence of numbers) as a flat list of finite floats, not all zero; else
    ConfigError naming the value and the rule (``what``: the invariant, ``kind``: "vector c", "matrix Q")."""
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
    """vec / |vec| with the first non-zero entry positive; |vec| is computed after dividing by max |vec_i|,
    so neither 1e200 nor 1e-300 overflows or underflows."""
    big = max(abs(v) for v in vec)
    scaled = [v / big for v in vec]
    norm = math.sqrt(math.fsum(v * v for v in scaled))
    sign = 1.0 if next(v for v in scaled if v != 0.0) > 0 else -1.0
    return tuple(sign * v / norm for v in scaled)


def _as_vector(c) -> tuple[float, ...]:
    """c as the canonical unit vector of its line: c / |c| with the first non-zero entry positive.

    c^T x is conserved exactly when (a c)^T x is, for any a != 0, so the invariant is the line of c: two
    vectors on one line give the same (equal, hashable) property, and measuring drift with the unit
    vector is scale-free (``_unit_of_line``)."""
    if isinstance(c, torch.Tensor):
        c = c.reshape(-1)
    return _unit_of_line(_finite_reals(c, "linear invariant", "vector c"))


def _as_symmetric(q) -> tuple[tuple[float, ...], ...]:
    """Q as the canonical representative of its quadratic form: the symmetric part (Q + Q^T)/2 (x^T Q x
    depends on nothing else), scaled to unit Frobenius norm with its first non-zero entry positive
    (x^T Q x is conserved exactly when x^T (a Q) x is, a != 0). Scale-safe as ``_unit_of_line``."""
    if isinstance(q, torch.Tensor):
        rows = q.detach().to("cpu", torch.float64).tolist() if q.dim() == 2 else None
    elif isinstance(q, (str, bytes)):
        rows = None
    else:
        try:
            rows = [list(r) for r in q]
        except TypeError:
            rows = None
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
    """c^T x is conserved: by a map, c^T Psi(x) = c^T x; declared by a field, c^T F(x) = 0 for every x (a
    first integral of its flow, which every Runge-Kutta method keeps). ``c`` is stored as the canonical
    unit vector of its line (``_as_vector``), a tuple of floats, so that the invariant is hashable and c
    and 2 c are the same invariant."""

    c: tuple[float, ...]

    def __init__(self, c):
        object.__setattr__(self, "c", _as_vector(c))

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
    """x^T Q x is conserved: by a map, Psi(x)^T Q Psi(x) = x^T Q x; declared by a field, x^T Q F(x) = 0 for
    every x (every Runge-Kutta method with a symplectic tableau keeps it; Cooper 1987, GNI IV.2.1).

    ``Q`` is stored as the canonical symmetric unit-norm representative of its form (``_as_symmetric``),
    a tuple of row tuples, so that the invariant is hashable and Q, 2 Q and Q^T are the same invariant. A
    multiple of the identity is the Euclidean norm, in any dimension: ``QuadraticInvariant.norm()``, stored
    as ``Q = None`` (``QuadraticInvariant(torch.eye(n))`` equals it)."""

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
        if not (math.isfinite(self.L) and self.L >= 0):
            raise ConfigError(f"a Lipschitz constant must be finite and >= 0, got L={self.L}")


@dataclass(frozen=True)
class Partitioned(Trait):
    """State x = (q, v); F(q, v) = (f(v), g(q)). The field exposes ``partition()``."""


@dataclass(frozen=True)
class CanonicalHamiltonian(Trait):
    """F(x) = J grad H(x) on x = (q, p), J = [[0, I], [-I, 0]] (q' = dH/dp, p' = -dH/dq), for any H (not
    necessarily separable). The field exposes ``hamiltonian(x)`` (a time-dependent field: F(t, x) =
    J grad_x H(t, x) and ``hamiltonian(t, x)``). Every symplectic Runge-Kutta method
    (``ButcherTableau.is_symplectic``) is a symplectic map on it (for every start time t)."""


@dataclass(frozen=True)
class SeparableHamiltonian(CanonicalHamiltonian):
    """Partitioned with f = grad T(p), g = -grad V(q), H = T + V (a CanonicalHamiltonian too). The field
    exposes ``hamiltonian(x)``."""


@dataclass(frozen=True)
class SkewProduct(Trait):
    """F(x) = S(x) x with S(x) skew-symmetric. The field exposes ``skew(x)``."""


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
