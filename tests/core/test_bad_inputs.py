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
from dynnets.applications.pde.baselines import CircularCNN
from dynnets.applications.pde.construct import polynomial_convfd
from dynnets.errors import (
    ConfigError,
    ConfigTypeError,
    DtypeError,
    DynnetsError,
    NonFiniteWeightError,
    ShapeError,
    StepSizeError,
    TableauError,
)

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


# ---------------------------------------------------------------------------------------------------------
# Issue 26, items 10, 16, 17, 18: each input gets one typed one-line error, raised before any work.

def _one_line(excinfo):
    assert "\n" not in str(excinfo.value).strip(), str(excinfo.value)
    return str(excinfo.value)


def _counting(field):
    """The field with a counter of its evaluations (a forward pre-hook): 0 means no work was done."""
    calls = []
    field.register_forward_pre_hook(lambda module, args: calls.append(1))
    return field, calls


def _counting_method(method):
    """The method with a counter of the steps it starts (step and advance): 0 means no work was done (a
    partitioned or Cayley step does not call the field's forward)."""
    calls = []

    def counting(run):
        def counted(*args, **kwargs):
            calls.append(1)
            return run(*args, **kwargs)
        return counted

    method.step, method.advance = counting(method.step), counting(method.advance)
    return method, calls


@pytest.mark.parametrize("data", ["tuple", "list"])
def test_fit_refuses_a_tuple_or_list_of_tensors_as_data(data):
    from dynnets.train import fit

    x = torch.randn(16, 2, dtype=torch.float64)
    y = x.sum(1, keepdim=True)
    batches = (x, y) if data == "tuple" else [x, y]
    with pytest.raises(ConfigError, match=r"\[\(x0, x1\)\] for one batch") as info:
        fit(torch.nn.Linear(2, 1).double(), lambda m, b: (m(b[0]) - b[1]).square().mean(), batches, steps=2,
            progress=False)
    _one_line(info)


def test_fit_takes_a_list_holding_one_tuple_as_one_batch_at_every_step():
    from dynnets.train import fit

    x = torch.randn(16, 2, dtype=torch.float64)
    y = x.sum(1, keepdim=True)
    seen = []

    def loss(m, b):
        seen.append(b)
        return (m(b[0]) - b[1]).square().mean()

    fit(torch.nn.Linear(2, 1).double(), loss, [(x, y)], steps=3, progress=False)
    assert len(seen) == 3 and all(torch.equal(b[0], x) and torch.equal(b[1], y) for b in seen)


STEPS = [
    ("Dense/Euler", lambda: F.Dense(3, 4), M.Euler, 3),
    ("Hamiltonian/StormerVerlet", lambda: F.Hamiltonian(2, 4), M.StormerVerlet, 4),
    ("SpherePreserving/Cayley", lambda: F.SpherePreserving(3, 4), M.Cayley, 3),
    ("LowRankSphere/Cayley", lambda: F.SpherePreserving(3, 4, rank=1), M.Cayley, 3),
    ("MassPreserving/RK4", lambda: F.MassPreserving(3, 4), M.RK4, 3),
    ("GeneralHamiltonian/GaussLegendre", lambda: F.GeneralHamiltonian(2, 4), M.GaussLegendre, 4),
]


@pytest.mark.parametrize("name, make, method, dim", STEPS, ids=[s[0] for s in STEPS])
@pytest.mark.parametrize("model, given", [(torch.float32, torch.float64), (torch.float64, torch.float32),
                                          (torch.float32, torch.float16), (torch.float64, torch.float16)])
@pytest.mark.parametrize("wrap", ["step", "flow"])
def test_a_dtype_mismatch_is_one_dtype_error_naming_both_before_any_work(name, make, method, dim, model, given,
                                                                         wrap):
    method, calls = _counting_method(method())
    step = dn.Step(make(), method, 0.1).to(model)
    layer = step if wrap == "step" else dn.Flow.repeat(step, 3)
    with pytest.raises(DtypeError, match=f"{model} parameters but got {given} states") as info:
        layer(torch.randn(2, dim).to(given))
    _one_line(info)
    assert not calls
    # control: the model's own dtype runs
    assert torch.isfinite(layer(torch.randn(2, dim, dtype=model))).all() and calls


