"""The server role of SecAgg / SecAgg+, as a sans-I/O state machine.

Theory of operation
-------------------
The server announces a round (:meth:`Server.start`), then consumes client
messages through :meth:`Server.handle`, which returns the messages to send
(each names its recipient). It has no clock: a transport or simulator calls
:meth:`Server.close_phase` when the phase's deadline passes, and every client
that has not answered by then has dropped out. A phase also closes by itself
once every expected client has answered.

Phases and the participant sets of Bonawitz et al.::

    ADVERTISE_KEYS     collect AdvertiseKeys from U0 (everyone)  -> U1
    SHARE_KEYS         collect ShareKeys from U1                 -> U2
    MASKED_INPUT       collect MaskedInput from U2, summing each
                       vector into one accumulator on arrival    -> U3
    CONSISTENCY_CHECK  (active only) signatures of U3 from U3    -> U4
    UNMASKING          shares from U3 (U4 when active)           -> U5
    COMPLETE | ABORTED

Every closing checks the threshold t; below it the round aborts with a reason.
The masked-input closing also aborts if the survivors U3 are not connected in
the neighbour graph: unmasking them would reveal each piece's sum alone. The
consistency closing aborts if an owner whose secret is needed has fewer than t
holders among the signers U4: its holders would refuse to reveal (they hold the
check per neighbourhood), and too few are left to rebuild it anyway.
At unmasking the server rebuilds the self-mask seed b_u of every survivor and
the mask key s_u of every client that dropped after sharing keys, checks each
against what the client committed to (a hash commitment for b_u, the advertised
public key for s_u), and removes all masks in one chunked pass over the
accumulator. A secret whose t smallest shares fail that check is rebuilt from t
others that pass it (decoding a few wrong shares, trying subsets otherwise); an
owner without such t shares aborts the round: a wrong sum is never released.
Holders off the rebuilt polynomial are recorded in ``report.inconsistent_shares``
as disputed pairs (the holder lied, or the owner dealt it a wrong share). Memory
is one vector of d words plus keys and shares, never one vector per client.

Validation happens before any state change, so a refused message (wrong round,
unknown or duplicate sender, out of phase, malformed content, bad signature)
leaves the server exactly as it was. Low-order X25519 keys are refused at
advertisement: they would make every neighbour's key agreement fail.

Accusations. A client whose neighbour's sealed shares do not open names that
neighbour in its masked input instead of dropping out. The server records them
in ``report.accused`` (accused -> accusers) and expects no shares of the accused
from the accuser at unmasking. An accuser masks with the accused like with any
neighbour and reveals no seed (message version 3), so pair masks cancel as
without accusations and a dropped accused's masks come off through its mask key,
rebuilt from its other holders. The accused stays in the round; whether to keep
it in the federation is the operator's decision.

Size: about 950 lines on purpose: a role's whole state machine in one file, as h11
does, so every transition and every refusal can be checked in one reading.
"""

from __future__ import annotations

