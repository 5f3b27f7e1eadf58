"""Measuring structural claims numerically, in float64, with torch.func.

Each function takes a map ``f`` (e.g. a Step or Flow) and a batch of points and returns a non-negative
defect, asserting nothing. A Module is evaluated on a float64 copy; Jacobians are exact (``jacrev``,
batched with ``vmap``). In a test: ``assert symplecticity_defect(net, x) <= C * n * EPS64``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from . import structure
from .base import batched_jacobian
from .checks import positive_real, real_array
from .errors import ConfigError, ConfigTypeError, ShapeError
from .linalg import vector_norm

__all__ = [
    "EPS64",
    "as_float64",
    "invariant_drift",
    "inverse_defect",
    "jacobian",
    "lipschitz_ratio",
    "norm_drift",
    "quadratic_drift",
    "symplecticity_defect",
    "volume_defect",
]

EPS64 = torch.finfo(torch.float64).eps


def as_float64(f):
    """A float64 version of f: a deep copy converted to float64 for Modules, f itself otherwise."""
    if not isinstance(f, nn.Module):
        return f
    floating = [*f.parameters(), *(b for b in f.buffers() if b.is_floating_point())]
    return f if all(t.dtype == torch.float64 for t in floating) else copy.deepcopy(f).to(torch.float64)


def _points(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.is_complex() or x.dtype == torch.bool:
        x = real_array("the points x", x)  # numbers only: a string, a bool or a complex entry is refused
    if x.dim() < 2:
        raise ShapeError(f"points must be a batch of shape (batch, ...), got shape {tuple(x.shape)}")
    return x.to(torch.float64)


def jacobian(f, x: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """Batched Jacobian D f(x_i) in float64, shape (batch, m, n), states flattened (``batched_jacobian``)."""
    return batched_jacobian(as_float64(f), _points(x), chunk_size).detach()


def symplecticity_defect(f, x, chunk_size: int | None = None) -> float:
    """max_i || J_i^T Omega J_i - Omega ||_F, J_i = D f(x_i), Omega = [[0, I], [-I, 0]] on x = (q, p)."""
    J = jacobian(f, x, chunk_size)
    n2 = J.shape[-1]
    if n2 % 2 or J.shape[-2] != n2:
        raise ShapeError(f"symplecticity needs a map of R^2n to itself, got Jacobians of shape {tuple(J.shape[1:])}")
    eye = torch.eye(n2 // 2, dtype=J.dtype, device=J.device)
    zero = torch.zeros_like(eye)
    omega = torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)
    defect = J.transpose(-1, -2) @ omega @ J - omega
    return float(torch.linalg.matrix_norm(defect).max())


def volume_defect(f, x, chunk_size: int | None = None) -> float:
    """max_i | det D f(x_i) - 1 |."""
    J = jacobian(f, x, chunk_size)
    if J.shape[-1] != J.shape[-2]:
        raise ShapeError(f"volume needs a map of R^n to itself, got Jacobians of shape {tuple(J.shape[1:])}")
    return float((torch.linalg.det(J) - 1).abs().max())


def _relative(error: torch.Tensor, scale: torch.Tensor) -> float:
    """max_i error_i / scale_i, with scale_i = 0 (a zero state) counting as 1."""
    return float((error / torch.where(scale > 0, scale, torch.ones_like(scale))).max())


@torch.no_grad()
def invariant_drift(f, x, c) -> float:
    """max_i | u^T f(x_i) - u^T x_i | / max(|x_i|, |f(x_i)|), u = c / |c| (scale-free)."""
    f, x = as_float64(f), _points(x)
    u = structure.LinearInvariant(c).vector(device=x.device)
    flat = x.reshape(x.shape[0], -1)
    if u.numel() != flat.shape[1]:
        raise ShapeError(f"c has {u.numel()} entries but states have {flat.shape[1]}")
    out = f(x).reshape(x.shape[0], -1)
    return _relative((out @ u - flat @ u).abs(), torch.maximum(vector_norm(flat), vector_norm(out)))


@torch.no_grad()
def norm_drift(f, x) -> float:
    """max_i | |f(x_i)| - |x_i| | / |x_i| (norms without overflow or underflow; a zero x_i counts absolutely)."""
    f, x = as_float64(f), _points(x)
    before = vector_norm(x.reshape(x.shape[0], -1))
    after = vector_norm(f(x).reshape(x.shape[0], -1))
    return _relative((after - before).abs(), before)


@torch.no_grad()
def quadratic_drift(f, x, Q) -> float:
    """max_i | f(x_i)^T Q f(x_i) - x_i^T Q x_i | / (||Q||_F max(||x_i||^2, ||f(x_i)||^2)), Q symmetrised
    (the larger state sets the scale: an indefinite Q allows growing states). States are divided by their
    largest entry first (no overflow); a zero pair counts absolutely."""
    f, x = as_float64(f), _points(x)
    flat = x.reshape(x.shape[0], -1)
    Q = real_array("Q", Q).to(x.device)
    if Q.shape != (flat.shape[1], flat.shape[1]):
        raise ShapeError(f"Q has shape {tuple(Q.shape)} but states have {flat.shape[1]} entries")
    Q = 0.5 * (Q + Q.T)
    Q = Q / Q.abs().max()
    Q = Q / torch.linalg.matrix_norm(Q)
    out = f(x).reshape(x.shape[0], -1)
    s = torch.maximum(flat.abs().amax(dim=1), out.abs().amax(dim=1)).unsqueeze(1)
    s = torch.where(s > 0, s, torch.ones_like(s))
    before, after = flat / s, out / s

    def form(z):
        return ((z @ Q) * z).sum(dim=1)

    size = torch.maximum(before.square().sum(dim=1), after.square().sum(dim=1))
    return _relative((form(after) - form(before)).abs(), size)


@torch.no_grad()
def lipschitz_ratio(f, x, y) -> float:
    """max_i ||f(x_i) - f(y_i)|| / ||x_i - y_i|| over paired rows (a lower bound of Lip(f))."""
    f, x, y = as_float64(f), _points(x), _points(y)
    if x.shape != y.shape:
        raise ShapeError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    num = (f(x) - f(y)).reshape(x.shape[0], -1).norm(dim=1)
    den = (x - y).reshape(x.shape[0], -1).norm(dim=1)
    if bool((den == 0).any()):
        raise ConfigError("lipschitz_ratio needs x_i != y_i for every pair")
    return float((num / den).max())


@torch.no_grad()
def inverse_defect(f, f_inverse, x, dtype=torch.float64) -> float:
    """max_i || f_inverse(f(x_i)) - x_i || / max(1, ||x_i||), in float64 on a copy (default) or, with
    ``dtype=None``, in x's own dtype with the modules as they are."""
    if dtype not in (None, torch.float64):
        raise ConfigError(f"inverse_defect measures in torch.float64 or (dtype=None) in x's dtype, got {dtype}")
    if dtype is not None:
        f, f_inverse = as_float64(f), as_float64(f_inverse)
        x = _points(x)
    err = (f_inverse(f(x)) - x).reshape(x.shape[0], -1).norm(dim=1)
    return float((err / x.reshape(x.shape[0], -1).norm(dim=1).clamp_min(1.0)).max())


