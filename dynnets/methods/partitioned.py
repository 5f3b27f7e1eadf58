"""Partitioned methods for fields F(q, v) = (f(v), g(q)) (trait ``Partitioned``, interface ``partition()``).

A field may leave one part out (``partition()`` gives None for it: that part is zero, e.g. a single linear
or activation kick); its shears are the identity and are skipped.

Each step is a composition of shears (q += h f(v) or v += h g(q)), each with unit Jacobian determinant
and an explicit inverse (the same shear with -h), so the step preserves volume for every partitioned
field and is explicitly invertible. For a separable Hamiltonian field (f = grad T, g = -grad V) each
shear is the exact flow of a Hamiltonian (T or V), hence symplectic (Hairer, Lubich, Wanner,
Geometric Numerical Integration, VI.3).

A method is its list of shears (``shears``); the step, the inverse, a weight-tied run of n steps and the
reversible backward all walk that list. Consecutive shears of the same part evaluate the field at the same
point (the other part has not moved), so a run evaluates it once for them: Stormer-Verlet's closing
half-kick is the next step's opening one (first same as last, 2 n + 1 evaluations for n steps instead of
3 n, the result bitwise that of n separate steps), and the reversible backward takes one vector-Jacobian
product at each evaluation its reconstruction makes (no recomputation of the step).
"""

from __future__ import annotations

import torch

from ..base import Field, Method, add_gradients
from ..errors import IncompatibleFieldError
from ..structure import CanonicalHamiltonian, Partitioned, PreservesVolume, SeparableHamiltonian, Symplectic
from .rk import _scaled


def _split(field, x: torch.Tensor):
    field.check_input(x)
    q_dim, f, g = field.partition()
    return x[..., :q_dim], x[..., q_dim:], f, g


def _shear(z: torch.Tensor, h, weight: float, value: torch.Tensor, sign: int = 1,
           inplace: bool = False) -> torch.Tensor:
    """z + sign weight h value, as a product then a sum (sign -1: the shear undone, in the same arithmetic
    wherever it is undone); ``inplace`` writes the result into z (the same arithmetic).

    Never ``torch.add(z, value, alpha=c)``: inductor's add + mm -> addmm fusion drops ``alpha`` (the value
    is a matrix product), so ``torch.compile`` with the default backend computed z + value (docs/gpu.md)."""
    step = _scaled(h, weight) * value
    if inplace:
        return z.add_(step) if sign > 0 else z.sub_(step)
    return z + step if sign > 0 else z - step


def _groups(shears, f, g):
    """Maximal stretches of consecutive shears of the same part: (part, weights). A part the field leaves
    out (``partition()`` gave None: that energy is zero) has identity shears: they are dropped, so the
    stretches of the other part on either side merge (its point has not moved between them)."""
    out: list[tuple[str, list[float]]] = []
    for part, weight in shears:
        if (f if part == "q" else g) is None:
            continue
        if out and out[-1][0] == part:
            out[-1][1].append(weight)
        else:
            out.append((part, [weight]))
    return out


