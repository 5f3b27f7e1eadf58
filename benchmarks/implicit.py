"""Implicit Runge-Kutta steps against torchdiffeq's implicit solvers on one general Hamiltonian field.

Field: GeneralHamiltonian(2, 16) (state (q, p) in R^4, H a joint network), parameters drawn from
N(0, 0.5^2), float64, h = 0.1. Candidates: dynnets ImplicitMidpoint and GaussLegendre(3) (Newton with the
exact Jacobian, residual at round-off or NotConvergedError) and torchdiffeq's fixed-grid
``implicit_midpoint`` and ``gl6`` (Broyden's method over the whole flattened batch, stopped when the
residual's 2-norm is below 1e-8, a warning otherwise; its defaults), each driven over the same grid.

Measured: forward time per step at several batch sizes (interleaved, forward only, no autograd); solver
iterations per step; the symplecticity defect max ||J^T Omega J - Omega||_F of the 50-step map at 8
points (ours: dn.testing, IFT derivative; torchdiffeq: autograd through its iterations, one point at a
time since its solver couples the samples of a batch); the drift of the field's own energy over
``--steps`` steps (10^4) from the same 8 points: max_k |H(x_k) - H(x_0)| and its growth (last tenth /
first tenth). Goal (issue 17): time per step within 2x of gl6 at the same batch, with a defect at least
100x smaller than gl6's.

    python -m benchmarks.implicit [--quick] [--repeats N] [--steps N] [--batches 1 8 64]
"""

from __future__ import annotations

import warnings

import torch
from tqdm import tqdm

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli
from dynnets.checks import check_int
from dynnets.errors import ConfigError

from ._common import Counted, interleaved_times, machine

H, STEPS_PER_CALL, DEFECT_STEPS, SCALE = 0.1, 20, 50, 0.5
OURS = {"dynnets ImplicitMidpoint": dn.methods.ImplicitMidpoint(), "dynnets GaussLegendre3": dn.methods.GaussLegendre(3)}
THEIRS = {"torchdiffeq implicit_midpoint": ("implicit_midpoint", 1), "torchdiffeq gl6": ("gl6", 3)}


def make_field() -> dn.fields.GeneralHamiltonian:
    torch.manual_seed(0)
    field = dn.fields.GeneralHamiltonian(2, 16).double()
    with torch.no_grad():
        for p in field.parameters():
            p.copy_(torch.randn_like(p) * SCALE)
    return field


def torchdiffeq_flow(odeint, func, method: str, steps: int):
    """x -> the torchdiffeq solution after ``steps`` steps of size H on the grid t_k = k H."""
    grid = torch.arange(steps + 1, dtype=torch.float64) * H

    def run(x):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = odeint(func, x, grid, method=method)[-1]
        run.warnings += sum("did not converge" in str(w.message) for w in caught)
        return y

    run.warnings = 0
    return run


def _bound(f, x):
    """f(x) as a function of nothing (a timing candidate)."""
    return lambda: f(x)


def _single(f):
    """f on one point: z -> f(z[None])[0]."""
    return lambda z: f(z[None])[0]


