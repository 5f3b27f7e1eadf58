"""dn.solve at its edges (issue 26): start times far from 0 (the step logic on offsets from t_eval[0]),
fixed steps that overflow or meet a NaN (one final finiteness check), and pure relative control
(atol = 0) at components that are exactly 0 (no NaN step, no spinning)."""

import dataclasses
import math

import pytest
import torch

import dynnets as dn
from dynnets.errors import ConfigError, DivergenceError, StepSizeError, ToleranceError
from dynnets.solvers import PIController
from dynnets.solvers import integrate as integrate_module
from dynnets.solvers.controller import initial_step, scaled_rms

F64 = torch.float64
EPS = torch.finfo(F64).eps
PAIRS = [dn.methods.DormandPrince5(), dn.methods.BogackiShampine3(), dn.methods.DormandPrince853()]
IDS = [p.name for p in PAIRS]


def _oscillator():
    return dn.fields.Linear(torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=F64))


def _rotation(x0, t):
    c, s = math.cos(t), math.sin(t)
    return torch.stack([c * x0[:, 0] + s * x0[:, 1], -s * x0[:, 0] + c * x0[:, 1]], dim=1)


def _relative(x, exact):
    return float(((x - exact).norm(dim=1) / exact.norm(dim=1)).max())


# --- 1. large start times -------------------------------------------------------------------------------

SHIFTS = [(1e15, 1.0), (1e13, 2.0 ** -7)]  # (t0, span): t0 + span is exact, ulp(1e15) = 0.125, ulp(1e13) = 2^-9
SOLVES = [dict(rtol=1e-10, atol=1e-12), dict(rtol=1e-10, atol=1e-12, dense=False),
          dict(method=dn.methods.RK4(), h=2.0 ** -10)]


@pytest.mark.parametrize("options", SOLVES, ids=["dense", "landing", "fixed"])
@pytest.mark.parametrize("t0, span", SHIFTS, ids=["1e15", "1e13"])
def test_an_autonomous_solve_is_the_same_at_any_start_time(t0, span, options):
    """An autonomous field's solution depends on t - t0 only, and dn.solve chooses, lands and interpolates its
    steps on offsets from t_eval[0]: from t0 = 1e15 (where t + h rounds to multiples of 0.125) it takes the
    very steps and states of the same solve from 0, bit for bit, close to the rotation (bounds below).
    Before the fix the adaptive solve took no step there and returned x0 (an error of 0.84 and 0.0078);
    the fixed-step cases passed before too (their step sizes come from the exact interval lengths)."""
    x0 = torch.tensor([[1.0, 0.0], [0.3, -0.7]], dtype=F64)
    times = [t0, t0 + 0.3 * span, t0 + span]
    offsets = [t - t0 for t in times]  # exact (the middle one rounded to t0's grid when forming t0 + 0.3 span)
    shifted = dn.solve(_oscillator(), x0, times, **options)
    reference = dn.solve(_oscillator(), x0, offsets, **options)
    assert shifted.accepted == reference.accepted > 0
    assert shifted.sizes == reference.sizes
    assert torch.equal(shifted.x, reference.x)
    exact = torch.stack([_rotation(x0, s) for s in offsets])
    # adaptive: 50 rtol as in test_solve (measured <= 0.06); RK4: twice its leading global error span h^4 / 120
    # on the rotation, plus 100 eps of round-off (measured 6.6e-15, 2.3e-16)
    bound = 50 * options["rtol"] if "rtol" in options else span * options.get("h", 0) ** 4 / 60 + 100 * EPS
    assert max(_relative(shifted.x[j], exact[j]) for j in range(3)) <= bound
    assert torch.equal(shifted.flow()(x0, t0), shifted.x[-1])  # Solution.flow() still reproduces the solve


class CountingForced(dn.systems.ForcedOscillator):
    """The forced oscillator (time-dependent), counting its evaluations."""

    calls = 0

    def forward(self, t, x):
        CountingForced.calls += 1
        return super().forward(t, x)


