"""Pixel-based learning of the time-step map of Fisher's equation (or the heat equation) on a periodic grid.

    python -m experiments.fisher [--pde fisher|heat] [--quick] [--seed S | --seeds A-B] [--out DIR] ...
    torchrun --nproc_per_node 2 -m experiments.fisher --ddp        # residual shards on 2 processes

Problem (the seed slides / Celledoni, Jackaman, Murari, Owren 2023): u_t = alpha Lap u + u(1 - u)
(--pde heat: u_t = alpha Lap u) on [0, 1]^2, periodic, 100x100 grid (dx = 0.01), alpha = 0.01; learn
U^n -> U^{n+1} for dt = 2.4e-3 from snapshots. The target is the reference solution on the same grid
(8 RK4 steps per dt of the 5-point FD field; its own temporal error is measured by step halving and
reported), so the learnable error floor is the integrator error of the model with the exact field.

Models, all rolled out 40 steps from held-out initial data:
  (a) trained: one step = 3 explicit Euler substeps (h = dt/3, as in the reference code) of a ConvFD
      field B * sigma(A * U) with 3x3 kernels and the smallest channel set that contains the exact
      right-hand side (dynnets.applications.pde.construct): Fisher [relu, relu, relu2, relu2], heat 4 relu.
      Default --field tied: MirroredConvFD, the relu pairs kept mirrored (A, -A), i.e. the polynomial
      ConvFD sum_j B_j * (A_j * U)^p in which the construction lives; --field free: a plain ConvFD
      started from the same mirrored initialisation (it can end in a poor local minimum where part
      of the Laplacian is lost). Started from delta input kernels A and the least-squares fit of the output
      kernels B to the increments (F is linear in B at fixed A), then trained with Levenberg-Marquardt in
      float64 (40 iterations) on the one-step
      residual relative to the increment, ||Psi(U^n) - U^{n+1}|| / ||U^{n+1} - U^n||, plus stability
      residuals (--stability-weight, 0 = off; dynnets.applications.pde.stability): the field's spectrum
      at constant states c in [0, 1] must stay where the PDE's is (Re lambda <= 1 - 2c for Fisher, <= 0
      for heat; |1 + h lambda| <= 1 + h max(1 - 2c, 0)), zero for the exact construction. Without them the
      learned symbol at frequencies absent from the data (the grid's checkerboard mode) can grow by
      factors of 6 per step and a 40-step rollout overflows (seed 3: docs/fisher.md). The certificate
      (max over c and the 100x100 grid frequencies) is reported as metrics["stability"].
  (b) exact: the same flow with the constructed ConvFD (= the FD scheme to round-off).
  (c) baseline: a periodic CNN U -> W2 * tanh(W1 * U) of similar size predicting U^{n+1} directly,
      trained the same way (without stability residuals).
Training uses periodic 32x32 tiles with the same dx, alpha and dt (the step map of a translation-
invariant local scheme is the same on any periodic grid with that spacing); testing uses 100x100
broadband fields (Gaussian random fields, amplitude (1 + |k|^2/16)^(-1) up to the Nyquist wavenumber,
values in [0.05, 0.95]) and out-of-band data (1-2 Fourier modes, wavenumbers 1..12). A rollout that
becomes non-finite or grows past 4x its initial maximum (both PDEs keep U in [0, 1]) is an error naming the
seed and the step.

Writes DIR/metrics.json, DIR/errors.png, DIR/snapshots.png, DIR/error_split.png, DIR/data.npz, checkpoints
DIR/*.ckpt (--seeds A-B: DIR/seed_S/..., DIR/metrics.json with the median and worst over the seeds).
"""

from __future__ import annotations

import copy
import math
import os
import time

import numpy as np
import torch
from torch.func import functional_call, jacfwd

