"""dynnets against torchdiffeq (0.2.5, pinned in the bench extra) on torchdiffeq's own ode_demo, side by side
in one process (issue 28): ms per training iteration, field evaluations, gradient error.

Model and data of ``examples/ode_demo.py`` (the spiral y' = (y^3) A, an MLP 2-50-2 on y^3; batches of 20
stretches of 10 times). The model is first trained 200 iterations (dynnets, float64, so the field is no
longer nearly linear); both libraries then get copies of those weights and the same ``--batches`` fixed
batches. One iteration = solve the batch (Dormand-Prince 5(4): dn.solve's default, torchdiffeq's dopri5),
loss mean |pred - true|, backward through the solve (plain backpropagation for both; the optimizer step is
the same code for both and left out). Timed round-robin (``interleaved_times``, min over ``--repeats``
rounds of all batches) at equal rtol/atol: float32 at rtol 1e-4, atol 1e-6 (dn.solve's float32 default;
torchdiffeq's own default 1e-7 is below float32's round-off, which dn.solve refuses) and float64 at
torchdiffeq's defaults rtol 1e-7, atol 1e-9. dynnets runs with its per-sample worst-case norm and with
norm="rms" (torchdiffeq's RMS over the batch).

Gradient error (float64): the directional derivative of the loss of one batch along a random unit direction
of the parameters, against a fourth-order central difference of the loss solved at rtol 1e-13 (step 1e-3:
truncation ~1e-12), at rtol 1e-4, 1e-6, 1e-9 (atol = rtol / 1000), relative.

Bouncing ball (``examples/bouncing_ball.py``, float64, rtol 1e-10, atol 1e-12): 10 bounces, each a solve
stopped by the event height = 0 (dynnets: ``dn.solve(..., event=)``; torchdiffeq: ``odeint_event`` with
dopri5, the ball lifted by 1e-7 after each bounce as in torchdiffeq's own example), the velocity reversed
and scaled by e; the last bounce time against its closed form, its gradient
with respect to (g, e) against the closed form and between the two libraries, and the time of one
simulation with its backward pass.

Targets: dynnets (rms) <= 0.8x torchdiffeq's ms/iteration and <= 1.05x its evaluations; bounce times within
1e-12 of the closed form; the last bounce time's gradient equal to torchdiffeq's to 1e-7.

    python -m benchmarks.torchdiffeq [--quick] [--repeats N] [--batches K]
"""

from __future__ import annotations

import copy
import importlib

import torch

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli
from examples import bouncing_ball, ode_demo

from ._common import interleaved_times, machine

TOLERANCES = {torch.float32: dict(rtol=1e-4, atol=1e-6), torch.float64: dict(rtol=1e-7, atol=1e-9)}
GRADIENT_RTOLS = (1e-4, 1e-6, 1e-9)

RUNNER = Runner("torchdiffeq", __doc__, kind="benchmark", dtypes=("float64",), default_dtype="float64",
                devices=("cpu",), threads=1)
RUNNER.parser.add_argument("--repeats", type=int, default=7)
RUNNER.parser.add_argument("--batches", type=int, default=10)


def _torchdiffeq():
    try:
        return importlib.import_module("torchdiffeq")
    except ImportError:
        raise dn.errors.ConfigError("benchmarks.torchdiffeq needs torchdiffeq==0.2.5 (pip install --no-deps "
                                    "torchdiffeq==0.2.5, or the bench extra)") from None


class Counting(torch.nn.Module):
    """torchdiffeq's f(t, y), counting evaluations."""

    def __init__(self, func):
        super().__init__()
        self.func, self.calls = func, 0

    def forward(self, t, y):
        self.calls += 1
        return self.func(t, y)


def trained_model(iterations: int) -> torch.nn.Module:
    t, true_y = ode_demo.data(torch.float64)
    func = ode_demo.ODEFunc().double()
    optimizer = torch.optim.RMSprop(func.parameters(), lr=1e-3)
    batch = ode_demo.batches(t, true_y, torch.Generator().manual_seed(1))
    for step in range(iterations):
        bt, y0, y = batch(step)
        optimizer.zero_grad()
        (dn.solve(func, y0, bt, **TOLERANCES[torch.float64]).x - y).abs().mean().backward()
        optimizer.step()
    return func


