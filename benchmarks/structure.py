"""Cost of structure: one step of each structured family against a Dense Euler step of the same width.

Time of forward + backward (loss = mean square of the output), float32, batch 1024, state dimension 32,
hidden width 128; each family with the method that gives its guarantee (Euler for mass and gradient
fields: the same arithmetic pattern as the ResNet step; Hamiltonian fields with both symplectic methods:
Symplectic Euler evaluates each half of the field once per step, Stormer-Verlet three times in all). The
full-rank mass and sphere fields output n(n-1)/2 matrix entries, so at equal width they carry about dim/4
times the parameters; their low-rank variants (``rank=k``, k in {1, 2, 4, 8}: S(x) = U V^T - V U^T, the
Cayley step by Woodbury with a 2k x 2k solve, at k = 1 in closed form) carry as many as a Dense field of the same width. A second
ratio compares each family with a Dense step of the same parameter count. Weight-tied rows time a 10-step
``Flow.repeat`` against 10 Dense Euler steps (Stormer-Verlet shares one field evaluation between
consecutive steps there). Candidates are timed round-robin in one process (ABBA order); ratios of minima,
wall clock and process CPU time (the CPU ratio is the steadier one on a shared machine). Goal: every
family, in its default or a low-rank variant with k <= 8, at most 2x the Dense step.

With ``--compile`` every single step is also timed compiled by ``torch.compile(fullgraph=True)`` (inductor),
against the compiled Dense step: the structured steps are many small operations, which compilation fuses.

    python -m benchmarks.structure [--repeats N] [--dim D] [--width W] [--batch B] [--threads T] [--compile]
"""

from __future__ import annotations

import torch

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli
from dynnets.checks import check_int
from dynnets.errors import ConfigError

from ._common import interleaved_times, machine

F, M = dn.fields, dn.methods
BASE = "Dense / Euler (baseline)"
TIED = 10
RANKS = (1, 2, 4, 8)


def candidates(dim: int, width: int) -> dict:
    """name -> (module, weight-tied steps per call). Families whose state is (q, v) or (q, p) use dim/2
    per half."""
    half = dim // 2
    steps = {
        BASE: dn.Step(F.Dense(dim, width), M.Euler(), 0.1),
        "MassPreserving / Euler": dn.Step(F.MassPreserving(dim, width), M.Euler(), 0.1),
        **{f"MassPreserving(rank={k}) / Euler": dn.Step(F.MassPreserving(dim, width, rank=k), M.Euler(), 0.1)
           for k in RANKS},
        "VolumePreserving / SymplecticEuler": dn.Step(F.VolumePreserving(half, width), M.SymplecticEuler(), 0.1),
        "Hamiltonian / SymplecticEuler": dn.Step(F.Hamiltonian(half, width), M.SymplecticEuler(), 0.1),
        "Hamiltonian / StormerVerlet": dn.Step(F.Hamiltonian(half, width), M.StormerVerlet(), 0.1),
        "SpherePreserving / Cayley": dn.Step(F.SpherePreserving(dim, width), M.Cayley(), 0.1),
        **{f"SpherePreserving(rank={k}) / Cayley": dn.Step(F.SpherePreserving(dim, width, rank=k), M.Cayley(), 0.1)
           for k in RANKS},
        "Gradient / Euler": dn.Step(F.Gradient(dim, width), M.Euler(), 0.1),
    }
    out = {name: (step, 1) for name, step in steps.items()}
    for name in (BASE, "Hamiltonian / StormerVerlet", "VolumePreserving / SymplecticEuler"):
        out[f"{name}, {TIED} weight-tied"] = (dn.Flow.repeat(steps[name], TIED), TIED)
    return out


def _matched_dense(module, dim: int, steps: int):
    """A Dense Euler step (or weight-tied flow) with as many parameters as ``module``: width = params / (2 dim
    + 1), separating the cost of a family's size from the cost of its structure."""
    params = sum(p.numel() for p in module.parameters())
    step = dn.Step(F.Dense(dim, max(1, round((params - dim) / (2 * dim + 1)))), M.Euler(), 0.1)
    return step if steps == 1 else dn.Flow.repeat(step, steps)


RUNNER = Runner("structure", __doc__, kind="benchmark", dtypes=("float32",), default_dtype="float32",
                 devices=("cpu",), threads=1)
RUNNER.parser.add_argument("--repeats", type=int, default=30)
RUNNER.parser.add_argument("--dim", type=int, default=32)
RUNNER.parser.add_argument("--width", type=int, default=128)
RUNNER.parser.add_argument("--batch", type=int, default=1024)
RUNNER.parser.add_argument("--compile", action="store_true",
                           help="also time every single step compiled by torch.compile(fullgraph=True) (inductor; "
                                "about 20 s of compilation per family on 2 cores)")