import dynnets as dn
from dynnets.applications.pde import data as D
from dynnets.applications.pde import exact_convfd
from dynnets.applications.pde.baselines import CircularCNN
from dynnets.applications.pde.error_split import error_split, plot_error_split
from dynnets.applications.pde.stability import (
    EulerStepMap,
    certificate,
    growth_bounds,
    linearised_response,
    stability_residuals,
)
from dynnets.applications.runner import Runner, check_rollout, run_cli, save_figure
from dynnets.checks import positive_real, real
from dynnets.errors import CheckpointError, ConfigError
from dynnets.fields.convfd import MirroredConvFD
from dynnets.systems import FisherField2D, HeatField2D, PeriodicGrid2D
from dynnets.systems.stencils import kernel_moments
from dynnets.train import FitResult, Monitor, Phase, choose, fit

DX, ALPHA, DT, STEPS, SUBSTEPS = 0.01, 0.01, 2.4e-3, 40, 3
REFERENCE_MODEL = {"fisher": 1.3e-1, "heat": 5.9e-2}  # reference code's model, 40 steps, exact reference
FULL = dict(n=100, tile=32, tile_traj=48, pairs_per_traj=1, test=12, oob=12, iterations=40, stability_iterations=40,
            baseline_iterations=30, ref_substeps=8, init_scale=0.1)
QUICK = dict(n=32, tile=24, tile_traj=32, pairs_per_traj=1, test=4, oob=4, iterations=30, stability_iterations=10,
             baseline_iterations=5, ref_substeps=4, init_scale=0.0)
PENALTY_STATES = (0.0, 0.25, 0.5, 0.75, 1.0)   # constant states probed in training (the data lie in [0.05, 0.95])
PROBE_GRID = 64  # frequencies probed in training: the 64 x 64 grid's (the certificate uses the rollout grid's)
CERTIFICATE_STATES = tuple(k / 20 for k in range(21))
STABILITY_WEIGHT = 10.0
GROW = 4.0  # a rollout whose max |U| exceeds 4x its initial one has diverged (both PDEs keep U in [0, 1])

RUNNER = Runner("fisher", __doc__, dtypes=("float64",), devices=("cpu",), set_default_dtype=True,
                headline={"rel_error_40": "min", "rel_error_40_out_of_band": "min",
                          "rel_error_40_baseline": "min", "stability.max_growth_excess": "min",
                          "stability.max_amplification": "min"})
RUNNER.parser.add_argument("--pde", default="fisher", help="fisher or heat")
RUNNER.parser.add_argument("--ddp", action="store_true", help="shard the training residuals over torchrun processes")
RUNNER.parser.add_argument("--field", default="tied",
                           help="tied (MirroredConvFD: relu pairs kept mirrored, a polynomial ConvFD; default) or "
                                "free (plain ConvFD from the mirrored initialisation)")
RUNNER.parser.add_argument("--iterations", type=int, default=None,
                           help="Levenberg-Marquardt iterations of the ConvFD on the one-step residual")
RUNNER.parser.add_argument("--stability-iterations", type=int, default=None,
                           help="then iterations with the stability residuals appended")
RUNNER.parser.add_argument("--time-budget", type=float, default=None, help="seconds of ConvFD training at most")
RUNNER.parser.add_argument("--stability-weight", type=float, default=STABILITY_WEIGHT,
                           help="weight of the stability residuals (0: off, the one-step loss alone)")
RUNNER.parser.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints in --out")


