"""Adversarial evaluation in the L2 norm: margins, L2-PGD, certified accuracy (losses: ``losses.py``).

Certification (Tsuzuku, Sato, Sugiyama 2018): if x -> logits f(x) is L-Lipschitz in the 2-norm, each
difference f_y - f_j is sqrt(2) L-Lipschitz (the row e_y - e_j has norm sqrt 2), so a correctly
classified x with margin f_y(x) - max_{j != y} f_j(x) > sqrt(2) L eps keeps its label under every
perturbation ||delta||_2 <= eps. Attacks explore only some perturbations, so on every input
"certified" must imply "not broken by the attack": ``soundness_violations`` counts the exceptions,
which can only come from a wrong bound (or a bug).
"""

from __future__ import annotations

import math

import torch

from ...errors import ConfigError

__all__ = ["certified", "margins", "pgd_l2", "soundness_violations"]


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """f_y - max_{j != y} f_j per row (positive iff correctly classified with a unique maximum)."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], -math.inf)
    return true - others.max(dim=1).values


def certified(logits: torch.Tensor, labels: torch.Tensor, lipschitz: float, eps: float) -> torch.Tensor:
    """Boolean mask: margin > sqrt(2) * L * eps (certifiably correct within the L2 ball of radius eps)."""
    if not (math.isfinite(lipschitz) and lipschitz >= 0):
        raise ConfigError(f"certification needs a finite Lipschitz bound L >= 0, got L={lipschitz}")
    return margins(logits, labels) > math.sqrt(2.0) * lipschitz * eps


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def pgd_l2(model, x: torch.Tensor, labels: torch.Tensor, eps: float, *, steps: int = 20,
           step_size: float | None = None, box: tuple[float, float] | None = (0.0, 1.0),
           targets: int = 3) -> torch.Tensor:
    """L2 projected gradient ascent; returns a bool mask of the inputs still correctly classified at
    *every* iterate of every run (the robust ones).

    One untargeted run ascends the negative margin max_{j != y} f_j - f_y; then ``targets`` targeted runs
    ascend f_t - f_y for the t = 1st, 2nd, ... most likely wrong classes of the clean input (the greedy
    untargeted direction can miss a nearer boundary of another class). Perturbations stay in
    ||delta||_2 <= eps and, with ``box``, keep x + delta inside the pixel range. Model parameters receive
    no gradient."""
    if eps < 0 or not math.isfinite(eps):
        raise ConfigError(f"eps must be finite and >= 0, got eps={eps}")
    with torch.no_grad():
        logits = model(x)
        robust = margins(logits, labels) > 0
    if eps == 0:
        return robust
    step_size = 2.5 * eps / steps if step_size is None else step_size
    ranked = logits.scatter(1, labels[:, None], -math.inf).argsort(dim=1, descending=True)
    n_targets = min(int(targets), logits.shape[1] - 1)
    for run in range(n_targets + 1):
        target = None if run == 0 else ranked[:, run - 1]
        delta = torch.zeros_like(x)
        for _ in range(steps):
            delta.requires_grad_(True)
            out = model(x + delta)
            if target is None:
                loss = -margins(out, labels).sum()
            else:
                loss = (out.gather(1, target[:, None]) - out.gather(1, labels[:, None])).sum()
            (g,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                g = g / _bcast(g.flatten(1).norm(dim=1).clamp_min(1e-30), g)
                delta = delta + step_size * g
                norm = _bcast(delta.flatten(1).norm(dim=1), delta)
                delta = delta * torch.clamp(eps / norm.clamp_min(1e-30), max=1.0)
                if box is not None:
                    delta = (x + delta).clamp(*box) - x
                robust &= margins(model(x + delta), labels) > 0
    return robust


def soundness_violations(certified_mask: torch.Tensor, robust_mask: torch.Tensor) -> int:
    """Number of inputs certified yet broken by the attack (must be 0)."""
    return int((certified_mask & ~robust_mask).sum())
