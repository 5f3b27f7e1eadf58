"""Non-autonomous fields F(t, x): observed orders with time dependence for every explicit tableau and the
implicit methods, time passed along a Flow, methods without time refused, guarantees kept."""

import math

import numpy as np
import pytest
import torch
from structure_cases import ForcedPendulum

import dynnets as dn
from dynnets.base import Field
from dynnets.errors import ConfigError, IncompatibleFieldError
from dynnets.methods import ButcherTableau, EmbeddedPair, ExplicitRK
from dynnets.methods import tableaux as tableau_module
from dynnets.methods.tableaux import (
    BOGACKI_SHAMPINE_3,
    CLASSIC_RK4,
    DORMAND_PRINCE_5,
    DORMAND_PRINCE_5_DENSE_5,
    EULER,
    EXPLICIT_MIDPOINT,
    HEUN,
    SSPRK3,
)
from dynnets.structure import Symplectic

EPS = torch.finfo(torch.float64).eps


class ForcedDuffing(Field):
    """q' = p, p' = -q - q^3 + f(t), with f chosen so that q(t) = sin(2 t) / 2 + cos(t) (a manufactured
    closed form: a nonlinear field whose forcing makes every order condition count)."""

    dim = 2
    time_dependent = True

    @staticmethod
    def exact(t: float) -> torch.Tensor:
        return torch.tensor([[math.sin(2 * t) / 2 + math.cos(t), math.cos(2 * t) - math.sin(t)]],
                            dtype=torch.float64)

    def forward(self, t, x):
        t = t.reshape(-1, 1)
        q_exact = torch.sin(2 * t) / 2 + torch.cos(t)
        forcing = -2 * torch.sin(2 * t) - torch.cos(t) + q_exact + q_exact ** 3
        q, p = x[:, :1], x[:, 1:]
        return torch.cat([p, -q - q ** 3 + forcing], dim=1)


DOP853 = dn.methods.DormandPrince853().tableau
# (tableau, nominal order, step counts over the span: one tuple, or one per problem where the order-8
# method needs coarser steps on the linear oscillator to stay above round-off)
EXPLICIT = [(EULER, 1, (64, 128, 256, 512)), (HEUN, 2, (32, 64, 128, 256)), (EXPLICIT_MIDPOINT, 2, (32, 64, 128, 256)),
            (SSPRK3, 3, (32, 64, 128, 256)), (CLASSIC_RK4, 4, (16, 32, 64, 128)), (BOGACKI_SHAMPINE_3, 3, (32, 64, 128, 256)),
            (DORMAND_PRINCE_5, 5, (64, 96, 128, 192)), (DORMAND_PRINCE_5_DENSE_5, 5, (64, 96, 128, 192)),
            (DOP853, 8, {"forced oscillator": (6, 8, 12, 16), "forced Duffing": (8, 12, 16, 24)})]


def _slope(method, field, exact, x0, t0, T, ns):
    errors = []
    for n in ns:
        flow = dn.Flow.repeat(dn.Step(field, method, T / n), n)
        errors.append(float((flow(x0, t0) - exact).norm()))
    return -np.polyfit(np.log(ns), np.log(errors), 1)[0], errors


def _forced_oscillator_problem():
    """The forced oscillator from t0 = 0.3 over T = 2: (field, exact end state, x0, t0, T)."""
    field = dn.systems.ForcedOscillator(omega=2.0, amplitude=1.5)
    x0 = torch.tensor([[0.4, -0.2]], dtype=torch.float64)
    return field, field.solution(x0, 0.3, 2.3), x0, 0.3, 2.0


@pytest.mark.slow
@pytest.mark.parametrize("tableau, order, ns", EXPLICIT, ids=[t.name for t, _, _ in EXPLICIT])
@pytest.mark.parametrize("problem", ["forced oscillator", "forced Duffing"])
def test_explicit_orders_with_time_dependence(tableau, order, ns, problem):
    if problem == "forced oscillator":
        field, exact, x0, t0, T = _forced_oscillator_problem()
    else:
        field, t0, T = ForcedDuffing(), 0.3, 2.0
        x0, exact = ForcedDuffing.exact(t0), ForcedDuffing.exact(t0 + T)
    ns = ns[problem] if isinstance(ns, dict) else ns
    slope, errors = _slope(ExplicitRK(tableau), field, exact, x0, t0, T, ns)
    assert abs(slope - order) <= 0.1, (slope, errors)


