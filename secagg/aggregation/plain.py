"""The plain backend: float64 vectors summed in the clear, the baseline.

No privacy from the server at all: it sees every update. It exists so that
every other backend can be compared against it in one line, and as the
reference for correctness. One phase (``contribution``): each client sends its
update once; the wire format is still versioned and length-checked, and the server
refuses a contribution beyond the round's ``value_bound`` (InvalidMessage) as the
client does (ConfigurationError): it sees the values, so it need not trust the check.
A refused contribution changes nothing and leaves the party's slot free.
"""

from __future__ import annotations

import math
import numbers
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np

from secagg.aggregation.base import (
    HELPER,
    AggregationBackend,
    AggregationReport,
    AggregationResult,
    Announce,
    ClientSession,
    Outgoing,
    Phase,
    PhasedServerSession,
    RoundIdentity,
    RoundSpec,
    admit,
    check_bound,
    check_party,
    check_round_size,
    check_update,
    payload_bytes,
    spec_label,
    split_parties,
)
from secagg.aggregation.policy import BranchPolicy
from secagg.aggregation.spec import Reader, Writer, encode_spec
from secagg.crypto.stream import KeyedStream
from secagg.errors import (
    ConfigurationError,
    InvalidMessage,
    MalformedMessage,
    RoundAborted,
    UnexpectedMessage,
)

_MAGIC = b"SAPL"
_VERSION = 1
_HEADER = struct.Struct("<4sBIQ")  # magic, version, party, length
CONTRIBUTION = "contribution"


@dataclass(frozen=True)
class PlainSpec(RoundSpec):
    backend: ClassVar[str] = "plain"
    value_bound: float = 1.0

    @property
    def input_bound(self) -> float:
        return self.value_bound

    def encode_body(self) -> bytes:
        w = Writer().u32(self.num_clients).u32(self.dimension).f64(self.value_bound)
        return w.bytes()

    @classmethod
    def decode_body(cls, body: bytes, name: str) -> PlainSpec:
        r = Reader(body, "plain round spec")
        spec = cls(r.u32(), r.u32(), r.f64(positive=True))
        r.end()
        try:
            check_round_size(spec.num_clients, spec.dimension)
        except ConfigurationError as exc:
            raise MalformedMessage(f"bad plain round spec: {exc}") from None
        return spec


def encode_contribution(party: int, update: np.ndarray) -> bytes:
    header = _HEADER.pack(_MAGIC, _VERSION, party, update.size)
    return header + np.ascontiguousarray(update, dtype="<f8").tobytes()


def decode_contribution(data: bytes, party: int, dimension: int) -> np.ndarray:
    """The vector of ``party``'s contribution, or MalformedMessage."""
    if len(data) != _HEADER.size + 8 * dimension:
        raise MalformedMessage(
            f"a plain contribution is {_HEADER.size + 8 * dimension} bytes, got {len(data)}"
        )
    magic, version, sender, length = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != _VERSION:
        raise MalformedMessage("not a plain contribution of a known version")
    if sender != party or length != dimension:
        raise MalformedMessage("contribution header does not match its sender or round")
    vector = np.frombuffer(data, dtype="<f8", offset=_HEADER.size)
    if not np.all(np.isfinite(vector)):
        raise MalformedMessage("contribution holds NaN or infinite values")
    return vector


class PlainClient(ClientSession):
    def __init__(self, spec: PlainSpec, party: int) -> None:
        check_party(party, spec.num_clients)
        self.party = party
        self.spec = spec
        self._sent = False

    def set_input(self, update: np.ndarray) -> list[bytes]:
        if self._sent:
            raise UnexpectedMessage("the contribution has already been sent")
        x = check_update(update, self.spec.dimension)
        check_bound(x, self.spec.value_bound, self.party)
        self._sent = True
        return [encode_contribution(self.party, x)]

    def handle(self, payload: bytes) -> list[bytes]:
        raise UnexpectedMessage("a plain round sends clients nothing after its start")


