"""A hand-built share encodes only field elements, and ``on_polynomial`` takes only the
share positions it documents.

Review (2026-12-06): ``Share(1, (2**32,)).to_bytes()`` (or a negative value) raised
numpy's bare OverflowError; a value in ``[p, 2^32)`` was written out silently as bytes
:meth:`Share.from_bytes` then refuses, and 1.5 or True became the limb 1.
``on_polynomial(points, values, through)`` read ``through`` as Python indices, so -1
meant the last share (``[m - 1, -1]`` was reported as "duplicate share points"), and an
index past the end raised a bare IndexError.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto import shamir
from secagg.crypto.shamir import PRIME, Share
from secagg.errors import SecretSharingError


@pytest.mark.parametrize("value", [2**32, 2**64, -1, PRIME, 2**32 - 1, 1.5, True], ids=repr)
def test_a_share_value_outside_the_field_is_refused_when_encoded(value: object) -> None:
    with pytest.raises(SecretSharingError, match=r"share values must be integers in \[0, p\)"):
        Share(1, (5, value)).to_bytes()  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, PRIME - 1), min_size=1, max_size=9))
def test_field_values_still_encode_and_decode_to_themselves(values: list[int]) -> None:
    share = Share(7, tuple(values))
    assert Share.from_bytes(7, share.to_bytes()) == share


def _dealt(t: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    dealt = shamir.split(os.urandom(16), t, list(range(1, m + 1)))
    return np.array([s.x for s in dealt]), np.array([s.values for s in dealt], dtype=np.uint32)


@pytest.mark.parametrize(
    "through",
    [[-1, 0], [0, -1], [4, -1], [0, 5], [0, 2**70], [0, True], [0, 1.0], []],
    ids=repr,
)
def test_on_polynomial_refuses_a_position_that_is_not_a_share(through: list[object]) -> None:
    points, values = _dealt(2, 5)
    with pytest.raises(SecretSharingError, match=r"through must be"):
        shamir.on_polynomial(points, values, through)  # type: ignore[arg-type]


def test_on_polynomial_still_takes_positions_as_numpy_integers() -> None:
    """What the server passes: positions from ``np.flatnonzero(...).tolist()`` or a
    tuple of numpy integers."""
    points, values = _dealt(2, 5)
    assert shamir.on_polynomial(points, values, (np.int64(4), np.int64(0))).all()
