"""The CKKS key holder's floor of contributions is its policy's, whatever its key says.

A :class:`~secagg.he.keys.KeyHolder` carries a ``min_contributions`` of its own, fixed
when the key is made or loaded (2 by default). The key holder's session decrypted under
that one only: a :class:`~secagg.aggregation.ckks.KeyHolderSession` given a policy of 4
and a key made with the default answered an aggregate of 3, a request weaker than its
own policy. Hypothesis draws the policy's floor, the key's and the contributions the
aggregate sums: the sum is released exactly when it reaches both, and a refusal spends
nothing (the round number and the lifetime count stay free).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tenseal")

from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession
from secagg.aggregation.keyholder_policy import KeyHolderPolicy
from secagg.aggregation.local import run_local_round
from secagg.errors import RoundAborted
from secagg.he.keys import KeyHolder

LARGEST = 6  # the federation's largest round: what the key is made for
DIMENSION = 3


@pytest.fixture(scope="module")
def key_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kh.key"
        CKKSBackend(max_clients=LARGEST).make_helper_key(path)
        yield path


def _session(key_file: Path, policy_floor: int, key_floor: int) -> KeyHolderSession:
    backend = CKKSBackend(max_clients=LARGEST)
    key = KeyHolder.load(key_file, backend.design_point().parameters(), min_contributions=key_floor)
    return KeyHolderSession(KeyHolderPolicy(min_contributions=policy_floor), key=key)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    policy_floor=st.integers(2, LARGEST),
    key_floor=st.integers(1, LARGEST),
    contributions=st.integers(2, LARGEST),
)
def test_an_aggregate_is_decrypted_only_when_it_reaches_the_policys_floor(
    key_file: Path, policy_floor: int, key_floor: int, contributions: int
) -> None:
    session = _session(key_file, policy_floor, key_floor)
    backend = CKKSBackend(max_clients=LARGEST)
    updates = np.full((contributions, DIMENSION), 0.25)
    if contributions >= max(policy_floor, key_floor):
        result = run_local_round(backend, updates, helper=session)
        assert result.total.shape == (DIMENSION,)
        assert session.decryptions == 1
        return
    with pytest.raises(RoundAborted, match=rf"at least {max(policy_floor, key_floor)} required"):
        run_local_round(backend, updates, helper=session)
    # refused before any decryption: nothing spent, the round may still be served
    assert session.decryptions == 0
    assert session.record.last_round is None


def test_a_key_made_with_the_default_floor_does_not_lower_the_policys(key_file: Path) -> None:
    """The case found: a policy of 4, a key of the default floor (2), three uploads."""
    session = _session(key_file, policy_floor=4, key_floor=2)
    updates = np.full((3, DIMENSION), 0.25)
    with pytest.raises(RoundAborted, match="aggregate of 3 contribution"):
        run_local_round(CKKSBackend(max_clients=LARGEST), updates, helper=session)
    assert session.decryptions == 0
