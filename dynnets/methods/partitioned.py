"""Partitioned methods for fields F(q, v) = (f(v), g(q)) (trait ``Partitioned``, interface ``partition()``).

A step is a list of shears (``shears``: q += h f(v) or v += h g(q)), each volume-preserving with an explicit
inverse (the same shear with -h); for a separable Hamiltonian (f = grad T, g = -grad V) each shear is an
exact Hamiltonian flow, hence symplectic (Hairer, Lubich, Wanner, GNI, VI.3). A part ``partition()`` gives
as None is zero: its shears are skipped. Consecutive shears of one part share one field evaluation (in a
run, and in the reversible backward: one VJP per evaluation).
"""

from __future__ import annotations

import itertools

import torch

from ..base import Field, Method, add_gradients, scaled
from ..checks import real
from ..errors import IncompatibleFieldError, ShapeError
from ..structure import CanonicalHamiltonian, Partitioned, PreservesVolume, SeparableHamiltonian, Symplectic


def _split(field, x: torch.Tensor):
    field.check_input(x)
    q_dim, f, g = field.partition()
    return x[..., :q_dim], x[..., q_dim:], f, g


def _unshear(z: torch.Tensor, h, weight: float, value: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """z - weight h value, as a product then a difference (the shear z + weight h value undone in the same
    arithmetic); ``inplace`` writes into z. Never ``alpha=c``: inductor drops alpha (docs/gpu.md)."""
    step = scaled(scaled(weight, h), value)
    return z.sub_(step) if inplace else z - step


def _groups(shears, f, g):
    """Maximal stretches of consecutive shears of one part: (part, weights); a part that is None is dropped
    (the other part's stretches around it merge)."""
    kept = [shear for shear in shears if (f if shear[0] == "q" else g) is not None]
    return [(part, [w for _, w in run]) for part, run in itertools.groupby(kept, key=lambda shear: shear[0])]


class _PartitionedMethod(Method):
    requires = (Partitioned,)
    per_sample_h = True
    acts_on_parts = True
    #: the step as shears (part, weight) in order: ("q", w) is q += w h f(v), ("v", w) is v += w h g(q)
    shears: tuple = ()

    def check(self, field) -> None:
        """As ``Method.check``; a non-separable Hamiltonian field is pointed to the implicit symplectic methods."""
        hamiltonian = isinstance(field, Field) and field.has_trait(CanonicalHamiltonian)
        if hamiltonian and not field.has_trait(Partitioned):
            raise IncompatibleFieldError(
                f"method {self.name} needs a field with trait Partitioned (a separable H = T(p) + V(q)), but "
                f"{type(field).__name__} is a non-separable CanonicalHamiltonian field: use dn.methods."
                "GaussLegendre(stages) or dn.methods.ImplicitMidpoint(), symplectic for any H")
        super().check(field)

    def guarantees(self, field, h) -> frozenset:
        props = {PreservesVolume()}
        if field.has_trait(SeparableHamiltonian):
            props.add(Symplectic())
        return frozenset(props)

    def invertible(self, field) -> bool:
        return True

    def step(self, field, x: torch.Tensor, h) -> torch.Tensor:
        return self.advance(field, x, h, 1)

    def advance(self, field, x: torch.Tensor, h, n: int) -> torch.Tensor:
        """The shears of n steps in order, the field evaluated once per stretch of same-part shears."""
        q, v, f, g = _split(field, x)
        return torch.cat(self._sheared(field, q, v, f, g, h, n), dim=-1)

    def advance_parts(self, field, q: torch.Tensor, v: torch.Tensor, h, n: int):
        """``advance`` on the parts (q, v), returned unjoined (``Method.acts_on_parts``)."""
        _, f, g = field.partition()
        return self._sheared(field, q, v, f, g, h, n)

    def _sheared(self, field, q, v, f, g, h, n: int):
        """Each stretch one ``Field.partition_kick`` (one evaluation; a closed form fuses the shears)."""
        for part, weights in _groups(self.shears * n, f, g):
            coefficients = [scaled(w, h) for w in weights]
            if part == "q":
                q = field.partition_kick("f", q, v, coefficients)
            else:
                v = field.partition_kick("g", v, q, coefficients)
        return q, v

    def inverse(self, field, y: torch.Tensor, h) -> torch.Tensor:
        """The shears undone in reverse order (each the same shear with -h)."""
        q, v, f, g = _split(field, y)
        for part, weight in reversed(self.shears):
            if part == "q" and f is not None:
                q = _unshear(q, h, weight, f(v))
            elif part == "v" and g is not None:
                v = _unshear(v, h, weight, g(q))
        return torch.cat([q, v], dim=-1)

    def reversible_backward(self, field, y, grad_y, h, n, params, grads):
        """The run's shears undone in reverse, one evaluation and one VJP (``Field.partition_vjp``) per stretch:
        v += c_i g(q) sends q_bar += Dg(q)^T ((sum_i c_i) v_bar), likewise q += c_i f(v). A learned h (a leaf
        among ``params``) gets sum_i w_i <value, cotangent>."""
        q, v, f, g = _split(field, y)
        # updated in place: a new tensor per stretch made the heap grow with depth (docs/memory.md)
        q, v = q.clone(), v.clone()
        q_bar, v_bar = grad_y[..., : q.shape[-1]].clone(), grad_y[..., q.shape[-1]:].clone()
        learned = isinstance(h, torch.Tensor) and h.requires_grad
        h_value = h.detach() if isinstance(h, torch.Tensor) else h
        total: list = [None] * len(params)
        h_bar = None
        for part, weights in _groups(tuple(reversed(self.shears)) * n, f, g):
            which, at, cotangent = ("f", v, q_bar) if part == "q" else ("g", q, v_bar)
            coefficient = sum(scaled(w, h_value) for w in weights)  # the stretch shares value and cotangent
            value, at_bar, got = field.partition_vjp(which, at, coefficient * cotangent, params)
            if learned:
                share = sum(weights) * (value * cotangent).sum()
                h_bar = share if h_bar is None else h_bar + share
            for w in weights:  # undone as ``inverse`` undoes them: the reconstruction is the inverse's
                _unshear(q if part == "q" else v, h_value, w, value, inplace=True)
            (v_bar if part == "q" else q_bar).add_(at_bar)
            # summed in place into a copy of the first contribution (autograd's results may alias its inputs)
            total = [a if b is None else (b.clone() if a is None else a.add_(b)) for a, b in zip(total, got)]
        if learned:
            total = [h_bar if p is h else t for p, t in zip(params, total)]
        add_gradients(grads, params, total)
        return torch.cat([q, v], dim=-1), torch.cat([q_bar, v_bar], dim=-1)


class SymplecticEuler(_PartitionedMethod):
    """q' = q + h f(v),  v' = v + h g(q').  Order 1. Inverse: v = v' - h g(q'),  q = q' - h f(v)."""

    name = "SymplecticEuler"
    order = 1
    shears = (("q", 1.0), ("v", 1.0))


class StormerVerlet(_PartitionedMethod):
    """v+ = v + h/2 g(q),  q' = q + h f(v+),  v' = v+ + h/2 g(q').  Order 2, symmetric.
    Inverse: the three shears undone in reverse order. In a weight-tied run the closing half-kick's g(q')
    is the next step's opening one (first same as last): 2 n + 1 field evaluations for n steps."""

    name = "StormerVerlet"
    order = 2
    shears = (("v", 0.5), ("q", 1.0), ("v", 0.5))

    def modified_hamiltonian(self, field, x: torch.Tensor, h) -> torch.Tensor:
        """The step's modified Hamiltonian to second order, per row (backward error analysis, GNI IX.3: the
        symmetric BCH formula of the kick-drift-kick splitting): with a = grad T(p), b = grad V(q),

            H~ = H + h^2 (a^T D^2V(q) a / 12 - b^T D^2T(p) b / 24),

        whose exact flow over time h the step matches to O(h^5): a network trained as this step represents H~
        rather than its own H. Needs trait ``SeparableHamiltonian``; h a finite number or a tensor of shape
        () or (batch,); differentiable (forward-mode Hessian-vector products)."""
        if not field.has_trait(SeparableHamiltonian):
            raise IncompatibleFieldError(f"modified_hamiltonian needs a separable Hamiltonian field (trait "
                                         f"SeparableHamiltonian), got {type(field).__name__}")
        if not isinstance(h, torch.Tensor):
            h = real("h", h)
        elif h.dim() > 1 or (h.dim() == 1 and h.shape[0] != x.shape[0]):
            raise ShapeError(f"modified_hamiltonian takes h of shape () or (batch,) = ({x.shape[0]},), got "
                             f"{tuple(h.shape)}")
        q, p, f, g = _split(field, x)
        energy = field.hamiltonian(x)
        if f is None or g is None:  # one energy: each step is its exact flow, H~ = H
            return energy
        a, b = f(p), -g(q)
        v_aa = -(torch.func.jvp(g, (q,), (a,))[1] * a).sum(-1)  # a^T D^2V a, D^2V = -Dg
        t_bb = (torch.func.jvp(f, (p,), (b,))[1] * b).sum(-1)   # b^T D^2T b, D^2T = Df
        return energy + (h * h) * (v_aa / 12 - t_bb / 24)
