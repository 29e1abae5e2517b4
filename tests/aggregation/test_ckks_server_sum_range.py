"""The CKKS server returns no sum its round's contributions could not have made.

A round's result carries an error bound (the parameters' CKKS error plus 7 noise
deviations), so a sum returned is vouched for as the sum of the uploads within it. The
server took whatever finite vector the key holder's reply held, with the noise it
reported: a reply of 10^6 for three contributions bounded by 1 was returned as the
round's sum, with an error bound of about 10^-5. An honest key holder's sum lies within
``n * B + error_bound + 9 * noise`` (it refuses an exact sum beyond ``n * B + error_bound``
itself, and a Box-Muller deviate is at most 8.6 noise deviations), so the server now
aborts a round whose reply lies beyond that, and takes every reply within it. Hypothesis
draws the noise and how far one coordinate lies from the range's edge.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, Announce, ToParty, decode_spec
from secagg.aggregation.ckks import _DECRYPTED, CKKSBackend, KeyHolderSession, _helper_message
from secagg.errors import RoundAborted
from secagg.he.params import TAIL_Z

CLIENTS, DIMENSION, BOUND = 3, 5, 1.0
#: the range the documented rules give (docs/backends.md, "plausible sums only")
RANGE_TAIL_Z = 9.0


@pytest.fixture(scope="module")
def round_inputs() -> Iterator[tuple[CKKSBackend, object, bytes, list[bytes]]]:
    """A planned round, the key holder's key reply and each client's upload, made once:
    every example replays them into a fresh server."""
    backend = CKKSBackend(value_bound=BOUND)
    spec = backend.plan(CLIENTS, DIMENSION)
    server = backend.server(spec)
    (request,) = server.start()
    assert isinstance(request, ToParty)
    key_reply = KeyHolderSession().handle(request.payload, round_number=1)
    (announce,) = server.handle(HELPER, key_reply)
    assert isinstance(announce, Announce)
    announced = decode_spec(announce.spec)
    uploads = []
    for party in range(CLIENTS):
        client = backend.client(announced, party, rounding=None)
        (upload,) = client.set_input(np.full(DIMENSION, 0.5))
        uploads.append(upload)
    yield backend, spec, key_reply, uploads


def _reply_into_server(inputs: tuple, noise: float, total: np.ndarray):  # type: ignore[no-untyped-def]
    backend, spec, key_reply, uploads = inputs
    server = backend.server(spec)
    server.start()
    server.handle(HELPER, key_reply)
    outgoing = []
    for party, upload in enumerate(uploads):
        outgoing = server.handle(party, upload)
    assert [o.party for o in outgoing] == [HELPER]  # the decryption request
    body = struct.pack("<d", noise) + np.asarray(total, "<f8").tobytes()
    server.handle(HELPER, _helper_message(_DECRYPTED, body))
    return server


def _reach(spec: object, noise: float) -> float:
    params = spec.design.parameters()  # type: ignore[attr-defined]
    return CLIENTS * BOUND + params.error_bound(params.num_clients) + RANGE_TAIL_Z * noise


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    noise=st.one_of(st.just(0.0), st.floats(1e-9, 10.0)),
    beyond=st.floats(-0.5, 1e6),  # how far past the range's edge, in units of the range
    sign=st.sampled_from([1.0, -1.0]),
    where=st.integers(0, DIMENSION - 1),
)
def test_a_reply_is_returned_exactly_when_its_round_could_have_summed_it(
    round_inputs: tuple, noise: float, beyond: float, sign: float, where: int
) -> None:
    reach = _reach(round_inputs[1], noise)
    total = np.full(DIMENSION, 1.5)
    total[where] = sign * reach * (1.0 + beyond)
    server = _reply_into_server(round_inputs, noise, total)
    if abs(total[where]) <= reach:
        result = server.finish()
        np.testing.assert_array_equal(result.total, total)
        assert result.report.noise_stddev == noise
        return
    with pytest.raises(RoundAborted, match="not a sum of this round"):
        server.finish()


def test_the_case_found_a_million_for_three_contributions_of_at_most_one(
    round_inputs: tuple,
) -> None:
    server = _reply_into_server(round_inputs, 0.0, np.full(DIMENSION, 1e6))
    with pytest.raises(RoundAborted, match="beyond"):
        server.finish()


def test_an_honest_key_holders_noised_sum_at_the_bound_is_returned(round_inputs: tuple) -> None:
    """The range's noise term holds the most a Box-Muller deviate reaches (8.6 std)."""
    noise = 2.0
    total = np.full(DIMENSION, CLIENTS * BOUND + 8.58 * noise)
    result = _reply_into_server(round_inputs, noise, total).finish()
    assert result.report.error_bound >= TAIL_Z * noise
