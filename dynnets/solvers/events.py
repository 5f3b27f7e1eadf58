"""Events of an error-controlled solve: the first time each sample's g(t, x(t)) crosses zero.

A sign change of g over an accepted step is located on the step's dense output by the Illinois method
(Dahlquist and Bjorck 1974) to a few ulp of t. The event time is differentiable by the implicit function
theorem (as torchdiffeq's ``odeint_event``):

    d t* / d theta = -(dg/d theta + dg/dx . dx/d theta) / (dg/dt + dg/dx . F(t*, x*)),

as the straight-through t* - (g - g.detach()) / D; the event state is x* + (t* - t*.detach()) F(t*, x*).
Each sample's g must depend on its own row only.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError, ConfigTypeError, ShapeError
from ..methods.tableau import dense_weights_at

#: the most Illinois iterations per located event (each halves the bracket at worst every other step)
MAX_ITERATIONS = 200


class EventTracker:
    """Brackets and locates the zeros of ``event`` along an error-controlled solve (module docstring);
    ``direction`` -1 for a solve backwards in time (the event gets the true time t = -s)."""

    def __init__(self, event, terminal: bool, direction: float, pair, field, x0: torch.Tensor, t0: float):
        if not callable(event):
            raise ConfigTypeError(f"event must be a callable event(t, x) -> one value per sample, got "
                                  f"{type(event).__name__}")
        if pair.dense is None:
            raise ConfigError(f"events are located on the dense output, {pair.name} has none (rule: a pair with "
                              "dense output, e.g. DormandPrince5)")
        self.event, self.terminal, self.direction, self.pair, self.field = event, terminal, direction, pair, field
        self.batch, self.evaluations, self.located = x0.shape[0], 0, []
        self.found = torch.zeros(self.batch, dtype=torch.bool)
        self.previous = self._g(torch.full((self.batch,), t0, dtype=torch.float64), x0).detach()

    def _g(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """g at the solve's times s (per row) as a float64 (batch,) tensor."""
        out = self.event((self.direction * s).to(x.dtype), x)
        if not isinstance(out, torch.Tensor) or out.numel() != x.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ShapeError(f"event(t, x) returned {shape} for {x.shape[0]} states of shape {tuple(x.shape)} (rule: "
                             "one value per state, shape (batch,))")
        return out.reshape(-1).to(torch.float64)

    def _dense(self, h: float, x: torch.Tensor, ks: list, theta: torch.Tensor) -> torch.Tensor:
        """The pair's interpolant of the step of size h from x with stages ``ks`` at per-row theta."""
        weights = dense_weights_at(self.pair.dense, theta.to(x.dtype))[:self.pair.dense_stages]
        shape = (-1, *[1] * (x.dim() - 1))
        return x + h * sum(w.reshape(shape) * k for w, k in zip(weights, ks))

    def after_step(self, segment, x_new: torch.Tensor) -> bool:
        """Locate the events of this accepted step; True when a terminal solve should stop."""
        _, t, h, x, ks = segment
        with torch.no_grad():
            g = self._g(torch.full((self.batch,), t + h, dtype=torch.float64), x_new)
            rows = (~self.found & ((g == 0) | (torch.sign(g) * torch.sign(self.previous) < 0))).nonzero()[:, 0]
        if len(rows):
            self.evaluations += self.pair.complete_dense(self.field, x, h, t, ks)  # with autograd
            with torch.no_grad():
                self.located.append((rows, segment, self._illinois(segment, rows, self.previous[rows], g[rows])))
                self.found[rows] = True
        self.previous = g
        return self.terminal and bool(self.found.all())

    def _illinois(self, segment, rows, g_lo: torch.Tensor, g_hi: torch.Tensor) -> torch.Tensor:
        """theta in [0, 1] of the root of g on the interpolant of ``segment`` for each row of ``rows``."""
        _, t, h, x, ks = segment
        x, ks = x[rows], [k[rows] for k in ks]
        lo, hi = torch.zeros_like(g_lo), torch.ones_like(g_hi)
        theta, side = hi.clone(), torch.zeros_like(g_lo)
        width = 4 * math.ulp(abs(t) + abs(h)) / h
        for _ in range(MAX_ITERATIONS):
            done = (g_hi == 0) | (hi - lo <= width)
            if bool(done.all()):
                break
            theta = torch.where(done, hi, (lo * g_hi - hi * g_lo) / (g_hi - g_lo)).clamp(0.0, 1.0)
            g = self._g(t + theta * h, self._dense(h, x, ks, theta).detach())
            move_lo = torch.sign(g) == torch.sign(g_lo)
            # Illinois: the end kept twice in a row has its value halved
            g_hi = torch.where(move_lo & (side > 0), g_hi / 2, g_hi)
            g_lo = torch.where(~move_lo & (side < 0), g_lo / 2, g_lo)
            lo, g_lo = torch.where(move_lo & ~done, theta, lo), torch.where(move_lo & ~done, g, g_lo)
            hi, g_hi = torch.where(~move_lo & ~done, theta, hi), torch.where(~move_lo & ~done, g, g_hi)
            side = torch.where(move_lo, 1.0, -1.0)
        return torch.where(g_hi == 0, hi, theta)

    def result(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(event times (batch,), event states (batch, ...)), NaN for a sample without an event;
        differentiable (module docstring). Times are the true times (direction applied)."""
        times = torch.full((self.batch,), math.nan, dtype=torch.float64)
        states = torch.full_like(x0, math.nan)
        for rows, (_, t, h, x, ks), theta in self.located:
            s_star = t + theta * h
            x_star = self._dense(h, x[rows], [k[rows] for k in ks], theta)
            g = self._g(s_star, x_star)
            slope, f = self._slope(s_star, x_star.detach())
            s_st = s_star - (g - g.detach()) / slope
            times = times.index_copy(0, rows, self.direction * s_st)
            states = states.index_copy(0, rows, x_star + (s_st - s_star).to(x_star.dtype).reshape(
                -1, *[1] * (x_star.dim() - 1)) * f)
        return times, states

    def _slope(self, s: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(dg/ds + dg/dx . G(s, x) per row, G(s, x)) at the located events, detached (G the solve's field)."""
        with torch.enable_grad():
            s, x = s.detach().requires_grad_(True), x.detach().requires_grad_(True)
            f = self.field.at(s.to(x.dtype), x).detach()
            g_s, g_x = torch.autograd.grad(self._g(s, x).sum(), (s, x), allow_unused=True)
        slope = (g_x * f).flatten(1).sum(1).to(torch.float64) if g_x is not None else torch.zeros_like(s)
        return (slope + (g_s if g_s is not None else 0.0)).detach(), f
