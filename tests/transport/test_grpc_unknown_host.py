"""A host name DNS says does not exist fails the dial at once (front-door review,
2026-12-05): gRPC's resolver retried it for the whole connect timeout (30 s)."""

from __future__ import annotations

import socket
import time

import pytest

from secagg.transport import grpc_transport
from secagg.transport.base import NotAccepted
from secagg.transport.grpc_transport import GrpcClientTransport, UnknownHost

#: RFC 2606: a name under .invalid never resolves
NOWHERE = "no-such-host.invalid:50051"


def test_a_name_that_does_not_exist_fails_the_dial_at_once() -> None:
    transport = GrpcClientTransport(
        NOWHERE, channel_credentials=None, max_message_bytes=1 << 20, allow_insecure=True
    )
    began = time.monotonic()
    try:
        with pytest.raises(UnknownHost) as caught:
            transport.connect(timeout=30.0)
    finally:
        transport.close()
    assert time.monotonic() - began < 10.0  # it took the whole 30 s before
    message = str(caught.value)
    assert "no-such-host.invalid" in message and "does not resolve" in message
    assert "--server" in message and "\n" not in message
    # a first dial is not redialled; after a lost session it is (the name did resolve)
    assert isinstance(caught.value, NotAccepted) and caught.value.inferred


def test_a_temporary_resolver_failure_is_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    def again(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", again)
    assert grpc_transport._unknown_host(NOWHERE, 5.0) is None  # the dial goes on, as before


def test_a_lookup_that_does_not_answer_is_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    def stalled(*args: object, **kwargs: object) -> object:
        time.sleep(3.0)  # a stalled resolver, in its own daemon thread
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", stalled)
    began = time.monotonic()
    assert grpc_transport._unknown_host(NOWHERE, 0.2) is None
    assert time.monotonic() - began < 2.0  # bounded by the dial's budget


@pytest.mark.parametrize(
    "target", ["127.0.0.1:50051", "[::1]:50051", "[fe80::1%eth0]:50051", "unix:/tmp/sock"]
)
def test_an_ip_address_is_never_looked_up(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    looked_up: list[object] = []

    def record(*args: object, **kwargs: object) -> object:
        looked_up.append(args)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", record)
    assert grpc_transport._unknown_host(target, 5.0) is None
    assert looked_up == []


def test_a_name_that_resolves_is_dialled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert grpc_transport._unknown_host("localhost:50051", 5.0) is None
