"""dn.testing measured against maps whose defects are known in closed form."""

import math

import pytest
import torch

import dynnets as dn
from dynnets import testing as T

EPS64 = torch.finfo(torch.float64).eps


def linear_map(M):
    M = torch.as_tensor(M, dtype=torch.float64)
    return lambda x: x @ M.T


def pendulum_symplectic_euler(h=0.7):
    def f(x):
        q, p = x[:, :1], x[:, 1:]
        p_new = p - h * torch.sin(q)
        return torch.cat([q + h * p_new, p_new], 1)

    return f


def test_symplecticity_defect_known_values():
    x = torch.randn(7, 2)
    # diag(a, 1/a) is symplectic in 2-D; diag(2, 1) has J^T Omega J - Omega = [[0, 1], [-1, 0]]
    assert T.symplecticity_defect(linear_map([[3.0, 0], [0, 1 / 3.0]]), x) <= 4 * EPS64
    assert math.isclose(T.symplecticity_defect(linear_map([[2.0, 0], [0, 1.0]]), x), math.sqrt(2), rel_tol=1e-14)
    # a nonlinear symplectic map (symplectic Euler for the pendulum) and its non-symplectic twin
    assert T.symplecticity_defect(pendulum_symplectic_euler(), torch.randn(50, 2)) <= 16 * EPS64

    def explicit_euler(x, h=0.7):
        q, p = x[:, :1], x[:, 1:]
        return torch.cat([q + h * p, p - h * torch.sin(q)], 1)

    assert T.symplecticity_defect(explicit_euler, torch.randn(50, 2)) > 0.1


def test_symplecticity_needs_even_square_jacobian():
    with pytest.raises(ValueError, match="R\\^2n"):
        T.symplecticity_defect(linear_map(torch.eye(3)), torch.randn(2, 3))


def test_volume_defect_known_values():
    x = torch.randn(5, 3)
    assert math.isclose(T.volume_defect(linear_map(2 * torch.eye(3)), x), 7.0, rel_tol=1e-14)
    shear = torch.eye(3) + torch.triu(torch.randn(3, 3), 1)
    assert T.volume_defect(linear_map(shear), x) <= 4 * EPS64
    assert T.volume_defect(pendulum_symplectic_euler(), torch.randn(50, 2)) <= 16 * EPS64


