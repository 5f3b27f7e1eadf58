"""The slides' one-step error splitting (dynnets.applications.pde.error_split), measured on hand-made periodic fields:
a 5-point FD Fisher field and a perturbed copy of it standing in for a trained network."""

from __future__ import annotations

import math

import pytest
import torch

import dynnets as dn
from dynnets.applications.pde.error_split import (
    diffusion_reaction_lipschitz,
    error_split,
    fisher_slope,
    richardson_step,
    spectral_refine,
)
from dynnets.errors import ConfigError, ShapeError

EPS = torch.finfo(torch.float64).eps
ALPHA = 0.01


class FD(dn.fields.Field):
    """alpha Lap_5pt U (+ U - U^2 when fisher) (+ eps sin(7 U): a known 'network error')."""

    def __init__(self, n: int, fisher: bool = True, eps: float = 0.0):
        super().__init__()
        self.dim, self.dx, self.fisher, self.eps = n, 1.0 / n, fisher, eps

    def forward(self, u):
        lap = (u.roll(1, -1) + u.roll(-1, -1) + u.roll(1, -2) + u.roll(-1, -2) - 4 * u) / self.dx ** 2
        out = ALPHA * lap + ((u - u * u) if self.fisher else 0.0)
        return out + self.eps * torch.sin(7 * u) if self.eps else out


def grid(n):
    x = torch.arange(n, dtype=torch.float64) / n
    return torch.meshgrid(x, x, indexing="xy")


def states(n, count=3):
    X, Y = grid(n)
    return torch.stack([0.5 + 0.2 * torch.cos(2 * math.pi * (k * X + 2 * Y)) + 0.1 * torch.sin(2 * math.pi * (3 * X - k * Y))
                        for k in range(1, count + 1)]).unsqueeze(1)


def kernel(n):
    return torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float64) * n * n


def net(n, dt, eps, substeps=3):
    return dn.Flow.repeat(dn.Step(FD(n, eps=eps), dn.methods.Euler(), dt / substeps), substeps)


def split(n, dt, eps, substeps=3, count=3):
    return error_split(net(n, dt, eps, substeps), lambda m: FD(m), states(n, count),
                       diffusion_reaction_lipschitz(ALPHA, kernel(n), fisher_slope), reference_steps=8)


def test_spectral_refine_round_trip_and_band_limited_exactness():
    n = 16
    u = states(n)
    for f in (2, 4):
        assert float((spectral_refine(u, f)[..., ::f, ::f] - u).abs().max()) <= 8 * EPS
    X, Y = grid(4 * n)
    exact = 0.5 + 0.2 * torch.cos(2 * math.pi * (X + 2 * Y)) + 0.1 * torch.sin(2 * math.pi * (3 * X - Y))
    assert float((spectral_refine(u[:1], 4)[0, 0] - exact).abs().max()) <= 64 * EPS
    # negative control: linear interpolation (what a non-spectral refinement would give) is far off
    lin = (u[:1] + u[:1].roll(-1, -1)) / 2
    assert float((lin[0, 0] - exact[::4, 2::4][:, :n]).abs().max()) > 1e6 * 64 * EPS


def test_richardson_estimates_the_true_spatial_error_of_the_heat_step():
    # heat on the torus: u = 0.5 + a cos(2 pi (k x + m y)) exp(-alpha 4 pi^2 (k^2 + m^2) t) exactly
    n, dt, k, m, a = 16, 0.01, 3, 2, 0.3
    X, Y = grid(n)
    u0 = (0.5 + a * torch.cos(2 * math.pi * (k * X + m * Y)))[None, None]
    exact = 0.5 + a * torch.cos(2 * math.pi * (k * X + m * Y)) * math.exp(-ALPHA * 4 * math.pi ** 2 * (k * k + m * m) * dt)
    ref = richardson_step(lambda m: FD(m, fisher=False), u0, dt, 16)
    true_spatial = float((ref["V1"] - exact).abs().max())
    assert abs(float(ref["spatial"][0]) - true_spatial) <= 0.02 * true_spatial
    assert float((ref["u_star"] - exact).abs().max()) <= 0.02 * true_spatial
    assert abs(float(ref["observed_order"][0]) - 2.0) <= 0.1


