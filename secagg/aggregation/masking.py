"""The masking backends: SecAgg (complete graph) and SecAgg+ (Harary graph).

Theory of operation
-------------------
Both sides wrap the sans-I/O state machines of :mod:`secagg.protocol`
(:class:`~secagg.protocol.Client` and :class:`~secagg.protocol.Server`); this
module adds only what turns floats into ring words and back:

* **Fixed point** (no distributed DP): each client encodes its update into
  Z_{2^b} (:class:`~secagg.encoding.FixedPoint`, stochastic rounding from a
  keyed stream). The scale is chosen from ``value_bound`` (a bound on every
  coordinate of every update, e.g. the L2 clip) as the largest power of two
  whose sum over the round's clients cannot wrap. An update beyond the bound
  is refused by its client rather than silently wrapped.
* **Distributed discrete Gaussian** (:class:`~secagg.dp.distributed.NoiseShareRound`
  given to :meth:`MaskingBackend.plan`): each client rotates, clips, scales and
  rounds its update and adds its discrete Gaussian share before masking
  (Kairouz, Liu and Steinke, ICML 2021), so the unmasked sum is already noised.

The spec carries the encoding and the SecAgg+ sizing (dropout and corrupt
fractions); the protocol's own ``RoundSetup`` carries the graph, k and t.

Round ids. Bound with ``bind_round(context)`` (a federation binds every round to its
round number), both sides run under :func:`protocol_round_id` of the context and the
spec, and the client refuses a setup of any other id: the id, on which every signature
and key derivation of the round rests, is then no longer the server's free choice, so
nothing signed in one round verifies in another. Unbound (the in-memory driver of
:func:`secagg.aggregate`, where one caller plays every role), the server draws the id
and the client takes it.

Decoding is exact on the integers: the fixed-point result is off from the true
sum only by the clients' rounding, less than ``1 / scale`` each, and three float64
roundings (the scaling, the reading of the integer sum and its division by the scale;
the first and last are exact at a power-of-two scale), so the documented bound is
``contributors * (1/scale * (1 + 2^-50) + value_bound * 2^-50)`` per coordinate
(:func:`fixed_point_error_bound`). With noise shares the bound is of the *noised*
sum (the shares are the release, not an error): the rotated rounding and the floats,
:meth:`~secagg.dp.distributed.DistributedDiscreteGaussian.decode_error_bound`, which
holds unless the noised sum wrapped the ring (the planned tail the report names). A round
below the threshold aborts with :class:`~secagg.errors.RoundAborted`, never a
wrong sum.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import operator
import os
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from secagg.aggregation.base import (
    AggregationBackend,
    AggregationReport,
    AggregationResult,
    Announce,
    ClientSession,
    Outgoing,
    Phase,
    RoundIdentity,
    RoundSpec,
    ServerSession,
    ToParty,
    check_bound,
    check_context,
    check_party,
    check_round_size,
    check_update,
    payload_bytes,
    spec_label,
    split_parties,
)
from secagg.aggregation.policy import BranchPolicy
from secagg.aggregation.spec import Reader, Writer, encode_spec
from secagg.crypto.prg import MaskRemover
from secagg.crypto.signing import (
    PUBLIC_KEY_BYTES,
    CertificateVerifyKey,
    Verifier,
    VerifyKey,
)
from secagg.crypto.stream import KeyedStream, derive
from secagg.dp.display import shown
from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound
from secagg.encoding import SUPPORTED_BITS, FixedPoint
from secagg.errors import (
    ConfigurationError,
    CryptoError,
    MalformedMessage,
    PolicyRefused,
    ProtocolError,
    RoundAborted,
)
from secagg.protocol import Client, RoundConfig, Server, ServerPhase, decode, encode
from secagg.protocol.config import (
    DEFAULT_CORRUPT_FRACTION,
    DEFAULT_DROPOUT_FRACTION,
    ClientPolicy,
)
from secagg.protocol.messages import (
    GRAPH_SEED_BYTES,
    MAGIC,
    MAX_POPULATION,
    ROUND_ID_BYTES,
    VERSION,
    GraphKind,
    MessageType,
    RoundSetup,
    ServerMessage,
)

GRAPHS = {"secagg": "complete", "secagg+": "harary"}
PROTOCOL_ROUND_ID_LABEL = b"secagg/v1/protocol-round-id/"
MAX_IDENTITY_BYTES = 16 * 1024  # one party's certificate


def client_policy(policy: BranchPolicy | None) -> ClientPolicy | None:
    """The protocol's view of a branch's policy: what its ``RoundSetup`` must meet.

    The client computes its minimum Shamir threshold itself from its own
    assumptions (colluders, dropouts), so the server cannot lower it."""
    if policy is None:
        return None
    return ClientPolicy(
        require_active=policy.require_active,
        corrupt_fraction=policy.corrupt_fraction,
        dropout_fraction=policy.dropout_fraction,
        min_threshold=policy.min_threshold,
        max_clients=policy.max_clients,
        expected_clients=policy.expected_clients,
        min_colluders=policy.min_colluders,
        keys="branch.",  # its refusals name the [branch] keys, as BranchPolicy's do
    )


def largest_safe_scale(num_clients: int, value_bound: float, bits: int) -> float:
    """The largest power of two ``s`` with ``n * (floor(bound * s) + 1) <= 2^(b-1) - 1``.

    ``num_clients`` is taken as a Python int: a numpy count (a roster's ``len`` through
    an array, ``np.int32``) would make the products below fixed-width, where a 64-bit
    ring's ``2^63 - 1`` does not fit an ``int32`` and a product near it wraps."""
    try:
        num_clients = operator.index(num_clients)
    except TypeError:
        raise ConfigurationError(
            f"the number of clients must be an integer, not {num_clients!r}"
        ) from None
    if num_clients < 1:
        raise ConfigurationError(f"the number of clients must be at least 1, not {num_clients}")
    if not (math.isfinite(value_bound) and value_bound > 0):
        raise ConfigurationError("value_bound must be positive and finite")
    room = ((1 << (bits - 1)) - 1) // num_clients - 1
    if room < 1:
        raise ConfigurationError(f"{num_clients} clients do not fit in {bits} bits at all")
    # room / value_bound overflows to inf for a bound below ~1e-290 (floor(inf) raised
    # OverflowError); a float scale stops at 2^1023, where such a bound is 0 or 1 unit
    ratio = room / value_bound
    scale = 2.0 ** min(math.floor(math.log2(ratio)) if math.isfinite(ratio) else 1023, 1023)
    while num_clients * (math.floor(value_bound * scale) + 1) > (1 << (bits - 1)) - 1:
        scale /= 2
    return scale