@pytest.mark.parametrize("name, make, method, dim", STEPS, ids=[s[0] for s in STEPS])
@pytest.mark.parametrize("x, error, rule", [
    (lambda d: torch.ones(2, d, dtype=torch.int64), DtypeError, "floating-point states, got torch.int64"),
    (lambda d: [[0.5] * d], DtypeError, "takes a torch.Tensor of states, got list"),
    (lambda d: torch.tensor(1.0), ShapeError, "non-empty batch of states .* got shape \\(\\)"),
    (lambda d: torch.zeros(0, d), ShapeError, "non-empty batch of states .* got shape \\(0, "),
], ids=["int64", "list", "0-d", "empty"])
def test_states_that_are_no_batch_of_floats_are_refused(name, make, method, dim, x, error, rule):
    method, calls = _counting_method(method())
    with pytest.raises(error, match=rule) as info:
        dn.Step(make(), method, 0.1)(x(dim))
    _one_line(info)
    assert not calls


@pytest.mark.parametrize("make, method, error", [
    (lambda: F.Dense(3, 4), M.GaussLegendre(2), ConfigError),
    (lambda: F.GeneralHamiltonian(2, 4), M.GaussLegendre(2), ConfigError),
    (lambda: F.SpherePreserving(4, 4), M.Cayley(), ShapeError),
    (lambda: F.SpherePreserving(4, 4, rank=1), M.Cayley(), ShapeError),
], ids=["Dense/GL", "GeneralHamiltonian/GL", "Sphere/Cayley", "LowRankSphere/Cayley"])
def test_per_state_solvers_refuse_a_second_batch_axis(make, method, error):
    field = make().double()
    with pytest.raises(error, match="one batch axis") as info:
        dn.Step(field, method, 0.1)(torch.randn(2, 5, field.dim, dtype=torch.float64))
    _one_line(info)
    # the same states with one batch axis are stepped (a convolutional field keeps its (C, H, W) states)
    assert torch.isfinite(dn.Step(field, method, 0.1)(torch.randn(10, field.dim, dtype=torch.float64))).all()
    conv = dn.Step(F.ConvFD(1, 2).double(), M.GaussLegendre(1), 0.01)
    assert torch.isfinite(conv(torch.randn(2, 1, 4, 4, dtype=torch.float64))).all()


def test_crank_nicolson_refuses_a_state_of_the_wrong_size():
    heat = dn.systems.HeatField1D(dn.systems.UniformGrid1D(0.0, 1.0, 6))
    with pytest.raises(ShapeError, match="dim=5, got shape \\(2, 7\\)") as info:
        dn.Step(heat, M.CrankNicolson(), 0.01)(torch.randn(2, 7))
    _one_line(info)


@pytest.mark.parametrize("make, error, rule", [
    (lambda: dn.Flow(None), ConfigTypeError, "a Flow takes a list of layers, got NoneType"),
    (lambda: dn.Flow(dn.Step(F.Dense(3, 4), M.Euler(), 0.1)), ConfigTypeError, "got Step"),
    (lambda: F.Linear("eye"), ConfigError, "got the string 'eye'"),
    (lambda: F.Linear([[1.0, True], [0.0, 1.0]]), ConfigError, "got the entry True"),
], ids=["Flow(None)", "Flow(step)", "Linear('eye')", "Linear(bool entry)"])
def test_constructors_refuse_wrong_types(make, error, rule):
    with pytest.raises(error, match=rule) as info:
        make()
    _one_line(info)


def _timed(dim=3):
    return dn.Step(F.FunctionField(lambda t, x: -t.reshape(-1, 1) * x if t.dim() else -t * x, dim,
                                   time_dependent=True), M.RK4(), 0.1)


