"""Backpropagation through long solves: ``dn.solve(..., memory="checkpoint")`` (the discrete adjoint of the
accepted steps, checkpointed) against torchdiffeq's ``odeint_adjoint`` (the continuous adjoint) and plain
backpropagation through ``dn.solve``.

Field: ``ForcedMLP``, F(t, x) = B tanh(A x + b + u sin(w t)), state 64, width 64, w = 10 (a time-dependent
MLP: the forcing sets the adaptive step), batch 256, float32, loss sum(sin(x(T))). Two solves of 10,000
steps (``--steps``): fixed-step RK4 with h = 0.087 over T = 870 (torchdiffeq ``rk4``, its 3/8 rule, on the
same step), and error-controlled Dormand-Prince 5(4) at rtol 1e-4, atol 1e-6 (torchdiffeq ``dopri5``, the
same tolerances; its backward solve uses them too) over the same T = 870, where ours accepts 3377 steps
(over T = 3600, 10,015 accepted steps, odeint_adjoint's backward solve failed: "underflow in dt 9.2e-14",
its float32 time t0 + dt == t0).
Measured:
  * peak RSS, each configuration in a fresh subprocess with glibc's default allocator (no ``MALLOC_*``
    variables; ``_common.peak_rss``): ``peak_rss`` the whole process (torch included) over one forward +
    backward after a warm-up, ``rss`` its growth during it. Plain backpropagation keeps every stage (10,000
    steps would need about 14 GiB fixed, 30 GiB adaptive, more than this shared machine can give): it is
    measured at ``--plain-steps`` and half that (default 1000, 500) and its peak RSS extrapolated linearly
    to the steps of the others (its growth is linear in the steps; the two points give the slope).
  * time of forward + backward, ours and ``odeint_adjoint`` round-robin in one process
    (``_common.interleaved_times``: wall-clock minimum and process CPU seconds).
  * gradient error, float64, the same kind of field (state 8, width 16, w = 3, batch 8) on t in [0, 2],
    loss sum(x(t_j) * W) over 5 times: relative error of the gradient w.r.t. x0 and every parameter at rtol
    1e-4, 1e-6, 1e-9 (atol = rtol / 1000) against plain backpropagation through DormandPrince853 with the
    fixed step 0.0025 (800 steps; checked against central finite differences of that solve along two
    random unit directions, and against backpropagation through DormandPrince853 at rtol 1e-12). Ours with steps landing on the 5 times (``dense=False``), with the dense output
    (``dense=True``, the default: the interior states, and their gradients, carry the order-4
    interpolant's error) and with ``DormandPrince5(dense_order=5)``'s order-5 dense output (the same steps,
    2 more evaluations on each step holding a time); torchdiffeq's backward integrates between the times,
    without an interpolant.
    Diagnostic rows: ours with the dense output and plain backpropagation (the same forward, so the same
    gradient when the adjoint is right), with DormandPrince853's order-7 dense output, and plain
    backpropagation through torchdiffeq's odeint (its forward's own interpolant, order 4).
Targets (issue 28): peak RSS <= 1.1x odeint_adjoint's and <= 0.05x plain backpropagation's, time <= 1.0x
odeint_adjoint's, gradient error <= odeint_adjoint's at each rtol.

    python -m benchmarks.adjoint [--quick] [--steps N] [--plain-steps N] [--repeats R]   (about 20 minutes)
"""

from __future__ import annotations

import argparse
import json
import math

import torch
import torch.nn.functional as F
from torch import nn

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli
from dynnets.base import Field
from dynnets.checks import MAX_STEPS, check_int

from ._common import Counted, child_json, interleaved_times, machine, peak_rss

DIM, WIDTH, BATCH, OMEGA = 64, 64, 256, 10.0
#: span per nominal step: RK4 steps of h = 0.087 (0.87 rad of the forcing) over T = 870 at 10,000 steps; the
#: adaptive solve over the same T accepts 3377 steps. Over T = 3600 (10,015 accepted steps) odeint_adjoint's
#: backward solve stopped with "underflow in dt 9.2e-14": its float32 clock cannot resolve steps there.
SPAN_PER_STEP, RTOL, ATOL = {"fixed": 0.087, "adaptive": 0.087}, 1e-4, 1e-6
CANDIDATES = ("dynnets checkpoint", "torchdiffeq odeint_adjoint", "dynnets plain")
ERROR_RTOLS = (1e-4, 1e-6, 1e-9)
#: the reference gradient: backpropagation through DormandPrince853 with this fixed step on [0, 2]
REFERENCE_H = 0.5 / 200


