"""Presnov decomposition of a vector field: f = grad U + X_S with x . X_S(x) = 0.

    U(x) = int_0^1 x . f(t x) dt

Why x . grad U(x) = x . f(x) (so X_S = f - grad U is tangent to the spheres |x| = const): with
g(t) = t x . f(t x),

    grad U(x) = int_0^1 [f(t x) + t Df(t x)^T x] dt
    x . grad U(x) = int_0^1 [x . f(t x) + t x^T Df(t x) x] dt = int_0^1 g'(t) dt = g(1) - g(0) = x . f(x).

The same computation for the Gauss-Legendre rule U_N(x) = sum_i w_i x . f(t_i x) gives
x . grad U_N(x) = sum_i w_i g'(t_i): the N-point rule applied to g'. It is exact (so x . X_S = 0 up to
round-off) whenever g' is a polynomial of degree <= 2N - 1, i.e. for a polynomial field f of degree p as
soon as N >= (p + 1) / 2; for a smooth non-polynomial field the defect is the rule's error on g', which
decays geometrically in N and is measured by ``quadrature_error`` (rule with N against 2N points).

Because x . X_S(x) = 0, X_S(x) = S(x) x with the skew-symmetric S(x) = (X_S x^T - x X_S^T) / |x|^2
(``sphere_skew``): the sphere-preserving part is exactly a field of the ``SpherePreserving`` family's
form, and the gradient part is a gradient field; composing flows of the two approximates the flow of f
(Lie-Trotter splitting, local error O(h^2)).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...errors import ConfigError, ShapeError
from ...fields import FunctionField
from ...methods import RK4
from ...step import Flow, Step

__all__ = ["gauss_legendre", "potential", "decompose", "sphere_skew", "sphere_defect",
           "sphere_tolerance", "quadrature_error", "trotter_flow"]

Field = Callable[[torch.Tensor], torch.Tensor]


def gauss_legendre(n: int, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of the n-point Gauss-Legendre rule on [0, 1] (exact for degree <= 2n - 1)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"the number of quadrature points must be a positive integer, got n={n!r}")
    s, w = np.polynomial.legendre.leggauss(n)
    nodes = torch.as_tensor((s + 1.0) / 2.0, dtype=dtype, device=device)
    weights = torch.as_tensor(w / 2.0, dtype=dtype, device=device)
    return nodes, weights


def _check_points(x: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ShapeError(f"points must have shape (batch, dim), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ConfigError("points must be finite, got NaN or inf")


def potential(f: Field, x: torch.Tensor, n: int = 16) -> torch.Tensor:
    """U(x) = int_0^1 x . f(t x) dt by the n-point Gauss-Legendre rule; x: (batch, dim) -> (batch,)."""
    _check_points(x)
    t, w = gauss_legendre(n, x.dtype, x.device)
    scaled = t[:, None, None] * x.unsqueeze(0)              # (n, batch, dim)
    values = f(scaled.reshape(-1, x.shape[-1])).reshape(scaled.shape)
    return torch.einsum("q,qbd,bd->b", w, values, x)


def decompose(f: Field, x: torch.Tensor, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad U(x), X_S(x)) with f = grad U + X_S; grad U by autograd through the quadrature sum.

    Each U(x_b) depends on x_b alone, so the gradient of sum_b U(x_b) is the batch of gradients."""
    _check_points(x)
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        (grad_u,) = torch.autograd.grad(potential(f, xg, n).sum(), xg)
    with torch.no_grad():
        fx = f(x.detach())
    return grad_u.detach(), (fx - grad_u).detach()


def sphere_skew(x: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """S(x) = (X_S x^T - x X_S^T) / |x|^2, skew-symmetric exactly; S(x) x = X_S(x) when x . X_S(x) = 0."""
    _check_points(x)
    outer = xs.unsqueeze(-1) * x.unsqueeze(-2)
    r2 = (x * x).sum(-1)[:, None, None]
    if (r2 == 0).any():
        raise ConfigError("sphere_skew needs x != 0 (S(x) is defined on R^n minus the origin)")
    return (outer - outer.transpose(-1, -2)) / r2


def sphere_defect(x: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Per point |x . X_S(x)|."""
    return (x * xs).sum(-1).abs()


def sphere_tolerance(x: torch.Tensor, fx: torch.Tensor, grad_u: torch.Tensor, n: int, c: float = 1.0
                     ) -> torch.Tensor:
    """Per point round-off tolerance of |x . X_S(x)|: c * (n + dim) * eps * |x| (|f(x)| + |grad U(x)|).

    x . X_S = x . f - x . grad U is the difference of two inner products of size <= |x||f|, |x||grad U|;
    grad U is an n-term quadrature sum (through autograd), each inner product adds dim roundings."""
    eps = torch.finfo(x.dtype).eps
    scale = x.norm(dim=-1) * (fx.norm(dim=-1) + grad_u.norm(dim=-1))
    return c * (n + x.shape[-1]) * eps * scale


def quadrature_error(f: Field, x: torch.Tensor, n: int = 16) -> float:
    """max |grad U_n - grad U_2n| over the points: an estimate of the quadrature error of grad U."""
    g1, _ = decompose(f, x, n)
    g2, _ = decompose(f, x, 2 * n)
    return float((g1 - g2).norm(dim=-1).max())


def trotter_flow(f: Field, x: torch.Tensor, t: float, pieces: int, *, substeps: int = 8, n: int = 16
                 ) -> torch.Tensor:
    """(Phi^{t/k}_{grad U} o Phi^{t/k}_{X_S})^k (x), k = ``pieces``: the slides' constructive proof.

    Each sub-flow is integrated by ``substeps`` RK4 steps; grad U and X_S come from ``decompose``.
    Lie-Trotter splitting has local error O((t/k)^2), so the distance to Phi^t_f(x) decays like 1/k
    (until the RK4 error of the sub-flows, O((t/(k substeps))^4) per piece, is reached)."""
    if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 1:
        raise ConfigError(f"pieces must be a positive integer, got pieces={pieces!r}")

    dim = x.shape[-1]
    h = t / pieces / substeps
    grad_part = Flow.repeat(Step(FunctionField(lambda y: decompose(f, y, n)[0], dim), RK4(), h), substeps)
    sphere_part = Flow.repeat(Step(FunctionField(lambda y: decompose(f, y, n)[1], dim), RK4(), h), substeps)
    for _ in range(pieces):
        x = grad_part(sphere_part(x))
    return x
