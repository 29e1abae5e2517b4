"""gRPC's server says how many complete messages wait for ``receive`` (``queued``).

The runtime's collect loop reads that many more messages when it sees a phase's
deadline passed at a refused one, so that answers a busy server had not read yet are
not dropouts (tests/runtime/test_deadline_backlog.py, over the in-process hub); this
checks the count gRPC gives, over real gRPC on loopback (plaintext).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _threads import BOUND, wait_until

from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport


@pytest.fixture
def server() -> Iterator[GrpcServerTransport]:
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: "branch-a",
        recheck_interval=None,
    )
    transport.start()
    yield transport
    transport.stop(grace=0)


def test_queued_counts_the_messages_receive_has_not_taken(server: GrpcServerTransport) -> None:
    client = GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
    )
    assert client.connect(timeout=BOUND) == "branch-a"
    try:
        assert server.queued() == 0
        client.send(b"first")
        client.send(b"second")
        assert wait_until(lambda: server.queued() == 2), server.queued()
        assert server.receive(timeout=BOUND) == ("branch-a", b"first")
        assert server.queued() == 1
        assert server.receive(timeout=BOUND) == ("branch-a", b"second")
        assert server.queued() == 0
    finally:
        client.close()
