"""What a masking round's server session tells its caller about parties that deviated.

The protocol server records two kinds of dispute: accusations (a client's neighbour
sealed it shares that did not open) and inconsistent shares (a holder revealed, at
unmasking, a share off the owner's committed polynomial). The runtime and any operator
see a round only through the aggregation interface (:class:`ServerSession`), so both
must be readable there: before, ``accusations()`` was and ``inconsistent_shares()``
was not, so a holder lying at unmasking left no trace outside the protocol object.
"""

from __future__ import annotations

import secrets

import numpy as np

from secagg.aggregation import Announce, ToParty, get_backend
from secagg.aggregation.base import ServerSession
from secagg.aggregation.masking import MaskingBackend, MaskingServer
from secagg.crypto import shamir
from secagg.crypto.stream import KeyedStream
from secagg.protocol import decode, encode
from secagg.protocol.messages import RevealedShare, UnmaskingShares

N, D = 8, 4
LIAR, VICTIM = 0, 4


def _shifted(share: bytes) -> bytes:
    """``share`` moved by a random nonzero amount in each limb: a well-formed, wrong share."""
    parsed = shamir.Share.from_bytes(1, share)
    moved = tuple(
        (v + 1 + secrets.randbelow(shamir.PRIME - 1)) % shamir.PRIME for v in parsed.values
    )
    return shamir.Share(1, moved).to_bytes()


def _lie(payload: bytes) -> bytes:
    """LIAR's unmasking reply with its share of VICTIM's self-mask seed made wrong."""
    message = decode(payload)
    assert isinstance(message, UnmaskingShares)
    shares = tuple(
        RevealedShare(r.owner, _shifted(r.share)) if r.owner == VICTIM else r
        for r in message.self_mask_shares
    )
    assert shares != message.self_mask_shares
    return encode(
        UnmaskingShares(message.round_id, message.sender, shares, message.mask_key_shares)
    )


def _run(lie: bool) -> tuple[MaskingServer, np.ndarray, np.ndarray]:
    """A complete-graph round of N sized for 30 % dropouts: t = 6, low enough that the
    N - 1 honest shares of the victim's seed outvote one wrong one and name its holder."""
    backend = MaskingBackend(graph="complete", dropout_fraction=0.3)
    spec = backend.plan(N, D)
    updates = (KeyedStream(b"d" * 16).uniform(N * D).reshape(N, D) * 2 - 1) * 0.5
    server = backend.server(spec)
    assert isinstance(server, MaskingServer)
    assert 2 * (N - 1) >= N + server.config.threshold  # the pair can be named
    clients = [backend.client(spec, p) for p in range(N)]
    queue: list[tuple[int, bytes]] = []
    for p, client in enumerate(clients):
        queue.extend((p, m) for m in client.set_input(updates[p]))

    def deliver(outgoing: list) -> None:
        for event in outgoing:
            if isinstance(event, Announce):
                continue
            assert isinstance(event, ToParty)
            for reply in clients[event.party].handle(event.payload):
                queue.append((event.party, reply))

    deliver(server.start())
    while queue:
        party, payload = queue.pop(0)
        if lie and party == LIAR and server.phase == "unmasking":
            payload = _lie(payload)
        deliver(server.handle(party, payload))
    assert server.done
    total, _ = server.finish()
    return server, total, updates.sum(axis=0)


def test_a_holder_revealing_a_wrong_share_is_visible_through_the_session() -> None:
    server, total, expected = _run(lie=True)
    # the sum is still exact: t other shares opened the victim's commitment
    assert np.max(np.abs(total - expected)) <= N / server.spec.scale + 1e-9
    assert server.inconsistent_shares() == {LIAR: frozenset({VICTIM})}
    assert server.accusations() == {}  # a lie at unmasking is not a sealing failure


def test_an_honest_round_reports_no_disputes() -> None:
    server, total, expected = _run(lie=False)
    assert np.max(np.abs(total - expected)) <= N / server.spec.scale + 1e-9
    assert server.inconsistent_shares() == {}
    assert server.accusations() == {}


def test_every_backend_session_answers_the_dispute_questions() -> None:
    """The interface's defaults: a backend without shares has no disputes to report."""
    for name in ("plain", "secagg", "secagg+"):
        backend = get_backend(name)
        session = backend.server(backend.plan(4, 2))
        assert isinstance(session, ServerSession)
        assert session.inconsistent_shares() == {}
        assert session.accusations() == {}
