"""A masking round the protocol cannot plan is refused at its spec, before training.

Hostile review of the branch's own policy (2026-12-06): a server announcing the active
variant among 2 clients (docs/protocol.md: "With n = 2 and the active variant no
threshold is private; the configuration is refused") had its spec pass the branch's
check: :meth:`MaskingSpec._check_some_threshold_passes` skipped any spec whose
``round_config`` raised. The branch then trained, was charged against its budget, and
every setup of the round failed later, as a ConfigurationError of the spec's own
``round_config`` or the client's minimum naming ``branch.corrupt_fraction`` and "0
colluding clients", which no setting admits. Now: ``PolicyRefused`` with setting
``round_spec``, at the start, nothing trained.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.masking import MaskingBackend, MaskingSpec
from secagg.aggregation.policy import BranchPolicy
from secagg.aggregation.spec import encode_spec
from secagg.errors import ConfigurationError, PolicyRefused
from secagg.runtime.client import FederationClient
from secagg.runtime.wire import RoundStart

FED = "fed-a"


def _spec(
    n: int, backend: str = "secagg", *, active: bool = True, **fractions: float
) -> MaskingSpec:
    """A masking spec as a server writes it; an active one lists a raw key a party."""
    identities = tuple(bytes([party]) * 32 for party in range(n)) if active else ()
    return MaskingSpec(
        n, 4, backend_name=backend, active=active, identities=identities, **fractions
    )


@pytest.mark.parametrize("backend", ["secagg", "secagg+"])
@pytest.mark.parametrize(
    "policy",
    [BranchPolicy(), BranchPolicy(require_active=True), BranchPolicy(min_colluders=0)],
    ids=["default", "active", "no-colluders"],
)
def test_an_active_round_of_two_is_refused_at_its_spec(backend: str, policy: BranchPolicy) -> None:
    with pytest.raises(PolicyRefused) as caught:
        _spec(2, backend).check_policy(policy)
    refusal = caught.value
    assert refusal.setting == "round_spec"
    message = str(refusal)
    assert "active round of 2 clients" in message and "no threshold is private" in message
    assert "\n" not in message


def test_any_spec_the_protocol_cannot_plan_is_refused_naming_why() -> None:
    """The active variant of 3 at corrupt fraction 0.49, the passive one of 3 at 0.9:
    the server's own sizing leaves no complete-graph threshold."""
    for spec in (
        _spec(3, corrupt_fraction=0.49),
        _spec(3, active=False, corrupt_fraction=0.9),
    ):
        with pytest.raises(ConfigurationError) as planned:
            spec.round_config()
        with pytest.raises(PolicyRefused) as caught:
            spec.check_policy(BranchPolicy())
        assert caught.value.setting == "round_spec"
        assert str(planned.value) in str(caught.value)


def test_the_branch_does_not_train_for_it() -> None:
    """The round start as the runtime handles it (its backend's session stubbed, as the
    identities of an active round would need a CA): refused, nothing trained or sent."""
    trained: list[np.ndarray] = []
    sent: list[bytes] = []

    class _Transport:
        def send(self, payload: bytes) -> None:
            sent.append(payload)

    class _Session:
        def bind_round(self, context: bytes) -> None:
            pass

        def set_input(self, update: np.ndarray) -> list[bytes]:
            return [b"an upload"]

    def train(model: np.ndarray) -> np.ndarray:
        trained.append(model)
        return np.zeros_like(model)

    branch = FederationClient("branch-0", train, _Transport(), policy=BranchPolicy())  # type: ignore[arg-type]
    start = RoundStart(
        round=1, party=0, spec=encode_spec(_spec(2)), model=np.zeros(4, np.float32), federation=FED
    )
    with (
        mock.patch.object(MaskingBackend, "open_client", lambda *a, **k: _Session()),
        mock.patch.object(FederationClient, "_round_identity", lambda *a, **k: None),
        pytest.raises(PolicyRefused, match="round_spec"),
    ):
        branch._start(start)
    assert (trained, sent) == ([], [])


@given(
    n=st.integers(2, 12),
    backend=st.sampled_from(["secagg", "secagg+"]),
    active=st.booleans(),
    corrupt=st.sampled_from([0.0, 0.05, 0.3, 0.49, 0.9]),
    dropout=st.sampled_from([0.0, 0.1, 0.3]),
    min_colluders=st.integers(0, 3),
)
@settings(max_examples=50, deadline=None)
def test_a_spec_a_branch_accepts_is_one_the_protocol_plans_with_a_floor_on_the_sum(
    n: int, backend: str, active: bool, corrupt: float, dropout: float, min_colluders: int
) -> None:
    """Whatever the server's sizing, a masking spec a branch takes has a round
    configuration (every setup of it can match the spec) and a smallest threshold the
    branch accepts (:meth:`MaskingSpec.fewest_in_sum`: the floor its budget counts on)."""
    try:
        spec = _spec(n, backend, active=active, corrupt_fraction=corrupt, dropout_fraction=dropout)
    except ConfigurationError:
        return  # the spec's own checks (a codec refuses it as malformed)
    policy = BranchPolicy(min_colluders=min_colluders)
    try:
        spec.check_policy(policy)
    except PolicyRefused:
        return
    spec.round_config()
    fewest = spec.fewest_in_sum(policy)
    assert fewest is not None and 2 <= fewest <= n
