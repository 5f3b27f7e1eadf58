"""Training losses for certified robustness in the L2 norm (logits f(x), labels y, K classes).

- ``hkr_loss(alpha, m)``: alpha * hinge(m) - KR, KR = mean_i f_{y_i}(x_i) - mean_{i, j != y_i} f_j(x_i), the
  hinge-Kantorovich-Rubinstein loss of Serrurier, Mamalet, Gonzalez-Sanz, Boissin, Loubes, del Barrio
  (CVPR 2021) in its multi-class form: the KR term widens every margin, the hinge keeps the classes apart;
- ``lipschitz_margin_loss(eps, temperature)``: cross-entropy of temperature * (f + sqrt(2) L eps (1 - e_y)),
  the Lipschitz-margin training of Tsuzuku, Sato, Sugiyama (NeurIPS 2018): every wrong logit is raised by
  the most an L-Lipschitz f can move it within radius eps, so a zero loss means certified at eps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...checks import positive_real


def multiclass_hinge(logits: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """mean_i sum_{j != y_i} max(0, margin - (f_{y_i} - f_j)) / n_classes (torch's multi_margin_loss)."""
    return F.multi_margin_loss(logits, labels, margin=margin)


def hkr_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 10.0, margin: float = 1.0) -> torch.Tensor:
    """alpha * multiclass_hinge(margin) - (mean true logit - mean wrong logit)."""
    true = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    kr = (logits * true).sum() / len(labels) - (logits * (1 - true)).sum() / (len(labels) * (logits.shape[1] - 1))
    return alpha * multiclass_hinge(logits, labels, margin) - kr


def lipschitz_margin_loss(logits: torch.Tensor, labels: torch.Tensor, eps: float, temperature: float,
                          lipschitz: float = 1.0) -> torch.Tensor:
    """cross_entropy(temperature * (logits + sqrt(2) * lipschitz * eps * (1 - one_hot(labels))))."""
    offset = math.sqrt(2.0) * positive_real("a Lipschitz constant", lipschitz) * eps
    wrong = 1 - F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return F.cross_entropy(positive_real("a temperature", temperature) * (logits + offset * wrong), labels)
