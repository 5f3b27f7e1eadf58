"""One-step methods Psi^h_F. Each declares which field traits it needs and what it guarantees."""

from ..base import Method
from .cayley import Cayley
from .crank_nicolson import CrankNicolson
from .embedded import BogackiShampine3, DormandPrince5, DormandPrince853, EmbeddedPair
from .implicit import GaussLegendre, ImplicitMidpoint, ImplicitRK, RadauIIA
from .partitioned import StormerVerlet, SymplecticEuler
from .rk import RK4, Euler, ExplicitRK, Heun
from .tableau import (
    BS3,
    BS3_BHAT,
    DOPRI5,
    DOPRI5_BHAT,
    DOPRI5_DENSE,
    EULER,
    GAUSS1,
    GAUSS2,
    GAUSS3,
    HEUN,
    MIDPOINT,
    RADAU_IIA2,
    RADAU_IIA3,
    SSPRK3,
    ButcherTableau,
)
from .tableau import RK4 as RK4_TABLEAU

__all__ = [
    "BS3", "BS3_BHAT", "DOPRI5", "DOPRI5_BHAT", "DOPRI5_DENSE", "BogackiShampine3", "DormandPrince5",
    "DormandPrince853", "EmbeddedPair", "EULER", "GAUSS1", "GAUSS2", "GAUSS3", "HEUN", "MIDPOINT", "RADAU_IIA2",
    "RADAU_IIA3", "RK4", "RK4_TABLEAU", "SSPRK3", "ButcherTableau", "Cayley", "CrankNicolson", "Euler",
    "ExplicitRK", "GaussLegendre", "Heun", "ImplicitMidpoint", "ImplicitRK", "Method", "RadauIIA",
    "StormerVerlet", "SymplecticEuler",
]
