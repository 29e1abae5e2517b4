"""One interface for every aggregation backend: plain, SecAgg, SecAgg+ and CKKS.

Theory of operation
-------------------
A round of aggregation has two halves that may live in different processes:

* a :class:`ContributionEncoder` per client turns that client's float update
  into the *bytes it sends*: the plain vector, a masked ring vector, or CKKS
  ciphertexts; and
* one :class:`RoundAggregator` on the server takes those bytes one client at a
  time (:meth:`~RoundAggregator.receive`), keeping only a running aggregate, and
  at the deadline (:meth:`~RoundAggregator.finish`) yields the float sum of the
  contributions it received and an :class:`AggregationReport` that names who
  contributed and who dropped, in the same form for every backend.

Callers above this layer (runtime, DP pipeline, ledger, benchmarks) hold a
:class:`AggregationBackend` and never branch on which one it is. What differs
is stated, not hidden: each report carries the backend's documented error
bound for the sum (0 for plain float64 summation up to rounding, ``n / scale``
for fixed-point masking, the CKKS noise bound for CKKS) and its threat model in
a sentence.

The masking backends run the multi-phase protocol of :mod:`secagg.protocol`;
here its key phases happen when the round starts and the masked input is the
streamed contribution. A networked deployment drives the protocol's state
machines directly (the runtime does); this interface is the research and
benchmark face of the same code.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from secagg.errors import ConfigurationError, DuplicateMessage, UnknownParty


@dataclass(frozen=True)
class AggregationReport:
    """Who took part in a round and what the sum is worth, for any backend."""

    backend: str
    num_clients: int
    dimension: int
    contributed: tuple[int, ...]
    dropped: tuple[int, ...]
    error_bound: float  # max abs error per coordinate of the returned sum vs the true sum
    threat_model: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AggregationResult:
    """The float sum of the contributions received, and the report."""

    total: np.ndarray
    report: AggregationReport

    def __iter__(self) -> Iterator[Any]:
        """``total, report = aggregate(...)``."""
        return iter((self.total, self.report))


class ContributionEncoder(abc.ABC):
    """A client's half: its update in, the bytes it sends out."""

    party: int

    @abc.abstractmethod
    def encode(self, update: np.ndarray) -> bytes:
        """The contribution for ``update`` (a float vector of the round's dimension)."""


class RoundAggregator(abc.ABC):
    """The server's half of one round: streaming receive, then finish."""

    backend: str
    num_clients: int
    dimension: int

    @abc.abstractmethod
    def encoder(self, party: int) -> ContributionEncoder:
        """The encoder client ``party`` uses (in-process; a deployment ships its config)."""

    @abc.abstractmethod
    def receive(self, party: int, contribution: bytes) -> None:
        """Fold one client's contribution into the running aggregate.

        Raises a :class:`~secagg.errors.SecAggError` subtype, and changes
        nothing, for a malformed, duplicate or foreign contribution.
        """

    @abc.abstractmethod
    def finish(self) -> AggregationResult:
        """Close the round: clients not received are dropped; returns the float sum.

        Raises :class:`~secagg.errors.RoundAborted` when the backend cannot
        give a correct sum (e.g. masking below its threshold).
        """


class AggregationBackend(abc.ABC):
    """A factory of rounds with fixed options (the thing callers configure once)."""

    name: str

    @abc.abstractmethod
    def start_round(self, num_clients: int, dimension: int) -> RoundAggregator:
        """A fresh round for ``num_clients`` clients and vectors of length ``dimension``."""


def check_update(update: np.ndarray, dimension: int) -> np.ndarray:
    """A finite float64 vector of the round's dimension, or a ConfigurationError."""
    x = np.asarray(update, dtype=np.float64)
    if x.shape != (dimension,):
        raise ConfigurationError(f"expected an update of shape ({dimension},), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ConfigurationError("the update contains NaN or infinite values")
    return x


def check_round_size(num_clients: int, dimension: int, minimum_clients: int = 1) -> None:
    if num_clients < minimum_clients:
        raise ConfigurationError(f"a round needs at least {minimum_clients} clients")
    if dimension < 1:
        raise ConfigurationError("the dimension must be at least 1")


def admit(party: int, num_clients: int, received: set[int]) -> None:
    """Refuse a contribution from outside the round or a second one from the same client."""
    if not 0 <= party < num_clients:
        raise UnknownParty(f"client {party} is not in this round")
    if party in received:
        raise DuplicateMessage(f"client {party} already contributed")


def split_parties(num_clients: int, received: Iterable[int]) -> tuple[tuple[int, ...], ...]:
    """(contributed, dropped) as sorted tuples."""
    got = sorted(set(received))
    return tuple(got), tuple(p for p in range(num_clients) if p not in set(got))
