import math

import pytest
import torch

import dynnets as dn
from dynnets.structure import (
    LinearInvariant,
    Lipschitz,
    PreservesVolume,
    QuadraticInvariant,
    Symplectic,
    compose,
)


def test_properties_are_values():
    assert LinearInvariant([1, 1, 1]) == LinearInvariant.ones(3)
    assert LinearInvariant(torch.ones(3)) == LinearInvariant((1.0, 1.0, 1.0))
    assert hash(LinearInvariant.ones(3)) == hash(LinearInvariant(torch.ones(3, dtype=torch.float64)))
    assert LinearInvariant.ones(3) != LinearInvariant.ones(4)
    assert Symplectic() == Symplectic() and Symplectic() != PreservesVolume()


@pytest.mark.parametrize("c", [[], [0.0, 0.0], [1.0, math.nan]])
def test_bad_invariant_vectors_rejected(c):
    with pytest.raises(ValueError):
        LinearInvariant(c)


def test_bad_lipschitz_constant_rejected():
    with pytest.raises(ValueError, match="a Lipschitz constant must be >= 0, got L=-1"):
        Lipschitz(-1.0)
    with pytest.raises(ValueError, match="a Lipschitz constant must be finite, got L=inf"):
        Lipschitz(math.inf)


def test_compose_intersects_and_multiplies_lipschitz():
    a = frozenset({Symplectic(), PreservesVolume(), Lipschitz(2.0)})
    b = frozenset({PreservesVolume(), Lipschitz(0.5), QuadraticInvariant.norm()})
    assert compose([a, b]) == frozenset({PreservesVolume(), Lipschitz(1.0)})
    # a member without a Lipschitz constant removes it
    assert compose([a, frozenset({PreservesVolume()})]) == frozenset({PreservesVolume()})
    assert compose([a]) == a
    assert compose([]) == frozenset()
    # repetition multiplies
    assert compose([frozenset({Lipschitz(2.0)})] * 3) == frozenset({Lipschitz(8.0)})


def test_step_guarantees_come_from_field_traits():
    class Skewish(dn.fields.Linear):
        traits = frozenset({dn.structure.LinearInvariant([1.0, 1.0])})

    field = Skewish(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))  # 1^T M = 0
    for method in (dn.methods.Euler(), dn.methods.Heun(), dn.methods.RK4()):
        step = dn.Step(field, method, 0.1)
        assert step.guarantees == frozenset({LinearInvariant.ones(2)})
    flow = dn.Flow([dn.Step(field, dn.methods.Euler(), 0.1), dn.Step(field, dn.methods.RK4(), 0.2)])
    assert flow.guarantees == frozenset({LinearInvariant.ones(2)})
    mixed = dn.Flow([dn.Step(field, dn.methods.Euler(), 0.1),
                     dn.Step(dn.fields.Dense(2, 4), dn.methods.Euler(), 0.1)])
    assert mixed.guarantees == frozenset()


def test_method_requirements_refuse_field_with_typed_error():
    from dynnets.errors import IncompatibleFieldError
    from dynnets.methods import Method
    from dynnets.structure import Partitioned

    class NeedsPartition(Method):
        name = "NeedsPartition"
        requires = (Partitioned,)

    with pytest.raises(IncompatibleFieldError, match="NeedsPartition.*Partitioned.*Dense"):
        dn.Step(dn.fields.Dense(2, 4), NeedsPartition(), 0.1)
    assert issubclass(IncompatibleFieldError, TypeError)
