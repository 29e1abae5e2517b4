"""A key holder's refusal aborts the server's round at once, with the key holder's reason.

The key-holder protocol had no refusal reply: a key holder refusing a request logged it
and sent nothing, so the server waited out the phase's deadline ("the key holder did not
publish a key in time") for a round the key holder had already refused. Over the
in-process transport, with a generous phase deadline of 60 s, the round now aborts as
soon as the refusal arrives.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from secagg.aggregation.base import HelperSession
from secagg.aggregation.ckks import refusal_reply
from secagg.errors import MalformedMessage
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.launch import key_holder_service
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, decode_message, encode_message
from secagg.transport.inprocess import InProcessHub

NAMES = ["branch-a", "branch-b", "branch-c"]
#: the phase deadline the round would wait out without the refusal: generous, so that an
#: abort well under it can only be the refusal's
PHASE_SECONDS = 60.0


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": NAMES, "dimension": 40, "rounds": 2},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "deadlines": {"phase_seconds": PHASE_SECONDS},
        }
    )


def test_a_key_holder_at_its_cap_refuses_the_key_request_and_the_round_aborts_at_once(
    tmp_path: Path,
) -> None:
    """The key holder's lifetime cap is reached (its state file says so), so it refuses
    round 1 when it is opened; the server records the abort with the key holder's reason
    in well under the 60 s phase deadline it waited out before (measured: ~0.01 s after,
    60.0 s before), and the key holder serves on until the federation's end."""
    state = tmp_path / "kh.json"
    state.write_text(json.dumps({"version": 1, "decryptions": 1, "rounds": [0]}))
    config = _config()
    hub = InProcessHub()
    for name in NAMES:
        hub.connect(name)  # connected, never asked anything: the round ends at its key
    holder = key_holder_service(
        config, hub.connect("compliance"), {"state": str(state), "max_decryptions": 1}
    )
    serving = threading.Thread(target=holder.run, kwargs={"idle_timeout": 120}, daemon=True)
    serving.start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    began = time.monotonic()
    (result,) = server.run(wait_for_clients=30, max_attempts=1)
    elapsed = time.monotonic() - began
    assert result.status == "aborted"
    assert (
        "the key holder refused the key request (decryption cap reached): round 1 refused: "
        "the key holder's lifetime cap of 1 decryptions is reached" in str(result.reason)
    )
    assert elapsed < PHASE_SECONDS / 4, f"the round took {elapsed:.1f} s to abort"
    serving.join(timeout=60)  # the server announced the end: the key holder returns
    assert not serving.is_alive() and holder.outcome == "stopped"
    assert holder.refused == 1 and holder.answered == 0 and holder.decryptions == 1
    assert json.loads(state.read_text())["decryptions"] == 1  # nothing spent
    (row,) = ServerStore(tmp_path / "he.sqlite").rounds()
    assert row["status"] == "aborted" and "decryption cap reached" in json.dumps(row)


class _Refusing(HelperSession):
    """Refuses junk (a typed refusal) and raises a bug on ``bug``; its refusal reply
    raises when ``broken``."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        if payload == b"bug":
            raise KeyError("the key's secret")
        raise MalformedMessage("not a key-holder message")

    def refusal(self, error: BaseException) -> bytes | None:
        if self.broken:
            raise ValueError("no refusal today")
        return refusal_reply(error)


def test_the_service_relays_each_refusal_under_its_round_and_never_floods_its_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused request is answered under the request's round (a bug's refusal carries
    its code only, never its text); a message that is no request gets nothing; a session
    whose refusal fails sends nothing and logs that once, not once per request of a
    server's flood."""
    service = KeyHolderService("compliance", None, _Refusing())
    reply = decode_message(service._answer(encode_message(Relay(4, b"junk"))) or b"")
    assert isinstance(reply, Relay) and reply.round == 4
    assert reply.payload == refusal_reply(MalformedMessage("not a key-holder message"))
    bug = decode_message(service._answer(encode_message(Relay(5, b"bug"))) or b"")
    assert isinstance(bug, Relay) and bug.payload == refusal_reply(KeyError("x"))
    assert b"secret" not in bug.payload
    assert service._answer(b"\xff" * 10) is None  # not a message: no round to answer under
    broken = KeyHolderService("compliance", None, _Refusing(broken=True))
    with caplog.at_level(logging.DEBUG, logger="secagg.keyholder"):
        for i in range(50):
            assert broken._answer(encode_message(Relay(1, b"junk %d" % i))) is None
    failed = [r for r in caplog.records if "could not build a refusal" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.ERROR] + [logging.DEBUG] * 49
    assert broken.refused == 50
