"""Classical ODE systems as fixed fields, for data and as references. Each declares the traits of the learned
family that should mimic it, so e.g. ``Step(Pendulum(), StormerVerlet(), h)`` is a symplectic reference.
"""

from __future__ import annotations

import torch

from ..base import Field, PartitionedField
from ..checks import positive_real
from ..errors import ConfigError
from ..linalg import cross_matrix
from ..structure import (
    CanonicalHamiltonian,
    LinearInvariant,
    Partitioned,
    QuadraticInvariant,
    SeparableHamiltonian,
    SkewProduct,
)


class ConstantsField(Field):
    """A fixed field with positive real constants, each the attribute of its name, shown by repr."""

    def __init__(self, **constants):
        super().__init__()
        self._names = tuple(constants)
        for name, value in constants.items():
            setattr(self, name, positive_real(name, value))

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)}" for name in self._names)


class SIR(ConstantsField):
    """Susceptible-infected-recovered model on x = (S, I, R):
    S' = -beta S I,  I' = beta S I - gamma I,  R' = gamma I.  The population S + I + R is conserved."""

    dim = 3
    traits = frozenset({LinearInvariant((1.0, 1.0, 1.0))})

    def __init__(self, beta: float = 3.0, gamma: float = 1.0):
        super().__init__(beta=beta, gamma=gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        s, i, _ = x.unbind(-1)
        infection = self.beta * s * i
        recovery = self.gamma * i
        return torch.stack([-infection, infection - recovery, recovery], dim=-1)


class SkewMass3D(Field):
    """The mass-conserving 3-D system of the seed slides (Celledoni et al. 2022):
    y' = [[0, -y3 y1^2, y2 y3], [y3 y1^2, 0, -sin y1], [-y2 y3, sin y1, 0]] 1, so 1^T y is conserved."""

    dim = 3
    traits = frozenset({LinearInvariant((1.0, 1.0, 1.0))})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        y1, y2, y3 = x.unbind(-1)
        a12, a13, a23 = -y3 * y1.square(), y2 * y3, -torch.sin(y1)
        # row sums of the skew matrix [[0, a12, a13], [-a12, 0, a23], [-a13, -a23, 0]]
        return torch.stack([a12 + a13, -a12 + a23, -a13 - a23], dim=-1)


class Pendulum(PartitionedField):
    """The mathematical pendulum on x = (q, p): H(q, p) = p^2 / 2 - cos q, q' = p, p' = -sin q."""

    dim = 2
    q_dim = 1
    traits = frozenset({Partitioned(), SeparableHamiltonian()})

    def f(self, p: torch.Tensor) -> torch.Tensor:
        return p

    def g(self, q: torch.Tensor) -> torch.Tensor:
        return -torch.sin(q)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return 0.5 * x[..., 1].square() - torch.cos(x[..., 0])


class DoublePendulum(ConstantsField):
    """Two point masses m1, m2 on massless rods l1, l2 under gravity g, on x = (q1, q2, p1, p2) (angles from
    the downward vertical and their canonical momenta). With d = q1 - q2 and D = m1 + m2 sin^2 d,

        H = N / (2 m2 l1^2 l2^2 D) - (m1 + m2) g l1 cos q1 - m2 g l2 cos q2,
        N = m2 l2^2 p1^2 + (m1 + m2) l1^2 p2^2 - 2 m2 l1 l2 p1 p2 cos d,

    a non-separable Hamiltonian (symplectic Runge-Kutta methods only); F = J grad H in closed form."""

    dim = 4
    q_dim = 2
    traits = frozenset({CanonicalHamiltonian()})

    def __init__(self, m1: float = 1.0, m2: float = 1.0, l1: float = 1.0, l2: float = 1.0, g: float = 9.81):
        super().__init__(m1=m1, m2=m2, l1=l1, l2=l2, g=g)

    def _parts(self, x: torch.Tensor):
        self.check_input(x)
        q1, q2, p1, p2 = x.unbind(-1)
        d = q1 - q2
        D = self.m1 + self.m2 * torch.sin(d).square()
        N = (self.m2 * self.l2 ** 2 * p1.square() + (self.m1 + self.m2) * self.l1 ** 2 * p2.square()
             - 2 * self.m2 * self.l1 * self.l2 * p1 * p2 * torch.cos(d))
        return q1, q2, p1, p2, d, D, N

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q1, q2, p1, p2, d, D, N = self._parts(x)
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        c1 = p1 * p2 * torch.sin(d) / (l1 * l2 * D)
        c2 = N * torch.sin(2 * d) / (2 * l1 ** 2 * l2 ** 2 * D.square())
        return torch.stack([
            (l2 * p1 - l1 * p2 * torch.cos(d)) / (l1 ** 2 * l2 * D),
            ((m1 + m2) * l1 * p2 - m2 * l2 * p1 * torch.cos(d)) / (m2 * l1 * l2 ** 2 * D),
            -(m1 + m2) * g * l1 * torch.sin(q1) - c1 + c2,
            -m2 * g * l2 * torch.sin(q2) + c1 - c2,
        ], dim=-1)

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        q1, q2, _, _, _, D, N = self._parts(x)
        kinetic = N / (2 * self.m2 * self.l1 ** 2 * self.l2 ** 2 * D)
        return kinetic - (self.m1 + self.m2) * self.g * self.l1 * torch.cos(q1) - self.m2 * self.g * self.l2 * torch.cos(q2)


class RigidBody(Field):
    """Euler's equations of a free rigid body for the angular momentum y in R^3 with principal moments of
    inertia I = (I1, I2, I3): y' = y x (I^-1 y) = S(y) y, S(y) = -[I^-1 y]_x. Traits: ||y||^2 and the energy
    y^T I^-1 y / 2 conserved (``QuadraticInvariant``), ``SkewProduct`` (GNI IV.1.2)."""

    dim = 3

    def __init__(self, inertia=(2.0, 1.0, 2.0 / 3.0)):
        super().__init__()
        try:
            values = tuple(inertia)
        except TypeError:
            values = ()
        if len(values) != 3:
            raise ConfigError(f"inertia must be three positive moments (I1, I2, I3), got {inertia!r}")
        self.inertia = tuple(positive_real(f"inertia I{k + 1}", v) for k, v in enumerate(values))
        inverse = [[(1.0 / self.inertia[i]) if i == j else 0.0 for j in range(3)] for i in range(3)]
        self.traits = frozenset({QuadraticInvariant.norm(), QuadraticInvariant(inverse),
                                 SkewProduct()})

    def _omega(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return x / torch.tensor(self.inertia, dtype=x.dtype, device=x.device)

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        """S(y) = -[w]_x with w = I^-1 y, so S(y) y = y x w."""
        return -cross_matrix(self._omega(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.cross(x, self._omega(x), dim=-1)

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """D(y x w) = -[w]_x + [y]_x I^-1 (w = I^-1 y), with [v]_x z = v x z."""
        inverse = torch.tensor(self.inertia, dtype=x.dtype, device=x.device).reciprocal()
        return self.skew(x) + cross_matrix(x) * inverse

    def extra_repr(self) -> str:
        return f"inertia={self.inertia}"


class DampedForced(ConstantsField):
    """A damped, forced, nonlinear 3-D field, div f = -(a + b + c) < 0: x1' = x2 - a x1 + 0.4 x2 x3,
    x2' = -x1 - b x2 + 0.5 sin(x3), x3' = -c x3 + 0.6 x1 x2 + 0.3."""

    dim = 3

    def __init__(self, a: float = 0.3, b: float = 0.2, c: float = 0.5):
        super().__init__(a=a, b=b, c=c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x1, x2, x3 = x.unbind(-1)
        return torch.stack([
            x2 - self.a * x1 + 0.4 * x2 * x3,
            -x1 - self.b * x2 + 0.5 * torch.sin(x3),
            -self.c * x3 + 0.6 * x1 * x2 + 0.3,
        ], dim=-1)
