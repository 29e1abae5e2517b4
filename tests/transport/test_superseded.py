"""A session superseded by a twin (a second process with the same certificate) stops
its party with one line, instead of two processes taking the identity from each other.

Operator pass of 2026-12-04: a branch started twice (a service and a hand-started copy)
made the two sessions supersede each other 31 times in 25 s, each process logging only
"connection lost (session closed (ABORTED): superseded by a new session);
redialling", and the branch contributed to no round.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _threads import BOUND

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport.base import NotAccepted
from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport, Superseded


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("superseded") / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-a")
    return directory


def _client(ca: Path, port: int) -> GrpcClientTransport:
    return GrpcClientTransport(
        f"127.0.0.1:{port}",
        channel_credentials=certs.load_client_credentials(ca, "branch-a").to_grpc(),
        max_message_bytes=1 << 20,
    )


def test_the_older_of_two_sessions_of_one_identity_is_told_it_has_a_twin(ca: Path) -> None:
    verifier = certs.PeerVerifier(ca, allowed=["branch-a"])
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca).to_grpc(),
        max_message_bytes=1 << 20,
        identify=lambda context: verifier.identify(context.auth_context()).name,
    )
    server.start()
    first, second = _client(ca, server.port), _client(ca, server.port)
    try:
        assert first.connect(timeout=BOUND) == "branch-a"
        assert second.connect(timeout=BOUND) == "branch-a"
        with pytest.raises(Superseded) as caught:
            while first.receive(timeout=BOUND) is not None:  # nothing is sent: it ends
                pass
        assert isinstance(caught.value, NotAccepted)  # never redialled: it would take
        # the identity back from the newer session, which would do the same
        assert "another process opened one under the same identity" in str(caught.value)
        assert second.receive(timeout=0.5) is None  # the newer session goes on
    finally:
        first.close()
        second.close()
        server.stop(grace=0)
