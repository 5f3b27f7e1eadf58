"""Learning a flow map: dynnets' symplectic Flows against SympNets, HNN and a residual MLP, on two tasks.

``pendulum``, the SympNets paper's task (Jin, Zhang, Zhu, Tang, Karniadakis, Neural Networks 132, 2020,
Sec. 5.1): H = p^2 / 2 - cos q, one orbit from (q, p) = (1, 0) sampled every h = 0.1; the first 40 pairs
(x_k, x_(k+1)) train, the next 100 test; a 1000-step rollout of the learned map from (1, 0) is compared with
the orbit. ``double`` (issue 29): the planar double pendulum (``dn.systems.DoublePendulum``, unit masses and
lengths, g = 1) on canonical (q1, q2, p1, p2), a non-separable H; 64 training and 16 test trajectories of
40 pairs, h = 0.05, from q ~ U(-1, 1)^2, p ~ U(-0.5, 0.5)^2 (data seed 29); the rollout starts at the first
test trajectory's initial state. References: ``dn.solve`` with DormandPrince853 at rtol = atol = 1e-12,
float64. Every model is trained on the full batch with Adam, lr 1e-3, the same number of iterations
(``--iterations``; the paper uses 50,000), through ``dynnets.train.fit``; a second run gives every model the same CPU seconds instead (``time_budget``: the
CPU seconds the paper's G-SympNet took for the iterations), so a cheaper model gets more iterations.

Models of the pendulum, in two parameter classes (equal counts within 10% in each; the double pendulum's
are the same families for dim 2 in classes of 384 and 40 parameters, ``double_models``):

- about 456 parameters: dynnets' 4-step Stormer-Verlet flow of ``Hamiltonian(1, 19)`` (h = 0.025 each) and
  its 2-step variant of ``Hamiltonian(1, 38)`` (h = 0.05; 6 ridge evaluations instead of 12);
  dynnets' G-type ``networks.sympnet(1, 8, linear=0, width=19, h=1, init_scale=0.01)``; dynnets' LA+G-type
  ``networks.sympnet(1, 8, linear=2, width=20, h=1, init_scale=0.01)`` (the kicks' h is a scale of the
  network, not the data's step: h = 1 with a near-identity start trains far faster under Adam at lr 1e-3
  than h = 0.1); dynnets' Gauss-Legendre(2) step of
  ``GeneralHamiltonian(1, 114)``; the implicit midpoint step of the same field learned through its residual
  (``Step.residual``: the pairs' defect x + h F((x + y) / 2) - y, one field evaluation per iteration, no
  Newton solve; evaluated as the step, a Newton solve); the paper's G-SympNet (8 gradient modules of width 19, reimplemented here:
  p <- p + K^T diag(a) sigma(K q + b), alternating with the same on q; checked against strupnet's G layer
  at start-up with strupnet's activation); strupnet 0.0.4's G-SympNet (``SympNet(1, 8, 19, method="G")``,
  sigma = tanh', dt = 0.1); a Greydanus HNN (H an MLP 2-19-19-1, tanh, F = J grad H by autograd, one RK4
  step of 0.1: the HNN trained on pairs); a residual MLP x + MLP(x), 2-18-18-2, tanh.
- about 14 parameters: the paper's LA-SympNet (3 layers, 2 sublayers: 14 parameters, reimplemented:
  linear modules p <- p + S q, q <- q + S p with S = A + A^T and a bias, activation modules p <- p + a *
  tanh(q)); strupnet's LA-SympNet (``method="LA", layers=3, sublayers=2``); dynnets' LA-SympNet
  ``networks.sympnet(1, 3, linear=2, diagonal=True, h=1, init_scale=0.01)`` (the paper's layout as exact
  kicks, 14 parameters) and its LA+G variant ``networks.sympnet(1, 2, linear=2, width=2, h=1,
  init_scale=0.01)`` (one ridge activation module of width 2, 14 parameters); both again with the kicks'
  scale h = dt = 0.1 and ``init_scale=0.1`` (strupnet's scaling: slower in the first thousands of iterations,
  steadier over tens of thousands under Adam at lr 1e-3).

Reported per model, median and worst over the seeds: one-step test MSE, the largest rollout error
||x_k - x(t_k)|| over the first 100 and over all 1000 steps, the energy error max_k |H(x_k) - H(x_0)| and
its growth (last tenth over first tenth), the symplecticity defect of the trained map in float64
(``dn.testing.symplecticity_defect`` at every tenth test state), and CPU seconds per training iteration
(forward, backward and Adam step on the task's training batch: 40 or 2560 pairs, timed round-robin in one
process, ``interleaved_times``) with its ratio to the paper's G-SympNet.

    python -m benchmarks.sympnets [--quick] [--task pendulum|double|both] [--iterations N] [--seeds K]
                                  [--repeats R] [--budget SECONDS] [--group CLASS]

``--budget`` runs the equal-CPU mode alone with that many CPU seconds per model; ``--group`` keeps one
parameter class (the reference is timed in any case).

``--quick`` caps the iterations at 200, the seeds at 2 and the timing repeats at 5 (smaller values given
stay). The figures are ``sympnets_TASK.png`` in the output directory.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import nn

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli
from dynnets.checks import check_int, positive_real
from dynnets.errors import ConfigError
from dynnets.io import save_figure

from ._common import interleaved_times, machine

ROLLOUT, LR = 1000, 1e-3
REFERENCE = "G-SympNet (paper)"


# ---- the data -----------------------------------------------------------------------------------------------
def trajectories(system, x0: torch.Tensor, dt: float, n: int) -> torch.Tensor:
    """The exact states at t = 0, dt, ..., n dt from x0 (one state (d,) or a batch), (n + 1, *x0.shape):
    ``dn.solve`` with DormandPrince853 at rtol = atol = 1e-12 in float64."""
    t = torch.arange(n + 1, dtype=torch.float64) * dt
    with torch.no_grad():
        return dn.solve(system, x0.double(), t, dn.methods.DormandPrince853(), rtol=1e-12, atol=1e-12).x


def pendulum_data(task: Task):
    """One orbit from (1, 0): pairs 0-39 train, 40-139 test; the rollout's reference is the orbit itself."""
    train, test = 40, 100
    truth = trajectories(task.system, torch.tensor([1.0, 0.0]), task.dt, max(ROLLOUT, train + test))
    return ((truth[:train], truth[1:train + 1]), (truth[train:train + test], truth[train + 1:train + test + 1]),
            truth[:ROLLOUT + 1])


