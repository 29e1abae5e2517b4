"""``GrpcServerTransport.send_parts``: a message queued in parts arrives as the message
they make, framed as that message would be, and counts against the outbox budget whole.

The runtime's server sends every round start so, around one shared copy of the model
(tests/runtime/test_round_start_memory.py says why).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _plaintext_grpc import plaintext_client, plaintext_server
from _threads import BOUND

from secagg.transport.grpc_transport import (
    GrpcClientTransport,
    GrpcServerTransport,
    MessageTooLarge,
)

NAME = "branch-a"
CHUNK = 4096


@pytest.fixture
def server() -> Iterator[GrpcServerTransport]:
    with plaintext_server(NAME, chunk_bytes=CHUNK, recheck_interval=None) as transport:
        yield transport


@pytest.fixture
def client(server: GrpcServerTransport) -> Iterator[GrpcClientTransport]:
    client = plaintext_client(server, chunk_bytes=CHUNK)
    client.connect(timeout=BOUND)
    try:
        yield client
    finally:
        client.close()


def test_parts_arrive_as_the_message_they_make(
    server: GrpcServerTransport, client: GrpcClientTransport
) -> None:
    shared = os.urandom(3 * CHUNK + 17)  # the model: several chunks, the last one short
    for party in range(3):
        head = b"head-%d" % party
        server.send_parts(NAME, [head, shared, b"tail"])
    server.send(NAME, b"after")  # in order with the messages sent whole
    for party in range(3):
        assert client.receive(timeout=BOUND) == b"head-%d" % party + shared + b"tail"
    assert client.receive(timeout=BOUND) == b"after"


def test_parts_are_one_message_to_the_size_limit(server: GrpcServerTransport) -> None:
    with pytest.raises(MessageTooLarge):
        server.send_parts(NAME, [b"x" * (1 << 19), b"y" * (1 << 19), b"!"])
