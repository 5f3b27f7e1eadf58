"""Adversarial robustness: a certified 1-Lipschitz network against an unconstrained ResNet of similar size.

    python -m experiments.robustness [--quick] [--seed S] [--out DIR] [--data CIFAR_DIR] [--arch dense|conv]

Data: scikit-learn's 8x8 digits (default, offline; pixels scaled to [0, 1]) or, with ``--data DIR``,
CIFAR-10 from the standard binary batches in DIR. Both networks are trained with the multi-class hinge
loss. Reported per model, over a range of L2 radii eps: clean accuracy, accuracy under L2-PGD, and
certified accuracy (margin > sqrt(2) L eps with L = model.lipschitz_bound(), exact norms). A soundness
check fails the run if any input is certified yet broken by PGD. Writes DIR/metrics.json and
DIR/accuracy_vs_eps.png.

Lipschitz network: x -> (x - mean) -> [switching pairs: expansive step with derived h_E, then clamped
contractive step; dense (orthogonal A) or circular-conv] -> linear head with ||W||_2 <= 1; its bound
lipschitz_bound() multiplies the exact per-layer bounds (including the normalisation) and is <= 1.
Baseline: the same normalisation and head size, a ResNet of Euler steps of B sigma(A x + b) (Dense or
untied ConvGradient fields), one step per switching pair (two weight matrices per step, as a pair has),
nothing constrained.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

import dynnets as dn  # noqa: E402
from dynnets.applications.adversarial import (  # noqa: E402
    certified,
    load_cifar10,
    multiclass_hinge,
    pgd_l2,
    soundness_violations,
)
from dynnets.applications.runner import Runner, run_cli  # noqa: E402
from dynnets.constraints import BoundedLinear, Chain, Normalize, ZeroPad  # noqa: E402
from dynnets.errors import ConfigError  # noqa: E402
from dynnets.io import save_figure  # noqa: E402

DIGITS_EPS = [round(0.125 * i, 3) for i in range(13)]  # 0, 0.125, ..., 1.5
CIFAR_EPS = [0.0, 36 / 255, 0.25, 0.5, 0.75, 1.0]


def load_digits(gen: torch.Generator, quick: bool):
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.tensor(d.data, dtype=torch.float64) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=gen)
    n_test = 450
    test, train = perm[:n_test], perm[n_test:]
    if quick:
        test = test[:200]
    return x[train], y[train], x[test], y[test]


def load_cifar(directory, quick: bool):
    return load_cifar10(directory, max_train=500 if quick else None, max_test=100 if quick else 1024)


def build(kind: str, arch: str, shape: tuple, mean: torch.Tensor, cfg: dict) -> Chain:
    """The 1-Lipschitz network (kind='lipschitz') or the unconstrained ResNet (kind='baseline')."""
    depth, width = cfg["pairs"], cfg["width"]
    layers = [Normalize(mean, 1.0)]
    if arch == "dense":
        dim = math.prod(shape)
        layers = [Normalize(mean.reshape(-1), 1.0)]
        if kind == "lipschitz":
            steps = [dn.constraints.switching_pair(dim, width, 1.0, rule="exact", learn_h=True) for _ in range(depth)]
        else:
            steps = [dn.Step(dn.fields.Dense(dim, width, "relu"), dn.methods.Euler(), 0.5) for _ in range(depth)]
        n_out = dim
    else:
        c_in, n1, n2 = shape
        ch = cfg["channels"]
        layers.append(ZeroPad(c_in, ch))
        if kind == "lipschitz":
            steps = [dn.constraints.conv_switching_pair(ch, ch, (n1, n2), learn_h=True) for _ in range(depth)]
        else:
            steps = [dn.Step(dn.fields.ConvGradient(ch, ch, (n1, n2), tied=False), dn.methods.Euler(), 0.5)
                     for _ in range(depth)]
        n_out = ch * n1 * n2
    layers.append(dn.Flow(steps))
    layers.append(BoundedLinear(n_out, 10, c=1.0 if kind == "lipschitz" else None))
    return Chain(layers)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def train(model, x, y, *, epochs: int, lr: float, margin: float, batch: int, gen: torch.Generator, desc: str):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    bar = tqdm(range(epochs), desc=desc, leave=False)
    loss = float("nan")
    for _ in bar:
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            out = multiclass_hinge(model(x[idx]), y[idx], margin)
            out.backward()
            opt.step()
            loss = float(out.detach())
            if not math.isfinite(loss):
                raise ConfigError(f"training diverged ({desc}): loss = {loss}; lower --lr (got {lr})")
        sched.step()
        bar.set_postfix(loss=f"{loss:.4f}")
    return loss


def evaluate(model, x, y, eps_list, *, pgd_steps: int, pgd_targets: int, box, lipschitz: float,
             desc: str) -> dict:
    model.eval()
    with torch.no_grad():
        logits = model(x)
    clean = float((logits.argmax(1) == y).double().mean())
    pgd_acc, cert_acc = [], []
    for eps in tqdm(eps_list, desc=desc, leave=False):
        robust = pgd_l2(model, x, y, eps, steps=pgd_steps, targets=pgd_targets, box=box)
        cert = certified(logits, y, lipschitz, eps)
        bad = soundness_violations(cert, robust)
        if bad:
            raise RuntimeError(f"soundness check failed ({desc}): {bad} inputs certified at eps={eps} with "
                               f"L={lipschitz} were broken by PGD; the Lipschitz bound is wrong")
        pgd_acc.append(float(robust.double().mean()))
        cert_acc.append(float(cert.double().mean()))
    return {"clean_accuracy": clean, "eps": list(eps_list), "pgd_accuracy": pgd_acc, "certified_accuracy": cert_acc}


def figure(metrics: dict, path, title: str):
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, color in (("lipschitz", "C0"), ("baseline", "C3")):
        m = metrics[name]
        ax.plot(m["eps"], m["pgd_accuracy"], "-o", color=color, label=f"{name}: L2-PGD")
        ax.plot(m["eps"], m["certified_accuracy"], "--s", color=color, label=f"{name}: certified", alpha=0.8)
    ax.set_xlabel("L2 radius eps")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def target(metrics: dict) -> dict:
    """At the first eps where the baseline's PGD accuracy is below 50%: the Lipschitz net's ratio."""
    b, lip = metrics["baseline"], metrics["lipschitz"]
    for i, eps in enumerate(b["eps"]):
        if b["pgd_accuracy"][i] < 0.5:
            ratio = lip["pgd_accuracy"][i] / max(b["pgd_accuracy"][i], 1e-12)
            return {"eps": eps, "baseline_pgd_accuracy": b["pgd_accuracy"][i],
                    "lipschitz_pgd_accuracy": lip["pgd_accuracy"][i],
                    "lipschitz_certified_accuracy": lip["certified_accuracy"][i],
                    "ratio": ratio, "met": bool(ratio >= 1.5)}
    return {"eps": None, "met": None, "note": "baseline PGD accuracy never fell below 50% on the eps grid"}


RUNNER = Runner("robustness", __doc__, headline={"lipschitz.clean_accuracy": "max", "baseline.clean_accuracy": "max"})
RUNNER.parser.add_argument("--data", default=None, help="directory with the CIFAR-10 binary batches (default: digits)")
RUNNER.parser.add_argument("--arch", choices=["dense", "conv"], default=None,
                           help="dense (default for digits) or circular-conv (default for CIFAR-10)")
RUNNER.parser.add_argument("--epochs", type=int, default=None)
RUNNER.parser.add_argument("--lr", type=float, default=None)
RUNNER.parser.add_argument("--margin", type=float, default=None, help="hinge-loss margin")


def validate(args) -> None:
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs must be a positive integer, got {args.epochs}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise ConfigError(f"--lr must be positive and finite, got {args.lr}")
    if args.margin is not None and not (math.isfinite(args.margin) and args.margin > 0):
        raise ConfigError(f"--margin must be positive and finite, got {args.margin}")
    if args.data is not None and not Path(args.data).is_dir():
        raise ConfigError(f"--data {args.data} is not a directory")


def main(argv=None) -> dict:
    return RUNNER.main(run, argv, validate=validate)


def run(args, seed: int, out: Path) -> dict:
    gen = torch.Generator().manual_seed(seed)
    device, dtype = args.torch_device, args.torch_dtype
    if args.data is None:
        dataset = "digits"
        x_tr, y_tr, x_te, y_te = load_digits(gen, args.quick)
        shape = (1, 8, 8)
        eps_list = [0.0, 0.25, 0.5, 0.75, 1.0] if args.quick else DIGITS_EPS
        arch = args.arch or "dense"
        cfg = {"pairs": 2 if args.quick else 4, "width": 128, "channels": 8,
               "epochs": 8 if args.quick else 60, "lr": 2e-3, "margin": 1.25, "batch": 64,
               "pgd_steps": 10 if args.quick else 50, "pgd_targets": 1 if args.quick else 3}
    else:
        dataset = "cifar10"
        x_tr, y_tr, x_te, y_te = load_cifar(args.data, args.quick)
        shape = (3, 32, 32)
        eps_list = CIFAR_EPS[:3] if args.quick else CIFAR_EPS
        arch = args.arch or "conv"
        cfg = {"pairs": 1 if args.quick else 4, "width": 512, "channels": 4 if args.quick else 16,
               "epochs": 1 if args.quick else 30, "lr": 1e-3, "margin": 0.3, "batch": 128,
               "pgd_steps": 3 if args.quick else 50, "pgd_targets": 1 if args.quick else 3}
    for key in ("epochs", "lr", "margin"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    x_tr = x_tr.reshape(-1, *shape).to(device, dtype)
    x_te = x_te.reshape(-1, *shape).to(device, dtype)
    y_tr, y_te = y_tr.to(device), y_te.to(device)
    if arch == "dense":
        x_tr, x_te = x_tr.flatten(1), x_te.flatten(1)
    mean = x_tr.mean(0, keepdim=True)[0] if arch == "dense" else x_tr.mean(dim=(0, 2, 3)).reshape(-1, 1, 1)

    metrics = {"dataset": dataset, "arch": arch, "quick": args.quick, "seed": seed, "config": cfg,
               "n_train": len(y_tr), "n_test": len(y_te)}
    models = {}
    for kind in ("lipschitz", "baseline"):
        torch.manual_seed(seed)
        model = build(kind, arch, shape, mean, cfg).to(device, dtype)
        t0 = time.time()
        final_loss = train(model, x_tr, y_tr, epochs=cfg["epochs"], lr=cfg["lr"], margin=cfg["margin"],
                           batch=cfg["batch"], gen=gen, desc=f"train {kind}")
        bound = model.lipschitz_bound()
        m = evaluate(model, x_te, y_te, eps_list, pgd_steps=cfg["pgd_steps"], pgd_targets=cfg["pgd_targets"],
                     box=(0.0, 1.0), lipschitz=bound, desc=f"attack {kind}")
        m.update({"lipschitz_bound": bound, "n_params": n_params(model), "final_train_loss": final_loss,
                  "seconds": round(time.time() - t0, 1)})
        metrics[kind] = m
        models[kind] = model
    metrics["lipschitz_bound"] = metrics["lipschitz"]["lipschitz_bound"]
    if metrics["lipschitz_bound"] > 1.0 + 1e-6:
        raise RuntimeError(f"the 1-Lipschitz network reports L = {metrics['lipschitz_bound']} > 1")
    metrics["target"] = target(metrics)

    figure(metrics, out / "accuracy_vs_eps.png", f"{dataset}: accuracy vs L2 radius")

    print(f"{dataset} ({arch}), test n={len(y_te)}; L(lipschitz) = {metrics['lipschitz_bound']:.6g}, "
          f"L(baseline) = {metrics['baseline']['lipschitz_bound']:.4g}")
    print(f"params: lipschitz {metrics['lipschitz']['n_params']}, baseline {metrics['baseline']['n_params']}")
    print(f"{'eps':>6} | {'lip PGD':>8} {'lip cert':>8} | {'base PGD':>8} {'base cert':>9}")
    for i, eps in enumerate(eps_list):
        lip, base = metrics["lipschitz"], metrics["baseline"]
        print(f"{eps:6.3f} | {lip['pgd_accuracy'][i]:8.3f} {lip['certified_accuracy'][i]:8.3f} | "
              f"{base['pgd_accuracy'][i]:8.3f} {base['certified_accuracy'][i]:9.3f}")
    print(f"target: {metrics['target']}")
    return metrics


if __name__ == "__main__":
    run_cli(main)
