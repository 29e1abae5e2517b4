"""A masking round with noise shares reports a finite error bound for its noised sum.

The report said ``error_bound = inf`` for such a round ("the DP noise is unbounded"),
as if nothing could be said of the sum. The noise is the release, not an error: what
the ring and the floats add to the *noised* sum (the clipped updates plus the unrotated
noise shares as drawn) is bounded as for a sum without noise, except when the noised
sum wraps the ring in a coordinate, a planned tail event the report names. Checked
here in exact arithmetic (fractions): the clients' encoding is replayed from the same
keyed streams, so the noise each drew is known exactly, and the rotation's
``1 / sqrt(d')`` is rational because every padded length used is a power of four.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from secagg.aggregation.local import run_local_round
from secagg.aggregation.masking import MaskingBackend
from secagg.crypto.stream import KeyedStream
from secagg.dp.clipping import clip_l2
from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound
from secagg.dp.noise import discrete_gaussian
from secagg.encoding.rotation import RandomizedHadamard, walsh_hadamard
from secagg.errors import ConfigurationError

SEED = bytes(range(16))


def _key(label: bytes) -> bytes:
    """A 16-byte stream key from a label (a test's streams replay)."""
    return hashlib.sha256(label).digest()[:16]


def _replayed_shares(
    ddg: DistributedDiscreteGaussian, rows: np.ndarray, key: bytes
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Each client's rounded update and noise share (integers), and the words it sent,
    drawn as :meth:`DistributedDiscreteGaussian.encode` draws them from one stream the
    clients read in turn (as ``run_local_round`` hands its ``rounding`` stream on)."""
    stream = KeyedStream(_key(key))
    rotation = RandomizedHadamard(ddg.dimension, SEED)
    rounded_rows, noise_rows = [], []
    total = np.zeros(ddg.padded, dtype=ddg.word_dtype)
    for row in rows:
        scaled = clip_l2(rotation.rotate(row), ddg.vector_bound).vector * ddg.scale
        rounded = ddg.round_within_bound(scaled, stream)
        noise = discrete_gaussian(Fraction(ddg.local_sigma) ** 2, ddg.padded, stream)
        total += ddg._to_ring(rounded + noise, stream)  # wraps as the masked sum does
        rounded_rows.append(rounded)
        noise_rows.append(noise)
    return rounded_rows, noise_rows, total


def _exact_noised_error(
    ddg: DistributedDiscreteGaussian, rows: np.ndarray, decoded: np.ndarray, noise: np.ndarray
) -> Fraction:
    """The largest exact distance of ``decoded`` from the clients' updates plus the
    unrotated noise ``sign_j (H N)_j / (sqrt(d') scale)``."""
    root = math.isqrt(ddg.padded)
    assert root * root == ddg.padded, "the padded length must be a power of four"
    # Sylvester's +-1 matrix, checked against the transform the decoding runs
    hadamard = [[(-1) ** (i & j).bit_count() for i in range(ddg.padded)] for j in range(ddg.padded)]
    unit = np.zeros(ddg.padded)
    unit[ddg.padded - 1] = 1.0
    assert walsh_hadamard(unit).tolist() == [row[ddg.padded - 1] for row in hadamard]
    signs = RandomizedHadamard(ddg.dimension, SEED)._signs
    total_noise = [sum(int(n[i]) for n in noise) for i in range(ddg.padded)]
    scale = Fraction(ddg.scale)
    worst = Fraction(0)
    for j in range(ddg.dimension):
        transformed = sum(hadamard[j][i] * total_noise[i] for i in range(ddg.padded))
        unrotated = int(signs[j]) * Fraction(transformed, root) / scale
        updates = sum(Fraction(float(row[j])) for row in rows)
        worst = max(worst, abs(Fraction(float(decoded[j])) - updates - unrotated))
    return worst


def _wrapped(ddg: DistributedDiscreteGaussian, rounded: list, noise: list) -> bool:
    """Whether the exact noised integer sum left the ring's signed range anywhere."""
    half = 1 << (ddg.bits - 1)
    for i in range(ddg.padded):
        exact = sum(int(r[i]) for r in rounded) + sum(int(n[i]) for n in noise)
        if not -half <= exact < half:
            return True
    return False


def _within_clip(rows: np.ndarray, clip: float) -> np.ndarray:
    return np.stack([clip_l2(row, clip).vector for row in rows])


def test_a_noised_round_reports_a_finite_bound_that_holds_in_exact_arithmetic() -> None:
    clients, dimension = 6, 16
    ddg = DistributedDiscreteGaussian(
        dimension=dimension, clip=1.0, noise_multiplier=1.0, expected_clients=clients, bits=32
    )
    share = NoiseShareRound(ddg, SEED)
    generator = KeyedStream(_key(b"rows of the noised round"))
    rows = _within_clip(generator.uniform(clients * dimension).reshape(clients, -1) - 0.5, 1.0)
    key = b"the clients' rounding and noise"
    result = run_local_round(
        MaskingBackend(graph="complete"),
        rows,
        rounding=KeyedStream(_key(key)),
        plan_options={"noise_share": share},
    )
    rounded, noise, words = _replayed_shares(ddg, rows, key)
    np.testing.assert_array_equal(ddg.decode(words, SEED), result.total)  # the replay is the round
    assert not _wrapped(ddg, rounded, noise)
    bound = result.report.error_bound
    assert math.isfinite(bound) and bound == ddg.decode_error_bound(clients)
    error = _exact_noised_error(ddg, rows, result.total, noise)
    assert 0 < error <= Fraction(bound)
    # the bound is of the arithmetic, far below the noise it does not count
    assert bound < 1e-3 * ddg.sum_stddev(clients)
    assert "wrap" in result.report.details["error_bound_holds"]


@settings(max_examples=60, deadline=None)
@given(
    clients=st.integers(1, 40),
    padded_log4=st.integers(1, 4),
    trim=st.integers(0, 3),
    bits=st.sampled_from([20, 32, 48, 64]),
    clip=st.floats(1e-3, 1e3),
    multiplier=st.floats(0.3, 4.0),
    key=st.binary(min_size=1, max_size=8),
    direction=st.sampled_from(["random", "aligned"]),
)
def test_the_decoded_noised_sum_lies_within_the_bound_unless_the_ring_wrapped(
    clients: int,
    padded_log4: int,
    trim: int,
    bits: int,
    clip: float,
    multiplier: float,
    key: bytes,
    direction: str,
) -> None:
    padded = 4**padded_log4
    dimension = max(padded // 2 + 1, padded - trim)  # pads back to ``padded``
    try:
        ddg = DistributedDiscreteGaussian(
            dimension=dimension,
            clip=clip,
            noise_multiplier=multiplier,
            expected_clients=clients,
            bits=bits,
        )
    except ConfigurationError:  # a ring too small for these clients: no round to check
        assume(False)
    generator = KeyedStream(_key(b"rows" + key))
    if direction == "aligned":  # every client at the clip, in one direction
        rows = np.tile(generator.uniform(dimension) - 0.5, (clients, 1))
    else:
        rows = generator.uniform(clients * dimension).reshape(clients, -1) - 0.5
    rows = np.stack([row / np.linalg.norm(row) * clip for row in rows])
    rows = _within_clip(rows, clip)
    rounded, noise, words = _replayed_shares(ddg, rows, key)
    assume(not _wrapped(ddg, rounded, noise))
    error = _exact_noised_error(ddg, rows, ddg.decode(words, SEED), noise)
    assert error <= Fraction(ddg.decode_error_bound(clients))
