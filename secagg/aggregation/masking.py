"""The masking backends: SecAgg (complete graph) and SecAgg+ (Harary graph).

Floats are encoded to fixed point in Z_{2^b} (:class:`~secagg.encoding.FixedPoint`,
stochastic rounding from a keyed stream), masked by the protocol's clients and
summed by its server as they arrive; the server learns only the sum of the
contributions it received (honest-but-curious server; see docs/protocol.md for
the threat model). Decoding is exact on the integers: the float result is off
from the true sum only by the clients' rounding, less than ``1 / scale`` each,
and the float64 reading of the integer sum (half an ulp), so the documented
bound is ``contributors * (1 / scale + value_bound * 2^-52)`` per coordinate.

The scale is chosen from ``value_bound`` (a bound on every coordinate of every
update, e.g. the L2 clip) as the largest power of two whose sum over the
round's clients cannot wrap (:meth:`FixedPoint.check_headroom`). An update
that exceeds ``value_bound`` is refused by its encoder rather than silently
wrapped.

The protocol's key phases run when the round starts; the streamed contribution
is the client's :class:`~secagg.protocol.messages.MaskedInput` in wire bytes.
At :meth:`MaskingRound.finish` the clients still present answer the unmasking
request (in this in-process form the aggregator holds them); a round below the
threshold raises :class:`~secagg.errors.RoundAborted`, never a wrong sum.
"""

from __future__ import annotations

import math

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
from secagg.crypto.stream import KeyedStream
from secagg.encoding import FixedPoint
from secagg.errors import (
    ConfigurationError,
    MalformedMessage,
    RoundAborted,
    UnexpectedMessage,
    UnknownParty,
)
from secagg.protocol import Client, RoundConfig, Server, ServerPhase, decode, encode
from secagg.protocol.messages import MaskedInput, ServerMessage


def largest_safe_scale(num_clients: int, value_bound: float, bits: int) -> float:
    """The largest power of two ``s`` with ``n * (floor(bound * s) + 1) <= 2^(b-1) - 1``."""
    if not (math.isfinite(value_bound) and value_bound > 0):
        raise ConfigurationError("value_bound must be positive and finite")
    room = ((1 << (bits - 1)) - 1) // num_clients - 1
    if room < 1:
        raise ConfigurationError(f"{num_clients} clients do not fit in {bits} bits at all")
    scale = 2.0 ** math.floor(math.log2(room / value_bound))
    while num_clients * (math.floor(value_bound * scale) + 1) > (1 << (bits - 1)) - 1:
        scale /= 2
    return scale


class _MaskingEncoder(ContributionEncoder):
    def __init__(self, owner: MaskingRound, party: int) -> None:
        self.party = party
        self._owner = owner

    def encode(self, update: np.ndarray) -> bytes:
        owner = self._owner
        x = check_update(update, owner.dimension)
        if np.max(np.abs(x), initial=0.0) > owner.value_bound:
            raise ConfigurationError(
                f"client {self.party}'s update exceeds value_bound {owner.value_bound:g}: "
                "clip it first (the ring's headroom was sized for that bound)"
            )
        words = owner.fixed.encode(x, owner.stream)
        replies = owner.clients[self.party].set_input(words)
        if len(replies) != 1 or not isinstance(replies[0], MaskedInput):
            raise UnexpectedMessage(f"client {self.party} is not waiting for its input")
        return encode(replies[0])


