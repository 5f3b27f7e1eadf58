"""Overhead of dynnets' abstractions: a Flow of 16 Euler Dense steps against a hand-written module
doing the same arithmetic (x <- x + h B tanh(A x + b)), forward + backward, float32, batch 1024,
dim = width = 128. Goal: ratio <= 1.05. Also against torchdiffeq's fixed-grid Euler (odeint,
method="euler", step_size=h) on the same piecewise-constant-in-time field (layer k on [k h, (k+1) h)),
when torchdiffeq is installed (the `bench` extra).

Second table: the cost per training step of ``dynnets.train.fit`` against a plain Adam loop (zero_grad,
forward, loss, backward, step) on the same model and data, float64, batch 40 (the 40 pendulum pairs of
issue 29: H = p^2/2 - cos q, one orbit from (1, 0), h = 0.1), for a 4-step Stormer-Verlet Flow of
Hamiltonian(1, 16) and a 2-16-16-2 tanh MLP, one torch thread: whole calls of ``--fit-steps`` steps with a
fresh optimizer (fit's set-up included; their minimum), and every step timed on its own (its 10% quantile:
on a shared machine the steps another job delays are in the tail, not in the quantile). Goal (issue 29
item 4): fit <= 1.1x the plain loop.

    python -m benchmarks.overhead [--repeats N] [--fit-steps N] [--fit-repeats N] [--fit-only]
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F
from torch import nn

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli

from ._common import interleaved_times, machine

DEPTH, DIM, WIDTH, BATCH, H = 16, 128, 128, 1024, 0.1


class HandWritten(nn.Module):
    """The same network written directly in PyTorch, sharing the Flow's parameter tensors."""

    def __init__(self, flow: dn.Flow):
        super().__init__()
        self.A = nn.ParameterList([s.field.A for s in flow.steps])
        self.b = nn.ParameterList([s.field.b for s in flow.steps])
        self.B = nn.ParameterList([s.field.B for s in flow.steps])

    def forward(self, x):
        for A, b, B in zip(self.A, self.b, self.B, strict=True):
            x = x + H * F.linear(torch.tanh(F.linear(x, A, b)), B)
        return x


class TorchdiffeqEuler(nn.Module):
    """The same network as an ODE solved by torchdiffeq's fixed-grid Euler: F(t, x) = F_k(x),
    k = round(t / h). The grid t_k = k h makes torchdiffeq take exactly one Euler step per layer."""

    def __init__(self, flow: dn.Flow):
        super().__init__()
        from torchdiffeq import odeint

        self.odeint = odeint
        self.fields = nn.ModuleList([s.field for s in flow.steps])
        self.t = torch.tensor([0.0, DEPTH * H])

    def vector_field(self, t, x):
        k = min(int(round(float(t) / H)), DEPTH - 1)
        return self.fields[k](x)

    def forward(self, x):
        return self.odeint(self.vector_field, x, self.t, method="euler", options={"step_size": H})[-1]


RUNNER = Runner("overhead", __doc__, kind="benchmark", dtypes=("float32",), default_dtype="float32",
                 devices=("cpu",), threads=os.cpu_count() or 1)
RUNNER.parser.add_argument("--repeats", type=int, default=60)
RUNNER.parser.add_argument("--fit-steps", type=int, default=100)
RUNNER.parser.add_argument("--fit-repeats", type=int, default=60)
RUNNER.parser.add_argument("--fit-only", action="store_true", help="only the fit vs plain Adam loop table")
FIT_BATCH, FIT_DT, FIT_GOAL = 40, 0.1, 1.1


def pendulum_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """The issue-29 training set: 41 states of one orbit from (1, 0), h = 0.1 (RK4, 10 substeps each)."""
    reference = dn.Flow.repeat(dn.Step(dn.systems.Pendulum().double(), dn.methods.RK4(), FIT_DT / 10), 10)
    states = [torch.tensor([[1.0, 0.0]], dtype=torch.float64)]
    with torch.no_grad():
        for _ in range(FIT_BATCH):
            states.append(reference(states[-1]))
    orbit = torch.cat(states)
    return orbit[:-1], orbit[1:]


def fit_models() -> dict:
    torch.manual_seed(0)
    sv = dn.Flow([dn.Step(dn.fields.Hamiltonian(1, 16), dn.methods.StormerVerlet(), FIT_DT / 4) for _ in range(4)])
    mlp = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))
    return {"Stormer-Verlet flow": sv.double(), "MLP": mlp.double()}


def _quantile(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))]


