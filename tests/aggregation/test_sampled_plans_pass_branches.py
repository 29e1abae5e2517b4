"""The honest path of sampled masking rounds, through the backend and the branch's own
policy (second review of colluders, 2026-12-07).

A federation's server plans each round it draws with ``MaskingBackend(max_clients=N)``
(its clients); a Poisson draw may be any size. For every size: the plan is refused at
planning in one line naming the round, the population and the colluders (the runtime
then aborts the round before any message, charging nothing), or its spec passes the
spec check of a branch holding the federation's fractions and ``expected_clients = N``
and every branch's masking client takes its setup (keys advertised): no honest round is
refused mid-protocol.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.base import ToParty
from secagg.aggregation.masking import MaskingBackend, MaskingSpec
from secagg.aggregation.policy import BranchPolicy
from secagg.crypto.signing import SigningKey
from secagg.errors import ConfigurationError, SecAggError

_KEY = SigningKey.generate().verify_key.raw


@settings(max_examples=40, deadline=None)
@given(
    population=st.integers(4, 120),
    drawn=st.floats(0.0, 1.0),
    corrupt=st.sampled_from([0.05, 0.05, 0.1, 0.2]),  # the default twice as often
    dropout=st.sampled_from([0.0, 0.1]),
    active=st.booleans(),
    graph=st.sampled_from(["harary", "complete"]),
)
def test_a_drawn_round_is_refused_at_planning_or_taken_by_every_honest_branch(
    population: int, drawn: float, corrupt: float, dropout: float, active: bool, graph: str
) -> None:
    n = max(3, round(drawn * population))  # an active round of 2: never private
    backend = MaskingBackend(
        graph=graph,
        corrupt_fraction=corrupt,
        dropout_fraction=dropout,
        active=active,
        max_clients=population,
    )
    options = {"identities": (_KEY,) * n} if active else {}
    try:
        spec = backend.plan(n, 3, **options)
    except ConfigurationError as refused:
        assert isinstance(refused, SecAggError)  # the runtime's round aborts on it
        text = str(refused)
        assert "\n" not in text
        if n < population and "drawn from a population" in text:
            assert f"a round of {n} clients drawn from a population of {population}" in text
        return
    assert isinstance(spec, MaskingSpec)
    assert spec.population == (population if n < population else 0)
    policy = BranchPolicy(
        corrupt_fraction=corrupt,
        dropout_fraction=dropout,
        expected_clients=population,
        require_active=active,
    )
    spec.check_policy(policy)  # the spec passes
    if active:
        return  # the setup's own check below needs every party's real key; see the protocol's test
    server = backend.server(spec)
    setups = [m for m in server.start() if isinstance(m, ToParty)]
    assert len(setups) == n
    for message in setups:
        client = backend.open_client(spec, message.party, rounding=None, policy=policy)
        client.set_input(np.zeros(3))
        assert client.handle(message.payload), "an honest setup refused"
