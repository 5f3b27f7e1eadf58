"""Events of dn.solve (issue 28): the ball x'' = -g hits x = 0 at t* = (v0 + sqrt(v0^2 + 2 g h0)) / g, found to
round-off on the dense output, with the implicit-function-theorem gradient of t* (closed form and finite
differences); batches, backward time, non-terminal events, bad input."""

import math

import pytest
import torch

import dynnets as dn
from dynnets.errors import ConfigError, ShapeError

F64 = torch.float64
EPS = torch.finfo(F64).eps


def _ball(g):
    return lambda t, x: torch.stack([x[..., 1], -g * torch.ones_like(x[..., 1])], dim=-1)


def _height(t, x):
    return x[..., 0]


def _closed_form(g, h0, v0):
    """(t*, dt*/dg, dt*/dh0, dt*/dv0)."""
    root = math.sqrt(v0 ** 2 + 2 * g * h0)
    return (v0 + root) / g, -(v0 + root) / g ** 2 + h0 / (root * g), 1 / root, (1 + v0 / root) / g


@pytest.mark.parametrize("pair", [dn.methods.DormandPrince5(), dn.methods.BogackiShampine3(),
                                  dn.methods.DormandPrince853()], ids=lambda p: p.name)
@pytest.mark.parametrize("h0, v0", [(10.0, 2.0), (1.0, -3.0), (0.5, 7.0)])
def test_the_event_time_of_a_falling_ball_is_its_closed_form_to_round_off_with_its_gradient(pair, h0, v0):
    g = torch.tensor(9.81, dtype=F64, requires_grad=True)
    x0 = torch.tensor([h0, v0], dtype=F64, requires_grad=True)
    sol = dn.solve(_ball(g), x0, [0.0, 100.0], method=pair, event=_height, rtol=1e-10, atol=1e-12)
    t_star, d_g, d_h, d_v = _closed_form(9.81, h0, v0)
    assert abs(float(sol.event_t.detach()) - t_star) <= 1e-12  # measured <= 4.4e-16 (every pair is exact on a parabola)
    assert abs(float(sol.event_x[0].detach())) <= 64 * EPS * (h0 + abs(v0) * t_star + 9.81 * t_star ** 2)
    assert abs(float(sol.event_x[1].detach()) - (v0 - 9.81 * t_star)) <= 1e-12
    grad_g, grad_x = torch.autograd.grad(sol.event_t, (g, x0))
    for got, want in ((grad_g, d_g), (grad_x[0], d_h), (grad_x[1], d_v)):
        assert abs(float(got) - want) <= 1e-12 * max(1.0, abs(want))
    assert sol.t.tolist() == [0.0]  # terminal: t_eval's 100 was never reached


def test_the_event_gradient_through_a_learned_field_matches_finite_differences():
    """A drag term makes the event time depend on a parameter through the whole trajectory (no closed
    form): d t*/d c against a central difference (step 1e-6, error ~1e-11) at rtol 1e-12. Control: a
    straight-through with the denominator's sign flipped gives the opposite derivative."""
    def solve(c):
        field = lambda t, x: torch.stack([x[..., 1], -9.81 - c * x[..., 1] * x[..., 1].abs()], dim=-1)  # noqa: E731
        return dn.solve(field, torch.tensor([[5.0, 1.0]], dtype=F64), [0.0, 50.0], event=_height, rtol=1e-12,
                        atol=1e-14).event_t[0]
    c = torch.tensor(0.3, dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(solve(c), c)
    e = 1e-6
    fd = (float(solve(torch.tensor(0.3 + e, dtype=F64))) - float(solve(torch.tensor(0.3 - e, dtype=F64)))) / (2 * e)
    assert abs(float(grad) - fd) <= 1e-8 * abs(fd)
    assert abs(-float(grad) - fd) > 0.1 * abs(fd)


def test_a_batch_gets_one_event_per_state_and_nan_where_there_is_none_and_backward_time():
    g = 9.81
    x0 = torch.tensor([[10.0, 0.0], [1.0, 5.0], [1e6, 0.0]], dtype=F64)
    sol = dn.solve(_ball(g), x0, [0.0, 3.0], event=_height, rtol=1e-10, atol=1e-12)
    assert sol.event_t.shape == (3,) and sol.event_x.shape == (3, 2)
    for i in range(2):
        assert abs(float(sol.event_t[i]) - _closed_form(g, float(x0[i, 0]), float(x0[i, 1]))[0]) <= 1e-12
    assert math.isnan(float(sol.event_t[2])) and sol.t.tolist() == [0.0, 3.0]  # the third never lands by t = 3
    # backwards from the ground: the ball thrown up at t = 0 with v0 = 5 from 1 m left the ground at t* < 0
    back = dn.solve(_ball(g), torch.tensor([1.0, 5.0], dtype=F64), [0.0, -5.0], event=_height, rtol=1e-10,
                    atol=1e-12)
    want = (5.0 - math.sqrt(25.0 + 2 * g * 1.0)) / g
    assert abs(float(back.event_t) - want) <= 1e-12 and back.event_t.dim() == 0


def test_a_non_terminal_event_is_recorded_and_the_solve_goes_on():
    sol = dn.solve(_ball(9.81), torch.tensor([[10.0, 0.0]], dtype=F64), [0.0, 1.0, 5.0], event=_height,
                   terminal=False, rtol=1e-10, atol=1e-12)
    assert sol.t.tolist() == [0.0, 1.0, 5.0]
    assert abs(float(sol.event_t[0]) - math.sqrt(20 / 9.81)) <= 1e-12


def test_events_need_error_control_and_one_value_per_state():
    x0 = torch.tensor([[10.0, 0.0]], dtype=F64)
    with pytest.raises(ConfigError, match="event"):
        dn.solve(_ball(9.81), x0, [0.0, 1.0], method=dn.methods.RK4(), h=0.1, event=_height)
    with pytest.raises(ShapeError, match="one value per state"):
        dn.solve(_ball(9.81), x0, [0.0, 1.0], event=lambda t, x: x)