def validate(args) -> None:
    """The experiment's own options, before any work (one error line each)."""
    if args.pde not in ("fisher", "heat"):
        raise ConfigError(f"unknown --pde {args.pde!r}; use fisher or heat")
    if args.field not in ("tied", "free"):
        raise ConfigError(f"unknown --field {args.field!r}; use tied or free")
    for name in ("iterations", "stability_iterations"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    if args.time_budget is not None:
        positive_real("--time-budget", args.time_budget)
    real("--stability-weight", args.stability_weight, minimum=0.0)
    if args.ddp and len(args.seed_list) > 1:
        raise ConfigError("--ddp runs one seed per torchrun job (rule: --seed S, not --seeds)")
    if args.ddp and int(os.environ.get("WORLD_SIZE", "1")) < 2:
        raise ConfigError("--ddp needs at least 2 processes (rule: start with torchrun --nproc_per_node 2)")


def main(argv=None):
    try:
        return RUNNER.main(run, argv, validate=validate)
    finally:
        dn.train.shutdown_distributed()  # a no-op without a process group


def _field(pde: str, grid: PeriodicGrid2D):
    return FisherField2D(grid, ALPHA) if pde == "fisher" else HeatField2D(grid, ALPHA)


def _make_convfd(kind: str, acts, init_scale: float):
    """A mirrored ConvFD whose input kernels A start as delta kernels (signs of a random draw, kept mirrored) and
    whose output kernels B start random with scale ``init_scale``: the hidden channels see U itself (relu
    pairs) and U^2 (relu2 pairs), so F = B_1 * U + B_2 * U^2 + ..., one stencil per power of U, linear in B
    (``least_squares_start`` then fits B). From random A, Levenberg-Marquardt mostly stalled at one-step losses
    of 0.04 to 0.9 (docs/fisher.md)."""
    if kind == "tied":
        net = MirroredConvFD(1, len(acts), 3, acts, init_scale=init_scale).to(torch.float64)
        a = net.A_free
    else:
        net = dn.fields.ConvFD(1, len(acts), 3, acts, init="mirrored", init_scale=init_scale).to(torch.float64)
        a = net.A
    with torch.no_grad():
        signs = torch.where(a[:, :, 1, 1] < 0, -1.0, 1.0).to(a)
        a.zero_()
        a[:, :, 1, 1] = signs
    return net


def _euler_flow(field):
    return dn.Flow.repeat(dn.Step(field, dn.methods.Euler(), DT / SUBSTEPS), SUBSTEPS)


def _rel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Relative L2 error per sample, (N, ...) -> (N,)."""
    return (a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)


@torch.no_grad()
def rollout_errors(model, traj: torch.Tensor, what: str | None = None, seed: int | None = None) -> np.ndarray:
    """Per-step relative L2 error (mean over trajectories), steps 1..STEPS; traj (N, STEPS + 1, n, n). With
    ``what``, a rollout that becomes non-finite or grows past GROW x its initial maximum raises
    DivergenceError naming the seed and the step (never a NaN in a table)."""
    u = traj[:, 0:1].clone()
    out, size = [], [float(u.abs().max())]
    for k in range(1, traj.shape[1]):
        u = model(u)
        size.append(float(u.abs().max()))
        out.append(float(_rel(u, traj[:, k:k + 1]).mean()))
    if what is not None:
        check_rollout(size, what, seed, grow=GROW)
    return np.array(out)


def make_data(pde: str, cfg: dict, seed: int) -> dict:
    """Training tiles (reference trajectories on tile x tile grids), their train/validation split and pairs,
    and the 100 x 100 broadband and out-of-band test trajectories."""
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    n, tile = cfg["n"], cfg["tile"]
    grid, tgrid = PeriodicGrid2D(n, n * DX), PeriodicGrid2D(tile, tile * DX)
    field, tfield = _field(pde, grid), _field(pde, tgrid)
    tiles0 = D.random_fields(cfg["tile_traj"], tgrid, gen, k0=4.0 * tile * DX, k_max=tile / 2 - 1)
    tiles = D.reference_trajectories(tfield, tiles0, DT, STEPS, substeps=cfg["ref_substeps"])
    split = D.split_by_trajectory(cfg["tile_traj"], (0.75, 0.25, 0.0), seed=seed)
    test0 = D.random_fields(cfg["test"], grid, gen, k0=4.0 * n * DX, k_max=n / 2 - 1)
    oob0 = D.mode_fields(cfg["oob"], grid, gen, k_lo=1, k_hi=12)
    test = D.reference_trajectories(field, test0, DT, STEPS, substeps=cfg["ref_substeps"])
    oob = D.reference_trajectories(field, oob0, DT, STEPS, substeps=cfg["ref_substeps"])
    ref_error = D.time_error(field, test0[:2], DT, STEPS, cfg["ref_substeps"])

    def pairs(idx):
        idx = torch.as_tensor(idx)
        k = torch.randint(0, STEPS, (len(idx), cfg["pairs_per_traj"]), generator=gen)
        traj = idx[:, None].expand_as(k)
        return tiles[traj, k].reshape(-1, 1, tile, tile), tiles[traj, k + 1].reshape(-1, 1, tile, tile)

    x_train, y_train = pairs(split["train"])
    x_val, y_val = pairs(split["val"])
    return dict(field=field, tiles=tiles, split=split, val_traj=tiles[split["val"]], test=test, oob=oob,
                ref_error=ref_error, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                seconds=time.perf_counter() - t0)


def _train(model, x, y, iterations, ckpt, desc, time_budget=None, stability=None, monitor=None,
           settings=None) -> FitResult:
    """Levenberg-Marquardt on the one-step residual relative to the increment (summed over ranks): ``iterations``
    = (one-step phase, stability phase). In the stability phase, ``stability`` = (states, bounds, weight),
    rank 0 appends the stability residuals of the field's spectrum at those constant states (``model`` is then
    an EulerStepMap) to the same one-step residual. ``settings``: the run's options its checkpoint records (the
    data and the losses are not compared by fit: the options that make them are)."""
    steps, stable_steps = iterations
    if stability is None or stability[2] == 0:
        stable_steps = 0
    if steps + stable_steps == 0:
        return FitResult(losses=[], steps_done=0, seconds=0.0)
    den = math.sqrt(float(dn.train.all_reduce_sum((y - x).pow(2).sum().reshape(1))))

    def one_step(m, batch):
        return ((m(x) - y) / den).reshape(-1)

    phases = [Phase("lm", steps, name="one-step")]
    if stable_steps:
        states, bounds, weight = stability
        h = model.h

        def stable(m, batch):
            r = ((m(x) - y) / den).reshape(-1)
            return torch.cat([r, weight * stability_residuals(m(states, linearise=True), bounds, h)])

        phases.append(Phase("lm", stable_steps, name="stability",
                            loss=stable if dn.train.is_main_process() else one_step))
    try:
        return fit(model, one_step, phases=phases, checkpoint=ckpt, checkpoint_every=5, desc=desc,
                   time_budget=time_budget, monitor=monitor, settings=settings)
    except CheckpointError as e:
        raise CheckpointError(f"{e}; here: rerun with --no-resume to start over") from None


def _losses_after(result: FitResult) -> list[float]:
    """The loss after each iteration (the loop records the loss before each step; LM knows the one after)."""
    return result.losses[1:] + [result.end_loss] if result.losses else []


def least_squares_start(step_map, b_name: str, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Set the output kernels B to the linear least-squares fit of the field to the pairs' increments,
    F(U^n) ~ (U^{n+1} - U^n) / dt, with A as it is (delta kernels from ``_make_convfd``): at fixed A the ConvFD
    is linear in B (``b_name``: the tensor holding B), so this is one small normal-equation solve (J^T J and J^T t summed over ranks under
    DDP; the minimum-norm solution where features coincide, as heat's two relu pairs do). The start is
    deterministic and within the first-order (O(dt)) distance of a consistent field; Levenberg-Marquardt then
    trains A and B on the Euler-substep map. Returns its one-step residual (relative to the increment) and the
    rank of J^T J."""
    net = step_map.field
    params = dict(net.named_parameters())
    b0 = params[b_name].detach()

    def field_of(b):
        return functional_call(net, {**params, b_name: b}, (x,)).reshape(-1)

    jac = jacfwd(field_of)(b0).reshape(-1, b0.numel())
    target = ((y - x) / DT).reshape(-1)
    gram = dn.train.all_reduce_sum(jac.T @ jac)
    rhs = dn.train.all_reduce_sum(jac.T @ target)
    fit_b = torch.linalg.lstsq(gram, rhs.unsqueeze(1), driver="gelsd")  # SVD-based: also gives the rank used
    with torch.no_grad():
        params[b_name].copy_(fit_b.solution.squeeze(1).view_as(b0))
        num = dn.train.all_reduce_sum((step_map(x) - y).pow(2).sum().reshape(1))
        den = dn.train.all_reduce_sum((y - x).pow(2).sum().reshape(1))
    return {"one_step_loss": float(num / den), "rank": int(fit_b.rank), "unknowns": b0.numel()}