class ForcedMLP(Field):
    """F(t, x) = B tanh(A x + b + u sin(w t)): an MLP field whose hidden layer is forced in time."""

    time_dependent = True

    def __init__(self, dim: int, width: int, omega: float):
        super().__init__()
        self.dim, self.omega = dim, omega
        self.A = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
        self.b = nn.Parameter(0.1 * torch.randn(width))
        self.u = nn.Parameter(torch.randn(width))
        self.B = nn.Parameter(torch.randn(dim, width) / math.sqrt(width))

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        forcing = self.u * torch.sin(self.omega * t).reshape(-1, 1)
        return F.linear(torch.tanh(F.linear(x, self.A, self.b) + forcing), self.B)


def problem(solver: str, steps: int, batch: int, dtype=torch.float32, seed: int = 0):
    """(field, x0, span T) of the memory and time rows."""
    torch.manual_seed(seed)
    field = ForcedMLP(DIM, WIDTH, OMEGA).to(dtype)
    return field, torch.randn(batch, DIM, dtype=dtype), SPAN_PER_STEP[solver] * steps


def backward_of(candidate: str, solver: str, field, x0, span: float, steps: int):
    """() -> None: one forward + backward of loss sum(sin(x(T))) by ``candidate`` with ``solver``
    ("fixed": RK4 with h = span / steps; "adaptive": Dormand-Prince 5(4) at RTOL, ATOL)."""
    t = torch.tensor([0.0, span], dtype=torch.float64)
    if candidate.startswith("torchdiffeq"):
        from torchdiffeq import odeint_adjoint

        options = (dict(method="rk4", options=dict(step_size=span / steps)) if solver == "fixed"
                   else dict(method="dopri5", rtol=RTOL, atol=ATOL))
        params = tuple(field.parameters())
        return lambda: odeint_adjoint(Counted(field), x0, t.to(x0.dtype), adjoint_params=params,
                                      **options)[-1].sin().sum().backward()
    memory = candidate.split()[-1]
    options = dict(method=dn.methods.RK4(), h=span / steps) if solver == "fixed" else dict(rtol=RTOL, atol=ATOL)
    return lambda: dn.solve(field, x0, t, memory=memory, **options).x[-1].sin().sum().backward()


def child(candidate: str, solver: str, steps: int, batch: int) -> dict:
    """In a fresh process: peak RSS of one forward + backward after a warm-up (batch 8, 20 steps)."""
    field, x0, span = problem(solver, steps, batch)
    backward_of(candidate, solver, field, x0[:8], span * 20 / steps, 20)()
    field.zero_grad(set_to_none=False)
    return peak_rss(backward_of(candidate, solver, field, x0, span, steps))


def accepted_steps(steps: int, batch: int) -> int:
    field, x0, span = problem("adaptive", steps, batch)
    with torch.no_grad():
        return dn.solve(field, x0, [0.0, span], rtol=RTOL, atol=ATOL).accepted


def times(solver: str, steps: int, batch: int, repeats: int) -> dict:
    """Forward + backward, ours and odeint_adjoint round-robin: ``repeats`` rounds after a warm-up with fixed
    steps; one round, warm from those, with error control (odeint_adjoint takes minutes per call there, ours
    a fifth of that)."""
    field, x0, span = problem(solver, steps, batch)
    fns = {c: backward_of(c, solver, field, x0, span, steps) for c in CANDIDATES[:2]}
    return interleaved_times(fns, repeats=repeats if solver == "fixed" else 1, warmup=1 if solver == "fixed" else 0)


def gradient_errors() -> dict:
    """Relative gradient errors of ours and odeint_adjoint at ERROR_RTOLS (module docstring)."""
    from torchdiffeq import odeint, odeint_adjoint

    torch.manual_seed(1)
    field = ForcedMLP(8, 16, 3.0).double()
    x0, weights = torch.randn(8, 8, dtype=torch.float64), torch.randn(5, 8, 8, dtype=torch.float64)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
    params = tuple(field.parameters())

    def gradient(solve) -> torch.Tensor:
        x = x0.clone().requires_grad_(True)
        grads = torch.autograd.grad((solve(x) * weights).sum(), (x, *params))
        return torch.cat([g.flatten() for g in grads])

    def ours(rtol, method=None, memory="checkpoint", dense=True):
        return lambda x: dn.solve(field, x, t, method=method, rtol=rtol, atol=rtol * 1e-3, memory=memory,
                                  dense=dense).x

    def theirs(rtol, solve=odeint_adjoint, **adjoint):
        return lambda x: solve(Counted(field), x, t, rtol=rtol, atol=rtol * 1e-3, method="dopri5", **adjoint)

    def fixed(x):
        return dn.solve(field, x, t, method=dn.methods.DormandPrince853(), h=REFERENCE_H).x

    reference = gradient(fixed)
    adaptive = gradient(ours(1e-12, dn.methods.DormandPrince853(), "plain"))
    out = {"reference_vs_finite_differences": _finite_difference_check(fixed, x0, params, weights, reference),
           "reference_vs_adaptive_rtol_1e-12": float((adaptive - reference).norm() / reference.norm())}
    for rtol in ERROR_RTOLS:
        out[f"rtol {rtol:g}"] = {name: float((gradient(solve) - reference).norm() / reference.norm())
                                 for name, solve in (("dynnets checkpoint", ours(rtol, dense=False)),
                                                     ("dynnets checkpoint dense", ours(rtol)),
                                                     ("dynnets checkpoint dense order 5",
                                                      ours(rtol, dn.methods.DormandPrince5(dense_order=5))),
                                                     ("torchdiffeq odeint_adjoint", theirs(rtol, adjoint_params=params)),
                                                     ("dynnets plain dense", ours(rtol, memory="plain")),
                                                     ("dynnets checkpoint dense DOP853",
                                                      ours(rtol, dn.methods.DormandPrince853())),
                                                     ("torchdiffeq odeint backprop", theirs(rtol, odeint)))}
    return out


