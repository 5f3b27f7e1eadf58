"""Learning the flow map of mass-conserving systems: a MassPreserving network vs an unstructured ResNet.

Two systems whose total 1^T x is conserved: the SIR epidemic model and the 3-D skew system of the seed
slides (dynnets.systems.SIR, SkewMass3D). Data: pairs (x(t), x(t + dt)) along trajectories of a fine
RK4 reference. Models: `layers` explicit Euler steps of dn.fields.MassPreserving (guaranteed
LinearInvariant(ones) by construction) and of dn.fields.Dense (a plain ResNet with the same number of
parameters), trained with Adam on the one-step MSE. Reported: test one-step MSE and the drift
max_k |1^T x_k - 1^T x_0| of each model along `rollout` composed steps from the test initial states.

    python -m experiments.mass [--quick] [--seed S] [--out DIR] [--device cpu|cuda] [--dtype float64|float32]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

import dynnets as dn
from dynnets.applications.runner import Runner, check_rollout, run_cli

from . import _structure_common as common

DT = 0.1          # time between samples, i.e. the flow map the networks learn
SUBSTEPS = 20     # RK4 steps per DT for the reference
LAYERS = 4        # Euler steps per network (each with its own field), h = DT / LAYERS
WIDTH = 32
ROLLOUT = 1000
BOUND = 3.0       # reference trajectories must stay in |y|_inf <= BOUND (see trajectories)
QUICK = {"train_traj": 24, "test_traj": 8, "traj_len": 20, "epochs": 60, "batch": 64, "lr": 5e-3,
         "plot_steps": 100}
FULL = {"train_traj": 128, "test_traj": 32, "traj_len": 40, "epochs": 600, "batch": 256, "lr": 5e-3,
        "plot_steps": 200}


def sample_sir(n: int, gen: torch.Generator) -> torch.Tensor:
    """Population fractions (S, I, R) >= 0 summing to 1 with at least 1% infected."""
    u = -torch.log(torch.rand(n, 3, generator=gen, dtype=torch.float64))  # Dirichlet(1, 1, 1)
    x = u / u.sum(1, keepdim=True)
    x[:, 1] = x[:, 1].clamp_min(0.01)
    return x / x.sum(1, keepdim=True)


def sample_box(n: int, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, 3, generator=gen, dtype=torch.float64) * 2 - 1) * 0.5


SYSTEMS = {
    "sir": (dn.systems.SIR(beta=3.0, gamma=1.0), sample_sir),
    "skew3d": (dn.systems.SkewMass3D(), sample_box),
}


def trajectories(field, sample, n: int, steps: int, gen: torch.Generator) -> torch.Tensor:
    """Reference states at times 0, DT, ..., steps DT of n trajectories: shape (steps + 1, n, 3), float64.

    The slides' 3-D system blows up in finite time from some states (y1' = y3 (y2 - y1^2) grows
    like y1^2), so initial states whose reference trajectory leaves the box |y|_inf <= BOUND within the
    horizon are discarded and redrawn; SIR never leaves the simplex.
    """
    flow = common.reference_flow(field.double(), DT, SUBSTEPS)
    kept = []
    for _ in range(20):
        traj = common.rollout(flow, sample(2 * n, gen), steps)
        bounded = torch.isfinite(traj).all(dim=(0, 2)) & (traj.abs().amax(dim=(0, 2)) <= BOUND)
        kept.append(traj[:, bounded])
        if sum(k.shape[1] for k in kept) >= n:
            return torch.cat(kept, dim=1)[:, :n]
    raise ValueError(f"could not draw {n} initial states whose reference trajectories stay in |y| <= {BOUND}")


def pairs(traj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return traj[:-1].reshape(-1, traj.shape[-1]), traj[1:].reshape(-1, traj.shape[-1])


def network(make_field, dtype, device) -> dn.Flow:
    return dn.Flow([dn.Step(make_field(), dn.methods.Euler(), DT / LAYERS) for _ in range(LAYERS)]).to(
        device=device, dtype=dtype)


def run_system(name: str, cfg: dict, seed: int, device, dtype) -> tuple[dict, dict]:
    field, sample = SYSTEMS[name]
    gen = torch.Generator().manual_seed(seed)
    train_traj = trajectories(field, sample, cfg["train_traj"], cfg["traj_len"], gen)
    test_traj = trajectories(field, sample, cfg["test_traj"], cfg["traj_len"], gen)
    x_tr, y_tr = (t.to(device, dtype) for t in pairs(train_traj))
    x_te, y_te = (t.to(device, dtype) for t in pairs(test_traj))

    models = {
        "structured": network(lambda: dn.fields.MassPreserving(3, WIDTH), dtype, device),
        "baseline": network(lambda: dn.fields.Dense(3, WIDTH), dtype, device),
    }
    ones = torch.ones(3, device=device, dtype=dtype)
    x0 = test_traj[0].to(device, dtype)
    result, curves = {"params": {}}, {}
    for kind, model in models.items():
        torch.manual_seed(seed)
        common.fit(model, x_tr, y_tr, epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch"],
                   seed=seed, desc=f"{name}/{kind}")
        roll = common.rollout(model, x0, ROLLOUT)                      # (ROLLOUT + 1, batch, 3)
        if kind == "structured":  # the structured flow must stay finite; the ResNet may drift (recorded)
            check_rollout(roll, f"{name}: the MassPreserving network's {ROLLOUT}-step rollout", seed)
        deviation = ((roll @ ones) - (x0 @ ones)).abs().amax(dim=1)     # per step, max over batch
        finite = torch.isfinite(roll).all(dim=(1, 2))
        diverged_at = None if bool(finite.all()) else int((~finite).nonzero()[0])
        drift = float(deviation[finite].max())
        result[f"{kind}_test_mse"] = common.mse(model, x_te, y_te)
        result[f"{kind}_drift"] = drift
        result[f"{kind}_diverged_at_step"] = diverged_at
        result[f"{kind}_state_scale"] = float(roll[finite].abs().sum(-1).max())
        result["params"][kind] = common.n_params(model)
        result[f"{kind}_guarantees"] = sorted(repr(p) for p in model.guarantees)
        curves[kind] = (deviation.cpu(), roll[: cfg["plot_steps"] + 1, 0].cpu())
    curves["reference"] = common.rollout(common.reference_flow(field.double(), DT, SUBSTEPS),
                                         test_traj[0][:1], cfg["plot_steps"])[:, 0]
    return result, curves


def plot(curves_by_system: dict, out, dtype) -> list[str]:
    eps = torch.finfo(dtype).eps
    fig, axes = plt.subplots(1, len(curves_by_system), figsize=(5.5 * len(curves_by_system), 3.8))
    for ax, (name, curves) in zip(axes, curves_by_system.items(), strict=True):
        for kind, style in (("structured", "-"), ("baseline", "--")):
            dev = curves[kind][0].clamp_min(eps / 10)
            ax.semilogy(dev.numpy(), style, label=kind)
        ax.axhline(eps, color="grey", lw=0.8, ls=":", label="machine eps")
        ax.set(title=f"{name}: |1^T x_k - 1^T x_0|", xlabel=f"rollout step k ({LAYERS} network layers each)", ylabel="mass drift")
        ax.legend()
    drift_png = common.save_figure(fig, out / "mass_drift.png")
    plt.close(fig)

    fig, axes = plt.subplots(1, len(curves_by_system), figsize=(5.5 * len(curves_by_system), 3.8))
    for ax, (name, curves) in zip(axes, curves_by_system.items(), strict=True):
        ref = curves["reference"].clone()
        ref[~(ref.abs() <= 2 * BOUND)] = float("nan")  # the reference may blow up after the data horizon
        ref = ref.numpy()
        t = [k * DT for k in range(ref.shape[0])]
        for j in range(3):
            ax.plot(t, ref[:, j], color=f"C{j}", lw=2, alpha=0.35, label=f"x{j + 1} reference")
            ax.plot(t, curves["structured"][1][:, j].numpy(), color=f"C{j}", ls="-", lw=1)
            ax.plot(t, curves["baseline"][1][:, j].numpy(), color=f"C{j}", ls="--", lw=1)
        ax.set(title=f"{name}: reference (thick), MassPreserving (-), ResNet (--)", xlabel="t")
        ax.legend(fontsize=7)
    traj_png = common.save_figure(fig, out / "mass_trajectories.png")
    plt.close(fig)
    return [drift_png.name, traj_png.name]


RUNNER = Runner("mass", __doc__, headline={f"systems.{system}.{kind}_{what}": "min" for system in SYSTEMS
                                           for kind in ("structured", "baseline") for what in ("test_mse", "drift")})


def main(argv=None) -> dict:
    return RUNNER.main(run, argv)


def run(args, seed: int, out) -> dict:
    device, dtype = args.torch_device, args.torch_dtype
    cfg = QUICK if args.quick else FULL
    systems, curves = {}, {}
    for name in SYSTEMS:
        systems[name], curves[name] = run_system(name, cfg, seed, device, dtype)
    metrics = {
        "experiment": "mass", "quick": args.quick, "seed": seed, "dtype": args.dtype,
        "dt": DT, "layers": LAYERS, "width": WIDTH, "rollout_steps": ROLLOUT,
        "composed_steps": ROLLOUT * LAYERS, "eps": torch.finfo(dtype).eps, "config": cfg,
        "systems": systems,
        "aggregate": "the top-level *_test_mse and *_drift are the maxima over the systems",
    }
    for key in ("structured_test_mse", "baseline_test_mse", "structured_drift", "baseline_drift",
                "structured_state_scale"):
        metrics[key] = max(s[key] for s in systems.values())
    metrics["figures"] = plot(curves, out, dtype)

    print(f"{'system':8s} {'model':10s} {'params':>6s} {'test MSE':>10s} {'mass drift':>11s}")
    for name, s in systems.items():
        for kind in ("structured", "baseline"):
            diverged = "" if s[f"{kind}_diverged_at_step"] is None else f" (diverged at {s[f'{kind}_diverged_at_step']})"
            print(f"{name:8s} {kind:10s} {s['params'][kind]:6d} {s[f'{kind}_test_mse']:10.3e} "
                  f"{s[f'{kind}_drift']:11.3e}{diverged}")
    return metrics


if __name__ == "__main__":
    run_cli(main)
