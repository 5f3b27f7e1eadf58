"""A model built in float32 and converted with ``.double()`` (the README's pattern) or ``.to(dtype)`` holds
its guarantees in float64 to round-off: every fixed constant (a projection vector c, a matrix Q or M, a
stencil, a normalisation) is converted from its exact float64 value (``ExactConstants``), not from its
float32 rounding. A learned step size stays below its bound in every dtype."""

from __future__ import annotations

import pytest
import torch
from structure_cases import EPS, points

import dynnets as dn

F, M = dn.fields, dn.methods
C = 100
Q3 = [[1.0, 0.1, 0.0], [0.1, -1.0, 0.0], [0.0, 0.0, 2.3]]  # indefinite, entries not exact in float32

# (name, float32 step builder, state dim): every family that declares an invariant or a bound
CASES = [
    ("Projected(Dense)", lambda: dn.Step(F.Projected(F.Dense(4, 8), c=[1.0, -2.0, 0.5, 0.3]), M.RK4(), 0.3), 4),
    ("MassPreserving", lambda: dn.Step(F.MassPreserving(5, 8), M.RK4(), 0.3), 5),
    ("MassPreserving(rank=2)", lambda: dn.Step(F.MassPreserving(5, 8, rank=2), M.Heun(), 0.3), 5),
    ("SpherePreserving/Cayley", lambda: dn.Step(F.SpherePreserving(4, 8), M.Cayley(), 0.3), 4),
    ("SpherePreserving(rank=1)/Cayley", lambda: dn.Step(F.SpherePreserving(4, 8, rank=1), M.Cayley(), 0.3), 4),
    ("LiePoisson/Cayley", lambda: dn.Step(F.LiePoisson(8), M.Cayley(), 0.3), 3),
    ("QuadraticPreserving/GL2", lambda: dn.Step(F.QuadraticPreserving(3, 8, Q3), M.GaussLegendre(2), 0.3), 3),
    ("Hamiltonian/StormerVerlet", lambda: dn.Step(F.Hamiltonian(2, 8), M.StormerVerlet(), 0.3), 4),
    ("VolumePreserving/SymplecticEuler", lambda: dn.Step(F.VolumePreserving(2, 8), M.SymplecticEuler(), 0.3), 4),
    ("GeneralHamiltonian/ImplicitMidpoint", lambda: dn.Step(F.GeneralHamiltonian(1, 8), M.ImplicitMidpoint(), 0.3), 2),
    ("Gradient/Euler", lambda: dn.Step(F.Gradient(4, 8), M.Euler(), 0.3), 4),
    ("SIR/RK4", lambda: dn.Step(dn.systems.SIR(0.3, 0.1), M.RK4(), 0.1), 3),
    ("RigidBody/GL2", lambda: dn.Step(dn.systems.RigidBody((2.0, 1.1, 0.7)), M.GaussLegendre(2), 0.1), 3),
    ("Normalize then Gradient", lambda: dn.Flow([dn.constraints.Normalize(0.1, 0.3),
                                                 dn.Step(F.Gradient(4, 8), M.Euler(), 0.3)]), 4),
]


@pytest.mark.parametrize("name, build, dim", CASES, ids=[c[0] for c in CASES])
def test_guarantees_hold_after_building_in_float32_and_converting(name, build, dim):
    torch.manual_seed(0)
    net = build()
    assert all(p.dtype == torch.float32 for p in net.parameters())
    net = dn.Flow.repeat(net, 5).double()
    x = points(16, dim, seed=1).abs() if name.startswith("SIR") else points(16, dim, seed=1)
    checks = dn.testing.verify(net, x, C=C)
    assert checks, f"{name} claims nothing"
    assert all(c.passed for c in checks), checks


class _PlainBufferProjected(F.Projected):
    """The negative control: the projection's vectors as plain buffers (0.1's behaviour), which keep their
    float32 rounding through ``.double()``."""

    def __init__(self, field, c):
        super().__init__(field, c)
        for name in ("c", "c_unit"):
            value = getattr(self, name).float()
            del self._exact[name]
            self.register_buffer(name, value, persistent=False)


