"""Trial-function network solver for linear PDEs on a box with Dirichlet / initial data.

Lagaris, Likas, Fotiadis (1998): u(z) = g(z) + d(z) N(z), g satisfying the data and d vanishing where they
are given, so the data hold for every N and only the PDE residual is learned.

Derivatives are exact: reverse mode with ``create_graph`` (any row-wise module), or, when every PDE term
is u, a first or a pure second derivative and N is a ``TrialNetwork`` with a jet-capable activation,
second-order forward Taylor mode through the layers with g, d and their derivatives computed once:
D_j u = D_j g + D_j d N + d D_j N and D_jj u = D_jj g + D_jj d N + 2 D_j d D_j N + d D_jj N. The two
paths agree to round-off (tests/applications/test_heat_trial.py). Training recipes are in ``heat.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ...checks import check_size, positive_real, real
from ...errors import ConfigError, ShapeError
from ...fields.activations import ACTIVATIONS
from ...fields.dense import Dense
from ...methods import Euler
from ...step import Flow, Step

Fn = Callable[[torch.Tensor], torch.Tensor]


class TrialNetwork(nn.Module):
    """N(z) = output_scale P(Flow(L z)): L = Linear(in_dim, width), ``depth`` Euler steps v <- v + h Dense(v)
    (h = 1/depth), P = Linear(width, 1). Input (batch, in_dim), output (batch,)."""

    def __init__(self, in_dim: int = 2, width: int = 20, depth: int = 3, activation: str = "tanh",
                 *, init_scale: float = 0.5, output_scale: float = 1.0):
        super().__init__()
        self.output_scale = positive_real("output_scale", output_scale)
        self.in_dim = check_size("in_dim", in_dim)
        self.width = check_size("width", width)
        self.depth = check_size("depth", depth)
        self.lift = nn.Linear(in_dim, width)
        self.flow = Flow([Step(Dense(width, width, activation, init_scale=init_scale), Euler(), 1.0 / depth)
                          for _ in range(depth)])
        self.project = nn.Linear(width, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.in_dim:
            raise ShapeError(f"TrialNetwork expects points of shape (batch, {self.in_dim}), "
                             f"got {tuple(z.shape)}")
        return self.output_scale * self.project(self.flow(self.lift(z))).squeeze(-1)

    @property
    def has_jet(self) -> bool:
        return all(isinstance(s.field, Dense) and s.field.activation.jet is not None
                   and type(s.method) is Euler and not s.learn_h for s in self.flow.steps)

    def feature_jet(self, z: torch.Tensor, first: Sequence[int], second: Sequence[int]):
        """v = Flow(L z) (n, width) with {j: D_j v} and {j: D_jj v} (second a subset of first), by
        second-order forward Taylor mode; N = output_scale (v P + q) is linear in them."""
        if not self.has_jet:
            raise ConfigError("jet needs Euler steps of Dense fields with an activation in "
                              f"{sorted(n for n, a in ACTIVATIONS.items() if a.jet)} and fixed h")
        first, second = list(first), list(second)
        if not set(second) <= set(first):
            raise ConfigError(f"second-derivative directions {second} must be among the first ones {first}")
        n, k1, k2 = z.shape[0], len(first), len(second)
        W, c = self.lift.weight, self.lift.bias
        v = z @ W.T + c                                               # (n, w)
        d1 = W.T[first].unsqueeze(1).expand(k1, n, self.width)        # D_j(Wz + c) = W e_j
        d2 = v.new_zeros(k2, n, self.width)
        sec = [first.index(j) for j in second]
        for step in self.flow.steps:
            f, h = step.field, step.h
            # one matrix product for all blocks; split (not slicing) keeps the backward cheap
            p, p1, p2 = torch.split(torch.cat([v.unsqueeze(0), d1, d2], 0) @ f.A.T, [1, k1, k2])
            s, s1, s2 = f.activation.jet(p + f.b)
            p1_sec = p1 if sec == list(range(k1)) else p1[sec]
            out = torch.cat([s, s1 * p1, s2 * p1_sec.square() + s1 * p2], 0) @ f.B.T
            o0, o1, o2 = torch.split(out, [1, k1, k2])
            v, d1, d2 = v + h * o0[0], d1 + h * o1, d2 + h * o2
        return v, dict(zip(first, d1)), dict(zip(second, d2))

    def jet(self, z: torch.Tensor, first: Sequence[int], second: Sequence[int]):
        """N, {j: dN/dz_j for j in first}, {j: d^2N/dz_j^2 for j in second}: ``feature_jet`` projected."""
        v, d1, d2 = self.feature_jet(z, first, second)
        P, q = self.output_scale * self.project.weight[0], self.output_scale * self.project.bias[0]
        return v @ P + q, {j: d @ P for j, d in d1.items()}, {j: d @ P for j, d in d2.items()}


class TrialSolution(nn.Module):
    """u(z) = g(z) + d(z) N(z); ``particular`` = g, ``distance`` = d: (batch, in_dim) -> (batch,)."""

    def __init__(self, network: nn.Module, particular: Fn, distance: Fn):
        super().__init__()
        self.network, self.particular, self.distance = network, particular, distance

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.particular(z) + self.distance(z) * self.network(z)


def derivative(f: Fn, z: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """D^axes f at every row of z for a row-wise f: (batch, d) -> (batch,) (axes (0, 0): d^2 f / dz_0^2),
    by reverse mode with create_graph (differentiable w.r.t. f's parameters)."""
    z = z.detach().requires_grad_(True)
    y = f(z)
    for axis in axes:
        if not y.requires_grad:
            return torch.zeros_like(y)
        (g,) = torch.autograd.grad(y.sum(), z, create_graph=True, allow_unused=True, materialize_grads=True)
        y = g[:, axis]
    return y


class LinearPDE:
    """Residual r(z) = sum_k a_k(z) D^k u(z) - f(z) of a linear PDE: ``terms`` maps a derivative (a string of
    coordinate names, "" for u itself) to its coefficient (a number or a callable of z), ``coords`` names the
    input columns, ``source`` is f (default 0); u_t = alpha u_xx is ``LinearPDE({"t": 1.0, "xx": -alpha},
    coords="xt")``."""

    def __init__(self, terms: Mapping[str, float | Fn], coords: Sequence[str] = ("x", "t"),
                 source: Fn | None = None):
        coords = tuple(coords)
        if len(set(coords)) != len(coords) or not all(isinstance(c, str) and len(c) == 1 for c in coords):
            raise ConfigError(f"coords must be distinct one-letter names, got {coords!r}")
        if not terms:
            raise ConfigError("a linear PDE needs at least one term, got none")
        self.coords = coords
        self.terms: list[tuple[tuple[int, ...], float | Fn]] = []
        for key, coeff in terms.items():
            unknown = [c for c in key if c not in coords]
            if unknown:
                raise ConfigError(f"derivative {key!r} uses coordinates {unknown} not in coords={coords!r}")
            coeff = coeff if callable(coeff) else real(f"coefficient of {key!r}", coeff, symbol=key)
            self.terms.append((tuple(coords.index(c) for c in key), coeff))
        self.source = source

    def combine(self, derivs: Mapping[tuple[int, ...], torch.Tensor], z: torch.Tensor, *,
                source: bool = True) -> torch.Tensor:
        """sum_k a_k(z) D^k u (- f(z) with ``source``); derivatives of shape (n,) or (n, columns)."""
        r = 0.0
        for axes, coeff in self.terms:
            a, du = (coeff(z) if callable(coeff) else coeff), derivs[axes]
            if isinstance(a, torch.Tensor) and du.dim() > a.dim():
                a = a.reshape(a.shape + (1,) * (du.dim() - a.dim()))
            r = r + a * du
        if source and self.source is not None:
            r = r - self.source(z)
        return r

    def residual(self, u: Fn, z: torch.Tensor) -> torch.Tensor:
        """Generic path: each derivative of u by reverse mode."""
        return self.combine({axes: derivative(u, z, axes) for axes, _ in self.terms}, z)


def _fast_parts(solution: nn.Module, pde: LinearPDE, points: torch.Tensor, fast: bool | None):
    """None for the reverse-mode path, else (z, first, second, g, d): directions, g and d with derivatives."""
    if points.dim() != 2:
        raise ShapeError(f"collocation points must have shape (n, d), got {tuple(points.shape)}")
    usable = (isinstance(solution, TrialSolution) and isinstance(solution.network, TrialNetwork)
              and solution.network.has_jet
              and all(len(a) <= 1 or (len(a) == 2 and a[0] == a[1]) for a, _ in pde.terms))
    if fast and not usable:
        raise ConfigError("the fast residual needs a TrialSolution around a TrialNetwork with a jet-capable "
                          "activation and a PDE of first and pure second derivatives only")
    if not (usable if fast is None else fast):
        return None
    z = points.detach()
    orders = {axes for axes, _ in pde.terms}
    first = sorted({a[0] for a in orders if a})
    second = sorted({a[0] for a in orders if len(a) == 2})
    g, d = ({(): fn(z).detach(), **{(j,): derivative(fn, z, (j,)).detach() for j in first},
             **{(j, j): derivative(fn, z, (j, j)).detach() for j in second}}
            for fn in (solution.particular, solution.distance))
    return z, first, second, g, d


def _trial_derivs(g, d, N, N1, N2, first, second) -> dict:
    """D^a u for u = g + d N from the jets of N (g = None: the d N part alone; N may have feature columns)."""
    def col(t):
        return t.reshape(t.shape + (1,) * (N.dim() - t.dim()))

    derivs = {(): col(d[()]) * N}
    for j in first:
        derivs[(j,)] = col(d[(j,)]) * N + col(d[()]) * N1[j]
    for j in second:
        derivs[(j, j)] = col(d[(j, j)]) * N + 2.0 * col(d[(j,)]) * N1[j] + col(d[()]) * N2[j]
    if g is not None:
        derivs = {k: col(g[k]) + t for k, t in derivs.items()}
    return derivs


def residual_function(solution: nn.Module, pde: LinearPDE, points: torch.Tensor,
                      fast: bool | None = None) -> Callable[[], torch.Tensor]:
    """A closure () -> r(points); ``fast=None`` takes the Taylor-mode path where it applies."""
    parts = _fast_parts(solution, pde, points, fast)
    if parts is None:
        return lambda: pde.residual(solution, points)
    z, first, second, g, d = parts
    return lambda: pde.combine(_trial_derivs(g, d, *solution.network.jet(z, first, second), first, second), z)


def linear_parts(solution: nn.Module, pde: LinearPDE, points: torch.Tensor) -> Callable:
    """A closure () -> (M, r0) with r(points) = r0 + M w, w = output_scale (P, q) the projection
    (M: (n, width + 1), the last column the constant's). Fast path only."""
    z, first, second, g, d = _fast_parts(solution, pde, points, True)
    r0 = pde.combine(g, z)  # the data's residual: a constant

    def parts():
        v, d1, d2 = solution.network.feature_jet(z, first, second)
        V, zero = torch.cat([v, v.new_ones(v.shape[0], 1)], 1), v.new_zeros(v.shape[0], 1)
        N1, N2 = ({j: torch.cat([t, zero], 1) for j, t in dj.items()} for dj in (d1, d2))
        return pde.combine(_trial_derivs(None, d, V, N1, N2, first, second), z, source=False), r0

    return parts


def grid_points(n_per_axis: Sequence[int], lower: Sequence[float], upper: Sequence[float],
                dtype=torch.float64, interior: bool = True,
                grading: Sequence[float] | None = None) -> torch.Tensor:
    """Tensor-product collocation points on a box, shape (prod n, d): cell midpoints s = (i + 1/2)/n
    (``interior``) or s = i/(n - 1); ``grading`` (one p >= 1 per axis) maps s -> s^p."""
    grading = [1.0] * len(n_per_axis) if grading is None else list(grading)
    if len(grading) != len(n_per_axis) or not all(math.isfinite(p) and p >= 1 for p in grading):
        raise ConfigError(f"grading needs one exponent >= 1 per axis, got {grading!r}")
    axes = []
    for n, lo, hi, p in zip(n_per_axis, lower, upper, grading):
        n = check_size("points per axis", n)
        s = (torch.arange(n, dtype=dtype) + 0.5) / n if interior else torch.linspace(0.0, 1.0, n, dtype=dtype)
        axes.append(lo + (hi - lo) * s**p)
    return torch.stack([m.reshape(-1) for m in torch.meshgrid(*axes, indexing="ij")], dim=1)


def residual_loss(solution: nn.Module, pde: LinearPDE, points: torch.Tensor, *, fast: bool | None = None,
                  reduction: str = "mean") -> Callable:
    """``loss(model, batch)`` = mean (``reduction="sum"``: sum, the seed's eq. 14) of r(z)^2 over the
    collocation ``points``, for dynnets.train.fit."""
    if reduction not in ("mean", "sum"):
        raise ConfigError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    residual = residual_function(solution, pde, points, fast)
    reduce = torch.mean if reduction == "mean" else torch.sum
    return lambda model, batch: reduce(residual().square())


class ProjectedLoss:
    """Variable projection (Golub & Pereyra 1973): r = r0 + M(theta) w is affine in the projection w
    (``linear_parts``), so the loss is f(theta) = min_w mean (r0 + M(theta) w)^2. ``loss(model, batch)``
    returns mean (r0 + M w*)^2 with w* = lstsq(M, -r0) held fixed (envelope theorem: the gradient is f's);
    ``set_projection()`` writes w* into the network (before evaluating it)."""

    def __init__(self, solution: nn.Module, pde: LinearPDE, points: torch.Tensor):
        self.solution, self.parts = solution, linear_parts(solution, pde, points)

    @staticmethod
    def _best(M: torch.Tensor, r0: torch.Tensor) -> torch.Tensor:
        return torch.linalg.lstsq(M.detach(), -r0.detach().unsqueeze(1)).solution[:, 0]

    def __call__(self, model, batch) -> torch.Tensor:
        M, r0 = self.parts()
        return (r0 + M @ self._best(M, r0)).square().mean()

    @torch.no_grad()
    def set_projection(self) -> None:
        net = self.solution.network
        w = self._best(*self.parts()) / net.output_scale
        net.project.weight.copy_(w[:-1].unsqueeze(0))
        net.project.bias.copy_(w[-1:])
