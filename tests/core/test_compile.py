"""GPU-readiness without a GPU: no host synchronisation in the forward or backward of any (field family,
method) pair. A ``.item()``, ``float(tensor)``, ``bool(tensor)`` or a Python branch on a tensor value
would break the graph, and ``torch.compile(fullgraph=True)`` refuses any graph break, so each pair's Step
and a 10-step weight-tied Flow of it are compiled with ``fullgraph=True`` and must give eager's outputs
and gradients (input, parameters and a learned step size) to round-off.

The backend is ``aot_eager``: AOTAutograd traces the forward and the joint backward graph (what inductor
would compile), without inductor's C++ code generation, which takes minutes per pair on these CPUs
(``docs/gpu.md`` has the inductor command and figures). ``ImplicitRK`` is the documented exception: its
Newton iteration stops on a residual test and raises ``NotConvergedError`` for unsolved samples, both read
on the host by design (a fixed iteration count would return unconverged stages silently); it compiles with
graph breaks (``fullgraph=False``) and gives eager's outputs and gradients, tested below.
"""

from __future__ import annotations

import pytest
import torch
from structure_cases import EPS

import dynnets as dn

F, M = dn.fields, dn.methods
C = 100  # round-off tolerance C * n * eps (n = steps): the traced graph may order sums differently


def _image(channels, size=6):
    return lambda batch: torch.randn(batch, channels, size, size, dtype=torch.float64)


def _vector(dim):
    return lambda batch: torch.randn(batch, dim, dtype=torch.float64)


# (name, field builder, method, input builder): every field family with every method family that
# integrates it (explicit Runge-Kutta methods share one code path, ExplicitRK, run here as Euler or Heun)
PAIRS = [
    ("Dense/Heun", lambda: F.Dense(4, 8), M.Heun(), _vector(4)),
    ("Gradient/Euler", lambda: F.Gradient(4, 8), M.Euler(), _vector(4)),
    ("Linear/Euler", lambda: F.Linear(torch.tensor([[0.0, 1.0], [-1.0, -0.1]])), M.Euler(), _vector(2)),
    ("HeatField1D/CrankNicolson", lambda: dn.systems.HeatField1D(dn.systems.UniformGrid1D(0.0, 1.0, 5), left=1.0),
     M.CrankNicolson(), _vector(4)),
    ("Projected/Euler", lambda: F.Projected(F.Dense(4, 8), [1.0, 2.0, 0.0, -1.0]), M.Euler(), _vector(4)),
    ("Hamiltonian/Euler", lambda: F.Hamiltonian(2, 8), M.Euler(), _vector(4)),
    ("Hamiltonian/SymplecticEuler", lambda: F.Hamiltonian(2, 8), M.SymplecticEuler(), _vector(4)),
    ("Hamiltonian/StormerVerlet", lambda: F.Hamiltonian(2, 8), M.StormerVerlet(), _vector(4)),
    ("GeneralHamiltonian/Euler", lambda: F.GeneralHamiltonian(2, 8), M.Euler(), _vector(4)),
    ("VolumePreserving/SymplecticEuler", lambda: F.VolumePreserving(2, 8), M.SymplecticEuler(), _vector(4)),
    ("VolumePreserving/StormerVerlet", lambda: F.VolumePreserving(2, 8), M.StormerVerlet(), _vector(4)),
    ("MassPreserving/Euler", lambda: F.MassPreserving(4, 8), M.Euler(), _vector(4)),
    ("LowRankMassPreserving/Euler", lambda: F.MassPreserving(4, 8, rank=2), M.Euler(), _vector(4)),
    ("SpherePreserving/Euler", lambda: F.SpherePreserving(4, 8), M.Euler(), _vector(4)),
    ("SpherePreserving/Cayley", lambda: F.SpherePreserving(4, 8), M.Cayley(), _vector(4)),
    ("LiePoisson/Cayley", lambda: F.LiePoisson(8), M.Cayley(), _vector(3)),
    ("LowRankSpherePreserving/Cayley", lambda: F.SpherePreserving(4, 8, rank=2), M.Cayley(), _vector(4)),
    ("LowRankSpherePreserving(rank=1)/Cayley", lambda: F.SpherePreserving(4, 8, rank=1), M.Cayley(), _vector(4)),
    ("QuadraticPreserving/Euler", lambda: F.QuadraticPreserving(3, 8, torch.eye(3)), M.Euler(), _vector(3)),
    ("ConvFD/Euler", lambda: F.ConvFD(2, 3), M.Euler(), _image(2)),
    ("MirroredConvFD/Euler", lambda: F.MirroredConvFD(2, 4), M.Euler(), _image(2)),
    ("ConvGradient/Euler", lambda: F.ConvGradient(2, 3, (6, 6)), M.Euler(), _image(2)),
    ("FunctionField/Euler", lambda: F.FunctionField(lambda x: torch.tanh(x).flip(-1), 3), M.Euler(), _vector(3)),
]