def train_convfd(args, cfg: dict, data: dict, out, rank: int, world: int, settings=None) -> dict:
    """The least-squares start, then LM on all pairs (this rank's shard) with the stability
    residuals; the parameters returned are those of {trained, its start} with the better validation rollout,
    never one whose rollout diverges (dynnets.train.choose raises DivergenceError if both do)."""
    # the smallest channel set that contains the exact right-hand side (dynnets.applications.pde.construct):
    # Fisher alpha L*U + U - U^2 -> 2 relu + 2 relu2 channels; heat alpha L*U -> 2 relu channels (we give
    # heat 4: with one tied pair F = B * (A * U) is a bilinear factorisation that LM left at a poor local
    # minimum, loss 8e-2 against the exact field's 3e-3, measured)
    acts = ["relu", "relu", "relu2", "relu2"] if args.pde == "fisher" else ["relu"] * 4
    step_map = EulerStepMap(_make_convfd(args.field, acts, cfg["init_scale"]), DT, SUBSTEPS, PROBE_GRID)
    initial = {"rel_error_40_initial": rollout_errors(step_map.flow, data["test"])[-1]}
    with torch.no_grad():
        x_val, y_val = data["x_val"], data["y_val"]
        initial["val_increment_rel_error_initial"] = float((step_map(x_val) - y_val).norm() / (y_val - x_val).norm())
    stability = (torch.tensor(PENALTY_STATES), growth_bounds(data["field"].growth_bound, PENALTY_STATES),
                 args.stability_weight)
    x, y = data["x_train"][rank::world], data["y_train"][rank::world]
    val_traj = data["val_traj"]
    t1 = time.perf_counter()
    # the loss has poor local minima (from random kernels most Levenberg-Marquardt runs stall at one-step
    # losses 0.04-0.9): start from the least-squares fit of B at delta A instead (docs/fisher.md)
    ls_start = least_squares_start(step_map, "B_free" if args.field == "tied" else "B", x, y)
    start = copy.deepcopy(step_map.state_dict())
    monitor = Monitor(lambda m: float(rollout_errors(m.flow, val_traj)[-1]), every_steps=5)
    result = _train(step_map, x, y, (cfg["iterations"], cfg["stability_iterations"]), out / "convfd.ckpt",
                    "ConvFD (LM)", args.time_budget, stability, monitor, settings)
    kept = [copy.deepcopy(step_map.state_dict()), start]

    def validation(state):
        step_map.load_state_dict(state)
        return rollout_errors(step_map.flow, val_traj)

    final = choose(kept, validation, limit=1.0)
    step_map.load_state_dict(kept[final.index])
    return dict(initial, step_map=step_map, acts=acts, fit=result, train_seconds=time.perf_counter() - t1,
                least_squares_start=ls_start,
                validation_choice={"candidates": ["trained", "start of the final phase"], "chosen": final.index,
                                   "scores": final.scores, "rejected": final.rejected},
                validation_monitor=[(r["step"], r["value"]) for r in result.monitor])


