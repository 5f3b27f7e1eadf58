"""dn.solve: embedded pairs validated by the tableau machinery, accuracy against closed forms, the
controller's rejections, typed refusals, and solutions that are Flows."""

import dataclasses
import math
import subprocess
import sys

import pytest
import torch

import dynnets as dn
from dynnets.base import Field
from dynnets.errors import (
    ConfigError,
    ConfigTypeError,
    ShapeError,
    StepSizeError,
    TableauError,
    ToleranceError,
)
from dynnets.function import FunctionField
from dynnets.methods import EmbeddedPair, EmbeddedTableau
from dynnets.methods.tableaux import DORMAND_PRINCE_5
from dynnets.solvers import PIController
from dynnets.solvers.controller import pair_error

PAIRS = [dn.methods.DormandPrince5(), dn.methods.BogackiShampine3(), dn.methods.DormandPrince853()]
IDS = [p.name for p in PAIRS]


def _oscillator():
    return dn.fields.Linear(torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64))


def _rotation(x0, t):
    c, s = math.cos(t), math.sin(t)
    return torch.stack([c * x0[:, 0] + s * x0[:, 1], -s * x0[:, 0] + c * x0[:, 1]], dim=1)


@pytest.mark.parametrize("pair, orders, error_order, per_step",
                         [(PAIRS[0], (5, (4,), 4), 5, 6), (PAIRS[1], (3, (2,), 3), 3, 3),
                          (PAIRS[2], (8, (5, 3), 7), 8, 12)], ids=IDS)
def test_pair_orders_are_computed_from_the_tableau(pair, orders, error_order, per_step):
    assert (pair.order, pair.tableau.embedded_orders, pair.tableau.dense_order) == orders
    assert pair.error_order == error_order
    assert pair.fsal is not None and pair.step_stages - 1 == per_step


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_an_attempted_step_combines_x_new_once_with_the_same_bits(pair):
    # attempt() takes x' as the first-same-as-last stage's input (a_fsal = b): bitwise the stages and x' of
    # stages() + combine(); negative control: the same sum in another order is not bitwise x'
    field = FunctionField(lambda t, x: torch.sin(3.0 * t * x) + x.roll(1, -1) ** 2, time_dependent=True)
    x, h, t = torch.randn(16, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), 0.137, 0.3
    ks = pair.stages(field, x, h, t, count=pair.step_stages)
    got, x_new = pair.attempt(field, x, h, t, ks[:1])
    assert torch.equal(x_new, pair.combine(x, h, ks, pair.weights))
    assert len(got) == len(ks) and all(torch.equal(a, b) for a, b in zip(got, ks))
    assert not torch.equal(x_new, pair.combine(x, h, ks, pair.weights[::-1]))


def test_a_pair_whose_orders_do_not_come_out_is_refused():
    tab = DORMAND_PRINCE_5

    def build(embedded, dense, orders):
        return EmbeddedPair(EmbeddedTableau.from_lists(tab.a, tab.b, embedded=embedded, dense=dense, orders=orders))

    assert build(tab.embedded, tab.dense, (5, 4, 4)).order == 5
    with pytest.raises(TableauError, match="claims orders"):
        build(tab.embedded, tab.dense, (5, 4, 5))
    wrong_dense = [list(row) for row in tab.dense]
    wrong_dense[2][1] *= 1.0 + 1e-9  # one digit off: the dense output loses its order (and consistency)
    with pytest.raises(TableauError, match="dense output"):
        build(tab.embedded, wrong_dense, (5, 4, 4))
    with pytest.raises(TableauError, match="embedded orders"):
        build([tab.b], None, (5, 5))
    with pytest.raises(ConfigTypeError, match="EmbeddedTableau"):
        EmbeddedPair(tab.a)


def _closed_form_problem(name):
    """(field, x0, t_eval, exact end state, bound on the relative error in units of rtol)."""
    if name == "oscillator":
        x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
        return _oscillator(), x0, [0.0, 10.0], _rotation(x0, 10.0), 50
    if name == "forced oscillator":
        forced = dn.systems.ForcedOscillator(omega=2.0, amplitude=1.5)
        x0 = torch.tensor([[0.4, -0.2]], dtype=torch.float64)
        return forced, x0, [0.3, 8.3], forced.solution(x0, 0.3, 8.3), 50
    kepler = dn.systems.TwoBody(0.5)
    return kepler, kepler.initial_state(), [0.0, 2 * math.pi], kepler.solution(2 * math.pi), 500


