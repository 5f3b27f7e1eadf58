"""ConvFD (B * sigma(A * U), circular padding) and the exact construction of FD right-hand sides.

Exactness is measured in float64 against the FD field, elementwise, with the tolerance of a sum of n
rounded terms: |F_net - F_fd| <= C n eps S, S = (|alpha L| * |U|) + |U| + U^2 (the sum of the absolute
values of the terms), n = number of terms of the longest dot product (k^2 * hidden), C = 4. The negative
control (the 9-point construction against the 5-point field) must be >= 1e6 times larger.
"""

from __future__ import annotations

import math

import pytest
import torch

import dynnets as dn
from dynnets.applications.pde import data as D
from dynnets.applications.pde import exact_convfd, polynomial_convfd
from dynnets.errors import ConfigError, ShapeError
from dynnets.systems import FisherField2D, HeatField2D, PeriodicGrid2D
from dynnets.systems.stencils import apply_stencil, gradient, identity, laplacian

EPS = torch.finfo(torch.float64).eps
C = 4.0


def _fields(n=32, count=3, seed=0):
    grid = PeriodicGrid2D(n)
    return grid, D.random_fields(count, grid, torch.Generator().manual_seed(seed), k_max=n / 2 - 1)


def _scale(kernel, u):
    return apply_stencil(kernel.abs(), u.abs())


@pytest.mark.parametrize("stencil", ["5pt", "9pt", "cross4"])
def test_exact_fisher_construction_matches_fd_field_to_roundoff(stencil):
    grid, u = _fields()
    alpha = 0.01
    fd = FisherField2D(grid, alpha, stencil)
    net = exact_convfd(alpha, grid.dx, stencil)
    assert net.hidden == 4 and [a.name for a in net.activations] == ["relu", "relu", "relu2", "relu2"]
    defect = (net(u) - fd(u)).abs()
    bound = C * net.kernel_size**2 * net.hidden * EPS * (alpha * _scale(fd.kernel, u) + u.abs() + u * u)
    assert bool((defect <= bound).all()), float((defect / bound).max())
    # negative control: the 9-point (resp. 5-point) construction against this stencil's field
    other = exact_convfd(alpha, grid.dx, "9pt" if stencil != "9pt" else "5pt")
    wrong = (other(u) - fd(u)).abs().max()
    assert wrong >= 1e6 * bound.max()


def test_exact_heat_construction_and_rollout_equal_fd_scheme():
    """40 steps of 3 Euler substeps: the constructed network and the FD scheme agree to round-off,
    |U_net - U_fd| <= C n eps (max|U| + h max S) summed over n = 120 substeps."""
    grid, u0 = _fields(n=24, count=2)
    alpha, dt = 0.01, 2.4e-3 * (24 / 100) ** 2  # same mesh ratio alpha dt/dx^2 as 100x100, dt = 2.4e-3
    for fd, net in ((HeatField2D(grid, alpha), exact_convfd(alpha, grid.dx, reaction=(0.0, 0.0))),
                    (FisherField2D(grid, alpha), exact_convfd(alpha, grid.dx))):
        h = dt / 3
        run_fd = dn.Flow.repeat(dn.Step(fd, dn.methods.Euler(), h), 3)
        run_net = dn.Flow.repeat(dn.Step(net, dn.methods.Euler(), h), 3)
        a, b = u0.clone(), u0.clone()
        with torch.no_grad():
            for _ in range(40):
                a, b = run_fd(a), run_net(b)
        s = alpha * _scale(fd.kernel, u0) + u0.abs() + u0 * u0
        n = 120
        tol = C * n * net.kernel_size**2 * net.hidden * EPS * (float(u0.abs().max()) + h * float(s.max()))
        assert float((a - b).abs().max()) <= tol
        assert float((a - u0).abs().max()) > 1e6 * tol  # the rollout did move: the comparison is not vacuous


def test_general_polynomial_rhs_products_of_two_and_three_factors():
    grid, u = _fields(n=16, count=2, seed=3)
    dx = grid.dx
    lap, gx, gy, one = laplacian("5pt", dx), gradient("x", "2", dx), gradient("y", "4", dx), identity(1)
    # F = 0.1 Lap U + 0.5 U Ux - 2 Ux Uy + 0.3 U Ux Uy - U^3 (Burgers-like + cubic terms)
    terms = [(0.5, [one, gx]), (-2.0, [gx, gy]), (0.3, [one, gx, gy]), (-1.0, [one, one, one])]
    net = polynomial_convfd(0.1 * lap, terms)
    ux, uy = apply_stencil(gx, u), apply_stencil(gy, u)
    expected = 0.1 * apply_stencil(lap, u) + 0.5 * u * ux - 2.0 * ux * uy + 0.3 * u * ux * uy - u**3
    scale = (0.1 * _scale(lap, u) + 0.5 * (u * ux).abs() + 2 * (ux * uy).abs() + 0.3 * (u * ux * uy).abs()
             + u.abs() ** 3)
    # polarisation sums 2^(m-1) powers of stencil combinations: |S*U|^m <= (sum_j |D_j|*|U|)^m
    big = (_scale(gx, u) + _scale(gy, u) + u.abs()) ** 3 + scale
    defect = (net(u) - expected).abs()
    assert bool((defect <= 64 * C * net.kernel_size**2 * net.hidden * EPS * big).all())
    assert (expected - 0.1 * apply_stencil(lap, u)).abs().max() > 1e-3  # the products are not negligible


