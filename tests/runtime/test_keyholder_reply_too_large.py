"""A key holder's reply the transport refuses is a refused request, not the service's end.

Known since the review of 2026-12-06 (secagg/runtime/keyholder.py, ``run``): the reply's
send was outside the loop's guard, so a reply larger than the session's
``max_message_bytes`` raised :class:`~secagg.transport.framing.MessageTooLarge` out of
:meth:`KeyHolderService.run` and stopped the key holder. Now it is one log line, the
request counted refused, the session's refusal sent in its place, and the service
answers the next request. A lost session still ends ``run`` (``serve`` redials).
"""

from __future__ import annotations

import logging
from collections import deque

import pytest

from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import FederationEnd, Relay, decode_message, encode_message
from secagg.transport.base import NotConnected
from secagg.transport.framing import MessageTooLarge

LIMIT = 256  # bytes: the session's max_message_bytes
REFUSAL = b"refused"


class _Session:
    """A helper session whose answer to a request is as long as the request asks."""

    decryptions = 0

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        self.decryptions += 1
        return b"x" * int(payload.decode())

    def refusal(self, error: BaseException) -> bytes:
        return REFUSAL


class _Endpoint:
    """A key holder's session: the queued requests, then silence; a send above LIMIT
    refused as the gRPC client refuses it (or every send, once ``lost``)."""

    def __init__(self, *requests: bytes) -> None:
        self.inbox = deque(requests)
        self.sent: list[object] = []
        self.lost = False

    def send(self, payload: bytes) -> None:
        if self.lost:
            raise NotConnected("the session ended")
        if len(payload) > LIMIT:
            raise MessageTooLarge(f"{len(payload)} bytes exceed the limit of {LIMIT}")
        self.sent.append(decode_message(payload))

    def receive(self, timeout: float | None) -> bytes | None:
        return self.inbox.popleft() if self.inbox else None


def _request(number: int, length: int) -> bytes:
    return encode_message(Relay(number, str(length).encode()))


def test_a_reply_above_the_limit_is_a_refused_request_and_the_service_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = _Endpoint(
        _request(1, 10 * LIMIT),  # its reply is refused by the transport
        _request(2, 8),  # answered
        encode_message(FederationEnd(2, True, "")),
    )
    service = KeyHolderService("compliance", endpoint, _Session())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        service.run(idle_timeout=0.01)
    assert service.outcome == "finished"
    assert (service.answered, service.refused) == (1, 1)
    assert endpoint.sent == [Relay(1, REFUSAL), Relay(2, b"x" * 8)]
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "secagg.keyholder" and r.levelno >= logging.WARNING
    ]
    too_large = len(encode_message(Relay(1, b"x" * 10 * LIMIT)))
    assert warnings == [
        f"compliance could not send its reply (MessageTooLarge): {too_large} bytes "
        f"exceed the limit of {LIMIT}; the request is refused, serving on"
    ]


def test_a_lost_session_still_ends_the_run_for_serve_to_redial() -> None:
    endpoint = _Endpoint(_request(1, 8))
    endpoint.lost = True
    service = KeyHolderService("compliance", endpoint, _Session())  # type: ignore[arg-type]
    with pytest.raises(NotConnected):
        service.run(idle_timeout=0.01)
