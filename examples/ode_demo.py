"""torchdiffeq's ode_demo in dynnets: learn the spiral y' = (y^3) A with an MLP on y^3, fitted on short
stretches of the true trajectory through an adaptive Dormand-Prince 5(4) solve.

    python -m examples.ode_demo [--quick] [--seed S] [--out DIR] [--dtype float32|float64] [--niters N]

The user's own ``nn.Module`` with ``forward(t, y)`` (torchdiffeq's convention) is passed to ``dn.solve`` as
it is. As in torchdiffeq's example: y0 = [2, 0], A = [[-0.1, 2], [-2, -0.1]], 1000 times on [0, 25], batches
of 20 stretches of 10 times, an MLP 2-50-2 (tanh) on y^3, RMSprop with lr 1e-3, loss mean |pred - true|.
Trained by ``dynnets.train.fit``; writes metrics.json (initial and final test loss over the whole
trajectory, ms per iteration, evaluations) and spiral.png (true and learned trajectories) into --out.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import dynnets as dn  # noqa: E402
from dynnets.applications.runner import Runner, run_cli  # noqa: E402
from dynnets.io import save_figure  # noqa: E402
from dynnets.train import fit  # noqa: E402

TRUE_Y0 = [[2.0, 0.0]]
TRUE_A = [[-0.1, 2.0], [-2.0, -0.1]]
DATA_SIZE, T_END, BATCH_TIME, BATCH_SIZE = 1000, 25.0, 10, 20
#: the solves' tolerances per dtype (float32: dn.solve's default; float64: torchdiffeq's default)
TOLERANCES = {torch.float32: dict(rtol=1e-4, atol=1e-6), torch.float64: dict(rtol=1e-7, atol=1e-9)}


class Spiral(nn.Module):
    """The true field y' = (y^3) A."""

    def __init__(self, dtype):
        super().__init__()
        self.register_buffer("A", torch.tensor(TRUE_A, dtype=dtype))

    def forward(self, t, y):
        return (y ** 3) @ self.A


class ODEFunc(nn.Module):
    """torchdiffeq's model: y' = MLP(y^3), weights N(0, 0.1), biases 0."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0, std=0.1)
                nn.init.constant_(m.bias, val=0)

    def forward(self, t, y):
        return self.net(y ** 3)


def data(dtype):
    """(t, true_y): the true trajectory at DATA_SIZE times, shape (DATA_SIZE, 2)."""
    t = torch.linspace(0.0, T_END, DATA_SIZE, dtype=dtype)
    with torch.no_grad():
        return t, dn.solve(Spiral(dtype), torch.tensor(TRUE_Y0[0], dtype=dtype), t, **TOLERANCES[dtype]).x


def batches(t, true_y, generator):
    """fit's data: step -> (t_batch, y0 (20, 2), y (10, 20, 2)), random stretch starts without replacement."""
    def batch(step):
        s = torch.randperm(DATA_SIZE - BATCH_TIME, generator=generator)[:BATCH_SIZE]
        return t[:BATCH_TIME], true_y[s], torch.stack([true_y[s + i] for i in range(BATCH_TIME)])
    return batch


def test_loss(func, t, true_y, tolerances) -> float:
    with torch.no_grad():
        return float((dn.solve(func, true_y[0], t, **tolerances).x - true_y).abs().mean())


RUNNER = Runner("ode_demo", __doc__, headline={"test_loss": "min"}, default_dtype="float32", devices=("cpu",))
RUNNER.parser.prog = "python -m examples.ode_demo"
RUNNER.parser.add_argument("--niters", type=int, default=None, help="iterations (default 2000, --quick 40)")


def run(args, seed, out) -> dict:
    dtype, tolerances = args.torch_dtype, TOLERANCES[args.torch_dtype]
    niters = args.niters or (40 if args.quick else 2000)
    t, true_y = data(dtype)
    func = ODEFunc().to(dtype)
    before = test_loss(func, t, true_y, tolerances)
    evaluations = []

    def loss_fn(model, batch):
        batch_t, y0, y = batch
        sol = dn.solve(model, y0, batch_t, **tolerances)
        evaluations.append(sol.nfev)
        return (sol.x - y).abs().mean()

    generator = torch.Generator().manual_seed(seed)
    result = fit(func, loss_fn, batches(t, true_y, generator), steps=niters,
                 optimizer="rmsprop", lr=1e-3, desc="ode_demo")
    ms = 1e3 * result.train_seconds / niters
    after = test_loss(func, t, true_y, tolerances)
    with torch.no_grad():
        pred = dn.solve(func, true_y[0], t, **tolerances).x
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(true_y[:, 0], true_y[:, 1], "g-", label="true")
    ax.plot(pred[:, 0], pred[:, 1], "b--", label=f"learned ({niters} iterations)")
    ax.set(xlabel="y1", ylabel="y2", title="ode_demo: the spiral y' = (y^3) A")
    ax.legend()
    save_figure(fig, out / "spiral.png")
    print(f"ode_demo ({args.dtype}, {niters} iterations): test loss {before:.4f} -> {after:.4f}, "
          f"{ms:.1f} ms/iteration, {sum(evaluations) / len(evaluations):.1f} evaluations per solve")
    return {"test_loss": after, "test_loss_initial": before, "train_loss_final": float(result.losses[-1]),
            "iterations": niters, "ms_per_iteration": ms, "mean_nfev": sum(evaluations) / len(evaluations),
            "tolerances": tolerances}


def main(argv=None) -> dict:
    return RUNNER.main(run, argv)


if __name__ == "__main__":
    run_cli(main)
