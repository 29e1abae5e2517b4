"""A branch's budget counts the colluders of the population its round names.

Review of colluders (2026-12-07): a masking round drawn from a larger federation names
its population (``MaskingSpec.population``) and its k and t are sized for that
population's colluders, which the branch's own threshold check counts too. Its budget
took the colluders of ``max(round, expected_clients)`` only: a branch without
``expected_clients`` in an active round of 20 named as drawn from 100 (5 % corrupt:
5 colluders) counted 2 colluders and 8 honest shares, where its own threshold (10)
leaves 10 - 5 = 5 assured, so it charged itself less epsilon than its assumptions allow.
"""

from __future__ import annotations

import os

from secagg.aggregation.masking import MaskingBackend, MaskingSpec
from secagg.aggregation.policy import BranchPolicy
from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound
from secagg.runtime.branch_budget import BranchBudget, MemorySpend, honest_shares


def _spec(max_clients: int | None) -> MaskingSpec:
    backend = MaskingBackend(graph="harary", active=True, max_clients=max_clients)
    share = DistributedDiscreteGaussian(
        dimension=8, clip=1.0, noise_multiplier=4.0, expected_clients=20
    )
    identities = tuple(b"certificate %d" % i for i in range(20))
    return backend.plan(
        20, 8, noise_share=NoiseShareRound(share, os.urandom(16)), identities=identities
    )


def test_a_round_named_as_drawn_from_100_is_charged_for_its_5_colluders() -> None:
    spec = _spec(100)
    policy = BranchPolicy(epsilon_budget=1e6, delta=1e-5)  # no expected_clients
    charge = BranchBudget(policy, MemorySpend()).admit(1, spec)
    assert charge.honest_shares == 5  # 8 before: its threshold 10 less 2 colluders
    assert spec.round_config().colluders == 5 and spec.fewest_in_sum(policy) == 10
    assert spec.drawn_from() == 100
    # the same as a branch that was told the federation's size itself
    told = BranchPolicy(epsilon_budget=1e6, delta=1e-5, expected_clients=100)
    assert honest_shares(told, 20, fewest_in_sum=spec.fewest_in_sum(told)) == 5


def test_a_round_that_is_its_own_population_is_charged_as_before() -> None:
    spec = _spec(None)
    assert spec.drawn_from() == 20
    policy = BranchPolicy(epsilon_budget=1e6, delta=1e-5)
    fewest = spec.fewest_in_sum(policy)
    assert honest_shares(policy, 20, fewest_in_sum=fewest) == min(20 - 2 - 2, fewest - 2)
    assert BranchBudget(policy, MemorySpend()).admit(1, spec).honest_shares == min(16, fewest - 2)
