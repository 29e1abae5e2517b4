"""``smallest_bits`` and ``largest_clients`` answer only the questions they can.

Review (2026-12-06), before this change: ``smallest_bits(2.5, 5)`` truncated the count
to 2 and answered 5, ``smallest_bits(-1, 5)`` answered 4 and
``largest_clients(-3, 32)`` 2^31 - 1, as if a negative count or bound meant something,
``largest_clients(5, 2.9)`` computed for 2 bits, and ``largest_clients(5, 0)`` failed as
a bare ValueError ("negative shift count"). Now each is a ConfigurationError naming
the argument; every integer argument (numpy's too) gives the answer it gave.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.encoding import largest_clients, smallest_bits
from secagg.errors import ConfigurationError

CASES: dict[str, tuple[Callable[[], object], str]] = {
    "fractional clients": (lambda: smallest_bits(2.5, 5), "num_clients must be an integer"),  # type: ignore[arg-type]
    "negative clients": (lambda: smallest_bits(-1, 5), "num_clients must be at least 0"),
    "negative bound (bits)": (lambda: smallest_bits(3, -5), "per_client_bound must be at"),
    "bool clients": (lambda: smallest_bits(True, 5), "num_clients must be an integer"),
    "str bound": (lambda: smallest_bits(3, "5"), "per_client_bound must be an integer"),  # type: ignore[arg-type]
    "negative bound": (lambda: largest_clients(-3, 32), "per_client_bound must be at least 0"),
    "fractional bound": (lambda: largest_clients(2.5, 32), "per_client_bound must be an"),  # type: ignore[arg-type]
    "zero bits": (lambda: largest_clients(5, 0), "bits must be at least 1"),
    "fractional bits": (lambda: largest_clients(5, 2.9), "bits must be an integer"),  # type: ignore[arg-type]
    "bool bits": (lambda: largest_clients(5, True), "bits must be an integer"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_meaningless_argument_is_refused_naming_it(case: str) -> None:
    call, names = CASES[case]
    with pytest.raises(ConfigurationError, match=names):
        call()


@settings(max_examples=40, deadline=None)
@given(
    clients=st.integers(0, 10**6),
    bound=st.integers(0, 2**40),
    bits=st.integers(1, 80),
    numpy_ints=st.booleans(),
)
def test_integer_arguments_give_the_defining_answers(
    clients: int, bound: int, bits: int, numpy_ints: bool
) -> None:
    """The definitions, for Python and numpy integers alike: the fewest bits whose signed
    range holds ``clients * bound``, and the most clients whose sum of ``max(bound, 1)``
    units does."""
    wrap = np.int64 if numpy_ints else int
    width = smallest_bits(wrap(clients), wrap(bound))
    assert clients * bound <= 2 ** (width - 1) - 1
    assert width == 1 or clients * bound > 2 ** (width - 2) - 1
    most = largest_clients(wrap(bound), wrap(bits))
    unit = max(bound, 1)
    assert most * unit <= 2 ** (bits - 1) - 1 < (most + 1) * unit