# every embedded weight vector b-hat of the pairs, run as the explicit tableau (A, b-hat, c): the order its
# error estimate rests on, observed with time dependence (nominal: DORMAND_PRINCE_5 4, BOGACKI_SHAMPINE_3 2, DOP853 5 and 3)
EMBEDDED = [(dn.methods.DormandPrince5(), 0, 4), (dn.methods.BogackiShampine3(), 0, 2),
            (dn.methods.DormandPrince853(), 0, 5), (dn.methods.DormandPrince853(), 1, 3)]


@pytest.mark.parametrize("pair, index, order", EMBEDDED, ids=[f"{p.name}-bhat{q}" for p, _, q in EMBEDDED])
def test_embedded_weights_orders_with_time_dependence(pair, index, order):
    tab = pair.tableau
    embedded = ButcherTableau.from_lists(tab.a, tab.embedded[index], tab.c, name=f"{pair.name} b-hat", order=order)
    assert tab.embedded_orders[index] == order
    slope, errors = _slope(ExplicitRK(embedded), *_forced_oscillator_problem(), (16, 32, 64, 128))
    assert abs(slope - order) <= 0.1, (slope, errors)


def test_every_explicit_tableau_has_its_order_observed_with_time_dependence():
    """The lists above cover every explicit tableau of dynnets.methods.tableau, every embedded pair's
    tableau and each of its embedded weight vectors (a new tableau or pair must be added to them)."""
    pairs = [cls() for cls in EmbeddedPair.__subclasses__()]
    assert len(pairs) >= 3
    explicit = {v.name for v in vars(tableau_module).values()
                if isinstance(v, ButcherTableau) and v.first_implicit_entry() is None}
    explicit |= {pair.tableau.name for pair in pairs}
    assert {"Euler", "RK4", "DormandPrince853"} <= explicit
    assert explicit <= {t.name for t, _, _ in EXPLICIT}
    assert all(t.order == order for t, order, _ in EXPLICIT)
    assert {(p.name, q) for p in pairs for q in p.tableau.embedded_orders} <= {(p.name, q) for p, _, q in EMBEDDED}


@pytest.mark.slow
@pytest.mark.parametrize("method, order, ns", [(dn.methods.GaussLegendre(2), 4, (8, 16, 32, 64)),
                                               (dn.methods.RadauIIA(2), 3, (16, 32, 64, 128)),
                                               (dn.methods.ImplicitMidpoint(), 2, (16, 32, 64, 128))],
                         ids=["Gauss2", "RadauIIA2", "ImplicitMidpoint"])
def test_implicit_orders_with_time_dependence(method, order, ns):
    slope, errors = _slope(method, ForcedDuffing(), ForcedDuffing.exact(2.3), ForcedDuffing.exact(0.3), 0.3, 2.0, ns)
    assert abs(slope - order) <= 0.1, (slope, errors)


def test_stages_are_evaluated_at_t_plus_c_h():
    """A field that records its times: RK4 from t = 1.5 with h = 0.2 evaluates at 1.5, 1.6, 1.6, 1.7."""
    seen = []

    class Clock(Field):
        dim = 1
        time_dependent = True

        def forward(self, t, x):
            seen.append(float(t))
            return torch.ones_like(x) * t

    dn.Step(Clock(), dn.methods.RK4(), 0.2)(torch.zeros(1, 1, dtype=torch.float64), 1.5)
    assert seen == pytest.approx([1.5, 1.6, 1.6, 1.7], abs=4 * EPS)


def test_flow_passes_each_step_its_start_time():
    field = ForcedDuffing()
    steps = [dn.Step(field, dn.methods.RK4(), h) for h in (0.1, 0.25, 0.05, 0.3)]
    flow = dn.Flow(steps)
    x = ForcedDuffing.exact(0.7)
    manual, t = x, 0.7
    for step in steps:
        manual, t = step(manual, t), t + step.h
    assert torch.equal(flow(x, 0.7), manual)
    assert flow.duration == pytest.approx(0.7)
    # a nested flow receives its start time too
    nested = dn.Flow([dn.Flow(steps[:2]), dn.Flow(steps[2:])])
    assert torch.equal(nested(x, 0.7), manual)