def train_baseline(cfg: dict, data: dict, out, rank: int, world: int, settings=None) -> dict:
    baseline = CircularCNN(width=4, kernel_size=3).to(torch.float64)
    t2 = time.perf_counter()
    x, y = data["x_train"][rank::world], data["y_train"][rank::world]
    result = _train(baseline, x, y, (cfg["baseline_iterations"], 0), out / "baseline.ckpt", "baseline (LM)",
                    settings=settings)
    return dict(model=baseline, fit=result, seconds=time.perf_counter() - t2)


def _config(args) -> dict:
    cfg = dict(QUICK if args.quick else FULL)
    for name in ("iterations", "stability_iterations"):
        if getattr(args, name) is not None:
            cfg[name] = getattr(args, name)
    return cfg


def run(args, seed: int, out) -> dict:
    """One seed: data, training (sharded under --ddp), evaluation; rank 0 writes data and figures."""
    cfg = _config(args)
    info = dn.train.init_distributed("cpu") if args.ddp else dn.train.DistInfo()
    if info.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if args.no_resume:
            for f in ("convfd.ckpt", "baseline.ckpt"):
                (out / f).unlink(missing_ok=True)
    if args.ddp:
        torch.distributed.barrier()
    data = make_data(args.pde, cfg, seed)
    settings = {"pde": args.pde, "field": args.field, "quick": args.quick, "stability_weight": args.stability_weight,
                "seed": seed}
    convfd = train_convfd(args, cfg, data, out, info.rank, info.world_size, settings)
    baseline = train_baseline(cfg, data, out, info.rank, info.world_size, settings)
    metrics = evaluate(args, cfg, data, convfd, baseline, seed)
    metrics.update(world_size=info.world_size, threads=args.threads)
    if info.rank == 0:  # written only now: a run refused at training leaves --out as it was
        _save_data(out, args.pde, seed, cfg, data)
        save_figure(plot_error_split(metrics.pop("_split"), f"{args.pde}, one step of the trained ConvFD"),
                    out / "error_split.png")
        _figures(out, metrics["curves"], data["test"], convfd["step_map"].flow, baseline["model"], args.pde)
        print_summary(metrics)
    metrics.pop("_split", None)
    return metrics


