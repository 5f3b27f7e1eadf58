"""Universal approximation by gradient and sphere-preserving flows (Presnov decomposition), measured.

    python -m experiments.presnov [--quick] [--seed S | --seeds A-B] [--out DIR] [--device cpu] [--dtype float64]

1. The decomposition f = grad U + X_S, U(x) = int_0^1 x . f(t x) dt (Gauss-Legendre in t, float64),
   of the damped-forced test field and of a cubic polynomial field: max |x . X_S(x)| against the
   round-off tolerance, with two negative controls (U = x . f(x) / 2, and a 1-point rule), and the
   skew form X_S = S(x) x.
2. The slides' constructive proof: Lie-Trotter compositions of the exact flows of grad U and X_S
   converge to the time-1 flow of f (error against the number of pieces).
3. Two target maps of R^3 (rotation-plus-shear; time-1 flow of the damped-forced system) learned by
   Flows alternating Gradient Euler steps (signs +1, -1, ...) and SpherePreserving Cayley steps, next to
   a Dense ResNet with the same parameter count: test error against the number of steps.
Writes DIR/metrics.json and DIR/presnov.png; the headline numbers (median and worst over --seeds) are the
relative test errors of each variant at the largest number of steps and the decomposition defect.
"""

from __future__ import annotations

import time

import torch
from tqdm import tqdm

import dynnets as dn
from dynnets.applications import presnov as approx
from dynnets.applications.runner import Runner, run_cli, save_figure

QUICK = dict(n_steps=[2, 4, 8], n_train=256, n_test=1024, adam=120, lbfgs=0, width=14,
             pieces=[1, 2, 4], substeps=4, n_decomp=2000, variants=["presnov", "dense"])
FULL = dict(n_steps=[2, 4, 8, 16], n_train=1024, n_test=8192, adam=1500, lbfgs=20, width=14,
            pieces=[1, 2, 4, 8, 16, 32, 64], substeps=8, n_decomp=20000, variants=["presnov", "presnov_convex", "dense"])
N_QUAD = 16


def cubic_field(x: torch.Tensor) -> torch.Tensor:
    """A polynomial field of degree 3: the 2-point rule is already exact for it."""
    x1, x2, x3 = x.unbind(-1)
    return torch.stack([x1 ** 3 + x2 * x3, x1 * x2 ** 2 - x3, x3 ** 3 + x1 * x2 * x3 + 1.0], dim=-1)


def check_decomposition(f, x: torch.Tensor, n: int) -> dict:
    grad_u, xs = approx.decompose(f, x, n)
    with torch.no_grad():
        fx = f(x)
    defect = approx.sphere_defect(x, xs)
    tol = approx.sphere_tolerance(x, fx, grad_u, n)
    skew = approx.sphere_skew(x, xs)
    # negative controls: a wrong potential, and a too-low-order rule
    xg = x.detach().requires_grad_(True)
    (g_wrong,) = torch.autograd.grad(0.5 * (xg * f(xg)).sum(), xg)
    _, xs_1pt = approx.decompose(f, x, 1)
    return {
        "quadrature_points": n,
        "max_defect": float(defect.max()),
        "max_ratio_to_tolerance": float((defect / tol).max()),
        "tolerance_rule": "|x.X_S| <= 1 * (n + dim) * eps * |x| (|f(x)| + |grad U(x)|), per point",
        "max_tolerance": float(tol.max()),
        "holds": bool((defect <= tol).all()),
        "quadrature_error_gradU_n_vs_2n": approx.quadrature_error(f, x, n),
        "negative_control_U_eq_half_x_dot_f": float(approx.sphere_defect(x, fx - g_wrong).max()),
        "negative_control_1_point_rule": float(approx.sphere_defect(x, xs_1pt).max()),
        "max_skew_asymmetry": float((skew + skew.transpose(-1, -2)).abs().max()),
        "max_Sx_minus_XS": float(((skew @ x.unsqueeze(-1)).squeeze(-1) - xs).norm(dim=-1).max()),
        "mean_norm_gradU": float(grad_u.norm(dim=-1).mean()),
        "mean_norm_XS": float(xs.norm(dim=-1).mean()),
    }


def build(variant: str, n_steps: int, width: int, dense_width: int):
    if variant == "presnov":
        return approx.presnov_flow(3, n_steps, width, signs="alternate")
    if variant == "presnov_convex":
        return approx.presnov_flow(3, n_steps, width, signs="negative")
    return approx.dense_resnet(3, n_steps, dense_width)


RUNNER = Runner("presnov", __doc__, headline={
    "decomposition_max_defect": "min", **{f"rel_error_{t}_{v}": "min" for t in ("rotation_shear", "damped_forced_flow")
                                          for v in ("presnov", "dense")}})


def main(argv=None) -> dict:
    return RUNNER.main(run, argv)


