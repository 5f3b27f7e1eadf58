"""2-D periodic PDE tooling: stencil orders, exact symbols, stability refusal, reference data, splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dynnets as dn
from dynnets.applications.pde import data as D
from dynnets.errors import ConfigError, ShapeError, StepSizeError
from dynnets.systems import FisherField2D, HeatField2D, PeriodicGrid2D
from dynnets.systems.stencils import apply_stencil, gradient, kernel_moments, laplacian, stencil_symbol


def _smooth(grid):
    x, y = grid.coordinates()
    w = 2 * math.pi / grid.length
    u = torch.sin(w * x) * torch.cos(2 * w * y) + 0.5 * torch.cos(3 * w * x + w * y)
    lap = -(w**2) * (5 * torch.sin(w * x) * torch.cos(2 * w * y) + 0.5 * 10 * torch.cos(3 * w * x + w * y))
    ux = w * torch.cos(w * x) * torch.cos(2 * w * y) - 0.5 * 3 * w * torch.sin(3 * w * x + w * y)
    uy = -2 * w * torch.sin(w * x) * torch.sin(2 * w * y) - 0.5 * w * torch.sin(3 * w * x + w * y)
    return u[None, None], lap[None, None], ux[None, None], uy[None, None]


@pytest.mark.parametrize("kind, name, order", [
    ("lap", "5pt", 2), ("lap", "9pt", 2), ("lap", "cross4", 4),
    ("gx", "2", 2), ("gx", "4", 4), ("gy", "2", 2), ("gy", "4", 4),
])
def test_stencil_convergence_order(kind, name, order):
    errors = []
    ns = (16, 32, 64)
    for n in ns:
        grid = PeriodicGrid2D(n)
        u, lap, ux, uy = _smooth(grid)
        if kind == "lap":
            approx, exact = apply_stencil(laplacian(name, grid.dx), u), lap
        else:
            approx, exact = apply_stencil(gradient(kind[1], name, grid.dx), u), (ux if kind == "gx" else uy)
        errors.append(float((approx - exact).abs().max() / exact.abs().max()))
    slopes = np.diff(np.log(errors)) / np.diff(np.log(1.0 / np.array(ns)))
    assert abs(slopes[-1] - order) < 0.15, (errors, slopes)


def test_stencil_moments_are_taylor_coefficients():
    m = kernel_moments(laplacian("5pt", 0.1), 0.1)
    assert m["sum"] == pytest.approx(0, abs=1e-12) and m["x"] == pytest.approx(0, abs=1e-12)
    assert m["xx"] == pytest.approx(2) and m["yy"] == pytest.approx(2) and m["xy"] == pytest.approx(0, abs=1e-12)
    g = kernel_moments(gradient("x", "4", 0.1), 0.1)
    assert g["x"] == pytest.approx(1) and g["y"] == pytest.approx(0, abs=1e-12) and g["sum"] == pytest.approx(0, abs=1e-12)


def test_symbol_is_the_spectrum_of_the_circular_stencil():
    n = 8
    k = laplacian("9pt", 1.0)
    # dense matrix of U -> K * U, columns = images of unit vectors
    basis = torch.eye(n * n, dtype=torch.float64).reshape(n * n, 1, n, n)
    m = apply_stencil(k, basis).reshape(n * n, n * n).T
    eig = torch.linalg.eigvalsh(m)
    sym = torch.sort(stencil_symbol(k, n).real.reshape(-1)).values
    torch.testing.assert_close(eig, sym, rtol=0, atol=64 * n * n * torch.finfo(torch.float64).eps)
    assert float(stencil_symbol(laplacian("5pt", 0.01), 100).real.min()) == pytest.approx(-8 / 0.01**2)


def test_explicit_steps_refuse_unstable_dt_and_name_the_rule():
    grid = PeriodicGrid2D(100)
    heat, fisher = HeatField2D(grid, 0.01), FisherField2D(grid, 0.01)
    assert heat.stiffness() == pytest.approx(800.0)
    # Euler: interval 2 -> heat dt <= 2/800 = 2.5e-3; Fisher dt <= 2/801
    dn.Step(heat, dn.methods.Euler(), 2.5e-3)
    with pytest.raises(StepSizeError, match=r"dt=0\.00251.*exceeds the real stability interval 2 of Euler"):
        dn.Step(heat, dn.methods.Euler(), 2.51e-3)
    dn.Step(fisher, dn.methods.Euler(), 2.4e-3)  # the experiment's dt: 2.4e-3 * 801 = 1.92 <= 2
    with pytest.raises(StepSizeError, match=r"rho\(alpha L\) \+ max\(0, 2 m1 - 1\)"):
        dn.Step(fisher, dn.methods.Euler(), 2.5e-3)
    dn.Step(fisher, dn.methods.RK4(), 3.4e-3)  # RK4 interval 2.7853: dt <= 3.477e-3
    with pytest.raises(StepSizeError, match="RK4"):
        dn.Step(fisher, dn.methods.RK4(), 3.5e-3)
    wide = FisherField2D(grid, 0.01, state_range=(0.0, 3.0))  # J's spectrum reaches -(800 + 5)
    with pytest.raises(StepSizeError):
        dn.Step(wide, dn.methods.Euler(), 2.49e-3)
    # the refusal is not cosmetic: just above the heat limit, Euler blows up the highest mode
    u = torch.cos(math.pi * torch.arange(100, dtype=torch.float64))
    u = (u[:, None] * u[None, :])[None, None]  # the checkerboard, eigenvalue -800
    step = dn.Step(heat, dn.methods.Euler(), 2.5e-3)
    assert float(step(u).abs().max()) == pytest.approx(1.0)
    v = u.clone()
    for _ in range(100):  # the refused step, done by hand: amplification |1 - 2.6e-3 * 800| = 1.08
        v = v + 2.6e-3 * heat(v)
    assert float(v.abs().max()) > 1e3


def test_field_input_checks():
    grid = PeriodicGrid2D(10)
    f = FisherField2D(grid)
    with pytest.raises(ShapeError, match=r"\(batch, 1, 10, 10\)"):
        f(torch.zeros(2, 1, 10, 9, dtype=torch.float64))
    with pytest.raises(ConfigError, match="alpha"):
        FisherField2D(grid, alpha=-1)
    with pytest.raises(ConfigError):
        PeriodicGrid2D(2)


def test_reference_solver_error_and_heat_exact_solution():
    grid = PeriodicGrid2D(24)
    alpha, dt = 0.01, 2.4e-3 * (24 / 100) ** 2
    u0 = D.random_fields(2, grid, torch.Generator().manual_seed(1), k_max=11)
    heat = HeatField2D(grid, alpha)
    ref = D.reference_trajectories(heat, u0, dt, 10, substeps=4)
    exact = D.heat_exact(u0, heat.kernel, alpha, 10 * dt)
    rel = float((ref[:, -1:] - exact).norm() / exact.norm())
    est = D.time_error(heat, u0, dt, 10, 4)
    assert rel < 1e-9 and est < 1e-9
    assert 0.5 * est < rel < 2 * est  # step halving estimates the true error of an order-4 method


def test_random_fields_range_band_and_split_by_trajectory():
    grid = PeriodicGrid2D(32)
    gen = torch.Generator().manual_seed(0)
    u = D.random_fields(6, grid, gen, k_max=8)
    assert u.shape == (6, 1, 32, 32) and float(u.min()) >= 0.05 and float(u.max()) <= 0.95
    kx, ky = grid.wavenumbers()
    power = torch.fft.fft2(u - u.mean(dim=(-2, -1), keepdim=True)).abs()
    assert float(power[..., torch.sqrt(kx**2 + ky**2) > 8].max()) < 1e-10 * float(power.max())
    m = D.mode_fields(4, grid, gen, k_lo=3, k_hi=5)
    assert float(m.min()) >= 0.05 and float(m.max()) <= 0.95
    split = D.split_by_trajectory(20, (0.6, 0.2, 0.2), seed=3)
    sets = [set(split[k].tolist()) for k in ("train", "val", "test")]
    assert sum(len(s) for s in sets) == 20 and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert len(sets[1]) == 4 and len(sets[2]) == 4


def test_dataset_roundtrip(tmp_path):
    path = D.save_dataset(tmp_path / "d.npz", {"u": torch.arange(6.0).reshape(2, 3)}, {"alpha": 0.01, "n": 3})
    arrays, params = D.load_dataset(path)
    assert params == {"alpha": 0.01, "n": 3} and arrays["u"].shape == (2, 3)