def _linearised_stencil(field, c: float, n: int) -> torch.Tensor:
    """The 7x7 correlation kernel of D F(c 1) (the Jacobian at a constant state), from the response to a delta."""
    with torch.no_grad():
        resp = linearised_response(field, torch.tensor([c]), n)[0]
    resp = torch.roll(resp, (3, 3), (0, 1))[:7, :7]  # offsets -3..3 around the delta
    return torch.flip(resp, (0, 1))  # response at offset -o is K[o]: flip to the correlation kernel


def _moments_table(trained, exact, fd, pde: str, n: int) -> dict:
    out = {}
    for c in (0.25, 0.5, 0.75):
        row = {name: kernel_moments(_linearised_stencil(f, c, n), DX) for name, f in (("trained", trained),
                                                                                       ("exact", exact))}
        lin = ALPHA * torch.nn.functional.pad(fd.kernel, (2, 2, 2, 2))
        if pde == "fisher":
            lin[3, 3] += 1 - 2 * c
        row["fd"] = kernel_moments(lin, DX)
        out[f"c={c}"] = row
    return out


def _curves(models: dict, data: dict, seed: int) -> dict:
    """40-step relative errors of every model on both test sets; a diverged rollout is an error."""
    return {name: {which: rollout_errors(m, data[key], f"the {name} model's rollout ({which})", seed)
                   for which, key in (("test", "test"), ("out_of_band", "oob"))}
            for name, m in models.items()}