def candidates(func, dtype, batches, odeint) -> dict:
    """name -> (iteration over all batches, evaluations per solve)."""
    tol = TOLERANCES[dtype]
    theirs = Counting(copy.deepcopy(func).to(dtype))
    ours = copy.deepcopy(func).to(dtype)
    batches = [(bt.to(dtype), y0.to(dtype), y.to(dtype)) for bt, y0, y in batches]
    counts = {"dynnets (worst)": [], "dynnets (rms)": [], "torchdiffeq dopri5": []}

    def ours_run(norm, name):
        def run():
            counts[name].clear()
            for bt, y0, y in batches:
                ours.zero_grad()
                sol = dn.solve(ours, y0, bt, norm=norm, **tol)
                (sol.x - y).abs().mean().backward()
                counts[name].append(sol.nfev)
        return run

    def theirs_run():
        counts["torchdiffeq dopri5"].clear()
        for bt, y0, y in batches:
            theirs.zero_grad()
            theirs.calls = 0
            (odeint(theirs, y0, bt, method="dopri5", **tol) - y).abs().mean().backward()
            counts["torchdiffeq dopri5"].append(theirs.calls)

    return {"dynnets (worst)": ours_run("worst", "dynnets (worst)"), "dynnets (rms)": ours_run("rms", "dynnets (rms)"),
            "torchdiffeq dopri5": theirs_run}, counts


def gradient_errors(func, batch, odeint) -> dict:
    bt, y0, y = batch
    params = list(func.parameters())
    direction = [torch.randn_like(p) for p in params]
    norm = torch.sqrt(sum(d.square().sum() for d in direction))
    direction = [d / norm for d in direction]

    def loss_at(eps, rtol):
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(eps * d)
            value = float((dn.solve(func, y0, bt, rtol=rtol, atol=rtol * 1e-3).x - y).abs().mean())
            for p, d in zip(params, direction):
                p.sub_(eps * d)
        return value

    e = 1e-3
    reference = (-loss_at(2 * e, 1e-13) + 8 * loss_at(e, 1e-13) - 8 * loss_at(-e, 1e-13) + loss_at(-2 * e, 1e-13)) / (12 * e)
    out = {"reference_directional_derivative": reference}
    for rtol in GRADIENT_RTOLS:
        row = {}
        tol = dict(rtol=rtol, atol=rtol * 1e-3)
        for name, pred in (("dynnets", dn.solve(func, y0, bt, **tol).x),
                           ("torchdiffeq", odeint(func, y0, bt, method="dopri5", **tol))):
            grads = torch.autograd.grad((pred - y).abs().mean(), params)
            derivative = float(sum((g * d).sum() for g, d in zip(grads, direction)))
            row[name] = abs(derivative - reference) / abs(reference)
        out[f"rtol={rtol:g}"] = row
    return out


def bounces(g, e, n: int, torchdiffeq=None) -> torch.Tensor:
    """The first n bounce times of the ball (dynnets' events, or torchdiffeq's odeint_event)."""
    t, x = torch.zeros((), dtype=torch.float64), torch.tensor([bouncing_ball.H0, 0.0], dtype=torch.float64)
    times = []
    for _ in range(n):
        field = lambda t, y: torch.stack([y[..., 1], -g * torch.ones_like(y[..., 1])], dim=-1)  # noqa: E731
        if torchdiffeq is None:
            sol = dn.solve(field, x, torch.stack([t, t + 60.0]), event=lambda t, y: y[..., 0],
                           **bouncing_ball.TOLERANCES)
            t, x_event = sol.event_t, sol.event_x
        else:
            t, states = torchdiffeq.odeint_event(field, x, t, event_fn=lambda t, y: y[..., 0], method="dopri5",
                                                 odeint_interface=torchdiffeq.odeint, **bouncing_ball.TOLERANCES)
            x_event = states[-1]
        # torchdiffeq's own bouncing_ball example lifts the ball by 1e-7 after a bounce ("so as not to trigger
        # the event function immediately": its odeint_event takes a zero at t0 as the event); dn.solve does not
        lift = 0.0 if torchdiffeq is None else 1e-7
        x = torch.stack([torch.zeros_like(x_event[0]) + lift, -e * x_event[1]])
        times.append(t)
    return torch.stack(times)


