"""Float vectors to the ring Z_{2^b} and back: fixed point with stochastic rounding.

Theory of operation
-------------------
A client's float vector ``x`` is multiplied by a public ``scale`` ``s`` and
rounded to integers *stochastically*: ``y = s*x`` becomes ``floor(y) + 1`` with
probability ``y - floor(y)`` and ``floor(y)`` otherwise, so the rounding is
unbiased (``E[round(y)] = y``, up to the 2^-53 grid of the uniform draw) and
the error of a sum of n clients shrinks like sqrt(n) instead of growing like
n. The uniform draws come from a :class:`~secagg.crypto.stream.KeyedStream`,
never from ``numpy.random``: rounding decisions that a server could predict
would leak the low-order digits of the update.

Integers are taken modulo 2^b in two's complement, so negative values cost
nothing special: the masked sum arrives as a word in ``[0, 2^b)`` that
:meth:`FixedPoint.decode` reads as a signed integer in ``[-2^(b-1), 2^(b-1))``
and divides by ``s``. That reading is right only if the true integer sum
lies in that interval; :meth:`FixedPoint.check_headroom` refuses, before any
data moves, a configuration whose sum could leave it, unless the caller asks
for modular clipping explicitly (the distributed DP mechanism does: its noise
is unbounded, and it chooses the scale so a wrap has a stated small chance).
"""

from __future__ import annotations

import math
import numbers
import threading
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from secagg.crypto.stream import KeyedStream
from secagg.errors import ConfigurationError, HeadroomError

SUPPORTED_BITS = (32, 64)
_WORD = {32: np.uint32, 64: np.uint64}


#: Values per block of the rounding loop. Its buffers (128 KiB per float64 one) are
#: kept per thread and reused from block to block and call to call; whole-vector
#: temporaries were mapped afresh each call and page-faulted in, which cost a client
#: 1.2-1.5 ms per encode at d = 1e5 against 0.4 ms of arithmetic (measured). 16384
#: rather than 8192: each block costs about 5 us of Python and ufunc dispatch
#: whatever its size, and at d = 1e5 the larger block ran 1.10-1.12x faster (CPU
#: time, best of 25 interleaved runs; 32768 was no faster and sometimes 1.8x slower).
_ROUND_BLOCK = 16384
_SHIFT = np.uint64(11)  # a word's top 53 bits: the uniform's numerator
#: 1.5 * 2^52: for an integral float f in [-2^51, 2^51), f + _MAGIC is exact and its
#: mantissa's low 32 bits are f modulo 2^32 (2^51 is a multiple of 2^32)
_MAGIC = 1.5 * 2.0**52
_MAGIC_RANGE = 2.0**51


_SCRATCH = threading.local()


def _scratch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """This thread's block buffers for the rounding loop (float64 x2, bool, int64).

    Kept for the thread's life (about 400 KiB) rather than allocated per call: freeing
    them let malloc hand the top of the heap back to the kernel, and the next call
    page-faulted it in again, which doubled a single-block encode's time in some
    allocation patterns (d = 1e4 at 50 against 105-125 us, measured). One set per
    thread, so concurrent clients in threads never share a buffer.
    """
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None or buffers[0].size < _ROUND_BLOCK:
        buffers = (
            np.empty(_ROUND_BLOCK, dtype=np.float64),
            np.empty(_ROUND_BLOCK, dtype=np.float64),
            np.empty(_ROUND_BLOCK, dtype=np.bool_),
            np.empty(_ROUND_BLOCK, dtype=np.int64),
        )
        _SCRATCH.buffers = buffers
    return buffers


