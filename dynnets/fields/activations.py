"""Named activation functions with their global Lipschitz constants (used by certified bounds).

``relu2`` = max(0, x)^2 is the ConvFD activation of the seed slides; it is not globally Lipschitz
(constant ``inf``), so no certified bound is claimed for fields that use it; nor for ``relu3``,
``relu4`` = max(0, x)^3, max(0, x)^4 (exact products of 3 and 4 factors in ``dynnets.pde.construct``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    lipschitz: float  # sup |sigma'|, math.inf when unbounded


def _relu2(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x).square()


def _relu3(x: torch.Tensor) -> torch.Tensor:
    r = torch.relu(x)
    return r * r * r


def _relu4(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x).square().square()


ACTIVATIONS = {
    a.name: a
    for a in (
        Activation("tanh", torch.tanh, 1.0),
        Activation("sigmoid", torch.sigmoid, 0.25),
        Activation("relu", torch.relu, 1.0),
        Activation("relu2", _relu2, math.inf),
        Activation("relu3", _relu3, math.inf),  # max(0, x)^3: products of 3 stencils (pde.construct)
        Activation("relu4", _relu4, math.inf),
        Activation("softplus", F.softplus, 1.0),
        Activation("sin", torch.sin, 1.0),
        Activation("silu", F.silu, 1.1),  # sup |d/dx x sigmoid(x)| = 1.0998...
        Activation("identity", lambda x: x, 1.0),
    )
}


def get_activation(name: str) -> Activation:
    """Look up an activation by name; an unknown name raises ConfigError listing the choices."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None
