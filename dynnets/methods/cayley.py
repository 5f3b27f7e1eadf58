"""Cayley step for skew-product fields F(x) = S(x) x (trait ``SkewProduct``, interface ``skew(x)``).

    x' = (I - h/2 S(x))^{-1} (I + h/2 S(x)) x,   S frozen at the current point.

For skew S, cay(hS) is orthogonal (Hairer, Lubich, Wanner, GNI IV.8.3), so ||x'|| = ||x||; I - hS/2 is
invertible for every h. Freezing S at x makes the step first order; it has no explicit inverse.

Low rank (``skew_factors(x)`` gives W = [U V], S = W J W^T, J = [[0, I], [-I, 0]]): by Woodbury,

    x' = x + h W (J^T - h/2 G)^{-1} W^T x,      G = W^T W  (2k x 2k, invertible for every h),

one 2k x 2k solve per sample; rank 1 is solved in closed form (``_PlaneCayley``). For h > 2 both systems
are divided by h/2 (no overflow), and the result is rescaled radially by |x| / |x'| (1 in exact
arithmetic); a step whose 2/h underflows in the state's dtype raises StepSizeError.
"""

from __future__ import annotations

import torch

from ..base import Method
from ..errors import ShapeError, StepSizeError
from ..linalg import norm_ratio
from ..structure import QuadraticInvariant, SkewProduct