def evaluate(args, cfg: dict, data: dict, convfd: dict, baseline: dict, seed: int) -> dict:
    """Rollout errors, the stability certificate, one-step validation errors, kernels, the error splitting."""
    n, field, test = cfg["n"], data["field"], data["test"]
    step_map, fit_c, fit_b = convfd["step_map"], convfd["fit"], baseline["fit"]
    trained, net = step_map.flow, step_map.field
    exact_field = exact_convfd(ALPHA, DX, "5pt", (1.0, -1.0) if args.pde == "fisher" else (0.0, 0.0))
    models = {"trained": trained, "exact": _euler_flow(exact_field), "baseline": baseline["model"],
              "fd": _euler_flow(field)}
    curves = _curves(models, data, seed)
    with torch.no_grad():
        x_val, y_val = data["x_val"], data["y_val"]
        a, b = test[:, 0:1].clone(), test[:, 0:1].clone()
        for _ in range(STEPS):
            a, b = models["exact"](a), models["fd"](b)
    stable = {name: certificate(f, field.growth_bound, DT / SUBSTEPS, n, CERTIFICATE_STATES)
              for name, f in (("trained", net), ("exact", exact_field))}
    at = [0, 13, 26, STEPS - 1]  # the slides' one-step error splitting on held-out states
    split = error_split(trained, lambda m: _field(args.pde, PeriodicGrid2D(m, n * DX)),
                        test[:4, at].reshape(-1, 1, n, n), next_states=test[:4, [k + 1 for k in at]].reshape(-1, 1, n, n))
    with torch.no_grad():
        val, val_inc = float(_rel(trained(x_val), y_val).mean()), float((trained(x_val) - y_val).norm() / (y_val - x_val).norm())
    return {
        "pde": args.pde, "quick": args.quick, "seed": seed, "grid": n, "tile": cfg["tile"], "alpha": ALPHA,
        "dt": DT, "dx": DX, "steps": STEPS, "field": args.field, "stability_weight": args.stability_weight,
        "model": f"{SUBSTEPS} Euler substeps of {type(net).__name__}(1, {len(convfd['acts'])}, 3x3, {convfd['acts']})",
        **{f"rel_error_40{'' if k == 'trained' else '_' + k}": curves[k]["test"][-1] for k in ("trained", "baseline", "exact")},
        **{f"rel_error_40{'' if k == 'trained' else '_' + k}_out_of_band": curves[k]["out_of_band"][-1]
           for k in ("trained", "baseline", "exact")},
        "rel_error_40_fd_scheme": curves["fd"]["test"][-1], "exact_vs_fd_scheme_max_abs_40": float((a - b).abs().max()),
        "rel_error_40_initial": convfd["rel_error_40_initial"],
        "stability": stable["trained"], "stability_exact": stable["exact"],
        "stability_training": {"states": list(PENALTY_STATES), "probe_grid": step_map.probe_grid,
                               "weight": args.stability_weight},
        "reference_model_rel_error_40": REFERENCE_MODEL[args.pde], "reference_time_error": data["ref_error"],
        "val_rel_error_1step": val, "val_increment_rel_error": val_inc,
        "val_increment_rel_error_initial": convfd["val_increment_rel_error_initial"],
        "train_loss_final": fit_c.end_loss, "train_iterations": fit_c.steps_done,
        **{k: convfd[k] for k in ("least_squares_start",
                                  "validation_choice", "validation_monitor", "train_seconds")},
        "data_seconds": data["seconds"], "baseline_train_seconds": baseline["seconds"],
        "parameters": sum(p.numel() for p in net.parameters()),
        "parameters_baseline": sum(p.numel() for p in baseline["model"].parameters()),
        "parameters_exact": sum(p.numel() for p in exact_field.parameters()),
        "train_pairs": int(data["x_train"].shape[0]), "test_trajectories": cfg["test"],
        "out_of_band_trajectories": cfg["oob"], "curves": curves,
        "train_losses": _losses_after(fit_c), "baseline_losses": _losses_after(fit_b),
        "linearised_stencil_moments": _moments_table(net, exact_field, field, args.pde, n),
        "hidden_kernel_moments": [kernel_moments(net.A[j, 0].detach(), DX) for j in range(net.hidden)],
        "error_split": split["summary"], "_split": split,
    }


def _save_data(out, pde: str, seed: int, cfg: dict, data: dict) -> None:
    D.save_dataset(out / "data.npz", {
        "tiles": data["tiles"], "train_index": data["split"]["train"], "val_index": data["split"]["val"],
        "test": data["test"].float(), "out_of_band": data["oob"].float()},
        {"pde": pde, "alpha": ALPHA, "dt": DT, "dx": DX, "steps": STEPS, "n": cfg["n"], "tile": cfg["tile"],
         "reference": f"RK4, {cfg['ref_substeps']} steps per dt", "reference_time_error": data["ref_error"],
         "broadband": "amplitude (1 + |k|^2/k0^2)^(-1), 1 <= |k| < n/2, k0 = 4 (per unit length); mean in "
                      "[0.35, 0.65], max deviation in [0.1, 0.3]",
         "out_of_band": "1-2 modes cos(2 pi (kx x + ky y) + phi), kx, ky in 1..12", "seed": seed,
         "note": "test and out_of_band stored as float32; tiles as float64"})