@pytest.mark.parametrize("layer", ["step", "flow"])
@pytest.mark.parametrize("t, error, rule", [
    ("0", ConfigError, "start time t must be a real number, got '0'"),
    (None, ConfigError, "start time t must be a real number, got None"),
    (math.nan, ConfigError, "start time t must be finite, got t=nan"),
    (math.inf, ConfigError, "start time t must be finite, got t=inf"),
    (torch.zeros(3), ShapeError, "shape \\(\\) or \\(batch,\\) = \\(4,\\), got \\(3,\\)"),
    (torch.zeros(4, 1), ShapeError, "got \\(4, 1\\)"),
], ids=["string", "None", "nan", "inf", "rows", "matrix"])
@pytest.mark.parametrize("timed", [True, False], ids=["time-dependent", "autonomous"])
def test_a_bad_start_time_is_refused_before_any_work(layer, t, error, rule, timed):
    step = _timed() if timed else dn.Step(F.Dense(3, 4), M.Euler(), 0.1)
    field, calls = _counting(step.field)
    run = step if layer == "step" else dn.Flow.repeat(step, 2)
    with pytest.raises(error, match=rule) as info:
        run(torch.randn(4, 3), t)
    _one_line(info)
    assert not calls
    assert torch.isfinite(run(torch.randn(4, 3), torch.linspace(0.0, 1.0, 4) if timed else 1.0)).all()


def test_a_complex_loss_is_refused():
    from dynnets.train import fit

    model = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(DtypeError, match="complex64") as info:
        fit(model, lambda m, b: m(torch.randn(4, 2)).sum() * (1 + 1j), steps=2, progress=False)
    _one_line(info)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


def _poison(module, value):
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)
    return module


