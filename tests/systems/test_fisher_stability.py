"""Linearised stability of learned ConvFD steppers (dynnets.applications.pde.stability): the symbol is the FD
field's own for the exact construction, the stability residuals vanish there and not for a constructed unstable
stepper, a diverging candidate is never chosen, and a diverged rollout is a one-line error naming seed and step."""

from __future__ import annotations

import math

import pytest
import torch

from dynnets.applications.pde import data as D
from dynnets.applications.pde import exact_convfd
from dynnets.applications.pde.stability import (
    PROBE,
    EulerStepMap,
    certificate,
    growth_bounds,
    linearised_symbol,
    stability_residuals,
)
from dynnets.applications.runner import Runner, run_cli
from dynnets.errors import DivergenceError
from dynnets.systems import FisherField2D, HeatField2D, PeriodicGrid2D
from dynnets.systems.stencils import laplacian, stencil_symbol
from dynnets.train import choose
from experiments import fisher

EPS = torch.finfo(torch.float64).eps
N, DX, ALPHA, DT = 16, 0.01, 0.01, 2.4e-3
STATES = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
# the symbol is a central difference over +-PROBE of F, whose terms are up to 8 alpha/dx^2 = 800 in size and
# summed over the 9 stencil points: round-off C n eps 800 / PROBE with n = 9, C = 4 (about 1e-11 of 800)
SYMBOL_TOL = 4 * 9 * EPS * 800 / PROBE


def unstable_fisher(gamma: float = 120.0):
    """The exact Fisher ConvFD plus gamma * (D_xx D_yy) U on the linear relu pair: a term of size
    gamma |xi|^4 dx^4 that smooth data barely see but whose symbol at the checkerboard mode (pi, pi) is
    +16 gamma, so the field's is 16 gamma - 8 alpha / dx^2 + 1 - 2c = 1121 - 2c, far right of the PDE's
    spectrum (Re lambda <= 1 - 2c): |1 + h lambda| = 1.9 per Euler substep (as for Fisher seed 3)."""
    net = exact_convfd(ALPHA, DX, "5pt", (1.0, -1.0))
    d2 = torch.tensor([1.0, -2.0, 1.0], dtype=torch.float64)
    extra = gamma * torch.outer(d2, d2)
    with torch.no_grad():
        for j, act in enumerate(net.activations):
            if act.name == "relu":  # the pair (K, -K) carries the linear part: K * U = relu(K U) - relu(-K U)
                sign = 1.0 if net.A[j, 0, 1, 1] < 0 else -1.0  # K = alpha L + delta has centre -399
                net.A[j, 0] += sign * extra
    return net


def test_symbol_of_the_exact_construction_is_the_fd_symbol():
    net = exact_convfd(ALPHA, DX, "5pt", (1.0, -1.0))
    lam = linearised_symbol(net, STATES, N).detach()
    fd = ALPHA * stencil_symbol(laplacian("5pt", DX), N)
    for c, row in zip(STATES.tolist(), lam, strict=True):  # c = 0 included: the relu pair's kink
        assert float((row - (fd + (1 - 2 * c))).abs().max()) <= SYMBOL_TOL
    heat = linearised_symbol(exact_convfd(ALPHA, DX, "5pt", (0.0, 0.0)), STATES, N).detach()  # kernel summing to 0
    assert float((heat - fd).abs().max()) <= SYMBOL_TOL
    # negative control: a 9-point Laplacian has another symbol (differs by O(100) at high frequencies)
    assert float((ALPHA * stencil_symbol(laplacian("9pt", DX), N) - fd).abs().max()) >= 1e6 * SYMBOL_TOL


@pytest.mark.parametrize("pde", ["fisher", "heat"])
def test_residuals_vanish_for_the_exact_field_and_not_for_an_unstable_one(pde):
    field = (FisherField2D if pde == "fisher" else HeatField2D)(PeriodicGrid2D(N, N * DX), ALPHA)
    bounds = growth_bounds(field.growth_bound, STATES)
    reaction = (1.0, -1.0) if pde == "fisher" else (0.0, 0.0)
    exact = linearised_symbol(exact_convfd(ALPHA, DX, "5pt", reaction), STATES, N)
    h = DT / 3
    # zero up to the round-off of the symbol (times h: the residuals are per Euler substep)
    assert float(stability_residuals(exact, bounds, h).abs().max()) <= h * SYMBOL_TOL
    if pde == "fisher":
        bad = linearised_symbol(unstable_fisher(), STATES, N)
        r = stability_residuals(bad, bounds, h)
        assert float(r.max()) > 0.1  # h (640 - b) and |1 + h lambda| - 1 are O(0.5): many orders above round-off
        cert = certificate(unstable_fisher(), field.growth_bound, h, N, STATES)
        assert cert["max_growth_excess"] > 1000 and cert["max_amplification"] > 1.8
        assert (cert["worst"]["ky"], cert["worst"]["kx"]) == (N // 2, N // 2)  # the checkerboard mode
        good = certificate(exact_convfd(ALPHA, DX), field.growth_bound, h, N, STATES)
        assert good["max_growth_excess"] <= SYMBOL_TOL and good["max_amplification_excess"] <= h * SYMBOL_TOL


def _trajectories(count: int = 3, steps: int = 40) -> torch.Tensor:
    grid = PeriodicGrid2D(N, N * DX)
    u0 = D.random_fields(count, grid, torch.Generator().manual_seed(0), k0=4.0 * N * DX, k_max=3)
    return D.reference_trajectories(FisherField2D(grid, ALPHA), u0, DT, steps, substeps=4)


def test_a_diverging_candidate_is_never_chosen():
    traj = _trajectories()
    stable = EulerStepMap(exact_convfd(ALPHA, DX), DT, 3)
    unstable = EulerStepMap(unstable_fisher(), DT, 3)
    with torch.no_grad():  # one step looks fine: the data carry almost nothing at the checkerboard mode
        one = [float(fisher._rel(m(traj[:, :1]), traj[:, 1:2]).max()) for m in (stable, unstable)]
    assert one[1] < 1e-2
    errors = fisher.rollout_errors(unstable.flow, traj)
    assert not (math.isfinite(errors[-1]) and errors[-1] <= 1.0)  # the 40-step rollout is lost
    choice = choose([unstable, stable], lambda m: fisher.rollout_errors(m.flow, traj), limit=1.0)
    assert choice.index == 1 and 0 in choice.rejected
    with pytest.raises(DivergenceError, match="every candidate diverged"):
        choose([unstable], lambda m: fisher.rollout_errors(m.flow, traj), limit=1.0)


def test_a_diverged_rollout_is_one_error_line_naming_seed_and_step(tmp_path, capsys):
    traj = _trajectories(count=1)
    runner = Runner("toy_rollout", headline={"rel_error_40": "min"})

    def run(args, seed, out):
        errors = fisher.rollout_errors(EulerStepMap(unstable_fisher(), DT, 3).flow, traj, "the trained model's rollout",
                                       seed)
        return {"rel_error_40": errors[-1]}

    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda argv: runner.main(run, argv), ["--seed", "3", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: seed 3: the trained model's rollout diverged at step ")
    assert not (tmp_path / "metrics.json").exists()
