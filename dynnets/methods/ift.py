"""Exact gradients of an implicit Runge-Kutta step by the implicit function theorem.

For G(K) = K - F(x + h (A (x) I) K) = 0, dG/dK = M = I - h [a_ij J_i], J_i = DF(X_i). The backward stores
only x, K, h and the parameters and solves the adjoint system once,

    M^T mu = K_bar,      M^T = I - h [a_ji J_j^T]_(ij),   J_i at the converged stages,

then one VJP of F at the stages gives X_bar_i = J_i^T mu_i and the parameters' gradient; x_bar = sum_i
X_bar_i, h_bar = sum_i X_bar_i . (A K)_i. A vmap rule serves ``torch.func`` (docs/structure.md, Gradients).
"""

from __future__ import annotations

import torch

from ..memory import transforms_active
from .newton import StageProblem


def adjoint(problem, x, h, K, params, grad_K):
    """(x_bar, h_bar, params_bar) for the incoming grad_K (module docstring)."""
    shape = x.shape[1:]
    X = problem.stage_points(x.reshape(x.shape[0], -1), h, K)
    # a plain first-order backward with the field's own parameters: F's derivatives from its ``linearizer`` at
    # the stages (a closed form shares their work; no functional_call rebinding the module per call)
    plain = not (torch.is_grad_enabled() or transforms_active() or not problem._is_own(params))
    lin = problem.field.linearizer()(X.reshape(-1, *shape)) if plain else None
    J = lin.jacobian().reshape(*K.shape, K.shape[-1]) if plain else problem.jacobian_at(params, X, shape)
    M = problem.newton_matrix(J, h)
    mu = torch.linalg.solve(M.transpose(-1, -2), grad_K.reshape(grad_K.shape[0], -1, 1)).reshape(K.shape)
    if plain:
        X_bar, params_bar = lin.vjp(mu.reshape(-1, *shape), params)
        X_bar = X_bar.reshape(K.shape)
    else:
        _, vjp = torch.func.vjp(lambda points, *ps: problem.field_at(ps, points, shape), X, *params)
        X_bar, *params_bar = vjp(mu)
    h_bar = (X_bar * problem.combine(problem.a_like(K), K)).sum()
    return X_bar.sum(dim=1).reshape(x.shape), h_bar, params_bar


class StageSolve(torch.autograd.Function):
    """K = stages(x, h, parameters) with the implicit-function-theorem backward (module docstring)."""

    @staticmethod
    def forward(x, h, problem: StageProblem, *params):
        return problem.solve(x, float(h), params).stages

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, h, problem, *params = inputs
        ctx.problem = problem
        ctx.h_is_tensor = isinstance(h, torch.Tensor)
        ctx.h = None if ctx.h_is_tensor else h
        ctx.save_for_backward(x, output, *((h,) if ctx.h_is_tensor else ()), *params)

    @staticmethod
    def backward(ctx, grad_K):
        x, K, *rest = ctx.saved_tensors
        h = rest.pop(0) if ctx.h_is_tensor else ctx.h
        x_bar, h_bar, params_bar = adjoint(ctx.problem, x, h, K, tuple(rest), grad_K)
        return (x_bar, h_bar if ctx.h_is_tensor else None, None, *params_bar)

    @staticmethod
    def vmap(info, in_dims, x, h, problem, *params):
        """Merge a vmapped dimension of x into the batch (the solve is batched over samples); when h or a
        parameter is vmapped, solve each slice."""
        x_dim, h_dim, _, *p_dims = in_dims
        if h_dim is None and all(d is None for d in p_dims) and x_dim is not None:
            xs = x.movedim(x_dim, 0)
            K = StageSolve.apply(xs.reshape(-1, *xs.shape[2:]), h, problem, *params)
            return K.reshape(xs.shape[0], xs.shape[1], *K.shape[1:]), 0

        def pick(t, d, v):
            return t if d is None else t.select(d, v)

        outs = [StageSolve.apply(pick(x, x_dim, v), pick(h, h_dim, v), problem,
                                 *(pick(p, d, v) for p, d in zip(params, p_dims)))
                for v in range(info.batch_size)]
        return torch.stack(outs), 0