@dataclass(frozen=True)
class Check:
    """One measured claim: the property, its measured defect, the round-off tolerance it is held to."""

    property: structure.Property
    defect: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.defect <= self.tolerance


def measure(f, prop: structure.Property, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """The defect of one property on the points x (y: partner points for Lipschitz, whose defect is the
    relative excess max(0, ratio - L) / L)."""
    if isinstance(prop, structure.Symplectic):
        return symplecticity_defect(f, x)
    if isinstance(prop, structure.PreservesVolume):
        return volume_defect(f, x)
    if isinstance(prop, structure.LinearInvariant):
        return invariant_drift(f, x, prop.vector())
    if isinstance(prop, structure.QuadraticInvariant):
        return norm_drift(f, x) if prop.is_norm else quadratic_drift(f, x, prop.matrix())
    if isinstance(prop, structure.Lipschitz):
        if y is None:
            y = x + 1e-3 * torch.randn_like(torch.as_tensor(x, dtype=torch.float64))
        return max(0.0, lipschitz_ratio(f, x, y) - prop.L) / max(prop.L, EPS64)
    raise ConfigTypeError(f"no measurement is known for property {prop!r}")


def verify(net, x: torch.Tensor, C: float = 100.0) -> list[Check]:
    """Measure every property ``net.guarantees`` claims, in float64 on x, each held to C * n * eps with
    n = (number of steps) * (state dimension); never asserts."""
    C = positive_real("verify's round-off factor C", C, symbol="C")
    x = _points(x)
    n = (len(net) if hasattr(net, "__len__") else 1) * x[0].numel()
    return [Check(p, measure(net, p, x), C * n * EPS64) for p in sorted(net.guarantees, key=repr)]
