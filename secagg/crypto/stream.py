"""A keyed random stream: every random draw DP needs, from AES-CTR under a secret key.

Why not ``numpy.random`` or ``random``: their state can be recovered from a few
outputs, and anyone who predicts a client's noise or rounding draws can
subtract them. Stochastic rounding, discrete Gaussian noise and the server's
Gaussian noise all read from a :class:`KeyedStream` instead: the AES-CTR
keystream of a 128-bit key that comes from the OS CSPRNG (``os.urandom``) unless
the caller supplies one (tests do, to replay a draw; production code never
should). The key never leaves the object and is not part of its ``repr``.

Nor is the stream ever duplicated: ``copy.copy``, ``copy.deepcopy`` and ``pickle``
(Ray's serializer among them) refuse it with
:class:`~secagg.errors.StreamCopyRefused`. A copy was a twin, the same key at the same
position, whose draws repeated the original's: DP noise drawn from both is the same
noise twice (two releases whose sum is not noised as the accountant charged it), a
rounding or a mask the same on two inputs, and a pickle carried the key in plain. A
caller that needs a second stream asks for one: :meth:`KeyedStream.fork` (an
independent stream bound to a label), or a stream keyed by :func:`derive` from a seed
the caller holds on purpose (a replay; a Ray factory carries the seed, and each client
derives its streams in its host by its name and round).

The stream is read strictly forward: each call consumes fresh words at the
current position (a 64-bit word offset), so no draw is ever reused, even by
threads sharing one stream (each call takes its words under the stream's lock). Draws are
the raw material of exact samplers: uniform 64-bit words, uniform integers in
``[0, n)`` by rejection (no modulo bias), uniform floats with 53 random bits.

A replayable run (a simulation, a test against a recorded run) needs its keys
from a seed instead: :func:`derive` is the one derivation for that.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import threading
from collections.abc import Iterator

import numpy as np

from secagg.crypto.prg import MAX_WORDS_AT_ONCE, SEED_BYTES, _stream_at, expand_into
from secagg.errors import ConfigurationError, StreamCopyRefused

_WORDS_PER_KEY = 1 << 60  # far below AES-CTR's 2^64-block limit per key
#: The most draws one call returns at once (32 GiB of words), the PRG's
#: :data:`~secagg.crypto.prg.MAX_WORDS_AT_ONCE`: above it no caller has a use (a round's
#: vector is at most 2^32 words, protocol.common.MAX_VECTOR_LENGTH), and a count of
#: 10^12 failed as numpy's MemoryError ("Unable to allocate 7.28 TiB") from the result's
#: allocation, an error no caller maps to a bad argument. Longer reads go block by block
#: through :meth:`KeyedStream.word_blocks`, whose count has no such limit.
MAX_DRAWS_PER_CALL = MAX_WORDS_AT_ONCE
_DIGEST_BYTES = hashlib.sha256().digest_size


def derive(label: bytes | str, seed: bytes | int | str, *, size: int = SEED_BYTES) -> bytes:
    """``SHA-256(label || seed)``, truncated to ``size`` bytes: a seed derived from a seed.

    The default size is a :class:`KeyedStream` key (16 bytes); ``size`` may be
    1 to 32. ``label`` names the purpose (``str`` is UTF-8 encoded). ``seed`` is
    bytes as given, a ``str`` UTF-8 encoded, or an integer written in decimal
    ASCII (``str(seed)``; ``bool`` is refused).

    This is the construction the engine has always used, so keys derived
    through it stay bit-identical with recorded runs. It is plain concatenation,
    which separates domains only while no label is a prefix of another: give each
    purpose its own constant label, ``secagg/v1/<purpose>/``. Only for replay and
    tests: production randomness comes from ``os.urandom`` (``KeyedStream()``
    without a key), and a derived key is no more secret than its seed.
    """
    if isinstance(label, str):
        label = label.encode()
    if not isinstance(label, bytes | bytearray):
        raise ConfigurationError(f"a derivation label must be bytes or str, not {label!r}")
    if isinstance(seed, bytes | bytearray | memoryview):
        material = bytes(seed)
    elif isinstance(seed, str):
        material = seed.encode()
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        material = str(int(seed)).encode()
    else:
        # the type only: a seed is secret, and its repr (a numpy array of key bytes,
        # a list of seeds) put the secret itself in the message
        raise ConfigurationError(
            f"a seed must be bytes, str or an integer, not {type(seed).__name__}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _DIGEST_BYTES:
        raise ConfigurationError(f"size must be an integer in [1, {_DIGEST_BYTES}]")
    return hashlib.sha256(bytes(label) + material).digest()[:size]


def _count(count: object) -> int:
    """A number of draws: a non-negative integer (numpy's too), else a typed error.

    Why: 2.5 failed as numpy's TypeError deep in a slice, "3" as a comparison
    TypeError, and True was taken as one draw."""
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
        raise ConfigurationError(f"count must be a non-negative integer, not {count!r}")
    return int(count)


def _draws(count: object, what: str = "count") -> int:
    """A number of draws returned at once: :func:`_count`, at most
    :data:`MAX_DRAWS_PER_CALL`, checked before anything is allocated or read."""
    count = _count(count)
    if count > MAX_DRAWS_PER_CALL:
        raise ConfigurationError(
            f"{what} {count} is above {MAX_DRAWS_PER_CALL} (2^32) draws at once: "
            "read a longer stream block by block (word_blocks)"
        )
    return count


class KeyedStream:
    """Uniform random draws from the AES-CTR keystream of a secret 16-byte key."""

    __slots__ = ("_buffer", "_buffer_start", "_key", "_lock", "_position")

    _BLOCK_WORDS = 8192  # small requests are served from one 64 KiB expansion

    def __init__(self, key: bytes | None = None) -> None:
        if key is None:
            key = os.urandom(SEED_BYTES)
        if not isinstance(key, bytes | bytearray) or len(key) != SEED_BYTES:
            raise ConfigurationError(f"a stream key must be {SEED_BYTES} bytes")
        self._key = bytes(key)
        self._position = 0  # next unused 64-bit word
        self._buffer = np.empty(0, dtype=np.uint64)  # words [_buffer_start, +len) of the stream
        self._buffer_start = 0
        # one reader at a time: two threads reading the position at once were both
        # handed the words from it (the same noise twice; measured: one call of 8192
        # words repeated in each of 5 runs of two threads), see words()
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"KeyedStream(position={self._position})"

    @property
    def position(self) -> int:
        """64-bit words consumed so far."""
        return self._position

    def words(self, count: int) -> np.ndarray:
        """``count`` fresh uniform uint64 words (word i of the stream is always the same).

        At most :data:`MAX_DRAWS_PER_CALL` of them (a typed error above it). Safe to
        call from several threads: each call takes its words whole, under the stream's
        lock, so no two calls are handed the same words."""
        count = _draws(count)
        with self._lock:
            return self._take(count)

    def _take(self, count: int) -> np.ndarray:
        """:meth:`words` under the lock (``count`` checked)."""
        if self._position + count > _WORDS_PER_KEY:
            raise ConfigurationError("stream exhausted: use a new key")
        start = self._position - self._buffer_start
        if start + count <= self._buffer.size:  # served from the block already expanded
            out = self._buffer[start : start + count].copy()
        elif count >= self._BLOCK_WORDS:  # large: expand straight into the result
            out = np.empty(count, dtype=np.uint64)
            expand_into(self._key, out, offset=self._position)
        else:  # small: expand the next block, serve from it
            self._buffer = np.empty(self._BLOCK_WORDS, dtype=np.uint64)
            self._buffer_start = self._position
            expand_into(self._key, self._buffer, offset=self._position)
            out = self._buffer[:count].copy()
        self._position += count
        return out

    def word_blocks(self, count: int, block: int) -> Iterator[np.ndarray]:
        """The next ``count`` words, ``block`` at a time (the last block may be shorter).

        The same words as ``words(count)`` would give, without holding them all at once:
        one AES context runs through all the blocks (opening one per block cost a client
        65 µs of its 433 µs rounding at d = 1e5, measured) into one reused buffer. **Each
        yielded array is that buffer**: use it before asking for the next block. The
        position advances as each block is handed out, so a caller that stops early has
        consumed only the blocks it saw.

        A plain method, not a generator function: bad ``count`` or ``block`` (or a
        stream too short) is refused here, at the call, with the stream unchanged; as a
        generator the error came only at the first ``next()``, wherever that was. Reading
        the stream in any other way between two blocks is refused at the next block
        (:class:`~secagg.errors.ConfigurationError`): the blocks' cipher would hand out
        again the words just read. A block holds at most :data:`MAX_DRAWS_PER_CALL`
        words (its buffer is allocated whole); ``count`` is bounded only by the key."""
        count = _count(count)
        if isinstance(block, bool) or not isinstance(block, numbers.Integral) or block < 1:
            raise ConfigurationError(f"block must be a positive integer, not {block!r}")
        block = int(block)
        _draws(min(block, count), "block")  # the buffer of min(block, count) words
        if self._position + count > _WORDS_PER_KEY:
            raise ConfigurationError("stream exhausted: use a new key")
        return self._blocks_from(self._position, count, block)

    def _blocks_from(self, start: int, count: int, block: int) -> Iterator[np.ndarray]:
        """The blocks of :meth:`word_blocks` (arguments checked), from word ``start``."""
        if count == 0:
            return
        buffer = np.empty(min(block, count), dtype=np.uint64)
        raw = memoryview(buffer).cast("B")
        zeros = bytes(raw.nbytes)
        cipher = _stream_at(self._key, start * 8)
        for done in range(0, count, block):
            size = min(block, count - done)
            with self._lock:  # checked and claimed at once: no other reader between
                if self._position != start + done:
                    raise ConfigurationError(
                        "the stream was read between two blocks of word_blocks: its next "
                        "block would repeat those words; ask for new blocks from here"
                    )
                self._position += size
            cipher.update_into(zeros[: size * 8], raw[: size * 8])
            yield buffer[:size]

    def uniform(self, count: int) -> np.ndarray:
        """``count`` floats uniform on the grid ``{k / 2^53 : 0 <= k < 2^53}`` in [0, 1)."""
        return (self.words(count) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def integers(self, upper: int | np.ndarray, count: int | None = None) -> np.ndarray:
        """Uniform integers in ``[0, upper)`` (elementwise for an array), by rejection.

        ``upper`` must lie in ``[1, 2^63]``. A scalar bound needs ``count``; an array of
        bounds (any shape) gives one draw per element, in its shape, and a ``count``
        given with it must equal its size. A scalar bound up to 2^32 uses
        Lemire's multiply-and-shift on 32-bit words (no division); otherwise a
        word ``w`` is accepted when it is below the largest multiple of
        ``upper`` that fits in 64 bits. Either way every value is equally
        likely; rejected lanes draw again.
        """
        # Integers only, checked before any conversion: a bound of 1.5 was truncated to
        # 1 (every draw 0), "3" was taken as 3, and -1 or 2^64 failed as numpy's
        # OverflowError instead of the range error below.
        if np.ndim(upper) == 0:
            if count is None:
                raise ConfigurationError("give count with a scalar upper bound")
            count = _draws(count)  # before the result array is allocated
            if isinstance(upper, np.ndarray) and upper.dtype.kind in "iu":
                upper = upper.item()  # a 0-d integer array
            if isinstance(upper, bool) or not isinstance(upper, numbers.Integral):
                raise ConfigurationError(f"an upper bound is an integer, not {upper!r}")
            if not 1 <= int(upper) <= 1 << 63:
                raise ConfigurationError("upper bounds must lie in [1, 2^63]")
            if int(upper) <= 1 << 32:
                return self._small_integers(int(upper), count)
            bounds = np.full(count, int(upper), dtype=np.uint64)
        else:
            given = np.asarray(upper)
            if given.dtype.kind not in "iu":
                raise ConfigurationError(f"upper bounds are integers, not {given.dtype} values")
            if given.size and (int(given.min()) < 1 or int(given.max()) > 1 << 63):
                raise ConfigurationError("upper bounds must lie in [1, 2^63]")
            # one draw per bound: a count that says otherwise was silently ignored
            if count is not None and _count(count) != given.size:
                raise ConfigurationError(
                    f"count {count!r} disagrees with the {given.size} upper bounds given; "
                    "with an array of bounds, leave count out"
                )
            # flat, reshaped at the end: a 2-D array of bounds failed as numpy's
            # IndexError (the rejection loop indexes positions, not rows)
            out = self._below_each(given.astype(np.uint64).ravel())
            return out.reshape(given.shape)
        return self._below_each(bounds)

    def _below_each(self, bounds: np.ndarray) -> np.ndarray:
        """One uniform integer below each of the flat ``bounds`` (each in [1, 2^63])."""
        # limit = 2^64 - (2^64 mod upper): accept w < limit. Computed without 2^64.
        remainder = (np.uint64(0) - bounds) % bounds  # (2^64 - upper) mod upper
        out = np.empty(bounds.shape, dtype=np.uint64)
        pending = np.arange(bounds.size)
        while pending.size:
            w = self.words(pending.size)
            limit_minus_one = np.uint64(0) - remainder[pending] - np.uint64(1)
            ok = w <= limit_minus_one
            out[pending[ok]] = w[ok] % bounds[pending[ok]]
            pending = pending[~ok]
        return out

    def _small_integers(self, upper: int, count: int) -> np.ndarray:
        """Lemire (2019): ``(w * upper) >> 32`` for 32-bit ``w``, rejecting a thin low band."""
        threshold = np.uint64(((1 << 32) - upper) % upper)
        out = np.empty(count, dtype=np.uint64)
        filled = 0
        while filled < count:
            need = count - filled
            w = self.words((need + 1) // 2).view(np.uint32)[:need].astype(np.uint64)
            product = w * np.uint64(upper)  # < 2^64: both factors are at most 2^32
            ok = (product & np.uint64(0xFFFFFFFF)) >= threshold
            accepted = product[ok] >> np.uint64(32)
            out[filled : filled + accepted.size] = accepted
            filled += accepted.size
        return out

    def bits(self, count: int) -> np.ndarray:
        """``count`` fair bits as a bool array (one word each: simple, not frugal)."""
        return (self.words(count) >> np.uint64(63)).astype(bool)

    def fork(self, label: str | bytes) -> KeyedStream:
        """An independent stream for the purpose ``label`` names, keyed from this one.

        The child's key is :func:`derive` of the label (length-prefixed, so no label is
        a prefix of another's input) and two fresh words of this stream, which are
        consumed: two forks, even under one label, are two streams, and neither repeats
        this stream's later words. The same key forks the same children in the same
        order, so a replayed run stays bit for bit. This is the way to a second stream:
        a copy of this one is refused (see :meth:`__deepcopy__`)."""
        if isinstance(label, str):
            label = label.encode()
        if not isinstance(label, bytes) or not label:
            raise ConfigurationError(
                f"a fork needs a non-empty label (str or bytes) naming its purpose, not {label!r}"
            )
        material = len(label).to_bytes(4, "big") + label + self.words(2).tobytes()
        return KeyedStream(derive(_FORK_LABEL, material))

    def _refuse_duplicate(self, how: str) -> StreamCopyRefused:
        """The refusal of a copy ``how`` names (nothing drawn, nothing of the key shown)."""
        return StreamCopyRefused(
            f"a KeyedStream cannot be {how}: the copy would hand out the same words as the "
            "original (the same noise, rounding or mask twice) and carry its key. For a "
            "second stream use stream.fork(label); where the caller holds a seed on "
            "purpose (a replay, a Ray factory), pass the seed and build "
            "KeyedStream(derive(label, seed)) where the stream is used"
        )

    def __copy__(self) -> KeyedStream:
        """Refused (:class:`~secagg.errors.StreamCopyRefused`): a copy is a twin."""
        raise self._refuse_duplicate("copied (copy.copy)")

    def __deepcopy__(self, memo: dict[int, object]) -> KeyedStream:
        """Refused, as is a deep copy of anything holding a stream: a twin of it."""
        raise self._refuse_duplicate("deep-copied (copy.deepcopy)")

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        """Refused: ``pickle`` (any protocol; Ray's cloudpickle too) would carry the key
        in plain and rebuild a twin wherever it is loaded."""
        raise self._refuse_duplicate("pickled")

    def __reduce__(self) -> tuple[object, ...]:
        raise self._refuse_duplicate("pickled")

    def __getstate__(self) -> object:
        """Refused: the state is the key and the position, a twin's makings."""
        raise self._refuse_duplicate("pickled")


#: the domain of :meth:`KeyedStream.fork`'s child keys
_FORK_LABEL = b"secagg/v1/stream-fork/"
