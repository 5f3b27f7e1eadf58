"""Pixel-based learning of the time-step map of Fisher's equation (or the heat equation) on a periodic grid.

    python -m experiments.fisher [--pde fisher|heat] [--quick] [--seed S] [--out DIR] [--ddp] ...
    torchrun --nproc_per_node 2 -m experiments.fisher --ddp        # residual shards on 2 processes

Problem (the seed slides / Celledoni, Jackaman, Murari, Owren 2023): u_t = alpha Lap u + u(1 - u)
(--pde heat: u_t = alpha Lap u) on [0, 1]^2, periodic, 100x100 grid (dx = 0.01), alpha = 0.01; learn
U^n -> U^{n+1} for dt = 2.4e-3 from snapshots. The target is the reference solution on the same grid
(8 RK4 steps per dt of the 5-point FD field; its own temporal error is measured by step halving and
reported), so the learnable error floor is the integrator error of the model with the exact field.

Models, all rolled out 40 steps from held-out initial data:
  (a) trained: one step = 3 explicit Euler substeps (h = dt/3, as in the reference code) of a ConvFD
      field B * sigma(A * U) with 3x3 kernels and the smallest channel set that contains the exact
      right-hand side (dynnets.applications.pde.construct): Fisher [relu, relu, relu2, relu2], heat [relu, relu].
      Default --field tied: MirroredConvFD, the relu pairs kept mirrored (A, -A), i.e. the polynomial
      ConvFD sum_j B_j * (A_j * U)^p in which the construction lives; --field free: a plain ConvFD
      started from the same mirrored initialisation (it can end in a poor local minimum where part
      of the Laplacian is lost: measured 2.0e-2 after 40 steps instead of 2.1e-4). Trained with
      Levenberg-Marquardt in float64 (best of 3 short starts on a quarter of the pairs, then 40
      iterations) on the one-step residual relative to the increment,
      ||Psi(U^n) - U^{n+1}|| / ||U^{n+1} - U^n||.
  (b) exact: the same flow with the constructed ConvFD (= the FD scheme to round-off).
  (c) baseline: a periodic CNN U -> W2 * tanh(W1 * U) of similar size predicting U^{n+1} directly,
      trained the same way.
Training uses periodic 32x32 tiles with the same dx, alpha and dt (the step map of a translation-
invariant local scheme is the same on any periodic grid with that spacing); testing uses 100x100
broadband fields (Gaussian random fields, amplitude (1 + |k|^2/16)^(-1) up to the Nyquist wavenumber,
values in [0.05, 0.95]) and out-of-band data (1-2 Fourier modes, wavenumbers 1..12).

Writes DIR/metrics.json, DIR/errors.png, DIR/snapshots.png, DIR/data.npz, checkpoints DIR/*.ckpt.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch

import dynnets as dn
from dynnets.applications.pde import data as D
from dynnets.applications.pde import exact_convfd
from dynnets.applications.pde.baselines import CircularCNN
from dynnets.applications.pde.error_split import error_split, plot_error_split
from dynnets.applications.runner import experiment_parser, run_cli, save_figure, seed_everything, write_json
from dynnets.errors import CheckpointError, ConfigError
from dynnets.fields.convfd import MirroredConvFD
from dynnets.systems import FisherField2D, HeatField2D, PeriodicGrid2D
from dynnets.systems.stencils import kernel_moments
from dynnets.train import FitResult, Phase, choose, fit

DX, ALPHA, DT, STEPS = 0.01, 0.01, 2.4e-3, 40
REFERENCE_MODEL = {"fisher": 1.3e-1, "heat": 5.9e-2}  # reference code's model, 40 steps, exact reference
FULL = dict(n=100, tile=32, tile_traj=48, pairs_per_traj=1, test=12, oob=12, iterations=40, baseline_iterations=30,
            ref_substeps=8, restarts=3, restart_iterations=10, init_scale=0.1)
QUICK = dict(n=32, tile=24, tile_traj=32, pairs_per_traj=1, test=4, oob=4, iterations=35, baseline_iterations=5,
             ref_substeps=4, restarts=1, restart_iterations=0, init_scale=0.0)


def build_parser():
    p = experiment_parser("fisher", __doc__)
    p.add_argument("--pde", default="fisher", help="fisher or heat")
    p.add_argument("--ddp", action="store_true", help="shard the training residuals over torchrun processes")
    p.add_argument("--field", default="tied",
                   help="tied (MirroredConvFD: relu pairs kept mirrored, a polynomial ConvFD; default) or free "
                        "(plain ConvFD from the mirrored initialisation)")
    p.add_argument("--iterations", type=int, default=None, help="Levenberg-Marquardt iterations (ConvFD)")
    p.add_argument("--time-budget", type=float, default=None, help="seconds of ConvFD training at most")
    p.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints in --out")
    return p


def _field(pde: str, grid: PeriodicGrid2D):
    return FisherField2D(grid, ALPHA) if pde == "fisher" else HeatField2D(grid, ALPHA)


def _make_convfd(kind: str, acts, init_scale: float):
    if kind == "tied":
        return MirroredConvFD(1, len(acts), 3, acts, init_scale=init_scale).to(torch.float64)
    return dn.fields.ConvFD(1, len(acts), 3, acts, init="mirrored", init_scale=init_scale).to(torch.float64)


def _euler_flow(field, substeps: int = 3):
    return dn.Flow.repeat(dn.Step(field, dn.methods.Euler(), DT / substeps), substeps)


def _rel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Relative L2 error per sample, (N, ...) -> (N,)."""
    return (a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)


