"""Cayley step for skew-product fields F(x) = S(x) x (trait ``SkewProduct``, interface ``skew(x)``).

    x' = (I - h/2 S(x))^{-1} (I + h/2 S(x)) x,   S frozen at the current point.

For skew S the Cayley transform cay(hS) = (I - hS/2)^{-1}(I + hS/2) is orthogonal (Hairer, Lubich,
Wanner, Geometric Numerical Integration, IV.8.3), so ||x'|| = ||x||. I - hS/2 is invertible for every
h since the eigenvalues of a skew matrix are imaginary. Freezing S at x makes the step first order in h.
It has no explicit inverse (recovering x from x' needs S at the unknown x).

Low rank (a field whose ``skew_factors(x)`` gives W = [U V], S = W J W^T with J = [[0, I], [-I, 0]]; at
rank 1 the step below is solved in closed form by Cramer's rule, ``_PlaneCayley``):
cay(hS) = 2 (I - hS/2)^{-1} - I and the Woodbury identity give

    x' = x + h W (I - h/2 J G)^{-1} J W^T x = x + h W (J^T - h/2 G)^{-1} W^T x,      G = W^T W  (2k x 2k),

one 2k x 2k solve per sample instead of an n x n one (the second form multiplies the system by J^T,
J^T J = I: a constant matrix J^T replaces permuting G and W^T x, and partial pivoting picks the same
rows). I - h/2 J G is invertible for every h: J G and W J W^T = S have the same non-zero eigenvalues, all
imaginary; so is J^T - h/2 G = J^T (I - h/2 J G).

Numerically the guarantee holds for every step size: for h > 2 both systems are divided by h/2 (so h S / 2
never overflows: (e I - S) x' = (e I + S) x, resp. (e J^T - G) z = 2 W^T x with e = 2/h), and the result
is rescaled radially by |x| / |x'| (exactly 1 in exact arithmetic), which removes the solve's error growth
with h |S|; a step so large that 2/h underflows in the state's dtype is refused (StepSizeError).
"""

from __future__ import annotations

import torch

from ..base import Method
from ..errors import ShapeError, StepSizeError
from ..linalg import norm_ratio
from ..structure import QuadraticInvariant, SkewProduct


def _system_scale(h, dtype) -> tuple:
    """(a, c) with the Cayley system written as (a I - c S) x' = (a I + c S) x: (1, h/2), or (2/h, 1) for
    h > 2 so that h S / 2 cannot overflow for any finite h whose inverse the dtype can represent. A learned
    (tensor) h is bounded by its parametrisation and uses (1, h/2): no host synchronisation."""
    if isinstance(h, float) and h > 2.0:
        e = 2.0 / h
        if e < torch.finfo(dtype).tiny:
            raise StepSizeError(f"Cayley step h={h:g} is too large for {dtype}: 2/h underflows (rule: "
                                f"h <= 2 / {torch.finfo(dtype).tiny:.3g})")
        return e, 1.0
    return 1.0, h / 2


def _plane_step(u: torch.Tensor, v: torch.Tensor, x: torch.Tensor, a, c) -> torch.Tensor:
    """The Cayley step for rank k = 1, S = u v^T - v u^T (a rotation in the plane of u and v), with the
    radial rescale, in closed form (``_PlaneCayley``): no LAPACK call and no autograd graph of its ~40
    small operations on (batch,)-shaped scalars, whose per-operation cost dominated this step."""
    return _PlaneCayley.apply(x, u, v, a, c)[0]


class _PlaneCayley(torch.autograd.Function):
    """y = rho x' with (a I - c S) x' = (a I + c S) x, S = u v^T - v u^T, rho = |x| / |x'| (1 in exact
    arithmetic), per row; a > 0 a number, c > 0 a number or a 0-d tensor (a learned h).

    Scale-safe: the system is divided by m = a + c (|u|^2 + |v|^2) >= a, i.e. solved as (e I - S^) x' =
    (e I + S^) x with e = a / m <= 1 and S^ = (c / m) S = u^ v^^T - v^ u^^T, u^ = s u, v^ = s v,
    s = sqrt(c / m): every entry below is at most 1 in size (nothing overflows before |u|^2 does, as in the
    Gram matrix of the general Woodbury path). With alpha = u^.x, beta = v^.x, p = |u^|^2, q = |v^|^2,
    r = u^.v^ the 2 x 2 Woodbury system has det = e^2 + p q - r^2 >= e^2 > 0 (a Gram determinant is >= 0)
    and Cramer's rule gives x' = x + g_u u^ + g_v v^,

        g_u = 2 (beta (e + r) - alpha q) / det,      g_v = -2 (alpha (e - r) + beta p) / det.

    The backward is the chain rule through these scalars, written out. x' does not depend on m (it scales
    e and s^2 alike), so m is a constant for it; c acts through s only. rho corrects round-off only: it is
    identically 1 as a function of (x, u, v, c) in exact arithmetic, so its derivative is 0 and the backward
    treats it as the constant it computed (tests: gradcheck, equality with the dense n x n solve). The
    scalars are an extra output saved for the backward, not differentiable."""

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
    """W^T W per sample for w = W^T of shape (batch, m, n), by one batched matmul whose backward is also a
    plain batched matmul: half = w w_const^T carries the gradient through its first factor only, and adding
    (half - half_const)^T (zero in value) adds the second factor's share, (G_bar + G_bar^T) w in total.
    Autograd's own backward of w w^T multiplies by a transposed batch, about 10x slower on CPU for these
    small matrices (as is a broadcast product over (batch, m, m, n))."""
    half = torch.bmm(w, w.detach().transpose(1, 2))
    return half + (half - half.detach()).transpose(1, 2)


