"""Choosing among restarts or candidates by a validation score the caller supplies, never by the training
loss alone, and never a candidate that diverges (docs/training.md)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..checks import real
from ..errors import ConfigError, DivergenceError


@dataclass
class Choice:
    index: int
    scores: list[float]                       # per candidate (nan for a rejected one)
    rejected: dict[int, str] = field(default_factory=dict)  # index -> reason


def _curve(value, i: int) -> list[float]:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().reshape(-1).tolist()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = [value]
    try:
        curve = [float(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(f"score of candidate {i} is {type(value).__name__}; expected a number or a sequence "
                          "of numbers") from None
    if not curve:
        raise ConfigError(f"score of candidate {i} is empty")
    return curve


def divergence(curve, limit: float | None = None, grow: float | None = None) -> tuple[int, str] | None:
    """The first position k at which a curve (numbers, or per-step states reduced to their largest
    magnitude) is not finite, exceeds ``limit``, or exceeds ``grow`` times its first value, with the reason;
    None when it does neither. The one divergence rule of candidate selection and of the experiment
    runner's rollout check."""
    values = [float(v) for v in torch.as_tensor(curve).detach().double().reshape(len(curve), -1).abs().amax(dim=1)]
    first = max(values[0], torch.finfo(torch.float64).tiny) if values else 1.0
    for k, v in enumerate(values):
        if not math.isfinite(v):
            return k, f"value {v} at step {k}"
        if limit is not None and v > limit:
            return k, f"value {v:.3g} > limit {limit:.3g} at step {k}"
        if grow is not None and v > grow * first:
            return k, f"value {v:.3g} > {grow:g} x step 0 at step {k}"
    return None


def choose(candidates: Sequence, score: Callable, *, limit: float | None = None) -> Choice:
    """The candidate with the smallest validation score (ties: the first). ``score(candidate)``: a number or a
    curve (its last value counts); a curve with a non-finite value or one above ``limit`` is rejected; if all
    are rejected, DivergenceError names each one's reason."""
    if len(candidates) == 0:
        raise ConfigError("choose needs at least one candidate")
    if limit is not None:
        real("limit", limit, finite=False)
    scores, rejected = [], {}
    for i, candidate in enumerate(candidates):
        curve = _curve(score(candidate), i)
        found = divergence(curve, limit)
        if found is not None:
            rejected[i] = found[1]
        scores.append(math.nan if found is not None else curve[-1])
    kept = [i for i in range(len(candidates)) if i not in rejected]
    if not kept:
        detail = "; ".join(f"candidate {i}: {r}" for i, r in rejected.items())
        raise DivergenceError(f"every candidate diverged on validation ({detail}) (rule: finite values <= limit "
                              f"{limit})")
    return Choice(index=min(kept, key=lambda i: scores[i]), scores=scores, rejected=rejected)
