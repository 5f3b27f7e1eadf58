"""Cost of structure: one step of each structured family against a Dense Euler step of the same width.

Time of forward + backward (loss = mean square of the output), float32, batch 1024, state dimension 32,
hidden width 128; each family with the method that gives its guarantee (Euler for mass and gradient
fields: the same arithmetic pattern as the ResNet step). A second ratio compares each family with a Dense
step of the same parameter count (the mass and sphere fields output n(n-1)/2 matrix entries, so at equal
width they carry about dim/4 times the parameters). Candidates are timed round-robin in one
process (ABBA order). Goal: no family above 2x the Dense step.

    python -m benchmarks.structure [--repeats N] [--dim D] [--width W] [--batch B] [--threads T]
"""

from __future__ import annotations

import os

import torch

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli

from ._common import interleaved_times, machine

F, M = dn.fields, dn.methods


def candidates(dim: int, width: int, batch: int) -> dict:
    """name -> (step, input). Families whose state is (q, v) or (q, p) use dim/2 per half."""
    x = torch.randn(batch, dim)
    half = dim // 2
    steps = {
        "Dense / Euler (baseline)": dn.Step(F.Dense(dim, width), M.Euler(), 0.1),
        "MassPreserving / Euler": dn.Step(F.MassPreserving(dim, width), M.Euler(), 0.1),
        "VolumePreserving / SymplecticEuler": dn.Step(F.VolumePreserving(half, width), M.SymplecticEuler(), 0.1),
        "Hamiltonian / StormerVerlet": dn.Step(F.Hamiltonian(half, width), M.StormerVerlet(), 0.1),
        "SpherePreserving / Cayley": dn.Step(F.SpherePreserving(dim, width), M.Cayley(), 0.1),
        "Gradient / Euler": dn.Step(F.Gradient(dim, width), M.Euler(), 0.1),
    }
    return {name: (step, x) for name, step in steps.items()}


RUNNER = Runner("structure", __doc__, kind="benchmark", dtypes=("float32",), default_dtype="float32",
                 devices=("cpu",), threads=os.cpu_count() or 1)
RUNNER.parser.add_argument("--repeats", type=int, default=30)
RUNNER.parser.add_argument("--dim", type=int, default=32)
RUNNER.parser.add_argument("--width", type=int, default=128)
RUNNER.parser.add_argument("--batch", type=int, default=1024)


def main(argv=None) -> dict:
    return RUNNER.main(run_benchmark, argv)


def run_benchmark(args, seed, out) -> dict:
    cands = candidates(args.dim, args.width, args.batch)

    def run(step, x):
        def once():
            step.zero_grad(set_to_none=True)
            step(x).square().mean().backward()

        return once

    # a Dense step with as many parameters as each family (width = params / (2 dim + 1)) separates the
    # cost of the family's size from the cost of its structure
    matched = {}
    for name, (step, x) in cands.items():
        params = sum(p.numel() for p in step.parameters())
        width = max(1, round((params - args.dim) / (2 * args.dim + 1)))
        matched[name] = (dn.Step(F.Dense(args.dim, width), M.Euler(), 0.1), x)
    fns = {name: run(*c) for name, c in cands.items()}
    fns.update({f"matched:{name}": run(*c) for name, c in matched.items()})
    stats = interleaved_times(fns, repeats=args.repeats)
    times = {name: v["min"] for name, v in stats.items()}
    base = times["Dense / Euler (baseline)"]
    rows = []
    print(f"{'family / method':<38}{'params':>9}{'fwd+bwd (ms)':>14}{'vs Dense':>10}{'vs Dense, same params':>23}")
    for name, (step, _) in cands.items():
        params = sum(p.numel() for p in step.parameters())
        ratio = times[name] / base
        ratio_matched = times[name] / times[f"matched:{name}"]
        rows.append({"family": name, "params": params, "seconds": times[name],
                     "median_seconds": stats[name]["median"], "ratio_vs_dense": ratio,
                     "ratio_vs_dense_same_params": ratio_matched})
        print(f"{name:<38}{params:>9}{1e3 * times[name]:>14.3f}{ratio:>10.2f}{ratio_matched:>23.2f}")
    worst = max(rows, key=lambda r: r["ratio_vs_dense"])
    print(f"worst: {worst['family']} at {worst['ratio_vs_dense']:.2f}x (goal <= 2x)")
    return {"config": RUNNER.settings(args), "rows": rows, "goal_max_ratio": 2.0, "machine": machine()}


if __name__ == "__main__":
    run_cli(main)
