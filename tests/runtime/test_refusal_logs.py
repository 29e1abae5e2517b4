"""A server cannot write a branch's (or the key holder's) log at will.

Each message a branch or the key holder refused was one log line, so a server sending
junk as fast as the network carries it grew their logs without bound (the server's own
log had the same fault from a branch: 20 000 junk relays, 2.3 MB in one round; network
audit). Now the first few refusals are logged, then one line says the rest are counted,
then one line at every power of ten; progress (a round's end, an answered request)
starts the count again. A line names the refusal's type, so a forgery reads apart from junk.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from _branch_certs import branch_certificates
from _endpoints import SentMessages

from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.base import RoundIdentity, ToParty
from secagg.aggregation.masking import MaskingBackend
from secagg.crypto.signing import CertificateVerifyKey
from secagg.errors import MalformedMessage
from secagg.protocol import decode, encode
from secagg.protocol.messages import KeyDirectory
from secagg.runtime.client import REFUSED_LINE, FederationClient
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.launch import branch_identity
from secagg.runtime.refusals import LOGGED_REFUSALS, RefusalLog, _power_of_ten
from secagg.runtime.wire import Relay, RoundStart, encode_message, round_context

JUNK = 1000


def _own(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The records this test's thread logged: caplog also catches what another test's
    party threads, still winding down in the same worker, log meanwhile (CI of
    2026-12-07: a branch's "the server stopped the federation" made 12 records of 9)."""
    return [r for r in caplog.records if r.thread == threading.get_ident()]


def _lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in _own(caplog) if text in r.getMessage()]


def test_a_flood_of_junk_from_the_server_writes_a_few_lines_in_a_branchs_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    branch = FederationClient("branch-a", lambda m: np.zeros_like(m), SentMessages())
    with caplog.at_level(logging.INFO, logger="secagg.client"):
        for i in range(JUNK):
            branch.handle(b"junk %d" % i)
    assert branch.stats.refused_messages == JUNK  # every one counted
    assert len(_lines(caplog, "refused a message")) == LOGGED_REFUSALS
    summaries = _lines(caplog, "messages refused in a row")
    assert [int(line.split()[1]) for line in summaries] == [6, 10, 100, 1000]
    assert len(_own(caplog)) == LOGGED_REFUSALS + 4  # not one line per message


