import io
import math

import pytest
import torch
from torch.func import functional_call, jacrev, jvp, vmap

import dynnets as dn
from dynnets.errors import ConfigError, NotInvertibleError, ShapeError, StepSizeError

EPS64 = torch.finfo(torch.float64).eps


def dense_flow(n=5, dim=4, width=8, h=0.2, method=None):
    method = method or dn.methods.Euler()
    return dn.Flow([dn.Step(dn.fields.Dense(dim, width), method, h) for _ in range(n)])


def test_done_when_hundred_euler_dense_steps():
    net = dense_flow(n=100, dim=6, width=16, h=0.1).double()
    x = torch.randn(3, 6, dtype=torch.float64)
    assert net(x).dtype == torch.float64 and net(x).shape == (3, 6)
    assert net.guarantees == frozenset()
    assert not net.invertible
    with pytest.raises(NotInvertibleError, match="step 0 \\(Dense with Euler\\)"):
        net.inverse(x)
    assert issubclass(NotInvertibleError, TypeError)


def test_public_names_of_the_core_exist():
    for name in ["Step", "Flow", "fields", "methods", "structure", "testing"]:
        assert hasattr(dn, name)
    for name in ["Euler", "Heun", "RK4", "ExplicitRK"]:
        assert hasattr(dn.methods, name)
    assert hasattr(dn.fields, "Dense")
    for name in ["LinearInvariant", "PreservesVolume", "Symplectic", "Lipschitz", "QuadraticInvariant"]:
        assert hasattr(dn.structure, name)
    for name in ["symplecticity_defect", "volume_defect", "invariant_drift", "lipschitz_ratio"]:
        assert callable(getattr(dn.testing, name))
    flow = dense_flow(2)
    assert hasattr(flow, "inverse") and hasattr(flow, "lipschitz_bound") and hasattr(flow, "guarantees")


@pytest.mark.parametrize("h", [0.0, -0.1, math.nan, math.inf, "big"])
def test_bad_step_size_rejected(h):
    with pytest.raises(StepSizeError, match="step size h"):
        dn.Step(dn.fields.Dense(2, 3), dn.methods.Euler(), h)


def test_step_rejects_non_method_and_non_module():
    with pytest.raises(TypeError, match="dynnets.methods.Method"):
        dn.Step(dn.fields.Dense(2, 3), "euler", 0.1)
    with pytest.raises(TypeError, match="dynnets Field, an nn.Module or a function"):
        dn.Step("x", dn.methods.Euler(), 0.1)


def test_wrong_input_shape_names_the_shapes():
    step = dn.Step(dn.fields.Dense(3, 5), dn.methods.Euler(), 0.1)
    with pytest.raises(ShapeError, match=r"dim=3, got shape \(2, 4\)"):
        step(torch.randn(2, 4))


def test_flow_construction_errors():
    with pytest.raises(ConfigError, match="at least one step"):
        dn.Flow([])
    with pytest.raises(TypeError, match="step 0 must be a dynnets Step"):
        dn.Flow([torch.nn.Linear(2, 2)])
    step = dn.Step(dn.fields.Dense(2, 3), dn.methods.Euler(), 0.1)
    for n in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="positive integer"):
            dn.Flow.repeat(step, n)


def test_repeat_is_weight_tied_and_matches_a_loop():
    step = dn.Step(dn.fields.Dense(4, 8), dn.methods.Heun(), 0.05).double()
    flow = dn.Flow.repeat(step, 50)
    assert len(flow) == 50 and len(flow.layers) == 1
    assert sum(p.numel() for p in flow.parameters()) == sum(p.numel() for p in step.parameters())
    assert len(flow.state_dict()) == len(step.state_dict())
    x = torch.randn(3, 4, dtype=torch.float64)
    y = x
    for _ in range(50):
        y = step(y)
    assert torch.equal(flow(x), y)


def test_nested_flows_compose():
    inner = dense_flow(3).double()
    outer = dn.Flow([inner, dense_flow(2).double()])
    x = torch.randn(2, 4, dtype=torch.float64)
    assert torch.equal(outer(x), outer.layers[1](inner(x)))
    assert len(outer) == 2


