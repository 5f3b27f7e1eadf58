"""dn.solve as a torchdiffeq user calls it (issue 28): any callable as the field, one state (d,), decreasing
times, gradients with respect to the times, float32 defaults, the batch norm, the dense output."""

import math

import pytest
import torch
from torch import nn

import dynnets as dn
from dynnets.errors import ConfigError, NotCertifiedError, ShapeError
from dynnets.solvers.integrate import DEFAULT_TOLERANCES

F64 = torch.float64
TIGHT = dict(rtol=1e-12, atol=1e-14)


class ODEFunc(nn.Module):
    """torchdiffeq's ode_demo field: forward(t, y) = MLP(y^3)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))

    def forward(self, t, y):
        return self.net(y ** 3)


def _rotation(t0, x0, t):
    """The closed form of x' = (x_2, -x_1)."""
    c, s = math.cos(t - t0), math.sin(t - t0)
    return torch.tensor([c * x0[0] + s * x0[1], -s * x0[0] + c * x0[1]], dtype=F64)


def rotate(x):
    return torch.stack([x[..., 1], -x[..., 0]], dim=-1)


def test_a_users_module_with_forward_t_y_is_a_time_dependent_field_whose_parameters_are_visible():
    torch.manual_seed(0)
    func = ODEFunc().double()
    y0 = torch.tensor([[2.0, 0.0]], dtype=F64)
    sol = dn.solve(func, y0, torch.linspace(0.0, 1.0, 5, dtype=F64))
    explicit = dn.solve(dn.fields.FunctionField(func, time_dependent=True), y0, torch.linspace(0.0, 1.0, 5, dtype=F64))
    assert torch.equal(sol.x, explicit.x)
    assert sol.field.time_dependent and sol.field.fn is func
    step = dn.Step(func, dn.methods.RK4(), 0.1)
    assert {id(p) for p in step.parameters()} == {id(p) for p in func.parameters()}
    assert set(step.state_dict()) == {f"field.fn.{k}" for k in func.state_dict()}
    assert step.float().field.fn.net[0].weight.dtype == torch.float32  # .to() reaches the user's module
    with pytest.raises(NotCertifiedError):
        sol.field.lipschitz_bound()
    loss = sol.x[-1].square().sum()
    loss.backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in func.parameters())


def test_the_signature_rule_never_drops_t():
    """f(t, x) = cos(t) is integrated with its time: x(t) = x0 + sin(t) (dropping t would give x0 + t);
    f(x) = -x is autonomous; a wrong output shape is refused."""
    x0 = torch.zeros(3, 1, dtype=F64)
    sol = dn.solve(lambda t, x: torch.cos(t) * torch.ones_like(x), x0, [0.0, 2.0], **TIGHT)
    assert (sol.x[-1] - math.sin(2.0)).abs().max() < 1e-11
    decay = dn.solve(lambda x: -x, torch.ones(2, dtype=F64), [0.0, 1.0], **TIGHT)
    assert (decay.x[-1] - math.exp(-1.0)).abs().max() < 1e-11
    with pytest.raises(ShapeError, match="returned"):
        dn.solve(lambda x: x.sum(-1), torch.ones(2, 3, dtype=F64), [0.0, 1.0])


def test_one_state_of_shape_d_gives_states_of_shape_len_t_by_d_equal_to_the_batch_of_one():
    t = torch.linspace(0.0, 3.0, 7, dtype=F64)
    one = dn.solve(rotate, torch.tensor([1.0, 0.5], dtype=F64), t, **TIGHT)
    batch = dn.solve(rotate, torch.tensor([[1.0, 0.5]], dtype=F64), t, **TIGHT)
    assert one.x.shape == (7, 2) and torch.equal(one.x, batch.x[:, 0])
    assert one.at(1.5).shape == (2,) and one.at(torch.tensor([0.5, 1.0])).shape == (2, 2)
    fixed = dn.solve(rotate, torch.tensor([1.0, 0.5], dtype=F64), t, method=dn.methods.RK4(), h=0.01)
    assert fixed.x.shape == (7, 2)


