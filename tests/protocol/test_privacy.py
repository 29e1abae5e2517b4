"""What the server sees: masked inputs look uniform, and it never stores them.

The chi-square thresholds are the 1 - 1e-6 quantiles (Wilson-Hilferty), so each
check has a one-in-a-million false-alarm rate; an unmasked or badly masked input
(e.g. an all-zero vector, the worst case used here) fails them by orders of
magnitude.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from _harness import SteppedRound

from secagg.protocol import ServerPhase
from secagg.protocol.messages import MaskedInput

Z_ONE_IN_A_MILLION = 4.753


def chi_square_limit(dof: int, z: float = Z_ONE_IN_A_MILLION) -> float:
    """Upper quantile of chi-square(dof) by the Wilson-Hilferty approximation."""
    c = 2.0 / (9.0 * dof)
    return dof * (1.0 - c + z * math.sqrt(c)) ** 3


def chi_square_uniform(values: np.ndarray, bins: int) -> float:
    counts = np.bincount(values, minlength=bins).astype(np.float64)
    expected = len(values) / bins
    return float(((counts - expected) ** 2 / expected).sum())


def masked_inputs_of(r: SteppedRound) -> list[MaskedInput]:
    while r.server.phase != ServerPhase.MASKED_INPUT:
        r.step()
    return [m for m in r.clients_reply() if isinstance(m, MaskedInput)]


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("graph", ["complete", "harary"])
def test_a_single_masked_input_is_indistinguishable_from_uniform(bits, graph):
    d = 1 << 16
    # k = 4: the sparsest graph a client with the default policy accepts at n = 6
    r = SteppedRound(6, d, bits=bits, graph=graph, k=4 if graph == "harary" else None)
    r.clients[0]._input = np.zeros(d, dtype=r.inputs.dtype)  # worst case: all zeros
    y = masked_inputs_of(r)[0]
    assert y.sender == 0
    words = y.vector.astype(np.uint64)
    shift = bits - 8
    limit = chi_square_limit(255)
    for name, sample in (
        ("top byte", (words >> np.uint64(shift)).astype(np.int64)),
        ("low byte", (words & np.uint64(0xFF)).astype(np.int64)),
    ):
        stat = chi_square_uniform(sample, 256)
        assert stat < limit, f"{name}: chi2 = {stat:.0f} >= {limit:.0f}"
    # bits are balanced at every position
    for bit in range(bits):
        ones = int(((words >> np.uint64(bit)) & np.uint64(1)).sum())
        z = (ones - d / 2) / math.sqrt(d / 4)
        assert abs(z) < 5.9, (bit, z)  # 1e-6 over all 64 positions (Bonferroni)
    # and consecutive words are not correlated
    pairs = (words[:-1] >> np.uint64(bits - 4)) * 16 + (words[1:] >> np.uint64(bits - 4))
    assert chi_square_uniform(pairs.astype(np.int64), 256) < limit


def test_the_chi_square_check_catches_an_unmasked_input():
    """The statistic above would flag a vector that is not masked (the test can fail)."""
    d = 1 << 16
    structured = (np.arange(d, dtype=np.uint64) * 7919) % 200  # skewed low byte
    assert chi_square_uniform(structured.astype(np.int64), 256) > chi_square_limit(255)


def test_masked_inputs_of_identical_vectors_differ():
    r = SteppedRound(4, 1024)
    for client in r.clients:
        client._input = np.zeros(1024, dtype=np.uint32)
    ys = masked_inputs_of(r)
    assert len({y.vector.tobytes() for y in ys}) == len(ys)


def _server_peak_bytes(n: int, d: int) -> tuple[int, int]:
    """Peak memory allocated while the server collects n masked inputs and unmasks."""
    r = SteppedRound(n, d, graph="harary", k=6, threshold=4)  # accepted at n = 8 and 32
    inputs = masked_inputs_of(r)  # created by the clients, before tracing starts
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        base, _ = tracemalloc.get_traced_memory()
        dropped = inputs[1]  # one dropout, so unmasking also rebuilds a mask key
        for message in inputs:
            if message is not dropped:
                r.server_receives([message], close=False)
        r.server_receives([], close=True)
        while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            r.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.server.phase == ServerPhase.COMPLETE
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
    return peak - base, d * r.inputs.dtype.itemsize


def test_server_memory_is_one_vector_not_one_per_client():
    d = 250_000  # 1 MB per vector
    small_peak, vector_bytes = _server_peak_bytes(8, d)
    large_peak, _ = _server_peak_bytes(32, d)
    # the accumulator plus a chunk of keystream, whatever the number of clients
    assert small_peak < 2 * vector_bytes, small_peak
    assert large_peak < 2 * vector_bytes, large_peak
    # 24 more clients would cost 24 MB if vectors were kept; allow only key-sized growth
    assert large_peak - small_peak < vector_bytes // 4