def fit_overhead(steps: int, repeats: int) -> dict:
    """Seconds per training step of fit and of a plain Adam loop, in one process: (a) whole calls of ``steps``
    steps (fit's set-up included), interleaved, their minimum; (b) every step timed on its own (a time stamp
    as the loss is evaluated, the same in both), alternating runs, the 10% quantile and median of the step
    times: a loaded machine delays some steps, not the quantile."""
    from dynnets.train import fit

    x, y = pendulum_pairs()

    def loss_fn(model, batch, stamps=None):
        if stamps is not None:
            stamps.append(time.perf_counter())
        inputs, targets = batch
        return (model(inputs) - targets).square().mean()

    def plain(model, stamps=None):
        def once():
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # fit's Adam: what fit adds is measured
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss_fn(model, (x, y), stamps).backward()
                opt.step()
        return once

    def with_fit(model, stamps=None):
        loss = loss_fn if stamps is None else (lambda m, b: loss_fn(m, b, stamps))
        return lambda: fit(model, loss, [(x, y)], steps=steps, lr=1e-3, progress=False)

    out, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # batch 40 of a tiny model: a second intra-op thread only adds contention
    try:
        for name, model in fit_models().items():
            stats = interleaved_times({"plain": plain(model), "fit": with_fit(model)}, repeats=repeats, warmup=1)
            r = {k: {m: v / steps for m, v in s.items()} for k, s in stats.items()}
            r["ratio"] = stats["fit"]["min"] / stats["plain"]["min"]
            r["ratio_cpu"] = stats["fit"]["cpu_min"] / stats["plain"]["cpu_min"]
            per_step = {"plain": [], "fit": []}
            for _ in range(repeats):
                for kind, make in (("plain", plain), ("fit", with_fit)):
                    stamps = []
                    make(model, stamps)()
                    per_step[kind] += [b - a for a, b in zip(stamps, stamps[1:])]
            for q, label in ((0.1, "p10"), (0.5, "median")):
                r[f"step_{label}"] = {k: _quantile(v, q) for k, v in per_step.items()}
                r[f"ratio_step_{label}"] = r[f"step_{label}"]["fit"] / r[f"step_{label}"]["plain"]
            out[name] = r
    finally:
        torch.set_num_threads(threads)
    return out


def main(argv=None) -> dict:
    return RUNNER.main(run_benchmark, argv)


def run_benchmark(args, seed, out) -> dict:
    result = {"machine": machine()} if args.fit_only else flow_overhead(args.repeats)
    steps = args.fit_steps
    result["fit"] = {"config": {"batch": FIT_BATCH, "steps_per_call": steps, "dtype": "float64", "lr": 1e-3,
                                "torch_threads": 1},
                     "goal_ratio": FIT_GOAL, "models": fit_overhead(steps, args.fit_repeats)}
    print(f"\n{'fit vs plain Adam loop':<22}{'calls: plain':>13}{'fit (us/step)':>15}{'ratio':>7}{'cpu':>7}"
          f"{'steps p10: plain':>18}{'fit':>8}{'ratio':>7}{'median ratio':>14}")
    for name, r in result["fit"]["models"].items():
        p10 = r["step_p10"]
        print(f"{name:<22}{1e6 * r['plain']['min']:>13.1f}{1e6 * r['fit']['min']:>15.1f}{r['ratio']:>7.3f}"
              f"{r['ratio_cpu']:>7.3f}{1e6 * p10['plain']:>18.1f}{1e6 * p10['fit']:>8.1f}{r['ratio_step_p10']:>7.3f}"
              f"{r['ratio_step_median']:>14.3f}")
    print(f"goal: fit <= {FIT_GOAL}x the plain loop")
    return result


def flow_overhead(repeats: int) -> dict:
    """The first table: a Flow of Euler Dense steps against the hand-written module (and torchdiffeq)."""
    flow = dn.Flow([dn.Step(dn.fields.Dense(DIM, WIDTH), dn.methods.Euler(), H) for _ in range(DEPTH)])
    hand = HandWritten(flow)
    x = torch.randn(BATCH, DIM)
    assert torch.equal(flow(x), hand(x)), "the two networks must compute the same numbers"

    def run(model):
        def once():
            model.zero_grad(set_to_none=True)
            model(x).square().mean().backward()

        return once

    candidates = {"dynnets": run(flow), "handwritten": run(hand)}
    try:
        tdq = TorchdiffeqEuler(flow)
    except ImportError:
        tdq = None
        print("torchdiffeq not installed (pip install -e '.[bench]'): skipping that comparison")
    else:
        assert torch.allclose(tdq(x), flow(x), atol=1e-5), "torchdiffeq must compute the same map"
        candidates["torchdiffeq"] = run(tdq)
    stats = interleaved_times(candidates, repeats=repeats)
    t = {name: v["min"] for name, v in stats.items()}
    result = {
        "config": {"depth": DEPTH, "dim": DIM, "width": WIDTH, "batch": BATCH, "dtype": "float32"},
        "timing": "min over interleaved rounds (ABBA order); medians in 'median_seconds'",
        "median_seconds": {name: v["median"] for name, v in stats.items()},
        "seconds_dynnets": t["dynnets"],
        "seconds_handwritten": t["handwritten"],
        "ratio_vs_handwritten": t["dynnets"] / t["handwritten"],
        "goal_ratio_vs_handwritten": 1.05,
        "seconds_torchdiffeq": t.get("torchdiffeq"),
        "ratio_vs_torchdiffeq": t["dynnets"] / t["torchdiffeq"] if "torchdiffeq" in t else None,
        "machine": machine(),
    }
    print(f"{'model':<14}{'fwd+bwd (ms)':>14}")
    print(f"{'dynnets Flow':<14}{1e3 * t['dynnets']:>14.3f}")
    print(f"{'hand-written':<14}{1e3 * t['handwritten']:>14.3f}")
    if "torchdiffeq" in t:
        print(f"{'torchdiffeq':<14}{1e3 * t['torchdiffeq']:>14.3f}")
    print(f"ratio dynnets / hand-written = {result['ratio_vs_handwritten']:.3f} (goal <= 1.05)")
    if result["ratio_vs_torchdiffeq"] is not None:
        print(f"ratio dynnets / torchdiffeq  = {result['ratio_vs_torchdiffeq']:.3f}")
    return result


if __name__ == "__main__":
    run_cli(main)
