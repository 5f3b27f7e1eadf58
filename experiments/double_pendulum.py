"""Learning the double pendulum's flow map: an implicit symplectic network vs an RK4 ResNet vs a separable one.

The double pendulum (dynnets.systems.DoublePendulum: unit masses and rods, g = 9.81) has a non-separable
Hamiltonian H(q, p) = p^T M(q)^-1 p / 2 + V(q). Data: pairs (x(t), x(t + dt)), dt = 0.05, along
trajectories of a fine RK4 reference started at energies H - H_min < 2 (angles up to about 1 rad).
Models, one step per dt and about 385 parameters each, trained with Adam on the one-step MSE
(dynnets.train.fit, cosine schedule):

(a) GaussLegendre(2) (order 4, implicit, symplectic) on GeneralHamiltonian(2, 64): H_theta a network of
    (q, p) jointly; the network is a symplectic map by construction (Newton stage solves, IFT gradients);
(b) RK4 on Dense(4, 43): an unstructured ResNet-style field;
(c) StormerVerlet on the separable Hamiltonian(2, 48): symplectic, but H_theta = T(p) + V(q) cannot
    represent the q-dependent kinetic energy.

Reported: one-step test MSE; the true energy error max_k |H(x_k) - H(x_0)| over a rollout of the trained
map from the test states (10^4 steps, 1000 with --quick); its growth (maximum over the last tenth of the
rollout / over the first tenth: bounded near 1, drifting >> 1); parameters; training time; the
symplecticity defect of each trained map (float64). Figures: energy error against step, and the angles
of one test trajectory.

    python -m experiments.double_pendulum [--quick] [--seed S] [--out DIR] [--device cpu|cuda] [--dtype float64|float32]
"""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli

from . import _structure_common as common

DT = 0.05
SUBSTEPS = 20
ENERGY_MAX = 2.0               # above the minimum -3 g: angles up to about 1 rad, mostly regular motion
GL_WIDTH = 64                  # GeneralHamiltonian(2, 64): 64 x (4 + 1 + 1) = 384 parameters
DENSE_WIDTH = 43               # Dense(4, 43): 43 x 9 = 387 parameters
SEPARABLE_WIDTH = 48           # Hamiltonian(2, 48): 2 potentials x 48 x 4 = 384 parameters
#: the numbers reported over seeds: the symplectic network's accuracy and bounded energy
HEADLINE = {"models.symplectic.test_mse": "min", "models.symplectic.energy_error": "min",
            "models.symplectic.energy_growth": "min", "models.resnet.test_mse": "min"}
KINDS = {"symplectic": "Gauss-Legendre 2, general H", "resnet": "RK4, Dense", "separable": "Stormer-Verlet, T(p) + V(q)"}
QUICK = {"train_traj": 24, "test_traj": 8, "traj_len": 20, "epochs": 40, "batch": 64, "lr": 5e-3, "rollout": 1000}
FULL = {"train_traj": 128, "test_traj": 32, "traj_len": 40, "epochs": 300, "batch": 256, "lr": 5e-3, "rollout": 10_000}


def sample_states(system, n: int, gen: torch.Generator) -> torch.Tensor:
    """States (q1, q2, p1, p2) uniform in [-1, 1]^2 x [-3, 3]^2 with H - H_min < ENERGY_MAX."""
    h_min = float(system.hamiltonian(torch.zeros(1, 4, dtype=torch.float64)))
    box = torch.tensor([1.0, 1.0, 3.0, 3.0], dtype=torch.float64)
    keep = []
    while sum(k.shape[0] for k in keep) < n:
        x = (torch.rand(8 * n, 4, generator=gen, dtype=torch.float64) * 2 - 1) * box
        keep.append(x[system.hamiltonian(x) - h_min < ENERGY_MAX])
    return torch.cat(keep)[:n]


def network(kind: str, dtype, device) -> dn.Flow:
    if kind == "symplectic":
        step = dn.Step(dn.fields.GeneralHamiltonian(2, GL_WIDTH), dn.methods.GaussLegendre(2), DT)
    elif kind == "resnet":
        step = dn.Step(dn.fields.Dense(4, DENSE_WIDTH), dn.methods.RK4(), DT)
    else:
        step = dn.Step(dn.fields.Hamiltonian(2, SEPARABLE_WIDTH), dn.methods.StormerVerlet(), DT)
    return dn.Flow([step]).to(device=device, dtype=dtype)