def test_learned_step_size_is_positive_and_trained():
    field = dn.fields.Dense(3, 5)
    step = dn.Step(field, dn.methods.Euler(), 0.1, learn_h=True)
    assert abs(float(step.h) - 0.1) < 1e-6
    opt = torch.optim.SGD([step.h_raw], lr=100.0)
    x = torch.randn(16, 3)
    for _ in range(20):  # gradient descent on h itself drives it hard towards 0: it must stay positive
        opt.zero_grad()
        step.h.backward()
        opt.step()
    assert 0 < float(step.h) < 1e-3 and step.h_raw.grad is not None
    assert torch.isfinite(step(x)).all()
    capped = dn.Step(field, dn.methods.Euler(), 0.1, learn_h=True, h_max=0.5)
    with torch.no_grad():
        capped.h_raw.fill_(1e3)
    assert 0 < float(capped.h) <= 0.5
    with pytest.raises(StepSizeError, match="below h_max"):
        dn.Step(field, dn.methods.Euler(), 0.6, learn_h=True, h_max=0.5)


def test_learned_step_size_gets_the_right_gradient():
    field = dn.fields.Dense(3, 5).double()
    step = dn.Step(field, dn.methods.Euler(), 0.3, learn_h=True).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    step(x).sum().backward()
    # d/dh (x + h F(x)) summed = sum F(x); chain rule through softplus: sigmoid(rho)
    expected = field(x).sum() * torch.sigmoid(step.h_raw)
    assert torch.allclose(step.h_raw.grad, expected.detach(), rtol=1e-12)


def _functional(flow):
    params = {k: v.detach() for k, v in flow.named_parameters()}

    def f(p, x):
        return functional_call(flow, p, (x.unsqueeze(0),)).squeeze(0)

    return params, f


def test_vmap_jacrev_jvp_through_flow():
    flow = dense_flow(6, method=dn.methods.RK4()).double()
    params, f = _functional(flow)
    x = torch.randn(5, 4, dtype=torch.float64)
    J = vmap(jacrev(f, argnums=1), in_dims=(None, 0))(params, x)
    assert J.shape == (5, 4, 4)
    # against finite differences (central, float64)
    d = 1e-6
    e = torch.eye(4, dtype=torch.float64)
    fd = torch.stack([(flow(x + d * e[k]) - flow(x - d * e[k])) / (2 * d) for k in range(4)], -1)
    assert torch.allclose(J, fd, atol=1e-8)
    v = torch.randn(4, dtype=torch.float64)
    _, tangent = jvp(lambda z: f(params, z), (x[0],), (v,))
    assert torch.allclose(tangent, J[0] @ v, atol=1e-12)
    # vmap over the batch equals the batched forward
    assert torch.allclose(vmap(f, in_dims=(None, 0))(params, x), flow(x), atol=0, rtol=0)


def test_float64_round_trips():
    flow = dense_flow(8)
    x = torch.randn(3, 4)
    y32 = flow(x)
    flow64 = flow.double()
    y64 = flow64(x.double())
    assert y64.dtype == torch.float64
    assert torch.allclose(y64.float(), y32, atol=1e-5)
    # float64 -> float32 -> float64 of the parameters is lossless when they came from float32
    back = flow64.float().double()
    assert torch.equal(back(x.double()), y64)
    # state_dict save/load round trip (weights_only) is bitwise
    buf = io.BytesIO()
    torch.save(back.state_dict(), buf)
    buf.seek(0)
    fresh = dense_flow(8).double()
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh(x.double()), y64)


def test_lipschitz_bound_is_an_upper_bound_and_multiplies():
    flow = dense_flow(4, method=dn.methods.RK4(), h=0.3).double()
    x = torch.randn(512, 4, dtype=torch.float64)
    y = x + 1e-3 * torch.randn_like(x)
    ratio = dn.testing.lipschitz_ratio(flow, x, y)
    bound = flow.lipschitz_bound()
    assert ratio <= bound
    per_step = [s.lipschitz_bound() for s in flow.steps]
    assert math.isclose(bound, math.prod(per_step), rel_tol=1e-12)
    # Euler: exactly 1 + h ||B|| ||A|| Lip(tanh)
    s = dn.Step(dn.fields.Dense(4, 6).double(), dn.methods.Euler(), 0.25)
    A, B = s.field.A.detach(), s.field.B.detach()
    exact = 1 + 0.25 * torch.linalg.svdvals(A)[0] * torch.linalg.svdvals(B)[0]
    assert math.isclose(s.lipschitz_bound(), float(exact), rel_tol=1e-12)


@pytest.mark.slow
def test_torch_compile_matches_eager():
    flow = dense_flow(4, method=dn.methods.Heun())
    x = torch.randn(8, 4)
    compiled = torch.compile(flow)
    assert torch.allclose(compiled(x), flow(x), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_follows_input():
    flow = dense_flow(3).cuda()
    assert flow(torch.randn(2, 4, device="cuda")).device.type == "cuda"
