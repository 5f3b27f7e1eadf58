"""A bouncing ball through dn.solve's events: learn gravity and the absorption (restitution) coefficient
from observed bounce times.

    python -m examples.bouncing_ball [--quick] [--seed S] [--out DIR] [--bounces N] [--steps K]

The ball x = (height, velocity) falls as x'' = -g from h0 = 10 m at rest; each bounce is an event
(height = 0, located to round-off on the dense output), after which the velocity is reversed and scaled
by e. Bounce k happens at the closed form t_1 (1 + 2 (e + ... + e^(k-1))), t_1 = sqrt(2 h0 / g). The bounce
times of g = 9.81, e = 0.8 are observed; a model starting from g = 7, e = 0.6 learns both by L-BFGS
(``dynnets.train.fit``) on the squared error of its 10 bounce times, its gradient through every event
time by the implicit function theorem. Writes metrics.json (the simulated event times' largest error
against the closed form, the gradient of the last event time against its closed form, the learned g and e)
and bounces.png.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import dynnets as dn  # noqa: E402
from dynnets.applications.runner import Runner, run_cli  # noqa: E402
from dynnets.io import save_figure  # noqa: E402
from dynnets.train import fit  # noqa: E402

H0, TRUE_G, TRUE_E = 10.0, 9.81, 0.8
TOLERANCES = dict(rtol=1e-10, atol=1e-12)


class Ball(nn.Module):
    """Gravity g = exp(log_g) and restitution e = sigmoid(raw_e) (both kept in range by construction)."""

    def __init__(self, g: float, e: float):
        super().__init__()
        self.log_g = nn.Parameter(torch.tensor(math.log(g), dtype=torch.float64))
        self.raw_e = nn.Parameter(torch.tensor(math.log(e / (1 - e)), dtype=torch.float64))

    @property
    def g(self):
        return self.log_g.exp()

    @property
    def e(self):
        return torch.sigmoid(self.raw_e)

    def forward(self, t, x):
        """The free flight: (height, velocity)' = (velocity, -g)."""
        return torch.stack([x[..., 1], -self.g * torch.ones_like(x[..., 1])], dim=-1)

    def bounce_times(self, bounces: int) -> torch.Tensor:
        """The first ``bounces`` event times, each solve starting where the last bounce left the ball."""
        t = torch.zeros((), dtype=torch.float64)
        x = torch.tensor([H0, 0.0], dtype=torch.float64)
        times = []
        for _ in range(bounces):
            sol = dn.solve(self, x, torch.stack([t, t + 60.0]), event=lambda t, x: x[..., 0], **TOLERANCES)
            t = sol.event_t
            x = torch.stack([torch.zeros_like(sol.event_x[0]), -self.e * sol.event_x[1]])  # on the ground
            times.append(t)
        return torch.stack(times)


def closed_form(g: float, e: float, bounces: int) -> tuple[list[float], float, float]:
    """(bounce times, d t_N / d g, d t_N / d e) of the last bounce N."""
    t1 = math.sqrt(2 * H0 / g)
    times = [t1 * (1 + 2 * sum(e ** j for j in range(1, k))) for k in range(1, bounces + 1)]
    s = 1 + 2 * sum(e ** j for j in range(1, bounces))
    return times, -t1 * s / (2 * g), 2 * t1 * sum(j * e ** (j - 1) for j in range(1, bounces))


RUNNER = Runner("bouncing_ball", __doc__, headline={"event_time_error": "min", "g_error": "min"},
                dtypes=("float64",), devices=("cpu",))
RUNNER.parser.prog = "python -m examples.bouncing_ball"
RUNNER.parser.add_argument("--bounces", type=int, default=10)
RUNNER.parser.add_argument("--steps", type=int, default=None, help="L-BFGS steps (default 30, --quick 10)")


def run(args, seed, out) -> dict:
    n = args.bounces
    truth = Ball(TRUE_G, TRUE_E)
    times = truth.bounce_times(n)
    exact, d_g, d_e = closed_form(TRUE_G, TRUE_E, n)
    time_error = max(abs(float(a) - b) for a, b in zip(times.detach(), exact))
    grad_g, grad_e = torch.autograd.grad(times[-1], (truth.log_g, truth.raw_e))
    # chain rule back to g and e: d/d log g = g d/dg, d/d raw_e = e (1 - e) d/de
    grad_error = max(abs(float(grad_g) / TRUE_G - d_g) / abs(d_g),
                     abs(float(grad_e) / (TRUE_E * (1 - TRUE_E)) - d_e) / abs(d_e))
    observed = times.detach()
    model = Ball(7.0, 0.6)
    result = fit(model, lambda m, _: (m.bounce_times(n) - observed).square().mean(), None,
                 steps=args.steps or (10 if args.quick else 30), optimizer="lbfgs", lr=1.0, desc="bouncing_ball")
    g, e = float(model.g.detach()), float(model.e.detach())
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(observed, [0] * n, "go", label="observed bounces")
    ax.plot(model.bounce_times(n).detach(), [0.1] * n, "bx", label=f"learned: g = {g:.4f}, e = {e:.4f}")
    ax.set(xlabel="t", yticks=[], title="bouncing ball: event times")
    ax.legend(loc="upper right")
    save_figure(fig, out / "bounces.png")
    print(f"bounce times vs closed form: {time_error:.2e}; d t_{n} gradient relative error {grad_error:.2e}; "
          f"learned g = {g:.6f} (true {TRUE_G}), e = {e:.6f} (true {TRUE_E}), final loss {result.losses[-1]:.2e}")
    return {"event_time_error": time_error, "last_event_gradient_error": grad_error, "g": g, "e": e,
            "g_error": abs(g - TRUE_G), "e_error": abs(e - TRUE_E), "final_loss": float(result.losses[-1]),
            "bounces": n}


def main(argv=None) -> dict:
    return RUNNER.main(run, argv)


if __name__ == "__main__":
    run_cli(main)
