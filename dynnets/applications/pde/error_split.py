"""The slides' error splitting of one learned PDE step, measured term by term.

For pixel data U^n = u(t_n, grid) of a PDE u_t = N(u), the FD semi-discretisation U' = F(U) on the grid
(spacing dx) and a network step Psi^dt_{F_theta} (a ``Flow`` of explicit RK steps of F_theta):

    |u(t_{n+1}) - Psi_{F_theta}(U^n)| <= |u(t_{n+1}) - Phi_F(U^n)|          spatial error, O(dx^2)
                                       + |Phi_F(U^n) - Psi_F(U^n)|          classical error, O(dt^{r+1})
                                       + |Psi_F(U^n) - Psi_{F_theta}(U^n)|  network term
    network term <= dt exp(Lip(F) dt) sup |F_theta(U) - F(U)|             (the slides' bound)

All norms are max-norms over the pixels. Measured by ``error_split``:

* u(t_{n+1}): U^n interpolated trigonometrically to grids dx/2, dx/4, each FD system integrated over dt
  with fine RK4 and sampled at the pixels (V_1, V_2, V_4); the Richardson value u* = V_4 + (V_4 - V_2)/3,
  with the observed order log2(|V_1 - V_2| / |V_2 - V_4|) as a check; spatial error |V_1 - u*|.
* Phi_F = V_1 (its time error by step doubling); Psi_F: the network's steps applied to F.
* The network term, measured and bounded with delta_i = |F_theta(Y_i) - F(Y_i)| at the network's stages
  and L = Lip(F) on the values visited: (a) the stage recursion E_i <= e + h sum_j |a_ij| (L E_j +
  delta_j), out <= e + h sum_j |b_j| (L E_j + delta_j), and (b) the slides' dt exp(L dt) max_i delta_i.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ...checks import check_int
from ...errors import ConfigError, ShapeError
from ...methods.rk import ExplicitRK
from ...step import Flow, Step
from ...systems import FisherField2D, HeatField2D
from .data import reference_flow

__all__ = ["spectral_refine", "richardson_step", "network_term", "error_split",
           "diffusion_reaction_lipschitz", "fisher_slope", "field_lipschitz", "plot_error_split"]


def _check_states(u: torch.Tensor) -> None:
    if u.dim() != 4 or u.shape[-1] != u.shape[-2]:
        raise ShapeError(f"states must have shape (batch, C, n, n), got {tuple(u.shape)}")
    if not torch.isfinite(u).all():
        raise ConfigError("states must be finite, got NaN or inf")


def _refine_last(u: torch.Tensor, factor: int) -> torch.Tensor:
    n = u.shape[-1]
    m = n * factor
    c = torch.fft.fft(u, dim=-1)
    out = torch.zeros(*u.shape[:-1], m, dtype=c.dtype, device=u.device)
    pos = (n + 1) // 2  # k = 0..pos-1 (non-negative, below Nyquist)
    neg = (n - 1) // 2  # k = -neg..-1 (below Nyquist)
    out[..., :pos] = c[..., :pos]
    out[..., m - neg:] = c[..., n - neg:]
    if n % 2 == 0:  # the Nyquist mode cos(pi x/dx) is split evenly between +n/2 and -n/2
        out[..., n // 2] = c[..., n // 2] / 2
        out[..., m - n // 2] = c[..., n // 2] / 2
    return torch.fft.ifft(out, dim=-1).real * factor


def spectral_refine(u: torch.Tensor, factor: int) -> torch.Tensor:
    """Trigonometric interpolation of periodic (batch, C, n, n) data to (batch, C, n f, n f); the fine
    grid's node [f i, f j] is the coarse node [i, j], where the values are unchanged (to round-off)."""
    factor = check_int("the refinement factor", factor, minimum=1)
    _check_states(u)
    if factor == 1:
        return u
    return _refine_last(_refine_last(u, factor).transpose(-1, -2), factor).transpose(-1, -2)


def _amax(x: torch.Tensor) -> torch.Tensor:
    """Per-sample max-norm of (batch, ...) tensors."""
    return x.abs().flatten(1).amax(1)


def richardson_step(make_field: Callable[[int], Callable], u: torch.Tensor, dt: float, steps: int,
                    order: int = 2) -> dict:
    """The reference terms (module docstring): V1, V2, V4, u* = V4 + (V4 - V2)/(2^order - 1), the spatial
    error |V1 - u*|, the observed order and V1's own time error, per state; ``steps`` RK4 steps on the pixel
    grid, 4x and 16x that on the grids refined 2x and 4x (dt/dx^2 fixed)."""
    _check_states(u)
    n = u.shape[-1]
    v1, v2, v4 = (reference_flow(make_field(n * f), dt, steps * f * f)(spectral_refine(u, f))[..., ::f, ::f]
                  for f in (1, 2, 4))
    star = v4 + (v4 - v2) / (2 ** order - 1)
    half = reference_flow(make_field(n), dt, 2 * steps)(u)
    return {"V1": v1, "V2": v2, "V4": v4, "u_star": star, "spatial": _amax(v1 - star),
            "observed_order": torch.log2(_amax(v1 - v2) / _amax(v2 - v4)),
            "reference_time_error": _amax(v1 - half)}


