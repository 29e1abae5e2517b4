"""Shamir t-of-n secret sharing over the prime field GF(2^31 + 11), vectorised.

A secret of any length is cut into 31-bit limbs, each shared with its own
random polynomial of degree t-1 (the layout Google's production SecAgg uses).
Keeping the field below 2^32 lets numpy do all arithmetic in uint64 without
overflow: a product of two field elements is below 2^63. Sharing evaluates all
limbs' polynomials at all holders' points at once (Horner, t vectorised steps),
which makes a 1000-holder sharing a few milliseconds; reconstruction computes
the Lagrange coefficients of every set of x-coordinates in a round together (one
vectorised product and Fermat inversion) and combines all secrets in one weighted
sum.

Share x-coordinates are the holders' party ids plus one (x = 0 is the secret).
Coefficients come from ``os.urandom`` with rejection sampling, so every
non-constant coefficient is exactly uniform: any t-1 shares are independent of
the secret.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral

import numpy as np

from secagg.crypto.prg import MAX_WORDS_AT_ONCE
from secagg.errors import ConfigurationError, SecretSharingError

PRIME = (1 << 31) + 11
LIMB_BITS = 31
_P = np.uint64(PRIME)
_SAMPLE_LIMIT = ((1 << 64) // PRIME) * PRIME
#: The most field elements :func:`random_field_elements` draws at once (32 GiB of
#: uint64), the PRG's limit: a sharing needs (t - 1) x limbs of them, far fewer.
MAX_FIELD_ELEMENTS = MAX_WORDS_AT_ONCE


def _check_point(x: object) -> int:
    """A share point: an integer (numpy's too, not bool) in ``[1, p)``.

    Why: a point is where the polynomial is evaluated, so 1.5 (truncated by numpy to
    1), True (taken as 1), 0 (the secret itself) or "1" (a bare TypeError in a sort)
    each gave a wrong or untyped result when a share reached reconstruction."""
    if isinstance(x, bool) or not isinstance(x, Integral):
        raise SecretSharingError(f"share points must be integers, not {type(x).__name__}")
    if not 0 < x < PRIME:
        raise SecretSharingError("share points must lie in [1, p)")
    return int(x)


def _is_field_element(value: object) -> bool:
    """An integer (numpy's too, not bool) in ``[0, p)``; ``type(value) is int`` first,
    the common case, since the ABC check costs several times more."""
    if type(value) is int:
        return 0 <= value < PRIME
    return not isinstance(value, bool) and isinstance(value, Integral) and 0 <= value < PRIME


@dataclass(frozen=True, repr=False)
class Share:
    """One holder's share: the evaluation point ``x`` and one field element per limb.

    Checked when built, as :meth:`from_bytes` checks an encoding: ``x`` an integer
    (numpy's too, not bool) in ``[1, p)`` and ``values`` one or more integers in
    ``[0, p)``, kept as a tuple of Python ints. Why: a share that cannot be one was
    built without complaint (``Share(0, ...)`` holds the secret's own point, ``Share(1,
    (p,))`` a limb no encoding carries, ``Share(1, ())`` no limb at all, a numpy array
    of values made ``==`` raise numpy's "truth value is ambiguous") and failed only
    later, in reconstruction or encoding, far from the mistake. A share that exists is
    now always a share, as in pyca/cryptography, whose key objects cannot hold an
    invalid key; a malformed one raises :class:`SecretSharingError` here.
    """

    x: int
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        x, values = self.x, self.values
        # the common case first (a tuple of Python ints, as every decoder builds), at
        # about a third of the general checks' cost: a server builds thousands a round
        if (
            type(x) is int
            and 0 < x < PRIME
            and type(values) is tuple
            and values
            and all(type(value) is int and 0 <= value < PRIME for value in values)
        ):
            return
        object.__setattr__(self, "x", _check_point(x))
        if isinstance(values, str | bytes | bytearray | memoryview):  # an encoding, not limbs
            raise SecretSharingError(
                f"share values are field elements, not {type(values).__name__} "
                "(Share.from_bytes reads an encoding)"
            )
        try:
            values = tuple(values)
        except TypeError:
            raise SecretSharingError(
                f"share values are a sequence of field elements, not {type(values).__name__}"
            ) from None
        if not values:
            raise SecretSharingError("a share has at least one limb")
        if not all(_is_field_element(value) for value in values):
            raise SecretSharingError("share values must be integers in [0, p) (p = 2^31 + 11)")
        if not all(type(value) is int for value in values):
            values = tuple(int(value) for value in values)
        object.__setattr__(self, "values", values)

    def to_bytes(self) -> bytes:
        """The values as little-endian 32-bit limbs, what :meth:`from_bytes` reads back.

        Every value is a field element, checked when the share was built. Why that
        matters here: a share of 2^32 or -1 raised numpy's bare OverflowError, one in
        ``[p, 2^32)`` was written out as bytes every decoder refuses, and 1.5 or True
        became the limb 1."""
        # struct, not numpy: a share is a handful of limbs (from_bytes's reason too)
        return struct.pack(f"<{len(self.values)}I", *self.values)

    @classmethod
    def from_bytes(cls, x: int, data: bytes) -> Share:
        """The share at ``x`` whose limbs ``data`` encodes (:meth:`to_bytes`).

        ``data`` is bytes-like, a memoryview measured in bytes as in
        :func:`shares_from_bytes`: a memoryview was refused as "not a whole number of
        limbs" whatever it held, and a str too, a message that named the wrong fault."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SecretSharingError(f"a share encoding is bytes, not {type(data).__name__}")
        size = memoryview(data).nbytes
        if size % 4 or not size:
            raise SecretSharingError("share encoding is not a whole number of limbs")
        # struct, not numpy: a share is a handful of limbs, and the server parses
        # tens of thousands of them a round (numpy's per-call cost dominated)
        values = struct.unpack(f"<{size // 4}I", data)
        if max(values) >= PRIME:
            raise SecretSharingError("share value outside the field")
        return cls(x, values)  # the point is checked by the constructor

    def __repr__(self) -> str:  # shares are secret material
        return f"Share(x={self.x}, limbs={len(self.values)})"


def shares_from_bytes(x: int, encodings: Sequence[bytes]) -> list[Share]:
    """Decode many shares held at the same point ``x`` (one holder's reveal) at once.

    The same checks as :meth:`Share.from_bytes` for each encoding, with one unpack
    and one range check for all of them: a server decodes one reveal per survivor,
    each holding a share of every neighbour's secret. A bad encoding raises
    :class:`SecretSharingError` naming its position in ``encodings``.
    """
    for index, data in enumerate(encodings):
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SecretSharingError(f"share {index}: bytes, not {type(data).__name__}")
    sizes = [memoryview(data).nbytes for data in encodings]  # bytes, not a view's items
    for index, size in enumerate(sizes):
        if size % 4 or not size:
            raise SecretSharingError(f"share {index}: not a whole number of limbs")
    joined = b"".join(encodings)
    values = struct.unpack(f"<{len(joined) // 4}I", joined)
    if values and max(values) >= PRIME:
        start = 0
        for index, size in enumerate(sizes):
            if max(values[start : start + size // 4]) >= PRIME:
                raise SecretSharingError(f"share {index}: value outside the field")
            start += size // 4
    out = []
    start = 0
    for size in sizes:
        stop = start + size // 4
        out.append(Share(x, values[start:stop]))
        start = stop
    return out


def limbs_for(secret_bytes: int) -> int:
    """Number of 31-bit limbs that hold a secret of ``secret_bytes`` bytes."""
    return max(1, -(-8 * secret_bytes // LIMB_BITS))


def _to_limbs(secret: bytes) -> np.ndarray:
    value = int.from_bytes(secret, "little")
    mask = (1 << LIMB_BITS) - 1
    return np.array(
        [(value >> (LIMB_BITS * i)) & mask for i in range(limbs_for(len(secret)))],
        dtype=np.uint64,
    )


def _limbs_to_bytes(limbs: Sequence[int], secret_bytes: int) -> bytes:
    """The secret whose 31-bit limbs (each already checked below 2^31) are ``limbs``."""
    value = 0
    for i, limb in enumerate(limbs):
        value |= int(limb) << (LIMB_BITS * i)
    if value >> (8 * secret_bytes):
        raise SecretSharingError("reconstruction gave an oversized secret: inconsistent shares")
    return value.to_bytes(secret_bytes, "little")


def decode_share_values(encodings: Sequence[bytes], limbs: int) -> np.ndarray:
    """Many share encodings of ``limbs`` limbs each as one ``(len, limbs)`` uint32 array.

    The checks of :meth:`Share.from_bytes` for every encoding (size, field range) in
    two vectorised steps, without building a :class:`Share` per encoding: a server
    keeps a whole reveal as one array and reconstructs from arrays
    (:func:`reconstruct_arrays`), so tens of thousands of shares a round never become
    Python objects. A bad encoding raises :class:`SecretSharingError` naming its
    position in ``encodings``.
    """
    if limbs < 1:
        raise SecretSharingError("a share has at least one limb")
    size = 4 * limbs
    for index, data in enumerate(encodings):
        if len(data) != size:
            raise SecretSharingError(f"share {index}: {len(data)} bytes, expected {size}")
    values = np.frombuffer(b"".join(encodings), dtype="<u4").reshape(len(encodings), limbs)
    if values.size and int(values.max()) >= PRIME:
        index = int(np.flatnonzero((values >= PRIME).any(axis=1))[0])
        raise SecretSharingError(f"share {index}: value outside the field")
    return values


def random_field_elements(count: int) -> np.ndarray:
    """``count`` exactly uniform elements of GF(p) from the OS CSPRNG (rejection sampling).

    ``count`` is an integer (numpy's too, not bool) in ``[0, MAX_FIELD_ELEMENTS]``:
    -1 failed as numpy's ValueError ("negative dimensions"), 2^62 as "array is too
    big", 2.5 and True as bare TypeErrors."""
    if isinstance(count, bool) or not isinstance(count, Integral):
        raise ConfigurationError(f"count must be an integer, not {type(count).__name__}")
    if not 0 <= count <= MAX_FIELD_ELEMENTS:
        raise ConfigurationError(
            f"count must be between 0 and {MAX_FIELD_ELEMENTS} (2^32) field elements, not {count}"
        )
    count = int(count)
    out = np.empty(count, dtype=np.uint64)
    filled = 0
    while filled < count:
        need = count - filled
        draw = np.frombuffer(os.urandom(8 * (need + 8)), dtype=np.uint64)
        draw = draw[draw < np.uint64(_SAMPLE_LIMIT)][:need]
        out[filled : filled + len(draw)] = draw % _P
        filled += len(draw)
    return out


def _check_points(xs: Sequence[int]) -> np.ndarray:
    # integers only: 1.5 was truncated to the point 1 by numpy, and 2^64 overflowed
    if any(isinstance(x, bool) or not isinstance(x, Integral) for x in xs):
        raise SecretSharingError("share points must be integers")
    if any(not 0 < x < PRIME for x in xs):
        raise SecretSharingError("share points must lie in [1, p)")
    points = np.asarray(xs, dtype=np.int64)
    if points.ndim != 1 or len(points) == 0:
        raise SecretSharingError("need at least one share holder")
    if np.any(points <= 0) or np.any(points >= PRIME):
        raise SecretSharingError("share points must lie in [1, p)")
    if len(np.unique(points)) != len(points):
        raise SecretSharingError("share points must be distinct")
    return points.astype(np.uint64)


def split_many(secrets: Sequence[bytes], threshold: int, xs: Sequence[int]) -> list[list[Share]]:
    """Share several secrets among the same holders; ``result[j][i]`` is holder i's share of j.

    Each secret gets independent polynomials; doing them together only shares
    the vectorised evaluation.
    """
    points = _check_points(xs)
    if isinstance(threshold, bool) or not isinstance(threshold, Integral):
        raise SecretSharingError(f"the threshold must be an integer, not {threshold!r}")
    if not all(isinstance(secret, bytes | bytearray) for secret in secrets):
        raise SecretSharingError("secrets must be bytes")
    if not 1 <= threshold <= len(points):
        raise SecretSharingError(
            f"threshold {threshold} must be between 1 and the number of holders {len(points)}"
        )
    if not secrets:  # no secret, no shares (np.concatenate failed with a bare ValueError)
        return []
    limb_counts = [limbs_for(len(s)) for s in secrets]
    total = sum(limb_counts)
    coeffs = np.empty((threshold, total), dtype=np.uint64)
    coeffs[0] = np.concatenate([_to_limbs(s) for s in secrets])
    if threshold > 1:
        coeffs[1:] = random_field_elements((threshold - 1) * total).reshape(threshold - 1, total)
    column = points[:, None]
    values = np.zeros((len(points), total), dtype=np.uint64)
    for degree in range(threshold - 1, -1, -1):  # Horner
        values *= column
        values += coeffs[degree]
        values %= _P
    coeffs.fill(0)  # best effort: do not leave the secret's limbs around
    result: list[list[Share]] = []
    start = 0
    rows = values.tolist()
    for count in limb_counts:
        result.append(
            [
                Share(int(x), tuple(row[start : start + count]))
                for x, row in zip(xs, rows, strict=True)
            ]
        )
        start += count
    return result


def split(secret: bytes, threshold: int, xs: Sequence[int]) -> list[Share]:
    """Share ``secret`` among holders at points ``xs`` so that any ``threshold`` recover it."""
    return split_many([secret], threshold, xs)[0]


def _product_mod(matrix: np.ndarray) -> np.ndarray:
    """Product modulo p along the last axis by pairwise (log-depth) reduction."""
    m = matrix
    while m.shape[-1] > 1:
        if m.shape[-1] % 2:
            pad = np.ones((*m.shape[:-1], 1), dtype=np.uint64)
            m = np.concatenate([m, pad], axis=-1)
        m = (m[..., 0::2] * m[..., 1::2]) % _P
    return m[..., 0]


def _inverse_mod(values: np.ndarray) -> np.ndarray:
    """Elementwise inverse modulo p (Fermat: v^(p-2)), square-and-multiply in uint64:
    every operand is below p < 2^32, so each product stays below 2^64."""
    result = np.ones_like(values)
    base = values % _P
    exponent = PRIME - 2
    while exponent:
        if exponent & 1:
            result = (result * base) % _P
        base = (base * base) % _P
        exponent >>= 1
    return result


#: entries of the (point sets x t x t) matrices one vectorised Lagrange step holds
_LAGRANGE_CHUNK_ENTRIES = 1 << 22


def _lagrange_rows(points: np.ndarray) -> np.ndarray:
    """Lagrange coefficients at zero for every row of ``points`` (G x t, distinct
    nonzero field elements per row) in one vectorised computation."""
    groups, t = points.shape
    if t == 1:
        return np.ones((groups, 1), dtype=np.uint64)
    eye = np.eye(t, dtype=bool)
    # numerator_i = prod_{j != i} x_j ; denominator_i = prod_{j != i} (x_j - x_i)
    diff = (points[:, None, :] + _P - points[:, :, None]) % _P
    diff[:, eye] = 1
    numer = np.broadcast_to(points[:, None, :], (groups, t, t)).copy()
    numer[:, eye] = 1
    return (_product_mod(numer) * _inverse_mod(_product_mod(diff))) % _P


@lru_cache(maxsize=256)
def lagrange_at_zero(xs: tuple[int, ...]) -> np.ndarray:
    """Coefficients l_i with f(0) = sum l_i f(x_i), for distinct points ``xs``."""
    coeffs = _lagrange_rows(_check_points(xs)[None, :])[0]
    coeffs.setflags(write=False)
    return coeffs


def reconstruct_many(
    share_sets: Sequence[Sequence[Share]], threshold: int, secret_bytes: int
) -> list[bytes]:
    """Recover several secrets, each from the ``threshold`` shares of smallest point
    among its shares, the others checked against them.

    The Lagrange coefficients of every distinct set of points are computed together
    (one vectorised product and one vectorised Fermat inversion for the round), and all
    secrets are then combined in one weighted sum: no Python loop per secret or per
    point set beyond gathering the shares.

    A set of more than ``threshold`` shares must lie on one polynomial of degree below
    ``threshold``: the shares beyond the first ``threshold`` are checked against the
    polynomial those define (Lagrange's form at each extra point), and a set that does not raises
    :class:`SecretSharingError`. Why: the extras were ignored, so one wrong share among
    the first ``threshold`` gave a wrong secret as if right (``split(b"secret!!", 2,
    [1, 2, 3, 4])`` with share 1 off by one came back ``b"uecrft!\\xa1"``) although the
    other two shares showed the set inconsistent. Hard to misuse, as pyca/cryptography
    would have it: a caller that hands over more shares than needed gets them used. It
    cannot say *which* share is wrong (the first ``threshold`` may be); the protocol
    server, which must finish the round, finds that out itself
    (:func:`locate_errors`, and each candidate checked against the owner's commitment).
    Points must be distinct within a set, extras included.
    """
    # Checked before use: a threshold of -1 took all shares but the last and then
    # reported "duplicate share points", True took one share; a value of 2^40 (a Share
    # built by hand) overflowed the uint64 products into a wrong secret, returned as
    # if right, and one of p + 5 was read as 5.
    if isinstance(threshold, bool) or not isinstance(threshold, Integral) or threshold < 1:
        raise SecretSharingError(f"the threshold must be a positive integer, not {threshold!r}")
    if isinstance(secret_bytes, bool) or not isinstance(secret_bytes, Integral) or secret_bytes < 0:
        raise SecretSharingError(
            f"the secret size must be a non-negative integer, not {secret_bytes!r}"
        )
    threshold, secret_bytes = int(threshold), int(secret_bytes)
    limbs = limbs_for(secret_bytes)
    chosen: list[Sequence[Share]] = []
    for shares in share_sets:
        if len(shares) < threshold:
            raise SecretSharingError(f"need {threshold} shares, got {len(shares)}")
        for share in shares:
            if not isinstance(share, Share):
                raise SecretSharingError(f"a share is a Share, not {type(share).__name__}")
            _check_point(share.x)
        ordered = sorted(shares, key=lambda s: s.x)
        if len({s.x for s in ordered}) != len(ordered):
            raise SecretSharingError("duplicate share points")
        if any(len(s.values) != limbs for s in ordered):
            raise SecretSharingError(f"each share must have {limbs} limbs for this secret size")
        if len(ordered) > threshold and not _extras_agree(ordered, threshold):
            raise SecretSharingError(
                f"the {len(ordered)} shares do not lie on one polynomial of degree below "
                f"{threshold}: inconsistent shares"
            )
        chosen.append(ordered[:threshold])
    if not chosen:
        return []
    # every value is a field element and every point in [1, p): Share checks both
    points = np.array([[s.x for s in picked] for picked in chosen], dtype=np.uint64)
    ys = np.array([[s.values for s in picked] for picked in chosen], dtype=np.uint64)
    return _combine(points, ys, secret_bytes)  # type: ignore[return-value]


def _extras_agree(ordered: Sequence[Share], threshold: int) -> bool:
    """Whether the shares after the first ``threshold`` of ``ordered`` (distinct points,
    equal limb counts) lie on the polynomial through the first ``threshold``.

    Lagrange's form at each extra point ``z``: ``l_a(z) = N(z) / ((z - x_a) D_a)``
    with ``N(z) = prod_b (z - x_b)`` and ``D_a = prod_{b != a} (x_a - x_b)``, so
    O(t^2 + t e) field products for ``e`` extras, not the O(t^2 m) of
    :func:`on_polynomial` (which also handles points repeated among the ``m``): a
    thousand holders at t = 667 took seconds that way."""
    xs = np.array([s.x for s in ordered[:threshold]], dtype=np.uint64)
    ys = np.array([s.values for s in ordered[:threshold]], dtype=np.uint64)
    at = np.array([s.x for s in ordered[threshold:]], dtype=np.uint64)
    expected = np.array([s.values for s in ordered[threshold:]], dtype=np.uint64)
    gaps = (xs[:, None] + _P - xs[None, :]) % _P  # x_a - x_b
    np.fill_diagonal(gaps, 1)
    denominators = _product_mod(gaps)  # D_a
    offsets = (at[:, None] + _P - xs[None, :]) % _P  # z - x_a, nonzero: points distinct
    numerators = _product_mod(offsets)  # N(z)
    basis = (numerators[:, None] * _inverse_mod((offsets * denominators[None, :]) % _P)) % _P
    predicted = ((basis[:, :, None] * ys[None, :, :]) % _P).sum(axis=1) % _P
    return bool(np.array_equal(predicted, expected))


def on_polynomial(points: np.ndarray, values: np.ndarray, through: Sequence[int]) -> np.ndarray:
    """Which shares lie on the polynomial through the shares ``through``.

    ``points`` ``(m,)`` and ``values`` ``(m, limbs)`` are one secret's shares; the
    polynomial (degree below ``len(through)``, one per limb) is the one the shares at
    the indices ``through`` define. Returns a boolean ``(m,)``: share ``j`` agrees on
    every limb. What a server uses to tell the shares that fit a secret it has checked
    from those that do not (Lagrange's form evaluated at each point, mod p).

    ``through`` holds at least one position, each an integer (numpy's too, not bool) in
    ``[0, m)``. Why: read as Python indices, -1 meant the last share (so ``[m - 1, -1]``
    was reported as duplicate points), a position past the end raised a bare
    IndexError, and an empty ``through`` compared every share with zero.

    ``points`` and ``values`` are integer arrays of those shapes, every point in
    ``[1, p)`` and every value in ``[0, p)``, or :class:`SecretSharingError`. Why: a
    ``values`` of one row too few or too many was numpy's bare broadcasting ValueError,
    a 1-D one a bare IndexError; a point of p + 1 was taken as 1 (and its share judged
    on the polynomial), a point of 0 or 1.5 gave a verdict for a share no holder has,
    and a value of v + p was judged off the polynomial instead of refused."""
    points, values = np.asarray(points), np.asarray(values)
    if points.ndim != 1 or values.ndim != 2 or len(values) != len(points) or not values.shape[1]:
        raise SecretSharingError(
            f"need points of shape (m,) and values of shape (m, limbs), not {points.shape} "
            f"and {values.shape}"
        )
    if points.dtype.kind not in "iu" or values.dtype.kind not in "iu":
        raise SecretSharingError(
            f"share points and values are integers, not {points.dtype} and {values.dtype}"
        )
    # as int64, a uint64 point of 2^63 or more is negative: refused with the rest
    if points.size and (int(points.astype(np.int64).min()) <= 0 or int(points.max()) >= PRIME):
        raise SecretSharingError("share points must lie in [1, p)")
    if values.size and (int(values.min()) < 0 or int(values.max()) >= PRIME):
        raise SecretSharingError("share value outside the field")
    count = len(points)
    if len(through) == 0 or not all(
        not isinstance(i, bool) and isinstance(i, Integral) and 0 <= i < count for i in through
    ):
        raise SecretSharingError(
            f"through must be one or more share positions, integers in [0, {count})"
        )
    xs = [int(points[i]) for i in through]
    if len(set(xs)) != len(xs):
        raise SecretSharingError("duplicate share points")
    at = np.asarray(points, dtype=np.int64)
    chosen = np.asarray(values, dtype=np.uint64)[list(through)]
    # basis[a, j] = prod over b != a of (x_j - x_b) / (x_a - x_b), mod p: one vectorised
    # step per b over all (a, j), not one per (a, b) (t^2 numpy calls cost ~40 ms a
    # secret at t = 90, paid for every owner a lying holder touched)
    t = len(xs)
    centre = np.asarray(xs, dtype=np.int64)
    basis = np.ones((t, len(at)), dtype=np.uint64)
    denominators = np.ones(t, dtype=np.uint64)
    for b, xb in enumerate(xs):
        factor = ((at - xb) % PRIME).astype(np.uint64)[None, :].repeat(t, axis=0)
        factor[b] = 1  # the a == b term is left out
        basis = (basis * factor) % _P
        difference = ((centre - xb) % PRIME).astype(np.uint64)
        difference[b] = 1
        denominators = (denominators * difference) % _P
    basis = (basis * _inverse_mod(denominators)[:, None]) % _P
    total = np.zeros(np.shape(values), dtype=np.uint64)
    for a in range(t):
        total = (total + (basis[a][:, None] * chosen[a][None, :]) % _P) % _P
    return np.all(total == np.asarray(values, dtype=np.uint64), axis=1)


def reconstruct_arrays(points: np.ndarray, values: np.ndarray, secret_bytes: int) -> list[bytes]:
    """Recover ``G`` secrets from arrays: ``points[g]`` are the ``t`` share points of
    secret ``g`` and ``values[g]`` its ``t`` shares (``t x limbs`` field elements).

    The same arithmetic as :func:`reconstruct_many` on the same shares, so the same
    bytes, without a :class:`Share` per share: what a server uses after decoding its
    reveals with :func:`decode_share_values` and picking each secret's shares with
    array indexing. The caller picks which ``t`` shares (``reconstruct_many`` takes
    the ``t`` smallest points). Points must be distinct per row and in ``[1, p)``;
    values must lie in the field. A row whose shares combine to no secret raises
    :class:`SecretSharingError`, as in ``reconstruct_many``; a server that must go on
    with the other rows uses :func:`try_reconstruct_arrays`.
    """
    checked = _checked_arrays(points, values, secret_bytes)
    if checked is None:
        return []
    return _combine(*checked, secret_bytes)  # type: ignore[return-value]


def try_reconstruct_arrays(
    points: np.ndarray, values: np.ndarray, secret_bytes: int
) -> list[bytes | None]:
    """:func:`reconstruct_arrays`, but a row whose shares combine to no
    ``secret_bytes``-byte secret gives ``None`` in its place instead of an error for
    the whole batch.

    Why: the top limb of a secret holds only its last few bits (4 of 31 for a 16-byte
    seed), so nearly any wrong share among a row's ``t`` makes that row oversized.
    When that raised for the batch, the server treated every secret of the kind as
    unopened: one holder's wrong share of one owner then aborted the round, naming
    another owner whose ``t`` shares were all right. Malformed points or values still
    raise :class:`SecretSharingError`."""
    checked = _checked_arrays(points, values, secret_bytes)
    if checked is None:
        return []
    return _combine(*checked, secret_bytes, lenient=True)


def _checked_arrays(
    points: np.ndarray, values: np.ndarray, secret_bytes: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``points`` and ``values`` as uint64 once checked (None: no rows)."""
    points = np.asarray(points)
    values = np.asarray(values)
    limbs = limbs_for(secret_bytes)
    if points.ndim != 2 or values.shape != (*points.shape, limbs):
        raise SecretSharingError(
            f"need points of shape (secrets, t) and values of shape (secrets, t, {limbs})"
        )
    if points.shape[0] == 0:
        return None
    if points.shape[1] == 0:
        raise SecretSharingError("need at least one share per secret")
    # integers only, and no negative value: a point of 1.5 was truncated to 1 and a
    # value of v - p wrapped to 2^64 + v - p, and either gave a wrong secret without an
    # error wherever no limb check catches it (a 31-byte secret fills every limb)
    if points.dtype.kind not in "iu" or values.dtype.kind not in "iu":
        raise SecretSharingError(
            f"share points and values are integers, not {points.dtype} and {values.dtype}"
        )
    if values.dtype.kind == "i" and values.size and int(values.min()) < 0:
        raise SecretSharingError("share value outside the field")
    wide = points.astype(np.int64)
    if np.any(wide <= 0) or np.any(wide >= PRIME):
        raise SecretSharingError("share points must lie in [1, p)")
    ordered = np.sort(wide, axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        raise SecretSharingError("duplicate share points")
    if values.size and int(values.max()) >= PRIME:
        raise SecretSharingError("share value outside the field")
    return wide.astype(np.uint64), values.astype(np.uint64)


def _combine(
    points: np.ndarray, ys: np.ndarray, secret_bytes: int, *, lenient: bool = False
) -> list[bytes | None]:
    """The secrets at zero of ``G`` polynomials: ``points`` (G x t) and ``ys``
    (G x t x limbs), uint64 field elements, points checked by the caller.

    The Lagrange coefficients of every distinct row of points are computed together
    (SecAgg+: one set per neighbourhood, so about one per secret; the complete graph:
    one set, the same round after round, cached), then every secret in one weighted
    sum. ``lenient``: a row that gives no secret is ``None`` instead of an error."""
    threshold = points.shape[1]
    unique, which = np.unique(points, axis=0, return_inverse=True)
    which = which.reshape(-1)
    if len(unique) == 1:
        coeffs = lagrange_at_zero(tuple(unique[0].tolist()))[None, :]
    else:
        per_chunk = max(1, _LAGRANGE_CHUNK_ENTRIES // (threshold * threshold))
        coeffs = np.concatenate(
            [_lagrange_rows(unique[i : i + per_chunk]) for i in range(0, len(unique), per_chunk)]
        )
    combined = ((ys * coeffs[which][:, :, None]) % _P).sum(axis=1) % _P
    # every secret's limb range checked at once, then each refused in order as before
    out_of_range = np.any(combined >> np.uint64(LIMB_BITS), axis=1).tolist()
    secrets: list[bytes | None] = []
    for bad, row in zip(out_of_range, combined.tolist(), strict=True):
        try:
            if bad:
                raise SecretSharingError(
                    "reconstruction gave an out-of-range limb: inconsistent shares"
                )
            secrets.append(_limbs_to_bytes(row, secret_bytes))
        except SecretSharingError:
            if not lenient:
                raise
            secrets.append(None)
    return secrets


def reconstruct(shares: Sequence[Share], threshold: int, secret_bytes: int) -> bytes:
    """Recover a ``secret_bytes``-byte secret from at least ``threshold`` shares."""
    return reconstruct_many([shares], threshold, secret_bytes)[0]


#: the most shares :func:`locate_errors` decodes: its elimination is O(m^3) per limb
MAX_DECODE_SHARES = 128


def locate_errors(points: np.ndarray, values: np.ndarray, threshold: int) -> np.ndarray | None:
    """Which of one secret's ``m`` shares lie off its polynomial, by Berlekamp-Welch.

    ``points`` ``(m,)`` and ``values`` ``(m, limbs)``; each limb is decoded as a
    Reed-Solomon codeword of dimension ``threshold``, which succeeds whenever at most
    ``e = (m - threshold) // 2`` of its shares are wrong, whatever they hold. Returns a
    boolean ``(m,)``, true for a share wrong in some limb, or ``None`` when some limb
    has more than ``e`` wrong shares (no polynomial of degree below ``threshold`` is
    within ``e`` of it) or ``m`` exceeds :data:`MAX_DECODE_SHARES`.

    Why: a server that tries random ``t``-subsets until one opens the owner's
    commitment misses the good ones when a few wrong shares sit among many: with 3
    among 60 at t = 54 (the complete graph at n = 60, sized for 3 colluders), 256
    draws found one in 4 rounds of 10. Decoding finds them every time. The result
    is only a candidate: the caller still checks the secret the other shares give
    against the owner's commitment."""
    if isinstance(threshold, bool) or not isinstance(threshold, Integral):
        raise SecretSharingError(f"the threshold must be an integer, not {threshold!r}")
    threshold = int(threshold)  # 1.5 was a bare TypeError from range()
    # integers, and values in the field, or a typed error: the casts below truncated a
    # point of 1.5 to 1 and read a value of v + p (or of 2^63 + v, wrapped negative)
    # modulo p, so shares no holder has, or that no decoder lets through, were
    # reported "all on the polynomial"
    raw_points, raw_values = np.asarray(points), np.asarray(values)
    if raw_points.dtype.kind not in "iu" or raw_values.dtype.kind not in "iu":
        raise SecretSharingError(
            f"share points and values are integers, not {raw_points.dtype} and {raw_values.dtype}"
        )
    if raw_values.size and (int(raw_values.min()) < 0 or int(raw_values.max()) >= PRIME):
        raise SecretSharingError("share value outside the field")
    xs = raw_points.astype(np.int64)
    ys = raw_values.astype(np.int64)
    m = len(xs)
    if ys.ndim != 2 or ys.shape[0] != m or not 1 <= threshold <= m or m > MAX_DECODE_SHARES:
        return None
    if len(set(xs.tolist())) != m or np.any(xs <= 0) or np.any(xs >= PRIME):
        return None
    e = (m - threshold) // 2
    wrong = np.zeros(m, dtype=bool)
    # powers[:, j] = x^j mod p, j = 0 .. threshold + e
    powers = np.ones((m, threshold + e + 1), dtype=np.int64)
    for j in range(1, threshold + e + 1):
        powers[:, j] = powers[:, j - 1] * xs % PRIME
    for limb in range(ys.shape[1]):
        y = ys[:, limb] % PRIME
        # Q(x_i) - y_i * (E(x_i) - x_i^e) = y_i * x_i^e, E monic of degree e
        system = np.concatenate(
            [
                powers[:, : threshold + e],
                (PRIME - y[:, None]) * powers[:, :e] % PRIME,
                (y * powers[:, e] % PRIME)[:, None],
            ],
            axis=1,
        )
        solution = _solve_mod_p(system)
        if solution is None:
            return None
        q = [int(v) for v in solution[: threshold + e]]
        locator = [int(v) for v in solution[threshold + e :]] + [1]
        quotient, remainder = _divide_mod_p(q, locator)
        if any(remainder) or len(quotient) > threshold:
            return None
        at = np.zeros(m, dtype=np.int64)
        for coefficient in reversed(quotient):  # Horner
            at = (at * xs + coefficient) % PRIME
        off = at != y
        if int(off.sum()) > e:
            return None
        wrong |= off
    return wrong


def _solve_mod_p(augmented: np.ndarray) -> np.ndarray | None:
    """One solution of ``A z = b`` mod p (free unknowns 0), or None if inconsistent.
    ``augmented`` is ``[A | b]`` with entries in [0, p); products stay below 2^63."""
    a = augmented.astype(np.int64) % PRIME
    rows, cols = a.shape[0], a.shape[1] - 1
    pivots: list[int] = []
    row = 0
    for col in range(cols):
        candidates = np.flatnonzero(a[row:, col]) + row if row < rows else np.array([], int)
        if not len(candidates):
            continue
        pivot = int(candidates[0])
        if pivot != row:
            a[[row, pivot]] = a[[pivot, row]]
        a[row] = a[row] * pow(int(a[row, col]), PRIME - 2, PRIME) % PRIME
        factors = a[:, col].copy()
        factors[row] = 0
        a = (a - (factors[:, None] * a[row][None, :]) % PRIME) % PRIME
        pivots.append(col)
        row += 1
        if row == rows:
            break
    if np.any(a[row:, cols] != 0):
        return None  # 0 = b with b != 0
    z = np.zeros(cols, dtype=np.int64)
    for r, col in enumerate(pivots):
        z[col] = a[r, cols]
    return z


def _divide_mod_p(numerator: list[int], denominator: list[int]) -> tuple[list[int], list[int]]:
    """Quotient and remainder of two polynomials over GF(p) (coefficients lowest
    first; the denominator monic)."""
    remainder = list(numerator)
    degree = len(denominator) - 1
    if len(remainder) <= degree:
        return [0], remainder
    quotient = [0] * (len(remainder) - degree)
    for shift in range(len(remainder) - 1 - degree, -1, -1):
        coefficient = remainder[shift + degree] % PRIME
        quotient[shift] = coefficient
        if coefficient:
            for j, d in enumerate(denominator):
                remainder[shift + j] = (remainder[shift + j] - coefficient * d) % PRIME
    while len(quotient) > 1 and quotient[-1] == 0:
        quotient.pop()
    return quotient, remainder[:degree]