def test_a_line_another_thread_logs_meanwhile_is_not_the_branchs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The count above is of this branch's lines: a party thread of an earlier test,
    winding down in the same worker, logging meanwhile is not a line per message."""
    branch = FederationClient("branch-a", lambda m: np.zeros_like(m), SentMessages())
    other = threading.Thread(
        target=logging.getLogger("secagg.client").warning, args=("another party's line",)
    )
    with caplog.at_level(logging.INFO, logger="secagg.client"):
        for i in range(JUNK):
            branch.handle(b"junk %d" % i)
            if i == JUNK // 2:
                other.start()
                other.join(90.0)
    assert any(r.getMessage() == "another party's line" for r in caplog.records)
    assert len(_own(caplog)) == LOGGED_REFUSALS + 4


class _Session:
    """A helper session that refuses junk and answers anything else."""

    decryptions = 0

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        if payload.startswith(b"junk"):
            raise MalformedMessage("not a key-holder message")
        return b"answer"


def test_a_flood_of_junk_requests_writes_a_few_lines_in_the_key_holders_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = KeyHolderService("compliance", None, _Session())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        for i in range(JUNK):
            assert holder._answer(encode_message(Relay(1, b"junk %d" % i))) is None
        assert holder.refused == JUNK
        assert len(_lines(caplog, "refused a request")) == LOGGED_REFUSALS
        # the error's type, as a branch's lines name it
        assert all(
            "compliance refused a request (MalformedMessage): " in line
            for line in _lines(caplog, "refused a request")
        )
        assert len(_lines(caplog, "messages refused in a row")) == 4
        # an answered request is progress: the next refusals are logged in full again
        assert holder._answer(encode_message(Relay(1, b"a request"))) is not None
        caplog.clear()
        for _ in range(LOGGED_REFUSALS):
            holder._answer(encode_message(Relay(1, b"junk")))
    assert len(_lines(caplog, "refused a request")) == LOGGED_REFUSALS


def test_the_refusal_log_counts_and_resets(caplog: pytest.LogCaptureFixture) -> None:
    refusals = RefusalLog(logging.getLogger("test.refusals"), "party", first=2)
    with caplog.at_level(logging.INFO, logger="test.refusals"):
        for _ in range(12):
            refusals.refused(logging.WARNING, "refused %s", "x")
        assert refusals.count == 12 and len(_own(caplog)) == 2 + 2  # 3rd and 10th
        refusals.reset()
        refusals.refused(logging.WARNING, "refused %s", "y")
    assert _own(caplog)[-1].getMessage() == "refused y"
    assert [n for n in range(1, 10001) if _power_of_ten(n)] == [1, 10, 100, 1000, 10000]


# -- what a refusal's line says: the error's type -------------------------------------------

NAMES = ["branch-00", "branch-01", "branch-02"]
FED = "fed"
UPDATE = 0.123456  # every coordinate of the branch's update: never in its log


def _refusal_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in _own(caplog) if r.msg == REFUSED_LINE]


def test_a_refusals_line_names_the_errors_type_a_forgery_apart_from_junk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator reading "refused a message" could not tell a forged signature (an
    incident) from junk or a version skew: the line gave the error's text only. Now it
    names the type, and says nothing of the update or the keys."""
    ca, ders = branch_certificates(tmp_path, NAMES)
    spec = MaskingBackend(graph="complete", value_bound=4.0, active=True).plan(
        3, 4, identities=tuple(ders[name] for name in NAMES)
    )
    keys = {p: CertificateVerifyKey.from_certificate(ders[n]) for p, n in enumerate(NAMES)}
    backend = get_backend(spec.name)
    server = backend.server(spec)
    server.bind_round(round_context(1, FED))
    puppets = {}
    for p in (1, 2):
        identity = RoundIdentity(branch_identity(ca, NAMES[p]).signing_key, keys)
        puppets[p] = backend.client(spec, p, identity=identity)
        puppets[p].bind_round(round_context(1, FED))
        puppets[p].set_input(np.zeros(4))
    outbox = SentMessages()
    branch = FederationClient(
        NAMES[0],
        lambda m: np.full_like(m, UPDATE),
        outbox,
        identity=branch_identity(ca, NAMES[0]),
        stop_on_refusal=False,
    )
    branch.handle(
        encode_message(RoundStart(1, 0, encode_spec(spec), np.zeros(4), 1.0, federation=FED))
    )
    # the round run honestly up to the branch's key directory, which is held back
    genuine = b""
    queue = list(server.start())
    while not genuine:
        if not queue:
            queue.extend(server.close_phase())
        event = queue.pop(0)
        if not isinstance(event, ToParty):
            continue
        if event.party == 0 and isinstance(decode(event.payload), KeyDirectory):
            genuine = event.payload
        elif event.party == 0:
            sent_before = len(outbox.sent)
            branch.handle(encode_message(Relay(1, event.payload)))
            replies = [(0, m.payload) for m in outbox.sent[sent_before:] if isinstance(m, Relay)]
            for party, reply in replies:
                queue.extend(server.handle(party, reply))
        else:
            for reply in puppets[event.party].handle(event.payload):
                queue.extend(server.handle(event.party, reply))
    directory = decode(genuine)
    assert isinstance(directory, KeyDirectory)
    entry = directory.entries[-1]
    garbled = bytes([entry.signature[0] ^ 1]) + entry.signature[1:]
    entries = (*directory.entries[:-1], dataclasses.replace(entry, signature=garbled))
    forged = encode(dataclasses.replace(directory, entries=entries))
    with caplog.at_level(logging.DEBUG, logger="secagg.client"):
        branch.handle(encode_message(Relay(1, forged)))  # a forgery, in its phase
        branch.handle(b"junk")  # junk
        branch.handle(encode_message(Relay(1, genuine)))  # the genuine one: answered
    assert isinstance(outbox.sent[-1], Relay)  # its shares: the genuine directory taken
    lines = _refusal_lines(caplog)
    assert [record.args[1] for record in lines] == ["SignatureError", "MalformedMessage"]  # type: ignore[index]
    assert lines[0].getMessage().startswith("branch-00 refused a message (SignatureError): ")
    assert all("\n" not in record.getMessage() for record in lines)
    assert branch.stats.refused_messages == 2
    # nothing of the update, nor of the branch's keys, in anything it logged
    text = caplog.text
    assert f"{UPDATE}" not in text and f"{UPDATE:g}" not in text
    own = branch_identity(ca, NAMES[0]).signing_key.verify_key.raw
    assert own.hex() not in text and own.hex()[:16] not in text