@torch.no_grad()
def rollout_errors(model, traj: torch.Tensor) -> np.ndarray:
    """Per-step relative L2 error (mean over trajectories), steps 1..STEPS; traj (N, STEPS + 1, n, n)."""
    u = traj[:, 0:1].clone()
    out = []
    for k in range(1, traj.shape[1]):
        u = model(u)
        out.append(float(_rel(u, traj[:, k:k + 1]).mean()))
    return np.array(out)


def _linearised_stencil(field, c: float, n: int, dtype) -> torch.Tensor:
    """The correlation kernel of D F(c 1) (the Jacobian at a constant state), from the response to a delta."""
    u = torch.full((1, 1, n, n), c, dtype=dtype)
    delta = torch.zeros_like(u)
    delta[..., 0, 0] = 1.0
    _, resp = torch.func.jvp(field, (u,), (delta,))
    resp = torch.roll(resp[0, 0], (3, 3), (0, 1))[:7, :7]  # offsets -3..3 around the delta
    return torch.flip(resp, (0, 1)).detach()  # response at offset -o is K[o]: flip to the correlation kernel


def _moments_table(trained, exact, fd, pde: str, n: int) -> dict:
    out = {}
    for c in (0.25, 0.5, 0.75):
        row = {}
        for name, f in (("trained", trained), ("exact", exact)):
            row[name] = kernel_moments(_linearised_stencil(f, c, n, torch.float64), DX)
        lin = ALPHA * torch.nn.functional.pad(fd.kernel, (2, 2, 2, 2))
        if pde == "fisher":
            lin[3, 3] += 1 - 2 * c
        row["fd"] = kernel_moments(lin, DX)
        out[f"c={c}"] = row
    return out


def _train(model, x, y, iterations, ckpt, desc, time_budget=None) -> FitResult:
    """Levenberg-Marquardt on the one-step residual relative to the increment (summed over ranks)."""
    if iterations == 0:
        return FitResult(losses=[], steps_done=0, seconds=0.0)
    den2 = float(dn.train.all_reduce_sum((y - x).pow(2).sum().reshape(1)))

    def residual(m, batch):
        return (m(x) - y) / math.sqrt(den2)

    try:
        return fit(model, residual, phases=[Phase("lm", iterations)], checkpoint=ckpt, checkpoint_every=5,
                   desc=desc, time_budget=time_budget)
    except CheckpointError as e:
        raise CheckpointError(f"{e}; here: rerun with --no-resume to start over") from None


def _losses_after(result: FitResult) -> list[float]:
    """The loss after each iteration (the loop records the loss before each step; LM knows the one after)."""
    return result.losses[1:] + [result.end_loss] if result.losses else []