def test_negative_control_a_plain_float32_buffer_breaks_the_invariant_after_double():
    torch.manual_seed(0)
    c = [1.0, -2.0, 0.5, 0.3]
    step = dn.Step(_PlainBufferProjected(F.Dense(4, 8), c), M.RK4(), 0.3).double()
    x = points(16, 4, seed=1)
    drift = dn.testing.invariant_drift(dn.Flow.repeat(step, 5), x, c)
    assert drift >= 1e3 * C * 5 * 4 * EPS  # measured 3.6e-9: 8000x the tolerance


def test_constants_follow_float_and_back_and_a_loaded_state_dict():
    norm = dn.constraints.Normalize([0.1, 0.2], [0.3, 0.7])
    assert norm.mean.dtype == torch.float32
    norm = norm.float().double()
    assert norm.mean.dtype == torch.float64 and norm.mean.tolist() == [0.1, 0.2]
    other = dn.constraints.Normalize([0.0, 0.0], [1.0, 1.0])
    other.load_state_dict(dn.constraints.Normalize([0.5, 0.25], [2.0, 4.0]).state_dict())
    assert other.double().std.tolist() == [2.0, 4.0]  # the loaded values, not the constructor's


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_a_learned_step_size_never_exceeds_h_max_in_the_parameters_dtype(dtype):
    step = dn.Step(F.Dense(2, 4), M.Euler(), 0.1, learn_h=True, h_max=0.2).to(dtype)
    with torch.no_grad():
        step.h_raw.fill_(1e4)
    h = step.h.detach()
    assert h.dtype == dtype and float(h) <= 0.2
    assert float(h) >= 0.2 * (1 - 2 * torch.finfo(dtype).eps)  # the bound, not far below it


def test_quadratic_drift_is_relative_to_the_states_compared():
    """An indefinite Q with GaussLegendre(2), h = 0.4, 30 steps: the states grow by orders of magnitude while
    x^T Q x stays put; the drift is measured against the larger state, so verify passes (it reported a false
    failure when the drift was divided by the input's |x|^2)."""
    torch.manual_seed(0)
    Q = torch.diag(torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64))
    flow = dn.Flow.repeat(dn.Step(F.QuadraticPreserving(3, 8, Q).double(), M.GaussLegendre(2), 0.4), 30)
    x = 2 * points(16, 3, seed=0)
    with torch.no_grad():
        grown = float(flow(x).abs().max() / x.abs().max())
    assert grown >= 1e3
    assert all(c.passed for c in dn.testing.verify(flow, x))
    # control: RK4 does not keep the form; the scale-relative drift shows it
    rk4 = dn.Flow.repeat(dn.Step(flow.layers[0].field, M.RK4(), 0.4), 30)
    assert dn.testing.quadratic_drift(rk4, x, Q) >= 1e6 * C * 30 * 3 * EPS


def test_function_field_output_must_have_the_inputs_shape_and_dtype():
    x = torch.randn(4, 2)
    for fn, error in [(lambda z: z[:, :1], dn.errors.ShapeError), (lambda z: z.sum(), dn.errors.ShapeError),
                      (lambda z: z[:1], dn.errors.ShapeError), (lambda z: z.double(), dn.errors.DtypeError),
                      (lambda z: z.long(), dn.errors.DtypeError), (lambda z: 3.0, dn.errors.ShapeError)]:
        field = F.FunctionField(fn, 2)
        with pytest.raises(error, match="FunctionField"):
            dn.Step(field, M.Euler(), 0.1)(x)
        with pytest.raises(error, match="FunctionField"):
            dn.solve(field, x, [0.0, 1.0], method=M.RK4(), h=0.1)
    timed = F.FunctionField(lambda t, z: -z * t, time_dependent=True)
    out = dn.solve(timed, torch.ones(1, 3, dtype=torch.float64), [0.0, 1.0], rtol=1e-10, atol=1e-12).x[-1]
    assert torch.allclose(out, torch.full((1, 3), torch.exp(torch.tensor(-0.5)).item(), dtype=torch.float64))
