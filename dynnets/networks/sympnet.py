"""SympNets (Jin, Zhang, Zhu, Tang, Karniadakis, Neural Networks 132, 2020) as dynnets Flows: every module
is one exact kick of a separable Hamiltonian field under a partitioned method, so the Flow is symplectic by
``structure.compose`` and ``dn.testing.symplecticity_defect`` measures it.

- a linear module of k sublayers: k alternating linear shears p <- p - h (S q + b), q <- q + h (S p + b),
  S symmetric (``fields.QuadraticHamiltonian``);
- an activation module: p <- p - h K^T (w * sigma(K q + a)), or the same on q, of ``width`` ridges
  (``fields.Hamiltonian`` with one energy).

``sympnet(dim, layers, linear=k, width=w, h=h)``: ``layers`` layers, each a linear module of k sublayers
(k = 0: none) then an activation module of width w (None: none), alternating p- and q-kicks; as in the
paper's LA-SympNet the last layer has no activation module when k > 0. k = 2 with ``diagonal=True`` is the
paper's LA-SympNet (activation modules p <- p - h w * sigma(q)), k = 2 with a width an LA-type network with
G-type activations, k = 0 a G-SympNet, width None a linear symplectic map.
"""

from __future__ import annotations

from ..checks import check_bool, check_int, check_size
from ..errors import ConfigError
from ..fields import Hamiltonian, QuadraticHamiltonian
from ..methods import StormerVerlet, SymplecticEuler
from ..step import Flow, Step


def sympnet(dim: int, layers: int, *, linear: int = 2, width: int | None = None, diagonal: bool = False, h: float = 1.0,
            rank: int | None = None, bias: bool = True, potential: str = "logcosh", init_scale: float = 0.1,
            method=None) -> Flow:
    """The SympNet of the module docstring on x = (q, p), q, p in R^dim. ``rank``/``bias``: of the linear
    shears (``QuadraticHamiltonian``); ``potential``: the activation modules' Gamma (``Hamiltonian``);
    ``init_scale``: both families' initial output scale; ``diagonal=True`` (instead of a width): the paper's LA
    activation modules; ``method``: SymplecticEuler() (default) or StormerVerlet()."""
    dim, layers = check_size("dim", dim), check_size("layers", layers)
    linear = check_int("linear", linear, minimum=0)
    width = None if width is None else check_size("width", width)
    if check_bool("diagonal", diagonal):
        if width is not None:
            raise ConfigError(f"sympnet takes a width or diagonal=True, got both (width={width}; rule: diagonal "
                              "activation modules have width dim)")
        width = dim
    if linear == 0 and width is None:
        raise ConfigError("sympnet needs linear > 0 or a width (rule: with neither, a layer is empty)")
    method = SymplecticEuler() if method is None else method
    if not isinstance(method, (SymplecticEuler, StormerVerlet)):
        raise ConfigError(f"sympnet's method must be SymplecticEuler() or StormerVerlet(), got {method!r} (rule: a "
                          "partitioned method applies each kick exactly)")
    steps: list[Step] = []
    shear = {"rank": rank, "bias": bias, "init_scale": init_scale}
    for i in range(layers):  # a linear module of k sublayers: k // 2 steps of two shears, then one of one
        steps += [Step(QuadraticHamiltonian(dim, **shear), method, h) for _ in range(linear // 2)]
        if linear % 2:
            steps.append(Step(QuadraticHamiltonian(dim, kinetic=False, **shear), method, h))
        if width is not None and not (linear and i == layers - 1):
            field = Hamiltonian(dim, width, potential, init_scale=init_scale, kinetic=i % 2 == 1,
                                potential_energy=i % 2 == 0, diagonal=diagonal)
            steps.append(Step(field, method, h))
    return Flow(steps)
