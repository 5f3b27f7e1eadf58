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

# 2-D periodic tooling (issue 7): grids, stencils as convolution kernels, heat/Fisher fields, the exact
# ConvFD construction and reference data live in their own modules.
from . import construct, data, fisher, periodic2d, stencils2d  # noqa: E402
from .construct import exact_convfd, polynomial_convfd  # noqa: E402
from .fisher import FisherField2D, HeatField2D  # noqa: E402
from .periodic2d import PeriodicGrid2D, apply_stencil, stencil_symbol  # noqa: E402

__all__ += ["FisherField2D", "HeatField2D", "PeriodicGrid2D", "apply_stencil", "construct", "data",
            "exact_convfd", "fisher", "periodic2d", "polynomial_convfd", "stencil_symbol", "stencils2d"]