def _restarts(cfg, kind, acts, convfd, x, y, val_traj):
    """Short LM runs from several mirrored initialisations on a quarter of the pairs; the one with the smallest
    validation rollout error (40 steps on held-out tiles) is kept, and one whose rollout diverges (non-finite
    or relative error > 1) is never chosen (dynnets.train.choose). Returns (losses, scores, chosen index)."""
    if cfg["restarts"] < 2:
        return [], [], 0
    m = max(1, x.shape[0] // 4)
    candidates, losses = [], []
    for r in range(cfg["restarts"]):
        cand = _make_convfd(kind, acts, cfg["init_scale"]) if r else convfd
        res = _train(_euler_flow(cand), x[:m], y[:m], cfg["restart_iterations"], None, f"start {r + 1} (LM)")
        candidates.append(cand)
        losses.append(res.end_loss if res.end_loss is not None else math.inf)
    choice = choose(candidates, lambda c: rollout_errors(_euler_flow(c), val_traj), limit=1.0)
    convfd.load_state_dict(candidates[choice.index].state_dict())
    return losses, choice.scores, choice.index


def _save_data(out, args, cfg, tiles, split, test, oob, ref_error):
    n, tile = cfg["n"], cfg["tile"]
    D.save_dataset(out / "data.npz", {
        "tiles": tiles, "train_index": split["train"], "val_index": split["val"],
        "test": test.float(), "out_of_band": oob.float()},
        {"pde": args.pde, "alpha": ALPHA, "dt": DT, "dx": DX, "steps": STEPS, "n": n, "tile": tile,
         "reference": f"RK4, {cfg['ref_substeps']} steps per dt", "reference_time_error": ref_error,
         "broadband": "amplitude (1 + |k|^2/k0^2)^(-1), 1 <= |k| < n/2, k0 = 4 (per unit length); mean in "
                      "[0.35, 0.65], max deviation in [0.1, 0.3]",
         "out_of_band": "1-2 modes cos(2 pi (kx x + ky y) + phi), kx, ky in 1..12", "seed": args.seed,
         "note": "test and out_of_band stored as float32; tiles as float64"})


def main(argv=None):
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # every tensor and random draw of the run in float64
    try:
        return _main(argv)
    finally:  # no global side effect when called in-process (tests)
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)