class MaskingRound(RoundAggregator):
    """One round of SecAgg / SecAgg+ behind the common interface."""

    def __init__(
        self,
        backend: str,
        num_clients: int,
        dimension: int,
        *,
        value_bound: float,
        bits: int,
        scale: float | None,
        graph: str,
        dropout_fraction: float,
        corrupt_fraction: float,
    ) -> None:
        check_round_size(num_clients, dimension, minimum_clients=2)
        self.backend = backend
        self.num_clients = num_clients
        self.dimension = dimension
        self.value_bound = float(value_bound)
        chosen = scale if scale is not None else largest_safe_scale(num_clients, value_bound, bits)
        self.fixed = FixedPoint(chosen, bits)
        self.fixed.check_headroom(num_clients, self.value_bound)
        self.stream = KeyedStream()
        self.config = RoundConfig.create(
            num_clients,
            dimension,
            bits=bits,
            graph=graph,  # type: ignore[arg-type]
            dropout_fraction=dropout_fraction,
            corrupt_fraction=corrupt_fraction,
        )
        self._fractions = (dropout_fraction, corrupt_fraction)
        self.server = Server(self.config)
        self.clients = [Client(p) for p in range(num_clients)]
        outgoing = self.server.start()
        while outgoing and self.server.phase in (
            ServerPhase.ADVERTISE_KEYS,
            ServerPhase.SHARE_KEYS,
        ):
            replies = [r for m in outgoing for r in self.clients[m.recipient].handle(_wire(m))]
            outgoing = [o for r in replies for o in self.server.handle(_wire(r))]
        for message in outgoing:  # share deliveries: clients now wait for their input
            self.clients[message.recipient].handle(_wire(message))
        if self.server.phase != ServerPhase.MASKED_INPUT:
            raise RoundAborted(
                self.server.report.abort_reason or "key sharing failed", phase="share_keys"
            )
        self._received: set[int] = set()
        self._pending: list[ServerMessage] = []

    def encoder(self, party: int) -> ContributionEncoder:
        if not 0 <= party < self.num_clients:
            raise UnknownParty(f"client {party} is not in this round")
        return _MaskingEncoder(self, party)

    def receive(self, party: int, contribution: bytes) -> None:
        admit(party, self.num_clients, self._received)
        message = decode(bytes(contribution))
        if not isinstance(message, MaskedInput) or message.sender != party:
            raise MalformedMessage(f"not a masked input from client {party}")
        # validates round, phase and length, sums on arrival; the last expected
        # input closes the phase by itself and yields the next requests
        self._pending.extend(self.server.handle(message))
        self._received.add(party)

    def finish(self) -> AggregationResult:
        server = self.server
        requests, self._pending = self._pending, []
        if server.phase == ServerPhase.MASKED_INPUT:
            requests = server.close_phase()
        while requests and server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            answers = []
            for request in requests:
                if request.recipient in self._received:  # only clients still present answer
                    answers.extend(self.clients[request.recipient].handle(_wire(request)))
            requests = [o for a in answers for o in server.handle(_wire(a))]
            if server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED) and not requests:
                requests = server.close_phase()
        if server.phase != ServerPhase.COMPLETE:
            raise RoundAborted(server.report.abort_reason or "round did not complete")
        included = set(server.report.included)
        contributed, dropped = split_parties(self.num_clients, included)
        total = self.fixed.decode(server.result())
        report = AggregationReport(
            backend=self.backend,
            num_clients=self.num_clients,
            dimension=self.dimension,
            contributed=contributed,
            dropped=dropped,
            # rounding: under one unit per client; decoding the int64 sum to float64
            # adds at most half an ulp of a value of magnitude <= k * value_bound
            error_bound=len(contributed) * (1 / self.fixed.scale + self.value_bound * 2.0**-52),
            threat_model=(
                "honest-but-curious server learns only the sum of the contributions it "
                f"received; parameters sized for {self._fractions[0]:.0%} dropout and "
                f"{self._fractions[1]:.0%} clients colluding with it"
            ),
            details={
                "graph": self.config.graph.name.lower(),
                "k": self.config.degree,
                "threshold": self.config.threshold,
                "bits": self.fixed.bits,
                "scale": self.fixed.scale,
            },
        )
        return AggregationResult(total, report)


def _wire(message: object) -> object:
    return decode(encode(message))  # type: ignore[arg-type]


class MaskingBackend(AggregationBackend):
    """SecAgg (``graph="complete"``) or SecAgg+ (``graph="harary"``) with fixed point."""

    def __init__(
        self,
        *,
        graph: str = "harary",
        value_bound: float = 1.0,
        bits: int = 32,
        scale: float | None = None,
        dropout_fraction: float = 0.10,
        corrupt_fraction: float = 0.05,
    ) -> None:
        if graph not in ("complete", "harary"):
            raise ConfigurationError(f"graph must be 'complete' or 'harary', not {graph!r}")
        self.name = "secagg" if graph == "complete" else "secagg+"
        self._options = dict(
            value_bound=value_bound,
            bits=bits,
            scale=scale,
            graph=graph,
            dropout_fraction=dropout_fraction,
            corrupt_fraction=corrupt_fraction,
        )

    def start_round(self, num_clients: int, dimension: int) -> MaskingRound:
        return MaskingRound(self.name, num_clients, dimension, **self._options)  # type: ignore[arg-type]


__all__ = ["MaskingBackend", "MaskingRound", "largest_safe_scale"]