@pytest.mark.parametrize("problem", ["oscillator", "forced oscillator", "Kepler e=0.5"])
@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_accuracy_against_closed_forms(pair, problem):
    """Relative end-point errors against the closed forms: within 50 rtol on the harmonic and the forced
    (time-dependent) oscillator, within 500 rtol over one Kepler orbit at e = 0.5 (the orbit amplifies
    the local errors into a phase error: 1-150 rtol measured for the three pairs), and at least 30x
    smaller when rtol is 1000x smaller (1e-6 and 1e-9; 1e-5 and 1e-8 for the third-order pair, which
    needs ~10^4 steps at 1e-9)."""
    field, x0, times, exact, bound = _closed_form_problem(problem)
    errors = []
    for rtol in (1e-5, 1e-8) if pair.order <= 3 else (1e-6, 1e-9):
        sol = dn.solve(field, x0, times, method=pair, rtol=rtol, atol=rtol)
        errors.append(float((sol.x[-1] - exact).norm() / exact.norm()))
        assert errors[-1] <= bound * rtol, (rtol, errors)
    assert errors[1] <= errors[0] / 30, errors


@pytest.mark.slow
@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_states_at_t_eval_by_dense_output_and_by_landing_on_them(pair):
    forced = dn.systems.ForcedOscillator(omega=2.0, amplitude=1.5)
    x0 = torch.tensor([[0.4, -0.2], [1.0, 0.3]], dtype=torch.float64)
    times = [0.0, 0.37, 1.0, 1.01, 2.5, 4.0]
    exact = torch.stack([forced.solution(x0, 0.0, t) for t in times])
    for dense in (True, False):
        sol = dn.solve(forced, x0, times, method=pair, rtol=1e-9, atol=1e-9, dense=dense)
        assert sol.x.shape == (len(times), 2, 2) and torch.equal(sol.x[0], x0)
        assert float((sol.x - exact).abs().max()) <= 50e-9, (dense, float((sol.x - exact).abs().max()))


def test_the_controller_rejects_and_retries_on_a_hard_problem():
    """Kepler's orbit at e = 0.9: the pericentre passages force rejections; every attempted step is paid
    for (nfev = 2 + 6 (accepted + rejected) for Dormand-Prince 5(4)), every accepted step's error estimate,
    recomputed from the solution's own steps, is within the tolerance, and the end point converges."""
    kepler = dn.systems.TwoBody(0.9)
    x0, exact = kepler.initial_state(), kepler.solution(2 * math.pi)
    pair = dn.methods.DormandPrince5()
    sol = dn.solve(kepler, x0, [0.0, 2 * math.pi], method=pair, rtol=1e-6, atol=1e-6)
    assert sol.rejected > 0
    assert sol.nfev == 2 + 6 * (sol.accepted + sol.rejected)
    states = sol.flow().trajectory(x0)
    worst = 0.0
    for (h, _), x in zip(sol.sizes, states[:-1]):
        ks = pair.stages(kepler, x, h, count=pair.step_stages)
        worst = max(worst, pair_error(pair, ks, h, x, pair.combine(x, h, ks, pair.weights), 1e-6, 1e-6))
    assert 0.0 < worst <= 1.0, worst
    errors = [float((dn.solve(kepler, x0, [0.0, 2 * math.pi], rtol=r, atol=r).x[-1] - exact).norm()) for r in
              (1e-6, 1e-9)]
    assert errors[1] <= errors[0] / 100, errors


@dataclasses.dataclass(frozen=True)
class RecordingController(PIController):
    """The default PI controller, recording each decision as (kind, attempted h, error, next h)."""

    log: list = dataclasses.field(default_factory=list)

    def accepted(self, h, err, previous, k, after_rejection):
        following = super().accepted(h, err, previous, k, after_rejection)
        self.log.append(("accepted", h, err, following))
        return following

    def rejected(self, h, err, k):
        following = super().rejected(h, err, k)
        self.log.append(("rejected", h, err, following))
        return following


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_the_controller_rejects_retries_and_meets_the_tolerance_through_a_close_encounter(pair):
    """Kepler's orbit at e = 0.9 from the apocentre (r = 1.9) through the pericentre (r = 0.1, accelerations
    361x larger) back to the apocentre, rtol = atol = 1e-4. Every pair rejects steps (measured: 8, 28 and
    6 for DormandPrince5, BogackiShampine3, DormandPrince853), retries each from the same point with the
    smaller step the controller chose, and ends within 200 rtol of Kepler's closed form (measured 101, 31,
    5 rtol; at most 113 rtol over rtol = 1e-3 ... 1e-8). The end point is the slow apocentre: ending at the
    pericentre would measure the orbit's phase error times its 40x larger speed there. Negative control:
    as many equal steps as the solve accepted miss the end point by at least 100x more."""
    kepler, rtol = dn.systems.TwoBody(0.9), 1e-4
    start, end = math.pi, 3 * math.pi
    x0, exact = kepler.solution(start), kepler.solution(end)
    controller = RecordingController()
    sol = dn.solve(kepler, x0, [start, end], method=pair, rtol=rtol, atol=rtol, controller=controller)
    log = controller.log
    assert sol.rejected == sum(kind == "rejected" for kind, *_ in log) > 0
    assert sol.accepted == len(log) - sol.rejected
    assert sol.nfev == 2 + (pair.step_stages - 1) * len(log)  # every attempt paid for, rejected ones too
    t = start
    for (kind, h, err, following), (_, attempted, _, _) in zip(log, log[1:]):
        if kind == "accepted":
            assert err <= 1.0
            t += h
        else:  # retried at the controller's smaller step (clipped only when it lands on the end)
            assert err > 1.0 and following < h
            assert attempted == following or (attempted < following and t + attempted == pytest.approx(end))
    assert [h for kind, h, *_ in log if kind == "accepted"] == [h for h, _ in sol.sizes]
    assert math.fsum(h for h, _ in sol.sizes) == pytest.approx(end - start, rel=1e-14)
    error = float((sol.x[-1] - exact).norm() / exact.norm())
    assert error <= 200 * rtol, error
    uniform = dn.solve(kepler, x0, [start, end], method=pair, h=(end - start) / sol.accepted).x[-1]
    assert float((uniform - exact).norm() / exact.norm()) >= 100 * error