@pytest.mark.parametrize("options", SOLVES, ids=["dense", "landing", "fixed"])
def test_a_time_dependent_field_whose_steps_the_clock_cannot_resolve_is_refused_before_any_work(options):
    """A time-dependent field gets the absolute time t <- t + h (as a Flow passes it); at t = 1e15 that clock
    moves in multiples of 0.125, so the span 1 (below 10 ulp = 1.25) is refused in one line before the
    field is evaluated. Before the fix: x0 returned (adaptive) or the forcing frozen (fixed: error 1.2).
    Control: the same solve from 0.3 runs and meets its closed form."""
    field = CountingForced(omega=2.0, amplitude=1.5)
    x0 = torch.tensor([[0.4, -0.2]], dtype=F64)
    CountingForced.calls = 0
    with pytest.raises(ConfigError, match=r"below the time resolution 1.25 .*time-dependent CountingForced"):
        dn.solve(field, x0, [1e15, 1e15 + 0.5, 1e15 + 1.0], **options)
    assert CountingForced.calls == 0
    sol = dn.solve(field, x0, [0.3, 0.8, 1.3], **options)
    assert float((sol.x[-1] - field.solution(x0, 0.3, 1.3)).abs().max()) <= 1e-8
    assert torch.equal(sol.flow()(x0, 0.3), sol.x[-1])


# --- 2. non-finite fixed-step results ---------------------------------------------------------------------

NONFINITE = [
    ("x' = x^2 (blows up at t = 1)", lambda x: x ** 2, [0.0, 0.5, 0.9, 1.5, 2.0], 3),
    ("x' = 100 x (overflows near t = 7.1)", lambda x: 100.0 * x, [0.0, 5.0, 10.0], 2),
    ("a NaN field", lambda x: x * float("nan"), [0.0, 0.25, 1.0], 1),
]


@pytest.mark.parametrize("fn, times, first", [case[1:] for case in NONFINITE], ids=[c[0] for c in NONFINITE])
def test_a_fixed_step_solve_that_becomes_non_finite_raises_naming_the_first_such_time(fn, times, first):
    """RK4 with h = 0.01 returned inf or NaN silently. Now DivergenceError names the first time of t_eval
    with a non-finite state and the one before it, and the solve up to that earlier time returns finite
    states (the check is not merely a refusal of the field)."""
    field, x0 = dn.fields.FunctionField(fn, 1), torch.ones(1, 1, dtype=F64)
    with pytest.raises(DivergenceError, match=rf"t_eval\[{first - 1}\]={times[first - 1]!r} and "
                                              rf"t_eval\[{first}\]={times[first]!r}"):
        dn.solve(field, x0, times, method=dn.methods.RK4(), h=0.01)
    if first > 1:
        prefix = dn.solve(field, x0, times[:first], method=dn.methods.RK4(), h=0.01)
        assert bool(torch.isfinite(prefix.x).all())


def test_the_adaptive_path_refuses_the_same_fields():
    """The error-controlled solve rejects non-finite steps itself: x' = x^2 ends in ToleranceError, as does
    a NaN field, at once (its first step is NaN: no step is attempted, instead of 100,000 NaN attempts)."""
    x0 = torch.ones(1, 1, dtype=F64)
    with pytest.raises(ToleranceError):
        dn.solve(dn.fields.FunctionField(lambda x: x ** 2, 1), x0, [0.0, 2.0])
    calls = []
    nan_field = dn.fields.FunctionField(lambda x: calls.append(1) or x * float("nan"), 1)
    with pytest.raises(ToleranceError, match="no first step"):
        dn.solve(nan_field, x0, [0.0, 1.0])
    assert len(calls) == 1


@pytest.mark.parametrize("options", [dict(method=dn.methods.RK4(), h=0.01), dict(rtol=1e-8)], ids=["fixed", "adaptive"])
def test_one_finiteness_check_per_solve_and_no_host_read_per_step(monkeypatch, options):
    """The final check runs once per solve; a fixed-step solve reads the device the same number of times
    for 10 steps as for 1000 (no per-step synchronisation; counted over Tensor.item, tolist, __bool__,
    __float__)."""
    checks, reads = [], []
    original = integrate_module._checked_finite
    monkeypatch.setattr(integrate_module, "_checked_finite", lambda solution: checks.append(1) or original(solution))
    x0 = torch.tensor([[1.0, 0.0]], dtype=F64)
    dn.solve(_oscillator(), x0, [0.0, 1.0], **options)
    assert len(checks) == 1
    if "h" not in options:
        return
    for name in ("item", "tolist", "__bool__", "__float__"):
        method = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _m=method, **k: reads.append(1) or _m(self, *a, **k))
    counts = []
    for end in (0.1, 10.0):
        reads.clear()
        dn.solve(_oscillator(), x0, [0.0, end], **options)
        counts.append(len(reads))
    assert counts[0] == counts[1] <= 3, counts


