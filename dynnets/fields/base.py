"""The base class of parametrised vector fields F_theta."""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_size  # noqa: F401  (re-exported: fields import it from here)
from ..errors import NotCertifiedError, ShapeError


class Field(nn.Module):
    """A vector field x -> F(x) as a torch Module; x has shape (batch, dim) (or (batch, C, H, W)).

    Subclasses set ``traits`` (a frozenset of ``dynnets.structure.Trait``) to declare their structure,
    and may override ``lipschitz_bound`` with an exactly computed bound of Lip(F).
    """

    traits: frozenset = frozenset()
    dim: int

    def check_input(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.dim:
            raise ShapeError(
                f"{type(self).__name__} expects inputs whose last dimension is dim={self.dim}, "
                f"got shape {tuple(x.shape)}"
            )

    def lipschitz_bound(self) -> float:
        """A certified upper bound of Lip(F) in the 2-norm (exact norms only)."""
        raise NotCertifiedError(f"{type(self).__name__} provides no certified Lipschitz bound")

    def linear_invariants(self) -> tuple:
        from ..structure import ConservesLinear

        return tuple(t for t in self.traits if isinstance(t, ConservesLinear))


def spectral_norm(w: torch.Tensor) -> torch.Tensor:
    """Exact largest singular value of a matrix (SVD), never a power-iteration estimate."""
    return torch.linalg.matrix_norm(w.detach(), ord=2)
