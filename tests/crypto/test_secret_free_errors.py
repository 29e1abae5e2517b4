"""Errors name a secret's type, never its value; array reconstruction refuses what
would silently give a wrong secret.

``derive(label, np.frombuffer(key, np.uint8))`` raised ConfigurationError with the
array's repr, the key's sixteen bytes, in its message, where a log or a traceback
keeps it. ``reconstruct_arrays`` took a point of 1.5 as 1 and a share value below
zero as 2^64 plus it: for a 31-byte secret (every limb full, so no limb check catches
it) both returned a secret, the second a wrong one, with no error. ``locate_errors``
with a threshold of 1.5 failed as range()'s bare TypeError.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from secagg.crypto import shamir
from secagg.crypto.stream import derive
from secagg.errors import ConfigurationError, SecretSharingError


@pytest.mark.parametrize(
    "holder",
    [lambda key: np.frombuffer(key, np.uint8), lambda key: [key], lambda key: (key, 1)],
    ids=["numpy bytes", "list", "tuple"],
)
def test_a_refused_seed_is_named_by_its_type_not_its_value(holder) -> None:  # type: ignore[no-untyped-def]
    key = os.urandom(16)
    seed = holder(key)
    with pytest.raises(ConfigurationError, match="a seed must be bytes") as refused:
        derive(b"secagg/v1/test/", seed)
    message = str(refused.value)
    assert type(seed).__name__ in message
    assert repr(seed) not in message and key.hex() not in message and repr(key) not in message
    assert ", ".join(str(b) for b in key[:3]) not in message


SECRET = bytes(range(31))  # 248 bits: eight full limbs, no spare bit to check
SHARES = shamir.split(SECRET, 2, [1, 2, 3])
POINTS = np.array([[1, 2]])
VALUES = np.array([[SHARES[0].values, SHARES[1].values]], dtype=np.int64)


@pytest.mark.parametrize("reconstruct", [shamir.reconstruct_arrays, shamir.try_reconstruct_arrays])
def test_array_reconstruction_refuses_what_gave_a_wrong_or_unfounded_secret(reconstruct) -> None:  # type: ignore[no-untyped-def]
    assert reconstruct(POINTS, VALUES, 31) == [SECRET]
    below_zero = VALUES.copy()
    below_zero[0, 0, 0] -= shamir.PRIME  # the same residue, written below zero
    with pytest.raises(SecretSharingError, match="outside the field"):
        reconstruct(POINTS, below_zero, 31)
    with pytest.raises(SecretSharingError, match="integers"):
        reconstruct(np.array([[1.5, 2.0]]), VALUES, 31)
    with pytest.raises(SecretSharingError, match="integers"):
        reconstruct(POINTS, VALUES.astype(np.float64), 31)
    assert reconstruct(POINTS.astype(np.uint64), VALUES.astype(np.uint32), 31) == [SECRET]


def test_error_location_refuses_a_threshold_that_is_not_an_integer() -> None:
    points = np.array([1, 2, 3])
    values = np.array([s.values for s in SHARES])
    assert not shamir.locate_errors(points, values, np.int64(2)).any()
    for threshold in (1.5, "2", True):
        with pytest.raises(SecretSharingError, match="threshold"):
            shamir.locate_errors(points, values, threshold)  # type: ignore[arg-type]
