"""Certified robustness against deel-torchlip, in one run: same split, parameter count, training budget and
evaluation code.

    python -m benchmarks.lipschitz [--quick] [--no-autoattack] [--extra] [--deel-alpha A] [--deel-margin M]
                                   [--lr LR] [--temperature T] [--train-eps E] [--holdout K --out DIR]

    optional dependencies (pip never touches torch with --no-deps; neither needs torchvision at run time):
    pip install deel-torchlip==1.0.5 --no-deps      # needs numpy and torch only
    pip install torchattacks==3.5.1 --no-deps       # needs scipy, tqdm, numpy

Data: scikit-learn's 8x8 digits, pixels in [0, 1], the robustness experiment's split (1347 train / 450 test,
seed 0). Every model is centred by the training mean, has 58,442 parameters (64 -> 256 -> 128 -> 64 -> 10) and
is trained by the same ``train_classifier`` (dynnets.train.fit: Adam, one-cycle peak lr 1e-2 stepped per
optimizer step, batch 64, 60 epochs, float64 from construction on):

  dynnets:    orthogonal/MaxMin blocks (exact QR orthogonalisation; MaxMin as an Euler step of the pair-
              difference gradient field), head ||W||_2 <= 1 (exact SVD projection); Lipschitz-margin loss;
  deel (HKR): SpectralLinear (power iteration + Bjorck) + GroupSort2, the library's HKRMulticlassLoss;
  deel (same loss): that network with dynnets' Lipschitz-margin loss (separates architecture from loss).

The Lipschitz-margin loss (train eps 0.6, temperature 10) and the common peak lr 1e-2 were chosen on
validation holdouts of the training split, never on a test split: ``--holdout K`` trains on the seed's
training split minus 337 images drawn by generator seed 1000 + K and evaluates on those 337 (``--out`` is
then required, so that the recorded test figures are never replaced). docs/lipschitz.md lists what was tried.

The same ``evaluate_robustness`` then gives clean, certified (margin > sqrt(2) L eps, L the exact product of
the layers' spectral norms in float64 for every model, deel's nominal 1 never used) and attacked accuracy
(dynnets' L2-PGD, 50 steps, untargeted + 3 targeted runs; torchattacks' standard AutoAttack in L2) at eps
0.25, 0.5, 0.75, 1.0, asserting certified <= attacked on every input, and ``measured_lipschitz`` the
largest ratio ||f(x) - f(y)|| / ||x - y|| an ascent finds next to the reported bound. Training time is
reported as wall seconds and as the process's CPU seconds (one torch thread: the steadier measure of cost on a
shared machine). Writes benchmarks/results/lipschitz.json.
"""

from __future__ import annotations

import functools
import math
import time

import torch
from torch import nn

import dynnets as dn
from dynnets.applications.adversarial import (
    evaluate_robustness,
    lipschitz_margin_loss,
    load_digits,
    measured_lipschitz,
    train_classifier,
)
from dynnets.applications.runner import Runner, run_cli
from dynnets.checks import check_int, positive_real
from dynnets.constraints import BoundedLinear, Normalize, orthogonal_block, rescaled_step, switching_pair
from dynnets.errors import ConfigError

from ._common import machine

EPS = [0.0, 0.25, 0.5, 0.75, 1.0]
WIDTHS = (256, 128, 64)
HOLDOUT = 337  # validation images taken from the training split by --holdout (a quarter of 1347)


class Centred(nn.Module):
    """x -> net(x - mean) for a network of another library; bound = product of its linear layers' exact norms."""

    def __init__(self, net: nn.Module, mean: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean.clone())

    def forward(self, x):
        return self.net(x - self.mean)

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        """Exact (SVD, float64) spectral norms of the effective weights; GroupSort2 and centring are 1-Lipschitz."""
        self.net.eval()
        return math.prod(float(torch.linalg.matrix_norm(m.weight.double(), ord=2))
                         for m in self.net.modules() if isinstance(m, nn.Linear))


def deel_network(mean: torch.Tensor, widths) -> nn.Module:
    import deel.torchlip as tl

    layers, n = [], 64
    for w in widths:
        layers += [tl.SpectralLinear(n, w), tl.GroupSort2()]
        n = w
    layers.append(tl.SpectralLinear(n, 10))
    return Centred(tl.Sequential(*layers), mean)


def dynnets_network(mean: torch.Tensor, widths) -> dn.Flow:
    layers, n = [Normalize(mean, 1.0)], 64
    for w in widths:
        layers.append(orthogonal_block(n, w))
        n = w
    return dn.Flow([*layers, BoundedLinear(n, 10)])