@pytest.mark.parametrize("make, who", [
    (lambda: dn.Step(F.Dense(3, 4), M.Euler(), 0.1), "Step\\(Dense, Euler\\)"),
    (lambda: dn.Step(F.Gradient(3, 4), M.Euler(), 0.1), "Step\\(Gradient, Euler\\)"),
    (lambda: dn.constraints.rescaled_step(3, 4), "Step\\(RescaledGradient, Euler\\)"),
    (lambda: dn.constraints.BoundedLinear(3, 4), "BoundedLinear"),
    (lambda: dn.constraints.orthogonal_block(4, 4), "Flow step 0 \\(OrthogonalLinear\\)"),
    (lambda: dn.Flow([dn.Step(F.Dense(3, 4), M.Euler(), 0.1)] * 2), "Flow step 0 \\(Step\\)"),
], ids=["Dense", "Gradient", "rescaled", "BoundedLinear", "orthogonal_block", "Flow"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_weight_has_no_lipschitz_bound_and_the_error_names_the_layer(make, who, value):
    torch.manual_seed(0)
    layer = make()
    assert math.isfinite(layer.lipschitz_bound())  # control
    with pytest.raises(NonFiniteWeightError, match=who) as info:
        _poison(layer, value).lipschitz_bound()
    _one_line(info)


def test_spectral_norm_of_a_nan_matrix_is_a_typed_error():
    with pytest.raises(NonFiniteWeightError, match="NaN"):
        dn.constraints.spectral_norm(torch.full((3, 3), math.nan))


@pytest.mark.parametrize("h, dtype", [(1e308, torch.float32), (1e39, torch.float32), (1e5, torch.float16)])
def test_a_step_size_that_is_inf_in_the_states_dtype_is_refused(h, dtype):
    step = dn.Step(F.Dense(3, 4), M.Euler(), h).to(dtype)
    with pytest.raises(StepSizeError, match=f"too large for {dtype}") as info:
        step(torch.randn(2, 3).to(dtype))
    _one_line(info)
    # the same h is finite in float64: a right (if large) step
    wide = step.double()
    x = torch.randn(2, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(wide(x), x + h * wide.field(x))


@pytest.mark.parametrize("call, error, rule", [
    (lambda: dn.Step(F.Dense(3, 4), M.Euler(), 0.1, h_max=0.5), ConfigError, "h_max only with learn_h=True"),
    (lambda: M.ButcherTableau.from_lists([[0.0]], ["1"]), TableauError, "an entry of b must be a real number, got '1'"),
    (lambda: M.ButcherTableau.from_lists([[0]], [True]), TableauError, "an entry of b must be a real number, got True"),
    (lambda: M.ButcherTableau.from_lists([["0.5"]], [1.0]), TableauError, "an entry of row 0 of A must be a real number, got '0.5'"),
    (lambda: dn.constraints.gradient_euler_bound(math.nan, -1, 0.5, 1.0, (0.5, 1.0)), StepSizeError, "h=nan"),
    (lambda: dn.constraints.power_iteration_norm(torch.randn(3, 3), iterations=0), ConfigError, "iterations"),
    (lambda: dn.constraints.Normalize([0.0, 1.0], [1.0, 2.0, 3.0]), ConfigError, "broadcastable shapes"),
    (lambda: dn.constraints.switching_pair(4, 8, h_c=100), StepSizeError, "h_c=100 is not below"),
    (lambda: dn.constraints.switching_pair(4, 8, h_c=1.0), StepSizeError, "size h_E=0"),
    (lambda: dn.constraints.ZeroPad(2, 3, axis=0), ConfigError, r"axis \(counted from the end\) must be an integer "
     r"\(at most -1\), got 0"),
    (lambda: dn.constraints.ZeroPad(2, 3, axis=True), ConfigError, r"at most -1\), got True"),
    (lambda: dn.systems.stencils.identity(2), ConfigError, "kernel size must be a positive odd integer, got 2"),
    (lambda: dn.systems.stencils.identity(1.0), ConfigError, "kernel size must be a positive integer, got 1.0"),
    (lambda: dn.systems.HeatField1D(dn.systems.UniformGrid1D(0.0, 1.0, 6), alpha=0), ConfigError,
     "the diffusivity alpha must be positive and finite, got alpha=0.0"),
    (lambda: dn.systems.FisherField2D(dn.systems.PeriodicGrid2D(8), state_range=(1.0, 0.0)), ConfigError,
     r"state_range must be \(m0, m1\) with m0 <= m1, got \(1.0, 0.0\)"),
    (lambda: dn.systems.FisherField2D(dn.systems.PeriodicGrid2D(8), state_range=(0.0, math.inf)), ConfigError,
     "a state_range end must be finite, got a state_range end=inf"),
    (lambda: dn.linalg.check_grid((4, 2.5)), ConfigError, "input_size n2 must be a positive integer .*got 2.5"),
    (lambda: CircularCNN(4, 2), ConfigError, "CircularCNN needs an odd kernel_size, got 2"),
    (lambda: dn.systems.detest.TwoBody(0.99), ConfigError, "eccentricity must be < 0.99, got eccentricity=0.99"),
    (lambda: polynomial_convfd(dn.systems.stencils.laplacian("5pt", 1.0), kernel_size=5.0), ConfigError,
     "kernel_size must be a positive integer, got 5.0"),
], ids=["h_max-without-learn_h", "tableau-string", "tableau-bool", "tableau-A-string", "gradient_euler_bound-nan",
        "power-iteration-0", "normalize-lengths", "switching-pair-h_c-100", "switching-pair-seed-h_c-1",
        "zeropad-axis-0", "zeropad-axis-bool", "identity-even", "identity-float", "heat-alpha-0",
        "state_range-reversed", "state_range-inf", "input_size-float", "cnn-even-kernel", "convfd-float-kernel",
        "two-body-e-0.99"])
def test_accepted_nonsense_is_refused(call, error, rule):
    with pytest.raises(error, match=rule) as info:
        call()
    _one_line(info)


def test_normalize_broadcasts_per_channel_and_refuses_states_it_does_not_fit():
    mean = torch.rand(3, 1, 1, dtype=torch.float64)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    layer = dn.constraints.Normalize(mean, 2.0)
    assert torch.equal(layer(x), (x - mean) / 2.0)  # per channel, in the input's dtype, exact constants
    with pytest.raises(ShapeError, match="do not fit states of shape \\(2, 4\\)") as info:
        dn.constraints.Normalize([0.0, 1.0, 2.0], 1.0)(torch.randn(2, 4))
    _one_line(info)


def test_fit_progress_must_be_a_bool():
    from dynnets.train import fit

    with pytest.raises(ConfigError, match="progress must be True or False, got 2"):
        fit(torch.nn.Linear(2, 1), lambda m, b: m(torch.randn(4, 2)).sum(), steps=1, progress=2)


# ---------------------------------------------------------------------------------------------------------
# Corpus of bad or extreme inputs across the public API (issue 26): each gives a right answer (checked where
# there is one to check, else finite) or one typed one-line dynnets error; never a raw torch/Python
# exception from inside dynnets, never a hang.

def _dense_step(dtype=torch.float32, **kw):
    torch.manual_seed(0)
    return dn.Step(F.Dense(3, 4), M.Euler(), 0.1, **kw).to(dtype)


def _timed_step():
    field = F.FunctionField(lambda t, x: -x * t.reshape(-1, 1) if t.dim() else -x * t, 3, time_dependent=True)
    return dn.Step(field, M.RK4(), 0.1)


def _flow(n=3):
    return dn.Flow.repeat(_dense_step(), n)


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=dtype)


def _fit(data=None, loss=None, **options):
    from dynnets.train import fit

    model = torch.nn.Linear(2, 1).double()
    x = _x(8, 2, dtype=torch.float64)
    loss = loss or (lambda m, b: m(x).square().mean())
    return fit(model, loss, data, **{"steps": 2, "progress": False, **options}).losses


def _tiny_h_is_the_identity():
    step = dn.Step(F.Dense(3, 4).double(), M.Euler(), 1e-300)
    x = _x(4, 3, dtype=torch.float64)
    with torch.no_grad():
        y = step(x)
    assert torch.equal(y, x), "h = 1e-300: x + h F(x) rounds to x in float64"
    return y


def _unbatched_vector_is_one_state():
    step = _dense_step()
    x = _x(3)
    with torch.no_grad():
        assert torch.equal(step(x), step(x[None])[0])
        return step(x)


def _normalize_scalar():
    x = _x(4, 3, dtype=torch.float64)
    layer = dn.constraints.Normalize(1.0, 2.0).double()
    assert torch.equal(layer(x), (x - 1.0) / 2.0)
    return layer(x)


def _zeropad_same_size():
    x = _x(4, 3)
    assert torch.equal(dn.constraints.ZeroPad(3, 3)(x), x)
    return x


def _solve_decay():
    field = F.Linear(-torch.eye(2, dtype=torch.float64))
    x0 = _x(3, 2, dtype=torch.float64)
    states = dn.solve(field, x0, [0.0, 1.0], rtol=1e-10, atol=1e-12).x
    assert torch.allclose(states[-1], math.exp(-1.0) * x0, rtol=1e-8, atol=0.0), states[-1]
    return states


def _per_row_times():
    step = _timed_step()
    x, t = _x(4, 3), torch.linspace(0.0, 1.0, 4)
    with torch.no_grad():
        y = step(x, t)
        for i in range(4):  # row i is the step from its own time t_i
            assert torch.allclose(y[i], step(x[i : i + 1], float(t[i]))[0], rtol=1e-6, atol=1e-6)
    return y


CORPUS = {
    # dn.Step: construction
    "step-h-negative": lambda: dn.Step(F.Dense(3, 4), M.Euler(), -0.1),
    "step-h-zero": lambda: dn.Step(F.Dense(3, 4), M.Euler(), 0.0),
    "step-h-inf": lambda: dn.Step(F.Dense(3, 4), M.Euler(), math.inf),
    "step-h-1e5-float16": lambda: _run(dn.Step(F.Dense(3, 4), M.Euler(), 1e5).half(), _x(2, 3).half()),
    "step-method-string": lambda: dn.Step(F.Dense(3, 4), "euler", 0.1),
    "step-field-string": lambda: dn.Step("dense", M.Euler(), 0.1),
    "step-h_max-nan": lambda: dn.Step(F.Dense(3, 4), M.Euler(), 0.1, learn_h=True, h_max=math.nan),
    "step-h_max-below-h": lambda: dn.Step(F.Dense(3, 4), M.Euler(), 0.1, learn_h=True, h_max=0.05),
    "step-h-1e-300-float64": _tiny_h_is_the_identity,
    # dn.Step: inputs
    "step-input-numpy": lambda: _dense_step()(np.ones((2, 3), dtype=np.float32)),
    "step-input-empty": lambda: _dense_step()(torch.zeros(0, 3)),
    "step-input-unbatched": _unbatched_vector_is_one_state,
    "step-input-wrong-dim": lambda: _dense_step()(_x(2, 4)),
    "step-input-bool": lambda: _dense_step()(torch.ones(2, 3, dtype=torch.bool)),
    "step-input-complex": lambda: _dense_step()(torch.ones(2, 3, dtype=torch.complex64)),
    "step-input-meta-device": lambda: _dense_step()(torch.ones(2, 3, device="meta")),
    "step-inverse-float64-into-float32": lambda: dn.Step(F.VolumePreserving(2, 4), M.SymplecticEuler(), 0.1)
    .inverse(_x(2, 4, dtype=torch.float64)),
    "hamiltonian-odd-state": lambda: dn.Step(F.Hamiltonian(2, 4), M.StormerVerlet(), 0.1)(_x(2, 3)),
    "cayley-lowrank-3d-batch": lambda: dn.Step(F.SpherePreserving(3, 4, rank=1), M.Cayley(), 0.1)(_x(2, 5, 3)),
    "gauss-legendre-closed-form-3d-batch": lambda: dn.Step(F.GeneralHamiltonian(2, 4), M.GaussLegendre(2), 0.1)(
        _x(2, 5, 4)),
    "step-t-none": lambda: _timed_step()(_x(2, 3), t=None),
    "step-t-nan": lambda: _timed_step()(_x(2, 3), t=math.nan),
    "step-t-matrix": lambda: _timed_step()(_x(2, 3), t=torch.zeros(2, 2)),
    "step-t-complex": lambda: _timed_step()(_x(2, 3), t=1j),
    # dn.Flow
    "flow-single-step-not-list": lambda: dn.Flow(_dense_step()),
    "flow-empty": lambda: dn.Flow([]),
    "flow-with-a-string": lambda: dn.Flow([_dense_step(), "euler"]),
    "flow-repeat-zero": lambda: dn.Flow.repeat(_dense_step(), 0),
    "flow-repeat-huge": lambda: dn.Flow.repeat(_dense_step(), 10**9),
    "flow-input-float64-into-float32": lambda: _flow()(_x(2, 3, dtype=torch.float64)),
    "flow-trajectory-every-zero": lambda: _flow().trajectory(_x(2, 3), every=0),
    "flow-times-nan": lambda: _flow().times(math.nan),
    "flow-repeat-negative-step": lambda: dn.Flow.repeat(dn.Step(F.Dense(3, 4), M.Euler(), -0.1), 10),
    # dn.solve
    "solve-nan-time": lambda: dn.solve(F.Dense(3, 4), _x(2, 3), [0.0, math.nan]),
    "solve-negative-h": lambda: dn.solve(F.Dense(3, 4), _x(2, 3), [0.0, 1.0], M.RK4(), h=-0.1),
    "solve-float64-into-float32": lambda: dn.solve(F.Dense(3, 4), _x(2, 3, dtype=torch.float64), [0.0, 1.0]).x,
    "solve-string-state": lambda: dn.solve(F.Dense(3, 4), "x0", [0.0, 1.0]),
    "solve-negative-rtol": lambda: dn.solve(F.Dense(3, 4), _x(2, 3), [0.0, 1.0], rtol=-1.0),
    # dn.fields
    "dense-zero-dim": lambda: F.Dense(0, 4),
    "dense-float-width": lambda: F.Dense(3, 4.0),
    "dense-unknown-activation": lambda: F.Dense(3, 4, activation="nope"),
    "gradient-sign-zero": lambda: F.Gradient(3, 4, sign=0),
    "hamiltonian-unknown-potential": lambda: F.Hamiltonian(2, 4, potential="nope"),
    "sphere-rank-zero": lambda: F.SpherePreserving(3, 4, rank=0),
    "mass-rank-negative": lambda: F.MassPreserving(3, 4, rank=-1),
    "convfd-even-kernel": lambda: F.ConvFD(2, 3, kernel_size=2),
    "convgradient-empty-grid": lambda: F.ConvGradient(2, 3, (0, 6)),
    "projected-nan-c": lambda: F.Projected(F.Dense(4, 8), [math.nan, 1.0, 0.0, 0.0]),
    "projected-string-entries": lambda: F.Projected(F.Dense(2, 8), ["1", "0"]),
    "linear-bool-entries": lambda: F.Linear([[True, False], [False, True]]),
    "linear-non-square": lambda: F.Linear([[1.0, 2.0]]),
    "function-field-not-callable": lambda: F.FunctionField("tanh", 3),
    "quadratic-preserving-string-Q": lambda: F.QuadraticPreserving(3, 4, "eye"),
    "maxmin-odd-size": lambda: F.MaxMin(3),
    # dn.methods
    "explicit-rk-string": lambda: M.ExplicitRK("rk4"),
    "gauss-legendre-4-stages": lambda: M.GaussLegendre(4),
    "implicit-zero-iterations": lambda: M.ImplicitRK(M.tableaux.GAUSS_LEGENDRE_1, max_iterations=0),
    "tableau-order-zero": lambda: M.ButcherTableau.from_lists([[0.0, 0.0], [1.0, 0.0]], [0.5, 0.5], order=0),
    "tableau-order-of-strings": lambda: M.tableaux.CLASSIC_RK4.order_of(["0.25"] * 4),
    # dn.testing
    "testing-drift-nan-c": lambda: dn.testing.invariant_drift(_dense_step(), _x(2, 3), [math.nan, 1.0, 0.0]),
    "testing-ratio-equal-points": lambda: dn.testing.lipschitz_ratio(_dense_step(), _x(2, 3), _x(2, 3)),
    "testing-symplecticity-unbatched": lambda: dn.testing.symplecticity_defect(_dense_step(), _x(3)),
    "testing-verify-negative-C": lambda: dn.testing.verify(_flow(), _x(2, 3), C=-1.0),
    "testing-quadratic-string-Q": lambda: dn.testing.quadratic_drift(_dense_step(), _x(2, 3), "eye"),
    "testing-points-string": lambda: dn.testing.norm_drift(_dense_step(), "points"),
    # dynnets.train.fit
    "fit-data-int": lambda: _fit(5),
    "fit-python-float-loss": lambda: _fit(loss=lambda m, b: 1.0),
    "fit-zero-steps": lambda: _fit(steps=0),
    "fit-nan-lr": lambda: _fit(lr=math.nan),
    # dn.constraints
    "bounded-linear-zero-c": lambda: dn.constraints.BoundedLinear(3, 4, c=0.0),
    "zeropad-shrinking": lambda: dn.constraints.ZeroPad(4, 2),
    "normalize-zero-std": lambda: dn.constraints.Normalize([0.0], [0.0]),
    "normalize-string": lambda: dn.constraints.Normalize("0", "1"),
    "spectral-bound-negative-c": lambda: dn.constraints.SpectralNormBound(-1.0),
    "rescaled-step-h-3": lambda: dn.constraints.rescaled_step(3, 4, h=3.0),
    "contractive-step-dense-field": lambda: dn.constraints.ContractiveStep(F.Dense(3, 4)),
    "leaky-relu-string-slope": lambda: dn.constraints.leaky_relu("0.5"),
    "seed-contraction-nan": lambda: dn.constraints.seed_contraction(math.nan),
    # extreme but valid: a right answer, checked
    "dense-1x1": lambda: _run(dn.Step(F.Dense(1, 1), M.Euler(), 0.1), _x(2, 1)),
    "normalize-scalar": _normalize_scalar,
    "zeropad-same-size": _zeropad_same_size,
    "solve-linear-decay": _solve_decay,
    "step-per-row-times": _per_row_times,
    "step-t-int": lambda: _timed_step()(_x(2, 3), t=1).detach(),
}

#: the corpus cases that must give a (checked or finite) answer; every other case must be refused with a typed error
ANSWERS = {"step-h-1e-300-float64", "step-input-unbatched", "dense-1x1", "normalize-scalar", "zeropad-same-size",
           "solve-linear-decay", "step-per-row-times", "step-t-int"}


def _run(step, x):
    with torch.no_grad():
        return step(x)


def classify(name: str) -> str:
    """'typed' (one line, a DynnetsError) or 'answer' (finite, and right where the case checks it) as the
    case expects; a raw exception propagates, an accepted refusal-case or a wrong answer fails."""
    try:
        out = CORPUS[name]()
    except DynnetsError as err:
        assert "\n" not in str(err).strip(), str(err)
        assert name not in ANSWERS, f"{name}: a valid input was refused: {err}"
        return "typed"
    assert name in ANSWERS, f"{name}: nonsense was accepted, returned {type(out).__name__}"
    values = out if isinstance(out, (list, tuple)) else [out]
    for v in values:
        assert bool(torch.isfinite(torch.as_tensor(v)).all()), f"{name}: non-finite result {v}"
    return "answer"


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_gives_a_right_answer_or_a_typed_error(name):
    classify(name)