def ball_comparison(torchdiffeq, repeats: int) -> dict:
    n, g0, e0 = 10, bouncing_ball.TRUE_G, bouncing_ball.TRUE_E
    exact, d_g, d_e = bouncing_ball.closed_form(g0, e0, n)
    out, grads = {}, {}
    for name, lib in (("dynnets", None), ("torchdiffeq", torchdiffeq)):
        g = torch.tensor(g0, dtype=torch.float64, requires_grad=True)
        e = torch.tensor(e0, dtype=torch.float64, requires_grad=True)
        times = bounces(g, e, n, lib)
        grads[name] = [float(v) for v in torch.autograd.grad(times[-1], (g, e))]
        out[name] = {"event_time_error": max(abs(float(a) - b) for a, b in zip(times.detach(), exact)),
                     "gradient_error_vs_closed_form": max(abs(grads[name][0] - d_g) / abs(d_g),
                                                          abs(grads[name][1] - d_e) / abs(d_e))}
    out["gradient_difference"] = max(abs(a - b) / abs(b) for a, b in zip(grads["dynnets"], grads["torchdiffeq"]))

    def timed(lib):
        def call():
            g = torch.tensor(g0, dtype=torch.float64, requires_grad=True)
            bounces(g, torch.tensor(e0, dtype=torch.float64), n, lib)[-1].backward()
        return call
    times = interleaved_times({"dynnets": timed(None), "torchdiffeq": timed(torchdiffeq)}, repeats, warmup=1)
    for name in ("dynnets", "torchdiffeq"):
        out[name]["ms_per_simulation"] = 1e3 * times[name]["min"]
    out["time_ratio"] = times["dynnets"]["min"] / times["torchdiffeq"]["min"]
    return out


def run(args, seed, out) -> dict:
    torchdiffeq = _torchdiffeq()
    odeint = torchdiffeq.odeint
    repeats, n_batches = (2, 3) if args.quick else (args.repeats, args.batches)
    func = trained_model(20 if args.quick else 200)
    t, true_y = ode_demo.data(torch.float64)
    make = ode_demo.batches(t, true_y, torch.Generator().manual_seed(seed + 7))
    batches = [make(k) for k in range(n_batches)]
    result = {"machine": machine(), "repeats": repeats, "batches": n_batches, "ode_demo": {}}
    print(f"{'dtype':<9}{'candidate':<22}{'ms/iter':>9}{'ratio':>8}{'nfev/solve':>12}{'ratio':>8}")
    for dtype in (torch.float32, torch.float64):
        fns, counts = candidates(func, dtype, batches, odeint)
        times = interleaved_times(fns, repeats, warmup=1)
        base_ms = 1e3 * times["torchdiffeq dopri5"]["min"] / n_batches
        base_nfev = sum(counts["torchdiffeq dopri5"]) / n_batches
        rows = {}
        for name in fns:
            ms, nfev = 1e3 * times[name]["min"] / n_batches, sum(counts[name]) / n_batches
            rows[name] = {"ms_per_iteration": ms, "ms_median": 1e3 * times[name]["median"] / n_batches,
                          "nfev_per_solve": nfev, "time_ratio": ms / base_ms, "nfev_ratio": nfev / base_nfev}
            print(f"{str(dtype)[6:]:<9}{name:<22}{ms:>9.2f}{ms / base_ms:>8.2f}{nfev:>12.1f}{nfev / base_nfev:>8.2f}")
        result["ode_demo"][str(dtype)[6:]] = {"tolerances": TOLERANCES[dtype], **rows}
    result["gradient_error"] = gradient_errors(func, batches[0], odeint)
    for key, row in result["gradient_error"].items():
        if key.startswith("rtol"):
            print(f"gradient error {key}: dynnets {row['dynnets']:.2e}, torchdiffeq {row['torchdiffeq']:.2e}")
    ball = result["bouncing_ball"] = ball_comparison(torchdiffeq, repeats)
    print(f"bouncing ball, 10 bounces: bounce time error dynnets {ball['dynnets']['event_time_error']:.1e}, "
          f"torchdiffeq {ball['torchdiffeq']['event_time_error']:.1e}; gradient vs closed form "
          f"{ball['dynnets']['gradient_error_vs_closed_form']:.1e} / "
          f"{ball['torchdiffeq']['gradient_error_vs_closed_form']:.1e}; between them {ball['gradient_difference']:.1e}; "
          f"ms/simulation {ball['dynnets']['ms_per_simulation']:.1f} / {ball['torchdiffeq']['ms_per_simulation']:.1f}")
    return result


def main(argv=None) -> dict:
    return RUNNER.main(run, argv)


if __name__ == "__main__":
    run_cli(main)
