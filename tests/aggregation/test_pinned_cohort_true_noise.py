"""A branch that pins ``expected_clients = 100`` takes a round of 3 whose noise is split
over 100, and every epsilon of that round is the epsilon of the noise the sum really holds.

The acceptance is deliberate (second review of the policy changes, 2026-12-07): a
Poisson-sampled federation draws cohorts of any size up to its population, so a branch
that pinned the cohort it was told about cannot refuse a small draw; each share is
``z C / sqrt(100)`` and the sum of 3 carries about ``0.17 z C`` (docs/deployment.md and
docs/privacy.md say so). What keeps that honest is the charge: the server's ledger row
counts the shares in the sum (3 less the colluders it assumes) at the per-share std of
the 100-split, never the plan's 100 shares, and the branch's own budget does the same
from its own assumptions (:func:`~secagg.runtime.branch_budget.honest_shares`, capped by
its ``fewest_in_sum``).

At 1 % corrupt (review of colluders, 2026-12-07): the 100's colluders, all of whom the
server may put in the round, are then 1, which a round of 3 can be sized for (with the
default 5 %, 5 colluders may fill a round of 3 but one, so no round of 3 drawn from 100
is planned or taken at all; docs/protocol.md, "Sampled rounds"). The shares counted are
those of the 5 % runs before: the protocol's floor of 2 colluders among 3 decides them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from _threads import BOUND, Party

from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.policy import BranchPolicy
from secagg.dp.ddg_accounting import ddg_epsilon
from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound
from secagg.errors import PolicyRefused
from secagg.ledger.chain import read_chain
from secagg.runtime.branch_budget import BranchBudget, MemorySpend
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.transport.inprocess import InProcessHub

PLANNED = 100  # the cohort the noise is split over (and every branch pinned)
PRESENT = 3  # the round that runs
CORRUPT = 0.01  # 1 colluder in the 100: a round of 3 can hold it and an honest pair
DIMENSION = 8
Z = 4.0
DELTA = 1e-5
NAMES = [f"branch-{i:03d}" for i in range(PLANNED)]


def _share(expected: int = PLANNED) -> DistributedDiscreteGaussian:
    return DistributedDiscreteGaussian(
        dimension=DIMENSION, clip=1.0, noise_multiplier=Z, expected_clients=expected
    )


def _spec(mechanism: DistributedDiscreteGaussian, *, certified: bool = False):  # type: ignore[no-untyped-def]
    """A round of 3 planned with ``mechanism``; ``certified``: the active variant, whose
    parties' certificates let a branch's budget count the others' shares at all."""
    backend = MaskingBackend(
        graph="complete",
        value_bound=1.0,
        active=certified,
        corrupt_fraction=CORRUPT,
        max_clients=PLANNED,
    )
    identities = tuple(b"cert %d" % i for i in range(PRESENT)) if certified else None
    share = NoiseShareRound(mechanism, os.urandom(16))
    return backend.plan(PRESENT, DIMENSION, noise_share=share, identities=identities)


def _epsilon(mechanism: DistributedDiscreteGaussian, shares: int) -> float:
    """The DDG bound for one unsampled round whose sum holds ``shares`` honest shares,
    each of the mechanism's own integer std: computed here from the bound itself."""
    return ddg_epsilon(
        l2_sensitivity=mechanism.sensitivity,
        l1_sensitivity=mechanism.l1_sensitivity,
        local_stddev=float(mechanism.local_sigma),
        noise_contributors=[shares],
        dimension=mechanism.padded,
        sample_rate=1.0,
        rounds=1,
        delta=DELTA,
    )


