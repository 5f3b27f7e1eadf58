"""Eigenpairs of symmetric matrices from the Yi eigen-ODE (Yi, Fu, Tang 2004; Puleo et al. 2022): ``yi_eig``
(robust, the seed's procedure, or trial-function networks) and the seed's ``accuracy`` measures (eqs. 31-32);
examples in docs/eigen.md. The field itself is a fixed system: ``dynnets.systems.YiField``."""

from ...systems.yi import NotSymmetricError, YiField, check_symmetric, spread_bound  # noqa: F401
from .result import ConvergenceError, EigenResult, accuracy
from .solve import PROCEDURES, yi_eig

#: The seed's matrix (eq. 26) and first start (eq. 27).
SEED_MATRIX = (
    (-0.112, -0.399, -0.259, 0.107, -0.473, -0.479),
    (-0.399, 1.297, 0.359, 0.428, 0.678, 0.719),
    (-0.259, 0.359, -0.855, 0.526, -0.632, 0.945),
    (0.107, 0.428, 0.526, 0.144, -1.579, 0.175),
    (-0.473, 0.678, -0.632, -1.579, -0.769, -0.515),
    (-0.479, 0.719, 0.945, 0.175, -0.515, -0.015),
)
SEED_X0 = (-0.996, -0.442, -0.726, 0.422, -0.488, 0.322)

__all__ = ["PROCEDURES", "SEED_MATRIX", "SEED_X0", "ConvergenceError", "EigenResult", "NotSymmetricError",
           "YiField", "accuracy", "check_symmetric", "spread_bound", "yi_eig"]
