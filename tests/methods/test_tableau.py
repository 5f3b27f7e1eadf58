import math

import pytest

from dynnets.errors import TableauError
from dynnets.methods import ButcherTableau, ExplicitRK, ImplicitRK, stability, trees
from dynnets.methods.tableaux import (
    CLASSIC_RK4,
    DORMAND_PRINCE_5,
    EULER,
    EXPLICIT_MIDPOINT,
    GAUSS_LEGENDRE_1,
    GAUSS_LEGENDRE_2,
    GAUSS_LEGENDRE_3,
    HEUN,
    RADAU_IIA_2,
    RADAU_IIA_3,
    SSPRK3,
)

NAMED = [(EULER, 1), (HEUN, 2), (EXPLICIT_MIDPOINT, 2), (SSPRK3, 3), (CLASSIC_RK4, 4), (DORMAND_PRINCE_5, 5), (GAUSS_LEGENDRE_1, 2), (GAUSS_LEGENDRE_2, 4),
         (GAUSS_LEGENDRE_3, 6), (RADAU_IIA_2, 3), (RADAU_IIA_3, 5)]


@pytest.mark.parametrize("tab, order", NAMED, ids=lambda v: getattr(v, "name", str(v)))
def test_named_tableaux_have_their_order(tab, order):
    assert tab.order == order


def test_rooted_trees_counts_and_densities():
    # OEIS A000081: rooted trees with n vertices; each generated once
    assert [len(trees.trees(n)) for n in range(1, 11)] == [1, 1, 2, 4, 9, 20, 48, 115, 286, 719]
    assert len(set(trees.trees(10))) == 719
    # order 4: bushy [t,t,t] (gamma 4), [t,[t]] (8), [[t,t]] (12), tall [[[t]]] (24) (HNW I, Table II.2.2)
    assert sorted(trees.density(t) for t in trees.trees(4)) == [4, 8, 12, 24]
    # the tall tree of order n has gamma = n!, the bushy one gamma = n
    assert max(trees.density(t) for t in trees.trees(8)) == math.factorial(8)
    assert min(trees.density(t) for t in trees.trees(8)) == 8


def test_order_conditions_fail_exactly_beyond_the_order():
    """Gauss s=3 satisfies every condition up to order 6 to round-off and violates one of order 7 by far
    more (the comparison can fail)."""
    defects: dict[int, float] = {}
    for t, d, _ in trees.order_defects(GAUSS_LEGENDRE_3.a, GAUSS_LEGENDRE_3.b, 7):
        defects[trees.size(t)] = max(defects.get(trees.size(t), 0.0), abs(d))
    assert max(defects[n] for n in range(1, 7)) < 1e-15 and defects[7] > 1e-6


def test_genuine_fifth_order_tableau_accepted_with_its_claim():
    assert DORMAND_PRINCE_5.order == 5
    assert ButcherTableau.from_lists(DORMAND_PRINCE_5.a, DORMAND_PRINCE_5.b, name="dp5", order=5).order == 5
    with pytest.raises(TableauError, match="claims order 6 but satisfies the order conditions only up to order 5"):
        ButcherTableau.from_lists(DORMAND_PRINCE_5.a, DORMAND_PRINCE_5.b, name="dp5", order=6)


def test_order_of_any_weight_vector():
    """The same machinery gives the order of another weight vector (e.g. an embedded pair's b-hat)."""
    assert DORMAND_PRINCE_5.order_of(DORMAND_PRINCE_5.embedded[0]) == 4
    assert CLASSIC_RK4.order_of([0.5, 0.5, 0.0, 0.0]) == 1   # sum 1, but b^T c = 1/4 != 1/2
    assert CLASSIC_RK4.order_of([0.5, 0.4, 0.0, 0.0]) == 0   # not even consistent
    with pytest.raises(TableauError, match="needs 4 entries"):
        CLASSIC_RK4.order_of([1.0])


def test_order_capped_at_two_s_and_claims_beyond_refused():
    assert GAUSS_LEGENDRE_1.max_checked_order == 2 and DORMAND_PRINCE_5.max_checked_order == 10
    with pytest.raises(TableauError, match="checked up to order 2"):
        ButcherTableau.from_lists([[0.5]], [1.0], order=3)


@pytest.mark.parametrize("claim", [0, -3, math.nan, True, 2.0, "2"])
def test_claimed_order_must_be_a_positive_integer(claim):
    with pytest.raises(TableauError, match=f"a claimed order must be a positive integer, got {claim!r}"):
        ButcherTableau.from_lists([[0, 0], [1, 0]], [0.5, 0.5], order=claim)


@pytest.mark.parametrize("big", [1e308, -1e300, 1e13])
def test_huge_entries_refused_at_construction(big):
    with pytest.raises(TableauError, match="beyond 1e\\+12"):
        ButcherTableau.from_lists([[0, 0], [big, 0]], [0.5, 0.5])
    with pytest.raises(TableauError, match="beyond"):
        ButcherTableau([[0.0]], (big,), (0.0,))


