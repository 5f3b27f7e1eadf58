import math

import pytest

from dynnets.errors import TableauError
from dynnets.methods import EULER, HEUN, MIDPOINT, RK4_TABLEAU, SSPRK3, ButcherTableau


@pytest.mark.parametrize(
    "tab, order", [(EULER, 1), (HEUN, 2), (MIDPOINT, 2), (SSPRK3, 3), (RK4_TABLEAU, 4)]
)
def test_named_tableaux_have_their_order(tab, order):
    assert tab.order == order


def test_order_is_computed_not_claimed():
    # Heun's weights with Euler's a: consistent but only first order
    tab = ButcherTableau.from_lists([[0, 0], [1, 0]], [1.0, 0.0])
    assert tab.order == 1
    with pytest.raises(TableauError, match="claims order 2"):
        ButcherTableau.from_lists([[0, 0], [1, 0]], [1.0, 0.0], order=2)


def test_implicit_tableau_rejected():
    with pytest.raises(TableauError, match=r"not explicit: a\[0\]\[0\] = 0.5"):
        ButcherTableau.from_lists([[0.5]], [1.0])  # implicit midpoint
    with pytest.raises(TableauError, match=r"a\[0\]\[1\]"):
        ButcherTableau.from_lists([[0, 0.5], [0.5, 0]], [0.5, 0.5], c=[0.5, 0.5])


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
    with pytest.raises(TableauError, match="real numbers"):
        ButcherTableau.from_lists([[0]], ["one"])