class _PlaneCayley(torch.autograd.Function):
    """y = rho x' with (a I - c S) x' = (a I + c S) x, S = u v^T - v u^T, rho = |x| / |x'|, per row; a > 0 a
    number, c > 0 a number or a 0-d tensor (a learned h). Divided by m = a + c (|u|^2 + |v|^2): e = a / m,
    u^ = s u, v^ = s v, s = sqrt(c / m) (entries <= 1). With alpha = u^.x, beta = v^.x, p = |u^|^2,
    q = |v^|^2, r = u^.v^, det = e^2 + p q - r^2 >= e^2 > 0, Cramer's rule gives x' = x + g_u u^ + g_v v^,

        g_u = 2 (beta (e + r) - alpha q) / det,      g_v = -2 (alpha (e - r) + beta p) / det.

    The backward is the chain rule through these scalars (m constant, c through s, rho a constant: it is 1
    in exact arithmetic); ``scalars`` is a non-differentiable output saved for it."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, u, v, a, c):
        p0, q0, r0 = (u * u).sum(-1), (v * v).sum(-1), (u * v).sum(-1)
        alpha0, beta0 = (u * x).sum(-1), (v * x).sum(-1)
        m = a + c * (p0 + q0)
        sq = c / m
        s, e = torch.sqrt(sq), a / m
        p, q, r, alpha, beta = sq * p0, sq * q0, sq * r0, s * alpha0, s * beta0
        det = (e * e + p * q - r * r).clamp_min(torch.finfo(x.dtype).tiny)
        gu = 2 * (beta * (e + r) - alpha * q) / det
        gv = -2 * (alpha * (e - r) + beta * p) / det
        xp = torch.addcmul(torch.addcmul(x, (s * gu).unsqueeze(-1), u), (s * gv).unsqueeze(-1), v)
        # |x| / |x'| as in ``norm_ratio``, both rows divided by max |x_i| first (no overflow; |x'| = |x| up
        # to round-off), 1 for x = 0
        inv = 1.0 / x.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        nx = torch.linalg.vector_norm(x * inv, dim=-1)
        nxp = torch.linalg.vector_norm(xp * inv, dim=-1)
        rho = torch.where(nxp > 0, nx / torch.where(nxp > 0, nxp, 1.0), 1.0)
        scalars = torch.stack([alpha, beta, p, q, r, det, gu, gv, rho, s, e, alpha0, beta0, p0, q0, r0], dim=-1)
        return xp * rho.unsqueeze(-1), scalars

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, u, v, a, c = inputs
        _, scalars = output
        ctx.mark_non_differentiable(scalars)
        ctx.c_tensor = isinstance(c, torch.Tensor)
        ctx.c = None if ctx.c_tensor else c
        ctx.save_for_backward(x, u, v, scalars, *((c,) if ctx.c_tensor else ()))

    @staticmethod
    def backward(ctx, y_bar, _scalars_bar):
        x, u, v, scalars, *c = ctx.saved_tensors
        c = c[0] if ctx.c_tensor else ctx.c
        alpha, beta, p, q, r, det, gu, gv, rho, s, e, alpha0, beta0, p0, q0, r0 = scalars.unbind(-1)
        d_bar = y_bar * rho.unsqueeze(-1)  # the cotangent of x' (and of the displacement g_u u^ + g_v v^)
        du, dv = (u * d_bar).sum(-1), (v * d_bar).sum(-1)  # u.d_bar, v.d_bar; g_u_bar = s du
        nu_bar, nv_bar = 2 * s * du / det, -2 * s * dv / det
        det_bar = -s * (gu * du + gv * dv) / det
        p_bar = q * det_bar + beta * nv_bar
        q_bar = p * det_bar - alpha * nu_bar
        r_bar = -2 * r * det_bar + beta * nu_bar - alpha * nv_bar
        alpha_bar = (e - r) * nv_bar - q * nu_bar
        beta_bar = (e + r) * nu_bar + p * nv_bar
        # u^_bar = g_u d_bar + alpha_bar x + 2 p_bar u^ + r_bar v^, and u_bar = s u^_bar (likewise v)
        s2 = s * s

        def col(t):
            return t.unsqueeze(-1)

        # out of place: torch.func transforms (dn.testing's Jacobians) vmap this backward
        u_bar = torch.addcmul(torch.addcmul(torch.addcmul(col(s * gu) * d_bar, col(s * alpha_bar), x),
                                            col(2 * s2 * p_bar), u), col(s2 * r_bar), v)
        v_bar = torch.addcmul(torch.addcmul(torch.addcmul(col(s * gv) * d_bar, col(s * beta_bar), x),
                                            col(2 * s2 * q_bar), v), col(s2 * r_bar), u)
        x_bar = torch.addcmul(torch.addcmul(d_bar, col(s * alpha_bar), u), col(s * beta_bar), v)
        c_bar = None
        if ctx.needs_input_grad[4]:
            # s_bar = u^_bar.u + v^_bar.v from the scalars; ds/dc = s / (2c) at fixed m
            s_bar = (gu * du + gv * dv + alpha_bar * alpha0 + beta_bar * beta0
                     + 2 * s * (p_bar * p0 + q_bar * q0 + r_bar * r0))
            c_bar = (s_bar * s).sum() / (2 * c)
        return x_bar, u_bar, v_bar, None, c_bar


def _gram(w: torch.Tensor) -> torch.Tensor:
    """W^T W per sample for w = W^T (batch, m, n): half = w w_const^T plus (half - half_const)^T (zero in
    value) gives the gradient (G_bar + G_bar^T) w with plain batched matmuls in the backward."""
    half = torch.bmm(w, w.detach().transpose(1, 2))
    return half + (half - half.detach()).transpose(1, 2)


class Cayley(Method):
    """The Cayley step (module docstring); Woodbury's 2k x 2k solve for low-rank ``skew_factors``. Order 1."""

    name = "Cayley"
    order = 1
    requires = (SkewProduct,)

    def step(self, field, x: torch.Tensor, h) -> torch.Tensor:
        if x.dim() != 2:  # one system per state: a (2, 5, dim) batch has no single S(x) per row
            raise ShapeError(f"Cayley solves one system per state: it takes states (batch, dim) with one "
                             f"batch axis, got shape {tuple(x.shape)}; reshape the batch to one axis")
        # the system (a I - c S) x' = (a I + c S) x: (2/h, 1) for a float h > 2, else (1, h/2) (a learned
        # tensor h is bounded by its parametrisation)
        a, c = (2.0 / h, 1.0) if isinstance(h, float) and h > 2.0 else (1.0, h / 2)
        if a < torch.finfo(x.dtype).tiny:
            raise StepSizeError(f"Cayley step h={h:g} is too large for {x.dtype}: 2/h underflows (rule: "
                                f"h <= 2 / {torch.finfo(x.dtype).tiny:.3g})")
        factors = field.skew_factors(x)
        if factors is not None and factors.shape[1] == 2:  # rank 1: closed form, rescale included
            return _PlaneCayley.apply(x, factors[:, 0], factors[:, 1], a, c)[0]
        out = self._dense(field.skew(x), x, a, c) if factors is None else self._woodbury(factors, x, a, c)
        # the solve is accurate to ~h |S| eps; |x| / |x'| (identically 1 in exact arithmetic, so a constant
        # for autograd) restores |x'| = |x| to a few roundings for every h
        with torch.no_grad():
            ratio = norm_ratio(x, out)
        return out * ratio

    @staticmethod
    def _dense(s: torch.Tensor, x: torch.Tensor, a, c) -> torch.Tensor:
        """Solve (a I - c S) x' = (a I + c S) x (one n x n system per sample)."""
        eye = torch.eye(s.shape[-1], dtype=s.dtype, device=s.device)
        sx = (s @ x.unsqueeze(-1)).squeeze(-1)
        lhs, rhs = (eye - c * s, x + c * sx) if a == 1.0 else (a * eye - c * s, a * x + c * sx)
        # a I - c S is never singular for skew S: the unchecked solver is safe
        return torch.linalg.solve_ex(lhs, rhs.unsqueeze(-1))[0].squeeze(-1)

    @staticmethod
    def _woodbury(w: torch.Tensor, x: torch.Tensor, a, c) -> torch.Tensor:
        """x' = x + W z with (a J^T - c G) z = 2 c W^T x (module docstring); w = W^T, shape (batch, 2k, n)."""
        w = w.contiguous()  # the batched products below are several times slower on a strided layout
        y = (w * x.unsqueeze(1)).sum(-1, keepdim=True)                # W^T x, (batch, 2k, 1)
        k = w.shape[1] // 2
        jt = torch.eye(2 * k, dtype=w.dtype, device=w.device).roll(k, 0)  # [[0, I], [I, 0]]
        jt[:k].neg_()                                                 # J^T = [[0, -I], [I, 0]]
        lhs = (jt if a == 1.0 else a * jt) - c * _gram(w)             # G = W^T W, (batch, 2k, 2k)
        z = torch.linalg.solve_ex(lhs, (2 * c) * y)[0]                # never singular (docstring)
        return x + (z * w).sum(1)

    def guarantees(self, field, h) -> frozenset:
        return frozenset({QuadraticInvariant.norm()})
