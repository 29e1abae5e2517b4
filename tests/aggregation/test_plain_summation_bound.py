"""The plain backend's reported error bound holds in exact arithmetic, its own rounding
included.

Recursive float64 summation of ``k`` terms errs by at most ``gamma_{k-1}·Σ|x|``, with
``gamma_n = n·u / (1 - n·u)`` and ``u = 2⁻⁵³``. Before, the report computed that bound in
float64 (three roundings, each possibly down) from the server's *float64* sum of the
magnitudes, which may itself lie below the exact ``Σ|x|``: an exact-arithmetic search
reached 0.9999983 of the reported bound, and the reported bound fell below the theorem's
own value for the round's exact ``Σ|x|``. Now the bound is computed exactly (fractions),
allows for the magnitude's own rounding (``Σ|x| ≤ M̂ / (1 - gamma)``), and is rounded up.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.aggregation.plain import PlainBackend, _summation_bound

U = Fraction(1, 2**53)


def _gamma(terms: int) -> Fraction:
    """gamma_{k-1} of recursive summation of ``terms`` terms (the first add, to 0, is exact)."""
    g = max(terms - 1, 0) * U
    return g / (1 - g)


def _round(updates: list[list[float]]) -> tuple[np.ndarray, float]:
    """A plain round of these updates through the server session: (its sum, its bound)."""
    backend = PlainBackend()
    spec = backend.plan(len(updates), len(updates[0]))
    server = backend.server(spec)
    server.start()
    for party, update in enumerate(updates):
        (payload,) = backend.open_client(spec, party, rounding=None, policy=None).set_input(
            np.asarray(update, dtype=np.float64)
        )
        server.handle(party, payload)
    result = server.finish()
    return result.total, result.report.error_bound


_values = st.floats(
    min_value=-1e290, max_value=1e290, allow_nan=False, allow_infinity=False, width=64
)


@st.composite
def _updates(draw: st.DrawFn) -> list[list[float]]:
    clients = draw(st.integers(min_value=1, max_value=24))
    dimension = draw(st.integers(min_value=1, max_value=3))
    # values of wildly different sizes, and near-cancelling ones: where rounding bites
    scale = draw(st.sampled_from([1.0, 1e-300, 1e16, 3.0]))
    row = st.lists(
        _values.map(lambda v: v * scale if abs(v * scale) < 1e290 else v),
        min_size=dimension,
        max_size=dimension,
    )
    return draw(st.lists(row, min_size=clients, max_size=clients))


@settings(max_examples=400, deadline=None)
@given(updates=_updates())
@example(updates=[[1.0], [2.0**-53], [2.0**-53]])
@example(updates=[[1.0 - 2.0**-53], [1.0 - 2.0**-53], [2.0**-52 + 2.0**-104]])
def test_the_reported_bound_covers_the_exact_error_and_the_theorems_bound(
    updates: list[list[float]],
) -> None:
    total, bound = _round(updates)
    terms = len(updates)
    for j in range(len(updates[0])):
        exact = sum((Fraction(u[j]) for u in updates), Fraction(0))
        assert abs(Fraction(float(total[j])) - exact) <= Fraction(bound)
        # the theorem's bound for this coordinate's exact magnitude, in exact arithmetic
        magnitude = sum((Fraction(abs(u[j])) for u in updates), Fraction(0))
        assert _gamma(terms) * magnitude <= Fraction(bound)


@settings(max_examples=1000, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=10**6),
    magnitude=st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
)
@example(count=2, magnitude=1.0)
@example(count=3, magnitude=5e-324)
@example(count=10**6, magnitude=1.7976931348623157e308)
def test_the_bound_allows_for_the_magnitudes_rounding_and_its_own(
    count: int, magnitude: float
) -> None:
    """For a float64 magnitude M̂ of ``count`` terms, the exact Σ|x| is at most
    M̂ / (1 - gamma); the reported bound is at least gamma times that, exactly."""
    bound = _summation_bound(count, magnitude)
    gamma = _gamma(count)
    needed = gamma * Fraction(magnitude) / (1 - gamma)
    assert math.isinf(bound) or Fraction(bound) >= needed
    if count <= 1:
        assert bound == 0.0  # one term: 0 + x is exact
    elif math.isfinite(bound):
        # safe, not wasteful: within a few ulps of the exact value
        assert Fraction(bound) <= needed * (1 + 4 * U) + Fraction(5e-324)


def test_a_magnitude_that_overflowed_reports_an_infinite_bound() -> None:
    """Finite contributions whose magnitudes overflow while their sum does not: the
    bound is infinite (honest: the error cannot be bounded from an infinite M̂)."""
    assert _summation_bound(3, math.inf) == math.inf
    big = 1.5e308
    total, bound = _round([[big], [-big], [big]])
    assert total[0] == big and bound == math.inf
