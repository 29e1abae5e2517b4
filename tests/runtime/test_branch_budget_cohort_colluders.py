"""A branch's honest-share count takes its colluders from the cohort it was told about.

Review of colluders (2026-12-07): ``honest_shares`` capped the round at
``expected_clients`` and then took the corrupt fraction of the *round*: a branch with
``expected_clients = 100`` (5 % corrupt: 5 colluders in its cohort) counted 2 colluders
(``min_colluders``) in a round of 20 that the server drew from those 100, although the
server chooses who is in it and can put all 5 there. So it counted 3 honest shares too
many and charged itself less epsilon than what ran.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.policy import BranchPolicy
from secagg.protocol.graph_params import tolerated_colluders
from secagg.runtime.branch_budget import honest_shares


def test_a_round_of_20_from_a_cohort_of_100_counts_the_cohort_s_5_colluders() -> None:
    policy = BranchPolicy(expected_clients=100, corrupt_fraction=0.05, dropout_fraction=0.0)
    assert honest_shares(policy, 20) == 20 - 5  # counted 18 before: 20 - 2


def test_without_expected_clients_the_round_is_the_cohort() -> None:
    """Nothing changes for a branch that knows no cohort beyond the round."""
    policy = BranchPolicy(corrupt_fraction=0.05, dropout_fraction=0.0)
    assert honest_shares(policy, 20) == 20 - 2


@settings(max_examples=40, deadline=None)
@given(
    cohort=st.integers(2, 400),
    round_size=st.integers(2, 400),
    corrupt=st.floats(0.0, 0.5),
    min_colluders=st.integers(0, 6),
)
def test_never_more_honest_shares_than_the_cohort_s_colluders_leave(
    cohort: int, round_size: int, corrupt: float, min_colluders: int
) -> None:
    """Every colluder of the cohort may sit in the round (the server draws it), so a
    round of n counts at most n less those colluders (at least its own share)."""
    round_size = min(round_size, cohort)
    policy = BranchPolicy(
        expected_clients=cohort,
        corrupt_fraction=corrupt,
        dropout_fraction=0.0,
        min_colluders=min_colluders,
    )
    in_round = min(tolerated_colluders(cohort, corrupt, min_colluders), round_size - 1)
    assert 1 <= honest_shares(policy, round_size) <= max(1, round_size - in_round)