import hmac
import itertools
import math
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from secagg.crypto import aead, kx, shamir
from secagg.crypto.prg import MaskRemover, accumulate_masks
from secagg.crypto.signing import VerifyKey
from secagg.errors import (
    ConfigurationError,
    CryptoError,
    DuplicateMessage,
    InvalidMessage,
    RoundAborted,
    SecretSharingError,
    UnexpectedMessage,
    UnknownParty,
    WrongRound,
)
from secagg.protocol import common, graph_params
from secagg.protocol.config import RoundConfig
from secagg.protocol.graph import NeighbourGraph
from secagg.protocol.messages import (
    COMMITMENT_BYTES,
    GRAPH_SEED_BYTES,
    KEY_BYTES,
    PAIR_SEED_BYTES,
    ROUND_ID_BYTES,
    AdvertiseKeys,
    ClientMessage,
    ConsistencyRequest,
    ConsistencySignature,
    KeyDirectory,
    KeyEntry,
    MaskedInput,
    Message,
    PartySignature,
    RoundAbort,
    RoundSetup,
    SealedShare,
    ServerMessage,
    ShareDelivery,
    ShareKeys,
    UnmaskingRequest,
    UnmaskingShares,
    check_fields,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

#: random t-subsets of an owner's shares tried when its t smallest do not open its secret
ROBUST_ATTEMPTS = 256

#: the size of every genuine sealed share: the AEAD's nonce and tag around the two shares
SEALED_SHARE_BYTES = aead.OVERHEAD + common.SEALED_PLAINTEXT_BYTES


class ServerPhase(Enum):
    NOT_STARTED = "not_started"
    ADVERTISE_KEYS = "advertise_keys"
    SHARE_KEYS = "share_keys"
    MASKED_INPUT = "masked_input"
    CONSISTENCY_CHECK = "consistency_check"
    UNMASKING = "unmasking"
    COMPLETE = "complete"
    ABORTED = "aborted"


_ACCEPTS: dict[type[Message], ServerPhase] = {
    AdvertiseKeys: ServerPhase.ADVERTISE_KEYS,
    ShareKeys: ServerPhase.SHARE_KEYS,
    MaskedInput: ServerPhase.MASKED_INPUT,
    ConsistencySignature: ServerPhase.CONSISTENCY_CHECK,
    UnmaskingShares: ServerPhase.UNMASKING,
}


@dataclass
class RoundReport:
    """Who took part in each phase; the same shape for every aggregation backend."""

    round_id: bytes
    num_clients: int
    threshold: int
    graph: str
    degree: int
    bits: int
    active: bool
    responders: dict[str, tuple[int, ...]] = field(default_factory=dict)
    status: str = "running"
    abort_reason: str | None = None
    #: accused party -> the clients whose masked input named it (its sealed
    #: shares did not open for them). Signed by each accuser in the active variant.
    accused: dict[int, set[int]] = field(default_factory=dict)
    #: holder -> the parties whose secret it revealed a share of that does not lie on
    #: the secret's committed polynomial: caught and left out at unmasking, where t
    #: other shares open the commitment (the round completes without it)
    inconsistent_shares: dict[int, set[int]] = field(default_factory=dict)

    @property
    def included(self) -> tuple[int, ...]:
        """Clients whose inputs are in the sum (those whose masked input arrived)."""
        return self.responders.get(ServerPhase.MASKED_INPUT.value, ())

    def dropped_in(self, phase: str) -> tuple[int, ...]:
        """Clients expected in ``phase`` that did not answer."""
        order = [p.value for p in ServerPhase][1:6]
        if phase not in order:
            raise ConfigurationError(f"unknown phase {phase!r}")
        index = order.index(phase)
        before: tuple[int, ...] = tuple(range(self.num_clients))
        for earlier in order[:index]:
            if earlier in self.responders:
                before = self.responders[earlier]
        now = self.responders.get(phase)
        if now is None:
            return ()
        return tuple(sorted(set(before) - set(now)))


@dataclass
class _Reveals:
    """Shares of one kind (self-mask seeds or mask keys) revealed at unmasking.

    Kept as one array per reveal message, never one object per share: a round at
    n = 1000 reveals some 35,000 shares, and building a ``Share`` for each cost more
    server CPU than reconstructing them. The close picks each secret's shares by
    array indexing (:meth:`pick`) and reconstructs all of them in one vectorised step.
    """

    limbs: int
    owners: list[int] = field(default_factory=list)  # owner of every share, arrival order
    points: list[int] = field(default_factory=list)  # share point of every reveal
    counts: list[int] = field(default_factory=list)  # shares in every reveal
    values: list[np.ndarray] = field(default_factory=list)  # (count, limbs) uint32 each

    def add(self, point: int, owners: list[int], values: np.ndarray) -> None:
        self.owners.extend(owners)
        self.points.append(point)
        self.counts.append(len(owners))
        self.values.append(values)

    def count_by_owner(self, parties: int) -> list[int]:
        """Shares received of each owner ``0 .. parties - 1``."""
        return np.bincount(np.asarray(self.owners, dtype=np.int64), minlength=parties).tolist()

    def pick(self, required: Sequence[int], t: int) -> tuple[np.ndarray, np.ndarray]:
        """Points ``(len(required), t)`` and values ``(len(required), t, limbs)`` of the
        ``t`` smallest share points of each required owner (each must have ``t``):
        the shares :func:`~secagg.crypto.shamir.reconstruct_many` would pick."""
        owners = np.asarray(self.owners, dtype=np.int64)
        points = np.repeat(np.asarray(self.points, dtype=np.int64), self.counts)
        order = np.lexsort((points, owners))  # by owner, then by point
        first = np.searchsorted(owners[order], np.asarray(required, dtype=np.int64))
        chosen = order[first[:, None] + np.arange(t)]
        values = (
            np.concatenate(self.values)
            if self.values
            else np.empty((0, self.limbs), dtype=np.uint32)
        )
        return points[chosen], values[chosen]

    def all_of(self, owner: int) -> tuple[np.ndarray, np.ndarray]:
        """Every share point ``(m,)`` and value ``(m, limbs)`` received of ``owner``."""
        owners = np.asarray(self.owners, dtype=np.int64)
        points = np.repeat(np.asarray(self.points, dtype=np.int64), self.counts)
        mine = np.flatnonzero(owners == owner)
        values = (
            np.concatenate(self.values)
            if self.values
            else np.empty((0, self.limbs), dtype=np.uint32)
        )
        return points[mine], values[mine]

    def by_owner(self) -> dict[int, list[shamir.Share]]:
        """Owner -> its shares in arrival order, as ``Share`` objects (for inspection)."""
        out: dict[int, list[shamir.Share]] = {}
        owners = iter(self.owners)
        for point, values in zip(self.points, self.values, strict=True):
            for row in values.tolist():
                out.setdefault(next(owners), []).append(shamir.Share(point, tuple(row)))
        return out


class Server:
    """The aggregator's side of one secure-aggregation round."""

    def __init__(
        self,
        config: RoundConfig,
        *,
        identity_keys: Mapping[int, VerifyKey] | None = None,
        round_id: bytes | None = None,
        graph_seed: bytes | None = None,
        mask_workers: int = 1,
        unmask: MaskRemover | None = None,
    ) -> None:
        """``mask_workers`` threads remove the masks at unmasking, each over its own slice
        of coordinates (:func:`~secagg.crypto.prg.accumulate_masks`): the same sum, sooner
        on a multi-core server. ``unmask`` replaces that step altogether, e.g. by slices
        on other machines of the server's own cluster
        (:class:`~secagg.runtime.ray_slices.RayUnmasker`); it must add exactly
        ``sum(PRG(add)) - sum(PRG(subtract))`` into the accumulator. Both are local
        choices, not part of the round. The state machine stays single-threaded and
        synchronous: the slices are joined before the close returns, and nothing else
        runs beside them."""
        if not isinstance(config, RoundConfig):  # a str failed as "no attribute 'active'"
            raise ConfigurationError(f"config must be a RoundConfig, not {type(config).__name__}")
        if isinstance(mask_workers, bool) or not isinstance(mask_workers, int) or mask_workers < 1:
            raise ConfigurationError("mask_workers must be a positive integer")
        if unmask is not None and not callable(unmask):
            raise ConfigurationError("unmask must be callable (accumulator, add, subtract)")
        if config.active and (
            identity_keys is None or set(identity_keys) != set(range(config.num_clients))
        ):
            raise ConfigurationError("the active variant needs an identity key for every client")
        for party, key in (identity_keys or {}).items():
            if not callable(getattr(key, "verify", None)):  # an AttributeError mid-round
                raise ConfigurationError(
                    f"the identity key of party {party!r} must be a verify key, "
                    f"not {type(key).__name__}"
                )
        self.config = config
        self.round_id = round_id if round_id is not None else os.urandom(ROUND_ID_BYTES)
        if not isinstance(self.round_id, bytes) or len(self.round_id) != ROUND_ID_BYTES:
            raise ConfigurationError(f"round id must be {ROUND_ID_BYTES} bytes")
        seed = graph_seed if graph_seed is not None else os.urandom(GRAPH_SEED_BYTES)
        self.graph = NeighbourGraph(config.num_clients, config.graph, config.degree, seed)
        self._identity_keys = dict(identity_keys or {})
        self._mask_workers = mask_workers
        self._unmask = unmask
        self.phase = ServerPhase.NOT_STARTED
        self.report = RoundReport(
            self.round_id,
            config.num_clients,
            config.threshold,
            config.graph.name.lower(),
            config.degree,
            config.bits,
            config.active,
        )
        self._expected: frozenset[int] = frozenset()
        self._received: set[int] = set()
        self._setup_digest = b""  # common.setup_digest of the setup sent, set by start()
        self._keys: dict[int, KeyEntry] = {}
        self._commitments: dict[int, bytes] = {}
        self._inbox: dict[int, list[SealedShare]] = {}
        self._accumulator: np.ndarray | None = None
        self._survivors: tuple[int, ...] = ()
        self._dropped: tuple[int, ...] = ()
        # the same two sets as frozensets, built once at the masked-input close: the
        # unmasking bookkeeping asks about them for every message (O(1), not O(n))
        self._survivor_set: frozenset[int] = frozenset()
        self._dropped_set: frozenset[int] = frozenset()
        self._signatures: dict[int, bytes] = {}
        self._accusations: dict[int, frozenset[int]] = {}  # accuser -> the parties it accused
        self._seed_reveals = _Reveals(shamir.limbs_for(common.SELF_MASK_SEED_BYTES))
        self._key_reveals = _Reveals(shamir.limbs_for(common.MASK_KEY_BYTES))
        self._result: np.ndarray | None = None
        # the colluders the round is sized for: no more can frame an honest holder
        self._colluders = config.colluders  # of the population it was drawn from, if any
        self._bridging_colluders = self._colluders_sized_for() if config.active else 0

    def _colluders_sized_for(self) -> int:
        """How many colluding survivors the active connectivity check leaves out: the
        round's ``c`` when its k and t are sized for it (as ``RoundConfig.create``'s
        defaults are, and every round a deployed client's policy accepts), else none.

        Why not always ``c``: a caller-chosen k and t below that sizing is research,
        whose in-memory clients skip the policy (``ClientPolicy(check_parameters=False)``)
        and leave no colluders out either; with k <= c even a round without dropouts
        falls apart once c are left out, so such a round could never run."""
        c = self.config
        minimum = graph_params.minimum_threshold(
            c.num_clients,
            c.degree,
            semi_malicious=True,
            corrupt_fraction=c.corrupt_fraction,
            dropout_fraction=c.dropout_fraction,
            min_colluders=c.sized_min_colluders,
        )
        return self._colluders if minimum is not None and c.threshold >= minimum else 0

    # -- public API ------------------------------------------------------------

    def bind_round(self, round_id: bytes) -> None:
        """Run the round under ``round_id`` instead of the one drawn at construction.

        For a caller that derives the id from facts its clients check themselves (a
        federation's round number and spec, :mod:`secagg.aggregation.masking`), so
        that a client refuses any other. Only before :meth:`start`: every message
        and every key derivation of the round carries the id."""
        if not isinstance(round_id, bytes) or len(round_id) != ROUND_ID_BYTES:
            raise ConfigurationError(f"round id must be {ROUND_ID_BYTES} bytes")
        if self.phase != ServerPhase.NOT_STARTED:
            raise UnexpectedMessage("the round has already started: its round id is fixed")
        self.round_id = round_id
        self.report.round_id = round_id

    def start(self) -> list[ServerMessage]:
        """Announce the round to every client."""
        if self.phase != ServerPhase.NOT_STARTED:
            raise UnexpectedMessage("the round has already started")
        c = self.config
        setups = [
            RoundSetup(
                self.round_id,
                party,
                c.num_clients,
                c.vector_length,
                c.bits,
                c.threshold,
                c.graph,
                c.degree,
                self.graph.seed,
                c.active,
                c.population or 0,
            )
            for party in range(c.num_clients)
        ]
        # the clients sign their keys over this (active variant); one for all of them
        self._setup_digest = common.setup_digest(setups[0])
        self._enter(ServerPhase.ADVERTISE_KEYS, frozenset(range(c.num_clients)))
        return setups

    @property
    def waiting_for(self) -> frozenset[int]:
        """Clients whose message for the current phase has not arrived yet: nobody once
        the round has ended (an abort kept the aborted phase's stragglers here, so a
        caller asking a finished round whom it awaits was told a list of parties)."""
        if self.phase in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            return frozenset()
        return self._expected - self._received

    @property
    def _seed_shares(self) -> dict[int, list[shamir.Share]]:
        """Self-mask shares revealed so far, by owner (a view built on demand)."""
        return self._seed_reveals.by_owner()

    @property
    def _key_shares(self) -> dict[int, list[shamir.Share]]:
        """Mask-key shares revealed so far, by owner (a view built on demand)."""
        return self._key_reveals.by_owner()

    def handle(self, message: Message) -> list[ServerMessage]:
        """Accept one client message; returns messages to send (the next phase's, if it closed)."""
        self._validate_envelope(message)
        assert isinstance(message, ClientMessage)
        match message:
            case AdvertiseKeys():
                self._on_advertise(message)
            case ShareKeys():
                self._on_share_keys(message)
            case MaskedInput():
                self._on_masked_input(message)
            case ConsistencySignature():
                self._on_consistency(message)
            case UnmaskingShares():
                self._on_unmasking(message)
        # O(1) per message: a sender is counted once and only if expected (the envelope
        # check refuses the rest), so equal sizes mean nobody is left; the set
        # difference of waiting_for cost O(n) a message, O(n^2) a round (perf review)
        if len(self._received) == len(self._expected):
            return self.close_phase()
        return []

    def close_phase(self) -> list[ServerMessage]:
        """End the current phase (deadline or everyone answered); silent clients have dropped."""
        closers = {
            ServerPhase.ADVERTISE_KEYS: self._close_advertise,
            ServerPhase.SHARE_KEYS: self._close_share_keys,
            ServerPhase.MASKED_INPUT: self._close_masked_input,
            ServerPhase.CONSISTENCY_CHECK: self._close_consistency,
            ServerPhase.UNMASKING: self._close_unmasking,
        }
        if self.phase not in closers:
            raise UnexpectedMessage(f"no phase to close in state {self.phase.value}")
        responders = tuple(sorted(self._received))
        self.report.responders[self.phase.value] = responders
        if len(responders) < self.config.threshold:
            return self._abort(
                f"{len(responders)} clients answered in {self.phase.value}, "
                f"below the threshold of {self.config.threshold}"
            )
        try:
            return closers[self.phase]()
        except RoundAborted as exc:
            return self._abort(exc.reason)

    def result(self) -> np.ndarray:
        """The modular sum of the included clients' inputs, or :class:`RoundAborted`."""
        if self.phase == ServerPhase.ABORTED:
            raise RoundAborted(self.report.abort_reason or "aborted", phase="server")
        if self.phase != ServerPhase.COMPLETE or self._result is None:
            raise UnexpectedMessage(f"the round is not complete (phase {self.phase.value})")
        return self._result

    def abort(self, reason: str) -> list[ServerMessage]:
        """Abort on the operator's request (e.g. shutdown); nothing is released.

        ``reason`` is text that every client is sent; anything else is refused before
        the round changes (an ``abort(None)`` aborted the round, then failed as an
        AttributeError when the notices were encoded)."""
        if not isinstance(reason, str):
            raise ConfigurationError(f"an abort reason is text, not {type(reason).__name__}")
        if self.phase in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            raise UnexpectedMessage(f"the round is already {self.phase.value}")
        return self._abort(reason)

    # -- plumbing ----------------------------------------------------------------

    def _enter(self, phase: ServerPhase, expected: frozenset[int]) -> None:
        self.phase = phase
        self._expected = expected
        self._received = set()

    def _abort(self, reason: str) -> list[ServerMessage]:
        notify = sorted(self._expected) if self._expected else []
        self.phase = ServerPhase.ABORTED
        self.report.status = "aborted"
        self.report.abort_reason = reason
        self._accumulator = None
        self._inbox.clear()
        return [RoundAbort(self.round_id, p, reason) for p in notify]

    def _validate_envelope(self, message: Message) -> None:
        if not isinstance(message, ClientMessage):
            raise UnexpectedMessage(f"the server does not accept {type(message).__name__}")
        # every field of the type the codec gives it, first: True and 1.0 as a sender
        # equal 1 and hash alike (taken in party 1's place, whose own message was then
        # a duplicate), a str commitment was stored and failed at the unmasking close
        check_fields(message)
        if message.round_id != self.round_id:
            raise WrongRound("message belongs to another round")
        accepting = _ACCEPTS.get(type(message))
        if accepting != self.phase:
            raise UnexpectedMessage(
                f"{type(message).__name__} is not accepted in phase {self.phase.value}"
            )
        if message.sender in self._received:
            raise DuplicateMessage(f"second {type(message).__name__} from party {message.sender}")
        if message.sender not in self._expected:
            raise UnknownParty(
                f"party {message.sender} is not expected in phase {self.phase.value}"
            )

    # -- phase 1: keys -------------------------------------------------------------

    def _on_advertise(self, msg: AdvertiseKeys) -> None:
        if len(msg.channel_key) != KEY_BYTES or len(msg.mask_key) != KEY_BYTES:
            raise InvalidMessage("advertised keys have the wrong size")
        if hmac.compare_digest(msg.channel_key, msg.mask_key):
            raise InvalidMessage("channel and mask keys must differ")
        for name, raw in (("channel", msg.channel_key), ("mask", msg.mask_key)):
            try:
                kx.check_public_key(raw)
            except CryptoError as exc:
                raise InvalidMessage(
                    f"party {msg.sender} advertised an invalid {name} key: {exc}"
                ) from exc
        if self.config.active:
            self._identity_keys[msg.sender].verify(
                msg.signature,
                common.advertise_payload(
                    self.round_id, msg.sender, msg.channel_key, msg.mask_key, self._setup_digest
                ),
            )
        self._keys[msg.sender] = KeyEntry(msg.sender, msg.channel_key, msg.mask_key, msg.signature)
        self._received.add(msg.sender)

    def _close_advertise(self) -> list[ServerMessage]:
        u1 = frozenset(self._received)
        for party in list(self._keys):
            if party not in u1:
                del self._keys[party]
        out: list[ServerMessage] = []
        for party in sorted(u1):
            entries = tuple(self._keys[v] for v in sorted(self.graph.neighbours(party) & u1))
            out.append(KeyDirectory(self.round_id, party, entries))
        self._enter(ServerPhase.SHARE_KEYS, u1)
        return out

    # -- phase 2: shares -------------------------------------------------------------

    def _on_share_keys(self, msg: ShareKeys) -> None:
        if len(msg.self_mask_commitment) != COMMITMENT_BYTES:
            raise InvalidMessage("self-mask commitment has the wrong size")
        expected = self.graph.neighbours(msg.sender) & self._expected
        recipients = [s.peer for s in msg.shares]
        if len(set(recipients)) != len(recipients):
            raise DuplicateMessage(f"party {msg.sender} sent two shares to one recipient")
        if set(recipients) != expected:
            raise InvalidMessage(
                f"party {msg.sender} must send shares to exactly its {len(expected)} "
                f"keyed neighbours, sent {len(recipients)}"
            )
        # every genuine sealed share has one size; a longer one would let a sender inflate
        # its neighbour's ShareDelivery past the transport's message limit and abort the
        # round without missing a phase (runtime audit 2026-12-04)
        if any(len(share.ciphertext) != SEALED_SHARE_BYTES for share in msg.shares):
            raise InvalidMessage(
                f"party {msg.sender} sent a sealed share that is not {SEALED_SHARE_BYTES} bytes"
            )
        for share in msg.shares:
            self._inbox.setdefault(share.peer, []).append(SealedShare(msg.sender, share.ciphertext))
        self._commitments[msg.sender] = msg.self_mask_commitment
        self._received.add(msg.sender)

    def _close_share_keys(self) -> list[ServerMessage]:
        u2 = frozenset(self._received)
        out: list[ServerMessage] = []
        for party in sorted(u2):
            bundle = tuple(s for s in self._inbox.get(party, ()) if s.peer in u2)
            out.append(ShareDelivery(self.round_id, party, bundle))
        self._inbox.clear()
        self._accumulator = np.zeros(
            self.config.vector_length, dtype=common.word_dtype(self.config.bits)
        )
        self._enter(ServerPhase.MASKED_INPUT, u2)
        return out

    # -- phase 3: masked inputs ---------------------------------------------------------

    def _on_masked_input(self, msg: MaskedInput) -> None:
        assert self._accumulator is not None
        if msg.bits != self.config.bits:
            raise InvalidMessage(
                f"masked input has {msg.bits}-bit words, round uses {self.config.bits}"
            )
        vector = msg.vector
        if (
            not isinstance(vector, np.ndarray)
            or vector.ndim != 1
            or vector.dtype != self._accumulator.dtype
        ):
            raise InvalidMessage("masked input is not a vector of the round's word type")
        if len(vector) != self.config.vector_length:
            raise InvalidMessage(
                f"masked input has {len(vector)} coordinates, round has {self.config.vector_length}"
            )
        accused = self._check_accusations(msg)
        np.add(self._accumulator, vector, out=self._accumulator)
        if accused:
            self._accusations[msg.sender] = accused
            for party in accused:
                self.report.accused.setdefault(party, set()).add(msg.sender)
        self._received.add(msg.sender)

    def _check_accusations(self, msg: MaskedInput) -> frozenset[int]:
        """The validated accusations of a masked input: the parties it accuses.

        A client can accuse only a neighbour whose shares the server delivered
        to it (a sender in U2), each at most once, in increasing order; in the
        active variant a non-empty list must carry the sender's signature, and
        no signature is accepted where none is expected.

        The accuser masked with the accused using the mask key it saw for it. If
        that is not the key the accused advertised (a relay altered it: the AEAD
        binding of both parties' keys is what made the share fail), the two pair
        seeds differ, the masks would not cancel and nobody could remove them, so
        the input is refused and its sender counts as dropped: its masks then come
        off through its mask key, with the seeds its neighbours really used.
        """
        if not msg.accusations:
            if msg.signature:
                raise InvalidMessage("a signature on a masked input without accusations")
            return frozenset()
        ids = tuple(a.party for a in msg.accusations)
        if not common.is_strictly_increasing(ids):
            raise InvalidMessage("accusations must be sorted by party, without duplicates")
        delivered = self.graph.neighbours(msg.sender) & self._expected
        for a in msg.accusations:
            if a.party not in delivered:
                raise InvalidMessage(
                    f"party {msg.sender} accuses party {a.party}, which sent it no shares"
                )
        if self.config.active:
            self._identity_keys[msg.sender].verify(
                msg.signature,
                common.accusation_payload(self.round_id, msg.sender, msg.accusations),
            )
        elif msg.signature:
            raise InvalidMessage("a signature on accusations in the passive variant")
        for a in msg.accusations:
            if not hmac.compare_digest(a.mask_key, self._keys[a.party].mask_key):
                raise InvalidMessage(
                    f"party {msg.sender} masked with party {a.party} under a mask key other "
                    f"than the one {a.party} advertised (altered in relay?): that mask cannot "
                    "be removed"
                )
        return frozenset(a.party for a in msg.accusations)

    def _close_masked_input(self) -> list[ServerMessage]:
        u2 = self._expected
        u3 = tuple(sorted(self._received))
        self._survivors = u3
        self._dropped = tuple(sorted(u2 - set(u3)))
        self._survivor_set = frozenset(u3)
        self._dropped_set = frozenset(self._dropped)
        self._check_survivors_connected()
        self._check_accused_recoverable()
        if self.config.active:
            self._enter(ServerPhase.CONSISTENCY_CHECK, frozenset(u3))
            return [ConsistencyRequest(self.round_id, p, u3) for p in u3]
        self._enter(ServerPhase.UNMASKING, frozenset(u3))
        return [UnmaskingRequest(self.round_id, p, u3, self._dropped) for p in u3]

    def _check_survivors_connected(self) -> None:
        """Abort, before any share is asked for, if the survivors fall apart in the graph.

        The unmasking reveals every survivor's self-mask and every dropped client's mask
        key; only survivor-to-survivor pair masks stay secret. When the dropouts cut the
        SecAgg+ ring in two places (k/2 neighbours in a row, twice), each arc's pair
        masks cancel inside it and the unmasked inputs would give the server the sum of
        each arc alone. Before, such a round completed (n = 30, k = 6: 6 dropouts at
        masked input exposed two sums of 12 clients), a partial sum fcp's parameter
        search makes unlikely only while dropouts stay within the tolerated fraction.
        """
        if not self.graph.connects(self._survivors):
            raise RoundAborted(
                f"the {len(self._survivors)} survivors are not connected in the neighbour "
                "graph (dropouts cut the ring): unmasking would reveal partial sums",
                phase="masked_input",
            )
        # active: every client refuses survivors that only colluders hold together
        # (Client._survivor_checks, its own policy's c); saying so here, with the c
        # the round is sized for, beats a refusal from every client
        leave_out = self._bridging_colluders
        if leave_out and not self.graph.connects_despite(self._survivors, leave_out):
            raise RoundAborted(
                f"the {len(self._survivors)} survivors fall apart in the neighbour graph "
                f"once {leave_out} colluding survivors are left out: unmasking would "
                "reveal partial sums of honest inputs",
                phase="masked_input",
            )

    def _check_accused_recoverable(self) -> None:
        """Abort now, naming the accused, if its accusers leave fewer than t holders.

        An accuser keeps no share of the accused, so a client accused by most
        of its holders (e.g. one that sealed garbage for everyone) cannot have
        its self-mask (or, dropped, its mask key) rebuilt and the round cannot
        finish. Saying so at once, with who accused whom, beats an anonymous
        shortfall at unmasking: the operator learns which client to exclude.
        """
        survivors = self._survivor_set
        for owner, accusers in sorted(self.report.accused.items()):
            if owner not in survivors and not self.graph.neighbours(owner) & survivors:
                continue  # dropped, and no survivor's input carries its masks
            able = (self.graph.holders(owner) & survivors) - accusers
            if len(able) < self.config.threshold:
                raise RoundAborted(
                    f"party {owner}'s shares did not open for {sorted(accusers)}; at most "
                    f"{len(able)} holders can rebuild its secrets, {self.config.threshold} "
                    "needed",
                    phase="masked_input",
                )

    # -- phase 4: consistency check (active variant) ---------------------------------------

    def _on_consistency(self, msg: ConsistencySignature) -> None:
        self._identity_keys[msg.sender].verify(
            msg.signature, common.consistency_payload(self.round_id, self._survivors)
        )
        self._signatures[msg.sender] = msg.signature
        self._received.add(msg.sender)

    def _close_consistency(self) -> list[ServerMessage]:
        u4 = tuple(sorted(self._received))
        self._check_owners_confirmed(frozenset(u4))
        sigs = tuple(PartySignature(p, self._signatures[p]) for p in u4)
        self._enter(ServerPhase.UNMASKING, frozenset(u4))
        return [
            UnmaskingRequest(self.round_id, p, self._survivors, self._dropped, sigs) for p in u4
        ]

    def _check_owners_confirmed(self, signers: frozenset[int]) -> None:
        """Abort, before any share is asked for, if an owner whose secret the unmasking
        needs has fewer than t of its holders among the signers.

        A client reveals a share of an owner only if t of that owner's holders signed
        the survivor set (the consistency check held per neighbourhood, as SecAgg+
        needs it: ``Client._check_neighbourhood_signatures``). Such an owner has fewer
        than t holders left to reveal its shares anyway, so the round could not finish;
        before, its request went out, every holder of that owner refused it, and the
        round ended at the unmasking deadline. Saying so now names the owner. The
        complete graph never gets here: every survivor holds every owner's shares and
        t signed, or the phase closed below the threshold."""
        if self.graph.degree >= self.graph.num_clients - 1:
            return
        t = self.config.threshold
        survivors = self._survivor_set
        needed = itertools.chain(
            self._survivors,
            (u for u in self._dropped if self.graph.neighbours(u) & survivors),
        )
        for owner in needed:
            confirmed = len(self.graph.holders(owner) & signers)
            if confirmed < t:
                raise RoundAborted(
                    f"only {confirmed} of party {owner}'s share holders signed the survivor "
                    f"set; {t} needed before its share can be revealed",
                    phase="consistency_check",
                )

    # -- phase 5: unmasking -------------------------------------------------------------------

    def _holds(self, holder: int) -> tuple[set[int], set[int]]:
        """Owners whose self-mask (resp. mask-key) shares ``holder`` must reveal.

        Not those it accused: it kept none of their shares.
        """
        owners = set(self.graph.neighbours(holder))
        owners.add(holder)
        owners.difference_update(self._accusations.get(holder, ()))
        return owners & self._survivor_set, owners & self._dropped_set

    def _on_unmasking(self, msg: UnmaskingShares) -> None:
        want_seed, want_key = self._holds(msg.sender)
        point = common.share_point(msg.sender)
        staged: list[tuple[_Reveals, list[int], np.ndarray]] = []
        for group, wanted, size, store in (
            (msg.self_mask_shares, want_seed, common.SELF_MASK_SHARE_BYTES, self._seed_reveals),
            (msg.mask_key_shares, want_key, common.MASK_KEY_SHARE_BYTES, self._key_reveals),
        ):
            owners = [r.owner for r in group]
            if len(owners) != len(wanted) or set(owners) != wanted:
                raise InvalidMessage(
                    f"party {msg.sender} revealed shares for the wrong set of owners"
                )
            try:  # one decode for the whole group: tens of thousands of shares a round
                values = shamir.decode_share_values([r.share for r in group], store.limbs)
            except SecretSharingError:
                for r in group:  # the slow path names the owner of the bad share
                    if len(r.share) != size:
                        raise InvalidMessage(
                            f"share of party {r.owner} has the wrong size"
                        ) from None
                for r in group:
                    try:
                        shamir.Share.from_bytes(point, r.share)
                    except SecretSharingError as exc:
                        raise InvalidMessage(f"share of party {r.owner}: {exc}") from exc
                raise InvalidMessage(f"party {msg.sender} revealed a bad share") from None
            staged.append((store, owners, values))
        for store, owners, values in staged:  # nothing stored before both groups passed
            store.add(point, owners, values)
        self._received.add(msg.sender)

    def _close_unmasking(self) -> list[ServerMessage]:
        assert self._accumulator is not None
        t = self.config.threshold
        survivors = self._survivors
        survivor_set = self._survivor_set
        dropped_with_survivors = [
            u for u in self._dropped if self.graph.neighbours(u) & survivor_set
        ]
        parties = self.config.num_clients
        seed_counts = self._seed_reveals.count_by_owner(parties)
        for owner in survivors:
            if seed_counts[owner] < t:
                raise RoundAborted(
                    f"only {seed_counts[owner]} shares of party {owner}'s "
                    f"self-mask arrived; {t} needed",
                    phase="unmasking",
                )
        key_counts = self._key_reveals.count_by_owner(parties)
        for owner in dropped_with_survivors:
            if key_counts[owner] < t:
                raise RoundAborted(
                    f"only {key_counts[owner]} shares of dropped party "
                    f"{owner}'s mask key arrived; {t} needed",
                    phase="unmasking",
                )
        seeds = self._reconstruct(
            self._seed_reveals,
            survivors,
            common.SELF_MASK_SEED_BYTES,
            self._opens_commitment,
            "self-mask of party {owner} does not match its commitment",
        )
        keys = self._reconstruct(
            self._key_reveals,
            dropped_with_survivors,
            common.MASK_KEY_BYTES,
            self._opens_mask_key,
            "mask key of dropped party {owner} does not match its advertised public key",
        )
        subtract: list[bytes] = list(seeds)
        add: list[bytes] = []
        peer_keys: dict[int, X25519PublicKey] = {}
        for owner, raw in zip(dropped_with_survivors, keys, strict=True):
            pair = kx.keypair_from_private_bytes(raw)  # checked by _opens_mask_key
            for peer in sorted(self.graph.neighbours(owner) & survivor_set):
                public = peer_keys.get(peer)
                if public is None:  # a survivor neighbours several dropped clients
                    public = peer_keys[peer] = kx.load_public_key(self._keys[peer].mask_key)
                seed = kx.derive_key(
                    pair.private,
                    public,
                    purpose=common.MASK_PURPOSE,
                    round_id=self.round_id,
                    party_a=owner,
                    party_b=peer,
                    length=PAIR_SEED_BYTES,
                )
                # the survivor added +PRG when the dropped owner had the smaller id
                (subtract if owner < peer else add).append(seed)
        try:
            if self._unmask is not None:
                self._unmask(self._accumulator, add, subtract)
            else:
                accumulate_masks(self._accumulator, add, subtract, workers=self._mask_workers)
        except Exception as exc:
            # Fail closed. The masks come off in place, slice by slice (threads, or a Ray
            # unmasker adding each worker's slice as it arrives), so a failure part-way
            # leaves some slices unmasked and some not. Before, the error escaped with
            # the round still in UNMASKING; the caller's next close_phase (its deadline)
            # removed the masks again from that accumulator and released a wrong sum.
            raise RoundAborted(
                f"removing the masks failed ({type(exc).__name__}: {exc}); the partly "
                "unmasked sum is discarded",
                phase="unmasking",
            ) from exc
        self._result = self._accumulator
        self._accumulator = None
        self.report.responders[ServerPhase.UNMASKING.value] = tuple(sorted(self._received))
        self.report.status = "complete"
        self.phase = ServerPhase.COMPLETE
        self._expected = frozenset()
        return []

    def _opens_commitment(self, owner: int, seed: bytes) -> bool:
        commitment = common.self_mask_commitment(self.round_id, owner, seed)
        return hmac.compare_digest(commitment, self._commitments[owner])

    def _opens_mask_key(self, owner: int, raw: bytes) -> bool:
        try:
            pair = kx.keypair_from_private_bytes(raw)
        except CryptoError:
            return False
        return hmac.compare_digest(pair.public_bytes, self._keys[owner].mask_key)

    def _reconstruct(
        self,
        reveals: _Reveals,
        owners: Sequence[int],
        secret_bytes: int,
        opens: Callable[[int, bytes], bool],
        failure: str,
    ) -> list[bytes]:
        """Each owner's secret, checked against what it committed to.

        The fast path rebuilds every secret of a kind at once from its t smallest share
        points. A secret that does not open its commitment (or public key), or whose
        shares combine to no secret at all, had a wrong share among those t; rather than
        abort, which let one holder revealing one wrong share stop every round (runtime
        audit 2026-12-04), the server looks for t of the owner's shares that do open it
        (:meth:`_robust_secret`). Only that owner is looked at again: one row's wrong
        shares no longer fail the whole batch (:func:`shamir.try_reconstruct_arrays`),
        which sent every owner to the slow path and aborted the round on any owner with
        exactly t shares, naming it though its shares were right. Only an owner without
        t shares that open its secret aborts the round: never a wrong sum."""
        t = self.config.threshold
        try:
            found = shamir.try_reconstruct_arrays(*reveals.pick(owners, t), secret_bytes)
        except SecretSharingError:  # malformed points or values: look owner by owner
            found = [None] * len(owners)
        secrets_: list[bytes] = []
        suspects: set[int] = set()  # share points found off an owner's polynomial so far
        for owner, secret in zip(owners, found, strict=True):
            if secret is None or not opens(owner, secret):
                secret = self._robust_secret(
                    reveals, owner, secret_bytes, opens, failure.format(owner=owner), suspects
                )
            secrets_.append(secret)
        return secrets_

    def _t_subsets(self, m: int) -> tuple[Iterable[tuple[int, ...]], bool]:
        """The t-subsets of ``m`` shares to try, and whether they are all of them.

        Every subset when there are at most :data:`ROBUST_ATTEMPTS`: random draws missed
        the one good subset of C(10, 7) = 120 (3 wrong shares among 10, t = 7) in about
        one round in eight, and the abort then said no t shares opened the secret,
        which was false. Otherwise :data:`ROBUST_ATTEMPTS` distinct random ones (OS
        CSPRNG; which subset is tried is public and harmless)."""
        t = self.config.threshold
        if m < t:
            return (), True
        if math.comb(m, t) <= ROBUST_ATTEMPTS:
            return itertools.combinations(range(m), t), True

        def draws() -> Iterator[tuple[int, ...]]:
            chooser = secrets.SystemRandom()
            seen: set[tuple[int, ...]] = set()
            while len(seen) < ROBUST_ATTEMPTS:  # C(m, t) > ROBUST_ATTEMPTS: it ends
                chosen = tuple(sorted(chooser.sample(range(m), t)))
                if chosen not in seen:
                    seen.add(chosen)
                    yield chosen

        return draws(), False

    def _names_holders(self, agree: int, m: int) -> bool:
        """Whether a polynomial through the owner's secret that agrees with ``agree``
        of its ``m`` shares is surely the dealt one, so the shares off it are wrong.

        Two polynomials of degree below t through the same secret share at most t - 2
        share points, so e colluding holders can shape their errors into another
        polynomial through the secret that agrees with their e shares and t - 2 honest
        ones; judged against it, the other honest holders would be named. So: at least
        (m + t) / 2 shares (the unique-decoding radius: only one polynomial can), and at
        least c + t - 1, c the colluders the round is sized for (no polynomial that c
        liars can make). Before, only the first held, and 3 liars among 10 holders of a
        t = 8 round sized for 3 colluders got an honest holder named every time."""
        t = self.config.threshold
        return 2 * agree >= m + t and agree >= self._colluders + t - 1

    def _robust_secret(
        self,
        reveals: _Reveals,
        owner: int,
        secret_bytes: int,
        opens: Callable[[int, bytes], bool],
        failure: str,
        suspects: set[int],
    ) -> bytes:
        """``owner``'s secret from some t of its shares that open its commitment.

        With e wrong shares among m, a random t-subset is all genuine with probability
        C(m-e, t) / C(m, t), a half or more for one wrong share whenever m >= 2t - 1;
        every subset is tried when there are few (:meth:`_t_subsets`). When there are
        many and e is small but not 1 this probability collapses (3 wrong among 60 at
        t = 54: 0.0006, and 256 draws missed in 6 rounds of 10), so after a few draws
        the subset that Berlekamp-Welch decoding leaves (:func:`shamir.locate_errors`,
        any e <= (m - t) / 2) is tried. Any subset that opens the commitment gives the
        right secret (it binds), so the sum is exact either way.

        Naming the holders of wrong shares needs more care: each opening subset's
        polynomial is checked against every share (:func:`shamir.on_polynomial`), and
        holders are named only when :meth:`_names_holders` says that polynomial is the
        dealt one. Otherwise the round still completes and nobody is named. A name is a
        disputed pair, not a verdict: an owner that dealt a holder a wrong share looks
        exactly like that holder lying, so ``report.inconsistent_shares`` says that the
        holder or the owner deviated, and excludes nobody by itself."""
        t = self.config.threshold
        points, values = reveals.all_of(owner)
        m = len(points)
        subsets, exhaustive = self._t_subsets(m)

        def candidates() -> Iterator[tuple[int, ...]]:
            """A few subsets first (one wrong share among many: found at once), then
            the t genuine shares Berlekamp-Welch decoding points to (any e <= (m - t)/2
            wrong shares: found every time), then the rest."""
            rest = iter(subsets)
            # first the t smallest shares of holders not yet found lying about another
            # owner: a holder that lies about every owner costs one subset each, not
            # ~10 (n = 100, t = 90: the close took 6.7 s before, 2.8 s without this)
            order = np.argsort(points, kind="stable").tolist()
            clear = [i for i in order if int(points[i]) not in suspects][:t]
            if len(clear) == t and set(clear) != set(order[:t]):  # not the fast path's
                yield tuple(sorted(clear))
            yield from itertools.islice(rest, ROBUST_ATTEMPTS // 8)
            wrong = shamir.locate_errors(points, values, t)
            if wrong is not None and int((~wrong).sum()) >= t:
                yield tuple(np.flatnonzero(~wrong)[:t].tolist())
            yield from rest

        tried = 0
        found: bytes | None = None
        best: np.ndarray | None = None
        for chosen in candidates():
            tried += 1
            secret = self._secret_of(points, values, chosen, secret_bytes)
            if secret is None or not opens(owner, secret):
                continue
            found = secret
            agree = shamir.on_polynomial(points, values, chosen)
            if best is None or int(agree.sum()) > int(best.sum()):
                best = agree
            if self._names_holders(int(best.sum()), m) or tried >= ROBUST_ATTEMPTS // 4:
                break
        if found is None:
            if exhaustive:
                raise RoundAborted(
                    f"{failure}, and no {t} of the {m} shares received open it",
                    phase="unmasking",
                )
            raise RoundAborted(
                f"{failure}, and none of the {tried} {t}-subsets of the {m} shares received "
                f"that were tried opens it (random ones, and decoding finds no {t} good "
                f"shares within {(m - t) // 2} wrong ones)",
                phase="unmasking",
            )
        if best is not None:  # only an ordering hint for the next owners: never a name
            suspects.update(int(points[i]) for i in np.flatnonzero(~best).tolist())
        if best is not None and self._names_holders(int(best.sum()), m):
            for other in np.flatnonzero(~best).tolist():
                holder = int(points[other]) - 1  # share_point(holder) = holder + 1
                self.report.inconsistent_shares.setdefault(holder, set()).add(owner)
        return found

    @staticmethod
    def _secret_of(
        points: np.ndarray, values: np.ndarray, chosen: tuple[int, ...], secret_bytes: int
    ) -> bytes | None:
        index = np.asarray(chosen)
        try:
            (secret,) = shamir.try_reconstruct_arrays(
                points[index][None, :], values[index][None, :, :], secret_bytes
            )
        except SecretSharingError:
            return None
        return secret