def double_data(task: Task):
    """64 training and 16 test trajectories of 40 pairs from q ~ U(-1, 1)^2, p ~ U(-0.5, 0.5)^2 (seed 29);
    the rollout from the first test trajectory's initial state."""
    gen = torch.Generator().manual_seed(29)
    x0 = torch.cat([2 * torch.rand(80, 2, generator=gen, dtype=torch.float64) - 1,
                    torch.rand(80, 2, generator=gen, dtype=torch.float64) - 0.5], -1)
    x = trajectories(task.system, x0, task.dt, 40)

    def pairs(part):
        return part[:-1].reshape(-1, 4), part[1:].reshape(-1, 4)

    return pairs(x[:, :64]), pairs(x[:, 64:]), trajectories(task.system, x0[64], task.dt, ROLLOUT)


# ---- the peers (state (q, p) throughout; strupnet's is (p, q)) ----------------------------------------------
class PaperGSympNet(nn.Module):
    """G-SympNet (Jin et al. 2020, Sec. 3.2): gradient modules p <- p + K^T diag(a) sigma(K q + b), alternating
    with q <- q + K^T diag(a) sigma(K p + b), no step size (it is absorbed in a)."""

    def __init__(self, dim: int, modules: int, width: int, sigma=torch.tanh):
        super().__init__()
        self.dim, self.sigma = dim, sigma
        self.K = nn.ParameterList([nn.Parameter(torch.randn(width, dim)) for _ in range(modules)])
        self.a = nn.ParameterList([nn.Parameter(torch.randn(width) * 0.01) for _ in range(modules)])
        self.b = nn.ParameterList([nn.Parameter(torch.randn(width)) for _ in range(modules)])

    def forward(self, x):
        q, p = x[..., : self.dim], x[..., self.dim:]
        for i, (K, a, b) in enumerate(zip(self.K, self.a, self.b)):
            if i % 2 == 0:
                p = p + (self.sigma(q @ K.t() + b) * a) @ K
            else:
                q = q + (self.sigma(p @ K.t() + b) * a) @ K
        return torch.cat([q, p], -1)


