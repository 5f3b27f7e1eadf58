"""Exact norms and parametrisations: FFT conv norm == assembled operator norm, constraints hold to
round-off by construction, bad sizes are refused with typed errors."""

import pytest
import torch
import torch.nn.utils.parametrize as P
from torch import nn

import dynnets as dn
from dynnets import linalg as norms
from dynnets.errors import ConfigError, NotCertifiedError, ShapeError

EPS = torch.finfo(torch.float64).eps


@pytest.mark.parametrize("grid", [(5, 5), (6, 4), (3, 7)])
@pytest.mark.parametrize("channels", [(2, 3), (3, 2), (3, 3)])
@pytest.mark.parametrize("k", [1, 3])
def test_fft_conv_norm_equals_assembled_matrix(grid, channels, k):
    c_out, c_in = channels
    kernel = torch.randn(c_out, c_in, k, k, dtype=torch.float64)
    m = norms.conv_operator_matrix(kernel, grid)
    s_matrix = torch.linalg.svdvals(m)
    s_fft = norms.conv_singular_values(kernel, grid).flatten().sort(descending=True).values
    n = m.shape[1]
    tol = 10 * n * EPS * float(s_matrix[0])
    assert abs(float(norms.conv_spectral_norm(kernel, grid)) - float(s_matrix[0])) <= tol
    # not only the norm: the whole spectrum (the non-zero singular values) matches
    assert torch.allclose(s_fft, s_matrix[: s_fft.numel()], atol=tol, rtol=0)
    smin, smax = norms.conv_bounds(kernel, grid)
    expected_min = float(s_matrix[-1]) if c_out >= c_in else 0.0
    assert abs(float(smin) - expected_min) <= tol


def test_fft_norm_depends_on_grid_and_differs_from_reshaped_matrix():
    # negative control: the common "reshape the kernel to a matrix" norm is not the operator norm
    kernel = torch.randn(3, 3, 3, 3, dtype=torch.float64)
    reshaped = float(torch.linalg.matrix_norm(kernel.reshape(3, -1), ord=2))
    op = float(norms.conv_spectral_norm(kernel, (6, 6)))
    assert op > reshaped * (1 + 1e-3)
    assert float(norms.conv_spectral_norm(kernel, (5, 5))) != op


def test_adjoint_is_exact():
    k = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    x = torch.randn(5, 2, 6, 4, dtype=torch.float64)
    y = torch.randn(5, 4, 6, 4, dtype=torch.float64)
    lhs = (norms.circular_conv(x, k) * y).sum()
    rhs = (x * norms.circular_conv_adjoint(y, k)).sum()
    assert abs(float(lhs - rhs)) <= 100 * x.numel() * EPS * float(lhs.abs() + 1)


def test_kernel_checks():
    with pytest.raises(ShapeError, match="larger than the grid"):
        norms.conv_spectral_norm(torch.randn(2, 2, 5, 5), (4, 4))
    with pytest.raises(ShapeError, match="odd"):
        norms.conv_spectral_norm(torch.randn(2, 2, 2, 2), (4, 4))
    with pytest.raises(ConfigError, match="input_size"):
        norms.conv_spectral_norm(torch.randn(2, 2, 3, 3), (4, 0))


def test_spectral_norm_bound_holds_by_construction():
    lin = nn.Linear(7, 5).double()
    with torch.no_grad():
        lin.weight.mul_(10)
    con = dn.constraints.SpectralNormBound(0.7)
    P.register_parametrization(lin, "weight", con)
    s = float(torch.linalg.matrix_norm(lin.weight.detach(), ord=2))
    assert s <= 0.7 * (1 + 10 * 7 * EPS)
    assert con.defect(lin.weight) <= 10 * 7 * EPS
    # negative control: the raw (unconstrained) tensor is far outside
    assert con.defect(lin.parametrizations.weight.original) > 1.0
    # right inverse: a weight inside the set is stored and returned unchanged
    w = torch.randn(5, 7, dtype=torch.float64)
    w = w * (0.5 / float(torch.linalg.matrix_norm(w, ord=2)))
    lin.weight = w
    assert torch.equal(lin.weight, w)