class Blowup(Field):
    """x' = x^2: from x(0) = 1 the solution 1 / (1 - t) blows up at t = 1."""

    dim = 1

    def forward(self, x):
        return x * x


def test_a_tolerance_that_cannot_be_met_raises_naming_t_h_and_the_error():
    with pytest.raises(ToleranceError, match=r"at t=(0\.99|1\.0).*h=.*error estimate"):
        dn.solve(Blowup(), torch.ones(1, 1, dtype=torch.float64), [0.0, 2.0])
    kepler = dn.systems.TwoBody(0.5)
    with pytest.raises(ToleranceError, match="max_steps=5 .*t=.*h=.*error estimate"):
        dn.solve(kepler, kepler.initial_state(), [0.0, 20.0], max_steps=5)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_the_solution_is_a_flow_of_its_accepted_steps(pair):
    forced = dn.systems.ForcedOscillator(omega=2.0, amplitude=1.5)
    x0 = torch.tensor([[0.4, -0.2]], dtype=torch.float64)
    sol = dn.solve(forced, x0, [0.5, 3.0, 6.0], method=pair, rtol=1e-7, dense=False)
    flow = sol.flow()
    assert len(flow) == sol.accepted == len(sol.steps)
    assert all(isinstance(s, dn.Step) for s in flow)
    assert torch.equal(flow(x0, 0.5), sol.x[-1])
    traj = flow.trajectory(x0, 0.5)
    times = flow.times(0.5)
    landed = [int((times - t).abs().argmin()) for t in (3.0, 6.0)]
    assert torch.equal(traj[landed], sol.x[1:])


def test_fixed_steps_on_a_grid_with_any_method():
    forced = dn.systems.ForcedOscillator(omega=2.0, amplitude=1.5)
    x0 = torch.tensor([[0.4, -0.2]], dtype=torch.float64)
    times = [0.0, 0.5, 1.0, 1.05, 4.0]
    errors = []
    for h in (0.1, 0.05):
        sol = dn.solve(forced, x0, times, method=dn.methods.RK4(), h=h)
        exact = torch.stack([forced.solution(x0, 0.0, t) for t in times])
        errors.append(float((sol.x - exact).abs().max()))
        assert sol.nfev == 4 * sol.accepted
        assert torch.equal(sol.flow().trajectory(x0, 0.0), sol.x)
    assert sol.sizes[0] == (0.05, 10) and sol.sizes[2] == pytest.approx((0.05, 1))
    assert 2 ** 4 * 0.8 <= errors[0] / errors[1] <= 2 ** 4 * 1.25, errors
    # an implicit symplectic method on the time-dependent Hamiltonian: its guarantee comes with the steps
    sol = dn.solve(forced, x0, times, method=dn.methods.GaussLegendre(2), h=0.1)
    assert sol.nfev is None and dn.structure.Symplectic() in sol.flow().guarantees


def test_a_batch_meets_the_tolerance_in_every_row():
    x0 = torch.randn(64, 2, dtype=torch.float64) * torch.logspace(-3, 2, 64, dtype=torch.float64)[:, None]
    sol = dn.solve(_oscillator(), x0, [0.0, 5.0], rtol=1e-8, atol=1e-12)
    exact = _rotation(x0, 5.0)
    relative = (sol.x[-1] - exact).norm(dim=1) / exact.norm(dim=1)
    assert float(relative.max()) <= 50e-8