class PaperLASympNet(nn.Module):
    """LA-SympNet (Jin et al. 2020, Sec. 3.2): ``layers`` - 1 layers of a linear module (``sublayers``
    alternating shears p <- p + S q, q <- q + S p, S = A + A^T, then a bias) and an activation module
    (p <- p + a * tanh(q), alternating with q), then a last linear module."""

    def __init__(self, dim: int, layers: int, sublayers: int):
        super().__init__()
        self.dim, self.sublayers, self.layers = dim, sublayers, layers
        self.A = nn.Parameter(torch.randn(layers, sublayers, dim, dim) * 0.01)
        self.bias = nn.Parameter(torch.zeros(layers, 2 * dim))
        self.act = nn.Parameter(torch.randn(layers - 1, dim) * 0.01)

    def forward(self, x):
        q, p = x[..., : self.dim], x[..., self.dim:]
        for i in range(self.layers):
            for j in range(self.sublayers):
                S = self.A[i, j] + self.A[i, j].t()
                if j % 2 == 0:
                    p = p + q @ S
                else:
                    q = q + p @ S
            q, p = q + self.bias[i, : self.dim], p + self.bias[i, self.dim:]
            if i < self.layers - 1:
                if i % 2 == 0:
                    p = p + self.act[i] * torch.tanh(q)
                else:
                    q = q + self.act[i] * torch.tanh(p)
        return torch.cat([q, p], -1)


class Strupnet(nn.Module):
    """strupnet 0.0.4's SympNet on (q, p) states with the fixed time step ``dt``."""

    def __init__(self, dt: float, **options):
        super().__init__()
        default = torch.get_default_dtype()
        from strupnet import SympNet  # its import sets torch's default dtype to float64: restored
        torch.set_default_dtype(default)
        self.net, self.dt = SympNet(**options), dt

    def forward(self, x):
        d = x.shape[-1] // 2
        y = self.net(torch.cat([x[..., d:], x[..., :d]], -1), self.dt)
        return torch.cat([y[..., d:], y[..., :d]], -1)


