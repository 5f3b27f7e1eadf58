"""The structured field families and methods: sizes, shapes, refusals, declared guarantees, and the
field-level identities each guarantee rests on (1^T F = 0, x^T S(x) x = 0, F = J grad H)."""

from __future__ import annotations

import io

import pytest
import torch
from structure_cases import EPS, points, randomize

import dynnets as dn
from dynnets import errors
from dynnets import structure as st

F = dn.fields
M = dn.methods


# --- construction: sizes and options ---------------------------------------------------------------

@pytest.mark.parametrize("build", [
    lambda: F.MassPreserving(1, 4),
    lambda: F.MassPreserving(3, 0),
    lambda: F.SpherePreserving(1, 4),
    lambda: F.SpherePreserving(0, 4),
    lambda: F.VolumePreserving(2, 4, v_dim=0),
    lambda: F.VolumePreserving(2.5, 4),
    lambda: F.Hamiltonian(0, 4),
    lambda: F.Hamiltonian(2, 4, potential="cosh"),
    lambda: F.Gradient(3, 4, sign=0),
    lambda: F.Gradient(3, 4, sign=True),
    lambda: F.Gradient(3, 4, activation="nope"),
    lambda: F.Projected(F.Dense(3, 4), [1.0, 1.0]),
    lambda: F.MassPreserving(1, 4, rank=1),
    lambda: F.SpherePreserving(4, 6, rank=2),
    lambda: F.SpherePreserving(4, 4, rank=0),
    lambda: F.SpherePreserving(4, 4, rank=True),
], ids=["mass-dim1", "mass-width0", "sphere-dim1", "sphere-dim0", "volume-vdim0", "volume-float-dim",
        "ham-dim0", "ham-potential", "grad-sign0", "grad-sign-bool", "grad-activation", "conserve-c-length",
        "low-rank-mass-dim1", "low-rank-width-not-multiple", "low-rank-rank0", "low-rank-rank-bool"])
def test_bad_sizes_and_options_raise_config_error(build):
    with pytest.raises(errors.ConfigError):
        build()


@pytest.mark.parametrize("c", [[0.0, 0.0, 0.0], [1.0, float("nan"), 0.0], []])
def test_conserve_linear_rejects_degenerate_vectors(c):
    with pytest.raises(ValueError):
        F.Projected(F.Dense(3, 4), c)


FIELDS = {
    "mass": lambda: F.MassPreserving(4, 6),
    "conserve": lambda: F.Projected(F.Dense(4, 6), [1.0, 2.0, 0.0, -1.0]),
    "volume": lambda: F.VolumePreserving(3, 6, v_dim=1),
    "hamiltonian": lambda: F.Hamiltonian(2, 6),
    "sphere": lambda: F.SpherePreserving(4, 6),
    "gradient": lambda: F.Gradient(4, 6),
    "mass-rank": lambda: F.MassPreserving(4, 6, rank=3),
    "sphere-rank": lambda: F.SpherePreserving(4, 6, rank=1),
}


@pytest.mark.parametrize("name", FIELDS)
def test_fields_map_batches_to_their_dimension_and_reject_other_shapes(name):
    field = FIELDS[name]()
    x = torch.randn(5, field.dim)
    assert field(x).shape == (5, field.dim)
    assert field(x).dtype == torch.float32
    assert field.double()(x.double()).dtype == torch.float64
    with pytest.raises(errors.ShapeError, match=f"dim={field.dim}"):
        field(torch.randn(5, field.dim + 1, dtype=torch.float64))