def test_construction_refuses_unsupported_terms():
    one = identity(1)
    with pytest.raises(ConfigError, match="m=5"):
        polynomial_convfd(None, [(1.0, [one] * 5)])
    with pytest.raises(ConfigError, match="constant term"):
        polynomial_convfd(None, [(1.0, [])])
    with pytest.raises(ShapeError, match="odd"):
        polynomial_convfd(torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="nothing to construct"):
        polynomial_convfd(None, [])


def test_convfd_shapes_activations_and_errors():
    net = dn.fields.ConvFD(2, 5, 5, ["relu", "relu2", "tanh", "relu2", "relu"]).double()
    u = torch.randn(3, 2, 12, 10, dtype=torch.float64)
    assert net(u).shape == u.shape
    z = torch.nn.functional.conv2d(torch.nn.functional.pad(u, (2, 2, 2, 2), mode="circular"), net.A)
    expected = torch.stack([torch.relu(z[:, 0]), torch.relu(z[:, 1]) ** 2, torch.tanh(z[:, 2]),
                            torch.relu(z[:, 3]) ** 2, torch.relu(z[:, 4])], dim=1)
    torch.testing.assert_close(net.hidden_activity(u), expected, rtol=0, atol=0)
    # periodic: shifting the input shifts the output (translation equivariance on the torus)
    shifted = torch.roll(u, (3, -4), (-2, -1))
    torch.testing.assert_close(net(shifted), torch.roll(net(u), (3, -4), (-2, -1)), rtol=1e-12, atol=1e-12)
    with pytest.raises(ShapeError, match="C=2"):
        net(torch.randn(3, 1, 12, 12, dtype=torch.float64))
    with pytest.raises(ShapeError):
        net(torch.randn(12, 12, dtype=torch.float64))
    with pytest.raises(ConfigError, match="odd"):
        dn.fields.ConvFD(1, 2, 4)
    with pytest.raises(ConfigError, match="hidden=3"):
        dn.fields.ConvFD(1, 3, 3, ["relu", "relu2"])
    with pytest.raises(ConfigError, match="unknown activation"):
        dn.fields.ConvFD(1, 2, 3, "relu7")
    biased = dn.fields.ConvFD(1, 2, 3, "relu", bias=True)
    assert biased.a.shape == (2,) and biased.b.shape == (1,)


def test_relu_power_identities_used_by_the_construction():
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    acts = dn.fields.ACTIVATIONS
    for m in (1, 2, 3, 4):
        fn = acts["relu" if m == 1 else f"relu{m}"].fn
        torch.testing.assert_close(fn(x) + (-1) ** m * fn(-x), x**m, rtol=4 * EPS, atol=0)
    a, b = x, torch.flip(x, [0]) * 0.7
    torch.testing.assert_close(((a + b) ** 2 - (a - b) ** 2) / 4, a * b, rtol=0, atol=16 * EPS)
    assert math.isinf(acts["relu3"].lipschitz)


def test_mirrored_convfd_is_the_polynomial_it_claims_and_stays_tied():
    from dynnets.fields.convfd import MirroredConvFD

    torch.manual_seed(0)
    net = MirroredConvFD(1, 4, 3, ["relu", "relu", "relu2", "relu2"], init_scale=1.0).double()
    assert [n for n, _ in net.named_parameters()] == ["A_free", "B_free"]
    u = torch.randn(2, 1, 9, 9, dtype=torch.float64)
    pad = lambda v: torch.nn.functional.pad(v, (1, 1, 1, 1), mode="circular")  # noqa: E731
    conv = torch.nn.functional.conv2d
    A, B = net.A, net.B
    # relu(z) - relu(-z) = z and relu(w)^2 + relu(-w)^2 = w^2: F = B_0 * (A_0 * U) + B_2 * (A_2 * U)^2
    z, w = conv(pad(u), A[[0]]), conv(pad(u), A[[2]])
    expected = conv(pad(z), B[:, [0]]) + conv(pad(w * w), B[:, [2]])
    scale = conv(pad(conv(pad(u.abs()), A[[0]].abs())), B[:, [0]].abs()) + conv(pad(w * w), B[:, [2]].abs())
    assert bool(((net(u) - expected).abs() <= 64 * EPS * (scale + 1e-300)).all())
    loss = net(u).pow(3).sum()
    loss.backward()  # gradients reach the free halves only; the tie holds by construction
    assert net.A_free.grad is not None and torch.equal(net.A[1], -net.A[0])