def _finite_difference_check(solve, x0, params, weights, reference, eps: float = 1e-4) -> float:
    """Largest relative difference of the reference gradient's directional derivatives along two random unit
    directions from central differences of the (smooth: fixed-step) reference solve, error O(eps^2)."""

    def loss(direction, scale):
        chunks = iter(direction.split([p.numel() for p in (x0, *params)]))
        with torch.no_grad():
            x = x0 + scale * next(chunks).view_as(x0)
            saved = [p.clone() for p in params]
            for p in params:
                p.add_(scale * next(chunks).view_as(p))
            value = float((solve(x) * weights).sum())
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
        return value

    worst = 0.0
    generator = torch.Generator().manual_seed(2)
    for _ in range(2):
        v = torch.randn(reference.numel(), dtype=torch.float64, generator=generator)
        v /= v.norm()
        fd = (loss(v, eps) - loss(v, -eps)) / (2 * eps)
        worst = max(worst, abs(fd - float(reference @ v)) / abs(fd))
    return worst


RUNNER = Runner("adjoint", __doc__, kind="benchmark", dtypes=("float32",), default_dtype="float32",
                 devices=("cpu",), threads=1)
RUNNER.parser.add_argument("--steps", type=int, default=None, help="steps of each solve (default 10000; "
                                                                     "--quick 500)")
RUNNER.parser.add_argument("--plain-steps", type=int, default=None,
                           help="steps of the plain-backpropagation memory rows (default --steps)")
RUNNER.parser.add_argument("--repeats", type=int, default=3,
                           help="timed rounds per candidate with fixed steps (default 3; error control: 1)")
RUNNER.parser.add_argument("--child", nargs=4, metavar=("CANDIDATE", "SOLVER", "STEPS", "BATCH"),
                           help=argparse.SUPPRESS)


def validate(args) -> None:
    for name in ("steps", "plain_steps"):
        if getattr(args, name) is not None:
            check_int(f"--{name.replace('_', '-')}", getattr(args, name), minimum=20, maximum=MAX_STEPS)
    check_int("--repeats", args.repeats, minimum=1, maximum=100)


def main(argv=None) -> dict:
    args = RUNNER.parse(argv)
    if args.child:  # a measuring subprocess: one JSON line on stdout, no result file
        torch.set_num_threads(args.threads)
        candidate, solver, steps, batch = args.child
        print(json.dumps(child(candidate.replace("_", " "), solver, int(steps), int(batch))))
        return {}
    return RUNNER.main(run_benchmark, argv, validate=validate)