@pytest.mark.parametrize("options", [TIGHT, dict(method=dn.methods.RK4(), h=1e-3)], ids=["adaptive", "rk4"])
def test_decreasing_times_solve_backwards_and_the_field_gets_the_true_time(options):
    """x' = sin(t) from t = 3 down to 0: x(t) = x(3) + cos(3) - cos(t); the rotation from 5 back to 0 meets its
    closed form. Control: a field given the mirrored time -t (what s = -t would give) misses by O(1)."""
    x3 = torch.tensor([[0.7]], dtype=F64)
    t = [3.0, 2.0, 0.5, 0.0]
    want = torch.tensor([0.7 + math.cos(3.0) - math.cos(tj) for tj in t], dtype=F64)
    for sign, close in ((1.0, True), (-1.0, False)):
        sol = dn.solve(lambda t, x, sign=sign: torch.sin(sign * t) * torch.ones_like(x), x3, t, **options)
        assert ((sol.x[:, 0, 0] - want).abs().max() < 1e-10) == close
    assert sol.t.tolist() == t
    x0 = [1.0, 0.5]
    back = dn.solve(rotate, torch.tensor(x0, dtype=F64), [5.0, 2.0, 0.0], **options)
    for tj, xj in zip([5.0, 2.0, 0.0], back.x):
        assert (xj - _rotation(5.0, x0, tj)).abs().max() < 1e-10


def _forced(t, x):
    """A time-dependent nonlinear field: x' = sin(t) - x^2 / 4."""
    return torch.sin(t) - 0.25 * x ** 2


@pytest.mark.parametrize("options", [TIGHT, dict(method=dn.methods.RK4(), h=1e-3)], ids=["adaptive", "rk4"])
@pytest.mark.parametrize("times", [[0.3, 1.1, 2.0], [2.0, 1.1, 0.3]], ids=["forward", "backward"])
def test_gradients_with_respect_to_t_eval_match_finite_differences(times, options):
    """d x(t_j)/d t_j = F(t_j, x_j) and d x(t_j)/d t_0 = -(d x(t_j)/d x0) F(t_0, x0), against central
    differences of the solve (difference step 1e-5: error ~1e-10 relative; the solves' own errors, rtol
    1e-12 or RK4's h^4 = 1e-12, are below it)."""
    x0 = torch.tensor([[0.4], [-1.2]], dtype=F64)
    weights = torch.tensor([[1.0], [0.3]], dtype=F64)
    t = torch.tensor(times, dtype=F64, requires_grad=True)
    sol = dn.solve(_forced, x0, t, **options)
    (grad,) = torch.autograd.grad((sol.x * weights).sum(), t)

    def loss(tt):
        return float((dn.solve(_forced, x0, tt, **options).x * weights).sum())

    eps = 1e-5
    for j in range(3):
        up, down = list(times), list(times)
        up[j] += eps
        down[j] -= eps
        fd = (loss(up) - loss(down)) / (2 * eps)
        assert abs(float(grad[j]) - fd) < 1e-8 * max(1.0, abs(fd)), (j, float(grad[j]), fd)


def test_the_start_times_gradient_is_zero_for_the_state_at_the_start_and_the_values_are_unchanged():
    t = torch.tensor([0.0, 1.0], dtype=F64, requires_grad=True)
    x0 = torch.tensor([[1.0, 0.5]], dtype=F64)
    sol = dn.solve(rotate, x0, t, **TIGHT)
    assert torch.equal(sol.x.detach(), dn.solve(rotate, x0, t.detach(), **TIGHT).x)
    (grad,) = torch.autograd.grad(sol.x[0].sum(), t)
    assert grad.abs().max() == 0.0