class PlainServer(PhasedServerSession):
    """One phase: contributions summed as they arrive."""

    PHASES = ("not_started", CONTRIBUTION, "complete", "aborted")

    def __init__(self, spec: PlainSpec) -> None:
        self.spec = spec
        self._total = np.zeros(spec.dimension, dtype=np.float64)
        self._magnitude = np.zeros(spec.dimension, dtype=np.float64)  # sum |x|: the bound
        self._received: set[int] = set()

    def start(self) -> list[Outgoing]:
        if self._phase != "not_started":
            raise UnexpectedMessage("the round has already started")
        self._phase = CONTRIBUTION
        return [Announce(encode_spec(self.spec))]

    def handle(self, party: int, payload: bytes) -> list[Outgoing]:
        if self._phase != CONTRIBUTION:
            raise UnexpectedMessage(f"no contribution is accepted in phase {self._phase}")
        admit(party, self.spec.num_clients, self._received)
        vector = decode_contribution(payload_bytes(payload), party, self.spec.dimension)
        # the client checks its bound, but the server sees the values and must not take
        # a client's word for it: the round's error bound (and every other backend's
        # arithmetic) is sized for it, so a larger value is refused here, before it counts
        if np.max(np.abs(vector), initial=0.0) > self.spec.value_bound:
            raise InvalidMessage(
                f"client {party}'s contribution has a coordinate beyond the round's value "
                f"bound {self.spec.value_bound:g}"
            )
        with np.errstate(over="ignore"):  # an overflowed sum aborts the round at finish
            self._total += vector
            self._magnitude += np.abs(vector)
        self._received.add(party)
        if len(self._received) == self.spec.num_clients:
            self._phase = "complete"
        return []

    def close_phase(self) -> list[Outgoing]:
        if self._phase != CONTRIBUTION:
            raise UnexpectedMessage(f"no phase to close in state {self._phase}")
        if self._received:
            self._phase = "complete"
        else:
            self._abort("no client contributed")
        return []

    def phase_of(self, party: int, payload: object) -> Phase | None:
        """A client's payload is a contribution (its one phase); nothing else is read."""
        del payload
        return None if party == HELPER else self._ranked(CONTRIBUTION)

    @property
    def waiting_for(self) -> frozenset[int]:
        if self._phase != CONTRIBUTION:
            return frozenset()
        return frozenset(range(self.spec.num_clients)) - self._received

    def dropouts(self) -> dict[str, int]:
        if self._phase in ("not_started", CONTRIBUTION):
            return {}
        return {CONTRIBUTION: self.spec.num_clients - len(self._received)}

    def finish(self) -> AggregationResult:
        if self._phase != "complete":
            raise RoundAborted(self._abort_reason or "the round did not complete", phase="plain")
        if not np.all(np.isfinite(self._total)):
            # finite contributions whose float64 sum left the range: inf (or NaN) is no sum
            raise RoundAborted(
                "the float64 sum overflowed: bound the updates (value_bound) or scale them",
                phase="plain",
            )
        contributed, dropped = split_parties(self.spec.num_clients, self._received)
        report = AggregationReport(
            backend="plain",
            num_clients=self.spec.num_clients,
            dimension=self.spec.dimension,
            contributed=contributed,
            dropped=dropped,
            error_bound=_summation_bound(len(contributed), float(self._magnitude.max())),
            threat_model="none: the server sees every update",
            details={"summation": "float64"},
            dropouts=self.dropouts(),
        )
        return AggregationResult(self._total.copy(), report)


#: the unit roundoff of float64 (round to nearest), exactly
_UNIT_ROUNDOFF = Fraction(1, 2**53)


def _summation_bound(count: int, magnitude: float) -> float:
    """A float64 at least the error bound of recursive float64 summation of ``count``
    terms whose float64 sum of magnitudes is ``magnitude``.

    The theorem: ``|error| <= gamma·Σ|x|``, ``gamma = g / (1 - g)``, ``g = (count - 1)·u``
    (the first addition, to the zero vector, is exact; so is one term). ``magnitude`` is
    the server's own float64 sum of ``|x|``, which errs the same way and may lie below the
    exact ``Σ|x|``, so ``Σ|x| <= magnitude / (1 - gamma)``. Computed in exact arithmetic
    and rounded up to a float64.

    Why: it was ``g / (1 - g) * magnitude`` in float64, three roundings each possibly
    down, from a magnitude possibly below the exact one: for updates [1], [u], [u] it
    reported 2.2204460492503136e-16, below gamma·Σ|x| = 2u(1 + 2u)/(1 - 2u) the theorem
    gives, and an exact-arithmetic search reached 0.9999983 of it. An infinite
    magnitude (finite terms whose magnitudes overflowed) bounds nothing: infinity."""
    if count <= 1:
        return 0.0
    if not math.isfinite(magnitude):
        return math.inf
    g = (count - 1) * _UNIT_ROUNDOFF
    gamma = g / (1 - g)
    if gamma >= 1:  # 2^52 terms and more: no bound (far past any round's clients)
        return math.inf
    return _float_at_least(gamma * Fraction(magnitude) / (1 - gamma))


def _float_at_least(value: Fraction) -> float:
    """The least float64 not below ``value`` (infinity past the largest float)."""
    try:
        nearest = float(value)  # correctly rounded to nearest
    except OverflowError:
        return math.inf
    return nearest if Fraction(nearest) >= value else math.nextafter(nearest, math.inf)


class PlainBackend(AggregationBackend):
    """Sum in the clear (the baseline). ``value_bound`` bounds every coordinate."""

    name = "plain"

    def __init__(self, *, value_bound: float = float("inf")) -> None:
        """``value_bound``: positive, or infinite for no bound. Checked here: a bad one
        surfaced only at the round start, as a MalformedMessage about the encoded spec
        (0, -1), a numpy TypeError (a string), or not at all (NaN, True)."""
        if (
            isinstance(value_bound, bool)
            or not isinstance(value_bound, numbers.Real)
            or not value_bound > 0  # also NaN
        ):
            raise ConfigurationError(
                f"value_bound must be a positive number (inf: no bound), not {value_bound!r}"
            )
        self.value_bound = float(value_bound)

    def plan(self, num_clients: int, dimension: int, **extras: Any) -> PlainSpec:
        if extras:
            raise ConfigurationError(f"the plain backend takes no round options: {sorted(extras)}")
        check_round_size(num_clients, dimension)
        bound = self.value_bound if np.isfinite(self.value_bound) else np.finfo(np.float64).max
        return PlainSpec(num_clients, dimension, float(bound))

    def server(
        self, spec: RoundSpec, *, noise_stddev: float = 0.0, public_seed: bytes | None = None
    ) -> PlainServer:
        del public_seed  # no public randomness in a plain sum
        return PlainServer(_own(spec))

    def open_client(
        self,
        spec: RoundSpec,
        party: int,
        *,
        rounding: KeyedStream | None,
        policy: BranchPolicy | None,
        identity: RoundIdentity | None = None,
    ) -> PlainClient:
        return PlainClient(_own(spec), party)


def _own(spec: RoundSpec) -> PlainSpec:
    if not isinstance(spec, PlainSpec):
        raise ConfigurationError(f"a {spec_label(spec)} round spec given to the plain backend")
    return spec
