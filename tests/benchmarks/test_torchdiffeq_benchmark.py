"""benchmarks.torchdiffeq --quick runs side by side and writes its figures (no timing is asserted)."""

import json

import pytest

pytest.importorskip("torchdiffeq")


@pytest.mark.slow
def test_the_torchdiffeq_benchmark_quick_writes_every_figure(tmp_path):
    from benchmarks import torchdiffeq as bench

    result = bench.main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "torchdiffeq_quick.json").read_text())
    for dtype in ("float32", "float64"):
        for name in ("dynnets (worst)", "dynnets (rms)", "torchdiffeq dopri5"):
            row = saved["ode_demo"][dtype][name]
            assert row["ms_per_iteration"] > 0 and row["nfev_per_solve"] > 0
    for key in ("rtol=0.0001", "rtol=1e-06", "rtol=1e-09"):
        assert result["gradient_error"][key]["dynnets"] < 1e-3
    ball = result["bouncing_ball"]
    assert ball["dynnets"]["event_time_error"] <= 1e-12 and ball["gradient_difference"] <= 1e-6