@dataclass(frozen=True)
class MaskingSpec(RoundSpec):
    """A masking round: ring, encoding and the SecAgg+ sizing assumptions."""

    backend_name: str = "secagg+"
    bits: int = 32
    value_bound: float = 1.0
    scale: float = 1.0  # fixed point; unused with a noise share
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION
    noise_share: NoiseShareRound | None = None
    active: bool = False  # the malicious-server variant: signed keys, consistency check
    # active: each party's public identity by party index (a DER certificate in a
    # federation, whose chain every branch checks; a raw Ed25519 key in local runs)
    identities: tuple[bytes, ...] = ()
    # the clients the round was drawn from (0: the round is the population): k and t
    # are sized for its colluders, all of whom the server that draws it may put in it
    population: int = 0

    @property
    def name(self) -> str:
        return self.backend_name

    def identity_certificates(self) -> tuple[bytes, ...]:
        return self.identities

    @property
    def input_bound(self) -> float:
        return self.value_bound

    def check_policy(self, policy: BranchPolicy) -> None:
        """The backend, sizes, the active variant, the noise share and the graph against
        the policy.

        The threshold is checked where it is chosen, in the protocol's ``RoundSetup``,
        against the minimum the branch computes itself (:class:`ClientPolicy`); here the
        round is refused when *no* threshold its graph allows could pass that check
        (:meth:`_check_some_threshold_passes`)."""
        super().check_policy(policy)
        if policy.require_active and not self.active:
            raise policy.refuse(
                "require_active",
                "the round runs the passive variant; this branch takes part only in the "
                "active (malicious-server) one",
            )
        self._check_some_threshold_passes(policy)

    def _check_some_threshold_passes(self, policy: BranchPolicy) -> None:
        """Refuse, at the spec, a round whose graph leaves no threshold this branch takes.

        The spec fixes the graph and its degree k (the setup must match it), so the
        strongest setup it allows has t = k + 1, every share holder; if the branch's
        :class:`ClientPolicy` refuses even that one (its ``min_threshold`` above k + 1,
        or a degree that its own colluders and dropouts may cut, for which no t is
        safe), it refuses every setup of the round.

        Why here and not only at the setup: the setup arrives after the round start,
        which the branch checks before its training hook runs; a round refused only at
        the setup had the branch train (a DP-SGD hook spending its record-level budget)
        and, with ``branch.epsilon_budget``, charged, for a round that the spec alone
        showed it would never take. A server planning ``secagg+`` for ``corrupt_fraction
        = 0`` (degree 4 for 100 clients) against a branch assuming 0.3, or a round of 5
        against ``min_threshold = 10``, passed the spec's check (review of the branch's
        policy, 2026-12-06).

        A spec whose round the protocol cannot configure at all is refused here too
        (setting ``round_spec``: no key of the branch's admits it), above all the
        active variant among 2 clients, for which no threshold is private
        (docs/protocol.md): until the hostile policy review of 2026-12-06 it passed
        this check, the branch trained (and, with a budget, was charged), and then
        every setup failed the spec's own ``round_config`` (a ConfigurationError) or
        the client's minimum, which named ``branch.corrupt_fraction`` and "0 colluding
        clients", a setting no change of which admits the round."""
        try:
            config = self.round_config()
        except ConfigurationError as exc:
            raise PolicyRefused("round_spec", self._unplannable(exc)) from None
        strongest = RoundSetup(
            round_id=bytes(ROUND_ID_BYTES),
            recipient=0,
            num_clients=config.num_clients,
            vector_length=config.vector_length,
            bits=config.bits,
            threshold=config.degree + 1,
            graph=config.graph,
            degree=config.degree,
            graph_seed=bytes(GRAPH_SEED_BYTES),
            active=config.active,
            population=config.population or 0,
        )
        try:
            client_policy(policy).check(strongest)  # type: ignore[union-attr]
        except PolicyRefused as refusal:
            reason = str(refusal).removeprefix(f"refused by policy {refusal.setting}: ")
            raise PolicyRefused(
                refusal.setting,
                f"no threshold of this round's graph ({config.graph.name.lower()}, degree "
                f"{config.degree}: at most {config.degree + 1} share holders) meets this "
                f"branch's policy; even t = {config.degree + 1}: {reason}",
            ) from None

    def _unplannable(self, cause: ConfigurationError) -> str:
        """Why no round of this spec can run: the protocol's reason, in the branch's words
        for the case a hostile server would send (an active round of 2 clients)."""
        if self.active and self.num_clients == 2:
            return (
                "an active round of 2 clients, for which no threshold is private: each "
                "party's input is the sum less the other's, and a server that calls one "
                "of the two dropped is left a sum of one input (docs/protocol.md: the "
                "configuration is refused)"
            )
        return f"the protocol plans no round of this spec ({cause}), so every setup of it fails"

    def check_noise_policy(self, policy: BranchPolicy) -> None:
        """The round's distributed noise share (None: none) against the policy."""
        share = self.noise_share
        if share is None:
            super().check_noise_policy(policy)
        else:
            ddg = share.mechanism
            policy.check_noise_share(
                noise_multiplier=ddg.noise_multiplier,
                clip=ddg.clip,
                expected_clients=ddg.expected_clients,
                record_level=ddg.record_level,
                vector_bound=ddg.vector_bound,
                num_clients=self.num_clients,
            )
            _check_share_scale(ddg, policy)

    def fewest_in_sum(self, policy: BranchPolicy) -> int | None:
        """The smallest threshold this branch accepts for the round's graph (its own
        :class:`~secagg.protocol.config.ClientPolicy` minimum, or ``min_threshold`` if
        higher): it unmasks nothing unless that many of its share holders, itself
        included, are among the survivors whose inputs make the sum. The graph and its
        degree follow from this spec (the setup must match it); None when no threshold
        is safe (the setup is then refused) or the spec implies no graph."""
        try:
            config = self.round_config()
            minimum = ClientPolicy.minimum_threshold(
                client_policy(policy),  # type: ignore[arg-type]
                self.num_clients,
                config.graph,
                config.degree,
                active=self.active,
                announced=self.population,
            )
        except ConfigurationError:
            return None
        if minimum is None:
            return None
        return max(minimum, policy.min_threshold or 0)

    def drawn_from(self) -> int:
        """The population the spec names (``population``; 0: the round itself)."""
        return max(self.num_clients, self.population)

    def own_noise_share(self) -> DistributedDiscreteGaussian | None:
        """The noise share's mechanism: each client adds its share before masking."""
        return None if self.noise_share is None else self.noise_share.mechanism

    @property
    def vector_length(self) -> int:
        """Words per client: the dimension, or the padded one of the rotation."""
        return self.dimension if self.noise_share is None else self.noise_share.mechanism.padded

    def encode_body(self) -> bytes:
        w = Writer().u32(self.num_clients).u32(self.dimension).u8(self.bits)
        w.f64(self.value_bound).f64(self.scale)
        w.f64(self.dropout_fraction).f64(self.corrupt_fraction)
        share = self.noise_share
        if share is None:
            w.u8(0)
        else:
            ddg = share.mechanism
            # 1: client level (the clip bounds the vector); 2: record level, + the bound
            w.u8(2 if ddg.record_level else 1)
            w.f64(ddg.clip).f64(ddg.noise_multiplier).u32(ddg.expected_clients)
            w.f64(ddg.scale).blob(share.rotation_seed)
            if ddg.record_level:
                w.f64(ddg.vector_bound)
        w.u8(1 if self.active else 0).u32(len(self.identities))
        for identity in self.identities:
            w.blob(identity)
        w.u32(self.population)
        return w.bytes()

    @classmethod
    def decode_body(cls, body: bytes, name: str) -> MaskingSpec:
        if name not in GRAPHS:
            raise MalformedMessage(f"{name!r} is not a masking backend")
        r = Reader(body, "masking round spec")
        n, d, bits = r.u32(), r.u32(), r.u8()
        bound, scale = r.f64(positive=True), r.f64(positive=True)
        dropout, corrupt = r.f64(), r.f64()
        share = None
        kind = r.u8()
        if kind in (1, 2):
            clip, z, expected = r.f64(positive=True), r.f64(positive=True), r.u32()
            ddg_scale, seed = r.f64(positive=True), r.blob(64)
            vector_bound = r.f64(positive=True) if kind == 2 else 0.0
            if kind == 2 and not vector_bound > clip:
                raise MalformedMessage(
                    "a record-level noise share's vector bound must exceed its clip"
                )
            try:
                mechanism = DistributedDiscreteGaussian(
                    dimension=d,
                    clip=clip,
                    noise_multiplier=z,
                    expected_clients=expected,
                    bits=bits,
                    scale=ddg_scale,
                    vector_bound=vector_bound,
                )
                share = NoiseShareRound(mechanism, seed)
            except ConfigurationError as exc:
                raise MalformedMessage(f"bad distributed-DP parameters: {exc}") from None
        elif kind != 0:
            raise MalformedMessage(f"unknown masking encoding {kind}")
        active = r.u8()
        count = r.u32()
        if active > 1 or count > n:
            raise MalformedMessage("bad active-variant fields in a masking round spec")
        identities = tuple(r.blob(MAX_IDENTITY_BYTES) for _ in range(count))
        population = r.u32()
        r.end()
        try:
            return cls(
                n,
                d,
                name,
                bits,
                bound,
                scale,
                dropout,
                corrupt,
                share,
                bool(active),
                identities,
                population,
            )
        except ConfigurationError as exc:
            raise MalformedMessage(f"bad masking round spec: {exc}") from None

    def __post_init__(self) -> None:
        check_round_size(self.num_clients, self.dimension, minimum_clients=2)
        self._check_types()
        if self.backend_name not in GRAPHS:
            raise ConfigurationError(f"{self.backend_name!r} is not a masking backend")
        if self.bits not in (32, 64):
            raise ConfigurationError(f"bits must be 32 or 64, not {self.bits}")
        for label, fraction in (
            ("dropout", self.dropout_fraction),
            ("corrupt", self.corrupt_fraction),
        ):
            if not 0 <= fraction < 1:
                raise ConfigurationError(f"the {label} fraction must lie in [0, 1)")
        if self.noise_share is not None:
            ddg = self.noise_share.mechanism
            if ddg.bits != self.bits or ddg.dimension != self.dimension:
                raise ConfigurationError("the noise share's ring or dimension is not the round's")
        else:
            # the fixed point's scale must leave the sum room (HeadroomError): planning
            # checks it, but a spec is also built from the wire or in code, and one whose
            # scale let n updates at the bound wrap (three at 0.9 at scale 2^31 on 32 bits)
            # summed to 0.7 instead of 2.7 with an error bound of 1.4e-9 in its report: a
            # wrong sum where the round must give the right one or none (review, 2026-12-06)
            FixedPoint(self.scale, self.bits).check_headroom(self.num_clients, self.value_bound)
        if self.active and len(self.identities) != self.num_clients:
            raise ConfigurationError(
                "the active variant needs one identity (certificate) per client of the round"
            )
        if not self.active and self.identities:
            raise ConfigurationError("identities are carried by active rounds only")
        if self.population != 0 and not self.num_clients <= self.population <= MAX_POPULATION:
            raise ConfigurationError(
                f"the population a round is drawn from is 0 (not sampled) or in "
                f"[{self.num_clients}, {MAX_POPULATION}], not {self.population}"
            )

    def _check_types(self) -> None:
        """Each field's type, naming it, before the range checks compare them.

        Why: a spec built in code with ``dropout_fraction="0.1"`` failed as a bare
        TypeError in ``0 <= fraction < 1``, ``value_bound="1"`` or ``active="no"``
        (true) passed into a spec, and a noise share or identity of the wrong type
        failed later as an AttributeError. The decoder builds only well-typed specs."""
        for name in ("value_bound", "scale", "dropout_fraction", "corrupt_fraction"):
            _real(name, getattr(self, name))
        if not isinstance(self.active, bool):
            raise ConfigurationError(f"active must be True or False, not {self.active!r}")
        if isinstance(self.population, bool) or not isinstance(self.population, numbers.Integral):
            raise ConfigurationError(f"population must be an integer, not {self.population!r}")
        object.__setattr__(self, "population", int(self.population))
        if self.noise_share is not None and not isinstance(self.noise_share, NoiseShareRound):
            raise ConfigurationError(
                f"noise_share must be a NoiseShareRound, not {type(self.noise_share).__name__}"
            )
        if not isinstance(self.identities, tuple) or not all(
            isinstance(i, bytes) for i in self.identities
        ):
            raise ConfigurationError("identities must be a tuple of DER certificates or keys")

    def round_config(self) -> RoundConfig:
        return RoundConfig.create(
            self.num_clients,
            self.vector_length,
            bits=self.bits,
            graph=GRAPHS[self.backend_name],  # type: ignore[arg-type]
            dropout_fraction=self.dropout_fraction,
            corrupt_fraction=self.corrupt_fraction,
            active=self.active,
            population=self.population or None,
        )

    def verify_keys(self) -> dict[int, Verifier]:
        """The parties' signature keys, read from their identities (active rounds)."""
        return {party: identity_key(blob) for party, blob in enumerate(self.identities)}


