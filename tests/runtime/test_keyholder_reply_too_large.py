"""A key holder's reply the transport refuses is a refused request, not the service's end.

Known since the review of 2026-12-06 (secagg/runtime/keyholder.py, ``run``): the reply's
send was outside the loop's guard, so a reply larger than the session's
``max_message_bytes`` raised :class:`~secagg.transport.framing.MessageTooLarge` out of
:meth:`KeyHolderService.run` and stopped the key holder. Now it is one log line, the
request counted refused, the session's refusal sent in its place, and the service
answers the next request. A lost session still ends ``run`` (``serve`` redials).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from pathlib import Path

import numpy as np
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
        service.run(idle_timeout=60.0)
    assert service.outcome == "finished"
    assert (service.answered, service.refused) == (1, 1)
    assert endpoint.sent == [Relay(1, REFUSAL), Relay(2, b"x" * 8)]
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "secagg.keyholder" and r.levelno >= logging.WARNING
    ]
    too_large = len(encode_message(Relay(1, b"x" * 10 * LIMIT)))
    # the fake session counts every answer as a decryption: the refused reply spent one
    assert warnings == [
        f"compliance could not send its reply (MessageTooLarge): {too_large} bytes "
        f"exceed the limit of {LIMIT}; the request is refused and one decryption spent "
        "without release (lifetime count 1), serving on"
    ]


def test_a_lost_session_still_ends_the_run_for_serve_to_redial() -> None:
    endpoint = _Endpoint(_request(1, 8))
    endpoint.lost = True
    service = KeyHolderService("compliance", endpoint, _Session())  # type: ignore[arg-type]
    with pytest.raises(NotConnected):
        service.run(idle_timeout=60.0)


# --- a decryption whose reply did not leave stays counted (2026-12-06) -----------------
#
# The decision (KeyHolderService._send_reply): it counts against max_decryptions. The
# count is on disk before the reply leaves; the key holder cannot tell a reply that never
# left from one that left as the session broke, nor a failure from one a server provoked
# to have decryptions the cap does not bound. Before, the key holder's log said only
# "the request is refused" (or nothing, for a lost session): its operator read a refused
# request, not one of the lifetime cap's decryptions gone.


class _Plain(_Session):
    """A helper session whose answers decrypt nothing (a key request's, say)."""

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        return b"x" * int(payload.decode())


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "secagg.keyholder" and r.levelno >= logging.WARNING
    ]


def test_a_refused_reply_that_decrypted_nothing_spends_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = _Endpoint(_request(1, 10 * LIMIT), encode_message(FederationEnd(1, True, "")))
    service = KeyHolderService("compliance", endpoint, _Plain())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        service.run(idle_timeout=60.0)
    assert service.decryptions == 0
    (warning,) = _warnings(caplog)
    assert warning.endswith("the request is refused, serving on")
    assert "spent" not in warning


def test_a_session_lost_under_a_decryption_s_reply_says_the_decryption_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = _Endpoint(_request(1, 8))
    endpoint.lost = True  # the session ends as the reply is due
    service = KeyHolderService("compliance", endpoint, _Session())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"), pytest.raises(NotConnected):
        service.run(idle_timeout=60.0)
    assert service.decryptions == 1  # counted: serve() redials with it spent
    assert _warnings(caplog) == [
        "compliance: its session ended before the reply to its decryption left (the "
        "session ended); the decryption stays counted (lifetime count 1), and a resend "
        "of its request gets the same reply"
    ]


def test_a_server_provoking_lost_replies_gets_no_decryption_beyond_the_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real CKKS key holder with a lifetime cap of one decryption, whose link refuses
    the reply to its first decryption (as a server closing its session at that moment
    would make it fail): round 1 aborts with the key holder's refusal, the decryption is
    spent (its state file says 1), and round 2 is refused when it is opened (the cap is
    reached), before any branch encrypts. Counting it is the decision; a refund would
    have let round 2 decrypt."""
    pytest.importorskip("tenseal")
    from secagg.aggregation.policy import BranchPolicy
    from secagg.runtime.client import FederationClient
    from secagg.runtime.config import FederationConfig
    from secagg.runtime.launch import key_holder_service, make_key_holder_key
    from secagg.runtime.server import FederationServer
    from secagg.runtime.store import ServerStore
    from secagg.transport.inprocess import InProcessHub

    names = ["branch-a", "branch-b", "branch-c"]
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": names, "dimension": 8, "rounds": 2},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "deadlines": {"phase_seconds": 60.0, "training_seconds": 60.0},
        }
    )
    hub = InProcessHub()
    key, state = tmp_path / "compliance.key", tmp_path / "compliance.json"
    pin = make_key_holder_key(config, key)
    endpoint = hub.connect("compliance")
    holder = key_holder_service(
        config, endpoint, {"key": str(key), "state": str(state), "max_decryptions": 1}
    )
    send = endpoint.send
    refused: list[int] = []

    def lossy(payload: bytes) -> None:
        if holder.decryptions == 1 and not refused:  # the reply carrying the sum
            refused.append(len(payload))
            raise MessageTooLarge(f"{len(payload)} bytes refused by the link")
        send(payload)

    endpoint.send = lossy  # type: ignore[method-assign]
    serving = threading.Thread(target=holder.run, kwargs={"idle_timeout": 120}, daemon=True)
    serving.start()
    for name in names:
        client = FederationClient(
            name,
            lambda model: np.full(8, 0.1) - model,
            hub.connect(name),
            policy=BranchPolicy(key_holder_fingerprint=pin),
        )
        threading.Thread(target=client.run, kwargs={"idle_timeout": 60}, daemon=True).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        first, second = server.run(wait_for_clients=60, max_attempts=2)
        serving.join(timeout=60)
    assert refused, "the decryption's reply was never sent"
    assert first.status == "aborted" and "refused by the link" in str(first.reason)
    assert second.status == "aborted"
    assert "lifetime cap of 1 decryptions is reached" in str(second.reason)
    assert holder.decryptions == 1
    assert json.loads(state.read_text())["decryptions"] == 1
    assert any("one decryption spent without release" in line for line in _warnings(caplog))
