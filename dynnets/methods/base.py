"""The interface every one-step method implements. Methods are stateless and never import fields:
they talk to a field through its traits (``dynnets.structure``) and the small interface a trait
promises (``partition()``, ``skew(x)``, ...)."""

from __future__ import annotations

import torch

from ..errors import IncompatibleFieldError, NotCertifiedError, NotInvertibleError


class Method:
    """One step x -> Psi^h_F(x) of a numerical integrator."""

    name: str = "method"
    order: int = 0
    #: traits (``dynnets.structure.Trait`` classes) a field must declare to be integrable by this method
    requires: tuple = ()

    def check(self, field) -> None:
        """Refuse a field this method cannot integrate (TypeError naming both)."""
        traits = getattr(field, "traits", frozenset())
        for needed in self.requires:
            if not any(isinstance(t, needed) for t in traits):
                raise IncompatibleFieldError(
                    f"method {self.name} needs a field with trait {needed.__name__}, but "
                    f"{type(field).__name__} declares {sorted(type(t).__name__ for t in traits) or 'none'}"
                )

    def check_step(self, field, h: float) -> None:
        """Refuse a step size this method cannot use on this field (StepSizeError). The default
        checks nothing; explicit methods ask fixed classical fields (heat, ...) for their stability
        limit through the field's ``check_explicit_step`` hook."""

    def step(self, field, x: torch.Tensor, h) -> torch.Tensor:
        raise NotImplementedError

    def guarantees(self, field, h) -> frozenset:
        """The properties of Psi^h_F guaranteed by this (field, method) pair."""
        return frozenset()

    def invertible(self, field) -> bool:
        return False

    def inverse(self, field, y: torch.Tensor, h) -> torch.Tensor:
        raise NotInvertibleError(
            f"{self.name} applied to {type(field).__name__} has no explicit inverse"
        )

    def lipschitz_bound(self, field, h) -> float:
        raise NotCertifiedError(
            f"no certified Lipschitz bound for {self.name} applied to {type(field).__name__}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
