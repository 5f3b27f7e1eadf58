"""examples/ode_demo.py --quick: trains (the test loss falls), writes metrics.json and spiral.png."""

import json

import pytest

from examples import ode_demo


@pytest.mark.slow
def test_ode_demo_quick_trains_and_writes_its_results(tmp_path):
    metrics = ode_demo.main(["--quick", "--out", str(tmp_path)])
    assert metrics["iterations"] == 40
    assert metrics["test_loss"] < 0.5 * metrics["test_loss_initial"]  # measured 6.86 -> 0.61
    assert json.loads((tmp_path / "metrics.json").read_text())["test_loss"] == metrics["test_loss"]
    assert (tmp_path / "spiral.png").stat().st_size > 0
