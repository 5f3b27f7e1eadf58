"""ConvFD: the convolutional vector field F(U) = B * sigma(A * U) of the seed slides (pixel-based learning), U
(batch, C, H, W), A (hidden, C, k, k) and B (C, hidden, k, k) applied by cross-correlation with wrap-around
(periodic boundary conditions, as FD stencils on a torus), each hidden channel with its own activation. With
relu and relu2 channels it contains every FD right-hand side L*U + sum_i beta_i prod_j (D_ij * U) of degree
<= 2 exactly (``dynnets.applications.pde.construct``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..base import Field
from ..checks import check_size
from ..errors import ConfigError, ShapeError
from ..linalg import circular_pad
from .activations import get_activation

#: the power p of each relu^p activation (mirrored pairs: relu(z)^p + (-1)^p relu(-z)^p = z^p)
_POWERS = {"relu": 1, "relu2": 2, "relu3": 3, "relu4": 4}


def _mirror_pairs(activations) -> list[tuple[list[int], list[int], float]]:
    """(first half, second half, (-1)^p) of each group of relu^p hidden channels, in order of appearance."""
    groups: dict[str, list[int]] = {}
    for i, act in enumerate(activations):
        groups.setdefault(act.name, []).append(i)
    for name, idx in groups.items():
        if name not in _POWERS:
            raise ConfigError(f"init='mirrored' needs relu-power activations (relu, relu2, relu3, relu4), "
                              f"got {name!r} for hidden channel {idx[0]}")
    for name, idx in groups.items():
        if len(idx) % 2:
            raise ConfigError(f"init='mirrored' needs an even number of {name} channels, got {len(idx)}")
    return [(idx[: len(idx) // 2], idx[len(idx) // 2:], (-1.0) ** _POWERS[n]) for n, idx in groups.items()]


class ConvFD(Field):
    """F(U) = B * sigma(A * U + a) (+ b). ``activations``: one name or ``hidden`` names; ``bias``: trainable a
    and b; init A ~ N(0, 1/(C k^2)), B ~ N(0, init_scale^2 / (hidden k^2)). ``init="mirrored"``: within each
    group of relu^p channels (even size) the second half is the first with A -> -A, B -> (-1)^p B, so F starts
    as the polynomial sum_j B_j * (A_j * U)^p (a "looks-linear" start, Balduzzi et al. 2017).
    """

    def __init__(self, channels: int, hidden: int, kernel_size: int = 3, activations="relu2", *,
                 bias: bool = False, init_scale: float = 0.1, init: str = "random"):
        super().__init__()
        self.channels = check_size("channels", channels)
        self.hidden = check_size("hidden", hidden)
        k = check_size("kernel_size", kernel_size)
        if k % 2 == 0:
            raise ConfigError(f"kernel_size must be odd (a centred stencil), got {k}")
        self.kernel_size = k
        names = [activations] * hidden if isinstance(activations, str) else list(activations)
        if len(names) != hidden:
            raise ConfigError(f"activations must be one name or a list of hidden={hidden} names, got {len(names)}")
        self.activations = tuple(get_activation(n) for n in names)
        # consecutive runs of equal activations, applied as slices (one call per run)
        acts = self.activations
        starts = [i for i, a in enumerate(acts) if i == 0 or a.name != acts[i - 1].name]
        self._runs = [(s, e, acts[s]) for s, e in zip(starts, starts[1:] + [hidden])]
        self.dim = channels
        self.state_ndim = 3  # (batch, C, H, W)
        self.A = nn.Parameter(torch.randn(hidden, channels, k, k) / math.sqrt(channels * k * k))
        self.B = nn.Parameter(torch.randn(channels, hidden, k, k) * (checks.init_scale(init_scale) / math.sqrt(hidden * k * k)))
        if init == "mirrored":
            with torch.no_grad():
                for first, second, sign in _mirror_pairs(self.activations):
                    self.A[second] = -self.A[first]
                    self.B[:, second] = sign * self.B[:, first]
        elif init != "random":
            raise ConfigError(f"init must be 'random' or 'mirrored', got {init!r}")
        self.a = nn.Parameter(torch.zeros(hidden)) if bias else None
        self.b = nn.Parameter(torch.zeros(channels)) if bias else None

    def check_input(self, u: torch.Tensor) -> None:
        if u.dim() != 4 or u.shape[1] != self.channels:
            raise ShapeError(f"ConvFD expects input of shape (batch, C={self.channels}, H, W), got {tuple(u.shape)}")
        r = max(self.kernel_size // 2, 1)
        if min(u.shape[-2:]) < r:
            raise ShapeError(f"ConvFD with kernel_size={self.kernel_size} needs H, W >= {r} for circular "
                             f"padding, got {tuple(u.shape[-2:])}")

    def hidden_activity(self, u: torch.Tensor) -> torch.Tensor:
        """sigma(A * U + a): (batch, hidden, H, W)."""
        z = F.conv2d(circular_pad(u, self.kernel_size // 2), self.A, self.a)
        if len(self._runs) == 1:
            return self._runs[0][2].fn(z)
        return torch.cat([act.fn(z[:, s:e]) for s, e, act in self._runs], dim=1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        self.check_input(u)
        return F.conv2d(circular_pad(self.hidden_activity(u), self.kernel_size // 2), self.B, self.b)

    def extra_repr(self) -> str:
        names = [a.name for a in self.activations]
        acts = names[0] if len(set(names)) == 1 else names
        return (f"channels={self.channels}, hidden={self.hidden}, kernel_size={self.kernel_size}, "
                f"activations={acts}, bias={self.a is not None}")


class MirroredConvFD(ConvFD):
    """ConvFD with the pairing of ``init="mirrored"`` kept during training (tied weights), so
    F(U) = sum_j B_j * (A_j * U)^p, the polynomial subfamily of ``dynnets.applications.pde.construct``.
    Trainable: ``A_free`` (hidden/2, C, k, k), ``B_free`` (C, hidden/2, k, k); ``A``, ``B``: the tied kernels.
    """

    def __init__(self, channels: int, hidden: int, kernel_size: int = 3, activations="relu2", *,
                 init_scale: float = 0.1):
        super().__init__(channels, hidden, kernel_size, activations, init="mirrored", init_scale=init_scale)
        first, second, signs = [], [], []
        for f, s, sign in _mirror_pairs(self.activations):
            first, second, signs = first + f, second + s, signs + [sign] * len(f)
        A, B = self.A.detach().clone(), self.B.detach().clone()
        del self.A, self.B
        self.A_free = nn.Parameter(A[first])
        self.B_free = nn.Parameter(B[:, first])
        order = torch.empty(hidden, dtype=torch.long)
        order[torch.tensor(first + second)] = torch.arange(hidden)
        self.register_buffer("_order", order, persistent=False)
        self.register_buffer("_bsign", torch.tensor(signs).view(1, -1, 1, 1), persistent=False)

    @property
    def A(self) -> torch.Tensor:
        return torch.cat([self.A_free, -self.A_free])[self._order]

    @property
    def B(self) -> torch.Tensor:
        return torch.cat([self.B_free, self._bsign.to(self.B_free) * self.B_free], dim=1)[:, self._order]
