"""Approximation theory, measured: the Presnov decomposition f = grad U + X_S, target maps of R^3,
and the gradient/sphere-preserving flows that approximate them (experiments/presnov.py)."""

from .decomposition import (
                      decompose,
                      gauss_legendre,
                      potential,
                      quadrature_error,
                      sphere_defect,
                      sphere_skew,
                      sphere_tolerance,
                      trotter_flow,
)
from .fit import fit_map, relative_error
from .models import dense_resnet, matched_dense_width, n_params, presnov_flow
from .targets import LinearMap, rotation_shear

__all__ = ["LinearMap", "decompose", "dense_resnet", "fit_map", "gauss_legendre",
           "matched_dense_width", "n_params", "potential", "presnov_flow", "quadrature_error",
           "relative_error", "rotation_shear", "sphere_defect", "sphere_skew", "sphere_tolerance",
           "trotter_flow"]