def test_float32_states_and_gradients_through_the_solve():
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float32)
    sol = dn.solve(_oscillator().float(), x0, [0.0, 2.0], rtol=1e-4, atol=1e-6)
    assert sol.x.dtype == torch.float32
    assert float((sol.x[-1] - _rotation(x0, 2.0)).abs().max()) <= 1e-4
    x = torch.tensor([[1.0, 0.5]], dtype=torch.float64, requires_grad=True)
    final = dn.solve(_oscillator(), x, [0.0, 2.0], rtol=1e-10, atol=1e-10).x[-1]
    (grad,) = torch.autograd.grad(final[0, 0], x)
    assert torch.allclose(grad, torch.tensor([[math.cos(2.0), math.sin(2.0)]], dtype=torch.float64), atol=1e-8)


def test_a_stiff_fixed_field_refuses_an_unstable_fixed_step():
    field = dn.systems.HeatField1D(dn.systems.UniformGrid1D(0.0, 1.0, 20))
    x0 = torch.zeros(1, field.dim, dtype=torch.float64)
    with pytest.raises(StepSizeError):
        dn.solve(field, x0, [0.0, 1.0], method=dn.methods.RK4(), h=0.1)


X0 = torch.zeros(1, 2, dtype=torch.float64)
BAD = [
    (dict(t_eval=[0.0, 1.0, 1.0]), ConfigError, "strictly monotone"),
    (dict(t_eval=[0.0, 1.0, 0.5]), ConfigError, "strictly monotone"),
    (dict(t_eval=[0.0, float("nan")]), ConfigError, "finite"),
    (dict(t_eval=[0.0]), ConfigError, "at least two"),
    (dict(t_eval=torch.zeros(2, 2)), ConfigError, "1-D"),
    (dict(t_eval="01"), ConfigTypeError, "sequence"),
    (dict(h=0.1, rtol=1e-6), ConfigError, "not both"),
    (dict(h=-0.1), StepSizeError, "positive"),
    (dict(h=float("inf")), StepSizeError, "finite"),
    (dict(h=1e-9), ConfigError, "max_steps"),
    (dict(rtol=-1.0), ConfigError, "rtol"),
    (dict(rtol=1e-17), ConfigError, "rtol must lie in"),
    (dict(atol=-1e-9), ConfigError, "atol"),
    (dict(max_steps=0), ConfigError, "max_steps"),
    (dict(dense="yes"), ConfigError, "dense"),
    (dict(controller="PI"), ConfigTypeError, "PIController"),
    (dict(method=dn.methods.RK4(), rtol=1e-6), ConfigTypeError, "embedded pair"),
    (dict(method="RK45"), ConfigTypeError, "Method"),
    (dict(method=dn.methods.StormerVerlet(), h=0.1), dn.errors.IncompatibleFieldError, "Partitioned"),
    (dict(x0=torch.zeros(3, dtype=torch.float64)), ShapeError, "dim=2"),
    (dict(norm="max"), ConfigError, "norm must be one of"),
    (dict(norm="rms", h=0.1), ConfigError, "not both"),
    (dict(terminal=False), ConfigError, "no event was given"),
    (dict(event=lambda t, x: x[..., 0], h=0.1), ConfigError, "not both"),
    (dict(x0=torch.zeros(1, 2, dtype=torch.float16)), ConfigError, "no default tolerance"),
    (dict(x0=torch.zeros(1, 2, dtype=torch.int64)), ConfigTypeError, "floating"),
    (dict(x0=torch.full((1, 2), float("nan"), dtype=torch.float64)), ConfigError, "finite"),
    (dict(field=3), ConfigTypeError, "Field"),
    (dict(field=lambda *args: args[-1]), ConfigTypeError, "0 required positional parameters"),
    (dict(field=lambda t, x, y: x), ConfigTypeError, "3 required positional parameters"),
]


@pytest.mark.parametrize("change, error, message", BAD, ids=[f"{i}-{list(c)[0]}" for i, (c, _, _) in enumerate(BAD)])
def test_every_option_is_checked_before_any_work(change, error, message):
    calls = []

    class Counting(Field):
        dim = 2

        def forward(self, x):
            calls.append(1)
            return x

    args = {"field": Counting(), "x0": X0, "t_eval": [0.0, 10.0], **change}
    with pytest.raises(error, match=message):
        dn.solve(args.pop("field"), args.pop("x0"), args.pop("t_eval"), **args)
    assert not calls


@pytest.mark.slow
def test_dn_solve_loads_neither_the_runtime_nor_the_applications():
    code = ("import sys, dynnets as dn; assert callable(dn.solve); "
            "print(sorted(m for m in sys.modules if m.startswith(('dynnets.train', 'dynnets.applications'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
