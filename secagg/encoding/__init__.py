"""Encoding between float model updates and the ring Z_{2^b} the secure sum works in.

:class:`FixedPoint` scales, rounds stochastically (unbiased, from a keyed
cipher stream) and wraps into the ring; it also refuses configurations whose
sum could overflow. :class:`RandomizedHadamard` is the seeded orthogonal
rotation the distributed DP mechanism applies before rounding.
"""

from secagg.encoding.fixed_point import (
    SUPPORTED_BITS,
    FixedPoint,
    largest_clients,
    smallest_bits,
    stochastic_round,
)
from secagg.encoding.rotation import RandomizedHadamard, padded_dimension, walsh_hadamard

__all__ = [
    "SUPPORTED_BITS",
    "FixedPoint",
    "RandomizedHadamard",
    "largest_clients",
    "padded_dimension",
    "smallest_bits",
    "stochastic_round",
    "walsh_hadamard",
]