def identity_key(blob: bytes) -> Verifier:
    """A raw Ed25519 key (32 bytes) or a DER certificate's ECDSA key."""
    try:
        if len(blob) == PUBLIC_KEY_BYTES:
            return VerifyKey(blob)
        return CertificateVerifyKey.from_certificate(blob)
    except CryptoError as exc:
        raise MalformedMessage(f"an identity of the round is unusable: {exc}") from None


class _RingEncoding:
    """Floats to ring words and back, as the spec says (fixed point or the DDG share)."""

    def __init__(self, spec: MaskingSpec) -> None:
        self._spec = spec
        self._fixed = FixedPoint(spec.scale, spec.bits)

    def encode(self, update: np.ndarray, stream: KeyedStream) -> np.ndarray:
        share = self._spec.noise_share
        if share is None:
            return self._fixed.encode(update, stream)
        return share.mechanism.encode(update, share.rotation_seed, stream)

    def decode(self, words: np.ndarray) -> np.ndarray:
        share = self._spec.noise_share
        if share is None:
            return self._fixed.decode(words)
        return share.mechanism.decode(words, share.rotation_seed)


class MaskingClient(ClientSession):
    """A client of a masking round: encode, then the protocol client masks."""

    def __init__(
        self,
        spec: MaskingSpec,
        party: int,
        rounding: KeyedStream | None,
        policy: BranchPolicy | None,
        identity: RoundIdentity | None,
    ) -> None:
        check_party(party, spec.num_clients)  # 99 or -1: no message would address it
        self.party = party
        self.spec = spec
        if spec.active and identity is None:
            raise ConfigurationError(
                "an active round needs this party's signing key and the round's verified "
                "identities (a federation branch's certificate)"
            )
        signing = identity.signing_key if identity is not None and spec.active else None
        verify = dict(identity.verify_keys) if identity is not None and spec.active else None
        self._protocol = Client(
            party, signing_key=signing, identity_keys=verify, policy=client_policy(policy)
        )
        self._encoding = _RingEncoding(spec)
        self._rounding = rounding

    def bind_round(self, context: bytes) -> None:
        """Accept only the setup whose round id :func:`protocol_round_id` derives from
        ``context`` and this client's approved spec (:class:`~secagg.errors.WrongRound`
        for any other, state unchanged). Before the first payload only."""
        self._protocol.expect_round(protocol_round_id(check_context(context), self.spec))

    def set_input(self, update: np.ndarray) -> list[bytes]:
        """Encode ``update`` (with its noise share) and hand it to the protocol, once.

        The protocol is asked first whether it takes an input: a second update is
        refused before it is encoded, so a refusal draws no noise and does not move
        the rounding stream."""
        self._protocol.check_accepts_input()
        x = check_update(update, self.spec.dimension)
        check_bound(x, self.spec.value_bound, self.party)
        words = self._encoding.encode(x, self._rounding or KeyedStream())
        del x  # only the masked words leave, through the protocol
        return [encode(m) for m in self._protocol.set_input(words)]

    def handle(self, payload: bytes) -> list[bytes]:
        message = decode(payload_bytes(payload))
        if (
            isinstance(message, RoundSetup)
            and message.recipient == self.party
            and self._protocol.setup is None
        ):
            # only the setup the protocol would take is held to the spec: a second setup,
            # or one for another party, is the protocol's refusal (out of phase, not
            # ours), not a policy refusal, which a branch treats as the server asking
            # for a weaker round and may stop on
            self._check_setup(message)
        return [encode(m) for m in self._protocol.handle(message)]

    #: the fields of a RoundSetup that follow from the announced spec alone
    SETUP_FIELDS = (
        "num_clients",
        "vector_length",
        "bits",
        "graph",
        "degree",
        "active",
        "population",
    )

    def _check_setup(self, setup: RoundSetup) -> None:
        """Refuse a ``RoundSetup`` other than the one the approved spec implies.

        Why: the branch's policy passed the *spec* (its clients, its noise share sized
        for them, its backend); the protocol then runs on the ``RoundSetup``, which the
        server sends separately. Unchecked, a server could announce 1 000 clients,
        which sizes each noise share for 1 000, and run the round with 3 (a sum
        carrying a twentieth of the branch's noise floor), or announce the complete
        graph of ``secagg`` and run a sparse one (runtime audit 2026-12-04). An honest
        server builds its setup from the same spec, so every field matches; the
        threshold and the graph seed are the server's to choose, and the threshold
        is held to the branch's own minimum by :class:`ClientPolicy`. In the active
        variant they are one choice for every client: each signs its key
        advertisement over the digest of the whole setup it was shown
        (:func:`secagg.protocol.common.setup_digest`), so keys from a neighbour shown
        another seed or threshold fail their signature."""
        planned = self.spec.round_config()
        for name in self.SETUP_FIELDS:
            got, want = getattr(setup, name), getattr(planned, name)
            if name == "population":
                want = want or 0  # the setup's 0 is the config's None: not sampled
            if got != want:
                raise PolicyRefused(
                    "round_setup",
                    f"the round's setup has {name} = {_shown(got)}, but the spec this "
                    f"branch approved implies {_shown(want)}",
                )


