"""An honest branch's upload that reached the gRPC server just before the branch's
session broke and it redialled is taken by the round, as over the in-process hub.

Why. Since a95f8af the gRPC server dropped, when a new session of a name opened, every
message the name's earlier sessions had delivered and the runtime had not read yet. The
runtime does not read by session: it takes a party's payload by name, round and phase
(``FederationServer._receive``; tests/runtime/test_old_session_payloads.py: an old
session's last messages "legitimately arrive after the branch reconnected"), and the
in-process hub, which the runtime's tests use in gRPC's stead, delivers them. So a
branch whose upload was in the server's inbox as its link blipped (the server busy with
another party's message, the redial 0.25 s later) lost it: its round ran without it,
and a round of two aborted below its quorum of contributors, where it completed before.

A real plaintext gRPC server on loopback, the runtime's server and one real branch in a
thread; the other branch is driven by the test (its round start taken, its upload sent,
its session closed and redialled), and the server's reads are held until the redial is
open. Every wait ends on its event, with a generous bound.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from _plaintext_grpc import plaintext_client, plaintext_server
from _threads import BOUND, Party, wait_until

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import RoundStart, decode_message
from secagg.transport.grpc_transport import GrpcServerTransport

D = 4
BLIPPED, STEADY = "branch-a", "branch-b"


class _HeldReads:
    """Holds the runtime's reads (each returns None, as a wait with nothing) until
    :attr:`released`: the server busy elsewhere while the branch redials."""

    def __init__(self, transport: GrpcServerTransport) -> None:
        self._transport = transport
        self.released = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)

    def recheck_sessions(self) -> list[str]:
        """Identities hold (``identify`` names the sessions in the order they open, once)."""
        return []

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        if not self.released.is_set():
            self.released.wait(0.05 if timeout is None else min(timeout, 0.05))
            return None
        return self._transport.receive(timeout)


def test_an_upload_delivered_before_a_redial_is_taken_by_the_round(tmp_path: Path) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "blip", "clients": [BLIPPED, STEADY], "dimension": D},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "plain"},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    # the sessions open in this order: the steady branch's, then the blipped one's twice
    names = iter([STEADY, BLIPPED, BLIPPED])
    policy = BranchPolicy(allow_plain=True)
    with plaintext_server(identify=lambda context: next(names), recheck_interval=None) as grpc:
        held = _HeldReads(grpc)
        steady_link = plaintext_client(grpc)
        assert steady_link.connect(timeout=BOUND) == STEADY
        steady = FederationClient(
            STEADY, lambda m: np.full_like(m, 0.3), steady_link, policy=policy
        )
        blipped = FederationClient(BLIPPED, lambda m: np.full_like(m, 0.1), None, policy=policy)
        first = plaintext_client(grpc)
        assert first.connect(timeout=BOUND) == BLIPPED
        blipped._transport = first
        second = plaintext_client(grpc)

        def blip() -> None:
            """Take the round start, upload, drop the link and redial; then let the
            server read."""
            while True:
                payload = first.receive(timeout=BOUND)
                assert payload is not None, "no round start came"
                if isinstance(decode_message(payload), RoundStart):
                    break
            blipped.handle(payload)
            assert wait_until(lambda: grpc.queued_bytes(BLIPPED) > 0, BOUND), "no upload"
            old = grpc.session_id(BLIPPED)
            first.close()  # the link drops; the branch redials at once
            assert second.connect(timeout=BOUND) == BLIPPED
            assert wait_until(lambda: grpc.session_id(BLIPPED) not in (None, old), BOUND)
            held.released.set()

        blipping = Party(blip)
        steady_run = Party(lambda: steady.run(idle_timeout=BOUND, rounds=1))
        server = FederationServer(config, held, ServerStore(tmp_path / "s.sqlite"))  # type: ignore[arg-type]
        (result,) = server.run(wait_for_clients=BOUND, max_attempts=1)
        assert blipping.done.wait(BOUND) and blipping.error is None, blipping.error
        assert held.released.is_set()
        assert steady_run.done.wait(BOUND)
        second.close()
        steady_link.close()
    assert result.status == "complete", result.reason
    assert result.contributed == (BLIPPED, STEADY), (result.status, result.contributed)
    assert np.allclose(server.model, 0.2)  # the mean of both updates
