"""Training losses for certified robustness in the L2 norm (logits f(x), labels y, K classes)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...checks import positive_real


def multiclass_hinge(logits: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """mean_i sum_{j != y_i} max(0, margin - (f_{y_i} - f_j)) / n_classes (torch's multi_margin_loss)."""
    return F.multi_margin_loss(logits, labels, margin=margin)


def hkr_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 10.0, margin: float = 1.0) -> torch.Tensor:
    """alpha * hinge(margin) - KR, KR = mean_i f_{y_i}(x_i) - mean_{i, j != y_i} f_j(x_i): the multi-class
    hinge-Kantorovich-Rubinstein loss (Serrurier, Mamalet, Gonzalez-Sanz, Boissin, Loubes, del Barrio, CVPR
    2021); the KR term widens every margin, the hinge keeps the classes apart."""
    true = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    kr = (logits * true).sum() / len(labels) - (logits * (1 - true)).sum() / (len(labels) * (logits.shape[1] - 1))
    return alpha * multiclass_hinge(logits, labels, margin) - kr


def lipschitz_margin_loss(logits: torch.Tensor, labels: torch.Tensor, eps: float, temperature: float,
                          lipschitz: float = 1.0) -> torch.Tensor:
    """cross_entropy(temperature * (f + sqrt(2) L eps (1 - e_y))), L = ``lipschitz``: the Lipschitz-margin
    training of Tsuzuku, Sato, Sugiyama (NeurIPS 2018); every wrong logit is raised by the most an
    L-Lipschitz f can move it within radius eps, so a zero loss means certified at eps."""
    offset = math.sqrt(2.0) * positive_real("a Lipschitz constant", lipschitz) * eps
    wrong = 1 - F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return F.cross_entropy(positive_real("a temperature", temperature) * (logits + offset * wrong), labels)