def protocol_round_id(context: bytes, spec: MaskingSpec) -> bytes:
    """The protocol round id of a round bound to ``context`` (a federation's round
    number, :func:`secagg.runtime.wire.round_context`) and planned as ``spec``.

    Why derived, not drawn by the server: every signature (the keys a client
    advertises, the survivor set, accusations) and every key derivation of a round
    rests on its id. Drawn by the server, the id was the server's free choice, and a
    hostile one could run two rounds under one id, so a branch's keys signed in the
    first verified again in the second and could be replayed to its neighbours.
    Derived from facts each client checks itself (the round it started, whose number
    it holds to only ever growing, and the spec its policy approved, with the
    parties' certificates in the active variant), the id names one round only: a
    client refuses any other, and nothing signed for one round verifies in another.
    ``SHA-256(label || len(context) || context || SHA-256(spec))``, cut to the id's size.
    """
    digest = hashlib.sha256(encode_spec(spec)).digest()
    material = PROTOCOL_ROUND_ID_LABEL + struct.pack(">I", len(context)) + context + digest
    return hashlib.sha256(material).digest()[:ROUND_ID_BYTES]


def _shown(value: object) -> str:
    return value.name.lower() if isinstance(value, GraphKind) else repr(value)


def _usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        return os.cpu_count() or 1