def validate(args) -> None:
    for name in ("repeats", "dim", "width", "batch"):
        check_int(f"--{name}", getattr(args, name), minimum=1)
    if args.dim % 2 or args.width % (2 * max(RANKS)):
        raise ConfigError(f"--dim must be even (partitioned states) and --width a multiple of {2 * max(RANKS)} "
                          f"(the rank-{max(RANKS)} variants split it into {2 * max(RANKS)} groups), got "
                          f"--dim {args.dim} --width {args.width}")


def main(argv=None) -> dict:
    return RUNNER.main(run_benchmark, argv, validate=validate)


def _timed(module, x):
    def once():
        module.zero_grad(set_to_none=True)
        module(x).square().mean().backward()

    return once


def _compiled(module, x):
    """``module`` compiled with inductor, whole-graph, and its compilation done (two warm-up calls)."""
    compiled = torch.compile(module, fullgraph=True)

    def once():
        module.zero_grad(set_to_none=True)
        compiled(x).square().mean().backward()

    once()
    once()
    return once


def run_benchmark(args, seed, out) -> dict:
    batch = 128 if args.quick else args.batch
    x = torch.randn(batch, args.dim)
    cands = candidates(args.dim, args.width)
    fns = {name: _timed(module, x) for name, (module, _) in cands.items()}
    fns.update({f"matched:{name}": _timed(_matched_dense(module, args.dim, steps), x)
                for name, (module, steps) in cands.items()})
    if args.compile:
        # each compiled step is another module through the same Step.forward, i.e. one more compilation of
        # that code object: beyond dynamo's default limit (8), a hard failure under fullgraph=True
        with torch._dynamo.config.patch(recompile_limit=len(cands)):
            fns.update({f"compiled:{name}": _compiled(module, x) for name, (module, steps) in cands.items()
                        if steps == 1})
    stats = interleaved_times(fns, repeats=3 if args.quick else args.repeats)
    rows = [_row(name, module, steps, stats) for name, (module, steps) in cands.items()]
    print(f"{'family / method':<46}{'params':>8}{'ms':>8}{'vs Dense':>10}{'(cpu)':>7}{'same params':>13}"
          f"{'compiled (cpu)':>16}")
    for row in rows:
        compiled = row.get("compiled_ratio_vs_dense_cpu")
        print(f"{row['family']:<46}{row['params']:>8}{1e3 * row['seconds']:>8.3f}{row['ratio_vs_dense']:>10.2f}"
              f"{row['ratio_vs_dense_cpu']:>7.2f}{row['ratio_vs_dense_same_params']:>13.2f}"
              f"{'' if compiled is None else f'{compiled:.2f}':>16}")
    worst = max(rows, key=lambda r: r["ratio_vs_dense_cpu"])
    print(f"worst: {worst['family']} at {worst['ratio_vs_dense_cpu']:.2f}x CPU time (goal <= 2x)")
    return {"config": RUNNER.settings(args), "batch": batch, "rows": rows, "goal_max_ratio": 2.0,
            "machine": machine()}


def _row(name: str, module, steps: int, stats: dict) -> dict:
    """One family's figures: minima (wall, CPU) and their ratios to the Dense step of the same width (the
    10-step Dense flow for weight-tied rows), to the Dense step of the same parameter count, and, when
    compiled, of the compiled step to the compiled Dense step."""
    base = BASE if steps == 1 else f"{BASE}, {TIED} weight-tied"
    row = {"family": name, "weight_tied_steps": steps, "params": sum(p.numel() for p in module.parameters()),
           "seconds": stats[name]["min"], "median_seconds": stats[name]["median"],
           "cpu_seconds": stats[name]["cpu_min"],
           "ratio_vs_dense": stats[name]["min"] / stats[base]["min"],
           "ratio_vs_dense_cpu": stats[name]["cpu_min"] / stats[base]["cpu_min"],
           "ratio_vs_dense_median": stats[name]["median"] / stats[base]["median"],
           "ratio_vs_dense_same_params": stats[name]["min"] / stats[f"matched:{name}"]["min"],
           "ratio_vs_dense_same_params_cpu": stats[name]["cpu_min"] / stats[f"matched:{name}"]["cpu_min"]}
    if f"compiled:{name}" in stats:
        row["compiled_cpu_seconds"] = stats[f"compiled:{name}"]["cpu_min"]
        row["compiled_ratio_vs_dense_cpu"] = stats[f"compiled:{name}"]["cpu_min"] / stats[f"compiled:{BASE}"]["cpu_min"]
    return row


if __name__ == "__main__":
    run_cli(main)
