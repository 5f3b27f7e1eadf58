"""Learning the pendulum's flow map: a symplectic network vs an unstructured ResNet.

The pendulum H(q, p) = p^2 / 2 - cos q (dynnets.systems.Pendulum). Data: pairs (x(t), x(t + dt)) along
trajectories of a fine RK4 reference, started inside the libration region (H < 0.8). Models: `layers`
Stormer-Verlet steps of dn.fields.Hamiltonian fields (each with its own separable H_theta; the network
is a symplectic map by construction) and `layers` explicit Euler steps of dn.fields.Dense (a plain
ResNet with about the same number of parameters), trained with Adam on the one-step MSE. Reported:
test one-step MSE; the true energy error max_k |H(x_k) - H(x_0)| over a 10^4-step rollout (bounded for
the symplectic network, drifting for the ResNet); the growth of that error (its maximum over the last
tenth of the rollout divided by that over the first tenth); and the symplecticity defect of both
trained networks, measured in float64 (round-off for the symplectic one).

    python -m experiments.hamiltonian [--quick] [--seed S] [--out DIR] [--device cpu|cuda] [--dtype float64|float32]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

import dynnets as dn
from dynnets.applications.runner import Runner, check_rollout, run_cli

from . import _structure_common as common

DT = 0.1
SUBSTEPS = 20
LAYERS = 4
WIDTH = 16                     # Hamiltonian(1, 16): 2 potentials x 3 x 16 = 96 parameters per layer
BASE_WIDTH = 19                # Dense(2, 19): 2 x 19 + 19 + 19 x 2 = 95 parameters per layer
ROLLOUT = 10_000
ENERGY_MAX = 0.8
QUICK = {"train_traj": 24, "test_traj": 8, "traj_len": 20, "epochs": 60, "batch": 64, "lr": 5e-3}
FULL = {"train_traj": 128, "test_traj": 32, "traj_len": 40, "epochs": 600, "batch": 256, "lr": 5e-3}


def sample_states(n: int, gen: torch.Generator) -> torch.Tensor:
    """States (q, p) uniform in [-2.5, 2.5] x [-1.8, 1.8] with H < ENERGY_MAX (inside the separatrix)."""
    pendulum = dn.systems.Pendulum()
    keep = []
    while sum(k.shape[0] for k in keep) < n:
        x = torch.rand(4 * n, 2, generator=gen, dtype=torch.float64) * torch.tensor([5.0, 3.6]) - torch.tensor([2.5, 1.8])
        keep.append(x[pendulum.hamiltonian(x) < ENERGY_MAX])
    return torch.cat(keep)[:n]


def network(kind: str, dtype, device) -> dn.Flow:
    if kind == "structured":
        steps = [dn.Step(dn.fields.Hamiltonian(1, WIDTH), dn.methods.StormerVerlet(), DT / LAYERS)
                 for _ in range(LAYERS)]
    else:
        steps = [dn.Step(dn.fields.Dense(2, BASE_WIDTH), dn.methods.Euler(), DT / LAYERS) for _ in range(LAYERS)]
    return dn.Flow(steps).to(device=device, dtype=dtype)


RUNNER = Runner("hamiltonian", __doc__, headline={
    "structured_test_mse": "min", "structured_drift": "min", "structured_energy_growth": "min",
    "baseline_test_mse": "min", "baseline_drift": "min"})


def main(argv=None) -> dict:
    return RUNNER.main(run, argv)


def run(args, seed: int, out) -> dict:
    device, dtype = args.torch_device, args.torch_dtype
    cfg = QUICK if args.quick else FULL
    pendulum = dn.systems.Pendulum().double()
    reference = common.reference_flow(pendulum, DT, SUBSTEPS)
    gen = torch.Generator().manual_seed(seed)
    train = common.rollout(reference, sample_states(cfg["train_traj"], gen), cfg["traj_len"])
    test = common.rollout(reference, sample_states(cfg["test_traj"], gen), cfg["traj_len"])
    x_tr, y_tr = train[:-1].reshape(-1, 2).to(device, dtype), train[1:].reshape(-1, 2).to(device, dtype)
    x_te, y_te = test[:-1].reshape(-1, 2).to(device, dtype), test[1:].reshape(-1, 2).to(device, dtype)
    x0 = test[0].to(device, dtype)
    H0 = pendulum.hamiltonian(test[0])
    probe = test[0][:8]  # float64 points where the trained maps' Jacobians are measured

    metrics = {"experiment": "hamiltonian", "quick": args.quick, "seed": seed, "dtype": args.dtype,
               "dt": DT, "layers": LAYERS, "rollout_steps": ROLLOUT, "eps": torch.finfo(dtype).eps,
               "config": cfg, "params": {}}
    curves = {}
    tenth = ROLLOUT // 10
    for kind in ("structured", "baseline"):
        torch.manual_seed(seed)
        model = network(kind, dtype, device)
        common.fit(model, x_tr, y_tr, epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch"],
                   seed=seed, desc=f"pendulum/{kind}")
        roll = common.rollout(model, x0, ROLLOUT).to("cpu", torch.float64)          # (ROLLOUT + 1, batch, 2)
        if kind == "structured":  # bounded orbits: non-finite or 10x the largest initial state is divergence
            check_rollout(roll, f"the symplectic network's {ROLLOUT}-step rollout", seed, grow=10.0)
        finite = torch.isfinite(roll).all(dim=(1, 2))
        err = (pendulum.hamiltonian(roll) - H0).abs().amax(dim=1)                   # per step, max over batch
        err_ok = err[finite]
        metrics[f"{kind}_test_mse"] = common.mse(model, x_te, y_te)
        metrics[f"{kind}_drift"] = float(err_ok.max())
        metrics[f"{kind}_diverged_at_step"] = None if bool(finite.all()) else int((~finite).nonzero()[0])
        metrics[f"{kind}_energy_growth"] = (common.finite_or_none(float(err[-tenth:].max() / err[1:tenth + 1].max()))
                                            if bool(finite.all()) else None)
        metrics[f"{kind}_symplecticity_defect"] = dn.testing.symplecticity_defect(model, probe)
        metrics[f"{kind}_jacobian_norm"] = float(torch.linalg.matrix_norm(
            dn.testing.jacobian(model, probe), ord=2).max())
        metrics[f"{kind}_guarantees"] = sorted(repr(p) for p in model.guarantees)
        metrics["params"][kind] = common.n_params(model)
        curves[kind] = (err, roll[:, 0])
    metrics["figures"] = plot(curves, reference, test[0][:1], out, dtype)

    print(f"{'model':10s} {'params':>6s} {'test MSE':>10s} {'energy err':>11s} {'growth':>8s} {'sympl. defect':>14s}")
    for kind in ("structured", "baseline"):
        growth = metrics[f"{kind}_energy_growth"]
        print(f"{kind:10s} {metrics['params'][kind]:6d} {metrics[f'{kind}_test_mse']:10.3e} "
              f"{metrics[f'{kind}_drift']:11.3e} {'-' if growth is None else f'{growth:8.2f}':>8s} "
              f"{metrics[f'{kind}_symplecticity_defect']:14.3e}")
    return metrics


def plot(curves: dict, reference, x_start: torch.Tensor, out, dtype) -> list[str]:
    eps = torch.finfo(dtype).eps
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for kind, style in (("structured", "-"), ("baseline", "--")):
        ax.loglog(range(1, ROLLOUT + 1), curves[kind][0][1:].clamp_min(eps).numpy(), style,
                  label={"structured": "symplectic network (Stormer-Verlet)", "baseline": "ResNet (Euler, Dense)"}[kind])
    ax.set(title="pendulum: max |H(x_k) - H(x_0)| over test states", xlabel="rollout step k", ylabel="energy error")
    ax.legend()
    energy_png = common.save_figure(fig, out / "hamiltonian_energy.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ref = common.rollout(reference, x_start, 200)[:, 0].numpy()
    ax.plot(ref[:, 0], ref[:, 1], color="k", lw=3, alpha=0.3, label="reference (200 steps)")
    for kind, style in (("structured", "-"), ("baseline", "--")):
        traj = curves[kind][1].numpy()
        ax.plot(traj[:, 0], traj[:, 1], style, lw=0.4, label=f"{kind} ({ROLLOUT} steps)")
    ax.set(title="pendulum phase portrait, one test orbit", xlabel="q", ylabel="p")
    ax.legend(fontsize=7)
    phase_png = common.save_figure(fig, out / "hamiltonian_phase.png")
    plt.close(fig)
    return [energy_png.name, phase_png.name]


if __name__ == "__main__":
    run_cli(main)
