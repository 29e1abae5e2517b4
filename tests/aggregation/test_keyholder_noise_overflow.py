"""The key holder's overflow refusal: unreachable from config, kept as defence in depth.

Question (review of 2026-12-06, aggregation/ckks.py ``KeyHolderSession._decrypt``): the
decryption refused a requested noise std whose plausible range is not a finite float
("requested noise std ... overflows a float64 sum", a MalformedMessage), after the policy
had already refused any request above its cap (``noise_cap``: ``max_noise_stddev``, at
most 10¹⁰, else 10 x clients x value bound). Shown here:

* every extreme request (10³⁰⁸, the largest float) is refused by the cap first, through a
  real key holder, and spends nothing;
* for every policy a config can build and every design point the parameter chooser
  admits (clients x value bound up to about 10²⁵⁶: the modulus must hold it), 9
  deviations of the largest admitted std are finite, so the branch cannot be reached
  from config;
* a policy whose ``noise_cap`` is not the default's (a subclass) reaches it. The check now
  lives in ``KeyHolderPolicy.check_noise_request`` beside the cap, documented as defence
  in depth, and refuses as the key holder's policy (``NoiseRequestTooLarge``, nothing
  spent) instead of calling the server's request malformed.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession
from secagg.aggregation.keyholder_policy import (
    MAX_NOISE_STDDEV,
    KeyHolderPolicy,
    NoiseRequestTooLarge,
    plausible_range,
)
from secagg.he.errors import HEParameterError
from secagg.he.params import CKKSParameters, choose_parameters

CLIENTS, D = 3, 4
#: a decryption request's requested std: after the header (6 bytes) and the dimension (u32)
REQUESTED_AT = 6 + 4
EXTREME = [1e11, 1e300, 1e308, sys.float_info.max]


class _Uncapped(KeyHolderPolicy):
    """A policy whose cap admits any std (code, not config: no config builds it)."""

    def noise_cap(self, params: CKKSParameters) -> float:
        return math.inf


@pytest.fixture(scope="module")
def round_inputs() -> Iterator[dict[str, Any]]:
    """A planned round's key request, uploads and decryption request, made once."""
    backend = CKKSBackend()
    server = backend.server(backend.plan(CLIENTS, D), noise_stddev=0.5)
    (key_request,) = server.start()
    holder = KeyHolderSession()
    key_reply = holder.handle(key_request.payload, round_number=1)
    server.handle(HELPER, key_reply)
    outgoing: list[Any] = []
    for party in range(CLIENTS):
        upload = backend.client(server.spec, party).set_input(np.full(D, 0.25))[0]
        outgoing = server.handle(party, upload)
    (decrypt,) = outgoing
    yield {"holder_key": holder._holder, "decrypt": bytes(decrypt.payload), "key": key_request}


def _holder(inputs: dict[str, Any], policy: KeyHolderPolicy) -> KeyHolderSession:
    """A key holder of ``policy`` with the round's key, round 1 opened."""
    holder = KeyHolderSession(policy, key=inputs["holder_key"])
    holder.handle(inputs["key"].payload, round_number=1)
    return holder


def _asking(request: bytes, std: float) -> bytes:
    return request[:REQUESTED_AT] + struct.pack("<d", std) + request[REQUESTED_AT + 8 :]


@pytest.mark.parametrize("policy", [KeyHolderPolicy(), KeyHolderPolicy(max_noise_stddev=1e10)])
def test_the_cap_refuses_every_extreme_request_before_any_overflow(
    round_inputs: dict[str, Any], policy: KeyHolderPolicy
) -> None:
    holder = _holder(round_inputs, policy)
    for std in EXTREME:
        with pytest.raises(NoiseRequestTooLarge, match="adds at most"):
            holder.handle(_asking(round_inputs["decrypt"], std), round_number=1)
    assert holder.decryptions == 0  # nothing spent: the round still decrypts
    holder.handle(round_inputs["decrypt"], round_number=1)
    assert holder.decryptions == 1


@settings(max_examples=40, deadline=None)
@given(
    clients=st.integers(min_value=2, max_value=1_000_000),
    bound_exponent=st.floats(min_value=-6, max_value=300),
    precision_exponent=st.floats(min_value=-9, max_value=300),
    own=st.floats(min_value=0, max_value=MAX_NOISE_STDDEV),
    most=st.none() | st.floats(min_value=0, max_value=MAX_NOISE_STDDEV),
)
def test_no_configured_policy_admits_a_std_whose_range_overflows(
    clients: int,
    bound_exponent: float,
    precision_exponent: float,
    own: float,
    most: float | None,
) -> None:
    table: dict[str, Any] = {"noise_stddev": own, "max_decryptions": 10}
    if most is not None:
        table["max_noise_stddev"] = max(most, own) or 1.0
    policy = KeyHolderPolicy.from_dict(table)
    try:
        params = choose_parameters(clients, 10.0**bound_exponent, 10.0**precision_exponent)
    except HEParameterError:
        assume(False)  # no ring holds it: no key, no decryption
        return
    largest = policy.noise_for(params, policy.noise_cap(params))
    assert math.isfinite(plausible_range(params, largest))
    policy.check_noise_request(params, policy.noise_cap(params))  # admitted, not refused


def test_a_policy_without_the_cap_reaches_the_overflow_refusal(
    round_inputs: dict[str, Any],
) -> None:
    """Before: a MalformedMessage (the key holder's refusal code "invalid request") naming
    the server's request malformed, for a std the key holder's own policy had admitted."""
    holder = _holder(round_inputs, _Uncapped())
    with pytest.raises(NoiseRequestTooLarge, match="overflows a float64"):
        holder.handle(_asking(round_inputs["decrypt"], 1e308), round_number=1)
    assert holder.decryptions == 0
    holder.handle(_asking(round_inputs["decrypt"], 1e300), round_number=1)  # finite: taken
    assert holder.decryptions == 1
