"""Property-based bad-input suite over the public entry points (issue 15): every call either returns an
object that then computes finite results on a valid input, or raises the project's typed base error
(``DynnetsError``) with one line naming the value and the rule. Anything else (a raw TypeError from
torch, an OverflowError, a NaN result, a hang) fails. Issue 15's cases are the seed corpus (@example)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import dynnets as dn
from dynnets.errors import DynnetsError

F, M = dn.fields, dn.methods
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: values a user might pass where a number, a size or a flag is expected
NASTY = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(2**62, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e-300, 1e300, 1e-50, -0.0, 0.0]),
    st.text(max_size=4), st.sampled_from(["0.1", "tanh", "", "1234"]), st.lists(st.floats(-2, 2), max_size=3),
    st.builds(lambda v: torch.tensor(v, requires_grad=True), st.floats(0.01, 1.0)),
    st.builds(lambda v: complex(v, 1.0), st.floats(-1, 1)),
)


def outcome(make, use=None):
    """make() must return or raise DynnetsError (one line); then use(obj) must be finite or raise so."""
    try:
        obj = make()
    except DynnetsError as err:
        assert "\n" not in str(err).strip(), str(err)
        return None
    if use is not None:
        try:
            out = use(obj)
        except DynnetsError as err:
            assert "\n" not in str(err).strip(), str(err)
            return None
        values = out if isinstance(out, (tuple, list)) else [out]
        for v in values:
            t = torch.as_tensor(v)
            assert bool(torch.isfinite(t).all()), f"non-finite result from an accepted input: {t}"
    return obj


def run_step(step):
    with torch.no_grad():
        return step(torch.randn(3, step.field.dim))


@SETTINGS
@given(h=NASTY, learn_h=NASTY)
@example(h=True, learn_h=False)
@example(h="0.1", learn_h=False)
@example(h=1e-50, learn_h=True)
@example(h=0.1, learn_h="no")
def test_step_size_and_learn_h(h, learn_h):
    outcome(lambda: dn.Step(F.Dense(3, 4), M.Euler(), h, learn_h=learn_h), run_step)


@SETTINGS
@given(dim=NASTY, width=NASTY, init_scale=NASTY)
@example(dim=3, width=4, init_scale=-1.0)
@example(dim=3, width=4, init_scale=math.nan)
def test_field_constructors(dim, width, init_scale):
    for family in (F.Dense, F.MassPreserving, F.SpherePreserving, F.Gradient, F.VolumePreserving, F.Hamiltonian):
        outcome(lambda family=family: family(dim, width, init_scale=init_scale),
                lambda f: f(torch.randn(2, f.dim)))


@SETTINGS
@given(c=st.one_of(NASTY, st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=4, max_size=4)))
@example(c=[1e200, 1e200, 0.0, 0.0])
@example(c=[1e-300, 0.0, 0.0, 0.0])
@example(c="1234")
def test_conserve_linear_vector(c):
    def use(field):
        step = dn.Step(field, M.RK4(), 0.3).double()
        x = torch.randn(8, 4, dtype=torch.float64)
        (trait,) = field.traits
        drift = dn.testing.invariant_drift(dn.Flow.repeat(step, 10), x, trait.c)
        assert drift <= 10 * 10 * 4 * torch.finfo(torch.float64).eps, drift
        return torch.tensor(drift)

    outcome(lambda: F.Projected(F.Dense(4, 8).double(), c), use)


@SETTINGS
@given(h=st.floats(1e-3, 1e300), dtype=st.sampled_from([torch.float32, torch.float64]))
@example(h=1e20, dtype=torch.float64)
@example(h=1e7, dtype=torch.float32)
def test_cayley_norm_holds_or_step_is_refused(h, dtype):
    step = dn.Step(F.SpherePreserving(4, 8), M.Cayley(), h).to(dtype)
    x = torch.randn(16, 4, dtype=dtype)

    def use(s):
        with torch.no_grad():
            y = s(x)
        drift = ((y.double().norm(dim=1) / x.double().norm(dim=1)) - 1).abs().max()
        assert float(drift) <= 8 * torch.finfo(dtype).eps, float(drift)
        return y

    outcome(lambda: step, use)


@SETTINGS
@given(n=NASTY, memory=st.one_of(NASTY, st.sampled_from(["plain", "reversible", "checkpoint"])),
       every=NASTY)
def test_flow_options(n, memory, every):
    step = dn.Step(F.Hamiltonian(1, 4), M.StormerVerlet(), 0.1)
    outcome(lambda: dn.Flow.repeat(step, n, memory=memory, checkpoint_every=every),
            lambda f: f(torch.randn(2, 2)))


@SETTINGS
@given(a=NASTY, b=NASTY, n=NASTY, alpha=NASTY)
def test_heat_system(a, b, n, alpha):
    def make():
        return dn.systems.HeatField1D(dn.systems.UniformGrid1D(a, b, n), alpha)

    outcome(make, lambda f: f(torch.randn(2, f.dim, dtype=torch.float64)))


@SETTINGS
@given(scale=st.sampled_from([1e-300, 1e-160, 1.0, 1e160, 1e300]), entry=NASTY)
def test_yi_eig_any_symmetric_finite_matrix(scale, entry):
    from dynnets.applications.eigen import accuracy, yi_eig

    a = np.array([[2.0, 1.0, 0.0], [1.0, -1.0, 0.5], [0.0, 0.5, 0.3]])

    def make():
        m = a * scale
        try:
            m[0, 2] = m[2, 0] = float(entry) * scale
        except (TypeError, ValueError, OverflowError):
            pass
        return m

    def use(m):
        res = yi_eig(m)
        acc = accuracy(m, res.eigenvalues, res.eigenvectors)
        assert acc["max_abs_Lambda"] <= 1e-9, acc
        return res.eigenvalues

    matrix = make()
    if not np.all(np.isfinite(matrix)):
        with pytest.raises(DynnetsError):
            yi_eig(matrix)
        return
    outcome(lambda: matrix, use)


@SETTINGS
@given(value=NASTY)
def test_checks_layer(value):
    from dynnets import checks

    for fn in (lambda v: checks.positive_real("x", v), lambda v: checks.check_size("n", v),
               checks.init_scale, lambda v: checks.check_bool("flag", v)):
        got = outcome(lambda fn=fn: fn(value))
        if got is not None and not isinstance(got, bool):
            assert math.isfinite(got)