def _main(argv=None):
    args = build_parser().parse_args(argv)
    if args.pde not in ("fisher", "heat"):
        raise ConfigError(f"unknown --pde {args.pde!r}; use fisher or heat")
    if args.field not in ("tied", "free"):
        raise ConfigError(f"unknown --field {args.field!r}; use tied or free")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    if args.dtype != "float64":
        raise ConfigError("this experiment trains with Levenberg-Marquardt in float64 (rule: --dtype float64)")
    if args.device != "cpu":
        dn.train.config.resolve_device(args.device)
        raise ConfigError("this experiment runs on CPU only (rule: --device cpu)")
    torch.set_num_threads(args.threads)
    cfg = dict(QUICK if args.quick else FULL)
    if args.iterations is not None:
        if args.iterations < 0:
            raise ConfigError(f"--iterations must be >= 0, got {args.iterations}")
        cfg["iterations"] = args.iterations
    info = dn.train.init_distributed("cpu") if args.ddp else dn.train.DistInfo()
    if args.ddp and info.world_size < 2:
        raise ConfigError("--ddp needs at least 2 processes (rule: start with torchrun --nproc_per_node 2)")
    main_rank = info.rank == 0
    out = args.out
    if main_rank:
        out.mkdir(parents=True, exist_ok=True)
    if args.no_resume and main_rank:
        for f in ("convfd.ckpt", "baseline.ckpt"):
            (out / f).unlink(missing_ok=True)
    if args.ddp:
        torch.distributed.barrier()
    seed_everything(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    # ---- data ------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    n, tile = cfg["n"], cfg["tile"]
    grid, tgrid = PeriodicGrid2D(n, n * DX), PeriodicGrid2D(tile, tile * DX)
    field, tfield = _field(args.pde, grid), _field(args.pde, tgrid)
    spec = dict(k0=4.0 * tile * DX, k_max=tile / 2 - 1)
    tiles0 = D.random_fields(cfg["tile_traj"], tgrid, gen, **spec)
    tiles = D.reference_trajectories(tfield, tiles0, DT, STEPS, substeps=cfg["ref_substeps"])
    split = D.split_by_trajectory(cfg["tile_traj"], (0.75, 0.25, 0.0), seed=args.seed)
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
    data_seconds = time.perf_counter() - t0
    # this rank's shard of the training pairs
    x_shard, y_shard = x_train[info.rank::info.world_size], y_train[info.rank::info.world_size]

    # ---- models ----------------------------------------------------------------------------------
    # the smallest channel set that contains the exact right-hand side (dynnets.applications.pde.construct):
    # Fisher alpha L*U + U - U^2 -> 2 relu + 2 relu2 channels; heat alpha L*U -> 2 relu channels (we
    # give heat 4: with one tied pair F = B * (A * U) is a bilinear factorisation that LM left at a poor
    # local minimum, loss 8e-2 against the exact field's 3e-3, measured)
    acts = ["relu", "relu", "relu2", "relu2"] if args.pde == "fisher" else ["relu"] * 4
    convfd = _make_convfd(args.field, acts, cfg["init_scale"])
    trained = _euler_flow(convfd)
    initial_error = rollout_errors(trained, test)[-1]
    with torch.no_grad():
        val_inc_initial = float((trained(x_val) - y_val).norm() / (y_val - x_val).norm())
    reaction = (1.0, -1.0) if args.pde == "fisher" else (0.0, 0.0)
    exact_field = exact_convfd(ALPHA, DX, "5pt", reaction)
    exact = _euler_flow(exact_field)
    fd_scheme = _euler_flow(field)
    baseline = CircularCNN(width=4, kernel_size=3).to(torch.float64)

    t1 = time.perf_counter()
    # multi-start: the loss has poor local minima (a relu channel of the pair that carries the Laplacian
    # goes silent on the positive Fisher data); the chosen start is then trained on all pairs
    restart_losses, restart_scores, chosen = _restarts(cfg, args.field, acts, convfd, x_shard, y_shard,
                                                       tiles[split["val"]])
    fit = _train(trained, x_shard, y_shard, cfg["iterations"], out / "convfd.ckpt", "ConvFD (LM)", args.time_budget)
    train_seconds = time.perf_counter() - t1
    t2 = time.perf_counter()
    fit_b = _train(baseline, x_shard, y_shard, cfg["baseline_iterations"], out / "baseline.ckpt", "baseline (LM)")
    baseline_seconds = time.perf_counter() - t2
    if args.ddp:
        dn.train.shutdown_distributed()
    if not main_rank:
        return None
    # written only now: a run refused at training (e.g. a checkpoint of another run in --out) leaves --out as it was
    _save_data(out, args, cfg, tiles, split, test, oob, ref_error)

    # ---- evaluation ------------------------------------------------------------------------------
    with torch.no_grad():
        val = float(_rel(trained(x_val), y_val).mean())
        val_inc = float((trained(x_val) - y_val).norm() / (y_val - x_val).norm())
    curves = {name: {"test": rollout_errors(m, test), "out_of_band": rollout_errors(m, oob)}
              for name, m in (("trained", trained), ("exact", exact), ("baseline", baseline), ("fd", fd_scheme))}
    with torch.no_grad():
        a, b = test[:, 0:1].clone(), test[:, 0:1].clone()
        for _ in range(STEPS):
            a, b = exact(a), fd_scheme(b)
        exact_vs_fd = float((a - b).abs().max())
    params = sum(p.numel() for p in convfd.parameters())
    metrics = {
        "pde": args.pde, "quick": args.quick, "seed": args.seed, "grid": n, "tile": tile, "alpha": ALPHA,
        "dt": DT, "dx": DX, "steps": STEPS, "model": f"3 Euler substeps of {type(convfd).__name__}(1, {len(acts)}, 3x3, {acts})",
        "field": args.field,
        "rel_error_40": curves["trained"]["test"][-1],
        "rel_error_40_out_of_band": curves["trained"]["out_of_band"][-1],
        "rel_error_40_baseline": curves["baseline"]["test"][-1],
        "rel_error_40_baseline_out_of_band": curves["baseline"]["out_of_band"][-1],
        "rel_error_40_exact": curves["exact"]["test"][-1],
        "rel_error_40_exact_out_of_band": curves["exact"]["out_of_band"][-1],
        "rel_error_40_fd_scheme": curves["fd"]["test"][-1],
        "exact_vs_fd_scheme_max_abs_40": exact_vs_fd,
        "rel_error_40_initial": initial_error,
        "reference_model_rel_error_40": REFERENCE_MODEL[args.pde],
        "reference_time_error": ref_error,
        "val_rel_error_1step": val, "val_increment_rel_error": val_inc,
        "val_increment_rel_error_initial": val_inc_initial,
        "train_loss_final": fit.end_loss,
        "train_iterations": fit.steps_done, "restart_losses": restart_losses, "restart_chosen": chosen,
        "restart_validation_errors": restart_scores, "train_seconds": train_seconds, "data_seconds": data_seconds,
        "baseline_train_seconds": baseline_seconds, "total_seconds": time.perf_counter() - t0,
        "parameters": params, "parameters_baseline": sum(p.numel() for p in baseline.parameters()),
        "parameters_exact": sum(p.numel() for p in exact_field.parameters()),
        "world_size": info.world_size, "threads": args.threads,
        "train_pairs": int(x_train.shape[0]), "test_trajectories": cfg["test"], "out_of_band_trajectories": cfg["oob"],
        "curves": curves, "train_losses": _losses_after(fit), "baseline_losses": _losses_after(fit_b),
        "linearised_stencil_moments": _moments_table(convfd, exact_field, field, args.pde, n),
        "hidden_kernel_moments": [kernel_moments(convfd.A[j, 0].detach(), DX) for j in range(convfd.hidden)],
    }
    # the slides' one-step error splitting on held-out states at steps 0, 13, 26, 39 (dynnets.applications.pde.error_split)
    at = [0, 13, 26, STEPS - 1]
    split = error_split(trained, lambda m: _field(args.pde, PeriodicGrid2D(m, n * DX)),
                        test[:4, at].reshape(-1, 1, n, n), next_states=test[:4, [k + 1 for k in at]].reshape(-1, 1, n, n))
    metrics["error_split"] = split["summary"]
    save_figure(plot_error_split(split, f"{args.pde}, one step of the trained ConvFD"), out / "error_split.png")
    write_json(out / "metrics.json", metrics)
    _figures(out, curves, test, trained, baseline, args.pde)
    print(f"{args.pde}: grid {n}x{n}, {metrics['train_pairs']} training pairs ({tile}x{tile} tiles), "
          f"data {data_seconds:.0f} s, training {train_seconds:.0f} s (+ baseline {baseline_seconds:.0f} s)")
    print(f"{'model':<22}{'rel err @40':>14}{'out of band':>14}")
    for label, key in (("trained ConvFD", "trained"), ("exact construction", "exact"), ("FD scheme", "fd"),
                       ("baseline CNN", "baseline")):
        print(f"{label:<22}{curves[key]['test'][-1]:>14.3e}{curves[key]['out_of_band'][-1]:>14.3e}")
    print(f"{'untrained ConvFD':<22}{initial_error:>14.3e}")
    print(f"{'reference model':<22}{REFERENCE_MODEL[args.pde]:>14.3e}   (reported, 100x100)")
    print(f"reference solver time error (step halving): {ref_error:.1e}; exact vs FD scheme max |diff|: "
          f"{exact_vs_fd:.1e}")
    es = split["summary"]
    print(f"error split of one step (max over {es['states']} states, max-norm): measured {es['measured_total']['max']:.2e} "
          f"<= bound {es['bound_sum']['max']:.2e} [spatial {es['spatial']['max']:.2e}, classical "
          f"{es['classical']['max']:.2e}, network {es['network_bound']['max']:.2e}]; holds on every state: "
          f"{es['bound_holds_every_state']}; dominant: {es['dominant_term_bound']}")
    return metrics


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