class HNN(nn.Module):
    """Greydanus, Dzamba, Yosinski 2019: H an MLP of (q, p) in R^(2 dim), F = J grad H (autograd, with a graph
    for training); one RK4 step of ``dt`` maps pairs."""

    def __init__(self, dim: int, width: int, dt: float):
        super().__init__()
        self.dim, self.dt = dim, dt
        self.H = nn.Sequential(nn.Linear(2 * dim, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                               nn.Linear(width, 1))

    def field(self, x):
        # torch.func.grad: differentiable by the outer autograd (training) and by jacrev (the defect)
        dH = torch.func.vmap(torch.func.grad(lambda z: self.H(z).squeeze(-1)))(x)
        return torch.cat([dH[..., self.dim:], -dH[..., : self.dim]], -1)

    def forward(self, x):
        h = self.dt
        k1 = self.field(x)
        k2 = self.field(x + h / 2 * k1)
        k3 = self.field(x + h / 2 * k2)
        k4 = self.field(x + h * k3)
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


class ByResidual(nn.Module):
    """A dynnets ``Step`` learned through ``Step.residual``: for the implicit midpoint rule the pairs' defect
    x + h F((x + y) / 2) - y, one field evaluation per iteration instead of a Newton solve; the trained model is
    the step itself (a Newton solve to round-off, symplectic for any parameters)."""

    def __init__(self, step: dn.Step):
        super().__init__()
        self.step = step

    def forward(self, x):
        return self.step(x)


def training_loss(model, x, y):
    """The full-batch training loss: the mean squared residual for a ``ByResidual`` model, else the mean
    squared one-step error."""
    if isinstance(model, ByResidual):
        return model.step.residual(x, y).square().mean()
    return (model(x) - y).square().mean()


class ResidualMLP(nn.Module):
    def __init__(self, dim: int, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * dim, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                                 nn.Linear(width, 2 * dim))

    def forward(self, x):
        return x + self.net(x)


def pendulum_models(dt: float) -> dict:
    """name -> (parameter class, builder) of the pendulum (module docstring)."""
    F, M = dn.fields, dn.methods
    return {
        "dynnets SV flow": ("456", lambda: dn.Flow([dn.Step(F.Hamiltonian(1, 19), M.StormerVerlet(), dt / 4)
                                                   for _ in range(4)])),
        "dynnets SV flow 2x38": ("456", lambda: dn.Flow([dn.Step(F.Hamiltonian(1, 38), M.StormerVerlet(), dt / 2)
                                                        for _ in range(2)])),
        "dynnets G sympnet": ("456", lambda: dn.networks.sympnet(1, 8, linear=0, width=19, h=1.0, init_scale=0.01)),
        "dynnets LA+G sympnet": ("456", lambda: dn.networks.sympnet(1, 8, linear=2, width=20, h=1.0,
                                                                    init_scale=0.01)),
        "dynnets GL2": ("456", lambda: dn.Step(F.GeneralHamiltonian(1, 114), M.GaussLegendre(2), dt)),
        "dynnets midpoint, residual": ("456", lambda: ByResidual(dn.Step(F.GeneralHamiltonian(1, 114),
                                                                        M.ImplicitMidpoint(), dt))),
        REFERENCE: ("456", lambda: PaperGSympNet(1, 8, 19)),
        "G-SympNet (strupnet)": ("456", lambda: Strupnet(dt, dim=1, layers=8, width=19, method="G")),
        "HNN": ("456", lambda: HNN(1, 19, dt)),
        "residual MLP": ("456", lambda: ResidualMLP(1, 18)),
        "dynnets LA sympnet": ("14", lambda: dn.networks.sympnet(1, 3, linear=2, diagonal=True, h=1.0,
                                                                  init_scale=0.01)),
        "dynnets LA+G sympnet 2x2": ("14", lambda: dn.networks.sympnet(1, 2, linear=2, width=2, h=1.0,
                                                                        init_scale=0.01)),
        "dynnets LA sympnet, h = dt": ("14", lambda: dn.networks.sympnet(1, 3, linear=2, diagonal=True, h=dt,
                                                                          init_scale=0.1)),
        "dynnets LA+G 2x2, h = dt": ("14", lambda: dn.networks.sympnet(1, 2, linear=2, width=2, h=dt,
                                                                        init_scale=0.1)),
        "LA-SympNet (paper)": ("14", lambda: PaperLASympNet(1, 3, 2)),
        "LA-SympNet (strupnet)": ("14", lambda: Strupnet(dt, dim=1, layers=3, sublayers=2, method="LA")),
    }


def double_models(dt: float) -> dict:
    """The pendulum's families for dim 2: 384 parameters (GL2 of ``GeneralHamiltonian(2, 64)``, the issue's
    non-separable H, and its implicit midpoint step learned through the residual; the G-SympNets with 8 modules of width 12; HNN 4-16-16-1; MLP 4-15-15-4) and 40 (the
    LA-SympNets with 3 layers of 2 sublayers; dynnets' LA+G with one activation module of width 4)."""
    F, M = dn.fields, dn.methods
    return {
        "dynnets GL2": ("384", lambda: dn.Step(F.GeneralHamiltonian(2, 64), M.GaussLegendre(2), dt)),
        "dynnets midpoint, residual": ("384", lambda: ByResidual(dn.Step(F.GeneralHamiltonian(2, 64),
                                                                        M.ImplicitMidpoint(), dt))),
        "dynnets SV flow 2x24": ("384", lambda: dn.Flow([dn.Step(F.Hamiltonian(2, 24), M.StormerVerlet(), dt / 2)
                                                        for _ in range(2)])),
        "dynnets G sympnet": ("384", lambda: dn.networks.sympnet(2, 8, linear=0, width=12, h=1.0, init_scale=0.01)),
        "dynnets LA+G sympnet": ("384", lambda: dn.networks.sympnet(2, 8, linear=2, width=10, h=1.0,
                                                                    init_scale=0.01)),
        REFERENCE: ("384", lambda: PaperGSympNet(2, 8, 12)),
        "G-SympNet (strupnet)": ("384", lambda: Strupnet(dt, dim=2, layers=8, width=12, method="G")),
        "HNN": ("384", lambda: HNN(2, 16, dt)),
        "residual MLP": ("384", lambda: ResidualMLP(2, 15)),
        "dynnets LA sympnet": ("40", lambda: dn.networks.sympnet(2, 3, linear=2, diagonal=True, h=1.0,
                                                                  init_scale=0.01)),
        "dynnets LA+G sympnet 2x4": ("40", lambda: dn.networks.sympnet(2, 2, linear=2, width=4, h=1.0,
                                                                        init_scale=0.01)),
        "LA-SympNet (paper)": ("40", lambda: PaperLASympNet(2, 3, 2)),
        "LA-SympNet (strupnet)": ("40", lambda: Strupnet(dt, dim=2, layers=3, sublayers=2, method="LA")),
    }


@dataclass(frozen=True)
class Task:
    """A flow-map task: the system (its ``hamiltonian`` is the energy), the data's step, the data
    ((train pairs, test pairs, rollout reference) from ``data(task)``) and the models
    (``models(dt)``: name -> (parameter class, builder))."""

    name: str
    system: nn.Module
    dt: float
    data: Callable
    models_for: Callable

    def models(self) -> dict:
        return self.models_for(self.dt)


TASKS = {"pendulum": Task("pendulum", dn.systems.Pendulum(), 0.1, pendulum_data, pendulum_models),
         "double": Task("double", dn.systems.DoublePendulum(g=1.0), 0.05, double_data, double_models)}


def check_reimplementation() -> float:
    """The paper's G-SympNet here against strupnet's G layers with the same weights and strupnet's activation
    (tanh' = 1 - tanh^2; strupnet scales each module by dt): the largest output difference."""
    torch.manual_seed(0)
    dt = 0.1
    ref = Strupnet(dt, dim=1, layers=4, width=5, method="G").double()
    ours = PaperGSympNet(1, 4, 5, sigma=lambda u: 1 - torch.tanh(u) ** 2).double()
    with torch.no_grad():
        for layer, K, a, b in zip(ref.net.layers_list, ours.K, ours.a, ours.b):
            s = layer.hamiltonian
            K.copy_(s.weight_matrix.t())
            a.copy_(s.a * dt)
            b.copy_(s.b)
    x = torch.randn(16, 2, dtype=torch.float64)
    with torch.no_grad():
        return float((ref(x) - ours(x)).abs().max())


# ---- training and evaluation ---------------------------------------------------------------------------------
def train(model, data, iterations: int, budget: float | None):
    """Adam on the full-batch one-step MSE through dn.train.fit; with ``budget`` (CPU seconds) the run stops
    there (at most 100 x iterations). Returns (iterations done, CPU seconds)."""
    x, y = data

    def loss(m, _):
        return training_loss(m, x, y)

    result = dn.train.fit(model, loss, steps=iterations if budget is None else 100 * iterations,
                          optimizer="adam", lr=LR, progress=False, dtype=torch.float64,
                          time_budget=budget, timer="cpu")
    return result.steps_done, result.train_seconds


def evaluate(model, test, truth, energy) -> dict:
    model.eval()
    with torch.no_grad():
        mse = float((model(test[0]) - test[1]).square().mean())
        x, states = truth[:1], [truth[:1]]
        for _ in range(ROLLOUT):
            x = model(x)
            states.append(x)
    states = torch.cat(states)
    err = (states - truth).norm(dim=1)
    finite = bool(torch.isfinite(states).all())
    e = (energy(states) - energy(truth[:1])).abs() if finite else torch.full((ROLLOUT + 1,), math.inf)
    tenth = ROLLOUT // 10
    return {"test_mse": mse, "rollout_100": float(err[:101].max()), "rollout_1000": float(err.max()),
            "energy_error": float(e.max()), "energy_growth": float(e[-tenth:].max() / e[1:tenth + 1].max().clamp_min(1e-300)),
            "symplecticity_defect": float(dn.testing.symplecticity_defect(model, test[0][::10])) if finite else math.inf,
            "_states": states}


def per_iteration_seconds(task: Task, models: dict, data, repeats: int) -> dict:
    """CPU seconds of one training iteration (forward, backward, Adam step on the training batch) of the
    models and the reference, timed round-robin in one process, with the fused Adam that ``dn.train.fit`` runs."""
    x, y = data
    fns = {}
    for name, (_, build) in {**models, REFERENCE: task.models()[REFERENCE]}.items():
        model = build().double()
        opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True)  # fit's Adam (train above)

        def once(model=model, opt=opt):
            opt.zero_grad(set_to_none=True)
            training_loss(model, x, y).backward()
            opt.step()

        fns[name] = once
    stats = interleaved_times(fns, repeats)
    return {name: s["cpu_min"] for name, s in stats.items()}


