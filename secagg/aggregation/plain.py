"""The plain backend: float64 vectors summed in the clear, the baseline.

No privacy from the server at all: it sees every update. It exists so that
every other backend can be compared against it in one line, and as the
reference for correctness. The wire format is still versioned and
length-checked, like every contribution.
"""

from __future__ import annotations

import struct

import numpy as np

from secagg.aggregation.base import (
    AggregationBackend,
    AggregationReport,
    AggregationResult,
    ContributionEncoder,
    RoundAggregator,
    admit,
    check_round_size,
    check_update,
    split_parties,
)
from secagg.errors import MalformedMessage, UnknownParty

_MAGIC = b"SAPL"
_VERSION = 1
_HEADER = struct.Struct("<4sBIQ")  # magic, version, party, length


class _PlainEncoder(ContributionEncoder):
    def __init__(self, party: int, dimension: int) -> None:
        self.party = party
        self._dimension = dimension

    def encode(self, update: np.ndarray) -> bytes:
        x = check_update(update, self._dimension)
        header = _HEADER.pack(_MAGIC, _VERSION, self.party, self._dimension)
        return header + x.astype("<f8").tobytes()


class PlainRound(RoundAggregator):
    backend = "plain"

    def __init__(self, num_clients: int, dimension: int) -> None:
        check_round_size(num_clients, dimension)
        self.num_clients = num_clients
        self.dimension = dimension
        self._total = np.zeros(dimension, dtype=np.float64)
        self._magnitude = np.zeros(dimension, dtype=np.float64)  # sum of |x|: the error bound
        self._received: set[int] = set()

    def encoder(self, party: int) -> ContributionEncoder:
        if not 0 <= party < self.num_clients:
            raise UnknownParty(f"client {party} is not in this round")
        return _PlainEncoder(party, self.dimension)

    def receive(self, party: int, contribution: bytes) -> None:
        admit(party, self.num_clients, self._received)
        data = bytes(contribution)
        if len(data) != _HEADER.size + 8 * self.dimension:
            raise MalformedMessage(
                f"a plain contribution is {_HEADER.size + 8 * self.dimension} bytes, "
                f"got {len(data)}"
            )
        magic, version, sender, length = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise MalformedMessage("not a plain contribution of a known version")
        if sender != party or length != self.dimension:
            raise MalformedMessage("contribution header does not match its sender or round")
        vector = np.frombuffer(data, dtype="<f8", offset=_HEADER.size)
        if not np.all(np.isfinite(vector)):
            raise MalformedMessage("contribution holds NaN or infinite values")
        self._total += vector
        self._magnitude += np.abs(vector)
        self._received.add(party)

    def finish(self) -> AggregationResult:
        contributed, dropped = split_parties(self.num_clients, self._received)
        report = AggregationReport(
            backend=self.backend,
            num_clients=self.num_clients,
            dimension=self.dimension,
            contributed=contributed,
            dropped=dropped,
            error_bound=_summation_bound(len(contributed), float(self._magnitude.max())),
            threat_model="none: the server sees every update",
            details={"summation": "float64"},
        )
        return AggregationResult(self._total.copy(), report)


def _summation_bound(count: int, magnitude: float) -> float:
    """Recursive float64 summation of ``count`` terms: |error| <= g/(1-g) * sum |x|, g=(k-1)u."""
    g = max(count - 1, 0) * 2.0**-53
    return g / (1 - g) * magnitude


class PlainBackend(AggregationBackend):
    """Sum in the clear (the baseline)."""

    name = "plain"

    def start_round(self, num_clients: int, dimension: int) -> PlainRound:
        return PlainRound(num_clients, dimension)
