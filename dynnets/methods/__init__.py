"""One-step methods Psi^h_F. Each declares which field traits it needs and what it guarantees."""

from ..base import Method
from .cayley import Cayley
from .crank_nicolson import CrankNicolson
from .partitioned import StormerVerlet, SymplecticEuler
from .rk import RK4, Euler, ExplicitRK, Heun
from .tableau import EULER, HEUN, MIDPOINT, SSPRK3, ButcherTableau
from .tableau import RK4 as RK4_TABLEAU

__all__ = [
    "EULER", "HEUN", "MIDPOINT", "RK4", "RK4_TABLEAU", "SSPRK3", "ButcherTableau", "Cayley", "CrankNicolson",
    "Euler", "ExplicitRK", "Heun", "Method", "StormerVerlet", "SymplecticEuler",
]