def stochastic_round(values: np.ndarray, stream: KeyedStream, *, scale: float = 1.0) -> np.ndarray:
    """Round each float (times ``scale``) to an adjacent integer, up with probability its
    fraction (int64).

    Unbiased: ``E[result] = scale * values`` (to within 2^-53 per coordinate). The
    scaled values must be finite and below 2^62 in magnitude. A coordinate goes up
    when ``w >> 11 < fraction * 2^53`` for the next 64-bit word ``w`` of ``stream``:
    the same decision as comparing the 53-bit uniform ``(w >> 11) / 2^53`` with the
    fraction (both sides are exact), without a float vector of uniforms.
    """
    if not isinstance(stream, KeyedStream):  # None failed as "no attribute 'word_blocks'"
        raise ConfigurationError(
            f"stochastic rounding draws from a KeyedStream, not {type(stream).__name__}"
        )
    x = np.asarray(values)
    out = np.empty(x.shape, dtype=np.int64)
    _round_into(x.reshape(-1), scale, stream, out.reshape(-1))
    return out


def _round_into(flat: np.ndarray, scale: float, stream: KeyedStream, out: np.ndarray) -> None:
    """Stochastic rounding of ``flat * scale`` written into ``out`` (int64 or unsigned words).

    Checked before any stream word is used. Unsigned ``out`` receives the integers
    modulo its word size (two's complement), which is how the ring takes them.

    Per block: scale, floor, fraction, fraction * 2^53, word >> 11, the comparison
    (into a reused bool buffer), then the result. A 64-bit ``out`` takes the floor cast
    straight into it (viewed as int64) and the comparison added in place: no int64
    intermediate and no copy. A 32-bit ``out`` takes ``floor + 1.5 * 2^52``, whose
    bit pattern's low 32 bits are the floor modulo 2^32 (its mantissa holds the floor
    in two's complement), by an int64-to-uint32 cast, then adds the comparison in
    uint32: a float addition where there was a float-to-int64 cast, an int64 addition
    with a bool and an int64-to-uint32 cast. That holds while every floor lies in
    [-2^51, 2^51); beyond (never with a 32-bit ring in practice, whose sums wrap at
    2^31) the loop keeps the int64 intermediate. With the larger block and the kept
    buffers, 1.09-1.20x faster than the loop it replaced at d = 1e4..1e6 (CPU time, best
    of 40 interleaved runs in one process; 0.430 -> 0.369 ms at d = 1e5, float32 input,
    uint32 ring), bit for bit the same words (``tests/encoding/test_rounding_pinned.py``).
    The AES keystream alone is about a quarter of the time (0.09 ms at d = 1e5); what
    is left is eight or nine numpy passes near the speed of L2 cache, each needed by the
    definition (drawing 32-bit words instead of 64-bit ones would halve the keystream
    but change every rounding decision, so every recorded run).
    """
    scale = _float_or_refuse(scale, "the rounding scale must be a positive finite number")
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigurationError("the rounding scale must be a positive finite number")
    if flat.dtype.kind not in "biuf":
        raise ConfigurationError(f"cannot round values of type {flat.dtype} (real numbers only)")
    low = high = 0.0
    if flat.size:
        # fl(v * scale) is monotonic in v for scale > 0: the extremes bound every product
        low = float(np.float64(flat.min()) * scale)
        high = float(np.float64(flat.max()) * scale)
        if not (-(2.0**62) < low and high < 2.0**62):  # NaN fails both comparisons
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ConfigurationError("cannot round NaN or infinite values")
            raise ConfigurationError("values too large for 64-bit fixed point: lower the scale")
    wide = out.dtype.itemsize == 8  # int64 or uint64: the same two's-complement bits
    magic = not wide and out.dtype == np.uint32 and -_MAGIC_RANGE < low and high < _MAGIC_RANGE
    scaled, floor, up, scratch = _scratch()
    integers = out.view(np.int64) if wide else scratch
    # one AES context for the whole vector: the same words as stream.words(size) per block
    draws = stream.word_blocks(flat.size, _ROUND_BLOCK)
    for start, words in zip(range(0, flat.size, _ROUND_BLOCK), draws, strict=True):
        stop = min(start + _ROUND_BLOCK, flat.size)
        size = stop - start
        s, f, u = scaled[:size], floor[:size], up[:size]
        np.multiply(flat[start:stop], scale, out=s, dtype=np.float64)
        np.floor(s, out=f)
        np.subtract(s, f, out=s)
        s *= 2.0**53  # the fraction, scaled like the 53-bit uniform
        words >>= _SHIFT
        np.less(words, s, out=u)  # both sides exact: the uniform (w >> 11) / 2^53 < fraction
        if magic:
            f += _MAGIC
            o = out[start:stop]
            np.copyto(o, f.view(np.int64), casting="unsafe")  # the low 32 bits of the pattern
            np.add(o, u, out=o)
            continue
        i = integers[start:stop] if wide else integers[:size]
        np.copyto(i, f, casting="unsafe")  # integral floats below 2^62: exact
        np.add(i, u, out=i)
        if not wide:
            np.copyto(out[start:stop], i, casting="unsafe")  # int64 -> words: modulo 2^bits


