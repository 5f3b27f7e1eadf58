"""Adversarial evaluation in the L2 norm: margins, L2-PGD, certified accuracy (losses: ``losses.py``)."""

from __future__ import annotations

import math

import torch

from ...checks import real


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """f_y - max_{j != y} f_j per row (positive iff correctly classified with a unique maximum)."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    return true - logits.scatter(1, labels[:, None], -math.inf).max(dim=1).values


def certified(logits: torch.Tensor, labels: torch.Tensor, lipschitz: float, eps: float) -> torch.Tensor:
    """Mask of margin > sqrt(2) L eps: for L-Lipschitz logits the label holds within ||delta||_2 <= eps
    (Tsuzuku, Sato, Sugiyama 2018)."""
    lipschitz = real("the Lipschitz bound L of a certificate", lipschitz, minimum=0.0, symbol="L")
    return margins(logits, labels) > math.sqrt(2.0) * lipschitz * eps


def project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Each row of ``delta`` scaled back into the ball ||delta_i||_2 <= eps (rows inside are unchanged)."""
    norm = delta.flatten(1).norm(dim=1).reshape(-1, *([1] * (delta.dim() - 1)))
    return delta * torch.clamp(eps / norm.clamp_min(1e-30), max=1.0)


def pgd_l2(model, x: torch.Tensor, labels: torch.Tensor, eps: float, *, steps: int = 20,
           step_size: float | None = None, box: tuple[float, float] | None = (0.0, 1.0),
           targets: int = 3) -> torch.Tensor:
    """Mask of the inputs still correctly classified at *every* iterate of L2 projected gradient ascent: one
    untargeted run (negative margin), then ``targets`` runs ascending f_t - f_y for the most likely wrong
    classes t; ||delta||_2 <= eps, x + delta inside ``box``. Parameters receive no gradient."""
    eps = real("eps", eps, minimum=0.0)
    with torch.no_grad():
        logits = model(x)
        robust = margins(logits, labels) > 0
    if eps == 0:
        return robust
    step_size = 2.5 * eps / steps if step_size is None else step_size
    ranked = logits.scatter(1, labels[:, None], -math.inf).argsort(dim=1, descending=True)
    for run in range(min(int(targets), logits.shape[1] - 1) + 1):
        target = None if run == 0 else ranked[:, run - 1]
        delta = torch.zeros_like(x)
        for _ in range(steps):
            delta.requires_grad_(True)
            out = model(x + delta)
            loss = (-margins(out, labels).sum() if target is None
                    else (out.gather(1, target[:, None]) - out.gather(1, labels[:, None])).sum())
            (g,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                g = g / g.flatten(1).norm(dim=1).clamp_min(1e-30).reshape(-1, *([1] * (g.dim() - 1)))
                delta = project_l2(delta + step_size * g, eps)
                if box is not None:
                    delta = (x + delta).clamp(*box) - x
                robust &= margins(model(x + delta), labels) > 0
    return robust


def soundness_violations(certified_mask: torch.Tensor, robust_mask: torch.Tensor) -> int:
    """Number of inputs certified yet broken by the attack (a wrong bound or a bug: must be 0)."""
    return int((certified_mask & ~robust_mask).sum())
