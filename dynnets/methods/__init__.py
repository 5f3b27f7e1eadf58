"""One-step methods Psi^h_F. Each declares which field traits it needs and what it guarantees.

The named Butcher tableaux are in ``dynnets.methods.tableaux`` (``tableaux.CLASSIC_RK4``, ...); a method
class runs one of them, ``ExplicitRK(tableau)`` / ``ImplicitRK(tableau)`` / ``EmbeddedPair(tableau)`` any.
"""

from ..base import Method
from . import tableaux
from .cayley import Cayley
from .crank_nicolson import CrankNicolson
from .embedded import BogackiShampine3, DormandPrince5, DormandPrince853, EmbeddedPair
from .implicit import GaussLegendre, ImplicitMidpoint, ImplicitRK, RadauIIA
from .partitioned import StormerVerlet, SymplecticEuler
from .rk import RK4, Euler, ExplicitRK, Heun
from .tableau import ButcherTableau, EmbeddedTableau

__all__ = [
    "BogackiShampine3", "ButcherTableau", "Cayley", "CrankNicolson", "DormandPrince5", "DormandPrince853",
    "EmbeddedPair", "EmbeddedTableau", "Euler", "ExplicitRK", "GaussLegendre", "Heun", "ImplicitMidpoint",
    "ImplicitRK", "Method", "RK4", "RadauIIA", "StormerVerlet", "SymplecticEuler", "tableaux",
]
