"""The complete graph's threshold lets a round lose exactly the dropouts it is sized for.

Hostile policy review (2026-12-07): the complete graph's (SecAgg's) threshold was
``max(ceil((1 - delta) * n), security minimum)`` in floats, without the 1e-14 nudge every
other count of dropouts takes (:func:`tolerated_dropouts`, the Harary search, the DP
plan). Where ``(1 - delta) * n`` rounds just above an integer (``0.82 * 150`` is
``123.00000000000001``) the threshold came out one above ``n - tolerated_dropouts``: a
round of 150 at ``dropout_fraction = 0.18`` took t = 124 where 27 dropouts (123
survivors) are what it is sized for, and the DP plan counted, so an honest round that lost
exactly its 27 aborted; and ``check_complete_graph_threshold`` refused t = 123 for it. In
a grid of n <= 400 and 2-digit fractions, 171 cases, none in the other direction (the
float product only ever rounded up past the integer), so no threshold was too low. The
security minimum (``ceil(gamma * n)``) keeps fcp's arithmetic: its float error only ever
raises it by one, on the safe side, and a branch's minimum rises with it.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.protocol.graph_params import (
    check_complete_graph_threshold,
    complete_graph_threshold,
    minimum_threshold,
    tolerated_dropouts,
)

#: the fractions operators write (two decimals) and the cohorts where their products are
#: integers, which is where the floats round past them
FRACTIONS = st.integers(0, 89).map(lambda hundredths: hundredths / 100)
COHORTS = st.one_of(st.integers(1, 40).map(lambda m: 50 * m), st.integers(2, 2000))


@settings(max_examples=50, deadline=None)
@given(num_clients=COHORTS, dropout_fraction=FRACTIONS, active=st.booleans())
@example(num_clients=150, dropout_fraction=0.18, active=False)
@example(num_clients=50, dropout_fraction=0.42, active=True)
@example(num_clients=300, dropout_fraction=0.19, active=False)
def test_the_threshold_asks_no_more_survivors_than_the_round_is_sized_for(
    num_clients: int, dropout_fraction: float, active: bool
) -> None:
    survivors = num_clients - tolerated_dropouts(num_clients, dropout_fraction)
    threshold = complete_graph_threshold(
        num_clients,
        corrupt_fraction=0.0,
        dropout_fraction=dropout_fraction,
        semi_malicious=active,
    )
    security = math.ceil(num_clients / 2) + 1 if active else 2  # fcp's, at gamma = 0
    assert threshold == max(survivors, security)
    # the survivors the decimal fraction leaves, exactly: never fewer are asked for
    exact = math.ceil((1 - Fraction(str(dropout_fraction))) * num_clients)
    assert threshold >= min(exact, num_clients)
    if survivors >= max(security, 2):
        check_complete_graph_threshold(
            num_clients,
            survivors,
            corrupt_fraction=0.0,
            dropout_fraction=dropout_fraction,
            semi_malicious=active,
        )


@settings(max_examples=50, deadline=None)
@given(
    num_clients=COHORTS,
    corrupt_fraction=st.integers(0, 899).map(lambda thousandths: thousandths / 1000),
    active=st.booleans(),
)
@example(num_clients=100, corrupt_fraction=0.07, active=False)  # 0.07 * 100 = 7.000000000000001
def test_the_security_minimum_is_never_below_the_exact_rule(
    num_clients: int, corrupt_fraction: float, active: bool
) -> None:
    """The other float product of the complete graph, ``ceil(gamma * n)``, kept as fcp has
    it: against the decimal fraction's exact rule (``t > ceil(gamma n)``, active ``t >
    ceil((n + gamma n) / 2)``) it is at most one above (an honest round of a branch of the
    same fraction computes the same), never below (no threshold too low)."""
    gamma = Fraction(str(corrupt_fraction))
    exact = math.ceil((num_clients + gamma * num_clients) / 2 if active else gamma * num_clients)
    minimum = minimum_threshold(
        num_clients,
        num_clients - 1,
        semi_malicious=active,
        corrupt_fraction=corrupt_fraction,
        dropout_fraction=0.0,
        min_colluders=0,
    )
    if minimum is None:  # no threshold up to n: the exact rule has none either, or one at n
        assert exact + 1 >= num_clients
        return
    assert exact + 1 <= minimum <= exact + 2