def selected(task: Task, group: str | None) -> dict:
    """The task's models, or those of one parameter class (``--group``)."""
    return {name: m for name, m in task.models().items() if group is None or m[0] == group}


def run_task(task: Task, args, seed: int, out) -> dict:
    """Both modes (equal iterations, then the reference's median CPU seconds) over the seeds, or with
    ``--budget`` the equal-CPU mode alone at that many CPU seconds; the table."""
    caps = (200, 2, 5) if args.quick else (math.inf,) * 3
    iterations, seeds, repeats = (min(v, c) for v, c in zip((args.iterations, args.seeds, args.repeats), caps))
    data, test, truth = task.data(task)
    models, modes = selected(task, args.group), ("budget",) if args.budget else ("iterations", "budget")
    rows, states = {name: {mode: [] for mode in modes} for name in models}, {}
    budget_seconds = [args.budget] if args.budget else []
    for mode in modes:
        budget = None if mode == "iterations" else statistics.median(budget_seconds)
        for s in range(seed, seed + seeds):
            for name, (_, build) in models.items():
                torch.manual_seed(s)
                model = build().double()
                done, seconds = train(model, data, iterations, budget)
                if mode == "iterations" and name == REFERENCE:
                    budget_seconds.append(seconds)
                metrics = evaluate(model, test, truth, task.system.hamiltonian)
                if s == seed and mode == modes[0]:
                    states[name] = metrics["_states"]
                rows[name][mode].append({**{k: v for k, v in metrics.items() if k != "_states"},
                                         "iterations": done, "train_cpu_seconds": seconds})
                print(f"{task.name} {mode:>10} seed {s} {name:<24} it {done:>6} mse {metrics['test_mse']:.3g} "
                      f"rollout {metrics['rollout_1000']:.3g} energy {metrics['energy_error']:.3g}", flush=True)
    table = summarise(task, models, rows, per_iteration_seconds(task, models, data, repeats))
    print_table(task.name, table, iterations, statistics.median(budget_seconds))
    figure(states, truth, task.system.hamiltonian, out / f"sympnets_{task.name}{'_quick' if args.quick else ''}.png")
    return {"iterations": iterations, "seeds": list(range(seed, seed + seeds)), "dt": task.dt,
            "train_pairs": data[0].shape[0], "test_pairs": test[0].shape[0],
            "budget_cpu_seconds": statistics.median(budget_seconds), "models": table, "per_seed": rows}


