"""Shared builders for the structure tests: far-from-identity random fields and deep flows (float64)."""

from __future__ import annotations

import torch

import dynnets as dn

EPS = torch.finfo(torch.float64).eps


def randomize(field: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """Redraw every parameter from N(0, scale^2) (float64): far larger than the default initialisation,
    so that deep flows move points a long way and the maps are far from the identity."""
    gen = torch.Generator().manual_seed(seed)
    field = field.to(torch.float64)
    with torch.no_grad():
        for p in field.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * scale)
    return field


def deep_flow(make_field, method, h: float, n: int, scale: float, seed: int) -> dn.Flow:
    """n steps, each with its own randomised field: a deep network, not a weight-tied solver."""
    return dn.Flow([dn.Step(randomize(make_field(), scale, seed + k), method, h) for k in range(n)])


def points(batch: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=gen, dtype=torch.float64)


def mean_move(f, x: torch.Tensor) -> float:
    """mean_i ||f(x_i) - x_i||: how far the map is from the identity."""
    with torch.no_grad():
        return float((f(x) - x).norm(dim=1).mean())


def max_jacobian_norm(f, x: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(dn.testing.jacobian(f, x), ord=2).max())


@torch.no_grad()
def rollout_linear_drift(step, x: torch.Tensor, c: torch.Tensor, n: int) -> tuple[float, float]:
    """Apply ``step`` n times. Returns (max_k max_i |c^T x_k - c^T x_0|, max_k max_i sum_j |c_j x_kj|).

    The second number is the size of the terms the sum c^T x adds up: the round-off unit of the first.
    """
    m0 = x @ c
    drift = torch.zeros((), dtype=torch.float64)
    size = (x * c).abs().sum(1).max()
    for _ in range(n):
        x = step(x)
        drift = torch.maximum(drift, (x @ c - m0).abs().max())
        size = torch.maximum(size, (x * c).abs().sum(1).max())
    return float(drift), float(size)


@torch.no_grad()
def rollout_norm_drift(step, x: torch.Tensor, n: int) -> float:
    """max_k max_i | ||x_k|| - ||x_0|| | / ||x_0|| over n applications of ``step``."""
    r0 = x.norm(dim=1)
    drift = torch.zeros((), dtype=torch.float64)
    for _ in range(n):
        x = step(x)
        drift = torch.maximum(drift, ((x.norm(dim=1) - r0).abs() / r0).max())
    return float(drift)


@torch.no_grad()
def rollout_quadratic_drift(step, x: torch.Tensor, Q: torch.Tensor, n: int) -> float:
    """max_k max_i |x_k^T Q x_k - x_0^T Q x_0| / (||Q||_F ||x_0||^2) over n applications of ``step``
    (Q symmetric; the relative drift of the quadratic form)."""
    def form(z):
        return ((z @ Q) * z).sum(1)

    q0, unit = form(x), torch.linalg.matrix_norm(Q) * x.square().sum(1)
    drift = torch.zeros((), dtype=torch.float64)
    for _ in range(n):
        x = step(x)
        drift = torch.maximum(drift, ((form(x) - q0).abs() / unit).max())
    return float(drift)


class ForcedPendulum(dn.base.Field):
    """q' = p, p' = -sin q + cos(1.3 t) q (a nonlinear time-dependent Hamiltonian field)."""

    dim = 2
    time_dependent = True
    traits = frozenset({dn.structure.CanonicalHamiltonian()})

    def forward(self, t, x):
        q, p = x[:, :1], x[:, 1:]
        return torch.cat([p, -torch.sin(q) + torch.cos(1.3 * t).reshape(-1, 1) * q], dim=1)