def test_a_pinned_branch_takes_a_round_of_3_whose_noise_is_split_over_100() -> None:
    """The deliberate rule, pinned: with ``expected_clients = 100`` the split over 100 is
    the one the branch was told about, so a round of 3 passes (its sum carries
    sqrt(3 / 100) = 0.17 of the noise multiplier); without the pin, the branch's floor
    refuses it, naming the key that would admit it."""
    spec = _spec(_share())
    spec.check_policy(
        BranchPolicy(expected_clients=PLANNED, min_noise_multiplier=Z, corrupt_fraction=CORRUPT)
    )
    with pytest.raises(PolicyRefused) as refused:
        spec.check_policy(BranchPolicy(min_noise_multiplier=Z, corrupt_fraction=CORRUPT))
    assert refused.value.setting == "branch.expected_clients"
    assert "noise multiplier 0.692 < 4" in str(refused.value)  # 4 sqrt(3 / 100) = 0.6928
    mechanism = spec.own_noise_share()
    assert mechanism is not None
    # what the sum holds: 3 shares of the 100-split's std, 0.17 of the planned sum's std
    in_sum = math.sqrt(PRESENT) * mechanism.local_sigma
    planned = math.sqrt(PLANNED) * mechanism.local_sigma
    assert in_sum / planned == pytest.approx(math.sqrt(PRESENT / PLANNED))


def test_the_branch_budget_charges_the_shares_of_a_round_of_3_not_the_plan_s_100() -> None:
    """The branch's own charge, in a certified round (where it counts the others at all):
    its assumptions (2 colluders among 3, the protocol's floor) leave 1 honest share of
    the 3, charged at the 100-split's per-share std: the epsilon of one such share, far
    above a round that kept the planned shares."""
    spec = _spec(_share(), certified=True)
    policy = BranchPolicy(
        expected_clients=PLANNED, epsilon_budget=1e6, delta=DELTA, corrupt_fraction=CORRUPT
    )
    charge = BranchBudget(policy, MemorySpend()).admit(1, spec)
    mechanism = spec.own_noise_share()
    assert mechanism is not None
    assert charge.honest_shares == 1 <= PRESENT
    assert charge.alone >= _epsilon(mechanism, 1) * (1 - 1e-9)
    assert charge.alone > 10 * _epsilon(mechanism, PLANNED - 2)


def test_the_ledger_charges_a_round_of_3_at_the_noise_its_sum_holds(tmp_path: Path) -> None:
    """A federation of 100 (distributed DP, noise split over 100), 3 branches connected,
    each pinning ``expected_clients = 100``: the round runs with 3, and its ledger row
    records 3 contributions, the honest shares the server assumes among them (3 less
    2 colluders), the 100-split's per-share std, and the epsilon of that many shares of
    that std: the noise in the sum, not the plan's."""
    config = FederationConfig.from_dict(
        {
            "federation": {
                "name": "pinned",
                "clients": NAMES,
                "dimension": DIMENSION,
                "rounds": 1,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg", "value_bound": 1.0, "corrupt_fraction": CORRUPT},
            "dp": {"mechanism": "distributed", "clip": 1.0, "noise_multiplier": Z, "delta": DELTA},
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
        }
    )
    hub = InProcessHub()
    policy = BranchPolicy(
        expected_clients=PLANNED, min_noise_multiplier=Z, corrupt_fraction=CORRUPT
    )
    parties = {}
    for name in NAMES[:PRESENT]:
        client = FederationClient(
            name, lambda m: np.full_like(m, 0.1), hub.connect(name), policy=policy
        )
        parties[name] = Party(lambda c=client: c.run(idle_timeout=BOUND, rounds=1))
    state = open_server_state(config, init=True)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        result = server.run_round()
    finally:
        state.close()
    for name in NAMES[:PRESENT]:
        hub.disconnect(name)
    for party in parties.values():
        party.done.wait(BOUND)
    assert result.status == "complete", result
    (row,) = [r.entry for r in read_chain(Path(config.server.state + ".ledger")).rows]
    dp = row["dp"]
    assert dp["ddg"]["expected_clients"] == PLANNED
    mechanism = _share()
    assert dp["ddg"]["local_sigma"] == mechanism.local_sigma
    assert row["contributed"] == row["participants"]["count"] == PRESENT
    assert dp["noise_contributors"] == 1  # 3 less the 2 colluders assumed among 3
    charged = row["privacy"]["epsilon"]
    assert charged == pytest.approx(_epsilon(mechanism, 1), rel=1e-9)
    # at least the epsilon of all 3 shares the sum holds, far above the plan's figure
    assert charged >= _epsilon(mechanism, PRESENT)
    assert charged > 10 * _epsilon(mechanism, PLANNED - 2)