def test_float32_default_tolerances_work_and_are_stated():
    assert DEFAULT_TOLERANCES[torch.float32] == (1e-4, 1e-6) and DEFAULT_TOLERANCES[F64] == (1e-6, 1e-9)
    sol = dn.solve(rotate, torch.tensor([1.0, 0.5]), torch.linspace(0.0, 10.0, 11))
    want = torch.stack([_rotation(0.0, [1.0, 0.5], float(tj)) for tj in torch.linspace(0.0, 10.0, 11)])
    error = float((sol.x.double() - want).abs().max())
    assert sol.x.dtype == torch.float32 and error < 1e-3  # rtol 1e-4 over 10 time units (measured 2e-4)
    with pytest.raises(ConfigError, match="rtol must lie in"):
        dn.solve(rotate, torch.tensor([1.0, 0.5]), [0.0, 1.0], rtol=1e-7)


def _spread_batch():
    """Rows rotating at frequencies 1..8: the fast ones need small steps."""
    omega = torch.arange(1.0, 9.0, dtype=F64)[:, None]
    return (lambda x: omega * rotate(x)), torch.tensor([[1.0, 0.0]], dtype=F64).repeat(8, 1), omega


def test_rms_norm_takes_fewer_evaluations_than_the_worst_row_and_lets_the_hardest_row_miss_more():
    field, x0, omega = _spread_batch()
    errors, nfev = {}, {}
    for norm in ("worst", "rms"):
        sol = dn.solve(field, x0, [0.0, 10.0], rtol=1e-6, atol=1e-9, norm=norm)
        want = torch.stack([torch.cos(10 * omega[:, 0]), -torch.sin(10 * omega[:, 0])], dim=-1)
        errors[norm] = float((sol.x[-1] - want).abs().max())
        nfev[norm] = sol.nfev
    assert nfev["rms"] < nfev["worst"]
    assert errors["rms"] > 2 * errors["worst"]
    one = {norm: dn.solve(rotate, x0[:1], [0.0, 10.0], norm=norm) for norm in ("worst", "rms")}
    assert torch.equal(one["worst"].x, one["rms"].x)  # one row: the two norms are one


@pytest.mark.parametrize("pair", [dn.methods.DormandPrince5(), dn.methods.BogackiShampine3(),
                                  dn.methods.DormandPrince853()], ids=lambda p: p.name)
def test_dense_output_is_the_states_at_t_eval_and_meets_the_closed_form_between(pair):
    x0 = [1.0, 0.5]
    times = [0.0, 0.7, 2.5, 4.0]
    sol = dn.solve(rotate, torch.tensor([x0], dtype=F64), times, method=pair, rtol=1e-10, atol=1e-12)
    at = sol.at(torch.tensor(times, dtype=F64))
    # the same interpolant; at the last time the polynomial at theta = 1 against the step's end (measured 14 eps)
    assert (at - sol.x).abs().max() <= 32 * torch.finfo(F64).eps
    queries = torch.linspace(0.0, 4.0, 41, dtype=F64)
    want = torch.stack([_rotation(0.0, x0, float(q)) for q in queries])
    assert (sol.at(queries)[:, 0] - want).abs().max() < 1e-8
    with pytest.raises(ConfigError, match="span"):
        sol.at(4.5)


