"""Presnov decomposition of a vector field: f = grad U + X_S with x . X_S(x) = 0, U(x) = int_0^1 x . f(t x) dt
by the N-point Gauss-Legendre rule (exact for a polynomial field of degree p once N >= (p + 1) / 2, else
``quadrature_error``); X_S(x) = S(x) x with S skew (``sphere_skew``). The proof: docs/theory.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...checks import check_int
from ...errors import ConfigError, ShapeError
from ...fields import FunctionField
from ..pde.data import reference_flow

Field = Callable[[torch.Tensor], torch.Tensor]


def gauss_legendre(n: int, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of the n-point Gauss-Legendre rule on [0, 1] (exact for degree <= 2n - 1)."""
    n = check_int("the number of quadrature points n", n, minimum=1)
    s, w = np.polynomial.legendre.leggauss(n)
    return (torch.as_tensor((s + 1.0) / 2.0, dtype=dtype, device=device),
            torch.as_tensor(w / 2.0, dtype=dtype, device=device))


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
    return torch.einsum("q,qbd,bd->b", w, f(scaled.reshape(-1, x.shape[-1])).reshape(scaled.shape), x)


def decompose(f: Field, x: torch.Tensor, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad U(x), X_S(x)) with f = grad U + X_S; grad U by autograd through the quadrature sum (each U(x_b)
    depends on x_b alone, so the gradient of sum_b U(x_b) is the batch of gradients)."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        (grad_u,) = torch.autograd.grad(potential(f, xg, n).sum(), xg)
    with torch.no_grad():
        return grad_u.detach(), (f(x.detach()) - grad_u).detach()


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
    """Per point round-off tolerance of |x . X_S(x)|: c * (n + dim) * eps * |x| (|f(x)| + |grad U(x)|)
    (x . X_S = x . f - x . grad U: inner products of dim terms, grad U an n-term quadrature sum)."""
    scale = x.norm(dim=-1) * (fx.norm(dim=-1) + grad_u.norm(dim=-1))
    return c * (n + x.shape[-1]) * torch.finfo(x.dtype).eps * scale


def quadrature_error(f: Field, x: torch.Tensor, n: int = 16) -> float:
    """max |grad U_n - grad U_2n| over the points: an estimate of the quadrature error of grad U."""
    return float((decompose(f, x, n)[0] - decompose(f, x, 2 * n)[0]).norm(dim=-1).max())


def trotter_flow(f: Field, x: torch.Tensor, t: float, pieces: int, *, substeps: int = 8, n: int = 16
                 ) -> torch.Tensor:
    """(Phi^{t/k}_{grad U} o Phi^{t/k}_{X_S})^k (x), k = ``pieces``, each sub-flow ``substeps`` RK4 steps: the
    slides' constructive proof (the distance to Phi^t_f(x) decays like 1/k)."""
    pieces = check_int("pieces", pieces, minimum=1)
    dim = x.shape[-1]
    grad_part = reference_flow(FunctionField(lambda y: decompose(f, y, n)[0], dim), t / pieces, substeps)
    sphere_part = reference_flow(FunctionField(lambda y: decompose(f, y, n)[1], dim), t / pieces, substeps)
    for _ in range(pieces):
        x = grad_part(sphere_part(x))
    return x