def extra_networks(mean: torch.Tensor) -> dict:
    """dynnets' other certified networks at about the same size (switching pairs, rescaled SLL steps)."""
    return {"dynnets switching pairs": dn.Flow([Normalize(mean, 1.0), *[switching_pair(64, 128, 1.0, rule="exact",
                                                                                      learn_h=True)
                                                                       for _ in range(4)], BoundedLinear(64, 10)]),
            "dynnets rescaled (SLL)": dn.Flow([Normalize(mean, 1.0), *[rescaled_step(64, 224) for _ in range(4)],
                                               BoundedLinear(64, 10)])}


def deel_hkr(alpha: float, margin: float):
    import deel.torchlip as tl

    hkr = tl.HKRMulticlassLoss(alpha=alpha, min_margin=margin)
    return lambda logits, labels: hkr(logits, nn.functional.one_hot(labels, 10).to(logits.dtype))


RUNNER = Runner("lipschitz", __doc__, kind="benchmark", set_default_dtype=True)
RUNNER.parser.add_argument("--no-autoattack", action="store_true", help="skip the torchattacks cross-check")
RUNNER.parser.add_argument("--extra", action="store_true", help="also dynnets' switching pairs and SLL networks")
RUNNER.parser.add_argument("--deel-alpha", type=float, default=0.98, help="HKRMulticlassLoss alpha in [0, 1]")
RUNNER.parser.add_argument("--deel-margin", type=float, default=1.0, help="HKRMulticlassLoss min_margin")
RUNNER.parser.add_argument("--lr", type=float, default=1e-2, help="peak one-cycle learning rate (every model)")
RUNNER.parser.add_argument("--temperature", type=float, default=10.0, help="Lipschitz-margin loss temperature")
RUNNER.parser.add_argument("--train-eps", type=float, default=0.6, help="Lipschitz-margin loss radius")
RUNNER.parser.add_argument("--holdout", type=int, default=None,
                           help="validation run: evaluate on holdout K of the training split (needs --out)")


def validate(args) -> None:
    if not (0.0 <= args.deel_alpha <= 1.0) or not (math.isfinite(args.deel_margin) and args.deel_margin > 0):
        raise ConfigError(f"--deel-alpha must be in [0, 1] and --deel-margin positive, got {args.deel_alpha}, "
                          f"{args.deel_margin}")
    for flag in ("lr", "temperature", "train_eps"):
        positive_real(f"--{flag.replace('_', '-')}", getattr(args, flag))
    if args.holdout is not None:
        check_int("--holdout", args.holdout, minimum=0)
        if args.out == RUNNER.parser.get_default("out"):
            raise ConfigError("--holdout is a validation run: give --out DIR (rule: the recorded test figures in "
                              f"{args.out} are never replaced by a validation run)")
    try:
        import deel.torchlip  # noqa: F401
    except ImportError:
        raise ConfigError("benchmarks.lipschitz needs deel-torchlip: pip install deel-torchlip==1.0.5 --no-deps") from None
    if not args.no_autoattack:
        try:
            import torchattacks  # noqa: F401
        except ImportError:
            raise ConfigError("the AutoAttack cross-check needs torchattacks: pip install torchattacks==3.5.1 "
                              "--no-deps (or pass --no-autoattack)") from None


def one_model(name, model, loss, data, args, cfg) -> dict:
    x_tr, y_tr, x_te, y_te = data
    model = model.to(args.torch_device, args.torch_dtype)
    t0, c0 = time.perf_counter(), time.process_time()
    train_classifier(model, x_tr, y_tr, loss, epochs=cfg["epochs"], batch=64, lr=args.lr, seed=args.seed,
                     desc=name)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    bound = float(model.lipschitz_bound())
    row = evaluate_robustness(model, x_te, y_te, EPS, lipschitz=bound, pgd_steps=cfg["pgd_steps"],
                              pgd_targets=cfg["pgd_targets"], autoattack=not args.no_autoattack,
                              image_shape=(1, 8, 8), desc=f"attack {name}")
    ratio = measured_lipschitz(model, x_te, bound, starts=cfg["starts"], steps=cfg["search_steps"], seed=args.seed)
    row["misclassified"] = misclassified(model, x_te, y_te)
    row.update(name=name, params=sum(p.numel() for p in model.parameters()), train_seconds=round(seconds, 1),
               train_cpu_seconds=round(cpu, 1),
               lipschitz_bound=bound, measured_max_ratio=ratio, bound_over_measured=bound / ratio)
    return row


def misclassified(model, x, y) -> dict:
    """{test index: [predicted class, logit margin]} for the wrongly classified inputs (margin = true logit
    minus the largest other one, < 0 here; |margin| / (sqrt(2) L) bounds their distance to the boundary)."""
    with torch.no_grad():
        logits = model(x)
    true = logits.gather(1, y[:, None])[:, 0]
    others = logits.scatter(1, y[:, None], -math.inf).amax(1)
    pred = logits.argmax(1)
    return {int(i): [int(pred[i]), round(float(true[i] - others[i]), 4)] for i in (pred != y).nonzero()[:, 0]}


