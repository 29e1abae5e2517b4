"""A masking round whose graph leaves no threshold the branch takes is refused at its spec.

The spec fixes the round's graph and degree k (the protocol's setup must match it, see
``MaskingClient._check_setup``), so whether *any* threshold t in [1, k + 1] can pass the
branch's own :class:`~secagg.protocol.config.ClientPolicy` is known from the spec alone.
Before 2026-12-06 the spec passed ``check_policy`` and only the setup was refused: by then
the branch had run its training hook (the runtime checks the spec, then trains, then
reads the setup) and, with ``branch.epsilon_budget``, charged its budget, for a round the
spec already showed it would never take. A hostile server could so make every branch
train (spending a DP-SGD hook's record-level budget) and charge round after round.

What is checked here, in process (no runtime, no network):

* the two ways a server planned such a round: ``secagg+`` sized for ``corrupt_fraction
  = 0`` (degree 4 for 100 clients) against a branch assuming 0.3, and a round of 5
  against ``min_threshold = 10``; each refused by ``check_policy`` and by
  ``backend.client`` before a session exists, naming the branch key, and the refusal
  leaves the backend and the rounding stream exactly as they were;
* a Hypothesis property over random server plans and branch policies: the spec is taken
  exactly when some threshold its graph allows passes the branch's protocol check (so no
  round is taken that every setup would refuse, and no round that an honest setup would
  pass is refused at its spec).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from _harness import fingerprint
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import get_backend
from secagg.aggregation.masking import MaskingSpec, client_policy
from secagg.aggregation.policy import BranchPolicy
from secagg.aggregation.registry import decode_spec
from secagg.aggregation.spec import encode_spec
from secagg.crypto.stream import KeyedStream
from secagg.errors import PolicyRefused
from secagg.protocol.messages import RoundSetup

D = 4


def _weak_graph_spec() -> MaskingSpec:
    """secagg+ planned for no colluders and no dropouts: degree 4 among 100 clients."""
    spec = get_backend("secagg+", corrupt_fraction=0.0, dropout_fraction=0.0).plan(100, D)
    assert isinstance(spec, MaskingSpec) and spec.round_config().degree == 4
    return spec


CASES = [
    pytest.param(_weak_graph_spec, BranchPolicy(corrupt_fraction=0.3), "corrupt_fraction", id="k"),
    pytest.param(
        lambda: get_backend("secagg").plan(5, D),
        BranchPolicy(min_threshold=10),
        "min_threshold",
        id="min_threshold",
    ),
]


@pytest.mark.parametrize(("make_spec", "policy", "setting"), CASES)
def test_a_graph_no_threshold_of_which_the_branch_takes_is_refused_at_the_spec(
    make_spec: object, policy: BranchPolicy, setting: str
) -> None:
    spec = decode_spec(encode_spec(make_spec()))  # as a branch reads it off the wire
    config = spec.round_config()
    # the premise: even the strongest setup the spec allows (t = k + 1) is refused by the
    # branch's protocol check, so the round could never run with this branch
    strongest = _setup(spec, config.degree + 1)
    with pytest.raises(PolicyRefused):
        client_policy(policy).check(strongest)  # type: ignore[union-attr]
    with pytest.raises(PolicyRefused) as caught:
        spec.check_policy(policy)
    assert caught.value.setting == f"branch.{setting}"
    assert "no threshold of this round's graph" in str(caught.value)
    assert "\n" not in str(caught.value)
    # and where the runtime builds the client side: no session, nothing changed
    backend = get_backend(spec.name)
    rounding = KeyedStream(os.urandom(16))
    before = fingerprint((backend, rounding, spec, policy))
    with pytest.raises(PolicyRefused):
        backend.client(spec, 0, rounding=rounding, policy=policy)
    assert fingerprint((backend, rounding, spec, policy)) == before


def test_an_honest_round_is_still_taken_and_runs() -> None:
    """The default policy takes the default plan, and the round's sum comes out."""
    backend = get_backend("secagg")
    spec = backend.plan(5, D)
    policy = BranchPolicy(min_threshold=spec.round_config().threshold)
    spec.check_policy(policy)
    client = backend.client(spec, 0, policy=policy)
    assert client.set_input(np.zeros(D)) == []  # held until the setup: nothing sent yet


def _setup(spec: MaskingSpec, threshold: int) -> RoundSetup:
    config = spec.round_config()
    return RoundSetup(
        os.urandom(16),
        0,
        config.num_clients,
        config.vector_length,
        config.bits,
        threshold,
        config.graph,
        config.degree,
        os.urandom(32),
        config.active,
    )


@settings(max_examples=40, deadline=None)
@given(
    backend=st.sampled_from(["secagg", "secagg+"]),
    n=st.integers(2, 60),
    server_corrupt=st.sampled_from([0.0, 0.05, 0.2, 0.4]),
    server_dropout=st.sampled_from([0.0, 0.1, 0.3]),
    branch=st.builds(
        BranchPolicy,
        min_threshold=st.none() | st.integers(1, 60),
        corrupt_fraction=st.sampled_from([0.0, 0.05, 0.2, 0.33]),
        dropout_fraction=st.sampled_from([0.0, 0.1, 0.3]),
        min_colluders=st.integers(0, 4),
    ),
)
def test_the_spec_is_taken_exactly_when_some_threshold_of_its_graph_passes(
    backend: str,
    n: int,
    server_corrupt: float,
    server_dropout: float,
    branch: BranchPolicy,
) -> None:
    spec = get_backend(backend, corrupt_fraction=server_corrupt, dropout_fraction=server_dropout)
    planned = spec.plan(n, D)
    assert isinstance(planned, MaskingSpec)
    degree = planned.round_config().degree
    protocol = client_policy(branch)
    assert protocol is not None
    passing = []
    for t in range(1, degree + 2):
        try:
            protocol.check(_setup(planned, t))
        except PolicyRefused:
            continue
        passing.append(t)
    try:
        planned.check_policy(branch)
    except PolicyRefused as refusal:
        assert not passing, f"refused at the spec although t in {passing} passes: {refusal}"
        return
    assert passing, "taken at the spec although every setup of its graph is refused"
    # the floor the budget counts on is the least threshold the branch takes
    assert planned.fewest_in_sum(branch) == passing[0]
