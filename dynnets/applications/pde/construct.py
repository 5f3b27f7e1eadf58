"""The slides' approximation theorem made constructive: ConvFD parameters that reproduce a
finite-difference right-hand side exactly (up to round-off).

A right-hand side of the form

    F(U) = L * U + sum_i beta_i (D_i1 * U) (D_i2 * U) ... (D_im_i * U)       (pointwise products)

is written as B * sigma(A * U) with no approximation, using

    x   = relu(x) - relu(-x)
    x^m = relu(x)^m + (-1)^m relu(-x)^m                           (relu^m = "relu", "relu2", ...)
    x_1 ... x_m = 1/(2^(m-1) m!) sum_{eps in {+-1}^m, eps_1 = +1} (prod_j eps_j) (sum_j eps_j x_j)^m

(polarisation). Each power of a stencil combination S * U takes the channel pair S, -S in A (activation
relu^m); B is a delta kernel. Channel counts and tests: docs/fisher.md.

Limits: scalar equations (one channel), products of at most 4 factors (activations up to relu4), no
constant term (that would need a bias); anything else raises ConfigError naming the term.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from ...checks import check_int, real
from ...errors import ConfigError
from ...fields.convfd import ConvFD
from ...systems.stencils import check_stencil, identity, laplacian, pad_kernel

MAX_FACTORS = 4
_POWER_ACT = {1: "relu", 2: "relu2", 3: "relu3", 4: "relu4"}


def _check_terms(terms) -> list[tuple[float, list[torch.Tensor]]]:
    out = []
    for i, term in enumerate(terms):
        try:
            beta, factors = term
        except (TypeError, ValueError):
            raise ConfigError(f"term {i} must be a pair (beta, [D_1, ..., D_m]), got {term!r}") from None
        beta = real(f"term {i}: beta", beta, symbol="beta")
        factors = [check_stencil(torch.as_tensor(d, dtype=torch.float64), f"term {i} factor {j}")
                   for j, d in enumerate(factors)]
        m = len(factors)
        if m == 0:
            raise ConfigError(f"term {i} has no factor: a constant term needs a bias, which the exact "
                              "construction does not use")
        if m > MAX_FACTORS:
            raise ConfigError(f"term {i} is a product of m={m} stencils; the construction supports m <= "
                              f"{MAX_FACTORS} (activations relu..relu{MAX_FACTORS})")
        out.append((beta, factors))
    return out


def polynomial_convfd(linear=None, terms: Sequence = (), *, kernel_size: int | None = None,
                      dtype=torch.float64) -> ConvFD:
    """A ConvFD with F(U) = L * U + sum_i beta_i prod_j (D_ij * U) exactly (module docstring); ``linear``: a
    2-D odd kernel L or None, ``terms``: pairs (beta_i, [D_i1, ..., D_im]) of a number and 2-D odd kernels,
    ``kernel_size``: odd size of the ConvFD kernels (default: the largest stencil)."""
    terms = _check_terms(terms)
    if linear is not None:  # L * U is the degree-1 term (1, [L])
        linear = check_stencil(torch.as_tensor(linear, dtype=torch.float64), "linear stencil")
        terms.insert(0, (1.0, [linear]))
    sizes = [d.shape[0] for _, fs in terms for d in fs]
    if not sizes:
        raise ConfigError("nothing to construct: give a linear stencil or at least one term")
    k = max(sizes) if kernel_size is None else check_int("kernel_size", kernel_size, minimum=1)
    if k < max(sizes) or k % 2 == 0:
        raise ConfigError(f"kernel_size={kernel_size} must be odd and >= the largest stencil ({max(sizes)})")

    # channels: (activation name, A kernel, B weight); each pair (S, -S) shares one coefficient rule
    channels: list[tuple[str, torch.Tensor, float]] = []

    def add_power(s: torch.Tensor, m: int, coefficient: float):
        # coefficient * (S*U)^m = coefficient (relu(S*U)^m + (-1)^m relu(-S*U)^m)
        if coefficient != 0.0 and bool(s.any()):
            channels.extend([(_POWER_ACT[m], s, coefficient), (_POWER_ACT[m], -s, coefficient * (-1) ** m)])

    linear_part = torch.zeros(k, k, dtype=torch.float64)
    for beta, factors in terms:
        factors = [pad_kernel(d, k) for d in factors]
        m = len(factors)
        if m == 1:
            linear_part += beta * factors[0]
        elif all(torch.equal(d, factors[0]) for d in factors[1:]):
            add_power(factors[0], m, beta)
        else:
            scale = beta / (2 ** (m - 1) * math.factorial(m))
            for signs in itertools.product((1.0, -1.0), repeat=m - 1):
                eps = (1.0, *signs)
                add_power(sum(e * d for e, d in zip(eps, factors, strict=True)), m, scale * math.prod(eps))
    add_power(linear_part, 1, 1.0)
    if not channels:
        raise ConfigError("the right-hand side is identically zero; nothing to construct")

    channels.sort(key=lambda c: c[0])  # group equal activations (one call per group)
    net = ConvFD(1, len(channels), k, [c[0] for c in channels]).to(torch.float64)  # copy exactly
    delta = identity(k, torch.float64)
    with torch.no_grad():
        net.A.copy_(torch.stack([c[1] for c in channels]).unsqueeze(1))
        net.B.copy_(torch.stack([c[2] * delta for c in channels]).unsqueeze(0))
    return net.to(dtype)


def exact_convfd(alpha: float, dx: float, stencil: str = "5pt", reaction: tuple[float, float] = (1.0, -1.0),
                 *, kernel_size: int | None = None, dtype=torch.float64) -> ConvFD:
    """ConvFD parameters with F(U) = alpha L * U + r1 U + r2 U^2 exactly: the default reaction (1, -1) is
    Fisher's U - U^2 (= FisherField2D), (0, 0) the heat equation (= HeatField2D). Channels: relu(K*U),
    relu(-K*U) with K = alpha L + r1 delta, and relu2(U), relu2(-U) (when r2 != 0)."""
    alpha = real("alpha", alpha)
    r1, r2 = (float(v) for v in reaction)
    one = identity(1)
    terms = [(r1, [one])] if r1 != 0.0 else []
    if r2 != 0.0:
        terms.append((r2, [one, one]))
    return polynomial_convfd(alpha * laplacian(stencil, dx), terms, kernel_size=kernel_size, dtype=dtype)