def evaluate(kind: str, model, system, data: dict, rollout: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Test error, energy error along the rollout and its growth, symplecticity defect of the trained map."""
    x0 = data["test"][0].to(data["x_te"])
    roll = common.rollout(model, x0, rollout).to("cpu", torch.float64)          # (rollout + 1, batch, 4)
    finite = torch.isfinite(roll).all(dim=(1, 2))
    err = (system.hamiltonian(roll) - system.hamiltonian(data["test"][0])).abs().amax(dim=1)
    tenth = rollout // 10
    probe = data["test"][0][:8]
    out = {
        "test_mse": common.mse(model, data["x_te"], data["y_te"]),
        "energy_error": float(err[finite].max()),
        "diverged_at_step": None if bool(finite.all()) else int((~finite).nonzero()[0]),
        "energy_growth": (common.finite_or_none(float(err[-tenth:].max() / err[1:tenth + 1].max()))
                          if bool(finite.all()) else None),
        "symplecticity_defect": dn.testing.symplecticity_defect(model, probe),
        "jacobian_norm": float(torch.linalg.matrix_norm(dn.testing.jacobian(model, probe), ord=2).max()),
        "guarantees": sorted(repr(p) for p in model.guarantees),
        "params": common.n_params(model),
    }
    return out, err, roll[:, 0, :2]


RUNNER = Runner("double_pendulum", __doc__, headline=HEADLINE)


def main(argv=None) -> dict:
    return RUNNER.main(run, argv)


def run(args, seed: int, out) -> dict:
    device, dtype = args.torch_device, args.torch_dtype
    cfg = QUICK if args.quick else FULL
    system = dn.systems.DoublePendulum().double()
    reference = common.reference_flow(system, DT, SUBSTEPS)
    gen = torch.Generator().manual_seed(seed)
    train = common.rollout(reference, sample_states(system, cfg["train_traj"], gen), cfg["traj_len"])
    test = common.rollout(reference, sample_states(system, cfg["test_traj"], gen), cfg["traj_len"])
    data = {"test": test,
            "x_te": test[:-1].reshape(-1, 4).to(device, dtype), "y_te": test[1:].reshape(-1, 4).to(device, dtype)}
    x_tr, y_tr = train[:-1].reshape(-1, 4).to(device, dtype), train[1:].reshape(-1, 4).to(device, dtype)

    metrics = {"experiment": "double_pendulum", "quick": args.quick, "seed": seed, "dtype": args.dtype,
               "dt": DT, "energy_max": ENERGY_MAX, "rollout_steps": cfg["rollout"], "config": cfg,
               "eps": torch.finfo(dtype).eps, "models": {}}
    curves = {}
    for kind in KINDS:
        torch.manual_seed(seed)
        model = network(kind, dtype, device)
        t0 = time.perf_counter()
        common.fit(model, x_tr, y_tr, epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch"], seed=seed,
                   desc=f"double pendulum/{kind}")
        seconds = time.perf_counter() - t0
        result, err, angles = evaluate(kind, model, system, data, cfg["rollout"])
        metrics["models"][kind] = {**result, "train_seconds": seconds, "description": KINDS[kind]}
        curves[kind] = (err, angles)
    reference_angles = common.rollout(reference, test[0][:1], 400)[:, 0, :2]
    metrics["figures"] = plot(curves, reference_angles, out, dtype)
    print_table(metrics)
    return metrics


def print_table(metrics: dict) -> None:
    print(f"{'model':11s} {'params':>6s} {'test MSE':>10s} {'energy err':>11s} {'growth':>8s} {'train s':>8s} "
          f"{'sympl. defect':>14s}")
    for kind, m in metrics["models"].items():
        growth = "-" if m["energy_growth"] is None else f"{m['energy_growth']:.2f}"
        print(f"{kind:11s} {m['params']:6d} {m['test_mse']:10.3e} {m['energy_error']:11.3e} {growth:>8s} "
              f"{m['train_seconds']:8.1f} {m['symplecticity_defect']:14.3e}")


def plot(curves: dict, reference_angles: torch.Tensor, out, dtype) -> list[str]:
    eps = torch.finfo(dtype).eps
    styles = {"symplectic": "-", "resnet": "--", "separable": ":"}
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for kind, (err, _) in curves.items():
        steps = range(1, err.numel())
        ax.loglog(steps, err[1:].clamp_min(eps).nan_to_num(nan=1e300).numpy(), styles[kind], label=KINDS[kind])
    ax.set(title="double pendulum: max |H(x_k) - H(x_0)| over test states", xlabel="rollout step k",
           ylabel="energy error (true H)")
    ax.legend(fontsize=8)
    energy_png = common.save_figure(fig, out / "double_pendulum_energy.png")
    plt.close(fig)

    fig, axes = plt.subplots(2, 1, figsize=(6.5, 5), sharex=True)
    n = reference_angles.shape[0]
    t = torch.arange(n) * DT
    for k, ax in enumerate(axes):
        ax.plot(t, reference_angles[:, k].numpy(), color="k", lw=3, alpha=0.3, label="reference")
        for kind, (_, angles) in curves.items():
            ax.plot(t, angles[:n, k].numpy(), styles[kind], lw=1, label=KINDS[kind])
        ax.set(ylabel=f"q{k + 1}")
    axes[0].set(title="one test trajectory: the two angles")
    axes[1].set(xlabel="time")
    axes[0].legend(fontsize=7)
    angles_png = common.save_figure(fig, out / "double_pendulum_angles.png")
    plt.close(fig)
    return [energy_png.name, angles_png.name]


if __name__ == "__main__":
    run_cli(main)
