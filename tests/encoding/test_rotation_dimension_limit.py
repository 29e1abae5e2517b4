"""A rotation too large to build is our typed error, checked before any allocation.

``RandomizedHadamard(10**12, seed)`` failed as numpy's MemoryError ("Unable to allocate
8.00 TiB") from its sign draws. A dimension that pads past 2^32 coordinates (the
longest vector a round carries) is now a ConfigurationError naming that limit.
"""

from __future__ import annotations

import pytest

from secagg.encoding.rotation import RandomizedHadamard
from secagg.errors import ConfigurationError

SEED = bytes(range(16))


@pytest.mark.parametrize("dimension", [2**32 + 1, 10**12])
def test_a_dimension_past_the_limit_is_refused_naming_it(dimension: int) -> None:
    with pytest.raises(ConfigurationError, match=r"above the 4294967296 \(2\^32\)"):
        RandomizedHadamard(dimension, SEED)


def test_the_limit_is_the_longest_vector_a_round_carries() -> None:
    from secagg.encoding.rotation import MAX_ROTATION_DIMENSION
    from secagg.protocol.common import MAX_VECTOR_LENGTH

    assert MAX_ROTATION_DIMENSION == MAX_VECTOR_LENGTH