def test_autonomous_fields_ignore_the_time():
    field = dn.fields.Dense(3, 5).double()
    step = dn.Step(field, dn.methods.RK4(), 0.1)
    x = torch.randn(4, 3, dtype=torch.float64)
    assert not step.time_dependent
    assert torch.equal(step(x), step(x, 123.0))
    assert torch.equal(dn.Flow.repeat(step, 3)(x), dn.Flow.repeat(step, 3)(x, -5.0))


@pytest.mark.parametrize("method", [dn.methods.SymplecticEuler(), dn.methods.StormerVerlet(), dn.methods.Cayley(),
                                    dn.methods.CrankNicolson()], ids=lambda m: m.name)
def test_methods_without_time_refuse_a_time_dependent_field(method):
    class Timed(Field):
        """Declares every trait these methods need, so that the time dependence is the only reason to refuse."""

        dim = 2
        time_dependent = True
        traits = frozenset({dn.structure.Partitioned(), dn.structure.SeparableHamiltonian(),
                            dn.structure.SkewProduct(), dn.structure.Affine()})

        def forward(self, t, x):
            return x * t

    with pytest.raises(IncompatibleFieldError, match="time-dependent.*t \\+ c_i h"):
        dn.Step(Timed(), method, 0.1)
    dn.Step(Timed(), dn.methods.RK4(), 0.1)  # an RK method takes it


def test_a_time_dependent_step_needs_its_time_when_called_directly():
    with pytest.raises(ConfigError, match="start time t"):
        dn.methods.RK4().step(dn.systems.ForcedOscillator(), torch.zeros(1, 2, dtype=torch.float64), 0.1)


def test_gauss_is_symplectic_on_a_time_dependent_hamiltonian_and_rk4_is_not():
    field = dn.systems.ForcedOscillator(omega=1.7, amplitude=2.0)
    x = torch.randn(5, 2, dtype=torch.float64)
    gauss = dn.Step(field, dn.methods.GaussLegendre(2), 0.3)
    rk4 = dn.Step(field, dn.methods.RK4(), 0.3)
    assert Symplectic() in gauss.guarantees and Symplectic() not in rk4.guarantees
    defect = dn.testing.symplecticity_defect(lambda z: gauss(z, 0.9), x)
    control = dn.testing.symplecticity_defect(lambda z: rk4(z, 0.9), x)
    assert defect <= 16 * 2 * EPS, defect
    assert control >= 1e6 * max(defect, EPS), (defect, control)


def test_gauss_on_a_nonlinear_time_dependent_field_is_symplectic_invertible_and_differentiable():
    field = ForcedPendulum()
    step = dn.Step(field, dn.methods.GaussLegendre(2), 0.4)
    x = torch.randn(3, 2, dtype=torch.float64)
    assert dn.testing.symplecticity_defect(lambda z: step(z, 0.5), x) <= 16 * 2 * EPS
    flow = dn.Flow.repeat(step, 5)
    y = flow(x, 0.5)
    assert float((flow.inverse(y, 0.5) - x).abs().max()) <= 1e3 * EPS
    # gradients with respect to x and the start time t, through the implicit-function-theorem backward
    t = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    xr = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, s: step(a, s), (xr, t))


def test_explicit_steps_differentiate_through_the_time():
    field = ForcedDuffing()
    step = dn.Step(field, dn.methods.RK4(), 0.3)
    x = ForcedDuffing.exact(0.2).requires_grad_(True)
    t = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, s: step(a, s), (x, t))


def test_learned_step_size_moves_the_later_start_times():
    """d/dh of a two-step flow includes the second step's start time t + h."""
    field = ForcedDuffing()
    step = dn.Step(field, dn.methods.RK4(), 0.3, learn_h=True).double()
    flow = dn.Flow.repeat(step, 2)
    x = ForcedDuffing.exact(0.0)
    flow(x).sum().backward()
    analytic = float(step.h_raw.grad)
    with torch.no_grad():
        base = float(step.h_raw)

        def value(r):
            step.h_raw.fill_(r)
            return float(flow(x).sum())

        numeric = (value(base + 1e-6) - value(base - 1e-6)) / 2e-6
        step.h_raw.fill_(base)
    assert analytic == pytest.approx(numeric, rel=1e-6)