def print_summary(m: dict) -> None:
    n, curves, s = m["grid"], m["curves"], m["stability"]
    print(f"{m['pde']}: grid {n}x{n}, {m['train_pairs']} training pairs ({m['tile']}x{m['tile']} tiles), "
          f"data {m['data_seconds']:.0f} s, training {m['train_seconds']:.0f} s (+ baseline "
          f"{m['baseline_train_seconds']:.0f} s)")
    print(f"{'model':<22}{'rel err @40':>14}{'out of band':>14}")
    for label, key in (("trained ConvFD", "trained"), ("exact construction", "exact"), ("FD scheme", "fd"),
                       ("baseline CNN", "baseline")):
        print(f"{label:<22}{curves[key]['test'][-1]:>14.3e}{curves[key]['out_of_band'][-1]:>14.3e}")
    print(f"{'untrained ConvFD':<22}{m['rel_error_40_initial']:>14.3e}")
    print(f"{'reference model':<22}{m['reference_model_rel_error_40']:>14.3e}   (reported, 100x100)")
    print(f"reference solver time error (step halving): {m['reference_time_error']:.1e}; exact vs FD scheme max "
          f"|diff|: {m['exact_vs_fd_scheme_max_abs_40']:.1e}")
    print(f"stability certificate (c in [0, 1], {n}x{n} frequencies): max Re lambda - b(c) = "
          f"{s['max_growth_excess']:.3g}, max |1 + h lambda| = {s['max_amplification']:.6f} (excess "
          f"{s['max_amplification_excess']:.2e}); exact field: {m['stability_exact']['max_growth_excess']:.2e}")
    es = m["error_split"]
    print(f"error split of one step (max over {es['states']} states, max-norm): measured "
          f"{es['measured_total']['max']:.2e} <= bound {es['bound_sum']['max']:.2e} [spatial {es['spatial']['max']:.2e}, "
          f"classical {es['classical']['max']:.2e}, network {es['network_bound']['max']:.2e}]; holds on every "
          f"state: {es['bound_holds_every_state']}; dominant: {es['dominant_term_bound']}")


def _figures(out, curves, test, trained, baseline, pde):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    steps = np.arange(1, STEPS + 1)
    for ax, which in zip(axes, ("test", "out_of_band"), strict=True):
        for key, label in (("trained", "trained ConvFD"), ("exact", "exact construction"),
                           ("baseline", "baseline CNN")):
            ax.semilogy(steps, np.maximum(curves[key][which], 1e-17), label=label)
        ax.axhline(REFERENCE_MODEL[pde], color="gray", ls="--", label="reference model @40")
        ax.set_xlabel("step")
        ax.set_title(f"{pde}: {'held-out broadband' if which == 'test' else 'out of band (k = 1..12)'}")
    axes[0].set_ylabel("relative L2 error")
    axes[0].legend(fontsize=8)
    save_figure(fig, out / "errors.png")
    with torch.no_grad():
        u, v = test[:1, 0:1].clone(), test[:1, 0:1].clone()
        for _ in range(STEPS):
            u, v = trained(u), baseline(v)
    panels = [("reference U^40", test[0, -1]), ("trained ConvFD", u[0, 0]), ("|trained - ref|", (u[0, 0] - test[0, -1]).abs()),
              ("baseline CNN", v[0, 0])]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    for ax, (title, img) in zip(axes, panels, strict=True):
        im = ax.imshow(img.numpy(), origin="lower")
        ax.set_title(title)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046)
    save_figure(fig, out / "snapshots.png")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run_cli(main)