@pytest.mark.parametrize("name", FIELDS)
def test_state_dict_round_trip_with_weights_only(name):
    torch.manual_seed(0)
    field = FIELDS[name]()
    buf = io.BytesIO()
    torch.save(field.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(1)
    other = FIELDS[name]()
    other.load_state_dict(torch.load(buf, weights_only=True))
    x = torch.randn(3, field.dim)
    assert torch.equal(field(x), other(x))


# --- a method that cannot integrate a field is refused at Step construction -------------------------

@pytest.mark.parametrize("field,method", [
    (F.Dense(4, 4), M.SymplecticEuler()),
    (F.Dense(4, 4), M.StormerVerlet()),
    (F.Dense(4, 4), M.Cayley()),
    (F.MassPreserving(4, 4), M.SymplecticEuler()),
    (F.VolumePreserving(2, 4), M.Cayley()),
    (F.SpherePreserving(4, 4), M.StormerVerlet()),
    (F.Gradient(4, 4), M.Cayley()),
], ids=lambda v: type(v).__name__)
def test_incompatible_pairs_are_refused(field, method):
    with pytest.raises(errors.IncompatibleFieldError) as err:
        dn.Step(field, method, 0.1)
    assert isinstance(err.value, TypeError)
    assert method.name in str(err.value) and type(field).__name__ in str(err.value)


def test_partitioned_method_checks_input_shape():
    step = dn.Step(F.VolumePreserving(2, 4), M.SymplecticEuler(), 0.1)
    with pytest.raises(errors.ShapeError):
        step(torch.randn(3, 5))
    with pytest.raises(errors.ShapeError):
        step.inverse(torch.randn(3, 3))


def test_flow_inverse_refuses_steps_without_an_explicit_inverse():
    good = dn.Step(F.VolumePreserving(2, 4), M.StormerVerlet(), 0.1)
    cayley = dn.Step(F.SpherePreserving(4, 4), M.Cayley(), 0.1)
    assert good.invertible and not cayley.invertible
    with pytest.raises(errors.NotInvertibleError, match="Cayley"):
        dn.Flow([good, cayley]).inverse(torch.randn(2, 4))
    euler = dn.Step(F.Dense(4, 4), M.Euler(), 0.1)
    with pytest.raises(errors.NotInvertibleError, match="Euler"):
        dn.Flow([good, euler]).inverse(torch.randn(2, 4))


# --- declared guarantees: the pair (field, method) decides ----------------------------------------

def test_declared_guarantees_follow_the_table():
    ones4 = st.LinearInvariant.ones(4)
    c = [1.0, 2.0, 0.0, -1.0]
    cases = [
        (F.MassPreserving(4, 4), M.RK4(), {ones4}),
        (F.MassPreserving(4, 4), M.ExplicitRK(M.tableaux.SSPRK3), {ones4}),
        (F.Projected(F.Dense(4, 4), c), M.Heun(), {st.LinearInvariant(c)}),
        (F.VolumePreserving(2, 4), M.SymplecticEuler(), {st.PreservesVolume()}),
        (F.VolumePreserving(2, 4), M.RK4(), set()),
        (F.Hamiltonian(2, 4), M.StormerVerlet(), {st.PreservesVolume(), st.Symplectic()}),
        (F.Hamiltonian(2, 4), M.Euler(), set()),
        (F.SpherePreserving(4, 4), M.Cayley(), {st.QuadraticInvariant.norm()}),
        (F.SpherePreserving(4, 4), M.Euler(), set()),
        (F.SpherePreserving(4, 4, rank=2), M.Cayley(), {st.QuadraticInvariant.norm()}),
        (F.SpherePreserving(4, 4, rank=2), M.RK4(), set()),
        (F.MassPreserving(4, 4, rank=2), M.RK4(), {ones4}),
        # Euler of a gradient field: the certified bound of docs/lipschitz.md (issue 8)
        (g := F.Gradient(4, 4), M.Euler(), {st.Lipschitz(g.euler_lipschitz_bound(0.1))}),
        (F.Gradient(4, 4), M.Heun(), set()),
    ]
    for field, method, expected in cases:
        assert dn.Step(field, method, 0.1).guarantees == frozenset(expected), (field, method)


def test_flow_of_mixed_steps_keeps_only_shared_guarantees():
    ham = dn.Step(F.Hamiltonian(2, 4), M.SymplecticEuler(), 0.1)
    vol = dn.Step(F.VolumePreserving(2, 4), M.StormerVerlet(), 0.1)
    assert dn.Flow([ham, vol]).guarantees == frozenset({st.PreservesVolume()})
    assert dn.Flow([ham, ham]).guarantees == frozenset({st.PreservesVolume(), st.Symplectic()})


def test_conserve_linear_keeps_orthogonal_invariants_only():
    c1, c2, c3 = [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0], [1.0, 0.0, 1.0, 0.0]
    both = F.Projected(F.Projected(F.Dense(4, 4), c1), c2)
    assert set(both.traits) == {st.LinearInvariant(c1), st.LinearInvariant(c2)}
    x = points(16, 4, seed=0)
    field = randomize(both, 1.0, seed=0)
    with torch.no_grad():
        out = field(x)
    for c in (c1, c2):
        assert float((out @ torch.tensor(c, dtype=torch.float64)).abs().max()) <= 8 * EPS * float(out.abs().max())
    assert set(F.Projected(F.Projected(F.Dense(4, 4), c1), c3).traits) == {st.LinearInvariant(c3)}
    assert not any(isinstance(t, st.Partitioned) for t in F.Projected(F.VolumePreserving(2, 4), c1).traits)


# --- the identities behind the guarantees, at the level of the field ------------------------------

def test_mass_field_has_zero_total():
    field = randomize(F.MassPreserving(6, 8), 2.0, seed=1)
    x = points(64, 6, seed=1)
    with torch.no_grad():
        out = field(x)
    # 1^T F adds 6 terms each of size <= |F|_inf: round-off at most 6 eps |F|_inf per row (C = 1)
    assert float(out.sum(1).abs().max()) <= 6 * EPS * float(out.abs().max())
    assert float(out.abs().max()) > 1.0  # not trivially zero
    # it is (A - A^T) 1 for the matrix A whose strict upper triangle is field.net.upper(x)
    A = torch.zeros(64, 6, 6, dtype=torch.float64)
    i, j = torch.triu_indices(6, 6, offset=1)
    A[:, i, j] = field.net.upper(x)
    assert torch.allclose(out, ((A - A.transpose(1, 2)) @ torch.ones(6, dtype=torch.float64)), rtol=0, atol=1e-13)


def test_projected_field_conserves_c_and_changes_nothing_orthogonal():
    c = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    inner = randomize(F.Dense(4, 8), 1.0, seed=2)
    field = F.Projected(inner, c)
    x = points(32, 4, seed=2)
    with torch.no_grad():
        out, raw = field(x), inner(x)
    assert float((out @ c).abs().max()) <= 4 * EPS * float((out.abs() @ c.abs()).max())
    assert torch.allclose(out + torch.outer(raw @ c, c) / c.dot(c), raw, rtol=0, atol=1e-13)


def test_sphere_field_is_skew_exactly_and_tangent_to_spheres():
    field = randomize(F.SpherePreserving(5, 8), 2.0, seed=3)
    x = points(32, 5, seed=3)
    with torch.no_grad():
        S = field.skew(x)
        out = field(x)
    assert S.shape == (32, 5, 5)
    assert torch.equal(S, -S.transpose(1, 2))  # exactly, not to round-off
    assert float(((out * x).sum(1).abs() / (out.norm(dim=1) * x.norm(dim=1))).max()) <= 5 * EPS


@pytest.mark.parametrize("potential", ["logcosh", "softplus"])
def test_hamiltonian_field_is_canonical_gradient_of_its_energy(potential):
    field = randomize(F.Hamiltonian(3, 8, potential=potential), 1.5, seed=4)
    x = points(16, 6, seed=4).requires_grad_(True)
    H = field.hamiltonian(x)
    assert H.shape == (16,)
    (grad,) = torch.autograd.grad(H.sum(), x)
    expected = torch.cat([grad[:, 3:], -grad[:, :3]], dim=1)  # (dH/dp, -dH/dq)
    assert torch.allclose(field(x), expected, rtol=1e-12, atol=1e-12)
    q_dim, f, g = field.partition()
    assert q_dim == 3
    assert torch.equal(torch.cat([f(x[:, 3:]), g(x[:, :3])], dim=1), field(x))


def test_logcosh_does_not_overflow():
    field = randomize(F.Hamiltonian(1, 4), 1.0, seed=5)
    x = torch.full((2, 2), 1e4, dtype=torch.float64)
    assert torch.isfinite(field.hamiltonian(x)).all() and torch.isfinite(field(x)).all()


@pytest.mark.parametrize("sign", [-1, 1])
def test_gradient_field_is_signed_gradient_of_convex_potential(sign):
    field = randomize(F.Gradient(4, 8, sign=sign), 1.0, seed=6)
    x = points(16, 4, seed=6).requires_grad_(True)
    # relu = Gamma' for Gamma(s) = relu(s)^2 / 2, V(x) = 1^T Gamma(A x + b)
    V = 0.5 * torch.relu(x @ field.A.t() + field.b).square().sum()
    (grad,) = torch.autograd.grad(V, x)
    assert torch.allclose(field(x), sign * grad, rtol=1e-12, atol=1e-12)
    step = dn.Step(field, M.Euler(), 0.3)
    with torch.no_grad():
        assert torch.equal(step(x), x + 0.3 * field(x))


def test_volume_field_allows_different_q_and_v_sizes():
    field = F.VolumePreserving(3, 5, v_dim=2)
    assert field.dim == 5
    q_dim, f, g = field.partition()
    assert q_dim == 3
    assert f(torch.randn(4, 2)).shape == (4, 3) and g(torch.randn(4, 3)).shape == (4, 2)


def test_learned_step_size_works_with_partitioned_and_cayley_methods():
    for field, method in [(F.Hamiltonian(2, 4), M.StormerVerlet()), (F.SpherePreserving(3, 4), M.Cayley())]:
        step = dn.Step(field, method, 0.2, learn_h=True, h_max=1.0)
        step(torch.randn(3, field.dim)).sum().backward()
        assert step.h_raw.grad is not None and torch.isfinite(step.h_raw.grad)


# --- convergence orders (log-log slopes against a fine RK4 reference) ----------------------------

def _order(field, method, expected, x, t_end=0.5):
    reference = dn.Flow.repeat(dn.Step(field, M.RK4(), t_end / 512), 512)
    with torch.no_grad():
        exact = reference(x)
        errs = []
        for n in (16, 32, 64):
            approx = dn.Flow.repeat(dn.Step(field, method, t_end / n), n)(x)
            errs.append(float((approx - exact).norm()))
    slopes = [torch.log2(torch.tensor(errs[k] / errs[k + 1])).item() for k in range(2)]
    assert all(abs(s - expected) <= 0.25 for s in slopes), (method.name, errs, slopes)


def test_orders_of_partitioned_and_cayley_methods():
    ham = randomize(F.Hamiltonian(2, 6), 1.0, seed=7)
    _order(ham, M.SymplecticEuler(), 1, points(4, 4, seed=7))
    _order(ham, M.StormerVerlet(), 2, points(4, 4, seed=7))
    sphere = randomize(F.SpherePreserving(4, 6), 1.0, seed=8)
    _order(sphere, M.Cayley(), 1, points(4, 4, seed=8))
