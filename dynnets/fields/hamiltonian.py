"""Hamiltonian fields on x = (q, p). Separable (``Hamiltonian``): H = T(p) + V(q), T(p) = w_T^T Gamma(K_T p +
a_T) and V alike, F = (grad T(p), -grad V(q)) in closed form, grad T(p) = K_T^T (w_T * sigma(K_T p + a_T)),
sigma = Gamma'; symplectic under the partitioned methods (``SeparableHamiltonian``). ``GeneralHamiltonian``:
H(x) = w^T Gamma(K x + a) on the whole state, F = J grad H and DF = J K^T diag(w * sigma'(K x + a)) K in
closed form; symplectic under symplectic Runge-Kutta methods (``CanonicalHamiltonian``).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..base import Field, Linearization, PartitionedField, scaled
from ..checks import check_bool, check_size
from ..errors import ConfigError
from ..structure import CanonicalHamiltonian, Partitioned, SeparableHamiltonian
from .activations import ACTIVATIONS


class _Potential(nn.Module):
    """z -> w^T Gamma(K z + a) and its gradient K^T (w * sigma(K z + a)), Gamma' = sigma."""

    def __init__(self, dim: int, width: int, init_scale: float, activation, diagonal: bool = False):
        super().__init__()
        self.activation, self.diagonal = activation, diagonal
        if diagonal:  # K = I and a = 0, fixed: z -> sum_i w_i Gamma(z_i) (the LA-SympNet activation module)
            self.register_buffer("K", torch.eye(dim))
            self.register_buffer("a", torch.zeros(dim))
        else:
            self.K = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
            self.a = nn.Parameter(torch.randn(width) * 0.5)
        self.w = nn.Parameter(torch.randn(width) * (checks.init_scale(init_scale) / math.sqrt(width)))

    def ridges(self, z):
        """K z + a (diagonal: z itself, exactly what K = I, a = 0 give for finite z)."""
        return z if self.diagonal else F.linear(z, self.K, self.a)

    def value(self, z):
        return self.activation.antiderivative(self.ridges(z)) @ self.w

    def grad(self, z):
        # K^T (w * s) = (diag(w) K)^T s: scale K's rows, not the (batch, width) activations
        return F.linear(self.activation.fn(self.ridges(z)), (self.K * self.w.unsqueeze(1)).t())

    def kick(self, y, z, coefficients):
        """y + c grad(z) = y + (sigma(K z + a) * (c w)) K for each c in turn, sigma evaluated once."""
        s = self.activation.fn(self.ridges(z))
        for c in coefficients:
            y = (y + s * scaled(c, self.w)) if self.diagonal else add_product(y, s * scaled(c, self.w), self.K)
        return y

    def grad_vjp(self, z, c):
        """(grad(z), z_bar, (K_bar, a_bar, w_bar)) for the cotangent c of grad(z), in closed form
        (``vjp_at``); the value bitwise as ``grad`` computes it."""
        kw = self.K * self.w.unsqueeze(1)
        s = self.activation.fn(self.ridges(z))
        return F.linear(s, kw.t()), *self.vjp_at(z, s, self.activation.slope_of_value(s), kw, c)

    def vjp_at(self, z, s, slope, kw, c):
        """(z_bar, (K_bar, a_bar, w_bar)) for the cotangent c of grad(z), given s = sigma(u), slope = sigma'(u)
        and K_w = diag(w) K, with no autograd: s_bar = c K_w^T, u_bar = s_bar * sigma'(u), z_bar = u_bar K,
        K_bar = u_bar^T z + diag(w) s^T c, a_bar = sum u_bar, w_bar = rowsum(K * s^T c)."""
        u_bar = (c @ kw.t()).mul_(slope)
        st_c = s.t() @ c
        k_bar = torch.addmm(st_c * self.w.unsqueeze(1), u_bar.t(), z)
        return u_bar @ self.K, (k_bar, u_bar.sum(0), (st_c * self.K).sum(1))

    def own(self, grads, params) -> list:
        """The gradients (K_bar, a_bar, w_bar) matched to ``params`` (None for another parameter)."""
        own = {id(p): g for p, g in zip((self.K, self.a, self.w), grads)}
        return [own.get(id(p)) for p in params]


