"""The randomized Hadamard rotation, pinned bit for bit to its recorded outputs.

The distributed DP mechanism rounds what ``rotate`` returns and reports what
``unrotate`` returns; recorded runs depend on every bit of both. The digests were
taken from the butterfly of commit 4d645cf, before its stages were reorganised for
speed; a test also runs that butterfly, written out here, against the library's.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from secagg.crypto.stream import KeyedStream
from secagg.encoding import RandomizedHadamard, walsh_hadamard
from secagg.encoding import rotation as rotation_module


def _digest(*arrays_: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays_:
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:32]


def _outputs(dimension: int, label: int) -> list[np.ndarray]:
    x = KeyedStream(bytes([label]) * 16).uniform(dimension) * 2e3 - 1e3
    rotation = RandomizedHadamard(dimension, bytes([label + 1]) * 16)
    y = rotation.rotate(x)
    ints = (KeyedStream(bytes([label + 2]) * 16).words(rotation.padded) >> np.uint64(40)).view(
        np.int64
    ) - (1 << 23)
    return [y, rotation.unrotate(y), rotation.unrotate(y * 3.0 + 0.5), walsh_hadamard(ints)]


#: (dimension, label): sha256 (first 16 bytes, hex) of rotate, unrotate twice and an int64 WHT
PINNED = {
    (1, 1): "115ce6801b6840e67503ae6236437717",
    (2, 2): "c6ad56e617b341637968d29b92f95402",
    (5, 3): "23e4a44d015fc3aee233567ca34339d5",
    (64, 4): "16cc8535a755540a65cc2458cb44d16a",
    (1000, 5): "6730b0ad42b618a6faa84cf8c426e60b",
    (65_536, 6): "bc2a0d135c177c654e8ec87285b848de",
    (100_000, 7): "b2518284691a32772b4290243f993c20",
}


@pytest.mark.parametrize("case", list(PINNED), ids=lambda c: f"d{c[0]}")
def test_rotation_gives_the_recorded_floats(case: tuple[int, int]) -> None:
    assert _digest(*_outputs(*case)) == PINNED[case]


def _butterfly_of_4d645cf(values: np.ndarray) -> np.ndarray:
    """The Walsh-Hadamard transform as the library computed it before: in place on a
    copy, stage h pairs index i (bit h clear) with i + h."""
    a = np.array(values, copy=True)
    b = np.empty_like(a)
    n = a.size
    h = 1
    while h < n:
        src = a.reshape(-1, 2, h)
        dst = b.reshape(-1, 2, h)
        np.add(src[:, 0, :], src[:, 1, :], out=dst[:, 0, :])
        np.subtract(src[:, 0, :], src[:, 1, :], out=dst[:, 1, :])
        a, b = b, a
        h *= 2
    return a


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 12).flatmap(
        lambda m: arrays(
            st.sampled_from([np.float64, np.float32, np.int64, np.int32]),
            1 << m,
            elements=st.integers(-(2**20), 2**20),
        )
    )
)
def test_the_transform_is_the_old_butterfly_bit_for_bit(values: np.ndarray) -> None:
    """Same additions and subtractions, in the same order per coordinate: the same bits,
    the same dtype, and the input left as it was."""
    before = values.copy()
    out = walsh_hadamard(values)
    expected = _butterfly_of_4d645cf(values)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    assert out.tobytes() == expected.tobytes()
    assert np.array_equal(values, before)
    assert not np.shares_memory(out, values)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3000),
    st.binary(min_size=16, max_size=16),
    st.floats(-1e9, 1e9, allow_nan=False),
)
def test_unrotate_is_transform_then_norm_then_signs_bit_for_bit(
    dimension: int, seed: bytes, shift: float
) -> None:
    rotation = RandomizedHadamard(dimension, seed)
    y = KeyedStream(seed).uniform(rotation.padded) * 1e6 - 5e5 + shift
    old = _butterfly_of_4d645cf(y)
    old *= 1.0 / np.sqrt(rotation.padded)
    old *= np.where(KeyedStream(seed).bits(rotation.padded), -1.0, 1.0)
    assert rotation.unrotate(y).tobytes() == old[:dimension].copy().tobytes()


@pytest.mark.parametrize("block", [2, 4, 64, 1 << 15])
@pytest.mark.parametrize("m", [0, 1, 3, 7, 12, 16])
def test_the_cache_blocked_transform_is_the_old_butterfly_at_any_block(
    monkeypatch: pytest.MonkeyPatch, block: int, m: int
) -> None:
    """The passes inside a block run block by block, the rest over the whole vector:
    whatever the split, the same bits as the butterfly."""
    monkeypatch.setattr(rotation_module, "_WHT_BLOCK", block)
    x = KeyedStream(bytes([m, block % 251]) * 8).uniform(1 << m) * 1e3 - 5e2
    assert walsh_hadamard(x).tobytes() == _butterfly_of_4d645cf(x).tobytes()
    ints = (KeyedStream(bytes([m]) * 16).words(1 << m) >> np.uint64(44)).view(np.int64)
    assert walsh_hadamard(ints).tobytes() == _butterfly_of_4d645cf(ints).tobytes()


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 700).flatmap(
        lambda d: arrays(np.float64, d, elements=st.sampled_from([0.0, -0.0, 1.5, -2.25, 1e300]))
    ),
    st.binary(min_size=16, max_size=16),
)
def test_rotate_is_pad_flip_transform_normalise_bit_for_bit(
    values: np.ndarray, seed: bytes
) -> None:
    """Zeros and negative zeros included: the padding is 0.0 times its signs, and a sum of
    -0.0s stays -0.0, so the sign bits of zero outputs are part of the recorded floats."""
    rotation = RandomizedHadamard(values.size, seed)
    padded = np.zeros(rotation.padded)
    padded[: values.size] = values
    padded *= np.where(KeyedStream(seed).bits(rotation.padded), -1.0, 1.0)
    expected = _butterfly_of_4d645cf(padded)
    expected *= 1.0 / np.sqrt(rotation.padded)
    assert rotation.rotate(values).tobytes() == expected.tobytes()


@pytest.mark.parametrize("dimension", [3, 5, 6, 7, 100])
def test_rotating_zeros_keeps_the_sign_bits_of_the_old_padding(dimension: int) -> None:
    """All-zero vectors make the padding's -0.0s visible in the output (a +0.0 padding
    changed the bytes of over half of these cases)."""
    for k in range(12):
        seed = bytes([k, dimension]) * 8
        rotation = RandomizedHadamard(dimension, seed)
        for zeros in (np.zeros(dimension), -np.zeros(dimension)):
            padded = np.zeros(rotation.padded)
            padded[:dimension] = zeros
            padded *= np.where(KeyedStream(seed).bits(rotation.padded), -1.0, 1.0)
            expected = _butterfly_of_4d645cf(padded)
            expected *= 1.0 / np.sqrt(rotation.padded)
            assert rotation.rotate(zeros).tobytes() == expected.tobytes()
