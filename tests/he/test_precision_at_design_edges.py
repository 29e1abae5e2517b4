"""The documented CKKS error bound holds at the edges of the chooser's range.

tests/he/test_he.py and test_paired.py measure the bound at the default design point
(precision 10^-6 of a clip of 1, up to 100 clients). Here the design points are those
whose parameters look least like it: two data primes (31 + 31 and 31 + 30 bits: a value
bound of 10^4 and 10^6 near the float floor ``n * C * 2^-44``), one 59-bit prime, a
scale of 2^62 over two 32-bit primes (a bound of 10^-6 at 10^-14), the smallest ring
(N = 2048 at a precision of 0.1), and a bound of 10^3 at 64 clients. At each, every
client sits on the bound, over two chunks (the second short), and the decrypted sum
must be within :meth:`CKKSParameters.error_bound`. Measured (2026-12-05, two keys each):
the worst error was 0.07-0.28 of the bound.

Which vector at the bound is the overflow edge. A coefficient of the encoded polynomial
is ``(2/N) sum_j Re(z_j zeta_j^-k)`` over the N/2 slots, so it reaches ``sqrt(2) C``
(the margin :data:`~secagg.he.params.SLOT_MAGNITUDE` of params.py) only when every slot
``z_j`` (two values, each +-C) is in phase with ``zeta_j^k``. The all-equal vectors do
not do that: a constant slot ``C (1 + i)`` gives coefficients 0 and N/2 the value C
each, so all +C, all -C and (C, -C) sums never come near the margin (they decrypt
within the bound even with the margin removed: measured). SEAL orders slot j at the
root ``zeta^(3^j)``; at k = N/4 that root's phase is pi/4 for even j and 3 pi/4 for odd
j, so the values ``C, C, -C, C`` repeated put ``sqrt(2) n C`` into coefficient N/4 of
the sum. With the margin removed (the chooser then takes 26 bits instead of 27 at
n = 30, 46 instead of 47 at n = 100) that sum wraps and decrypts 10^2-10^8 times the
bound away; with it, within 0.2 of the bound.
"""

from __future__ import annotations

import numpy as np
import pytest

import secagg.he.params as params_module
from secagg.he import choose_parameters
from secagg.he.keys import KeyHolder
from secagg.he.vectors import EncryptedSum, encrypt_vector

#: (clients, value bound, precision) and the data primes the chooser gives them
DESIGN_EDGES = {
    (2, 1e4, 2e-9): (31, 31),
    (2, 1e6, 3e-7): (31, 30),
    (3, 1.0, 2e-12): (59,),
    (2, 1e-6, 1e-14): (32, 32),
    (30, 1.0, 0.1): (27,),
    (64, 1e3, 1e-3): (46,),
    (8, 1e-3, 1e-9): (48,),
}


def _patterns(bound: float, d: int) -> list[np.ndarray]:
    """All +C, all -C, (C, -C) alternating, and the overflow edge (C, C, -C, C) and its
    negation: the one whose sum's coefficient N/4 is sqrt(2) n C (module docstring)."""
    return [
        np.full(d, bound),
        -np.full(d, bound),
        np.resize([bound, -bound], d),
        np.resize([bound, bound, -bound, bound], d),
        np.resize([-bound, -bound, bound, -bound], d),
    ]


def _worst_error(holder: KeyHolder, clients: int, pattern: np.ndarray) -> float:
    public = holder.public_context()
    total = EncryptedSum(public, pattern.size)
    for _ in range(clients):  # independent encryptions, as the bound assumes
        total.add(encrypt_vector(public, pattern))
    out = holder.decrypt_aggregate(total.to_chunks(), dimension=pattern.size)
    return float(np.max(np.abs(out - clients * pattern)))


@pytest.mark.parametrize("point", list(DESIGN_EDGES), ids=lambda p: f"n{p[0]}-C{p[1]:g}-{p[2]:g}")
def test_sums_at_the_bound_decrypt_within_the_documented_error(
    point: tuple[int, float, float],
) -> None:
    clients, bound, precision = point
    params = choose_parameters(clients, bound, precision)
    assert params.coeff_mod_bit_sizes[:-1] == DESIGN_EDGES[point]
    assert params.error_bound(clients) <= precision
    holder = KeyHolder(params, min_contributions=1)
    for pattern in _patterns(bound, params.values_per_ciphertext + 3):
        error = _worst_error(holder, clients, pattern)
        assert error <= params.error_bound(clients), (error, params.error_bound(clients))


def test_the_slot_margin_is_what_the_overflow_edge_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the sqrt(2) of a slot's two values the chooser takes one bit less, and the
    edge pattern's sum wraps; the all-equal vectors would not have shown it."""
    monkeypatch.setattr(params_module, "SLOT_MAGNITUDE", 1.0)
    params = choose_parameters(30, 1.0, 0.1)
    assert params.coeff_mod_bit_sizes[:-1] == (26,)  # 27 with the margin
    holder = KeyHolder(params, min_contributions=1)
    bound, d = params.error_bound(30), params.values_per_ciphertext
    edge, *_ = _patterns(1.0, d)[3:]
    assert _worst_error(holder, 30, edge) > 100 * bound  # wrapped
    assert _worst_error(holder, 30, np.full(d, 1.0)) <= bound  # all-equal: no sign of it
