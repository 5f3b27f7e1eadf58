"""Fixed and linear layers with exactly computed Lipschitz bounds (from the stored tensors, in float64), on
inputs with any leading (batch) dimensions, composed by ``dynnets.Flow`` like steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .. import structure
from ..base import Layer, certified_bound
from ..checks import check_int, check_size, real_array
from ..errors import ConfigError, ShapeError
from ..linalg import spectral_norm
from .parametrize import Orthogonal, SpectralNormBound

__all__ = ["BoundedLinear", "Normalize", "OrthogonalLinear", "ZeroPad"]


class _Bounded(Layer):
    """A layer that guarantees its ``lipschitz_bound()``."""

    @property
    def guarantees(self) -> frozenset:
        return frozenset({structure.Lipschitz(self.lipschitz_bound())})


class Normalize(_Bounded):
    """x -> (x - mu) / s with fixed (buffer) mu and s != 0 (scalar or per feature): bound 1 / min |s|."""

    def __init__(self, mean, std):
        super().__init__()
        mean, std = real_array("Normalize's mean", mean), real_array("Normalize's std", std)
        try:  # per feature (n,), per channel (C, 1, 1) or one number, the same for both or one of them scalar
            self.shape = tuple(torch.broadcast_shapes(mean.shape, std.shape))
        except RuntimeError:
            raise ConfigError(f"Normalize needs mean and std of broadcastable shapes (e.g. both per feature), got "
                              f"shapes {tuple(mean.shape)} and {tuple(std.shape)}") from None
        if not bool((std > 0).all()):
            raise ConfigError(f"Normalize needs std > 0 everywhere, got min std = {float(std.min())}")
        self.register_constant("mean", mean, dtype=torch.get_default_dtype())
        self.register_constant("std", std, dtype=torch.get_default_dtype())

    def forward(self, x):
        self._check_shape(x)
        return (x - self.constant("mean", x)) / self.constant("std", x)

    def _check_shape(self, x) -> None:
        self.check_state(x)
        if len(self.shape) > x.dim() or any(s not in (1, n) for s, n in zip(self.shape[::-1], x.shape[::-1])):
            raise ShapeError(f"Normalize's mean and std of shape {self.shape} do not fit states of shape "
                             f"{tuple(x.shape)} (rule: they broadcast against the trailing dimensions)")

    def lipschitz_bound(self) -> float:
        """1 / min |s| (a negative s, e.g. from a state_dict, flips the sign); ConfigError for a zero or
        non-finite s."""
        s = self.std.detach().double().abs().min()
        if not (bool(torch.isfinite(self.std).all()) and float(s) > 0):
            raise ConfigError(f"Normalize has std with min |std| = {float(s)} or non-finite entries (rule: "
                              "finite and non-zero); it has no finite Lipschitz bound")
        return 1.0 / float(s)

    invertible = True

    def inverse(self, y):
        self._check_shape(y)
        return y * self.constant("std", y) + self.constant("mean", y)


class ZeroPad(_Bounded):
    """Lift (..., n) -> (..., m), m >= n (``axis=-1``), or (..., C, H, W) -> (..., C', H, W) (``axis=-3``) by
    zero padding: an isometry, bound 1."""

    def __init__(self, size_in: int, size_out: int, axis: int = -1):
        super().__init__()
        check_size("size_in", size_in)
        check_size("size_out", size_out)
        if size_out < size_in:
            raise ConfigError(f"ZeroPad needs size_out >= size_in, got {size_out} < {size_in}")
        check_int("ZeroPad's axis (counted from the end)", axis, maximum=-1)
        self.size_in, self.size_out, self.axis = size_in, size_out, axis

    def forward(self, x):
        self.check_state(x)
        if x.dim() < -self.axis or x.shape[self.axis] != self.size_in:
            raise ShapeError(f"ZeroPad expects {self.size_in} features/channels along axis {self.axis}, got shape "
                             f"{tuple(x.shape)}")
        return F.pad(x, [0, 0] * (-self.axis - 1) + [0, self.size_out - self.size_in])

    def lipschitz_bound(self) -> float:
        return 1.0


class _LinearHead(_Bounded):
    """y = W x.flatten(-feature_dims) + b, W a (parametrised) weight; bound = exact ||W||_2 (SVD, float64)."""

    def __init__(self, n_in: int, n_out: int, bias: bool, feature_dims: int):
        super().__init__()
        self.linear = nn.Linear(check_size("n_in", n_in), check_size("n_out", n_out), bias=bias)
        self.feature_dims = check_size("feature_dims", feature_dims)

    def forward(self, x):
        self.check_state(x)
        if x.dim() < self.feature_dims:
            raise ShapeError(f"{type(self).__name__} needs inputs with at least {self.feature_dims} feature dims, "
                             f"got shape {tuple(x.shape)}")
        return self.linear(x.flatten(-self.feature_dims) if self.feature_dims > 1 else x)

    def lipschitz_bound(self) -> float:
        with torch.no_grad():
            return certified_bound(type(self).__name__, lambda: spectral_norm(self.linear.weight.double()))


class BoundedLinear(_LinearHead):
    """y = W x + b with ||W||_2 <= c by the exact ``SpectralNormBound`` parametrisation (``c=None``:
    unconstrained W, e.g. a baseline's head; its bound is still the exact ||W||_2). ``feature_dims`` trailing
    dimensions form the input vector (1 for (..., n_in), 3 for images (..., C, H, W))."""

    def __init__(self, n_in: int, n_out: int, c: float | None = 1.0, bias: bool = True, *, feature_dims: int = 1):
        super().__init__(n_in, n_out, bias, feature_dims)
        if c is not None:
            parametrize.register_parametrization(self.linear, "weight", SpectralNormBound(c))


class OrthogonalLinear(_LinearHead):
    """y = Q x + b with orthonormal columns (n_out >= n_in: an isometry) or rows (n_out < n_in), by the
    ``Orthogonal`` (QR) parametrisation; bound = exact ||Q||_2 = 1 to round-off (square: inverse Q^T y)."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True, *, feature_dims: int = 1):
        super().__init__(n_in, n_out, bias, feature_dims)
        parametrize.register_parametrization(self.linear, "weight", Orthogonal())

    @property
    def invertible(self) -> bool:
        return self.linear.in_features == self.linear.out_features and self.feature_dims == 1

    def inverse(self, y):
        if not self.invertible:
            return super().inverse(y)
        self.check_state(y)
        if self.linear.bias is not None:
            y = y - self.linear.bias
        return F.linear(y, self.linear.weight.t())