# --- 3. atol = 0 at exact zeros ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecordingController(PIController):
    """The default PI controller, recording every step size it proposes."""

    proposed: list = dataclasses.field(default_factory=list)

    def accepted(self, h, err, previous, k, after_rejection):
        self.proposed.append(super().accepted(h, err, previous, k, after_rejection))
        return self.proposed[-1]

    def rejected(self, h, err, k):
        self.proposed.append(super().rejected(h, err, k))
        return self.proposed[-1]


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_pure_relative_control_through_a_zero_component(pair):
    """rtol = 1e-8, atol = 0 from x0 = [[1, 0], [0.3, -0.7]]: the zero component made the first h NaN (0/0),
    then 100,000 NaN attempts. Now every proposed h is finite and positive and the end point is within
    10 rtol of the rotation (measured 0.7, 4.7, 0.5 rtol)."""
    x0 = torch.tensor([[1.0, 0.0], [0.3, -0.7]], dtype=F64)
    controller = RecordingController()
    sol = dn.solve(_oscillator(), x0, [0.0, 10.0], method=pair, rtol=1e-8, atol=0.0, controller=controller)
    assert controller.proposed and all(math.isfinite(h) and h > 0 for h in controller.proposed)
    assert _relative(sol.x[-1], _rotation(x0, 10.0)) <= 10 * 1e-8


def test_a_component_that_stays_exactly_zero_needs_no_absolute_tolerance():
    """x' = -x with x0 = (1, 0), atol = 0: the second component is 0 before and after every step and its
    error estimate is exactly 0 (0/0 in the norm, counted as no error); and x0 = 0 altogether. Both solve,
    exp(-t) to 10 rtol; a nonzero error against a zero scale still counts as infinite."""
    decay = dn.fields.Linear(-torch.eye(2, dtype=F64))
    for x0 in (torch.tensor([[1.0, 0.0]], dtype=F64), torch.zeros(1, 2, dtype=F64)):
        sol = dn.solve(decay, x0, [0.0, 3.0], rtol=1e-9, atol=0.0)
        assert torch.equal(sol.x[-1, :, 1], x0[:, 1])
        assert float((sol.x[-1] - x0 * math.exp(-3.0)).abs().max()) <= 10 * 1e-9
    zeros = torch.zeros(1, 2, dtype=F64)
    assert float(scaled_rms(zeros, zeros, zeros, 1e-6, 0.0)) == 0.0
    assert float(scaled_rms(torch.tensor([[0.0, 1e-300]], dtype=F64), zeros, zeros, 1e-6, 0.0)) == math.inf


def test_the_first_step_is_finite_and_positive_where_the_scale_vanishes():
    """Hairer's starting step with atol = 0 at a zero component: that component (its scale 0) is left out
    of the estimate instead of making it 0/0 (NaN before the fix)."""
    field = _oscillator()
    x0 = torch.tensor([[1.0, 0.0]], dtype=F64)
    h = initial_step(field, field.at(0.0, x0), x0, 0.0, 10.0, 5, 1e-8, 0.0)
    assert math.isfinite(h) and 0.0 < h <= 10.0


class NaNController(PIController):
    """A controller proposing NaN after the first accepted step (a defective subclass)."""

    def accepted(self, h, err, previous, k, after_rejection):
        return math.nan


def test_a_non_finite_step_size_is_refused_with_a_typed_error():
    with pytest.raises(StepSizeError, match="h=nan .*finite and positive"):
        dn.solve(_oscillator(), torch.tensor([[1.0, 0.0]], dtype=F64), [0.0, 1.0], controller=NaNController())