#: Threads that remove the masks at unmasking, each over its own slice of coordinates:
#: the same sum, a shorter close on a multi-core server. Capped at 4: the slices share
#: one memory bus, and each holds its own AES context per mask (1.4 KB each) while it runs.
UNMASK_WORKERS = max(1, min(4, _usable_cores()))


#: a protocol message's first bytes: magic, version, type (secagg.protocol.messages)
_PROTOCOL_HEAD = struct.Struct(">2sBB")
#: the server phase that takes each kind of client message (the protocol's own order)
_CLIENT_MESSAGE_PHASES: dict[int, ServerPhase] = {
    MessageType.ADVERTISE_KEYS: ServerPhase.ADVERTISE_KEYS,
    MessageType.SHARE_KEYS: ServerPhase.SHARE_KEYS,
    MessageType.MASKED_INPUT: ServerPhase.MASKED_INPUT,
    MessageType.CONSISTENCY_SIGNATURE: ServerPhase.CONSISTENCY_CHECK,
    MessageType.UNMASKING_SHARES: ServerPhase.UNMASKING,
}
_PHASE_ORDER: tuple[ServerPhase, ...] = tuple(ServerPhase)  # as declared: the round's order


def _ranked(phase: ServerPhase) -> Phase:
    """A protocol phase ranked by its place in the round (its end, complete or aborted,
    after every phase)."""
    return Phase(_PHASE_ORDER.index(phase), phase.value)


