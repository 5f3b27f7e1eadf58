"""dn.solve with DormandPrince5(dense_order=5): the same steps as the default DormandPrince5, two more field
evaluations on each accepted step that interpolates and none elsewhere, Solution.at and events on the order-5
output, and memory="checkpoint" gradients equal to plain backpropagation's through the same solve."""

import bisect
import itertools
import math

import pytest
import torch

import dynnets as dn

F64 = torch.float64
EPS = torch.finfo(F64).eps
DENSE5, DEFAULT = dn.methods.DormandPrince5(dense_order=5), dn.methods.DormandPrince5()


class CountingKepler(dn.systems.TwoBody):
    """Kepler's problem (e = 0.5), counting its evaluations."""

    calls = 0

    def forward(self, x):
        CountingKepler.calls += 1
        return super().forward(x)


def _counted(method, times, **options):
    field = CountingKepler(0.5)
    CountingKepler.calls = 0
    sol = dn.solve(field, field.initial_state(), times, method=method, rtol=1e-7, atol=1e-9, **options)
    return sol, CountingKepler.calls


def _steps_holding(sol, times) -> int:
    """The number of distinct accepted steps whose interior holds one of ``times``."""
    ends = list(itertools.accumulate(h for h, count in sol.sizes for _ in range(count)))
    return len({bisect.bisect_right(ends, t) for t in times})


def test_two_more_evaluations_on_each_step_that_interpolates_and_none_elsewhere():
    """Without interior times (or with dense=False) the solve is the default's: same steps, same bits, same
    evaluations. With interior times, 2 more per accepted step holding one (two times in one step: 2, not 4);
    nfev counts them (the field's own count agrees). Control: the default pair makes none."""
    end = 2 * math.pi
    plain5, calls5 = _counted(DENSE5, [0.0, end])
    plain4, calls4 = _counted(DEFAULT, [0.0, end])
    assert calls5 == calls4 == plain5.nfev == plain4.nfev and plain5.sizes == plain4.sizes
    assert torch.equal(plain5.x, plain4.x)
    interior = [0.5, 0.5 + 1e-9, 2.0, 4.5]
    times = [0.0, *interior, end]
    dense5, calls5 = _counted(DENSE5, times)
    dense4, calls4 = _counted(DEFAULT, times)
    assert dense5.sizes == dense4.sizes == plain4.sizes and torch.equal(dense5.x[-1], plain4.x[-1])
    holding = _steps_holding(dense5, interior)
    assert holding == 3  # 0.5 and 0.5 + 1e-9 share a step
    assert calls5 - calls4 == dense5.nfev - dense4.nfev == 2 * holding and calls4 == dense4.nfev
    landing5, calls5 = _counted(DENSE5, times, dense=False)
    landing4, calls4 = _counted(DEFAULT, times, dense=False)
    assert calls5 == calls4 and torch.equal(landing5.x, landing4.x)


def _interpolation_error(sol, kepler) -> float:
    """Largest |sol.at(s + theta h) - x(s + theta h)| over theta = 1/4, 1/2, 3/4 of the 3 longest accepted steps
    (s, h), x the solution from the step's computed start sol.at(s) (DormandPrince853 at rtol 1e-13): the dense
    output's own error, without the global error it starts from."""
    sizes = [h for h, count in sol.sizes for _ in range(count)]
    starts = [0.0, *itertools.accumulate(sizes)]
    worst = 0.0
    for k in sorted(range(len(sizes)), key=lambda i: -sizes[i])[:3]:
        s, h = starts[k], sizes[k]
        for theta in (0.25, 0.5, 0.75):
            local = dn.solve(kepler, sol.at(s), [s, s + theta * h], method=dn.methods.DormandPrince853(),
                             rtol=1e-13, atol=1e-15).x[-1]
            worst = max(worst, float((sol.at(s + theta * h) - local).abs().max()))
    return worst


def test_solution_at_is_the_order_5_output_and_closer_to_the_solution_than_the_default():
    """sol.at at t_eval is sol.x (the same interpolant, to 32 eps), and inside the longest steps of a Kepler
    orbit it is closer to the solution through the step's start than the default's order-4 output on the same
    steps (measured at rtol 1e-8: 3.8e-10 against 9.5e-9)."""
    kepler = dn.systems.TwoBody(0.5)
    times = [0.0, 0.7, 2.5, 2 * math.pi]
    worst = {}
    for pair in (DENSE5, DEFAULT):
        sol = dn.solve(kepler, kepler.initial_state(), times, method=pair, rtol=1e-8, atol=1e-10)
        assert (sol.at(torch.tensor(times, dtype=F64)) - sol.x).abs().max() <= 32 * EPS * sol.x.abs().max()
        worst[pair.tableau.dense_order] = _interpolation_error(sol, kepler)
    assert worst[5] < worst[4] / 5, worst


def test_an_event_located_on_the_order_5_output_costs_the_two_stages_once():
    """The rotation x = (cos t, -sin t) crosses x_1 = 0 at pi/2: located on the order-5 output (measured error
    9.9e-13 at rtol 1e-10), on the default's steps, with 2 evaluations more than the default (the step holding
    the sign change completes its dense stages once, however many Illinois iterations)."""
    rotate = dn.fields.Linear(torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=F64))
    sols = [dn.solve(rotate, torch.tensor([1.0, 0.0], dtype=F64), [0.0, 3.0], method=pair,
                     event=lambda t, x: x[..., 0], rtol=1e-10, atol=1e-12) for pair in (DENSE5, DEFAULT)]
    assert abs(float(sols[0].event_t) - math.pi / 2) <= 1e-11
    assert abs(float(sols[0].event_x[1]) + 1.0) <= 1e-10
    assert sols[0].sizes == sols[1].sizes and sols[0].nfev == sols[1].nfev + 2


@pytest.mark.parametrize("dense", [True, False], ids=["dense", "landing"])
def test_checkpointed_gradients_are_plain_backpropagations_through_the_same_solve(dense):
    """A Dense field, a loss on 4 times: memory="checkpoint" replays the same steps and interpolants, so
    states and gradients w.r.t. x0 and every parameter agree with plain backpropagation's (to 1e-12 relative,
    the round-off of the replay's sums)."""
    torch.manual_seed(0)
    field = dn.fields.Dense(3, 8).double()
    x0 = torch.randn(4, 3, dtype=F64)
    weights = torch.randn(4, 4, 3, dtype=F64)
    times = [0.0, 0.3, 1.1, 2.0]
    results = []
    for memory in ("plain", "checkpoint"):
        x = x0.clone().requires_grad_(True)
        states = dn.solve(field, x, times, method=DENSE5, rtol=1e-6, atol=1e-9, memory=memory, dense=dense).x
        grads = torch.autograd.grad((states * weights).sum(), (x, *field.parameters()))
        results.append((states.detach(), torch.cat([g.flatten() for g in grads])))
    (states_p, grad_p), (states_c, grad_c) = results
    assert torch.equal(states_p, states_c)
    assert float((grad_c - grad_p).norm() / grad_p.norm()) <= 1e-12
