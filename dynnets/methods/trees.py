"""Rooted trees and the Runge-Kutta order conditions (Butcher; Hairer, Norsett, Wanner I, II.2).

(A, b) has order >= p iff b^T Phi(t) = 1 / gamma(t) for every rooted tree t with |t| <= p vertices, where
for t = [t_1, ..., t_m] (the root's subtrees)

    Phi(t)_i = prod_k (A Phi(t_k))_i        (Phi(leaf) = 1),
    gamma(t) = |t| * prod_k gamma(t_k)      (gamma(leaf) = 1).

A tree is the tuple of its root's subtrees in canonical order (the leaf is ``()``), so equal trees are equal
tuples. Any weight vector can be checked (the b-hat of an embedded pair too).
"""

from __future__ import annotations

import math
from functools import cache

Tree = tuple  # tuple[Tree, ...]: the root's subtrees, in the canonical order of ``trees``

#: orders up to which the conditions are generated (an s-stage method has order <= 2 s, so this is exact
#: for s <= 5 and a lower bound "at least MAX_ORDER" beyond)
MAX_ORDER = 10
EPS = 2.0 ** -52


def _forests(total: int, bound: tuple[int, int]):
    """Each multiset of trees with ``total`` vertices once, keys (order, index) non-increasing, <= ``bound``."""
    if total == 0:
        yield ()
        return
    for n in range(min(total, bound[0]), 0, -1):
        limit = bound[1] if n == bound[0] else len(trees(n)) - 1
        for index in range(limit, -1, -1):
            for rest in _forests(total - n, (n, index)):
                yield (trees(n)[index], *rest)


@cache
def trees(order: int) -> tuple[Tree, ...]:
    """All rooted trees with exactly ``order`` vertices, each once, in canonical form."""
    if order < 1:
        raise ValueError(f"a rooted tree has at least one vertex, got order={order}")
    if order == 1:
        return ((),)  # the leaf
    return tuple(_forests(order - 1, (order - 1, len(trees(order - 1)) - 1)))


@cache
def size(tree: Tree) -> int:
    """|t|, the number of vertices."""
    return 1 + sum(size(child) for child in tree)


@cache
def density(tree: Tree) -> int:
    """gamma(t) = |t| prod_k gamma(t_k)."""
    return size(tree) * math.prod(density(child) for child in tree)


def _elementary_weights(a):
    """tree -> Phi(t) for the stage matrix A, memoised."""
    @cache
    def phi(tree: Tree) -> tuple[float, ...]:
        got = (1.0,) * len(a)
        for child in tree:
            below = phi(child)
            got = tuple(g * math.fsum(aij * vj for aij, vj in zip(row, below)) for g, row in zip(got, a))
        return got

    return phi


def order_defects(a, weights, up_to: int):
    """(t, b^T Phi(t) - 1/gamma(t), |b|^T |Phi|(t)) for each tree with |t| <= up_to: defect and scale (the
    round-off scale |Phi| from |A|)."""
    phi = _elementary_weights(a)
    phi_abs = _elementary_weights(tuple(tuple(abs(v) for v in row) for row in a))
    for n in range(1, up_to + 1):
        for t in trees(n):
            value = math.fsum(bi * p for bi, p in zip(weights, phi(t)))
            scale = math.fsum(abs(bi) * p for bi, p in zip(weights, phi_abs(t)))
            yield t, value - 1.0 / density(t), scale


def order_of(a, weights, up_to: int) -> int:
    """The largest p <= up_to such that every order condition with |t| <= p holds to round-off:
    |defect| <= 4 (|t| + s) eps scale + eps / gamma(t) (|t| factors, s-term sums)."""
    stages = len(weights)
    failed = up_to + 1
    for t, defect, scale in order_defects(a, weights, up_to):
        if size(t) >= failed:
            break
        if not abs(defect) <= 4.0 * (size(t) + stages) * EPS * scale + EPS / density(t):
            failed = size(t)
    return failed - 1
