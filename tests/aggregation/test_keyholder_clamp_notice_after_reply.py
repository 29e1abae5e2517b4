"""The key holder logs a clamped sum only after its reply has left, never before it.

Finding (CKKS review, 2026-12-07): :meth:`KeyHolderSession._decrypt` wrote its warning
"round r: k of d coordinates of the exact sum were beyond R ..." inside the decryption,
before it returned the reply, and only when the clamp moved a coordinate. Writing a log
line is I/O (the CLI's handler writes to stderr, often a pipe into a journal), so the reply
left later exactly when the exact sum crossed the plausible box: the un-noised bit that the
clamp replaced the refusal to remove (tests/aggregation/test_ckks_implausible_refusal_bit.py)
and whose passes were made data-oblivious for the same reason
(tests/aggregation/test_keyholder_clamp_oblivious.py). Measured in-process, d = 64, stderr
to a file, 200 rounds each: median 826 us for an honest sum, 954 us for a clamped one; with
the logger silenced, 860 and 842 us. With a malicious branch's upload set near the box's
edge, that delay says whether an honest coordinate is above a threshold.

Now the decryption keeps the notice and :meth:`HelperSession.after_reply`, which the key
holder's service calls once the reply is sent (and the in-memory driver once it has the
reply), writes it: what runs before the reply no longer depends on the sum.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, decode_spec
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession, frame_chunks
from secagg.he.keys import PublicAggregationContext
from secagg.he.vectors import EncryptedSum, encrypt_vector

CLIENTS, DIMENSION = 4, 64
#: the round's honest values (test data): the first three branches' sum is positive on
#: 36 of the 64 coordinates (at least 0.0013 from 0, far beyond the CKKS error)
ROWS = np.linspace(-0.5, 0.9, CLIENTS * DIMENSION).reshape(CLIENTS, DIMENSION)
CROSSING = int(np.sum(ROWS[:3].sum(axis=0) > 0))


class _Records(logging.Handler):
    """Every record the key holder's logger emits, in order."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> list[logging.LogRecord]:
    logger = logging.getLogger("secagg.keyholder")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _inflated_upload(public: PublicAggregationContext, times: int) -> bytes:
    """A malicious branch's one "contribution" worth ``times`` vectors at the value bound
    (it holds the public key: the sum of ``times`` encryptions, relabelled as one)."""
    inflated = EncryptedSum(public, DIMENSION)
    for _ in range(times):
        inflated.add(encrypt_vector(public, np.full(DIMENSION, public.params.value_bound)))
    chunks = inflated.to_chunks()
    return frame_chunks(
        [c[:5] + b"\x01" + c[6:22] + (1).to_bytes(4, "big") + c[26:] for c in chunks]
    )


def _decryption_request(helper: KeyHolderSession, number: int, *, malicious: bool) -> bytes:
    """An honest server's decryption request of round ``number`` (opened here); with
    ``malicious``, one branch's upload decrypts to 4 value bounds a coordinate, so the sum
    of the round of 4 crosses the plausible box (4 B) wherever the others' sum is positive."""
    backend = CKKSBackend()
    server = backend.server(backend.plan(CLIENTS, DIMENSION))
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=number))
    spec = decode_spec(announce.spec)
    outgoing: list = []
    for party, row in enumerate(ROWS):
        upload = backend.client(spec, party).set_input(row)[0]
        if malicious and party == CLIENTS - 1:
            upload = _inflated_upload(helper._holder.public_context(), times=4)
        outgoing = server.handle(party, upload)
    (decrypt,) = outgoing
    return decrypt.payload


def _during_decryption(
    helper: KeyHolderSession, number: int, records: list[logging.LogRecord], *, malicious: bool
) -> list[tuple[int, str]]:
    """(level, message template) of what the key holder logs while it makes the reply."""
    payload = _decryption_request(helper, number, malicious=malicious)
    records.clear()
    helper.handle(payload, round_number=number)
    return [(r.levelno, str(r.msg)) for r in records]


def test_what_is_logged_before_the_reply_does_not_depend_on_the_clamp(
    records: list[logging.LogRecord],
) -> None:
    helper = KeyHolderSession()
    honest = _during_decryption(helper, 1, records, malicious=False)
    clamped = _during_decryption(helper, 2, records, malicious=True)
    assert clamped == honest  # before: one WARNING more, written before the reply
    helper.after_reply()  # the reply has left: now the key holder's own log says it
    (notice,) = records
    assert notice.levelno == logging.WARNING
    assert f"round 2: {CROSSING} of {DIMENSION} coordinates of the exact sum" in (
        notice.getMessage()
    )
    records.clear()
    helper.after_reply()  # said once
    _during_decryption(helper, 3, records, malicious=False)
    helper.after_reply()  # nothing clamped, nothing to say after the reply either
    assert not records


def test_the_service_writes_the_notice_after_it_sent_the_reply(
    records: list[logging.LogRecord],
) -> None:
    from secagg.runtime.keyholder import KeyHolderService
    from secagg.runtime.wire import Relay, encode_message

    events: list[str] = []

    class _Transport:
        def __init__(self, messages: list[bytes]) -> None:
            self.messages = messages

        def send(self, payload: bytes) -> None:
            events.append("sent")

        def receive(self, timeout: float | None = None) -> bytes | None:
            return self.messages.pop(0) if self.messages else None

    class _Order(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "coordinates of the exact sum" in record.getMessage():
                events.append("notice")

    helper = KeyHolderSession()
    payload = _decryption_request(helper, 3, malicious=True)
    order = _Order(logging.WARNING)
    logging.getLogger("secagg.keyholder").addHandler(order)
    try:
        service = KeyHolderService("kh", _Transport([encode_message(Relay(3, payload))]), helper)
        assert service.run(idle_timeout=0.01) == 1
    finally:
        logging.getLogger("secagg.keyholder").removeHandler(order)
    assert events == ["sent", "notice"]  # before: ["notice", "sent"]