def _scaled_jt(k: int, a, like: torch.Tensor) -> torch.Tensor:
    """a J^T = a [[0, -I_k], [I_k, 0]], a constant on ``like``'s dtype and device."""
    jt = torch.eye(2 * k, dtype=like.dtype, device=like.device).roll(k, 0)  # [[0, I], [I, 0]]
    jt[:k].neg_()
    return jt if a == 1.0 else a * jt


class Cayley(Method):
    """x' = (I - h/2 S(x))^{-1} (I + h/2 S(x)) x for fields exposing ``skew(x)``; through the Woodbury
    identity (a 2k x 2k solve) for fields exposing low-rank ``skew_factors(x)``. Order 1."""

    name = "Cayley"
    order = 1
    requires = (SkewProduct,)

    def step(self, field, x: torch.Tensor, h) -> torch.Tensor:
        if x.dim() != 2:  # one system per state: a (2, 5, dim) batch has no single S(x) per row
            raise ShapeError(f"Cayley solves one system per state: it takes states (batch, dim) with one batch axis, "
                             f"got shape {tuple(x.shape)}; reshape the batch to one axis")
        a, c = _system_scale(h, x.dtype)
        factors = field.skew_factors(x)
        if factors is not None and factors.shape[1] == 2:  # rank 1: closed form, rescale included
            return _plane_step(factors[:, 0], factors[:, 1], x, a, c)
        out = self._dense(field.skew(x), x, a, c) if factors is None else self._woodbury(factors, x, a, c)
        # cay(hS) is orthogonal, but the solve is accurate only to about cond eps ~ h |S| eps: the radial
        # factor |x| / |x'| (1 in exact arithmetic) restores |x'| = |x| to a few roundings for every h
        # (float32, h = 1e7: 6.6e-5 without it, 1.2e-7 with it). As a function of (x, h, parameters) it is
        # identically 1 in exact arithmetic, so its derivative is 0: it is a constant for autograd (the
        # gradient is that of the exact Cayley map, scaled by the factor), and its ~10 operations record
        # no graph
        with torch.no_grad():
            ratio = norm_ratio(x, out)
        return out * ratio

    @staticmethod
    def _dense(s: torch.Tensor, x: torch.Tensor, a, c) -> torch.Tensor:
        """Solve (a I - c S) x' = (a I + c S) x (one n x n system per sample)."""
        eye = torch.eye(s.shape[-1], dtype=s.dtype, device=s.device)
        sx = (s @ x.unsqueeze(-1)).squeeze(-1)
        lhs, rhs = (eye - c * s, x + c * sx) if a == 1.0 else (a * eye - c * s, a * x + c * sx)
        # a I - c S is never singular for skew S, so the unchecked solver is safe (and ~50x faster for
        # small batched systems than linalg.solve, whose error check synchronises)
        return torch.linalg.solve_ex(lhs, rhs.unsqueeze(-1))[0].squeeze(-1)

    @staticmethod
    def _woodbury(w: torch.Tensor, x: torch.Tensor, a, c) -> torch.Tensor:
        """x' = x + W z with (a J^T - c G) z = 2 c W^T x (module docstring); w = W^T, shape (batch, 2k, n)."""
        w = w.contiguous()  # the batched products below are several times slower on a strided layout
        y = (w * x.unsqueeze(1)).sum(-1, keepdim=True)                # W^T x, (batch, 2k, 1)
        lhs = _scaled_jt(w.shape[1] // 2, a, w) - c * _gram(w)        # G = W^T W, (batch, 2k, 2k)
        z = torch.linalg.solve_ex(lhs, (2 * c) * y)[0]                # never singular (docstring)
        return x + (z * w).sum(1)

    def guarantees(self, field, h) -> frozenset:
        return frozenset({QuadraticInvariant.norm()})
