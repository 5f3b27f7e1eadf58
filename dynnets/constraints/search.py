"""Adversarial search for Lipschitz-bound violations: batched gradient ascent on |f(x) - f(y)| / |x - y|,
checking every pair visited. The ratio of a pair carries a round-off error of order eps (|f(x)| + |f(y)|) /
|x - y| (cancellation in both differences), so each ratio r_i is compared with the bound L through the
normalised excess e_i = (r_i - L) / (L (1 + (|x_i| + |y_i|) / |x_i - y_i|)), <= C n eps (n the dimension
times the depth, C small) when the bound holds to round-off.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SearchResult:
    max_ratio: float  # largest |f(x) - f(y)| / |x - y| seen
    max_excess: float  # largest normalised excess e_i over the bound (negative when all pairs respect it)
    n_pairs: int  # number of pairs evaluated (starts x ascent iterations)


def start_pairs(shape, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n float64 starting pairs (x, y): x standard normal of ``shape``, y = x + r d with d a random unit
    direction and r log-uniform in [1e-3, 1] (near pairs probe the Jacobian, far ones the nonlinearity)."""
    x = torch.randn(n, *shape, dtype=torch.float64, generator=generator)
    r = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(math.log(1e-3), 0.0, generator=generator))
    d = torch.randn(n, *shape, dtype=torch.float64, generator=generator)
    d = d / d.flatten(1).norm(dim=1).reshape(-1, *([1] * len(shape)))
    return x, x + r.reshape(-1, *([1] * len(shape))) * d


def adversarial_lipschitz_search(f, x: torch.Tensor, y: torch.Tensor, bound: float, *, steps: int = 50,
                                 lr: float = 0.05) -> SearchResult:
    """Ascend log(|f(x) - f(y)| / |x - y|) from the starting pairs (x_i, y_i) with Adam, in float64."""
    if isinstance(f, nn.Module):
        f = copy.deepcopy(f).to(torch.float64).requires_grad_(False)
    x = x.detach().to(torch.float64).clone().requires_grad_(True)
    y = y.detach().to(torch.float64).clone().requires_grad_(True)
    opt = torch.optim.Adam([x, y], lr=lr)
    max_ratio, max_excess, n = 0.0, -float("inf"), 0
    bound = float(bound)
    for _ in range(steps + 1):
        d_in = (x - y).flatten(1).norm(dim=1)
        d_out = (f(x) - f(y)).flatten(1).norm(dim=1)
        ratio = d_out / d_in
        with torch.no_grad():
            ok = d_in > 0
            scale = 1.0 + (x.flatten(1).norm(dim=1) + y.flatten(1).norm(dim=1)) / d_in
            excess = (ratio - bound) / (bound * scale)
            max_ratio = max(max_ratio, float(ratio[ok].max()))
            max_excess = max(max_excess, float(excess[ok].max()))
            n += int(ok.sum())
        opt.zero_grad()
        (-torch.log(ratio[ok]).sum()).backward()
        opt.step()
    return SearchResult(max_ratio, max_excess, n)
