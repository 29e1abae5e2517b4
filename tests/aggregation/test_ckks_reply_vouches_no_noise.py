"""A key holder's decrypted reply that vouches for no noise std is charged as no noise.

Finding (review of 2026-12-06, aggregation/ckks.py ``CKKSServer._on_decrypted``): the
server charges the reveal of a CKKS round at the noise the key holder's reply reports
(``noise_at_reveal``). A reply reporting -1 was refused as malformed and counted as no
noise (epsilon infinite), but one reporting NaN or an infinity was refused by the reply's
reader before its report was kept, and one of the wrong size before its report was read
at all: the reveal stayed at the planned std, so the same key holder's malformed reply
was charged infinite or planned by the byte it broke. The key holder has decrypted the
round (it decrypts once) and such a reply may carry the sum whatever is wrong with it, so
every report that is no std >= 0 now vouches for none, and so does a reply of the wrong
size, whatever it reports (a stream of them, each reporting a little less, cannot then
make the server write a charge for each).

``noise_of_reply`` is the same rule read before the reply is handled (the runtime makes
that charge durable first: tests/runtime/test_ckks_reply_charge_crash.py); hypothesis
checks the two agree for any reply.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER
from secagg.aggregation.ckks import (
    _DECRYPTED,
    CKKSBackend,
    CKKSServer,
    KeyHolderSession,
    _helper_message,
    refusal_reply,
)
from secagg.aggregation.keyholder_policy import KeyHolderRefusal
from secagg.errors import SecAggError

CLIENTS, D = 3, 4
PLANNED = 0.5
#: where the decrypted reply's noise std lies: after the helper header (magic, version, kind)
NOISE_AT = 6


@pytest.fixture(scope="module")
def inputs() -> Iterator[dict[str, Any]]:
    """A planned round, the key holder's key reply, each client's upload and the honest
    decrypted reply, made once: every case replays them into a fresh server."""
    backend = CKKSBackend()
    holder = KeyHolderSession()
    spec = backend.plan(CLIENTS, D)
    server = backend.server(spec, noise_stddev=PLANNED)
    (request,) = server.start()
    key_reply = holder.handle(request.payload, round_number=1)
    server.handle(HELPER, key_reply)
    uploads = [
        backend.client(server.spec, party).set_input(np.full(D, 0.25))[0]
        for party in range(CLIENTS)
    ]
    outgoing: list[Any] = []
    for party, upload in enumerate(uploads):
        outgoing = server.handle(party, upload)
    (decrypt,) = outgoing
    honest = holder.handle(decrypt.payload, round_number=1)
    yield {"backend": backend, "spec": spec, "key": key_reply, "uploads": uploads, "honest": honest}


def _at_decryption(inputs: dict[str, Any]) -> CKKSServer:
    """A fresh server whose decryption request is out."""
    server = inputs["backend"].server(inputs["spec"], noise_stddev=PLANNED)
    server.start()
    server.handle(HELPER, inputs["key"])
    for party, upload in enumerate(inputs["uploads"]):
        server.handle(party, upload)
    assert server.phase == "decrypt"
    return server


def _reporting(reply: bytes, noise: float) -> bytes:
    return reply[:NOISE_AT] + struct.pack("<d", noise) + reply[NOISE_AT + 8 :]


def _handled(server: CKKSServer, reply: bytes) -> None:
    try:
        server.handle(HELPER, reply)
    except SecAggError:
        pass  # refused: the round waits for its deadline, as for any junk


@pytest.mark.parametrize(
    ("case", "vouched"),
    [
        ("nan", 0.0),
        ("inf", 0.0),
        ("-inf", 0.0),
        ("negative", 0.0),
        ("header only", 0.0),
        ("half a std", 0.0),
        ("a value short, a quarter of the plan", 0.0),
        ("a value long, a quarter of the plan", 0.0),
    ],
)
def test_a_malformed_decrypted_reply_is_charged_at_what_it_vouches_for(
    inputs: dict[str, Any], case: str, vouched: float
) -> None:
    honest = inputs["honest"]
    reply = {
        "nan": _reporting(honest, math.nan),
        "inf": _reporting(honest, math.inf),
        "-inf": _reporting(honest, -math.inf),
        "negative": _reporting(honest, -1.0),
        "header only": honest[:NOISE_AT],
        "half a std": honest[: NOISE_AT + 4],
        "a value short, a quarter of the plan": _reporting(honest, PLANNED / 4)[:-8],
        "a value long, a quarter of the plan": _reporting(honest, PLANNED / 4) + bytes(8),
    }[case]
    server = _at_decryption(inputs)
    _handled(server, reply)
    assert not server.done  # refused as malformed: no sum taken
    assert server.noise_at_reveal() == vouched, case  # before: the plan's 0.5 but for -1
    # what the runtime charges before handling it (the refusal changed no phase)
    assert server.noise_of_reply(HELPER, reply) == vouched
    # an honest reply after it cannot raise what the malformed one let through
    server.handle(HELPER, honest)
    assert server.noise_at_reveal() == vouched


def test_only_the_key_holders_decrypted_sum_is_read_before_it_is_handled(
    inputs: dict[str, Any],
) -> None:
    """None for every message that carries no sum: a refusal, a client's upload, the key
    reply in its phase; the honest reply's report is what handling it keeps."""
    backend, spec = inputs["backend"], inputs["spec"]
    server = backend.server(spec, noise_stddev=PLANNED)
    server.start()
    assert server.noise_of_reply(HELPER, inputs["key"]) is None  # the key phase
    server.handle(HELPER, inputs["key"])
    assert server.noise_of_reply(0, inputs["uploads"][0]) is None  # a client's upload
    server = _at_decryption(inputs)
    refusal = refusal_reply(KeyHolderRefusal("not today"))
    assert server.noise_of_reply(HELPER, refusal) is None
    assert server.noise_of_reply(HELPER, "not bytes") is None  # refused by handle as such
    assert server.noise_of_reply(0, inputs["honest"]) is None  # not the key holder's
    reported = server.noise_of_reply(HELPER, inputs["honest"])
    assert reported is not None and reported >= PLANNED
    server.handle(HELPER, inputs["honest"])
    assert server.done and server.noise_at_reveal() == PLANNED  # the least of plan and report


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    noise=st.floats(allow_nan=True, allow_infinity=True),
    cut=st.integers(min_value=0, max_value=8 * D + 24),
    extra=st.binary(max_size=16),
)
def test_the_charge_read_before_a_reply_is_the_one_kept_after_it(
    inputs: dict[str, Any], noise: float, cut: int, extra: bytes
) -> None:
    """Any reply whose kind says it is a decrypted sum, of any report and length: the std
    read before handling it (what the runtime writes first) is the one the reveal keeps,
    so no charge written before the read is above the one the session settles on."""
    body = struct.pack("<d", noise) + np.full(D, 0.75, "<f8").tobytes()
    reply = (_helper_message(_DECRYPTED, body) + extra)[: NOISE_AT + cut]  # 0: the header
    server = _at_decryption(inputs)
    before = server.noise_of_reply(HELPER, reply)
    _handled(server, reply)
    assert before is not None
    assert server.noise_at_reveal() == min(PLANNED, before)
