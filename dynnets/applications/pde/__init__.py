"""PDE applications on the fixed systems of ``dynnets.systems`` (grids, stencils, heat and Fisher fields):
reference data (``data``), the exact ConvFD construction (``construct``), the slides' one-step error
splitting (``error_split``), finite-difference heat solvers as flows (``heat_solvers``), a CNN
baseline (``baselines``)."""

from . import baselines, construct, data, error_split, heat_solvers
from .construct import exact_convfd, polynomial_convfd
from .heat_solvers import crank_nicolson, ftcs, heat_flow, solve_heat, step_count

__all__ = ["baselines", "construct", "crank_nicolson", "data", "error_split", "exact_convfd", "ftcs", "heat_flow",
           "heat_solvers", "polynomial_convfd", "solve_heat", "step_count"]