class MaskingServer(ServerSession):
    """The protocol server, a streaming sum in O(d), and the decoding."""

    def __init__(
        self,
        spec: MaskingSpec,
        *,
        unmask: MaskRemover | None = None,
        mask_workers: int = UNMASK_WORKERS,
        graph_seed: bytes | None = None,
    ) -> None:
        """``unmask`` / ``mask_workers``: how the masks come off at the close (the
        server's local choice; see :meth:`MaskingBackend.unmask_with`). ``graph_seed``:
        a replay's neighbour graph (see :meth:`AggregationBackend.server`)."""
        self.spec = spec
        self.config = spec.round_config()
        keys = spec.verify_keys() if spec.active else None
        self._server = Server(
            self.config,
            identity_keys=keys,
            mask_workers=mask_workers,
            unmask=unmask,
            graph_seed=graph_seed,
        )
        self._encoding = _RingEncoding(spec)

    def bind_round(self, context: bytes) -> None:
        """Run the round under :func:`protocol_round_id` of ``context`` and the spec,
        the id its bound clients accept. Before :meth:`start` only."""
        self._server.bind_round(protocol_round_id(check_context(context), self.spec))

    def start(self) -> list[Outgoing]:
        return [Announce(encode_spec(self.spec)), *self._out(self._server.start())]

    def handle(self, party: int, payload: bytes) -> list[Outgoing]:
        message = decode(payload_bytes(payload))
        if getattr(message, "sender", None) != party:
            raise ProtocolError(f"a message from client {party} claims another sender")
        return self._out(self._server.handle(message))

    def close_phase(self) -> list[Outgoing]:
        return self._out(self._server.close_phase())

    def abort(self, reason: str) -> list[Outgoing]:
        return self._out(self._server.abort(reason))

    @staticmethod
    def _out(messages: list[ServerMessage]) -> list[Outgoing]:
        return [ToParty(m.recipient, encode(m)) for m in messages]

    @property
    def phase(self) -> str:
        return self._server.phase.value

    def phase_of(self, party: int, payload: object) -> Phase | None:
        """The protocol phase whose message ``payload`` is, by its header's type byte
        (magic, version and type: the first 4 bytes), or None: not a protocol message of
        this version, or a kind no client sends. Changes nothing, never raises."""
        del party
        if not isinstance(payload, bytes | bytearray | memoryview):
            return None
        view = memoryview(payload)
        if view.ndim != 1 or view.itemsize != 1:
            return None  # not the flat bytes a message is
        head = bytes(view[: _PROTOCOL_HEAD.size])
        if len(head) < _PROTOCOL_HEAD.size:
            return None
        magic, version, kind = _PROTOCOL_HEAD.unpack(head)
        phase = _CLIENT_MESSAGE_PHASES.get(kind) if (magic, version) == (MAGIC, VERSION) else None
        return None if phase is None else _ranked(phase)

    @property
    def current_phase(self) -> Phase | None:
        return _ranked(self._server.phase)

    @property
    def waiting_for(self) -> frozenset[int]:
        return self._server.waiting_for

    @property
    def done(self) -> bool:
        return self._server.phase in (ServerPhase.COMPLETE, ServerPhase.ABORTED)

    def accusations(self) -> dict[int, frozenset[int]]:
        return {party: frozenset(by) for party, by in self._server.report.accused.items()}

    def inconsistent_shares(self) -> dict[int, frozenset[int]]:
        return {
            holder: frozenset(owners)
            for holder, owners in self._server.report.inconsistent_shares.items()
        }

    def contributors_before_reveal(self) -> int | None:
        if self._server.phase != ServerPhase.UNMASKING:
            return None
        return len(self._server.report.responders.get("masked_input", ()))

    def dropouts(self) -> dict[str, int]:
        """Clients lost in each phase that closed."""
        lost: dict[str, int] = {}
        before = self.spec.num_clients
        for phase, responders in self._server.report.responders.items():
            lost[phase] = before - len(responders)
            before = len(responders)
        return lost

    def finish(self) -> AggregationResult:
        server, spec = self._server, self.spec
        if server.phase != ServerPhase.COMPLETE:
            raise RoundAborted(server.report.abort_reason or "round did not complete")
        contributed, dropped = split_parties(spec.num_clients, server.report.included)
        total = self._encoding.decode(server.result())
        config = self.config
        details: dict[str, Any] = {
            "graph": config.graph.name.lower(),
            "k": config.degree,
            "t": config.threshold,
            "bits": spec.bits,
            "vector_length": config.vector_length,
            "scale": None if spec.noise_share is not None else spec.scale,
        }
        if spec.noise_share is None:
            bound = fixed_point_error_bound(len(contributed), spec.scale, spec.value_bound)
        else:
            # of the noised sum: the shares are the release, not an error (a report of
            # inf said nothing of the ring's and the floats' share in it)
            ddg = spec.noise_share.mechanism
            bound = ddg.decode_error_bound(len(contributed))
            details["error_bound_holds"] = (
                "against the noised sum (the clipped updates plus the noise shares as "
                "drawn), unless it wrapped the ring in some coordinate (planned at "
                f"probability {ddg.wrap_probability:g} per coordinate)"
            )
            details["noise_stddev_of_sum"] = ddg.sum_stddev(len(contributed))
        report = AggregationReport(
            backend=spec.name,
            num_clients=spec.num_clients,
            dimension=spec.dimension,
            contributed=contributed,
            dropped=dropped,
            error_bound=bound,
            threat_model=_threat_model(spec, config.colluders),
            details=details,
            dropouts=self.dropouts(),
        )
        return AggregationResult(total, report)


#: how far below its planned scale a noise share's scale may lie and still be the plan's
#: (two machines' float64 planners may differ in a last digit; a coarser scale by this
#: much moves no share's whole units)
SCALE_PLAN_TOLERANCE = 1e-9


def _check_share_scale(ddg: DistributedDiscreteGaussian, policy: BranchPolicy) -> None:
    """Refuse a noise share coarser than its parameters plan, for a branch with a
    noise floor.

    Why: the floor was checked on the nominal ``z`` alone, but at a coarser scale each
    share rounds up to a few whole units while the rounded update's sensitivity
    inflates with the unit, so the noise per unit of sensitivity falls far below ``z``:
    ``z = 1`` at scale 2.5 (10 clients, d = 1024) ran at 0.19, one round's epsilon 38
    against 4.8, and a branch with ``min_noise_multiplier = 1`` took it. The honest
    planner always takes the planned scale (:attr:`DistributedDiscreteGaussian.planned_scale`),
    which the branch recomputes from the spec; a finer one only helps."""
    if policy.min_noise_multiplier is None:
        return
    planned = ddg.planned_scale
    if ddg.scale >= planned * (1 - SCALE_PLAN_TOLERANCE):
        return
    effective = math.sqrt(ddg.expected_clients) * ddg.local_sigma / ddg.sensitivity
    in_effect = shown(effective, 3, significant=True, lower=True)  # never more than ran
    raise policy.refuse(
        "min_noise_multiplier",
        f"the noise share's scale {ddg.scale:g} is coarser than its parameters plan "
        f"({planned:g}): each share rounds to {ddg.local_sigma} unit(s) against a "
        f"sensitivity inflated by the rounding, a noise multiplier of "
        f"{in_effect} in effect, not {ddg.noise_multiplier:g}",
    )