def run_benchmark(args, seed, out) -> dict:
    deviation = check_reimplementation()
    print(f"paper G-SympNet vs strupnet's G layers, same weights: max difference {deviation:.2e}")
    names = list(TASKS) if args.task == "both" else [args.task]
    return {"config": RUNNER.settings(args), "reimplementation_deviation": deviation,
            "tasks": {name: run_task(TASKS[name], args, seed, out) for name in names}, "machine": machine()}


KEYS = ("test_mse", "rollout_100", "rollout_1000", "energy_error", "energy_growth", "symplecticity_defect")


def summarise(task: Task, models: dict, rows: dict, timing: dict) -> dict:
    out = {}
    for name, (group, build) in models.items():
        entry = {"group": group, "params": sum(p.numel() for p in build().parameters()),
                 "cpu_seconds_per_iteration": timing[name], "ratio_vs_reference": timing[name] / timing[REFERENCE]}
        for mode, runs in rows[name].items():
            entry[mode] = {k: {"median": statistics.median(r[k] for r in runs), "worst": max(r[k] for r in runs)}
                           for k in (*KEYS, "iterations")}
        out[name] = entry
    return out


def print_table(task: str, table: dict, iterations: int, budget: float) -> None:
    for mode, what in (("iterations", f"{iterations} iterations each"), ("budget", f"{budget:.1f} CPU s each")):
        if not all(mode in e for e in table.values()):
            continue
        print(f"\n{task}, {what}: median / worst over seeds")
        print(f"{'model':<24}{'params':>7}{'test MSE':>22}{'rollout 100':>20}{'rollout 1000':>20}{'energy':>20}"
              f"{'defect':>10}{'ms/it':>8}{'x G':>6}")
        for name, e in table.items():
            m = e[mode]
            cells = "".join(f"{m[k]['median']:>10.2e} /{m[k]['worst']:>9.2e}" for k in
                            ("test_mse", "rollout_100", "rollout_1000", "energy_error"))
            print(f"{name:<24}{e['params']:>7}{cells}{m['symplecticity_defect']['worst']:>10.1e}"
                  f"{1e3 * e['cpu_seconds_per_iteration']:>8.3f}{e['ratio_vs_reference']:>6.2f}")