def _flat_steps(net) -> list:
    """The explicit Runge-Kutta steps of a Step or (nested) Flow, in order."""
    if isinstance(net, Step) and not isinstance(net.method, ExplicitRK):
        raise ConfigError(f"the network-term bound needs explicit Runge-Kutta steps, got {net.method!r}")
    if isinstance(net, Step):
        return [net]
    if not isinstance(net, Flow):
        raise ConfigError(f"the network must be a dynnets Step or Flow, got {type(net).__name__}")
    return [step for inner in net.steps for step in _flat_steps(inner)]


def network_term(net, field: Callable, u: torch.Tensor, lipschitz: Callable[[float, float], float]) -> dict:
    """Psi_F(u), Psi_theta(u), |Psi_F - Psi_theta| and its bounds (module docstring) for a Flow of explicit
    RK steps; ``lipschitz(lo, hi)``: Lip(F) in the max-norm on [lo, hi] (both paths' stage values covered)."""
    x, y = u, u  # exact-field path (Psi_F) and network path (Psi_theta)
    lo, hi = float(u.min()), float(u.max())
    records = []  # per step: (h, tableau, delta per stage (batch,))
    dt = 0.0
    for s in _flat_steps(net):
        h = float(s.h)
        dt += h
        tab = s.method.tableau
        kx, ky, deltas = [], [], []
        for i in range(len(tab.a)):
            xi, yi = x, y
            for j in range(i):
                if tab.a[i][j] != 0.0:
                    xi = xi + h * tab.a[i][j] * kx[j]
                    yi = yi + h * tab.a[i][j] * ky[j]
            lo = min(lo, float(xi.min()), float(yi.min()))
            hi = max(hi, float(xi.max()), float(yi.max()))
            fy = s.field(yi)
            deltas.append(_amax(fy - field(yi)))
            kx.append(field(xi))
            ky.append(fy)
        x = x + sum(h * b * k for b, k in zip(tab.b, kx, strict=True) if b != 0.0)
        y = y + sum(h * b * k for b, k in zip(tab.b, ky, strict=True) if b != 0.0)
        records.append((h, tab, deltas))
    lo, hi = min(lo, float(x.min()), float(y.min())), max(hi, float(x.max()), float(y.max()))
    lip = float(lipschitz(lo, hi))
    e = torch.zeros(u.shape[0], dtype=u.dtype, device=u.device)
    sup_delta = torch.stack([torch.zeros_like(e), *(d for _, _, deltas in records for d in deltas)]).amax(0)
    for h, tab, deltas in records:
        stage_e = []
        for i in range(len(tab.a)):
            stage_e.append(e + h * sum(abs(tab.a[i][j]) * (lip * stage_e[j] + deltas[j]) for j in range(i)))
        e = e + h * sum(abs(b) * (lip * ei + d) for b, ei, d in zip(tab.b, stage_e, deltas, strict=True))
    return {"psi_F": x, "psi_theta": y, "actual": _amax(x - y), "bound_recursion": e,
            "bound_slides": dt * math.exp(lip * dt) * sup_delta, "sup_delta": sup_delta,
            "lipschitz": lip, "value_range": (lo, hi), "dt": dt}


def diffusion_reaction_lipschitz(alpha: float, kernel: torch.Tensor, reaction_slope: Callable | None = None
                                 ) -> Callable[[float, float], float]:
    """(lo, hi) -> Lip in the max-norm of F(U) = alpha K * U + r(U) (r pointwise) for values in [lo, hi]:
    alpha sum |K_ij| (||U -> K * U||_inf, exact for a circular convolution) + max |r'| on [lo, hi];
    ``reaction_slope(lo, hi)`` gives max |r'| (None: no reaction, the heat equation)."""
    base = float(alpha) * float(torch.as_tensor(kernel).abs().sum())
    return lambda lo, hi: base + (0.0 if reaction_slope is None else float(reaction_slope(lo, hi)))


def fisher_slope(lo: float, hi: float) -> float:
    """max |d/du (u - u^2)| = max |1 - 2u| over [lo, hi] (a linear function: attained at an end)."""
    return max(abs(1 - 2 * lo), abs(1 - 2 * hi))


def field_lipschitz(field) -> Callable[[float, float], float]:
    """``diffusion_reaction_lipschitz`` of a ``HeatField2D`` or ``FisherField2D`` (its reaction: ``fisher_slope``):
    8 alpha/dx^2 (+ max |1 - 2U|) for the 5-point Laplacian."""
    if not isinstance(field, (HeatField2D, FisherField2D)):
        raise ConfigError(f"no Lipschitz rule known for {type(field).__name__}; pass lipschitz=(lo, hi) -> L")
    return diffusion_reaction_lipschitz(float(field.alpha), field.kernel,
                                        fisher_slope if isinstance(field, FisherField2D) else None)