def learn_targets(cfg: dict, targets: dict, gen: torch.Generator, seed: int, device, dtype) -> dict:
    """Each target map learned by every variant at every number of steps: {target: {steps: {variant: ...}}}."""
    f64 = torch.float64
    x_train = 2 * torch.rand(cfg["n_train"], 3, generator=gen, dtype=f64) - 1
    x_test = 2 * torch.rand(cfg["n_test"], 3, generator=gen, dtype=f64) - 1
    width = cfg["width"]
    results: dict = {}
    total = len(targets) * len(cfg["n_steps"]) * len(cfg["variants"]) * (cfg["adam"] + cfg["lbfgs"])
    bar = tqdm(total=total, desc="presnov", unit="it", mininterval=1.0)
    for tname, target in targets.items():
        with torch.no_grad():
            y_train, y_test = target(x_train), target(x_test)
        xtr, ytr = x_train.to(device, dtype), y_train.to(device, dtype)
        xte, yte = x_test.to(device, dtype), y_test.to(device, dtype)
        results[tname] = {}
        for n_steps in cfg["n_steps"]:
            dense_width = approx.matched_dense_width(3, n_steps, width)
            row = {}
            for variant in cfg["variants"]:
                torch.manual_seed(seed * 1000 + n_steps)
                model = build(variant, n_steps, width, dense_width).to(device, dtype)
                fit = approx.fit_map(model, xtr, ytr, adam_steps=cfg["adam"], lr=1e-2,
                                     lbfgs_steps=cfg["lbfgs"], progress=bar.update)
                with torch.no_grad():
                    err = approx.relative_error(model(xte), yte)
                row[variant] = {"test_rel_error": err, "train_mse": fit["train_mse"],
                                "n_params": approx.n_params(model)}
            counts = [v["n_params"] for v in row.values()]
            row["param_mismatch"] = (max(counts) - min(counts)) / max(counts)
            results[tname][n_steps] = row
    bar.close()
    return results


def run(args, seed: int, out) -> dict:
    device, dtype = args.torch_device, args.torch_dtype
    cfg = QUICK if args.quick else FULL
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    f64 = torch.float64

    # 1. the decomposition, in float64 whatever --dtype says (it is a round-off measurement)
    target_field = dn.systems.DampedForced()
    xd = (2 * torch.rand(cfg["n_decomp"], 3, generator=gen, dtype=f64) - 1) * 2.0
    decomposition = {"damped_forced": check_decomposition(target_field, xd, N_QUAD),
                     "cubic_polynomial": check_decomposition(cubic_field, xd, 2)}

    # 2. Lie-Trotter splitting of the exact sub-flows against the time-1 flow
    flow_f = dn.Flow.repeat(dn.Step(target_field, dn.methods.RK4(), 1.0 / 200), 200)
    xt = 2 * torch.rand(256, 3, generator=gen, dtype=f64) - 1
    with torch.no_grad():
        ref = flow_f(xt)
        trotter = {k: approx.relative_error(approx.trotter_flow(target_field, xt, 1.0, k, substeps=cfg["substeps"]), ref)
                   for k in cfg["pieces"]}

    # 3. learning the targets
    targets = {"rotation_shear": approx.LinearMap(approx.rotation_shear()), "damped_forced_flow": flow_f}
    results = learn_targets(cfg, targets, gen, seed, device, dtype)
    largest = max(cfg["n_steps"])
    metrics = {
        "config": {k: v for k, v in cfg.items()} | {"quick": args.quick, "seed": seed, "dtype": args.dtype,
                                                     "gradient_sphere_width": cfg["width"]},
        "decomposition": decomposition,
        "decomposition_max_defect": decomposition["damped_forced"]["max_defect"],
        "trotter_relative_error": trotter,
        "approximation": results,
        "headline_steps": largest,
        **{f"rel_error_{t}_{v}": results[t][largest][v]["test_rel_error"] for t in targets for v in ("presnov", "dense")},
        "seconds": time.perf_counter() - t0,
    }
    out.mkdir(parents=True, exist_ok=True)
    save_figure(figure(metrics), out / "presnov.png")
    report(metrics, cfg)
    return metrics


def report(metrics: dict, cfg: dict) -> None:
    decomposition, trotter, results = metrics["decomposition"], metrics["trotter_relative_error"], metrics["approximation"]
    print(f"decomposition (float64, {N_QUAD}-point rule): max |x.X_S| = "
          f"{decomposition['damped_forced']['max_defect']:.2e} "
          f"(<= tol: {decomposition['damped_forced']['holds']}); negative control U = x.f/2: "
          f"{decomposition['damped_forced']['negative_control_U_eq_half_x_dot_f']:.2e}")
    print("Lie-Trotter pieces -> rel. error: " + ", ".join(f"{k}: {v:.2e}" for k, v in trotter.items()))
    head = f"{'target':<20} {'steps':>5} " + " ".join(f"{v:>16}" for v in cfg["variants"])
    print(head)
    for tname, rows in results.items():
        for n_steps, row in rows.items():
            cells = " ".join(f"{row[v]['test_rel_error']:9.2e} ({row[v]['n_params']:4d})" for v in cfg["variants"])
            print(f"{tname:<20} {n_steps:>5} {cells}")
    print(f"{metrics['seconds']:.1f} s")


def figure(metrics: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    styles = {"presnov": ("o-", "gradient (+/-) / sphere"), "presnov_convex": ("s--", "gradient (-) / sphere"),
              "dense": ("^-", "Dense ResNet")}
    for ax, (tname, rows) in zip(axes[:2], metrics["approximation"].items(), strict=True):
        steps = sorted(rows, key=int)  # int keys in memory, str keys after a JSON round trip
        for variant in metrics["config"]["variants"]:
            style, label = styles[variant]
            ax.plot([int(s) for s in steps], [rows[s][variant]["test_rel_error"] for s in steps], style,
                    label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("number of steps")
        ax.set_ylabel("relative test error")
        ax.set_title(tname)
        ax.legend()
    ax = axes[2]
    keys = sorted(metrics["trotter_relative_error"], key=int)
    errs = [metrics["trotter_relative_error"][k] for k in keys]
    pieces = [int(k) for k in keys]
    ax.plot(pieces, errs, "o-", label="Trotter of exact grad U / X_S flows")
    ax.plot(pieces, [errs[0] / k for k in pieces], "k:", label="slope -1")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("pieces k")
    ax.set_ylabel("relative error vs time-1 flow")
    ax.set_title("Presnov splitting (constructive proof)")
    ax.legend()
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    run_cli(main)
