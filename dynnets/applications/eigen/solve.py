"""``yi_eig``: all eigenpairs of a symmetric matrix from the Yi eigen-ODE."""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch

from ...checks import check_int
from ...errors import ConfigError
from ...systems.yi import YiField, check_symmetric
from .result import EigenResult

__all__ = ["PROCEDURES", "yi_eig"]

PROCEDURES = ("robust", "paper", "network")


def yi_eig(A, method=None, procedure: str = "robust", tol: float = 1e-10, seed: int = 0, **options) -> EigenResult:
    """Eigenvalues (ascending) and an orthonormal eigenbasis of the symmetric matrix ``A`` via the Yi ODE.

    procedure="robust" (default): deflation on the orthogonal complement and residual stopping
        ||A x - rho x|| <= tol ||A||_F with large monotone steps of ``method`` (default: the Cayley step in
        closed form; any ``dynnets.methods.Method`` works); see ``dynnets.applications.eigen.deflation``. Options:
        ``order`` ("descending" | "alternating"), ``max_steps``, ``step_factor``.
    procedure="paper": the seed's forward-Euler procedure (t in [0, 8], 2e5 steps, Gram-Schmidt between
        runs, Rayleigh quotients); ``method`` and ``tol`` do not apply. Options: ``x0`` (first start,
        e.g. the seed's eq. 27), ``t_final``, ``steps``, ``progress``.
    procedure="network": trial-function networks trained in one batched computation
        (``dynnets.applications.eigen.network``); may return fewer than n pairs (``result.pairs_found``).

    ``A`` is any array-like; it must be square, finite and symmetric to round-off (else
    ``NotSymmetricError``). Results are float64 tensors on A's device; ``seed`` makes runs deterministic.

    The problem is scale-invariant, and "robust" and "network" solve it so: A is scaled by a power of two
    (exact in floating point) to max |A_ij| in [1/2, 1) and the eigenvalues scaled back, so any finite
    symmetric matrix works (1e160 A would overflow ||A||_F, 1e-160 A underflow g.g). "paper" reproduces the
    seed's fixed time interval on A as given, so its forward-Euler step is refused where it is unstable.
    """
    if procedure not in PROCEDURES:
        raise ConfigError(f"procedure must be one of {PROCEDURES}, got {procedure!r}")
    _check_options(procedure, options)
    a = check_symmetric(A)
    device = a.device
    rng = np.random.default_rng(check_int("seed", seed, minimum=0, maximum=2**63 - 1))
    if procedure in ("robust", "network"):
        big = float(a.abs().max())
        exponent = 0 if big == 0.0 else math.frexp(big)[1]  # big = m 2^e with m in [1/2, 1)
        field = YiField(_times_power_of_two(a.cpu(), -exponent))
        if procedure == "robust":
            from .deflation import robust_eig

            result = robust_eig(field, method=method, tol=tol, rng=rng, device=device, **options)
        else:
            if method is not None:
                raise ConfigError("procedure='network' trains trial functions; do not pass a method")
            from .network import network_eig

            result = network_eig(field, seed=seed, device=device, **options)
        result.eigenvalues = _times_power_of_two(result.eigenvalues, exponent)
        result.residuals = _times_power_of_two(result.residuals, exponent)
        return result
    field = YiField(a.cpu())
    if procedure == "paper":
        if method is not None:
            raise ConfigError("procedure='paper' is forward Euler by definition; do not pass a method")
        from .paper import paper_eig

        return paper_eig(field, rng=rng, device=device, **options)
    raise ConfigError(f"procedure must be one of {PROCEDURES}, got {procedure!r}")


def _check_options(procedure: str, options: dict) -> None:
    """Refuse an option the chosen procedure does not take (one line naming it and the accepted ones)."""
    if procedure == "robust":
        from .deflation import robust_eig as target
    elif procedure == "network":
        from .network import network_eig as target
    else:
        from .paper import paper_eig as target
    internal = {"field", "rng", "device", "method", "seed", "tol"}
    accepted = sorted(set(inspect.signature(target).parameters) - internal)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"procedure={procedure!r} takes no option {', '.join(map(repr, unknown))} "
                          f"(its options: {', '.join(accepted)})")


def _times_power_of_two(x: torch.Tensor, exponent: int) -> torch.Tensor:
    """x * 2^exponent, exact (barring overflow of the result), in two factors so that neither overflows."""
    half = exponent // 2
    return x * 2.0**half * 2.0 ** (exponent - half)
