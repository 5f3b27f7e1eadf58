"""dn.solve at its edges (issue 26): pure relative control (atol = 0) at components that are exactly 0 (no
NaN step, no spinning)."""

import dataclasses
import math

import pytest
import torch

import dynnets as dn
from dynnets.errors import StepSizeError
from dynnets.solvers import PIController
from dynnets.solvers.controller import initial_step, scaled_rms

F64 = torch.float64
PAIRS = [dn.methods.DormandPrince5(), dn.methods.BogackiShampine3(), dn.methods.DormandPrince853()]
IDS = [p.name for p in PAIRS]


def _oscillator():
    return dn.fields.Linear(torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=F64))


def _rotation(x0, t):
    c, s = math.cos(t), math.sin(t)
    return torch.stack([c * x0[:, 0] + s * x0[:, 1], -s * x0[:, 0] + c * x0[:, 1]], dim=1)


def _relative(x, exact):
    return float(((x - exact).norm(dim=1) / exact.norm(dim=1)).max())


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