def _float_or_refuse(number: object, refusal: str) -> float:
    """``number`` as a float, or :class:`ConfigurationError` with ``refusal``.

    Why: a Python integer or Fraction past the float range (``10**400``) raised
    OverflowError from ``float`` or ``math.isfinite``, an error no caller maps to a
    configuration fault; no float scale or bound has that size, so it is refused as
    out of range. Other types keep their own checks (bool and text are refused by the
    callers' type tests, or by ``math.isfinite``'s TypeError where none was made).
    """
    try:
        return float(number)  # type: ignore[arg-type]
    except OverflowError:
        raise ConfigurationError(f"{refusal}, not a number past the float range") from None
    except (TypeError, ValueError):
        raise ConfigurationError(f"{refusal}, not {number!r}") from None


def _units(bound: int) -> str:
    """``bound`` integer units for a one-line message: digits up to 2^64, then its bits
    (a bound past the float range has over 300 digits)."""
    return f"{bound} units" if bound.bit_length() <= 64 else f"about 2^{bound.bit_length()} units"


def _whole(name: str, value: object, minimum: int) -> int:
    """``value`` as a Python int, if it is an integer (numpy's too, not bool) of at
    least ``minimum``; otherwise :class:`ConfigurationError` naming it.

    Why: ``int()`` truncated 2.5 clients to 2 and gave an answer for a question nobody
    asked, a negative count or bound gave a width or a client count as if meaningful
    (``smallest_bits(-1, 5)`` was 4, ``largest_clients(-3, 32)`` 2^31 - 1), and
    ``largest_clients(5, 0)`` failed as a bare ValueError ("negative shift count")."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigurationError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, not {value}")
    return int(value)


def smallest_bits(num_clients: int, per_client_bound: int) -> int:
    """Fewest bits b with num_clients * per_client_bound <= 2^(b-1) - 1 (signed sum fits).

    In Python integers: numpy's multiply in their width and have no ``bit_length``
    (np.int64(3) failed as an AttributeError, np.int32(70000) squared wrapped first).
    Both are non-negative integers (:func:`_whole`)."""
    clients = _whole("num_clients", num_clients, 0)
    return (clients * _whole("per_client_bound", per_client_bound, 0)).bit_length() + 1


def largest_clients(per_client_bound: int, bits: int) -> int:
    """Most clients whose summed integers (each of magnitude <= bound) fit in b signed bits
    (a Python int, whatever integer types it is given). The bound is a non-negative
    integer (0 counts as 1: no sum of units can be bounded more tightly), the width a
    positive one (:func:`_whole`)."""
    bound = _whole("per_client_bound", per_client_bound, 0)
    return ((1 << (_whole("bits", bits, 1) - 1)) - 1) // max(bound, 1)


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point encoding into Z_{2^bits} with ``scale`` integer units per 1.0."""

    scale: float
    bits: int = 32

    def __post_init__(self) -> None:
        # types first: True passed as scale 1, bits=32.0 passed (32.0 == 32) into shift
        # widths, and a str scale failed as math's TypeError; numpy numbers become Python's
        bits = self.bits
        if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
            raise ConfigurationError(f"bits must be one of {SUPPORTED_BITS}, not {bits!r}")
        if bits not in SUPPORTED_BITS:
            raise ConfigurationError(f"bits must be one of {SUPPORTED_BITS}, not {self.bits}")
        scale = self.scale
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
            raise ConfigurationError(f"scale must be a positive finite number, not {scale!r}")
        scale = _float_or_refuse(scale, "scale must be a positive finite number")
        if not (math.isfinite(scale) and scale > 0):
            raise ConfigurationError("scale must be a positive finite number")
        object.__setattr__(self, "bits", int(bits))
        object.__setattr__(self, "scale", scale)

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        return _WORD[self.bits]

    def integer_bound(self, value_bound: float) -> int:
        """``floor(P) + 1`` for ``P = fl(value_bound * scale)``: a bound on the magnitude
        of an encoded coordinate if |x_i| <= value_bound, the one :meth:`check_headroom`
        sums.

        From the float product, as the rounding computes each ``fl(x * scale)`` (it is
        monotonic in x, so ``P`` bounds them all). Stochastic rounding moves a value to
        one of its two neighbouring integers and leaves an integer as it is, so the
        largest magnitude a coordinate can reach is ``ceil(P)``: this bound equals it
        unless ``P`` is an integer (value bound 1 at a power-of-two scale, the usual
        case), where it is one unit above, a margin kept on purpose as the same rule as
        the masking planner's ``largest_safe_scale``
        (``tests/encoding/test_headroom_error_message.py`` checks both claims). A product past
        the float range (a bound of 1e200 at scale 1e200) is taken exactly instead:
        ``math.floor`` of the infinite product raised OverflowError, so
        :meth:`check_headroom` failed with that instead of its HeadroomError.
        """
        if isinstance(value_bound, bool) or not isinstance(value_bound, numbers.Real):
            raise ConfigurationError(
                f"the per-client bound must be a real number, not {value_bound!r}"
            )
        # a Python float: numpy's float32 times a Python float is a float32 product
        # (NEP 50), rounded to 24 bits and possibly below the float64 products the
        # rounding takes, so a bound of np.float32(753.51556) at scale 237496.05 passed
        # 12 clients whose sum at the bound wrapped to -9042.19 instead of 9042.19
        value_bound = _float_or_refuse(
            value_bound, "the per-client bound must be finite and non-negative"
        )
        if not (math.isfinite(value_bound) and value_bound >= 0):
            raise ConfigurationError("the per-client bound must be finite and non-negative")
        product = value_bound * self.scale
        if math.isinf(product):  # no float holds it: exact (no value this size is rounded)
            return math.floor(Fraction(value_bound) * Fraction(self.scale)) + 1
        return math.floor(product) + 1  # stochastic rounding may go up one

    def check_headroom(
        self, num_clients: int, value_bound: float, *, modular_clipping: bool = False
    ) -> None:
        """Refuse a configuration whose sum of ``num_clients`` vectors could wrap.

        ``value_bound`` bounds every coordinate of every client's vector before
        scaling (an L2 clip C bounds each coordinate by C). The rule: ``n * (floor(C *
        scale) + 1) <= 2^(bits-1) - 1`` with ``C * scale`` taken in float64 (see
        :meth:`integer_bound`: the ``+ 1`` is the unit stochastic rounding may add, one
        more than a client can reach when ``C * scale`` is an integer). The error names
        the most clients that fit and a supported width that fits, if one does. With
        ``modular_clipping=True`` the check is skipped: the caller accepts that
        an out-of-range sum wraps around modulo 2^bits.
        """
        if isinstance(num_clients, bool) or not isinstance(num_clients, numbers.Integral):
            raise ConfigurationError(f"num_clients must be an integer, not {num_clients!r}")
        if num_clients < 1:
            raise ConfigurationError("num_clients must be at least 1")
        # a Python int: numpy's integers multiply in their own width and wrap, so
        # np.int32(5000) clients at 1048576001 units each passed a 32-bit ring (the
        # product wrapped below 2^31), and np.int64(4) at 2^62 + 1 units a 64-bit one
        num_clients = int(num_clients)
        bound = self.integer_bound(value_bound)
        if modular_clipping or num_clients * bound <= (1 << (self.bits - 1)) - 1:
            return
        raise HeadroomError(
            num_clients=num_clients,
            bits=self.bits,
            largest_clients=largest_clients(bound, self.bits),
            smallest_bits=smallest_bits(num_clients, bound),
            supported_bits=SUPPORTED_BITS,
            detail=(
                f"{num_clients} clients x per-coordinate bound {value_bound:g} at scale "
                f"{self.scale:g} can overflow a signed {self.bits}-bit sum (the rule: "
                f"clients x (floor(bound x scale) + 1) <= 2^{self.bits - 1} - 1, here "
                f"{num_clients} x {_units(bound)})"
            ),
        )

    def to_ring(self, integers: np.ndarray) -> np.ndarray:
        """Signed int64 values to words of Z_{2^bits} (two's complement).

        Integers only, of any numpy width (unsigned ones read modulo 2^64): the cast
        this did with ``np.asarray(..., dtype=np.int64)`` truncated floats toward zero
        without a word ([1.7, -2.5] became the words of [1, -2]), parsed text as numbers
        and raised OverflowError for a Python integer past int64; each is now a
        ConfigurationError, since a value that is no integer has no ring word.
        """
        values = np.asarray(integers)
        if values.dtype.kind not in "biu":
            raise ConfigurationError(
                f"ring words are made from integers within int64, not {values.dtype} values"
            )
        words = values.astype(np.int64, copy=False).view(np.uint64)
        return words.astype(self.dtype)  # keeps the low bits: reduction mod 2^bits

    def from_ring(self, words: np.ndarray) -> np.ndarray:
        """Words of Z_{2^bits} to signed int64 in [-2^(bits-1), 2^(bits-1))."""
        return self._signed(words).astype(np.int64)

    def _signed(self, words: np.ndarray) -> np.ndarray:
        """The words read in place as signed integers of their own width (a view, no copy)."""
        w = np.asarray(words)
        if w.dtype != np.dtype(self.dtype):
            raise ConfigurationError(f"expected {np.dtype(self.dtype)} words, got {w.dtype}")
        return w.view(np.int32 if self.bits == 32 else np.int64)

    def encode(self, values: np.ndarray, stream: KeyedStream | None = None) -> np.ndarray:
        """Scale, round stochastically and map into the ring (a new word array).

        ``stream`` is the client's rounding stream, or None for a fresh one from the OS.
        Anything else is refused as :func:`stochastic_round` refuses it: a 16-byte key
        passed for its stream failed as "'bytes' object has no attribute
        'word_blocks'" (an AttributeError), after the words array was allocated.
        """
        if stream is not None and not isinstance(stream, KeyedStream):
            raise ConfigurationError(
                f"stochastic rounding draws from a KeyedStream, not {type(stream).__name__}"
            )
        x = np.asarray(values)
        words = np.empty(x.shape, dtype=self.dtype)
        _round_into(
            x.reshape(-1),
            self.scale,
            KeyedStream() if stream is None else stream,
            words.reshape(-1),
        )
        return words

    def decode(self, words: np.ndarray) -> np.ndarray:
        """A (summed) word vector back to float64: signed reading, divided by the scale.

        One pass from the signed view: the division converts each int32 or int64 to
        float64 itself (the same conversion ``from_ring``'s int64 then goes through), so
        the int64 copy that ``from_ring(words) / scale`` made first, a whole-vector
        allocation and pass, is skipped; the floats are bit for bit the same.
        """
        return np.divide(self._signed(words), self.scale, dtype=np.float64)