def error_split(net: nn.Module, make_field: Callable[[int], Callable], states: torch.Tensor,
                lipschitz: Callable[[float, float], float] | None = None, *, reference_steps: int = 8,
                space_order: int = 2, next_states: torch.Tensor | None = None) -> dict:
    """The slides' one-step error splitting of ``net`` (a Flow of explicit RK steps over dt) on ``states``
    (batch, 1, n, n), float64. ``make_field(n)`` builds the FD field on the n x n grid; ``lipschitz(lo, hi)``
    is Lip(F) in the max-norm on [lo, hi] (default ``field_lipschitz``); ``next_states`` (the data's U^{n+1})
    is compared with the pixel-grid reference. Returns per-state tensors and a JSON-ready ``summary``."""
    _check_states(states)
    check_int("reference_steps", reference_steps, minimum=1)
    field = make_field(states.shape[-1])
    if lipschitz is None:
        lipschitz = field_lipschitz(field)
    with torch.no_grad():
        net_part = network_term(net, field, states, lipschitz)
        ref = richardson_step(make_field, states, net_part["dt"], reference_steps, space_order)
    classical = _amax(ref["V1"] - net_part["psi_F"])
    total = _amax(ref["u_star"] - net_part["psi_theta"])
    bound = ref["spatial"] + classical + net_part["bound_slides"]
    per_state = {"total": total, "spatial": ref["spatial"], "classical": classical,
                 "network_actual": net_part["actual"], "network_bound": net_part["bound_slides"],
                 "network_bound_recursion": net_part["bound_recursion"], "sup_delta": net_part["sup_delta"],
                 "bound_sum": bound, "observed_order": ref["observed_order"],
                 "reference_time_error": ref["reference_time_error"]}
    summary = _summary(per_state, net_part, field, states)
    if next_states is not None:
        summary["data_next_vs_pixel_reference_max"] = float(_amax(next_states - ref["V1"]).max())
    return {"per_state": per_state, "summary": summary}


def _summary(p: dict, net_part: dict, field, states: torch.Tensor) -> dict:
    """The JSON-ready summary of ``error_split``'s per-state terms ``p``."""
    def stats(key: str) -> dict:
        return {"max": float(p[key].max()), "mean": float(p[key].mean())}

    means = {"spatial": float(p["spatial"].mean()), "classical": float(p["classical"].mean()),
             "network": float(p["network_bound"].mean())}
    means_actual = {**means, "network": float(p["network_actual"].mean())}
    total, bound, order, dt = p["total"], p["bound_sum"], p["observed_order"], net_part["dt"]
    return {
        "norm": "max over pixels, per state; sup/mean over the test states",
        "dt": dt, "dx": field.grid.dx if isinstance(field, (HeatField2D, FisherField2D)) else None,
        "states": int(states.shape[0]),
        "grid": states.shape[-1], "lipschitz": net_part["lipschitz"],
        "lipschitz_value_range": list(net_part["value_range"]),
        "exp_lip_dt": math.exp(net_part["lipschitz"] * dt),
        "measured_total": stats("total"),
        "spatial": {**stats("spatial"), "observed_order_median": float(order.median()),
                    "observed_order_range": [float(order.min()), float(order.max())]},
        "classical": stats("classical"), "network_actual": stats("network_actual"),
        "network_bound": {**stats("network_bound"), "sup_F_theta_minus_F": float(p["sup_delta"].max())},
        "network_bound_recursion": {"max": float(p["network_bound_recursion"].max())},
        "bound_sum": stats("bound_sum"),
        "bound_holds_every_state": bool((total <= bound).all()),
        "tight_bound_holds_every_state": bool(
            (total <= p["spatial"] + p["classical"] + p["network_bound_recursion"]).all()),
        "max_ratio_total_to_bound": float((total / bound).max()),
        "dominant_term_bound": max(means, key=means.get),
        "dominant_term_actual": max(means_actual, key=means_actual.get),
        "reference_time_error_max": float(p["reference_time_error"].max()),
    }


def plot_error_split(result: dict, title: str = "one-step error splitting"):
    """A figure of ``error_split``'s per-state terms (states sorted by the measured error), log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = {k: v.detach().cpu() for k, v in result["per_state"].items()}
    order = torch.argsort(p["total"])
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, style, label in [("bound_sum", "k-", "bound: sum of the three terms"),
                              ("total", "ko", "measured |u(t+dt) - Psi_theta(U)|"),
                              ("spatial", "s--", "spatial (Richardson, dx, dx/2, dx/4)"),
                              ("classical", "^--", "classical |Phi_F - Psi_F|"),
                              ("network_bound", "v--", "network bound dt e^{L dt} sup|F_theta - F|"),
                              ("network_actual", "x:", "network actual |Psi_F - Psi_theta|")]:
        ax.semilogy(range(len(order)), p[key][order].clamp_min(1e-300), style, label=label, markersize=4)
    s = result["summary"]
    ax.set(xlabel="test state (sorted by measured error)", ylabel="max-norm error of one step")
    ax.set_title(f"{title}: dominant term = {s['dominant_term_bound']} (bound), "
                 f"{s['dominant_term_actual']} (actual)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