def run_benchmark(args, seed, out) -> dict:
    steps = args.steps or (500 if args.quick else 10_000)
    plain_steps = args.plain_steps or (200 if args.quick else 1000)
    batch = 32 if args.quick else BATCH
    memory = {f"{solver}/{candidate}/{n}": _child(candidate, solver, n, batch, args.threads)
              for solver in ("fixed", "adaptive") for candidate in CANDIDATES
              for n in ((plain_steps // 2, plain_steps) if candidate == "dynnets plain" else (steps,))}
    seconds = {solver: times(solver, steps, batch, args.repeats) for solver in ("fixed", "adaptive")}
    result = {
        "config": {"field": f"ForcedMLP({DIM}, {WIDTH}, omega={OMEGA})", "batch": batch, "dtype": "float32",
                   "steps": steps, "plain_steps": [plain_steps // 2, plain_steps],
                   "span": {k: v * steps for k, v in SPAN_PER_STEP.items()},
                   "fixed": "RK4, h = span / steps", "adaptive": f"DormandPrince5 / dopri5, rtol {RTOL:g}, atol {ATOL:g}",
                   "accepted_steps": {n: accepted_steps(n, batch) for n in (plain_steps // 2, plain_steps, steps)},
                   "torch_threads": args.threads, "allocator": "glibc defaults (no MALLOC_* settings)",
                   "quick": args.quick},
        "memory_bytes": memory, "times_s": seconds, "gradient_errors": gradient_errors(), "machine": machine(),
    }
    result["plain_extrapolated"] = _plain_extrapolated(memory, steps, plain_steps)
    result["ratios"] = _ratios(result, steps)
    _report(result)
    return result


def _child(candidate: str, solver: str, steps: int, batch: int, threads: int) -> dict:
    argv = ["--child", candidate.replace(" ", "_"), solver, str(steps), str(batch)]
    return child_json("benchmarks.adjoint", argv, threads)


def _plain_extrapolated(memory: dict, steps: int, plain_steps: int) -> dict:
    """Plain backpropagation's peak RSS at ``steps``, extrapolated from its two measured step counts (its
    growth is linear in the steps: every stage of every step is kept), where running it would not fit the
    shared machine (10,000 steps: about 14 GiB fixed, 30 GiB adaptive)."""
    out = {}
    for solver in ("fixed", "adaptive"):
        small, large = (memory[f"{solver}/dynnets plain/{n}"]["peak_rss_bytes"] for n in (plain_steps // 2, plain_steps))
        per_step = (large - small) / (plain_steps - plain_steps // 2)
        out[solver] = {"bytes_per_step": per_step, "peak_rss_bytes": large + per_step * (steps - plain_steps)}
    return out


def _ratios(result: dict, steps: int) -> dict:
    memory, seconds, out = result["memory_bytes"], result["times_s"], {}
    for solver in ("fixed", "adaptive"):
        ours, theirs = (memory[f"{solver}/{c}/{steps}"]["peak_rss_bytes"] for c in CANDIDATES[:2])
        out[f"{solver}: peak RSS ours / odeint_adjoint"] = ours / theirs
        out[f"{solver}: peak RSS ours / plain (extrapolated)"] = ours / result["plain_extrapolated"][solver][
            "peak_rss_bytes"]
        t_ours, t_theirs = (seconds[solver][c] for c in CANDIDATES[:2])
        out[f"{solver}: time ours / odeint_adjoint (wall min)"] = t_ours["min"] / t_theirs["min"]
        out[f"{solver}: time ours / odeint_adjoint (cpu min)"] = t_ours["cpu_min"] / t_theirs["cpu_min"]
    return out


def _report(result: dict) -> None:
    mib, config = 2.0 ** 20, result["config"]
    print(f"{config['field']}, batch {config['batch']}, float32; adaptive accepted steps per nominal steps: "
          f"{config['accepted_steps']}")
    print(f"{'solve / candidate':<42}{'steps':>7}{'peak RSS (MiB)':>16}{'growth (MiB)':>14}{'wall (s)':>10}"
          f"{'cpu (s)':>9}")
    for key, m in result["memory_bytes"].items():
        solver, candidate, steps = key.split("/")
        t = result["times_s"][solver].get(candidate)
        timing = f"{t['min']:>10.2f}{t['cpu_min']:>9.2f}" if t else f"{'-':>10}{'-':>9}"
        print(f"{solver + '/' + candidate:<42}{steps:>7}{m['peak_rss_bytes'] / mib:>16.1f}{m['rss_bytes'] / mib:>14.1f}"
              f"{timing}")
    for solver, m in result["plain_extrapolated"].items():
        print(f"{solver + '/dynnets plain (extrapolated)':<42}{config['steps']:>7}{m['peak_rss_bytes'] / mib:>16.1f}"
              f"  ({m['bytes_per_step'] / 2 ** 10:.0f} KiB per step)")
    errors = result["gradient_errors"]
    print(f"\ngradient error (float64, relative, vs DormandPrince853 with h = {REFERENCE_H:g}; that reference vs "
          f"finite differences: {errors['reference_vs_finite_differences']:.1e}, vs rtol 1e-12: "
          f"{errors['reference_vs_adaptive_rtol_1e-12']:.1e})")
    for rtol in ERROR_RTOLS:
        row = errors[f"rtol {rtol:g}"]
        print(f"  rtol {rtol:<8g}" + "".join(f"{name}: {value:.2e}   " for name, value in row.items()))
    print()
    for key, value in result["ratios"].items():
        print(f"{key:<52}{value:>8.3f}")


if __name__ == "__main__":
    run_cli(main)