class _PartitionedMethod(Method):
    requires = (Partitioned,)
    #: every shear is z + (w h) value: a per-row h of shape (batch, 1) broadcasts, and each row's map is the
    #: step of its own h (symplectic / volume-preserving for every real h)
    per_sample_h = True
    acts_on_parts = True
    #: the step as shears (part, weight) in order: ("q", w) is q += w h f(v), ("v", w) is v += w h g(q)
    shears: tuple = ()

    def check(self, field) -> None:
        """As ``Method.check``; a non-separable Hamiltonian field is pointed to the implicit symplectic methods."""
        if _non_separable_hamiltonian(field):
            raise IncompatibleFieldError(
                f"method {self.name} needs a field with trait Partitioned (a separable H = T(p) + V(q)), but "
                f"{type(field).__name__} is a non-separable CanonicalHamiltonian field: use "
                "dn.methods.GaussLegendre(stages) or dn.methods.ImplicitMidpoint(), symplectic for any H"
            )
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
        return torch.cat(self._sheared(q, v, f, g, h, n), dim=-1)

    def advance_parts(self, field, q: torch.Tensor, v: torch.Tensor, h, n: int):
        """``advance`` on the parts (q, v), returned unjoined (``Method.acts_on_parts``)."""
        _, f, g = field.partition()
        return self._sheared(q, v, f, g, h, n)

    def _sheared(self, q, v, f, g, h, n: int):
        for part, weights in _groups(self.shears * n, f, g):
            if part == "q":
                value = f(v)
                for w in weights:
                    q = _shear(q, h, w, value)
            else:
                value = g(q)
                for w in weights:
                    v = _shear(v, h, w, value)
        return q, v

    def inverse(self, field, y: torch.Tensor, h) -> torch.Tensor:
        """The shears undone in reverse order (each the same shear with -h)."""
        q, v, f, g = _split(field, y)
        for part, weight in reversed(self.shears):
            if (f if part == "q" else g) is None:
                continue
            if part == "q":
                q = _shear(q, h, weight, f(v), -1)
            else:
                v = _shear(v, h, weight, g(q), -1)
        return torch.cat([q, v], dim=-1)

    def reversible_backward(self, field, y, grad_y, h, n, params, grads):
        """The run's shears undone in reverse order, one evaluation per stretch of same-part shears (as the
        forward), each with its VJP (``Field.partition_vjp``: closed form where the field has one): a
        stretch v += c_i g(q) sends q_bar += Dg(q)^T ((sum_i c_i) v_bar) (v_bar unchanged), likewise
        q += c_i f(v). One evaluation and one VJP per stretch: the backward costs about one forward plus one
        VJP (``Method.reversible_backward``).
        A learned h (a leaf tensor among ``params``) gets sum_i w_i <value, cotangent> directly."""
        q, v, f, g = _split(field, y)
        # the reconstruction and the cotangents are updated in place: a new tensor per stretch, each freed
        # one stretch later, made glibc's heap grow with depth (peak RSS 38.8 MiB at 1000 steps, 6 in place)
        q, v = q.clone(), v.clone()
        q_bar, v_bar = grad_y[..., : q.shape[-1]].clone(), grad_y[..., q.shape[-1]:].clone()
        learned = isinstance(h, torch.Tensor) and h.requires_grad
        h_value = h.detach() if isinstance(h, torch.Tensor) else h
        total: list = [None] * len(params)
        h_bar = None
        for part, weights in _groups(tuple(reversed(self.shears)) * n, f, g):
            which, at, cotangent = ("f", v, q_bar) if part == "q" else ("g", q, v_bar)
            coefficient = sum(_scaled(h_value, w) for w in weights)  # the stretch shares value and cotangent
            value, at_bar, got = field.partition_vjp(which, at, coefficient * cotangent, params)
            if learned:
                share = sum(weights) * (value * cotangent).sum()
                h_bar = share if h_bar is None else h_bar + share
            for w in weights:  # undone as ``inverse`` undoes them: the reconstruction is the inverse's
                _shear(q if part == "q" else v, h_value, w, value, -1, inplace=True)
            (v_bar if part == "q" else q_bar).add_(at_bar)
            # summed in place into a copy of the first contribution (autograd's results may alias its inputs)
            total = [a if b is None else (b.clone() if a is None else a.add_(b)) for a, b in zip(total, got)]
        if learned:
            total = [h_bar if p is h else t for p, t in zip(params, total)]
        add_gradients(grads, params, total)
        return torch.cat([q, v], dim=-1), torch.cat([q_bar, v_bar], dim=-1)


def _non_separable_hamiltonian(field) -> bool:
    return isinstance(field, Field) and field.has_trait(CanonicalHamiltonian) and not field.has_trait(Partitioned)


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
