"""The round driver takes only payloads of the round in flight from its parties.

A property of :meth:`FederationServer._receive`, the one door of the collect loop: what a
branch sends that is not a payload of the round in flight (a relay of another round, even
carrying a payload the round's session would take; a round start, a round end or a
federation end, which only the server sends; a leave of another round; junk bytes; a
relay from a name that is not a party of the round) is refused, counted, and changes
nothing else: the round's session (fingerprinted whole), who left or is unreached, the
model. A guard of the hostile review of 2026-12-06
(a branch that sends a message of round r+1 during round r, a round end crossing a new
round start): no failure was found; mutating the round check out of ``_receive`` fails it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _endpoints import SentMessages
from _harness import fingerprint
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import ServerSession, encode_spec
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import (
    FederationEnd,
    Leave,
    Relay,
    RoundEnd,
    RoundStart,
    encode_message,
    round_context,
)
from secagg.transport.inprocess import InProcessHub

D = 4
FED = "driver"
NAMES = ["branch-a", "branch-b", "branch-c"]
ROUND = 1


_Round = tuple[FederationServer, ServerSession, dict[str, int], bytes]


def _round_in_flight(directory: Path) -> _Round:
    """A server with round 1's session started as :meth:`FederationServer._round` starts
    it, and branch-a's real first payload of that round (its key advertisement)."""
    config = FederationConfig.from_dict(
        {
            "federation": {"name": FED, "clients": NAMES, "dimension": D, "rounds": 1},
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.4},
        }
    )
    hub = InProcessHub()
    for name in NAMES:
        hub.connect(name)
    store = ServerStore(directory / "s.sqlite")
    server = FederationServer(config, hub, store)
    spec = server.backend.plan(len(NAMES), D, **server.mechanism.round_options(len(NAMES)))
    session = server.backend.server(
        spec, noise_stddev=server.mechanism.backend_noise_stddev, public_seed=None
    )
    session.bind_round(round_context(ROUND, FED))
    opening = session.start()  # the announcement, then each party's first payload
    branch = FederationClient(
        NAMES[0],
        lambda model: np.full_like(model, 0.1),
        SentMessages(),  # type: ignore[arg-type]
        policy=BranchPolicy(federation=FED),
        stop_on_refusal=False,
    )
    start = RoundStart(ROUND, 0, encode_spec(spec), np.zeros(D), None, federation=FED)
    branch.handle(encode_message(start))
    (first,) = [o for o in opening if getattr(o, "party", None) == 0]
    branch.handle(encode_message(Relay(ROUND, first.payload)))
    (advertised,) = [m for m in branch._transport.sent if isinstance(m, Relay)]  # type: ignore[union-attr]
    return server, session, {name: i for i, name in enumerate(NAMES)}, advertised.payload


@pytest.fixture(scope="module")
def round_in_flight(tmp_path_factory: pytest.TempPathFactory) -> _Round:
    """One round for every example: each must leave it exactly as it found it."""
    return _round_in_flight(tmp_path_factory.mktemp("driver"))


#: a relay's payload: None stands for the round's real one (branch-a's key advertisement,
#: made by the fixture), relabelled with another round, or junk
PAYLOAD = st.one_of(st.none(), st.binary(max_size=64))
OTHER_ROUND = st.integers(0, 2**32 - 1).filter(lambda n: n != ROUND)
#: what a party may send that is not a payload of the round in flight: (name, message),
#: a relay's payload given as in :data:`PAYLOAD`
NOT_OF_THE_ROUND = st.one_of(
    st.tuples(st.just(NAMES[0]), st.builds(Relay, OTHER_ROUND, PAYLOAD)),
    st.tuples(st.just(NAMES[1]), st.builds(Leave, OTHER_ROUND, st.just("not this round"))),
    st.tuples(
        st.just(NAMES[0]),
        st.builds(
            lambda n: RoundStart(n, 0, b"s", np.zeros(D), federation=FED), st.integers(0, 2**32 - 1)
        ),
    ),
    st.tuples(st.just(NAMES[2]), st.builds(RoundEnd, st.integers(0, 9), st.booleans())),
    st.tuples(st.just(NAMES[2]), st.builds(FederationEnd, st.integers(0, 9), st.just(True))),
    st.tuples(st.just(NAMES[1]), st.binary(max_size=64)),  # junk bytes
    st.tuples(st.just("mallory"), st.builds(Relay, st.just(ROUND), PAYLOAD)),  # no party
)


def _state(server: FederationServer, session: ServerSession) -> Any:
    return (
        fingerprint(session),
        sorted(server._left),
        sorted(server._unreached),
        server.model.tobytes(),
        server.next_round,
    )


@settings(max_examples=300, deadline=None)
@given(item=NOT_OF_THE_ROUND)
def test_what_is_not_a_payload_of_the_round_in_flight_changes_nothing(
    round_in_flight: _Round, item: tuple[str, Any]
) -> None:
    server, session, parties, advertised = round_in_flight
    name, message = item
    if isinstance(message, Relay) and message.payload is None:
        message = Relay(message.round, advertised)  # the round's own payload, relabelled
    payload = message if isinstance(message, bytes) else encode_message(message)
    before, refused = _state(server, session), server.refused_messages
    assert server._receive(ROUND, session, parties, name, payload) is None
    assert _state(server, session) == before
    # a leave of another round is ignored, not counted; anything else is a refusal
    assert server.refused_messages == refused + (0 if isinstance(message, Leave) else 1)


def test_the_same_payload_of_the_round_in_flight_is_taken(tmp_path: Path) -> None:
    """The property's control: the payload the property relabels is one the round's
    session takes (so a driver that fed other rounds' relays in would change it)."""
    server, session, parties, advertised = _round_in_flight(tmp_path)
    before = fingerprint(session)
    outgoing = server._receive(
        ROUND, session, parties, NAMES[0], encode_message(Relay(ROUND, advertised))
    )
    assert outgoing is not None and fingerprint(session) != before
    assert server.refused_messages == 0
