"""What every eigen-solver returns, and the seed's accuracy measures (Puleo et al. 2022, eqs. 31-32)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import DynnetsError


class ConvergenceError(DynnetsError, RuntimeError):
    """An iterative eigen-solver did not reach its tolerance within its step budget."""


@dataclass
class EigenResult:
    """Eigenpairs found by a solver, by ascending eigenvalue: ``eigenvalues`` (k,), ``eigenvectors`` (n, k,
    unit columns) float64, k <= n only for the network search (``pairs_found``); ``steps`` per pair in the
    order found; ``residuals`` ||A v - lambda v||; ``seconds`` wall time."""

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    procedure: str
    seconds: float
    steps: list = field(default_factory=list)
    residuals: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    @property
    def pairs_found(self) -> int:
        return int(self.eigenvalues.numel())

    @property
    def total_steps(self) -> int:
        return int(sum(self.steps))


def finish(a: np.ndarray, vectors: list, procedure: str, seconds: float, steps: list, device, info=None) -> EigenResult:
    """Normalise the found vectors, take Rayleigh quotients (eq. 20) and sort ascending."""
    v = (np.stack([np.asarray(x, dtype=np.float64) for x in vectors], axis=1) if vectors
         else np.zeros((a.shape[0], 0)))
    v = v / np.linalg.norm(v, axis=0, keepdims=True)
    av = a @ v
    lam = np.einsum("ij,ij->j", v, av)
    res = np.linalg.norm(av - v * lam, axis=0)
    order = np.argsort(lam, kind="stable")
    t = lambda z: torch.as_tensor(np.ascontiguousarray(z), dtype=torch.float64, device=device)  # noqa: E731
    return EigenResult(t(lam[order]), t(v[:, order]), procedure, seconds, list(steps), t(res[order]), dict(info or {}))


def accuracy(a, eigenvalues, eigenvectors, cluster_tol: float = 1e-9) -> dict:
    """Found pairs against ``numpy.linalg.eigh``: eps_i = |(lambda_i - lambda_np) / lambda_np| (eq. 31) and
    Lambda_i = <v_i, v_np>^2 / (|v_i|^2 |v_np|^2) - 1 (eq. 32), matched by index for a complete spectrum, else
    to the nearest reference eigenvalue; for a repeated one (within ``cluster_tol`` of max|lambda|) against
    its eigenspace E: |P_E v_i|^2 / |v_i|^2 - 1."""
    a, lam, vec = (torch.as_tensor(v).detach().cpu().double().numpy() for v in (a, eigenvalues, eigenvectors))
    lam, vec = lam.reshape(-1), vec.reshape(a.shape[0], -1)
    w, q = np.linalg.eigh(a)
    n, k = a.shape[0], lam.size
    idx = np.arange(n) if k == n else np.array([int(np.argmin(np.abs(w - x))) for x in lam], dtype=int)
    scale = max(float(np.abs(w).max()), np.finfo(float).tiny)
    eps, big_lambda = np.empty(k), np.empty(k)
    for i in range(k):
        ref = w[idx[i]]
        eps[i] = abs(lam[i] - ref) / abs(ref) if ref != 0 else abs(lam[i])
        proj = q[:, np.abs(w - ref) <= cluster_tol * scale].T @ vec[:, i]  # onto the eigenspace of ref
        big_lambda[i] = float(proj @ proj) / float(vec[:, i] @ vec[:, i]) - 1.0
    return {"eigenvalues_numpy": w, "matched_numpy": w[idx], "eps": eps, "Lambda": big_lambda,
            "max_eps": float(eps.max()) if k else float("nan"),
            "max_abs_Lambda": float(np.abs(big_lambda).max()) if k else float("nan"),
            "distinct_matched": int(len(set(idx.tolist())))}