def test_dense_output_is_differentiable_in_x0_and_t_and_backwards():
    x0 = torch.tensor([1.0, 0.5], dtype=F64, requires_grad=True)
    sol = dn.solve(rotate, x0, [3.0, 0.0], **TIGHT)
    t = torch.tensor(1.3, dtype=F64, requires_grad=True)
    x = sol.at(t)
    assert (x - _rotation(3.0, [1.0, 0.5], 1.3)).abs().max() < 1e-11
    gx, gt = torch.autograd.grad(x[0], (x0, t))
    c, s = math.cos(1.3 - 3.0), math.sin(1.3 - 3.0)
    assert (gx - torch.tensor([c, s], dtype=F64)).abs().max() < 1e-10  # d x_1(t) / d x0 of the rotation
    assert abs(float(gt) - float(x[1].detach())) < 1e-12  # d x_1 / dt = x_2


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_a_fixed_step_solves_dense_output_is_the_cubic_hermite_of_its_recomputed_steps(backward):
    """RK4 with h and h/2: the error at points inside steps falls 16x (order 4 of RK4, O(h^4) of the
    Hermite cubic; an interpolant of order 1, as linear interpolation between the step ends, would fall
    4x, outside the asserted 12-20); at the times of t_eval it is the solve's state."""
    x0 = [1.0, 0.5]
    times = [0.0, 1.0, 2.0] if not backward else [2.0, 1.0, 0.0]
    queries = torch.tensor([0.33, 0.77, 1.51], dtype=F64)
    errors = []
    for h in (0.1, 0.05):
        sol = dn.solve(rotate, torch.tensor(x0, dtype=F64), times, method=dn.methods.RK4(), h=h)
        at = sol.at(torch.tensor(times, dtype=F64))
        assert torch.equal(at[:-1], sol.x[:-1])  # theta = 0: the state itself
        # the last: the steps recomputed one by one against Flow.repeat's arithmetic (round-off)
        assert (at[-1] - sol.x[-1]).abs().max() <= 64 * torch.finfo(F64).eps
        want = torch.stack([_rotation(times[0], x0, float(q)) for q in queries])
        errors.append(float((sol.at(queries) - want).abs().max()))
    assert 12 < errors[0] / errors[1] < 20 and errors[0] < 1e-5
    x0t = torch.tensor(x0, dtype=F64, requires_grad=True)
    x = dn.solve(rotate, x0t, [0.0, 2.0], method=dn.methods.RK4(), h=0.01).at(1.3)
    (grad,) = torch.autograd.grad(x[0], x0t)
    assert (grad - torch.tensor([math.cos(1.3), math.sin(1.3)], dtype=F64)).abs().max() < 1e-8


def test_function_field_refuses_a_time_dependence_its_callable_contradicts():
    """The issue's wall: FunctionField(ODEFunc(), 2) called forward(t, y) with y only (a TypeError at the first
    step); now refused at construction naming the option. Unreadable signatures (builtins) are taken as said."""
    with pytest.raises(dn.errors.ConfigTypeError, match="time_dependent=True for f"):
        dn.fields.FunctionField(ODEFunc(), 2)
    with pytest.raises(dn.errors.ConfigTypeError, match="takes 1 required"):
        dn.fields.FunctionField(lambda x: x, 2, time_dependent=True)
    assert not dn.fields.FunctionField(torch.sin, 3).time_dependent
    assert dn.fields.FunctionField(ODEFunc(), 2, time_dependent=True).time_dependent


@pytest.mark.parametrize("pair", [dn.methods.DormandPrince5(), dn.methods.BogackiShampine3(),
                                  dn.methods.DormandPrince853()], ids=lambda p: p.name)
@pytest.mark.parametrize("times", [[0.3, 1.0, 2.5], [2.5, 1.0, 0.3]], ids=["forward", "backward"])
def test_a_solve_outside_autograd_keeps_no_stages_and_recomputes_its_dense_output_bit_for_bit(pair, times):
    """Under no_grad nothing is kept per step (memory independent of the number of steps); Solution.at then
    replays the accepted steps from x0 and gives exactly what the solve that kept its stages gives (a
    time-dependent field: the replayed clock is the solve's)."""
    x0 = torch.tensor([[0.4], [-1.2]], dtype=F64)
    with torch.no_grad():
        plain = dn.solve(_forced, x0, times, method=pair, rtol=1e-8, atol=1e-10)
    recorded = dn.solve(_forced, x0.clone().requires_grad_(True), times, method=pair, rtol=1e-8, atol=1e-10)
    assert plain.segments == () and len(recorded.segments) == recorded.accepted
    queries = torch.linspace(min(times), max(times), 17, dtype=F64)
    assert torch.equal(plain.at(queries), recorded.at(queries).detach())
    assert torch.equal(plain.at(torch.tensor(times[-1], dtype=F64)), recorded.at(times[-1]).detach())