def timing(field, odeint, batches, repeats) -> list[dict]:
    rows = []
    for batch in batches:
        x = torch.randn(batch, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(batch))
        fns = {}
        for name, method in OURS.items():
            flow = dn.Flow.repeat(dn.Step(field, method, H), STEPS_PER_CALL)
            fns[name] = _bound(flow, x)
        counters = {}
        for name, (method, _) in THEIRS.items():
            counters[name] = Counted(field)
            fns[name] = _bound(torchdiffeq_flow(odeint, counters[name], method, STEPS_PER_CALL), x)
        with torch.no_grad():
            stats = interleaved_times(fns, repeats=repeats if batch <= 8 else max(3, repeats // 3), warmup=1)
            row = {"batch": batch}
            for name, method in OURS.items():
                row[name] = {"ms_per_step": 1e3 * stats[name]["min"] / STEPS_PER_CALL,
                             "median_ms_per_step": 1e3 * stats[name]["median"] / STEPS_PER_CALL,
                             "iterations_per_step": newton_iterations(field, method, x)}
            for name, (method, stages) in THEIRS.items():
                counters[name].calls = 0
                torchdiffeq_flow(odeint, counters[name], method, STEPS_PER_CALL)(x)
                calls = counters[name].calls / STEPS_PER_CALL  # f0 + s per residual (initial one included)
                row[name] = {"ms_per_step": 1e3 * stats[name]["min"] / STEPS_PER_CALL,
                             "median_ms_per_step": 1e3 * stats[name]["median"] / STEPS_PER_CALL,
                             "iterations_per_step": (calls - 1) / stages - 1}
        rows.append(row)
    return rows


def newton_iterations(field, method, x) -> float:
    """Mean Newton updates per step along STEPS_PER_CALL steps from x."""
    total = 0
    for _ in range(STEPS_PER_CALL):
        solution = method.solve(field, x, H)
        total += solution.iterations
        x = x + H * (torch.tensor(method.tableau.b, dtype=x.dtype) @ solution.stages)
    return total / STEPS_PER_CALL


def symplecticity(field, odeint, points) -> dict:
    """The defect of the DEFECT_STEPS-step map at each point (max over points)."""
    out = {}
    for name, method in OURS.items():
        out[name] = dn.testing.symplecticity_defect(dn.Flow.repeat(dn.Step(field, method, H), DEFECT_STEPS), points)
    eye, zero = torch.eye(2, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64)
    omega = torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)
    for name, (method, _) in THEIRS.items():
        run = torchdiffeq_flow(odeint, Counted(field), method, DEFECT_STEPS)
        worst = 0.0
        for x in points:
            J = torch.autograd.functional.jacobian(_single(run), x)
            worst = max(worst, float(torch.linalg.matrix_norm(J.T @ omega @ J - omega)))
        out[name] = worst
    return out


@torch.no_grad()
def energy_drift(field, odeint, points, steps: int) -> dict:
    """max_k |H(x_k) - H(x_0)| over the points, and its growth (last tenth / first tenth)."""
    maps = {name: dn.Step(field, method, H) for name, method in OURS.items()}
    maps.update({name: torchdiffeq_flow(odeint, Counted(field), method, 1) for name, (method, _) in THEIRS.items()})
    out = {}
    for name, step in maps.items():
        x, h0, errors = points, field.hamiltonian(points), []
        for _ in tqdm(range(steps), desc=f"energy/{name}", leave=False):
            x = step(x)
            errors.append(float((field.hamiltonian(x) - h0).abs().max()))
        tenth = steps // 10
        out[name] = {"max_energy_error": max(errors),
                     "growth": max(errors[-tenth:]) / max(max(errors[:tenth]), 1e-300),
                     "warnings": getattr(step, "warnings", 0)}
    return out


RUNNER = Runner("implicit", __doc__, kind="benchmark", dtypes=("float64",), default_dtype="float64")
RUNNER.parser.add_argument("--repeats", type=int, default=10)
RUNNER.parser.add_argument("--steps", type=int, default=10_000, help="rollout length of the energy measurement")
RUNNER.parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64])


def _torchdiffeq():
    """torchdiffeq's odeint, with its implicit solvers (a ConfigError naming what is missing otherwise)."""
    try:
        from torchdiffeq import odeint
        from torchdiffeq._impl.odeint import SOLVERS
    except ImportError:
        raise ConfigError("torchdiffeq is needed (pip install -e '.[bench]')") from None
    if "gl6" not in SOLVERS:
        raise ConfigError("this torchdiffeq has no implicit solvers (gl6); they are in its GitHub version after "
                          "0.2.5 (commit 657943a)")
    return odeint


def validate(args) -> None:
    for name in ("repeats", "steps"):
        check_int(f"--{name}", getattr(args, name), minimum=1)
    if any(b < 1 for b in args.batches):
        raise ConfigError(f"--batches must be positive integers, got {args.batches}")
    _torchdiffeq()


def run_benchmark(args, seed, out) -> dict:
    odeint = _torchdiffeq()
    steps, batches = (100, [1, 8]) if args.quick else (args.steps, args.batches)
    field = make_field()
    points = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    result = {
        "config": {"field": "GeneralHamiltonian(2, 16), parameters N(0, 0.5^2)", "h": H, "dtype": "float64",
                   "steps_per_timed_call": STEPS_PER_CALL, "defect_steps": DEFECT_STEPS, "energy_steps": steps,
                   "torchdiffeq": "fixed grid, defaults (Broyden, |residual|_2 < 1e-8, max_iters 100)"},
        "timing": timing(field, odeint, batches, args.repeats),
        "symplecticity_defect": symplecticity(field, odeint, points),
        "energy": energy_drift(field, odeint, points, steps),
        "machine": machine(),
    }
    report(result)
    return result


def main(argv=None) -> dict:
    return RUNNER.main(run_benchmark, argv, validate=validate)


def report(result: dict) -> None:
    names = [*OURS, *THEIRS]
    print(f"{'batch':>5} " + " ".join(f"{n.split()[-1]:>22s}" for n in names) + "   (ms per step / iterations)")
    for row in result["timing"]:
        print(f"{row['batch']:>5} " + " ".join(
            f"{row[n]['ms_per_step']:>12.3f} / {row[n]['iterations_per_step']:>6.2f}" for n in names))
        print(f"      ratio GaussLegendre3 / gl6 = {row['dynnets GaussLegendre3']['ms_per_step'] / row['torchdiffeq gl6']['ms_per_step']:.2f}")
    print(f"{'':>5} {'symplecticity defect (50 steps)':>40s} {'energy error':>14s} {'growth':>8s}")
    for n in names:
        e = result["energy"][n]
        print(f"{n:>32s} {result['symplecticity_defect'][n]:>13.3e} {e['max_energy_error']:>14.3e} {e['growth']:>8.2f}")


if __name__ == "__main__":
    run_cli(main)
