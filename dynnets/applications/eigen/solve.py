"""``yi_eig``: all eigenpairs of a symmetric matrix from the Yi eigen-ODE."""

from __future__ import annotations

import numpy as np

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
    """
    a = check_symmetric(A)
    device = a.device
    field = YiField(a.cpu())
    rng = np.random.default_rng(seed)
    if procedure == "robust":
        from .deflation import robust_eig

        return robust_eig(field, method=method, tol=tol, rng=rng, device=device, **options)
    if procedure == "paper":
        if method is not None:
            raise ConfigError("procedure='paper' is forward Euler by definition; do not pass a method")
        from .paper import paper_eig

        return paper_eig(field, rng=rng, device=device, **options)
    if procedure == "network":
        if method is not None:
            raise ConfigError("procedure='network' trains trial functions; do not pass a method")
        from .network import network_eig

        return network_eig(field, seed=seed, device=device, **options)
    raise ConfigError(f"procedure must be one of {PROCEDURES}, got {procedure!r}")