def figure(states: dict, truth: torch.Tensor, energy, path) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    steps = torch.arange(1, truth.shape[0])
    colours = plt.get_cmap("tab20").colors
    for k, (name, x) in enumerate(states.items()):
        style = {"lw": 1, "color": colours[k % len(colours)], "ls": "-" if name.startswith("dynnets") else "--"}
        a.semilogy(steps, (x - truth).norm(dim=1)[1:].clamp_min(1e-16), label=name, **style)
        b.semilogy(steps, (energy(x) - energy(truth[:1])).abs()[1:].clamp_min(1e-16), **style)
    a.set(xlabel="step", ylabel="||x_k - x(t_k)||", title="rollout error (seed 0)")
    b.set(xlabel="step", ylabel="|H(x_k) - H(x_0)|", title="energy error")
    a.legend(fontsize=6)
    save_figure(fig, path)
    plt.close(fig)


RUNNER = Runner("sympnets", __doc__, kind="benchmark", dtypes=("float64",), devices=("cpu",), threads=1)
RUNNER.parser.add_argument("--task", choices=("pendulum", "double", "both"), default="both")
RUNNER.parser.add_argument("--iterations", type=int, default=50_000)
RUNNER.parser.add_argument("--seeds", type=int, default=5)
RUNNER.parser.add_argument("--repeats", type=int, default=200)
RUNNER.parser.add_argument("--budget", type=float, default=None,
                           help="equal CPU seconds per model, equal-CPU mode only (default: the reference's "
                                "seconds for --iterations, after the equal-iterations mode)")
RUNNER.parser.add_argument("--group", default=None, help="only the models of this parameter class (e.g. 384)")


def validate(args) -> None:
    for name in ("iterations", "seeds", "repeats"):
        check_int(f"--{name}", getattr(args, name), minimum=1)
    if args.budget is not None:
        positive_real("--budget", args.budget)
    for name in TASKS if args.task == "both" else [args.task]:
        groups = {g for g, _ in TASKS[name].models().values()}
        if args.group is not None and args.group not in groups:
            raise ConfigError(f"--group {args.group!r}: the {name} task's parameter classes are {sorted(groups)}")


def main(argv=None) -> dict:
    return RUNNER.main(run_benchmark, argv, validate=validate)


if __name__ == "__main__":
    run_cli(main)