def add_product(y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """y + a @ b, one addmm when all are matrices (the (batch, dim) case; a vmapped row takes the matmul)."""
    return torch.addmm(y, a, b) if y.dim() == a.dim() == 2 else y + a @ b


def _activation_for(potential: str):
    """The activation whose antiderivative is ``potential`` (ConfigError listing the choices)."""
    act = next((a for a in ACTIVATIONS.values() if a.antiderivative_name == potential), None)
    if act is None:
        choices = sorted(a.antiderivative_name for a in ACTIVATIONS.values() if a.antiderivative_name)
        raise ConfigError(f"unknown potential {potential!r}; choose one of {choices}")
    return act


class SeparableEnergies(PartitionedField):
    """x = (q, p) -> (grad T(p), -grad V(q)) with energy modules ``kinetic`` and ``potential_energy`` (None:
    zero part), each with ``value(z)``, ``grad(z)`` and ``kick(y, z, coefficients)``, set by subclasses."""

    traits = frozenset({Partitioned(), SeparableHamiltonian()})

    def f(self, p: torch.Tensor) -> torch.Tensor:
        return self.kinetic.grad(p)

    def g(self, q: torch.Tensor) -> torch.Tensor:
        return -self.potential_energy.grad(q)

    def partition_kick(self, which: str, z: torch.Tensor, point: torch.Tensor, coefficients) -> torch.Tensor:
        """Fused by the energy's ``kick``: z + c grad T(v) or z - c grad V(q)."""
        if which == "f":
            return self.kinetic.kick(z, point, coefficients)
        return self.potential_energy.kick(z, point, [-c for c in coefficients])

    def partition(self):
        return (self.q_dim, None if self.kinetic is None else self.f,
                None if self.potential_energy is None else self.g)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        q, p = x[..., : self.q_dim], x[..., self.q_dim:]
        out = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for energy, z in ((self.kinetic, p), (self.potential_energy, q)):
            if energy is not None:
                out = out + energy.value(z)
        return out


class Hamiltonian(SeparableEnergies):
    """Separable H(q, p) = T(p) + V(q) on x = (q, p), q, p in R^dim (module docstring). ``potential`` names
    Gamma: "logcosh" (sigma = tanh, default) or "softplus" (sigma = sigmoid). ``kinetic=False`` (T = 0) or
    ``potential_energy=False`` (V = 0): a partitioned step is then one exact kick, a G-SympNet module (Jin et
    al., SympNets, 2020, Sec. 3.2). ``diagonal=True`` (width == dim): K = I, a = 0, T(p) = sum_i w_i
    Gamma(p_i) (the LA-SympNet activation module)."""

    def __init__(self, dim: int, width: int, potential: str = "logcosh", *, init_scale: float = 0.5,
                 kinetic: bool = True, potential_energy: bool = True, diagonal: bool = False):
        super().__init__()
        self.q_dim = check_size("dim", dim)
        self.width = check_size("width", width)
        self.dim = 2 * self.q_dim
        act = _activation_for(potential)
        self.potential_kind = potential
        if not (check_bool("kinetic", kinetic) or check_bool("potential_energy", potential_energy)):
            raise ConfigError("Hamiltonian needs kinetic=True or potential_energy=True (rule: at least one energy)")
        if check_bool("diagonal", diagonal) and width != dim:
            raise ConfigError(f"diagonal=True needs width == dim (one ridge per coordinate), got width={width}, dim={dim}")
        self.kinetic = _Potential(dim, width, init_scale, act, diagonal) if kinetic else None
        self.potential_energy = _Potential(dim, width, init_scale, act, diagonal) if potential_energy else None

    def partition_vjp(self, which: str, point: torch.Tensor, cotangent: torch.Tensor, params):
        """In closed form (``_Potential.grad_vjp``): f = grad T, g = -grad V."""
        net, sign = (self.kinetic, 1.0) if which == "f" else (self.potential_energy, -1.0)
        if net.activation.slope_of_value is None:
            return super().partition_vjp(which, point, cotangent, params)
        value, point_bar, got = net.grad_vjp(point, cotangent if sign > 0 else -cotangent)
        return (value if sign > 0 else -value), point_bar, net.own(got, params)

    def extra_repr(self) -> str:
        return f"dim={self.q_dim}, width={self.width}, potential={self.potential_kind!r}"


class GeneralHamiltonian(Field):
    """H(q, p) = w^T Gamma(K x + a) on x = (q, p), K: (width, 2 dim); F(x) = J grad H(x) = (dH/dp, -dH/dq)
    (module docstring); ``potential`` as for ``Hamiltonian``."""

    traits = frozenset({CanonicalHamiltonian()})

    def __init__(self, dim: int, width: int, potential: str = "logcosh", *, init_scale: float = 0.5):
        super().__init__()
        self.q_dim = check_size("dim", dim)
        self.width = check_size("width", width)
        self.dim = 2 * self.q_dim
        act = _activation_for(potential)
        if act.slope_of_value is None:
            raise ConfigError(f"potential {potential!r} has no closed-form second derivative for jacobian(x)")
        self.potential_kind = potential
        self.energy_net = _Potential(self.dim, width, init_scale, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linearizer()(x).value

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        return self.linearizer()(x).jacobian()

    def linearizer(self):
        return functools.partial(_SharedActivation, self, _Constants(self))

    def _canonical(self, t: torch.Tensor, axis: int) -> torch.Tensor:
        """J t along ``axis`` (J = [[0, I], [-I, 0]]): the p half, then minus the q half."""
        q, p = t.split(self.q_dim, dim=axis)
        return torch.cat([p, -q], dim=axis)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.energy_net.value(x)

    extra_repr = Hamiltonian.extra_repr


class _Constants:
    """What ``GeneralHamiltonian``'s linearisations at fixed parameters share: K_w = diag(w) K, K_w J^T (so that
    F = J K_w^T s = s K_w J^T per row, s = sigma(K x + a)) and, on first use, the rows' products
    w_r (J k_r) k_r^T as (width, n^2) (DF = J K^T diag(w * sigma') K = sigma' times them)."""

    def __init__(self, field: GeneralHamiltonian):
        self.field, self.net = field, field.energy_net
        self.kw = self.net.K * self.net.w.unsqueeze(1)
        self.kwj = field._canonical(self.kw, -1)

    @functools.cached_property
    def outer(self) -> torch.Tensor:
        n = self.kw.shape[1]
        return (self.kwj.unsqueeze(-1) * self.net.K.unsqueeze(-2)).reshape(-1, n * n)


class _SharedActivation(Linearization):
    """``GeneralHamiltonian.linearizer``: s = sigma(K x + a) evaluated once for F, DF (sigma' =
    ``slope_of_value(s)``, one product with the rows' products: no (batch, n, width) intermediate) and the VJP
    (``_Potential.vjp_at``; <mu, J g> = <c, g> with c = -J mu)."""

    def __init__(self, field: GeneralHamiltonian, constants: _Constants, x: torch.Tensor):
        field.check_input(x)
        net, self.constants = field.energy_net, constants
        self.s = net.activation.fn(net.ridges(x))
        super().__init__(field, x, self.s @ constants.kwj)

    @functools.cached_property
    def slope(self) -> torch.Tensor:
        return self.field.energy_net.activation.slope_of_value(self.s)

    def jacobian(self) -> torch.Tensor:
        n = self.x.shape[-1]
        return (self.slope @ self.constants.outer).reshape(*self.slope.shape[:-1], n, n)

    def vjp(self, cotangent: torch.Tensor, params) -> tuple:
        net = self.field.energy_net
        x_bar, got = net.vjp_at(self.x, self.s, self.slope, self.constants.kw, -self.field._canonical(cotangent, -1))
        return x_bar, net.own(got, params)