def split(args, seed: int):
    """(x_train, y_train, x_eval, y_eval): the seed's test split, or with --holdout K a validation part of its
    training split (the test split is then not used at all)."""
    x_tr, y_tr, x_te, y_te = load_digits(torch.Generator().manual_seed(seed),
                                         max_test=100 if args.quick and args.holdout is None else None)
    if args.holdout is not None:
        perm = torch.randperm(len(y_tr), generator=torch.Generator().manual_seed(1000 + args.holdout))
        val, keep = perm[:HOLDOUT], perm[HOLDOUT:]
        x_tr, y_tr, x_te, y_te = x_tr[keep], y_tr[keep], x_tr[val], y_tr[val]
    x_tr, x_te = (x.to(args.torch_device, args.torch_dtype) for x in (x_tr, x_te))
    return x_tr, y_tr.to(args.torch_device), x_te, y_te.to(args.torch_device)


def run(args, seed: int, out) -> dict:
    cfg = {"epochs": 3 if args.quick else 60, "pgd_steps": 10 if args.quick else 50,
           "pgd_targets": 1 if args.quick else 3, "starts": 32 if args.quick else 256,
           "search_steps": 20 if args.quick else 200, "lr": args.lr, "train_eps": args.train_eps,
           "temperature": args.temperature, "holdout": args.holdout}
    data = split(args, seed)
    mean = data[0].mean(0)
    margin_loss = functools.partial(lipschitz_margin_loss, eps=args.train_eps, temperature=args.temperature)
    candidates = [("dynnets orthogonal/MaxMin", lambda: dynnets_network(mean, WIDTHS), margin_loss),
                  ("deel-torchlip (HKR)", lambda: deel_network(mean, WIDTHS), deel_hkr(args.deel_alpha, args.deel_margin)),
                  ("deel-torchlip (same loss)", lambda: deel_network(mean, WIDTHS), margin_loss)]
    if args.extra:
        candidates += [(name, functools.partial(lambda net: net, net), margin_loss)
                       for name, net in extra_networks(mean).items()]
    rows = []
    for name, make, loss in candidates:
        torch.manual_seed(seed)
        rows.append(one_model(name, make(), loss, data, args, cfg))
    result = {"machine": machine(), "eps": EPS, "config": cfg, "quick": args.quick, "seed": seed,
              "deel_hkr": {"alpha": args.deel_alpha, "min_margin": args.deel_margin}, "models": rows}
    result["targets"] = targets(rows)
    print(table(rows))
    print(f"targets: {result['targets']}")
    return result


def targets(rows) -> dict:
    ours, deel = rows[0], rows[1]
    i = EPS.index(0.5)
    attacks = [k for k in ("pgd_accuracy", "autoattack_accuracy") if k in ours]
    return {"certified_lead_at_0.5": ours["certified_accuracy"][i] - deel["certified_accuracy"][i],
            "clean_difference": ours["clean_accuracy"] - deel["clean_accuracy"],
            "lead_over_same_loss_at_0.5": ours["certified_accuracy"][i] - rows[2]["certified_accuracy"][i],
            "violations": sum(r["violations"] for r in rows),
            "certified_below_every_attack": all(c <= r[a][k] for r in rows for a in attacks
                                                for k, c in enumerate(r["certified_accuracy"])),
            "bound_within_2pct_of_measured": all(1.0 <= r["bound_over_measured"] <= 1.02 for r in rows),
            "budget_ratio_seconds": ours["train_seconds"] / deel["train_seconds"],
            "budget_ratio_cpu_seconds": ours["train_cpu_seconds"] / deel["train_cpu_seconds"]}


def table(rows) -> str:
    head = (f"{'model':<28} {'params':>7} {'clean':>6} | {'certified 0.25/0.5/0.75/1.0':>28} | "
            f"{'PGD':>24} | {'AutoAttack':>24} | {'bound':>9} {'measured':>9} {'train s':>8} {'cpu s':>6}")
    lines = [head]

    def four(r, key):
        return "/".join(f"{v:.3f}" for v in r[key][1:]) if key in r else "-"

    for r in rows:
        lines.append(f"{r['name']:<28} {r['params']:>7} {r['clean_accuracy']:6.3f} | {four(r, 'certified_accuracy'):>28} | "
                     f"{four(r, 'pgd_accuracy'):>24} | {four(r, 'autoattack_accuracy'):>24} | {r['lipschitz_bound']:9.6f} "
                     f"{r['measured_max_ratio']:9.6f} {r['train_seconds']:8.1f} {r['train_cpu_seconds']:6.1f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    return RUNNER.main(run, argv, validate=validate)


if __name__ == "__main__":
    run_cli(main)