def test_exact_field_has_zero_network_term_and_first_order_classical_error():
    n, dt = 16, 0.01
    s1 = split(n, dt, 0.0, substeps=1, count=2)["summary"]
    s2 = split(n, dt / 2, 0.0, substeps=1, count=2)["summary"]
    assert s1["network_actual"]["max"] == 0.0 and s1["network_bound"]["max"] == 0.0
    # one Euler step: local error O(dt^2), halving dt divides it by about 4
    assert 3.0 <= s1["classical"]["max"] / s2["classical"]["max"] <= 5.0
    assert s1["reference_time_error_max"] <= 1e-3 * s1["spatial"]["max"]


@pytest.mark.parametrize("eps", [1e-3, 1.0])
def test_bounds_hold_and_are_ordered(eps):
    out = split(16, 0.01, eps)
    p, s = out["per_state"], out["summary"]
    assert (p["network_actual"] <= p["network_bound_recursion"]).all()
    assert (p["network_bound_recursion"] <= p["network_bound"] * (1 + 1e-12)).all()  # Euler: (1+hL)^m <= e^{L dt}
    assert s["bound_holds_every_state"] and s["tight_bound_holds_every_state"]
    # the perturbation eps sin(7U) has sup |F_theta - F| = eps up to where sin(7U) peaks
    assert 0.5 * eps <= s["network_bound"]["sup_F_theta_minus_F"] <= eps


def test_negative_control_dropping_the_network_term_fails_for_a_bad_network():
    out = split(16, 0.01, 1.0)
    p, s = out["per_state"], out["summary"]
    assert (p["total"] > p["spatial"] + p["classical"]).any()
    assert s["dominant_term_bound"] == "network" and s["dominant_term_actual"] == "network"


def test_fisher_lipschitz_rule():
    lip = diffusion_reaction_lipschitz(ALPHA, kernel(100), fisher_slope)
    assert lip(0.0, 1.0) == pytest.approx(ALPHA * 8 * 100 ** 2 + 1.0, rel=1e-14)
    assert lip(0.2, 0.3) == pytest.approx(ALPHA * 8 * 100 ** 2 + 0.6, rel=1e-14)


def test_bad_input_is_refused():
    with pytest.raises(ShapeError, match="batch, C, n, n"):
        spectral_refine(torch.zeros(3, 4), 2)
    with pytest.raises(ConfigError, match="factor"):
        spectral_refine(states(8), 0)
    with pytest.raises(ValueError, match="finite"):
        spectral_refine(torch.full((1, 1, 4, 4), float("nan")), 2)
    rk = dn.Flow([dn.Step(dn.fields.SpherePreserving(16, 4), dn.methods.Cayley(), 0.1)])
    with pytest.raises(ConfigError, match="explicit Runge-Kutta"):
        error_split(rk, lambda m: FD(m), states(16), lambda lo, hi: 1.0)


def test_figure(tmp_path):
    from dynnets.applications.pde.error_split import plot_error_split
    from dynnets.io import save_figure

    path = save_figure(plot_error_split(split(16, 0.01, 1e-3, count=2)), tmp_path / "split.png")
    assert path.stat().st_size > 0


def test_with_the_pde_package_fisher_field():
    from dynnets.applications.pde.error_split import field_lipschitz
    from dynnets.systems import FisherField2D, HeatField2D, PeriodicGrid2D

    n, length = 16, 16 * 0.01
    fisher = FisherField2D(PeriodicGrid2D(n, length), ALPHA)
    assert not isinstance(fisher, HeatField2D)  # siblings on one private base: Fisher is not the heat equation
    assert field_lipschitz(fisher)(0.0, 1.0) == pytest.approx(ALPHA * 8 / (length / n) ** 2 + 1.0, rel=1e-12)
    assert field_lipschitz(HeatField2D(PeriodicGrid2D(n, length), ALPHA))(0.0, 1.0) == pytest.approx(
        ALPHA * 8 / (length / n) ** 2, rel=1e-12)
    with pytest.raises(ConfigError, match="no Lipschitz rule known for Dense"):
        field_lipschitz(dn.fields.Dense(4, 8))  # not an FD diffusion field: the caller passes lipschitz=
    dt = 2.4e-3
    model = dn.Flow.repeat(dn.Step(fisher, dn.methods.Euler(), dt / 3), 3)
    u = 0.5 + 0.1 * spectral_refine(states(8, 2) - 0.5, 2)  # a smooth state on the 16x16 grid
    out = error_split(model, lambda m: FisherField2D(PeriodicGrid2D(m, length), ALPHA), u, reference_steps=8)
    s = out["summary"]
    assert s["network_actual"]["max"] == 0.0 and s["bound_holds_every_state"]
    assert s["dx"] == pytest.approx(length / n)
    assert abs(s["spatial"]["observed_order_median"] - 2.0) <= 0.2
