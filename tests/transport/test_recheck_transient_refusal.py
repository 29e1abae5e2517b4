"""A session is ended for its identity only when the re-check refuses it twice in a row,
and a stop that surfaced inside the re-check is the stop.

Found by the stop stress of 2026-12-07 (tools/stop_stress.py --inject): a Ctrl-C taken
inside cryptography's certificate verifier during ``recheck_sessions`` came out as
"signature does not match", with no trace of the interrupt, and the server ended an
honest branch's session with a permanent refusal (the branch stops, exit 1) while the
stop itself was lost. A revoked certificate is refused every time it is asked: asking
once more before the eviction costs a real refusal one more check and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from _plaintext_grpc import plaintext_client, plaintext_server
from _threads import BOUND

from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport


class _Identify:
    """``identify`` for the server: names every session branch-a; ``failures`` refusals
    to come first (raised while handling ``interrupt``, when one is given)."""

    def __init__(self) -> None:
        self.failures = 0
        self.interrupt: BaseException | None = None
        self._lock = threading.Lock()

    def __call__(self, context: object) -> str:
        with self._lock:
            if self.failures:
                self.failures -= 1
                try:
                    if self.interrupt is not None:
                        raise self.interrupt
                except BaseException:
                    raise ValueError("signature does not match") from None
                raise ValueError("signature does not match")
        return "branch-a"


@pytest.fixture
def identify() -> _Identify:
    return _Identify()


@pytest.fixture
def connected(identify: _Identify) -> Iterator[tuple[GrpcServerTransport, GrpcClientTransport]]:
    with plaintext_server(identify=identify, recheck_interval=None) as server:
        client = plaintext_client(server)
        client.connect(timeout=BOUND)
        try:
            yield server, client
        finally:
            client.close()


def test_one_refusal_of_the_recheck_ends_no_session(
    connected: tuple[GrpcServerTransport, GrpcClientTransport], identify: _Identify
) -> None:
    server, _ = connected
    identify.failures = 1
    assert server.recheck_sessions() == []
    assert server.connected() == {"branch-a"}


def test_a_refusal_that_repeats_ends_the_session(
    connected: tuple[GrpcServerTransport, GrpcClientTransport], identify: _Identify
) -> None:
    server, _ = connected
    identify.failures = 2
    assert server.recheck_sessions() == ["branch-a"]
    assert server.connected() == set()


def test_a_stop_inside_the_recheck_is_the_stop_and_ends_no_session(
    connected: tuple[GrpcServerTransport, GrpcClientTransport], identify: _Identify
) -> None:
    server, _ = connected
    identify.failures = 2
    identify.interrupt = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        server.recheck_sessions()
    assert server.connected() == {"branch-a"}
