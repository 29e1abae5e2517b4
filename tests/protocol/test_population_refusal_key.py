"""A round refused for the colluders of the branch's expected cohort names
``expected_clients``, the setting that counted them (second review of colluders,
2026-12-07).

A branch expecting 100 clients at 5 % counts 5 colluders in any round drawn from them;
an active round of 20 at k = 8, t = 6 (sized for the round's own 2) is refused. The
refusal named ``branch.corrupt_fraction``: the operator was sent to lower a fraction,
where the cause was the population. Where the server's own announcement, not the
branch's expectation, is the larger population, or no population is involved, the
refusal names the fraction as before.
"""

from __future__ import annotations

import pytest
from _harness import refused_call

from secagg.crypto.signing import SigningKey
from secagg.errors import PolicyRefused
from secagg.protocol import Client
from secagg.protocol.config import ClientPolicy
from secagg.protocol.messages import GraphKind, RoundSetup


def _setup(announced: int, *, n: int = 20, k: int = 8, t: int = 6) -> RoundSetup:
    return RoundSetup(bytes(16), 0, n, 4, 32, t, GraphKind.HARARY, k, bytes(32), True, announced)


@pytest.mark.parametrize("announced", [100, 0])
def test_the_branch_s_expected_cohort_is_named_when_its_colluders_refuse(announced: int) -> None:
    signer = SigningKey.generate()
    policy = ClientPolicy(expected_clients=100, keys="branch.")
    client = Client(
        0,
        None,
        policy=policy,
        signing_key=signer,
        identity_keys={p: signer.verify_key for p in range(20)},
    )
    caught = refused_call(client, PolicyRefused, client.handle, _setup(announced))
    assert caught.value.setting == "branch.expected_clients", str(caught.value)
    assert policy.refusing_key(_setup(100)) == "branch.expected_clients"


def test_the_threshold_refusal_says_whose_population_it_counted() -> None:
    with pytest.raises(PolicyRefused) as refused:
        ClientPolicy(expected_clients=100, keys="branch.").check(_setup(100))
    text = str(refused.value)
    assert "drawn from a population of 100 (branch.expected_clients)" in text
    assert "5 colluding clients" in text


def test_the_fraction_is_still_named_where_the_population_is_not_the_cause() -> None:
    # the server's own announcement (the branch expects nothing): its fraction of it
    assert ClientPolicy(keys="b.").refusing_key(_setup(100)) == "b.corrupt_fraction"
    # a round too weak for its own colluders: an expected cohort changes nothing
    weak = _setup(0, n=100, k=8, t=6)
    assert ClientPolicy(expected_clients=100).refusing_key(weak) == "corrupt_fraction"
    # the floor, not the population, refuses: min_colluders as before
    small = RoundSetup(bytes(16), 0, 8, 4, 32, 2, GraphKind.HARARY, 4, bytes(32), False, 0)
    assert ClientPolicy(expected_clients=8).refusing_key(small) == "min_colluders"


def test_a_smaller_population_s_refusal_names_every_key_with_its_table() -> None:
    """The refusal of a population smaller than expected named ``min_colluders`` bare
    beside ``branch.corrupt_fraction``: every key it names carries the branch's prefix."""
    with pytest.raises(PolicyRefused) as refused:
        ClientPolicy(expected_clients=100, keys="branch.").check(_setup(0))
    text = str(refused.value)
    assert refused.value.setting == "branch.expected_clients"
    assert "branch.corrupt_fraction = 0.05, branch.min_colluders = 2" in text
