"""A key holder caps the noise a server asks for, and a config-less one the sum's length.

Findings (review of 2026-12-06):

* The key holder honoured any requested noise std a float64 sum could hold: a server
  asking for 10⁹ at a design point whose sums reach 3 per coordinate had a decryption of
  the key holder's lifetime cap spent on a sum buried in noise. It now refuses, in one
  typed line (:class:`NoiseRequestTooLarge`) before any decryption, a std above its
  ``[key_holder] max_noise_stddev``, by default 10 times the design point's clients x
  value bound (never below its own ``noise_stddev``); nothing is spent.
* A config-less key holder (``secagg keyholder --backend ckks``) had no cap on a round's
  length: only the transport's message size bounded how many coordinates one decryption
  released. It now takes ``max_dimension`` (default 2²⁰) and refuses a longer round when
  it is opened, before any key is made.
"""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("tenseal")

from _keyholder_rounds import decryption_request, key_request

from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession, refusal_reply
from secagg.aggregation.keyholder_policy import (
    CONFIGLESS_MAX_DIMENSION,
    NOISE_CAP_PER_RANGE,
    KeyHolderPolicy,
    NoiseRequestTooLarge,
    WrongDimension,
    configless_caps,
)
from secagg.errors import ConfigurationError

CLIENTS, D = 3, 8
#: where a decryption request's requested noise std lies: the helper header (6 bytes),
#: then the dimension (u32)
REQUESTED_AT = 6 + 4


def _asking(request: bytes, noise: float) -> bytes:
    return request[:REQUESTED_AT] + struct.pack("<d", noise) + request[REQUESTED_AT + 8 :]


def _at_decryption(policy: KeyHolderPolicy) -> tuple[KeyHolderSession, bytes]:
    backend = CKKSBackend()
    helper = KeyHolderSession(policy)
    request = decryption_request(backend, helper, 1, clients=CLIENTS, dimension=D, federation="")
    return helper, request


@pytest.mark.parametrize("noise", [1e9, NOISE_CAP_PER_RANGE * CLIENTS * 1.0 * 1.001])
def test_a_noise_request_above_the_design_points_cap_is_refused_before_any_decryption(
    noise: float,
) -> None:
    helper, request = _at_decryption(KeyHolderPolicy())
    with pytest.raises(NoiseRequestTooLarge) as refused:
        helper.handle(_asking(request, noise), round_number=1)
    text = str(refused.value)
    assert "\n" not in text and "max_noise_stddev" in text and f"{noise:g}" in text
    assert helper.decryptions == 0  # nothing spent: the round can still be decrypted
    assert refusal_reply(refused.value)[6] == 5  # the code of a key holder policy refusal
    helper.handle(request, round_number=1)
    assert helper.decryptions == 1


def test_the_cap_admits_the_design_points_range_and_the_key_holders_own_noise() -> None:
    cap = NOISE_CAP_PER_RANGE * CLIENTS * 1.0
    helper, request = _at_decryption(KeyHolderPolicy())
    helper.handle(_asking(request, cap), round_number=1)  # at the cap: decrypted
    own = KeyHolderPolicy(noise_stddev=10 * cap, max_decryptions=5)
    helper, request = _at_decryption(own)
    helper.handle(_asking(request, 10 * cap), round_number=1)  # its own noise: admitted
    assert helper.decryptions == 1


def test_a_configured_noise_cap_is_the_key_holders_and_is_checked_at_start() -> None:
    helper, request = _at_decryption(KeyHolderPolicy.from_dict({"max_noise_stddev": 0.5}))
    with pytest.raises(NoiseRequestTooLarge, match=r"at most 0\.5 .*\[key_holder\] max_noise"):
        helper.handle(_asking(request, 0.6), round_number=1)
    for settings in (
        {"max_noise_stddev": 0},
        {"max_noise_stddev": -1.0},
        {"max_noise_stddev": 1e11},
        {"max_noise_stddev": "1"},
        {"noise_stddev": 2.0, "max_decryptions": 3, "max_noise_stddev": 1.0},
    ):
        with pytest.raises(ConfigurationError, match=r"^\[key_holder\] max_noise_stddev"):
            KeyHolderPolicy.from_dict(settings)


def test_a_configless_key_holder_refuses_a_round_longer_than_its_cap_before_any_key() -> None:
    backend = CKKSBackend()
    helper = backend.helper(backend.configless_helper_settings(None))
    assert helper.policy.max_dimension == CONFIGLESS_MAX_DIMENSION
    request = key_request(backend, CLIENTS, CONFIGLESS_MAX_DIMENSION + 1, "")
    with pytest.raises(WrongDimension, match=r"at most 1048576 values .*max_dimension"):
        helper.handle(request, round_number=1)
    assert helper.fingerprint is None and helper.opened is None  # no key made, nothing opened
    helper.handle(key_request(backend, CLIENTS, CONFIGLESS_MAX_DIMENSION, ""), round_number=1)
    assert helper.opened == (1, CONFIGLESS_MAX_DIMENSION)


def test_the_configless_dimension_cap_follows_the_table() -> None:
    assert configless_caps({"max_dimension": 64})["max_dimension"] == 64
    assert configless_caps({"dimension": 1 << 22})["max_dimension"] == 1 << 22
    with pytest.raises(ConfigurationError, match=r"^\[key_holder\] max_dimension"):
        KeyHolderPolicy.from_dict({"dimension": 100, "max_dimension": 99})
    with pytest.raises(ConfigurationError, match=r"^\[key_holder\] max_dimension"):
        KeyHolderPolicy.from_dict({"max_dimension": 0})
