"""``yi_eig``: all eigenpairs of a symmetric matrix from the Yi eigen-ODE."""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch

from ...base import Method
from ...checks import check_int, real
from ...errors import ConfigError, ConfigTypeError
from ...systems.yi import YiField, check_symmetric
from .result import EigenResult

__all__ = ["PROCEDURES", "TOL_RANGE", "yi_eig"]

PROCEDURES = ("robust", "paper", "network")
#: [smallest, largest) tol of the robust procedure: below 16 eps the round-off of A x alone (about
#: sqrt(n) eps ||A||_2 <= sqrt(n) eps ||A||_F) can exceed tol ||A||_F; at 1 every unit vector passes
#: (||A x - rho x|| <= ||A||_2 <= ||A||_F), so nothing would be an eigenvector test
TOL_RANGE = (16 * float(np.finfo(np.float64).eps), 1.0)


def yi_eig(A, method=None, procedure: str = "robust", tol: float = 1e-10, seed: int = 0, **options) -> EigenResult:
    """Eigenvalues (ascending) and an orthonormal eigenbasis of the symmetric matrix ``A`` via the Yi ODE.

    procedure="robust" (default, ``deflation``): residual stopping ||A x - rho x|| <= tol ||A||_F (tol in
        [16 eps, 1)) with steps of ``method`` (default: the closed-form Cayley step, best step size); every
        pair has ||A v - lambda v|| <= sqrt(n) tol ||A||_F. Options: ``order`` ("descending" |
        "alternating"), ``max_steps`` (per pair, then ``ConvergenceError``), ``step_factor``.
    procedure="paper": the seed's forward-Euler procedure; no ``method`` or ``tol``. Options: ``x0``,
        ``t_final``, ``steps``, ``progress``.
    procedure="network" (``network``): trial-function networks; may return fewer than n pairs.

    ``A``: array-like, square, finite, symmetric to round-off (else ``NotSymmetricError``). Results are
    float64 tensors on A's device; ``seed`` makes runs deterministic. "robust" and "network" scale A by a
    power of two to max |A_ij| in [1/2, 1) (exact; eigenvalues scaled back); "paper" uses A as given, and
    its forward-Euler step is refused where unstable.
    """
    tol, solver = _check_arguments(procedure, method, tol, options)
    a = check_symmetric(A)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0, maximum=2**63 - 1))
    if procedure == "paper":
        return solver(YiField(a.cpu()), rng=rng, device=a.device, **options)
    exponent = math.frexp(float(a.abs().max()))[1]  # max |A_ij| = m 2^e with m in [1/2, 1) (e = 0 for A = 0)
    field = YiField(_times_power_of_two(a.cpu(), -exponent))
    own = dict(method=method, tol=tol, rng=rng) if procedure == "robust" else dict(seed=seed)
    result = solver(field, device=a.device, **own, **options)
    result.eigenvalues = _times_power_of_two(result.eigenvalues, exponent)
    result.residuals = _times_power_of_two(result.residuals, exponent)
    return result


def _check_arguments(procedure: str, method, tol, options: dict):
    """Refuse a bad procedure, option, method or (robust) tol before any work; returns (tol, the solver)."""
    if procedure == "robust":
        from .deflation import robust_eig as solver
    elif procedure == "network":
        from .network import network_eig as solver
    elif procedure == "paper":
        from .paper import paper_eig as solver
    else:
        raise ConfigError(f"procedure must be one of {PROCEDURES}, got {procedure!r}")
    internal = {"field", "rng", "device", "method", "seed", "tol"}
    accepted = sorted(set(inspect.signature(solver).parameters) - internal)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"procedure={procedure!r} takes no option {', '.join(map(repr, unknown))} "
                          f"(its options: {', '.join(accepted)})")
    if method is not None and not isinstance(method, Method):
        raise ConfigTypeError(f"method must be None or a dynnets.methods.Method (e.g. dn.methods.Cayley()), "
                              f"got {method!r} of type {type(method).__name__}")
    if method is not None and procedure != "robust":
        why = "trains trial functions" if procedure == "network" else "is forward Euler by definition"
        raise ConfigError(f"procedure={procedure!r} {why}; do not pass a method")
    if procedure != "robust":
        return tol, solver
    low, high = TOL_RANGE
    value = real("tol", tol)
    if not low <= value < high:
        raise ConfigError(f"tol must be in [16 eps, 1) = [{low:.3g}, {high:g}) (the residual test ||A x - rho x|| "
                          "<= tol ||A||_F: below, round-off; from 1 on, every vector passes), "
                          f"got tol={value:g}")
    return value, solver


def _times_power_of_two(x: torch.Tensor, exponent: int) -> torch.Tensor:
    """x * 2^exponent, exact (barring overflow of the result), in two factors so that neither overflows."""
    half = exponent // 2
    return x * 2.0**half * 2.0 ** (exponent - half)
