"""examples/bouncing_ball.py --quick: 10 bounces on their closed form, the event-time gradient exact, g and e
learned from the bounce times."""

import pytest

from examples import bouncing_ball


@pytest.mark.slow
def test_bouncing_ball_quick_meets_the_closed_form_and_learns_g_and_e(tmp_path):
    metrics = bouncing_ball.main(["--quick", "--out", str(tmp_path)])
    assert metrics["bounces"] == 10
    assert metrics["event_time_error"] <= 1e-12  # measured 1.4e-14
    assert metrics["last_event_gradient_error"] <= 1e-10  # relative, measured 1.3e-14
    assert metrics["g_error"] <= 1e-3 and metrics["e_error"] <= 1e-4  # from g = 7, e = 0.6 (measured 1e-5, 1e-7)
    assert (tmp_path / "bounces.png").stat().st_size > 0


def test_the_closed_form_is_the_sum_of_flight_times():
    times, _, _ = bouncing_ball.closed_form(9.81, 0.5, 3)
    t1 = (2 * 10.0 / 9.81) ** 0.5
    assert times == pytest.approx([t1, t1 + 2 * 0.5 * t1, t1 + 2 * 0.5 * t1 + 2 * 0.25 * t1], rel=1e-15)