def test_invariant_drift_known_values():
    x = torch.tensor([[0.25, 0.25, 0.0], [3.0, 1.0, 0.0]], dtype=torch.float64)
    shift = torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)
    # u = 1/sqrt(3): u^T shift = 0.5/sqrt(3), relative to max(|x|, |f(x)|) = |(0.75, 0.25, 0)| for row 0
    expected = (0.5 / math.sqrt(3)) / math.hypot(0.75, 0.25)
    assert math.isclose(T.invariant_drift(lambda z: z + shift, x, torch.ones(3)), expected, rel_tol=1e-14)
    # scale-free: the same drift for states of size 1e200 or 1e-200 and for c of any size (issue 15)
    for scale in (1e200, 1e-200):
        got = T.invariant_drift(lambda z, s=scale: z + s * shift, scale * x, 1e-300 * torch.ones(3, dtype=torch.float64))
        assert math.isclose(got, expected, rel_tol=1e-13), scale
    swap = linear_map([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert T.invariant_drift(swap, x, torch.ones(3)) == 0.0
    with pytest.raises(ValueError, match="c has 2 entries"):
        T.invariant_drift(swap, x, torch.ones(2))


def test_norm_drift_known_values():
    x = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    assert T.norm_drift(lambda z: 2 * z, x) == 1.0  # |10 - 5| / 5
    R = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)
    assert T.norm_drift(linear_map(R), torch.randn(20, 2)) <= 4 * EPS64
    for scale in (1e200, 1e-200):  # no overflow or underflow in the norms
        assert T.norm_drift(lambda z: 2 * z, scale * x) == 1.0
        assert T.norm_drift(linear_map(R), scale * torch.randn(20, 2, dtype=torch.float64)) <= 4 * EPS64


def test_lipschitz_ratio_known_values():
    x, y = torch.randn(10, 4), torch.randn(10, 4)
    assert math.isclose(T.lipschitz_ratio(lambda z: 3 * z, x, y), 3.0, rel_tol=1e-14)
    assert T.lipschitz_ratio(torch.sin, x, y) <= 1.0
    with pytest.raises(ValueError, match="x_i != y_i"):
        T.lipschitz_ratio(torch.sin, x, x)
    with pytest.raises(ValueError, match="same shape"):
        T.lipschitz_ratio(torch.sin, x, y[:3])


def test_inverse_defect_known_values():
    x = torch.randn(6, 2, dtype=torch.float64)
    assert T.inverse_defect(lambda z: z + 1, lambda z: z - 1, x) <= 4 * EPS64
    assert math.isclose(T.inverse_defect(lambda z: z + 1, lambda z: z - 0.5,
                                         torch.tensor([[0.0, 0.0]])), math.sqrt(0.5), rel_tol=1e-14)


def test_modules_are_measured_in_float64_without_being_changed():
    step = dn.Step(dn.fields.Dense(4, 6), dn.methods.Euler(), 0.2)  # float32 module
    x = torch.randn(3, 4)
    d = T.volume_defect(step, x)
    assert d > 0 and next(step.parameters()).dtype == torch.float32
    J = T.jacobian(step, x)
    assert J.dtype == torch.float64 and J.shape == (3, 4, 4)
    # Euler of a Dense field: J = I + h B diag(tanh') A, exactly
    f = step.field.double()
    z = x.double() @ f.A.T + f.b
    expected = torch.eye(4, dtype=torch.float64) + 0.2 * f.B @ torch.diag_embed(1 - torch.tanh(z) ** 2) @ f.A
    assert torch.allclose(J, expected.detach(), atol=8 * EPS64)


def test_image_shaped_states_are_flattened():
    x = torch.randn(2, 1, 3, 3)
    assert math.isclose(T.volume_defect(lambda z: 2 * z, x), 2.0**9 - 1, rel_tol=1e-13)


def test_points_must_be_batched():
    with pytest.raises(ValueError, match="batch"):
        T.volume_defect(lambda z: z, torch.randn(3))


def test_verify_measures_every_claim_and_can_fail():
    from dynnets.structure import LinearInvariant

    class Conserving(dn.fields.Linear):
        traits = frozenset({LinearInvariant([1.0, 1.0, 1.0])})

    M = torch.tensor([[0.0, 1.0, -1.0], [-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]], dtype=torch.float64)
    good = dn.Flow.repeat(dn.Step(Conserving(M), dn.methods.RK4(), 0.3), 40)
    checks = T.verify(good, torch.randn(8, 3))
    assert [c.property for c in checks] == [LinearInvariant.ones(3)]
    assert all(c.passed for c in checks) and checks[0].tolerance == 100 * 40 * 3 * EPS64
    # the negative control: the same claim on a field that does not conserve 1^T x shows a large defect
    bad = dn.Flow.repeat(dn.Step(Conserving(M + 0.1 * torch.eye(3, dtype=torch.float64)),
                                 dn.methods.RK4(), 0.3), 40)
    checks = T.verify(bad, torch.randn(8, 3))
    assert not checks[0].passed and checks[0].defect > 1e6 * checks[0].tolerance


def test_measure_lipschitz_excess():
    from dynnets.structure import Lipschitz

    x, y = torch.randn(10, 3), torch.randn(10, 3)
    assert T.measure(lambda z: 2 * z, Lipschitz(2.0), x, y) <= 4 * EPS64
    assert math.isclose(T.measure(lambda z: 2 * z, Lipschitz(1.0), x, y), 1.0, rel_tol=1e-12)
