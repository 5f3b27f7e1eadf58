"""PDE building blocks: grids, finite-difference stencils, semi-discretised fields (heat), classical
solvers as dynnets flows, and the trial-function network solver.

1-D things are named so: ``UniformGrid1D``, ``HeatField1D``."""

from .grids import UniformGrid1D
from .heat import HeatField1D, sine_mode_solution
from .heat_solvers import crank_nicolson, ftcs, heat_flow, solve_heat, step_count
from .stencils import dirichlet_vector, second_difference, second_difference_matrix

__all__ = [
    "HeatField1D",
    "UniformGrid1D",
    "crank_nicolson",
    "dirichlet_vector",
    "ftcs",
    "heat_flow",
    "second_difference",
    "second_difference_matrix",
    "sine_mode_solution",
    "solve_heat",
    "step_count",
]
