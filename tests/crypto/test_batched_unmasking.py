"""The array paths a server unmasks through, against the object paths word for word.

The server decodes each reveal into one array (``shamir.decode_share_values``),
reconstructs every secret of a kind from arrays (``shamir.reconstruct_arrays``) and
opens all its AES contexts with one counter block (``prg._streams_at``). Each must
give exactly what the one-at-a-time path gives: the same values, the same secrets,
the same keystream, and the same refusals.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.crypto import prg, shamir
from secagg.errors import SecretSharingError


@given(
    st.integers(1, 9).flatmap(
        lambda limbs: st.tuples(
            st.just(limbs),
            st.lists(
                st.lists(st.integers(0, shamir.PRIME - 1), min_size=limbs, max_size=limbs),
                max_size=40,
            ),
        )
    ),
    st.integers(1, 5000),
)
def test_share_values_decoded_as_one_array_equal_the_share_objects(
    case: tuple[int, list[list[int]]], x: int
) -> None:
    limbs, rows = case
    encodings = [shamir.Share(x, tuple(row)).to_bytes() for row in rows]
    values = shamir.decode_share_values(encodings, limbs)
    assert values.shape == (len(rows), limbs)
    assert values.tolist() == [list(shamir.Share.from_bytes(x, e).values) for e in encodings]


@given(st.integers(0, 20), st.integers(1, 9), st.integers(shamir.PRIME, 2**32 - 1))
def test_share_values_decoded_together_name_the_bad_one(count: int, limbs: int, bad: int) -> None:
    encodings = [shamir.Share(3, tuple(range(1, limbs + 1))).to_bytes() for _ in range(count + 2)]
    corrupt = bytearray(encodings[count])
    corrupt[-4:] = bad.to_bytes(4, "little")
    with pytest.raises(SecretSharingError, match=f"share {count}: value outside the field"):
        shamir.decode_share_values([*encodings[:count], bytes(corrupt), *encodings[count:]], limbs)
    with pytest.raises(SecretSharingError, match=f"share {count}: "):
        shamir.decode_share_values([*encodings[:count], encodings[count][:-4]], limbs)
    with pytest.raises(SecretSharingError, match="at least one limb"):
        shamir.decode_share_values([], 0)
    assert shamir.decode_share_values([], limbs).shape == (0, limbs)


def _smallest_points(shares: list[shamir.Share], t: int) -> list[shamir.Share]:
    return sorted(shares, key=lambda s: s.x)[:t]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_secrets_from_arrays_equal_secrets_from_share_objects(data) -> None:
    """Secrets held at different point sets (SecAgg+) or all at the same one (the
    complete graph), some of them with a forged share: the arrays of each secret's t
    smallest points give the bytes, or the refusal, that ``reconstruct_many`` gives for
    those t shares; given every share, ``reconstruct_many`` gives the same bytes when
    none is forged (it checks the extras against the t: a forged set is refused)."""
    t = data.draw(st.integers(1, 6))
    size = data.draw(st.sampled_from([1, 4, 16, 32]))
    same_points = data.draw(st.booleans())
    fixed = data.draw(st.lists(st.integers(1, 3000), min_size=t + 3, max_size=t + 3, unique=True))
    share_sets: list[list[shamir.Share]] = []
    forged: list[bool] = []
    for _ in range(data.draw(st.integers(1, 8))):
        if same_points:
            xs = fixed
        else:
            n = data.draw(st.integers(t, t + 4))
            xs = data.draw(st.lists(st.integers(1, 3000), min_size=n, max_size=n, unique=True))
        shares = shamir.split(data.draw(st.binary(min_size=size, max_size=size)), t, xs)
        subset = data.draw(st.permutations(shares))[: data.draw(st.integers(t, len(xs)))]
        if data.draw(st.booleans()):  # a forged (in-field) value somewhere in the set
            i = data.draw(st.integers(0, len(subset) - 1))
            values = list(subset[i].values)
            values[0] = (values[0] + data.draw(st.integers(1, shamir.PRIME - 1))) % shamir.PRIME
            subset[i] = shamir.Share(subset[i].x, tuple(values))
        share_sets.append(subset)
        forged.append(subset is not shares and any(s not in shares for s in subset))
    picked = [_smallest_points(s, t) for s in share_sets]
    points = np.array([[s.x for s in p] for p in picked], dtype=np.int64)
    values = np.array([[s.values for s in p] for p in picked], dtype=np.uint32)
    try:
        expected: list[bytes] | str = shamir.reconstruct_many(picked, t, size)
    except SecretSharingError as exc:
        expected = str(exc)
    if not any(forged):
        assert shamir.reconstruct_many(share_sets, t, size) == expected
    try:
        got: list[bytes] | str = shamir.reconstruct_arrays(points, values, size)
    except SecretSharingError as exc:
        got = str(exc)
    assert got == expected


def test_secrets_from_arrays_refuse_bad_points_and_shapes() -> None:
    shares = shamir.split(b"k" * 16, 2, [1, 2, 3])
    values = np.array([[s.values for s in shares[:2]]], dtype=np.uint32)
    assert shamir.reconstruct_arrays(np.array([[1, 2]]), values, 16) == [b"k" * 16]
    with pytest.raises(SecretSharingError, match="duplicate"):
        shamir.reconstruct_arrays(np.array([[2, 2]]), values, 16)
    for bad in (0, shamir.PRIME, -1):
        with pytest.raises(SecretSharingError, match=r"\[1, p\)"):
            shamir.reconstruct_arrays(np.array([[1, bad]]), values, 16)
    with pytest.raises(SecretSharingError, match="shape"):
        shamir.reconstruct_arrays(np.array([[1, 2]]), values, 32)
    with pytest.raises(SecretSharingError, match="shape"):
        shamir.reconstruct_arrays(np.array([1, 2]), values, 16)
    with pytest.raises(SecretSharingError, match="outside the field"):
        shamir.reconstruct_arrays(np.array([[1, 2]]), values | np.uint32(1 << 31), 16)
    assert shamir.reconstruct_arrays(np.empty((0, 2)), np.empty((0, 2, 5)), 16) == []


def _keystream(seed: bytes, byte_offset: int, length: int) -> bytes:
    """Bytes ``byte_offset .. +length`` of AES-CTR(seed) from a counter of 0, straight
    from ``cryptography``: the 128-bit big-endian counter wraps modulo 2^128."""
    block, skip = divmod(byte_offset, 16)
    counter = (block % (1 << 128)).to_bytes(16, "big")
    stream = Cipher(algorithms.AES(seed), modes.CTR(counter)).encryptor()
    return stream.update(bytes(skip + length))[skip:]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=16, max_size=16), max_size=6),
    st.one_of(
        st.integers(0, 1 << 40),
        st.integers((1 << 132) - 64, (1 << 132) + 64),  # across the counter's wrap
    ),
    st.integers(0, 300),
)
def test_streams_opened_together_are_each_seeds_keystream(
    seeds: list[bytes], byte_offset: int, length: int
) -> None:
    streams = prg._streams_at(seeds, byte_offset)
    assert len(streams) == len(seeds)
    for seed, stream in zip(seeds, streams, strict=True):
        assert stream.update(bytes(length)) == _keystream(seed, byte_offset, length)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 3 * prg._CHUNK_BYTES // 4 + 9),
    st.integers(0, 12),
    st.integers(0, 12),
    st.integers(0, 1 << 36),
    st.sampled_from([np.uint32, np.uint64]),
)
@example(3 * prg._CHUNK_BYTES // 4 + 9, 7, 5, 3, np.uint32)  # four chunks, a ragged last one
@example(prg._CHUNK_BYTES // 8 + 1, 2, 9, (1 << 36) + 1, np.uint64)
def test_mask_sums_equal_the_aes_keystreams_added_one_by_one(
    length: int, adds: int, subtracts: int, offset: int, dtype: type
) -> None:
    """Many masks of both signs at any word offset, over several chunks: the
    accumulator gets each seed's keystream words, read little-endian, added or
    subtracted modulo 2^bits, exactly as built from ``cryptography`` alone."""
    add = [os.urandom(16) for _ in range(adds)]
    subtract = [os.urandom(16) for _ in range(subtracts)]
    width = np.dtype(dtype).itemsize
    start = np.frombuffer(os.urandom(length * width), dtype=dtype).copy()
    expected = start.copy()
    for seeds, sign in ((add, 1), (subtract, -1)):
        for seed in seeds:
            words = np.frombuffer(_keystream(seed, offset * width, length * width), dtype=dtype)
            expected = expected + words if sign > 0 else expected - words
    got = prg.accumulate_masks(start, add, subtract, offset)
    assert got.dtype == np.dtype(dtype)
    assert np.array_equal(got, expected)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_row_that_gives_no_secret_is_none_and_the_others_are_unchanged(data) -> None:
    """``try_reconstruct_arrays``: a row whose shares combine to no secret (here a wrong
    top limb: it holds the secret's last bits only) is ``None``; every other row gives
    the bytes ``reconstruct_arrays`` gives, which raises for the batch instead."""
    t = data.draw(st.integers(1, 5))
    size = data.draw(st.sampled_from([16, 32]))
    rows = data.draw(st.integers(1, 6))
    xs = list(range(1, t + 1))
    secrets_ = [data.draw(st.binary(min_size=size, max_size=size)) for _ in range(rows)]
    values = np.array(
        [[s.values for s in shamir.split(secret, t, xs)] for secret in secrets_], dtype=np.uint32
    )
    points = np.array([xs] * rows, dtype=np.int64)
    bad = data.draw(st.integers(0, rows - 1))
    values[bad, 0, -1] = (int(values[bad, 0, -1]) + (1 << 20)) % shamir.PRIME
    expected: list[bytes | None] = list(secrets_)
    expected[bad] = None
    assert shamir.try_reconstruct_arrays(points, values, size) == expected
    with pytest.raises(SecretSharingError, match="inconsistent shares"):
        shamir.reconstruct_arrays(points, values, size)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_decoding_finds_exactly_the_wrong_shares_within_half_the_spare_ones(data) -> None:
    """``locate_errors``: up to (m - t) // 2 wrong shares, each wrong in any limbs by
    any amounts, are found exactly; the shares left give the secret."""
    t = data.draw(st.integers(1, 8))
    m = data.draw(st.integers(t, t + 14))
    size = data.draw(st.sampled_from([16, 32]))
    xs = data.draw(st.lists(st.integers(1, 5000), min_size=m, max_size=m, unique=True))
    secret = data.draw(st.binary(min_size=size, max_size=size))
    values = np.array([s.values for s in shamir.split(secret, t, xs)], dtype=np.int64)
    bad = data.draw(st.sets(st.integers(0, m - 1), max_size=(m - t) // 2))
    for i in bad:
        limbs = data.draw(st.sets(st.integers(0, values.shape[1] - 1), min_size=1))
        for limb in limbs:
            values[i, limb] = (values[i, limb] + data.draw(st.integers(1, shamir.PRIME - 1))) % (
                shamir.PRIME
            )
    wrong = shamir.locate_errors(np.array(xs), values, t)
    assert wrong is not None
    assert set(np.flatnonzero(wrong).tolist()) == bad
    good = np.flatnonzero(~wrong)[:t]
    (got,) = shamir.reconstruct_arrays(np.array(xs)[good][None, :], values[good][None, :], size)
    assert got == secret


def test_decoding_declines_what_it_cannot_decode() -> None:
    xs = list(range(1, 8))
    values = np.array([s.values for s in shamir.split(b"s" * 16, 3, xs)], dtype=np.int64)
    values[[0, 1, 2], 0] = (values[[0, 1, 2], 0] + 5) % shamir.PRIME  # 3 > (7 - 3) // 2
    found = shamir.locate_errors(np.array(xs), values, 3)
    assert found is None or int(found.sum()) <= 2  # never the truth: another codeword
    assert shamir.locate_errors(np.array([1, 1, 2]), values[:3], 2) is None
    too_many = np.arange(1, shamir.MAX_DECODE_SHARES + 2)
    assert shamir.locate_errors(too_many, np.zeros((len(too_many), 5), dtype=np.int64), 3) is None