def fixed_point_error_bound(contributors: int, scale: float, value_bound: float) -> float:
    """The most a fixed-point sum of ``contributors`` values bounded by ``value_bound``
    decodes away from their true sum, per coordinate, at any positive ``scale``.

    Three float64 roundings of a value of magnitude at most ``k * value_bound`` (each half
    an ulp, ``2^-53`` of it) besides the clients' stochastic rounding (under one unit,
    ``1 / scale``, each): the product ``x * scale`` before rounding (exact only for a
    power-of-two scale), the int64 sum read as a float64, and its division by the scale
    (exact only for a power of two). Written ``k * (1/scale * (1 + 2^-50) + C * 2^-50)``,
    so the bound computed in floats stays above the error.

    Why: the bound was ``k * (1/scale + C * 2^-52)``, which counts one of the three; a
    round of 10 clients at C = 3.21 on 64 bits with a scale of 1.03e17 returned a sum
    8.9e-15 off with a reported bound of 7.2e-15 (1.23 times it)."""
    unit = (1 / scale) * (1 + 2.0**-50)
    return contributors * (unit + value_bound * 2.0**-50)


def _threat_model(spec: MaskingSpec, colluders: int) -> str:
    """The report's threat model: the server the round's variant holds against, then
    the dropouts and colluders its parameters were sized for.

    Why by variant: every report said "honest-but-curious server", the active
    variant's too, whose signed keys and survivor sets, and t sized for colluders
    placed anywhere, hold against a server that lies about who dropped out or picks
    the graph seed (docs/protocol.md, "Threat model"); and the passive report did not
    say that such a server is outside its model."""
    sized = (
        f"parameters sized for {_percent_down(spec.dropout_fraction)} dropout and "
        f"{_percent_down(spec.corrupt_fraction)} clients colluding with it"
        f"{_colluders_counted(spec, colluders)}"
    )
    if spec.active:
        return (
            "active variant: a server that deviates (lies about who dropped out, picks the "
            "graph seed) learns only the sum of the contributions it received, the clients "
            "signing their keys and survivor sets under identities it cannot issue itself "
            f"(a CA that is not the server operator's); {sized}, placed anywhere"
        )
    return (
        "passive variant: honest-but-curious server learns only the sum of the "
        f"contributions it received; {sized}; a server that deviates (lies about who "
        "dropped out) is outside this variant's model"
    )


def _colluders_counted(spec: MaskingSpec, colluders: int) -> str:
    """The population the round's colluders were counted over, and how many: what the
    corrupt fraction of the threat model is a fraction *of*.

    Why: a round of 20 drawn from 100 at 5 % is sized for the population's 5 colluders
    (the server that draws it may put all of them in it); "5.0% clients colluding"
    alone read as 1 of the round's 20 (second review of colluders, 2026-12-07)."""
    drawn = spec.drawn_from()
    counted = f"{colluders} colluder" + ("" if colluders == 1 else "s")
    if drawn > spec.num_clients:
        who = "who" if colluders == 1 else "every one of whom"
        return (
            f", of the population of {drawn} clients the round was drawn from "
            f"({counted}, {who} may be in the round)"
        )
    return f" ({counted} of its {spec.num_clients} clients)"


def _percent_down(fraction: float) -> str:
    """``fraction`` as a percentage rounded *down* to 0.1 %.

    Why: the report says what a round was sized for, a privacy claim, and must never
    claim more tolerance than the round has; ``f"{0.126:.0%}"`` read "13%" and 0.195
    "20%". Rounded from the shortest decimal that reads back as the float (``repr``),
    so 0.29 is 29 %, not the 28.9 % of its binary value times 1000."""
    tenths = math.floor(Decimal(repr(float(fraction))) * 1000)
    return f"{tenths / 10:g}%"


