"""Randomized Hadamard rotation: spread a vector's energy evenly over its coordinates.

Why: the distributed discrete Gaussian mechanism rounds every coordinate to an
integer and sums modulo 2^b. A vector whose L2 norm sits in a few large
coordinates wastes the ring's range on them and risks a wrap; after a random
rotation every coordinate is about ``norm / sqrt(d)`` in size, so a smaller
ring (or finer scale) suffices and rounding error spreads evenly (Kairouz,
Liu and Steinke, ICML 2021, Section 4).

The rotation is ``x -> H D x / sqrt(d')``: zero-pad to ``d' = 2^ceil(log2 d)``,
flip signs with a diagonal ``D`` of random +-1 drawn from a seed, apply the
Walsh-Hadamard transform ``H`` (``H H = d' I``) with the O(d' log d') butterfly,
and normalise, which makes the map orthogonal: L2 norms are preserved, so an
L2 clip applied before or after it is the same clip. Its inverse is
``D H y / sqrt(d')`` followed by dropping the padding. The seed is *public*
(every client and the server use the same rotation in a round; the server
derives it from the round id); secrecy is not needed, fresh randomness per
round is.

Range: NaN and infinite coordinates are refused (:class:`ConfigurationError`), and a
vector near the top of the float range is transformed scaled down by a power of two
and scaled back, so a finite vector of finite norm rotates to a finite vector (the
unnormalised butterfly's sums reach ``d' * max|x|``; see :func:`_range_shift`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from secagg.crypto.stream import MAX_DRAWS_PER_CALL, KeyedStream
from secagg.errors import ConfigurationError

#: The largest dimension a rotation is built for: padded, 2^32 coordinates, the longest
#: vector a round carries (protocol.common.MAX_VECTOR_LENGTH) and the most sign draws
#: one stream call gives. ``RandomizedHadamard(10**12, seed)`` failed as numpy's
#: MemoryError ("Unable to allocate 8.00 TiB") from the sign draws; it is refused first.
MAX_ROTATION_DIMENSION = MAX_DRAWS_PER_CALL


def padded_dimension(dimension: int) -> int:
    """The power of two the rotation pads ``dimension`` to."""
    if isinstance(dimension, bool) or not isinstance(dimension, numbers.Integral):
        # 1.5 failed as "'float' object has no attribute 'bit_length'", True passed as 1
        raise ConfigurationError(f"dimension must be an integer, not {dimension!r}")
    if dimension < 1:
        raise ConfigurationError("dimension must be at least 1")
    return 1 << (int(dimension) - 1).bit_length()


def _real(values: np.ndarray, what: str) -> np.ndarray:
    """``values`` as float64, refusing complex, text and objects: casting kept only the
    real part of a complex vector (a wrong rotation, with a warning at most)."""
    x = np.asarray(values)
    if x.dtype.kind not in "biuf":
        raise ConfigurationError(f"{what} must hold real numbers, not {x.dtype} values")
    return x.astype(np.float64, copy=False)


#: Values per cache block of the transform's first passes (256 KiB of float64): pass t
#: only mixes coordinates within aligned blocks of 2^(t+1), so the passes up to this
#: size run block by block on buffers that stay in L2. Measured (CPU, best of 12) at
#: d' = 2^20: 16.7 ms against 22.7 ms for every pass over the whole vector; 2^11-2^13
#: lost to per-call dispatch (23.5, 19.9, 18.5 ms), 2^14 was level with 2^15.
_WHT_BLOCK = 1 << 15


def walsh_hadamard(values: np.ndarray) -> np.ndarray:
    """The unnormalised Walsh-Hadamard transform (Sylvester order) of a 2^m vector.

    Returns a new array (float64 or int64 stay so: on int64 it is exact, and refused
    when it could pass 2^63; unsigned integers are refused); the input
    is not modified. Costs m passes of one addition and one subtraction over the vector.

    Pass t adds and subtracts the coordinates whose indices differ in bit t (t = 0, 1,
    ..., in that order), as the textbook butterfly does, so the floats are bit for bit
    the butterfly's whatever the memory layout of the work. The textbook form hands
    numpy rows of 2^t values, for small t a loop of tiny inner loops (at d' = 2^17 its
    t = 1 pass took 1.0 ms against 0.09 ms for a flat one). So the passes within a
    block of ``_WHT_BLOCK`` run block by block in the constant-geometry form (pairs
    ``(x[2j], x[2j+1])``, sums to the first half, differences to the second: two flat
    ufunc calls, and the block ends in Sylvester order) on buffers that stay in cache;
    the later passes, whose rows are at least a block long, run as the textbook
    butterfly over the whole vector.
    """
    a = np.asarray(values)
    if a.dtype.kind not in "iuf":  # text failed as numpy's UFuncTypeError
        raise ConfigurationError(
            f"the Walsh-Hadamard transform needs real numbers, not {a.dtype} values"
        )
    n = a.size
    if a.ndim != 1 or n & (n - 1):
        raise ConfigurationError("the Walsh-Hadamard transform needs a 1-D vector of length 2^m")
    if a.dtype.kind in "iu":
        _check_exact_on_integers(a)
    if n < 2:
        return a.copy()
    block = min(n, _WHT_BLOCK)
    passes = block.bit_length() - 1
    out = np.empty_like(a)
    scratch = (np.empty(block, dtype=a.dtype), np.empty(block, dtype=a.dtype))
    for start in range(0, n, block):
        _passes_in_block(a[start : start + block], out[start : start + block], scratch, passes)
    if block == n:
        return out
    spare = np.empty_like(a)
    h = block
    while h < n:
        src = out.reshape(-1, 2, h)
        dst = spare.reshape(-1, 2, h)
        np.add(src[:, 0, :], src[:, 1, :], out=dst[:, 0, :])
        np.subtract(src[:, 0, :], src[:, 1, :], out=dst[:, 1, :])
        out, spare = spare, out
        h *= 2
    return out


def _check_exact_on_integers(a: np.ndarray) -> None:
    """Refuse integers whose transform the integer type could not hold.

    numpy's integer additions wrap silently, so such a transform was a wrong vector
    without a word: unsigned integers (every row but the first has negative
    coordinates: [1, 2] as uint8 gave [3, 255]) and int64 vectors whose coordinates
    could sum past 2^63 ([2^62, 2^62] gave [-2^63, 0]). Each output coordinate is a
    signed sum of all inputs, so ``n * max|x|`` bounds it (the all-equal vector reaches
    it). Narrower signed types keep numpy's arithmetic of their width, bit for bit the
    butterfly's (tests/encoding/test_rotation_pinned.py pins that): pass int64 or
    float64 for a transform that is exact or refused.
    """
    if a.dtype.kind == "u":
        raise ConfigurationError(
            f"the Walsh-Hadamard transform of unsigned integers ({a.dtype}) has negative "
            "coordinates its type cannot hold: pass signed integers (int64) or floats"
        )
    if a.dtype.itemsize != 8 or a.size == 0:
        return
    largest = max(int(a.max()), -int(a.min()))
    if largest * a.size > np.iinfo(np.int64).max:
        raise ConfigurationError(
            f"the Walsh-Hadamard transform of int64 values up to {largest} in {a.size} "
            "coordinates can pass 2^63: pass floats, or smaller integers"
        )


def _passes_in_block(
    src: np.ndarray, dst: np.ndarray, scratch: tuple[np.ndarray, np.ndarray], passes: int
) -> None:
    """The first ``passes`` passes over one block, constant-geometry, the last into ``dst``.

    ``src`` is only read; the passes in between alternate between the two scratch
    buffers."""
    half = src.size // 2
    current = src
    for k in range(passes):
        target = dst if k == passes - 1 else scratch[k % 2]
        even, odd = current[0::2], current[1::2]
        np.add(even, odd, out=target[:half])
        np.subtract(even, odd, out=target[half:])
        current = target


def _range_shift(values: np.ndarray, padded: int, what: str) -> int:
    """The power of two ``2^-k`` to scale ``values`` by so the butterfly cannot overflow
    (k = 0 for every vector short of the float range's top); NaN and infinities refused.

    Why: the transform is unnormalised, so its pass t holds signed sums of 2^t inputs,
    up to ``d' * max|x|`` after the last, before ``1 / sqrt(d')`` brings the result back
    to the vector's norm. A finite vector of finite norm ([1e308] * 3) rotated to
    [inf, -5e307, inf, 5e307], and one whose sums met as inf - inf to NaN; a NaN or
    infinite input went through as a NaN vector. Float sums and products commute with a
    power of two while nothing overflows or underflows, so a vector past
    ``2^(1023 - log2 d')`` is transformed at ``2^-(log2 d' + 1)`` times its size and
    the result scaled back: bit for bit the rotation with an unbounded exponent (but for
    coordinates that the scaling takes into the subnormals, below 2^-1000 beside ones
    above 2^990). Every other vector takes the unscaled path, bit for bit as before
    (tests/encoding/test_rotation_pinned.py). A rotation whose true coordinates are past
    the float range still overflows, to infinities, as any float arithmetic does.
    """
    if values.size == 0:
        return 0
    low, high = float(values.min()), float(values.max())  # NaN propagates into both
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigurationError(f"{what} contains NaN or infinite values")
    passes = padded.bit_length() - 1
    # d' * max|x| < 2^1023 keeps every partial sum (each within (1 + 2^-52)^m of its
    # exact value, m <= 63 passes) below the largest float
    if max(-low, high) < 2.0 ** (1023 - passes):
        return 0
    return passes + 1


class RandomizedHadamard:
    """The seeded orthogonal rotation ``x -> H D x / sqrt(d')`` and its inverse."""

    def __init__(self, dimension: int, seed: bytes) -> None:
        """``seed``: the round's public rotation seed (16 bytes), never None: a missing
        seed drew a fresh random key, so the client and the server each rotated with
        signs the other could not reproduce and the decoded sum was noise."""
        if not isinstance(seed, bytes | bytearray):
            raise ConfigurationError(
                f"the rotation seed must be the round's public 16 bytes, not {seed!r}"
            )
        self.padded = padded_dimension(dimension)
        if self.padded > MAX_ROTATION_DIMENSION:
            raise ConfigurationError(
                f"dimension {dimension} pads to {self.padded} coordinates, above the "
                f"{MAX_ROTATION_DIMENSION} (2^32) a rotation is built for"
            )
        self.dimension = int(dimension)
        self._signs = np.where(KeyedStream(seed).bits(self.padded), -1.0, 1.0)
        self._norm = 1.0 / math.sqrt(self.padded)
        # +-norm exactly: y * (+-norm) is +-(y * norm) bit for bit (rounding is symmetric)
        self._signed_norm = self._signs * self._norm

    def rotate(self, values: np.ndarray) -> np.ndarray:
        """Pad to d', flip signs, transform, normalise (float64, length d')."""
        x = _real(values, "the vector to rotate")
        if x.shape != (self.dimension,):
            raise ConfigurationError(f"expected a vector of length {self.dimension}, got {x.shape}")
        shift = _range_shift(x, self.padded, "the vector to rotate")
        padded = np.zeros(self.padded)
        padded[: self.dimension] = x
        padded *= self._signs
        if shift:
            padded *= 2.0**-shift
        out = walsh_hadamard(padded)
        out *= self._norm
        if shift:
            with np.errstate(over="ignore"):  # past the float range: inf, as documented
                out *= 2.0**shift
        return out

    def unrotate(self, values: np.ndarray) -> np.ndarray:
        """The inverse: transform, normalise, flip signs back, drop the padding."""
        y = _real(values, "the vector to unrotate")
        if y.shape != (self.padded,):
            raise ConfigurationError(f"expected a vector of length {self.padded}, got {y.shape}")
        shift = _range_shift(y, self.padded, "the vector to unrotate")
        out = walsh_hadamard(y * 2.0**-shift if shift else y)[: self.dimension]
        # one pass over the kept coordinates: normalising and flipping the signs of all
        # d' and then copying d of them gave the same floats in three
        out = np.multiply(out, self._signed_norm[: self.dimension])
        if shift:
            with np.errstate(over="ignore"):  # past the float range: inf, as documented
                out *= 2.0**shift
        return out
