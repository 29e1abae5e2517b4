"""Shamir's entry points refuse malformed counts, thresholds, points and values.

Each case below gave, before this change, a bare numpy or Python error, or worse a
wrong secret returned as if right: a share value of 2^40 (a Share built by hand)
overflowed the uint64 products, and ``reconstruct`` returned
``b'\\xc2\\x80\\x94\\x1aet!!'`` for ``b'secret!!'``. Now each is a typed error naming
what is wrong; shares of the protocol's own making reconstruct as before.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto import shamir
from secagg.crypto.shamir import PRIME, Share
from secagg.errors import ConfigurationError, SecretSharingError

SECRET = b"secret!!"
SHARES = shamir.split(SECRET, 2, [1, 2, 3])


def _with(index: int, *, x: object = None, values: tuple | None = None) -> list[Share]:
    """SHARES with share ``index`` given another point or other values."""
    changed = list(SHARES)
    old = changed[index]
    changed[index] = Share(old.x if x is None else x, old.values if values is None else values)  # type: ignore[arg-type]
    return changed


@pytest.mark.parametrize("count", [-1, 1 << 62, 2.5, True, "3", None])
def test_random_field_elements_refuses_a_bad_count(count: object) -> None:
    """Before: ValueError (negative dimensions, array too big) or TypeError from numpy."""
    with pytest.raises(ConfigurationError, match="count must be"):
        shamir.random_field_elements(count)  # type: ignore[arg-type]


def test_random_field_elements_names_its_limit_and_takes_numpy_counts() -> None:
    with pytest.raises(ConfigurationError, match=r"4294967296 \(2\^32\)"):
        shamir.random_field_elements(shamir.MAX_FIELD_ELEMENTS + 1)
    drawn = shamir.random_field_elements(np.int64(5))
    assert drawn.shape == (5,) and int(drawn.max()) < PRIME
    assert shamir.random_field_elements(0).shape == (0,)


RECONSTRUCT_CASES: dict[str, Callable[[], object]] = {
    # before: "duplicate share points", a misleading message
    "threshold -1": lambda: shamir.reconstruct(SHARES, -1, 8),
    # before: taken as a threshold of 1 (then "oversized secret")
    "threshold True": lambda: shamir.reconstruct(SHARES, True, 8),  # type: ignore[arg-type]
    # before: bare TypeError
    "threshold 1.5": lambda: shamir.reconstruct(SHARES, 1.5, 8),  # type: ignore[arg-type]
    "threshold str": lambda: shamir.reconstruct(SHARES, "2", 8),  # type: ignore[arg-type]
    "point str": lambda: shamir.reconstruct(_with(0, x="1"), 2, 8),
    "not a share": lambda: shamir.reconstruct([b"x", b"y"], 2, 8),  # type: ignore[list-item]
    # before: the point 1.5 was truncated to 1 and True taken as 1: the secret came back
    # from shares that do not name their points
    "point 1.5": lambda: shamir.reconstruct(_with(0, x=1.5), 2, 8),
    "point True": lambda: shamir.reconstruct(_with(0, x=True), 2, 8),
    # before: the value p + 5 was read as 5, 2^40 gave a wrong secret with no error
    "value p+": lambda: shamir.reconstruct(
        _with(0, values=(SHARES[0].values[0] + PRIME, *SHARES[0].values[1:])), 2, 8
    ),
    "value 2^40": lambda: shamir.reconstruct(
        _with(0, values=(1 << 40, *SHARES[0].values[1:])), 2, 8
    ),
    # before: numpy's OverflowError
    "value -1": lambda: shamir.reconstruct(_with(0, values=(-1, *SHARES[0].values[1:])), 2, 8),
    "value float": lambda: shamir.reconstruct(_with(0, values=(1.5, *SHARES[0].values[1:])), 2, 8),
    # before: "each share must have 1 limbs", naming a limb count nobody asked for
    "secret size -1": lambda: shamir.reconstruct(SHARES, 2, -1),
    "secret size 1.5": lambda: shamir.reconstruct(SHARES, 2, 1.5),  # type: ignore[arg-type]
}


def _names_it(case: str) -> str:
    """What the message must name: the threshold, the size, the point, the value or the
    share (not, as before for -1, "duplicate share points")."""
    subject = case.split()[0]
    return {"secret": "size must be a non-negative", "not": "is a Share"}.get(subject, subject)


@pytest.mark.parametrize("case", sorted(RECONSTRUCT_CASES))
def test_reconstruction_refuses_malformed_arguments(case: str) -> None:
    with pytest.raises(SecretSharingError, match=_names_it(case)):
        RECONSTRUCT_CASES[case]()


def test_sharing_no_secret_gives_no_shares() -> None:
    """Before: np.concatenate's bare ValueError ("need at least one array")."""
    assert shamir.split_many([], 2, [1, 2, 3]) == []
    with pytest.raises(SecretSharingError, match="threshold"):
        shamir.split_many([], 4, [1, 2, 3])


def test_decoding_refuses_str_encodings() -> None:
    """Before: bytes.join's bare TypeError."""
    with pytest.raises(SecretSharingError, match="share 1: bytes, not str"):
        shamir.shares_from_bytes(1, [b"\x01\x00\x00\x00", "abcd"])  # type: ignore[list-item]


@settings(max_examples=30, deadline=None)
@given(
    secret=st.binary(max_size=40),
    threshold=st.integers(1, 5),
    extra=st.integers(0, 3),
    numpy_ints=st.booleans(),
)
def test_well_formed_shares_reconstruct_whatever_integer_type_names_them(
    secret: bytes, threshold: int, extra: int, numpy_ints: bool
) -> None:
    """Shares as dealt (points as Python or numpy integers, the threshold and size as
    numpy integers) still give back the secret: the checks refuse only the malformed."""
    points = list(range(1, threshold + extra + 1))
    shares = shamir.split(secret, threshold, points)
    if numpy_ints:
        shares = [Share(np.int64(s.x), s.values) for s in shares]  # type: ignore[arg-type]
        assert shamir.reconstruct(shares, np.int32(threshold), np.int64(len(secret))) == secret  # type: ignore[arg-type]
    assert shamir.reconstruct(shares[::-1], threshold, len(secret)) == secret


def test_decoding_takes_views_measured_in_bytes() -> None:
    """A memoryview (of bytes or of wider items) decodes like the bytes it holds."""
    encodings = [share.to_bytes() for share in SHARES]
    expected = shamir.shares_from_bytes(1, encodings)
    views = [memoryview(encodings[0]), memoryview(encodings[1]).cast("I"), encodings[2]]
    decoded = shamir.shares_from_bytes(1, views)
    assert [share.values for share in decoded] == [share.values for share in expected]
