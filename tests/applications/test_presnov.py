"""Presnov decomposition f = grad U + X_S (float64, round-off tolerances with negative controls) and a
smoke run of experiments/presnov.py --quick."""

from __future__ import annotations

import json

import pytest
import torch

import dynnets as dn
from dynnets.applications import presnov as approx
from dynnets.errors import ConfigError, ShapeError

EPS = torch.finfo(torch.float64).eps



def time_one_map(field, steps):
    return dn.Flow.repeat(dn.Step(field, dn.methods.RK4(), 1.0 / steps), steps)

def cubic(x):
    x1, x2, x3 = x.unbind(-1)
    return torch.stack([x1 ** 3 + x2 * x3, x1 * x2 ** 2 - x3, x3 ** 3 + x1 * x2 * x3 + 1.0], dim=-1)


@pytest.fixture(scope="module")
def points():
    g = torch.Generator().manual_seed(0)
    return 4 * torch.rand(3000, 3, generator=g, dtype=torch.float64) - 2


def _defect_ratio(f, x, n):
    grad_u, xs = approx.decompose(f, x, n)
    tol = approx.sphere_tolerance(x, f(x), grad_u, n)
    return approx.sphere_defect(x, xs), tol


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_gauss_legendre_is_exact_to_degree_2n_minus_1(n):
    t, w = approx.gauss_legendre(n)
    for k in range(2 * n):
        assert abs(float((w * t ** k).sum()) - 1 / (k + 1)) <= 4 * n * EPS
    # and not beyond: t^(2n) is integrated wrongly (the rule's error shrinks fast with n: check n <= 5)
    if n <= 5:
        assert abs(float((w * t ** (2 * n)).sum()) - 1 / (2 * n + 1)) > 1e6 * n * EPS


def test_polynomial_field_exact_with_enough_points_and_not_with_fewer(points):
    # f of degree 3 -> g(t) = t x.f(tx) of degree 4 -> g' of degree 3: the 2-point rule is exact
    defect, tol = _defect_ratio(cubic, points, 2)
    assert (defect <= tol).all(), float((defect / tol).max())
    bad, _ = _defect_ratio(cubic, points, 1)  # negative control: midpoint rule is not exact for degree 3
    assert float(bad.max()) >= 1e6 * float(tol.max())


def test_nonpolynomial_field_to_roundoff_with_16_points(points):
    f = dn.systems.DampedForced()
    defect, tol = _defect_ratio(f, points, 16)
    assert (defect <= tol).all(), float((defect / tol).max())
    # the quadrature error of grad U itself is at round-off level too (rule with 16 vs 32 points)
    assert approx.quadrature_error(f, points[:500], 16) <= 64 * 16 * EPS * float(f(points[:500]).norm(dim=-1).max())


def test_wrong_potential_fails_by_orders_of_magnitude(points):
    f = dn.systems.DampedForced()
    grad_u, _ = approx.decompose(f, points, 16)
    tol = approx.sphere_tolerance(points, f(points), grad_u, 16)
    x = points.clone().requires_grad_(True)
    (g_wrong,) = torch.autograd.grad(0.5 * (x * f(x)).sum(), x)  # U = x.f(x)/2: right only for linear f
    wrong = approx.sphere_defect(points, f(points) - g_wrong)
    assert float(wrong.max()) >= 1e6 * float(tol.max())


def test_linear_field_splits_into_symmetric_and_skew_parts():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 4, generator=g, dtype=torch.float64)
    x = torch.randn(200, 4, generator=g, dtype=torch.float64)
    grad_u, xs = approx.decompose(lambda y: y @ a.t(), x, 1)  # exact already with one point
    scale = float(a.abs().max() * x.abs().max())
    assert float((grad_u - x @ ((a + a.t()) / 2).t()).abs().max()) <= 16 * EPS * scale
    assert float((xs - x @ ((a - a.t()) / 2).t()).abs().max()) <= 16 * EPS * scale


def test_sphere_part_is_a_skew_product(points):
    f = dn.systems.DampedForced()
    grad_u, xs = approx.decompose(f, points, 16)
    s = approx.sphere_skew(points, xs)
    assert torch.equal(s, -s.transpose(-1, -2))  # skew exactly, by construction
    sx = (s @ points.unsqueeze(-1)).squeeze(-1)
    # S x = X_S - x (x.X_S)/|x|^2, so the residual is the (round-off) defect over |x|, plus rounding of S x
    tol = 8 * 3 * EPS * xs.norm(dim=-1) + approx.sphere_tolerance(points, f(points), grad_u, 16) / points.norm(dim=-1)
    assert ((sx - xs).norm(dim=-1) <= tol).all()
    with pytest.raises(ValueError, match="x != 0"):
        approx.sphere_skew(torch.zeros(1, 3, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64))


def test_trotter_splitting_converges_first_order():
    f = dn.systems.DampedForced()
    x = 2 * torch.rand(32, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64) - 1
    ref = time_one_map(f, 100)(x)
    e1 = approx.relative_error(approx.trotter_flow(f, x, 1.0, 1, substeps=4), ref)
    e4 = approx.relative_error(approx.trotter_flow(f, x, 1.0, 4, substeps=4), ref)
    assert 3.0 <= e1 / e4 <= 5.0  # ratio 4 for a first-order splitting


def test_time_one_map_is_converged():
    f = dn.systems.DampedForced()
    x = 2 * torch.rand(64, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) - 1
    a, b = time_one_map(f, 200)(x), time_one_map(f, 400)(x)
    assert float((a - b).abs().max()) < 1e-10


def test_models_have_matched_parameter_counts():
    for n_steps in (2, 4, 8, 16):
        p = approx.presnov_flow(3, n_steps, 14)
        d = approx.dense_resnet(3, n_steps, approx.matched_dense_width(3, n_steps, 14))
        assert approx.n_params(p) == approx.n_params(d)
        assert len(p) == len(d) == n_steps


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="quadrature points"):
        approx.gauss_legendre(0)
    with pytest.raises(ShapeError, match="batch, dim"):
        approx.potential(dn.systems.DampedForced(), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="finite"):
        approx.decompose(dn.systems.DampedForced(), torch.full((2, 3), float("nan"), dtype=torch.float64))
    with pytest.raises(ConfigError, match="even"):
        approx.presnov_flow(3, 3, 8)
    with pytest.raises(ConfigError, match="signs"):
        approx.presnov_flow(3, 2, 8, signs="positive")


@pytest.mark.slow
def test_experiment_quick_smoke(tmp_path):
    from experiments import presnov

    metrics = presnov.main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "presnov.png").stat().st_size > 0
    assert saved["decomposition"]["damped_forced"]["holds"] is True
    assert saved["decomposition"]["cubic_polynomial"]["holds"] is True
    dec = metrics["decomposition"]["damped_forced"]
    assert dec["negative_control_U_eq_half_x_dot_f"] >= 1e6 * dec["max_tolerance"]
    errs = [metrics["trotter_relative_error"][k] for k in sorted(metrics["trotter_relative_error"])]
    assert all(b < a for a, b in zip(errs[:-1], errs[1:], strict=True))
    for rows in saved["approximation"].values():
        for row in rows.values():
            assert row["param_mismatch"] <= 0.05
            assert 0 < row["presnov"]["test_rel_error"] < 1.0


def test_experiment_bad_option_is_one_line(capsys):
    from dynnets.applications.runner import run_cli
    from experiments import presnov

    with pytest.raises(SystemExit) as exc:
        run_cli(presnov.main, ["--device", "tpu"])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tpu" in err[0]