def _real(name: str, value: object) -> float:
    """``value`` as a float if it is a real number (not a bool), else a ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"{name} must be a number, not {value!r}")
    return float(value)


def _check_options(
    value_bound: object,
    bits: object,
    scale: object,
    dropout_fraction: object,
    corrupt_fraction: object,
) -> None:
    """Each option's type (and the ranges checked nowhere later), naming the option.

    Why here: the options were first used deep in planning, where ``bits=32.0`` failed
    as "unsupported operand for <<", ``bits=0`` as "negative shift count" and a string
    fraction as a TypeError in a comparison, while ``True`` passed as 1 (``scale=True``:
    one integer unit per 1.0, a sum off by up to n). The fractions' ranges stay with
    the SecAgg+ sizing that explains them."""
    bound = _real("value_bound", value_bound)
    if not (math.isfinite(bound) and bound > 0):
        raise ConfigurationError(f"value_bound must be positive and finite, not {value_bound!r}")
    if isinstance(bits, bool) or bits not in SUPPORTED_BITS or not isinstance(bits, int):
        raise ConfigurationError(f"bits must be one of {SUPPORTED_BITS}, not {bits!r}")
    if scale is not None:
        chosen = _real("scale", scale)
        if not (math.isfinite(chosen) and chosen > 0):
            raise ConfigurationError(f"scale must be positive and finite, not {scale!r}")
    _real("dropout_fraction", dropout_fraction)
    _real("corrupt_fraction", corrupt_fraction)


class MaskingBackend(AggregationBackend):
    """SecAgg (``graph="complete"``) or SecAgg+ (``graph="harary"``)."""

    round_options = ("noise_share", "identities")

    def __init__(
        self,
        *,
        graph: str = "harary",
        value_bound: float = 1.0,
        bits: int = 32,
        scale: float | None = None,
        dropout_fraction: float = DEFAULT_DROPOUT_FRACTION,
        corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION,
        active: bool = False,
        max_clients: int | None = None,
    ) -> None:
        """``active``: the malicious-server variant (signed keys and survivor sets); its
        rounds carry every party's identity, which :meth:`plan` takes as a round option.

        ``max_clients``: the federation's clients, the population every round is drawn
        from (a federation config sets it, as for CKKS). A round of fewer is planned
        for the colluders of that population, every one of whom the server drawing the
        round may put in it, and names the population in its spec and setup so each
        branch counts them too; None: every round is its own population."""
        if graph not in ("complete", "harary"):
            raise ConfigurationError(f"graph must be 'complete' or 'harary', not {graph!r}")
        if not isinstance(active, bool):  # bool("no") is True: another variant than named
            raise ConfigurationError(f"active must be True or False, not {active!r}")
        _check_options(value_bound, bits, scale, dropout_fraction, corrupt_fraction)
        self.name = "secagg" if graph == "complete" else "secagg+"
        self.value_bound = float(value_bound)
        self.bits = bits
        self.scale = scale
        self.dropout_fraction = dropout_fraction
        self.corrupt_fraction = corrupt_fraction
        self.active = active
        if max_clients is not None and (
            isinstance(max_clients, bool)
            or not isinstance(max_clients, numbers.Integral)
            or not 2 <= max_clients <= MAX_POPULATION
        ):
            raise ConfigurationError(
                f"max_clients must be an integer in [2, {MAX_POPULATION}], not {max_clients!r}"
            )
        self.max_clients = None if max_clients is None else int(max_clients)
        self._unmask: MaskRemover | None = None
        self._mask_workers = UNMASK_WORKERS

    def unmask_with(
        self, remover: MaskRemover | None = None, *, workers: int | None = None
    ) -> None:
        """How this server removes the masks at each round's close: ``workers`` threads
        over coordinate slices (None: up to 4 usable cores), or ``remover``, e.g. a
        :class:`~secagg.runtime.ray_slices.RayUnmasker` over the server's own cluster.
        A local execution choice: no round, branch or ledger row sees it, and every
        choice gives the same sum word for word."""
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise ConfigurationError("unmasking workers must be a positive integer")
        if remover is not None and not callable(remover):
            raise ConfigurationError("the unmasker must be callable (accumulator, add, subtract)")
        self._unmask = remover
        self._mask_workers = UNMASK_WORKERS if workers is None else workers

    @property
    def needs_identities(self) -> bool:
        return self.active

    def plan(
        self,
        num_clients: int,
        dimension: int,
        *,
        noise_share: NoiseShareRound | None = None,
        identities: tuple[bytes, ...] | None = None,
    ) -> MaskingSpec:
        check_round_size(num_clients, dimension, minimum_clients=2)
        if identities is not None and (
            isinstance(identities, str | bytes) or not isinstance(identities, tuple | list)
        ):
            raise ConfigurationError(
                f"identities must be a sequence of certificates, not {type(identities).__name__}"
            )
        if self.active and (identities is None or len(identities) != num_clients):
            raise ConfigurationError(
                "the active variant needs every party's identity (its certificate) to plan"
            )
        scale = self.scale
        if scale is None:
            scale = largest_safe_scale(num_clients, self.value_bound, self.bits)
        FixedPoint(scale, self.bits).check_headroom(num_clients, self.value_bound)
        spec = MaskingSpec(
            num_clients,
            dimension,
            self.name,
            self.bits,
            self.value_bound,
            scale,
            self.dropout_fraction,
            self.corrupt_fraction,
            noise_share,
            self.active,
            tuple(identities or ()) if self.active else (),
            self._population(num_clients),
        )
        if spec.population:
            # a round too small for its population's colluders is refused here, naming
            # the numbers, not by every branch after the round started
            spec.round_config()
        return spec

    def _population(self, num_clients: int) -> int:
        """The population a round of ``num_clients`` is drawn from, as its spec names it:
        ``max_clients`` when the round is smaller, else 0 (the round is the population)."""
        if self.max_clients is None or self.max_clients <= num_clients:
            return 0
        return self.max_clients

    def server(
        self, spec: RoundSpec, *, noise_stddev: float = 0.0, public_seed: bytes | None = None
    ) -> MaskingServer:
        return MaskingServer(
            self._own(spec),
            unmask=self._unmask,
            mask_workers=self._mask_workers,
            graph_seed=None
            if public_seed is None
            else derive(b"secagg/v1/graph-seed", public_seed, size=GRAPH_SEED_BYTES),
        )

    def open_client(
        self,
        spec: RoundSpec,
        party: int,
        *,
        rounding: KeyedStream | None,
        policy: BranchPolicy | None,
        identity: RoundIdentity | None = None,
    ) -> MaskingClient:
        return MaskingClient(self._own(spec), party, rounding, policy, identity)

    def _own(self, spec: RoundSpec) -> MaskingSpec:
        if not isinstance(spec, MaskingSpec) or spec.name != self.name:
            raise ConfigurationError(
                f"a {spec_label(spec)} round spec given to the {self.name} backend"
            )
        return spec


__all__ = [
    "MaskingBackend",
    "MaskingClient",
    "MaskingServer",
    "MaskingSpec",
    "fixed_point_error_bound",
    "largest_safe_scale",
]
