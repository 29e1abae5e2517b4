"""A ``Share`` that cannot be a share cannot be built, ``on_polynomial`` refuses
malformed arrays, and ``reconstruct`` uses the shares beyond the threshold.

Review (2026-12-06), each case below before this change:

* ``Share(0, (1,))`` (the secret's own point), ``Share(p, (1,))``, ``Share(1, (p,))``,
  ``Share(1, ())`` and ``Share(1, b"...")`` (an encoding taken as limbs) were built
  without complaint and failed, if at all, far away; ``Share(1, np.array([1, 2]))``
  made ``==`` raise numpy's "truth value is ambiguous". Now each is a
  :class:`SecretSharingError` at construction, as ``Share.from_bytes`` refuses a bad
  encoding.
* ``on_polynomial`` with one value row too few or too many raised numpy's bare
  broadcasting ValueError, with 1-D values a bare IndexError; a point of ``p + 1`` was
  read as 1 and its share judged on the polynomial, a point of 0 gave a verdict, a
  float point was truncated, and a value of ``v + p`` was judged "off" instead of
  refused.
* ``reconstruct`` with more than ``t`` shares used the ``t`` of smallest point and
  ignored the rest: one wrong share among those ``t`` gave a wrong secret as if right
  (``b"uecrft!\\xa1"`` for ``b"secret!!"``) although the extras showed the set
  inconsistent. Now the extras are checked against the polynomial of the ``t``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto import shamir
from secagg.crypto.shamir import PRIME, Share
from secagg.errors import SecretSharingError

SECRET = b"secret!!"
SHARES = shamir.split(SECRET, 2, [1, 2, 3, 4])
POINTS = np.array([s.x for s in SHARES], dtype=np.int64)
VALUES = np.array([s.values for s in SHARES], dtype=np.uint64)
_P = np.uint64(PRIME)

SHARE_CASES: dict[str, tuple[Callable[[], object], str]] = {
    "x 0 (the secret's point)": (lambda: Share(0, (1,)), "points"),
    "x p": (lambda: Share(PRIME, (1,)), "points"),
    "x -1": (lambda: Share(-1, (1,)), "points"),
    "x True": (lambda: Share(True, (1,)), "points"),  # type: ignore[arg-type]
    "x 1.0": (lambda: Share(1.0, (1,)), "points"),  # type: ignore[arg-type]
    "value p": (lambda: Share(1, (PRIME,)), "values"),
    "value -1": (lambda: Share(1, (5, -1)), "values"),
    "value 1.5": (lambda: Share(1, (1.5,)), "values"),  # type: ignore[arg-type]
    "value True": (lambda: Share(1, (True,)), "values"),
    "no limb": (lambda: Share(1, ()), "at least one limb"),
    "bytes as limbs": (lambda: Share(1, b"\x01\x02"), "not bytes"),  # type: ignore[arg-type]
    "not a sequence": (lambda: Share(1, 7), "sequence"),  # type: ignore[arg-type]
    "2-D values": (lambda: Share(1, np.array([[1, 2]])), "values"),  # type: ignore[arg-type]
    "float array": (lambda: Share(1, np.array([1.0, 2.0])), "values"),  # type: ignore[arg-type]
    "uint64 array >= p": (
        lambda: Share(1, np.array([PRIME], dtype=np.uint64)),  # type: ignore[arg-type]
        "values",
    ),
}


@pytest.mark.parametrize("case", sorted(SHARE_CASES))
def test_a_share_that_cannot_be_one_is_refused_when_built(case: str) -> None:
    build, names = SHARE_CASES[case]
    with pytest.raises(SecretSharingError, match=names):
        build()


def test_shares_given_as_numpy_integers_are_kept_as_python_ints() -> None:
    """What the checks let through is normalised, so two equal shares compare equal
    (a numpy array of values made ``==`` raise) and encode the same."""
    share = Share(np.int64(3), np.array([1, 2], dtype=np.uint64))  # type: ignore[arg-type]
    assert share == Share(3, (1, 2))
    assert type(share.x) is int and all(type(v) is int for v in share.values)
    assert share.to_bytes() == Share(3, (1, 2)).to_bytes()
    assert Share(3, [1, 2]) == share  # type: ignore[arg-type]


POLYNOMIAL_CASES: dict[str, tuple[Callable[[], object], str]] = {
    "a value row short": (lambda: shamir.on_polynomial(POINTS, VALUES[:3], [0, 1]), "shape"),
    "a value row over": (lambda: shamir.on_polynomial(POINTS[:3], VALUES, [0, 1]), "shape"),
    "1-D values": (lambda: shamir.on_polynomial(POINTS, VALUES[:, 0], [0, 1]), "shape"),
    "2-D points": (lambda: shamir.on_polynomial(POINTS[:, None], VALUES, [0, 1]), "shape"),
    "no limb": (lambda: shamir.on_polynomial(POINTS, VALUES[:, :0], [0, 1]), "shape"),
    "point 0": (lambda: shamir.on_polynomial(POINTS - 1, VALUES, [1, 2]), r"\[1, p\)"),
    "point p + 1": (lambda: shamir.on_polynomial(POINTS + PRIME, VALUES, [0, 1]), r"\[1, p\)"),
    "point 2^63 (uint64)": (
        lambda: shamir.on_polynomial(np.array([1 << 63, 2, 3, 4], dtype=np.uint64), VALUES, [1, 2]),
        r"\[1, p\)",
    ),
    "float points": (lambda: shamir.on_polynomial(POINTS + 0.5, VALUES, [0, 1]), "integers"),
    "value + p": (lambda: shamir.on_polynomial(POINTS, VALUES + _P, [0, 1]), "outside"),
    "negative value": (
        lambda: shamir.on_polynomial(POINTS, VALUES.astype(np.int64) - PRIME, [0, 1]),
        "outside",
    ),
    "a repeated position": (lambda: shamir.on_polynomial(POINTS, VALUES, [0, 0]), "duplicate"),
    "a position past the end": (lambda: shamir.on_polynomial(POINTS, VALUES, [0, 4]), "through"),
}


@pytest.mark.parametrize("case", sorted(POLYNOMIAL_CASES))
def test_on_polynomial_refuses_malformed_shares(case: str) -> None:
    call, names = POLYNOMIAL_CASES[case]
    with pytest.raises(SecretSharingError, match=names):
        call()


def _nudged(shares: list[Share], index: int) -> list[Share]:
    """``shares`` with share ``index`` moved off the polynomial by one in every limb."""
    out = list(shares)
    old = out[index]
    out[index] = Share(old.x, tuple((v + 1) % PRIME for v in old.values))
    return out


@pytest.mark.parametrize("wrong", [0, 1, 2, 3])
def test_reconstruction_refuses_shares_that_are_not_on_one_polynomial(wrong: int) -> None:
    """Before: a wrong share among the two of smallest point gave a wrong secret
    (``b"uecrft!\\xa1"`` for share 0), one among the extras was ignored."""
    with pytest.raises(SecretSharingError, match="inconsistent shares"):
        shamir.reconstruct(_nudged(SHARES, wrong), 2, len(SECRET))


def test_a_point_repeated_among_the_extras_is_refused() -> None:
    """Before: only the ``t`` of smallest point were checked for duplicates."""
    with pytest.raises(SecretSharingError, match="duplicate"):
        shamir.reconstruct([*SHARES, Share(4, (1, 2, 3))], 2, len(SECRET))


@settings(max_examples=30, deadline=None)
@given(
    secret=st.binary(max_size=33),
    threshold=st.integers(1, 6),
    extra=st.integers(0, 4),
    data=st.data(),
)
def test_any_superset_of_dealt_shares_gives_the_secret_and_one_wrong_share_is_caught(
    secret: bytes, threshold: int, extra: int, data: st.DataObject
) -> None:
    """Property: ``t`` or more shares as dealt, in any order, give the secret; with a
    spare share (more than ``t``), any one of them moved off the polynomial is refused,
    never turned into a wrong secret."""
    points = data.draw(
        st.lists(
            st.integers(1, PRIME - 1),
            min_size=threshold + extra,
            max_size=threshold + extra,
            unique=True,
        ),
        label="points",
    )
    shares = data.draw(st.permutations(shamir.split(secret, threshold, points)), label="order")
    assert shamir.reconstruct(shares, threshold, len(secret)) == secret
    if extra:
        wrong = data.draw(st.integers(0, len(shares) - 1), label="wrong")
        with pytest.raises(SecretSharingError, match="inconsistent shares"):
            shamir.reconstruct(_nudged(shares, wrong), threshold, len(secret))


def test_a_share_decodes_from_any_view_of_its_bytes_and_names_a_wrong_type() -> None:
    """Before: a memoryview (of bytes or of wider items) was refused as "not a whole
    number of limbs", as its batch sibling ``shares_from_bytes`` does not, and a str
    was refused with that message too."""
    share = SHARES[0]
    encoding = share.to_bytes()
    for view in (memoryview(encoding), memoryview(encoding).cast("I"), bytearray(encoding)):
        assert Share.from_bytes(share.x, view) == share  # type: ignore[arg-type]
    with pytest.raises(SecretSharingError, match="bytes, not str"):
        Share.from_bytes(1, "abcd")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "points", "values"),
    [
        ("float points", POINTS + 0.5, VALUES),
        ("float values", POINTS, VALUES + 0.5),
        ("value + p", POINTS, VALUES + _P),
        ("value 2^63 + v", POINTS, VALUES + np.uint64(1 << 63)),
    ],
)
def test_error_location_refuses_shares_that_are_not_field_elements(
    case: str, points: np.ndarray, values: np.ndarray
) -> None:
    """Before: each was cast (1.5 to the point 1, v + p and 2^63 + v read modulo p) and
    the shares reported all on the polynomial."""
    with pytest.raises(SecretSharingError, match=r"integers|outside the field"):
        shamir.locate_errors(points, values, 2)
    assert not shamir.locate_errors(POINTS, VALUES, 2).any()  # type: ignore[union-attr]
