"""What energy does a trained Störmer–Verlet step represent? (issue 29 item 6)

One step of `Hamiltonian(1, width)` with Störmer–Verlet and a large h is trained on the pendulum's exact
time-h maps (H = p^2/2 - cos q, random states in [-1.5, 1.5]^2, reference GaussLegendre(3) with 40 substeps,
float64, Adam). The learned H_theta is then compared with the true H, and so is the step's modified
Hamiltonian H~_theta = H_theta + h^2 (...) (`StormerVerlet.modified_hamiltonian`): the network's step is the
exact flow of H~_theta to O(h^5), so H~_theta, not H_theta, should be the true energy (up to a constant).
Error: the standard deviation of (E - H) - mean(E - H) over held-out states, divided by that of H.

    python -m benchmarks.modified_hamiltonian [--seeds 5] [--steps 1500] [--h 0.4]
"""

from __future__ import annotations

import statistics

import torch

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli
from dynnets.checks import check_int
from dynnets.errors import ConfigError

from ._common import machine


def pendulum_energy(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x[:, 1] ** 2 - torch.cos(x[:, 0])


def _pendulum(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[:, 1], -torch.sin(x[:, 0])], dim=-1)


def states(n: int, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.5) * 3.0


def energy_error(energy: torch.Tensor, truth: torch.Tensor) -> float:
    """std of the difference about its mean (energies are defined up to a constant), relative to std(H)."""
    d = energy - truth
    return float((d - d.mean()).std() / truth.std())


def one_seed(seed: int, h: float, steps: int, width: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    exact = dn.Flow.repeat(dn.Step(dn.fields.FunctionField(_pendulum, 2), dn.methods.GaussLegendre(3), h / 40), 40)
    x, test = states(256, gen), states(512, gen)
    with torch.no_grad():
        y = exact(x)
    field = dn.fields.Hamiltonian(1, width).double()
    step = dn.Step(field, dn.methods.StormerVerlet(), h)
    result = dn.train.fit(step, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), [(x, y)], steps=steps, lr=3e-3,
                          progress=False)
    with torch.no_grad():
        truth = pendulum_energy(test)
        learned = energy_error(field.hamiltonian(test), truth)
        modified = energy_error(dn.methods.StormerVerlet().modified_hamiltonian(field, test, h), truth)
    return {"seed": seed, "train_loss": result.final_loss, "learned_H": learned, "modified_H": modified}


def run_benchmark(args, seed, out) -> dict:
    steps, seeds = (100, 2) if args.quick else (args.steps, args.seeds)
    rows = []
    for s in range(seed, seed + seeds):
        rows.append(one_seed(s, args.h, steps, args.width))
        r = rows[-1]
        print(f"seed {s}: loss {r['train_loss']:.2e}  |H_theta - H| {r['learned_H']:.3e}  "
              f"|H~_theta - H| {r['modified_H']:.3e}", flush=True)
    summary = {k: {"median": statistics.median(r[k] for r in rows), "worst": max(r[k] for r in rows)}
               for k in ("train_loss", "learned_H", "modified_H")}
    summary["ratio_learned_over_modified"] = {
        "median": statistics.median(r["learned_H"] / r["modified_H"] for r in rows),
        "worst": min(r["learned_H"] / r["modified_H"] for r in rows)}
    print("median / worst:", {k: (f"{v['median']:.3g}", f"{v['worst']:.3g}") for k, v in summary.items()})
    return {"config": RUNNER.settings(args), "steps": steps, "per_seed": rows, "summary": summary,
            "machine": machine()}


RUNNER = Runner("modified_hamiltonian", __doc__, kind="benchmark", dtypes=("float64",), devices=("cpu",), threads=1)
RUNNER.parser.add_argument("--seeds", type=int, default=5)
RUNNER.parser.add_argument("--steps", type=int, default=1500)
RUNNER.parser.add_argument("--width", type=int, default=16)
RUNNER.parser.add_argument("--h", type=float, default=0.4)


def validate(args) -> None:
    for name in ("seeds", "steps", "width"):
        check_int(f"--{name}", getattr(args, name), minimum=1)
    if not 0.0 < args.h <= 1.0:
        raise ConfigError(f"--h must lie in (0, 1], got {args.h}")


def main(argv=None) -> dict:
    return RUNNER.main(run_benchmark, argv, validate=validate)


if __name__ == "__main__":
    run_cli(main)