def test_consistency_checks_are_scale_aware():
    """c_i = sum_j a_ij and sum b = 1 are checked against the size of the terms they add: a row of large
    cancelling entries is consistent when it sums to c to round-off, and inconsistent when it is off by
    more than round-off of those terms."""
    big = 1e11
    row = [big + 1 / 3, -big]            # sums to 1/3 up to round-off of 1e11 (about 1e-5)
    tab = ButcherTableau.from_lists([[0, 0, 0], [1 / 3, 0, 0], row + [0]], [0.25, 0.25, 0.5])
    assert tab.c[2] == math.fsum(row)
    ButcherTableau.from_lists([[0, 0, 0], [1 / 3, 0, 0], row + [0]], [0.25, 0.25, 0.5], c=[0, 1 / 3, 1 / 3])
    with pytest.raises(TableauError, match="row 2 of A"):
        ButcherTableau.from_lists([[0, 0, 0], [1 / 3, 0, 0], row + [0]], [0.25, 0.25, 0.5], c=[0, 1 / 3, 1 / 3 + 1e-3])
    with pytest.raises(TableauError, match="sum b = 1"):
        ButcherTableau.from_lists([[0, 0], [1, 0]], [0.5, 0.5 + 1e-12])


@pytest.mark.parametrize("tab, symplectic, symmetric", [
    (GAUSS_LEGENDRE_1, True, True), (GAUSS_LEGENDRE_2, True, True), (GAUSS_LEGENDRE_3, True, True), (RADAU_IIA_2, False, False),
    (RADAU_IIA_3, False, False), (CLASSIC_RK4, False, False), (HEUN, False, False), (DORMAND_PRINCE_5, False, False),
], ids=lambda v: getattr(v, "name", str(v)))
def test_algebraic_properties_are_computed(tab, symplectic, symmetric):
    assert tab.is_symplectic is symplectic
    assert tab.is_symmetric is symmetric


def test_symplectic_condition_decides_on_coefficients_not_names():
    """Lobatto IIIA (s = 2, the trapezoidal rule) is symmetric but not symplectic; perturbing one Gauss
    coefficient by 1e-9 breaks both properties."""
    trapezoid = ButcherTableau.from_lists([[0, 0], [0.5, 0.5]], [0.5, 0.5], name="trapezoid", order=2)
    assert trapezoid.is_symmetric and not trapezoid.is_symplectic
    a = [list(r) for r in GAUSS_LEGENDRE_2.a]
    a[0][1] += 1e-9
    bent = ButcherTableau.from_lists(a, GAUSS_LEGENDRE_2.b)
    assert not bent.is_symplectic and not bent.is_symmetric


def test_stability_of_implicit_tableaux():
    """A-stable Gauss and Radau IIA: no real stability limit; R(z) of implicit midpoint is (1 + z/2)/(1 - z/2)."""
    for tab in (GAUSS_LEGENDRE_1, GAUSS_LEGENDRE_2, GAUSS_LEGENDRE_3, RADAU_IIA_2, RADAU_IIA_3):
        assert tab.real_stability_interval == math.inf
    num, den = stability.stability_function(GAUSS_LEGENDRE_1.a, GAUSS_LEGENDRE_1.b)
    assert num == pytest.approx((1.0, 0.5), abs=1e-15) and den == pytest.approx((1.0, -0.5), abs=1e-15)
    assert DORMAND_PRINCE_5.real_stability_interval == pytest.approx(3.3066, abs=1e-4)


def test_explicit_rk_refuses_implicit_tableaux_and_names_the_alternative():
    with pytest.raises(TableauError, match=r"not explicit: a\[0\]\[0\] = 0.5 .*use ImplicitRK"):
        ExplicitRK(GAUSS_LEGENDRE_1)
    with pytest.raises(TableauError, match=r"a\[0\]\[1\]"):
        ExplicitRK(ButcherTableau.from_lists([[0, 0.5], [0.5, 0]], [0.5, 0.5], c=[0.5, 0.5]))
    assert ImplicitRK(GAUSS_LEGENDRE_1).order == 2 and ImplicitRK(CLASSIC_RK4).order == 4


def test_order_is_computed_not_claimed():
    # Heun's weights with Euler's a: consistent but only first order
    tab = ButcherTableau.from_lists([[0, 0], [1, 0]], [1.0, 0.0])
    assert tab.order == 1
    with pytest.raises(TableauError, match="claims order 2"):
        ButcherTableau.from_lists([[0, 0], [1, 0]], [1.0, 0.0], order=2)


def test_inconsistent_row_sums_rejected():
    with pytest.raises(TableauError, match=r"row 1 of A sums to 1.0 but c\[1\] = 0.5"):
        ButcherTableau.from_lists([[0, 0], [1, 0]], [0.5, 0.5], c=[0, 0.5])


def test_weights_must_sum_to_one():
    with pytest.raises(TableauError, match="sum b = 1"):
        ButcherTableau.from_lists([[0, 0], [1, 0]], [0.5, 0.6])


@pytest.mark.parametrize(
    "a, b, c",
    [
        ([[0, 0]], [1, 0], None),  # A not square
        ([[0, 0], [1, 0]], [0.5, 0.5], [0]),  # c too short
        ([[0]], [], None),  # no stages
    ],
)
def test_shape_mismatch_rejected(a, b, c):
    with pytest.raises(TableauError):
        ButcherTableau.from_lists(a, b, c)


def test_non_finite_and_non_numeric_rejected():
    with pytest.raises(TableauError, match="non-finite"):
        ButcherTableau.from_lists([[0, 0], [math.nan, 0]], [0.5, 0.5], c=[0, 0])
    with pytest.raises(TableauError, match="an entry of b must be a real number, got .one."):
        ButcherTableau.from_lists([[0]], ["one"])
