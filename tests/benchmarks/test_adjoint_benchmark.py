"""benchmarks.adjoint: its candidates compute the same gradient (so the memory and time rows compare like with
like), and plain backpropagation's memory is extrapolated along the line through its two measured points."""

import pytest
import torch

pytest.importorskip("torchdiffeq")

from benchmarks.adjoint import CANDIDATES, _plain_extrapolated, backward_of, problem  # noqa: E402


@pytest.mark.parametrize("solver", ["fixed", "adaptive"])
def test_the_candidates_compute_the_same_gradient(solver):
    field, x0, span = problem(solver, 20, 4, dtype=torch.float64)
    grads = {}
    for candidate in CANDIDATES:
        field.zero_grad(set_to_none=True)
        backward_of(candidate, solver, field, x0, span, 20)()
        grads[candidate] = torch.cat([p.grad.flatten() for p in field.parameters()])
    ours, theirs, plain = grads.values()
    assert torch.allclose(ours, plain, rtol=0, atol=1e-12 * float(plain.abs().max()))
    # torchdiffeq: another RK4 (the 3/8 rule) and the continuous adjoint: the same gradient to the solves' error
    assert float((theirs - plain).norm() / plain.norm()) < 2e-3  # measured 3.7e-4


def test_plain_memory_is_extrapolated_along_its_measured_line():
    memory = {f"{s}/dynnets plain/{n}": {"peak_rss_bytes": 100 + 3 * n} for s in ("fixed", "adaptive")
              for n in (50, 100)}
    out = _plain_extrapolated(memory, 1000, 100)
    assert out["fixed"] == {"bytes_per_step": 3.0, "peak_rss_bytes": 3100.0}