def test_spectral_norm_bound_gradients_flow():
    lin = nn.Linear(4, 4).double()
    P.register_parametrization(lin, "weight", dn.constraints.SpectralNormBound(0.5))
    lin(torch.randn(3, 4, dtype=torch.float64)).sum().backward()
    assert lin.parametrizations.weight.original.grad is not None


def test_conv_spectral_norm_bound():
    field = dn.fields.ConvGradient(2, 3, (6, 6), init_scale=9.0).double()
    con = dn.constraints.ConvSpectralNormBound(1.0, (6, 6))
    assert con.defect(field.K) > 1.0  # negative control: ||K||_op = 3 before the constraint
    P.register_parametrization(field, "K", con)
    assert con.defect(field.K) <= 10 * 36 * 3 * EPS
    m = norms.conv_operator_matrix(field.K.detach(), (6, 6))
    assert float(torch.linalg.matrix_norm(m, ord=2)) <= 1 + 10 * m.shape[1] * EPS


def test_conv_constraint_refuses_mismatched_sizes():
    field = dn.fields.ConvGradient(2, 3, (6, 6), kernel_size=5)
    with pytest.raises(ShapeError, match="larger than the grid"):
        P.register_parametrization(field, "K", dn.constraints.ConvSpectralNormBound(1.0, (4, 4)))
    with pytest.raises(ShapeError):
        P.register_parametrization(nn.Linear(3, 3), "weight", dn.constraints.ConvSpectralNormBound(1.0, (4, 4)))
    with pytest.raises(ShapeError):
        P.register_parametrization(nn.Conv2d(2, 2, 3), "bias", dn.constraints.SpectralNormBound(1.0))
    with pytest.raises(ConfigError, match="c="):
        dn.constraints.SpectralNormBound(-1.0)
    g = dn.fields.ConvGradient(2, 3, (6, 6))
    with pytest.raises(ShapeError, match="6, 6"):
        g(torch.randn(1, 2, 5, 6))


@pytest.mark.parametrize("shape", [(9, 4), (4, 9), (5, 5)])
def test_orthogonal_to_roundoff(shape):
    lin = nn.Linear(shape[1], shape[0], bias=False).double()
    con = dn.constraints.Orthogonal()
    assert con.defect(lin.weight) > 0.1  # negative control: a random matrix is not orthogonal
    P.register_parametrization(lin, "weight", con)
    assert con.defect(lin.weight) <= 10 * max(shape) * EPS
    # right inverse: an orthonormal matrix is a fixed point
    q = lin.weight.detach().clone()
    lin.weight = q
    assert torch.allclose(lin.weight, q, atol=10 * max(shape) * EPS, rtol=0)


@pytest.mark.slow
def test_orthogonality_penalty_is_not_a_constraint():
    w = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.01)
    for _ in range(30):
        opt.zero_grad()
        dn.constraints.orthogonality_penalty(w).backward()
        opt.step()
    # pushed towards, but not onto, the orthogonal matrices
    assert dn.constraints.Orthogonal().defect(w) > 1e6 * 10 * 6 * EPS


def test_power_iteration_underestimates():
    w = torch.randn(20, 20, dtype=torch.float64)
    est = dn.constraints.power_iteration_norm(w, 1, torch.Generator().manual_seed(0))
    assert est < float(torch.linalg.matrix_norm(w, ord=2)) * (1 - 1e-3)


def test_activation_slopes():
    assert dn.constraints.activation_slopes("relu") == (0.0, 1.0)
    assert dn.constraints.activation_slopes(dn.constraints.leaky_relu(0.5)) == (0.5, 1.0)
    with pytest.raises(NotCertifiedError):
        dn.constraints.activation_slopes("silu")  # not monotone
    with pytest.raises(ConfigError):
        dn.constraints.leaky_relu(1.5)
