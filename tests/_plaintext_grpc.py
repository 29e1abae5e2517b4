"""A plaintext gRPC server and its client on loopback, for the transport tests whose
subject is the transport's own bookkeeping (sessions, budgets, waits), not TLS.

Why a helper: the same dozen lines (a server on a free port with ``allow_insecure``, a
fixed name from ``identify``, stopped at once; a client with the same size limit) were
copied into each such test file (``duplicates --change``). Only for tests: a server
without TLS must be allowed explicitly (``allow_insecure=True``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport

#: the message size limit both ends are built with unless a test says otherwise
MAX_MESSAGE_BYTES = 1 << 20


@contextmanager
def plaintext_server(
    name: str = "branch-a", *, max_message_bytes: int = MAX_MESSAGE_BYTES, **options: Any
) -> Iterator[GrpcServerTransport]:
    """A started plaintext server on a free loopback port that names every session
    ``name`` (unless ``options`` give an ``identify``), ``options`` passed on (a test's
    limits and deadlines); stopped at once when the block ends."""
    options.setdefault("identify", lambda context: name)
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=max_message_bytes,
        **options,
    )
    transport.start()
    try:
        yield transport
    finally:
        transport.stop(grace=0)


def plaintext_client(
    server: GrpcServerTransport, *, max_message_bytes: int = MAX_MESSAGE_BYTES, **options: Any
) -> GrpcClientTransport:
    """A client of ``server`` (not dialled yet: the test calls ``connect``), ``options``
    passed on."""
    return GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=max_message_bytes,
        **options,
    )