def _build(make_field, method, seed: int):
    torch.manual_seed(seed)
    field = make_field().double()
    step = dn.Step(field, method, 0.1, learn_h=True).double()
    return step, dn.Flow.repeat(step, 10)


def _run(fn, step, x):
    """Outputs of fn (step and flow) and the gradients of a non-linear loss of both w.r.t. x and every
    trainable tensor (a learned h included)."""
    step.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    single, flow = fn(x)
    (single.sin().sum() + flow.cos().sum()).backward()
    return [single.detach(), flow.detach(), x.grad] + [p.grad for p in step.parameters()]


def _compare(got, want, n: int) -> None:
    for g, w in zip(got, want, strict=True):
        assert g is not None and w is not None and bool(torch.isfinite(w).all())
        assert float((g - w).abs().max()) <= C * n * EPS * max(1.0, float(w.abs().max()))


@pytest.mark.slow
@pytest.mark.parametrize("name, make_field, method, make_input", PAIRS, ids=[p[0] for p in PAIRS])
def test_step_and_flow_compile_fullgraph_with_eager_outputs_and_gradients(name, make_field, method, make_input):
    step, flow = _build(make_field, method, seed=0)
    x = make_input(3)

    def both(z):
        return step(z), flow(z)

    torch._dynamo.reset()
    compiled = torch.compile(both, fullgraph=True, backend="aot_eager")
    _compare(_run(compiled, step, x), _run(both, step, x), n=10)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name, make_field, method, make_input", PAIRS, ids=[p[0] for p in PAIRS])
def test_step_and_flow_compile_with_the_default_inductor_backend(name, make_field, method, make_input, dtype):
    """As users call it: ``torch.compile`` with the default backend (inductor's C++ code generation and
    its pattern rewrites, which ``aot_eager`` skips) gives eager's outputs and gradients, float32 and
    float64 (a 3-step flow: the weight-tied path, at a fraction of the 10-step compile time)."""
    step, _ = _build(make_field, method, seed=0)
    step = step.to(dtype)
    flow = dn.Flow.repeat(step, 3)
    x = make_input(3).to(dtype)

    def both(z):
        return step(z), flow(z)

    torch._dynamo.reset()
    got, want = _run(torch.compile(both, fullgraph=True), step, x), _run(both, step, x)
    eps = torch.finfo(dtype).eps
    for g, w in zip(got, want, strict=True):
        assert g is not None and w is not None and bool(torch.isfinite(w).all())
        assert float((g - w).abs().max()) <= C * 3 * eps * max(1.0, float(w.abs().max()))


@pytest.mark.slow
def test_negative_control_inductor_drops_alpha_of_an_add_after_a_matrix_product():
    """Why the shears (``Field.partition_kick``, ``partitioned._unshear``) never write
    ``torch.add(z, value, alpha=c)``: inductor (torch 2.13, CPU) rewrites add(z, mm(a, b), alpha=c) into an
    addmm and drops alpha (docs/gpu.md). If a torch release fixes this, this test fails and the note in
    docs/gpu.md can go."""
    weight = torch.randn(4, 4)

    def shear(q, v):
        return torch.add(q, v @ weight, alpha=0.1)

    q, v = torch.randn(3, 4), torch.randn(3, 4)
    torch._dynamo.reset()
    compiled = torch.compile(shear, fullgraph=True)(q, v)
    assert float((compiled - shear(q, v)).abs().max()) > 1e-2  # O(1) wrong
    assert float((compiled - (q + v @ weight)).abs().max()) <= 1e-5  # alpha treated as 1


@pytest.mark.slow
def test_implicit_runge_kutta_compiles_with_graph_breaks_only():
    """ImplicitRK: Newton's residual test and NotConvergedError read the residual on the host, so fullgraph
    capture is refused (a graph break is an error there); without fullgraph the compiled step gives eager's
    outputs and gradients (the solve runs eagerly between graphs)."""
    step, flow = _build(lambda: F.GeneralHamiltonian(2, 8), M.GaussLegendre(2), seed=1)
    x = _vector(4)(3)

    def both(z):
        return step(z), flow(z)

    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.TorchDynamoException):
        torch.compile(both, fullgraph=True, backend="aot_eager")(x)
    torch._dynamo.reset()
    _compare(_run(torch.compile(both, backend="aot_eager"), step, x), _run(both, step, x), n=10)


class _RescaledEuler(M.Euler):
    """Euler that branches in Python on a tensor value: a host synchronisation (the negative control)."""

    def step(self, field, x, h):
        out = super().step(field, x, h)
        return out / 2 if bool(out.abs().max() > 1e3) else out


@pytest.mark.slow
def test_negative_control_a_host_synchronisation_fails_fullgraph_compilation():
    step = dn.Step(F.Dense(4, 8), _RescaledEuler(), 0.1).double()
    x = _vector(4)(3)
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.TorchDynamoException):  # data-dependent branch: no single graph
        torch.compile(step, fullgraph=True, backend="aot_eager")(x)
