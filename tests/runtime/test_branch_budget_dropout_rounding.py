"""A branch's honest-share count assumes as many dropouts as SecAgg+ tolerates.

``honest_shares`` floored ``dropout_fraction * n`` in plain floats: 0.29 * 100 is
28.999999999999996, so it assumed 28 dropouts where the protocol (and, since the DP
layer's review of 2026-12-06, the plan: ``graph_params.tolerated_dropouts``) sizes a
round for 29, and the branch counted one honest noise share more than such a round
keeps: its own budget charged each round below what it can spend."""

from __future__ import annotations

import pytest

from secagg.aggregation.policy import BranchPolicy
from secagg.protocol.graph_params import tolerated_colluders, tolerated_dropouts
from secagg.runtime.branch_budget import honest_shares

#: (dropout fraction, cohort) pairs where the float product falls just below an integer
CASES = [
    (fraction / 100, n)
    for fraction in range(1, 90)
    for n in (100, 200, 300)
    if int(fraction / 100 * n) != tolerated_dropouts(n, fraction / 100)
]


def test_the_cases_exist() -> None:
    """The float product is below the integer for some pairs (so the next test checks
    something): 0.29 * 100 among them."""
    assert (0.29, 100) in CASES and len(CASES) >= 5


@pytest.mark.parametrize(("fraction", "n"), CASES[:12])
def test_the_branch_assumes_the_protocols_dropouts(fraction: float, n: int) -> None:
    policy = BranchPolicy(corrupt_fraction=0.0, dropout_fraction=fraction, min_colluders=0)
    colluders = tolerated_colluders(n, 0.0, 0)
    expected = max(1, n - colluders - tolerated_dropouts(n, fraction))
    assert honest_shares(policy, n) == expected
